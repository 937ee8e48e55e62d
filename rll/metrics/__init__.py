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

import dataclasses
from dataclasses import dataclass
from typing import Literal

import torch
from tqdm.auto import tqdm

from rll.attacks import (
    AUTOATTACK_VERSIONS,
    SELECTIONS,
    WHITE_BOX,
    _check_batch,
    _check_choice,
    autoattack,
    linf_ascent,
    model_mode,
    multi_targeted,
    multi_targeted_selections,
    pgd,
)

#: Evaluation attacks: PGD-10 (Section 5), the multi-targeted attack (Appendix D.1), AutoAttack's
#: standard version (``aa``) and its cheaper APGD-CE + APGD-DLR configuration (``aa-apgd``).
ATTACKS = ("pgd", "mt", "aa", "aa-apgd")
#: The AutoAttack version (:data:`rll.attacks.AUTOATTACK_VERSIONS`) behind each ``aa`` attack name.
AUTOATTACK_OF = {"aa": "standard", "aa-apgd": "apgd"}
#: Seed of the fixed permutation the evaluation subsets are prefixes of.
SUBSET_SEED = 20201207
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


def fixed_subset(n: int, size: int | None) -> torch.Tensor | None:
    """Sorted indices of the fixed evaluation subset of ``size`` out of ``n`` items (None: all):
    the first ``size`` of one fixed random permutation of ``range(n)`` (seed
    :data:`SUBSET_SEED`, the same for every run and seed), so every model is evaluated on the
    same images and a smaller subset is nested in a larger one."""
    if size is None or size >= n:
        return None
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(SUBSET_SEED))
    return perm[:size].sort().values


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


@dataclass(frozen=True)
class EvalPlan:
    """How many images each column of a record is measured on.

    Every size picks a fixed subset (:func:`fixed_subset`) of the split it refers to; ``None``
    means the whole split.  The defaults measure everything on everything; the Section 5
    tables use :data:`rll.experiments.tables.TABLE_EVAL_PLAN`.

    Fields:
        train_images: the train-side columns (``train_acc``, PGD ``adv_train_acc``), a subset
            of the images the model was trained on.
        pgd_test_images: PGD-10 on the test split (``adv_test_acc``; the clean ``test_acc`` is
            always on the whole split).
        lipschitz_images: both Lipschitz estimators (Eq. 3 and the released one), test split.
        mt_test_images, mt_train_images: the multi-targeted attack, test and training side.
        aa_images: ``aa-apgd`` (APGD-CE + APGD-DLR), test split.
        aa_standard_images: ``aa`` (AutoAttack's standard version), test split.
        batch_size: evaluation batch size (on the CPU a small one is fastest).
    """

    train_images: int | None = None
    pgd_test_images: int | None = None
    lipschitz_images: int | None = None
    mt_test_images: int | None = None
    mt_train_images: int | None = None
    aa_images: int | None = None
    aa_standard_images: int | None = None
    batch_size: int = 512

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "batch_size":
                _check_batch_size(v)
            elif v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ValueError(f"EvalPlan.{f.name} must be a positive integer or None (all), got {v!r}")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _subset(x: torch.Tensor, y: torch.Tensor, size: int | None):
    idx = fixed_subset(len(y), size)
    return (x, y) if idx is None else (x[idx.to(x.device)], y[idx.to(y.device)])


