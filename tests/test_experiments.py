"""The table layer (configs ↔ store ↔ paper numbers) and the claims' verdicts, on synthetic
records written through the real results store."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rll import store as rll_store
from rll.analysis import claims
from rll.analysis.attack_strength import llr_step_comparison, mt_selection_frame
from rll.analysis.evidence import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    MIXED,
    NOT_RUN,
    WITHIN_SPREAD,
    _complete,
    _drop_collapsed,
    _incomplete_blocks,
    _mean_by_row,
    _precondition,
    _rows_from_records,
    collapsed,
    current,
    undertrained_blocks,
)
from rll.analysis.frames import (
    fidelity_pairs_frame,
    lipschitz_estimators_frame,
    proof_of_concept_frame,
    proof_of_concept_summary,
    provenance_lines,
    style_table,
    table_frame,
)
from rll.analysis.status import store_overview, store_summary, table_progress
from rll.book.parameters import check_proof_of_concept_params, check_table_params
from rll.config import TrainConfig
from rll.data import DataError
from rll.experiments.proof_of_concept import (
    is_proof_of_concept_run,
    proof_of_concept_config,
    proof_of_concept_configs,
    proof_of_concept_paper_budget,
)
from rll.experiments.sweep import collect_runs, sweep_status
from rll.experiments.tables import (
    BEYOND_PLAN,
    FIRST_CPU_BUDGETS,
    FULL_EVALUATION,
    TABLE_BUDGETS,
    TABLE_MODELS,
    _params_of,
    is_table_run,
    method_label,
    parse_method,
    table_configs,
)
from rll.losses import FIDELITY_REVISION
from rll.paper import paper_reference, paper_row
from rll.store import REPO, ResultsStore, results_folder


def test_parse_method_and_labels():
    assert parse_method("trades(beta=6)") == ("trades", {"beta": 6.0})
    assert parse_method(" at ") == ("at", {})
    assert method_label("rst", {"lam": 0.5}) == "RST(λ=.5)"
    assert method_label("trades", {"beta": 6.0}) == "TRADES(β=6)"
    with pytest.raises(ValueError, match="valid choices: natural"):
        parse_method("madry")
    with pytest.raises(ValueError, match="valid parameters: "):
        parse_method("at(beta=1)")
    with pytest.raises(ValueError, match=r"old Staircase spelling; write 'trades\(beta=6\)'"):
        parse_method("trades:6")
    with pytest.raises(ValueError, match="must be a number"):
        parse_method("trades(beta=big)")


def test_paper_rows_found_for_every_default_table_row():
    for table, datasets in TABLE_MODELS.items():
        for dataset in datasets:
            for attack in ("pgd", "mt"):
                configs = table_configs(table, dataset=dataset, epochs=1, attack=attack)
                found = [paper_row(c.dataset, c.model, c.method, _params_of(c),
                                               c.dropout, attack) for c in configs]
                if (table, dataset, attack) == ("table3", "svhn", "pgd"):
                    # the paper prints SVHN without dropout under PGD only for Table 4's five methods
                    assert sum(f is not None for f in found) == 5
                else:
                    assert all(found), (table, dataset, attack)
    row = paper_row("mnist", "cnn1", "natural", {}, 0.0, "pgd")
    assert row["adv_test_acc"] == 59.83 and row["table"] == "table2"
    assert paper_row("mnist", "cnn1", "natural", {}, 0.0, "mt")["table"] == "table9"


def test_check_table_params_rejects_bad_values():
    with pytest.raises(ValueError, match="valid choices: mnist"):
        check_table_params("table2", dataset="cifar10")
    with pytest.raises(ValueError, match="valid choices: pgd, mt"):
        check_table_params("table2", dataset="mnist", attack="cw")
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        check_table_params("table2", dataset="mnist", epochs=0)
    with pytest.raises(ValueError, match="eps must be a positive radius"):
        check_table_params("table2", dataset="mnist", eps=-0.1)
    with pytest.raises(ValueError, match="seeds must be a non-empty list"):
        check_table_params("table2", dataset="mnist", seeds=[])
    with pytest.raises(ValueError, match="valid choices: paper, released"):
        check_table_params("table2", dataset="mnist", fidelity="official")
    assert len(check_table_params("table2", dataset="mnist", seeds=[0, 1])) == 40


def test_check_table_params_checks_checksums_before_training(tmp_path, svhn_mat):
    common = dict(dataset="svhn", models=["wrn-10-1"], methods=["natural"], data_root=str(tmp_path))
    with pytest.raises(ValueError, match=r"dict of file name -> md5 \(32 hex digits\)"):
        check_table_params("table3", checksums={"train_32x32.mat": "xyz"}, **common)
    with pytest.raises(ValueError, match=r"valid: \['test_32x32.mat', 'train_32x32.mat'\]"):
        check_table_params("table3", checksums={"train.mat": "0" * 32}, **common)
    sums = {"train_32x32.mat": svhn_mat(tmp_path, "train"), "test_32x32.mat": svhn_mat(tmp_path, "test")}
    with pytest.raises(DataError, match="test_32x32.mat has md5"):   # train_missing reads both splits now
        check_table_params("table3", train_missing=True,
                                       checksums={**sums, "test_32x32.mat": "0" * 32}, **common)
    assert len(check_table_params("table3", train_missing=True, checksums=sums, **common)) == 1


def _metrics(adv, lip, train=100.0, test=99.0, adv_train=None):
    adv_train = adv + 1 if adv_train is None else adv_train
    return {"train_acc": train, "test_acc": test, "adv_train_acc": adv_train, "adv_test_acc": adv,
            "test_lipschitz": lip, "test_lipschitz_released": lip / 2, "gap": train - test,
            "adv_gap": adv_train - adv}


def _store_with(tmp_path, entries):
    store = ResultsStore(tmp_path)
    for config, metrics, n_train in entries:
        store.put(config, metrics, {"device": "cpu (2 cores)", "started_utc": "2026-11-26T00:00:00+00:00",
                                    "git_commit": "abc", "n_train": n_train, "n_test": 100, "epochs_done": config.epochs,
                                    "fidelity_revision": FIDELITY_REVISION})
    return store


def test_table_frame_means_seeds_and_reports_budgets(tmp_path):
    cfgs = table_configs("table2", dataset="mnist", models=["cnn2"], methods=["natural", "at"],
                                     epochs=2, seeds=[0, 1], train_size=500, test_size=100)
    entries = [(c, _metrics(adv=50.0 + 10 * (c.method == "at") + c.seed, lip=10.0), 500) for c in cfgs]
    store = _store_with(tmp_path, entries)
    runs = collect_runs(cfgs, results_dir=tmp_path, exact_budget=True)
    assert all(r is not None for _, r in runs)
    frame = table_frame(runs, attack="pgd")
    at = frame[frame[("", "method")] == "AT"].iloc[0]
    assert at[("adv_test_acc", "ours")] == pytest.approx(60.5)
    assert at[("adv_test_acc", "±")] == pytest.approx(np.std([60, 61], ddof=1))
    assert at[("adv_test_acc", "paper")] == 98.03
    assert at[("adv_test_acc", "Δ")] == pytest.approx(60.5 - 98.03)
    # like with like: the paper's Lipschitz (released estimator) beside ours by that estimator;
    # the Eq. 3 estimate in its own column, with no paper value
    paper_lip = 6.09        # Table 2, CNN2 AT, "test lipschitz" (the paper's text)
    assert at[("test_lipschitz_released", "ours")] == 5.0 and at[("test_lipschitz_released", "paper")] == paper_lip
    assert at[("test_lipschitz_released", "Δ")] == pytest.approx(5.0 - paper_lip)
    assert at[("test_lipschitz", "ours")] == 10.0 and np.isnan(at[("test_lipschitz", "paper")])
    assert np.isnan(at[("test_lipschitz", "Δ")])
    lines = provenance_lines(runs)
    assert len(lines) == 1 and "2 epochs (paper: 160)" in lines[0] and "seeds [0, 1]" in lines[0]

    # reading without a budget finds the largest stored one; other budgets are said to be mixed
    longer = table_configs("table2", dataset="mnist", models=["cnn2"], methods=["natural"],
                                       epochs=4, seeds=[0], train_size=500, test_size=100)[0]
    store.put(longer, _metrics(adv=70.0, lip=5.0), {"n_train": 500, "n_test": 100, "device": "cpu"})
    paper_budget = table_configs("table2", dataset="mnist", models=["cnn2"],
                                             methods=["natural", "at", "trades(beta=6)"], seeds=[0])
    runs = collect_runs(paper_budget, results_dir=tmp_path, exact_budget=False)
    assert runs[0][1]["config"]["epochs"] == 4 and runs[1][1]["config"]["epochs"] == 2 and runs[2][1] is None
    lines = provenance_lines(runs)
    assert lines[0].startswith("NOTE: this table mixes budgets")
    assert lines[-1] == "Not yet run (1 configurations): cnn2 TRADES(β=6) (seed 0)"
    # each model at a budget of its own is no mix
    cnn1 = table_configs("table2", dataset="mnist", models=["cnn1"], methods=["natural"],
                                     epochs=5, milestones=(4,), seeds=[0], train_size=500, test_size=100)[0]
    store.put(cnn1, _metrics(adv=70.0, lip=5.0), {"n_train": 500, "n_test": 100, "device": "cpu"})
    own = collect_runs([longer, cnn1], results_dir=tmp_path, exact_budget=True)
    lines = provenance_lines(own)
    budget_lines = [line for line in lines if "runs: " in line]
    assert len(budget_lines) == 2 and not any("mixes" in line for line in lines)
    assert "5 epochs (paper: 160), decays after [4]" in budget_lines[1] and "model cnn1, seeds [0]" in budget_lines[1]
    # a CNN1 seed the plan does not ask for is not "not yet run" but beyond the plan
    lines = provenance_lines(own + [(cnn1.replace(seed=1), None), (longer.replace(seed=1), None)])
    assert lines[-2:] == ["Not planned and not run (the plan runs CNN2 with three seeds and CNN1 with one): 1 "
                          "configurations (mnist cnn1 seeds 1)",
                          "Not yet run (1 configurations): cnn2 Natural (seed 1)"]


def test_claims_on_synthetic_rows():
    def row(method, adv, lip, gap, adv_gap, params=None, dropout=0.0):
        return {"dataset": "mnist", "model": "cnn2", "method": method, "params": params or {}, "dropout": dropout,
                "adv_test_acc": adv, "test_lipschitz_released": lip, "gap": gap, "adv_gap": adv_gap}
    good = [row("natural", 10, 50, 1, 1), row("gr", 20, 30, 1, 1), row("at", 80, 5, 5, 20),
            row("trades", 85, 2, 4, 15, {"beta": 6})]
    assert claims.judge_robust_smoothest(good)[0] == HOLDS
    assert claims.judge_lipschitz_correlates(good)[0] == HOLDS
    assert claims.judge_robust_gaps(good)[0] == HOLDS
    bad = [row("natural", 90, 60, 5, 20), row("gr", 95, 50, 5, 20), row("at", 10, 2, 1, 1),
           row("trades", 5, 1, 1, 1, {"beta": 6})]
    assert claims.judge_robust_smoothest(bad)[0] == FAILS
    assert claims.judge_lipschitz_correlates(bad)[0] == FAILS
    assert claims.judge_robust_gaps(bad)[0] == FAILS
    assert claims.judge_robust_smoothest([])[0] == NOT_RUN
    # the compound claim judged per part: robust rows more robust (80 > 20) but one less smooth
    # than GR (Lipschitz 40 > 30): the robust half holds, the smooth half does not
    split = good[:3] + [row("trades", 85, 40, 4, 15, {"beta": 6})]
    assert claims.judge_most_robust(split)[0] == HOLDS
    verdict, evidence = claims.judge_smoothest(split)
    assert verdict == FAILS and "least smooth robust row (TRADES(β=6)) Lipschitz (released estimator) 40.00 " \
        "vs smoothest other (GR) 30.00" in evidence and "adv" not in evidence
    assert claims.judge_robust_smoothest(split)[0] == FAILS
    dead = dict(row("gr", 10, 0.0, 0, 0), test_acc=9.5)
    assert collapsed(dead) and not collapsed(dict(good[0], test_acc=99.0))
    kept, note = _drop_collapsed([dict(r, test_acc=99.0) for r in good] + [dead])
    assert len(kept) == 4 and "collapsed to chance level: mnist/cnn2 GR (9.5% clean)" in note
    drop = [row("at", 50, 10, 5, 20), row("at", 50, 12, 2, 10, dropout=0.2)]
    assert claims.judge_dropout(drop, "gap")[0] == HOLDS
    assert claims.judge_dropout(drop, "test_lipschitz_released")[0] == FAILS


def test_a_comparison_across_a_tables_rows_waits_for_all_of_them():
    """CNN1 rows land one by one: its block stays out of the robust/smoothest and correlation
    claims until all ten of Table 2's rows are stored (a collapsed one counts as stored)."""
    paper = [dict(r) for r in paper_reference()["table2"]["rows"] if r["model"] == "cnn1"]
    assert _incomplete_blocks(paper, ("table2",)) == {("mnist", "cnn2"): (0, 10)}
    # CNN2, not started, is named beside it: a block of a dataset being trained
    assert _incomplete_blocks(paper[:4], ("table2",)) == {("mnist", "cnn1"): (4, 10), ("mnist", "cnn2"): (0, 10)}
    both = [dict(r) for r in paper_reference()["table2"]["rows"]]
    assert _incomplete_blocks(both, ("table2",)) == {}
    assert _incomplete_blocks(both[:4] + [r for r in both if r["model"] == "cnn2"], ("table2",)) == {
        ("mnist", "cnn1"): (4, 10)}
    rows, note = _complete(paper[:4] + [dict(paper[0], model="cnn2")],
                                  _incomplete_blocks(paper[:4], ("table2",)))
    assert rows == [] and note == ("mnist/cnn1 left out until all its rows are stored (4 of 10); "
                                   "mnist/cnn2 left out until all its rows are stored (0 of 10)")


