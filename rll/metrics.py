"""The columns of the paper's tables: clean and adversarial accuracy, generalization gaps and
the empirical local Lipschitz constant (Eq. 3).

Accuracies are in **percent**, as the paper's tables print them.  Every function works in
batches on whatever device the model is on (inputs may stay on the CPU), runs the model in
eval mode and restores the caller's train/eval flags, uses ``torch.no_grad()`` wherever no
input gradient is needed, and can show a ``tqdm`` progress bar (refreshed at most once a
second, so executed notebooks stay small).

>>> from rll.metrics import table_metrics
>>> row = table_metrics(model, (x_train, y_train), (x_test, y_test), eps=0.1)
>>> row["adv_test_acc"], row["test_lipschitz"]
"""
from __future__ import annotations

from typing import Literal

import torch
from tqdm.auto import tqdm

from rll.attacks import (SELECTIONS, _check_batch, _check_choice, linf_ascent, model_mode,
                         multi_targeted, multi_targeted_selections, pgd)

ATTACKS = ("pgd", "mt")
LIPSCHITZ_MODES = ("paper", "released")

#: Floor of ‖x − x′‖∞ in the paper-mode ratio (see :func:`lipschitz_ratios`).
DENOMINATOR_FLOOR = 1e-6
#: What the released code adds to x − x′ before taking the l∞ norm.
RELEASED_DENOMINATOR_SHIFT = 1e-6
#: The released estimator's fixed step size.
RELEASED_STEP = 0.003


def _device_of(model: torch.nn.Module, fallback: torch.device) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return fallback


def _bar(total: int, desc: str, progress: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit="img", disable=not progress, mininterval=1.0,
                leave=False)


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


def predictions(model: torch.nn.Module, x: torch.Tensor, *, batch_size: int = 512,
                progress: bool = False) -> torch.Tensor:
    """Predicted classes argmax f(x) (int64, on ``x``'s device), model in eval mode.

    >>> predictions(model, x_test)[:5]
    """
    _check_batch_size(batch_size)
    device = _device_of(model, x.device)
    out = []
    with model_mode(model, "eval"), torch.no_grad(), _bar(len(x), "predict", progress) as bar:
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(device, non_blocking=True)
            out.append(model(xb).argmax(1).to(x.device))
            bar.update(len(xb))
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long, device=x.device)


def _percent(correct: torch.Tensor) -> float:
    if correct.numel() == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return 100.0 * correct.double().mean().item()


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *,
             batch_size: int = 512, progress: bool = False) -> float:
    """Clean accuracy in percent (the tables' "train/test accuracy" columns).

    Args:
        model: classifier returning logits.
        x: inputs (N, …), floating point in [0, 1], on any device.
        y: labels (N,).
        batch_size: evaluation batch size, default 512.
        progress: show a progress bar, default False.

    >>> accuracy(model, x_test, y_test)   # e.g. 99.3
    """
    _check_batch(x, y)
    pred = predictions(model, x, batch_size=batch_size, progress=progress)
    return _percent(pred == y.to(pred.device))


def per_class_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                       num_classes: int | None = None, batch_size: int = 512,
                       progress: bool = False) -> torch.Tensor:
    """Clean accuracy of each class in percent, float64 tensor (C,); NaN for a class with no
    examples.  ``num_classes`` defaults to ``max(y) + 1``.

    >>> per_class_accuracy(model, x_test, y_test)   # tensor([99.6, 99.7, ...])
    """
    _check_batch(x, y)
    pred = predictions(model, x, batch_size=batch_size, progress=progress).cpu()
    y = y.cpu()
    num_classes = int(y.max()) + 1 if num_classes is None else num_classes
    total = torch.bincount(y, minlength=num_classes).double()
    correct = torch.bincount(y[pred == y], minlength=num_classes).double()
    return 100.0 * correct / total   # 0/0 = NaN for an absent class


