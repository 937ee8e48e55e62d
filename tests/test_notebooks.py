"""Notebooks: committed without outputs, in sync with their jupytext twin, parameterized for
papermill, and validating their parameters (checked through papermill, as a user runs them)."""
from __future__ import annotations

import json
from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells if c.source.strip()]


def test_there_are_notebooks():
    assert {p.stem for p in NOTEBOOKS} >= {"separation", "theorem"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; strip them (jupytext --sync from the .md twin)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_paired_with_text_twin_and_in_sync(path):
    twin = path.with_suffix(".md")
    assert twin.exists(), f"{path.name} has no jupytext twin {twin.name}"
    ipynb = jupytext.read(path)
    text = jupytext.read(twin)
    assert _cells(ipynb) == _cells(text), f"{path.name} and {twin.name} differ: run `jupytext --sync {twin}`"
    assert "md:myst" in ipynb.metadata.get("jupytext", {}).get("formats", "")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_parameters_cell_followed_by_validation(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [0], f"{path.name}: the first code cell, and only it, must be tagged 'parameters'"
    assert "check_" in code[1].source, f"{path.name}: the cell after the parameters must validate them"


def _run(path: Path, tmp_path: Path, **params):
    out = tmp_path / f"{path.stem}-out.ipynb"
    papermill.execute_notebook(str(path), str(out), parameters=params, cwd=str(REPO),
                               kernel_name="python3", progress_bar=False)
    return nbformat.read(out, as_version=4)


@pytest.mark.parametrize("params, message", [
    ({"dataset": "imagenet"}, "valid choices: mnist, cifar10, svhn, resimagenet"),
    ({"data_root": "/nonexistent/folder"}, "does not exist"),
    ({"test_split": "val"}, "valid choices: test, test_partial, none"),
    ({"device": "tpu"}, "valid choices"),
])
def test_separation_rejects_bad_parameters_through_papermill(tmp_path, params, message):
    with pytest.raises(papermill.PapermillExecutionError) as err:
        _run(REPO / "notebooks" / "separation.ipynb", tmp_path, **params)
    assert err.value.ename == "ValueError"
    assert message in err.value.evalue


def test_theorem_rejects_bad_parameters_through_papermill(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError) as err:
        _run(REPO / "notebooks" / "theorem.ipynb", tmp_path, noise=-1, p="3")
    assert err.value.ename == "ValueError"
    assert "noise must be a finite number >= 0" in err.value.evalue and "valid choices" in err.value.evalue


def test_separation_absent_split_fails_clearly_through_papermill(tmp_path, data_root):
    with pytest.raises(papermill.PapermillExecutionError) as err:
        _run(REPO / "notebooks" / "separation.ipynb", tmp_path, dataset="cifar10", data_root=str(data_root),
             random_labels=False)
    assert err.value.ename == "DataError"
    assert "test_batch.bin" in err.value.evalue and "803d5f7f4d78ea53de84dbe85f74fb6d" in err.value.evalue


@pytest.mark.slow
def test_separation_notebook_reproduces_mnist_table1(tmp_path, data_root):
    nb = _run(REPO / "notebooks" / "separation.ipynb", tmp_path, dataset="mnist", data_root=str(data_root),
              random_labels=False, output_dir=str(tmp_path / "records"))
    record = json.loads((tmp_path / "records" / "separation-mnist.json").read_text())
    assert round(record["train_train_min"], 3) == 0.737
    assert round(record["test_train_min"], 3) == 0.812
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
