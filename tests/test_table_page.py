"""A table page without stored runs (rll.book.table_page): the box's command and data lines, and the
paper's table alone."""
from __future__ import annotations

from rll.analysis.frames import table_frame
from rll.book import table_page
from rll.experiments.tables import table_configs


def test_the_box_names_the_command_the_data_and_the_cost(tmp_path):
    configs = table_configs("table3", dataset="cifar10", seeds=(0,))
    assert table_page.sweep_command("table3", "cifar10", configs) == (
        "python -m rll sweep table3 --dataset cifar10 --models wrn-40-10 --seeds 0 --attacks pgd mt aa-apgd aa "
        "--eval-plan table --results-dir results/runs")
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