def test_a_block_below_the_budget_rules_bars_is_under_trained_whatever_its_convergence_test_says():
    """Natural CNN1 at the CNN2-chosen budget: 96.7% clean, flat at the decayed rate — the
    block's claims are inconclusive, the MT ones too (judged on the PGD-10 rows)."""
    def row(model, method, clean, adv):
        return {"dataset": "mnist", "model": model, "method": method, "params": {}, "dropout": 0.0,
                "test_acc": clean, "adv_test_acc": adv, "converged": True}
    rows = [row("cnn1", "natural", 96.69, 82.2), row("cnn1", "at", 98.0, 91.0),
            row("cnn2", "natural", 98.66, 85.0), row("cnn2", "at", 98.8, 89.5)]
    under = undertrained_blocks(rows)
    assert under == {("mnist", "cnn1"): "natural 96.69% clean < 98.5", ("mnist", "cnn2"): "AT 89.50% PGD-10 < 90"}
    verdict, evidence = _precondition(rows[:2], HOLDS, "e", undertrained=under)
    assert verdict == INCONCLUSIVE and "under-trained (below the budget rule's bars): mnist/cnn1: natural 96.69%" \
        in evidence and "mnist/cnn2" not in evidence
    assert _precondition(rows[:2], HOLDS, "e", undertrained={}) == (HOLDS, "e")
    assert undertrained_blocks([dict(r, dataset="cifar10") for r in rows]) == {}   # bars for MNIST only


