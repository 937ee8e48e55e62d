"""Training runs of the paper's Section 5 (Tables 2–4, 9–14): one configuration object, one loop.

:class:`TrainConfig` is the single source of truth for a run: the command line, the notebooks
and :mod:`rll.experiments` build it, it validates itself before any tensor is touched, and its
:meth:`~TrainConfig.canonical` dict (sorted keys, every default filled) is the key of the run's
record in :class:`rll.store.ResultsStore`.  :func:`train` runs it: seeded, resumable from a
per-epoch checkpoint to the same result, and finished by the paper's table columns
(:func:`rll.metrics.table_metrics`) written to the results store.

Schedules (Appendix A, Table 5, and the released code as run; MultiStepLR with γ = 0.1, no
weight decay):

===========  =========  =====  ================================  ========  =====  ======  ===============
dataset      model      opt.   lr (released, summed loss)        momentum  batch  epochs  milestones
===========  =========  =====  ================================  ========  =====  ======  ===============
mnist        cnn1/cnn2  SGD    1e-4                              0.9       64     160     40, 80, 120, 140
svhn         wrn-40-10  SGD    1e-2 (1e-3 for at, rst, llr)      0         64     60      30, 50
cifar10      wrn-40-10  SGD    1e-2 (1e-3 for rst)               0         64     120     40, 80, 100
resimagenet  resnet50   Adam   1e-2                              –         128    70      40, 60
===========  =========  =====  ================================  ========  =====  ======  ===============

**Learning rate and the loss reduction.**  The released code *summed* every loss over the batch,
and the learning rates above are the ones it ran with.  In ``fidelity="paper"`` our losses are
the batch **mean** (the expectation the appendix writes), whose gradient is 1/B times the
summed loss's.  Plain SGD and SGD with momentum are linear in the gradient, so the mean-loss
run takes exactly the released run's steps when its learning rate is B times larger:

    lr_paper = lr_released × batch_size          (SGD; e.g. MNIST 1e-4 × 64 = 6.4e-3)

and that is the default here.  (The one exception is the last, smaller batch of an epoch, with
b < B examples: the mean weights each of its examples by 1/b instead of the sum's 1/B.)  Adam
normalises the gradient by its running RMS, so scaling the loss leaves its steps unchanged (up
to its ε = 1e-8): for Adam (Restricted ImageNet) the released rate is used as is.  In
``fidelity="released"`` the losses are summed and the table's rates are used unchanged.  An
explicit ``lr`` is always the optimiser's rate as given, and ``canonical()["lr"]`` is always the
rate the optimiser actually used.  Using the paper's *nominal* 1e-4 with a mean loss would
train MNIST 64 times more slowly than the paper's runs did.

**Shortened runs.**  ``epochs`` may be overridden; unless the milestones are given explicitly,
``fidelity="released"`` then takes them from the released code's rule, which picks a fixed list
by epoch bucket whatever the dataset (:func:`released_milestones`: e.g. ≤ 20 epochs → 10, 15;
≤ 120 → 40, 80, 100), dropping those at or after the last epoch (they never act), and
``fidelity="paper"`` scales the paper's milestones proportionally (rounded, kept strictly
increasing and inside 1 … epochs − 1).  The paper states only its full schedules, so the
proportional scaling is rll's choice (it keeps the paper's shape: the first quarter at the full
rate).

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
point resumes from the last completed epoch to the same result (bitwise on the CPU).  The
evaluation is seeded separately (``table_metrics(seed=seed)``), so re-evaluating the final
checkpoint reproduces the record.

>>> cfg = TrainConfig.from_paper("mnist", "cnn2", "trades", beta=6.0, epochs=10)
>>> cfg.lr, cfg.milestones            # 1e-4 × 64, and 40/80/120/140 scaled to 10 epochs
(0.0064, (3, 5, 8, 9))
>>> record = train(cfg)               # doctest: +SKIP
>>> record["metrics"]["adv_test_acc"] # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import math
import os
import platform
import re
import socket
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F

from rll import __version__
from rll import data as rdata
from rll.training import distributed as rdist
from rll import losses as rlosses
from rll import metrics as rmetrics
from rll import models as rmodels
from rll.store import ResultsStore, atomic_write_bytes, config_hash, config_stem, device_name, git_commit

__all__ = ["TrainConfig", "train", "evaluate", "SCHEDULES", "DATASET_MODELS", "FIDELITIES",
           "ATTACKS", "OPTIMIZERS", "CheckpointMismatch", "TrainingDiverged", "RunClaimed",
           "released_lr", "released_milestones", "scale_milestones", "checkpoint_path", "load_checkpoint",
           "augment_batch", "make_batch", "train_step", "subset_indices", "resolve_device",
           "load_trained_model", "load_test_split", "pack_models"]

FIDELITIES = ("paper", "released")
ATTACKS = tuple(rmetrics.ATTACKS)
OPTIMIZERS = ("sgd", "adam")
LR_DECAY = 0.1  # MultiStepLR γ
CHECKPOINT_FORMAT = 1

#: Models that fit each dataset's inputs (``wrn-D-W``: any wide ResNet with (D − 4) % 6 == 0).
DATASET_MODELS: dict[str, tuple[str, ...]] = {
    "mnist": ("cnn1", "cnn2"),
    "svhn": ("wrn-D-W",),
    "cifar10": ("wrn-D-W",),
    "resimagenet": ("resnet50",),
}
_WRN = re.compile(r"^wrn-(\d+)-(\d+)$")


@dataclass(frozen=True)
class _Schedule:
    optimizer: str
    lr: float                     # as run by the released code (summed loss)
    momentum: float
    batch_size: int
    epochs: int
    milestones: tuple[int, ...]
    lr_by_method: Mapping[str, float] = field(default_factory=dict)


#: The schedules as run (official-code notes, "Schedules as run"; Appendix A, Table 5).
SCHEDULES: dict[str, _Schedule] = {
    "mnist": _Schedule("sgd", 1e-4, 0.9, 64, 160, (40, 80, 120, 140)),
    "svhn": _Schedule("sgd", 1e-2, 0.0, 64, 60, (30, 50), {"at": 1e-3, "rst": 1e-3, "llr": 1e-3}),
    "cifar10": _Schedule("sgd", 1e-2, 0.0, 64, 120, (40, 80, 100), {"rst": 1e-3}),
    "resimagenet": _Schedule("adam", 1e-2, 0.0, 128, 70, (40, 60)),
}

#: Random-crop padding of the training augmentation (CIFAR-10: crop + horizontal flip; Restricted
#: ImageNet: crop of the resized image, no flip); None: no augmentation.
AUGMENT_PAD: dict[str, int | None] = {"mnist": None, "svhn": None, "cifar10": 4, "resimagenet": 8}
#: Datasets trained on resized, uncropped images (:func:`rll.data.load_resized_train`), cropped per batch.
RESIZED_TRAIN = ("resimagenet",)
RESIZED_CROP = 64   # the crop size of those datasets (their DATASET_INFO shape)

#: Fields that only affect evaluation: runs differing in these share one checkpoint.
EVAL_ONLY_FIELDS = ("attack", "test_size", "test_split")
#: Fields (with their default) that enter the store key only when set to another value.
OPTIONAL_FIELDS = {"train_with_test": False, "precision": "fp32"}


class CheckpointMismatch(ValueError):
    """A checkpoint belongs to another training configuration (or is not a checkpoint)."""


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; the run was stopped."""


