"""The Staircase's parameters: its methods (in rll's one method grammar) and the problem's and the
experiment's settings, each checked with a message naming the field and the valid values."""
from __future__ import annotations

import math
import re
from typing import Iterable

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from rll.experiments.tables import parse_method_spec
from rll.validation import Integer, Number, ValidatedModel

METHODS = ("natural", "gr", "llr", "at", "rst", "trades")


#: Each method's one strength parameter and the value a bare name gets (GR β, LLR γ, RST λ, TRADES
#: β); AT and natural take none.  Methods are written as everywhere in rll: ``"trades(beta=6)"``.
STAIRCASE_PARAMS = {"natural": {}, "gr": {"beta": 1e-4}, "llr": {"gamma": 1e-2}, "at": {}, "rst": {"lam": 1.0},
                    "trades": {"beta": 1.0}}


DEFAULT_STRENGTH = {name: next(iter(p.values())) for name, p in STAIRCASE_PARAMS.items() if p}


#: the rows of the paper's tables (the same specs as its Section 5 rows)
DEFAULT_METHODS = ("natural", "gr", "llr", "at", "rst(lam=0.5)", "rst(lam=1)", "rst(lam=2)",
                   "trades(beta=1)", "trades(beta=3)", "trades(beta=6)")


_LABEL = {"natural": "Natural", "gr": "GR", "llr": "LLR", "at": "AT", "rst": "RST", "trades": "TRADES"}


_SYMBOL = {"gr": "β", "llr": "γ", "rst": "λ", "trades": "β"}


HEAVY_STAIRS = 5          # the first stairs, weight 1/5 each ...


HEAVY_WEIGHT = 0.2


LIGHT_WEIGHT = 0.01       # ... the others 0.01 each (then normalised)


TAUS = tuple(10.0 ** -k for k in range(1, 10))  # smoothing temperatures, coarse to fine


METRICS = ("train_mse", "test_mse", "adv_train_mse", "adv_test_mse", "test_lipschitz", "gap", "adv_gap",
           "test_mse_rare_part")


TABLE_COLUMNS = {"train_mse": "train MSE", "test_mse": "test MSE", "adv_test_mse": "adv test MSE",
                 "test_lipschitz": "test Lipschitz", "gap": "gap", "adv_gap": "adv gap"}


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _check_int(name: str, v, lo: int, hi: int) -> int:
    """``v`` as an int in [lo, hi] (numpy integers accepted), else a ``ValueError`` naming ``name``."""
    if not _is_int(v) or not lo <= v <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}] (got {v!r})")
    return int(v)


def parse_method(spec: str) -> tuple[str, float | None]:
    """``"rst(lam=2)"`` → ``("rst", 2.0)``; ``"trades"`` → ``("trades", 1.0)``; ``"at"`` →
    ``("at", None)``: the method and its one strength (:data:`STAIRCASE_PARAMS`), in rll's one
    method grammar (:func:`rll.experiments.tables.parse_method_spec`); the strength must be a finite number ≥ 0."""
    name, params = parse_method_spec(spec, STAIRCASE_PARAMS)
    strength = next(iter(params.values()), DEFAULT_STRENGTH.get(name))
    if strength is not None and not (math.isfinite(strength) and strength >= 0):
        raise ValueError(f"the strength in {spec!r} must be a finite number >= 0; valid choices: "
                         f"{', '.join(METHODS)}, e.g. 'rst(lam=2)', 'trades(beta=6)'")
    return name, strength


def method_label(spec: str) -> str:
    """Display name as in the paper's tables: ``"rst(lam=0.5)"`` → ``"RST(λ=0.5)"``, ``"gr"`` → ``"GR"``."""
    name, strength = parse_method(spec)
    if name in ("rst", "trades") or (strength is not None and strength != DEFAULT_STRENGTH[name]):
        return f"{_LABEL[name]}({_SYMBOL[name]}={strength:g})"
    return _LABEL[name]


def _check_methods(methods) -> tuple[str, ...]:
    if isinstance(methods, str):
        if methods.strip().lower() == "all":
            return DEFAULT_METHODS
        methods = [m.strip() for m in re.split(r",(?![^(]*\))", methods)]  # "natural, at, trades(beta=6)" (papermill -p)
    if methods is None or not isinstance(methods, Iterable):
        raise ValueError(f"methods must be 'all' or a list of method names such as "
                         f"['natural', 'at', 'trades(beta=6)'] (got {methods!r}); valid choices: {', '.join(METHODS)}")
    methods = tuple(methods)
    if not methods:
        raise ValueError(f"methods is empty; valid choices: {', '.join(METHODS)} (or 'all')")
    keys = [parse_method(m) for m in methods]
    if len(set(keys)) != len(keys):
        raise ValueError(f"methods lists a method twice: {list(methods)!r}")
    return tuple(m.strip().lower().replace(" ", "") for m in methods)