def test_orderings_need_more_than_the_seed_spread_and_converged_runs():
    def row(method, adv, lip, sd=0.0, converged=True):
        return {"dataset": "mnist", "model": "cnn2", "method": method, "params": {}, "dropout": 0.0,
                "adv_test_acc": adv, "test_lipschitz_released": lip, "gap": 1, "adv_gap": 1,
                "sd_adv_test_acc": sd, "sd_test_lipschitz_released": 0.0, "converged": converged}
    clear = [row("natural", 80, 50, sd=0.5), row("at", 90, 5, sd=0.5)]
    assert claims.judge_robust_smoothest(clear)[0] == HOLDS
    close = [row("natural", 89, 50, sd=1.5), row("at", 90, 5, sd=0.5)]      # 1 point apart, spread 1.5
    verdict, evidence = claims.judge_robust_smoothest(close)
    assert verdict == WITHIN_SPREAD and "seed spread ±1.50" in evidence
    late = [row("natural", 80, 50), row("at", 90, 5, converged=False)]
    verdict, evidence = _precondition(late, *claims.judge_robust_smoothest(late))
    assert verdict == INCONCLUSIVE and "mnist/cnn2 AT" in evidence and "would be 'holds'" in evidence
    assert "still moving" in evidence and "untested" not in evidence
    untested = [row("natural", 80, 50), row("at", 90, 5, converged=None)]
    verdict, evidence = _precondition(untested, *claims.judge_robust_smoothest(untested))
    assert verdict == INCONCLUSIVE and "convergence untested" in evidence and "mnist/cnn2 AT" in evidence


