"""Stopping a run between two optimiser steps, without losing the epoch it is in.

While a run trains, SIGINT (Ctrl-C, a notebook's interrupt) and SIGTERM (``kill``, ``timeout``, a
batch scheduler) do not kill it: they ask the loop to stop.  It finishes the step it is in, writes
a mid-epoch checkpoint — the permutation of the epoch, the step reached, every RNG state — and
raises :class:`TrainingStopped`.  Run again, it resumes at that step and ends with the weights the
uninterrupted run would have had (``tests/test_train.py``).  A second signal acts at once, as
without this module; outside the training loop (loading data, evaluating) signals act as usual.

A job scheduler's warning is deferred the same way: :data:`REQUEUE_SIGNAL` (Slurm's
``--signal=USR2@…`` before a time limit or a pre-emption), while a Python handler is installed for
it — submitit's, which checkpoints and requeues the job (:mod:`rll.training.submit`).  The step
finishes, the checkpoint inside the epoch is written, and then that handler gets the signal: the
requeued job resumes at the step, not at the epoch's start.  Without such a handler SIGUSR2 keeps
its default action.
"""
from __future__ import annotations

import signal
import sys
import threading
from typing import Self

#: The signals that ask a run to stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Deferred to the step's end only while a Python handler (submitit's requeue) is installed for
#: it; that handler is called once the checkpoint is written.
REQUEUE_SIGNAL = signal.SIGUSR2


class TrainingStopped(KeyboardInterrupt):
    """A run was asked to stop (:data:`STOP_SIGNALS`) and did, after writing its checkpoint.

    A :class:`KeyboardInterrupt`, so that code catching ``Exception`` does not swallow it.
    ``signum`` is the signal; ``python -m rll`` exits with ``128 + signum``."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


class StopRequest:
    """Within the block, :data:`STOP_SIGNALS` set :attr:`signum` instead of interrupting; the
    handler then puts the previous one back, so a second signal acts at once.  A signal the
    process ignores (``SIG_IGN``: a background job's SIGINT, ``nohup``) stays ignored.  The previous
    handlers are restored on exit.  :data:`REQUEUE_SIGNAL` is taken too when a Python handler is
    installed for it (and ``requeue``); if the block then ends with :class:`TrainingStopped` for
    it, that handler is called (submitit requeues the job and exits).  Inert (``enabled=False``,
    or outside the main thread, where Python cannot install handlers): :attr:`requested` stays
    False.

    >>> with StopRequest() as stop:
    ...     for step in steps:
    ...         train_step(...)
    ...         if stop.requested:
    ...             save(); raise TrainingStopped("...", stop.signum)
    """

    def __init__(self, enabled: bool = True, requeue: bool = True):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requeue = requeue
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handle(self, signum, frame) -> None:
        self.signum = signum
        signal.signal(signum, self._previous[signum])

    def __enter__(self) -> Self:
        if self.enabled:
            for s in STOP_SIGNALS:
                if signal.getsignal(s) == signal.SIG_IGN:   # told to ignore it (nohup, a background job)
                    continue
                previous = signal.signal(s, self._handle)
                self._previous[s] = signal.SIG_DFL if previous is None else previous   # None: set outside Python
            if self.requeue and callable(signal.getsignal(REQUEUE_SIGNAL)):   # a scheduler's: defer it to the step's end
                self._previous[REQUEUE_SIGNAL] = signal.signal(REQUEUE_SIGNAL, self._handle)
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        previous = dict(self._previous)
        for s, handler in previous.items():
            signal.signal(s, handler)
        self._previous.clear()
        forward = previous.get(REQUEUE_SIGNAL)
        if isinstance(exc, TrainingStopped) and exc.signum == REQUEUE_SIGNAL and callable(forward):
            print(f"rll: {exc}; {self.name} handed to its handler", file=sys.stderr, flush=True)
            forward(REQUEUE_SIGNAL, None)      # submitit: checkpoint(), requeue, exit


__all__ = ["REQUEUE_SIGNAL", "STOP_SIGNALS", "StopRequest", "TrainingStopped"]
