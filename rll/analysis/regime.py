"""The paper's regime: when a trained model's numbers can test the paper's claims about trained models.

A number from a model that has not fitted its training set, or whose quantities were still
moving when its learning rate was decayed, tests none of the paper's Section 5 claims (the
project's regime rule).  The regime is measured, per run, by three conditions:

1. **Fit.**  Training accuracy measured on at least :data:`MIN_TRAIN_IMAGES` training images
   within :data:`TRAIN_ACC_TOLERANCE` points of the paper's training accuracy for the same row
   (Tables 2–4, 9–14).  The record's own ``train_acc`` counts when its evaluation plan measured
   it on enough images; else the learning curve's last point (10 000 fixed training images,
   :data:`rll.training.run.CURVE_TRAIN_IMAGES`) when that was taken after the run's last epoch.
2. **Settled at the full learning rate.**  Along the least-squares trend of the last
   :data:`FLAT_WINDOW` learning-curve points taken *before any decay*, test accuracy changes by
   at most :data:`FLAT_TEST_ACC` points, the training loss by at most :data:`FLAT_LOSS`
   (absolute, in nats per example) and the released estimator's Lipschitz constant by at most
   :data:`FLAT_LIPSCHITZ` of its mean (:func:`trend_change`).  A run with fewer full-rate curve
   points cannot show this.
3. **Scale** (per block of a table, :func:`block_failures`): the natural row's released-
   estimator Lipschitz constant at least :data:`NATURAL_LIPSCHITZ_FRACTION` of the paper's —
   the claims about smoothness compare rows on a scale the paper's natural model sets.

:func:`run_failures` returns what a run fails, as readable strings with the numbers; an empty
list means the run is in the regime.  The thresholds are rll's choice (stated on the verdicts
page); the paper states none.
"""
from __future__ import annotations

import numpy as np

from rll.analysis.budget import _paper_method
from rll.analysis.frames import spearman
from rll.experiments.tables import (
    FIRST_CPU_BUDGETS,
    at_budget,
    method_label,
    row_params,
)
from rll.losses import is_current_revision
from rll.paper import PAPER_TABLES, paper_row

#: The fewest training images a training accuracy may be measured on.
MIN_TRAIN_IMAGES = 10_000
#: Points by which our training accuracy may fall short of (or exceed) the paper's.
TRAIN_ACC_TOLERANCE = 0.5
#: Full-rate learning-curve points over which flatness is judged: the trend over them (a
#: least-squares line), not their end points, so one noisy point neither hides a climb nor fakes one.
FLAT_WINDOW = 8
#: Largest change along that trend over the window: test accuracy (points), training loss (nats,
#: per example), released Lipschitz constant (relative to its mean over the window).
FLAT_TEST_ACC = 0.5
FLAT_LOSS = 0.01
FLAT_LIPSCHITZ = 0.10
#: The natural row's released Lipschitz constant must reach this fraction of the paper's.
NATURAL_LIPSCHITZ_FRACTION = 0.5
LIPSCHITZ = "test_lipschitz_released"


def train_accuracy(record: dict) -> tuple[float | None, int | None, str]:
    """``(training accuracy, images it was measured on, where from)`` of ``record``: its
    metrics' ``train_acc`` when measured on at least :data:`MIN_TRAIN_IMAGES`, else the last
    learning-curve point's when that was measured after the last epoch, else the record's own
    (on too few images)."""
    metrics, prov = record["metrics"], record.get("provenance", {})
    n = (metrics.get("evaluated_on") or {}).get("train_acc") or (prov.get("evaluation") or {}).get("train_images")
    if n is None:
        n = prov.get("n_train")
    if n is not None and n >= MIN_TRAIN_IMAGES:
        return metrics.get("train_acc"), n, "record"
    history = prov.get("history") or []
    last = history[-1] if history else {}
    curve = last.get("curve") or {}
    if curve.get("train_acc") is not None and last.get("epoch") == record["config"]["epochs"]:
        return curve["train_acc"], curve.get("train_evaluated_on"), "learning curve"
    return metrics.get("train_acc"), n, "record"


def full_rate_points(record: dict) -> list[dict]:
    """The learning-curve entries of ``record`` trained at its first (full) learning rate."""
    history = [h for h in record.get("provenance", {}).get("history") or [] if h.get("curve")]
    if not history:
        return []
    first = history[0]["lr"]
    return [h for h in history if abs(h["lr"] - first) <= 1e-12 * max(1.0, abs(first))]