def test_collapsed_seeds_are_named_and_never_averaged_in(tmp_path):
    from rll.config import TrainConfig

    budget = TABLE_BUDGETS["mnist"]["cnn2"]
    store = ResultsStore(tmp_path)
    for seed, acc in ((0, 99.0), (1, 9.8), (2, 98.0)):
        cfg = TrainConfig.from_paper("mnist", "cnn2", "natural", seed=seed, **budget)
        store.put(cfg, _metrics(adv=80.0, lip=10.0, test=acc), {"fidelity_revision": FIDELITY_REVISION})
    old = TrainConfig.from_paper("mnist", "cnn2", "at", **budget)
    store.put(old, _metrics(adv=95.0, lip=1.0), {})                      # no revision: an older record
    rows, note = _drop_collapsed(_rows_from_records(store.records(), attack="pgd"))
    assert [r["seed"] for r in rows] == [0, 2] and "mnist/cnn2 Natural seed 1 (9.8% clean)" in note
    (mean,) = _mean_by_row(rows)
    assert mean["test_acc"] == 98.5 and mean["seeds"] == 2 and mean["sd_test_acc"] == pytest.approx(0.7071, abs=1e-4)


def test_all_verdicts_judge_the_papers_own_numbers():
    verdicts = {v.claim: v for v in claims.all_verdicts([], [])}
    assert all(v.ours == NOT_RUN for v in verdicts.values())
    sep = next(v for c, v in verdicts.items() if "r-separated" in c)
    assert sep.paper == HOLDS and "mnist train–train 0.737 = 7.4ε" in sep.paper_evidence
    lip = next(v for c, v in verdicts.items() if "lowers the test local Lipschitz" in c)
    # the paper's own Table 4: Lipschitz rises with dropout for SVHN Natural, CIFAR-10 AT and RST
    assert lip.paper == MIXED and "cifar10 AT: 26.23 → 31.59" in lip.paper_evidence


def test_released_vs_paper_frames(tmp_path):
    from rll.config import TrainConfig

    paper = TrainConfig(dataset="mnist", model="cnn1", method="llr", epochs=1, train_size=100, test_size=50)
    released = TrainConfig(dataset="mnist", model="cnn1", method="llr", epochs=1, train_size=100, test_size=50,
                           fidelity="released")   # default lrs: released 1e-4 (summed) = paper 6.4e-3 / 64
    mismatched = TrainConfig(dataset="mnist", model="cnn1", method="llr", epochs=1, train_size=100, test_size=50,
                             fidelity="released", lr=0.05, seed=0)
    store = _store_with(tmp_path, [(paper, _metrics(40, 20), 100), (released, _metrics(30, 25), 100),
                                   (mismatched, _metrics(10, 5), 100)])
    records = store.records()
    pairs = fidelity_pairs_frame(records)
    assert len(pairs) == 1 and pairs.iloc[0][("adv_test_acc", "released")] == 30
    lip = lipschitz_estimators_frame(records)
    assert (lip["released / paper"] == 0.5).all()


def test_proof_of_concept_follows_table7():
    mnist = proof_of_concept_config("mnist")
    assert (mnist.model, mnist.method, mnist.optimizer, mnist.batch_size, mnist.epochs) == ("cnn2", "rst", "sgd", 128, 40)
    assert mnist.param_dict == {"lam": 2.0, "step": 0.02, "steps": 10} and mnist.eps == 0.1
    assert mnist.lr == pytest.approx(1e-4 * 128) and mnist.train_with_test          # mean loss: × batch
    assert proof_of_concept_config("mnist", fidelity="released").lr == pytest.approx(1e-4)
    cifar = proof_of_concept_config("cifar10")
    assert (cifar.model, cifar.optimizer, cifar.lr, cifar.epochs, cifar.eps) == ("wrn-40-10", "adam", 0.01, 60, 0.031)
    configs = proof_of_concept_configs(datasets=["mnist"], seeds=[0, 1])
    assert [(c.seed, c.train_with_test) for c in configs] == [(0, True), (0, False), (1, True), (1, False)]
    assert proof_of_concept_paper_budget(mnist.replace(epochs=3, lr=0.1)) == mnist


@pytest.mark.parametrize("kwargs, message", [
    ({"datasets": ["imagenet"]}, "valid choices: mnist, svhn, cifar10"),
    ({"datasets": "mnist"}, "datasets must be a non-empty list"),
    ({"control": "yes"}, "control must be True or False"),
    ({"epochs": 0}, "epochs must be an integer >= 1"),
    ({"fidelity": "official"}, "valid choices: paper, released"),
])
def test_check_proof_of_concept_params_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_proof_of_concept_params(**kwargs)


