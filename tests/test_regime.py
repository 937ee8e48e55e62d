"""The paper's regime (rll.analysis.regime) and the verdicts that require it (rll.analysis.claims), on hand-made
records whose expected outcomes are worked out by hand from the paper's Table 2 (natural CNN2:
train 100.00 %, Lipschitz 23.06; AT CNN2: train 99.98 %)."""
from __future__ import annotations

import pytest

from rll.analysis import claims, regime
from rll.analysis.evidence import (
    DEPENDS,
    FAILS,
    HOLDS,
    NOT_RUN,
    OUTSIDE_REGIME,
    _in_regime,
    reading_fidelity,
    regime_lines,
)
from rll.experiments.tables import FIRST_CPU_BUDGETS, TABLE_BUDGETS
from rll.paper import paper_row


def record(method="natural", *, train_acc=99.8, train_images=10_000, history=(), epochs=None, fidelity="paper",
           lipschitz=14.0, batch_size=64):
    history = list(history)
    return {"config": {"dataset": "mnist", "model": "cnn2", "method": method, "params": {}, "dropout": 0.0,
                       "attack": "pgd", "fidelity": fidelity, "batch_size": batch_size,
                       "epochs": epochs or (history[-1]["epoch"] if history else 20)},
            "metrics": {"train_acc": train_acc, "test_lipschitz_released": lipschitz,
                        "evaluated_on": {"train_acc": train_images}},
            "provenance": {"history": history, "evaluation": {"train_images": train_images}}}


def curve(epochs, *, lr=0.0064, acc=99.4, loss=0.01, lip=13.0, step=(0.0, 0.0, 0.0), train_acc=None, start=1):
    """``epochs`` history entries at ``lr``; each epoch adds ``step`` to (accuracy, loss, Lipschitz)."""
    out = []
    for i in range(epochs):
        point = {"test_acc": acc + i * step[0], "test_lipschitz_released": lip + i * step[2], "adv_test_acc": 80.0}
        if train_acc is not None:
            point["train_acc"], point["train_evaluated_on"] = train_acc, 10_000
        out.append({"epoch": start + i, "lr": lr, "loss": loss + i * step[1], "curve": point})
    return out


def test_fit_needs_enough_images_and_the_papers_training_accuracy():
    flat = curve(8)
    assert regime.run_failures(record(train_acc=99.6, history=flat)) == []          # 100.00 − 0.5 ≤ 99.6
    assert regime.run_failures(record(train_acc=99.4, history=flat)) == [("fit", "99.40% on 10 000 vs 100.00%")]
    # 100 % on 2 000 images cannot show it: too few images
    assert regime.run_failures(record(train_acc=100.0, train_images=2000, history=flat)) == [
        ("fit", "100.00% on 2 000 vs 100.00%")]
    # the learning curve's last point (10 000 images, after the last epoch) stands in for a small plan
    with_curve = curve(8, train_acc=99.9)
    assert regime.train_accuracy(record(train_acc=97.0, train_images=2000, history=with_curve)) == (
        99.9, 10_000, "learning curve")
    assert regime.run_failures(record(train_acc=97.0, train_images=2000, history=with_curve)) == []
    # ... but not when the curve stops before the run's last epoch
    assert regime.train_accuracy(record(train_acc=97.0, train_images=2000, history=with_curve, epochs=9))[2] == "record"


def test_an_autoattack_record_is_judged_against_the_papers_pgd_row_of_its_model():
    """The paper ran no AutoAttack: it has no row for one, and the regime (a property of the
    trained model) is judged against the same model's PGD row."""
    assert paper_row("mnist", "cnn2", "natural", {}, 0.0, "aa") is None
    flat = curve(8)
    for attack in ("aa", "aa-apgd"):
        low = record(train_acc=99.4, history=flat)
        low["config"]["attack"] = attack
        assert regime.run_failures(low) == [("fit", "99.40% on 10 000 vs 100.00%")]


def test_trend_change_is_the_least_squares_line_over_the_window():
    assert regime.trend_change([1.0, 2.0, 3.0, 4.0]) == pytest.approx(3.0)
    # one outlier in the middle barely tilts the line: (16 − 13) at x = 3 of 0..7 → slope 3·(3 − 3.5)/42
    assert regime.trend_change([13, 13, 13, 16, 13, 13, 13, 13]) == pytest.approx(7 * 3 * (3 - 3.5) / 42)


