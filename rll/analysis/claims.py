"""The paper's claims, each given a verdict computed from stored results.

Every claim is judged twice: on **our runs** (the results store) and on **the paper's own
published numbers** (``rll/paper_reference.json``), so the book can tell "the paper's tables
support its text" apart from "our re-runs support it".  A verdict is ``holds``,
``does not hold``, ``mixed``, ``not yet run``, ``inconclusive at this budget`` (a claim about
trained models whose runs are not shown converged, :func:`rll.analysis.budget.run_convergence`) or
``inconclusive (within seed spread)`` (an ordering whose difference does not exceed the spread
over seeds), with the evidence that decided it.

Our rows are the current fidelity revision's runs (:data:`rll.losses.FIDELITY_REVISION`) at each
model's table budget (:data:`rll.experiments.tables.TABLE_BUDGETS`, any budget for a model without
one) — except a row still moving there, which is judged where it settles, every seed trained
longer at the final rate (:func:`rll.analysis.budget.settled_row`, rll's choice, named in the evidence); a
seed whose model collapsed to chance level is named and left out before the seeds are averaged; a
comparison across a table's rows waits until all of a block's rows are stored.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rll.analysis import regime
from rll.analysis.budget import (
    FLAT_ADV,
    FLAT_CLEAN,
    against_bar,
    run_convergence,
    settled_row,
)
from rll.analysis.frames import spearman
from rll.experiments.proof_of_concept import is_proof_of_concept_run
from rll.experiments.tables import (
    BUDGET_FIELDS,
    METRIC_COLUMNS,
    at_budget,
    is_table_run,
    method_label,
    model_budget,
    row_params,
)
from rll.losses import is_current
from rll.paper import paper_reference

HOLDS, FAILS, MIXED, NOT_RUN = "holds", "does not hold", "mixed", "not yet run"
INCONCLUSIVE = "inconclusive at this budget"
WITHIN_SPREAD = "inconclusive (within seed spread)"
OUTSIDE_REGIME = "inconclusive — outside the paper's regime"
DEPENDS = "depends on the reading"
#: The readings of the paper a claim about GR and LLR is judged under: the paper's text
#: (``fidelity="paper"`` rows throughout) and the released code (GR and LLR rows trained at
#: ``fidelity="released"``, the code that produced the paper's numbers; the other rows as in the
#: paper reading, where the two fidelities differ only in the loss's reduction).
READINGS = ("paper", "released")
READING_METHODS = ("gr", "llr")
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


def _row(record: dict, records: list[dict] | None = None) -> dict:
    """One table row of ``record``, with its convergence test among ``records`` (the run's
    one-epoch-longer continuation, :func:`rll.analysis.budget.run_convergence`)."""
    c = record["config"]
    ok, why = run_convergence(record, records if records is not None else [record])
    return {"dataset": c["dataset"], "model": c["model"], "method": c["method"],
            "params": row_params(c["method"], c["params"]), "dropout": c["dropout"],
            "seed": c["seed"], "attack": c["attack"], "epochs": c["epochs"], "fidelity": c["fidelity"],
            "budget": tuple(c[k] for k in BUDGET_FIELDS if k != "milestones"),
            "converged": ok, "convergence": why, "regime": regime.run_failures(record), **record["metrics"]}


def current(record: dict, *, table_budget: bool = True) -> bool:
    """A record of the current fidelity revision and, with ``table_budget``, at its model's
    table budget (if it has one, :func:`rll.experiments.tables.model_budget`)."""
    c = record["config"]
    if not is_current(record):
        return False
    if not table_budget:
        return True
    return at_budget(c, model_budget(c["dataset"], c["model"]))


def _rows_from_records(records: list[dict], *, settle: bool = True, **match) -> list[dict]:
    """Rows of the Section 5 tables' current runs (:func:`rll.experiments.tables.is_table_run`,
    :func:`current`) matching ``match``; other runs (the proof of concept, other batch sizes,
    other budgets, older fidelity revisions) never enter a table claim.  With ``settle``, a row
    still moving at the table budget is replaced by its run at the budget where it settles
    (:func:`rll.analysis.budget.settled_row`: every seed of it, or none; rll's choice), marked
    ``table_epochs`` and ``table_convergence``."""
    chosen = [r for r in records if all(r["config"].get(k) == v for k, v in match.items())
              and is_table_run(r["config"]) and current(r)]
    rows = [_row(r, records) for r in chosen]
    groups: dict = {}
    for i, row in enumerate(rows):
        groups.setdefault(_row_key(row), []).append(i)
    for members in groups.values() if settle else ():
        moved = settled_row([chosen[i] for i in members], records)
        for i, longer in zip(members, moved or ()):
            rows[i] = _row(longer, records) | {"table_epochs": rows[i]["epochs"], "table_converged": rows[i]["converged"],
                                               "table_convergence": rows[i]["convergence"]}
    return rows


def _row_key(r: dict) -> tuple:
    return r["dataset"], r["model"], r["method"], tuple(sorted(r["params"].items())), r["dropout"], r["attack"]


def _settled_note(rows: list[dict]) -> str:
    """Which rows are judged at a longer budget than the table's (:func:`_rows_from_records`)."""
    moved = sorted({f"{r['dataset']}/{_label(r)} at {r['epochs']} epochs (still moving at {r['table_epochs']})"
                    for r in rows if r.get("table_epochs")})
    return ("judged where they settle, the same runs trained longer at the final rate (rll's choice): "
            + ", ".join(moved)) if moved else ""


def _mean_by_row(rows: list[dict]) -> list[dict]:
    """Average seeds: one row per (dataset, model, method, params, dropout), with each metric's
    spread over the seeds (``sd_<metric>``, ddof 1; 0 for one seed) and ``converged`` true only
    when every seed converged, false when any is still moving, None (untested) otherwise."""
    groups: dict = {}
    for r in rows:
        groups.setdefault(_row_key(r)[:5], []).append(r)
    out = []
    for key, rs in groups.items():
        merged = dict(rs[0])
        for metric in METRIC_COLUMNS + ("adv_train_acc",):
            vals = [x[metric] for x in rs if x.get(metric) is not None]
            merged[metric] = float(np.mean(vals)) if vals else np.nan
            merged[f"sd_{metric}"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        flags = [x.get("converged") for x in rs]
        merged["converged"] = False if False in flags else True if all(f is True for f in flags) else None
        merged["regime"] = _merge_seed_failures(rs)
        merged["seeds"] = len(rs)
        out.append(merged)
    return out


def _merge_seed_failures(rows: list[dict]) -> list[tuple[str, str]]:
    """The regime failures (:func:`rll.analysis.regime.run_failures`) of one row's seeds, one per kind:
    a single seed's numbers as they are, several seeds' as ``seed 0: …, seed 1: …``."""
    by_kind: dict[str, list[str]] = {}
    for r in rows:
        for kind, numbers in r.get("regime") or ():
            seed = f"seed {r['seed']}: " if len(rows) > 1 and r.get("seed") is not None else ""
            by_kind.setdefault(kind, []).append(seed + numbers)
    return [(kind, ", ".join(sorted(parts))) for kind, parts in by_kind.items()]


def _unconverged(rows: list[dict]) -> tuple[list[str], list[str]]:
    """The rows still moving (convergence test failed) and the rows whose test is missing (with
    why, e.g. a last epoch after a decay, or no learning curve)."""
    name = lambda r: f"{r['dataset']}/{_label(r)}"  # noqa: E731
    untested: dict[str, list[str]] = {}
    for r in rows:
        if r.get("converged") is None:
            why = str(r.get("convergence") or "no convergence test").removeprefix("untested: ").split(";")[0]
            untested.setdefault(why, []).append(name(r))
    return ([name(r) for r in rows if r.get("converged") is False],
            [f"{', '.join(names)} ({why})" for why, names in untested.items()])


def undertrained_blocks(rows: list[dict]) -> dict:
    """The (dataset, model) blocks of PGD-10 ``rows`` (seeds merged) whose models are not trained
    well enough to test a claim: below the budget rule's bars (:data:`rll.analysis.budget.TRAINED_BARS`),
    natural's clean or AT's PGD-10 test accuracy.  ``{block: reason}``.  A convergence test
    passes a run that a small final learning rate barely moves; these bars catch a block whose
    budget was too short for it (the rule picks the budget on CNN2)."""
    out = {}
    for (ds, model), rs in _groups(rows).items():
        why = []
        for r in rs:
            held = against_bar(r, ds)
            if held is not None and held[0] < held[1]:
                value, bar, what = held
                why.append(f"{'AT' if r['method'] == 'at' else r['method']} {value:.2f}% {what} < {bar:g}")
        if why:
            out[(ds, model)] = ", ".join(why)
    return out


def _precondition(rows: list[dict], verdict: str, evidence: str, undertrained: dict | None = None) -> tuple[str, str]:
    """A claim about trained models holds only on converged runs of blocks trained well enough:
    with any row still moving or untested (:func:`rll.analysis.budget.run_convergence`), or a block of
    ``rows`` in ``undertrained`` (:func:`undertrained_blocks`), the verdict becomes
    :data:`INCONCLUSIVE`, the computed one kept in the evidence."""
    moving, untested = _unconverged(rows)
    blocks = {(r["dataset"], r["model"]) for r in rows}
    under = {b: why for b, why in (undertrained or {}).items() if b in blocks}
    evidence = "; ".join(x for x in (_settled_note(rows), evidence) if x)
    if verdict == NOT_RUN or not (moving or untested or under):
        return verdict, evidence
    why = []
    if under:
        why.append("under-trained (below the budget rule's bars): "
                   + "; ".join(f"{ds}/{model}: {w}" for (ds, model), w in sorted(under.items())))
    if moving:
        why.append(f"still moving (one more epoch at the final rate, or the last epoch, moved clean or "
                   f"PGD-10 accuracy more than {_flat()}): {', '.join(moving)}")
    if untested:
        why.append(f"convergence untested: {'; '.join(untested)}")
    return INCONCLUSIVE, (f"precondition not met at this budget — {'; '.join(why)}; "
                          f"on these runs the claim would be '{verdict}': {evidence}")


def _in_regime(rows: list[dict], verdict: str, evidence: str, attack: str = "pgd") -> tuple[str, str]:
    """The regime precondition of a claim about trained models (:mod:`rll.analysis.regime`): every row
    it uses fitted its training set as the paper's did and settled at the full learning rate,
    and each block's natural row reached half the paper's Lipschitz scale.  Otherwise the
    verdict is :data:`OUTSIDE_REGIME`; the evidence names, per condition, the rows that fail it
    with their numbers, then what the runs would say."""
    if verdict == NOT_RUN:
        return verdict, evidence
    failing: dict[str, list[str]] = {kind: [] for kind in regime.KINDS}
    for r in rows:
        for kind, numbers in r.get("regime") or ():
            failing[kind].append(f"{r['dataset']}/{_label(r)} ({numbers})")
    for (ds, model), numbers in regime.block_failures(rows, attack).items():
        failing["scale"].append(f"{ds}/{model} ({numbers})")
    if not any(failing.values()):
        return verdict, evidence
    short = {"fit": "not fitted as the paper's were", "settled": "not settled at the full learning rate",
             "scale": "natural's Lipschitz below half the paper's"}
    count = lambda kind: (f"{len(failing[kind])} of {len(rows)} rows" if kind != "scale"  # noqa: E731
                          else f"{len(failing[kind])} block{'s' if len(failing[kind]) > 1 else ''}")
    summary = ", ".join(f"{count(kind)} {short[kind]}" for kind in regime.KINDS if failing[kind])
    named = "; ".join(f"not {regime.KINDS[kind]}: {', '.join(names)}" for kind, names in failing.items() if names)
    return OUTSIDE_REGIME, (f"{summary}. On these runs the claim would be '{verdict}': {evidence}. "
                            f"In detail — {named}")


def regime_lines(records: list[dict], *, dataset: str, fidelity: str = "paper") -> list[str]:
    """One line per current table row of ``dataset`` (seeds merged): in the paper's regime, or
    which conditions it fails with the numbers (:mod:`rll.analysis.regime`) — then one per block whose
    natural row is below half the paper's Lipschitz constant.  Shown under each table."""
    rows = _mean_by_row(_rows_from_records(records, dataset=dataset, attack="pgd", fidelity=fidelity, settle=False))
    order = OTHERS + ROBUST
    rows = sorted(rows, key=lambda r: (r["model"], order.index(r["method"]) if r["method"] in order else len(order),
                                       sorted(r["params"].items())))
    out = []
    for r in rows:
        seeds = f"{r['seeds']} seed{'s' if r['seeds'] > 1 else ''}"
        fails = r.get("regime") or []
        out.append(f"{_label(r)} ({seeds}): " + ("in the paper's regime" if not fails else "outside — " + "; ".join(
            f"{ {'fit': 'not fitted', 'settled': 'not settled', 'scale': 'scale'}[kind]}: {numbers}"
            for kind, numbers in fails)))
    for (_, model), numbers in sorted(regime.block_failures(rows).items()):
        out.append(f"{model}: natural's Lipschitz constant below half the paper's ({numbers})")
    return out


def convergence_lines(records: list[dict], *, dataset: str, fidelity: str = "paper") -> list[str]:
    """One line per current table row of ``dataset`` (seeds merged): converged, still moving or
    untested, with the test that decided it (:func:`rll.analysis.budget.run_convergence`), then one per
    model block below the budget rule's bars (:func:`undertrained_blocks`) — the preconditions
    of every verdict about trained models, shown under each table."""
    rows = _rows_from_records(records, dataset=dataset, attack="pgd", fidelity=fidelity)
    out = []
    order = OTHERS + ROBUST
    merged_rows = sorted(_mean_by_row(rows), key=lambda r: (r["model"], order.index(r["method"]) if r["method"] in order
                                                             else len(order), sorted(r["params"].items())))
    for merged in merged_rows:
        mine = sorted((r for r in rows if (r["model"], r["method"], r["params"], r["dropout"]) ==
                       (merged["model"], merged["method"], merged["params"], merged["dropout"])), key=lambda r: r["seed"])
        state = {True: "converged", False: "still moving", None: "untested"}[merged["converged"]]
        why = next((r["convergence"] for r in mine if r["converged"] is merged["converged"]), mine[0]["convergence"])
        why = why.removeprefix(f"{state}: ")
        seeds = f"{len(mine)} seed{'s' if len(mine) > 1 else ''}"
        if merged.get("table_epochs"):
            moving = [r for r in mine if r["table_converged"] is False]
            out.append(f"{_label(merged)} ({seeds}): still moving at {merged['table_epochs']} epochs — "
                       + "; ".join(f"seed {r['seed']}: {r['table_convergence']}" for r in moving)
                       + f"; {state} at {merged['epochs']} epochs — {why}; "
                       f"the verdicts use the {merged['epochs']}-epoch runs (rll's choice)")
            continue
        out.append(f"{_label(merged)} ({seeds}): {state} — {why}")
    for (_, model), why in sorted(undertrained_blocks(_mean_by_row(rows)).items()):
        out.append(f"{model}: under-trained at this budget — {why} (the budget rule's bars); the verdicts read "
                   f"this block as inconclusive whatever its convergence test says")
    return out


def _flat() -> str:
    return f"{FLAT_CLEAN:g} / {FLAT_ADV:g} points"


def _ordered(diff: float, spread: float) -> bool | None:
    """An ordering holds when the difference is positive and exceeds the spread over seeds;
    it fails when negative beyond the spread; None when within it."""
    if diff > spread:
        return True
    if diff < -spread:
        return False
    return None


def _paper_rows(tables: tuple[str, ...]) -> list[dict]:
    """The paper's rows, their Lipschitz number under :data:`LIPSCHITZ` (it is the released
    estimator's)."""
    ref = paper_reference()
    return [{**row, LIPSCHITZ: row.get("test_lipschitz")} for t in tables for row in ref[t]["rows"]]


def _label(r: dict) -> str:
    return f"{r['model']} {method_label(r['method'], r['params'])}"


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
    gone = [f"{r['dataset']}/{_label(r)}{'' if r.get('seed') is None else ' seed ' + str(r['seed'])} "
            f"({r['test_acc']:.1f}% clean)" for r in rows if collapsed(r)]
    return kept, ("left out as collapsed to chance level: " + ", ".join(gone)) if gone else ""


def _incomplete_blocks(rows: list[dict], tables: tuple[str, ...]) -> dict:
    """The (dataset, model) blocks of ``rows`` that lack some of the paper's rows without dropout
    in ``tables``: ``{block: (rows stored, rows in the paper)}``.  A comparison across a table's
    rows (the most robust, the smoothest, a correlation) waits for all of them."""
    def key(r):
        return r["method"], tuple(sorted((r.get("params") or {}).items()))

    paper: dict = {}
    for r in _paper_rows(tables):
        if r.get("dropout", 0) == 0:
            paper.setdefault((r["dataset"], r["model"]), set()).add(key(r))
    ours: dict = {}
    for r in rows:
        if r.get("dropout", 0) == 0:
            ours.setdefault((r["dataset"], r["model"]), set()).add(key(r))
    return {block: (len(have), len(paper[block])) for block, have in ours.items()
            if block in paper and len(have & paper[block]) < len(paper[block])}


def _complete(rows: list[dict], incomplete: dict) -> tuple[list[dict], str]:
    """``rows`` without the blocks of :func:`_incomplete_blocks`, and a note naming them."""
    note = "; ".join(f"{ds}/{model} left out until all its rows are stored ({have} of {want})"
                     for (ds, model), (have, want) in sorted(incomplete.items()))
    return [r for r in rows if (r["dataset"], r["model"]) not in incomplete], note


# ----------------------------------------------------------------------------- judgements

def _robust_comparison(rows: list[dict], part: str) -> tuple[str, str]:
    """Section 5.2/5.4, one part of "AT, RST and TRADES are the most robust and the smoothest":
    per (dataset, model) block, the weakest robust-method row against the best other row —
    ``part="robust"``: adversarial accuracy (higher is better); ``"smooth"``: the Lipschitz
    constant by the released estimator (lower is better); ``"both"``: both must hold."""
    verdicts, evidence, labels = [], [], []
    name = lambda r: method_label(r["method"], r.get("params") or {})  # noqa: E731
    for (ds, model), robust, others in _robust_vs_others(rows):
        parts, texts = [], []
        if part in ("robust", "both"):
            wr, bo = min(robust, key=lambda r: r["adv_test_acc"]), max(others, key=lambda r: r["adv_test_acc"])
            spread = max(wr.get("sd_adv_test_acc", 0.0), bo.get("sd_adv_test_acc", 0.0))
            parts.append(_ordered(wr["adv_test_acc"] - bo["adv_test_acc"], spread))
            texts.append(f"weakest robust row ({name(wr)}) adv {wr['adv_test_acc']:.1f}% vs best other ({name(bo)}) "
                         f"{bo['adv_test_acc']:.1f}%{_spread_note(spread)}")
        if part in ("smooth", "both"):
            wr, bo = max(robust, key=lambda r: r[LIPSCHITZ]), min(others, key=lambda r: r[LIPSCHITZ])
            spread = max(wr.get(f"sd_{LIPSCHITZ}", 0.0), bo.get(f"sd_{LIPSCHITZ}", 0.0))
            parts.append(_ordered(bo[LIPSCHITZ] - wr[LIPSCHITZ], spread))
            texts.append(f"least smooth robust row ({name(wr)}) Lipschitz (released estimator) {wr[LIPSCHITZ]:.2f} vs "
                         f"smoothest other ({name(bo)}) {bo[LIPSCHITZ]:.2f}{_spread_note(spread)}")
        verdicts.append(False if False in parts else None if None in parts else True)
        labels.append(f"{ds}/{model}")
        evidence.append(f"{ds}/{model}: " + "; ".join(texts))
    return _combine(verdicts), _why_mixed(labels, verdicts) + "; ".join(evidence)


def judge_most_robust(rows: list[dict]) -> tuple[str, str]:
    """AT, RST and TRADES are the most robust: in each block every robust-method row has higher
    adversarial accuracy than every natural, GR and LLR row (beyond the seed spread)."""
    return _robust_comparison(rows, "robust")


def judge_smoothest(rows: list[dict]) -> tuple[str, str]:
    """AT, RST and TRADES are the smoothest: in each block every robust-method row has a lower
    Lipschitz constant (released estimator) than every natural, GR and LLR row."""
    return _robust_comparison(rows, "smooth")


def judge_robust_smoothest(rows: list[dict]) -> tuple[str, str]:
    """Both parts at once (:func:`judge_most_robust` and :func:`judge_smoothest`): the paper's
    sentence as one claim; the verdicts judge the parts separately."""
    return _robust_comparison(rows, "both")


def _why_mixed(labels: list[str], verdicts: list[bool | None]) -> str:
    """For a mixed verdict, one line saying where the claim holds and where not (empty otherwise)."""
    if _combine(verdicts) != MIXED:
        return ""
    groups = {True: "holds for", False: "does not hold for", None: "within the seed spread for"}
    parts = [f"{words} {', '.join(label for label, v in zip(labels, verdicts) if v is key)}"
             for key, words in groups.items() if key in verdicts]
    return f"mixed: {'; '.join(parts)}. "


def _spread_note(spread: float) -> str:
    return f" (seed spread ±{spread:.2f}; an ordering needs a larger difference)" if spread > 0 else ""


def lipschitz_correlation(rows: list[dict]) -> dict:
    """The statistic of the Lipschitz–robustness claim, per (dataset, model) block of ``rows``
    without dropout, with at least 4 rows: ``{block: (Spearman ρ(Lipschitz by the released
    estimator, adversarial accuracy), rows)}``.  Every page that quotes it calls this."""
    out = {}
    for block, rs in _groups(rows).items():
        rs = [r for r in rs if r.get("dropout", 0) == 0 and np.isfinite(r.get(LIPSCHITZ, np.nan))
              and np.isfinite(r.get("adv_test_acc", np.nan))]
        if len(rs) >= 4:
            out[block] = (spearman([r[LIPSCHITZ] for r in rs], [r["adv_test_acc"] for r in rs]), len(rs))
    return out


def judge_lipschitz_correlates(rows: list[dict]) -> tuple[str, str]:
    """Section 5.2: local Lipschitzness is (negatively) correlated with adversarial accuracy:
    Spearman ρ(Lipschitz, adversarial accuracy) ≤ −0.5 in each block (:func:`lipschitz_correlation`)."""
    verdicts, evidence, labels = [], [], []
    for (ds, model), (rho, n) in lipschitz_correlation(rows).items():
        verdicts.append(rho <= -0.5)
        labels.append(f"{ds}/{model}")
        evidence.append(f"{ds}/{model}: ρ(Lipschitz by the released estimator, adv accuracy) = {rho:+.2f} "
                        f"over {n} rows")
    return _combine(verdicts), _why_mixed(labels, verdicts) + "; ".join(evidence)


def judge_robust_gaps(rows: list[dict]) -> tuple[str, str]:
    """Section 5.2: the robust methods have larger generalization gaps (clean and adversarial)
    than natural training, GR and LLR: compare the mean gaps of the two groups per block."""
    verdicts, evidence, labels = [], [], []
    for (ds, model), robust, others in _robust_vs_others(rows):
        parts = []
        for metric in ("gap", "adv_gap"):
            a = np.nanmean([r[metric] for r in robust])
            b = np.nanmean([r[metric] for r in others])
            spread = max([r.get(f"sd_{metric}", 0.0) for r in robust + others] + [0.0])
            verdicts.append(_ordered(a - b, spread))
            labels.append(f"{ds}/{model} {'clean' if metric == 'gap' else 'adversarial'} gap")
            parts.append(f"{metric} robust {a:.2f} vs others {b:.2f}{_spread_note(spread)}")
        evidence.append(f"{ds}/{model}: " + ", ".join(parts))
    return _combine(verdicts), _why_mixed(labels, verdicts) + "; ".join(evidence)


def judge_dropout(rows: list[dict], metric: str) -> tuple[str, str]:
    """Section 5.3: dropout lowers ``metric`` (gap, adv_gap or test_lipschitz) for each method."""
    verdicts, evidence = [], []
    pairs: dict = {}
    for r in rows:
        key = (r["dataset"], r["model"], r["method"], tuple(sorted(r["params"].items())))
        pairs.setdefault(key, {})["on" if r.get("dropout", 0) else "off"] = r
    for (ds, model, method, params), p in pairs.items():
        if "on" in p and "off" in p:
            spread = max(p["on"].get(f"sd_{metric}", 0.0), p["off"].get(f"sd_{metric}", 0.0))
            lower = _ordered(p["off"][metric] - p["on"][metric], spread)
            verdicts.append(lower)
            if lower is not True:
                evidence.append(f"{ds} {method_label(method, dict(params))}: "
                                f"{p['off'][metric]:.2f} → {p['on'][metric]:.2f}")
    if not verdicts:
        return NOT_RUN, ""
    head = f"lower with dropout (beyond the seed spread) in {sum(v is True for v in verdicts)} of {len(verdicts)} method/dataset pairs"
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


#: Points by which MT may exceed PGD-10 and still count as "not weaker" (rounding of the tables).
MT_TIE_POINTS = 0.05


def _mt_comparison(pgd_row: dict, mt_row: dict) -> tuple[float, float, bool]:
    """``(PGD − MT, tolerance, paired)`` for one model.  Paired when the MT record holds
    ``pgd_acc_same_images`` (PGD-10 on MT's own test images): tolerance
    :data:`MT_TIE_POINTS`.  Otherwise (older records) PGD-10 on its images against MT on a
    subset: MT's figure is an estimate of its whole-test-set value with binomial standard error
    SE = 100·√(p(1−p)/n) on its n images, and a difference within 2·SE counts as a tie (rll's
    choice)."""
    if mt_row.get("pgd_acc_same_images") is not None:
        return mt_row["pgd_acc_same_images"] - mt_row["adv_test_acc"], MT_TIE_POINTS, True
    n_mt = (mt_row.get("evaluated_on") or {}).get("adv_test_acc")
    n_pgd = (pgd_row.get("evaluated_on") or {}).get("adv_test_acc")
    tolerance = MT_TIE_POINTS
    if n_mt and n_pgd and n_mt < n_pgd:
        p = mt_row["adv_test_acc"] / 100
        tolerance = max(tolerance, 2 * 100 * float(np.sqrt(p * (1 - p) / n_mt)))
    return pgd_row["adv_test_acc"] - mt_row["adv_test_acc"], tolerance, n_mt is None or n_mt == n_pgd


def judge_mt_stronger(pgd_rows: list[dict], mt_rows: list[dict]) -> tuple[str, str]:
    """Appendix D.1: the multi-targeted attack gives lower (or equal) adversarial accuracy than
    PGD on the same models (ours: the same checkpoint, per seed; on the same images where the
    record allows, else within the MT subset's sampling error, :func:`_mt_comparison`)."""
    index = {_model_key(r): r for r in pgd_rows}
    diffs, weaker, ties, unpaired = [], [], [], 0
    for r in mt_rows:
        if _model_key(r) not in index:
            continue
        diff, tolerance, paired = _mt_comparison(index[_model_key(r)], r)
        diffs.append((diff, diff >= -tolerance))
        seed = f" seed {r['seed']}" if r.get("seed") is not None else ""
        unpaired += not paired
        if not paired and -tolerance <= diff < -MT_TIE_POINTS:
            ties.append(f"{r['dataset']}/{_label(r)}{seed} ({diff:+.2f}, 2·SE {tolerance:.2f})")
        if not diffs[-1][1]:
            weaker.append(f"{r['dataset']}/{_label(r)}{seed} ({diff:+.2f})")
    if not diffs:
        return NOT_RUN, ""
    values = [d for d, _ in diffs]
    evidence = (f"PGD − MT adversarial accuracy over {len(diffs)} rows: min {min(values):+.2f}, "
                f"median {np.median(values):+.2f}, max {max(values):+.2f} points")
    if unpaired:
        evidence += (f"; {unpaired} not on the same images (PGD-10 on the whole test set, MT on a "
                     f"subset: a difference within 2 standard errors of the subset is a tie)"
                     + (f", MT above PGD-10 within it on {', '.join(ties)}" if ties else ""))
    return _combine([ok for _, ok in diffs]), evidence + (f"; MT weaker on {', '.join(weaker)}" if weaker else "")


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


def _fitted(rows: list[dict], verdict: str, evidence: str) -> tuple[str, str]:
    """The proof of concept's own precondition: a run trained with the test set tests the claim
    only if it has fitted its training set (which holds the test set) robustly — adversarial
    training accuracy at least :data:`POC_THRESHOLD`.  Below it the run is under-fitted at its
    budget (a flat learning curve there says only that the decayed rate stopped it), and the
    verdict is :data:`INCONCLUSIVE`, the computed one kept in the evidence."""
    under = [r for r in rows if r.get("adv_train_acc") is not None and r["adv_train_acc"] < POC_THRESHOLD]
    if verdict == NOT_RUN or not under:
        return verdict, evidence
    why = ", ".join(f"{r['dataset']} seed {r['seed']} {r['adv_train_acc']:.2f}% after {r['epochs']} epochs on "
                    f"{r['trained_on']} images" for r in under)
    if verdict == INCONCLUSIVE:
        return verdict, f"under-fitted (adversarial accuracy on its own training set below {POC_THRESHOLD:g}%: {why}); {evidence}"
    return INCONCLUSIVE, (f"precondition not met at this budget — under-fitted: adversarial accuracy on its own "
                          f"training set, which holds the test set, below {POC_THRESHOLD:g}% ({why}; the paper's "
                          f"setup trains on the whole training and test sets); on these runs the claim would be "
                          f"'{verdict}': {evidence}")


def _combine(verdicts: list[bool | None]) -> str:
    """holds / does not hold / mixed over the comparisons; a comparison within the seed spread
    (None) can make nothing hold: all None or None with True gives :data:`WITHIN_SPREAD`."""
    if not verdicts:
        return NOT_RUN
    if all(v is True for v in verdicts):
        return HOLDS
    if all(v is False for v in verdicts):
        return FAILS
    if False not in verdicts:
        return WITHIN_SPREAD
    return MIXED


# ----------------------------------------------------------------------------- the list

def _reading_rows(run_records: list[dict], attack: str, reading: str) -> list[dict]:
    """The table rows of one reading (:data:`READINGS`): paper-fidelity rows, with GR and LLR
    taken from the released-fidelity runs in the released reading."""
    rows = _rows_from_records(run_records, attack=attack, fidelity="paper")
    if reading == "released":
        rows = [r for r in rows if r["method"] not in READING_METHODS] + [
            r for r in _rows_from_records(run_records, attack=attack, fidelity="released")
            if r["method"] in READING_METHODS]
    return rows


def _table_rows(run_records: list[dict], attack: str, reading: str, tables: tuple[str, ...]) -> tuple[list[dict], str]:
    """Seed-merged rows of complete blocks for one reading, and the notes on what was left out
    (incomplete blocks, collapsed seeds)."""
    rows = _reading_rows(run_records, attack, reading)
    kept, collapsed_note = _drop_collapsed(rows)
    table, partial = _complete(_mean_by_row(kept), _incomplete_blocks(rows, tables))
    return table, "; ".join(x for x in (partial, collapsed_note) if x)


def _judge_trained(table: list[dict], judge, undertrained: dict, attack: str) -> tuple[str, str]:
    """A claim about trained models on ``table``: outside the paper's regime
    (:func:`_in_regime`) first, then the convergence and bar preconditions (:func:`_precondition`)."""
    verdict, evidence = judge(table)
    outside = _in_regime(table, verdict, evidence, attack)
    if outside[0] == OUTSIDE_REGIME:
        return outside
    return _precondition(table, verdict, evidence, undertrained=undertrained)


def _both_readings(results: dict) -> tuple[str, str]:
    """One verdict from the verdicts under each reading (``{reading: (verdict, evidence)}``): the
    common verdict when they agree (or when one reading has no runs), else :data:`DEPENDS`; the
    evidence shows each reading's."""
    (vp, ep), (vr, er) = results["paper"], results["released"]
    evidence = (f"paper reading (GR, LLR as the paper describes them): {vp} — {ep} || released reading "
                f"(GR, LLR as the released code trained them): {vr} — {er}")
    if vr == NOT_RUN:
        return vp, f"{ep} || released reading (GR, LLR as the released code trained them): not yet run"
    if vp == NOT_RUN:
        return vr, f"paper reading: not yet run || released reading: {er}"
    return (vp if vp == vr else DEPENDS), evidence


def _judge_readings(tables: dict, judge, undertrained: dict, attack: str) -> tuple[str, str]:
    """A claim about trained models judged under each reading (``tables``: reading → (rows,
    notes), :func:`_table_rows`) and combined (:func:`_both_readings`)."""
    results = {}
    for reading in READINGS:
        table, notes = tables[reading]
        verdict, evidence = _judge_trained(table, judge, undertrained[reading], attack)
        results[reading] = (verdict, "; ".join(x for x in (evidence, notes) if x))
    return _both_readings(results)


def all_verdicts(run_records: list[dict], separation_records: list[dict]) -> list[Verdict]:
    """Every claim with its verdict on our stored runs and on the paper's published numbers.
    Claims comparing a table's rows are judged under both readings of GR and LLR
    (:data:`READINGS`, :func:`_both_readings`) and need the paper's regime (:func:`_in_regime`)."""
    pgd_tables, mt_tables = ("table2", "table3", "table4"), ("table9", "table10", "table11", "table12", "table13")
    pgd = {reading: _table_rows(run_records, "pgd", reading, pgd_tables) for reading in READINGS}
    mt = {reading: _table_rows(run_records, "mt", reading, mt_tables) for reading in READINGS}
    # judged on PGD-10, for the MT claims too
    undertrained = {reading: undertrained_blocks(pgd[reading][0]) for reading in READINGS}
    pgd_ours = pgd["paper"][0]
    pgd_paper = _paper_rows(("table2", "table3"))
    dropout_paper = _paper_rows(("table4",))
    dropout_ours = [r for r in pgd_ours if r["dataset"] in ("svhn", "cifar10")]
    ref = paper_reference()
    sep_paper = [{"dataset": ds, "eps": v["eps"], "random_labels": False, **v} for ds, v in ref["table1"].items() if isinstance(v, dict)]
    out = []

    s_ours, e_ours = judge_separation(separation_records)
    s_pap, e_pap = judge_separation(sep_paper)
    out.append(Verdict("Real image datasets are r-separated: minimum train–train and test–train "
                       "l∞ separation exceeds 2ε", "3, Table 1", s_ours, e_ours, s_pap, e_pap))
    for claim, section, judge in (
            ("AT, RST and TRADES produce the most robust classifiers (higher adversarial accuracy than "
             "natural training, GR and LLR)", "5.2, 5.4", judge_most_robust),
            ("AT, RST and TRADES produce the smoothest classifiers (lower local Lipschitz constants than "
             "natural training, GR and LLR)", "5.2, 5.4", judge_smoothest),
            ("Local Lipschitzness is correlated with adversarial accuracy", "5.2", judge_lipschitz_correlates),
            ("The robust methods have larger clean and adversarial generalization gaps than Natural, GR and LLR",
             "5.2", judge_robust_gaps)):
        a, ea = _judge_readings(pgd, judge, undertrained, "pgd")
        b, eb = judge(pgd_paper)
        out.append(Verdict(claim, section, a, ea, b, eb))
    for metric, words in (("gap", "narrows the clean generalization gap"),
                          ("adv_gap", "narrows the adversarial generalization gap"),
                          (LIPSCHITZ, "lowers the test local Lipschitz constant")):
        a, ea = _judge_trained(dropout_ours, lambda rows, m=metric: judge_dropout(rows, m), {}, "pgd")
        b, eb = judge_dropout(dropout_paper, metric)
        out.append(Verdict(f"Dropout {words} (SVHN, CIFAR-10)", "5.3, Table 4", a, ea, b, eb))
    mt_paper = _paper_rows(("table9", "table10", "table11", "table12", "table13"))
    for claim, judge in (("Under the multi-targeted attack too, AT, RST and TRADES are the most robust",
                          judge_most_robust),
                         ("Under the multi-targeted attack too, AT, RST and TRADES are the smoothest",
                          judge_smoothest),
                         ("Under the multi-targeted attack too, local Lipschitzness is correlated with "
                          "adversarial accuracy", judge_lipschitz_correlates)):
        a, ea = _judge_readings(mt, judge, undertrained, "mt")
        b, eb = judge(mt_paper)
        out.append(Verdict(claim, "D.1, Tables 9–13", a, ea, b, eb))
    # one model under both attacks, whether or not it converged (this claim has no precondition)
    pgd_seeds, _ = _drop_collapsed(_rows_from_records(run_records, settle=False, attack="pgd", fidelity="paper"))
    mt_seeds, mt_seed_note = _drop_collapsed(_rows_from_records(run_records, settle=False, attack="mt",
                                                                fidelity="paper"))
    a, ea = judge_mt_stronger(pgd_seeds, mt_seeds)
    ea = "; ".join(x for x in (ea, mt_seed_note) if x)
    b, eb = judge_mt_stronger(_paper_rows(("table2", "table3")) + _paper_rows(("table4",)),
                              _paper_rows(("table9", "table10", "table11", "table12", "table13", "table14")))
    out.append(Verdict("The multi-targeted attack is stronger than PGD (lower adversarial accuracy)",
                       "D.1, Tables 9–14", a, ea, b, eb))
    poc_rows = [_row(r, run_records) | {"train_with_test": r["config"].get("train_with_test", False),
                                        "trained_on": r["provenance"].get("n_trained_on")}
                for r in run_records if r["config"]["attack"] == "pgd"
                and is_proof_of_concept_run(r["config"]) and current(r, table_budget=False)]
    poc_with = [r for r in poc_rows if r["train_with_test"]]
    a, ea = _fitted(poc_with, *_precondition(poc_with, *judge_proof_of_concept(poc_rows)))
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
