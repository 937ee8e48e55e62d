"""The Staircase: the synthetic 1-D regression of the paper's Appendix A.

Raghunathan, Xie, Yang, Duchi and Liang (2019), *Adversarial training can hurt
generalization* (arXiv:1906.06032), built this problem to show adversarial training
over-fitting when samples are few; the paper (Yang et al., NeurIPS 2020, Appendix A) re-runs
natural training and AT with the authors' code and adds GR, LLR, RST and TRADES.

**Our reconstruction** (the paper's text gives only a paragraph; where it is silent we follow
the released notebook of the paper, ``robust-local-lipschitz/notebooks/splines.ipynb``, and the
workplace notes, ``official-code-notes.md`` § Staircase):

* **Stairs and target.**  ``s = num_stairs = 10`` stairs.  Stair ``k`` is the set of inputs
  ``{k − ε, k, k + ε}`` and every one of them has target ``k``: the target is the staircase
  ``f*(x) = ⌊x + 1/2⌋`` (steps half-way between integers), which is *invariant* under the
  adversary below.  A literal ``⌊x⌋`` would give ``f*(k − ε) = k − 1`` and make the
  perturbation set inconsistent with the labels; the authors' code labels ``k − ε`` with ``k``.
* **Inputs.**  A stair is drawn from a categorical law: the first five stairs carry weight 1/5
  each and the others 0.01 each, normalised (so stairs 5–9 are *rare*: ≈ 0.95 % each) — this
  imbalance is what lets AT hurt.  With probability ``1 − x_noise`` (``x_noise = 0.005``) the
  input is the integer ``k``; otherwise it is ``k − ε`` or ``k + ε`` with probability 1/2 each.
  (A looser description — equal stair weights, off-integer mass spread uniformly over
  ``[0, s)`` — is sometimes quoted; the released code puts it on ``k ± ε`` with the unequal
  weights above, and we follow the code.)
* **Labels.**  ``y = f*(x) + N(0, σ²)`` with ``σ = noise = 0.1``; the test set (``n_test``
  points, default 10 000) is drawn from the same law, labels noisy as in the released code.
* **Adversary.**  The three-point set ``T(x) = {x − ε, x, x + ε}``, ``ε = 1/3``.  (The paper's
  Appendix A prints ``{x − ε, x, x − ε}``, a typo.)
* **Model.**  ``f(x) = φ(x)ᵀθ`` with cubic B-splines ``φ`` on the knots ``{k, k ± ε}``
  (``k = 0 … s−1``), padded by four knots ``ε`` apart on each side (34 basis functions for
  ``s = 10``), evaluated with polynomial extrapolation outside the padded span.  The
  smoothness ("RKHS") penalty is the second-difference norm of the coefficients,
  ``‖D₂θ‖² = θᵀD₂ᵀD₂θ``, with weight ``λ = smoothness = 0.01`` (the released notebook and the
  notes; the paper's Appendix A text says 0.1).

**Objectives** (sums over the ``n`` training pairs; ``Pen(θ) = λ‖D₂θ‖²``):

* natural:        ``Σ (f(xᵢ) − yᵢ)² + Pen``                                  — closed form
* GR(β=1e-4):     ``Σ (f(xᵢ) − yᵢ)² + β Σ f'(xᵢ)² + Pen``                     — closed form
* LLR(γ=1e-2):    ``Σ (f(xᵢ) − yᵢ)² + γ Σ max_{δ=±ε} |f(xᵢ+δ) − f(xᵢ) − δ f'(xᵢ)| + Pen``
* AT:             ``Σ max_{x'∈T(xᵢ)} (f(x') − yᵢ)² + Pen``
* RST(λ_rst):     ``Σ (f(xᵢ) − yᵢ)² + λ_rst Σ max_{x'∈T(xᵢ)} (f(x') − yᵢ)² + Pen``
* TRADES(β):      ``Σ (f(xᵢ) − yᵢ)² + β Σ max_{x'∈T(xᵢ)} (f(x') − f(xᵢ))² + Pen``

(RST uses labelled data only, as in the paper's tables; GR penalises the squared input
derivative of ``f``, LLR only the local-linearity term γ, as Appendix A says — the released
notebook codes both differently, we follow the text.)  The quadratic
objectives are solved exactly by least squares.  The others are convex but not smooth (a max
of quadratics or of absolute values); they are solved by damped Newton steps (exact Hessian;
34 parameters) on the log-sum-exp smoothing ``τ log Σ_k exp(g_k/τ)`` of each max (an upper
bound within ``τ log K`` of it), with ``τ`` shrunk from 1e-1 to 1e-9 and warm starts, keeping
the iterate with the best *exact* objective.
The tests check this against a generic constrained solver on small problems.

**Metrics** (``metrics``): train/test MSE, adversarial MSE ``mean max_{x'∈T(x)} (f(x') − y)²``,
the empirical local Lipschitz value ``mean max_{δ=±ε} |f(x+δ) − f(x)| / ε`` over the test
points, and the gaps ``test − train`` (standard and adversarial).

Example::

    >>> from rll import staircase
    >>> table = staircase.run_staircase(40, ["natural", "at"], seed=0)
    >>> table[["label", "test_mse", "adv_test_mse"]]          # doctest: +SKIP
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import linalg
from scipy.interpolate import BSpline

from rll.config import parse_method_spec

# ----------------------------------------------------------------------------- constants
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


# ----------------------------------------------------------------------------- parameters
def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) \
        and math.isfinite(float(v))


def _check_int(name: str, v, lo: int, hi: int) -> int:
    if not _is_int(v) or not lo <= v <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}] (got {v!r})")
    return int(v)


def _check_real(name: str, v, lo: float, hi: float, *, lo_open=False, hi_open=False) -> float:
    ok = _is_real(v) and (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)
    if not ok:
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ValueError(f"{name} must be a finite number in {interval} (got {v!r})")
    return float(v)


def parse_method(spec: str) -> tuple[str, float | None]:
    """``"rst(lam=2)"`` → ``("rst", 2.0)``; ``"trades"`` → ``("trades", 1.0)``; ``"at"`` →
    ``("at", None)``: the method and its one strength (:data:`STAIRCASE_PARAMS`), in rll's one
    method grammar (:func:`rll.config.parse_method_spec`); the strength must be a finite number ≥ 0."""
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


@dataclass(frozen=True)
class StaircaseParams:
    """Every knob of the Staircase page (``notebooks/staircase.md``); built, and validated, by
    :func:`check_staircase_params`."""
    n_small: int = 40
    n_large: int = 30_000
    seeds_small: tuple[int, ...] = (0, 1, 2, 3, 4)
    seeds_large: tuple[int, ...] = (0,)
    n_test: int = 10_000
    eps: float = 1 / 3
    smoothness: float = 0.01
    noise: float = 0.1
    x_noise: float = 0.005
    num_stairs: int = 10
    methods: tuple[str, ...] = DEFAULT_METHODS
    figure_methods: tuple[str, ...] = ("natural", "at", "trades(beta=6)")

    def canonical(self) -> dict:
        """The configuration as a sorted plain dict (defaults filled in)."""
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(d.items())}


_MAX_N = 1_000_000


def _check_problem(*, eps, smoothness, noise, x_noise, num_stairs) -> dict:
    return dict(eps=_check_real("eps", eps, 0.0, 0.5, lo_open=True, hi_open=True),
                smoothness=_check_real("smoothness", smoothness, 0.0, 1e6),
                noise=_check_real("noise", noise, 0.0, 1e3),
                x_noise=_check_real("x_noise", x_noise, 0.0, 1.0),
                num_stairs=_check_int("num_stairs", num_stairs, 2, 1000))


def check_staircase_params(**params) -> StaircaseParams:
    """Validate the Staircase page's parameters and return them as :class:`StaircaseParams`.

    Keys (all optional, defaults in brackets): ``n_small`` [40] and ``n_large`` [30000],
    integers in [1, 10⁶]; ``seeds_small`` [(0, 1, 2, 3, 4)] and ``seeds_large`` [(0,)], the
    seeds run in each setting, integers ≥ 0; ``n_test`` [10000]; ``eps``
    [1/3] in (0, 1/2) — at 1/2 the adversary of stair k reaches stair k+1; ``smoothness``
    [0.01] ≥ 0; ``noise`` [0.1] ≥ 0; ``x_noise`` [0.005] in [0, 1]; ``num_stairs`` [10] ≥ 2;
    ``methods`` ['all' = :data:`DEFAULT_METHODS`; must include natural and AT] and
    ``figure_methods`` [natural, AT, TRADES(β=6)], lists of method specs (see
    :func:`parse_method`) or one comma-separated string.  Unknown keys and invalid values raise ``ValueError`` naming the
    valid choices, before anything is computed."""
    valid = [f.name for f in fields(StaircaseParams)]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(map(repr, unknown))}; valid: {', '.join(valid)}")
    p = {**asdict(StaircaseParams()), **params}
    methods = _check_methods(p["methods"])
    if not {"natural", "at"} <= set(methods):
        raise ValueError(f"methods must include 'natural' and 'at' (the page compares them); got {list(methods)!r}")
    return StaircaseParams(
        n_small=_check_int("n_small", p["n_small"], 1, _MAX_N),
        n_large=_check_int("n_large", p["n_large"], 1, _MAX_N),
        seeds_small=_check_seeds("seeds_small", p["seeds_small"]),
        seeds_large=_check_seeds("seeds_large", p["seeds_large"]),
        n_test=_check_int("n_test", p["n_test"], 1, _MAX_N),
        methods=methods,
        figure_methods=_check_methods(p["figure_methods"]),
        **_check_problem(eps=p["eps"], smoothness=p["smoothness"], noise=p["noise"],
                         x_noise=p["x_noise"], num_stairs=p["num_stairs"]))


# ----------------------------------------------------------------------------- data
def stair_weights(num_stairs: int = 10) -> np.ndarray:
    """The categorical law of the stairs: weight 1/5 on each of the first five stairs, 0.01 on
    each other one, normalised to sum to 1 (Raghunathan et al.'s released code)."""
    w = np.r_[np.full(min(HEAVY_STAIRS, num_stairs), HEAVY_WEIGHT),
              np.full(max(num_stairs - HEAVY_STAIRS, 0), LIGHT_WEIGHT)]
    return w / w.sum()


def staircase_target(x, eps: float = 1 / 3) -> np.ndarray:
    """The noiseless target ``f*(x) = ⌊x + 1/2⌋``: equal to ``k`` on the whole stair
    ``{k − ε, k, k + ε}`` (``eps`` < 1/2; it does not enter the formula, only its validity)."""
    return np.floor(np.asarray(x, dtype=float) + 0.5)


def make_staircase_data(n: int, *, seed: int | np.random.Generator = 0, num_stairs: int = 10,
                        eps: float = 1 / 3, noise: float = 0.1, x_noise: float = 0.005
                        ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples ``(x, y)`` of the Staircase (float64 arrays of shape ``(n,)``).

    Stair ``k ~ stair_weights(num_stairs)``; ``x = k`` with probability ``1 − x_noise``, else
    ``k − eps`` or ``k + eps`` (½ each); ``y = k + noise·N(0, 1)``.  ``seed`` is an integer or a
    ``numpy.random.Generator``; the same integer always gives the same sample."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    k = rng.choice(num_stairs, size=n, p=stair_weights(num_stairs)).astype(float)
    y = k + noise * rng.standard_normal(n)
    shifted = rng.random(n) < x_noise
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return k + shifted * sign * eps, y


def _split_seed(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the training and the test sample of one seed (so the test
    set does not depend on n)."""
    train, test = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(train), np.random.default_rng(test)


# ----------------------------------------------------------------------------- features
class SplineBasis:
    """Cubic B-splines on the knots ``{k − ε, k, k + ε : k = 0 … s−1}``, padded with four
    knots spaced ``ε`` on each side; ``features(x)`` is the ``(len(x), n_basis)`` design matrix,
    ``derivative(x)`` that of ``f'``, ``d2`` the second-difference matrix of the coefficients
    (the smoothness penalty is ``λ‖d2 θ‖²``)."""

    degree = 3

    def __init__(self, num_stairs: int = 10, eps: float = 1 / 3):
        self.num_stairs, self.eps = int(num_stairs), float(eps)
        k = np.arange(num_stairs, dtype=float)
        inner = np.unique(np.round(np.r_[k - eps, k, k + eps], 12))
        pad = eps * np.arange(1, self.degree + 2)
        self.knots = np.r_[inner[0] - pad[::-1], inner, inner[-1] + pad]
        self.n_basis = len(self.knots) - self.degree - 1
        eye = np.eye(self.n_basis)
        self._spline = BSpline(self.knots, eye, self.degree, extrapolate=True)
        self._dspline = self._spline.derivative(1)
        self.d2 = np.diff(eye, n=2, axis=0)

    def features(self, x) -> np.ndarray:
        return self._spline(np.asarray(x, dtype=float).ravel())

    def derivative(self, x) -> np.ndarray:
        return self._dspline(np.asarray(x, dtype=float).ravel())


# ----------------------------------------------------------------------------- objectives
class _Objective:
    """``J(θ) = θᵀQθ − 2qᵀθ + c₀ + b · Σᵢ maxₖ gᵢₖ(θ)`` with ``gᵢₖ = rᵢₖ²`` (``power`` 2) or
    ``rᵢₖ`` (``power`` 1, pieces already carrying both signs), ``rᵢₖ = Aₖ[uᵢ]θ − cₖᵢ``.
    Feature rows are stored once per distinct input ``u`` (the Staircase has ≤ 3s of them), so
    only the elementwise max/softmax work grows with n.  ``tau > 0`` replaces each max by ``τ log Σ exp(g/τ)``."""

    def __init__(self, R, t, c0, n, A=None, c=None, inv=None, power=2, b=0.0):
        # the quadratic part is ‖Rθ − t‖² + c₀ (kept as rows for a stable least-squares solve)
        self.R, self.t, self.n = R, t, n
        self.Q, self.q, self.c0 = R.T @ R, R.T @ t, c0 + float(t @ t)
        self.A, self.c, self.inv, self.power, self.b = A, c, inv, power, b

    def _pieces(self, theta):
        r = (self.A @ theta)[:, self.inv] - self.c  # (K, n)
        return r, (r * r if self.power == 2 else r)

    def value(self, theta, tau=0.0):
        out = theta @ self.Q @ theta - 2 * self.q @ theta + self.c0
        if self.A is not None and self.b:
            _, g = self._pieces(theta)
            m = g.max(axis=0)
            if tau > 0:
                m = m + tau * np.log(np.exp((g - m) / tau).sum(axis=0))
            out += self.b * m.sum()
        return float(out)

    def derivs(self, theta, tau):
        """Smoothed objective divided by n (the minimiser is unchanged), its gradient and its
        Hessian.  With π = softmax(g/τ) and ∇gₖ = γₖaₖ (γₖ = 2rₖ or 1), the Hessian of
        ``τ log Σ exp(gₖ/τ)`` is ``Σ πₖ∇²gₖ + (1/τ)[Σ πₖγₖ²aₖaₖᵀ − (Σ πₖγₖaₖ)(Σ πₖγₖaₖ)ᵀ]``."""
        val = theta @ self.Q @ theta - 2 * self.q @ theta + self.c0
        grad = 2 * (self.Q @ theta - self.q)
        hess = 2 * self.Q
        if self.A is not None and self.b:
            r, g = self._pieces(theta)
            K, U = self.A.shape[:2]
            m = g.max(axis=0)
            e = np.exp((g - m) / tau)
            s = e.sum(axis=0)
            val += self.b * (m + tau * np.log(s)).sum()
            pi = e / s
            # 1 − πₖ summed from the other pieces, accurate when πₖ ≈ 1
            rest = (np.stack([e[np.arange(K) != k].sum(axis=0) for k in range(K)]) / s)
            gam = 2 * r if self.power == 2 else 1.0
            pg = pi * gam
            idx1 = self.inv + U * np.arange(K)[:, None]                        # (K, n)
            per_u = np.bincount(idx1.ravel(), pg.ravel(), minlength=K * U).reshape(K, U)
            grad += self.b * np.einsum("ku,kud->d", per_u, self.A)
            W = pg[:, None, :] * pg[None, :, :] * (-1.0 / tau)                 # (K, K, n)
            diag = pg * gam * rest / tau + (2 * pi if self.power == 2 else 0.0)
            W[np.arange(K), np.arange(K)] = diag
            idx2 = self.inv + U * np.arange(K * K)[:, None]
            C = np.bincount(idx2.ravel(), W.ravel(), minlength=K * K * U).reshape(K, K, U)
            hess = hess + self.b * np.einsum("klu,kud,lue->de", C, self.A, self.A, optimize=True)
        return float(val) / self.n, grad / self.n, hess / self.n

    def smoothed(self, theta, tau):
        """The smoothed objective divided by n (value only)."""
        val = theta @ self.Q @ theta - 2 * self.q @ theta + self.c0
        if self.A is not None and self.b:
            _, g = self._pieces(theta)
            m = g.max(axis=0)
            val += self.b * (m + tau * np.log(np.exp((g - m) / tau).sum(axis=0))).sum()
        return float(val) / self.n


def _build(name: str, strength: float | None, x: np.ndarray, y: np.ndarray, basis: SplineBasis,
           smoothness: float) -> _Objective:
    eps = basis.eps
    xu, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    ysum = np.bincount(inv, weights=y, minlength=len(xu))
    F0, Fm, Fp = basis.features(xu), basis.features(xu - eps), basis.features(xu + eps)
    # Σᵢ (f(xᵢ) − yᵢ)² = Σ_u m_u (f(u) − ȳ_u)² + Σᵢ (yᵢ − ȳ_{uᵢ})²  (m_u points at input u)
    clean = 0.0 if name == "at" else 1.0
    w = np.sqrt(clean * counts)
    ybar = ysum / counts
    rows, target = [w[:, None] * F0, math.sqrt(smoothness) * basis.d2], [w * ybar, np.zeros(len(basis.d2))]
    if name == "gr":
        rows.append(np.sqrt(strength * counts)[:, None] * basis.derivative(xu))
        target.append(np.zeros(len(xu)))
    c0 = clean * float(y @ y - counts @ ybar**2)
    obj = _Objective(np.vstack(rows), np.concatenate(target), c0, len(x))
    if name in ("at", "rst"):
        obj.A, obj.c, obj.power = np.stack([Fm, F0, Fp]), np.broadcast_to(y, (3, len(y))), 2
        obj.b = 1.0 if name == "at" else strength
    elif name == "trades":
        obj.A, obj.c, obj.power, obj.b = np.stack([Fm - F0, Fp - F0]), np.zeros((2, len(y))), 2, strength
    elif name == "llr":
        G0 = basis.derivative(xu)
        L = np.stack([Fm - F0 + eps * G0, Fp - F0 - eps * G0])
        obj.A, obj.c, obj.power, obj.b = np.concatenate([L, -L]), np.zeros((4, len(y))), 1, strength
    if obj.A is not None:
        obj.inv = inv
    return obj


def _least_squares(obj: _Objective) -> np.ndarray:
    """Exact minimiser of the quadratic part ``‖Rθ − t‖²`` (minimum-norm if it is not unique)."""
    return linalg.lstsq(obj.R, obj.t)[0]


def _newton_step(grad, hess):
    """Newton direction ``−H⁻¹g`` (H is PSD; a tiny ridge guards against singularity)."""
    ridge = 1e-13 * max(float(np.max(np.abs(np.diag(hess)))), 1e-300)
    try:
        return -linalg.solve(hess + ridge * np.eye(len(grad)), grad, assume_a="pos")
    except (linalg.LinAlgError, ValueError):
        return -linalg.lstsq(hess, grad)[0]


def _minimise_smoothed(obj: _Objective, theta0: np.ndarray, taus: Sequence[float] = TAUS,
                       max_steps: int = 100) -> np.ndarray:
    """Damped Newton on the τ-smoothed objective for each τ in turn (warm-started), stopping a
    stage when the Newton decrement ``gᵀH⁻¹g/2`` is below ~1e-13 of the objective; returns the
    iterate with the best exact objective."""
    best, best_val = theta0, obj.value(theta0)
    theta = theta0
    for tau in taus:
        for _ in range(max_steps):
            val, grad, hess = obj.derivs(theta, tau)
            step = _newton_step(grad, hess)
            decrement = -float(grad @ step)
            if decrement / 2 <= 1e-13 * max(abs(val), 1e-6):
                break
            t = 1.0
            while t > 1e-12 and obj.smoothed(theta + t * step, tau) > val - 0.25 * t * decrement:
                t *= 0.5
            if t <= 1e-12:
                break
            theta = theta + t * step
        exact = obj.value(theta)
        if exact < best_val:
            best, best_val = theta, exact
    return best


@dataclass
class StaircaseFit:
    """A fitted spline ``f(x) = φ(x)ᵀθ``; call it on inputs to get predictions."""
    method: str
    theta: np.ndarray
    basis: SplineBasis
    objective: float  # the method's exact (unsmoothed) training objective at theta

    @property
    def label(self) -> str:
        return method_label(self.method)

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return (self.basis.features(x) @ self.theta).reshape(x.shape)

    def derivative(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return (self.basis.derivative(x) @ self.theta).reshape(x.shape)


def objective(method: str, theta, x, y, *, basis: SplineBasis, smoothness: float = 0.01) -> float:
    """The exact training objective of ``method`` (see the module docstring) at ``theta``."""
    name, strength = parse_method(method)
    return _build(name, strength, np.asarray(x, float), np.asarray(y, float), basis, smoothness).value(
        np.asarray(theta, float))


def fit_staircase(x, y, method: str = "natural", *, eps: float = 1 / 3, smoothness: float = 0.01,
                  num_stairs: int = 10, basis: SplineBasis | None = None) -> StaircaseFit:
    """Fit the B-spline model to ``(x, y)`` with ``method`` (``"natural"``, ``"gr"``,
    ``"llr"``, ``"at"``, ``"rst(lam=λ)"``, ``"trades(beta=β)"``; objectives in the module docstring).

    natural and GR are solved in closed form; the others by smoothed Newton steps started at
    the natural solution.  ``basis`` defaults to ``SplineBasis(num_stairs, eps)`` (pass one to
    reuse it; it must match ``num_stairs`` and ``eps``)."""
    name, strength = parse_method(method)
    params = _check_problem(eps=eps, smoothness=smoothness, noise=0.0, x_noise=0.0, num_stairs=num_stairs)
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape or x.size == 0:
        raise ValueError(f"x and y must be non-empty and of equal length (got {x.size} and {y.size})")
    if basis is None:
        basis = SplineBasis(params["num_stairs"], params["eps"])
    elif (basis.num_stairs, basis.eps) != (params["num_stairs"], params["eps"]):
        raise ValueError(f"basis is built for num_stairs={basis.num_stairs}, eps={basis.eps!r}, not "
                         f"num_stairs={params['num_stairs']}, eps={params['eps']!r}")
    obj = _build(name, strength, x, y, basis, params["smoothness"])
    if obj.A is None or not obj.b:
        theta = _least_squares(obj)
    else:
        start = _least_squares(_build("natural", None, x, y, basis, params["smoothness"]))
        theta = _minimise_smoothed(obj, start)
    return StaircaseFit(method, theta, basis, obj.value(theta))


# ----------------------------------------------------------------------------- metrics
def adversarial_mse(fit: StaircaseFit, x, y, eps: float = 1 / 3) -> float:
    """``mean_i max_{x' ∈ {x−ε, x, x+ε}} (f(x') − yᵢ)²``."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    return float(np.max([(fit(x + d) - y) ** 2 for d in (-eps, 0.0, eps)], axis=0).mean())


def local_lipschitz(fit: StaircaseFit, x, eps: float = 1 / 3) -> float:
    """Empirical local Lipschitz value ``mean_i max_{δ=±ε} |f(xᵢ+δ) − f(xᵢ)| / ε``."""
    x = np.asarray(x, float)
    fx = fit(x)
    return float(np.max([np.abs(fit(x + d) - fx) for d in (-eps, eps)], axis=0).mean() / eps)


def metrics(fit: StaircaseFit, x_train, y_train, x_test, y_test, eps: float = 1 / 3) -> dict:
    """The paper's columns for one fit: train/test MSE, adversarial train/test MSE, test local
    Lipschitz value, the gaps ``test − train`` (standard and adversarial), and
    ``test_mse_rare_part``, the part of the test MSE contributed by test points on the rarely
    sampled stairs (``k ≥ 5``): ``Σ_{rare} (f(x) − y)² / n_test``."""
    out = {"train_mse": float(np.mean((fit(x_train) - y_train) ** 2)),
           "test_mse": float(np.mean((fit(x_test) - y_test) ** 2)),
           "adv_train_mse": adversarial_mse(fit, x_train, y_train, eps),
           "adv_test_mse": adversarial_mse(fit, x_test, y_test, eps),
           "test_lipschitz": local_lipschitz(fit, x_test, eps)}
    out["gap"] = out["test_mse"] - out["train_mse"]
    out["adv_gap"] = out["adv_test_mse"] - out["adv_train_mse"]
    rare = staircase_target(x_test) >= HEAVY_STAIRS
    out["test_mse_rare_part"] = float(((fit(x_test) - y_test) ** 2 * rare).sum() / len(x_test))
    return out


# ----------------------------------------------------------------------------- runs
def run_staircase(n: int, methods: Sequence[str] | str = DEFAULT_METHODS, seed: int = 0, *,
                  n_test: int = 10_000, eps: float = 1 / 3, smoothness: float = 0.01, noise: float = 0.1,
                  x_noise: float = 0.005, num_stairs: int = 10, return_fits: bool = False):
    """Fit every method of ``methods`` to one seeded training sample of size ``n`` and score it
    on a seeded test sample of size ``n_test`` (the test sample depends on ``seed`` only).

    Returns a DataFrame, one row per method: ``method`` (spec), ``label``, ``n``, ``seed``,
    the :data:`METRICS` and ``objective``.  With ``return_fits=True`` returns
    ``(table, fits, (x_train, y_train))`` with ``fits`` a dict spec → :class:`StaircaseFit`."""
    n = _check_int("n", n, 1, _MAX_N)
    n_test = _check_int("n_test", n_test, 1, _MAX_N)
    seed = _check_int("seed", seed, 0, 2**63 - 1)
    methods = _check_methods(methods)
    prob = _check_problem(eps=eps, smoothness=smoothness, noise=noise, x_noise=x_noise, num_stairs=num_stairs)
    data = dict(num_stairs=prob["num_stairs"], eps=prob["eps"], noise=prob["noise"], x_noise=prob["x_noise"])
    rng_train, rng_test = _split_seed(seed)
    x_train, y_train = make_staircase_data(n, seed=rng_train, **data)
    x_test, y_test = make_staircase_data(n_test, seed=rng_test, **data)
    basis = SplineBasis(prob["num_stairs"], prob["eps"])
    rows, fits = [], {}
    for spec in methods:
        fit = fit_staircase(x_train, y_train, spec, eps=prob["eps"], smoothness=prob["smoothness"],
                            num_stairs=prob["num_stairs"], basis=basis)
        fits[spec] = fit
        rows.append({"method": spec, "label": fit.label, "n": n, "seed": seed,
                     **metrics(fit, x_train, y_train, x_test, y_test, prob["eps"]), "objective": fit.objective})
    table = pd.DataFrame(rows)
    return (table, fits, (x_train, y_train)) if return_fits else table


def problem_kwargs(params: StaircaseParams) -> dict:
    """The keyword arguments of :func:`run_staircase` that ``params`` fixes."""
    return dict(n_test=params.n_test, eps=params.eps, smoothness=params.smoothness, noise=params.noise,
                x_noise=params.x_noise, num_stairs=params.num_stairs)


def run_settings(params: StaircaseParams) -> pd.DataFrame:
    """All runs of the page: (``n_small`` × ``seeds_small``, ``n_large`` × ``seeds_large``) ×
    methods, one row each, with a ``setting`` column (``small`` / ``large``)."""
    frames = [run_staircase(n, params.methods, seed, **problem_kwargs(params)).assign(setting=setting)
              for setting, n, seeds in (("small", params.n_small, params.seeds_small),
                                        ("large", params.n_large, params.seeds_large))
              for seed in seeds]
    return pd.concat(frames, ignore_index=True)


def staircase_table(results: pd.DataFrame) -> pd.DataFrame:
    """Methods × (setting, metric): the paper's columns averaged over seeds, rows in the order
    the methods were run.  Column groups are headed ``n = …``."""
    order = list(dict.fromkeys(results["label"]))
    groups = []
    for n in dict.fromkeys(results["n"]):
        part = results[results["n"] == n].groupby("label", sort=False)[list(TABLE_COLUMNS)].mean()
        part = part.reindex(order).rename(columns=TABLE_COLUMNS)
        part.columns = pd.MultiIndex.from_product([[f"n = {n}"], part.columns])
        groups.append(part)
    table = pd.concat(groups, axis=1)
    table.index.name = None
    return table


def natural_vs_at(results: pd.DataFrame) -> pd.DataFrame:
    """Per n and seed: the clean test MSE of natural training and of AT, their difference
    (AT − natural), and the parts of each contributed by the rare stairs; needs both
    ``natural`` and ``at`` among the methods run."""
    sub = results[results["method"].isin(["natural", "at"])]
    if set(sub["method"]) != {"natural", "at"}:
        raise ValueError("natural_vs_at needs results for both 'natural' and 'at'")
    wide = sub.pivot_table(index=["n", "seed"], columns="method", values=["test_mse", "test_mse_rare_part"],
                           sort=False)
    out = pd.DataFrame({"natural_test_mse": wide[("test_mse", "natural")], "at_test_mse": wide[("test_mse", "at")],
                        "natural_rare_part": wide[("test_mse_rare_part", "natural")],
                        "at_rare_part": wide[("test_mse_rare_part", "at")]})
    out["at_minus_natural"] = out["at_test_mse"] - out["natural_test_mse"]
    return out.reset_index()


def takeaway(results: pd.DataFrame, noise: float | None = None) -> str:
    """Two or three sentences on what the numbers in ``results`` show — natural vs AT at the
    smallest and the largest n, then robustness and local Lipschitzness at the smallest n —
    computed from ``results``, never typed.  ``noise`` (σ) adds the label-noise floor σ²."""
    cmp = natural_vs_at(results)
    ns = list(dict.fromkeys(results["n"]))
    small, large = ns[0], ns[-1]
    part = cmp[cmp["n"] == small]
    nat, at = part["natural_test_mse"].mean(), part["at_test_mse"].mean()
    first = (f"With n = {small}, adversarial training's clean test MSE averages {at:.4f} against natural "
             f"training's {nat:.4f}")
    if len(part) > 1:
        first += f" (AT higher in {int((part['at_minus_natural'] > 0).sum())} of {len(part)} seeds)"
    first += (f"; the rarely sampled stairs (k ≥ {HEAVY_STAIRS}) alone contribute "
              f"{part['at_rare_part'].mean():.4f} of AT's and {part['natural_rare_part'].mean():.4f} of natural "
              f"training's")
    sentences = [first + "."]
    if large != small:
        part = cmp[cmp["n"] == large]
        nat_l, at_l = part["natural_test_mse"].mean(), part["at_test_mse"].mean()
        floor = f", against a label-noise floor σ² = {noise ** 2:.4f}" if noise is not None else ""
        sentences.append(f"With n = {large} the two are {at_l:.4f} (AT) and {nat_l:.4f} (natural), a relative "
                         f"difference of {(at_l - nat_l) / nat_l:+.2%}{floor}.")
    by = results[results["n"] == small].groupby("method", sort=False)[["adv_test_mse", "test_lipschitz"]].mean()
    sentences.append(f"In exchange, at n = {small} AT's adversarial test MSE is {by.loc['at', 'adv_test_mse']:.4f} "
                     f"(natural: {by.loc['natural', 'adv_test_mse']:.4f}) and its test local Lipschitz value "
                     f"{by.loc['at', 'test_lipschitz']:.3f} (natural: {by.loc['natural', 'test_lipschitz']:.3f}).")
    return " ".join(sentences)


def plot_fits(fits: Sequence[StaircaseFit], x_train, y_train, *, eps: float = 1 / 3, num_stairs: int = 10,
              ax=None, title: str | None = None):
    """The fitted functions over ``[−ε, s−1+ε]`` against the staircase target and the training
    points.  Returns the matplotlib figure."""
    import matplotlib.pyplot as plt  # only the plotting helper needs matplotlib

    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 4.2))
    else:
        fig = ax.figure
    grid = np.linspace(-eps, num_stairs - 1 + eps, 1200)
    ax.plot(grid, staircase_target(grid, eps), color="0.25", lw=1.2, ls="--", label="target f*")
    for fit in fits:
        ax.plot(grid, fit(grid), lw=1.6, label=fit.label)
    ax.scatter(x_train, y_train, s=14, color="k", zorder=5, label=f"training data (n = {len(x_train)})")
    heavy = min(HEAVY_STAIRS, num_stairs)
    if heavy < num_stairs:
        ax.axvspan(heavy - 0.5, num_stairs - 1 + eps, color="0.92", zorder=0, label="rare stairs")
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.set_title(title or "Fitted functions vs the staircase")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig
