"""The model f(x) = φ(x)ᵀθ on cubic B-splines and each method's exact training objective, solved in
closed form (natural, GR) or by smoothed Newton steps; the fit's adversarial error and local
Lipschitz constant."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import linalg
from scipy.interpolate import BSpline

from rll.experiments.staircase.params import (
    TAUS,
    _check_problem,
    method_label,
    parse_method,
)


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


def adversarial_mse(fit: StaircaseFit, x, y, eps: float = 1 / 3) -> float:
    """``mean_i max_{x' ∈ {x−ε, x, x+ε}} (f(x') − yᵢ)²``."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    return float(np.max([(fit(x + d) - y) ** 2 for d in (-eps, 0.0, eps)], axis=0).mean())


def local_lipschitz(fit: StaircaseFit, x, eps: float = 1 / 3) -> float:
    """Empirical local Lipschitz value ``mean_i max_{δ=±ε} |f(xᵢ+δ) − f(xᵢ)| / ε``."""
    x = np.asarray(x, float)
    fx = fit(x)
    return float(np.max([np.abs(fit(x + d) - fx) for d in (-eps, eps)], axis=0).mean() / eps)
