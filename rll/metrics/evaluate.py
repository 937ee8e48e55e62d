"""A trained model's row of the paper's tables: what is evaluated on how many images
(:class:`EvalPlan`), on fixed subsets, and every column at once (:func:`table_metrics`)."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from rll.attacks import SELECTIONS, WHITE_BOX
from rll.attacks.steps import _check_batch, _check_choice
from rll.metrics.accuracy import (
    ATTACKS,
    AUTOATTACK_OF,
    _check_batch_size,
    _device_of,
    _percent,
    accuracy,
    adversarial_accuracy,
    adversarial_correct,
    autoattack_correct,
    correct,
    mt_selection_correct,
    per_class_percent,
)
from rll.metrics.lipschitz import LIPSCHITZ_MODES, local_lipschitz

#: Seed of the fixed permutation the evaluation subsets are prefixes of.
SUBSET_SEED = 20201207


def fixed_subset(n: int, size: int | None) -> torch.Tensor | None:
    """Sorted indices of the fixed evaluation subset of ``size`` out of ``n`` items (None: all):
    the first ``size`` of one fixed random permutation of ``range(n)`` (seed
    :data:`SUBSET_SEED`, the same for every run and seed), so every model is evaluated on the
    same images and a smaller subset is nested in a larger one."""
    if size is None or size >= n:
        return None
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(SUBSET_SEED))
    return perm[:size].sort().values


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
             progress: bool = False,
             measured_elsewhere: Callable[[str], dict[str, torch.Tensor] | None] | None = None) -> dict[str, dict]:
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

    ``measured_elsewhere``: called with ``aa`` or ``aa-apgd`` when the evaluation gets there,
    it may return that configuration's per-example component flags (:func:`autoattack_flags`,
    the same call on the same model, e.g. in another process of a data-parallel run) instead of
    having them computed here; None computes them here.

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
                size = _autoattack_images(plan, attack)
                xs, ys = _subset(x_te, y_te, size)
                components = measured_elsewhere(attack) if measured_elsewhere is not None else None
                if components is None:
                    components = autoattack_flags(model, test, attack, eps=eps, plan=plan, seed=seed,
                                                  progress=progress)
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


def _autoattack_images(plan: EvalPlan, attack: str) -> int | None:
    return plan.aa_images if attack == "aa-apgd" else plan.aa_standard_images


def autoattack_flags(model: torch.nn.Module, test: tuple[torch.Tensor, torch.Tensor], attack: str, *,
                     eps: float, plan: EvalPlan = EvalPlan(), seed: int | None = 0,
                     progress: bool = False) -> dict[str, torch.Tensor]:
    """The per-example part of an AutoAttack record (``attack`` ``aa`` or ``aa-apgd``), as
    :func:`evaluate` measures it: robustness to each component (:func:`autoattack_correct`) on
    the plan's fixed test subset, ``{component: bool (N,)}``.  Deterministic for a given model
    (every component is seeded), so another process can measure it for :func:`evaluate`."""
    if attack not in AUTOATTACK_OF:
        raise ValueError(f"attack must be one of {', '.join(AUTOATTACK_OF)}, got {attack!r}")
    xs, ys = _subset(*test, _autoattack_images(plan, attack))
    return autoattack_correct(model, xs, ys, eps=eps, version=AUTOATTACK_OF[attack],
                              seed=0 if seed is None else seed, batch_size=plan.batch_size, progress=progress)


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
