"""Per-epoch checkpoints: where they live, what they hold (model, optimiser, scheduler, every RNG
state, the training configuration), and where a run starts — its own checkpoint, or a shorter
run's whose epochs are its first."""
from __future__ import annotations

import os
import statistics
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

import torch

from rll import losses as rlosses
from rll.config import TrainConfig, lr_by_epoch
from rll.losses import is_current
from rll.store import ResultsStore, atomic_write_bytes, config_stem

CHECKPOINT_FORMAT = 1


class CheckpointMismatch(ValueError):
    """A checkpoint belongs to another training configuration (or is not a checkpoint)."""


def checkpoint_path(config: TrainConfig, checkpoint_dir: str | os.PathLike) -> Path:
    """Checkpoint file of ``config``'s training (shared by configs differing only in
    evaluation fields)."""
    return Path(checkpoint_dir) / f"{config_stem(config.training_canonical())}.pt"


def scheduler_state(scheduler) -> dict:
    sd = dict(scheduler.state_dict())
    sd["milestones"] = {int(k): int(v) for k, v in sd["milestones"].items()}
    return sd


def load_scheduler_state(scheduler, sd: dict) -> None:
    sd = dict(sd)
    sd["milestones"] = Counter({int(k): int(v) for k, v in sd["milestones"].items()})
    scheduler.load_state_dict(sd)


def set_scheduled_lr(opt, sched) -> None:
    """Set each parameter group's learning rate to what ``sched`` gives after its
    ``last_epoch`` steps: the base rate times γ once for each milestone passed, multiplied in the
    order :class:`~torch.optim.lr_scheduler.MultiStepLR` applies them, so the rate is bitwise the
    one a run from scratch reaches.  A checkpoint of a shorter run is resumed with this run's
    milestones; a decay at the shorter run's last epoch (the table budget's 40 epochs extended on
    the paper's schedule, whose first decay comes after epoch 40) never acted in it, and without
    this the longer run would go on at the undecayed rate."""
    for group, base in zip(opt.param_groups, sched.base_lrs):
        lr = base
        for milestone in sorted(sched.milestones):
            if milestone <= sched.last_epoch:
                lr = lr * sched.gamma ** sched.milestones[milestone]
        group["lr"] = lr
    sched._last_lr = [group["lr"] for group in opt.param_groups]


def rng_state(device: torch.device, gens: dict[str, torch.Generator]) -> dict:
    """Every random state a run draws from: torch's (and CUDA's), the run's generators, and the
    kind of device they belong to (``device``)."""
    state = {"torch": torch.get_rng_state(), "device": device.type}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    for name, g in gens.items():
        state[name] = g.get_state()
    return state


def checkpoint_device(state: dict, gens: dict[str, torch.Generator]) -> str:
    """The kind of device (``cpu``, ``cuda``) whose random states ``state`` holds: as written, or,
    for checkpoints written before it was, the device of this run's generators when their saved
    states fit them and the other kind when they do not (a CPU generator's state is 5 056 bytes,
    a CUDA generator's 16)."""
    if "device" in state:
        return state["device"]
    here = next(iter(gens.values())).device.type if gens else "cpu"
    fits = all(state[name].numel() == g.get_state().numel() for name, g in gens.items())
    return here if fits else ("cpu" if here == "cuda" else "cuda")


def set_rng_state(state: dict, device: torch.device, gens: dict[str, torch.Generator], *,
                  seed: int = 0, position: tuple[int, int] = (0, 0)) -> str | None:
    """Put a checkpoint's random states back.  A checkpoint written on another kind of device (a
    CUDA run resumed on the CPU, or the reverse) holds states this device's generators cannot
    take: the run's generators (and CUDA's) are then seeded afresh from ``seed`` and ``position``
    (epoch, step), deterministically — the run goes on with other random draws than it would
    have had (rll's choice) — and the checkpoint's device is returned (else None)."""
    torch.set_rng_state(state["torch"])
    written_on = checkpoint_device(state, gens)
    if written_on == device.type:
        if device.type == "cuda" and "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"], device)
        for name, g in gens.items():
            g.set_state(state[name])
        return None
    epoch, step = position
    for salt, g in enumerate(gens.values()):
        g.manual_seed(_moved_seed(seed, salt, epoch, step))
    if device.type == "cuda":
        torch.cuda.manual_seed(_moved_seed(seed, len(gens), epoch, step))
    else:
        torch.manual_seed(_moved_seed(seed, len(gens), epoch, step))
    return written_on


def _moved_seed(seed: int, salt: int, epoch: int, step: int) -> int:
    """The seed of stream ``salt`` of a run moved to another kind of device at (epoch, step)."""
    return ((seed * 1_000_003 + 211 + salt) * 1_009 + epoch) * 1_000_033 + step


