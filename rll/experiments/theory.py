"""Section 4: r-separation implies a robust and accurate classifier.

The constructions of the paper's Section 4 on a finite sample, as differentiable torch
modules, so that they can be attacked like any network:

* :class:`DistanceClassifier` — Eq. (1)–(2), Theorem 4.2:
  f(x)_i = dist(x, X⁽ⁱ⁾) / r and g(x) = argmin_i f(x)_i.
* :class:`BinaryDistanceClassifier` — Theorem 4.4 (Figure 3):
  f(x) = (dist(x, X⁻) − dist(x, X⁺)) / (2r) and g = sign f.
* :func:`sample_separation` — the r of Definition 2 for a finite sample.
* :func:`lemma_4_1_certificate` — checks the two hypotheses of Lemma 4.1 (margin ≥ 2,
  1/r-local Lipschitzness in the r-ball, Definition 1) at every point of a sample.
* :func:`astute_points` / :func:`astuteness` / :func:`astuteness_curve` — robust accuracy
  under l∞ PGD (:func:`linf_radius`: the l∞ ball inside an l_p ball).
* :func:`fit_mlp` — a naturally trained MLP, the contrast model (Figure 4's black curve).
* :func:`check_theorem_params`, :func:`decision_grid`, :func:`random_sample` — for the
  notebook ``notebooks/theorem.md`` and the tests.

Everything takes tensors: points X (n, d) and integer labels y (n,); the spiral of
Appendix A.0.1 is :func:`rll.data.make_spiral`.  Distances are l_p with p ∈ {1, 2, ∞}, computed
in float64, so that the margins at sample points are exactly ≥ 2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rll.attacks import linf_ascent, model_mode, pgd

P_CHOICES = (1.0, 2.0, math.inf)
_CHUNK = 4096  # query rows per evaluation (bounds memory on big grids)


# ----------------------------------------------------------------------------- parameters
def parse_p(p) -> float:
    """The l_p exponent as a float in {1, 2, inf}; accepts 1, 2, "1", "2", "inf", math.inf.
    Raises ``ValueError`` naming the valid choices."""
    try:
        value = None if isinstance(p, bool) else float(p)
    except (TypeError, ValueError):
        value = None
    if value not in P_CHOICES:
        raise ValueError(f"unknown p {p!r}; valid choices: 1, 2, 'inf'")
    return value


@dataclass(frozen=True)
class TheoremParams:
    """Every knob of the Theorem 4.2 notebook (``notebooks/theorem.md``), validated; built by
    :func:`check_theorem_params`."""
    n: int = 300
    noise: float = 0.75
    seed: int = 0
    p: float = math.inf
    mlp_epochs: int = 1000
    attack_steps: int = 50
    device: str = "cpu"


def check_theorem_params(*, n=300, noise=0.75, seed=0, p="inf", mlp_epochs=1000,
                         attack_steps=50, device="cpu") -> TheoremParams:
    """Validate the notebook's parameters before any tensor is touched.

    Raises one ``ValueError`` listing every invalid value with what is valid: n an even
    integer ≥ 4 (both spiral arms get points), noise a finite number ≥ 0, seed an integer
    ≥ 0, p one of 1, 2, 'inf', mlp_epochs and attack_steps integers ≥ 1, device 'cpu',
    'cuda' or 'cuda:N' (an available one).  Returns the parameters as :class:`TheoremParams`.
    """
    problems = []
    if not (_is_int(n, 4) and n % 2 == 0):
        problems.append(f"n must be an even integer >= 4, got {n!r}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float, np.integer, np.floating)) \
            or not math.isfinite(noise) or noise < 0:
        problems.append(f"noise must be a finite number >= 0, got {noise!r}")
    if not _is_int(seed, 0):
        problems.append(f"seed must be an integer >= 0, got {seed!r}")
    try:
        p = parse_p(p)
    except ValueError as err:
        problems.append(str(err))
    for name, value in (("mlp_epochs", mlp_epochs), ("attack_steps", attack_steps)):
        if not _is_int(value, 1):
            problems.append(f"{name} must be an integer >= 1, got {value!r}")
    if not _device_ok(device):
        problems.append(f"unknown or unavailable device {device!r}; valid choices: 'cpu', "
                        f"'cuda', 'cuda:N' (CUDA available: {torch.cuda.is_available()})")
    if problems:
        raise ValueError("invalid theorem parameters: " + "; ".join(problems))
    return TheoremParams(n=int(n), noise=float(noise), seed=int(seed), p=p,
                         mlp_epochs=int(mlp_epochs), attack_steps=int(attack_steps),
                         device=str(device))


def _is_int(value, lowest: int) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= lowest


def _device_ok(device) -> bool:
    try:
        dev = torch.device(device)
    except (TypeError, RuntimeError):
        return False
    if dev.type == "cpu":
        return True
    return dev.type == "cuda" and torch.cuda.is_available() and \
        (dev.index or 0) < torch.cuda.device_count()


def _placement(model: nn.Module) -> tuple[torch.dtype, torch.device]:
    """The dtype and device to feed ``model``: its parameters' dtype, or float64 for a
    parameter-free module such as :class:`DistanceClassifier` (whose logits −dist/r are
    large, so a float32 cross-entropy gradient would underflow to 0); its tensors' device."""
    dtype = next(model.parameters(), torch.empty(0, dtype=torch.float64)).dtype
    tensor = next(model.parameters(), next(model.buffers(), None))
    return dtype, (tensor.device if tensor is not None else torch.device("cpu"))