def test_proof_of_concept_frame_pairs_the_control(tmp_path):
    configs = proof_of_concept_configs(datasets=["mnist"], epochs=2, train_size=100, test_size=50)
    store = _store_with(tmp_path, [(c, _metrics(adv=90.0 if c.train_with_test else 60.0, lip=5.0,
                                                test=99.0 if c.train_with_test else 95.0), 100) for c in configs])
    runs = collect_runs(configs + proof_of_concept_configs(datasets=["svhn"]),
                                    results_dir=store.root, exact_budget=False)
    frame = proof_of_concept_frame(runs)
    mnist, svhn = frame.iloc[0], frame.iloc[1]
    assert mnist[("adv_test_acc", "with test set")] == 90.0 and mnist[("adv_test_acc", "without (control)")] == 60.0
    assert mnist[("adv_test_acc", "paper")] == 99.98
    assert mnist[("test_acc", "Δ")] == pytest.approx(99.0 - 99.99)
    assert svhn[("", "runs")] == 0 and np.isnan(svhn[("adv_test_acc", "with test set")])
    assert np.isnan(mnist[("adv_test_acc", "±")])   # one seed: no spread, and the styled table drops it
    assert not any(c[1].startswith("±") for c in style_table(frame).data.columns)
    assert proof_of_concept_summary(frame) == [
        "mnist: adversarial test accuracy 90.00% with the test set, 60.00% without it (+30.00 points); paper 99.98%",
        "svhn: not yet run"]
    lines = provenance_lines(runs, paper=proof_of_concept_paper_budget)
    assert "2 epochs (paper: 40), decays after [1], lr 0.0128" in lines[0]
    assert lines[-1] == ("Not yet run (2 configurations): wrn-40-10 RST(λ=2) (seed 0); "
                         "wrn-40-10 RST(λ=2) with the test set (seed 0)")


def test_proof_of_concept_frame_spread_over_seeds(tmp_path):
    configs = proof_of_concept_configs(datasets=["mnist"], epochs=2, train_size=100, test_size=50,
                                                   seeds=(0, 1))
    adv = {(True, 0): 96.0, (True, 1): 98.0, (False, 0): 90.0, (False, 1): 94.0}
    store = _store_with(tmp_path, [(c, _metrics(adv=adv[c.train_with_test, c.seed], lip=5.0, test=99.0), 100)
                                   for c in configs])
    runs = collect_runs(configs, results_dir=store.root, exact_budget=False)
    frame = proof_of_concept_frame(runs)
    (_, mnist), = frame.iterrows()
    assert mnist[("", "runs")] == 2 and mnist[("adv_test_acc", "with test set")] == 97.0
    assert mnist[("adv_test_acc", "±")] == pytest.approx(2 ** 0.5)
    assert mnist[("adv_test_acc", "± (control)")] == pytest.approx(8 ** 0.5)
    assert mnist[("adv_test_acc", "without (control)")] == 92.0
    from rll.book import plots
    fig = plots.proof_of_concept(frame)   # error bars for ours and the control, none for the paper
    assert [len(ax.containers) for ax in fig.axes] == [5, 5]


def test_claims_keep_proof_of_concept_runs_out_of_the_tables(tmp_path):
    table = table_configs("table2", dataset="mnist", models=["cnn2"], methods=["rst(lam=2)"],
                                      test_size=50, **TABLE_BUDGETS["mnist"]["cnn2"])[0]
    poc = proof_of_concept_configs(datasets=["mnist"], epochs=2, train_size=100, test_size=50)
    assert is_table_run(table.canonical()) and not is_table_run(poc[1].canonical())
    assert [is_proof_of_concept_run(c.canonical()) for c in poc + [table]] == [True, True, False]
    store = _store_with(tmp_path, [(table, _metrics(adv=40.0, lip=5.0), 100),
                                   (poc[0], _metrics(adv=99.5, lip=1.0), 100), (poc[1], _metrics(adv=61.0, lip=5.0), 100)])
    verdicts = claims.all_verdicts(store.records(), [])
    poc_verdict = next(v for v in verdicts if "access to the test set" in v.claim)
    # a run without a learning curve has no convergence test: the claim on it is inconclusive
    assert poc_verdict.ours == INCONCLUSIVE and poc_verdict.paper == HOLDS
    assert poc_verdict.ours_evidence.endswith("would be 'holds': mnist: 99.50% adversarial (without the test set: "
                                              "61.00%), 2 epochs")
    assert "convergence untested: mnist/cnn2 RST(λ=2) (no learning curve)" in poc_verdict.ours_evidence
    assert claims.judge_proof_of_concept([{"dataset": "mnist", "adv_test_acc": 90.0, "train_with_test": True}])[0] \
        == FAILS
    rows = _rows_from_records(store.records())
    assert len(rows) == 1 and rows == _rows_from_records([store.get(table)])
    # a run that has not fitted its own training set (which holds the test set) robustly tests
    # nothing, converged or not: the claim stays inconclusive and says why
    row = {"dataset": "mnist", "seed": 0, "epochs": 40, "trained_on": 2500, "adv_train_acc": 97.75}
    verdict, evidence = claims._fitted([row], FAILS, "mnist: 97.80% adversarial")
    assert verdict == INCONCLUSIVE and "under-fitted" in evidence and "97.75% after 40 epochs on 2500 images" in evidence
    assert evidence.endswith("would be 'does not hold': mnist: 97.80% adversarial")
    assert claims._fitted([dict(row, adv_train_acc=99.5)], FAILS, "e") == (FAILS, "e")