def evaluate(model: torch.nn.Module, train: tuple[torch.Tensor, torch.Tensor] | None,
             test: tuple[torch.Tensor, torch.Tensor], *, eps: float, attacks=("pgd",),
             plan: EvalPlan = EvalPlan(), seed: int | None = 0, num_classes: int | None = None,
             selection: Literal["released", "worst"] = "released", device: str | torch.device | None = None,
             progress: bool = False) -> dict[str, dict]:
    """Every column of a trained model's records, one metrics dict per attack.

    The columns shared by every attack are computed once (model in eval mode, accuracies in
    percent): ``test_acc`` and ``per_class_test_acc`` on the whole test split; ``train_acc``
    on ``plan.train_images``; ``test_lipschitz`` (Eq. 3, :func:`local_lipschitz`
    ``mode="paper"``) and ``test_lipschitz_released`` (the released estimator, the one the
    paper's numbers come from) on ``plan.lipschitz_images``; ``gap = train_acc − test_acc``.
    Then per attack:

    * ``pgd``: ``adv_test_acc`` and ``per_class_adv_test_acc`` (PGD-10) on
      ``plan.pgd_test_images``, ``adv_train_acc`` on ``plan.train_images``;
    * ``mt``: the multi-targeted attack (``selection``) on ``plan.mt_test_images`` and
      ``plan.mt_train_images``; on the test side both selections come from the same attack
      run (``adv_test_acc_released_selection``, ``adv_test_acc_worst_selection``), and, when
      PGD was evaluated first, ``pgd_acc_same_images`` (PGD-10 on the MT test images, so the two
      attacks compare on the same images);
    * ``aa-apgd`` / ``aa``: AutoAttack on ``plan.aa_images`` / ``plan.aa_standard_images``
      test images: ``adv_test_acc`` (robust to every component), ``components`` (each
      component's robust accuracy), ``clean_acc_same_images``, and, when PGD was evaluated
      too, ``pgd_acc_same_images`` and ``square_only`` (examples only Square broke: a
      gradient-masking sign).  No train side: ``adv_train_acc`` and ``adv_gap`` are None.

    ``adv_gap = adv_train_acc − adv_test_acc`` where both exist.  Subsets are nested prefixes
    of one fixed permutation (:func:`fixed_subset`), so the AutoAttack images are among the
    PGD images.  ``seed`` seeds every attack's and estimate's random starts (each from a fresh
    generator); ``train=None`` skips the train side (learning curves).

    Returns ``{attack: metrics}``; ``metrics["evaluated_on"]`` says how many images each
    column used.
    """
    for attack in attacks:
        _check_choice("attack", attack, ATTACKS)
    (x_te, y_te) = test
    home = _device_of(model, torch.device("cpu"))
    model.to(home if device is None else torch.device(device))
    kw = dict(batch_size=plan.batch_size, progress=progress)

    def gen() -> torch.Generator | None:
        return None if seed is None else torch.Generator().manual_seed(seed)

    try:
        if num_classes is None:
            num_classes = int(y_te.max()) + 1
        test_flags = correct(model, x_te, y_te, **kw)
        common: dict = {"test_acc": _percent(test_flags),
                        "per_class_test_acc": per_class_percent(test_flags, y_te, num_classes)}
        sizes: dict = {"test_acc": len(y_te)}
        tr = _subset(*train, plan.train_images) if train is not None else None
        if tr is not None:
            common["train_acc"] = accuracy(model, *tr, **kw)
            sizes["train_acc"] = len(tr[1])
        lip_x, _ = _subset(x_te, y_te, plan.lipschitz_images)
        for key, mode in (("test_lipschitz", "paper"), ("test_lipschitz_released", "released")):
            common[key] = local_lipschitz(model, lip_x, eps=eps, mode=mode, generator=gen(), **kw)
        sizes["test_lipschitz"] = len(lip_x)
        pgd_flags = None
        out: dict[str, dict] = {}
        for attack in attacks:
            m, n = dict(common), dict(sizes)
            if attack in ("pgd", "mt"):
                te_size = plan.pgd_test_images if attack == "pgd" else plan.mt_test_images
                te = _subset(x_te, y_te, te_size)
                if attack == "pgd":
                    flags = adversarial_correct(model, *te, eps=eps, generator=gen(), **kw)
                else:   # both selections from one run of the attack
                    both = mt_selection_correct(model, *te, eps=eps, generator=gen(), **kw)
                    flags = both[selection]
                    m["adv_test_acc_released_selection"] = _percent(both["released"])
                    m["adv_test_acc_worst_selection"] = _percent(both["worst"])
                m["adv_test_acc"], n["adv_test_acc"] = _percent(flags), len(flags)
                if attack == "pgd":
                    pgd_flags = (te_size, flags)
                    m["per_class_adv_test_acc"] = per_class_percent(flags, te[1], num_classes)
                elif pgd_flags is not None:   # PGD on MT's own images: a paired comparison
                    same = _flags_on_subset(pgd_flags, len(y_te), te_size)
                    if same is not None:
                        m["pgd_acc_same_images"] = _percent(same)
                if tr is not None:
                    trs = tr if attack == "pgd" else _subset(*tr, plan.mt_train_images)
                    m["adv_train_acc"] = adversarial_accuracy(model, *trs, eps=eps, attack=attack,
                                                              selection=selection, generator=gen(), **kw)
                    n["adv_train_acc"] = len(trs[1])
            else:
                size = plan.aa_images if attack == "aa-apgd" else plan.aa_standard_images
                xs, ys = _subset(x_te, y_te, size)
                components = autoattack_correct(model, xs, ys, eps=eps, version=AUTOATTACK_OF[attack],
                                                seed=0 if seed is None else seed, **kw)
                worst = torch.stack(list(components.values())).all(0)
                m["adv_test_acc"], n["adv_test_acc"] = _percent(worst), len(ys)
                m["components"] = {name: _percent(f) for name, f in components.items()}
                m["clean_acc_same_images"] = _percent(correct(model, xs, ys, **kw))
                if pgd_flags is not None:
                    same = _flags_on_subset(pgd_flags, len(y_te), size)
                    if same is not None:
                        m["pgd_acc_same_images"] = _percent(same)
                if "square" in components:
                    white = torch.stack([f for k, f in components.items() if k in WHITE_BOX]).all(0)
                    m["square_only"] = int((white & ~components["square"]).sum())
            m["gap"] = m["train_acc"] - m["test_acc"] if "train_acc" in m else None
            adv_train = m.setdefault("adv_train_acc", None)
            m["adv_gap"] = adv_train - m["adv_test_acc"] if adv_train is not None else None
            m["evaluated_on"] = n
            out[attack] = m
    finally:
        model.to(home)
    return out


