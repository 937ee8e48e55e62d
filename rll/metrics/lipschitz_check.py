"""An independent check of the Lipschitz estimators (Eq. 3): the exact value where it is known.

For a piecewise-linear network (``Linear``/``ReLU``/``Flatten`` layers) whose ε-ball around x,
intersected with the pixel box [0, 1]^d, lies inside one linear region, f(x′) = f(x) + J(x′ − x)
on the whole ball, so the quantity Eq. 3 maximises,

    max_{x′ ∈ B∞(x, ε) ∩ [0, 1]^d} ‖f(x) − f(x′)‖₁ / ‖x − x′‖∞,

does not depend on the step length along a direction and equals the ∞→1 norm of the Jacobian J
over the directions the box allows (a pixel at 0 may only grow, one at 1 only shrink).  By
duality ‖Js‖₁ = max_{u ∈ {±1}^C} uᵀJs, and the maximum over the allowed sign vectors s then
separates by pixel, so

    exact(x) = max_{u ∈ {±1}^C} Σᵢ gᵢ((Jᵀu)ᵢ),   gᵢ(v) = |v|, max(v, 0) at a 0-pixel, max(−v, 0) at a 1-pixel,

2^C terms: 1024 for ten classes, whatever the input dimension.  Interval bound propagation
through the layers certifies that no ReLU changes sign on the ball ∩ box (the region condition).
:func:`estimator_check` compares both estimators of :mod:`rll.metrics` with this value.
"""
from __future__ import annotations

import itertools

import torch
import torch.nn as nn

from rll.metrics import lipschitz_ratios

_LAYERS = (nn.Linear, nn.ReLU, nn.Flatten)


def _layers(model: nn.Module) -> list[nn.Module]:
    layers = list(model) if isinstance(model, nn.Sequential) else [model]
    bad = [type(m).__name__ for m in layers if not isinstance(m, _LAYERS)]
    if bad:
        raise ValueError(f"the exact value needs a Sequential of Linear/ReLU/Flatten layers; got {bad}")
    return layers


def one_linear_region(model: nn.Module, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Per example (bool (N,)): no ReLU changes sign for any x′ ∈ B∞(x, ε) ∩ [0, 1]^d, by
    interval bound propagation (sound: True is a proof, False may be conservative)."""
    lo, hi = (x - eps).clamp(0, 1).flatten(1), (x + eps).clamp(0, 1).flatten(1)
    stable = torch.ones(len(x), dtype=torch.bool, device=x.device)
    with torch.no_grad():
        for layer in _layers(model):
            if isinstance(layer, nn.Linear):
                mid, rad = (hi + lo) / 2, (hi - lo) / 2
                mid, rad = layer(mid), rad @ layer.weight.abs().T
                lo, hi = mid - rad, mid + rad
            elif isinstance(layer, nn.ReLU):
                stable &= ((lo >= 0) | (hi <= 0)).all(1)
                lo, hi = lo.clamp_min(0), hi.clamp_min(0)
    return stable


def exact_local_lipschitz(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The exact value of Eq. 3's maximum for each example whose ball lies in one linear region
    (see the module docstring; the caller checks the region with :func:`one_linear_region`).
    float64 (N,)."""
    _layers(model)
    out = []
    for xi in x:
        jac = torch.autograd.functional.jacobian(lambda z: model(z.unsqueeze(0)).squeeze(0), xi)
        jac = jac.reshape(jac.shape[0], -1).double()                       # (C, d)
        flat = xi.flatten()
        signs = torch.tensor(list(itertools.product((-1.0, 1.0), repeat=jac.shape[0])), dtype=torch.float64)
        v = signs @ jac                                                     # (2^C, d): (Jᵀu)ᵢ per u
        g = v.abs()
        g = torch.where(flat <= 0, v.clamp_min(0), g)                       # a 0-pixel may only grow
        g = torch.where(flat >= 1, (-v).clamp_min(0), g)                    # a 1-pixel may only shrink
        out.append(g.sum(1).max())
    return torch.stack(out) if out else torch.empty(0, dtype=torch.float64)


def small_mlp(x: torch.Tensor, y: torch.Tensor, *, hidden: int = 100, epochs: int = 2, seed: int = 0) -> nn.Sequential:
    """A one-hidden-layer ReLU network trained on ``(x, y)`` (Adam 1e-3, batch 64): small
    enough that many ε-balls lie in one linear region (for one hidden layer the interval bounds
    of :func:`one_linear_region` are exact), real enough to have MNIST's geometry."""
    torch.manual_seed(seed)
    classes = int(y.max()) + 1
    model = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), hidden), nn.ReLU(), nn.Linear(hidden, classes))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), 64):
            idx = perm[i:i + 64]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def estimator_check(model: nn.Module, x: torch.Tensor, *, eps: float, seed: int = 0):
    """Both Lipschitz estimators against the exact value on the examples of ``x`` whose ball is
    certified to lie in one linear region: a DataFrame with ``exact``, ``Eq. 3 estimate``,
    ``released estimate`` and their ratios to the exact value, one row per certified example."""
    import pandas as pd

    model = model.eval()
    keep = one_linear_region(model, x, eps)
    xs = x[keep]
    if not len(xs):
        return pd.DataFrame(columns=["exact", "Eq. 3 estimate", "released estimate"])
    exact = exact_local_lipschitz(model, xs)
    paper = lipschitz_ratios(model, xs, eps=eps, mode="paper", generator=torch.Generator().manual_seed(seed))
    released = lipschitz_ratios(model, xs, eps=eps, mode="released", generator=torch.Generator().manual_seed(seed))
    frame = pd.DataFrame({"exact": exact.numpy(), "Eq. 3 estimate": paper.numpy(), "released estimate": released.numpy()})
    frame["Eq. 3 / exact"] = frame["Eq. 3 estimate"] / frame["exact"]
    frame["released / exact"] = frame["released estimate"] / frame["exact"]
    return frame


__all__ = ["estimator_check", "exact_local_lipschitz", "one_linear_region", "small_mlp"]
