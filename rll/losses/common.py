"""What every loss shares: its keyword parameters and their defaults, the per-example reduction of
each fidelity, cross-entropy, KL and the replayed dropout masks."""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from rll.losses.fidelity import FIDELITIES, Fidelity

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
