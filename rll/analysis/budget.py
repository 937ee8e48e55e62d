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
(:data:`rll.experiments.tables.TABLE_BUDGETS`).

:func:`converged` is also the precondition of the verdicts that need trained models.  A run
has flattened when **one more epoch at its final learning rate** moves its clean accuracy by at
most :data:`FLAT_CLEAN` points and its PGD-10 accuracy by at most the larger of
:data:`FLAT_ADV` points and twice the sampling noise of the PGD measurement.  That extra epoch
is a run of its own, one epoch longer, trained from the shorter run's checkpoint
(:func:`rll.training.checkpoint.shorter_checkpoint`; the same weights as training it from scratch) and found
by :func:`continuation`.  Without it, the run's own last epoch is the test — unless that epoch
followed a learning-rate decay: what it moved then is mostly the decay's effect, so the test
says nothing and the run counts as *untested*.  (The PGD points of a curve are measured on
1 000 images, whose standard error at 85 % is 1.1 points: a smaller movement cannot be told
from noise.)  rll's choice: seeds of one configuration share their convergence test — a seed
without its own continuation takes that of a seed which has one (:func:`run_convergence`).
"""
from __future__ import annotations

import numpy as np

from rll.config import TrainConfig, lr_by_epoch
from rll.experiments.tables import (
    FULL_EVALUATION,
    TABLE_BUDGETS,
    at_budget,
    in_table_plan,
    is_table_run,
    method_label,
    model_budget,
    row_params,
    table_configs,
)
from rll.paper import paper_row

NATURAL_MIN = 98.5   # % clean test accuracy of natural CNN2
AT_MIN = 90.0        # % PGD-10 test accuracy of AT CNN2
FLAT_CLEAN = 0.5     # points of clean accuracy the last epoch may still add (or lose)
FLAT_ADV = 1.0       # points of PGD-10 accuracy the last epoch may still move (at least 2 standard errors)
#: Per dataset, (natural's clean, AT's PGD-10 test accuracy) a model block must reach for the
#: verdicts to read it: the rule's bars, applied to every model of the dataset.
TRAINED_BARS = {"mnist": (NATURAL_MIN, AT_MIN)}
MAX_EXTRA_EPOCHS = 8  # how many epochs beyond the table's a row may take to settle (settled_run)
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


def _tolerance(fraction: float, n: int) -> float:
    """:data:`FLAT_ADV`, or twice the binomial standard error (points) of an accuracy
    ``fraction`` measured on ``n`` images if that is larger."""
    return max(FLAT_ADV, 2 * 100 * (fraction * (1 - fraction) / n) ** 0.5) if n else FLAT_ADV


def adv_tolerance(record: dict) -> float:
    """How far (points) the curve's PGD-10 accuracy may move in the last epoch and still count as
    settled: :data:`FLAT_ADV`, or twice the binomial standard error of the last point on the
    curve's subset if that is larger."""
    history = record.get("provenance", {}).get("history", [])
    n = (history[-1].get("curve", {}).get("evaluated_on", {}).get("adv_test_acc") if history else None) or 0
    points = curve(record)
    return _tolerance(points[-1]["adv_test_acc"] / 100, n) if points else FLAT_ADV


def _identity(config: dict, *drop: str) -> str:
    import json

    return json.dumps({k: v for k, v in config.items() if k not in drop}, sort_keys=True, default=str)


def _seed0_paper_pgd(config: dict) -> bool:
    """A seed-0, paper-fidelity run's PGD-10 record: the runs the budget page reads."""
    return config["seed"] == 0 and config["fidelity"] == "paper" and config["attack"] == "pgd"


