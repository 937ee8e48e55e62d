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

from typing import Any, Callable, Literal

import torch
import torch.nn.functional as F

from rll.attacks import linf_ascent, model_mode, pgd

Fidelity = Literal["paper", "released"]
FIDELITIES = ("paper", "released")
#: Version of what the two fidelities mean, stored in every record's provenance (records
#: without it were trained under revision 1).  Each revision after the first names the runs it
#: changed (:data:`REVISIONS`); a record of an older revision stays current when no later
#: revision touched its configuration (:func:`is_current_revision`).
FIDELITY_REVISION = 3


def _paper_gr_default_h(config: dict) -> bool:
    return (config.get("method") == "gr" and config.get("fidelity") == "paper"
            and (config.get("params") or {}).get("h") is None)


#: Revision → (what it changed, which configurations it changed).
REVISIONS: dict[int, tuple[str, Callable[[dict], bool]]] = {
    2: ("the corrections of 2026-12: AT/RST attack in train mode and the released LLR step in both fidelities, "
        "the appendix's l2 GR direction in paper mode, the Lipschitz estimate's final iterate", lambda config: True),
    3: ("paper-fidelity GR takes the released code's finite-difference step h = 1 where the paper's text gives none "
        "(it was the public implementation's 0.01, which did not train stably at the paper's learning rate on all "
        "60 000 MNIST images)", _paper_gr_default_h),
}


def is_current_revision(revision: int | None, config: dict) -> bool:
    """Whether a run of ``config`` made under ``revision`` (None: 1) means what the current
    fidelities mean: no later revision changed its configuration."""
    revision = 1 if revision is None else int(revision)
    return all(not changed(config) for r, (_, changed) in REVISIONS.items() if r > revision)

METHOD_PARAMS: dict[str, dict[str, Any]] = {
    "natural": {},
    # inner PGD: `steps` signed steps of `step` (None: eps/5) from a uniform random start
    "at": {"steps": 10, "step": None},
    "rst": {"lam": 1.0, "steps": 10, "step": None},
    # inner KL ascent: `steps` signed steps of `step` (None: eps/5) from x + 0.001·N(0, I)
    "trades": {"beta": 1.0, "steps": 10, "step": None},
    # h None: 1.0 in both fidelities (the released code's; the text gives none); direction: "l2"
    # (∇/‖∇‖₂, the appendix's and the released code's) or "sign" (sign ∇/√D, an explicit option)
    "gr": {"beta": 1.0, "h": None, "direction": "l2"},
    # inner ascent of the linearity gap: `steps` of `step` (None: eps/2) from x + 0.001·N(0, I)
    "llr": {"lam": 4.0, "mu": 3.0, "steps": 2, "step": None},
}
"""Accepted keyword parameters of each loss and their defaults.

Defaults follow the released runs without a suffix: RST λ = 1, TRADES β = 1 (TRADES' own
paper recommends 6; the companion's tables use 1, 3 and 6), GR β = 1, LLR λ = 4, μ = 3.
A string default means a choice among :data:`PARAM_CHOICES`."""

PARAM_CHOICES: dict[str, dict[str, tuple[str, ...]]] = {"gr": {"direction": ("l2", "sign")}}
"""The valid values of each non-numeric method parameter."""

PRECISIONS = ("fp32", "bf16")
"""Arithmetic of a training run: ``fp32``, or ``bf16`` — bfloat16 autocast of the whole loss,
inner maximisation included; parameters, gradients and the optimiser stay float32.  Evaluation
is always float32."""

_KL = ("its KL between two nearly equal distributions is a difference of nearly equal log-probabilities: "
       "in bf16 the inner ascent, started 0.001 away from x, followed rounding noise and the loss moved "
       "by 11–14 %, its parameter gradient at cosine 0.6–0.8 from float32's")
