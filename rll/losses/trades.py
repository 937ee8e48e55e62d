"""TRADES (Zhang et al. [60]): clean cross-entropy plus β times the KL divergence between the clean
and the adversarial prediction, maximised over the ε-ball."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from rll.attacks import linf_ascent, model_mode
from rll.losses.common import _ce, _kl, _reduce, _setup
from rll.losses.fidelity import Fidelity


def trades_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                fidelity: Fidelity = "paper", generator: torch.Generator | None = None,
                **params: Any) -> torch.Tensor:
    """TRADES (Zhang et al. [65]; Appendix A.0.2):

        min_f E{ L(f(x), y) + β · max_{x′ ∈ B∞(x, ε)} KL(softmax f(x) ‖ softmax f(x′)) },

    with the KL summed over classes per example (TRADES' ``KLDivLoss(log_softmax(f(x′)),
    softmax(f(x)))``).  Both (the released code, TRADES' own): inner max with the model in eval
    mode, start x + 0.001·N(0, I) (the first gradient is taken before the start is projected),
    ``steps`` = 10 signed steps of ``step`` = ε/5 on the KL against the eval-mode clean
    prediction, each projected onto B∞(x, ε) ∩ [0, 1].  The outer loss is
    evaluated in the caller's mode and differentiates through both f(x) and f(x′); as in
    TRADES' code, f(x) is computed once for the CE and again for the KL target (after f(x′)),
    so in train mode the two draw different dropout masks and all three passes update the
    batch-norm running statistics.

    Paper: mean over the batch (TRADES divides the batch-summed KL by the batch size).
    Released: the same objective summed over the batch (the released "strades" variant).
    """
    p = _setup("trades", x, y, eps, fidelity, params)
    with model_mode(model, "eval"):
        with torch.no_grad():
            p_clean = F.softmax(model(x), dim=1)

        def objective(z: torch.Tensor) -> torch.Tensor:
            return _kl(F.log_softmax(model(z), dim=1), p_clean)

        x_adv = linf_ascent(objective, x, eps=eps, step=p["step"], steps=p["steps"],
                            start="normal", project_start=False, generator=generator)
    ce = _ce(model, x, y)
    kl = _kl(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x), dim=1))
    return _reduce(ce + p["beta"] * kl, fidelity)
