"""The one ℓ∞ ascent loop every attack is (random start, signed step, projection onto the
ε-ball ∩ [0, 1]), and what it is made of: starts, step directions, projections, model modes."""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Literal

import torch

Objective = Callable[[torch.Tensor], torch.Tensor]


Start = Literal["uniform", "normal", "none"]


Mode = Literal["eval", "train", "keep"]


STARTS = ("uniform", "normal", "none")


MODES = ("eval", "train", "keep")


KEEPS = ("last", "best")


SELECTIONS = ("released", "worst")


DIRECTIONS = ("sign", "linf")


PROJECTIONS = ("clip", "rescale")


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


@contextlib.contextmanager
def model_mode(model: torch.nn.Module, mode: Mode) -> Iterator[None]:
    """Put ``model`` (and every submodule) in ``mode`` for the block, then restore each
    submodule's own ``training`` flag exactly as it was.

    ``mode`` is ``"eval"`` (batch-norm running statistics, dropout off), ``"train"`` or
    ``"keep"`` (leave the flags alone).

    >>> with model_mode(model, "eval"):
    ...     logits = model(x)
    """
    if mode == "keep":
        yield
        return
    _check_choice("mode", mode, ("eval", "train", "keep"))
    saved = [(m, m.training) for m in model.modules()]
    model.train(mode == "train")
    try:
        yield
    finally:
        for m, flag in saved:
            m.training = flag


def project_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: float,
                 bounds: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """Project onto B∞(x, ε) ∩ [lo, hi]^d (the box only when ``bounds`` is given)."""
    x_adv = torch.max(torch.min(x_adv, x + eps), x - eps)
    if bounds is not None:
        x_adv = x_adv.clamp(*bounds)
    return x_adv


def rescale_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: float,
                 bounds: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """The released LLR's projection: clamp x′ to ``bounds``, then *rescale* each example's
    δ = x′ − x so that ‖δ‖∞ ≤ ε (``torch.renorm(δ, p=∞, dim=0, maxnorm=ε)``: δ ← δ·ε/(‖δ‖∞ + 1e-7)
    where ‖δ‖∞ > ε).  Unlike :func:`project_linf`, which clips each pixel to the ball, it
    shrinks every pixel of an example that left the ball by the same factor."""
    if bounds is not None:
        x_adv = x_adv.clamp(*bounds)
    return x + torch.renorm(x_adv - x, p=float("inf"), dim=0, maxnorm=eps)


def random_start(x: torch.Tensor, eps: float, start: Start,
                 bounds: tuple[float, float] | None = (0.0, 1.0),
                 generator: torch.Generator | None = None, project: bool = True) -> torch.Tensor:
    """Starting point of the ascent: ``uniform`` in the ε-ball (PGD, Madry et al.),
    ``normal`` x + 0.001·N(0, I) (TRADES, LLR and the Lipschitz estimate), or ``none`` (x
    itself); projected onto the ε-ball and ``bounds`` unless ``project=False`` (the released
    TRADES, LLR and Lipschitz loops take their first gradient at the unprojected start).

    With a ``generator`` the noise is drawn on the generator's device and then moved to
    ``x``'s, so a seeded CPU generator gives the same starts on every device.
    """
    _check_choice("start", start, STARTS)
    if start == "none":
        return x.clone()
    where = generator.device if generator is not None else x.device
    if start == "uniform":
        noise = torch.rand(x.shape, generator=generator, device=where, dtype=x.dtype) * 2 - 1
        noise = noise * eps
    else:
        noise = 0.001 * torch.randn(x.shape, generator=generator, device=where, dtype=x.dtype)
    start_point = x + noise.to(x.device)
    return project_linf(start_point, x, eps, bounds) if project else start_point


def _step_direction(grad: torch.Tensor, direction: str,
                    generator: torch.Generator | None) -> torch.Tensor:
    """``sign``: sign ∇.  ``linf``: ∇ / ‖∇‖∞ per example, and where ∇ = 0 a standard normal
    draw instead (the released LLR's "avoid nan" rule), so only the largest-gradient pixels
    move by a full step."""
    if direction == "sign":
        return grad.sign()
    norms = grad.flatten(1).abs().amax(1).view(-1, *([1] * (grad.dim() - 1)))
    out = grad / norms
    zero = norms.flatten() == 0
    if zero.any():
        where = generator.device if generator is not None else grad.device
        noise = torch.randn(out[zero].shape, generator=generator, device=where, dtype=grad.dtype)
        out[zero] = noise.to(grad.device)
    return out