class RunClaimed(RuntimeError):
    """Another live worker holds the claim on this configuration."""


def _choices(name: str, value: Any, valid) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid choices: {', '.join(map(str, valid))}")


def released_lr(dataset: str, method: str) -> float:
    """The learning rate the released code ran ``method`` on ``dataset`` with (summed loss)."""
    sched = SCHEDULES[dataset]
    return sched.lr_by_method.get(method, sched.lr)


#: The released ``get_scheduler``'s milestones by epoch bucket: (largest epoch count, milestones).
RELEASED_MILESTONES: tuple[tuple[int | None, tuple[int, ...]], ...] = (
    (20, (10, 15)), (30, (15, 25)), (40, (20, 30)), (50, (25, 40)), (60, (30, 50)), (70, (40, 60)),
    (80, (30, 50, 70)), (120, (40, 80, 100)), (160, (40, 80, 120, 140)), (None, (60, 100, 140, 180)))


def released_milestones(epochs: int) -> tuple[int, ...]:
    """The milestones the released code's ``get_scheduler`` used for a run of ``epochs`` epochs
    (any dataset): the first bucket of :data:`RELEASED_MILESTONES` with ``epochs`` ≤ its bound,
    without the milestones at or after the last epoch (a decay there never acts)."""
    for bound, milestones in RELEASED_MILESTONES:
        if bound is None or epochs <= bound:
            return tuple(m for m in milestones if m <= epochs - 1)
    raise AssertionError("unreachable")  # pragma: no cover


def scale_milestones(milestones: tuple[int, ...], from_epochs: int, to_epochs: int) -> tuple[int, ...]:
    """Milestones of a ``from_epochs`` schedule scaled to ``to_epochs``: each rounded (half up),
    duplicates dropped, only those in 1 … to_epochs − 1 kept (a decay at or after the last epoch
    would never act)."""
    out: list[int] = []
    for m in milestones:
        s = int(math.floor(m * to_epochs / from_epochs + 0.5))
        if 1 <= s <= to_epochs - 1 and (not out or s > out[-1]):
            out.append(s)
    return tuple(out)