def adversarial_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                         eps: float, attack: Literal["pgd", "mt"] = "pgd",
                         batch_size: int = 512,
                         selection: Literal["released", "worst"] = "released",
                         generator: torch.Generator | None = None, progress: bool = False,
                         **attack_kw) -> float:
    """Accuracy in percent on adversarial examples (the tables' "adv accuracy" columns).

    The attack runs batch by batch; the adversarial example is then classified with the
    model in eval mode.

    Args:
        model: classifier returning logits.
        x: inputs (N, …), floating point in [0, 1], on any device.
        y: labels (N,).
        eps: l∞ radius ε.
        attack: ``"pgd"`` (default; PGD-10 with step ε/5, Section 5.1, see
            :func:`rll.attacks.pgd`) or ``"mt"`` (multi-targeted, 20 steps of ε/10 per target,
            Appendix D.1, see :func:`rll.attacks.multi_targeted`).
        batch_size: attack batch size, default 512 (the released code used 16 for PGD and
            128 for MT; the result does not depend on it beyond the random starts).
        selection: for ``attack="mt"``: ``"released"`` (default) or ``"worst"``.
        generator: optional ``torch.Generator`` for the random starts; a CPU generator gives
            the same starts on every device.
        progress: show a progress bar, default False.
        **attack_kw: passed to the attack (``step``, ``steps``, ``restarts``, ``mode``, …).

    >>> adversarial_accuracy(model, x_test, y_test, eps=0.1)               # PGD-10
    >>> adversarial_accuracy(model, x_test, y_test, eps=0.1, attack="mt")  # Tables 9–14
    """
    _check_batch(x, y)
    _check_batch_size(batch_size)
    _check_choice("attack", attack, ATTACKS)
    _check_choice("selection", selection, SELECTIONS)
    if attack == "pgd":
        run = pgd
    else:
        def run(model, xb, yb, **kw):
            return multi_targeted(model, xb, yb, selection=selection, **kw)
    device = _device_of(model, x.device)
    correct = []
    with _bar(len(x), f"attack ({attack})", progress) as bar:
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(device, non_blocking=True)
            yb = y[i:i + batch_size].to(device, non_blocking=True)
            x_adv = run(model, xb, yb, eps=eps, generator=generator, **attack_kw)
            with model_mode(model, "eval"), torch.no_grad():
                correct.append((model(x_adv).argmax(1) == yb).cpu())
            bar.update(len(xb))
    return _percent(torch.cat(correct) if correct else torch.empty(0))


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
        ratio, step, keep, sign = _paper_ratio, (eps / 5 if step is None else step), "best", 1.0
    else:
        ratio, step, keep, sign = (_released_ratio, (RELEASED_STEP if step is None else step),
                                   "last", -1.0)
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
                            keep=keep, generator=generator)
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

    with f the raw logits, estimated by a PGD-like search from x′ = x + 0.001·N(0, I)
    (projected onto the ε-ball and [0, 1]), model in eval mode.

    * ``mode="paper"`` (default; Eq. 3 and Section 5.1 as written): ``steps`` signed
      *ascent* steps of ε/5 on the ratio, and per example the **largest** ratio over the
      iterates (start and final included): the estimate is a lower bound on the max it
      estimates.  The denominator is ‖x − x′‖∞ floored at 1e-6 so that x′ = x counts as
      ratio 0 rather than NaN; the random start puts ‖x − x′‖∞ near 3e-3, and signed steps
      only grow it, so the floor never binds in practice.
    * ``mode="released"`` (what produced the paper's numbers): the released estimator —
      fixed step 0.003, its update *descends* the ratio (it negates the objective and then
      adds the sign of the gradient), and the value is taken at the final iterate; the
      denominator is ‖x − x′ + 1e-6‖∞ as in the released code.  It under-estimates the
      paper's quantity.  (The released code takes its first gradient before clipping the
      start to [0, 1]; here the start is clipped first — a difference of at most 0.001·|N|
      in pixels already at 0 or 1 for one step.)

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


