"""How the book shows results: compact tables that fit the page, verdict badges, downloads of
the full frames, and the numbers quoted in prose (glued, so prose and store cannot drift).

Nothing here computes a result; every function takes frames or records built by
:mod:`rll.experiments` / :mod:`rll.analysis.claims` and only lays them out.  The table layout is driven
by the frame's metric columns (``(metric, "ours" | "±" | "paper" | "Δ")``) and
:data:`METRIC_LABELS`, so a metric added to :func:`rll.analysis.frames.table_frame` shows up here
without changes (labelled by its name until it gets an entry).
"""
from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass

import numpy as np

from rll.analysis.claims import lipschitz_correlation
from rll.analysis.evidence import LIPSCHITZ
from rll.experiments.tables import _params_of, method_label

#: Column headings of the compact tables, per metric of :func:`rll.analysis.frames.table_frame` (and
#: the proof-of-concept frame); a metric without an entry is shown under its own name.
METRIC_LABELS = {
    "train_acc": "train acc.",
    "adv_train_acc": "adv. train acc.",
    "test_acc": "test acc.",
    "adv_test_acc": "adv. test acc.",
    "test_lipschitz": "test Lipschitz (Eq. 3)",
    "test_lipschitz_released": "test Lipschitz (released estimator)",
    "gap": "gap",
    "adv_gap": "adv. gap",
}
#: What prose says in place of a number the store does not have yet.
NO_RUN = "no stored run yet"
#: Sub-columns of a metric in the frames of :mod:`rll.experiments`.
PARTS = ("ours", "±", "paper", "Δ")
#: Verdict → badge colour (background, text).
BADGE_COLOURS = {"holds": ("#1a7f37", "#ffffff"), "does not hold": ("#cf222e", "#ffffff"),
                 "mixed": ("#bf8700", "#ffffff"), "not yet run": ("#6e7781", "#ffffff"),
                 "inconclusive at this budget": ("#8250df", "#ffffff"),
                 "inconclusive (within seed spread)": ("#8250df", "#ffffff"),
                 "inconclusive — outside the paper's regime": ("#8250df", "#ffffff"),
                 "depends on the reading": ("#bf8700", "#ffffff")}


def metric_label(metric: str) -> str:
    """The heading of ``metric`` (:data:`METRIC_LABELS`, else the name with spaces)."""
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def metric_columns(frame, ours: str = "ours") -> list[str]:
    """The metrics of a two-level table frame, in column order: every top-level group that has
    an ``ours`` sub-column."""
    seen: list[str] = []
    for top, sub in frame.columns:
        if top and sub == ours and top not in seen:
            seen.append(top)
    return seen


def head_columns(frame) -> list[tuple]:
    """The row-describing columns of a two-level frame (top level ``""``)."""
    return [c for c in frame.columns if c[0] == ""]


