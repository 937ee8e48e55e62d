"""Train, evaluate and store one configuration: the entry every command, sweep and page uses.

:func:`train` runs a :class:`rll.config.TrainConfig`: seeded, resumable from a per-epoch checkpoint
(:mod:`rll.training.checkpoint`) to the same result, and finished by the paper's table columns
(:func:`rll.metrics.table_metrics`) written to the results store; :func:`evaluate` re-evaluates a
stored checkpoint.

**Data.**  Each split is loaded with :func:`rll.data.load_dataset` and kept whole on the
training device as uint8; batches are gathered, augmented and converted to float there.
``train_size``/``test_size`` take a deterministic random subset (depending on ``seed`` only).
Augmentation as the released code (the paper says only "data augmentation is performed"):
CIFAR-10 random crop with 4-pixel zero padding and horizontal flip (vectorised over the batch);
Restricted ImageNet ``Resize(72)`` then ``RandomCrop(64, padding=8)`` of the whole resized image,
no flip (its training images are kept resized, :func:`rll.data.load_resized_train`; evaluation
uses resize 72 + centre crop 64); MNIST and SVHN none.  Drawn from a seeded generator.

**Reproducibility.**  ``torch.manual_seed(seed)`` before the model is built; shuffling and
augmentation use their own seeded ``torch.Generator``; after every epoch a checkpoint holds the
model, optimiser, scheduler, every RNG state and the training configuration (loaded with
``torch.load(weights_only=True)``: tensors and plain Python types only).  A run killed at any
point resumes from the last completed epoch to the same result (bitwise on the CPU); one stopped
by a signal, at the step it reached (:mod:`rll.training.stop`); one moved to another kind of
device, with its generators seeded afresh (:func:`rll.training.checkpoint.set_rng_state`).  The
evaluation is seeded separately (``table_metrics(seed=seed)``), so re-evaluating the final
checkpoint reproduces the record.

>>> from rll.config import TrainConfig
>>> cfg = TrainConfig.from_paper("mnist", "cnn2", "trades", beta=6.0, epochs=10)
>>> cfg.lr, cfg.milestones            # 1e-4 × 64, and 40/80/120/140 scaled to 10 epochs
(0.0064, (3, 5, 8, 9))
>>> record = train(cfg)               # doctest: +SKIP
>>> record["metrics"]["adv_test_acc"] # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import os
import platform
import signal
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping

import torch

from rll import __version__
from rll import data as rdata
from rll import losses as rlosses
from rll import metrics as rmetrics
from rll.attacks import require_torchattacks
from rll.config import (
    ATTACKS,
    AUGMENT_PAD,
    RESIZED_TRAIN,
    TrainConfig,
    _choices,
    _is_int,
)
from rll.store import (
    ResultsStore,
    cpu_description,
    device_name,
    git_commit,
    results_folder,
)
from rll.training import distributed as rdist
from rll.training.checkpoint import (
    CHECKPOINT_FORMAT,
    checkpoint_path,
    load_scheduler_state,
    rng_state,
    save_checkpoint,
    scheduler_state,
    set_rng_state,
    set_scheduled_lr,
    start_point,
)
from rll.training.claim import _stored_or_claimed
from rll.training.loop import (
    build_run,
    load_split,
    make_batch,
    resized_train,
    resolve_device,
    run_generators,
    train_step,
)
from rll.training.packing import load_trained_model
from rll.training.stop import StopRequest, TrainingStopped


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; the run was stopped."""


# ====================================================================== provenance