def test_mt_stronger_pairs_the_same_model_per_seed():
    def row(seed, adv, attack):
        return {"dataset": "mnist", "model": "cnn2", "method": "at", "params": {}, "dropout": 0.0, "seed": seed,
                "budget": (2,), "attack": attack, "adv_test_acc": adv}
    pgd = [row(0, 60.0, "pgd"), row(1, 20.0, "pgd")]
    verdict, evidence = claims.judge_mt_stronger(pgd, [row(0, 58.0, "mt")])    # seed 1 has no MT record
    assert verdict == HOLDS and "over 1 rows: min +2.00" in evidence
    verdict, evidence = claims.judge_mt_stronger(pgd, [row(1, 25.0, "mt")])
    assert verdict == FAILS and evidence.endswith("MT weaker on mnist/cnn2 AT seed 1 (-5.00)")


def test_mt_stronger_compares_on_the_same_images_or_within_the_subsets_sampling_error():
    def row(adv, attack, n, **extra):
        return {"dataset": "mnist", "model": "cnn1", "method": "gr", "params": {}, "dropout": 0.0, "seed": 0,
                "budget": (8,), "attack": attack, "adv_test_acc": adv, "evaluated_on": {"adv_test_acc": n}, **extra}
    pgd = [row(91.0, "pgd", 10000)]
    # an older record: MT on 1 000 images 0.1 above PGD-10 on 10 000 — within 2·SE (≈1.8): a tie
    verdict, evidence = claims.judge_mt_stronger(pgd, [row(91.1, "mt", 1000)])
    assert verdict == HOLDS
    assert "1 not on the same images" in evidence and "mnist/cnn1 GR seed 0 (-0.10, 2·SE 1.80)" in evidence
    # beyond 2·SE it is a real difference
    verdict, evidence = claims.judge_mt_stronger(pgd, [row(93.5, "mt", 1000)])
    assert verdict == FAILS and evidence.endswith("MT weaker on mnist/cnn1 GR seed 0 (-2.50)")
    # with PGD-10 on MT's own images the comparison is paired and the tolerance is the tables' rounding
    verdict, evidence = claims.judge_mt_stronger(pgd, [row(91.1, "mt", 1000, pgd_acc_same_images=91.0)])
    assert verdict == FAILS and "not on the same images" not in evidence
    verdict, _ = claims.judge_mt_stronger(pgd, [row(91.1, "mt", 1000, pgd_acc_same_images=91.3)])
    assert verdict == HOLDS


def test_store_summary_groups_runs_by_kind_and_budget(tmp_path):
    table = table_configs("table2", dataset="mnist", models=["cnn2"], methods=["natural", "at"],
                                      epochs=2, seeds=[0, 1], train_size=100, test_size=50)
    poc = proof_of_concept_configs(datasets=["mnist"], epochs=2, train_size=100, test_size=50)
    store = _store_with(tmp_path, [(c, _metrics(adv=50.0, lip=5.0), 100) for c in table + poc])
    frame = store_summary(store.records())
    assert frame["runs"].sum() == 6
    kinds = dict(zip(frame["kind"], frame["runs"]))
    assert kinds == {"Section 5 table": 4, "proof of concept": 1, "proof of concept (with the test set)": 1}
    assert frame.loc[frame["kind"] == "Section 5 table", "seeds"].item() == "0, 1"


@pytest.mark.slow
def test_mt_selection_frame_reads_both_selections_of_the_stored_mt_evaluation(tmp_path, data_root):
    """Every MT record holds the released selection (its adv_test_acc) and the per-example
    worst case from the same attack run; the frame shows both and the difference."""
    from rll.config import TrainConfig
    from rll.training.run import evaluate, train

    cfg = TrainConfig.from_paper("mnist", "cnn1", "natural", train_size=64, test_size=24, epochs=1, milestones=())
    kw = dict(data_root=data_root, results_dir=tmp_path / "runs", checkpoint_dir=tmp_path / "ck", progress=False)
    train(cfg, **kw)
    stored = evaluate(cfg.replace(attack="mt"), **kw)["metrics"]
    assert stored["adv_test_acc"] == stored["adv_test_acc_released_selection"]
    assert stored["adv_test_acc_worst_selection"] <= stored["adv_test_acc"]
    frame = mt_selection_frame(ResultsStore(tmp_path / "runs").records())
    assert len(frame) == 1 and frame["test images"].item() == 24
    assert frame["released − worst"].item() == pytest.approx(
        stored["adv_test_acc"] - stored["adv_test_acc_worst_selection"])


def test_separation_claim_counts_a_measurement_once():
    train_only = {"dataset": "cifar10", "eps": 0.031, "train_train_min": 0.212}
    with_partial = dict(train_only, test_train_min=0.259, test_split="test_partial")
    verdict, evidence = claims.judge_separation([train_only, with_partial])
    assert verdict == HOLDS
    assert evidence == ("cifar10 train–train 0.212 = 6.8ε; "
                        "cifar10 test–train 0.259 = 8.4ε (partial test set: 1017 of 10 000 images)")


def test_llr_step_comparison_released_step_moves_less_than_signed_steps(data_root):
    from rll import data as rdata
    from rll.models import build_model

    torch.manual_seed(0)
    model = build_model("cnn1")
    test = rdata.load_dataset("mnist", "test", root=data_root)
    x, y = rdata.to_float(test.images[:64]), test.labels[:64]
    out = llr_step_comparison(model, x, y, eps=0.1)
    released, signed = out["released step"], out["signed steps"]
    assert 0 < released["mean |δ|"] < signed["mean |δ|"] <= 0.1
    assert released["pixels at ≥ ε/2"] < signed["pixels at ≥ ε/2"]


