"""A table page (Tables 2–4), computed once by :func:`check_and_build` and shown section by
section: its parameters checked, its runs read from the store (or trained), the table frame, the
numbers its prose quotes, each row's regime and convergence, the other attack's records — and,
when the store has none of its runs, one box saying what is missing, the command that fills it,
the data it needs and what it costs, with the paper's table for reference, instead of empty
grids and figures with only the paper's points.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass

import matplotlib.pyplot as plt

from rll import data as rdata
from rll.analysis import attack_strength
from rll.analysis.budget import FLAT_ADV, FLAT_CLEAN, TRAINED_BARS
from rll.analysis.evidence import convergence_lines, page_records, regime_lines
from rll.analysis.frames import (
    attack_comparison_frame,
    attack_runs,
    provenance_lines,
    style_table,
    table_frame,
)
from rll.analysis.regime import FLAT_WINDOW
from rll.book import plots
from rll.book.parameters import check_table_params
from rll.book.report import (
    HTML,
    METRIC_LABELS,
    metric_label,
    narrow_style,
    seed_frame,
    table_block,
    table_numbers,
)
from rll.experiments.sweep import collect_runs
from rll.experiments.tables import (
    TABLE_BUDGETS,
    TABLE_CURVE_IMAGES,
    TABLE_EVAL_PLAN,
    method_label,
    row_params,
    table_budget,
)
from rll.store import ResultsStore, results_folder

#: How a figure's title names each dataset.
DATASET_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR-10", "svhn": "SVHN", "resimagenet": "Restricted ImageNet"}
#: What the regime and convergence lists say when the store has no table run of the dataset.
NO_TABLE_RUN = "no table run stored yet"

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
    """The command that trains and evaluates what ``configs`` lack (one line, copyable): at the
    dataset's table budget when it has one, bf16 where it is allowed (``--precision auto``)."""
    models = sorted({c.model for c in configs})
    seeds = sorted({c.seed for c in configs})
    budget = " --table-budget" if dataset in TABLE_BUDGETS else ""
    return (f"python -m rll sweep {table} --dataset {dataset} --models {' '.join(models)} --seeds "
            f"{' '.join(map(str, seeds))}{budget} --precision auto --attacks {' '.join(attacks)} --eval-plan table "
            f"--curve-images {TABLE_CURVE_IMAGES} --results-dir results/runs")


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


def not_yet() -> HTML:
    """What a section of a table page without stored runs shows in place of its table or figure."""
    return HTML('<p class="rll-not-yet"><i>Shown once this table\'s runs are stored (the box above says how).</i></p>',
                text="Shown once this table's runs are stored.")


@dataclass
class TablePage:
    """Everything a table page shows, computed by :func:`check_and_build`."""
    table: str                 # table2 | table3 | table4
    dataset: str
    attack: str                # the table's attack; ``other`` is the other one
    configs: list              # the page's configurations, checked
    runs: list                 # [(config, record or None)], one per configuration
    frame: object              # rll.analysis.frames.table_frame of ``runs``
    seeds_frame: object        # one row per stored record (rll.book.report.seed_frame)
    numbers: dict              # the strings the page's prose glues (rll.book.report.table_numbers, the bars)
    regime: list               # one line per stored row: in the paper's regime or not
    convergence: list          # one line per stored row: converged, still moving or untested
    records: list              # every record of the store (the stronger attacks read them)
    other_runs: list           # the same configurations under the other attack ([] without stored runs)
    data_root: object = None

    @property
    def stored(self) -> bool:
        """Whether any configuration has a stored record."""
        return has_runs(self.runs)

    @property
    def other(self) -> str:
        """The attack of the page's second table (:func:`other_attack_name`)."""
        return other_attack_name(self.attack)


def other_attack_name(attack: str) -> str:
    """The attack a table page shows beside ``attack``: MT beside PGD-10, PGD-10 beside MT."""
    return "mt" if attack == "pgd" else "pgd"


def bar_numbers(dataset: str) -> dict:
    """The budget rule's bars as the page's prose quotes them: ``natural_bar`` and ``at_bar``
    (where the dataset has bars, :data:`rll.analysis.budget.TRAINED_BARS`) and ``trained_bars``,
    a sentence saying what they do to a model block — or that the dataset has none."""
    if dataset not in TRAINED_BARS:
        return {"trained_bars": f"The budget rule's bars (natural's clean and AT's PGD-10 test accuracy) are "
                                f"measured for {', '.join(DATASET_NAMES[d] for d in TRAINED_BARS)} only: no "
                                f"{DATASET_NAMES.get(dataset, dataset)} block is held to them."}
    natural, at = (f"{bar:g}" for bar in TRAINED_BARS[dataset])
    return {"natural_bar": natural, "at_bar": at,
            "trained_bars": f"A model block whose natural row is below {natural} % clean or whose AT row is below "
                            f"{at} % PGD-10, the budget rule's bars, is under-trained and its verdicts inconclusive, "
                            "converged or not."}


