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

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

import torch
from pydantic import Field, StrictBool, ValidationInfo, field_validator, model_validator

from rll import data as rdata
from rll import losses as rlosses
from rll import metrics as rmetrics
from rll.store import config_hash
from rll.validation import Integer, Number, ValidatedModel

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


def _fill_schedule(d: dict[str, Any]) -> dict[str, Any]:
    """The schedule fields left ``None`` (or absent) in ``d``, filled from :data:`SCHEDULES` for
    its dataset, method and fidelity (module docstring).  A field is derived only from valid
    inputs; one derived from an invalid input stays unset, and the input's own error is the one
    reported (it is declared, so checked, first)."""
    sched = SCHEDULES.get(d.get("dataset")) if isinstance(d.get("dataset"), str) else None
    if sched is None:
        return d
    method, fidelity = d.get("method", "natural"), d.get("fidelity", "paper")
    if d.get("optimizer") is None:
        d["optimizer"] = sched.optimizer
    if d.get("batch_size") is None:
        d["batch_size"] = sched.batch_size
    if d.get("momentum") is None:
        d["momentum"] = sched.momentum if d["optimizer"] == sched.optimizer == "sgd" else 0.0
    if d.get("lr") is None and method in rlosses.LOSSES and _is_int(d["batch_size"]) and d["batch_size"] >= 1:
        lr = released_lr(d["dataset"], method)
        if fidelity == "paper" and d["optimizer"] == "sgd":
            lr *= d["batch_size"]   # mean loss: same SGD steps as the summed loss at lr
        d["lr"] = float(f"{lr:.12g}")
    if d.get("epochs") is None:
        d["epochs"] = sched.epochs
    if d.get("milestones") is None and _is_int(d["epochs"]) and d["epochs"] >= 1:
        if d["epochs"] == sched.epochs:
            d["milestones"] = sched.milestones
        elif fidelity == "released":
            d["milestones"] = released_milestones(d["epochs"])
        else:
            d["milestones"] = scale_milestones(sched.milestones, sched.epochs, d["epochs"])
    if d.get("eps") is None:
        d["eps"] = rdata.DATASET_INFO[d["dataset"]].eps
    return d


def _normalise_params(method: str, params: Any) -> tuple[tuple[str, Any], ...]:
    """``params`` as sorted ``(name, value)`` pairs with every default of ``method`` filled
    (:data:`rll.losses.METHOD_PARAMS`): numbers as the default's type, choices checked."""
    accepted = rlosses.METHOD_PARAMS[method]
    if params is None:
        params = {}
    try:
        given = dict(params)
    except (TypeError, ValueError):
        raise ValueError(f"params must be a mapping of parameter names to values, got {params!r}") from None
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        names = ", ".join(sorted(accepted)) if accepted else "none"
        raise ValueError(f"method {method!r} takes no parameter {', '.join(map(repr, unknown))}; "
                         f"valid parameters for {method!r}: {names}")
    out = []
    choices = rlosses.PARAM_CHOICES.get(method, {})
    for name in sorted(accepted):
        default = accepted[name]
        v = given.get(name, default)
        if name in choices:
            if v not in choices[name]:
                raise ValueError(f"parameter {name} of {method!r} must be one of "
                                 f"{', '.join(choices[name])}; got {v!r}")
        elif v is not None:
            if not _is_number(v) or not math.isfinite(v):
                raise ValueError(f"parameter {name} of {method!r} must be a finite number, got {v!r}")
            if _is_int(default):
                if float(v) != int(v) or v < 0:
                    raise ValueError(f"parameter {name} of {method!r} must be a non-negative "
                                     f"integer, got {v!r}")
                v = int(v)
            else:
                if v < 0:
                    raise ValueError(f"parameter {name} of {method!r} must be >= 0, got {v!r}")
                v = float(v)
        out.append((name, v))
    return tuple(out)