def test_settled_is_judged_on_the_trend_of_the_last_full_rate_epochs_only():
    # Lipschitz 13 + 0.2·epoch: 1.4 over the window, 10.2 % of its mean 13.7 > 10 %
    rising = curve(8, lip=13.0, step=(0, 0, 0.2))
    ok, why = regime.flatness(record(history=rising))
    assert ok is False and why == "Lipschitz moved 10% over epochs 1–8"
    # accuracy +0.35, loss −0.007, Lipschitz +1.05 of mean 13.5 (7.8 %): settled
    assert regime.flatness(record(history=curve(8, lip=13.0, step=(0.05, -0.001, 0.15))))[0] is True
    # decayed epochs do not count: seven full-rate points are too few, whatever follows
    decayed = curve(7) + curve(5, lr=0.00064, start=8)
    ok, why = regime.flatness(record(history=decayed))
    assert ok is None and why == "7 full-rate epochs with a learning curve"
    # a released-fidelity loss is a sum over the batch of 64: 0.56 summed = 0.00875 per example
    summed = curve(8, loss=3.0, step=(0, 0.08, 0))
    assert regime.flatness(record(history=summed, fidelity="released"))[0] is True
    assert regime.flatness(record(history=summed))[0] is False


def test_natural_lipschitz_must_reach_half_the_papers():
    rows = [{"dataset": "mnist", "model": "cnn2", "method": "natural", "dropout": 0.0,
             "test_lipschitz_released": 11.0}]
    assert regime.block_failures(rows) == {("mnist", "cnn2"): "11.00 vs the paper's 23.06"}
    assert regime.block_failures([dict(rows[0], test_lipschitz_released=11.6)]) == {}   # ≥ 11.53


def _row(method, fails=()):
    return {"dataset": "mnist", "model": "cnn2", "method": method, "params": {}, "dropout": 0.0,
            "test_lipschitz_released": 20.0, "regime": list(fails)}


def test_a_verdict_outside_the_regime_says_so_and_what_the_runs_would_say():
    rows = [_row("natural", [("fit", "98.30% on 2 000 vs 100.00%")]), _row("at")]
    verdict, evidence = _in_regime(rows, FAILS, "ρ = −0.24")
    assert verdict == OUTSIDE_REGIME
    assert evidence.startswith("1 of 2 rows not fitted as the paper's were. On these runs the claim would be "
                               "'does not hold': ρ = −0.24.")
    assert "mnist/cnn2 Natural (98.30% on 2 000 vs 100.00%)" in evidence
    assert _in_regime([_row("natural"), _row("at")], HOLDS, "e") == (HOLDS, "e")
    low = [dict(_row("natural"), test_lipschitz_released=6.23), _row("at")]
    verdict, evidence = _in_regime(low, HOLDS, "e")
    assert verdict == OUTSIDE_REGIME and "mnist/cnn2 (6.23 vs the paper's 23.06)" in evidence


@pytest.mark.parametrize("paper, released, expected", [
    (HOLDS, HOLDS, HOLDS),
    (FAILS, HOLDS, DEPENDS),
    (OUTSIDE_REGIME, OUTSIDE_REGIME, OUTSIDE_REGIME),
    (HOLDS, NOT_RUN, HOLDS),
])
def test_both_readings_give_one_badge_or_depends_on_the_reading(paper, released, expected):
    verdict, evidence = claims._both_readings({"paper": (paper, "p-evidence"), "released": (released, "r-evidence")})
    assert verdict == expected
    assert "p-evidence" in evidence
    if released != NOT_RUN:
        assert "r-evidence" in evidence and "released reading" in evidence


