"""Guards for the parameters papermill injects into a notebook.

``papermill nb.ipynb out.ipynb -p datset mnist`` only warns "Passed unknown parameter" and runs
the notebook on its defaults.  :func:`guard`, called first in each notebook's validation cell,
makes that an error before any computation, naming the closest valid parameter, and makes a
refused parameter's message the whole error: the cell's traceback is IPython's ``Minimal`` one
(the exception's one line), restored to the previous mode once the cell has run.

How the injected names are found: IPython keeps the source of every executed cell in ``In``;
papermill's injected cell starts with the comment ``# Parameters`` and runs right after the
notebook's ``parameters`` cell.  A name assigned there and not in the ``parameters`` cell is
unknown.  Outside papermill (JupyterLab, the book build) there is no injected cell and
:func:`guard` only sets the short tracebacks.
"""
from __future__ import annotations

import ast
import difflib
from pathlib import Path
from typing import Literal

from pydantic import Field, StrictBool, field_validator

from rll import data as rdata
from rll.config import ATTACKS, FIDELITIES, check_device
from rll.data import check_data_root
from rll.experiments.proof_of_concept import (
    PROOF_OF_CONCEPT_DATASETS,
    proof_of_concept_configs,
)
from rll.experiments.tables import TABLE_MODELS, table_configs
from rll.training.run import check_curve_images
from rll.validation import Integer, ValidatedModel

INJECTED_MARKER = "# Parameters"


def assigned_names(source: str) -> set[str]:
    """Names bound at the top level of ``source`` by plain assignments (``a = 1``, ``a: int = 1``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AnnAssign, ast.AugAssign)) else []
        for target in targets:
            names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def unknown_parameters(inputs: list[str]) -> tuple[list[str], set[str]]:
    """From the executed cells' sources ``inputs`` (IPython's ``In``): the names papermill
    injected that the notebook's parameters cell does not define, and the names it defines."""
    marked = [i for i, src in enumerate(inputs) if i > 0 and src.lstrip().startswith(INJECTED_MARKER)]
    if not marked:
        return [], set()
    i = marked[-1]
    declared = assigned_names(inputs[i - 1])
    return sorted(assigned_names(inputs[i]) - declared), declared


def check_injected(inputs: list[str]) -> None:
    """Raise ``ValueError`` for the first unknown injected parameter, naming the closest valid
    one and all of them."""
    unknown, declared = unknown_parameters(inputs)
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, sorted(declared), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown parameter {name!r} (papermill -p {name} ...): {hint}"
                         f"this notebook's parameters are {', '.join(sorted(declared))}")


def guard() -> None:
    """Short tracebacks for the rest of the calling cell, then :func:`check_injected` on the
    kernel's executed cells.  A no-op outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover — the notebooks always run under IPython
        return
    ip = get_ipython()
    if ip is None:
        return
    _short_tracebacks_for_this_cell(ip)
    check_injected(list(ip.user_ns.get("In", [])))


def _short_tracebacks_for_this_cell(ip) -> None:
    """IPython's ``Minimal`` exception mode until the current cell has run, then the previous mode."""
    previous = ip.InteractiveTB.mode
    ip.InteractiveTB.set_mode("Minimal")

    def restore(*_):
        ip.InteractiveTB.set_mode(previous)
        ip.events.unregister("post_run_cell", restore)

    ip.events.register("post_run_cell", restore)


__all__ = ["RunPageParams", "assigned_names", "unknown_parameters", "check_injected", "guard"]


class RunPageParams(ValidatedModel):
    """The parameters every training notebook shares, declared once (:mod:`rll.validation`)."""

    fidelity: Literal[FIDELITIES] = Field("paper", description="paper or released (rll.config.TrainConfig)")
    epochs: Integer | None = Field(None, ge=1, description="None: the page's budget")
    seeds: tuple[int, ...] = Field((0,), description="a non-empty list of seeds")
    train_missing: StrictBool = Field(False, description="train the configurations the store lacks")

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_list(cls, seeds):
        if isinstance(seeds, (int, str)) or not list(seeds):
            raise ValueError(f"seeds must be a non-empty list of integers, e.g. [0] or [0, 1, 2]; got {seeds!r}")
        return tuple(seeds)


def _check_run_params(*, fidelity: str, epochs, seeds, train_missing, device, data_root) -> None:
    """The parameters every training notebook shares; one readable ``ValueError`` each."""
    RunPageParams(fidelity=fidelity, epochs=epochs, seeds=seeds, train_missing=train_missing)
    check_device(device)
    check_data_root(data_root)


def check_budget_params(*, budget_dir=None, results_dir=None) -> None:
    """Validate the budget notebook's parameters: each folder, when given, must exist."""
    for name, folder in (("budget_dir", budget_dir), ("results_dir", results_dir)):
        if folder is not None and not Path(folder).is_dir():
            raise ValueError(f"{name} {str(folder)!r} is not a folder of run records")


