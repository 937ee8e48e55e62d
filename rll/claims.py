"""The paper's claims, each given a verdict computed from stored results.

Every claim is judged twice: on **our runs** (the results store) and on **the paper's own
published numbers** (``rll/paper_reference.json``), so the book can tell "the paper's tables
support its text" apart from "our re-runs support it".  A verdict is ``holds``,
``does not hold``, ``mixed`` or ``not yet run``, with the evidence that decided it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rll import experiments

HOLDS, FAILS, MIXED, NOT_RUN = "holds", "does not hold", "mixed", "not yet run"
#: The Lipschitz column every claim reads: the released estimator, the one the paper's numbers
#: were produced by, so our rows and the paper's are judged on the same kind of estimate.
LIPSCHITZ = "test_lipschitz_released"
ROBUST = ("at", "rst", "trades")
OTHERS = ("natural", "gr", "llr")


@dataclass
class Verdict:
    claim: str
    section: str
    ours: str
    ours_evidence: str
    paper: str = "—"
    paper_evidence: str = ""
    notes: list = field(default_factory=list)


def _row(record: dict) -> dict:
    c = record["config"]
    return {"dataset": c["dataset"], "model": c["model"], "method": c["method"],
            "params": experiments.row_params(c["method"], c["params"]), "dropout": c["dropout"],
            "seed": c["seed"], "attack": c["attack"], "epochs": c["epochs"],
            "budget": tuple(c[k] for k in experiments.BUDGET_FIELDS if k != "milestones"), **record["metrics"]}


def _rows_from_records(records: list[dict], **match) -> list[dict]:
    """Rows of the Section 5 tables' runs (:func:`rll.experiments.is_table_run`) matching
    ``match``; other runs (the proof of concept, other batch sizes) never enter a table claim."""
    return [_row(r) for r in records
            if all(r["config"].get(k) == v for k, v in match.items()) and experiments.is_table_run(r["config"])]


def _mean_by_row(rows: list[dict]) -> list[dict]:
    """Average seeds: one row per (dataset, model, method, params, dropout)."""
    groups: dict = {}
    for r in rows:
        key = (r["dataset"], r["model"], r["method"], tuple(sorted(r["params"].items())), r["dropout"])
        groups.setdefault(key, []).append(r)
    out = []
    for key, rs in groups.items():
        merged = dict(rs[0])
        for metric in experiments.METRIC_COLUMNS + ("adv_train_acc",):
            vals = [x[metric] for x in rs if x.get(metric) is not None]
            merged[metric] = float(np.mean(vals)) if vals else np.nan
        merged["seeds"] = len(rs)
        out.append(merged)
    return out


def _paper_rows(tables: tuple[str, ...]) -> list[dict]:
    """The paper's rows, their Lipschitz number under :data:`LIPSCHITZ` (it is the released
    estimator's)."""
    ref = experiments.paper_reference()
    return [{**row, LIPSCHITZ: row.get("test_lipschitz")} for t in tables for row in ref[t]["rows"]]


def _label(r: dict) -> str:
    return f"{r['model']} {experiments.method_label(r['method'], r['params'])}"


#: A trained row whose clean test accuracy is below this many times chance has collapsed
#: (e.g. to a constant classifier, whose Lipschitz constant is 0): it says nothing about
#: smoothness or robustness and is left out of the comparisons, with a note.
COLLAPSE_FACTOR = 2.0


def collapsed(row: dict, num_classes: int = 10) -> bool:
    return row.get("test_acc", 100.0) < COLLAPSE_FACTOR * 100.0 / num_classes


def _groups(rows: list[dict]) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault((r["dataset"], r["model"]), []).append(r)
    return out


def _robust_vs_others(rows: list[dict]):
    """Per (dataset, model) block without dropout: ((dataset, model), robust rows, other rows)
    for the blocks that have both."""
    for key, rs in _groups(rows).items():
        robust = [r for r in rs if r["method"] in ROBUST and r.get("dropout", 0) == 0]
        others = [r for r in rs if r["method"] in OTHERS and r.get("dropout", 0) == 0]
        if robust and others:
            yield key, robust, others


def _drop_collapsed(rows: list[dict]) -> tuple[list[dict], str]:
    kept = [r for r in rows if not collapsed(r)]
    gone = [f"{r['dataset']}/{_label(r)} ({r['test_acc']:.1f}% clean)" for r in rows if collapsed(r)]
    return kept, ("left out as collapsed to chance level: " + ", ".join(gone)) if gone else ""