def _flags_on_subset(flags_of: tuple[int | None, torch.Tensor], n: int, size: int | None) -> torch.Tensor | None:
    """PGD's per-example flags (computed on the fixed subset of ``flags_of[0]`` images) restricted
    to the fixed subset of ``size`` images, when that subset is nested in the first."""
    have, flags = flags_of
    have_idx, want_idx = fixed_subset(n, have), fixed_subset(n, size)
    if want_idx is None:
        return flags if have_idx is None else None
    if have_idx is None:
        return flags[want_idx]
    pos = {int(i): k for k, i in enumerate(have_idx)}
    if not all(int(i) in pos for i in want_idx):
        return None
    return flags[torch.tensor([pos[int(i)] for i in want_idx])]


def table_metrics(model: torch.nn.Module, train: tuple[torch.Tensor, torch.Tensor],
                  test: tuple[torch.Tensor, torch.Tensor], *, eps: float, attack: str = "pgd",
                  lipschitz_mode: Literal["paper", "released"] = "paper",
                  batch_size: int = 512, device: str | torch.device | None = None,
                  progress: bool = False, seed: int | None = 0,
                  selection: Literal["released", "worst"] = "released") -> dict[str, float]:
    """One row of the paper's Tables 2–4 (or 9–14 with ``attack="mt"``), every column on the
    whole of ``train`` and ``test``: :func:`evaluate` with one attack, reduced to the seven
    columns ``train_acc, test_acc, adv_train_acc, adv_test_acc, test_lipschitz, gap, adv_gap``
    (accuracies in percent, gaps in points).  ``lipschitz_mode`` picks the estimator behind
    ``test_lipschitz``: ``"paper"`` (Eq. 3, default) or ``"released"``.

    >>> table_metrics(model, (x_tr, y_tr), (x_te, y_te), eps=0.1, progress=True)
    """
    _check_choice("lipschitz_mode", lipschitz_mode, LIPSCHITZ_MODES)
    _check_choice("selection", selection, SELECTIONS)
    _check_batch(*train)
    _check_batch(*test)
    m = evaluate(model, train, test, eps=eps, attacks=(attack,), plan=EvalPlan(batch_size=batch_size),
                 seed=seed, selection=selection, device=device, progress=progress)[attack]
    if lipschitz_mode == "released":
        m["test_lipschitz"] = m["test_lipschitz_released"]
    keys = ("train_acc", "test_acc", "adv_train_acc", "adv_test_acc", "test_lipschitz", "gap", "adv_gap")
    return {k: m[k] for k in keys}


__all__ = ["ATTACKS", "AUTOATTACK_OF", "EvalPlan", "LIPSCHITZ_MODES", "accuracy", "adversarial_accuracy",
           "adversarial_correct", "autoattack_correct", "correct", "evaluate", "fixed_subset", "per_class_percent",
           "local_lipschitz", "mt_selection_accuracies", "mt_selection_correct", "lipschitz_ratios", "per_class_accuracy", "predictions",
           "table_metrics"]
