"""Clean and adversarial accuracy (in percent, as the paper's tables print them), per class and per
example, under each evaluation attack."""
from __future__ import annotations

from typing import Literal

import torch
from tqdm.auto import tqdm

from rll.attacks import (
    AUTOATTACK_VERSIONS,
    SELECTIONS,
    autoattack,
    model_mode,
    multi_targeted,
    multi_targeted_selections,
    pgd,
)
from rll.attacks.steps import _check_batch, _check_choice

#: Evaluation attacks: PGD-10 (Section 5), the multi-targeted attack (Appendix D.1), AutoAttack's
#: standard version (``aa``) and its cheaper APGD-CE + APGD-DLR configuration (``aa-apgd``).
ATTACKS = ("pgd", "mt", "aa", "aa-apgd")


#: The AutoAttack version (:data:`rll.attacks.AUTOATTACK_VERSIONS`) behind each ``aa`` attack name.
AUTOATTACK_OF = {"aa": "standard", "aa-apgd": "apgd"}


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


def correct(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 512,
            progress: bool = False) -> torch.Tensor:
    """Per-example clean correctness, bool (N,) on the CPU."""
    _check_batch(x, y)
    return predictions(model, x, batch_size=batch_size, progress=progress).cpu() == y.cpu()


def adversarial_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                         eps: float, attack: str = "pgd", batch_size: int = 512,
                         selection: Literal["released", "worst"] = "released",
                         generator: torch.Generator | None = None, progress: bool = False,
                         **attack_kw) -> float:
    """Accuracy in percent on adversarial examples (the tables' "adv accuracy" columns):
    the mean of :func:`adversarial_correct`, whose arguments it takes.

    >>> adversarial_accuracy(model, x_test, y_test, eps=0.1)               # PGD-10
    >>> adversarial_accuracy(model, x_test, y_test, eps=0.1, attack="mt")  # Tables 9–14
    """
    return _percent(adversarial_correct(model, x, y, eps=eps, attack=attack, batch_size=batch_size,
                                        selection=selection, generator=generator, progress=progress,
                                        **attack_kw))


def adversarial_correct(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                        eps: float, attack: str = "pgd", batch_size: int = 512,
                        selection: Literal["released", "worst"] = "released",
                        generator: torch.Generator | None = None, progress: bool = False,
                        **attack_kw) -> torch.Tensor:
    """Per-example robustness, bool (N,) on the CPU: whether the attack's example is still
    classified correctly (model in eval mode).  The attack runs batch by batch.

    Args:
        model: classifier returning logits.
        x: inputs (N, …), floating point in [0, 1], on any device.
        y: labels (N,).
        eps: l∞ radius ε.
        attack: ``"pgd"`` (default; PGD-10 with step ε/5, Section 5.1, see
            :func:`rll.attacks.pgd`), ``"mt"`` (multi-targeted, 20 steps of ε/10 per target,
            Appendix D.1, see :func:`rll.attacks.multi_targeted`), ``"aa"`` (AutoAttack's
            standard version) or ``"aa-apgd"`` (APGD-CE + APGD-DLR): robust means robust to
            every component (:func:`autoattack_correct`).
        batch_size: attack batch size, default 512 (the released code used 16 for PGD and
            128 for MT; the result does not depend on it beyond the random starts).
        selection: for ``attack="mt"``: ``"released"`` (default) or ``"worst"``.
        generator: optional ``torch.Generator`` for the random starts; a CPU generator gives
            the same starts on every device.  (AutoAttack takes ``seed=`` instead.)
        progress: show a progress bar, default False.
        **attack_kw: passed to the attack (``step``, ``steps``, ``restarts``, ``mode``, …;
            AutoAttack: ``seed``).
    """
    _check_choice("attack", attack, ATTACKS)
    if attack in AUTOATTACK_OF:
        flags = autoattack_correct(model, x, y, eps=eps, version=AUTOATTACK_OF[attack],
                                   batch_size=batch_size, progress=progress, **attack_kw)
        return torch.stack(list(flags.values())).all(0)
    _check_batch(x, y)
    _check_batch_size(batch_size)
    _check_choice("selection", selection, SELECTIONS)
    if attack == "pgd":
        run = pgd
    else:
        def run(model, xb, yb, **kw):
            return multi_targeted(model, xb, yb, selection=selection, **kw)
    device = _device_of(model, x.device)
    flags = []
    with _bar(len(x), f"attack ({attack})", progress) as bar:
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(device, non_blocking=True)
            yb = y[i:i + batch_size].to(device, non_blocking=True)
            x_adv = run(model, xb, yb, eps=eps, generator=generator, **attack_kw)
            with model_mode(model, "eval"), torch.no_grad():
                flags.append((model(x_adv).argmax(1) == yb).cpu())
            bar.update(len(xb))
    return torch.cat(flags) if flags else torch.empty(0, dtype=torch.bool)


