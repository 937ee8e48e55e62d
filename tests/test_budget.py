"""rll.analysis.budget: learning curves from records, convergence, the budget rule."""
from __future__ import annotations

import numpy as np
import pytest

from rll.analysis import budget
from rll.analysis.evidence import (
    INCONCLUSIVE,
    _mean_by_row,
    _precondition,
    _rows_from_records,
    convergence_lines,
)
from rll.book import plots, report
from rll.book.report import page_frame
from rll.config import TrainConfig
from rll.experiments import tables as rll_tables
from rll.experiments.tables import FIRST_CPU_BUDGETS, FULL_EVALUATION, TABLE_BUDGETS
from rll.losses import FIDELITY_REVISION
from rll.store import ResultsStore


def _record(store, method, train_size, epochs, milestones, clean, adv, *, rates=None, seed=0, attack="pgd",
            model="cnn2", **params):
    cfg = TrainConfig.from_paper("mnist", model, method, train_size=train_size, epochs=epochs,
                                 milestones=milestones, seed=seed, attack=attack, **params)
    rates = rates or [0.0064] * epochs
    history = [{"epoch": e + 1, "lr": rates[e], "loss": 1.0 / (e + 1),
                "curve": {"test_acc": c, "adv_test_acc": a, "test_lipschitz": 100.0, "test_lipschitz_released": 5.0,
                          "evaluated_on": {"adv_test_acc": 1000}}} for e, (c, a) in enumerate(zip(clean, adv))]
    store.put(cfg, {"test_acc": clean[-1], "adv_test_acc": adv[-1], "test_lipschitz": 100.0,
                    "test_lipschitz_released": 5.0, "evaluated_on": {"test_acc": 10000, "adv_test_acc": 10000}},
              {"history": history, "train_seconds": 10.0 * epochs, "fidelity_revision": FIDELITY_REVISION})
    return store.get(cfg)


def test_converged_reads_the_last_epoch_of_the_curve(tmp_path):
    store = ResultsStore(tmp_path)
    flat = _record(store, "natural", 1000, 3, (2,), [97.0, 98.4, 98.6], [80.0, 82.0, 82.5])
    steep = _record(store, "natural", 2000, 3, (2,), [97.0, 97.5, 98.6], [80.0, 82.0, 82.5])
    assert budget.converged(flat) == (True, "last epoch moved clean +0.20 (≤ 0.5), PGD-10 +0.50 (≤ 2.40) points")
    assert budget.converged(steep)[0] is False
    assert budget.converged({"provenance": {}}) == (None, "no learning curve")
    # the PGD tolerance is two standard errors of the 1000-image curve point (82.5%: 2.40 points)
    assert budget.adv_tolerance(flat) == pytest.approx(2 * 100 * (0.825 * 0.175 / 1000) ** 0.5)
    noisy = _record(store, "natural", 3000, 3, (2,), [97.0, 98.4, 98.6], [80.0, 82.0, 84.0])
    assert budget.converged(noisy)[0] is True          # +2.0 points on 1000 images: within the noise
    moving = _record(store, "natural", 4000, 3, (2,), [97.0, 98.4, 98.6], [80.0, 82.0, 85.0])
    assert budget.converged(moving)[0] is False
    assert [p["epoch"] for p in budget.curve(flat)] == [1, 2, 3]