def _paper_method(config: dict) -> bool:
    """A table row's method as the tables run it — its parameters and the paper's learning rate —
    not a diagnostic variant (another GR step h, another rate)."""
    row = row_params(config["method"], config["params"])     # what names a table row (λ, β)
    default = TrainConfig(dataset=config["dataset"], model=config["model"], method=config["method"],
                          fidelity=config["fidelity"], params=row)
    return (is_table_run(config) and abs(config["lr"] - default.lr) <= 1e-12
            and dict(default.params) == dict(config["params"]))


def _label_and_paper(config: dict) -> tuple[str, dict]:
    """A run's method label as the paper writes it, and the paper's PGD-10 table row for it ({} if none)."""
    params = row_params(config["method"], config["params"])
    return (method_label(config["method"], params),
            paper_row(config["dataset"], config["model"], config["method"], params, config["dropout"],
                                  "pgd") or {})


def _revision(record: dict):
    return record.get("provenance", {}).get("fidelity_revision")


def continuation(record: dict, records: list[dict]) -> dict | None:
    """The PGD-10 record, among ``records``, of ``record``'s run trained one epoch longer at its
    final learning rate: the same configuration and fidelity revision but ``epochs + 1``, with
    the same rate in every epoch and the last epoch at the final one; or None."""
    c = record["config"]
    e = c["epochs"]
    want = _identity(c, "epochs", "milestones", "attack")
    rates = lr_by_epoch(c, e)
    for r in records:
        rc = r["config"]
        if (rc["epochs"] == e + 1 and rc.get("attack") == "pgd" and _revision(r) == _revision(record)
                and _runtime(r) == _runtime(record)
                and _identity(rc, "epochs", "milestones", "attack") == want
                and lr_by_epoch(rc, e + 1) == rates + rates[-1:]):
            return r
    return None


def _runtime(record: dict) -> tuple:
    """What changes a run's arithmetic without being part of its configuration."""
    p = record.get("provenance", {})
    return bool(p.get("channels_last")), p.get("precision", "fp32")


def _same_run(record: dict, records: list[dict], attack: str = "pgd") -> dict:
    """``record``'s run's record under ``attack`` (``record`` itself when there is none)."""
    if record["config"].get("attack") == attack:
        return record
    want = _identity(record["config"], "attack")
    return next((r for r in records if r["config"].get("attack") == attack
                 and _identity(r["config"], "attack") == want and _revision(r) == _revision(record)), record)


def _full_rate_window(points: list[dict]) -> list[dict] | None:
    """The last :data:`rll.analysis.regime.FLAT_WINDOW` curve points of a run that never decayed its
    learning rate, or None (a decayed run, or too few points)."""
    from rll.analysis.regime import FLAT_WINDOW

    if len(points) < FLAT_WINDOW or any(p["lr"] != points[0]["lr"] for p in points):
        return None
    return points[-FLAT_WINDOW:]


def _trend_converged(record: dict, window: list[dict]) -> tuple[bool, str]:
    """A run at the full rate throughout: flat when, along the least-squares trend of its last
    epochs (:func:`rll.analysis.regime.trend_change`, as the regime's settled test), clean accuracy
    moved by at most :data:`FLAT_CLEAN` points and PGD-10 accuracy by at most :func:`adv_tolerance`
    — one noisy epoch on the curve's 1 000 images neither fakes a climb nor hides one."""
    from rll.analysis.regime import trend_change

    d_clean = trend_change([p["test_acc"] for p in window])
    d_adv = trend_change([p["adv_test_acc"] for p in window])
    tol = adv_tolerance(record)
    ok = abs(d_clean) <= FLAT_CLEAN and abs(d_adv) <= tol
    return ok, (f"along the trend of epochs {window[0]['epoch']}–{window[-1]['epoch']} (no decay) clean moved "
                f"{d_clean:+.2f} (≤ {FLAT_CLEAN:g}), PGD-10 {d_adv:+.2f} (≤ {tol:.2f}) points")


def converged(record: dict, longer: dict | None = None) -> tuple[bool | None, str]:
    """Whether a run settled at its budget, and why.

    With ``longer`` (its :func:`continuation`): one more epoch at the final rate moved the clean
    and the PGD-10 test accuracy (both on the whole test set) by at most :data:`FLAT_CLEAN`
    points and :func:`_tolerance` (2 standard errors, at least :data:`FLAT_ADV`).  Without it: a run
    that never decayed its rate, by the trend of its last eight curve points
    (:func:`_trend_converged`); otherwise the run's own last epoch, read from its learning curve,
    with the curve's PGD tolerance (:func:`adv_tolerance`); ``(None, reason)`` — untested — when
    that epoch followed a learning-rate decay or the record has fewer than two curve points."""
    if longer is not None:
        m, ml = record["metrics"], longer["metrics"]
        d_clean = ml["test_acc"] - m["test_acc"]
        d_adv = ml["adv_test_acc"] - m["adv_test_acc"]
        n = (m.get("evaluated_on") or {}).get("adv_test_acc") or 0
        tol = _tolerance(m["adv_test_acc"] / 100, n)
        ok = abs(d_clean) <= FLAT_CLEAN and abs(d_adv) <= tol
        return ok, (f"one more epoch at the final rate moved clean {d_clean:+.2f} (≤ {FLAT_CLEAN:g}), "
                    f"PGD-10 {d_adv:+.2f} (≤ {tol:.2f}) points")
    points = curve(record)
    if len(points) < 2:
        return None, "no learning curve"
    window = _full_rate_window(points)
    if window is not None:
        return _trend_converged(record, window)
    last, before = points[-1], points[-2]
    if last["lr"] != before["lr"]:
        e = record["config"]["epochs"]
        return None, (f"untested: the last epoch follows a learning-rate decay, so it measures the decay; "
                      f"one more epoch at the final rate tests it (the same sweep with --epochs {e + 1})")
    d_clean = last["test_acc"] - before["test_acc"]
    d_adv = last["adv_test_acc"] - before["adv_test_acc"]
    tol = adv_tolerance(record)
    ok = abs(d_clean) <= FLAT_CLEAN and abs(d_adv) <= tol
    return ok, f"last epoch moved clean {d_clean:+.2f} (≤ {FLAT_CLEAN:g}), PGD-10 {d_adv:+.2f} (≤ {tol:.2f}) points"


def run_convergence(record: dict, records: list[dict]) -> tuple[bool | None, str]:
    """:func:`converged` for ``record`` among ``records``: against its run's
    :func:`continuation` when ``records`` hold one; else, when its own last epoch cannot tell
    (a decay before it), against the continuation of another seed of the same configuration —
    rll's choice: seeds differ only in the initial weights and the data order, so the budget's
    convergence for a method is tested once — and otherwise by its own last epoch."""
    base = _same_run(record, records)
    longer = continuation(base, records)
    if longer is not None:
        return converged(base, longer)
    ok, why = converged(record)
    if ok is not None:
        return ok, why
    want = _identity(base["config"], "seed")
    for other in records:
        if (other is not base and other["config"].get("attack") == "pgd" and _revision(other) == _revision(base)
                and _identity(other["config"], "seed") == want
                and (other_longer := continuation(other, records)) is not None):
            ok, other_why = converged(other, other_longer)
            return ok, f"{other_why} (seed {other['config']['seed']}'s run; seeds share the test)"
    return ok, why


def longer_run(record: dict, records: list[dict], epochs: int) -> dict | None:
    """The record (under ``record``'s attack) of ``record``'s run trained to ``epochs`` at its
    final rate — found by following :func:`continuation` one epoch at a time — or None."""
    attack = record["config"].get("attack", "pgd")
    run = record
    while run is not None and run["config"]["epochs"] < epochs:
        run = continuation(_same_run(run, records), records)
    if run is None or run["config"]["epochs"] != epochs:
        return None
    found = _same_run(run, records, attack)
    return found if found["config"].get("attack") == attack else None


def settled_run(record: dict, records: list[dict]) -> dict | None:
    """The record (under ``record``'s attack) of the shortest run, in ``record``'s chain of
    one-epoch-longer continuations (:func:`continuation`), that passes :func:`run_convergence`;
    ``record`` itself when it passes, None when no run of the chain is shown converged or the
    settled run has no record under that attack.  rll's choice, for the verdicts: a row still
    moving at the table budget is judged at the budget where it settles, the same configuration
    trained longer at its final rate (the paper trains every row to its own schedule's end)."""
    run = record
    for _ in range(MAX_EXTRA_EPOCHS + 1):
        ok, _why = run_convergence(run, records)
        if ok:
            return longer_run(record, records, run["config"]["epochs"])
        if ok is None:
            return None
        run = continuation(_same_run(run, records), records)
        if run is None:
            return None
    return None


def settled_row(row_records: list[dict], records: list[dict]) -> list[dict] | None:
    """The seeds of one table row moved to where the row settles: when any seed is still moving
    (:func:`run_convergence`), the budget at which every seed has settled (the most epochs of
    their :func:`settled_run`), each seed's run at that budget, all passing the test; None when
    no seed moves or some seed lacks such a run (a mean never mixes budgets)."""
    if not any(run_convergence(r, records)[0] is False for r in row_records):
        return None
    settled = [settled_run(r, records) for r in row_records]
    if any(s is None for s in settled):
        return None
    epochs = max(s["config"]["epochs"] for s in settled)
    moved = [longer_run(r, records, epochs) for r in row_records]
    if any(m is None or run_convergence(m, records)[0] is not True for m in moved):
        return None
    return moved


def image_epochs(config: dict) -> int:
    """The budget's cost: training images × epochs (the whole split when ``train_size`` is None)."""
    n = config["train_size"] or TRAIN_SPLIT_SIZE.get(config["dataset"], 0)
    return n * config["epochs"]


def budget_key(config: dict) -> tuple:
    return (config["train_size"], config["epochs"], tuple(config["milestones"]))


def budget_frame(records: list[dict]):
    """One row per (budget, method) of CNN2 seed-0 paper-fidelity PGD records: the budget, its
    cost, the final clean and PGD-10 accuracy (whole test set), both Lipschitz estimates, the
    paper's numbers, whether the run converged (:func:`run_convergence`), and the measured
    seconds.  A configuration stored twice (the budget search's run and the table's own) shows
    once: the later of ``records``."""
    import pandas as pd

    rows = []
    latest = {_identity(r["config"]): r for r in records}
    for r in latest.values():
        c, m, p = r["config"], r["metrics"], r["provenance"]
        if c["model"] != "cnn2" or not _seed0_paper_pgd(c) or not _paper_method(c):
            continue
        label, paper = _label_and_paper(c)
        ok, why = run_convergence(r, records)
        rows.append({"train images": c["train_size"] or TRAIN_SPLIT_SIZE[c["dataset"]], "epochs": c["epochs"], "milestones": tuple(c["milestones"]),
                     "image-epochs": image_epochs(c), "method": label, "clean": m["test_acc"],
                     "PGD-10": m["adv_test_acc"], "Lipschitz (released)": m.get("test_lipschitz_released"),
                     "Lipschitz (Eq. 3)": m.get("test_lipschitz"), "paper clean": paper.get("test_acc"),
                     "paper PGD-10": paper.get("adv_test_acc"), "paper Lipschitz": paper.get("test_lipschitz"),
                     "converged": ok, "convergence": why, "train s": p.get("train_seconds"),
                     "eval s": p.get("eval_seconds")})
    frame = pd.DataFrame(rows)
    return frame.sort_values(["image-epochs", "train images", "method"]).reset_index(drop=True) if len(frame) else frame


def convergence_notes(frame) -> list[str]:
    """One line per run of :func:`budget_frame`: its budget, method and its convergence test
    (:func:`run_convergence`)."""
    return [f"{n:,} × {e}, decays after {', '.join(map(str, d)) or '—'}, {m}: {why}" for n, e, d, m, why in
            zip(frame["train images"], frame["epochs"], frame["milestones"], frame["method"], frame["convergence"])]


def against_bar(row: dict, dataset: str = "mnist") -> tuple[float, float, str] | None:
    """The number a natural or AT row (``method`` and its metrics) is held to, its bar
    (:data:`TRAINED_BARS`) and what it measures: natural's clean, AT's PGD-10 test accuracy; None
    for other methods or a dataset without bars."""
    if dataset not in TRAINED_BARS or row.get("dropout", 0):
        return None
    natural_min, at_min = TRAINED_BARS[dataset]
    if row["method"] == "natural":
        return row["test_acc"], natural_min, "clean"
    if row["method"] == "at":
        return row["adv_test_acc"], at_min, "PGD-10"
    return None


def bar_lines(records: list[dict], *, dataset: str = "mnist", exclude=("cnn2",)) -> list[str]:
    """For the models the rule was not measured on: one line per seed-0 paper-fidelity natural or
    AT run (PGD-10 record) of ``dataset`` — its budget (marked when it is the model's table
    budget), clean and PGD-10 test accuracy against the bar the verdicts hold it to
    (:data:`TRAINED_BARS`), and its convergence test."""
    out = []
    latest = {_identity(r["config"]): r for r in records}
    runs = [r for r in latest.values() if r["config"]["dataset"] == dataset and r["config"]["model"] not in exclude
            and _seed0_paper_pgd(r["config"]) and r["config"]["method"] in ("natural", "at")]
    for r in sorted(runs, key=lambda r: (r["config"]["model"], r["config"]["method"], image_epochs(r["config"]))):
        c, m = r["config"], r["metrics"]
        value, bar, what = against_bar({"method": c["method"], **m}, dataset)
        ok, why = run_convergence(r, records)
        label, _ = _label_and_paper(c)
        table = " (its table budget)" if at_budget(c, model_budget(dataset, c["model"])) else ""
        images = c["train_size"] or TRAIN_SPLIT_SIZE[c["dataset"]]
        decays = f"decays after {list(c['milestones'])}" if c["milestones"] else "no decay"
        out.append(f"{c['model'].upper()} {label}, {images:,} images × {c['epochs']} epochs "
                   f"({decays}){table}: {m['test_acc']:.2f} % clean, {m['adv_test_acc']:.2f} % "
                   f"PGD-10 — {what} {'meets' if value >= bar else 'is below'} the bar of {bar:g} %; "
                   f"{ {True: 'converged', False: 'still moving', None: 'untested'}[ok]} ({why.removeprefix('untested: ')})")
    return out


def lipschitz_growth_lines(records: list[dict], *, dataset: str = "mnist", methods=("natural", "at")) -> list[str]:
    """How the released-estimator Lipschitz constant moves during training: for each seed-0
    paper-fidelity PGD-10 run at its model's table budget (:func:`rll.experiments.tables.model_budget`)
    with a learning curve, its value after the first epoch, after the last epoch at the full
    learning rate and at the end (learning-curve points), beside the paper's (trained 160
    epochs): how far our short runs are from the paper's scale of this constant."""
    out = []
    for r in records:
        c = r["config"]
        if (c["dataset"] != dataset or c["method"] not in methods or not _seed0_paper_pgd(c)
                or not at_budget(c, model_budget(dataset, c["model"]))):
            continue
        points = [p for p in curve(r) if p.get("test_lipschitz_released") is not None]
        if not points:
            continue
        full_rate = [p for p in points if p["lr"] == points[0]["lr"]]
        label, paper = _label_and_paper(c)
        out.append(f"{c['model'].upper()} {label}: {points[0]['test_lipschitz_released']:.2f} after epoch 1, "
                   f"{full_rate[-1]['test_lipschitz_released']:.2f} after epoch {full_rate[-1]['epoch']} (the last at "
                   f"the full rate), {points[-1]['test_lipschitz_released']:.2f} after epoch {points[-1]['epoch']}; "
                   f"the paper's, after 160 epochs: {paper.get('test_lipschitz', float('nan')):.2f}")
    return sorted(out)


