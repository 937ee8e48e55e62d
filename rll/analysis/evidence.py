"""What a verdict reads: the verdict words, our stored table runs as rows (current fidelity revision,
each model's table budget or where a still-moving row settles, collapsed seeds named and left
out, means over seeds), the paper's rows beside them, and whether each row is in the paper's
regime or converged."""
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
from rll.experiments.tables import (
    BUDGET_FIELDS,
    METRIC_COLUMNS,
    at_budget,
    is_table_run,
    method_label,
    model_budget,
    one_precision_per_run,
    row_params,
)
from rll.losses import is_current
from rll.models import architecture_differs_by_fidelity
from rll.paper import paper_reference

HOLDS, FAILS, MIXED, NOT_RUN = "holds", "does not hold", "mixed", "not yet run"


INCONCLUSIVE = "inconclusive at this budget"


WITHIN_SPREAD = "inconclusive (within seed spread)"


OUTSIDE_REGIME = "inconclusive — outside the paper's regime"


DEPENDS = "depends on the reading"


#: The readings of the paper a claim about GR and LLR is judged under: the paper's text
#: (``fidelity="paper"`` rows throughout) and the released code (GR and LLR rows trained at
#: ``fidelity="released"``, the code that produced the paper's numbers; the other rows as in the
#: paper reading where the two fidelities differ only in the loss's reduction — every model but
#: CNN1, whose released network is another one: :func:`reading_fidelity`).
READINGS = ("paper", "released")


READING_METHODS = ("gr", "llr")


def reading_fidelity(model: str, method: str, reading: str) -> str:
    """The fidelity of the runs that stand for ``model``/``method`` in ``reading``
    (:data:`READINGS`).  In the released reading that is ``"released"`` for GR and LLR, whose
    released losses differ from the paper's, and for every method on a model the released code
    built differently (:func:`rll.models.architecture_differs_by_fidelity`: CNN1 without the ReLU
    after its second convolution), so that a block compares one network with itself; otherwise
    ``"paper"``, the same computation in both fidelities up to the loss's reduction."""
    if reading not in READINGS:
        raise ValueError(f"reading must be one of {READINGS}, got {reading!r}")
    if reading == "released" and (method in READING_METHODS or architecture_differs_by_fidelity(model)):
        return "released"
    return "paper"


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
    chosen = one_precision_per_run([r for r in records if all(r["config"].get(k) == v for k, v in match.items())
                                    and is_table_run(r["config"]) and current(r)])
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


def page_records(records: list[dict], configs) -> list[dict]:
    """The records of the rows a page shows: those whose model, method, parameters and dropout
    are one of ``configs``' (any seed, epochs or budget, so each row's continuations stay in)."""
    rows = [(c.model, c.method, c.param_dict, c.dropout) for c in configs]
    return [r for r in records
            if (r["config"]["model"], r["config"]["method"], r["config"]["params"], r["config"]["dropout"]) in rows]


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


def _drop_collapsed(rows: list[dict]) -> tuple[list[dict], str]:
    kept = [r for r in rows if not collapsed(r)]
    gone = [f"{r['dataset']}/{_label(r)}{'' if r.get('seed') is None else ' seed ' + str(r['seed'])} "
            f"({r['test_acc']:.1f}% clean)" for r in rows if collapsed(r)]
    return kept, ("left out as collapsed to chance level: " + ", ".join(gone)) if gone else ""


def _incomplete_blocks(rows: list[dict], tables: tuple[str, ...]) -> dict:
    """The (dataset, model) blocks of ``rows`` that lack some of the paper's rows without dropout
    in ``tables``: ``{block: (rows stored, rows in the paper)}``.  A comparison across a table's
    rows (the most robust, the smoothest, a correlation) waits for all of them.  A block with no
    row yet is listed too (``(0, n)``) when ``rows`` has rows of its dataset: the notes then name
    every block of a dataset being trained (MNIST's CNN1 beside CNN2), not only the started ones."""
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
    started = {ds for ds, _ in ours}
    for block in paper:
        if block[0] in started:
            ours.setdefault(block, set())
    return {block: (len(have), len(paper[block])) for block, have in sorted(ours.items())
            if block in paper and len(have & paper[block]) < len(paper[block])}


def _complete(rows: list[dict], incomplete: dict) -> tuple[list[dict], str]:
    """``rows`` without the blocks of :func:`_incomplete_blocks`, and a note naming them."""
    note = "; ".join(f"{ds}/{model} left out until all its rows are stored ({have} of {want})"
                     for (ds, model), (have, want) in sorted(incomplete.items()))
    return [r for r in rows if (r["dataset"], r["model"]) not in incomplete], note