def _provenance(device: torch.device, started: float, wall: float, epochs_done: int, **extra) -> dict:
    commit, dirty = git_commit()
    prov = {
        "git_commit": commit, "git_dirty": dirty, "rll_version": __version__,
        "torch_version": torch.__version__, "python_version": platform.python_version(),
        "device": device_name(device), "cpu": cpu_description(), "threads": torch.get_num_threads(),
        "started_utc": datetime.fromtimestamp(started, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_seconds": round(wall, 3), "epochs_done": epochs_done, "host": socket.gethostname(),
        **({"cuda_float32": "ieee (no TF32)"} if device.type == "cuda" else {}),
    }
    prov.update(extra)
    return prov


# ====================================================================== the loop


def train(config: TrainConfig, *, data_root: str | os.PathLike | None = None,
          results_dir: str | os.PathLike | None = None, checkpoint_dir: str | os.PathLike = "checkpoints",
          device: str | torch.device | None = None, progress: bool = True, resume: bool = True,
          force: bool = False, attacks: tuple[str, ...] | None = None,
          eval_plan: rmetrics.EvalPlan | None = None, eval_batch_size: int = 512,
          curve_images: int | None = None, claim: bool = True,
          on_step: Callable[[int, int], None] | None = None,
          channels_last: bool = False, compile: bool = False,
          checksums: Mapping[str, str] | None = None, claim_owner: str | None = None) -> dict | None:
    """Train ``config``, evaluate it with every requested attack, store and return its record.

    Args:
        config: the run (:class:`TrainConfig`).
        data_root: dataset folder (default ``$RLL_DATA``, then ``~/.cache/rll``).
        results_dir: the :class:`~rll.store.ResultsStore` folder (default
            :func:`rll.store.results_folder`: ``$RLL_RESULTS/runs``, else the checkout's
            ``results/runs``).  If it already holds the
            record of ``config`` under every requested attack, that record is returned without
            training (unless ``force``).
        checkpoint_dir: where the per-epoch checkpoint lives (one file per training
            configuration; kept after the run: it is the trained model).
        device: torch device (default cuda if available, else cpu).
        progress: tqdm progress bars (refreshed at most once a second).
        resume: continue from this configuration's checkpoint if there is one (default);
            ``False`` starts afresh and overwrites it.
        force: run again even if the records exist (from the checkpoint, if ``resume`` and
            one exists: a finished checkpoint is then only re-evaluated).
        attacks: the evaluation attacks (:data:`ATTACKS`), default ``(config.attack,)``.  The
            trained model is evaluated with each before this function returns, and one
            record per attack is stored, under ``config.replace(attack=...)``: nothing later
            depends on keeping the checkpoint.
        eval_plan: which images each column is measured on (:class:`rll.metrics.EvalPlan`);
            default: everything on the whole splits, batch ``eval_batch_size``.
        eval_batch_size: batch size of the evaluation when no ``eval_plan`` is given.
        curve_images: if set, after every epoch the model is evaluated (clean accuracy on the
            whole test split; PGD-10 on this many fixed test images; both Lipschitz estimators
            on half as many) and the point is kept in the checkpoint's and the record's
            ``history`` (learning curves; resumable like the training).
        claim: claim the configuration in the results store for the duration, so that two
            workers never run it both (a claim left by a dead process on this host is broken;
            a live one raises :class:`rll.training.claim.RunClaimed`).
        on_step: hook called as ``on_step(epoch, step)`` (0-based) after every optimiser step.
        channels_last, compile: speed options (off by default): channels-last memory format
            and ``torch.compile`` of the model (not for GR/LLR in paper fidelity, which
            differentiate twice).  They change the arithmetic only at rounding level, not the
            configuration: the record's provenance says which were used.  bfloat16 is not one
            of them: it is ``config.precision``, part of the key.  Evaluation always runs in
            float32, eager; in channels-last too with ``channels_last`` (every accuracy
            identical on trained models, ``benchmarks/eval_layout.py``).
        checksums: ``{file name: md5}`` overriding the dataset's official md5s
            (:func:`rll.data.load_dataset`), for one's own copies of the files.  Not part of
            the configuration (the same run on other bytes has the same key); the record's
            ``provenance["data_notes"]`` names every file checked against an override.
        claim_owner: who holds the claim (default ``rll.training.run pid …``); a claim left by the same
            owner is taken over — a requeued cluster job (:mod:`rll.training.submit`) names itself so.

    Under ``torchrun`` the run is trained data-parallel (:mod:`rll.training.distributed`): rank 0
    claims, checkpoints, evaluates and returns the record; the other ranks measure its AutoAttack
    configurations for it, if any (:func:`autoattack_shares`), and return ``None``.

    Returns the stored record of ``config`` ``{"config", "metrics", "provenance", "schema"}``;
    metrics are :func:`rll.metrics.evaluate`'s columns (percent) plus ``final_train_loss``.

    Raises:
        CheckpointMismatch: the checkpoint file belongs to another configuration.
        TrainingDiverged: the loss became NaN/inf (the message names epoch, step and method).
        rll.training.stop.TrainingStopped: SIGINT or SIGTERM arrived while it trained; the step
            in progress finished and a checkpoint inside the epoch was written, from which the
            same call resumes at that step to the weights of an uninterrupted run.
        rll.training.claim.RunClaimed: another live worker is running this configuration.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    attacks = _check_attacks(config, attacks)
    plan = eval_plan if eval_plan is not None else rmetrics.EvalPlan(batch_size=eval_batch_size)
    check_curve_images(curve_images)
    rdata.check_checksums(config.dataset, checksums)   # a malformed override stops us here
    store = ResultsStore(_results_folder(results_dir))
    group, device = rdist.join(device)                 # under torchrun: this process's rank and GPU
    done = group.decide(_stored_or_claimed, store, config, attacks, force=force, claim=claim, owner=claim_owner)
    if done is not None:
        return done
    try:
        return _train_claimed(config, store, data_root=data_root, checkpoint_dir=checkpoint_dir,
                              device=resolve_device(device), progress=progress, resume=resume,
                              attacks=attacks, plan=plan, curve_images=curve_images,
                              on_step=on_step, channels_last=channels_last, compile_=compile,
                              checksums=checksums, group=group)
    finally:
        if claim and group.is_main:
            store.release(config.training_canonical())


def _results_folder(results_dir) -> Path:
    return results_folder("runs", results_dir)


def _check_attacks(config: TrainConfig, attacks) -> tuple[str, ...]:
    attacks = (config.attack,) if attacks is None else tuple(dict.fromkeys(attacks))
    if not attacks:
        raise ValueError("attacks must name at least one evaluation attack")
    for attack in attacks:
        _choices("attack", attack, ATTACKS)
    if {"aa", "aa-apgd"} & set(attacks):
        require_torchattacks()      # before any training, not after it
    return (config.attack,) + tuple(a for a in attacks if a != config.attack)


def check_curve_images(curve_images) -> None:
    """``curve_images`` (learning curves' PGD-10 images per epoch) is None or an integer ≥ 2."""
    if curve_images is not None and (not _is_int(curve_images) or curve_images < 2):
        raise ValueError(f"curve_images must be an integer >= 2 or None, got {curve_images!r}")


#: Training images the learning curves measure training accuracy on (a fixed subset, the
#: regime check's "≥ 10 000 training images"; all of them when the run trains on fewer).
CURVE_TRAIN_IMAGES = 10_000


def _curve_point(model: torch.nn.Module, test, *, eps: float, images: int, seed: int,
                 train=None) -> dict:
    """One point of the learning curves: clean accuracy on the whole test split, PGD-10 on
    ``images`` fixed test images, both Lipschitz estimators on half as many, and (given the
    ``train`` split) clean accuracy on :data:`CURVE_TRAIN_IMAGES` fixed training images."""
    plan = rmetrics.EvalPlan(pgd_test_images=images, lipschitz_images=max(1, images // 2), batch_size=64)
    m = rmetrics.evaluate(model, None, test, eps=eps, attacks=("pgd",), plan=plan, seed=seed)["pgd"]
    keys = ("test_acc", "adv_test_acc", "test_lipschitz", "test_lipschitz_released", "evaluated_on")
    point = {k: m[k] for k in keys}
    if train is not None:
        idx = rmetrics.fixed_subset(len(train[1]), CURVE_TRAIN_IMAGES)
        x, y = train if idx is None else (train[0][idx.to(train[0].device)], train[1][idx.to(train[1].device)])
        point["train_acc"] = rmetrics.accuracy(model, rdata.to_float(x), y, batch_size=512)
        point["train_evaluated_on"] = len(y)
    return point


def _train_claimed(config: TrainConfig, store: ResultsStore, *, data_root, checkpoint_dir,
                   device: torch.device, progress: bool, resume: bool, attacks: tuple[str, ...],
                   plan: rmetrics.EvalPlan, curve_images: int | None, on_step,
                   channels_last: bool, compile_: bool, checksums: Mapping[str, str] | None,
                   group: rdist.Group = rdist.SINGLE) -> dict | None:
    """Train the claimed ``config`` from scratch or from its checkpoint, then evaluate and store it."""
    started = time.time()
    t0 = time.perf_counter()
    git_commit()   # the code this process runs (cached), not a commit made while it trains
    ckpt, shorter_path = start_point(config, checkpoint_dir, store) if resume else (None, None)
    extended_from = ({"epochs": int(ckpt["epoch"]), "checkpoint": _relative_checkpoint(shorter_path, checkpoint_dir)}
                     if shorter_path is not None else None)
    train_split, test_split, fit = _load_splits(config, data_root, device, checksums)
    n_fit = len(fit[1])
    group.check_batches(n_fit, config.batch_size)
    run = _Run.start(config, ckpt, checkpoint_path(config, checkpoint_dir), device, group, channels_last,
                     steps_per_epoch=-(-n_fit // config.batch_size))
    # spent by earlier (interrupted) sessions
    earlier_seconds = run.train_seconds + (float(run.partial["seconds"]) if run.partial else 0.0)
    resumed_at = {"epoch": run.epoch + 1, "step": int(run.partial["step"])} if run.partial else None
    resumed_from = run.epoch if ckpt is not None else None
    test_float = (rdata.to_float(test_split[0]), test_split[1]) if curve_images else None
    _train_epochs(run, fit, curve=(test_float, train_split[:2], curve_images), progress=progress,
                  on_step=on_step, channels_last=channels_last, compile_=compile_)
    del fit, test_float
    shares = autoattack_shares(attacks, group.world_size)
    channel = None
    if shares:
        channel = group.open_channel()
        group.sync_module(run.model)
    if not group.is_main:      # rank 0 evaluates and writes the record; the others measure its AutoAttack
        if shares:
            _measure_share(config, run.model, test_split, attack=shares.get(group.rank), plan=plan,
                           channels_last=channels_last, group=group, channel=channel)
        return None
    return _evaluate_and_store(config, store, run.model, train_split, test_split,
                               attacks=attacks, plan=plan, device=device, progress=progress,
                               started=started, t0=t0 - earlier_seconds,
                               elsewhere=_SharedAutoAttack(group, channel, shares) if shares else None,
                               extra={"train_seconds": round(run.train_seconds, 3),
                                      "resumed_from_epoch": resumed_from,
                                      **({"resumed_in_epoch": resumed_at} if resumed_at else {}),
                                      **({"device_moves": run.device_moves} if run.device_moves else {}),
                                      **({"extended_from": extended_from} if extended_from else {}),
                                      "checkpoint": _relative_checkpoint(run.ckpt_file, checkpoint_dir),
                                      "history": run.history,
                                      "n_trained_on": n_fit,
                                      "precision": "bf16-autocast" if config.precision == "bf16" else "fp32",
                                      "channels_last": channels_last, "compiled": compile_,
                                      **_processes(run.world_sizes, group)},
                               epochs_done=config.epochs, channels_last=channels_last)


def _load_splits(config: TrainConfig, data_root, device: torch.device, checksums):
    """``(train, test, fit)``: the train and test splits ``(images, labels, note)`` and the
    images the run fits ``(images, labels)`` — the training split, with the test split when
    ``train_with_test``, or the resized training images (Restricted ImageNet)."""
    x_tr, y_tr, note_tr = load_split(config, "train", config.train_size, 0, data_root, device, checksums)
    # the evaluation needs the test split: a missing or corrupt file must stop the run now, not
    # after the training (load_dataset verifies it)
    x_te, y_te, note_te = load_split(config, config.test_split, config.test_size, 1, data_root, device, checksums)
    x_fit, y_fit = (torch.cat([x_tr, x_te]), torch.cat([y_tr, y_te])) if config.train_with_test else (x_tr, y_tr)
    if config.dataset in RESIZED_TRAIN:
        if config.train_with_test:
            raise ValueError(f"train_with_test is not available for {config.dataset}")
        x_fit = resized_train(config, data_root)
    return (x_tr, y_tr, note_tr), (x_te, y_te, note_te), (x_fit, y_fit)


@dataclass
class _Run:
    """A run being trained: its model, optimiser, scheduler and generators, and the rest of what
    its checkpoint holds — the epochs done, their history and seconds, and, for a run stopped
    inside an epoch (:mod:`rll.training.stop`), where in the next one it stopped (``partial``)."""

    config: TrainConfig
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.MultiStepLR
    gens: dict[str, torch.Generator]
    device: torch.device
    group: rdist.Group
    ckpt_file: Path
    steps_per_epoch: int
    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    world_sizes: list[int] = field(default_factory=list)
    partial: dict | None = None
    #: where the run moved to another kind of device and its random streams were seeded afresh
    device_moves: list[dict] = field(default_factory=list)

    @classmethod
    def start(cls, config: TrainConfig, ckpt: dict | None, ckpt_file: Path, device: torch.device,
              group: rdist.Group, channels_last: bool, *, steps_per_epoch: int) -> _Run:
        """The model, optimiser and generators seeded from ``config``, restored from ``ckpt``
        (a checkpoint of this run or of a shorter one, :func:`start_point`) when given."""
        model, opt, sched = build_run(config, device)
        group.seed_rank(config.seed)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        run = cls(config, model, opt, sched, run_generators(config, device), device, group, Path(ckpt_file),
                  steps_per_epoch)
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            load_scheduler_state(sched, ckpt["scheduler"])
            sched.milestones = Counter(config.milestones)    # a shorter run's may differ after its end
            set_scheduled_lr(opt, sched)      # ... and a decay at its last epoch never acted in it
            run.epoch, run.history = int(ckpt["epoch"]), list(ckpt["history"])
            run.train_seconds = float(ckpt["train_seconds"])
            run.partial = ckpt.get("partial")     # stopped inside epoch run.epoch + 1
            step = int(run.partial["step"]) if run.partial else 0
            run.device_moves = list(ckpt.get("device_moves", []))
            moved_from = set_rng_state(ckpt["rng"], device, run.gens, seed=config.seed, position=(run.epoch, step))
            if moved_from is not None:
                run.device_moves.append({"epoch": run.epoch + 1, "step": step, "from": moved_from,
                                         "to": device.type})
            group.restore_rng(ckpt["rng"], device, config.seed, run.epoch)
            run.world_sizes = list(ckpt.get("world_sizes", [1] * run.epoch))
        group.check_same(run.epoch, "the checkpoint epoch to resume from")
        return run

    def checkpoint(self, stopped_at: dict | None = None) -> None:
        """Write the checkpoint after :attr:`epoch` epochs, or inside the next one (``stopped_at``:
        its permutation, the steps done, their loss sum and seconds)."""
        rng = {**rng_state(self.device, self.gens), **self.group.rng_states(self.device)}   # every rank's
        save_checkpoint(self.ckpt_file, {
            "format": CHECKPOINT_FORMAT, "config": self.config.training_canonical(), "epoch": self.epoch,
            "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
            "scheduler": scheduler_state(self.sched), "rng": rng,
            "history": self.history, "train_seconds": self.train_seconds, "rll_version": __version__,
            "fidelity_revision": rlosses.FIDELITY_REVISION,
            "world_sizes": self.world_sizes,
            **({"device_moves": self.device_moves} if self.device_moves else {}),
            **({"partial": stopped_at} if stopped_at is not None else {}),
        }, write=self.group.is_main)


def _train_epochs(run: _Run, fit, *, curve, progress: bool, on_step, channels_last: bool,
                  compile_: bool) -> None:
    """Train ``run`` from where it stands to ``config.epochs``, checkpointing after every epoch
    (and, with ``curve = (test, train, images)``, measuring a learning-curve point first).

    SIGINT/SIGTERM stop it between two steps: the step in progress finishes, a checkpoint inside
    the epoch is written and :class:`TrainingStopped` is raised.  Under torchrun the ranks agree
    on the step (:meth:`rll.training.distributed.Group.agree_stop`): a signal to any rank stops
    them all there."""
    from tqdm.auto import tqdm

    config, group = run.config, run.group
    test_float, train_split, curve_images = curve
    fmodel = group.wrap(run.model, run.device)        # DistributedDataParallel under torchrun
    fmodel = torch.compile(fmodel) if compile_ else fmodel
    n, steps_per_epoch = len(fit[1]), run.steps_per_epoch
    bar = tqdm(total=config.epochs * steps_per_epoch,
               initial=run.epoch * steps_per_epoch + (int(run.partial["step"]) if run.partial else 0),
               desc=config.label(), unit="step", mininterval=1.0, disable=not (progress and group.is_main),
               leave=False)
    # Slurm's warning to a data-parallel submitit job reaches submitit at once, as it always did
    stop = StopRequest(requeue=group.world_size == 1)
    with stop, contextlib.closing(bar):
        while run.epoch < config.epochs:
            t_epoch = time.perf_counter()
            run.model.train()
            if run.partial is not None:     # the epoch a stopped run was in: its order, from its next step
                partial, run.partial = run.partial, None
                perm, first_step = partial["perm"].to(run.device), int(partial["step"])
                loss_sum, seconds_before = float(partial["loss_sum"]), float(partial["seconds"])
            else:
                perm = torch.randperm(n, generator=run.gens["shuffle"], device=run.device)
                first_step, loss_sum, seconds_before = 0, 0.0, 0.0
            lr_now = run.opt.param_groups[0]["lr"]
            loss_sum = _epoch_steps(run, fmodel, fit, perm, first_step, loss_sum, stop=stop, bar=bar,
                                    on_step=on_step, channels_last=channels_last,
                                    clock=(t_epoch, seconds_before))
            run.sched.step()
            seconds = seconds_before + time.perf_counter() - t_epoch
            run.train_seconds += seconds
            entry = {"epoch": run.epoch + 1, "lr": lr_now, "loss": loss_sum / steps_per_epoch,
                     "seconds": round(seconds, 3)}
            if curve_images and group.is_main:
                t_curve = time.perf_counter()
                with torch.random.fork_rng(devices=[run.device] if run.device.type == "cuda" else []):
                    entry["curve"] = _curve_point(run.model, test_float, eps=config.eps, images=curve_images,
                                                  seed=config.seed, train=train_split)
                entry["curve_seconds"] = round(time.perf_counter() - t_curve, 3)
            run.history.append(entry)
            run.world_sizes.append(group.world_size)
            run.epoch += 1
            run.checkpoint()
            # asked during the epoch's last step, its curve or its checkpoint (on any rank)
            if (signum := group.agree_stop(stop.signum, run.device)) is not None:
                what = ("evaluation not started: run the same command again to evaluate it"
                        if run.epoch == config.epochs else "run the same command again to resume")
                raise TrainingStopped(f"{config.label()}: stopped by {signal.Signals(signum).name} after epoch "
                                      f"{run.epoch}/{config.epochs}; checkpoint {run.ckpt_file} — {what}", signum)


def _epoch_steps(run: _Run, fmodel, fit, perm: torch.Tensor, first_step: int, loss_sum: float, *,
                 stop: StopRequest, bar, on_step, channels_last: bool, clock: tuple[float, float]) -> float:
    """The optimiser steps of epoch ``run.epoch + 1`` from ``first_step`` in the order ``perm``;
    returns the epoch's loss sum (``loss_sum`` being that of the steps before ``first_step``).
    ``clock``: when this session started the epoch (``time.perf_counter()``) and the epoch's
    seconds in earlier sessions.
    A non-finite loss raises :class:`TrainingDiverged`; a stop request writes the checkpoint
    inside the epoch after the step in progress and raises :class:`TrainingStopped`."""
    config, group = run.config, run.group
    x_fit, y_fit = fit
    bs, steps_per_epoch = config.batch_size, run.steps_per_epoch
    epoch = run.epoch
    loss_fn = rlosses.LOSSES[config.method]
    params = dict(config.params)
    summed = config.fidelity == "released"   # losses summed over the batch (else its mean)
    pad = AUGMENT_PAD[config.dataset]
    check_every = 1 if run.device.type == "cpu" else 50
    lr_now = run.opt.param_groups[0]["lr"]
    pending: list[torch.Tensor] = []
    first_pending = first_step
    last = steps_per_epoch - 1
    for step in range(first_step, steps_per_epoch):
        idx = perm[step * bs:(step + 1) * bs]
        xb = make_batch(x_fit, idx, pad, run.gens["augment"], channels_last, device=run.device)
        xb, yb = group.shard(xb), group.shard(y_fit[idx])     # this rank's share
        weight = group.loss_weight(len(yb), len(idx), summed)
        loss = train_step(fmodel, run.opt, loss_fn, xb, yb, eps=config.eps,
                          fidelity=config.fidelity, params=params, amp=config.precision == "bf16",
                          loss_scale=group.world_size * weight)
        pending.append(loss if weight == 1.0 else loss * weight)
        signum = None     # a stop the ranks agreed on at this step's check
        if len(pending) >= check_every or step == last or (stop.requested and group.world_size == 1):
            values = group.sum(torch.stack(pending)).double().cpu()
            bad = (~torch.isfinite(values)).nonzero()
            if len(bad):
                at = first_pending + int(bad[0])
                raise TrainingDiverged(
                    f"non-finite training loss ({values[int(bad[0])].item()}) at epoch "
                    f"{epoch + 1}/{config.epochs}, step {at + 1}/{steps_per_epoch} "
                    f"(method {config.method}, params {params}, lr {lr_now:g}, fidelity "
                    f"{config.fidelity}); run stopped, last good checkpoint is epoch {epoch} "
                    f"({run.ckpt_file}). Try a smaller learning rate.")
            loss_sum += values.sum().item()
            first_pending = step + 1
            pending = []
            bar.set_postfix(epoch=epoch + 1, loss=f"{values[-1].item():.4g}", refresh=False)
            signum = group.agree_stop(stop.signum, run.device)
        bar.update(1)
        if on_step is not None:
            on_step(epoch, step)
        if signum is not None and step < last:     # (the last step ends the epoch: stopped after it)
            run.checkpoint({"step": step + 1, "steps_per_epoch": steps_per_epoch, "perm": perm.cpu(),
                            "loss_sum": loss_sum, "seconds": round(clock[1] + time.perf_counter() - clock[0], 3)})
            raise TrainingStopped(
                f"{config.label()}: stopped by {signal.Signals(signum).name} in epoch {epoch + 1}/{config.epochs} "
                f"after step {step + 1}/{steps_per_epoch}; checkpoint {run.ckpt_file} — run the same command "
                "again to resume from that step", signum)
    return loss_sum


def _processes(world_sizes: list[int], group: rdist.Group = rdist.SINGLE) -> dict:
    """Provenance of the processes that trained a run: ``world_size`` (the last session's),
    with ``world_size_by_epoch`` when epochs were trained with different numbers."""
    out = {**group.provenance(), "world_size": world_sizes[-1] if world_sizes else group.world_size}
    if len(set(world_sizes)) > 1:
        out["world_size_by_epoch"] = world_sizes
    return out


def _relative_checkpoint(path: Path, checkpoint_dir) -> str:
    """The checkpoint's name relative to its checkpoint directory: a record means the same on
    every clone and holds no machine path."""
    try:
        return Path(path).resolve().relative_to(Path(checkpoint_dir).resolve()).as_posix()
    except ValueError:
        return Path(path).name


#: AutoAttack's configurations, costliest first: the share of a data-parallel run's evaluation
#: that ranks 1, 2, … measure while rank 0 measures the rest (the clean and Lipschitz columns,
#: PGD-10, MT and any configuration left over).  On a robust model AutoAttack's standard
#: configuration is most of the evaluation: 20 of released GR CNN1's 27 minutes.
SHARED_ATTACKS = ("aa", "aa-apgd")


def autoattack_shares(attacks: tuple[str, ...], world_size: int) -> dict[int, str]:
    """Which AutoAttack configuration of ``attacks`` each rank > 0 of ``world_size`` processes
    measures for rank 0: ``{rank: attack}``, the costliest on rank 1 (empty in one process)."""
    shared = [a for a in SHARED_ATTACKS if a in attacks]
    return dict(zip(range(1, world_size), shared))


def _eval_layout(model: torch.nn.Module, channels_last: bool) -> torch.nn.Module:
    return model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format).eval()


def _measure_share(config: TrainConfig, model: torch.nn.Module, test_split, *, attack: str | None,
                   plan: rmetrics.EvalPlan, channels_last: bool, group: rdist.Group, channel) -> None:
    """Rank > 0 of a data-parallel run: the per-example flags of its AutoAttack configuration
    (:func:`rll.metrics.autoattack_flags`, None if it has none) on rank 0's model, sent to rank 0."""
    flags = None
    if attack is not None:
        x_te, y_te, _ = test_split
        model = _eval_layout(model, channels_last)
        device = next(model.parameters()).device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            flags = rmetrics.autoattack_flags(model, (rdata.to_float(x_te), y_te), attack, eps=config.eps,
                                              plan=plan, seed=config.seed)
    group.gather(flags, channel)


class _SharedAutoAttack:
    """Rank 0's side of :func:`_measure_share`: the flags the other ranks measured, received
    (all at once) the first time :func:`rll.metrics.evaluate` asks for one of them."""

    def __init__(self, group: rdist.Group, channel, shares: dict[int, str]):
        self.group, self.channel, self.rank_of = group, channel, {a: r for r, a in shares.items()}
        self.received: list | None = None

    def __call__(self, attack: str) -> dict | None:
        if attack not in self.rank_of:
            return None
        self.receive(waiting_for=attack)
        return self.received[self.rank_of[attack]]

    def receive(self, waiting_for: str | None = None) -> None:
        if self.received is None:
            if waiting_for is not None:
                print(f"waiting for process {self.rank_of[waiting_for]}'s {waiting_for} "
                      f"(AutoAttack {rmetrics.AUTOATTACK_OF[waiting_for]}) …", file=sys.stderr, flush=True)
            self.received = self.group.gather(None, self.channel)

    def provenance(self) -> dict:
        """Which rank measured each shared configuration."""
        return {"evaluation_ranks": dict(sorted(self.rank_of.items()))}


def _evaluate_and_store(config: TrainConfig, store: ResultsStore, model: torch.nn.Module, train_split,
                        test_split, *, attacks: tuple[str, ...], plan: rmetrics.EvalPlan,
                        device: torch.device, progress: bool, started: float, t0: float, extra: dict,
                        epochs_done: int, channels_last: bool = False,
                        elsewhere: _SharedAutoAttack | None = None) -> dict:
    """Evaluate ``model`` with every attack (:func:`rll.metrics.evaluate`) and store one record
    per attack; return ``config``'s.  ``channels_last``: the model in channels-last memory format
    (a speed option: on trained CNN1/CNN2 every accuracy of every attack came out identical and the
    Lipschitz estimates within 0.12 %, ten times less than another random start moves them;
    ``benchmarks/eval_layout.py``), recorded in the provenance as ``eval_channels_last``.
    ``elsewhere``: the AutoAttack flags other ranks of a data-parallel run measure
    (:func:`autoattack_shares`), recorded in the provenance as ``evaluation_ranks``."""
    x_tr, y_tr, note_tr = train_split
    x_te, y_te, note_te = test_split
    model = _eval_layout(model, channels_last)
    t_eval = time.perf_counter()
    info = rdata.DATASET_INFO[config.dataset]
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        by_attack = rmetrics.evaluate(model, (rdata.to_float(x_tr), y_tr), (rdata.to_float(x_te), y_te),
                                      eps=config.eps, attacks=attacks, plan=plan, seed=config.seed,
                                      num_classes=info.num_classes, device=device, progress=progress,
                                      measured_elsewhere=elsewhere)
    if elsewhere is not None:
        elsewhere.receive()      # the other ranks wait for this even when no attack asked
        extra = {**extra, **elsewhere.provenance()}
    history = extra.get("history") or []
    notes = {k: v for k, v in (("train", note_tr), ("test", note_te)) if v}
    prov = _provenance(device, started, time.perf_counter() - t0, epochs_done,
                       eval_seconds=round(time.perf_counter() - t_eval, 3),
                       n_train=len(y_tr), n_test=len(y_te), evaluation=plan.as_dict(), eval_channels_last=channels_last,
                       fidelity_revision=rlosses.FIDELITY_REVISION, **extra,
                       **({"data_notes": notes} if notes else {}))
    for attack, metrics in by_attack.items():
        if history:
            metrics["final_train_loss"] = history[-1]["loss"]
        store.put(config.replace(attack=attack), metrics, prov)
    record = store.get(config)
    if record is None:  # pragma: no cover — the store just wrote it
        raise RuntimeError(f"record of {config.label()} could not be read back from {store.root}")
    record["path"] = str(store.path(config))
    return record


def evaluate(config: TrainConfig, checkpoint: str | os.PathLike | None = None, *,
             data_root: str | os.PathLike | None = None, results_dir: str | os.PathLike | None = None,
             checkpoint_dir: str | os.PathLike = "checkpoints", device: str | torch.device | None = None,
             progress: bool = True, attacks: tuple[str, ...] | None = None,
             eval_plan: rmetrics.EvalPlan | None = None, eval_batch_size: int = 512,
             checksums: Mapping[str, str] | None = None, channels_last: bool = False) -> dict:
    """Evaluate a finished run's checkpoint under ``config`` (e.g. with ``attack="mt"`` or
    another ``test_size``) and store the records under ``config`` and each of ``attacks``
    (default ``(config.attack,)``), measured as ``eval_plan`` says (see :func:`train`), the model
    in channels-last memory format with ``channels_last`` (a speed option, as in :func:`train`).

    ``checkpoint`` defaults to ``config``'s file in ``checkpoint_dir``.  The checkpoint must
    hold the same training configuration (only :data:`EVAL_ONLY_FIELDS` may differ) and be
    complete (``config.epochs`` epochs); otherwise :class:`CheckpointMismatch` is raised.
    ``checksums`` overrides the dataset's official md5s as in :func:`train`.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    attacks = _check_attacks(config, attacks)
    plan = eval_plan if eval_plan is not None else rmetrics.EvalPlan(batch_size=eval_batch_size)
    rdata.check_checksums(config.dataset, checksums)
    started, t0 = time.time(), time.perf_counter()
    device = resolve_device(device)
    model, ckpt, path = load_trained_model(config, checkpoint, checkpoint_dir=checkpoint_dir, device=device)
    train_split = load_split(config, "train", config.train_size, 0, data_root, device, checksums)
    test_split = load_split(config, config.test_split, config.test_size, 1, data_root, device, checksums)
    return _evaluate_and_store(config, ResultsStore(_results_folder(results_dir)), model, train_split, test_split,
                               attacks=attacks, plan=plan, device=device, progress=progress,
                               started=started, t0=t0,
                               extra={"train_seconds": ckpt.get("train_seconds"),
                                      "checkpoint": _relative_checkpoint(path, checkpoint_dir),
                                      "evaluated_from_checkpoint": True,
                                      "history": list(ckpt.get("history", [])),
                                      **_processes(list(ckpt.get("world_sizes", [1] * int(ckpt["epoch"]))))},
                               epochs_done=int(ckpt["epoch"]), channels_last=channels_last)


__all__ = ["train", "evaluate", "TrainingDiverged", "check_curve_images", "CURVE_TRAIN_IMAGES", "SHARED_ATTACKS",
           "autoattack_shares"]