def test_a_last_epoch_after_a_decay_is_untested_until_one_more_epoch_at_the_final_rate(tmp_path, monkeypatch):
    """The table budget decays after epoch 2 of 3: the last epoch's move is the decay's, so only
    the run one epoch longer at the final rate (its continuation) tells whether it flattened."""
    monkeypatch.setitem(TABLE_BUDGETS, "mnist", FIRST_CPU_BUDGETS["mnist"])   # per-model budgets with a decay
    store = ResultsStore(tmp_path)
    rates3, rates4 = [0.0064, 0.0064, 0.00064], [0.0064, 0.0064, 0.00064, 0.00064]
    at = _record(store, "at", 34000, 3, (2,), [97.0, 97.5, 98.8], [88.0, 90.0, 95.0], rates=rates3)
    ok, why = budget.converged(at)
    assert ok is None and why.startswith("untested: the last epoch follows a learning-rate decay") and "--epochs 4" in why
    assert budget.continuation(at, store.records()) is None
    at_mt = _record(store, "at", 34000, 3, (2,), [97.0, 97.5, 98.8], [88.0, 90.0, 95.0], rates=rates3, attack="mt")
    # another schedule of 4 epochs (decays after 2 and 3) is not this run's continuation
    _record(store, "at", 34000, 4, (2, 3), [97.0, 97.5, 98.8, 98.8], [88.0, 90.0, 95.0, 95.1],
            rates=rates4[:3] + [0.000064])
    assert budget.continuation(at, store.records()) is None
    longer = _record(store, "at", 34000, 4, (2,), [97.0, 97.5, 98.8, 98.9], [88.0, 90.0, 95.0, 95.4], rates=rates4)
    records = store.records()
    assert budget.continuation(at, records)["config"] == longer["config"]
    assert budget.run_convergence(at, records) == (
        True, "one more epoch at the final rate moved clean +0.10 (≤ 0.5), PGD-10 +0.40 (≤ 1.00) points")
    # the MT record of the same run takes the PGD-10 records' test
    assert budget.run_convergence(at_mt, records)[0] is True
    # seed 1 has no continuation of its own: seed 0's stands for the configuration
    seed1 = _record(store, "at", 34000, 3, (2,), [97.0, 97.5, 98.7], [88.0, 90.0, 95.2], rates=rates3, seed=1)
    ok, why = budget.run_convergence(seed1, store.records())
    assert ok is True and why.endswith("(seed 0's run; seeds share the test)")
    # a continuation that still moves fails the test
    natural = _record(store, "natural", 34000, 3, (2,), [97.0, 97.5, 98.0], [80.0, 82.0, 84.0], rates=rates3)
    _record(store, "natural", 34000, 4, (2,), [97.0, 97.5, 98.0, 98.7], [80.0, 82.0, 84.0, 84.1], rates=rates4)
    ok, why = budget.run_convergence(natural, store.records())
    assert ok is False and "clean +0.70" in why
    # under the table: one line per row, seeds merged, in the table's order
    from rll.analysis.evidence import convergence_lines

    assert convergence_lines(store.records(), dataset="mnist") == [
        "cnn2 Natural (1 seed): still moving — one more epoch at the final rate moved clean +0.70 (≤ 0.5), "
        "PGD-10 +0.10 (≤ 1.00) points",
        "cnn2 AT (2 seeds): converged — one more epoch at the final rate moved clean +0.10 (≤ 0.5), "
        "PGD-10 +0.40 (≤ 1.00) points",
        # natural at 98.0% is below the rule's 98.5 bar: the block is under-trained, converged or not
        "cnn2: under-trained at this budget — natural 98.00% clean < 98.5 (the budget rule's bars); the verdicts "
        "read this block as inconclusive whatever its convergence test says"]
    # the rule: 34k x 3 is accurate enough, AT flat, natural still moving -> does not qualify
    rule = budget.budget_rule(budget.budget_frame(store.records())).set_index("epochs")
    assert rule.loc[3, "converged"] is False and rule.loc[3, "qualifies"] is False


def test_an_accurate_budget_with_an_untested_run_neither_qualifies_nor_fails(tmp_path):
    store = ResultsStore(tmp_path)
    rates3 = [0.0064, 0.0064, 0.00064]
    _record(store, "natural", 34000, 3, (2,), [97.0, 98.4, 98.6], [80.0, 82.0, 84.0], rates=rates3)
    _record(store, "at", 34000, 3, (2,), [97.0, 98.0, 98.8], [88.0, 90.0, 95.0], rates=rates3)
    rule = budget.budget_rule(budget.budget_frame(store.records()))
    assert rule["converged"].tolist() == [None] and rule["qualifies"].tolist() == [None]
    assert budget.cheapest_qualifying(rule) is None
    # the same configuration stored twice (budget search and table) is one row: the later record
    other = ResultsStore(tmp_path / "other")
    _record(other, "natural", 34000, 3, (2,), [97.0, 98.4, 98.7], [80.0, 82.0, 84.5], rates=rates3)
    frame = budget.budget_frame(store.records() + other.records())
    assert len(frame) == 2 and frame.set_index("method").loc["Natural", "clean"] == 98.7


