"""Adversarial training (AT, Madry et al. [32]): cross-entropy at the PGD adversarial example."""
from __future__ import annotations

from typing import Any

import torch

from rll.attacks import pgd
from rll.losses.common import _ce, _reduce, _setup
from rll.losses.fidelity import Fidelity


def at_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
            fidelity: Fidelity = "paper", generator: torch.Generator | None = None,
            **params: Any) -> torch.Tensor:
    """Adversarial training (Madry et al. [32]; Appendix A.0.2, Eq. 4):

        min_f E{ max_{x′ ∈ B∞(x, ε)} L(f(x′), y) },

    the inner max by PGD (``steps`` = 10 signed steps of ``step`` = ε/5 from a uniform random
    start, clipped to [0, 1]), the loss the cross-entropy at the PGD point.

    Both (the text is silent; the released code ran it so): the attack runs in **train**
    mode — batch-norm batch statistics, running statistics updated by the attack's forward
    passes, dropout active.  The loss itself is computed in the caller's mode.
    Paper: the mean over the batch.  Released: the sum.
    """
    p = _setup("at", x, y, eps, fidelity, params)
    x_adv = pgd(model, x, y, eps=eps, step=p["step"], steps=p["steps"], start="uniform",
                mode="train", generator=generator)
    return _reduce(_ce(model, x_adv, y), fidelity)