def convergence_rule() -> str:
    """How a row's convergence is tested (:func:`rll.analysis.budget.converged`), as the table
    pages say it, from the rule's own constants (without the final full stop: the page cites after it)."""
    limits = (f"clean accuracy may move by at most {FLAT_CLEAN:g} points and PGD-10 accuracy by at most "
              f"{FLAT_ADV:g} point, or two standard errors of its images if that is larger")
    return (f"A row trained at the full learning rate throughout (the table budget has no decay) is read "
            f"along the least-squares trend of its learning curve's last {FLAT_WINDOW} epochs: {limits}.  "
            "A row whose rate was decayed is tested by one more epoch at the final rate, trained from its "
            "checkpoint and evaluated on the whole test set, with the same limits; a last epoch that follows "
            "a decay measures the decay and leaves the row untested")


@dataclass
class CheckedTable:
    """A table page's parameters, checked (:func:`check_params`): what :func:`build` reads or trains."""
    table: str
    dataset: str
    attack: str
    fidelity: str
    configs: list
    exact_budget: bool
    data_root: object = None
    device: object = None
    checksums: object = None
    results_dir: object = None
    checkpoint_dir: object = None
    train_missing: bool = False


#: The arithmetic a table page reads and trains its rows in, as the tables' sweep command does: bf16
#: where it is allowed, else fp32 (an fp32 record of a row stands for its bf16 run,
#: :func:`rll.experiments.tables.stand_ins`).
TABLE_PRECISION = "auto"


def check_params(table: str, *, dataset: str, models=None, methods=None, dropouts=None, epochs=None, milestones=None,
          seeds=(0,), attack: str = "pgd", fidelity: str = "paper", train_size=None, test_size=None,
          test_split: str = "test", lr=None, eps=None, device=None, data_root=None, checksums=None,
          results_dir=None, checkpoint_dir=None, train_missing: bool = False) -> CheckedTable:
    """A table page's parameters checked (:func:`rll.book.parameters.check_table_params`): a
    refused value raises one readable ``ValueError`` before anything is read or trained."""
    budget, exact_budget = table_budget(dataset, epochs=epochs, train_size=train_size, milestones=milestones)
    configs = check_table_params(table, dataset=dataset, methods=methods, models=models, dropouts=dropouts, **budget,
                                 seeds=seeds, attack=attack, fidelity=fidelity, test_size=test_size,
                                 test_split=test_split, lr=lr, eps=eps, device=device, data_root=data_root,
                                 train_missing=train_missing, checksums=checksums, precision=TABLE_PRECISION)
    return CheckedTable(table=table, dataset=dataset, attack=attack, fidelity=fidelity, configs=configs,
                        exact_budget=exact_budget, data_root=data_root, device=device, checksums=checksums,
                        results_dir=results_dir, checkpoint_dir=checkpoint_dir, train_missing=train_missing)


def build(checked: CheckedTable) -> TablePage:
    """The checked page's runs read from the store — the missing ones trained first with
    ``train_missing`` — and the :class:`TablePage` of everything it shows.  Run in its own cell,
    after :func:`check_params`'s, so that an error while training keeps its full traceback."""
    c = checked
    folder = results_folder("runs", c.results_dir)
    # trained as the box's sweep command trains them (its evaluation plan and learning curves),
    # evaluated with the page's attack
    runs = collect_runs(c.configs, results_dir=folder, exact_budget=c.exact_budget, train_missing=c.train_missing,
                        data_root=c.data_root, device=c.device, checksums=c.checksums,
                        checkpoint_dir=c.checkpoint_dir, eval_plan=TABLE_EVAL_PLAN,
                        curve_images=TABLE_CURVE_IMAGES)
    records = ResultsStore(folder).records()
    shown = page_records(records, c.configs)     # the regime and convergence of this page's rows only
    frame = table_frame(runs, attack=c.attack)
    other = other_attack_name(c.attack)
    return TablePage(
        table=c.table, dataset=c.dataset, attack=c.attack, configs=c.configs, runs=runs, frame=frame,
        seeds_frame=seed_frame(runs), numbers={**table_numbers(frame), **bar_numbers(c.dataset),
                                                     "convergence_rule": convergence_rule()},
        regime=regime_lines(shown, dataset=c.dataset, fidelity=c.fidelity) or [NO_TABLE_RUN],
        convergence=convergence_lines(shown, dataset=c.dataset, fidelity=c.fidelity) or [NO_TABLE_RUN],
        records=records, data_root=c.data_root,
        other_runs=attack_runs(c.configs, other, results_dir=folder, exact_budget=c.exact_budget)
        if has_runs(runs) else [])