#: The kinds of failure, in the order the evidence names them, with what each condition asks.
KINDS = {
    "fit": f"fitted as the paper's were (training accuracy on ≥ {MIN_TRAIN_IMAGES:,} images within "
           f"{TRAIN_ACC_TOLERANCE:g} points of the paper's)".replace(",", " "),
    "settled": f"settled at the full learning rate (along the trend of the last {FLAT_WINDOW} full-rate epochs: "
               f"test accuracy within {FLAT_TEST_ACC:g} points, training loss within {FLAT_LOSS:g}, released "
               f"Lipschitz within {FLAT_LIPSCHITZ:.0%})",
    "scale": f"natural's Lipschitz constant (released estimator) at least {NATURAL_LIPSCHITZ_FRACTION:g} × the paper's",
}


def trend_change(values: list[float]) -> float:
    """How much a least-squares line through ``values`` (one per epoch) changes from the first
    epoch to the last: slope × (n − 1)."""
    n = len(values)
    xs = range(n)
    mx, my = (n - 1) / 2, sum(values) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, values)) / sum((x - mx) ** 2 for x in xs)
    return slope * (n - 1)


def flatness(record: dict) -> tuple[bool | None, str]:
    """Whether ``record``'s quantities settled at the full learning rate (condition 2): True,
    False, or None when it has fewer than :data:`FLAT_WINDOW` full-rate curve points; with the
    numbers."""
    points = full_rate_points(record)
    if len(points) < FLAT_WINDOW:
        return None, f"{len(points)} full-rate epoch{'s' if len(points) != 1 else ''} with a learning curve"
    window = points[-FLAT_WINDOW:]
    acc = [h["curve"]["test_acc"] for h in window]
    # a released-fidelity loss is summed over the batch: per example, as the paper-fidelity mean
    per = record["config"].get("batch_size", 1) if record["config"].get("fidelity") == "released" else 1
    loss = [h["loss"] / per for h in window]
    lip = [h["curve"][LIPSCHITZ] for h in window]
    moves = {"test accuracy": (abs(trend_change(acc)), FLAT_TEST_ACC, ".2f", " points"),
             "loss": (abs(trend_change(loss)), FLAT_LOSS, ".3f", ""),
             "Lipschitz": (abs(trend_change(lip)) / max(abs(sum(lip) / len(lip)), 1e-12), FLAT_LIPSCHITZ, ".0%", "")}
    span = f"epochs {window[0]['epoch']}–{window[-1]['epoch']}"
    moving = [f"{name} moved {format(v, spec)}{unit}" for name, (v, bar, spec, unit) in moves.items() if v > bar]
    if moving:
        return False, f"{', '.join(moving)} over {span}"
    return True, f"settled over {span}"


def run_failures(record: dict, paper: dict | None = None) -> list[tuple[str, str]]:
    """What ``record`` fails of conditions 1 and 2, as ``(kind, numbers)`` pairs (:data:`KINDS`;
    empty: in the regime).  ``paper``: the paper's row for it (default
    :func:`rll.paper.paper_row`)."""
    c = record["config"]
    if paper is None:
        # the regime is the trained model's: an attack the paper never ran (AutoAttack) is
        # judged against the paper's PGD row of the same model
        attack = c.get("attack", "pgd")
        paper = paper_row(c["dataset"], c["model"], c["method"], c["params"], c.get("dropout", 0.0),
                          attack if attack in PAPER_TABLES else "pgd")
    out = []
    acc, n, _ = train_accuracy(record)
    if paper is not None and paper.get("train_acc") is not None and acc is not None:
        if n is None or n < MIN_TRAIN_IMAGES or abs(acc - paper["train_acc"]) > TRAIN_ACC_TOLERANCE:
            on = f" on {n:,}".replace(",", " ") if n is not None else ""
            out.append(("fit", f"{acc:.2f}%{on} vs {paper['train_acc']:.2f}%"))
    ok, why = flatness(record)
    if ok is not True:
        out.append(("settled", why))
    return out