def _num(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v


def format_cell(ours, spread=math.nan, paper=math.nan, *, precision: int = 2) -> str:
    """One metric of one row as ``ours ± sd (paper)``: ``—`` for a value we do not have, no
    ``±`` for a single seed, no parentheses when the paper has no value."""
    ours, spread, paper = _num(ours), _num(spread), _num(paper)
    text = "—" if math.isnan(ours) else f"{ours:.{precision}f}"
    if not math.isnan(ours) and not math.isnan(spread):
        text += f" ± {spread:.{precision}f}"
    if not math.isnan(paper):
        text += f" ({paper:.{precision}f})"
    return text


def compact_frame(frame, *, precision: int = 2, ours: str = "ours", extra: dict | None = None):
    """A two-level table frame as one cell per metric, ``ours ± sd (paper)``: a DataFrame with
    the row columns (model, method, …) and one column per metric headed by
    :func:`metric_label`.  ``ours`` names the sub-column holding our value (``"with test set"``
    for the proof of concept); ``extra`` maps further value sub-columns to their spread
    (e.g. ``{"without (control)": "± (control)"}``), each shown as its own column
    ``label, value-name``; the ``ours`` column is headed ``label, ours`` unless ``ours`` is
    the default, so every value column says whose value it is."""
    import pandas as pd

    out = pd.DataFrame({sub: frame[(top, sub)] for top, sub in head_columns(frame)})
    for metric in metric_columns(frame, ours):
        get = (lambda part: frame[(metric, part)] if (metric, part) in frame.columns
               else pd.Series(np.nan, index=frame.index))
        out[_ours_label(metric, ours)] = [format_cell(o, s, p, precision=precision)
                                     for o, s, p in zip(get(ours), get("±"), get("paper"))]
        for value, spread in (extra or {}).items():
            out[f"{metric_label(metric)}, {value}"] = [format_cell(o, s, precision=precision)
                                                        for o, s in zip(get(value), get(spread))]
    return out


def _ours_label(metric: str, ours: str) -> str:
    """The header of :func:`compact_frame`'s column holding our value of ``metric``."""
    return metric_label(metric) if ours == "ours" else f"{metric_label(metric)}, {ours}"


def delta_colours(frame, *, alpha: float = 0.55, **layout):
    """Background colours of :func:`compact_frame`'s metric cells from Δ = ours − paper: blue
    where ours is below the paper, red where above, the shade scaled per metric by the largest
    |Δ| of that column (no colour where Δ is unknown).  A DataFrame of CSS strings shaped like
    :func:`compact_frame`."""
    import pandas as pd

    compact = compact_frame(frame, **layout)
    css = pd.DataFrame("", index=compact.index, columns=compact.columns)
    for metric in metric_columns(frame, layout.get("ours", "ours")):
        if (metric, "Δ") not in frame.columns:
            continue
        delta = frame[(metric, "Δ")].astype(float).to_numpy()
        scale = np.nanmax(np.abs(delta)) if np.isfinite(delta).any() else 0.0
        for i, d in enumerate(delta):
            if not np.isfinite(d) or scale == 0:
                continue
            t = min(abs(d) / scale, 1.0) * alpha
            rgb = (207, 34, 46) if d > 0 else (9, 105, 218)
            css.iloc[i, css.columns.get_loc(_ours_label(metric, layout.get("ours", "ours")))] = \
                f"background-color: rgba({rgb[0]}, {rgb[1]}, {rgb[2]}, {t:.2f})"
    return css


def compact_table(frame, *, precision: int = 2, caption: str | None = None, **layout):
    """The page form of a table frame (:func:`rll.analysis.frames.table_frame`,
    :func:`~rll.analysis.frames.proof_of_concept_frame`): one cell per metric as
    ``ours ± sd (paper)``, coloured by Δ (:func:`delta_colours`), narrow enough for the page.
    The full frame is :func:`download_link`'s; ``layout`` as for :func:`compact_frame`."""
    compact = compact_frame(frame, precision=precision, **layout)
    labels = [c for c in compact.columns if c not in {sub for _, sub in head_columns(frame)}]
    styler = compact.style.apply(lambda _: delta_colours(frame, **layout), axis=None)
    return narrow_style(styler, two_line=labels, caption=caption)


def narrow_style(styler, *, two_line=(), wrap=(), wrap_min_width: str = "8em", caption: str | None = None):
    """The look of every table on the book's pages, so that each fits the page at 1280 px: no
    index, small type, tight cells that do not wrap, headers that do; the ``two_line`` columns'
    cells ``ours ± sd (paper)`` split over lines (:func:`_two_lines`).  Tables so styled carry
    the class ``rll-compact``, which the browser test checks for sideways scrolling.  The
    ``wrap`` columns (long text) wrap within their cells, each at least ``wrap_min_width`` wide
    (narrower for a table of many short wrapping columns)."""
    styler = (styler.hide(axis="index").format(_two_lines, subset=list(two_line))
              .set_table_attributes('class="rll-compact"')
              .set_table_styles([{"selector": "th, td", "props": "padding: 0.15em 0.25em; font-size: 0.8em; line-height: 1.25;"},
                                 {"selector": "td", "props": "text-align: right; white-space: nowrap;"},
                                 {"selector": "th", "props": "text-align: center; white-space: normal; "
                                                             "vertical-align: bottom;"}]))
    if wrap:
        styler = styler.set_properties(subset=list(wrap), **{"white-space": "normal !important", "min-width": wrap_min_width,
                                                             "max-width": "15em",
                                                             "text-align": "left"})
    return styler.set_caption(caption) if caption else styler


def _two_lines(text: str) -> str:
    """HTML of a compact cell, narrow enough for many metrics side by side: ours on the first
    line, ``± sd`` (if any) and ``(paper)`` small beneath it, one per line."""
    text = str(text)
    main, sep, paper = text.partition(" (")
    ours, pm, spread = main.partition(" ± ")
    lines = [html.escape(ours)]
    small = 'style="font-size:0.85em;color:#57606a;"'
    if pm:
        lines.append(f'<span class="rll-sd" {small}>± {html.escape(spread)}</span>')
    if sep:
        lines.append(f'<span class="rll-paper" {small}>({html.escape(paper)}</span>')
    return "<br>".join(lines)


def table_block(frame, filename: str, *, caption: str | None = None, **layout) -> "HTML":
    """A table page's main table: :func:`compact_table`, the sentence on how to read it
    (:func:`delta_legend`) and the full frame as a download (:func:`download_link`)."""
    table = compact_table(frame, caption=caption, **layout).to_html()
    legend = f'<p class="rll-legend" style="font-size:0.8em;color:#57606a;">{html.escape(delta_legend())}</p>'
    link = download_link(frame, filename)
    return HTML(f'<div class="rll-table-block">{table}{legend}{link.html}</div>',
                text=compact_frame(frame, **layout).to_string(index=False))


def delta_legend() -> str:
    """The sentence under a compact table saying how to read it."""
    return ("Each cell: ours (mean over seeds), beneath it ± the standard deviation over seeds and (the paper's value). "
            "Colour: Δ = ours − paper, blue where ours is lower, red where higher, "
            "shaded per column by its largest |Δ|.")


@dataclass
class HTML:
    """Raw HTML for a notebook output (``_repr_html_``), with a plain-text fallback."""
    html: str
    text: str = ""

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text or self.html


def download_link(frame, filename: str, *, label: str | None = None) -> HTML:
    """A link that downloads ``frame`` in full (every column, full precision) as CSV; the data
    travel inside the link, so the static book needs no extra file."""
    flat = frame.copy()
    if getattr(flat.columns, "nlevels", 1) > 1:
        flat.columns = [" ".join(str(p) for p in col if str(p)).strip() for col in flat.columns]
    data = base64.b64encode(flat.to_csv(index=False).encode()).decode()
    label = label or f"Download the full table ({filename}: every column, ours, ±, paper and Δ)"
    return HTML(f'<p class="rll-download"><a download="{html.escape(filename)}" '
                f'href="data:text/csv;base64,{data}">⬇ {html.escape(label)}</a></p>', text=label)


def details(summary: str, content) -> HTML:
    """``content`` (anything with ``_repr_html_``, e.g. a pandas Styler) folded under ``summary``."""
    inner = content._repr_html_() if hasattr(content, "_repr_html_") else html.escape(str(content))
    return HTML(f"<details><summary>{html.escape(summary)}</summary>{inner}</details>", text=summary)


def bullets(items) -> HTML:
    """A bulleted list (wrapping prose, not a sideways-scrolling text block)."""
    items = [str(i) for i in items]
    return HTML("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>",
                text="\n".join(f"• {i}" for i in items))


def badge(verdict: str) -> str:
    """A coloured verdict badge (HTML span)."""
    bg, fg = BADGE_COLOURS.get(verdict, ("#6e7781", "#ffffff"))
    return (f'<span class="rll-badge" style="background:{bg};color:{fg};border-radius:0.8em;'
            f'padding:0.05em 0.6em;font-size:0.8em;white-space:nowrap;">{html.escape(verdict)}</span>')


def verdicts_html(verdicts) -> HTML:
    """The verdicts page's list: per claim one line — its badge on our runs, its badge on the
    paper's numbers, the claim and its section — with the evidence folded beneath."""
    items = []
    for v in verdicts:
        evidence = "".join(
            f"<p><b>{who}</b> ({badge(verdict)}): {html.escape(text or 'no evidence recorded')}</p>"
            for who, verdict, text in (("Our runs", v.ours, v.ours_evidence),
                                       ("The paper's numbers", v.paper, v.paper_evidence)))
        items.append(
            '<div class="rll-claim" style="margin:0.5em 0;">'
            f'<div>{badge(v.ours)} <span style="font-size:0.75em;color:#57606a;">ours</span> '
            f'{badge(v.paper)} <span style="font-size:0.75em;color:#57606a;">paper</span> '
            f'&nbsp;{html.escape(v.claim)} <span style="color:#57606a;">(§ {html.escape(v.section)})</span></div>'
            f'<details style="margin-left:1.5em;"><summary style="font-size:0.85em;cursor:pointer;">evidence</summary>'
            f'<div style="font-size:0.85em;">{evidence}</div></details></div>')
    text = "\n".join(f"[{v.ours} | paper: {v.paper}] {v.claim} ({v.section})" for v in verdicts)
    return HTML('<div class="rll-verdicts">' + "".join(items) + "</div>", text=text)


def fmt(value, spec: str = ".2f", missing: str = "not yet run") -> str:
    """``value`` formatted for prose, ``missing`` when it is absent or NaN."""
    v = _num(value)
    return missing if value is None or math.isnan(v) else format(v, spec)


def glue_all(values: dict, *, prefix: str = "") -> dict:
    """Glue every ``name: value`` of ``values`` for the page's prose (``{glue:text}`name```),
    without displaying them; returns ``values``.  Outside a Jupyter Book build (papermill,
    JupyterLab) it only stores them in the notebook's outputs, which is harmless."""
    from myst_nb import glue

    for name, value in values.items():
        glue(f"{prefix}{name}", value.item() if isinstance(value, np.generic) else value, display=False)
    return values


def table_numbers(frame) -> dict:
    """The numbers a table page quotes in prose, computed from :func:`rll.analysis.frames.table_frame`:
    rows with runs, the most robust and the smoothest rows (ours and the paper's), the Spearman
    correlation of Lipschitz constant and adversarial accuracy, the paper's Lipschitz constants
    as a multiple of ours (the same estimator), and the mean |Δ| of clean and adversarial test
    accuracy.  Every value is a string ready for prose ("not yet run" when the
    store has none).  The correlation is the verdict's own statistic, per model
    (:func:`rll.analysis.claims.lipschitz_correlation`)."""
    names = [f"{m} {lab}" if frame[("", "model")].nunique() > 1 else str(lab)
             for m, lab in zip(frame[("", "model")], frame[("", "method")])]
    if ("", "dropout") in frame.columns:
        names = [n + (f" (dropout {d:g})" if d else "") for n, d in zip(names, frame[("", "dropout")])]
    out = {"rows": str(len(frame)),
           "rows_run": str(int((frame[("", "runs")] > 0).sum())) if ("", "runs") in frame.columns else "0",
           "seeds_max": str(int(frame[("", "runs")].max())) if ("", "runs") in frame.columns and len(frame) else "0"}
    # the paper's Lipschitz numbers are the released estimator's: compare like with like
    lipschitz = "test_lipschitz_released" if ("test_lipschitz_released", "ours") in frame.columns else "test_lipschitz"
    for src in ("ours", "paper"):
        adv = frame[("adv_test_acc", src)].astype(float).to_numpy()
        lip = frame[(lipschitz, src)].astype(float).to_numpy()
        ok = np.isfinite(adv)
        out[f"most_robust_{src}"] = (f"{names[int(np.nanargmax(adv))]} at {np.nanmax(adv):.2f}%" if ok.any()
                                     else NO_RUN)
        okl = np.isfinite(lip) & (lip > 0)
        if okl.any():
            i = int(np.flatnonzero(okl)[np.argmin(lip[okl])])
            out[f"smoothest_{src}"] = f"{names[i]} at {lip[i]:.2f}"
        else:
            out[f"smoothest_{src}"] = NO_RUN
        out[f"spearman_{src}"] = _correlation_text(frame, lip, adv)
    ours_lip, paper_lip = (frame[(lipschitz, src)].astype(float).to_numpy() for src in ("ours", "paper"))
    both = np.isfinite(ours_lip) & np.isfinite(paper_lip) & (ours_lip > 0)
    ratio = paper_lip[both] / ours_lip[both]
    out["lipschitz_paper_over_ours"] = (f"{np.median(ratio):.1f}× ours (median over {both.sum()} rows; "
                                        f"{ratio.min():.1f}× to {ratio.max():.1f}×)" if both.any() else NO_RUN)
    out["natural_beside_paper"] = _natural_beside_paper(frame, names, lipschitz)
    for metric in ("test_acc", "adv_test_acc"):
        if (metric, "Δ") in frame.columns:
            d = frame[(metric, "Δ")].astype(float).to_numpy()
            out[f"mean_abs_delta_{metric}"] = (f"{np.nanmean(np.abs(d)):.2f} points" if np.isfinite(d).any()
                                               else NO_RUN)
    return out


def _natural_beside_paper(frame, names, lipschitz) -> str:
    """Each natural row's PGD-10 accuracy beside the paper's, with its Lipschitz constant beside
    the paper's: a natural model far smoother than the paper's is far more robust than it."""
    parts = []
    for i, method in enumerate(frame[("", "method")]):
        if method != "Natural":
            continue
        adv, adv_p = frame[("adv_test_acc", "ours")].iloc[i], frame[("adv_test_acc", "paper")].iloc[i]
        lip, lip_p = frame[(lipschitz, "ours")].iloc[i], frame[(lipschitz, "paper")].iloc[i]
        if not (np.isfinite(adv) and np.isfinite(adv_p) and np.isfinite(lip) and np.isfinite(lip_p)) or lip <= 0:
            continue
        parts.append(f"{names[i]}: PGD-10 accuracy {adv:.2f} % against the paper's {adv_p:.2f} %, with a Lipschitz "
                     f"constant of {lip:.2f} against the paper's {lip_p:.2f} ({lip_p / lip:.1f}× ours)")
    return "; ".join(parts) if parts else NO_RUN


def _correlation_text(frame, lipschitz, adv) -> str:
    """Spearman ρ(Lipschitz, adversarial accuracy) per model of a table frame, by the claim's
    own function: "CNN1 −0.28 (10 rows), CNN2 −0.24 (10 rows)"."""
    dropout = frame[("", "dropout")] if ("", "dropout") in frame.columns else [0.0] * len(frame)
    rows = [{"dataset": "", "model": m, "dropout": d, LIPSCHITZ: float(lip), "adv_test_acc": float(a)}
            for m, d, lip, a in zip(frame[("", "model")], dropout, lipschitz, adv)]
    by_block = lipschitz_correlation(rows)
    if not by_block:
        return "not defined (fewer than four rows of a model)"
    return ", ".join(f"{model.upper()} {rho:+.2f} ({n} rows)" for (_, model), (rho, n) in sorted(by_block.items()))


def seed_frame(runs: list[tuple]):
    """One row per stored record of ``[(config, record or None), ...]`` (as
    :func:`rll.experiments.sweep.collect_runs` returns): model, the paper's method label, dropout, seed
    and every metric — the per-seed values behind a table's means, for figures with intervals."""
    import pandas as pd


    rows = []
    for config, record in runs:
        if record is None:
            continue
        rows.append({"model": config.model, "method": method_label(config.method, _params_of(config)),
                     "dropout": config.dropout, "seed": config.seed, **record["metrics"]})
    return pd.DataFrame(rows, columns=["model", "method", "dropout", "seed"] + (
        list(rows[0])[4:] if rows else []))


def separation_numbers(records: list[dict]) -> dict:
    """The numbers the separation page quotes, from its records (the first with the original
    labels, and a random-label one if present): dataset, ε, the train–train and test–train
    minima and their ratios to ε, and the random-label minimum.  Strings ready for prose."""
    original = next((r for r in records if not r["random_labels"]), None)
    random = next((r for r in records if r["random_labels"]), None)
    if original is None:
        return {k: NO_RUN for k in ("dataset", "eps", "train_min", "train_ratio", "test_min", "test_ratio",
                                    "random_min")}
    eps = original["eps"]
    test = original.get("test_train_min")
    return {"dataset": original["dataset"], "eps": f"{eps:g}",
            "train_min": f"{original['train_train_min']:.3f}",
            "train_ratio": f"{original['train_train_min'] / eps:.1f}",
            "test_min": f"{test:.3f}" if test is not None else "not measured (no test split)",
            "test_ratio": f"{test / eps:.1f}" if test is not None else "—",
            "random_min": f"{random['train_train_min']:.3f}" if random else "not measured (random_labels=False)"}


def proof_of_concept_numbers(frame) -> dict:
    """The numbers the proof-of-concept page quotes (:func:`rll.analysis.frames.proof_of_concept_frame`):
    the lowest adversarial accuracy among the paper's rows and among ours with the test set."""
    paper = frame[("adv_test_acc", "paper")].astype(float)
    ours = frame[("adv_test_acc", "with test set")].astype(float)
    return {"paper_min_adv": fmt(paper.min() if paper.notna().any() else np.nan),
            "ours_min_adv": fmt(ours.min() if ours.notna().any() else np.nan, missing=NO_RUN)}


PAGE_COLUMNS = {"clean": "paper clean", "PGD-10": "paper PGD-10", "Lipschitz (released)": "paper Lipschitz"}


def page_frame(frame):
    """:func:`budget_frame` narrow enough for the page: the budget (images × epochs, the epochs
    after which the learning rate decays), clean, PGD-10 and released-estimator Lipschitz each
    as ``ours (paper)``, the Eq. 3 estimate, convergence as yes/no and the seconds as
    ``train / evaluation``.  Why each run counts as converged is :func:`convergence_notes`'."""
    import pandas as pd

    out = pd.DataFrame({
        "images × epochs": [f"{n:,} × {e}" for n, e in zip(frame["train images"], frame["epochs"])],
        "decays after": [", ".join(map(str, m)) or "—" for m in frame["milestones"]],
        "method": frame["method"]})
    for ours, paper in PAGE_COLUMNS.items():
        out[f"{ours} (paper)"] = [format_cell(o, paper=p) for o, p in zip(frame[ours], frame[paper])]
    out["Lipschitz (Eq. 3)"] = [fmt(v, missing="") for v in frame["Lipschitz (Eq. 3)"]]
    out["converged"] = ["yes" if ok else "no" if ok is not None else "—" for ok in frame["converged"]]
    out["train / eval s"] = [f"{fmt(t, '.0f', '—')} / {fmt(e, '.0f', '—')}"
                             for t, e in zip(frame["train s"], frame["eval s"])]
    return out