_GR = ("its finite difference (ℓ(x + h·d) − ℓ(x)) / h at a small step h is a difference of two nearly equal "
       "losses: at h = 0.01 the bf16 rounding error was as large as the quotient itself (gradient cosine 0.4); "
       "at h = 1 it is not, and bf16 is allowed")
_LLR = ("its linearity gap ℓ(x + δ) − ℓ(x) − δᵀ∇ₓℓ is a difference of nearly equal terms: in bf16 the loss "
        "moved by 10–50 % (gradient cosine 0.85)")
#: Smallest GR finite-difference step for which bf16 is allowed (measured: 1 agrees with float32,
#: 0.01 does not).
BF16_MIN_GR_STEP = 0.1
BF16_REFUSED: dict[tuple[str, str], tuple[Callable[[dict], bool], str]] = {
    ("trades", "paper"): (lambda p: True, _KL), ("trades", "released"): (lambda p: True, _KL),
    ("gr", "paper"): (lambda p: p["h"] < BF16_MIN_GR_STEP, _GR),
    ("gr", "released"): (lambda p: p["h"] < BF16_MIN_GR_STEP, _GR),
    ("llr", "paper"): (lambda p: True, _LLR),
}
"""Where ``precision="bf16"`` is refused: (method, fidelity) → (whether the resolved parameters
are refused, why) — measured on a CNN2 after one epoch (``benchmarks/precision.py losses``: loss
and parameter gradient in bf16 against float32 on the same batch and random draws).  Natural,
AT, RST, GR at h = 1 and released LLR kept gradient cosine ≥ 0.997 and are allowed; whether
their trained models agree is the equivalence table (``benchmarks/README.md``, "Precision")."""


def bf16_refusal(method: str, fidelity: str, params: dict | None = None) -> str | None:
    """Why bf16 is refused for ``method`` in ``fidelity`` with ``params`` (defaults filled), or
    None when it is allowed (:data:`BF16_REFUSED`)."""
    rule = BF16_REFUSED.get((method, fidelity))
    if rule is None:
        return None
    refused, why = rule
    return why if refused(resolve_params(method, eps=0.0, fidelity=fidelity, **dict(params or {}))) else None