def load_checkpoint(path: str | os.PathLike, config: TrainConfig | None = None) -> dict:
    """Load a checkpoint (``weights_only=True``) and, given ``config``, check that it was written
    for ``config``'s training; raises :class:`CheckpointMismatch` otherwise."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 — torn file, pickle refused, not a checkpoint
        raise CheckpointMismatch(f"cannot read checkpoint {path}: {err}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT or "config" not in ckpt:
        raise CheckpointMismatch(f"{path} is not an rll training checkpoint (format {CHECKPOINT_FORMAT})")
    if config is not None:
        want, have = config.training_canonical(), ckpt["config"]
        if have != want:
            diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
            shown = "; ".join(f"{k}: checkpoint {have.get(k)!r} vs requested {want.get(k)!r}" for k in diff)
            raise CheckpointMismatch(
                f"checkpoint {path} was written for a different training configuration ({shown}); "
                "refusing to resume from it — remove it or choose another checkpoint directory")
    return ckpt


def _same_prefix(shorter: Mapping[str, Any], longer: Mapping[str, Any], epochs: int) -> bool:
    """Whether the first ``epochs`` epochs of ``longer`` are exactly ``shorter``'s: every training
    field equal except the length and the milestones, and the same learning rate in each epoch."""
    rest = {k for k in set(shorter) | set(longer) if k not in ("epochs", "milestones")}
    return (all(shorter.get(k) == longer.get(k) for k in rest)
            and lr_by_epoch(shorter, epochs) == lr_by_epoch(longer, epochs))


def _current_checkpoint(ckpt: dict, older_record: bool = False) -> bool:
    """A checkpoint of the current fidelity revision.  One written before checkpoints named
    their revision is taken as current unless the store's record of the same run is older
    (``older_record``): then it is that older run's."""
    if "fidelity_revision" not in ckpt:
        return not older_record
    return rlosses.is_current_revision(ckpt["fidelity_revision"], ckpt.get("config", {}))


def _older_record(store: ResultsStore, config: TrainConfig) -> bool:
    record = store.get(config)
    return record is not None and not is_current(record)


def seconds_left(ckpt: dict, epochs: int, *, window: int = 5) -> float | None:
    """Seconds of training a checkpoint still needs to reach ``epochs`` at the pace of its last
    ``window`` epochs (the median of their seconds, learning-curve points included), less the part
    of the next epoch a stop inside it (``partial``) has done; None without a finished epoch."""
    recent = [h["seconds"] + h.get("curve_seconds", 0.0) for h in ckpt.get("history", [])[-window:]]
    if not recent:
        return None
    pace = statistics.median(recent)
    left = epochs - int(ckpt["epoch"])
    if (partial := ckpt.get("partial")) is not None:
        left -= partial["step"] / partial["steps_per_epoch"]
    return max(0.0, left * pace)


def start_point(config: TrainConfig, checkpoint_dir: str | os.PathLike,
                store: ResultsStore) -> tuple[dict | None, Path | None]:
    """Where training ``config`` starts: ``(its own checkpoint, None)`` — finished or not —
    unless it was written under an older meaning of the fidelities (:func:`_current_checkpoint`;
    the store's record of the run tells an unnamed one's age); else ``(a shorter run's
    checkpoint, its path)`` (:func:`shorter_checkpoint`); else ``(None, None)``, from scratch.
    Raises :class:`CheckpointMismatch` if its own checkpoint is another configuration's."""
    own = checkpoint_path(config, checkpoint_dir)
    if own.exists():
        ckpt = load_checkpoint(own, config)
        if _current_checkpoint(ckpt, older_record=_older_record(store, config)):
            return ckpt, None
    shorter = shorter_checkpoint(config, checkpoint_dir)
    return (shorter[1], shorter[0]) if shorter is not None else (None, None)


def shorter_checkpoint(config: TrainConfig, checkpoint_dir: str | os.PathLike) -> tuple[Path, dict] | None:
    """The checkpoint of a shorter run whose epochs are the first epochs of ``config``'s — same
    model, data, method, seed and learning rate in every epoch it trained (:func:`_same_prefix`)
    — with the most epochs, or None.  Training ``config`` from it gives the same weights as
    training from scratch (the shuffling and augmentation generators are saved with it), so a
    run one epoch longer than a finished one costs one epoch: that is how
    :func:`rll.analysis.budget.converged` tests whether a run has flattened at its final rate."""
    want = config.training_canonical()
    prefix = config_stem(want).rsplit("-", 1)[0]
    best = None
    for path in sorted(Path(checkpoint_dir).glob(f"{prefix}-*.pt")):
        if path == checkpoint_path(config, checkpoint_dir):
            continue
        try:
            ckpt = load_checkpoint(path)
        except CheckpointMismatch:
            continue
        done = int(ckpt.get("epoch", 0))
        if "partial" in ckpt:          # stopped inside an epoch: only its own run resumes it
            continue
        if 0 < done < config.epochs and _current_checkpoint(ckpt) and _same_prefix(ckpt["config"], want, done) and (
                best is None or done > best[1]["epoch"]):
            best = (path, ckpt)
    return best


def save_checkpoint(path: Path, payload: dict, write: bool = True) -> None:
    """Write ``payload`` to ``path`` atomically (``write=False``: a data-parallel rank > 0,
    which writes nothing)."""
    import io

    if not write:
        return
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


__all__ = ["CHECKPOINT_FORMAT", "CheckpointMismatch", "checkpoint_path", "load_checkpoint", "save_checkpoint", "start_point", "shorter_checkpoint", "scheduler_state", "load_scheduler_state", "set_scheduled_lr", "rng_state", "set_rng_state", "checkpoint_device", "seconds_left"]
