"""A table page (rll.book.table_page): the box's command and data lines and the paper's table alone
when no run is stored; every section of a page built from its parameters, with and without runs."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from rll.analysis.frames import table_frame
from rll.book import table_page
from rll.experiments.tables import table_configs


def test_the_box_names_the_command_the_data_and_the_cost(tmp_path):
    configs = table_configs("table3", dataset="cifar10", seeds=(0,))
    assert table_page.sweep_command("table3", "cifar10", configs) == (
        "python -m rll sweep table3 --dataset cifar10 --models wrn-40-10 --seeds 0 --precision auto --attacks pgd mt aa-apgd aa "
        "--eval-plan table --curve-images 1000 --results-dir results/runs")
    mnist = table_configs("table2", dataset="mnist", seeds=(0,))
    assert " --seeds 0 --table-budget --precision auto " in table_page.sweep_command("table2", "mnist", mnist)
    # an empty data root: both splits missing, each naming its files
    assert table_page.data_status("svhn", root=tmp_path) == ["svhn train: missing (train_32x32.mat)",
                                                               "svhn test: missing (test_32x32.mat)"]
    box = table_page.empty_box("table3", "svhn", table_configs("table3", dataset="svhn"), data_root=tmp_path)
    html = box._repr_html_()
    assert "all 10 configurations" in html and "needs a GPU" in html and html.count("rll-empty") == 1


def test_the_papers_table_alone_and_whether_anything_is_stored():
    configs = table_configs("table3", dataset="cifar10")
    frame = table_frame([(c, None) for c in configs], attack="pgd")
    paper = table_page.paper_table(frame)
    # Table 3, CIFAR-10 natural WRN-40-10: 100.00 train, 93.81 test, 0.00 PGD-10 (the paper's text)
    natural = paper[paper["method"] == "Natural"].iloc[0]
    assert (natural["train acc."], natural["test acc."], natural["adv. test acc."]) == (100.0, 93.81, 0.0)
    assert "test Lipschitz (Eq. 3)" not in paper.columns       # no paper counterpart: no empty column
    assert not table_page.has_runs([(c, None) for c in configs])
    assert table_page.has_runs([(configs[0], {"metrics": {}})])


def _paper_rows(table: str, dataset: str) -> list[dict]:
    """The paper's rows of ``table`` for ``dataset``, read from rll/paper_reference.json directly."""
    reference = json.loads((Path(__file__).resolve().parents[1] / "rll" / "paper_reference.json").read_text())
    return [r for r in reference[table]["rows"] if r["dataset"] == dataset]


def test_a_page_without_runs_is_one_box_the_papers_table_and_one_line_per_section(tmp_path):
    figures_before = set(plt.get_fignums())       # other tests may leave theirs open
    page = table_page.check_and_build("table4", dataset="svhn", results_dir=tmp_path, data_root=tmp_path)
    assert not page.stored and page.other_runs == [] and page.other == "mt"
    # Table 4 on SVHN: the paper's five dropout-study rows, each without dropout and at 0.5
    rows = list(zip(page.frame[("", "method")], page.frame[("", "dropout")]))
    assert sorted(rows) == sorted((m, d) for m in ("Natural", "AT", "RST(λ=2)", "TRADES(β=3)", "TRADES(β=6)")
                                  for d in (0.0, 0.5))
    box, paper = table_page.main_table(page)
    assert box._repr_html_().count("rll-empty") == 1 and "svhn train: missing (train_32x32.mat)" in box.text
    shown = {(r["method"], r["dropout"]): r["test acc."] for _, r in paper.data.iterrows()}
    assert shown == {(r["label"], r["dropout"]): r["test_acc"] for r in _paper_rows("table4", "svhn")}
    # every other section says so in one line, draws no figure, and nothing fails
    assert page.regime == page.convergence == ["no table run stored yet"]
    for section in (table_page.other_attack, table_page.stronger_attacks, table_page.figures):
        (item,) = section(page)
        assert "rll-not-yet" in item._repr_html_()
    assert set(plt.get_fignums()) == figures_before
    assert page.numbers["most_robust_ours"] == "no stored run yet" and "natural_bar" not in page.numbers
    assert page.numbers["trained_bars"].endswith("no SVHN block is held to them.")
    # the convergence test as the page states it: the rule's window and limits (tests/test_budget.py)
    rule = page.numbers["convergence_rule"]
    assert "trend of its learning curve's last 8 epochs" in rule and "at most 0.5 points" in rule
    assert "PGD-10 accuracy by at most 1 point" in rule and "one more epoch at the final rate" in rule


def test_a_refused_parameter_fails_before_the_store_is_read(tmp_path, monkeypatch):
    def no_compute(*args, **kwargs):
        raise AssertionError("the store was read before the parameters were checked")

    monkeypatch.setattr(table_page, "collect_runs", no_compute)
    with pytest.raises(ValueError, match="unknown dataset 'svhn' for table2; valid choices: mnist"):
        table_page.check_and_build("table2", dataset="svhn", results_dir=tmp_path)
    with pytest.raises(ValueError, match="dropouts must be a list of rates"):
        table_page.check_and_build("table4", dataset="svhn", dropouts=[1.5], results_dir=tmp_path)


def test_a_page_with_stored_runs_shows_every_section():
    """Two stored MNIST rows of the repository's results store (results/runs, CNN2 seed 0)."""
    page = table_page.check_and_build("table2", dataset="mnist", models=["cnn2"], methods=["natural", "at"], seeds=[0])
    assert page.stored
    assert list(zip(page.frame[("", "model")], page.frame[("", "method")])) == [("cnn2", "Natural"), ("cnn2", "AT")]
    paper = {r["label"]: r["test_acc"] for r in _paper_rows("table2", "mnist") if r["model"] == "cnn2"}
    assert list(page.frame[("test_acc", "paper")]) == [paper["Natural"], paper["AT"]]
    assert (page.numbers["natural_bar"], page.numbers["at_bar"]) == ("98.5", "90")
    block, *lines = table_page.main_table(page)
    assert "mnist-pgd-table2.csv" in block._repr_html_() and lines and lines[0].startswith("2 runs: 40 epochs (paper: 160), decays after []")
    assert any(line.startswith("cnn2 Natural (") for line in page.regime)
    assert any(line.startswith("cnn2 AT (") for line in page.convergence)
    # only the page's rows: the store's CNN1 and other methods' rows stay off this page
    for line in page.regime + page.convergence:
        assert line.startswith(("cnn2 Natural (", "cnn2 AT (", "cnn2: ")), line
    assert {c.attack for c, _ in page.other_runs} == {"mt"} and table_page.has_runs(page.other_runs)
    other = table_page.other_attack(page)
    assert "mnist-mt-table2.csv" in other[0]._repr_html_() and hasattr(other[-1], "to_html")
    figures = table_page.figures(page) + table_page.stronger_attacks(page)[1:]
    try:
        assert len(figures) == 6 and all(isinstance(f, plt.Figure) for f in figures)
        assert figures[0].get_suptitle() == "MNIST, PGD: adversarial test accuracy per seed"
    finally:
        plt.close("all")


def test_show_prints_lines_and_closes_the_figures_it_displays(capsys):
    fig = plt.figure()
    table_page.show(["a provenance line", fig])
    assert capsys.readouterr().out.startswith("a provenance line\n")
    assert not plt.fignum_exists(fig.number)