def test_budget_rule_picks_the_cheapest_qualifying_budget(tmp_path):
    store = ResultsStore(tmp_path)
    # 10k x 2: natural below 98.5  -> fails;  20k x 2: both pass, flat -> qualifies;  40k x 2: passes, dearer
    for n, nat, at in ((10000, 98.2, 91.0), (20000, 98.6, 92.0), (40000, 98.9, 93.0)):
        _record(store, "natural", n, 2, (1,), [nat - 0.1, nat], [80.0, 80.5])
        _record(store, "at", n, 2, (1,), [97.0, 97.2], [at - 0.5, at])
    _record(store, "natural", 5000, 2, (1,), [98.0, 98.9], [80.0, 80.5])   # no AT run: not measured
    frame = budget.budget_frame(store.records())
    assert len(frame) == 7 and list(frame["image-epochs"])[:1] == [10000]
    rule = budget.budget_rule(frame)
    assert list(rule["train images"]) == [5000, 10000, 20000, 40000]
    assert rule["qualifies"].tolist() == [None, False, True, True]
    assert budget.cheapest_qualifying(rule) == {"train_size": 20000, "epochs": 2, "milestones": (1,)}
    fig = plots.learning_curves(store.records())
    assert len(fig.axes) == 3 and len(fig.axes[0].lines) >= 7


def test_page_frame_fits_each_run_in_a_few_cells(tmp_path):
    store = ResultsStore(tmp_path)
    _record(store, "natural", 34000, 3, (2,), [98.4, 98.5, 98.6], [84.0, 85.0, 85.2])
    _record(store, "at", 34000, 3, (2,), [97.0, 98.0, 97.2], [90.0, 94.0, 88.0])   # PGD-10 still moving
    frame = budget.budget_frame(store.records())
    page = page_frame(frame)
    assert list(page.columns) == ["images × epochs", "decays after", "method", "clean (paper)", "PGD-10 (paper)", "Lipschitz (released) (paper)",
                                  "Lipschitz (Eq. 3)", "converged", "train / eval s"]
    natural = page[page["method"] == "Natural"].iloc[0]
    assert (natural["images × epochs"], natural["decays after"]) == ("34,000 × 3", "2")
    assert natural["clean (paper)"] == "98.60 (99.51)" and natural["converged"] == "yes"
    assert natural["train / eval s"] == "30 / —"
    assert page[page["method"] == "AT"].iloc[0]["converged"] == "no"
    notes = budget.convergence_notes(frame)
    assert len(notes) == 2 and all(n.startswith("34,000 × 3, decays after 2, ") for n in notes)
    assert any("AT: last epoch moved" in n for n in notes), notes
    html = report.narrow_style(page.style, two_line=["clean (paper)"]).to_html()
    assert 'class="rll-compact"' in html and '<span class="rll-paper"' in html


def test_no_qualifying_budget():
    import pandas as pd

    rule = pd.DataFrame({"train images": [1], "epochs": [1], "milestones": [()], "qualifies": [False]})
    assert budget.cheapest_qualifying(rule) is None
    assert np.isnan(budget.budget_rule(pd.DataFrame(
        {"train images": [1], "epochs": [1], "milestones": [()], "image-epochs": [1], "method": ["Natural"],
         "clean": [99.0], "PGD-10": [1.0], "converged": [True]}))["AT PGD-10"].iloc[0])


