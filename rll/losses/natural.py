"""Natural training: cross-entropy on clean inputs."""
from __future__ import annotations

from typing import Any

import torch

from rll.losses.common import _ce, _reduce, _setup
from rll.losses.fidelity import Fidelity


def natural_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                 fidelity: Fidelity = "paper", generator: torch.Generator | None = None,
                 **params: Any) -> torch.Tensor:
    """Natural training: L(f(x), y), the cross-entropy on clean inputs.

    ``eps`` and ``generator`` are accepted for a uniform signature and unused.
    Released: summed over the batch instead of averaged.
    """
    _setup("natural", x, y, eps, fidelity, params)
    return _reduce(_ce(model, x, y), fidelity)