def check_precision(method: str, fidelity: str, precision: str, params: dict | None = None) -> None:
    """Raise ``ValueError`` (naming the reason and the fix) if ``precision`` is unknown or
    bf16 is refused for ``method`` in ``fidelity`` with ``params`` (:func:`bf16_refusal`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid choices: {', '.join(PRECISIONS)}")
    if precision == "bf16" and (why := bf16_refusal(method, fidelity, params)) is not None:
        raise ValueError(f"precision 'bf16' is refused for {method} in fidelity {fidelity!r}: {why} "
                         "(benchmarks/README.md, 'Precision'); train it with precision 'fp32' (drop --amp / "
                         "--precision bf16; --precision auto picks bf16 only where it was measured safe)")


def fastest_precision(method: str, fidelity: str, params: dict | None = None) -> str:
    """``"bf16"`` unless :func:`bf16_refusal` refuses it, else ``"fp32"``."""
    return "fp32" if bf16_refusal(method, fidelity, params) is not None else "bf16"


_DERIVED: dict[str, dict[str, Callable[[float, str], float]]] = {
    "at": {"step": lambda eps, fidelity: eps / 5},
    "rst": {"step": lambda eps, fidelity: eps / 5},
    "trades": {"step": lambda eps, fidelity: eps / 5},
    "gr": {"h": lambda eps, fidelity: 1.0},
    "llr": {"step": lambda eps, fidelity: eps / 2},
}


def resolve_params(method: str, *, eps: float, fidelity: Fidelity = "paper",
                   **params: Any) -> dict[str, Any]:
    """The parameters ``LOSSES[method]`` would use: defaults filled, ``None`` resolved.

    >>> resolve_params("trades", eps=0.031, beta=6.0)
    {'beta': 6.0, 'steps': 10, 'step': 0.0062}

    Raises ``ValueError`` for an unknown method, parameter, fidelity, or a negative ``eps``.
    """
    if method not in METHOD_PARAMS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHOD_PARAMS)}")
    if fidelity not in FIDELITIES:
        raise ValueError(f"fidelity must be one of {FIDELITIES}, got {fidelity!r}")
    accepted = METHOD_PARAMS[method]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        names = ", ".join(accepted) if accepted else "none"
        raise ValueError(f"unknown parameter(s) {unknown} for {method!r}; accepted: {names}")
    if eps is None or eps < 0:
        raise ValueError(f"eps must be a non-negative radius, got {eps!r}")
    out = {**accepted, **params}
    for name, choices in PARAM_CHOICES.get(method, {}).items():
        if out[name] not in choices:
            raise ValueError(f"parameter {name} of {method!r} must be one of {', '.join(choices)}; "
                             f"got {out[name]!r}")
    for name, rule in _DERIVED.get(method, {}).items():
        if out[name] is None:
            out[name] = rule(eps, fidelity)
    return out


def _setup(method: str, x: torch.Tensor, y: torch.Tensor, eps: float, fidelity: str,
           params: dict[str, Any]) -> dict[str, Any]:
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y disagree on the batch size ({x.shape[0]} vs {y.shape[0]})")
    return resolve_params(method, eps=eps, fidelity=fidelity, **params)


def _reduce(per_example: torch.Tensor, fidelity: str) -> torch.Tensor:
    return per_example.sum() if fidelity == "released" else per_example.mean()


def _ce(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), y, reduction="none")


def _replay_point(device: torch.device) -> Callable[[], None]:
    """Snapshot the random-number state that ``device``'s dropout draws from; calling the
    returned function restores it, so the next forward pass draws the same dropout masks as
    the first pass after the snapshot.  Used where a loss differences two train-mode forward
    passes (GR's finite difference, LLR's linearity gap): the difference is then one
    network's, not that of two independently masked networks."""
    if device.type == "cpu":
        state = torch.get_rng_state()
        return lambda: torch.set_rng_state(state)
    module = torch.get_device_module(device)  # torch.cuda, torch.mps, ...: that device's generator
    state = module.get_rng_state(device)
    return lambda: module.set_rng_state(state, device)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-example inner product ⟨a_i, b_i⟩ over all non-batch dimensions."""
    return (a * b).flatten(1).sum(1)


def _kl(log_q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Per-example KL(p ‖ q) = Σ_c p_c (log p_c − log q_c), as ``nn.KLDivLoss(log_q, p)``."""
    return F.kl_div(log_q, p, reduction="none").sum(1)


# ----------------------------------------------------------------------------- methods

def natural_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                 fidelity: Fidelity = "paper", generator: torch.Generator | None = None,
                 **params: Any) -> torch.Tensor:
    """Natural training: L(f(x), y), the cross-entropy on clean inputs.

    ``eps`` and ``generator`` are accepted for a uniform signature and unused.
    Released: summed over the batch instead of averaged.
    """
    _setup("natural", x, y, eps, fidelity, params)
    return _reduce(_ce(model, x, y), fidelity)


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