def test_table_cost_projects_the_whole_table_from_measured_runs(tmp_path, monkeypatch):
    monkeypatch.setitem(TABLE_BUDGETS, "mnist", FIRST_CPU_BUDGETS["mnist"])   # per-model budgets with a decay

    store = ResultsStore(tmp_path)
    b = TABLE_BUDGETS["mnist"]["cnn2"]
    nat0 = TrainConfig.from_paper("mnist", "cnn2", "natural", seed=0, **b)
    at1 = TrainConfig.from_paper("mnist", "cnn2", "at", seed=1, **b)
    for attack in FULL_EVALUATION:
        store.put(nat0.replace(attack=attack), {"test_acc": 99.0},
                  {"train_seconds": 100.0, "eval_seconds": 900.0, "cpu": "Xeon (amx_bf16 avx2)"})
    store.put(at1, {"test_acc": 99.0}, {"train_seconds": 1000.0, "eval_seconds": 100.0})
    short_cnn1 = TrainConfig.from_paper("mnist", "cnn1", "natural", seed=0, **b)   # CNN2's budget: not CNN1's
    store.put(short_cnn1, {"test_acc": 97.0}, {"train_seconds": 5.0, "eval_seconds": 5.0})
    frame, hours = budget.table_cost(store.records())
    by = frame[frame["model"] == "cnn2"].set_index("method")
    assert by.loc["natural", "train s (median)"] == 100.0 and by.loc["at", "evaluation s, PGD-10 only (median)"] == 100.0
    assert (by.loc["natural", "measured on"], by.loc["at", "measured on"]) == ("Xeon (amx_bf16 avx2)", "not recorded")
    # CNN1 has no run at its own budget (34 000 × 8): its run at CNN2's (34 000 × 3) is scaled by
    # image-epochs, 5 s × 8 / 3
    (cnn1_natural,) = frame[frame["model"] == "cnn1"].to_dict("records")
    assert cnn1_natural["runs"] == 0 and np.isnan(cnn1_natural["train s (median)"])
    assert cnn1_natural["train s (scaled)"] == pytest.approx(5.0 * 8 / 3)
    # plan: 20 seed-0 rows (full evaluation) + 20 CNN2 rows at seeds 1, 2 (PGD only) + the released
    # reading's seed-0 runs: GR and LLR of CNN2, all ten CNN1 rows (the released CNN1 is another network)
    assert hours > 0 and np.isfinite(hours)
    # CNN1 at its own budget is measured on its own; its unmeasured methods take its median
    cnn1 = TrainConfig.from_paper("mnist", "cnn1", "natural", seed=0, **TABLE_BUDGETS["mnist"]["cnn1"])
    for attack in FULL_EVALUATION:
        store.put(cnn1.replace(attack=attack), {"test_acc": 99.0}, {"train_seconds": 3600.0, "eval_seconds": 0.0})
    frame, more_hours = budget.table_cost(store.records())
    assert frame.set_index(["model", "method"]).loc[("cnn1", "natural"), "train s (median)"] == 3600.0
    # 10 CNN1 rows and their 10 released runs now at natural CNN1's 3600 + 0 s; before, natural CNN1
    # (both fidelities) at its scaled 13.3 s and the others at the median of all measured methods
    # (training 550 s, the mean of natural's 100 and AT's 1000), every-attack evaluation 900 s for all
    before = 2 * (5.0 * 8 / 3 + 900.0) + 18 * (550.0 + 900.0)
    assert more_hours == pytest.approx(hours + (20 * 3600.0 - before) / 3600)
    without = budget.table_cost(store.records(), released_reading=False)[1]
    assert more_hours - without == pytest.approx((2 * (550.0 + 900.0) + 10 * 3600.0) / 3600)   # CNN2 GR, LLR; CNN1
    # a data-parallel run's seconds count once per process: 2 processes trained, 2 evaluated
    trades0 = TrainConfig.from_paper("mnist", "cnn2", "trades", seed=0, **b)
    for attack in FULL_EVALUATION:
        store.put(trades0.replace(attack=attack), {"test_acc": 99.0},
                  {"train_seconds": 4000.0, "eval_seconds": 600.0, "world_size": 2, "evaluation_ranks": {"aa": 1}})
    by = budget.table_cost(store.records())[0].set_index(["model", "method"])
    assert by.loc[("cnn2", "trades"), "train s (median)"] == 8000.0
    assert by.loc[("cnn2", "trades"), "evaluation s, every attack (median)"] == 1200.0