def _check_model(dataset: str, model: str) -> None:
    valid = DATASET_MODELS[dataset]
    m = _WRN.match(model)
    if m and "wrn-D-W" in valid:
        depth = int(m.group(1))
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"invalid wide ResNet {model!r}: depth D must satisfy (D - 4) % 6 == 0 "
                             "and D >= 10 (e.g. wrn-16-4, wrn-28-10, wrn-40-10)")
        if int(m.group(2)) < 1:
            raise ValueError(f"invalid wide ResNet {model!r}: width must be >= 1")
        return
    if model not in valid:
        shown = ", ".join(v if v != "wrn-D-W" else "wrn-D-W (e.g. wrn-40-10, wrn-16-4)" for v in valid)
        raise ValueError(f"unknown model {model!r} for dataset {dataset!r}; valid choices: {shown}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class TrainConfig:
    """One training run.  Schedule fields left as ``None`` are filled from :data:`SCHEDULES`
    for the dataset, method and fidelity (see the module docstring for the learning rate).

    Fields:
        dataset: ``mnist``, ``cifar10``, ``svhn`` or ``resimagenet``.
        model: a model for the dataset (:data:`DATASET_MODELS`): ``cnn1``/``cnn2`` (MNIST),
            ``wrn-D-W`` (SVHN, CIFAR-10), ``resnet50`` (Restricted ImageNet).
        method: ``natural``, ``gr``, ``llr``, ``at``, ``rst`` or ``trades``.
        params: the method's parameters (``rll.losses.METHOD_PARAMS``), e.g. ``{"beta": 6}``;
            stored as sorted ``(name, value)`` pairs with every default filled.
        dropout: dropout rate for ``wrn-D-W``/``resnet50`` (paper: 0.2 CIFAR-10, 0.5 SVHN);
            must be 0 for the CNNs (they have their sources' fixed dropout).
        epochs, milestones, lr, momentum, optimizer, batch_size: the schedule.
        eps: l∞ radius for training and evaluation (default: the dataset's, Table 5).
        seed: seeds the model's initialisation, shuffling, augmentation, attacks, subsets
            and the evaluation's random starts.
        fidelity: ``paper`` (the method as the paper describes it; mean losses) or
            ``released`` (as the authors' code ran it; summed losses and the other
            differences listed in :mod:`rll.losses` and :mod:`rll.models`).
        attack: evaluation attack, ``pgd`` (Section 5, Tables 2–4) or ``mt``
            (multi-targeted, Appendix D.1, Tables 9–14).
        train_size, test_size: use a seeded random subset of this many examples (None: all).
        test_split: ``test``, or for cifar10 ``test_partial`` (the first 1017 test images,
            for machines without the full test file; the record carries the data's note).
        train_with_test: also train on the evaluation split (the same ``test_size`` subset
            that is evaluated): the paper's proof-of-concept networks "trained with access to
            the test set" (Appendix B, Table 6).  Default ``False``; it enters
            :meth:`canonical` only when ``True``, so the keys of ordinary runs do not change.
        precision: the training arithmetic (:data:`rll.losses.PRECISIONS`): ``fp32`` (default)
            or ``bf16``, bfloat16 autocast of the training passes — a speed option that changes
            the numbers, so it is part of the run's key (only when ``bf16``: fp32 keys are the
            keys of every earlier record).  Refused, with the measured reason, where it breaks
            the loss (:data:`rll.losses.BF16_REFUSED`: TRADES, GR at a small step h, paper LLR).
            Evaluation is always float32.
    """

    dataset: str
    model: str
    method: str = "natural"
    params: Any = ()
    dropout: float = 0.0
    epochs: int | None = None
    milestones: tuple[int, ...] | None = None
    lr: float | None = None
    momentum: float | None = None
    optimizer: str | None = None
    batch_size: int | None = None
    eps: float | None = None
    seed: int = 0
    fidelity: str = "paper"
    attack: str = "pgd"
    train_size: int | None = None
    test_size: int | None = None
    test_split: str = "test"
    train_with_test: bool = False
    precision: str = "fp32"

    # ------------------------------------------------------------------ construction
    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731  (frozen dataclass)
        _choices("dataset", self.dataset, rdata.DATASETS)
        _check_model(self.dataset, self.model)
        _choices("method", self.method, tuple(rlosses.LOSSES))
        _choices("fidelity", self.fidelity, FIDELITIES)
        _choices("attack", self.attack, ATTACKS)
        splits = tuple(s for s in rdata.DATASET_INFO[self.dataset].splits if s != "train")
        if self.test_split not in splits:
            raise ValueError(f"unknown test_split {self.test_split!r} for {self.dataset}; "
                             f"valid choices: {', '.join(splits)}")
        set_("params", self._normalise_params(self.params))
        rlosses.check_precision(self.method, self.fidelity, self.precision, dict(self.params))

        sched = SCHEDULES[self.dataset]
        if self.optimizer is None:
            set_("optimizer", sched.optimizer)
        _choices("optimizer", self.optimizer, OPTIMIZERS)
        if self.batch_size is None:
            set_("batch_size", sched.batch_size)
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if self.momentum is None:
            set_("momentum", sched.momentum if self.optimizer == sched.optimizer == "sgd" else 0.0)
        if not _is_number(self.momentum) or not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if self.optimizer == "adam" and self.momentum != 0:
            raise ValueError("momentum applies to optimizer 'sgd' only (Adam uses its default betas)")
        set_("momentum", float(self.momentum))
        if self.lr is None:
            lr = released_lr(self.dataset, self.method)
            if self.fidelity == "paper" and self.optimizer == "sgd":
                lr *= self.batch_size   # mean loss: same SGD steps as the summed loss at lr
            set_("lr", float(f"{lr:.12g}"))
        if not _is_number(self.lr) or not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive finite number, got {self.lr!r}")
        set_("lr", float(self.lr))

        if self.epochs is None:
            set_("epochs", sched.epochs)
        if not _is_int(self.epochs) or self.epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {self.epochs!r}")
        if self.milestones is None:
            if self.epochs == sched.epochs:
                set_("milestones", sched.milestones)
            elif self.fidelity == "released":
                set_("milestones", released_milestones(self.epochs))
            else:
                set_("milestones", scale_milestones(sched.milestones, sched.epochs, self.epochs))
        try:
            ms = tuple(self.milestones)
        except TypeError:
            raise ValueError(f"milestones must be a sequence of epochs, got {self.milestones!r}") from None
        if not all(_is_int(m) for m in ms) or any(b <= a for a, b in zip(ms, ms[1:])) or (
                ms and not (1 <= ms[0] and ms[-1] <= self.epochs - 1)):
            raise ValueError(f"milestones must be strictly increasing integers in 1 … "
                             f"{self.epochs - 1} (epochs - 1), got {list(ms)}")
        set_("milestones", ms)

        if self.eps is None:
            set_("eps", rdata.DATASET_INFO[self.dataset].eps)
        if not _is_number(self.eps) or not (self.eps > 0 and math.isfinite(self.eps)):
            raise ValueError(f"eps must be a positive radius, got {self.eps!r}")
        set_("eps", float(self.eps))
        if not _is_number(self.dropout) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        set_("dropout", float(self.dropout))
        if self.dropout and self.model in ("cnn1", "cnn2"):
            raise ValueError(f"{self.model} has its source's fixed dropout; dropout applies to "
                             "wrn-D-W and resnet50 only")
        if not _is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        for name in ("train_size", "test_size"):
            v = getattr(self, name)
            if v is not None and (not _is_int(v) or v < 1):
                raise ValueError(f"{name} must be a positive integer or None (all), got {v!r}")
        if not isinstance(self.train_with_test, bool):
            raise ValueError(f"train_with_test must be True or False, got {self.train_with_test!r}")

    def _normalise_params(self, params: Any) -> tuple[tuple[str, Any], ...]:
        accepted = rlosses.METHOD_PARAMS[self.method]
        if params is None:
            params = {}
        try:
            given = dict(params)
        except (TypeError, ValueError):
            raise ValueError(f"params must be a mapping of parameter names to values, got {params!r}") from None
        unknown = sorted(set(given) - set(accepted))
        if unknown:
            names = ", ".join(sorted(accepted)) if accepted else "none"
            raise ValueError(f"method {self.method!r} takes no parameter {', '.join(map(repr, unknown))}; "
                             f"valid parameters for {self.method!r}: {names}")
        out = []
        choices = rlosses.PARAM_CHOICES.get(self.method, {})
        for name in sorted(accepted):
            default = accepted[name]
            v = given.get(name, default)
            if name in choices:
                if v not in choices[name]:
                    raise ValueError(f"parameter {name} of {self.method!r} must be one of "
                                     f"{', '.join(choices[name])}; got {v!r}")
            elif v is not None:
                if not _is_number(v) or not math.isfinite(v):
                    raise ValueError(f"parameter {name} of {self.method!r} must be a finite number, got {v!r}")
                if _is_int(default):
                    if float(v) != int(v) or v < 0:
                        raise ValueError(f"parameter {name} of {self.method!r} must be a non-negative "
                                         f"integer, got {v!r}")
                    v = int(v)
                else:
                    if v < 0:
                        raise ValueError(f"parameter {name} of {self.method!r} must be >= 0, got {v!r}")
                    v = float(v)
            out.append((name, v))
        return tuple(out)

    @classmethod
    def from_paper(cls, dataset: str, model: str, method: str = "natural", **overrides: Any) -> "TrainConfig":
        """The paper's run of ``method`` on ``dataset``/``model`` (schedule from
        :data:`SCHEDULES`), with ``overrides`` of any field; method parameters may be given
        directly (``from_paper("mnist", "cnn2", "trades", beta=6)``)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        params = dict(overrides.pop("params", None) or {})
        for key in list(overrides):
            if key not in fields:
                params[key] = overrides.pop(key)
        return cls(dataset=dataset, model=model, method=method, params=params, **overrides)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`canonical` (unknown keys raise ``ValueError``)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(f"unknown configuration key(s) {unknown}; valid keys: {', '.join(sorted(fields))}")
        d = dict(d)
        if d.get("milestones") is not None:
            d["milestones"] = tuple(d["milestones"])
        return cls(**d)

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with ``changes`` (method parameters may be given directly).  Derived schedule
        fields are re-derived unless given: changing ``epochs`` rescales the milestones;
        changing ``dataset``, ``method``, ``fidelity``, ``optimizer`` or ``batch_size``
        re-derives ``lr`` (and a new dataset or method resets the whole schedule and params)."""
        names = {f.name for f in dataclasses.fields(self)}
        d = {k: getattr(self, k) for k in names}
        params = dict(self.params)
        for key in list(changes):
            if key not in names:
                params[key] = changes.pop(key)
        if "dataset" in changes:
            for k in ("epochs", "milestones", "lr", "momentum", "optimizer", "batch_size", "eps"):
                d[k] = None
        if "method" in changes:
            d["lr"] = None if "lr" not in changes else d["lr"]
            if "params" not in changes and changes["method"] != self.method:
                params = {k: v for k, v in params.items() if k not in dict(self.params)}
        if "epochs" in changes and "milestones" not in changes:
            d["milestones"] = None
        if {"fidelity", "optimizer", "batch_size"} & set(changes) and "lr" not in changes:
            d["lr"] = None
        if "optimizer" in changes and "momentum" not in changes:
            d["momentum"] = None
        d["params"] = changes.pop("params", params)
        d.update(changes)
        return type(self)(**d)

    # ------------------------------------------------------------------ views
    @property
    def param_dict(self) -> dict[str, Any]:
        return dict(self.params)

    def canonical(self) -> dict[str, Any]:
        """Sorted plain dict with every default filled: the results-store key.  Fields added
        after records were first stored (:data:`OPTIONAL_FIELDS`) appear only when they differ
        from their default, so the keys of earlier runs stay valid."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["params"] = dict(self.params)
        d["milestones"] = list(self.milestones)
        for name, default in OPTIONAL_FIELDS.items():
            if d[name] == default:
                del d[name]
        return dict(sorted(d.items()))

    def training_canonical(self) -> dict[str, Any]:
        """The canonical dict without the evaluation-only fields (:data:`EVAL_ONLY_FIELDS`):
        the identity of the trained weights, i.e. of the checkpoint.  With ``train_with_test``
        the test subset is training data, so ``test_size`` and ``test_split`` stay in."""
        keep = ("test_size", "test_split") if self.train_with_test else ()
        return {k: v for k, v in self.canonical().items() if k not in EVAL_ONLY_FIELDS or k in keep}

    @property
    def key(self) -> str:
        return config_hash(self.canonical())

    def label(self) -> str:
        """Short readable name, e.g. ``mnist cnn2 trades(beta=6)``."""
        shown = {"beta", "lam", "h", "mu"}
        defaults = rlosses.METHOD_PARAMS[self.method]
        ps = ", ".join([f"{k}={v:g}" for k, v in self.params if k in shown and v is not None]
                       + [f"{k}={v}" for k, v in self.params if isinstance(v, str) and v != defaults[k]])
        return (f"{self.dataset} {self.model} {self.method}" + (f"({ps})" if ps else "")
                + (" +test" if self.train_with_test else "") + (" bf16" if self.precision == "bf16" else ""))


# ====================================================================== data

def subset_indices(n: int, size: int | None, seed: int, salt: int) -> torch.Tensor | None:
    """Sorted indices of a seeded random subset of ``size`` out of ``n`` (None: all)."""
    if size is None or size >= n:
        return None
    g = torch.Generator().manual_seed(seed * 1_000_003 + salt)
    return torch.randperm(n, generator=g)[:size].sort().values


def _load_split(config: TrainConfig, split: str, size: int | None, salt: int, data_root,
                device: torch.device, checksums: Mapping[str, str] | None = None):
    ds = rdata.load_dataset(config.dataset, split, root=data_root, checksums=checksums)
    images, labels = ds.images, ds.labels
    idx = subset_indices(len(labels), size, config.seed, salt)
    if idx is not None:
        images, labels = images[idx], labels[idx]
    return images.to(device), labels.to(device), ds.note


def _resized_train(config: TrainConfig, data_root) -> "rdata.RaggedImages":
    """The resized training images of a :data:`RESIZED_TRAIN` dataset, the same seeded subset
    as :func:`_load_split`'s training split (same files, same order)."""
    images, labels, _ = rdata.load_resized_train(config.dataset, root=data_root)
    idx = subset_indices(len(labels), config.train_size, config.seed, 0)
    return images if idx is None else images[idx]


def augment_batch(x: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop (zero padding ``pad``, output the input's size) and random horizontal flip,
    independently per image, vectorised; works on uint8 or float batches (N, C, H, W) on any
    device.  As torchvision's ``RandomCrop(size, padding=pad)`` + ``RandomHorizontalFlip()``."""
    n, c, h, w = x.shape
    dev = generator.device if generator is not None else x.device
    off = torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=dev).to(x.device)
    flip = (torch.rand(n, generator=generator, device=dev) < 0.5).to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (off[0][:, None] + torch.arange(h, device=x.device))            # (n, h)
    cols = (off[1][:, None] + torch.arange(w, device=x.device))            # (n, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    bi = torch.arange(n, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]


def make_batch(images, idx: torch.Tensor, pad: int | None,
               generator: torch.Generator | None = None, channels_last: bool = False,
               device: torch.device | None = None) -> torch.Tensor:
    """The training batch ``images[idx]`` (uint8, resident on the device): augmented when ``pad``
    is set (:func:`augment_batch`), then float32 in [0, 1] (:func:`rll.data.to_float`).
    :class:`rll.data.RaggedImages` (Restricted ImageNet) are randomly cropped to the dataset's
    size with ``pad`` (no flip) on the CPU and moved to ``device``."""
    if isinstance(images, rdata.RaggedImages):
        xb = images.random_crops(idx.cpu(), RESIZED_CROP, pad or 0, generator)
        xb = xb.to(device if device is not None else idx.device)
    else:
        xb = images[idx]
        if pad:
            xb = augment_batch(xb, pad, generator)
    xb = rdata.to_float(xb)
    return xb.contiguous(memory_format=torch.channels_last) if channels_last else xb


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss_fn, x: torch.Tensor,
               y: torch.Tensor, *, eps: float, fidelity: str, params: Mapping[str, Any],
               amp: bool = False, loss_scale: float = 1.0) -> torch.Tensor:
    """One optimiser step on ``loss_fn(model, x, y, eps=…, fidelity=…, **params)`` (model in
    train mode); returns the detached loss.  ``amp``: bfloat16 autocast for the forward passes
    (inner attack included); parameters, gradients and the optimiser stay float32.
    ``loss_scale``: backpropagate ``loss_scale × loss`` (a data-parallel shard's share,
    :meth:`rll.training.distributed.Group.loss_weight`); the returned loss is unscaled."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        loss = loss_fn(model, x, y, eps=eps, fidelity=fidelity, **params)
    optimizer.zero_grad(set_to_none=True)
    (loss if loss_scale == 1.0 else loss * loss_scale).backward()
    optimizer.step()
    return loss.detach()


# ====================================================================== checkpoints

def checkpoint_path(config: TrainConfig, checkpoint_dir: str | os.PathLike) -> Path:
    """Checkpoint file of ``config``'s training (shared by configs differing only in
    evaluation fields)."""
    return Path(checkpoint_dir) / f"{config_stem(config.training_canonical())}.pt"


def _scheduler_state(scheduler) -> dict:
    sd = dict(scheduler.state_dict())
    sd["milestones"] = {int(k): int(v) for k, v in sd["milestones"].items()}
    return sd


def _load_scheduler_state(scheduler, sd: dict) -> None:
    sd = dict(sd)
    sd["milestones"] = Counter({int(k): int(v) for k, v in sd["milestones"].items()})
    scheduler.load_state_dict(sd)


def _rng_state(device: torch.device, gens: dict[str, torch.Generator]) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    for name, g in gens.items():
        state[name] = g.get_state()
    return state


def _set_rng_state(state: dict, device: torch.device, gens: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
    for name, g in gens.items():
        g.set_state(state[name])


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


def lr_by_epoch(canonical: Mapping[str, Any], epochs: int) -> list[float]:
    """The learning rate of each of the first ``epochs`` epochs of a run (its canonical dict):
    ``lr · γ^(number of milestones ≤ epoch index)``, as ``MultiStepLR`` sets it."""
    return [canonical["lr"] * LR_DECAY ** sum(m <= e for m in canonical["milestones"]) for e in range(epochs)]


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
        if 0 < done < config.epochs and _current_checkpoint(ckpt) and _same_prefix(ckpt["config"], want, done) and (
                best is None or done > best[1]["epoch"]):
            best = (path, ckpt)
    return best


def _save_checkpoint(path: Path, payload: dict, write: bool = True) -> None:
    """Write ``payload`` to ``path`` atomically (``write=False``: a data-parallel rank > 0,
    which writes nothing)."""
    import io

    if not write:
        return
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


# ====================================================================== provenance

def _provenance(device: torch.device, started: float, wall: float, epochs_done: int, **extra) -> dict:
    commit, dirty = git_commit()
    prov = {
        "git_commit": commit, "git_dirty": dirty, "rll_version": __version__,
        "torch_version": torch.__version__, "python_version": platform.python_version(),
        "device": device_name(device), "threads": torch.get_num_threads(),
        "started_utc": datetime.fromtimestamp(started, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_seconds": round(wall, 3), "epochs_done": epochs_done, "host": socket.gethostname(),
    }
    prov.update(extra)
    return prov


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


# ====================================================================== the loop

def _build(config: TrainConfig, device: torch.device):
    info = rdata.DATASET_INFO[config.dataset]
    torch.manual_seed(config.seed)
    model = rmodels.build_model(config.model, num_classes=info.num_classes, in_channels=info.shape[0],
                                dropout=config.dropout, fidelity=config.fidelity).to(device)
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(config.milestones), gamma=LR_DECAY)
    return model, opt, sched


def _generators(config: TrainConfig, device: torch.device) -> dict[str, torch.Generator]:
    gens = {}
    for salt, name in enumerate(("shuffle", "augment")):
        # resized images are cropped on the CPU, so their augmentation draws from a CPU generator
        where = "cpu" if name == "augment" and config.dataset in RESIZED_TRAIN else device
        g = torch.Generator(device=where)
        g.manual_seed(config.seed * 1_000_003 + 101 + salt)
        gens[name] = g
    return gens


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
            :func:`rll.experiments.results_folder`: ``$RLL_RESULTS/runs``, else the checkout's
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
            a live one raises :class:`RunClaimed`).
        on_step: hook called as ``on_step(epoch, step)`` (0-based) after every optimiser step.
        channels_last, compile: speed options (off by default): channels-last memory format
            and ``torch.compile`` of the model (not for GR/LLR in paper fidelity, which
            differentiate twice).  They change the arithmetic only at rounding level, not the
            configuration: the record's provenance says which were used.  bfloat16 is not one
            of them: it is ``config.precision``, part of the key.  Evaluation always runs in
            float32, eager.
        checksums: ``{file name: md5}`` overriding the dataset's official md5s
            (:func:`rll.data.load_dataset`), for one's own copies of the files.  Not part of
            the configuration (the same run on other bytes has the same key); the record's
            ``provenance["data_notes"]`` names every file checked against an override.
        claim_owner: who holds the claim (default ``rll.training.run pid …``); a claim left by the same
            owner is taken over — a requeued cluster job (:mod:`rll.training.submit`) names itself so.

    Under ``torchrun`` the run is trained data-parallel (:mod:`rll.training.distributed`): rank 0
    claims, checkpoints, evaluates and returns the record; the other ranks return ``None``.

    Returns the stored record of ``config`` ``{"config", "metrics", "provenance", "schema"}``;
    metrics are :func:`rll.metrics.evaluate`'s columns (percent) plus ``final_train_loss``.

    Raises:
        CheckpointMismatch: the checkpoint file belongs to another configuration.
        TrainingDiverged: the loss became NaN/inf (the message names epoch, step and method).
        RunClaimed: another live worker is running this configuration.
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
    from rll.experiments import results_folder   # experiments imports this module

    return results_folder("runs", results_dir)


def _stored_or_claimed(store: ResultsStore, config: TrainConfig, attacks: tuple[str, ...], *, force: bool,
                       claim: bool, owner: str | None) -> dict | None:
    """``config``'s stored record (unless ``force``), else None once the run is claimed."""
    if not force and (done := _stored(store, config, attacks)) is not None:
        return done
    if claim:
        _claim(store, config, owner)
        done = None if force else _stored(store, config, attacks)
        if done is not None:      # finished by another worker between our look and our claim
            store.release(config.training_canonical())
            return done
    return None


