"""Why paper-fidelity GR does not train stably at the paper's learning rate on all 60 000 images.

The runs are CNN2, seed 0, the whole MNIST training set, the paper's optimiser (SGD, momentum 0.9,
6.4e-3 on the mean loss = the released 1e-4 on the summed loss) and no decay, each with learning
curves (``results/budget``); they differ from paper-fidelity GR (h = 0.01, β = 1) in one thing
each: the finite-difference step h, the learning rate, or β.  :func:`variant_frame` lines them up,
:func:`stability` says of each whether its training loss kept falling.
"""
from __future__ import annotations

from rll.config import TrainConfig

#: A run is unstable when its training loss ends more than this fraction above its lowest.
RISE = 0.10


def variant_runs(records: list[dict], *, dataset: str = "mnist", model: str = "cnn2") -> list[tuple[str, dict]]:
    """The paper-fidelity GR runs on the whole training set without decay, seed 0, PGD records,
    labelled by what differs from the paper reading (h = 0.01, β = 1, the paper's rate)."""
    default_lr = TrainConfig(dataset=dataset, model=model, method="gr").lr
    out = []
    for r in records:
        c = r["config"]
        if ((c["dataset"], c["model"], c["method"], c["fidelity"], c["seed"], c["attack"]) !=
                (dataset, model, "gr", "paper", 0, "pgd") or c["train_size"] is not None or c["milestones"]):
            continue
        p = c["params"]
        h = step(r)
        changes = []
        if h != 0.01:
            changes.append(f"h = {h:g} (the released code's step)" if h == 1.0 else f"h = {h:g}")
        if p.get("beta", 1.0) != 1.0:
            changes.append(f"β = {p['beta']:g}")
        if abs(c["lr"] - default_lr) > 1e-12:
            changes.append(f"learning rate {c['lr']:g} ({c['lr'] / default_lr:g}× the paper's)")
        if p.get("direction", "l2") != "l2":
            changes.append(f"direction {p['direction']}")
        out.append(("the paper reading (h = 0.01, β = 1)" if not changes else ", ".join(changes), r))
    return sorted(out, key=lambda lr: (lr[0] != "the paper reading (h = 0.01, β = 1)", lr[0]))


def step(record: dict) -> float:
    """The finite-difference step h a paper-fidelity GR run took: its own, else the default of its
    fidelity revision (0.01 before revision 3, then the released code's 1)."""
    h = record["config"]["params"].get("h")
    if h is not None:
        return float(h)
    return 0.01 if (record.get("provenance", {}).get("fidelity_revision") or 1) < 3 else 1.0


def stability(record: dict) -> tuple[bool, str]:
    """Whether the run's training loss kept falling: stable when its last epoch's loss is within
    :data:`RISE` of its lowest; else where it turned and how far it rose."""
    history = record["provenance"].get("history") or []
    losses = [h["loss"] for h in history]
    low = min(range(len(losses)), key=losses.__getitem__)
    if losses[-1] <= (1 + RISE) * losses[low]:
        return True, f"loss fell to {losses[-1]:.3f} by epoch {history[-1]['epoch']}"
    return False, (f"loss rose from {losses[low]:.3f} (epoch {history[low]['epoch']}) to {losses[-1]:.3f} "
                   f"(epoch {history[-1]['epoch']})")


def variant_frame(records: list[dict]):
    """One row per GR variant (:func:`variant_runs`): the training loss after each epoch, the last
    epoch's training accuracy (10 000 images), test accuracy, PGD-10 and Lipschitz constant
    (released estimator), and :func:`stability`."""
    import pandas as pd

    rows = []
    for label, r in variant_runs(records):
        history = [h for h in r["provenance"]["history"] if h.get("curve")]
        last = history[-1]["curve"]
        ok, why = stability(r)
        rows.append({"GR run (what differs from the paper reading)": label, "epochs": history[-1]["epoch"],
                     "training loss by epoch": " → ".join(f"{h['loss']:.3f}" for h in history),
                     "train acc.": last.get("train_acc"), "test acc.": last["test_acc"], "PGD-10": last["adv_test_acc"],
                     "Lipschitz": last["test_lipschitz_released"], "stable": "yes" if ok else f"no: {why}"})
    return pd.DataFrame(rows)


def finding(records: list[dict]) -> str:
    """One sentence computed from the variants: which ones train stably and which do not."""
    runs = variant_runs(records)
    if not runs:
        return "No GR variant run on the whole training set is stored yet."
    stable = [label for label, r in runs if stability(r)[0]]
    unstable = [label for label, r in runs if not stability(r)[0]]
    return ("At the paper's learning rate on all 60 000 images, " +
            (f"unstable: {'; '.join(unstable)}" if unstable else "no variant is unstable") + "; " +
            (f"stable: {'; '.join(stable)}" if stable else "no variant is stable") + ".")


__all__ = ["RISE", "variant_runs", "stability", "variant_frame", "finding"]