def test_a_row_still_moving_at_the_table_budget_is_judged_where_it_settles_for_every_seed_or_none(tmp_path):
    """GR at 34k x 3 moves 1.3 PGD points in a fourth epoch and settles at 4 epochs: the
    verdicts judge it on its 4-epoch runs — only when every seed has one (no mixed budgets in a
    mean), and the evidence says so."""

    store = ResultsStore(tmp_path)
    rates = lambda e: [0.0064, 0.0064] + [0.00064] * (e - 2)  # noqa: E731
    gr = {}
    for seed in (0, 1):
        gr[seed] = _record(store, "gr", 34000, 3, (2,), [93.0, 96.0, 97.0], [75.0, 85.0, 87.6], rates=rates(3), seed=seed)
    gr4 = _record(store, "gr", 34000, 4, (2,), [93.0, 96.0, 97.0, 97.2], [75.0, 85.0, 87.6, 89.0], rates=rates(4))
    _record(store, "gr", 34000, 5, (2,), [93.0, 96.0, 97.0, 97.2, 97.2], [75.0, 85.0, 87.6, 89.0, 88.8], rates=rates(5))
    records = store.records()
    assert budget.run_convergence(gr[0], records)[0] is False
    assert budget.settled_run(gr[0], records)["config"] == gr4["config"]
    assert budget.settled_run(gr4, records)["config"] == gr4["config"]
    # seed 1 has no 4-epoch run (seed 0's 5-epoch run does not stand in for it): both seeds stay at 3 epochs
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rll_tables, "TABLE_BUDGETS", {"mnist": {"cnn2": {"train_size": 34000, "epochs": 3, "milestones": (2,)}}})
        rows = _rows_from_records(records, attack="pgd")
        assert sorted((r["seed"], r["epochs"]) for r in rows) == [(0, 3), (1, 3)]
        assert _precondition(_mean_by_row(rows), "holds", "e")[0] == INCONCLUSIVE
        # with seed 1's 4-epoch run both move: seed 1 passes the test at 3 epochs already (its
        # fourth moved +0.05 / +0.3), but the row settles at 4, where every seed is then judged
        _record(store, "gr", 34000, 4, (2,), [93.0, 96.0, 97.0, 97.05], [75.0, 85.0, 87.6, 87.9], rates=rates(4), seed=1)
        records = store.records()
        assert budget.run_convergence(gr[1], records)[0] is True
        rows = _rows_from_records(records, attack="pgd")
        assert sorted((r["seed"], r["epochs"], r["table_epochs"]) for r in rows) == [(0, 4, 3), (1, 4, 3)]
        # a claim without the precondition (MT stronger than PGD, model by model) keeps the table's runs
        assert sorted(r["epochs"] for r in _rows_from_records(records, settle=False, attack="pgd")) == [3, 3]
        verdict, evidence = _precondition(_mean_by_row(rows), "holds", "e")
        assert verdict == "holds" and evidence.startswith("judged where they settle") and "GR at 4 epochs (still moving at 3)" in evidence
        (line,) = convergence_lines(records, dataset="mnist")
        assert line.startswith("cnn2 GR (2 seeds): still moving at 3 epochs — seed 0: one more epoch at the final rate "
                               "moved clean +0.20") and "seed 1:" not in line
        assert "converged at 4 epochs" in line and line.endswith("the verdicts use the 4-epoch runs (rll's choice)")
    # a chain that never settles in the store gives no settled run (its 4-epoch run's own last
    # epoch, at the final rate, still moves 3.4 points)
    lone = ResultsStore(tmp_path / "lone")
    r3 = _record(lone, "gr", 34000, 3, (2,), [93.0, 96.0, 97.0], [75.0, 85.0, 87.6], rates=rates(3))
    _record(lone, "gr", 34000, 4, (2,), [93.0, 96.0, 97.0, 97.2], [75.0, 85.0, 87.6, 91.0], rates=rates(4))
    assert budget.settled_run(r3, lone.records()) is None


def test_bar_lines_hold_the_other_models_to_the_rules_bars(tmp_path, monkeypatch):
    monkeypatch.setitem(TABLE_BUDGETS, "mnist", FIRST_CPU_BUDGETS["mnist"])   # per-model budgets with a decay
    store = ResultsStore(tmp_path)
    rates = [0.0064, 0.0064, 0.00064]
    _record(store, "natural", 34000, 3, (2,), [93.2, 96.3, 96.7], [75.0, 81.7, 82.9], rates=rates, model="cnn1")
    _record(store, "at", 34000, 3, (2,), [96.0, 97.5, 98.0], [85.0, 89.0, 91.5], rates=rates, model="cnn1")
    _record(store, "natural", 34000, 3, (2,), [97.0, 98.4, 98.6], [80.0, 82.0, 84.0], rates=rates)   # CNN2: not listed
    at, natural = budget.bar_lines(store.records())   # sorted by model, then method
    assert natural.startswith("CNN1 Natural, 34,000 images × 3 epochs (decays after [2]): 96.70 % clean, 82.90 % "
                              "PGD-10 — clean is below the bar of 98.5 %; untested (")
    assert "PGD-10 meets the bar of 90 %" in at
    # a run at CNN1's own table budget says so
    b = TABLE_BUDGETS["mnist"]["cnn1"]
    _record(store, "natural", b["train_size"], b["epochs"], b["milestones"], [98.5] * b["epochs"], [86.0] * b["epochs"],
            model="cnn1")
    lines = budget.bar_lines(store.records())
    (own,) = [line for line in lines if "(its table budget)" in line]       # exactly one
    assert (f"× {b['epochs']} epochs (decays after {list(b['milestones'])}) (its table budget): 98.50 % clean, "
            "86.00 % PGD-10 — clean meets the bar of 98.5 %") in own and len(lines) == 3
    # at the real table budget (all training images, no decay: train_size None) the line names them
    monkeypatch.undo()
    full = TABLE_BUDGETS["mnist"]["cnn1"]
    assert full["train_size"] is None and full["milestones"] == ()
    _record(store, "at", None, full["epochs"], (), [99.3] * full["epochs"], [97.0] * full["epochs"], model="cnn1")
    (line,) = [line for line in budget.bar_lines(store.records()) if "(its table budget)" in line]
    assert line.startswith(f"CNN1 AT, 60,000 images × {full['epochs']} epochs (no decay) (its table budget): 99.30 % "
                           "clean, 97.00 % PGD-10 — PGD-10 meets the bar of 90 %")