# ----------------------------------------------------------------------------- judgements

def judge_robust_smoothest(rows: list[dict]) -> tuple[str, str]:
    """Section 5.2/5.4: AT, RST and TRADES are the most robust and the smoothest.  Per
    (dataset, model) block: the k rows with the highest adversarial accuracy and the k with
    the lowest Lipschitz constant must all be robust-method rows (k = number of robust rows)."""
    verdicts, evidence = [], []
    for (ds, model), robust, others in _robust_vs_others(rows):
        worst_robust_adv = min(r["adv_test_acc"] for r in robust)
        best_other_adv = max(r["adv_test_acc"] for r in others)
        worst_robust_lip = max(r[LIPSCHITZ] for r in robust)
        best_other_lip = min(r[LIPSCHITZ] for r in others)
        ok_adv, ok_lip = worst_robust_adv > best_other_adv, worst_robust_lip < best_other_lip
        verdicts.append(ok_adv and ok_lip)
        evidence.append(f"{ds}/{model}: weakest robust row adv {worst_robust_adv:.1f}% vs best other "
                        f"{best_other_adv:.1f}%; least smooth robust row Lipschitz (released estimator) {worst_robust_lip:.2f} "
                        f"vs smoothest other {best_other_lip:.2f}")
    return _combine(verdicts), "; ".join(evidence)


def judge_lipschitz_correlates(rows: list[dict]) -> tuple[str, str]:
    """Section 5.2: local Lipschitzness is (negatively) correlated with adversarial accuracy:
    Spearman ρ(Lipschitz, adversarial accuracy) ≤ −0.5 in each block."""
    verdicts, evidence = [], []
    for (ds, model), rs in _groups(rows).items():
        rs = [r for r in rs if r.get("dropout", 0) == 0]
        if len(rs) < 4:
            continue
        rho = experiments.spearman([r[LIPSCHITZ] for r in rs], [r["adv_test_acc"] for r in rs])
        verdicts.append(rho <= -0.5)
        evidence.append(f"{ds}/{model}: ρ(Lipschitz by the released estimator, adv accuracy) = {rho:+.2f} "
                        f"over {len(rs)} rows")
    return _combine(verdicts), "; ".join(evidence)


def judge_robust_gaps(rows: list[dict]) -> tuple[str, str]:
    """Section 5.2: the robust methods have larger generalization gaps (clean and adversarial)
    than natural training, GR and LLR: compare the mean gaps of the two groups per block."""
    verdicts, evidence = [], []
    for (ds, model), robust, others in _robust_vs_others(rows):
        parts = []
        for metric in ("gap", "adv_gap"):
            a = np.nanmean([r[metric] for r in robust])
            b = np.nanmean([r[metric] for r in others])
            verdicts.append(a > b)
            parts.append(f"{metric} robust {a:.2f} vs others {b:.2f}")
        evidence.append(f"{ds}/{model}: " + ", ".join(parts))
    return _combine(verdicts), "; ".join(evidence)


def judge_dropout(rows: list[dict], metric: str) -> tuple[str, str]:
    """Section 5.3: dropout lowers ``metric`` (gap, adv_gap or test_lipschitz) for each method."""
    verdicts, evidence = [], []
    pairs: dict = {}
    for r in rows:
        key = (r["dataset"], r["model"], r["method"], tuple(sorted(r["params"].items())))
        pairs.setdefault(key, {})["on" if r.get("dropout", 0) else "off"] = r
    for (ds, model, method, params), p in pairs.items():
        if "on" in p and "off" in p:
            lower = p["on"][metric] < p["off"][metric]
            verdicts.append(lower)
            if not lower:
                evidence.append(f"{ds} {experiments.method_label(method, dict(params))}: "
                                f"{p['off'][metric]:.2f} → {p['on'][metric]:.2f}")
    if not verdicts:
        return NOT_RUN, ""
    head = f"lower with dropout in {sum(verdicts)} of {len(verdicts)} method/dataset pairs"
    return _combine(verdicts), head + ("; exceptions: " + "; ".join(evidence) if evidence else "")