def truncated(record: dict, epoch: int) -> dict:
    """``record`` as if its run had stopped after ``epoch`` (its learning curve up to there, the
    curve's training accuracy as its own): what the regime check would say of that rung."""
    history = [h for h in record.get("provenance", {}).get("history") or [] if h["epoch"] <= epoch]
    curve = history[-1].get("curve", {}) if history else {}
    metrics = {**record["metrics"], "train_acc": curve.get("train_acc"),
               "evaluated_on": {"train_acc": curve.get("train_evaluated_on")}, LIPSCHITZ: curve.get(LIPSCHITZ)}
    return {"config": {**record["config"], "epochs": epoch}, "metrics": metrics,
            "provenance": {**record.get("provenance", {}), "history": history, "evaluation": {}}}


def first_epoch_in_regime(record: dict, paper: dict | None = None) -> tuple[int | None, str]:
    """The first epoch from which ``record``'s run stays in the regime — meets conditions 1 and 2
    on its learning curve (:func:`truncated`), and for a natural run condition 3, at that epoch
    and at every later one measured (a plateau that the curve later climbs out of does not
    count); ``(None, what the last epoch fails)`` when the last epoch is not in it."""
    c = record["config"]
    if paper is None:
        paper = paper_row(c["dataset"], c["model"], c["method"], c["params"], c.get("dropout", 0.0), "pgd")
    history = [h for h in record.get("provenance", {}).get("history") or [] if h.get("curve")]
    if not history:
        return None, "no learning curve"
    first, why = None, ""
    for h in history:
        rung = truncated(record, h["epoch"])
        fails = run_failures(rung, paper)
        if c["method"] == "natural" and not c.get("dropout"):
            row = {"dataset": c["dataset"], "model": c["model"], "method": "natural", LIPSCHITZ: h["curve"][LIPSCHITZ]}
            fails += [("scale", v) for v in block_failures([row]).values()]
        if fails:
            first, why = None, "; ".join(f"{kind}: {numbers}" for kind, numbers in fails)
        elif first is None:
            first = h["epoch"]
    if first is None:
        return None, f"not in the regime at epoch {history[-1]['epoch']}: {why}"
    return first, f"in the regime from epoch {first} to the last measured, {history[-1]['epoch']}"


def block_failures(rows: list[dict], attack: str = "pgd") -> dict:
    """Condition 3 per (dataset, model) block of table ``rows`` (seeds merged or not):
    ``{(dataset, model): numbers}`` where the natural row's released Lipschitz constant is below
    :data:`NATURAL_LIPSCHITZ_FRACTION` of the paper's natural row's."""
    out = {}
    for r in rows:
        if r["method"] != "natural" or r.get("dropout", 0) or r.get(LIPSCHITZ) is None:
            continue
        paper = paper_row(r["dataset"], r["model"], "natural", {}, 0.0, attack)
        if paper is None or paper.get("test_lipschitz") is None:
            continue
        need = NATURAL_LIPSCHITZ_FRACTION * paper["test_lipschitz"]
        if r[LIPSCHITZ] < need:
            out[(r["dataset"], r["model"])] = f"{r[LIPSCHITZ]:.2f} vs the paper's {paper['test_lipschitz']:.2f}"
    return out


def _whole_set_curve(record: dict, dataset: str, model: str) -> bool:
    """Whether ``record`` is a learning-curve run of a table method (not a diagnostic variant) on
    ``dataset``'s whole training set, seed 0, PGD record, of the current fidelity revision."""
    c = record["config"]
    return ((c["dataset"], c["model"], c["seed"], c["attack"]) == (dataset, model, 0, "pgd")
            and c["train_size"] is None and _paper_method(c)
            and any(h.get("curve") for h in record["provenance"].get("history") or [])
            and is_current_revision(record["provenance"].get("fidelity_revision"), c))


def curve_runs(records: list[dict], *, dataset: str = "mnist", model: str = "cnn2") -> list[tuple[str, dict]]:
    """The learning-curve runs on the whole training set at the paper's learning rate without a
    decay, seed 0, PGD records of the table's methods (either fidelity; not diagnostic variants):
    ``(label, record)``, the longest run of each (method, fidelity), in the tables' row order.
    Runs on a schedule with decays are :func:`schedule_run`'s."""
    best: dict = {}
    for r in records:
        c = r["config"]
        if c["milestones"] or not _whole_set_curve(r, dataset, model):
            continue
        label = method_label(c["method"], row_params(c["method"], c["params"]))
        label += " (released)" if c["fidelity"] == "released" else ""
        key = (c["method"], tuple(sorted(row_params(c["method"], c["params"]).items())), c["fidelity"])
        if key not in best or c["epochs"] > best[key][1]["config"]["epochs"]:
            best[key] = (label, r)
    order = ("natural", "gr", "llr", "at", "rst", "trades")
    return sorted(best.values(), key=lambda lr: (order.index(lr[1]["config"]["method"]), lr[1]["config"]["fidelity"],
                                                 lr[0]))


def schedule_run(records: list[dict], *, dataset: str = "mnist", model: str = "cnn1", method: str = "natural",
                 fidelity: str = "paper") -> dict | None:
    """The longest learning-curve run of ``method`` (as :func:`curve_runs` selects them, no
    dropout) whose schedule decays the rate: the table budget's run continued on the paper's
    schedule (decays after epochs 40, 80, 120, 140; ``results/README.md``), or None."""
    runs = [r for r in records
            if (r["config"]["method"], r["config"]["fidelity"]) == (method, fidelity) and r["config"]["milestones"]
            and not r["config"].get("dropout") and _whole_set_curve(r, dataset, model)]
    return max(runs, key=lambda r: r["config"]["epochs"], default=None)


def network_readings(records: list[dict], *, dataset: str = "mnist", model: str = "cnn1", method: str = "natural",
                     epochs: int = 40) -> list[dict]:
    """The same run in each fidelity — on CNN1 two networks (the text's, and the released code's
    without the ReLU after the second convolution) — at ``epochs`` epochs of the full rate, seed 0,
    beside the paper's row: one dict per run (``network``, its training accuracy on the curve's
    training images, clean, PGD-10 and the released Lipschitz constant, and ``regime``: what it fails
    of conditions 1–3 or ``in the regime``), then the paper's.  The runs are :func:`curve_runs`'
    kind (either store), the first stored of each fidelity."""
    chosen: dict = {}
    for r in records:
        c = r["config"]
        if (c["method"] == method and not c["milestones"] and c["epochs"] == epochs and not c.get("dropout")
                and _whole_set_curve(r, dataset, model)):
            chosen.setdefault(c["fidelity"], r)
    paper = paper_row(dataset, model, method, {}, 0.0, "pgd") or {}
    rows = []
    for fidelity in ("paper", "released"):
        r = chosen.get(fidelity)
        if r is None:
            continue
        m = r["metrics"]
        short = {"fit": "not fitted", "settled": "not settled", "scale": "below half the paper's Lipschitz"}
        fails = [f"{short[kind]}: {numbers}" for kind, numbers in run_failures(r, paper)]
        if method == "natural" and paper.get("test_lipschitz") and m[LIPSCHITZ] < (
                NATURAL_LIPSCHITZ_FRACTION * paper["test_lipschitz"]):
            fails.append(f"{short['scale']}: {m[LIPSCHITZ]:.2f} vs {paper['test_lipschitz']:.2f}")
        rows.append({"network": f"{model.upper()} as {'the paper describes it' if fidelity == 'paper' else 'released'} "
                                f"(fidelity={fidelity})",
                     "epochs": epochs, "train acc.": train_accuracy(r)[0], "test acc.": m["test_acc"],
                     "PGD-10": m["adv_test_acc"], "Lipschitz (released)": m[LIPSCHITZ],
                     "regime": "; ".join(fails) or "in the regime"})
    if rows and paper:
        rows.append({"network": "the paper's Table 2 (the released code, 160 epochs)", "epochs": 160,
                     "train acc.": paper.get("train_acc"), "test acc.": paper.get("test_acc"),
                     "PGD-10": paper.get("adv_test_acc"), "Lipschitz (released)": paper.get("test_lipschitz"),
                     "regime": ""})
    return rows


def regime_epochs(runs: list[tuple[str, dict]]) -> tuple[int | None, dict]:
    """The budget the learning curves ask for: the fewest full-rate epochs after which every
    paper-fidelity run of ``runs`` (:func:`curve_runs`) that reaches the paper's regime is in it
    and stays (:func:`first_epoch_in_regime`), the largest of their first epochs.  Returns
    ``(epochs or None, {label: first epoch, or what its last epoch fails})``: the runs not in the
    regime at their last epoch are named, not waited for (they are judged, and named, where a
    verdict uses them); None when no paper-fidelity run reaches the regime."""
    firsts, out = [], {}
    for label, r in runs:
        if r["config"]["fidelity"] != "paper":
            continue
        epoch, why = first_epoch_in_regime(r)
        out[label] = epoch if epoch is not None else why
        if epoch is not None:
            firsts.append(epoch)
    return (max(firsts) if firsts else None), out


