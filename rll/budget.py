"""Choosing a training budget by measurement, and telling converged runs from unconverged ones.

A *budget* is (training images, epochs, milestones) at the paper's optimiser (SGD, momentum 0.9,
batch 64, learning rate 6.4e-3 on the mean loss for MNIST).  Its cost is counted in image-epochs
(training images × epochs): the training time of every method is proportional to it.  The
budget page (``notebooks/budget``) shows learning curves — clean and PGD-10 test accuracy and
the Lipschitz estimates after every epoch, stored in each record's ``provenance.history`` by
``train(..., curve_images=...)`` — for several budgets, and applies :func:`budget_rule`:

* natural CNN2 reaches at least :data:`NATURAL_MIN` % clean test accuracy (whole test set);
* AT CNN2 reaches at least :data:`AT_MIN` % PGD-10 accuracy (whole test set);
* both have flattened (:func:`converged`);

the cheapest budget (fewest image-epochs) that meets all three is the tables' budget
(:data:`rll.experiments.TABLE_BUDGETS`).

:func:`converged` is also the precondition of the verdicts that need trained models: a run
whose last epoch still moved its clean accuracy by more than :data:`FLAT_CLEAN` points or its
PGD-10 accuracy by more than :data:`FLAT_ADV` points has not settled at its budget.
"""
from __future__ import annotations

import numpy as np

from rll import experiments

NATURAL_MIN = 98.5   # % clean test accuracy of natural CNN2
AT_MIN = 90.0        # % PGD-10 test accuracy of AT CNN2
FLAT_CLEAN = 0.5     # points of clean accuracy the last epoch may still add (or lose)
FLAT_ADV = 1.0       # points of PGD-10 accuracy (curve subset) the last epoch may still move
#: Training-split sizes, for runs on the whole split.
TRAIN_SPLIT_SIZE = {"mnist": 60000, "cifar10": 50000, "svhn": 73257}


def curve(record: dict) -> list[dict]:
    """The per-epoch learning-curve points of a record (empty when it has none): epoch, lr,
    training loss and the curve's metrics."""
    out = []
    for h in record.get("provenance", {}).get("history", []):
        if "curve" in h:
            out.append({"epoch": h["epoch"], "lr": h["lr"], "loss": h["loss"], **{
                k: v for k, v in h["curve"].items() if k != "evaluated_on"}})
    return out


def converged(record: dict) -> tuple[bool | None, str]:
    """Whether a run settled at its budget: its last epoch moved the clean test accuracy by at
    most :data:`FLAT_CLEAN` points and the curve's PGD-10 accuracy by at most :data:`FLAT_ADV`.
    ``(None, reason)`` when the record has fewer than two curve points."""
    points = curve(record)
    if len(points) < 2:
        return None, "no learning curve"
    last, before = points[-1], points[-2]
    d_clean = last["test_acc"] - before["test_acc"]
    d_adv = last["adv_test_acc"] - before["adv_test_acc"]
    ok = abs(d_clean) <= FLAT_CLEAN and abs(d_adv) <= FLAT_ADV
    return ok, f"last epoch moved clean {d_clean:+.2f}, PGD-10 {d_adv:+.2f} points"


def image_epochs(config: dict) -> int:
    """The budget's cost: training images × epochs (the whole split when ``train_size`` is None)."""
    n = config["train_size"] or TRAIN_SPLIT_SIZE.get(config["dataset"], 0)
    return n * config["epochs"]


def budget_key(config: dict) -> tuple:
    return (config["train_size"], config["epochs"], tuple(config["milestones"]))


def budget_frame(records: list[dict]):
    """One row per (budget, method) of CNN2 seed-0 paper-fidelity PGD records: the budget, its
    cost, the final clean and PGD-10 accuracy (whole test set), both Lipschitz estimates, the
    paper's numbers, whether the run converged, and the measured seconds."""
    import pandas as pd

    rows = []
    for r in records:
        c, m, p = r["config"], r["metrics"], r["provenance"]
        if c["model"] != "cnn2" or c["seed"] != 0 or c["fidelity"] != "paper" or c["attack"] != "pgd":
            continue
        label = experiments.method_label(c["method"], experiments.row_params(c["method"], c["params"]))
        paper = experiments.paper_row(c["dataset"], c["model"], c["method"], experiments.row_params(
            c["method"], c["params"]), c["dropout"], "pgd") or {}
        ok, why = converged(r)
        rows.append({"train images": c["train_size"], "epochs": c["epochs"], "milestones": tuple(c["milestones"]),
                     "image-epochs": image_epochs(c), "method": label, "clean": m["test_acc"],
                     "PGD-10": m["adv_test_acc"], "Lipschitz (released)": m.get("test_lipschitz_released"),
                     "Lipschitz (Eq. 3)": m.get("test_lipschitz"), "paper clean": paper.get("test_acc"),
                     "paper PGD-10": paper.get("adv_test_acc"), "paper Lipschitz": paper.get("test_lipschitz"),
                     "converged": ok, "last epoch": why, "train s": p.get("train_seconds"),
                     "eval s": p.get("eval_seconds")})
    frame = pd.DataFrame(rows)
    return frame.sort_values(["image-epochs", "train images", "method"]).reset_index(drop=True) if len(frame) else frame


def budget_rule(frame):
    """Apply the rule to :func:`budget_frame`: one row per budget with natural's clean accuracy,
    AT's PGD-10 accuracy, their convergence and whether the budget qualifies; sorted by cost.
    A budget without a natural or an AT run cannot qualify (``None``: not measured)."""
    import pandas as pd

    rows = []
    for key, g in frame.groupby(["train images", "epochs", "milestones"], sort=False):
        nat, at = g[g["method"] == "Natural"], g[g["method"] == "AT"]
        row = {"train images": key[0], "epochs": key[1], "milestones": key[2],
               "image-epochs": int(g["image-epochs"].iloc[0]),
               "natural clean": nat["clean"].iloc[0] if len(nat) else np.nan,
               "AT PGD-10": at["PGD-10"].iloc[0] if len(at) else np.nan,
               "converged": bool(nat["converged"].iloc[0] and at["converged"].iloc[0]) if len(nat) and len(at) else None}
        measured = len(nat) and len(at)
        row["qualifies"] = (bool(row["natural clean"] >= NATURAL_MIN and row["AT PGD-10"] >= AT_MIN and row["converged"])
                            if measured else None)
        rows.append(row)
    return pd.DataFrame(rows).sort_values("image-epochs").reset_index(drop=True)


def cheapest_qualifying(rule):
    """The cheapest budget that qualifies, as TABLE_BUDGETS' keyword arguments, or None."""
    ok = rule[rule["qualifies"] == True]  # noqa: E712 — None means "not measured"
    if not len(ok):
        return None
    best = ok.iloc[0]
    return {"train_size": int(best["train images"]), "epochs": int(best["epochs"]),
            "milestones": tuple(best["milestones"])}


__all__ = ["AT_MIN", "FLAT_ADV", "FLAT_CLEAN", "NATURAL_MIN", "budget_frame", "budget_rule", "cheapest_qualifying",
           "converged", "curve", "image_epochs"]
