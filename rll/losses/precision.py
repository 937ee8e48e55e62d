"""Arithmetic of a training run (fp32 or bf16 autocast), and the losses whose math bf16 breaks,
with the measurement that found it."""
from __future__ import annotations

from typing import Callable

from rll.losses.common import resolve_params

PRECISIONS = ("fp32", "bf16")
"""Arithmetic of a training run: ``fp32``, or ``bf16`` — bfloat16 autocast of the whole loss,
inner maximisation included; parameters, gradients and the optimiser stay float32.  Evaluation
is always float32."""


_KL = ("its KL between two nearly equal distributions is a difference of nearly equal log-probabilities, "
       "and its inner ascent starts 0.001 away from x, where the KL's gradient is rounding noise: on fitted "
       "natural and GR CNN2s (40 epochs on all 60 000 images) the bf16 ascent reached 0.28–0.53 of float32's KL "
       "(evaluated in float32), below it in 8 of 8 batches, and float32 first steps only narrowed the gap "
       "(models trained 2 epochs agreed with float32)")


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
are refused, why).  Three measurements (``benchmarks/precision.py``, ``benchmarks/README.md``,
"Precision"): one step's loss and parameter gradient in bf16 against float32 on the same batch
and random draws, on a CNN2 after one epoch and on fitted CNN2 checkpoints (``losses``); and
CNN2s trained in both precisions at a small budget, three seeds each (``train``).  Natural, AT,
RST, GR at h = 1 and released LLR pass all three and are allowed.  Paper TRADES and paper LLR
pass the small-budget training, but on fitted models bf16 moves their loss by half or more — in
TRADES systematically down: its inner maximum itself is weaker (``trades-ascent``: the KL a bf16
ascent reaches, evaluated in float32) — so they stay refused."""


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
