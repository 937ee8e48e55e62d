"""Figures that read: legends outside the axes, tick labels that do not collide, no empty panels
(checked on the drawn figure's own geometry)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rll.analysis.frames import table_frame
from rll.book import plots  # noqa: E402
from rll.experiments.tables import table_configs


def _curve_record(method, train_size, epochs):
    history = [{"epoch": e, "lr": 0.0064, "loss": 1.0 / e, "curve": {
        "test_acc": 97 + e / 10, "adv_test_acc": 80 + e, "test_lipschitz_released": 5 + e, "train_acc": 98.0}}
        for e in range(1, epochs + 1)]
    return {"config": {"dataset": "mnist", "model": "cnn2", "method": method, "params": {}, "dropout": 0.0,
                       "train_size": train_size, "epochs": epochs, "fidelity": "paper", "batch_size": 64},
            "metrics": {}, "provenance": {"history": history}}


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_learning_curves_legend_sits_outside_every_panel():
    records = [_curve_record(m, n, e) for m in ("natural", "at") for n in (2000, 10000, 34000) for e in (3, 5)]
    fig = plots.learning_curves(records)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(renderer)
    for ax in fig.axes:
        assert not _overlaps(legend, ax.get_window_extent(renderer)), "the legend covers a panel"
    colours = [line.get_color() for line in fig.axes[0].get_lines() if line.get_label().startswith("Natural")]
    assert len({tuple(np.ravel(c)) for c in colours}) == 6, "two of the six budgets share a colour"
    plt.close(fig)


def test_log_axis_tick_labels_do_not_collide():
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    ax.plot([1.2, 80.0], [90, 95])
    plots._log_x(ax)
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.get_xticklabels() if t.get_text() and t.get_visible()
             and ax.get_xlim()[0] <= t.get_position()[0] <= ax.get_xlim()[1]]
    assert len(boxes) >= 3
    assert not any(_overlaps(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    plt.close(fig)


def test_delta_heatmap_has_no_column_without_a_paper_counterpart():
    configs = table_configs("table2", dataset="mnist", models=["cnn2"], methods=["natural", "at"], epochs=1)
    runs = [(c, {"config": c.canonical(), "metrics": {"train_acc": 99.0, "test_acc": 98.0, "adv_test_acc": 80.0,
                                                      "test_lipschitz": 50.0, "test_lipschitz_released": 5.0,
                                                      "gap": 1.0, "adv_gap": 2.0},
                 "provenance": {"n_train": 100, "n_test": 50}}) for c in configs]
    frame = table_frame(runs, attack="pgd")
    fig = plots.delta_heatmap(frame)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels and not any("test lipschitz" == lab for lab in labels), labels   # Eq. 3 has no paper number
    plt.close(fig)


def test_point_labels_do_not_print_over_each_other():
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    # ten points in two tight clusters: labels at one fixed offset would overlap
    points = [(1.0 + 0.01 * i, 90.0 + 0.05 * i, f"TRADES(β={i})") for i in range(5)] + \
             [(5.0 + 0.01 * i, 80.0 + 0.05 * i, f"RST(λ={i})") for i in range(5)]
    ax.scatter([p[0] for p in points], [p[1] for p in points])
    plots.annotate_apart(ax, points)
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.texts]
    assert len(boxes) == 10
    assert not any(_overlaps(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    plt.close(fig)