def _both(a, b) -> bool | None:
    """Both converged: False if either is still moving, None if either is untested."""
    flags = [None if f is None or (isinstance(f, float) and np.isnan(f)) else bool(f) for f in (a, b)]
    return False if False in flags else None if None in flags else True


def budget_rule(frame):
    """Apply the rule to :func:`budget_frame`: one row per budget with natural's clean accuracy,
    AT's PGD-10 accuracy, their convergence and whether the budget qualifies; sorted by cost.
    ``qualifies`` is None where it cannot be told yet: no natural or no AT run (not measured),
    or both accurate enough with a convergence test still missing (untested)."""
    import pandas as pd

    rows = []
    for key, g in frame.groupby(["train images", "epochs", "milestones"], sort=False):
        nat, at = g[g["method"] == "Natural"], g[g["method"] == "AT"]
        measured = bool(len(nat) and len(at))
        row = {"train images": key[0], "epochs": key[1], "milestones": key[2],
               "image-epochs": int(g["image-epochs"].iloc[0]),
               "natural clean": nat["clean"].iloc[0] if len(nat) else np.nan,
               "AT PGD-10": at["PGD-10"].iloc[0] if len(at) else np.nan,
               "converged": _both(nat["converged"].iloc[0], at["converged"].iloc[0]) if measured else None}
        accurate = measured and bool(row["natural clean"] >= NATURAL_MIN and row["AT PGD-10"] >= AT_MIN)
        row["qualifies"] = (None if not measured else False if not accurate or row["converged"] is False
                            else row["converged"])
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


def _evaluation_processes(provenance: dict) -> int:
    """How many processes evaluated a run: rank 0 and the ranks that measured its AutoAttack."""
    return 1 + len(set((provenance.get("evaluation_ranks") or {}).values()))


