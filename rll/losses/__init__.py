"""Training objectives of the six methods the paper compares (Section 5.1, Appendix A.0.2).

Every loss is a plain function ``loss(model, x, y, *, eps, fidelity="paper", generator=None,
**params)`` returning a scalar to call ``.backward()`` on (``generator``, optional, seeds the
random starts of the inner maximisations).  It computes one value per example and reduces:

* ``fidelity="paper"``: the **mean** over the batch, the expectation the appendix writes;
* ``fidelity="released"``: the **sum** over the batch, as the authors' released code did (so
  effective learning rate is batch size × its nominal one), plus
  the method-specific differences each docstring lists (GR's step h = 1 and doubled clean
  gradient; LLR's zeroed input gradient).

Where the paper's text is silent, ``"paper"`` follows the released code (the project's
fidelity rule): the AT/RST inner attack runs in train mode, the TRADES and LLR inner loops
take their first gradient at the unprojected start, LLR's inner step is the released
l∞-normalised step with rescaling.  Each docstring marks where a statement comes from:
"Paper:" the text, "Released:" the code, "Both:" the code where the text is silent.

Inner maximisations run through :func:`rll.attacks.linf_ascent` / :func:`rll.attacks.pgd`
(the one PGD loop); they differentiate with respect to the input only, so they leave no
gradients on the parameters, and the model's train/eval flags are restored afterwards.  The
final loss is evaluated in the caller's mode (normally train).  Batch-norm running statistics
are updated by every forward pass made in train mode, including a released-fidelity attack's.

``METHOD_PARAMS[method]`` lists the keyword parameters each loss accepts and their defaults;
``None`` means "depends on ``eps``/``fidelity``" as the docstrings say, and
:func:`resolve_params` returns the concrete values a call would use (for run records).
Unknown keywords raise ``ValueError`` listing the accepted ones.  The paper's grid: RST λ ∈ {0.5, 1, 2},
TRADES β ∈ {1, 3, 6}; LLR (λ, μ) = (4, 3), Restricted ImageNet (3, 6).

>>> loss = LOSSES["trades"](model, x, y, eps=0.031, beta=6.0)
>>> loss.backward()
"""
from __future__ import annotations

from typing import Callable

import torch

from rll.losses.at import at_loss
from rll.losses.common import METHOD_PARAMS, PARAM_CHOICES, resolve_params
from rll.losses.fidelity import (
    FIDELITIES,
    FIDELITY_REVISION,
    REVISIONS,
    Fidelity,
    is_current,
    is_current_revision,
)
from rll.losses.gr import gr_loss
from rll.losses.llr import llr_loss
from rll.losses.natural import natural_loss
from rll.losses.precision import (
    BF16_MIN_GR_STEP,
    BF16_REFUSED,
    PRECISIONS,
    bf16_refusal,
    check_precision,
    fastest_precision,
)
from rll.losses.rst import rst_loss
from rll.losses.trades import trades_loss

# ----------------------------------------------------------------------------- methods


LossFn = Callable[..., torch.Tensor]

LOSSES: dict[str, LossFn] = {
    "natural": natural_loss,
    "gr": gr_loss,
    "llr": llr_loss,
    "at": at_loss,
    "rst": rst_loss,
    "trades": trades_loss,
}
"""Method name → loss function (the names used in the paper's tables, lower-case)."""


def get_loss(method: str) -> LossFn:
    """``LOSSES[method]``, with a ``ValueError`` listing the methods for an unknown name."""
    try:
        return LOSSES[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(LOSSES)}") from None

__all__ = ["at_loss", "METHOD_PARAMS", "PARAM_CHOICES", "resolve_params", "FIDELITIES", "FIDELITY_REVISION", "REVISIONS", "Fidelity", "is_current", "is_current_revision", "gr_loss", "llr_loss", "natural_loss", "BF16_MIN_GR_STEP", "BF16_REFUSED", "PRECISIONS", "bf16_refusal", "check_precision", "fastest_precision", "rst_loss", "trades_loss", "LossFn", "get_loss"]