# ----------------------------------------------------------------------------- distances
def pairwise_distances(a: torch.Tensor, b: torch.Tensor, p=math.inf) -> torch.Tensor:
    """Exact pairwise l_p distances, float64 (len(a), len(b)).

    p = 2 uses ``torch.cdist`` without its matrix-product shortcut (which loses the exact
    zeros at sample points); p = 1, ∞ broadcast, since ``torch.cdist``'s backward for them is
    an order of magnitude slower.  :func:`sample_separation` and the classifiers share this
    code path, so the margins at sample points come out exactly ≥ 2.
    """
    p = parse_p(p)
    a, b = a.flatten(1).to(torch.float64), b.flatten(1).to(torch.float64)
    if p == 2:
        return torch.cdist(a, b, p=2.0, compute_mode="donot_use_mm_for_euclid_dist")
    rows = max(1, 2 ** 22 // max(1, b.numel()))
    out = []
    for i in range(0, len(a), rows):
        diff = (a[i:i + rows, None, :] - b[None]).abs()
        out.append(diff.amax(-1) if p == math.inf else diff.sum(-1))
    return torch.cat(out) if out else a.new_zeros(0, len(b))


def lp_norm(v: torch.Tensor, p=math.inf) -> torch.Tensor:
    """Row-wise l_p norm of a batch (B, …) → (B,)."""
    return torch.linalg.vector_norm(v.flatten(1), ord=parse_p(p), dim=1)


def sample_separation(X: torch.Tensor, y: torch.Tensor, p=math.inf) -> float:
    """The separation radius r of a finite labelled sample (Definition 2):

    r = ½ · min{ dist_p(x, x′) : x, x′ in the sample, label(x) ≠ label(x′) },

    the largest r for which the sample is r-separated.  Returns ``math.inf`` when only one
    label is present and 0.0 when two differently-labelled points coincide (not separated).
    """
    X, y = torch.as_tensor(X).flatten(1), torch.as_tensor(y)
    best = math.inf
    for i in range(0, len(X), _CHUNK):
        other = y[i:i + _CHUNK, None] != y[None, :]
        if other.any():
            best = min(best, pairwise_distances(X[i:i + _CHUNK], X, p)[other].min().item())
    return best / 2


# ----------------------------------------------------------------------------- classifiers
class DistanceClassifier(nn.Module):
    """The classifier of Theorem 4.2 on a finite sample (Eq. 1–2):

    f(x)_i = dist_p(x, X⁽ⁱ⁾) / r   (Eq. 1),        g(x) = argmin_i f(x)_i   (Eq. 2),

    with X⁽ⁱ⁾ the sample points of class i and r the separation radius (default
    :func:`sample_separation`).  Each f_i is 1/r-Lipschitz (triangle inequality) and
    f(x)_j − f(x)_y ≥ 2 at every sample point x of class y, so g is astute with radius r on
    the sample (Lemma 4.1).

    ``forward(x)`` returns the LOGITS −f(x), so that ``logits.argmax(1)`` = argmin_i f(x)_i
    = g(x) and the module can be attacked with cross-entropy like any network (ties go to
    the lower class index); ``scores(x)`` returns f(x).  Distances are computed in float64;
    outputs have x's dtype (feed float64 when attacking: the logits are large).

    Args:
        X: sample points (n, d).  y: labels (n,) in {0, …, C−1}, every class present.
        r: radius, default :func:`sample_separation` (X, y, p); must be > 0.
        p: the l_p of dist: 1, 2 or 'inf' (default).
        num_classes: C, default max(y) + 1.

    >>> g = DistanceClassifier(X, y)                 # l∞, r = sample_separation(X, y)
    >>> bool((g(X).argmax(1) == y).all())
    True
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor, *, r: float | None = None,
                 p=math.inf, num_classes: int | None = None):
        super().__init__()
        self.p = parse_p(p)
        X, y = torch.as_tensor(X).flatten(1), torch.as_tensor(y).long()
        self.num_classes = int(y.max()) + 1 if num_classes is None else int(num_classes)
        counts = torch.bincount(y, minlength=self.num_classes)
        if len(counts) > self.num_classes or (counts == 0).any():
            raise ValueError(f"labels must cover each of 0..{self.num_classes - 1} at least "
                             f"once (counts per label: {counts.tolist()})")
        self.r = sample_separation(X, y, self.p) if r is None else float(r)
        if not 0 < self.r < math.inf:
            raise ValueError(f"r must be finite and > 0, got {self.r} (r = 0: two points of "
                             "different labels coincide, the sample is not separated)")
        order = torch.argsort(y, stable=True)           # classes as contiguous slices
        self.register_buffer("points", X[order].to(torch.float64))
        self.register_buffer("labels", y[order])
        self._ends = torch.cumsum(counts, 0).tolist()

    def class_distances(self, x: torch.Tensor) -> torch.Tensor:
        """dist_p(x, X⁽ⁱ⁾) for every class i, float64 (B, C)."""
        x = x.flatten(1)
        starts = [0] + self._ends[:-1]
        out = []
        for i in range(0, len(x), _CHUNK):
            d = pairwise_distances(x[i:i + _CHUNK], self.points, self.p)
            out.append(torch.stack([d[:, s:e].amin(1) for s, e in zip(starts, self._ends)], 1))
        return torch.cat(out)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """f(x) of Eq. (1), shape (B, C)."""
        return (self.class_distances(x) / self.r).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits −f(x): their argmax is g(x) of Eq. (2)."""
        return -self.scores(x)


class BinaryDistanceClassifier(DistanceClassifier):
    """The binary classifier of Theorem 4.4 (Figure 3 plots its f for the spiral):

    f(x) = (dist_p(x, X⁻) − dist_p(x, X⁺)) / (2r),        g = sign f,

    with label 1 the positive class X⁺ and label 0 the negative class X⁻.  f is
    1/r-Lipschitz, and |f| ≥ 1 with the label's sign at every sample point, so g is astute
    with radius r there (Lemma 4.3).

    ``scores(x)`` returns f(x), shape (B,).  ``forward(x)`` returns the two logits
    [−f(x), f(x)]: the argmax is 1 exactly when f > 0, i.e. it is g = sign f (f = 0, the
    boundary, goes to 0).  The negated logits (f, −f) are a Lemma 4.1 score vector with
    margin 2|f| (≥ 2 ⇔ |f| ≥ 1), so :func:`lemma_4_1_certificate` checks Lemma 4.3's
    hypotheses too.  Arguments as :class:`DistanceClassifier`, labels in {0, 1}.
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor, *, r: float | None = None, p=math.inf):
        y = torch.as_tensor(y)
        if not set(y.unique().tolist()) <= {0, 1}:
            raise ValueError("labels must be 0 (negative, X⁻) or 1 (positive, X⁺)")
        super().__init__(X, y, r=r, p=p, num_classes=2)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """f(x) of Theorem 4.4, shape (B,)."""
        d = self.class_distances(x)
        return ((d[:, 0] - d[:, 1]) / (2 * self.r)).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [−f(x), f(x)]: the argmax is 1 iff f(x) > 0 (g = sign f)."""
        f = self.scores(x)
        return torch.stack([-f, f], dim=1)


# ----------------------------------------------------------------------------- Lemma 4.1
@dataclass
class Certificate:
    """What :func:`lemma_4_1_certificate` found, per sample point."""
    r: float
    margins: torch.Tensor      # min_{j≠y} f(x)_j − f(x)_y
    lipschitz: torch.Tensor    # max seen |f_i(x) − f_i(x′)| / dist(x, x′), x′ ∈ B(x, r)
    holds_margin: bool         # every margin ≥ 2
    holds_lipschitz: bool      # every ratio ≤ 1/r
    holds: bool                # both, at every point: g astute with radius r (Lemma 4.1)

    @property
    def bound(self) -> float:
        """The Lipschitz constant Lemma 4.1 asks for, 1/r."""
        return 1 / self.r

    def summary(self) -> dict:
        """One table row: r, the smallest margin, the largest ratio against 1/r, holds."""
        ratio = self.lipschitz.max().item()
        return {"points": len(self.margins), "r": self.r,
                "min margin (needs >= 2)": self.margins.min().item(),
                "max Lipschitz ratio": ratio, "1/r": self.bound,
                "ratio * r (needs <= 1)": ratio * self.r, "holds": self.holds}


def lemma_4_1_certificate(classifier: nn.Module, X: torch.Tensor, y: torch.Tensor, r: float,
                          *, p=None, n_random: int = 32, steps: int = 20, tol: float = 1e-6,
                          seed: int = 0) -> Certificate:
    """Check the hypotheses of Lemma 4.1 at every point x of (X, y), with f = −classifier(x):

    (a) margin: f(x)_j − f(x)_y ≥ 2 for all j ≠ y;
    (b) f is 1/r-locally Lipschitz at radius r (Definition 1): the largest observed
        |f_i(x) − f_i(x′)| / dist_p(x, x′) over x′ ∈ B_p(x, r) is ≤ (1/r)(1 + tol).

    If both hold at x, g = argmin_i f_i is astute at x with radius r (Lemma 4.1).  (a) is
    exact; (b) is empirical, over ``n_random`` random x′ ∈ B_p(x, r) (Gaussian direction,
    l_p distance uniform in [0, r]), the point at distance r towards x's nearest sample
    point of each class (where the distance functions of Eq. 1 attain the ratio 1/r
    exactly), and ``steps`` signed-gradient steps pushing each f_i up and down inside
    B∞(x, r / d^{1/p}) ⊂ B_p(x, r).

    ``f = −logits`` makes this check :class:`DistanceClassifier` (f of Eq. 1),
    :class:`BinaryDistanceClassifier` (f = (f, −f): Lemma 4.3) or any other model.
    ``p`` defaults to ``classifier.p`` (else ∞).  ``tol`` absorbs float rounding: margin
    ≥ 2 − tol and ratio ≤ (1 + tol)/r.  The random choices are seeded by ``seed``.
    """
    p = parse_p(getattr(classifier, "p", math.inf) if p is None else p)
    dtype, device = _placement(classifier)
    X = torch.as_tensor(X).flatten(1).to(device=device, dtype=dtype)
    y = torch.as_tensor(y).long().to(device)
    gen = torch.Generator(device=device).manual_seed(seed)

    def f(z: torch.Tensor) -> torch.Tensor:
        return -classifier(z)

    with model_mode(classifier, "eval"):
        with torch.no_grad():
            fx = f(X).to(torch.float64)
        true = fx.gather(1, y[:, None])
        margins = (fx - true).scatter(1, y[:, None], math.inf).amin(1)
        ratios = torch.zeros(len(X), dtype=torch.float64, device=device)
        for x_prime in _ball_points(f, X, y, fx.shape[1], r, p, n_random, steps, gen):
            with torch.no_grad():
                change = (f(x_prime).to(torch.float64) - fx).abs().amax(1)
            dist = lp_norm(x_prime - X, p).to(torch.float64)
            ratio = torch.where(dist > 0, change / dist.clamp_min(1e-300), 0.0)
            ratios = torch.maximum(ratios, ratio)
    holds_margin = bool((margins >= 2 - tol).all())
    holds_lipschitz = bool((ratios <= (1 + tol) / r).all())
    return Certificate(r=float(r), margins=margins.cpu(), lipschitz=ratios.cpu(),
                       holds_margin=holds_margin, holds_lipschitz=holds_lipschitz,
                       holds=holds_margin and holds_lipschitz)


def _ball_points(f, X, y, num_classes, r, p, n_random, steps, gen):
    """Yield batches x′ with x′_k ∈ B_p(X_k, r), for the Lipschitz check."""
    n, d = X.shape
    for _ in range(n_random):                         # random direction, uniform radius
        u = torch.randn(X.shape, generator=gen, dtype=X.dtype, device=X.device)
        rad = r * torch.rand(n, 1, generator=gen, dtype=X.dtype, device=X.device)
        yield X + rad * u / lp_norm(u, p)[:, None].clamp_min(1e-300)
    dist = pairwise_distances(X, X, p)
    for c in range(num_classes):                      # towards the nearest point of class c
        near, idx = dist.masked_fill((y[None, :] != c) | (dist == 0), math.inf).min(1)
        t = torch.where(torch.isfinite(near), r / near.clamp_min(r), 0.0).to(X.dtype)
        yield X + t[:, None] * (X[idx] - X)
    rho = r / d ** (1 / p)                            # B∞(x, ρ) ⊂ B_p(x, r)
    for i in range(num_classes):                      # adversarial: push f_i up, then down
        for sign in (1.0, -1.0):
            yield linf_ascent(lambda z, i=i, s=sign: s * f(z)[:, i], X, eps=rho, step=rho / 4,
                              steps=steps, start="uniform", bounds=None, generator=gen)


# ----------------------------------------------------------------------------- astuteness
def linf_radius(r: float, p=math.inf, dim: int = 2) -> float:
    """The largest l∞ radius whose ball fits in the l_p ball of radius r in R^dim:
    r / dim^{1/p} (r itself for p = ∞).  The l∞ attacks test an l_p guarantee there."""
    return r / dim ** (1 / parse_p(p))


def astute_points(model: nn.Module, X: torch.Tensor, y: torch.Tensor, radius: float, *,
                  steps: int = 50, step: float | None = None, restarts: int = 3,
                  seed: int = 0) -> torch.Tensor:
    """Per point, whether the model is (empirically) astute at x with l∞ radius ``radius``:
    argmax model(x′) = y both for x′ = x and for the x′ ∈ B∞(x, radius) found by
    :func:`rll.attacks.pgd` (``steps`` steps of ``step`` = radius/10 by default, ``restarts``
    random restarts, no [0, 1] box since the spiral lives in the plane).  Bool (n,), on CPU.

    An attack only finds failures, so this over-estimates astuteness in general; for
    :class:`DistanceClassifier` with radius < r, Lemma 4.1 makes every point astute.  At
    radius exactly r the proof of Lemma 4.1 only gives f(x′)_j ≥ f(x′)_y: the midpoint of the
    closest differently-labelled pair is a tie (f = 0), which the argmax gives to class 0.
    """
    if not radius >= 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    dtype, device = _placement(model)
    X = torch.as_tensor(X).to(device=device, dtype=dtype)
    y = torch.as_tensor(y).long().to(device)
    with model_mode(model, "eval"), torch.no_grad():
        ok = model(X).argmax(1) == y
    if radius > 0:
        gen = torch.Generator(device=device).manual_seed(seed)
        x_adv = pgd(model, X, y, eps=radius, step=radius / 10 if step is None else step,
                    steps=steps, restarts=restarts, bounds=None, generator=gen)
        with model_mode(model, "eval"), torch.no_grad():
            ok &= model(x_adv).argmax(1) == y
    return ok.cpu()


def astuteness(model: nn.Module, X: torch.Tensor, y: torch.Tensor, radius: float,
               **attack_kw) -> float:
    """Astuteness (robust accuracy) with l∞ radius ``radius`` on the sample (X, y): the
    fraction of points where :func:`astute_points` holds (same attack keywords: ``steps``
    = 50, ``step`` = radius/10, ``restarts`` = 3, ``seed`` = 0).  For an l_p classifier of
    Theorem 4.2 with p < ∞, the guarantee covers l∞ radius :func:`linf_radius` (r, p, d).

    >>> astuteness(g, X, y, 0.99 * g.r)       # 1.0 for the classifier of Theorem 4.2
    1.0
    """
    return astute_points(model, X, y, radius, **attack_kw).double().mean().item()


def astuteness_curve(model: nn.Module, X: torch.Tensor, y: torch.Tensor,
                     radii: Sequence[float], **attack_kw) -> np.ndarray:
    """:func:`astuteness` at each radius of ``radii`` (same attack keywords)."""
    return np.array([astuteness(model, X, y, float(rad), **attack_kw) for rad in radii])


def astuteness_rows(models: dict, X: torch.Tensor, y: torch.Tensor, radius: float,
                    **attack_kw) -> tuple[dict, dict]:
    """Each model of ``models`` (name → model) attacked at l∞ ``radius`` (:func:`astute_points`,
    same attack keywords): ``rows`` name → {clean accuracy, astuteness (fractions),
    predictions flipped (count)} and ``flipped`` name → bool per point (correct clean, wrong
    under the attack)."""
    rows, flipped = {}, {}
    for name, model in models.items():
        clean = astute_points(model, X, y, 0.0)
        robust = astute_points(model, X, y, radius, **attack_kw)
        flipped[name] = clean & ~robust
        rows[name] = {"clean accuracy": clean.double().mean().item(), "astuteness": robust.double().mean().item(),
                      "predictions flipped": int(flipped[name].sum())}
    return rows, flipped


# ----------------------------------------------------------------------------- contrast model
def fit_mlp(X: torch.Tensor, y: torch.Tensor, *, hidden: int = 64, layers: int = 3,
            epochs: int = 1000, lr: float = 1e-2, seed: int = 0) -> nn.Module:
    """A plain, naturally trained MLP: the contrast model (Figure 4's black curve).

    ``layers`` hidden ReLU layers of width ``hidden``, trained by full-batch Adam (``lr``)
    on the cross-entropy of the clean points only — no adversarial training, no Lipschitz
    control — for ``epochs`` steps.  Deterministic for a given ``seed`` (initialised under a
    forked RNG, so the caller's global RNG is untouched).  Returns the model in eval mode,
    float32, on X's device.
    """
    X = torch.as_tensor(X).float().flatten(1)
    y = torch.as_tensor(y).long().to(X.device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        widths = [X.shape[1]] + [hidden] * layers
        body = [m for a, b in zip(widths, widths[1:]) for m in (nn.Linear(a, b), nn.ReLU())]
        model = nn.Sequential(*body, nn.Linear(widths[-1], int(y.max()) + 1)).to(X.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        opt.zero_grad()
        F.cross_entropy(model(X), y).backward()
        opt.step()
    return model.eval()


# ----------------------------------------------------------------------------- helpers
def random_sample(n: int, *, dim: int = 2, num_classes: int = 3,
                  seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n uniform points of [0, 1]^dim with balanced random labels 0..num_classes−1.

    Any finite sample whose differently-labelled points are distinct is r-separated with
    r = :func:`sample_separation` > 0 (Definition 2), so Theorem 4.2 applies even to random
    labels; only r shrinks.  Returns (X float64 (n, dim), y int64 (n,)).
    """
    gen = torch.Generator().manual_seed(seed)
    X = torch.rand(n, dim, generator=gen, dtype=torch.float64)
    y = (torch.arange(n) % num_classes)[torch.randperm(n, generator=gen)]
    return X, y


def decision_grid(model_or_fn: nn.Module | Callable[[torch.Tensor], torch.Tensor],
                  xlim: tuple[float, float], ylim: tuple[float, float],
                  n: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate a function of the plane on an n × n grid, for contour plots.

    ``model_or_fn`` maps points (m, 2) to values (m,) or (m, C): a module (e.g. logits) or a
    module's method (e.g. ``g.scores``, f of Theorem 4.4), run in eval mode with the
    module's dtype and device, or any other callable (given float64 points).  Returns numpy
    ``xx, yy`` (n, n) and ``values`` (n, n) or (n, n, C).
    """
    xs = torch.linspace(*xlim, n, dtype=torch.float64)
    ys = torch.linspace(*ylim, n, dtype=torch.float64)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([xx.ravel(), yy.ravel()], dim=1)
    module = model_or_fn if isinstance(model_or_fn, nn.Module) else \
        getattr(model_or_fn, "__self__", None)
    if isinstance(module, nn.Module):
        dtype, device = _placement(module)
        points = points.to(device=device, dtype=dtype)
        with model_mode(module, "eval"), torch.no_grad():
            values = torch.cat([model_or_fn(points[i:i + _CHUNK])
                                for i in range(0, len(points), _CHUNK)])
    else:
        with torch.no_grad():
            values = torch.as_tensor(model_or_fn(points))
    values = values.detach().cpu().double().numpy()
    return xx.numpy(), yy.numpy(), values.reshape(n, n, *values.shape[1:])