def linf_ascent(objective: Objective, x: torch.Tensor, *, eps: float, step: float, steps: int,
                start: Start = "uniform", bounds: tuple[float, float] | None = (0.0, 1.0),
                keep: Literal["last", "best"] = "last",
                generator: torch.Generator | None = None,
                direction: Literal["sign", "linf"] = "sign",
                projection: Literal["clip", "rescale"] = "clip",
                project_start: bool = True) -> torch.Tensor:
    """Signed-gradient ascent of a per-example ``objective`` inside B∞(x, ε) ∩ [0, 1]^d.

    x⁽ᵗ⁺¹⁾ = Π_{B∞(x,ε)∩[0,1]^d}( x⁽ᵗ⁾ + step · sign ∇ₓ Σᵢ objective(x⁽ᵗ⁾)ᵢ )

    (the defaults; the released LLR loop instead steps along ∇/‖∇‖∞ and rescales, see
    ``direction`` and ``projection``).

    Args:
        objective: maps a batch (B, …) to B values to maximise (per example, no reduction).
            To *minimise* something (a targeted attack), pass its negation.
        x: clean inputs (B, …); never modified.
        eps: l∞ radius ε ≥ 0.
        step: step size (PGD: ε/5).
        steps: number of signed steps (PGD: 10).
        start: ``"uniform"`` (default), ``"normal"`` or ``"none"``; see :func:`random_start`.
        bounds: pixel box, default (0, 1); ``None`` for no box.
        keep: ``"last"`` (default; the final iterate, the paper's convention) or ``"best"``
            (per example, the iterate with the largest objective, start and final included).
        generator: optional ``torch.Generator`` for the random start (and ``linf``'s
            zero-gradient draws).
        direction: ``"sign"`` (default; sign ∇, every pixel moves by ``step``) or
            ``"linf"`` (∇/‖∇‖∞ per example, the released LLR's step; see :func:`_step_direction`).
        projection: ``"clip"`` (default; :func:`project_linf`) or ``"rescale"`` (the
            released LLR's clamp-then-renorm, :func:`rescale_linf`).
        project_start: project the random start before the first gradient (default True);
            the released TRADES, LLR and Lipschitz loops do not.

    Returns the adversarial batch (same shape, dtype, device as ``x``), detached.
    Gradients with respect to the model's parameters are not accumulated.

    >>> x_adv = linf_ascent(lambda z: F.cross_entropy(model(z), y, reduction="none"),
    ...                     x, eps=0.1, step=0.02, steps=10)
    """
    if eps < 0 or step < 0 or steps < 0:
        raise ValueError(f"eps, step and steps must be non-negative (got {eps}, {step}, {steps})")
    _check_choice("keep", keep, KEEPS)
    _check_choice("direction", direction, DIRECTIONS)
    _check_choice("projection", projection, PROJECTIONS)
    project = project_linf if projection == "clip" else rescale_linf
    x = x.detach()
    x_adv = random_start(x, eps, start, bounds, generator, project=project_start)
    best, best_val = None, None
    for _ in range(steps):
        x_adv.requires_grad_(True)
        with torch.enable_grad():
            values = objective(x_adv)
            (grad,) = torch.autograd.grad(values.sum(), x_adv)
        if keep == "best":
            best, best_val = _keep_best(best, best_val, x_adv.detach(), values.detach())
        x_adv = project(x_adv.detach() + step * _step_direction(grad, direction, generator), x, eps, bounds)
    if steps == 0 and not project_start:
        x_adv = project(x_adv, x, eps, bounds)   # the result always lies in the ball and the box
    if keep == "best":
        with torch.no_grad():
            values = objective(x_adv)
        best, _ = _keep_best(best, best_val, x_adv, values)
        return best
    return x_adv.detach()


def _keep_best(best, best_val, cand, cand_val):
    if best is None:
        return cand.clone(), cand_val.clone()
    better = cand_val > best_val
    best[better] = cand[better]
    best_val = torch.where(better, cand_val, best_val)
    return best, best_val


def _check_batch(x: torch.Tensor, y: torch.Tensor) -> None:
    if not torch.is_floating_point(x):
        raise TypeError(f"x must be a floating-point tensor in [0, 1] (got {x.dtype}); "
                        "convert uint8 images with rll.data.to_float")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have shape ({x.shape[0]},), got {tuple(y.shape)}")


def _margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """max_{k≠y} f_k − f_y per example (> 0 ⇔ misclassified, ties aside)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
    return other - true
