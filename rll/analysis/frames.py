"""Our tables beside the paper's, as DataFrames: one row per (model, method, dropout), ours the
mean over seeds, the paper's comparable number, the difference; how each was obtained."""
from __future__ import annotations

import json

import numpy as np

from rll.experiments.tables import (
    METRIC_COLUMNS,
    _params_of,
    find_record,
    in_table_plan,
    method_label,
    paper_budget,
)
from rll.losses import is_current_revision
from rll.paper import paper_reference, paper_row, paper_value
from rll.store import ResultsStore


def _two_level_frame(rows: list[dict]):
    """A DataFrame of rows keyed by (group, column) pairs, with two-level column headers."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame


def _row_key(config) -> tuple:
    """A table row: (model, the paper's method label, dropout)."""
    return config.model, method_label(config.method, _params_of(config)), config.dropout


def _row_head(key: tuple, groups: dict, runs: int) -> dict:
    """The leading columns of a table row; ``dropout`` only when some row of the table has it."""
    model, label, dropout = key
    row = {("", "model"): model, ("", "method"): label}
    if any(k[2] for k in groups):
        row[("", "dropout")] = dropout
    row[("", "runs")] = runs
    return row


def attack_runs(configs: list, attack: str, *, results_dir, exact_budget: bool) -> list[tuple]:
    """The stored records of ``configs`` evaluated with ``attack`` instead (never trains): e.g.
    the multi-targeted records (Tables 9–14) of a PGD table's models."""
    records = ResultsStore(results_dir).records()
    return [(c, find_record(records, c, exact_budget=exact_budget))
            for c in (config.replace(attack=attack) for config in configs)]


def attack_comparison_frame(runs: list[tuple], other_runs: list[tuple]):
    """Adversarial test accuracy of the same trained models under two attacks (e.g. PGD-10 and
    MT), ours beside the paper's: one row per table row, ours the mean over the seeds whose
    model has both records (same training, only the attack differs)."""
    groups: dict = {}
    for (config, rec), (other, rec_other) in zip(runs, other_runs):
        g = groups.setdefault(_row_key(config), {"config": config, "attacks": (config.attack, other.attack),
                                                 "pairs": []})
        if rec is not None and rec_other is not None and \
                {**rec["config"], "attack": None} == {**rec_other["config"], "attack": None}:
            g["pairs"].append((rec["metrics"]["adv_test_acc"], rec_other["metrics"]["adv_test_acc"]))
    rows = []
    for (model, label, dropout), g in groups.items():
        cfg, (a, b) = g["config"], g["attacks"]
        row = _row_head((model, label, dropout), groups, len(g["pairs"]))
        pairs = np.array(g["pairs"], dtype=float).reshape(-1, 2)
        ours = pairs.mean(axis=0) if len(pairs) else (np.nan, np.nan)
        papers = [(paper_row(cfg.dataset, model, cfg.method, _params_of(cfg), dropout, att) or {}).get(
            "adv_test_acc", np.nan) for att in (a, b)]
        for source, (va, vb) in (("ours", ours), ("paper", papers)):
            row[(source, a.upper())] = va
            row[(source, b.upper())] = vb
            row[(source, f"{b.upper()} − {a.upper()}")] = vb - va
        rows.append(row)
    return _two_level_frame(rows)


def table_frame(runs: list[tuple], *, attack: str):
    """Our table beside the paper's: one row per (model, method, dropout), columns
    (metric, ours | ± | paper | Δ).  ``ours`` is the mean over the seeds that have a record,
    ``±`` their standard deviation (blank for one seed); ``paper`` the comparable paper number
    (:func:`paper_value`: the Lipschitz Δ is against our released-estimator value, the Eq. 3
    column has none); ``Δ`` = ours − paper."""
    groups: dict = {}
    for config, record in runs:
        g = groups.setdefault(_row_key(config), {"config": config, "records": []})
        if record is not None:
            g["records"].append(record)
    rows = []
    for (model, label, dropout), g in groups.items():
        cfg = g["config"]
        paper = paper_row(cfg.dataset, model, cfg.method, _params_of(cfg), dropout, attack) or {}
        row = _row_head((model, label, dropout), groups, len(g["records"]))
        for metric in METRIC_COLUMNS:
            values = [r["metrics"][metric] for r in g["records"] if metric in r["metrics"]]
            ours, spread = _mean_and_spread(values)
            ref = paper_value(paper, metric)
            row[(metric, "ours")] = ours
            row[(metric, "±")] = spread
            row[(metric, "paper")] = ref
            row[(metric, "Δ")] = ours - ref if values and not np.isnan(ref) else np.nan
        rows.append(row)
    return _two_level_frame(rows)


def _mean_and_spread(values: list) -> tuple[float, float]:
    """The mean of ``values`` and their standard deviation (ddof 1); NaN where undefined."""
    mean = float(np.mean(values)) if values else np.nan
    return mean, float(np.std(values, ddof=1)) if len(values) > 1 else np.nan


def style_table(frame):
    """Display form of :func:`table_frame`: two decimals, blanks for missing values, and the
    spread columns only when some row has several seeds."""
    if ("", "runs") in frame.columns and not (frame[("", "runs")] > 1).any():
        frame = frame.drop(columns=[c for c in frame.columns if c[1].startswith("±")])
    return (frame.style.format(precision=2, na_rep="").hide(axis="index")
            .set_table_styles([{"selector": "th, td",
                                 "props": "padding: 0.1em 0.4em; text-align: right; font-size: 0.85em;"}]))


def provenance_lines(runs: list[tuple], *, paper=paper_budget) -> list[str]:
    """How the numbers of a table were obtained: one line per distinct budget, naming the
    epochs, the decays and the learning rate (and the paper's, from ``paper(config)``),
    training/test examples, models, seeds, fidelity, devices, dates and commits; and the
    configurations not yet run.  Says so when a model's runs mix budgets (models with budgets
    of their own, :data:`TABLE_BUDGETS`, do not)."""
    budgets: dict = {}
    missing = []
    for config, record in runs:
        if record is None:
            missing.append(config)
            continue
        c, p = record["config"], record["provenance"]
        key = (c["epochs"], tuple(c["milestones"]), p.get("n_train"), p.get("n_test"), c["fidelity"], c["attack"],
               c["lr"], c.get("train_with_test", False))
        b = budgets.setdefault(key, {"seeds": set(), "models": set(), "devices": set(), "dates": set(),
                                     "commits": set(), "n": 0, "paper": paper(config)})
        b["n"] += 1
        b["seeds"].add(c["seed"])
        b["models"].add(c["model"])
        b["devices"].add(p.get("device", "?"))
        b["dates"].add(str(p.get("started_utc", "?"))[:10])
        b["commits"].add(str(p.get("git_commit") or "?")[:10])
    lines = []
    per_model: dict = {}   # runs with and without the test set share a budget
    for key, b in budgets.items():
        for model in b["models"]:
            per_model.setdefault(model, set()).add(key[:-1])
    if any(len(keys) > 1 for keys in per_model.values()):
        lines.append("NOTE: this table mixes budgets; each line below is one budget.")
    for (epochs, milestones, n_train, n_test, fidelity, attack, lr, with_test), b in budgets.items():
        ref = b["paper"]
        lr_note = f"lr {lr:g}" + ("" if abs(lr - ref.lr) < 1e-12 else f" (paper's schedule: {ref.lr:g})")
        lines.append(
            f"{b['n']} runs: {epochs} epochs (paper: {ref.epochs}), decays after {list(milestones)}, {lr_note}, "
            f"{n_train} training / {n_test} test examples{' (trained on both)' if with_test else ''}, "
            f"{'model' if len(b['models']) == 1 else 'models'} {', '.join(sorted(b['models']))}, "
            f"seeds {sorted(b['seeds'])}, fidelity {fidelity}, attack {attack}; "
            f"device {', '.join(sorted(b['devices']))}; run {', '.join(sorted(b['dates']))}; "
            f"commit {', '.join(sorted(b['commits']))}")
    older = [r for _, r in runs if r is not None and not is_current_revision(r["provenance"].get("fidelity_revision"),
                                                                             r["config"])]
    if older:
        lines.append(f"NOTE: {len(older)} of these runs were trained before a later correction of the methods "
                     "changed what their configuration means (the deviations page lists each: e.g. the AT/RST inner "
                     "attack in eval mode, paper GR's step h); they stay until re-run (results/README.md) and never "
                     "enter the verdicts.")
    beyond = [c for c in missing if not in_table_plan(c)]
    missing = [c for c in missing if in_table_plan(c)]
    if beyond:
        by_model: dict = {}
        for c in beyond:
            by_model.setdefault(f"{c.dataset} {c.model}", set()).add(c.seed)
        lines.append(f"Not planned and not run (the plan runs CNN2 with three seeds and CNN1 with one): {len(beyond)} "
                     "configurations ("
                     + "; ".join(f"{m} seeds {', '.join(map(str, sorted(s)))}" for m, s in sorted(by_model.items()))
                     + ")")
    if missing:
        seeds: dict = {}
        several = len({c.dataset for c in missing}) > 1
        for c in missing:
            label = ((f"{c.dataset} " if several else "") + f"{c.model} {method_label(c.method, _params_of(c))}"
                     + (f" dropout {c.dropout}" if c.dropout else "")
                     + (" with the test set" if c.train_with_test else ""))
            seeds.setdefault(label, []).append(c.seed)
        shown = [f"{label} (seed{'s' if len(s) > 1 else ''} {', '.join(map(str, sorted(s)))})"
                 for label, s in sorted(seeds.items())]
        lines.append(f"Not yet run ({len(missing)} configurations): {'; '.join(shown)}")
    return lines


def spearman(x, y) -> float:
    """Spearman rank correlation of two equal-length sequences (NaNs dropped)."""
    import pandas as pd

    s = pd.DataFrame({"x": x, "y": y}).dropna()
    return float(s["x"].rank().corr(s["y"].rank())) if len(s) > 2 else float("nan")


def table_summary(frame) -> list[str]:
    """Sentences computed from a table's numbers (ours and the paper's): which methods are most
    robust and smoothest, and the rank correlation of Lipschitz constant and robustness."""
    lines = []
    for src in ("ours", "paper"):
        adv = frame[("adv_test_acc", src)]
        lip = frame[("test_lipschitz_released", src)]   # the paper's estimator on both sides
        if adv.notna().sum() < 3:
            lines.append(f"{src}: too few rows for a summary")
            continue
        names = [f"{m} {lab}" for m, lab in zip(frame[("", "model")], frame[("", "method")])]
        top = [names[i] for i in adv.to_numpy().argsort()[::-1][:3] if not np.isnan(adv.iloc[i])]
        smooth = [names[i] for i in lip.to_numpy().argsort()[:3] if not np.isnan(lip.iloc[i])]
        rho = spearman(lip, adv)
        lines.append(f"{src}: most robust {', '.join(top)}; smoothest (released estimator) {', '.join(smooth)}; "
                     f"Spearman(Lipschitz, adversarial accuracy) = {rho:+.2f}")
    return lines


def lipschitz_estimators_frame(records: list[dict]):
    """The released code's Lipschitz estimator (fixed step 0.003, descending update) beside
    Eq. 3 as the paper defines it (step ε/5, ascent), both at the final iterate, on the same
    trained models and images: one row per stored run that has both."""
    import pandas as pd

    rows = []
    for r in records:
        m, c = r["metrics"], r["config"]
        if "test_lipschitz" in m and "test_lipschitz_released" in m:
            rows.append({"dataset": c["dataset"], "model": c["model"],
                         "method": method_label(c["method"], _params_of(c)), "fidelity": c["fidelity"],
                         "seed": c["seed"], "epochs": c["epochs"], "Eq. 3 (paper)": m["test_lipschitz"],
                         "released estimator": m["test_lipschitz_released"],
                         "released / paper": m["test_lipschitz_released"] / m["test_lipschitz"]
                         if m["test_lipschitz"] else np.nan})
    return pd.DataFrame(rows)


def fidelity_pairs_frame(records: list[dict], methods=("gr", "llr")):
    """Runs that differ only in ``fidelity`` (paper vs released) for ``methods``: their
    metrics side by side, so the effect of the released code's deviations is visible.  A pair
    must take the same SGD steps: the released (summed-loss) learning rate times the batch
    size equals the paper (mean-loss) one."""
    import pandas as pd

    index: dict = {}
    for r in records:
        c = dict(r["config"])
        if c["method"] not in methods:
            continue
        fidelity = c.pop("fidelity")
        lr = c.pop("lr")
        effective = lr * c["batch_size"] if fidelity == "released" and c["optimizer"] == "sgd" else lr
        c["effective_lr"] = round(effective, 12)
        index.setdefault(json.dumps(c, sort_keys=True), {})[fidelity] = r
    rows = []
    for pair in index.values():
        if "paper" not in pair or "released" not in pair:
            continue
        c = pair["paper"]["config"]
        row = {("", "model"): c["model"], ("", "method"): method_label(c["method"], _params_of(c)),
               ("", "seed"): c["seed"], ("", "epochs"): c["epochs"], ("", "lr (mean loss)"): c["lr"]}
        for metric in ("test_acc", "adv_test_acc", "test_lipschitz_released", "test_lipschitz", "gap", "adv_gap"):
            row[(metric, "paper")] = pair["paper"]["metrics"].get(metric)
            row[(metric, "released")] = pair["released"]["metrics"].get(metric)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if len(frame):
        frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame


def proof_of_concept_frame(runs: list[tuple]):
    """Table 6 beside the paper's: per dataset, test accuracy and adversarial test accuracy of
    the run trained with access to the test set (mean over seeds, ``±`` their standard
    deviation), the paper's values, the difference, and the same setup trained without that
    access (the control, with its own spread ``± (control)``)."""
    ref = {row["dataset"]: row for row in paper_reference()["table6"]["rows"]}
    groups: dict = {}
    for config, record in runs:
        g = groups.setdefault(config.dataset, {True: [], False: [], "eps": config.eps})
        if record is not None:
            g[config.train_with_test].append(record["metrics"])
    rows = []
    for dataset, g in groups.items():
        row = {("", "dataset"): dataset, ("", "eps"): g["eps"], ("", "runs"): len(g[True])}
        for metric, paper_key in (("test_acc", "accuracy"), ("adv_test_acc", "adv_accuracy")):
            ours, spread = _mean_and_spread([m[metric] for m in g[True]])
            paper = ref.get(dataset, {}).get(paper_key, np.nan)
            row[(metric, "with test set")] = ours
            row[(metric, "±")] = spread
            row[(metric, "paper")] = paper
            row[(metric, "Δ")] = ours - paper
            row[(metric, "without (control)")], row[(metric, "± (control)")] = _mean_and_spread(
                [m[metric] for m in g[False]])
        rows.append(row)
    return _two_level_frame(rows)


def proof_of_concept_summary(frame) -> list[str]:
    """One sentence per dataset of :func:`proof_of_concept_frame`, computed from its numbers."""
    lines = []
    for _, row in frame.iterrows():
        ours, control = row[("adv_test_acc", "with test set")], row[("adv_test_acc", "without (control)")]
        if np.isnan(ours):
            lines.append(f"{row[('', 'dataset')]}: not yet run")
            continue
        lines.append(f"{row[('', 'dataset')]}: adversarial test accuracy {ours:.2f}% with the test set"
                     + (f", {control:.2f}% without it ({ours - control:+.2f} points)" if not np.isnan(control) else "")
                     + f"; paper {row[('adv_test_acc', 'paper')]:.2f}%")
    return lines