def table_cost(records: list[dict], *, dataset: str = "mnist", seeds=(0, 1, 2), full_evaluation_seeds=(0,),
               released_reading: bool = True):
    """The measured cost of the table sweep at each model's table budget and the projection of
    the whole table from it: per (model, method), the median training seconds and the median
    evaluation seconds of its stored runs (seed-0 models get every attack, the others PGD-10
    only), then the total for every (model, method, seed) of
    :func:`rll.analysis.status.table_progress`'s plan plus, with ``released_reading``, the
    released-fidelity runs the released reading adds at seed 0 (GR and LLR, and every CNN1 row:
    :func:`rll.analysis.evidence.reading_fidelity`), evaluated fully, costed as their paper-fidelity rows.
    A (model, method) not measured at the table budget takes its training seconds from its runs
    at other budgets, scaled by image-epochs (:func:`image_epochs`; the median seconds per
    image-epoch, column ``train s (scaled)``) and their evaluation seconds; one not measured at
    all is assumed at the median of its model's measured methods (of all, if its model has none).
    Seconds of one core, under whatever else it ran, on the CPUs in column ``measured on`` (the
    records' ``provenance.cpu``; "not recorded" before it was kept, December 2026): a
    data-parallel run's training seconds count once per process (``provenance.world_size``),
    its evaluation's once per process that evaluated (rank 0 and the ``evaluation_ranks``); a
    DataFrame and the projected total (hours on one core)."""
    import json

    import pandas as pd

    def gather(at_table_budget: bool) -> dict:
        runs: dict = {}
        for r in records:
            c = r["config"]
            if (c["dataset"] != dataset or c["fidelity"] != "paper" or not is_table_run(c)
                    or at_budget(c, model_budget(dataset, c["model"])) != at_table_budget):
                continue
            runs.setdefault(json.dumps({**c, "attack": None}, sort_keys=True), []).append(r)
        measured: dict = {}
        for recs in runs.values():
            c, p = recs[0]["config"], recs[0]["provenance"]
            full = set(FULL_EVALUATION) <= {x["config"]["attack"] for x in recs}
            m = measured.setdefault((c["model"], c["method"]),
                                    {"train": [], "per image-epoch": [], "eval full": [], "eval pgd": [], "cpu": set()})
            m["cpu"].add(p.get("cpu") or "not recorded")
            if p.get("train_seconds") is not None:
                m["train"].append(p["train_seconds"] * (p.get("world_size") or 1))
                m["per image-epoch"].append(m["train"][-1] / image_epochs(c))
            m["eval full" if full else "eval pgd"].append((p.get("eval_seconds") or 0.0) * _evaluation_processes(p))
        return measured

    table_epochs = {model: image_epochs({"dataset": dataset, **b}) for model, b in TABLE_BUDGETS.get(dataset, {}).items()}
    columns = {"train": "train s (median)", "eval full": "evaluation s, every attack (median)",
               "eval pgd": "evaluation s, PGD-10 only (median)"}
    here, elsewhere = gather(True), gather(False)
    rows = []
    for (model, method) in sorted(set(here) | set(elsewhere)):
        scaled = (model, method) not in here
        m = elsewhere[(model, method)] if scaled else here[(model, method)]
        if scaled and (not m["per image-epoch"] or model not in table_epochs):
            continue
        row = {"model": model, "method": method, "runs": 0 if scaled else len(m["train"]),
               **{name: float(np.median(m[key])) if m[key] and not (scaled and key == "train") else np.nan
                  for key, name in columns.items()},
               "train s (scaled)": (float(np.median(m["per image-epoch"])) * table_epochs[model] if scaled
                                    else np.nan),
               "measured on": "; ".join(sorted(m["cpu"]))}
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not len(frame):
        return frame, float("nan")

    def seconds(model: str, method: str, column: str) -> float:
        if column == columns["train"]:
            mine = frame[(frame["model"] == model) & (frame["method"] == method)]
            if len(mine) and not np.isnan(mine["train s (scaled)"].iloc[0]):
                return float(mine["train s (scaled)"].iloc[0])
        own = frame[(frame["model"] == model) & (frame["method"] == method)][column].dropna()
        same_model = frame[frame["model"] == model][column].dropna()
        for values in (own, same_model, frame[column].dropna()):
            if len(values):
                return float(values.median())
        return 0.0

    total = 0.0
    plan = [c for c in table_configs("table2", dataset=dataset, seeds=tuple(seeds), budgets=TABLE_BUDGETS.get(dataset))
            if in_table_plan(c)]
    for c in plan:
        evaluation = columns["eval full"] if c.seed in full_evaluation_seeds else columns["eval pgd"]
        total += seconds(c.model, c.method, columns["train"]) + seconds(c.model, c.method, evaluation)
    if released_reading:
        from rll.analysis.evidence import reading_fidelity

        for c in plan:
            if c.seed == 0 and reading_fidelity(c.model, c.method, "released") == "released":
                total += seconds(c.model, c.method, columns["train"]) + seconds(c.model, c.method, columns["eval full"])
    return frame, total / 3600


__all__ = ["AT_MIN", "FLAT_ADV", "FLAT_CLEAN", "NATURAL_MIN", "adv_tolerance", "budget_frame", "budget_rule",
           "cheapest_qualifying", "table_cost",
           "continuation", "converged", "lipschitz_growth_lines", "run_convergence", "settled_run", "settled_row", "longer_run", "against_bar", "bar_lines", "curve", "image_epochs"]