def test_the_released_reading_takes_every_cnn1_row_from_released_runs(monkeypatch):
    # CNN2: only GR and LLR differ between the fidelities (the loss); CNN1's released network has no
    # ReLU after its second convolution, so all its rows come from released-fidelity runs
    assert [reading_fidelity("cnn2", m, "released") for m in ("natural", "gr", "llr", "at")] == \
        ["paper", "released", "released", "paper"]
    assert [reading_fidelity("cnn1", m, "released") for m in ("natural", "gr", "at")] == ["released"] * 3
    assert {reading_fidelity(model, "gr", "paper") for model in ("cnn1", "cnn2")} == {"paper"}
    with pytest.raises(ValueError, match="reading must be one of"):
        reading_fidelity("cnn2", "gr", "code")
    stored = [{"model": model, "method": method, "fidelity": fidelity}
              for model in ("cnn1", "cnn2") for method in ("natural", "gr") for fidelity in ("paper", "released")]
    monkeypatch.setattr(claims, "_rows_from_records", lambda records, attack, fidelity: [
        r for r in records if r["fidelity"] == fidelity])
    chosen = {(r["model"], r["method"]): r["fidelity"] for r in claims._reading_rows(stored, "pgd", "released")}
    assert chosen == {("cnn1", "natural"): "released", ("cnn1", "gr"): "released",
                      ("cnn2", "natural"): "paper", ("cnn2", "gr"): "released"}
    assert {r["fidelity"] for r in claims._reading_rows(stored, "pgd", "paper")} == {"paper"}
    assert len(claims._reading_rows(stored, "pgd", "paper")) == 4


def test_first_epoch_in_the_regime_reads_the_learning_curve():
    # AT CNN2 (paper: train 99.98 %): training accuracy min(99.0 + 0.2·epoch, 99.9) is within 0.5
    # points of it (≥ 99.48) from epoch 3 (99.6); flat from the start, but eight full-rate points
    # exist only from epoch 8: in the regime from epoch 8 on
    history = [{"epoch": e, "lr": 0.0064, "loss": 0.2, "curve": {
        "test_acc": 99.3, "test_lipschitz_released": 6.0, "train_acc": min(99.0 + 0.2 * e, 99.9),
        "train_evaluated_on": 10_000}} for e in range(1, 13)]
    at = record("at", history=history)
    assert regime.first_epoch_in_regime(at) == (8, "in the regime from epoch 8 to the last measured, 12")
    # a plateau the curve climbs out of does not count: Lipschitz flat to epoch 10, then rising
    climbing = [dict(h, curve={**h["curve"], "test_lipschitz_released": 6.0 + max(0, h["epoch"] - 10) * 1.5})
                for h in history]
    epoch, why = regime.first_epoch_in_regime(record("at", history=climbing))
    assert epoch is None and why.startswith("not in the regime at epoch 12: settled: Lipschitz moved")
    # a natural run also needs half the paper's Lipschitz constant (23.06 / 2 = 11.53)
    low = record("natural", history=[dict(h, curve={**h["curve"], "train_acc": 99.9}) for h in history])
    epoch, why = regime.first_epoch_in_regime(low)
    assert epoch is None and why == "not in the regime at epoch 12: scale: 6.00 vs the paper's 23.06"


def test_phase_ends_take_the_last_point_of_each_learning_rate_phase():
    # three epochs at the full rate, two at a tenth: the Lipschitz constant 13.0, 14.0, 15.0 then
    # (start 16.0, step 0.5) 16.0, 16.5 — the phases end at epochs 3 and 5
    history = curve(3, lip=13.0, step=(0.0, 0.0, 1.0)) + curve(2, lr=0.00064, lip=16.0, step=(0.0, 0.0, 0.5), start=4)
    phases = regime.phase_ends(record(history=history))
    assert [(p["first epoch"], p["last epoch"], p["lr"]) for p in phases] == [(1, 3, 0.0064), (4, 5, 0.00064)]
    assert [p["Lipschitz (released)"] for p in phases] == [15.0, 16.5]
    assert regime.phase_ends(record(history=[])) == []


def test_regime_lines_say_per_row_what_fails_and_the_blocks_scale(monkeypatch):
    monkeypatch.setitem(TABLE_BUDGETS, "mnist", FIRST_CPU_BUDGETS["mnist"])   # per-model budgets with a decay
    from rll.config import TrainConfig
    from rll.losses import FIDELITY_REVISION

    b = TABLE_BUDGETS["mnist"]["cnn2"]
    history = curve(b["milestones"][0]) + curve(b["epochs"] - b["milestones"][0], lr=0.00064,
                                                start=b["milestones"][0] + 1)
    records = []
    for method, train_acc in (("natural", 98.3), ("at", 99.9)):
        config = TrainConfig(dataset="mnist", model="cnn2", method=method, **b)
        records.append({"config": config.canonical(),
                        "metrics": {"train_acc": train_acc, "test_acc": 99.0, "adv_test_acc": 80.0, "gap": 0.0,
                                    "adv_gap": 0.0, "test_lipschitz": 50.0, "test_lipschitz_released": 6.23,
                                    "evaluated_on": {"train_acc": 10_000}},
                        "provenance": {"history": history, "fidelity_revision": FIDELITY_REVISION,
                                       "evaluation": {"train_images": 10_000}}})
    lines = regime_lines(records, dataset="mnist")
    full = b["milestones"][0]
    assert lines == [
        f"cnn2 Natural (1 seed): outside — not fitted: 98.30% on 10 000 vs 100.00%; not settled: {full} full-rate "
        f"epoch{'s' if full != 1 else ''} with a learning curve",
        f"cnn2 AT (1 seed): outside — not settled: {full} full-rate epoch{'s' if full != 1 else ''} with a learning "
        "curve",
        "cnn2: natural's Lipschitz constant below half the paper's (6.23 vs the paper's 23.06)"]


