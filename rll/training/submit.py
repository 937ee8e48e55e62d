"""Sweeps through submitit: one job per configuration the results store lacks, on Slurm or here.

``python -m rll sweep TABLE ... --executor slurm --partition P --gpus-per-job G --timeout MIN``
submits a job array through :class:`submitit.SlurmExecutor`; ``--executor local`` runs the same
jobs through :class:`submitit.LocalExecutor` on this machine.  Each job is a
:class:`TrainJob`: it trains one configuration with :func:`rll.training.run.train` into the shared
results store and checkpoint directory.

**Resumable jobs.**  :class:`TrainJob` is a :class:`submitit.helpers.Checkpointable`: when its
time limit nears (or it is pre-empted, on clusters that set
``SlurmctldParameters=preempt_send_user_signal``) Slurm sends the job ``SIGUSR2``; submitit then
pickles the job as it was submitted and requeues it (Slurm: ``scontrol requeue``, same job id;
local: the controller starts it again).  While a one-process job trains, the signal waits for the
step in progress and a checkpoint inside the epoch (:mod:`rll.training.stop`) before it reaches
submitit.  The requeued job calls :func:`~rll.training.run.train` again, which resumes at that step
(or, signalled during an evaluation or in a data-parallel job, from the last epoch's checkpoint)
to the same record.
A job killed outright (``SIGKILL``, a lost node) is not requeued: submitting the same sweep
again submits only what the store still lacks, and that job resumes from the checkpoint.

**The store's claim** stays a guard against two submissions of one configuration: the job
claims the run under its job id (``submitit job 1234_5: …``), so a requeued attempt takes its
own claim over while a second submission's job finds the run claimed and stops
(``claimed_elsewhere``); a submission skips configurations whose claim is live.

**GPUs.**  ``--gpus-per-job G`` asks for G GPUs on one node and starts one task per GPU
(``--procs-per-job`` changes the number of processes, e.g. for CPU-only data parallelism):
the tasks export torch's distributed environment
(:class:`submitit.helpers.TorchDistributedEnvironment`) and train the run data-parallel
(:mod:`rll.training.distributed`).  Logs, pickles and (Slurm) the sbatch script of each job are in
``--log-dir`` (default ``logs/submitit/%j``, ``%j`` the job id).

"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import submitit

from rll.config import TrainConfig
from rll.data import resolve_root
from rll.experiments.tables import stand_ins
from rll.store import ResultsStore
from rll.training.claim import RunClaimed
from rll.training.run import TrainingDiverged, train

__all__ = ["EXECUTORS", "TrainJob", "check_options", "make_executor", "submit_sweep", "wait",
           "DEFAULT_LOG_DIR", "DEFAULT_TIMEOUT_MIN"]

EXECUTORS = ("slurm", "local")
DEFAULT_LOG_DIR = "logs/submitit/%j"
DEFAULT_TIMEOUT_MIN = 24 * 60
#: Requeues after a time limit before submitit gives a job up (pre-emptions are not counted).
MAX_TIMEOUTS = 100
#: Seconds before the time limit at which Slurm signals the job (time to finish a step).
SIGNAL_DELAY_S = 120


class TrainJob(submitit.helpers.Checkpointable):
    """Train one configuration (its canonical dict) into ``results_dir`` as a submitit job.

    Returns ``{"status": "trained" | "stored" | "claimed_elsewhere" | "diverged", "label",
    "record"}`` (``record``: the record's file name in the store); on a data-parallel job's
    ranks > 0 ``{"status": "rank", "rank": r}``.  On ``SIGUSR2`` submitit requeues the same
    call (:meth:`submitit.helpers.Checkpointable.checkpoint`), which resumes the training."""

    def __init__(self, config: Mapping[str, Any], *, results_dir: str, checkpoint_dir: str,
                 data_root: str | None = None, checksums: Mapping[str, str] | None = None,
                 device: str = "cpu", attacks: tuple[str, ...] | None = None, eval_plan=None,
                 curve_images: int | None = None, speed: Mapping[str, bool] | None = None) -> None:
        self.config = dict(config)
        self.results_dir, self.checkpoint_dir = str(results_dir), str(checkpoint_dir)
        self.data_root = None if data_root is None else str(data_root)
        self.checksums = dict(checksums) if checksums else None
        self.device = device
        self.attacks = tuple(attacks) if attacks else None     # as rll.training.run.train takes them
        self.eval_plan, self.curve_images = eval_plan, curve_images
        self.speed = dict(speed or {})       # channels_last, compile (rll.training.run.train)

    def __call__(self) -> dict:
        env = submitit.JobEnvironment()
        if env.num_tasks > 1:     # one process per GPU: torch's env:// variables for rll.training.distributed
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False,
                                                                  overwrite=True)
        config = TrainConfig.from_dict(self.config)
        out = {"label": config.label(), "job_id": env.job_id}
        store = ResultsStore(self.results_dir)
        stored = _is_stored(store, config, self.attacks)   # then train() returns it (every rank calls it)
        try:
            record = train(config, data_root=self.data_root, results_dir=self.results_dir,
                           checkpoint_dir=self.checkpoint_dir, device=self.device, progress=False,
                           checksums=self.checksums, attacks=self.attacks, eval_plan=self.eval_plan,
                           curve_images=self.curve_images, **self.speed,
                           claim_owner=f"submitit job {env.job_id}: {config.label()}")
        except RunClaimed as err:
            return {**out, "status": "claimed_elsewhere", "message": str(err)}
        except TrainingDiverged as err:
            return {**out, "status": "diverged", "message": str(err)}
        if record is None:
            return {**out, "status": "rank", "rank": env.global_rank}
        if stored:
            return {**out, "status": "stored", "record": store.path(config).name}
        print(f"stored {config.label()} in {store.path(config).name}", flush=True)
        return {**out, "status": "trained", "record": store.path(config).name}


def _is_stored(store: ResultsStore, config, attacks) -> bool:
    """Whether the store holds ``config``'s record under every attack (as rll.training.run counts it)."""
    return all(store.get(config.replace(attack=a)) is not None for a in (attacks or (config.attack,)))


def check_options(executor: str | None, *, partition: str | None = None, gpus_per_job: int | None = None,
                  procs_per_job: int | None = None, timeout_min: float | None = None,
                  max_parallel: int | None = None, slurm: Mapping[str, Any] | None = None,
                  device: str | None = None, log_dir: str | None = None) -> None:
    """Raise ``ValueError`` (naming the valid choices) for scheduling options that do not fit
    together; nothing is submitted or computed before this passes."""
    if executor is None:
        given = [f for f, v in (("--partition", partition), ("--gpus-per-job", gpus_per_job),
                                ("--procs-per-job", procs_per_job), ("--timeout", timeout_min),
                                ("--max-parallel", max_parallel), ("--slurm", slurm), ("--log-dir", log_dir))
                 if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)} apply to job submission only: add --executor "
                             f"({' | '.join(EXECUTORS)})")
        return
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; valid choices: {', '.join(EXECUTORS)}")
    if executor != "slurm":
        given = [f for f, v in (("--partition", partition), ("--max-parallel", max_parallel), ("--slurm", slurm))
                 if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)} apply to --executor slurm only")
    if device is not None:
        raise ValueError("with --executor the jobs' device follows --gpus-per-job (cuda when > 0, else cpu); "
                         "drop --device")
    if gpus_per_job is not None and gpus_per_job < 0:
        raise ValueError(f"--gpus-per-job must be >= 0, got {gpus_per_job}")
    if procs_per_job is not None and procs_per_job < 1:
        raise ValueError(f"--procs-per-job must be >= 1, got {procs_per_job}")
    if gpus_per_job and procs_per_job is not None and procs_per_job != gpus_per_job:
        raise ValueError(f"with GPUs each process uses one: --procs-per-job must equal --gpus-per-job "
                         f"({gpus_per_job}), got {procs_per_job}")
    if timeout_min is not None and not timeout_min > 0:
        raise ValueError(f"--timeout must be a positive number of minutes, got {timeout_min}")
    if max_parallel is not None and max_parallel < 1:
        raise ValueError(f"--max-parallel must be >= 1, got {max_parallel}")