def regime_frame(runs: list[tuple[str, dict]]):
    """One row per learning-curve run (:func:`curve_runs`): its epochs, the last epoch's training
    and test accuracy, PGD-10 accuracy and Lipschitz constant each beside the paper's, and the
    first epoch at which it is in the paper's regime (:func:`first_epoch_in_regime`) or what
    its last epoch still fails."""
    import pandas as pd

    rows = []
    for label, r in runs:
        c = r["config"]
        last = [h for h in r["provenance"]["history"] if h.get("curve")][-1]
        paper = paper_row(c["dataset"], c["model"], c["method"], c["params"], c.get("dropout", 0.0),
                                      "pgd") or {}
        epoch, why = first_epoch_in_regime(r, paper or None)
        cell = lambda ours, key: (f"{ours:.2f} ({paper[key]:.2f})" if paper.get(key) is not None
                                  else f"{ours:.2f}")
        rows.append({"run": label, "epochs": last["epoch"],
                     "train acc. (paper)": cell(last["curve"]["train_acc"], "train_acc"),
                     "test acc. (paper)": cell(last["curve"]["test_acc"], "test_acc"),
                     "PGD-10 (paper)": cell(last["curve"]["adv_test_acc"], "adv_test_acc"),
                     "Lipschitz (paper)": cell(last["curve"][LIPSCHITZ], "test_lipschitz"),
                     "in the regime from epoch": epoch if epoch is not None else "—",
                     "what the last epoch fails": "" if epoch is not None else why.split(": ", 1)[-1]})
    return pd.DataFrame(rows)


def phase_ends(record: dict) -> list[dict]:
    """The learning curve of ``record`` at the end of each learning-rate phase: per phase (epochs
    at one rate, in order), its first and last epoch, the rate, and the last epoch's curve point
    (training and test accuracy, PGD-10 on the curve's images, the released Lipschitz constant).
    On a run of the paper's schedule (decays after epochs 40, 80, 120, 140) this shows what each
    decayed phase adds to the full-rate phase that the table budget trains."""
    from rll.analysis.budget import curve

    phases: list[dict] = []
    for point in curve(record):
        if not phases or point["lr"] != phases[-1]["lr"]:
            phases.append({"first epoch": point["epoch"], "last epoch": point["epoch"], "lr": point["lr"]})
        phases[-1].update({"last epoch": point["epoch"], "train acc.": point.get("train_acc"),
                           "test acc.": point.get("test_acc"), "PGD-10": point.get("adv_test_acc"),
                           "Lipschitz (released)": point.get(LIPSCHITZ)})
    return phases


#: The 60 000-image rungs of the ladder (epochs of the learning curves at the full rate).
LADDER_EPOCHS = (1, 2, 5, 10, 20, 30, 40)