def _check_attacks(config: TrainConfig, attacks) -> tuple[str, ...]:
    attacks = (config.attack,) if attacks is None else tuple(dict.fromkeys(attacks))
    if not attacks:
        raise ValueError("attacks must name at least one evaluation attack")
    for attack in attacks:
        _choices("attack", attack, ATTACKS)
    if {"aa", "aa-apgd"} & set(attacks):
        from rll.attacks import require_torchattacks

        require_torchattacks()      # before any training, not after it
    return (config.attack,) + tuple(a for a in attacks if a != config.attack)


def is_current(record: dict | None) -> bool:
    """Whether ``record`` was made under the current meaning of the fidelities
    (:data:`rll.losses.FIDELITY_REVISION`; records without one are revision 1): no later revision
    changed its configuration (:func:`rll.losses.is_current_revision`)."""
    return record is not None and rlosses.is_current_revision(record.get("provenance", {}).get("fidelity_revision"),
                                                              record["config"])


def _stored(store: ResultsStore, config: TrainConfig, attacks: tuple[str, ...]) -> dict | None:
    """``config``'s record if the store holds it under every attack in ``attacks`` at the current
    fidelity revision, else None (an older revision's record is trained again and replaced)."""
    records = [store.get(config.replace(attack=a)) for a in attacks]
    if not all(is_current(r) for r in records):
        return None
    records[0]["path"] = str(store.path(config))
    return records[0]