class TrainConfig(ValidatedModel):
    """One training run.  Schedule fields left as ``None`` are filled from :data:`SCHEDULES`
    for the dataset, method and fidelity (see the module docstring for the learning rate).

    Each field is declared once below — type, range, choices, description — and validated by
    pydantic (:mod:`rll.validation` words the refusal); ``python -m rll train`` generates its
    flags from the same declarations.  Fields are declared, and so checked, in the order the
    schedule derives them (the dataset first).

    ``train_with_test`` and ``precision`` were added after records were first stored: they
    enter :meth:`canonical` only when they differ from their default
    (:data:`OPTIONAL_FIELDS`), so the keys of ordinary runs do not change.
    """

    dataset: Literal[rdata.DATASETS] = Field(description="the dataset (Table 5)")
    model: str = Field(description="cnn1 | cnn2 (mnist), wrn-D-W e.g. wrn-40-10 (svhn, cifar10), "
                                   "resnet50 (resimagenet)")
    method: Literal[tuple(rlosses.LOSSES)] = Field("natural", description="the training method")
    params: tuple[tuple[str, Any], ...] = Field(
        (), validate_default=True, description="the method's parameters (rll.losses.METHOD_PARAMS), e.g. {'beta': 6}; stored "
                        "as sorted (name, value) pairs with every default filled")
    fidelity: Literal[FIDELITIES] = Field(
        "paper", description="paper (the method as the paper describes it; mean losses) or released "
                             "(as the authors' code ran it; summed losses)")
    precision: Literal[rlosses.PRECISIONS] = Field(
        "fp32", description="training arithmetic, part of the run's key: fp32, or bf16 (bfloat16 autocast "
                            "of the training passes; refused where it was measured to break the loss, "
                            "rll.losses.BF16_REFUSED).  Evaluation is always float32")
    optimizer: Literal[OPTIMIZERS] = Field(None, description="default: the dataset's (Table 5)")
    batch_size: Integer = Field(None, ge=1, description="default: the dataset's (Table 5)")
    momentum: Number = Field(None, ge=0, lt=1, description="SGD momentum (default: the dataset's)")
    lr: Number = Field(None, gt=0, allow_inf_nan=False,
                       description="optimiser learning rate (default: the released rate, times the batch size "
                                   "for SGD in fidelity paper, whose losses are means)")
    epochs: Integer = Field(None, ge=1, description="default: the paper's; milestones scale with it")
    milestones: tuple[Integer, ...] = Field(
        None, description="learning-rate decays (×0.1) before these epochs (default: the fidelity's rule "
                          "for the epochs; none given: no decay)")
    eps: Number = Field(None, gt=0, allow_inf_nan=False, description="l∞ radius (default: the dataset's)")
    dropout: Number = Field(0.0, ge=0, lt=1, description="dropout rate of wrn-D-W and resnet50 (paper: 0.2 "
                                                         "CIFAR-10, 0.5 SVHN); the CNNs have their sources' own")
    seed: Integer = Field(0, ge=0, description="seeds the initialisation, shuffling, augmentation, attacks, "
                                               "subsets and random starts")
    attack: Literal[ATTACKS] = Field("pgd", description="evaluation attack: pgd (Tables 2–4) or mt "
                                                        "(multi-targeted, Tables 9–14)")
    train_size: Integer | None = Field(None, ge=1, description="seeded random subset (default: all)")
    test_size: Integer | None = Field(None, ge=1, description="seeded random subset (default: all)")
    test_split: str = Field("test", validate_default=True, description="test, or test_partial for cifar10 (its labelled first "
                                                "1017 test images)")
    train_with_test: StrictBool = Field(False, description="also train on the evaluated test subset "
                                                           "(Appendix B, Table 6: proof of concept)")

    @model_validator(mode="before")
    @classmethod
    def _schedule(cls, data: Any) -> Any:
        return _fill_schedule(dict(data)) if isinstance(data, Mapping) else data

    @field_validator("model")
    @classmethod
    def _model_fits_dataset(cls, model: str, info: ValidationInfo) -> str:
        if "dataset" in info.data:
            _check_model(info.data["dataset"], model)
        return model

    @field_validator("params", mode="before")
    @classmethod
    def _method_params(cls, params: Any, info: ValidationInfo) -> Any:
        return _normalise_params(info.data["method"], params) if "method" in info.data else params

    @field_validator("precision")
    @classmethod
    def _precision_allowed(cls, precision: str, info: ValidationInfo) -> str:
        if {"method", "fidelity", "params"} <= set(info.data):
            rlosses.check_precision(info.data["method"], info.data["fidelity"], precision,
                                    dict(info.data["params"]))
        return precision

    @field_validator("momentum")
    @classmethod
    def _momentum_is_sgd(cls, momentum: float, info: ValidationInfo) -> float:
        if info.data.get("optimizer") == "adam" and momentum != 0:
            raise ValueError("momentum applies to optimizer 'sgd' only (Adam uses its default betas)")
        return momentum

    @field_validator("milestones", mode="before")
    @classmethod
    def _milestones_in_run(cls, milestones: Any, info: ValidationInfo) -> Any:
        try:
            ms = tuple(milestones)
        except TypeError:
            raise ValueError(f"milestones must be a sequence of epochs, got {milestones!r}") from None
        epochs = info.data.get("epochs")
        if epochs is not None and (not all(_is_int(m) for m in ms) or any(b <= a for a, b in zip(ms, ms[1:]))
                                   or (ms and not (1 <= ms[0] and ms[-1] <= epochs - 1))):
            raise ValueError(f"milestones must be strictly increasing integers in 1 … "
                             f"{epochs - 1} (epochs - 1), got {list(ms)}")
        return ms

    @field_validator("dropout")
    @classmethod
    def _dropout_model(cls, dropout: float, info: ValidationInfo) -> float:
        if dropout and info.data.get("model") in ("cnn1", "cnn2"):
            raise ValueError(f"{info.data['model']} has its source's fixed dropout; dropout applies to "
                             "wrn-D-W and resnet50 only")
        return dropout

    @field_validator("test_split")
    @classmethod
    def _split_of_dataset(cls, test_split: str, info: ValidationInfo) -> str:
        if "dataset" in info.data:
            splits = tuple(s for s in rdata.DATASET_INFO[info.data["dataset"]].splits if s != "train")
            if test_split not in splits:
                raise ValueError(f"unknown test_split {test_split!r} for {info.data['dataset']}; "
                                 f"valid choices: {', '.join(splits)}")
        return test_split

    @classmethod
    def from_paper(cls, dataset: str, model: str, method: str = "natural", **overrides: Any) -> "TrainConfig":
        """The paper's run of ``method`` on ``dataset``/``model`` (schedule from
        :data:`SCHEDULES`), with ``overrides`` of any field; method parameters may be given
        directly (``from_paper("mnist", "cnn2", "trades", beta=6)``)."""
        fields = set(cls.model_fields)
        params = dict(overrides.pop("params", None) or {})
        for key in list(overrides):
            if key not in fields:
                params[key] = overrides.pop(key)
        return cls(dataset=dataset, model=model, method=method, params=params, **overrides)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`canonical` (unknown keys raise ``ValueError``)."""
        fields = set(cls.model_fields)
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
        names = set(type(self).model_fields)
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
        d = {name: getattr(self, name) for name in type(self).model_fields}
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