def test_the_ladder_lines_up_the_first_cpu_budget_and_the_curve_epochs():
    from rll.config import TrainConfig
    from rll.losses import FIDELITY_REVISION

    b = FIRST_CPU_BUDGETS["mnist"]["cnn2"]
    table = []
    for method, adv, lip in (("natural", 85.0, 6.0), ("at", 95.0, 2.5), ("llr", 90.0, 4.0)):
        config = TrainConfig(dataset="mnist", model="cnn2", method=method, **b)
        table.append({"config": config.canonical(), "metrics": {"train_acc": 98.0, "adv_test_acc": adv,
                                                                 "test_lipschitz_released": lip},
                      "provenance": {"fidelity_revision": FIDELITY_REVISION}})
    natural = record("natural", history=curve(10, lip=6.0, step=(0, 0, 1.0), train_acc=99.9))
    released = record("gr", fidelity="released", history=curve(10, lip=9.0, train_acc=99.9))   # not in the ladder
    frame = regime.ladder_frame([("Natural", natural), ("GR (released)", released)], table)
    assert list(frame["rung"]) == [f"34 000 × {b['epochs']}, decays after {b['milestones'][0]} (first CPU budget)",
                                   "60 000 × 1, no decay", "60 000 × 2, no decay", "60 000 × 5, no decay",
                                   "60 000 × 10, no decay"]
    assert list(frame.columns) == ["rung", "Natural", "LLR", "AT", "ρ(Lipschitz, PGD-10)"]
    assert frame.loc[0, "Natural"] == "98.00 / 85.0 / 6.00" and frame.loc[4, "Natural"] == "99.90 / 80.0 / 15.00"
    # Lipschitz 6, 2.5, 4 against PGD-10 85, 95, 90: ranks reversed, ρ = −1
    assert frame.loc[0, "ρ(Lipschitz, PGD-10)"] == "-1.00 over 3" and frame.loc[1, "LLR"] == "—"


def test_curve_cost_projects_hours_from_the_measured_epochs():
    history = [{"epoch": e, "lr": 0.0064, "loss": 0.1, "seconds": s, "curve_seconds": 20.0,
                "curve": {"test_acc": 99.0, "adv_test_acc": 80.0, "test_lipschitz_released": 10.0}}
               for e, s in enumerate((100.0, 60.0, 80.0), 1)]
    run = {"config": {"precision": "bf16"}, "provenance": {"history": history}}
    frame, median_hours, fastest_hours = regime.curve_cost([("AT", run)], epochs=36)
    assert frame.loc[0, "s / epoch (median)"] == 80.0 and frame.loc[0, "s / epoch (fastest)"] == 60.0
    assert median_hours == 36 * 80 / 3600 == 0.8 and fastest_hours == 36 * 60 / 3600 == 0.6
    assert frame.loc[0, "precision"] == "bf16" and frame.loc[0, "epochs measured"] == 3


def test_regime_epochs_is_the_latest_first_epoch_of_the_paper_fidelity_runs_that_reach_the_regime():
    # natural: fitted and flat from the start, eight full-rate points first exist at epoch 8;
    # AT (paper: train 99.98 %): training accuracy 98.0 + 0.15·epoch is within 0.5 points (≥ 99.48)
    # from epoch 10 (99.50); LLR never fits (97 %); released GR is not waited for
    natural = record("natural", history=curve(12, train_acc=99.9))
    at = record("at", history=[dict(h, curve={**h["curve"], "train_acc": 98.0 + 0.15 * h["epoch"]})
                               for h in curve(12, train_acc=0.0)])
    llr = record("llr", history=curve(12, train_acc=97.0))
    released_gr = record("gr", fidelity="released", history=curve(12, train_acc=99.99))
    epochs, firsts = regime.regime_epochs([("Natural", natural), ("AT", at), ("LLR", llr), ("GR (released)", released_gr)])
    assert epochs == 10
    assert firsts["Natural"] == 8 and firsts["AT"] == 10 and "GR (released)" not in firsts
    assert firsts["LLR"].startswith("not in the regime at epoch 12: fit: 97.00% on 10 000 vs ")
    assert regime.regime_epochs([("LLR", llr)]) == (None, {"LLR": firsts["LLR"]})


