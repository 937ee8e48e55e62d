"""The configuration of a training run of the paper's Section 5 (Tables 2–4, 9–14).

:class:`TrainConfig` is the single source of truth for a run: the command line, the notebooks
and :mod:`rll.experiments` build it, it validates itself before any tensor is touched, and its
:meth:`~TrainConfig.canonical` dict (sorted keys, every default filled) is the key of the run's
record in :class:`rll.store.ResultsStore`.

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

>>> cfg = TrainConfig.from_paper("mnist", "cnn2", "trades", beta=6.0, epochs=10)
>>> cfg.lr, cfg.milestones            # 1e-4 × 64, and 40/80/120/140 scaled to 10 epochs
(0.0064, (3, 5, 8, 9))
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from rll import data as rdata
from rll import losses as rlosses
from rll import metrics as rmetrics
from rll.store import config_hash

FIDELITIES = ("paper", "released")


ATTACKS = tuple(rmetrics.ATTACKS)


OPTIMIZERS = ("sgd", "adam")


LR_DECAY = 0.1  # MultiStepLR γ


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


def lr_by_epoch(canonical: Mapping[str, Any], epochs: int) -> list[float]:
    """The learning rate of each of the first ``epochs`` epochs of a run (its canonical dict):
    ``lr · γ^(number of milestones ≤ epoch index)``, as ``MultiStepLR`` sets it."""
    return [canonical["lr"] * LR_DECAY ** sum(m <= e for m in canonical["milestones"]) for e in range(epochs)]


__all__ = ["TrainConfig", "SCHEDULES", "DATASET_MODELS", "FIDELITIES", "ATTACKS", "OPTIMIZERS", "LR_DECAY", "AUGMENT_PAD", "RESIZED_TRAIN", "RESIZED_CROP", "EVAL_ONLY_FIELDS", "OPTIONAL_FIELDS", "released_lr", "released_milestones", "scale_milestones", "lr_by_epoch"]


def check_device(device: str | None) -> None:
    """``None`` (cuda if available, else cpu), ``cpu``, ``cuda`` or ``cuda:N`` that exists."""
    if device is None:
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; valid choices: None, 'cpu', 'cuda', 'cuda:N'") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; valid choices: None, 'cpu', 'cuda', 'cuda:N'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but no CUDA device is available; use 'cpu'")
