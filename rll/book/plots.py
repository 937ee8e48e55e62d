"""Figures for the book (matplotlib).  Each function draws one of the paper's figures from
our records and returns the ``Figure``; nothing here computes a result."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from rll.analysis import budget
from rll.experiments.tables import method_label, row_params
from rll.paper import paper_reference, paper_row


def separation_histograms(record: dict, *, bins: int = 20):
    """Figs 2 and 5: histograms of per-point train–train and test–train separation on [0, 1]
    (20 bins, as the paper) with a marker at 2ε."""
    columns = [c for c in ("train_train", "test_train") if c in record["distances"]]
    fig, axes = plt.subplots(1, len(columns), figsize=(5 * len(columns), 3.2), squeeze=False)
    for ax, col in zip(axes[0], columns):
        dist = np.asarray(record["distances"][col]["distance"])
        ax.hist(dist, bins=bins, range=(0, 1), color="#4c72b0")
        ax.axvline(2 * record["eps"], color="#c44e52", ls="--", label=f"2ε = {2 * record['eps']:.3g}")
        ax.set_xlabel(f"{col.replace('_', '–')} separation (l∞)")
        ax.set_ylabel("points")
        ax.set_yscale("log")
        ax.legend(loc="upper left")
    labels = "random labels" if record["random_labels"] else "original labels"
    fig.suptitle(f"{record['dataset']}: {labels}")
    fig.tight_layout()
    return fig


def separation_original_vs_random(original: dict, random: dict, *, bins: int = 20):
    """Fig 8: separation under the original labels against uniformly random labels."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for rec, color in ((original, "#4c72b0"), (random, "#dd8452")):
        dist = np.asarray(rec["distances"]["train_train"]["distance"])
        label = "random labels" if rec["random_labels"] else "original labels"
        ax.hist(dist, bins=bins, range=(0, 1), alpha=0.6, color=color, label=f"{label} (min {dist.min():.3f})")
    ax.axvline(2 * original["eps"], color="#c44e52", ls="--", label="2ε")
    ax.set_xlabel("train–train separation (l∞)")
    ax.set_ylabel("points")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title(f"{original['dataset']}: original vs random labels")
    fig.tight_layout()
    return fig


def image_pairs(pairs: list[dict]):
    """Figs 6/7 analogue: the closest cross-label pairs side by side with their distance."""
    fig, axes = plt.subplots(2, len(pairs), figsize=(2.2 * len(pairs), 4.6), squeeze=False)
    for k, pair in enumerate(pairs):
        for row, (img, label) in enumerate(((pair["query_image"], pair["query_label"]),
                                            (pair["neighbour_image"], pair["neighbour_label"]))):
            ax = axes[row][k]
            img = np.asarray(img)
            if img.shape[0] == 1:
                ax.imshow(img[0], cmap="gray", vmin=0, vmax=255)
            else:
                ax.imshow(np.transpose(img, (1, 2, 0)))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{label}" + (f"\nd∞ = {pair['distance']:.3f}" if row == 0 else ""), fontsize=9)
    fig.tight_layout()
    return fig


def _ours(frame, metric):
    return frame[(metric, "ours")].to_numpy(dtype=float)


def _paper(frame, metric):
    return frame[(metric, "paper")].to_numpy(dtype=float)


def _spread(frame, metric):
    """The seed standard deviation of ``metric`` (NaN where one seed or none)."""
    if (metric, "±") not in frame.columns:
        return np.full(len(frame), np.nan)
    return frame[(metric, "±")].to_numpy(dtype=float)


