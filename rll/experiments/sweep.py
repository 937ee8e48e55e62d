"""Running many configurations: the stored record of each, training the missing ones (safely on
several workers at once: each run is claimed in the store first), and what a sweep would do."""
from __future__ import annotations

import time

from rll.experiments.tables import find_record, stand_ins
from rll.losses import is_current
from rll.store import REPO, ResultsStore, results_folder
from rll.training.checkpoint import CheckpointMismatch, checkpoint_path, start_point
from rll.training.claim import RunClaimed
from rll.training.run import TrainingDiverged, train


def collect_runs(configs: list, *, results_dir, exact_budget: bool, train_missing: bool = False,
                 data_root=None, device=None, checkpoint_dir=None, progress: bool = True,
                 checksums=None, curve_images: int | None = None, eval_plan=None, log=print) -> list[tuple]:
    """Pair each configuration with its stored record (:func:`rll.experiments.tables.find_record`);
    with ``train_missing`` the ones without a current record are trained and stored first, through
    :func:`run_sweep` — the one path every command takes (claimed in the store, a diverged or
    elsewhere-claimed run reported and left without a record) — checking the data against
    ``checksums`` (``{file name: md5}`` overrides, see :func:`rll.data.load_dataset`), keeping
    learning curves on ``curve_images`` test images (the convergence test of the verdicts reads
    them) and measuring each column on the images ``eval_plan`` names.  Returns ``[(config, record or None), ...]``."""
    store = ResultsStore(results_dir)
    records = store.records()
    missing = [c for c in configs if not is_current(find_record(records, c, exact_budget=exact_budget))]
    if train_missing and missing:     # absent, or an older fidelity revision's
        run_sweep(missing, results_dir=results_dir, checkpoint_dir=checkpoint_dir, data_root=data_root,
                  device=device, progress=progress, log=log, checksums=checksums, curve_images=curve_images,
                  eval_plan=eval_plan)
        records = store.records()
    return [(config, find_record(records, config, exact_budget=exact_budget)) for config in configs]


def run_sweep(configs: list, *, results_dir, checkpoint_dir=None, data_root=None, device=None,
              progress: bool = True, log=print, checksums=None, attacks=None, eval_plan=None,
              curve_images=None, stop_after: float | None = None, **speed) -> dict:
    """Run every configuration the store lacks, one after another.  Safe to start on several
    workers (processes, GPUs, machines sharing ``results_dir``) at once: each configuration
    is claimed in the store before it is trained, and a worker skips what another holds, so
    no run is ever duplicated.  A run whose loss diverges is reported and skipped (its
    checkpoint stays; nothing is stored), and the sweep goes on.  Returns counts of
    ``trained``, ``stored`` (already there), ``claimed_elsewhere`` and ``diverged``.
    ``checksums`` overrides the dataset's official md5s; ``attacks``, ``eval_plan`` and
    ``curve_images`` say how each trained model is evaluated before the next one starts
    (:func:`rll.training.run.train`): a configuration counts as stored only when every attack's
    record is there.  ``stop_after`` (minutes): start no new configuration after that long
    (counted as ``not_started``); ``speed``: ``channels_last``, ``compile`` for
    :func:`rll.training.run.train`."""
    store = ResultsStore(results_dir)
    counts = {"trained": 0, "stored": 0, "claimed_elsewhere": 0, "diverged": 0, "not_started": 0}
    attack_names = tuple(attacks) if attacks else None
    started = time.monotonic()
    for i, config in enumerate(configs, 1):
        if stop_after is not None and time.monotonic() - started > 60 * stop_after:
            counts["not_started"] += 1
            continue
        if not _missing_attacks(store, config, attack_names):
            counts["stored"] += 1
            continue
        try:
            train(config, data_root=data_root, results_dir=results_dir, device=device, progress=progress,
                  checkpoint_dir=checkpoint_dir or (REPO / "checkpoints"), checksums=checksums,
                  attacks=attack_names, eval_plan=eval_plan, curve_images=curve_images, **speed)
        except RunClaimed:
            counts["claimed_elsewhere"] += 1
            log(f"[{i}/{len(configs)}] {config.label()}: claimed by another worker, skipped")
            continue
        except TrainingDiverged as err:
            counts["diverged"] += 1
            log(f"[{i}/{len(configs)}] {config.label()}: DIVERGED, not stored: {err}")
            continue
        counts["trained"] += 1
        log(f"[{i}/{len(configs)}] {config.label()}: stored")
    return counts


def sweep_status(configs, *, results_dir=None, attacks=None, checkpoint_dir=None) -> list[tuple]:
    """What :func:`run_sweep` would do with each configuration: ``(config, status)`` with
    status ``stored``, ``claimed by <owner>`` (another worker trains it now), ``missing
    <attacks>`` (trained, some attacks' records absent: the sweep evaluates them), ``to train``
    (``... again`` when an older fidelity revision's record is stored), ``to evaluate from its
    checkpoint`` (trained, its checkpoint on this machine), ``to resume from epoch N``, ``to resume
    in epoch N after step K/M`` (stopped inside an epoch: :mod:`rll.training.stop`) or ``to
    train from the N-epoch checkpoint`` (a shorter run's epochs are this one's first:
    :func:`rll.training.checkpoint.shorter_checkpoint`) — checkpoints looked up in ``checkpoint_dir``, default
    ``checkpoints/`` as :func:`run_sweep`.  ``python -m rll sweep --dry-run`` prints it."""
    store = ResultsStore(results_folder("runs", results_dir))
    checkpoint_dir = checkpoint_dir if checkpoint_dir is not None else REPO / "checkpoints"
    out = []
    for config in configs:
        missing = _missing_attacks(store, config, attacks)
        claim = store.claim_info(config.training_canonical()) if missing else None
        if not missing:
            status = "stored"
        elif claim:
            status = f"claimed by {claim.get('owner', '?')}"
        elif len(missing) == len(attacks or (config.attack,)):
            status = _checkpoint_status(config, checkpoint_dir, store)
            if (old := store.get(config)) is not None:
                status += f" again (fidelity revision {old['provenance'].get('fidelity_revision', 1)} stored)"
        else:
            status = "missing " + ", ".join(missing)
        out.append((config, status))
    return out


def _checkpoint_status(config, checkpoint_dir, store) -> str:
    """Where training ``config`` would start (:func:`rll.training.checkpoint.start_point`), in words."""
    try:
        ckpt, shorter = start_point(config, checkpoint_dir, store)
    except CheckpointMismatch:
        return (f"to train (its checkpoint {checkpoint_path(config, checkpoint_dir).name} does not match: "
                "the sweep will stop on it)")
    if ckpt is None:
        return "to train"
    done = int(ckpt.get("epoch", 0))
    if shorter is not None:
        return f"to train from the {done}-epoch checkpoint"
    if (partial := ckpt.get("partial")) is not None:   # stopped inside an epoch (rll.training.stop)
        return f"to resume in epoch {done + 1} after step {partial['step']}/{partial['steps_per_epoch']}"
    return "to evaluate from its checkpoint" if done >= config.epochs else f"to resume from epoch {done}"


def _missing_attacks(store, config, attacks=None) -> list[str]:
    """The attacks (default: the configuration's own) whose record of ``config`` — or of its fp32
    stand-in (:func:`rll.experiments.tables.stand_ins`) — the store lacks at the current fidelity
    revision."""
    return [a for a in (tuple(attacks) if attacks else (config.attack,))
            if not any(is_current(store.get(c.replace(attack=a))) for c in stand_ins(config))]