def check_table_params(table: str, *, dataset: str, methods=None, models=None, dropouts=None, epochs=None, seeds=(0,),
                       attack: str = "pgd", fidelity: str = "paper", train_size=None, test_size=None,
                       test_split: str = "test", eps=None, lr=None, device=None, data_root=None,
                       train_missing: bool = False, checksums=None, milestones=None, budgets=None,
                       precision: str = "fp32") -> list:
    """Validate a table notebook's parameters (one readable ``ValueError`` naming the valid
    choices) and return its configurations.  ``checksums`` (``{file name: md5}`` overriding
    the dataset's official md5s) is checked against the dataset's file names here, before
    anything is trained.  ``budgets`` (per-model budgets, :func:`table_configs`) and the budget
    fields ``epochs``, ``train_size``, ``milestones`` exclude each other."""
    if budgets is not None and (epochs, train_size, milestones) != (None, None, None):
        raise ValueError("give either per-model budgets or epochs/train_size/milestones, not both "
                         "(a table notebook's epochs=None reads each model's table budget, "
                         "rll.experiments.tables.TABLE_BUDGETS)")

    if table in TABLE_MODELS and dataset not in TABLE_MODELS[table]:
        raise ValueError(f"unknown dataset {dataset!r} for {table}; valid choices: {', '.join(TABLE_MODELS[table])}")
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}; valid choices: {', '.join(ATTACKS)}")
    if eps is not None and not (isinstance(eps, (int, float)) and eps > 0):
        raise ValueError(f"eps must be a positive radius (or None for the dataset's), got {eps!r}")
    _check_run_params(fidelity=fidelity, epochs=epochs, seeds=seeds, train_missing=train_missing, device=device,
                      data_root=data_root)
    if isinstance(methods, str):
        raise ValueError(f"methods must be a list, e.g. ['natural', 'trades(beta=6)']; got {methods!r}")
    if table not in TABLE_MODELS:
        raise ValueError(f"unknown table {table!r}; valid choices: {', '.join(TABLE_MODELS)}")
    rdata.check_checksums(dataset, checksums)
    if dropouts is not None and (isinstance(dropouts, (int, float, str)) or not all(
            isinstance(d, (int, float)) and 0 <= d < 1 for d in dropouts)):
        raise ValueError(f"dropouts must be a list of rates in [0, 1), e.g. [0, 0.5]; got {dropouts!r}")
    configs = table_configs(table, dataset=dataset, methods=methods, models=models, dropouts=dropouts,
                            epochs=epochs, seeds=tuple(seeds), attack=attack, fidelity=fidelity,
                            train_size=train_size, test_size=test_size, test_split=test_split, eps=eps, lr=lr,
                            milestones=milestones, budgets=budgets, precision=precision)
    if train_missing:   # training needs both splits: fail now, not after hours of training
        rdata.load_dataset(dataset, "train", root=data_root, checksums=checksums)
        try:
            rdata.load_dataset(dataset, test_split, root=data_root, checksums=checksums)
        except rdata.DataError as err:
            if test_split != "test" or dataset != "cifar10":
                raise
            raise rdata.DataError(f"{err} For a check without the full test set: `-p test_split test_partial` "
                                  "(papermill) trains and evaluates on the labelled partial test set, and every "
                                  "number then says so; without `-p train_missing True` the notebook only reads "
                                  "the results store.") from None
    return configs


def check_proof_of_concept_params(*, datasets=None, control: bool = True, epochs=None, seeds=(0,),
                                  fidelity: str = "paper", train_size=None, test_size=None,
                                  test_split: str = "test", lr=None, device=None, data_root=None,
                                  train_missing: bool = False, curve_images=None) -> list:
    """Validate the proof-of-concept notebook's parameters (one readable ``ValueError``
    naming the valid choices) and return its configurations."""
    if isinstance(datasets, str) or (datasets is not None and not list(datasets)):
        raise ValueError(f"datasets must be a non-empty list, e.g. ['mnist'] (papermill: -y 'datasets: [mnist]'); "
                         f"got {datasets!r}")
    for dataset in datasets or ():
        if dataset not in PROOF_OF_CONCEPT_DATASETS:
            raise ValueError(f"unknown dataset {dataset!r} for the proof of concept (Table 6); "
                             f"valid choices: {', '.join(PROOF_OF_CONCEPT_DATASETS)}")
    if not isinstance(control, bool):
        raise ValueError(f"control must be True or False, got {control!r}")
    _check_run_params(fidelity=fidelity, epochs=epochs, seeds=seeds, train_missing=train_missing, device=device,
                      data_root=data_root)
    check_curve_images(curve_images)
    configs = proof_of_concept_configs(datasets=datasets, control=control, seeds=tuple(seeds), epochs=epochs,
                                       fidelity=fidelity, train_size=train_size, test_size=test_size,
                                       test_split=test_split, lr=lr)
    if train_missing:   # training needs both splits: fail now, not after hours of training
        for dataset in dict.fromkeys(c.dataset for c in configs):
            rdata.load_dataset(dataset, "train", root=data_root)
            rdata.load_dataset(dataset, test_split, root=data_root)
    return configs
