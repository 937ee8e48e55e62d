"""Trained models out of their checkpoints: load one for evaluation, its test split, and pack several
into one file to share — finished models as weights, unfinished trainings as resumable
checkpoints."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import torch

from rll import data as rdata
from rll import models as rmodels
from rll.config import TrainConfig
from rll.store import atomic_write_bytes
from rll.training.checkpoint import CheckpointMismatch, checkpoint_path, load_checkpoint
from rll.training.loop import load_split, resolve_device


def pack_models(checkpoint_dir: str | os.PathLike, out: str | os.PathLike, *,
                max_mib: float | None = None) -> tuple[Path, int]:
    """Pack every *finished* training of ``checkpoint_dir`` (all its epochs done) into one file:
    ``{checkpoint file name: {"config": training configuration, "model": weights}}``, without
    optimiser and random-number states (a trained model, not a resumable run), saved
    atomically with ``torch.save``; readable with ``torch.load(weights_only=True)``.  Raises
    ``ValueError`` naming the size if it exceeds ``max_mib``.  Returns (path, models packed)."""
    import io

    packed = {}
    for path in sorted(Path(checkpoint_dir).glob("*.pt")):
        try:
            ckpt = load_checkpoint(path)
        except CheckpointMismatch:
            continue
        if int(ckpt["epoch"]) == int(ckpt["config"]["epochs"]):
            packed[path.name] = {"config": ckpt["config"], "model": ckpt["model"]}
    buf = io.BytesIO()
    torch.save(packed, buf)
    if max_mib is not None and buf.tell() > max_mib * 2**20:
        raise ValueError(f"{len(packed)} models take {buf.tell() / 2**20:.1f} MiB, more than --max-mib {max_mib}")
    return atomic_write_bytes(Path(out), buf.getvalue()), len(packed)


def _progress(ckpt: dict) -> float:
    """The fraction of its epochs an unfinished checkpoint has trained (steps of a stopped epoch
    included)."""
    partial = ckpt.get("partial") or {}
    done = int(ckpt["epoch"]) + (partial["step"] / partial["steps_per_epoch"] if partial else 0.0)
    return done / int(ckpt["config"]["epochs"])


def pack_unfinished(checkpoint_dir: str | os.PathLike, out: str | os.PathLike, *,
                    max_mib: float) -> tuple[Path, list[str], list[str]]:
    """Pack the *unfinished* trainings of ``checkpoint_dir`` — whole checkpoint files, optimiser
    and random-number states included, so each resumes where it stopped (at the step, for one
    stopped inside an epoch: :mod:`rll.training.stop`) — into one uncompressed tar at ``out``,
    written atomically: the most advanced first (:func:`_progress`), each that still fits in
    ``max_mib``.  Unpack the tar into a checkpoint directory and run the same command to resume
    them.  Returns (path, file names packed, file names left out for the size)."""
    import io
    import tarfile

    unfinished = []
    for path in sorted(Path(checkpoint_dir).glob("*.pt")):
        try:
            ckpt = load_checkpoint(path)
        except CheckpointMismatch:
            continue
        if int(ckpt["epoch"]) < int(ckpt["config"]["epochs"]):
            unfinished.append((-_progress(ckpt), path.name, path))
    packed, left_out, size = [], [], 0
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for _, name, path in sorted(unfinished):
            entry = path.stat().st_size + 1024      # the file, its header and padding
            if size + entry > max_mib * 2**20:
                left_out.append(name)
                continue
            tar.add(path, arcname=name)
            packed.append(name)
            size += entry
    return atomic_write_bytes(Path(out), buf.getvalue()), packed, left_out


def load_trained_model(config: TrainConfig, checkpoint: str | os.PathLike | None = None, *,
                       checkpoint_dir: str | os.PathLike = "checkpoints",
                       device: str | torch.device | None = None) -> tuple[torch.nn.Module, dict, Path]:
    """The finished model of ``config``'s training, in eval mode on ``device``, with its
    checkpoint and the checkpoint's path.  ``checkpoint`` defaults to ``config``'s file in
    ``checkpoint_dir``; it must hold ``config``'s training (only :data:`EVAL_ONLY_FIELDS` may
    differ) and all ``config.epochs`` epochs, else :class:`CheckpointMismatch`."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    path = Path(checkpoint) if checkpoint is not None else checkpoint_path(config, checkpoint_dir)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: train {config.label()} first "
                                "(python -m rll train ...) or pass --checkpoint")
    ckpt = load_checkpoint(path, config)
    if int(ckpt["epoch"]) != config.epochs:
        raise CheckpointMismatch(f"checkpoint {path} holds epoch {ckpt['epoch']} of {config.epochs}: "
                                 "finish the training first (python -m rll train resumes it)")
    info = rdata.DATASET_INFO[config.dataset]
    model = rmodels.build_model(config.model, num_classes=info.num_classes, in_channels=info.shape[0],
                                dropout=config.dropout, fidelity=config.fidelity)
    model.load_state_dict(ckpt["model"])
    return model.to(resolve_device(device)).eval(), ckpt, path


def load_test_split(config: TrainConfig, *, data_root: str | os.PathLike | None = None,
                    device: str | torch.device = "cpu", checksums: Mapping[str, str] | None = None):
    """The evaluation images (float in [0, 1]) and labels of ``config``: its test split, or
    the same seeded ``test_size`` subset every evaluation of ``config`` uses."""
    x, y, _ = load_split(config, config.test_split, config.test_size, 1, data_root, torch.device(device), checksums)
    return rdata.to_float(x), y


__all__ = ["pack_models", "pack_unfinished", "load_trained_model", "load_test_split"]