def check_and_build(table: str, **params) -> TablePage:
    """:func:`build` of :func:`check_params` (``params`` as its), for use outside a page."""
    return build(check_params(table, **params))


def main_table(page: TablePage) -> list:
    """The items (for :func:`show`) of the table section: our table beside the paper's and how its
    runs were obtained (one line each) — or, without stored runs, :func:`empty_box` and the paper's
    table alone."""
    if not page.stored:
        paper = narrow_style(plain_style(paper_table(page.frame)))
        return [empty_box(page.table, page.dataset, page.configs, data_root=page.data_root), paper]
    return [table_block(page.frame, f"{page.dataset}-{page.attack}-{page.table}.csv"), *provenance_lines(page.runs)]


def plain_style(frame):
    """A Styler of ``frame`` as the pages show a small table: two decimals, blanks for NaN, no index."""
    return frame.style.format(precision=2, na_rep="").hide(axis="index")


def other_attack(page: TablePage) -> list:
    """The items (for :func:`show`) of the other attack's section: its table, how its runs were
    obtained and both attacks' adversarial accuracy side by side — or :func:`not_yet`."""
    if not page.stored:
        return [not_yet()]
    frame = table_frame(page.other_runs, attack=page.other)
    return [table_block(frame, f"{page.dataset}-{page.other}-{page.table}.csv"), *provenance_lines(page.other_runs),
            style_table(attack_comparison_frame(page.runs, page.other_runs))]


def stronger_attacks(page: TablePage) -> list:
    """The items (for :func:`show`) of the stronger attacks' section: each row under PGD-10 and
    AutoAttack with its worst class and flags, then the per-class heatmap (or a line saying there is
    none) — or :func:`not_yet`."""
    if not page.stored:
        return [not_yet()]
    per_class = attack_strength.per_class_frame(page.runs)
    title = f"{DATASET_NAMES.get(page.dataset, page.dataset)}: per-class PGD-10 accuracy (%), worst class outlined"
    return [plain_style(attack_strength.robustness_frame(page.runs, page.records)),
            plots.per_class_heatmap(per_class, title=title) if len(per_class)
            else "No per-class numbers stored for these rows yet."]


def figures(page: TablePage) -> list:
    """The items (for :func:`show`) of the figures section: adversarial accuracy per seed, clean
    against adversarial accuracy, Lipschitz constant against robustness, the generalization gaps and
    Δ = ours − paper — or :func:`not_yet`."""
    if not page.stored:
        return [not_yet()]
    name, attack, frame = DATASET_NAMES.get(page.dataset, page.dataset), page.attack.upper(), page.frame
    return [plots.seed_pointplot(page.seeds_frame, frame, "adv_test_acc", label=metric_label("adv_test_acc"),
                                 title=f"{name}, {attack}: adversarial test accuracy per seed"),
            plots.accuracy_vs_robustness(frame, title=f"{name}, {attack}: clean vs adversarial accuracy"),
            plots.lipschitz_vs_robustness(frame, title=f"{name}: local Lipschitz constant vs robustness"),
            plots.generalization_gaps(frame, title=f"{name}: generalization gaps"),
            plots.delta_heatmap(frame, labels=METRIC_LABELS, title=f"{name}: Δ = ours − paper")]


def show(items: list) -> None:
    """Show a section's items in order: a string printed as a line, a figure displayed (and
    closed, so it is not shown twice), anything else displayed.  Returns None."""
    from IPython.display import display

    for item in items:
        if isinstance(item, str):
            print(item)
            continue
        display(item)
        if isinstance(item, plt.Figure):
            plt.close(item)


__all__ = ["COST", "DATASET_NAMES", "NO_TABLE_RUN", "TablePage", "bar_numbers", "check_and_build", "convergence_rule", "data_status",
           "empty_box", "figures", "has_runs", "main_table", "not_yet", "other_attack", "other_attack_name",
           "paper_table", "plain_style", "show", "stronger_attacks", "sweep_command"]