def judge_separation(records: list[dict]) -> tuple[str, str]:
    """Section 3: train–train and test–train minimum separation exceed 2ε.  A measurement
    stored in several records (e.g. CIFAR-10's train–train minimum, in the record with the
    partial test set and in the one without a test split) counts once."""
    verdicts, evidence, seen = [], [], set()
    for rec in records:
        if rec.get("random_labels"):
            continue
        for col in ("train_train_min", "test_train_min"):
            v = rec.get(col)
            key = (rec["dataset"], col, rec.get("test_split") if col == "test_train_min" else None, v)
            if v is None or key in seen:
                continue
            seen.add(key)
            verdicts.append(v > 2 * rec["eps"])
            partial = " (partial test set: 1017 of 10 000 images)" if (
                col == "test_train_min" and rec.get("test_split") == "test_partial") else ""
            evidence.append(f"{rec['dataset']} {col.replace('_min', '').replace('_', '–')} "
                            f"{v:.3f} = {v / rec['eps']:.1f}ε{partial}")
    return _combine(verdicts), "; ".join(evidence)


def _model_key(r: dict) -> tuple:
    """One trained model: the row, and for our runs also its seed and budget."""
    return (r["dataset"], r["model"], r["method"], tuple(sorted(r["params"].items())), r.get("dropout", 0),
            r.get("seed"), r.get("budget"))


def judge_mt_stronger(pgd_rows: list[dict], mt_rows: list[dict]) -> tuple[str, str]:
    """Appendix D.1: the multi-targeted attack gives lower (or equal, within 0.05 points)
    adversarial accuracy than PGD on the same models (ours: the same checkpoint, per seed)."""
    index = {_model_key(r): r for r in pgd_rows}
    diffs, weaker = [], []
    for r in mt_rows:
        if _model_key(r) in index:
            diffs.append(index[_model_key(r)]["adv_test_acc"] - r["adv_test_acc"])
            if diffs[-1] < -0.05:
                seed = f" seed {r['seed']}" if r.get("seed") is not None else ""
                weaker.append(f"{r['dataset']}/{_label(r)}{seed} ({diffs[-1]:+.2f})")
    if not diffs:
        return NOT_RUN, ""
    verdicts = [d >= -0.05 for d in diffs]
    return _combine(verdicts), (f"PGD − MT adversarial accuracy over {len(diffs)} rows: "
                                f"min {min(diffs):+.2f}, median {np.median(diffs):+.2f}, max {max(diffs):+.2f} points"
                                + (f"; MT weaker on {', '.join(weaker)}" if weaker else ""))


#: Adversarial test accuracy (percent) above which a proof-of-concept network counts as
#: "close to 100%" (Appendix B; the paper's three networks reach 99.90–99.99).
POC_THRESHOLD = 99.0


def judge_proof_of_concept(rows: list[dict]) -> tuple[str, str]:
    """Appendix B: with access to the test set, RST(λ=2) reaches adversarial test accuracy of
    at least :data:`POC_THRESHOLD` percent on it.  Rows with ``train_with_test`` are judged;
    rows without it (the control, same setup) are quoted beside them as evidence."""
    verdicts, evidence = [], []
    by_dataset: dict = {}
    for r in rows:
        by_dataset.setdefault(r["dataset"], {True: [], False: []})[bool(r.get("train_with_test"))].append(r)
    for ds, g in by_dataset.items():
        if not g[True]:
            continue
        adv = float(np.mean([r["adv_test_acc"] for r in g[True]]))
        verdicts.append(adv >= POC_THRESHOLD)
        control = (f" (without the test set: {np.mean([r['adv_test_acc'] for r in g[False]]):.2f}%)"
                   if g[False] else "")
        epochs = sorted({r["epochs"] for r in g[True] if r.get("epochs")})
        evidence.append(f"{ds}: {adv:.2f}% adversarial{control}"
                        + (f", {'/'.join(map(str, epochs))} epochs" if epochs else ""))
    return _combine(verdicts), "; ".join(evidence)


def _combine(verdicts: list[bool]) -> str:
    if not verdicts:
        return NOT_RUN
    if all(verdicts):
        return HOLDS
    if not any(verdicts):
        return FAILS
    return MIXED


# ----------------------------------------------------------------------------- the list

