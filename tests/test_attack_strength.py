"""rll.analysis.attack_strength: per-model attack comparison, the flags, AutoAttack by table row, per class."""
from __future__ import annotations

import numpy as np
import pytest

from rll.analysis import attack_strength as S
from rll.book.parameters import check_table_params
from rll.experiments.sweep import collect_runs
from rll.experiments.tables import (
    FIRST_CPU_BUDGETS,
    TABLE_BUDGETS,
    table_budget,
    table_configs,
)
from rll.store import ResultsStore


def _records(tmp_path):
    store = ResultsStore(tmp_path)
    configs = table_configs("table2", dataset="mnist", models=["cnn2"], methods=["natural", "gr"],
                                        seeds=[0, 1], epochs=2, train_size=100)
    for c in configs:
        per_class = [90.0 + k for k in range(10)]
        per_class[3] = 40.0 + c.seed
        store.put(c, {"test_acc": 99.0, "adv_test_acc": 80.0 + c.seed, "per_class_adv_test_acc": per_class}, {})
        store.put(c.replace(attack="mt"), {"test_acc": 99.0, "adv_test_acc": 78.0, "adv_test_acc_released_selection": 78.0,
                                           "adv_test_acc_worst_selection": 76.5, "evaluated_on": {"adv_test_acc": 1000},
                                           **({"pgd_acc_same_images": 79.5} if c.seed == 0 else {})}, {})
        masked = c.method == "gr" and c.seed == 1
        store.put(c.replace(attack="aa-apgd"), {
            "adv_test_acc": 70.0 if masked else 79.0, "pgd_acc_same_images": 80.0 + c.seed,
            "components": {"apgd-ce": 75.0, "apgd-dlr": 72.0}, "evaluated_on": {"adv_test_acc": 500}}, {})
        if c.seed == 0:
            store.put(c.replace(attack="aa"), {
                "adv_test_acc": 78.0, "pgd_acc_same_images": 80.0, "square_only": 2 if c.method == "gr" else 0,
                "components": {"apgd-ce": 79.0, "apgd-t": 78.0, "fab-t": 79.5, "square": 90.0},
                "evaluated_on": {"adv_test_acc": 200}}, {})
    return configs, store.records()


def test_flags_from_the_numbers():
    assert S.flags({"adv_test_acc": 70.0, "pgd_acc_same_images": 80.0}) == ["AA 10.0 points below PGD-10"]
    assert S.flags({"adv_test_acc": 78.0, "pgd_acc_same_images": 80.0}) == []       # within FLAG_POINTS
    assert S.flags({"adv_test_acc": 78.0, "square_only": 3}) == ["Square only: 3 examples"]


def test_attack_strength_frame_groups_each_models_records(tmp_path):
    configs, records = _records(tmp_path)
    frame = S.attack_strength_frame(records)
    assert len(frame) == 4
    gr0 = frame[(frame[("", "method")] == "GR") & (frame[("", "seed")] == 0)].iloc[0]
    assert gr0[("PGD-10", "acc")] == 80.0 and gr0[("MT", "per-example worst")] == 76.5
    assert gr0[("AA standard", "square")] == 90.0 and gr0[("AA (APGD-CE + APGD-DLR)", "images")] == 500
    assert gr0[("", "flags")] == "AA standard: Square only: 2 examples"
    gr1 = frame[(frame[("", "method")] == "GR") & (frame[("", "seed")] == 1)].iloc[0]
    assert gr1[("", "flags")] == "AA (APGD-CE + APGD-DLR): AA 11.0 points below PGD-10"
    assert np.isnan(gr1[("AA standard", "acc")])
    # PGD-10 on MT's own images where the record holds it (newer records), else left empty
    assert gr0[("MT", "PGD-10 same images")] == 79.5 and np.isnan(gr1[("MT", "PGD-10 same images")])


def test_autoattack_by_row_and_per_class(tmp_path):
    configs, records = _records(tmp_path)
    runs = collect_runs(configs, results_dir=tmp_path, exact_budget=True)
    rows = S.autoattack_by_row(runs, records)
    assert rows[("cnn2", "Natural", 0.0)] == (79.0, "")
    mean, raised = rows[("cnn2", "GR", 0.0)]
    assert mean == 74.5 and raised == "seed 1: AA 11.0 points below PGD-10"
    pc = S.per_class_frame(runs)
    assert list(pc["worst class"]) == ["3", "3"] and pc.loc[0, "3"] == 40.5 and pc.loc[0, "seeds"] == 2


def test_per_class_heatmap_draws(tmp_path):
    from rll.book import plots

    configs, records = _records(tmp_path)
    pc = S.per_class_frame(collect_runs(configs, results_dir=tmp_path, exact_budget=True))
    fig = plots.per_class_heatmap(pc)
    assert len(fig.axes[0].texts) == 20 and len(fig.axes[0].patches) == 2


def test_attack_strength_figure_draws(tmp_path):
    from rll.book import plots

    _, records = _records(tmp_path)
    fig = plots.attack_strength(S.attack_strength_frame(records))
    assert len(fig.axes[0].collections) == 4     # MT, AA-APGD, AA standard, flagged circles


def test_robustness_frame_puts_autoattack_and_the_worst_class_beside_pgd(tmp_path):
    configs, records = _records(tmp_path)
    runs = collect_runs(configs, results_dir=tmp_path, exact_budget=True)
    frame = S.robustness_frame(runs, records).set_index("method")
    assert frame.loc["GR", "PGD-10"] == 80.5 and frame.loc["GR", "AA (APGD-CE + APGD-DLR)"] == 74.5
    assert frame.loc["GR", "AA standard"] == 78.0 and frame.loc["GR", "worst class (PGD-10)"] == "3"
    assert "seed 1: AA 11.0 points below PGD-10" in frame.loc["GR", "flags"]
    assert "Square only: 2 examples" in frame.loc["GR", "flags"] and frame.loc["Natural", "flags"] == ""


def test_table_budget_defaults_to_each_models_table_budget(monkeypatch):
    monkeypatch.setitem(TABLE_BUDGETS, "mnist", FIRST_CPU_BUDGETS["mnist"])   # per-model budgets with a decay
    budget, exact = table_budget("mnist")
    assert budget == {"budgets": TABLE_BUDGETS["mnist"]} and exact
    configs = check_table_params("table2", dataset="mnist", methods=["natural"], **budget)
    assert {c.model: (c.train_size, c.epochs, c.milestones) for c in configs} == {
        model: (b["train_size"], b["epochs"], tuple(b["milestones"])) for model, b in TABLE_BUDGETS["mnist"].items()}
    assert configs[0].epochs != configs[1].epochs      # CNN1 trains longer than CNN2
    with pytest.raises(ValueError, match="either per-model budgets or epochs"):
        check_table_params("table2", dataset="mnist", epochs=2, **budget)
    assert table_budget("mnist", epochs=2, train_size=128) == ({"epochs": 2, "train_size": 128}, True)
    assert table_budget("svhn") == ({}, False)
