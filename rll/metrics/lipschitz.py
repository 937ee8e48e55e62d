"""The empirical local Lipschitz constant (Eq. 3): the largest ‖f(x) − f(x′)‖₁ / ‖x − x′‖∞ over
x′ in the ε-ball found by ascent — as the paper defines it and as the released code estimated it."""
from __future__ import annotations

from typing import Literal

import torch

from rll.attacks import linf_ascent, model_mode
from rll.attacks.steps import _check_choice
from rll.metrics.accuracy import _bar, _check_batch_size, _device_of

LIPSCHITZ_MODES = ("paper", "released")


#: Floor of ‖x − x′‖∞ in the paper-mode ratio (see :func:`lipschitz_ratios`).
DENOMINATOR_FLOOR = 1e-6


#: What the released code adds to x − x′ before taking the l∞ norm.
RELEASED_DENOMINATOR_SHIFT = 1e-6


#: The released estimator's fixed step size.
RELEASED_STEP = 0.003


def _released_ratio(fx: torch.Tensor, fz: torch.Tensor, x: torch.Tensor,
                    z: torch.Tensor) -> torch.Tensor:
    top = (fx.flatten(1) - fz.flatten(1)).abs().sum(1)
    down = (x - z).flatten(1) + RELEASED_DENOMINATOR_SHIFT
    return top / down.abs().amax(1)


def _paper_ratio(fx: torch.Tensor, fz: torch.Tensor, x: torch.Tensor,
                 z: torch.Tensor) -> torch.Tensor:
    top = (fx.flatten(1) - fz.flatten(1)).abs().sum(1)
    down = (x - z).flatten(1).abs().amax(1).clamp_min(DENOMINATOR_FLOOR)
    return top / down


def lipschitz_ratios(model: torch.nn.Module, x: torch.Tensor, *, eps: float,
                     mode: Literal["paper", "released"] = "paper", steps: int = 10,
                     step: float | None = None, batch_size: int = 512,
                     generator: torch.Generator | None = None,
                     progress: bool = False) -> torch.Tensor:
    """Per-example empirical local Lipschitz ratios (float64 tensor (N,) on the CPU); their
    mean is :func:`local_lipschitz` (Eq. 3).  See there for the arguments."""
    _check_choice("mode", mode, LIPSCHITZ_MODES)
    _check_batch_size(batch_size)
    if not torch.is_floating_point(x):
        raise TypeError(f"x must be a floating-point tensor in [0, 1] (got {x.dtype})")
    if mode == "paper":
        ratio, step, sign = _paper_ratio, (eps / 5 if step is None else step), 1.0
    else:
        ratio, step, sign = _released_ratio, (RELEASED_STEP if step is None else step), -1.0
    device = _device_of(model, x.device)
    out = []
    with model_mode(model, "eval"), _bar(len(x), f"lipschitz ({mode})", progress) as bar:
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(device, non_blocking=True).detach()
            with torch.no_grad():
                fx = model(xb)

            def objective(z: torch.Tensor, xb=xb, fx=fx) -> torch.Tensor:
                return sign * ratio(fx, model(z), xb, z)

            z = linf_ascent(objective, xb, eps=eps, step=step, steps=steps, start="normal",
                            project_start=False, generator=generator)
            with torch.no_grad():
                out.append(ratio(fx, model(z), xb, z).double().cpu())
            bar.update(len(xb))
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)


def local_lipschitz(model: torch.nn.Module, x: torch.Tensor, *, eps: float,
                    mode: Literal["paper", "released"] = "paper", steps: int = 10,
                    step: float | None = None, batch_size: int = 512,
                    generator: torch.Generator | None = None, progress: bool = False) -> float:
    """Empirical local Lipschitz constant, Eq. (3) of the paper (the "lipschitz" columns):

        (1/n) Σᵢ max_{x′ᵢ ∈ B∞(xᵢ, ε)} ‖f(xᵢ) − f(x′ᵢ)‖₁ / ‖xᵢ − x′ᵢ‖∞

    with f the raw logits, estimated by a PGD-like search, model in eval mode.  Both modes
    (the released loop; the text is silent on these): start x′ = x + 0.001·N(0, I), the
    first gradient taken there before projecting, ``steps`` signed steps, each projected onto
    the ε-ball and [0, 1], and the ratio at the **final** iterate.

    * ``mode="paper"`` (default; Eq. 3 and Section 5.1 as written): *ascent* ("a step towards
      the gradient direction") with step ε/5.  The denominator is ‖x − x′‖∞ as Eq. 3 writes
      it, floored at 1e-6 so that x′ = x counts as ratio 0 rather than NaN (the random start
      puts ‖x − x′‖∞ near 3e-3 and signed ascent steps grow it, so the floor never binds in
      practice).  A lower bound on the maximum it estimates.
    * ``mode="released"`` (what produced the paper's numbers): the released estimator —
      fixed step 0.003, and its update *descends* the ratio (it negates the objective and then
      adds the sign of the gradient); the denominator is ‖x − x′ + 1e-6‖∞ as in the released
      code.  It under-estimates the paper's quantity, so the paper's Lipschitz numbers are
      compared with this mode (like with like).

    Args:
        model: classifier returning logits.
        x: inputs (N, …), floating point in [0, 1], on any device.
        eps: l∞ radius ε of the ball.
        mode: ``"paper"`` (default) or ``"released"``.
        steps: number of signed steps, default 10.
        step: step size; default ε/5 (paper) or 0.003 (released).
        batch_size: default 512 (the released code used 16).
        generator: optional ``torch.Generator`` for the random starts.
        progress: show a progress bar, default False.

    >>> local_lipschitz(model, x_test, eps=0.1)                     # the paper's definition
    >>> local_lipschitz(model, x_test, eps=0.1, mode="released")    # the released estimator
    """
    ratios = lipschitz_ratios(model, x, eps=eps, mode=mode, steps=steps, step=step,
                              batch_size=batch_size, generator=generator, progress=progress)
    if ratios.numel() == 0:
        raise ValueError("local Lipschitz constant of an empty set is undefined")
    return ratios.mean().item()