def ladder_frame(curve_records: list[tuple[str, dict]], table_records: list[dict], *, dataset: str = "mnist",
                 model: str = "cnn2"):
    """How the quantities the claims compare move with the budget: one row per rung — the
    first CPU budget's runs on 34 000 images (seed 0, :data:`rll.experiments.tables.FIRST_CPU_BUDGETS`) and each :data:`LADDER_EPOCHS` point of the
    60 000-image learning curves — and per method ``train % / PGD-10 % / Lipschitz`` (training
    accuracy on the images the rung measured it on; PGD-10 on the whole test set for a table
    run, on 1 000 images for a curve point; the released estimator) for the methods the curves
    measure (paper fidelity: the released rows are in :func:`regime_frame`) and the table's Natural,
    GR, LLR, AT and TRADES(β=6); and Spearman's ρ of Lipschitz
    and PGD-10 accuracy over every method the rung has — the claim's statistic only where all
    ten rows are stored and in the regime."""
    import pandas as pd

    order = ("natural", "gr", "llr", "at", "rst", "trades")
    rungs: dict[str, dict[str, tuple]] = {}
    budget = FIRST_CPU_BUDGETS.get(dataset, {}).get(model)
    for r in table_records:
        c = r["config"]
        if ((c["dataset"], c["model"], c["seed"], c["attack"], c["fidelity"]) != (dataset, model, 0, "pgd", "paper")
                or not at_budget(c, budget) or not is_current_revision(
                    r["provenance"].get("fidelity_revision"), c)):
            continue
        label = method_label(c["method"], row_params(c["method"], c["params"]))
        name = (f"{c['train_size']:,} × {c['epochs']}, decays after {', '.join(map(str, c['milestones']))} "
                "(first CPU budget)").replace(",", " ", 1)
        m = r["metrics"]
        rungs.setdefault(name, {})[label] = (m.get("train_acc"), m.get("adv_test_acc"), m.get(LIPSCHITZ))
    curve_records = [(label, r) for label, r in curve_records if r["config"]["fidelity"] == "paper"]
    for label, r in curve_records:       # the paper reading only: one reading per correlation
        for h in r["provenance"]["history"]:
            if h["epoch"] in LADDER_EPOCHS and h.get("curve"):
                cv = h["curve"]
                rungs.setdefault(f"60 000 × {h['epoch']}, no decay", {})[label] = (
                    cv.get("train_acc"), cv["adv_test_acc"], cv[LIPSCHITZ])
    shown = {"Natural", "GR", "LLR", "AT", "TRADES(β=6)"} | {label for label, _ in curve_records}
    labels = sorted({label for row in rungs.values() for label in row if label in shown},
                    key=lambda lab: (next((i for i, m in enumerate(order) if lab.lower().startswith(m)), len(order)), lab))
    rows = []
    for name, row in rungs.items():
        out = {"rung": name}
        for label in labels:
            t, a, lip = row.get(label, (None, None, None))
            out[label] = "—" if a is None else f"{'—' if t is None else f'{t:.2f}'} / {a:.1f} / {lip:.2f}"
        values = [(v[2], v[1]) for v in row.values() if v[1] is not None and v[2] is not None]
        out["ρ(Lipschitz, PGD-10)"] = (f"{spearman(*zip(*values)):+.2f} over {len(values)}"
                                       if len(values) >= 3 else "—")
        rows.append(out)
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["_images"] = [int(n.split(" ×")[0].replace(" ", "")) for n in frame["rung"]]
        frame["_epochs"] = [int(n.split("× ")[1].split(",")[0]) for n in frame["rung"]]
        frame = frame.sort_values(["_images", "_epochs"]).drop(columns=["_images", "_epochs"]).reset_index(drop=True)
    return frame


def curve_cost(curve_records: list[tuple[str, dict]], *, epochs: int = 40):
    """What training on all 60 000 images costs on this CPU, measured by the learning curves: per
    run its precision, the epochs measured, the median and the fastest training seconds of an
    epoch (the fastest is the closest to an unshared core: the machine ran two workers and more),
    the median seconds of the per-epoch curve evaluation, and the hours of ``epochs`` epochs at
    the median and at the fastest.  Returns the frame and the two totals over its rows (hours of
    one core)."""
    import pandas as pd

    rows = []
    for label, r in curve_records:
        history = r["provenance"].get("history") or []
        train = [h["seconds"] for h in history if h.get("seconds") is not None]
        curve = [h["curve_seconds"] for h in history if h.get("curve_seconds") is not None]
        if not train:
            continue
        median, fastest = float(np.median(train)), float(min(train))
        rows.append({"run": label, "precision": r["config"].get("precision", "fp32"), "epochs measured": len(train),
                     "s / epoch (median)": median, "s / epoch (fastest)": fastest,
                     "curve s / epoch": float(np.median(curve)) if curve else np.nan,
                     f"h for {epochs} epochs (median)": epochs * median / 3600,
                     f"h for {epochs} epochs (fastest)": epochs * fastest / 3600})
    frame = pd.DataFrame(rows)
    if not len(frame):
        return frame, float("nan"), float("nan")
    return (frame, float(frame[f"h for {epochs} epochs (median)"].sum()),
            float(frame[f"h for {epochs} epochs (fastest)"].sum()))


__all__ = [
    "FLAT_LIPSCHITZ",
    "FLAT_LOSS",
    "FLAT_TEST_ACC",
    "FLAT_WINDOW",
    "KINDS",
    "LADDER_EPOCHS",
    "MIN_TRAIN_IMAGES",
    "NATURAL_LIPSCHITZ_FRACTION",
    "TRAIN_ACC_TOLERANCE",
    "block_failures",
    "curve_cost",
    "curve_runs",
    "first_epoch_in_regime",
    "flatness",
    "full_rate_points",
    "ladder_frame",
    "network_readings",
    "phase_ends",
    "regime_epochs",
    "regime_frame",
    "run_failures",
    "schedule_run",
    "train_accuracy",
    "truncated",
]