def all_verdicts(run_records: list[dict], separation_records: list[dict]) -> list[Verdict]:
    """Every claim with its verdict on our stored runs and on the paper's published numbers."""
    pgd_ours = _mean_by_row(_rows_from_records(run_records, attack="pgd", fidelity="paper"))
    mt_ours = _mean_by_row(_rows_from_records(run_records, attack="mt", fidelity="paper"))
    pgd_paper = _paper_rows(("table2", "table3"))
    dropout_paper = _paper_rows(("table4",))
    dropout_ours = [r for r in pgd_ours if r["dataset"] in ("svhn", "cifar10")]
    ref = experiments.paper_reference()
    sep_paper = [{"dataset": ds, "eps": v["eps"], "random_labels": False, **v} for ds, v in ref["table1"].items() if isinstance(v, dict)]
    out = []

    s_ours, e_ours = judge_separation(separation_records)
    s_pap, e_pap = judge_separation(sep_paper)
    out.append(Verdict("Real image datasets are r-separated: minimum train–train and test–train "
                       "l∞ separation exceeds 2ε", "3, Table 1", s_ours, e_ours, s_pap, e_pap))
    for claim, section, judge in (
            ("AT, RST and TRADES produce the most robust and the smoothest (most locally Lipschitz) classifiers",
             "5.2, 5.4", judge_robust_smoothest),
            ("Local Lipschitzness is correlated with adversarial accuracy", "5.2", judge_lipschitz_correlates),
            ("The robust methods have larger clean and adversarial generalization gaps than Natural, GR and LLR",
             "5.2", judge_robust_gaps)):
        kept, note = _drop_collapsed(pgd_ours)
        a, ea = judge(kept)
        b, eb = judge(pgd_paper)
        out.append(Verdict(claim, section, a, "; ".join(x for x in (ea, note) if x), b, eb))
    for metric, words in (("gap", "narrows the clean generalization gap"),
                          ("adv_gap", "narrows the adversarial generalization gap"),
                          (LIPSCHITZ, "lowers the test local Lipschitz constant")):
        a, ea = judge_dropout(dropout_ours, metric)
        b, eb = judge_dropout(dropout_paper, metric)
        out.append(Verdict(f"Dropout {words} (SVHN, CIFAR-10)", "5.3, Table 4", a, ea, b, eb))
    mt_kept, mt_note = _drop_collapsed(mt_ours)
    mt_paper = _paper_rows(("table9", "table10", "table11", "table12", "table13"))
    for claim, judge in (("Under the multi-targeted attack too, AT, RST and TRADES are the most robust and the "
                          "smoothest", judge_robust_smoothest),
                         ("Under the multi-targeted attack too, local Lipschitzness is correlated with "
                          "adversarial accuracy", judge_lipschitz_correlates)):
        a, ea = judge(mt_kept)
        b, eb = judge(mt_paper)
        out.append(Verdict(claim, "D.1, Tables 9–13", a, "; ".join(x for x in (ea, mt_note) if x), b, eb))
    pgd_seeds, _ = _drop_collapsed(_rows_from_records(run_records, attack="pgd", fidelity="paper"))
    mt_seeds, mt_seed_note = _drop_collapsed(_rows_from_records(run_records, attack="mt", fidelity="paper"))
    a, ea = judge_mt_stronger(pgd_seeds, mt_seeds)
    ea = "; ".join(x for x in (ea, mt_seed_note) if x)
    b, eb = judge_mt_stronger(_paper_rows(("table2", "table3")) + _paper_rows(("table4",)),
                              _paper_rows(("table9", "table10", "table11", "table12", "table13", "table14")))
    out.append(Verdict("The multi-targeted attack is stronger than PGD (lower adversarial accuracy)",
                       "D.1, Tables 9–14", a, ea, b, eb))
    a, ea = judge_proof_of_concept([_row(r) | {"train_with_test": r["config"].get("train_with_test", False)}
                                    for r in run_records if r["config"]["attack"] == "pgd"
                                    and experiments.is_proof_of_concept_run(r["config"])])
    b, eb = judge_proof_of_concept([{"dataset": row["dataset"], "adv_test_acc": row["adv_accuracy"],
                                     "train_with_test": True} for row in ref["table6"]["rows"]])
    out.append(Verdict("Trained with access to the test set, RST(λ=2) networks are nearly perfectly robust on it "
                       f"(adversarial test accuracy ≥ {POC_THRESHOLD:g}%)", "Appendix B, Table 6", a, ea, b, eb))
    return out


def verdict_frame(verdicts: list[Verdict]):
    """The verdicts as a DataFrame for the book."""
    import pandas as pd

    return pd.DataFrame([{"claim": v.claim, "section": v.section, "our runs": v.ours,
                          "evidence (ours)": v.ours_evidence, "paper's numbers": v.paper,
                          "evidence (paper)": v.paper_evidence} for v in verdicts])
