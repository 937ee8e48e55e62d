"""PGD (Madry et al. [32]): the paper's evaluation attack, PGD-10 with step ε/5 and a uniform
random start (Section 5.1)."""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from rll.attacks.steps import (
    MODES,
    Mode,
    Start,
    _check_batch,
    _check_choice,
    linf_ascent,
    model_mode,
)


def pgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
        step: float | None = None, steps: int = 10, start: Start = "uniform",
        keep: Literal["last", "best"] = "last", mode: Mode = "eval",
        bounds: tuple[float, float] | None = (0.0, 1.0),
        generator: torch.Generator | None = None, restarts: int = 1) -> torch.Tensor:
    """Untargeted l∞ PGD (Madry et al. [32]; the paper's evaluation attack, Section 5.1).

    Maximises the cross-entropy CE(f(x′), y) over x′ ∈ B∞(x, ε) ∩ [0, 1]^d with ``steps``
    signed steps of size ``step`` from a uniform random start and returns the final iterate
    — exactly the paper's PGD-10 with the defaults.

    Args:
        model: classifier returning logits (B, C).
        x: inputs (B, …), floating point in [0, 1]; never modified.
        y: true labels (B,), int64.
        eps: l∞ radius ε (MNIST 0.1, SVHN/CIFAR-10 0.031, Restricted ImageNet 0.005).
        step: step size, default ε/5.
        steps: number of steps, default 10.
        start: ``"uniform"`` (default) in the ε-ball, ``"normal"`` or ``"none"``.
        keep: ``"last"`` (default, the paper's) or ``"best"`` iterate by loss, per example.
        mode: model mode during the attack: ``"eval"`` (default; the paper's evaluation),
            ``"train"`` (what the released adversarial training did) or ``"keep"``.
            The caller's own flags are restored afterwards.
        bounds: pixel box, default (0, 1).
        generator: optional ``torch.Generator`` for the random starts (reproducibility).
        restarts: number of random restarts, default 1 (the paper's). With more, each
            example keeps the restart that misclassifies it (the first that does, or, among
            those that do, the one with the highest loss) or else the one with the highest
            cross-entropy.

    Returns ``x_adv`` with ``x``'s shape, dtype and device.

    >>> x_adv = pgd(model, x, y, eps=0.1)   # PGD-10, step 0.02: the paper's MNIST attack
    >>> acc = (model(x_adv).argmax(1) == y).float().mean()
    """
    _check_batch(x, y)
    _check_choice("mode", mode, MODES)
    if restarts < 1:
        raise ValueError(f"restarts must be >= 1, got {restarts}")
    step = eps / 5 if step is None else step

    def objective(z: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(z), y, reduction="none")

    with model_mode(model, mode):
        best = linf_ascent(objective, x, eps=eps, step=step, steps=steps, start=start,
                           bounds=bounds, keep=keep, generator=generator)
        if restarts == 1:
            return best
        with torch.no_grad():
            logits = model(best)
            best_loss = F.cross_entropy(logits, y, reduction="none")
            best_wrong = logits.argmax(1) != y
        for _ in range(restarts - 1):
            cand = linf_ascent(objective, x, eps=eps, step=step, steps=steps, start=start,
                               bounds=bounds, keep=keep, generator=generator)
            with torch.no_grad():
                logits = model(cand)
                loss = F.cross_entropy(logits, y, reduction="none")
                wrong = logits.argmax(1) != y
            better = (wrong & ~best_wrong) | ((wrong == best_wrong) & (loss > best_loss))
            best[better] = cand[better]
            best_loss = torch.where(better, loss, best_loss)
            best_wrong = best_wrong | wrong
        return best
