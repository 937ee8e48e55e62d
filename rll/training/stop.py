"""Stopping a run between two optimiser steps, without losing the epoch it is in.

While a run trains, SIGINT (Ctrl-C, a notebook's interrupt) and SIGTERM (``kill``, ``timeout``, a
batch scheduler) do not kill it: they ask the loop to stop.  It finishes the step it is in, writes
a mid-epoch checkpoint — the permutation of the epoch, the step reached, every RNG state — and
raises :class:`TrainingStopped`.  Run again, it resumes at that step and ends with the weights the
uninterrupted run would have had (``tests/test_train.py``).  A second signal acts at once, as
without this module; outside the training loop (loading data, evaluating) signals act as usual.
"""
from __future__ import annotations

import signal
import threading
from typing import Self

#: The signals that ask a run to stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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
    handlers are restored on exit.  Inert (``enabled=False``, or outside the main thread, where
    Python cannot install handlers): :attr:`requested` stays False.

    >>> with StopRequest() as stop:
    ...     for step in steps:
    ...         train_step(...)
    ...         if stop.requested:
    ...             save(); raise TrainingStopped("...", stop.signum)
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
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
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()


__all__ = ["STOP_SIGNALS", "StopRequest", "TrainingStopped"]