def _check_seeds(name: str, seeds) -> tuple[int, ...]:
    if _is_int(seeds):
        seeds = [seeds]
    if isinstance(seeds, str) or not isinstance(seeds, Iterable):
        raise ValueError(f"{name} must be a non-empty list of integers >= 0 (got {seeds!r})")
    seeds = tuple(seeds)
    if not seeds or not all(_is_int(s) and s >= 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"{name} must be a non-empty list of distinct integers >= 0 (got {list(seeds)!r})")
    return tuple(int(s) for s in seeds)


_MAX_N = 1_000_000


class StaircaseParams(ValidatedModel):
    """Every knob of the Staircase page (``notebooks/staircase.md``), declared once with its
    range and validated by pydantic (:mod:`rll.validation` words the refusal); built by
    :func:`check_staircase_params`."""

    n_small: Integer = Field(40, ge=1, le=_MAX_N, description="training points of the small-sample setting")
    n_large: Integer = Field(30_000, ge=1, le=_MAX_N, description="training points of the large-sample setting")
    seeds_small: tuple[int, ...] = Field((0, 1, 2, 3, 4), description="seeds run in the small setting")
    seeds_large: tuple[int, ...] = Field((0,), description="seeds run in the large setting")
    n_test: Integer = Field(10_000, ge=1, le=_MAX_N, description="test points")
    eps: Number = Field(1 / 3, gt=0, lt=0.5, description="l∞ radius; at 1/2 the adversary of stair k reaches "
                                                          "stair k+1")
    smoothness: Number = Field(0.01, ge=0, le=1e6, description="the spline's smoothness penalty")
    noise: Number = Field(0.1, ge=0, le=1e3, description="label noise")
    x_noise: Number = Field(0.005, ge=0, le=1, description="input noise")
    num_stairs: Integer = Field(10, ge=2, le=1000, description="stairs of the target")
    methods: tuple[str, ...] = Field(DEFAULT_METHODS, description="method specs, e.g. 'trades(beta=6)', "
                                                                  "or 'all'; must include natural and at")
    figure_methods: tuple[str, ...] = Field(("natural", "at", "trades(beta=6)"),
                                            description="the fits drawn in the figure (None: these three)")

    @field_validator("seeds_small", "seeds_large", mode="before")
    @classmethod
    def _seed_list(cls, seeds, info: ValidationInfo):
        return _check_seeds(info.field_name, seeds)

    @field_validator("methods", mode="before")
    @classmethod
    def _methods(cls, methods):
        methods = _check_methods(methods)
        if not {"natural", "at"} <= set(methods):
            raise ValueError(f"methods must include 'natural' and 'at' (the page compares them); got {list(methods)!r}")
        return methods

    @field_validator("figure_methods", mode="before")
    @classmethod
    def _figure_methods(cls, methods):
        return _check_methods(cls.model_fields["figure_methods"].default if methods is None else methods)

    def canonical(self) -> dict:
        """The configuration as a sorted plain dict (defaults filled in)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(self.model_dump().items())}


def _check_problem(*, eps, smoothness, noise, x_noise, num_stairs) -> dict:
    """The problem's settings, checked by :class:`StaircaseParams`' declarations (for the
    functions that take them one by one)."""
    checked = StaircaseParams(eps=eps, smoothness=smoothness, noise=noise, x_noise=x_noise, num_stairs=num_stairs)
    return dict(eps=checked.eps, smoothness=checked.smoothness, noise=checked.noise, x_noise=checked.x_noise,
                num_stairs=checked.num_stairs)


def check_staircase_params(**params) -> StaircaseParams:
    """Validate the Staircase page's parameters and return them as :class:`StaircaseParams`.

    Keys (all optional, defaults in brackets): ``n_small`` [40] and ``n_large`` [30000],
    integers in [1, 10⁶]; ``seeds_small`` [(0, 1, 2, 3, 4)] and ``seeds_large`` [(0,)], the
    seeds run in each setting, integers ≥ 0; ``n_test`` [10000]; ``eps``
    [1/3] in (0, 1/2) — at 1/2 the adversary of stair k reaches stair k+1; ``smoothness``
    [0.01] ≥ 0; ``noise`` [0.1] ≥ 0; ``x_noise`` [0.005] in [0, 1]; ``num_stairs`` [10] ≥ 2;
    ``methods`` ['all' = :data:`DEFAULT_METHODS`; must include natural and AT] and
    ``figure_methods`` [None = natural, AT, TRADES(β=6)], lists of method specs (see
    :func:`parse_method`) or one comma-separated string.  Unknown keys and invalid values raise ``ValueError`` naming the
    valid choices, before anything is computed."""
    return StaircaseParams(**params)
