"""Attacks in the l∞ threat model on [0, 1] pixel space.

Threat model (Section 2 and 5.1 of the paper): an adversary may move an input x to any
x′ ∈ B∞(x, ε) ∩ [0, 1]^d, with ε = 0.1 (MNIST), 0.031 (SVHN, CIFAR-10) and 0.005
(Restricted ImageNet).  Inputs are never normalised.

Geometry (random start, signed step, projection) lives in one loop, :func:`linf_ascent`;
every attack, the TRADES inner maximisation and the Lipschitz estimate of
:mod:`rll.metrics` are that loop with a different per-example objective.

* :func:`pgd` — the paper's evaluation attack: PGD-10 with step ε/5 and a uniform random
  start (Section 5.1, Madry et al. [32]); optional restarts.
* :func:`multi_targeted` — the multi-targeted attack of Appendix D.1 (Gowal et al. [18]):
  one targeted PGD per class, 20 steps of ε/10, then one example kept per input, chosen as
  the released code chose it (``selection="released"``) or as the per-example worst case
  (``selection="worst"``).

Every attack runs the model in eval mode by default and restores the caller's train/eval
flags afterwards (:func:`model_mode`), never modifies its inputs, and returns a tensor with
the input's shape, dtype and device inside the ε-ball and [0, 1].
"""
from __future__ import annotations

from rll.attacks.autoattack import (
    AUTOATTACK_QUERIES,
    AUTOATTACK_STEPS,
    AUTOATTACK_VERSIONS,
    TORCHATTACKS_FIX,
    WHITE_BOX,
    autoattack,
    autoattack_component,
    require_torchattacks,
)
from rll.attacks.multi_targeted import multi_targeted, multi_targeted_selections
from rll.attacks.pgd import pgd
from rll.attacks.steps import (
    DIRECTIONS,
    KEEPS,
    MODES,
    PROJECTIONS,
    SELECTIONS,
    STARTS,
    Mode,
    Objective,
    Start,
    linf_ascent,
    model_mode,
    project_linf,
    random_start,
    rescale_linf,
)

__all__ = ["Objective", "Start", "Mode", "STARTS", "MODES", "KEEPS", "SELECTIONS", "DIRECTIONS", "PROJECTIONS", "model_mode", "project_linf", "rescale_linf", "random_start", "linf_ascent", "pgd", "multi_targeted", "multi_targeted_selections", "AUTOATTACK_VERSIONS", "WHITE_BOX", "AUTOATTACK_STEPS", "AUTOATTACK_QUERIES", "TORCHATTACKS_FIX", "require_torchattacks", "autoattack_component", "autoattack"]