def mt_selection_accuracies(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                            batch_size: int = 512, generator: torch.Generator | None = None,
                            progress: bool = False, **attack_kw) -> dict[str, float]:
    """Adversarial accuracy (percent) under the multi-targeted attack with each selection —
    ``released`` (by score, as the authors' code) and ``worst`` (per-example worst case) —
    from one run of the attack (:func:`rll.attacks.multi_targeted_selections`)."""
    _check_batch(x, y)
    _check_batch_size(batch_size)
    device = _device_of(model, x.device)
    correct: dict[str, list] = {}
    with _bar(len(x), "attack (mt, both selections)", progress) as bar:
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(device, non_blocking=True)
            yb = y[i:i + batch_size].to(device, non_blocking=True)
            for selection, x_adv in multi_targeted_selections(model, xb, yb, eps=eps, generator=generator,
                                                              **attack_kw).items():
                with model_mode(model, "eval"), torch.no_grad():
                    correct.setdefault(selection, []).append((model(x_adv).argmax(1) == yb).cpu())
            bar.update(len(xb))
    return {selection: _percent(torch.cat(flags)) for selection, flags in correct.items()}


def table_metrics(model: torch.nn.Module, train: tuple[torch.Tensor, torch.Tensor],
                  test: tuple[torch.Tensor, torch.Tensor], *, eps: float,
                  attack: Literal["pgd", "mt"] = "pgd",
                  lipschitz_mode: Literal["paper", "released"] = "paper",
                  batch_size: int = 512, device: str | torch.device | None = None,
                  progress: bool = False, seed: int | None = 0,
                  selection: Literal["released", "worst"] = "released") -> dict[str, float]:
    """One row of the paper's Tables 2–4 (or 9–14 with ``attack="mt"``).

    Args:
        model: classifier returning logits.
        train, test: ``(x, y)`` pairs, x floating point in [0, 1] (N, C, H, W).
        eps: l∞ radius ε.
        attack: ``"pgd"`` (default, PGD-10) or ``"mt"`` (multi-targeted).
        lipschitz_mode: ``"paper"`` (default) or ``"released"``; see :func:`local_lipschitz`.
        batch_size: default 512.
        device: where to compute; default the model's device.  The model is moved there for
            the computation and moved back afterwards.
        progress: show progress bars, default False.
        seed: seed of a CPU generator for the attacks' and the estimate's random starts
            (default 0, so a row is reproducible); ``None`` uses the global RNG.
        selection: multi-targeted selection, ``"released"`` (default) or ``"worst"``.

    Returns ``dict(train_acc, test_acc, adv_train_acc, adv_test_acc, test_lipschitz, gap,
    adv_gap)``: accuracies in percent; ``gap = train_acc − test_acc`` and
    ``adv_gap = adv_train_acc − adv_test_acc`` in percentage points.

    >>> table_metrics(model, (x_tr, y_tr), (x_te, y_te), eps=0.1, progress=True)
    """
    _check_choice("attack", attack, ATTACKS)
    _check_choice("lipschitz_mode", lipschitz_mode, LIPSCHITZ_MODES)
    _check_choice("selection", selection, SELECTIONS)
    (x_tr, y_tr), (x_te, y_te) = train, test
    _check_batch(x_tr, y_tr)
    _check_batch(x_te, y_te)
    home = _device_of(model, torch.device("cpu"))
    target = home if device is None else torch.device(device)

    def gen() -> torch.Generator | None:
        return None if seed is None else torch.Generator().manual_seed(seed)

    kw = dict(batch_size=batch_size, progress=progress)
    model.to(target)
    try:
        row = {
            "train_acc": accuracy(model, x_tr, y_tr, **kw),
            "test_acc": accuracy(model, x_te, y_te, **kw),
            "adv_train_acc": adversarial_accuracy(model, x_tr, y_tr, eps=eps, attack=attack,
                                                  selection=selection, generator=gen(), **kw),
            "adv_test_acc": adversarial_accuracy(model, x_te, y_te, eps=eps, attack=attack,
                                                 selection=selection, generator=gen(), **kw),
            "test_lipschitz": local_lipschitz(model, x_te, eps=eps, mode=lipschitz_mode,
                                              generator=gen(), **kw),
        }
    finally:
        model.to(home)
    row["gap"] = row["train_acc"] - row["test_acc"]
    row["adv_gap"] = row["adv_train_acc"] - row["adv_test_acc"]
    return row


__all__ = ["ATTACKS", "LIPSCHITZ_MODES", "accuracy", "adversarial_accuracy",
           "local_lipschitz", "mt_selection_accuracies", "lipschitz_ratios", "per_class_accuracy", "predictions",
           "table_metrics"]
