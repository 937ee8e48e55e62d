"""What a table page (Tables 2–4) shows when the store has none of its runs: one box saying what
is missing, the command that fills it, the data it needs and what it costs — and the paper's
table for reference — instead of empty grids and figures with only the paper's points.
"""
from __future__ import annotations

import html
import re

from rll import data as rdata
from rll.book.report import HTML, metric_label
from rll.experiments.tables import method_label, row_params

#: What training one of the table's models costs, where it was measured (``benchmarks/``).
COST = {
    "mnist": "CNN1/CNN2 on the CPU: minutes per natural epoch, tens of minutes per AT or TRADES epoch on all "
             "60 000 images (benchmarks/README.md, 'Precision' and 'Training')",
    "cifar10": "WRN-40-10 needs a GPU: on this CPU a WRN-16-4 trains at a few images per second under AT "
               "(benchmarks/README.md, 'Training'), and WRN-40-10 is about 80× the arithmetic of WRN-16-2; on a "
               "GPU it is not measured yet (benchmarks/gpu_table2.sh is the prepared script)",
    "svhn": "WRN-40-10 needs a GPU (as CIFAR-10); not measured here",
    "resimagenet": "ResNet50 on 64×64 Restricted ImageNet needs a GPU; not measured here",
}


def has_runs(runs: list[tuple]) -> bool:
    """Whether any configuration of a page (``[(config, record or None)]``) has a stored record."""
    return any(record is not None for _, record in runs)


def data_status(dataset: str, splits=("train", "test"), root=None) -> list[str]:
    """One line per split: whether its files are here (checked as :func:`rll.data.load_dataset`
    reads them, without the md5) and, if not, the loader's message."""
    out = []
    for split in splits:
        try:
            rdata.load_dataset(dataset, split, root=root, verify=False, download=False)
            out.append(f"{dataset} {split}: present")
        except (rdata.DataError, ValueError, OSError) as err:
            files = sorted({m.split("/")[-1] for m in re.findall(r"(/[^\s;,()]+)", str(err).split(" Fix:")[0])
                            if "." in m.split("/")[-1]})
            out.append(f"{dataset} {split}: missing" + (f" ({', '.join(files)})" if files else ""))
    return out


def sweep_command(table: str, dataset: str, configs: list, attacks=("pgd", "mt", "aa-apgd", "aa")) -> str:
    """The command that trains and evaluates what ``configs`` lack (one line, copyable)."""
    models = sorted({c.model for c in configs})
    seeds = sorted({c.seed for c in configs})
    return (f"python -m rll sweep {table} --dataset {dataset} --models {' '.join(models)} --seeds "
            f"{' '.join(map(str, seeds))} --attacks {' '.join(attacks)} --eval-plan table --results-dir results/runs")


def empty_box(table: str, dataset: str, configs: list, *, data_root=None) -> HTML:
    """The one box of a table page without stored runs: what is missing, the command, the data
    and the cost."""
    models = sorted({c.model for c in configs})
    methods = sorted({method_label(c.method, row_params(c.method, c.params)) for c in configs})
    seeds = sorted({c.seed for c in configs})
    data = data_status(dataset, root=data_root)
    items = [
        f"<b>Missing:</b> all {len(configs)} configurations ({', '.join(models)} × {len(methods)} methods × "
        f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}); no stored run of {table[:5].title()} "
        f"{table[5:]} on {dataset}.",
        f"<b>The command that fills it:</b> <code>{html.escape(sweep_command(table, dataset, configs))}</code>, or "
        f"this page with <code>-p train_missing True</code> (papermill).",
        "<b>The data it needs:</b> " + "; ".join(html.escape(d) for d in data) + ".",
        f"<b>What it costs:</b> {html.escape(COST.get(dataset, 'not measured'))}.",
    ]
    body = "".join(f"<li>{i}</li>" for i in items)
    return HTML(f'<div class="admonition note rll-empty"><p class="admonition-title">Not run yet</p><ul>{body}</ul>'
                "<p>Below: the paper's table, for reference.</p></div>",
                text="Not run yet: " + "; ".join(data))


def paper_table(table_frame):
    """The paper's columns of a table frame (:func:`rll.analysis.frames.table_frame`) alone."""
    import pandas as pd

    heads = [c for c in table_frame.columns if c[0] == "" and c[1] in ("model", "method", "dropout")]
    metrics = [c for c in table_frame.columns if c[1] == "paper"]
    out = pd.DataFrame({c[1]: table_frame[c] for c in heads})
    for top, _ in metrics:
        out[top] = table_frame[(top, "paper")]
    out = out.dropna(axis=1, how="all")
    return out.rename(columns={c: metric_label(c) for c in out.columns if c not in ("model", "method", "dropout")})


__all__ = ["COST", "has_runs", "data_status", "sweep_command", "empty_box", "paper_table", "not_yet"]


def not_yet() -> HTML:
    """What a section of a table page without stored runs shows in place of its table or figure."""
    return HTML('<p class="rll-not-yet"><i>Shown once this table\'s runs are stored (the box above says how).</i></p>',
                text="Shown once this table's runs are stored.")
