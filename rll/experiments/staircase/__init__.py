"""The Staircase: the synthetic 1-D regression of the paper's Appendix A.

Raghunathan, Xie, Yang, Duchi and Liang (2019), *Adversarial training can hurt
generalization* (arXiv:1906.06032), built this problem to show adversarial training
over-fitting when samples are few; the paper (Yang et al., NeurIPS 2020, Appendix A) re-runs
natural training and AT with the authors' code and adds GR, LLR, RST and TRADES.

**Our reconstruction** (the paper's text gives only a paragraph; where it is silent we follow
the released notebook of the paper, ``robust-local-lipschitz/notebooks/splines.ipynb``, and the
workplace notes, ``official-code-notes.md`` § Staircase):

* **Stairs and target.**  ``s = num_stairs = 10`` stairs.  Stair ``k`` is the set of inputs
  ``{k − ε, k, k + ε}`` and every one of them has target ``k``: the target is the staircase
  ``f*(x) = ⌊x + 1/2⌋`` (steps half-way between integers), which is *invariant* under the
  adversary below.  A literal ``⌊x⌋`` would give ``f*(k − ε) = k − 1`` and make the
  perturbation set inconsistent with the labels; the authors' code labels ``k − ε`` with ``k``.
* **Inputs.**  A stair is drawn from a categorical law: the first five stairs carry weight 1/5
  each and the others 0.01 each, normalised (so stairs 5–9 are *rare*: ≈ 0.95 % each) — this
  imbalance is what lets AT hurt.  With probability ``1 − x_noise`` (``x_noise = 0.005``) the
  input is the integer ``k``; otherwise it is ``k − ε`` or ``k + ε`` with probability 1/2 each.
  (A looser description — equal stair weights, off-integer mass spread uniformly over
  ``[0, s)`` — is sometimes quoted; the released code puts it on ``k ± ε`` with the unequal
  weights above, and we follow the code.)
* **Labels.**  ``y = f*(x) + N(0, σ²)`` with ``σ = noise = 0.1``; the test set (``n_test``
  points, default 10 000) is drawn from the same law, labels noisy as in the released code.
* **Adversary.**  The three-point set ``T(x) = {x − ε, x, x + ε}``, ``ε = 1/3``.  (The paper's
  Appendix A prints ``{x − ε, x, x − ε}``, a typo.)
* **Model.**  ``f(x) = φ(x)ᵀθ`` with cubic B-splines ``φ`` on the knots ``{k, k ± ε}``
  (``k = 0 … s−1``), padded by four knots ``ε`` apart on each side (34 basis functions for
  ``s = 10``), evaluated with polynomial extrapolation outside the padded span.  The
  smoothness ("RKHS") penalty is the second-difference norm of the coefficients,
  ``‖D₂θ‖² = θᵀD₂ᵀD₂θ``, with weight ``λ = smoothness = 0.01`` (the released notebook and the
  notes; the paper's Appendix A text says 0.1).

**Objectives** (sums over the ``n`` training pairs; ``Pen(θ) = λ‖D₂θ‖²``):

* natural:        ``Σ (f(xᵢ) − yᵢ)² + Pen``                                  — closed form
* GR(β=1e-4):     ``Σ (f(xᵢ) − yᵢ)² + β Σ f'(xᵢ)² + Pen``                     — closed form
* LLR(γ=1e-2):    ``Σ (f(xᵢ) − yᵢ)² + γ Σ max_{δ=±ε} |f(xᵢ+δ) − f(xᵢ) − δ f'(xᵢ)| + Pen``
* AT:             ``Σ max_{x'∈T(xᵢ)} (f(x') − yᵢ)² + Pen``
* RST(λ_rst):     ``Σ (f(xᵢ) − yᵢ)² + λ_rst Σ max_{x'∈T(xᵢ)} (f(x') − yᵢ)² + Pen``
* TRADES(β):      ``Σ (f(xᵢ) − yᵢ)² + β Σ max_{x'∈T(xᵢ)} (f(x') − f(xᵢ))² + Pen``

(RST uses labelled data only, as in the paper's tables; GR penalises the squared input
derivative of ``f``, LLR only the local-linearity term γ, as Appendix A says — the released
notebook codes both differently, we follow the text.)  The quadratic
objectives are solved exactly by least squares.  The others are convex but not smooth (a max
of quadratics or of absolute values); they are solved by damped Newton steps (exact Hessian;
34 parameters) on the log-sum-exp smoothing ``τ log Σ_k exp(g_k/τ)`` of each max (an upper
bound within ``τ log K`` of it), with ``τ`` shrunk from 1e-1 to 1e-9 and warm starts, keeping
the iterate with the best *exact* objective.
The tests check this against a generic constrained solver on small problems.

**Metrics** (``metrics``): train/test MSE, adversarial MSE ``mean max_{x'∈T(x)} (f(x') − y)²``,
the empirical local Lipschitz value ``mean max_{δ=±ε} |f(x+δ) − f(x)| / ε`` over the test
points, and the gaps ``test − train`` (standard and adversarial).

Example::

    >>> from rll.experiments import staircase
    >>> table = staircase.run_staircase(40, ["natural", "at"], seed=0)
    >>> table[["label", "test_mse", "adv_test_mse"]]          # doctest: +SKIP
"""
from __future__ import annotations

from rll.experiments.staircase.experiment import (
    metrics,
    natural_vs_at,
    plot_fits,
    problem_kwargs,
    run_settings,
    run_staircase,
    staircase_table,
    takeaway,
)
from rll.experiments.staircase.fit import (
    SplineBasis,
    StaircaseFit,
    adversarial_mse,
    fit_staircase,
    local_lipschitz,
    objective,
)
from rll.experiments.staircase.params import (
    DEFAULT_METHODS,
    DEFAULT_STRENGTH,
    HEAVY_STAIRS,
    HEAVY_WEIGHT,
    LIGHT_WEIGHT,
    METHODS,
    METRICS,
    STAIRCASE_PARAMS,
    TABLE_COLUMNS,
    TAUS,
    StaircaseParams,
    check_staircase_params,
    method_label,
    parse_method,
)
from rll.experiments.staircase.problem import (
    make_staircase_data,
    stair_weights,
    staircase_target,
)

__all__ = ["METHODS", "STAIRCASE_PARAMS", "DEFAULT_STRENGTH", "DEFAULT_METHODS", "HEAVY_STAIRS", "HEAVY_WEIGHT", "LIGHT_WEIGHT", "TAUS", "METRICS", "TABLE_COLUMNS", "parse_method", "method_label", "StaircaseParams", "check_staircase_params", "stair_weights", "staircase_target", "make_staircase_data", "SplineBasis", "StaircaseFit", "objective", "fit_staircase", "adversarial_mse", "local_lipschitz", "metrics", "run_staircase", "problem_kwargs", "run_settings", "staircase_table", "natural_vs_at", "takeaway", "plot_fits"]