def check_curve_images(curve_images) -> None:
    """``curve_images`` (learning curves' PGD-10 images per epoch) is None or an integer ≥ 2."""
    if curve_images is not None and (not _is_int(curve_images) or curve_images < 2):
        raise ValueError(f"curve_images must be an integer >= 2 or None, got {curve_images!r}")


def _claim(store: ResultsStore, config: TrainConfig, owner: str | None = None) -> None:
    """Claim the *training* identity (configurations differing only in evaluation fields share
    one checkpoint, so they must not train concurrently either).  A claim left by ``owner``
    itself (an earlier attempt of a requeued job) is taken over."""
    key = config.training_canonical()
    owner = owner or f"rll.training.run pid {os.getpid()}: {config.label()}"
    if store.claim(key, owner=owner):
        return
    info = store.claim_info(key) or {}
    if info.get("owner") == owner:                # our own earlier attempt, killed and requeued
        if store.break_claim(key, force=True) and store.claim(key, owner=owner):
            return
    elif store.claim_is_stale(key, timeout=None):   # its process died on this host
        info = store.claim_info(key)
        if store.break_claim(key, timeout=None):
            warnings.warn(f"broke a stale claim on {config.label()} left by {info}", stacklevel=5)
        if store.claim(key, owner=owner):
            return
    raise RunClaimed(f"{config.label()} is being trained by another worker ({store.claim_info(key)}); "
                     f"claim file {store.claim_path(key)} — if that worker is gone, remove the file "
                     "or call ResultsStore.break_claim(config.training_canonical(), force=True)")


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
    from tqdm.auto import tqdm

    started = time.time()
    t0 = time.perf_counter()
    git_commit()   # the code this process runs (cached), not a commit made while it trains
    ckpt_file = checkpoint_path(config, checkpoint_dir)
    ckpt, shorter_path = start_point(config, checkpoint_dir, store) if resume else (None, None)
    extended_from = ({"epochs": int(ckpt["epoch"]), "checkpoint": _relative_checkpoint(shorter_path, checkpoint_dir)}
                     if shorter_path is not None else None)

    x_tr, y_tr, note_tr = _load_split(config, "train", config.train_size, 0, data_root, device, checksums)
    # the evaluation needs the test split: a missing or corrupt file must stop the run now, not
    # after the training (load_dataset verifies it)
    x_te, y_te, note_te = _load_split(config, config.test_split, config.test_size, 1, data_root, device, checksums)
    x_fit, y_fit = (torch.cat([x_tr, x_te]), torch.cat([y_tr, y_te])) if config.train_with_test else (x_tr, y_tr)
    if config.dataset in RESIZED_TRAIN:
        if config.train_with_test:
            raise ValueError(f"train_with_test is not available for {config.dataset}")
        x_fit = _resized_train(config, data_root)
    test_float = (rdata.to_float(x_te), y_te) if curve_images else None
    group.check_batches(len(y_fit), config.batch_size)
    model, opt, sched = _build(config, device)
    group.seed_rank(config.seed)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    gens = _generators(config, device)
    history: list[dict] = []
    start_epoch, train_seconds = 0, 0.0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        _load_scheduler_state(sched, ckpt["scheduler"])
        sched.milestones = Counter(config.milestones)    # a shorter run's may differ after its end
        _set_rng_state(ckpt["rng"], device, gens)
        start_epoch, history = int(ckpt["epoch"]), list(ckpt["history"])
        train_seconds = float(ckpt["train_seconds"])
        group.restore_rng(ckpt["rng"], device, config.seed, start_epoch)
    group.check_same(start_epoch, "the checkpoint epoch to resume from")
    world_sizes = list(ckpt.get("world_sizes", [1] * start_epoch)) if ckpt is not None else []
    earlier_seconds = train_seconds   # spent by earlier (interrupted) sessions

    loss_fn = rlosses.LOSSES[config.method]
    params = dict(config.params)
    fmodel = group.wrap(model, device)        # DistributedDataParallel under torchrun
    fmodel = torch.compile(fmodel) if compile_ else fmodel
    summed = config.fidelity == "released"   # losses summed over the batch (else its mean)
    pad = AUGMENT_PAD[config.dataset]
    n = len(y_fit)
    bs = config.batch_size
    steps_per_epoch = -(-n // bs)
    check_every = 1 if device.type == "cpu" else 50
    bar = tqdm(total=config.epochs * steps_per_epoch, initial=start_epoch * steps_per_epoch,
               desc=config.label(), unit="step", mininterval=1.0, disable=not (progress and group.is_main),
               leave=False)
    try:
        for epoch in range(start_epoch, config.epochs):
            t_epoch = time.perf_counter()
            model.train()
            perm = torch.randperm(n, generator=gens["shuffle"], device=device)
            pending: list[torch.Tensor] = []
            loss_sum, first_pending = 0.0, 0
            lr_now = opt.param_groups[0]["lr"]
            for step in range(steps_per_epoch):
                idx = perm[step * bs:(step + 1) * bs]
                xb = make_batch(x_fit, idx, pad, gens["augment"], channels_last, device=device)
                xb, yb = group.shard(xb), group.shard(y_fit[idx])     # this rank's share
                weight = group.loss_weight(len(yb), len(idx), summed)
                loss = train_step(fmodel, opt, loss_fn, xb, yb, eps=config.eps,
                                  fidelity=config.fidelity, params=params, amp=config.precision == "bf16",
                                  loss_scale=group.world_size * weight)
                pending.append(loss if weight == 1.0 else loss * weight)
                if len(pending) >= check_every or step == steps_per_epoch - 1:
                    values = group.sum(torch.stack(pending)).double().cpu()
                    bad = (~torch.isfinite(values)).nonzero()
                    if len(bad):
                        at = first_pending + int(bad[0])
                        raise TrainingDiverged(
                            f"non-finite training loss ({values[int(bad[0])].item()}) at epoch "
                            f"{epoch + 1}/{config.epochs}, step {at + 1}/{steps_per_epoch} "
                            f"(method {config.method}, params {params}, lr {lr_now:g}, fidelity "
                            f"{config.fidelity}); run stopped, last good checkpoint is epoch {epoch} "
                            f"({ckpt_file}). Try a smaller learning rate.")
                    loss_sum += values.sum().item()
                    first_pending = step + 1
                    pending = []
                    bar.set_postfix(epoch=epoch + 1, loss=f"{values[-1].item():.4g}", refresh=False)
                bar.update(1)
                if on_step is not None:
                    on_step(epoch, step)
            sched.step()
            seconds = time.perf_counter() - t_epoch
            train_seconds += seconds
            entry = {"epoch": epoch + 1, "lr": lr_now, "loss": loss_sum / steps_per_epoch,
                     "seconds": round(seconds, 3)}
            if curve_images and group.is_main:
                t_curve = time.perf_counter()
                with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                    entry["curve"] = _curve_point(model, test_float, eps=config.eps, images=curve_images,
                                                  seed=config.seed, train=(x_tr, y_tr))
                entry["curve_seconds"] = round(time.perf_counter() - t_curve, 3)
            history.append(entry)
            world_sizes.append(group.world_size)
            rng = {**_rng_state(device, gens), **group.rng_states(device)}   # every rank's
            _save_checkpoint(ckpt_file, {
                "format": CHECKPOINT_FORMAT, "config": config.training_canonical(), "epoch": epoch + 1,
                "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": _scheduler_state(sched), "rng": rng,
                "history": history, "train_seconds": train_seconds, "rll_version": __version__,
                "fidelity_revision": rlosses.FIDELITY_REVISION,
                "world_sizes": world_sizes,
            }, write=group.is_main)
    finally:
        bar.close()
    del x_fit, y_fit, test_float
    if not group.is_main:
        return None     # rank 0 evaluates and writes the record

    return _evaluate_and_store(config, store, model, (x_tr, y_tr, note_tr), (x_te, y_te, note_te),
                               attacks=attacks, plan=plan, device=device, progress=progress,
                               started=started, t0=t0 - earlier_seconds,
                               extra={"train_seconds": round(train_seconds, 3),
                                      "resumed_from_epoch": start_epoch if ckpt is not None else None,
                                      **({"extended_from": extended_from} if extended_from else {}),
                                      "checkpoint": _relative_checkpoint(ckpt_file, checkpoint_dir),
                                      "history": history,
                                      "n_trained_on": n,
                                      "precision": "bf16-autocast" if config.precision == "bf16" else "fp32",
                                      "channels_last": channels_last, "compiled": compile_,
                                      **_processes(world_sizes, group)},
                               epochs_done=config.epochs)


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


def _evaluate_and_store(config: TrainConfig, store: ResultsStore, model: torch.nn.Module, train_split,
                        test_split, *, attacks: tuple[str, ...], plan: rmetrics.EvalPlan,
                        device: torch.device, progress: bool, started: float, t0: float, extra: dict,
                        epochs_done: int) -> dict:
    """Evaluate ``model`` with every attack (:func:`rll.metrics.evaluate`) and store one record
    per attack; return ``config``'s."""
    x_tr, y_tr, note_tr = train_split
    x_te, y_te, note_te = test_split
    model = model.to(memory_format=torch.contiguous_format).eval()
    t_eval = time.perf_counter()
    info = rdata.DATASET_INFO[config.dataset]
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        by_attack = rmetrics.evaluate(model, (rdata.to_float(x_tr), y_tr), (rdata.to_float(x_te), y_te),
                                      eps=config.eps, attacks=attacks, plan=plan, seed=config.seed,
                                      num_classes=info.num_classes, device=device, progress=progress)
    history = extra.get("history") or []
    notes = {k: v for k, v in (("train", note_tr), ("test", note_te)) if v}
    prov = _provenance(device, started, time.perf_counter() - t0, epochs_done,
                       eval_seconds=round(time.perf_counter() - t_eval, 3),
                       n_train=len(y_tr), n_test=len(y_te), evaluation=plan.as_dict(),
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
    x, y, _ = _load_split(config, config.test_split, config.test_size, 1, data_root, torch.device(device), checksums)
    return rdata.to_float(x), y


def evaluate(config: TrainConfig, checkpoint: str | os.PathLike | None = None, *,
             data_root: str | os.PathLike | None = None, results_dir: str | os.PathLike | None = None,
             checkpoint_dir: str | os.PathLike = "checkpoints", device: str | torch.device | None = None,
             progress: bool = True, attacks: tuple[str, ...] | None = None,
             eval_plan: rmetrics.EvalPlan | None = None, eval_batch_size: int = 512,
             checksums: Mapping[str, str] | None = None) -> dict:
    """Evaluate a finished run's checkpoint under ``config`` (e.g. with ``attack="mt"`` or
    another ``test_size``) and store the records under ``config`` and each of ``attacks``
    (default ``(config.attack,)``), measured as ``eval_plan`` says (see :func:`train`).

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
    train_split = _load_split(config, "train", config.train_size, 0, data_root, device, checksums)
    test_split = _load_split(config, config.test_split, config.test_size, 1, data_root, device, checksums)
    return _evaluate_and_store(config, ResultsStore(_results_folder(results_dir)), model, train_split, test_split,
                               attacks=attacks, plan=plan, device=device, progress=progress,
                               started=started, t0=t0,
                               extra={"train_seconds": ckpt.get("train_seconds"),
                                      "checkpoint": _relative_checkpoint(path, checkpoint_dir),
                                      "evaluated_from_checkpoint": True,
                                      "history": list(ckpt.get("history", [])),
                                      **_processes(list(ckpt.get("world_sizes", [1] * int(ckpt["epoch"]))))},
                               epochs_done=int(ckpt["epoch"]))