def test_full_rate_curves_and_the_paper_schedule_run_are_told_apart():
    """curve_runs keeps the runs without a decay (the longest of each method), schedule_run the
    longest natural run on a schedule with decays; neither takes a subset run or another seed."""
    from rll.config import TrainConfig
    from rll.losses import FIDELITY_REVISION
    from rll.store import canonical_dict

    def run(epochs, milestones=(), *, seed=0, train_size=None, method="natural"):
        r = record(method, history=curve(epochs))
        r["config"] = canonical_dict(TrainConfig(dataset="mnist", model="cnn1", method=method, epochs=epochs,
                                                 milestones=milestones, seed=seed, train_size=train_size))
        r["provenance"]["fidelity_revision"] = FIDELITY_REVISION
        return r

    full40, full80 = run(40), run(80)
    paper80, paper120 = run(80, (40,)), run(120, (40, 80))
    others = [run(160, (40, 80), method="at"), run(200, (40,), seed=1), run(200, (40,), train_size=34_000)]
    records = [full40, paper80, full80, paper120, *others]
    assert [(label, r["config"]["epochs"]) for label, r in regime.curve_runs(records, model="cnn1")] == \
        [("Natural", 80)]
    assert regime.schedule_run(records) is paper120
    assert regime.schedule_run([full40, full80]) is None


def test_the_table_budget_is_the_one_the_stored_learning_curves_ask_for():
    """rll.experiments.tables.TABLE_BUDGETS is a decision written down; this holds it to the
    committed learning curves on all 60 000 images (results/budget and results/runs)."""
    from pathlib import Path

    from rll.store import ResultsStore

    root = Path(__file__).resolve().parents[1] / "results"
    records = ResultsStore(root / "budget").records() + ResultsStore(root / "runs").records()
    runs = regime.curve_runs(records)
    if not runs:
        pytest.skip("no learning curve on all 60 000 images is committed")
    epochs, firsts = regime.regime_epochs(runs)
    for model in ("cnn2", "cnn1"):
        assert TABLE_BUDGETS["mnist"][model] == {"train_size": None, "epochs": epochs, "milestones": ()}
    assert {"Natural", "GR", "AT"} <= {label for label, e in firsts.items() if isinstance(e, int)}


def test_network_readings_put_the_text_and_the_released_cnn1_beside_the_papers_row():
    # natural CNN1 (paper: train 100.00 %, Lipschitz 67.25, so the scale condition asks ≥ 33.625)
    def cnn1(fidelity, lip, epochs=40):
        from rll.config import TrainConfig

        r = record(history=curve(epochs, lip=lip, train_acc=99.9), fidelity=fidelity, lipschitz=lip, train_acc=99.9)
        r["config"] = TrainConfig.from_paper("mnist", "cnn1", "natural", fidelity=fidelity, epochs=epochs,
                                             milestones=()).canonical()
        r["metrics"].update(test_acc=99.1, adv_test_acc=70.0)
        r["provenance"]["fidelity_revision"] = 3
        return r

    rows = regime.network_readings([cnn1("released", 37.08), cnn1("paper", 18.51), cnn1("paper", 50.0, epochs=20)])
    assert [r["network"] for r in rows] == ["CNN1 as the paper describes it (fidelity=paper)",
                                            "CNN1 as released (fidelity=released)",
                                            "the paper's Table 2 (the released code, 160 epochs)"]
    assert [r["regime"] for r in rows] == ["below half the paper's Lipschitz: 18.51 vs 67.25", "in the regime", ""]
    assert rows[2]["Lipschitz (released)"] == 67.25 and rows[2]["train acc."] == 100.0
    assert regime.network_readings([cnn1("paper", 18.51)], method="gr") == []