def test_lipschitz_growth_lines_follow_the_curve_at_each_models_table_budget(tmp_path, monkeypatch):
    monkeypatch.setitem(TABLE_BUDGETS, "mnist", FIRST_CPU_BUDGETS["mnist"])   # per-model budgets with a decay
    store = ResultsStore(tmp_path)
    b = TABLE_BUDGETS["mnist"]["cnn1"]
    rates = [0.0064] * b["milestones"][0] + [0.00064] * (b["epochs"] - b["milestones"][0])
    rec = _record(store, "natural", b["train_size"], b["epochs"], b["milestones"], [98.0] * b["epochs"],
                  [80.0] * b["epochs"], rates=rates, model="cnn1")
    lips = [3.0 + e for e in range(b["epochs"])]
    for h, lip in zip(rec["provenance"]["history"], lips):
        h["curve"]["test_lipschitz_released"] = lip
    _record(store, "natural", 34000, 3, (2,), [98.0] * 3, [80.0] * 3, model="cnn1")   # not CNN1's table budget
    paper = 67.25         # Table 2, CNN1 natural, the paper's text
    last_full = b["milestones"][0]
    assert budget.lipschitz_growth_lines([rec]) == [
        f"CNN1 Natural: {lips[0]:.2f} after epoch 1, {lips[last_full - 1]:.2f} after epoch {last_full} (the last at the "
        f"full rate), {lips[-1]:.2f} after epoch {b['epochs']}; the paper's, after 160 epochs: {paper:.2f}"]
    assert budget.lipschitz_growth_lines([r for r in store.records() if r["config"]["epochs"] == 3]) == []


def test_a_run_without_a_decay_is_judged_by_the_trend_of_its_last_eight_epochs(tmp_path):
    """At the table budget (no decay) one epoch's move of PGD-10 on the curve's 1 000 images is
    noise-sized; the trend over the last eight epochs decides, as in the regime's settled test."""
    store = ResultsStore(tmp_path)
    flat_pgd = [91.0, 92.0, 91.0, 92.0, 91.0, 92.0, 91.0, 92.0, 91.0, 92.0, 93.2, 91.0]   # last epoch −2.2
    noisy = _record(store, "llr", 60000, 12, (), [99.5] * 12, flat_pgd)
    # epochs 5–12: PGD-10 91, 92, 91, 92, 91, 92, 93.2, 91 — least-squares slope 0.0952/epoch × 7 = +0.67
    ok, why = budget.converged(noisy)
    assert ok is True and why == ("along the trend of epochs 5–12 (no decay) clean moved +0.00 (≤ 0.5), PGD-10 +0.67 "
                                  f"(≤ {budget.adv_tolerance(noisy):.2f}) points")
    climbing = _record(store, "llr", 60000, 13, (), [99.5] * 13, [85.0 + 0.5 * e for e in range(13)])
    ok, why = budget.converged(climbing)     # +0.5 a epoch: +3.5 over the window
    assert ok is False and "PGD-10 +3.50" in why
    short = _record(store, "llr", 60000, 5, (), [99.5] * 5, [91.0, 92.0, 91.0, 93.0, 90.8])
    assert budget.converged(short)[1].startswith("last epoch moved")       # too few points for a trend
