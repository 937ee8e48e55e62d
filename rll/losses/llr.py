"""Local linearity regularisation (LLR, Qin et al. [39]): clean cross-entropy plus λ times the
linearity gap and μ times the gradient's alignment, each at the gap's inner maximiser."""
from __future__ import annotations

from typing import Any

import torch

from rll.attacks import linf_ascent, model_mode
from rll.losses.common import _ce, _dot, _reduce, _replay_point, _setup
from rll.losses.fidelity import Fidelity


def llr_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
             fidelity: Fidelity = "paper", generator: torch.Generator | None = None,
             **params: Any) -> torch.Tensor:
    """Local linearity regularisation (Qin et al. [40]; Appendix A.0.2):

        g(δ) = | L(f(x + δ), y) − L(f(x), y) − δᵀ∇ₓL(f(x), y) |,
        γ = max_{δ ∈ B∞(0, ε)} g(δ),   δ_LLR = argmax g,
        min_f E{ L(f(x), y) + λ·γ + μ·|δ_LLRᵀ ∇ₓL(f(x), y)| },

    λ = 4, μ = 3 (the released defaults; Restricted ImageNet λ = 3, μ = 6).

    Both (the text is silent on the inner maximisation; the released loop): model in eval
    mode, δ₀ = 0.001·N(0, I) (the first gradient taken at x + δ₀ unprojected), then ``steps``
    = 2 steps of ``step`` = ε/2 along ∇/‖∇‖∞ (per example; only the largest-gradient pixels
    move by a full step, a normal draw where ∇ = 0), each followed by clamping x + δ to
    [0, 1] and *rescaling* δ to ‖δ‖∞ ≤ ε (``torch.renorm``), not clipping it
    (:func:`rll.attacks.linf_ascent` with ``direction="linf", projection="rescale"``).  The
    outer loss is evaluated in the caller's mode with δ fixed.

    Paper: g as the appendix writes it, per example, with ∇ₓℓ(x) the true input gradient held
    fixed during the ascent and, in the outer loss, computed with ``create_graph=True`` so both
    the γ and the μ term train the parameters through it (double back-propagation); in train
    mode ℓ(x + δ) is evaluated under the same dropout masks as ℓ(x) (the random-number state is
    replayed), so γ is one network's linearity gap, not the O(1) difference of two
    independently masked networks.  The mean over the batch.

    Released: the code's input-gradient helper returned a tensor it had just zeroed, and the
    ℓ(x) term of g was commented out, so g(δ) = |Σᵢ ℓᵢ(x + δ)|, the μ term is 0, and the loss
    that ran was Σ ℓ(x) + λ·Σ ℓ(x + δ), with δ from the two-step ascent of the cross-entropy
    above: a weak RST.
    """
    p = _setup("llr", x, y, eps, fidelity, params)
    released = fidelity == "released"

    with model_mode(model, "eval"):
        if released:
            def objective(z: torch.Tensor) -> torch.Tensor:
                return _ce(model, z, y)   # ∇ of |Σᵢ ℓᵢ| w.r.t. example i is ∇ℓᵢ (ℓ ≥ 0)
        else:
            with torch.enable_grad():
                x0 = x.detach().requires_grad_(True)
                ce0 = _ce(model, x0, y)
                (g0,) = torch.autograd.grad(ce0.sum(), x0)
            ce0 = ce0.detach()

            x_fixed = x.detach()

            def objective(z: torch.Tensor) -> torch.Tensor:
                return (_ce(model, z, y) - ce0 - _dot(z - x_fixed, g0)).abs()

        x_adv = linf_ascent(objective, x, eps=eps, step=p["step"], steps=p["steps"], start="normal",
                            direction="linf", projection="rescale", project_start=False,
                            generator=generator)
    x_adv = x_adv.detach()
    if released:
        per = _ce(model, x, y) + p["lam"] * _ce(model, x_adv, y)  # μ·|δᵀ0| = 0
    else:
        xr = x.detach().requires_grad_(True)
        replay = _replay_point(x.device)
        ce = _ce(model, xr, y)
        (g,) = torch.autograd.grad(ce.sum(), xr, create_graph=True)
        lin = _dot(x_adv - x.detach(), g)  # δᵀ∇ₓℓ(x), differentiable in the parameters
        replay()  # ℓ(x + δ) under ℓ(x)'s dropout masks
        gamma = (_ce(model, x_adv, y) - ce - lin).abs()
        per = ce + p["lam"] * gamma + p["mu"] * lin.abs()
    return _reduce(per, fidelity)