def _log_x(ax) -> None:
    """A log x scale labelled at the powers of ten and at 2 and 5 times them, plainly (1, 2, 5, 10,
    …), with unlabelled minor ticks: labels that do not run into each other."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    formatter = ScalarFormatter()
    formatter.set_scientific(False)
    ax.xaxis.set_major_formatter(formatter)
    ax.xaxis.set_minor_formatter(NullFormatter())


def _legend(ax, **kwargs):
    """A legend only when something is labelled (an empty table draws no markers, and
    matplotlib warns about a legend without artists)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def accuracy_vs_robustness(frame, *, title: str = ""):
    """Adversarial against clean test accuracy per method: ours (filled) and the paper's
    (hollow), one marker per table row (``rll.analysis.frames.table_frame``)."""
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    labels = [f"{m} {lab}" if frame[("", "model")].nunique() > 1 else lab
              for m, lab in zip(frame[("", "model")], frame[("", "method")])]
    if ("", "dropout") in frame.columns:
        labels = [f"{lab}{' +dropout' if d else ''}" for lab, d in zip(labels, frame[("", "dropout")])]
    x, y = _ours(frame, "test_acc"), _ours(frame, "adv_test_acc")
    ex, ey = _spread(frame, "test_acc"), _spread(frame, "adv_test_acc")
    px, py = _paper(frame, "test_acc"), _paper(frame, "adv_test_acc")
    colors = plt.cm.tab20(np.arange(len(labels)) % 20)
    for i, lab in enumerate(labels):
        if not np.isnan(x[i]):
            ax.errorbar(x[i], y[i], xerr=None if np.isnan(ex[i]) else ex[i], yerr=None if np.isnan(ey[i]) else ey[i],
                        fmt="o", color=colors[i], label=lab, zorder=3, capsize=2, lw=0.8)
        if not np.isnan(px[i]):
            ax.scatter(px[i], py[i], facecolors="none", edgecolors=colors[i], zorder=2)
            if not np.isnan(x[i]):
                ax.plot([x[i], px[i]], [y[i], py[i]], color=colors[i], lw=0.6, alpha=0.5)
    ax.set_xlabel("clean test accuracy (%)")
    ax.set_ylabel("adversarial test accuracy (%)")
    ax.set_title(title or "accuracy vs robustness")
    ax.text(0.01, 0.01, "filled: ours (bars: ± sd over seeds); hollow: paper", transform=ax.transAxes, fontsize=7,
            color="#57606a")
    if ax.get_legend_handles_labels()[0]:      # beside the axes: never over a point
        ax.legend(fontsize=6, ncol=1, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def lipschitz_vs_robustness(frame, *, title: str = ""):
    """Section 5.2's observation: test local Lipschitz constant (log scale; the released
    estimator on both sides, as the paper's numbers were made) against adversarial test
    accuracy, ours and the paper's."""
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    labelled = []
    for src, marker, fill in (("ours", "o", True), ("paper", "s", False)):
        lip = frame[("test_lipschitz_released", src)].to_numpy(dtype=float)
        adv = frame[("adv_test_acc", src)].to_numpy(dtype=float)
        ok = ~np.isnan(lip) & ~np.isnan(adv) & (lip > 0)
        if not ok.any():
            continue
        if fill:
            el, ea = _spread(frame, "test_lipschitz_released")[ok], _spread(frame, "adv_test_acc")[ok]
            ax.errorbar(lip[ok], adv[ok], xerr=None if np.isnan(el).all() else np.nan_to_num(el),
                        yerr=None if np.isnan(ea).all() else np.nan_to_num(ea), fmt=marker, color="#4c72b0",
                        label="ours (± sd over seeds)", capsize=2, lw=0.8)
        else:
            ax.scatter(lip[ok], adv[ok], marker=marker, label=src, facecolors="none", edgecolors="#dd8452")
        for l, a, lab in zip(lip[ok], adv[ok], frame[("", "method")].to_numpy()[ok]):
            labelled.append((l, a, lab))
    _log_x(ax)
    ax.set_xlabel("test local Lipschitz constant (released estimator)")
    ax.set_ylabel("adversarial test accuracy (%)")
    ax.set_title(title or "smoother models are more robust?")
    _legend(ax)
    fig.tight_layout()
    annotate_apart(ax, labelled)
    return fig


#: Where a point's label may go, in points from the point, tried in this order.
LABEL_OFFSETS = ((3, 3), (3, -9), (-4, 3), (-4, -9), (3, 10), (3, -16), (-4, 10), (-4, -16))


def annotate_apart(ax, points: list[tuple[float, float, str]], *, fontsize: float = 6) -> None:
    """Label each ``(x, y, text)`` at the first of :data:`LABEL_OFFSETS` where the label
    overlaps no label already placed (the last offset tried when none is free), so that
    neighbouring points' labels do not print over each other."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    placed = []
    for x, y, text in points:
        for dx, dy in LABEL_OFFSETS:
            ha = "left" if dx >= 0 else "right"
            label = ax.annotate(text, (x, y), fontsize=fontsize, alpha=0.75, xytext=(dx, dy),
                                textcoords="offset points", ha=ha)
            box = label.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed):
                break
            label.remove()
        else:
            label = ax.annotate(text, (x, y), fontsize=fontsize, alpha=0.75, xytext=LABEL_OFFSETS[-1],
                                textcoords="offset points", ha="right")
            box = label.get_window_extent(renderer)
        placed.append(box)


def generalization_gaps(frame, *, title: str = ""):
    """Section 5.3: clean and adversarial generalization gaps per method, with and without
    dropout when the table has both (ours solid, the paper's hatched)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=False)
    labels = list(frame[("", "method")])
    if ("", "dropout") in frame.columns:
        labels = [f"{lab}\n{'dropout' if d else 'no dropout'}" for lab, d in zip(labels, frame[("", "dropout")])]
    pos = np.arange(len(labels))
    for ax, metric in zip(axes, ("gap", "adv_gap")):
        err = _spread(frame, metric)
        ax.bar(pos - 0.2, np.nan_to_num(_ours(frame, metric)), width=0.4, label="ours (± sd over seeds)",
               color="#4c72b0", yerr=None if np.isnan(err).all() else np.nan_to_num(err), capsize=2,
               error_kw={"lw": 0.8})
        ax.bar(pos + 0.2, np.nan_to_num(_paper(frame, metric)), width=0.4, label="paper",
               color="none", edgecolor="#dd8452", hatch="//")
        ax.set_xticks(pos)
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel(f"{metric.replace('_', ' ')} (train − test, points)")
        ax.axhline(0, color="black", lw=0.5)
    axes[0].legend()
    fig.suptitle(title or "generalization gaps")
    fig.tight_layout()
    return fig


def proof_of_concept(frame, *, title: str = "Table 6: trained with and without the test set"):
    """Table 6 as bars: per dataset, clean and adversarial test accuracy of the runs trained
    with access to the test set, the same setup without it (control) and the paper's; error
    bars: the standard deviation over seeds, where there are several."""
    datasets = list(frame[("", "dataset")])
    columns = (("with test set", "#4c72b0", "±"), ("without (control)", "#dd8452", "± (control)"),
               ("paper", "#8c8c8c", None))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    x = np.arange(len(datasets))
    for ax, metric, name in zip(axes, ("test_acc", "adv_test_acc"), ("clean test accuracy", "adversarial test accuracy")):
        for k, (column, color, spread) in enumerate(columns):
            values = frame[(metric, column)].to_numpy(dtype=float)
            err = frame[(metric, spread)].to_numpy(dtype=float) if (metric, spread) in frame.columns else None
            ax.bar(x + (k - 1) * 0.27, np.nan_to_num(values), width=0.27, color=color, label=column,
                   yerr=None if err is None or np.isnan(err).all() else np.nan_to_num(err), capsize=3)
        ax.set_xticks(x, datasets)
        ax.set_ylim(0, 100)
        ax.set_title(name)
    axes[0].set_ylabel("%")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def row_label(method: str, dropout=0.0) -> str:
    """A table row's short label: the paper's method label, ``+dropout`` when it has dropout."""
    return f"{method} +dropout" if dropout else str(method)


def seed_pointplot(seeds, frame, metric: str = "adv_test_acc", *, label: str | None = None, title: str = ""):
    """One metric per table row: our seeds' mean with the standard deviation over seeds as an
    interval (seaborn point plot, one panel per model), the individual seeds as dots, and the
    paper's value as a hollow diamond.  ``seeds`` is :func:`rll.book.report.seed_frame`, ``frame``
    the table's (:func:`rll.analysis.frames.table_frame`)."""
    import seaborn as sns

    models = list(dict.fromkeys(frame[("", "model")]))
    fig, axes = plt.subplots(1, len(models), figsize=(max(6.0, 4.2 * len(models)), 3.6), squeeze=False,
                             sharey=True)
    dropout = frame[("", "dropout")] if ("", "dropout") in frame.columns else [0.0] * len(frame)
    frame_rows = [row_label(m, d) for m, d in zip(frame[("", "method")], dropout)]
    if len(seeds):
        seeds = seeds.assign(row=[row_label(m, d) for m, d in zip(seeds["method"], seeds["dropout"])])
    for ax, model in zip(axes[0], models):
        mask = (frame[("", "model")] == model).to_numpy()
        rows = frame[mask]
        order = [lab for lab, keep in zip(frame_rows, mask) if keep]
        data = seeds[seeds["model"] == model] if len(seeds) else seeds
        if len(data) and metric in data:
            sns.stripplot(data=data, x="row", y=metric, order=order, ax=ax, color="#4c72b0", alpha=0.35,
                          size=3, jitter=0.15)
            sns.pointplot(data=data, x="row", y=metric, order=order, ax=ax, errorbar="sd", capsize=0.25,
                          color="#4c72b0", linestyle="none", markers="o", label="ours (mean ± sd over seeds)")
        paper = rows[(metric, "paper")].to_numpy(dtype=float) if (metric, "paper") in rows.columns else []
        if len(paper) and not np.isnan(paper).all():
            ax.scatter(np.arange(len(order)), paper, marker="D", facecolors="none", edgecolors="#dd8452",
                       zorder=4, label="paper")
        ax.set_xticks(np.arange(len(order)), order, rotation=60, ha="right", fontsize=7)
        ax.set(xlabel="", ylabel=label or metric.replace("_", " "), title=model)
    _legend(axes[0][-1], fontsize=7, loc="best")
    fig.suptitle(title or f"{label or metric}: per seed, mean ± sd, and the paper's value")
    fig.tight_layout()
    return fig


def per_class_heatmap(frame, *, title: str = "per-class adversarial accuracy (%)"):
    """Per-class accuracy of every row (:func:`rll.analysis.attack_strength.per_class_frame`): rows =
    (model, method), columns = classes, each cell annotated; the worst class of a row outlined."""
    meta = {"model", "method", "worst class", "seeds"}
    classes = [c for c in frame.columns if c not in meta]
    values = frame[classes].to_numpy(dtype=float)
    labels = [f"{m} {lab}" for m, lab in zip(frame["model"], frame["method"])]
    fig, ax = plt.subplots(figsize=(0.55 * len(classes) + 2.8, 0.32 * len(labels) + 1.4))
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for i, row in enumerate(values):
        worst = int(np.nanargmin(row)) if not np.isnan(row).all() else None
        for j, v in enumerate(row):
            if not np.isnan(v):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6,
                        color="white" if v < 60 else "black", fontweight="bold" if j == worst else "normal")
        if worst is not None:
            ax.add_patch(plt.Rectangle((worst - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.2))
    ax.set_xticks(range(len(classes)), classes, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def delta_heatmap(frame, *, labels: dict | None = None, title: str = ""):
    """Δ = ours − paper for every row and metric of a table frame as a seaborn heatmap,
    annotated with Δ and coloured on a per-metric scale (each column divided by its largest
    |Δ|), blue where ours is lower, red where higher."""
    import pandas as pd
    import seaborn as sns

    metrics = [top for top, sub in frame.columns if top and sub == "Δ"]
    names = [f"{m} {lab}" if frame[("", "model")].nunique() > 1 else str(lab)
             for m, lab in zip(frame[("", "model")], frame[("", "method")])]
    if ("", "dropout") in frame.columns:
        names = [n + (f" +dropout" if d else "") for n, d in zip(names, frame[("", "dropout")])]
    delta = pd.DataFrame({(labels or {}).get(m, m.replace("_", " ")): frame[(m, "Δ")].to_numpy(dtype=float)
                          for m in metrics}, index=names)
    if delta.notna().to_numpy().any():   # a metric without a paper counterpart has no Δ: no empty column
        delta = delta.loc[:, delta.notna().any()]
    metrics = list(delta.columns)
    scale = delta.abs().max().replace(0, np.nan)
    fig, ax = plt.subplots(figsize=(1.3 * max(len(metrics), 1) + 2.5, 0.28 * len(names) + 1.6))
    if delta.notna().to_numpy().any():
        sns.heatmap(delta / scale, annot=delta, fmt=".1f", cmap="RdBu_r", vmin=-1, vmax=1, ax=ax,
                    cbar_kws={"label": "Δ / largest |Δ| of the column"}, annot_kws={"fontsize": 7},
                    linewidths=0.5, linecolor="white")
    else:
        ax.text(0.5, 0.5, "no stored runs yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title(title or "Δ = ours − paper (annotated; colour per column)")
    ax.tick_params(labelsize=7)
    ax.set_xticklabels(ax.get_xticklabels(), rotation=30, ha="right")
    fig.tight_layout()
    return fig


def attack_strength(frame, *, title: str = "other attacks against PGD-10"):
    """Every model's accuracy under the multi-targeted attack (per-example worst) and AutoAttack
    against its PGD-10 accuracy on the same images (:func:`rll.analysis.attack_strength.attack_strength_frame`);
    below the diagonal an attack is stronger than PGD-10; flagged models circled."""
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    series = [(("MT", "per-example worst"), ("PGD-10", "acc"), "MT (per-example worst)", "o")]
    for label in ("AA (APGD-CE + APGD-DLR)", "AA standard"):
        series.append(((label, "acc"), (label, "PGD-10 same images"), label, "s" if "APGD" in label else "^"))
    for (ycol, xcol, name, marker) in series:
        if ycol not in frame.columns or xcol not in frame.columns:
            continue
        xs, ys = frame[xcol].to_numpy(dtype=float), frame[ycol].to_numpy(dtype=float)
        ok = ~np.isnan(xs) & ~np.isnan(ys)
        ax.scatter(xs[ok], ys[ok], marker=marker, label=name, alpha=0.8)
    flagged = frame[("", "flags")] != ""
    if flagged.any():
        ax.scatter(frame.loc[flagged, ("PGD-10", "acc")], frame.loc[flagged, ("PGD-10", "acc")], s=160,
                   facecolors="none", edgecolors="red", label="flagged (see table)")
    lo = np.nanmin(frame[("PGD-10", "acc")].to_numpy(dtype=float)) if len(frame) else 0
    ax.plot([min(lo, 100) - 5, 100], [min(lo, 100) - 5, 100], color="grey", linewidth=0.8)
    ax.set_xlabel("PGD-10 accuracy on the same images (%)")
    ax.set_ylabel("accuracy under the other attack (%)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def learning_curves(records: list[dict], *, model: str = "cnn2", title: str | None = None):
    """Clean and PGD-10 test accuracy and the released-estimator Lipschitz constant after every
    epoch (the records' learning curves, :func:`rll.analysis.budget.curve`) against training images seen:
    one colour per budget, one marker per method; the paper's final numbers for ``model``
    (Table 2) dotted, labelled."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.6), layout="constrained")
    metrics = (("test_acc", "clean test accuracy (%)", "test_acc"),
               ("adv_test_acc", "PGD-10 accuracy (%, curve subset)", "adv_test_acc"),
               ("test_lipschitz_released", "Lipschitz (released estimator)", "test_lipschitz"))
    markers = {"Natural": "o", "AT": "s"}
    colors: dict = {}
    methods: set = set()
    for r in records:
        c = r["config"]
        points = budget.curve(r)
        if not points:
            continue
        label = method_label(c["method"], row_params(c["method"], c["params"]))
        methods.add(label)
        n = c["train_size"] or budget.TRAIN_SPLIT_SIZE.get(c["dataset"], 1)
        key = f"{n / 1000:g}k × {c['epochs']}"
        color = colors.setdefault(key, plt.get_cmap("tab20")(len(colors) % 20))
        seen = [p["epoch"] * n for p in points]
        for ax, (metric, _, _) in zip(axes, metrics):
            ax.plot(seen, [p[metric] for p in points], marker=markers.get(label, "^"), markersize=4, color=color,
                    alpha=0.85, label=f"{label}, {key}")
    paper = {r["label"]: r for r in paper_reference()["table2"]["rows"] if r["model"] == model}
    for ax, (_, name, paper_key) in zip(axes, metrics):
        for label in sorted(methods):
            if label in paper:
                value = paper[label][paper_key]
                ax.axhline(value, color="black", linestyle=":", linewidth=0.8)
                ax.annotate(f"paper {label}", (1.0, value), xycoords=("axes fraction", "data"), fontsize=6,
                            ha="right", va="bottom")
        _log_x(ax)
        ax.set_xlabel("training images seen")
        ax.set_title(name, fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:   # outside the axes, below them: it never covers a curve or the title
        fig.legend(handles, labels, loc="outside lower center", ncol=min(5, len(labels)), fontsize=6, frameon=False)
    title = title or f"learning curves ({model.upper()}, seed 0)"
    fig.suptitle(title + "; dotted: the paper's final number", fontsize=10)
    return fig


#: The panels of :func:`regime_curves`: (curve key, row title, the paper's column).
REGIME_METRICS = (("train_acc", "train acc. (%)", "train_acc"),
                  ("test_acc", "test acc. (%)", "test_acc"),
                  ("adv_test_acc", "PGD-10 acc. (%)", "adv_test_acc"),
                  ("test_lipschitz_released", "Lipschitz", "test_lipschitz"),
                  ("loss", "training loss", None))


def regime_curves(runs: list[tuple[str, dict]], *, title: str = ""):
    """Small multiples of learning curves: one column per run (``(label, record)``), one row per
    quantity (:data:`REGIME_METRICS`), epochs on the x axis, the run's learning-rate decays as
    vertical lines and the paper's final number for the row as a labelled dashed line; the y
    axis shared along each row.  A released-fidelity loss (summed over the batch) is shown per
    example."""
    cols = max(1, len(runs))
    fig, axes = plt.subplots(len(REGIME_METRICS), cols, figsize=(2.3 * cols + 0.8, 1.6 * len(REGIME_METRICS) + 0.6),
                             sharex="col", sharey="row", squeeze=False)
    for j, (label, record) in enumerate(runs):
        c = record["config"]
        points = budget.curve(record)
        per = c.get("batch_size", 1) if c.get("fidelity") == "released" else 1
        paper = paper_row(c["dataset"], c["model"], c["method"], c["params"], c.get("dropout", 0.0), "pgd")
        epochs = [p["epoch"] for p in points]
        decays = [p["epoch"] - 1 for q, p in zip(points, points[1:]) if p["lr"] < q["lr"]]
        for i, (key, name, paper_key) in enumerate(REGIME_METRICS):
            ax = axes[i][j]
            values = [p.get(key, np.nan) / (per if key == "loss" else 1) for p in points]
            ax.plot(epochs, values, marker="o", markersize=2.5, linewidth=1.2, color="C0")
            for d in decays:
                ax.axvline(d + 0.5, color="grey", linewidth=0.7, linestyle="-.")
            if paper is not None and paper_key and paper.get(paper_key) is not None:
                ax.axhline(paper[paper_key], color="black", linewidth=0.8, linestyle="--")
                ax.annotate("paper", (0.02, paper[paper_key]), xycoords=("axes fraction", "data"), fontsize=6,
                            va="bottom")
            ax.tick_params(labelsize=6)
            if j == 0:
                ax.set_ylabel(name, fontsize=7)
            if i == 0:
                ax.set_title(label, fontsize=8)
            if i == len(REGIME_METRICS) - 1:
                ax.set_xlabel("epoch", fontsize=7)
            if key == "loss":
                ax.set_yscale("log")
    fig.suptitle(title or ("learning curves: training accuracy on 10 000 fixed training images, PGD-10 on 1 000 test "
                           "images, Lipschitz by the released estimator;\ndash-dotted: a learning-rate decay; dashed: the "
                           "paper's final number"), fontsize=8)
    fig.tight_layout()
    return fig