def autoattack_correct(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                       version: str = "standard", seed: int = 0, batch_size: int = 512,
                       progress: bool = False) -> dict[str, torch.Tensor]:
    """Per-example robustness to each AutoAttack component, ``{component: bool (N,)}`` on the
    CPU (:func:`rll.attacks.autoattack`: every component on every input, seeded).  An input
    counts as robust to AutoAttack when it is robust to every component."""
    _check_batch(x, y)
    _check_batch_size(batch_size)
    _check_choice("version", version, tuple(AUTOATTACK_VERSIONS))
    device = _device_of(model, x.device)
    flags: dict[str, list] = {name: [] for name in AUTOATTACK_VERSIONS[version]}
    with _bar(len(x), f"attack (autoattack {version})", progress) as bar:
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(device, non_blocking=True)
            yb = y[i:i + batch_size].to(device, non_blocking=True)
            for name, x_adv in autoattack(model, xb, yb, eps=eps, version=version, seed=seed).items():
                with model_mode(model, "eval"), torch.no_grad():
                    flags[name].append((model(x_adv).argmax(1) == yb).cpu())
            bar.update(len(xb))
    return {name: torch.cat(f) if f else torch.empty(0, dtype=torch.bool) for name, f in flags.items()}


def per_class_percent(flags: torch.Tensor, y: torch.Tensor, num_classes: int) -> list[float | None]:
    """Percent of ``flags`` true within each class of ``y`` (None for a class with no example)."""
    y = y.cpu()
    total = torch.bincount(y, minlength=num_classes)
    hits = torch.bincount(y[flags.cpu()], minlength=num_classes)
    return [None if t == 0 else 100.0 * h.item() / t.item() for h, t in zip(hits, total)]


def mt_selection_correct(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                         batch_size: int = 512, generator: torch.Generator | None = None,
                         progress: bool = False, **attack_kw) -> dict[str, torch.Tensor]:
    """Per-example robustness (bool (N,) on the CPU) under the multi-targeted attack with each
    selection — ``released`` (by score, as the authors' code) and ``worst`` (per-example worst
    case) — from one run of the attack (:func:`rll.attacks.multi_targeted_selections`)."""
    _check_batch(x, y)
    _check_batch_size(batch_size)
    device = _device_of(model, x.device)
    flags: dict[str, list] = {}
    with _bar(len(x), "attack (mt, both selections)", progress) as bar:
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(device, non_blocking=True)
            yb = y[i:i + batch_size].to(device, non_blocking=True)
            for selection, x_adv in multi_targeted_selections(model, xb, yb, eps=eps, generator=generator,
                                                              **attack_kw).items():
                with model_mode(model, "eval"), torch.no_grad():
                    flags.setdefault(selection, []).append((model(x_adv).argmax(1) == yb).cpu())
            bar.update(len(xb))
    return {selection: torch.cat(f) for selection, f in flags.items()}


def mt_selection_accuracies(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                            batch_size: int = 512, generator: torch.Generator | None = None,
                            progress: bool = False, **attack_kw) -> dict[str, float]:
    """:func:`mt_selection_correct` as accuracies in percent, ``{selection: accuracy}``."""
    return {selection: _percent(f) for selection, f in mt_selection_correct(
        model, x, y, eps=eps, batch_size=batch_size, generator=generator, progress=progress,
        **attack_kw).items()}