def gr_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
            fidelity: Fidelity = "paper", generator: torch.Generator | None = None,
            **params: Any) -> torch.Tensor:
    """Gradient regularisation by finite differences (Finlay & Oberman [14]; Appendix A.0.2):

        min_f E{ L(f(x), y) + β ‖∇ₓL‖₂² },
        ‖∇ₓL‖₂ ≈ (L(f(x + h·d), y) − L(f(x), y)) / h,   d = ∇ₓL / ‖∇ₓL‖₂,

    implemented as the public implementation the paper names (Finlay & Oberman's code) and
    the released code do, with the penalty halved:

        ℓ(x) + β/2 · ((ℓ(x + h·d) − ℓ(x)) / h)²,   d held fixed (0 where ∇ₓℓ = 0),

    the gradient flowing through both ℓ(x + h·d) and ℓ(x); x + h·d is not clipped to [0, 1]
    (a finite difference, not an attack).  ``eps`` and ``generator`` are unused (no ball).

    Paper: d = ∇ₓℓ/‖∇ₓℓ‖₂ as the appendix writes it, the clean loss counted once, the mean over
    the batch, and — the text gives no h — the released code's h = 1 (fidelity revision 3; until
    then the public implementation's default 0.01, which on all 60 000 MNIST images at the
    paper's learning rate stopped fitting and its loss rose after epoch 3: ``rll.analysis.gr_diagnosis``,
    the deviations page).  The appendix's quotient is a difference of *one* function f, so in
    train mode ℓ(x + h·d) is evaluated under the same dropout masks as ℓ(x) (the random-number
    state is replayed).  Two independently masked passes differ by O(1) however small h is:
    at h = 0.01 that noise, divided by h and squared, swamps the penalty (early in MNIST
    training the quotient was up to ~50× the true directional derivative) and drove CNN1 and
    CNN2 to a constant classifier.

    Released: h = 1.0, the loss summed, and the clean loss's parameter gradient counted
    **twice** (the released code back-propagated ℓ(x) once to obtain ∇ₓℓ without clearing the
    parameter gradients, then again with the total).  We reproduce that gradient exactly with a
    returned value equal to the logged one: ℓ + (ℓ − ℓ.detach()) + penalty.  Its two forward
    passes draw their own dropout masks, as two plain train-mode passes do.

    Parameters: ``beta`` (β, default 1), ``h`` (overrides the fidelity's default) and
    ``direction``: ``"l2"`` (default, both fidelities) or ``"sign"`` — rll's option, not a
    fidelity: d = sign(∇ₓℓ)/√D (D the input dimension), Finlay & Oberman's ``--norm L1``
    variant for the l∞ threat model, whose penalty approximates β/2 · ‖∇ₓℓ‖₁²/D ≤ β/2 · ‖∇ₓℓ‖₂²,
    a weaker regulariser at the same β.
    """
    p = _setup("gr", x, y, eps, fidelity, params)
    released = fidelity == "released"
    h = p["h"]
    if h <= 0:
        raise ValueError(f"h must be positive, got {h}")
    x0 = x.detach().requires_grad_(True)
    replay = None if released else _replay_point(x.device)
    ce = _ce(model, x0, y)
    (g,) = torch.autograd.grad(ce.sum(), x0, retain_graph=True)
    if p["direction"] == "sign":
        d = g.sign() / g[0].numel() ** 0.5
    else:
        norm = g.flatten(1).norm(dim=1).clamp_min(torch.finfo(g.dtype).tiny)
        d = g / norm.view(-1, *([1] * (g.dim() - 1)))
    if replay is not None:
        replay()  # ℓ(x + h·d) under ℓ(x)'s dropout masks
    ce_h = _ce(model, x.detach() + h * d.detach(), y)
    penalty = ((ce_h - ce) / h).pow(2) / 2
    clean = ce + (ce - ce.detach()) if released else ce
    return _reduce(clean + p["beta"] * penalty, fidelity)


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




def is_current(record: dict | None) -> bool:
    """Whether ``record`` was made under the current meaning of the fidelities
    (:data:`rll.losses.FIDELITY_REVISION`; records without one are revision 1): no later revision
    changed its configuration (:func:`rll.losses.is_current_revision`)."""
    return record is not None and is_current_revision(record.get("provenance", {}).get("fidelity_revision"),
                                                              record["config"])


__all__ = ["LOSSES", "METHOD_PARAMS", "FIDELITIES", "FIDELITY_REVISION", "REVISIONS", "is_current_revision", "is_current", "PRECISIONS", "BF16_REFUSED", "bf16_refusal", "check_precision",
           "fastest_precision", "get_loss", "resolve_params", "natural_loss", "at_loss",
           "rst_loss", "trades_loss", "gr_loss", "llr_loss"]
