"""Robust self-training (RST, Raghunathan et al. [40]) in the paper's supervised form: clean plus λ
times adversarial cross-entropy."""
from __future__ import annotations

from typing import Any

import torch

from rll.attacks import pgd
from rll.losses.common import _ce, _reduce, _setup
from rll.losses.fidelity import Fidelity


def rst_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
             fidelity: Fidelity = "paper", generator: torch.Generator | None = None,
             **params: Any) -> torch.Tensor:
    """Robust self-training with labelled data only (Raghunathan et al. [42]; Appendix A.0.2):

        min_f E{ L(f(x), y) + λ · max_{x′ ∈ B∞(x, ε)} L(f(x′), y) },

    (the appendix calls the weight β; the tables and this function call it ``lam``, λ ∈
    {0.5, 1, 2}, default 1), the inner max by the same PGD as :func:`at_loss`.

    Both: the attack runs in train mode, as for AT.  Paper: the mean.  Released: the sum.
    """
    p = _setup("rst", x, y, eps, fidelity, params)
    x_adv = pgd(model, x, y, eps=eps, step=p["step"], steps=p["steps"], start="uniform",
                mode="train", generator=generator)
    per = _ce(model, x, y) + p["lam"] * _ce(model, x_adv, y)
    return _reduce(per, fidelity)