def test_table_progress_marks_done_missing_and_not_run(tmp_path, monkeypatch):
    monkeypatch.setitem(TABLE_BUDGETS, "mnist", FIRST_CPU_BUDGETS["mnist"])   # per-model budgets with a decay
    budget = TABLE_BUDGETS["mnist"]["cnn2"]
    configs = table_configs("table2", dataset="mnist", models=["cnn2"], methods=["natural", "at"],
                                        seeds=[0, 1], **budget)
    store = ResultsStore(tmp_path)
    nat0, at0, nat1, _ = configs
    for attack in FULL_EVALUATION:
        store.put(nat0.replace(attack=attack), _metrics(adv=1.0, lip=1.0), {})
    store.put(at0, _metrics(adv=1.0, lip=1.0), {})
    store.put(nat1, _metrics(adv=1.0, lip=1.0), {})
    frame = table_progress(store.records(), seeds=(0, 1))
    cnn2 = frame[frame["model"] == "cnn2"].set_index("method")
    assert cnn2.loc["Natural", "seed 0"] == "done" and cnn2.loc["Natural", "seed 1"] == "done"
    assert cnn2.loc["AT", "seed 0"] == "missing mt, aa-apgd, aa" and cnn2.loc["AT", "seed 1"] == "not run"
    # each model at its own table budget: CNN1 at CNN2's budget is not CNN1's table row
    cnn1_short, = table_configs("table2", dataset="mnist", models=["cnn1"], methods=["natural"], **budget)
    cnn1, = table_configs("table2", dataset="mnist", models=["cnn1"], methods=["natural"],
                                      budgets=TABLE_BUDGETS["mnist"])
    assert cnn1.epochs > cnn1_short.epochs
    store.put(cnn1_short, _metrics(adv=1.0, lip=1.0), {})
    frame = table_progress(store.records(), seeds=(0, 1))
    assert frame[frame["model"] == "cnn1"].set_index("method").loc["Natural", "seed 0"] == "not run"
    store.put(cnn1, _metrics(adv=1.0, lip=1.0), {})
    frame = table_progress(store.records(), seeds=(0, 1))
    assert frame[frame["model"] == "cnn1"].set_index("method").loc["Natural", "seed 0"] == "missing mt, aa-apgd, aa"
    # the plan asks CNN1 for seed 0 only: its seed 1 is beyond the plan until it is stored
    assert frame[frame["model"] == "cnn1"].set_index("method").loc["Natural", "seed 1"] == BEYOND_PLAN
    store.put(cnn1.replace(seed=1), _metrics(adv=1.0, lip=1.0), {})
    frame = table_progress(store.records(), seeds=(0, 1))
    assert frame[frame["model"] == "cnn1"].set_index("method").loc["Natural", "seed 1"] == "done"
    # the released reading's rows: GR and LLR of CNN2, every row of CNN1 (another network there)
    released = table_progress(store.records(), seeds=(0,), reading="released")
    assert sorted(released[released["model"] == "cnn2"]["method"]) == ["GR", "LLR"]
    assert len(released[released["model"] == "cnn1"]) == len(frame[frame["model"] == "cnn1"])
    assert set(released["seed 0"]) == {"not run"}        # the paper-fidelity records above do not count
    store.put(cnn1.replace(fidelity="released"), _metrics(adv=1.0, lip=1.0), {})
    released = table_progress(store.records(), seeds=(0,), reading="released")
    assert released.set_index(["model", "method"]).loc[("cnn1", "Natural"), "seed 0"] == "missing mt, aa-apgd, aa"
    record = lambda c: {"config": c.canonical(), "provenance": {"fidelity_revision": FIDELITY_REVISION}}
    assert current(record(cnn1)) and not current(record(cnn1_short))
    assert current(record(cnn1_short), table_budget=False)


def test_provenance_lines_name_runs_of_an_older_fidelity_revision(tmp_path):
    poc = proof_of_concept_configs(datasets=["mnist"], epochs=2, train_size=100, test_size=50, control=False)
    store = ResultsStore(tmp_path)
    store.put(poc[0], _metrics(adv=99.0, lip=1.0), {"n_train": 100, "n_test": 50})     # no revision: revision 1
    runs = collect_runs(poc, results_dir=tmp_path, exact_budget=True)
    lines = provenance_lines(runs, paper=proof_of_concept_paper_budget)
    assert any(line.startswith("NOTE: 1 of these runs were trained before a later correction of the methods") for line in lines)


def test_sweep_status_says_what_a_sweep_would_do(tmp_path):
    """`sweep --dry-run`: stored, partly evaluated, claimed by a live worker, or to train."""
    configs = table_configs("table2", dataset="mnist", models=["cnn2"],
                                        methods=["natural", "at", "trades(beta=6)", "llr"], epochs=1)
    natural, at, trades, llr = configs
    store = ResultsStore(tmp_path)
    current = {"fidelity_revision": FIDELITY_REVISION}
    for attack in ("pgd", "mt"):
        store.put(natural.replace(attack=attack), _metrics(adv=80.0, lip=10.0), current)
    store.put(at, _metrics(adv=90.0, lip=3.0), current)
    store.put(llr, _metrics(adv=85.0, lip=3.0), {})                  # no revision: revision 1
    assert store.claim(trades.training_canonical(), owner="worker 7")
    status = dict((c.label(), s) for c, s in sweep_status(configs, results_dir=tmp_path,
                                                                      attacks=("pgd", "mt"),
                                                                      checkpoint_dir=tmp_path / "ck"))
    assert status == {natural.label(): "stored", at.label(): "missing mt",
                      trades.label(): "claimed by worker 7", llr.label(): "to train again (fidelity revision 1 stored)"}
    # without --attacks, the configurations' own attack (PGD-10) decides
    assert [s for _, s in sweep_status(configs, results_dir=tmp_path)][:2] == ["stored", "stored"]