def make_executor(kind: str, log_dir: str | os.PathLike = DEFAULT_LOG_DIR, *, partition: str | None = None,
                  gpus_per_job: int | None = None, procs_per_job: int | None = None,
                  timeout_min: float = DEFAULT_TIMEOUT_MIN, max_parallel: int | None = None,
                  slurm: Mapping[str, Any] | None = None) -> submitit.Executor:
    """A submitit executor for ``kind`` (``slurm`` or ``local``) writing into ``log_dir``.

    Each job gets one node, ``gpus_per_job`` GPUs (default 1 on Slurm, 0 locally), one task
    per GPU (or ``procs_per_job``), and ``timeout_min`` minutes; Slurm signals it
    ``SIGUSR2`` :data:`SIGNAL_DELAY_S` seconds before the limit.  ``slurm`` passes further
    parameters of :class:`submitit.SlurmExecutor` (e.g. ``account``, ``qos``,
    ``cpus_per_task``, ``mem``, ``setup``); submitit rejects unknown ones, listing the
    valid names."""
    check_options(kind, partition=partition, gpus_per_job=gpus_per_job, procs_per_job=procs_per_job,
                  timeout_min=timeout_min, max_parallel=max_parallel, slurm=slurm)
    gpus = gpus_per_job if gpus_per_job is not None else (1 if kind == "slurm" else 0)
    procs = procs_per_job or max(1, gpus)
    if kind == "local":
        import torch

        if gpus > torch.cuda.device_count():
            raise ValueError(f"--gpus-per-job {gpus}: this machine has {torch.cuda.device_count()} GPU(s)")
        executor = submitit.LocalExecutor(folder=log_dir, max_num_timeout=MAX_TIMEOUTS)
        executor.update_parameters(timeout_min=timeout_min, gpus_per_node=gpus, tasks_per_node=procs,
                                   nodes=1, signal_delay_s=SIGNAL_DELAY_S)
        return executor
    try:
        executor = submitit.SlurmExecutor(folder=log_dir, max_num_timeout=MAX_TIMEOUTS)
    except RuntimeError as err:
        raise ValueError(f"--executor slurm needs Slurm's sbatch and srun on PATH ({err})") from None
    params: dict[str, Any] = dict(job_name="rll-sweep", time=int(-(-timeout_min // 1)), nodes=1,
                                  ntasks_per_node=procs, signal_delay_s=SIGNAL_DELAY_S)
    if gpus:
        params["gpus_per_node"] = gpus
    if partition:
        params["partition"] = partition
    if max_parallel:
        params["array_parallelism"] = max_parallel
    params.update(slurm or {})
    executor.update_parameters(**params)
    return executor


def _job_device(executor: submitit.Executor) -> str:
    """``cuda`` when the executor's jobs get GPUs, else ``cpu``."""
    p = executor.parameters
    return "cuda" if (p.get("gpus_per_node") or 0) > 0 else "cpu"


def submit_sweep(configs: Iterable, executor: submitit.Executor, *, results_dir: str | os.PathLike,
                 checkpoint_dir: str | os.PathLike, data_root: str | os.PathLike | None = None,
                 checksums: Mapping[str, str] | None = None, attacks: Iterable[str] | None = None,
                 eval_plan=None, curve_images: int | None = None, speed: Mapping[str, bool] | None = None,
                 log: Callable[[str], None] = print) -> tuple[list, dict]:
    """Submit one :class:`TrainJob` per configuration the store lacks, as one job array.

    Skips configurations already stored (under every one of ``attacks``) and those whose
    claim is held by a live worker (a claim left by a dead process on this host does not
    count: the job breaks it).  ``attacks``, ``eval_plan`` and ``curve_images`` reach
    :func:`rll.training.run.train` as in :func:`rll.experiments.sweep.run_sweep`.  Paths are made absolute
    for the jobs.  Returns ``(jobs, counts)`` with counts of ``submitted``, ``stored`` and
    ``claimed_elsewhere``.  ``speed`` (``channels_last``, ``compile``) likewise."""
    store = ResultsStore(Path(results_dir).resolve())
    counts = {"submitted": 0, "stored": 0, "claimed_elsewhere": 0}
    attacks = tuple(attacks) if attacks else None
    todo = []
    for config in configs:
        key = config.training_canonical()
        if any(_is_stored(store, c, attacks) for c in stand_ins(config)):     # an fp32 record answers bf16
            counts["stored"] += 1
        elif store.claim_info(key) is not None and not store.claim_is_stale(key, timeout=None):
            counts["claimed_elsewhere"] += 1
            log(f"{config.label()}: claimed by {store.claim_info(key)} — skipped; if that worker is "
                f"gone, remove {store.claim_path(key)}")
        else:
            todo.append(config)
    if not todo:
        return [], counts
    options = dict(results_dir=str(store.root), checkpoint_dir=str(Path(checkpoint_dir).resolve()),
                   data_root=str(resolve_root(data_root)), checksums=checksums, device=_job_device(executor),
                   attacks=attacks, eval_plan=eval_plan, curve_images=curve_images, speed=speed)
    with executor.batch():
        jobs = [executor.submit(TrainJob(config.canonical(), **options)) for config in todo]
    counts["submitted"] = len(jobs)
    for config, job in zip(todo, jobs):
        log(f"submitted {config.label()}: job {job.job_id}, logs in {job.paths.folder}")
    return jobs, counts


def wait(jobs: list, *, log: Callable[[str], None] = print) -> dict:
    """Wait for ``jobs`` and count their outcomes (:class:`TrainJob`'s statuses, plus
    ``failed`` for a job that ended without a result, e.g. killed; its stderr is named)."""
    counts = {"trained": 0, "stored": 0, "claimed_elsewhere": 0, "diverged": 0, "failed": 0}
    for job in jobs:
        try:
            result = job.results()[0]
        except Exception as err:  # noqa: BLE001 — submitit re-raises the job's error or its absence
            counts["failed"] += 1
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            log(f"job {job.job_id} failed: {first} (log: {job.paths.stderr})")
            continue
        counts[result["status"]] += 1
        log(f"job {job.job_id}: {result['label']}: {result['status']}")
    return counts