def test_store_overview_counts_trained_models_once_per_kind_network_and_budget():
    from rll.config import TrainConfig

    base = TrainConfig(dataset="mnist", model="cnn2", method="at", train_size=34000, epochs=3, milestones=(2,))
    records = [{"config": base.replace(seed=s, attack=a).canonical(), "provenance": {"n_train": 34000}}
               for s in (0, 1) for a in (("pgd", "mt") if s == 0 else ("pgd",))]
    frame = store_overview(records)
    assert frame.to_dict("records") == [{
        "kind": "Section 5 table", "network": "MNIST CNN2", "fidelity": "paper",
        "training images × epochs": "34 000 × 3, decays after 2", "models": 2, "seeds": "0, 1",
        "attacks": "pgd, mt", "records": 3}]


def test_a_bf16_run_of_a_table_row_is_still_that_row():
    from rll.config import TrainConfig

    bf16 = TrainConfig(dataset="mnist", model="cnn2", method="at", precision="bf16", epochs=20, milestones=())
    assert is_table_run(bf16.canonical())
    assert not is_table_run(bf16.replace(batch_size=32).canonical())


def test_the_results_folder_is_explicit_then_rll_results_then_the_checkout(monkeypatch, tmp_path):
    monkeypatch.delenv("RLL_RESULTS", raising=False)
    assert results_folder("runs") == REPO / "results" / "runs"
    assert results_folder("runs", tmp_path) == tmp_path
    monkeypatch.setenv("RLL_RESULTS", str(tmp_path))
    assert results_folder("budget") == tmp_path / "budget"
    monkeypatch.delenv("RLL_RESULTS")
    monkeypatch.setattr(rll_store, "REPO", tmp_path / "site-packages")      # installed, no checkout
    with pytest.raises(FileNotFoundError, match="RLL_RESULTS"):
        results_folder("runs")
    with pytest.raises(ValueError, match="valid choices: runs, budget"):
        results_folder("other")


def test_a_page_training_what_is_missing_takes_the_sweep_path(tmp_path):
    """collect_runs(train_missing=True) trains through run_sweep: a configuration another live
    worker has claimed is reported and left without a record, not raised into the page."""
    config = TrainConfig(dataset="mnist", model="cnn2", method="natural", train_size=64, test_size=32, epochs=1)
    store = ResultsStore(tmp_path)
    assert store.claim(config.training_canonical(), owner="another worker")     # alive: this very process
    said = []
    runs = collect_runs([config], results_dir=tmp_path, exact_budget=True, train_missing=True, log=said.append)
    assert runs == [(config, None)]
    assert said == [f"[1/1] {config.label()}: claimed by another worker, skipped"]


def test_an_fp32_record_stands_for_a_bf16_table_row_and_never_the_other_way(tmp_path):
    """`--precision auto` asks natural in bf16; a stored fp32 run of the row answers it (fp32 is the
    reference arithmetic), a bf16 record is preferred when both exist, and a bf16 record never
    answers an fp32 row — in the tables' lookup and in the sweep's skip alike."""
    from rll.experiments.sweep import _missing_attacks
    from rll.experiments.tables import find_record, stand_ins
    from rll.losses import FIDELITY_REVISION

    now = {"fidelity_revision": FIDELITY_REVISION}

    (bf16,) = table_configs("table2", dataset="mnist", models=["cnn2"], methods=["natural"], precision="auto",
                            **TABLE_BUDGETS["mnist"]["cnn2"])
    fp32 = bf16.replace(precision="fp32")
    assert bf16.precision == "bf16" and stand_ins(bf16) == [bf16, fp32] and stand_ins(fp32) == [fp32]
    store = ResultsStore(tmp_path)
    store.put(fp32, _metrics(adv=80.0, lip=17.0), now)
    records = store.records()
    assert find_record(records, bf16, exact_budget=True)["config"] == fp32.canonical()
    assert _missing_attacks(store, bf16) == [] and _missing_attacks(store, bf16, ["pgd", "mt"]) == ["mt"]
    store.put(bf16, _metrics(adv=81.0, lip=16.0), now)
    assert find_record(store.records(), bf16, exact_budget=True)["config"] == bf16.canonical()
    only_bf16 = ResultsStore(tmp_path / "bf16")
    only_bf16.put(bf16, _metrics(adv=81.0, lip=16.0), now)
    assert find_record(only_bf16.records(), fp32, exact_budget=True) is None
    assert _missing_attacks(only_bf16, fp32) == ["pgd"]


def test_of_two_precisions_of_one_run_the_verdicts_count_the_one_the_table_reads():
    from rll.experiments.tables import one_precision_per_run

    (natural_bf16,) = table_configs("table2", dataset="mnist", models=["cnn2"], methods=["natural"], precision="auto")
    (llr,) = table_configs("table2", dataset="mnist", models=["cnn2"], methods=["llr"], precision="auto")
    assert natural_bf16.precision == "bf16" and llr.precision == "fp32"       # bf16 is refused for paper LLR
    fp32 = {"config": natural_bf16.replace(precision="fp32").canonical()}
    bf16 = {"config": natural_bf16.canonical()}
    other_seed = {"config": natural_bf16.replace(precision="fp32", seed=1).canonical()}
    only_llr = {"config": llr.canonical()}
    assert one_precision_per_run([fp32, bf16, other_seed, only_llr]) == [bf16, other_seed, only_llr]
    assert one_precision_per_run([fp32, other_seed]) == [fp32, other_seed]
