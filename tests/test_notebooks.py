"""Notebooks: committed without outputs, in sync with their jupytext twin, parameterized for
papermill, and validating their parameters (checked through papermill, as a user runs them)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jupytext
import nbformat
import numpy as np
import papermill
import pytest

from rll.data import CHECKSUMS, DATASET_INFO

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
    if params.get("train_missing"):     # checkpoints of test runs stay out of the repository
        params.setdefault("checkpoint_dir", str(tmp_path / "checkpoints"))
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
@pytest.mark.slow   # starts a notebook kernel
def test_separation_rejects_bad_parameters_through_papermill(tmp_path, params, message):
    with pytest.raises(papermill.PapermillExecutionError) as err:
        _run(REPO / "notebooks" / "separation.ipynb", tmp_path, **params)
    assert err.value.ename == "ValueError"
    assert message in err.value.evalue


@pytest.mark.slow   # starts a notebook kernel
def test_theorem_rejects_bad_parameters_through_papermill(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError) as err:
        _run(REPO / "notebooks" / "theorem.ipynb", tmp_path, noise=-1, p="3")
    assert err.value.ename == "ValueError"
    assert "noise must be a finite number >= 0" in err.value.evalue and "valid choices" in err.value.evalue


@pytest.mark.slow   # starts a notebook kernel
def test_staircase_rejects_bad_parameters_through_papermill(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError) as err:
        _run(REPO / "notebooks" / "staircase.ipynb", tmp_path, n_small=0)
    assert err.value.ename == "ValueError" and "n_small must be an integer" in err.value.evalue


@pytest.mark.slow   # starts a notebook kernel
def test_separation_absent_split_fails_clearly_through_papermill(tmp_path, data_root):
    with pytest.raises(papermill.PapermillExecutionError) as err:
        _run(REPO / "notebooks" / "separation.ipynb", tmp_path, dataset="cifar10", data_root=str(data_root),
             random_labels=False)
    assert err.value.ename == "DataError"
    assert "test_batch.bin" in err.value.evalue and "803d5f7f4d78ea53de84dbe85f74fb6d" in err.value.evalue


@pytest.mark.slow
@pytest.mark.slow   # starts a notebook kernel
def test_separation_notebook_reproduces_mnist_table1(tmp_path, data_root):
    nb = _run(REPO / "notebooks" / "separation.ipynb", tmp_path, dataset="mnist", data_root=str(data_root),
              random_labels=False, output_dir=str(tmp_path / "records"))
    record = json.loads((tmp_path / "records" / "separation-mnist.json").read_text())
    assert round(record["train_train_min"], 3) == 0.737
    assert round(record["test_train_min"], 3) == 0.812
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


@pytest.mark.parametrize("params, message", [
    ({"attack": "cw"}, "valid choices: pgd, mt"),
    ({"epochs": 0}, "epochs must be an integer >= 1"),
    ({"seeds": []}, "seeds must be a non-empty list"),
    ({"eps": -0.1}, "eps must be a positive radius"),
    ({"methods": ["natural", "madry"]}, "valid choices: natural, at, rst, trades, gr, llr"),
    ({"dataset": "svhn"}, "valid choices: mnist"),
    ({"fidelity": "official"}, "valid choices: paper, released"),
])
@pytest.mark.slow   # starts a notebook kernel
def test_table2_rejects_bad_parameters_through_papermill(tmp_path, params, message):
    with pytest.raises(papermill.PapermillExecutionError) as err:
        _run(REPO / "notebooks" / "table2.ipynb", tmp_path, **params)
    assert err.value.ename == "ValueError"
    assert message in err.value.evalue


@pytest.mark.slow   # starts a notebook kernel
def test_a_misspelled_parameter_fails_before_compute_naming_the_valid_one(tmp_path):
    """``papermill notebooks/table2.ipynb out.ipynb -p datset mnist`` as a user types it: a
    non-zero exit, the message naming ``dataset``, and the kernel's traceback one line."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "papermill", "notebooks/table2.ipynb", str(tmp_path / "out.ipynb"),
                          "-p", "datset", "mnist"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode != 0
    assert "unknown parameter 'datset'" in out.stderr and "did you mean 'dataset'?" in out.stderr
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert len(errors) == 1 and len(errors[0].traceback) <= 2, errors[0].traceback


def _outputs_text(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") if o.output_type == "stream" else
                       str(o.get("data", {}).get("text/html", o.get("data", {}).get("text/plain", ""))))
    return "\n".join(out)


@pytest.mark.slow   # starts a notebook kernel
def test_table2_defaults_fill_the_table_from_the_store(tmp_path):
    nb = _run(REPO / "notebooks" / "table2.ipynb", tmp_path)
    text = _outputs_text(nb)
    assert "runs:" in text and "epochs (paper: 160)" in text, "no provenance line: the store has no Table 2 runs"
    assert "TRADES(β=6)" in text
    assert "MT − PGD" in text and "attack mt" in text, "no multi-targeted records (Tables 9 and 10) in the store"


@pytest.mark.slow
@pytest.mark.slow   # starts a notebook kernel
def test_table2_trains_what_is_missing(tmp_path, data_root):
    results = tmp_path / "runs"
    _run(REPO / "notebooks" / "table2.ipynb", tmp_path, train_missing=True, epochs=1, models=["cnn1"],
         methods=["natural", "at"], seeds=[0], train_size=128, test_size=64, data_root=str(data_root),
         results_dir=str(results))
    records = sorted(p.name for p in results.glob("*.json"))
    assert len(records) == 2 and records[0].startswith("mnist-cnn1-at")
    # trained as the page's sweep command trains them: the tables' evaluation plan and learning curves
    provenance = json.loads((results / records[0]).read_text())["provenance"]
    assert provenance["evaluation"] == {"train_images": 10000, "pgd_test_images": None, "lipschitz_images": 2000,
                                        "mt_test_images": 1000, "mt_train_images": 500, "aa_images": 500,
                                        "aa_standard_images": 200, "batch_size": 64}
    assert [h["epoch"] for h in provenance["history"] if "curve" in h] == [1]
    assert len(list((tmp_path / "checkpoints").glob("*.pt"))) == 2     # the checkpoint_dir parameter



@pytest.mark.slow
@pytest.mark.slow   # starts a notebook kernel
def test_progress_bars_stay_small_under_papermill(tmp_path, data_root):
    """Training, attacks and the Lipschitz estimate all draw tqdm bars; under papermill they
    must not turn into thousands of output lines.  With ipywidgets installed (requirements.txt)
    tqdm.auto draws them as widgets, which is how they render in JupyterLab; no TqdmWarning."""
    nb = _run(REPO / "notebooks" / "table2.ipynb", tmp_path, train_missing=True, epochs=2, models=["cnn1"],
              methods=["at"], seeds=[0], train_size=256, test_size=64, data_root=str(data_root),
              results_dir=str(tmp_path / "runs"))
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    streams = [o for o in outputs if o.output_type == "stream"]
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    lines = sum(o.text.count("\n") + o.text.count("\r") for o in streams) + len(widgets)
    assert widgets, "progress bars did not render as widgets"
    assert 0 < lines < 300, f"{lines} progress lines in the executed notebook"
    assert not _warnings_in(nb), _warnings_in(nb)


@pytest.mark.slow   # starts a notebook kernel
def test_table3_cifar10_without_test_split_fails_clearly(tmp_path, data_root):
    with pytest.raises(papermill.PapermillExecutionError) as err:
        _run(REPO / "notebooks" / "table3.ipynb", tmp_path, dataset="cifar10", train_missing=True,
             data_root=str(data_root), results_dir=str(tmp_path / "runs"))
    assert err.value.ename == "DataError"
    assert "test_batch.bin" in err.value.evalue and "803d5f7f4d78ea53de84dbe85f74fb6d" in err.value.evalue
    assert "-p test_split test_partial" in err.value.evalue     # the way out, in the same message
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("*.json"))


def _warnings_in(nb) -> list[str]:
    """Outputs of an executed notebook that carry a warning: stderr streams, and any output
    text naming a Python warning class."""
    found = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            text = o.get("text", "") if o.output_type == "stream" else str(o.get("data", {}).get("text/plain", ""))
            if (o.output_type == "stream" and o.name == "stderr" and text.strip()) or "Warning:" in text:
                found.append(text[:300])
    return found


@pytest.mark.slow   # starts a notebook kernel
def test_design_example_table3_cifar10_runs_from_the_store_without_warnings(tmp_path, data_root, monkeypatch):
    """The design's example, `papermill notebooks/table3.ipynb out.ipynb -p dataset cifar10`,
    here, where CIFAR-10's test batch is absent: it reads the store (no compute), and the
    executed notebook shows no warning (tqdm's IProgress, matplotlib's empty legend, ...)."""
    monkeypatch.setenv("RLL_DATA", str(data_root))
    nb = _run(REPO / "notebooks" / "table3.ipynb", tmp_path, dataset="cifar10")
    assert not _warnings_in(nb), _warnings_in(nb)
    text = _outputs_text(nb)
    # no CIFAR-10 run is stored: one box (what is missing, the command, the data, the cost), the
    # paper's table (its natural WRN-40-10 row: 93.81 % clean, Table 3), and no figure
    assert text.count("rll-empty") == 1 and "python -m rll sweep table3 --dataset cifar10 --models wrn-40-10" in text
    assert "cifar10 test: missing (test_batch.bin)" in text and "needs a GPU" in text
    assert "93.81" in text
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert not images, f"{len(images)} figures on a page without runs"


@pytest.mark.slow
@pytest.mark.slow   # starts a notebook kernel
def test_table3_runs_on_cifar10_with_the_labelled_partial_test_set(tmp_path, data_root):
    results = tmp_path / "runs"
    nb = _run(REPO / "notebooks" / "table3.ipynb", tmp_path, dataset="cifar10", train_missing=True, epochs=1,
              models=["wrn-10-1"], methods=["natural"], seeds=[0], train_size=128, test_size=64,
              test_split="test_partial", data_root=str(data_root), results_dir=str(results))
    (record,) = [json.loads(p.read_text()) for p in results.glob("*.json")]
    assert record["config"]["test_split"] == "test_partial"
    assert "1017" in json.dumps(record["provenance"])   # the partial test set's note travels with the record
    assert "wrn-10-1" in _outputs_text(nb)


@pytest.mark.slow   # starts a notebook kernel
def test_table4_rejects_bad_dropouts_through_papermill(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError) as err:
        _run(REPO / "notebooks" / "table4.ipynb", tmp_path, dropouts=[1.5])
    assert err.value.ename == "ValueError" and "dropouts must be a list of rates" in err.value.evalue


@pytest.mark.parametrize("params, message", [
    ({"datasets": ["imagenet"]}, "valid choices: mnist, svhn, cifar10"),
    ({"control": "no"}, "control must be True or False"),
    ({"seeds": []}, "seeds must be a non-empty list"),
    ({"curve_images": 1}, "curve_images must be an integer >= 2 or None, got 1"),
])
@pytest.mark.slow   # starts a notebook kernel
def test_proof_of_concept_rejects_bad_parameters_through_papermill(tmp_path, params, message):
    with pytest.raises(papermill.PapermillExecutionError) as err:
        _run(REPO / "notebooks" / "proof_of_concept.ipynb", tmp_path, **params)
    assert err.value.ename == "ValueError" and message in err.value.evalue


@pytest.mark.slow
@pytest.mark.slow   # starts a notebook kernel
def test_proof_of_concept_trains_with_and_without_the_test_set(tmp_path, data_root):
    results = tmp_path / "runs"
    nb = _run(REPO / "notebooks" / "proof_of_concept.ipynb", tmp_path, datasets=["mnist"], train_missing=True,
              epochs=1, seeds=[0, 1], train_size=64, test_size=32, data_root=str(data_root),
              results_dir=str(results))
    records = [json.loads(p.read_text()) for p in results.glob("*.json")]
    assert sorted((r["config"]["seed"], r["config"].get("train_with_test", False)) for r in records) == [
        (0, False), (0, True), (1, False), (1, True)]
    assert sorted(r["provenance"]["n_trained_on"] for r in records) == [64, 64, 96, 96]
    # every trained run keeps its learning curve (the claim's convergence test reads it)
    assert all("curve" in h for r in records for h in r["provenance"]["history"])
    text = _outputs_text(nb)
    assert "with test set" in text and "1 epochs (paper: 40)" in text and "(trained on both)" in text
    # two seeds: both value columns show their spread over seeds, the control in its own column
    assert "with test set" in text and "without (control)" in text and text.count('class="rll-sd"') >= 4


# ---------------------------------------------------------------- datasets the mirror lacks
# SVHN and Restricted ImageNet, written small in their official formats into tmp_path.

def _svhn_copy(root: Path, svhn_mat, n_train: int = 64, n_test: int = 32) -> dict:
    """Random SVHN train and test .mat files under ``root``; returns their md5s."""
    return {"train_32x32.mat": svhn_mat(root, "train", n=n_train),
            "test_32x32.mat": svhn_mat(root, "test", n=n_test, seed=1)}


def _restricted_imagenet(root: Path, png, n_train: int = 2, n_val: int = 1, size: int = 72) -> None:
    """Random ``size``×``size`` PNGs in the nine super-class folders of
    ``root/restricted_imagenet/{train,val}``."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        for cls in DATASET_INFO["resimagenet"].classes:
            for k in range(n):
                png(root / "restricted_imagenet" / split / cls / f"{k}.png",
                    rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def _records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]


def _override_note(name: str) -> str:
    return f"md5 of {name} overridden by the caller (official: {CHECKSUMS['svhn'][name]})"


TINY_TABLE = dict(methods=["natural"], seeds=[0], epochs=1, train_missing=True)


@pytest.mark.slow
@pytest.mark.slow   # starts a notebook kernel
def test_table3_runs_on_svhn_files_in_the_official_format(tmp_path, svhn_mat):
    sums = _svhn_copy(tmp_path, svhn_mat)
    nb = _run(REPO / "notebooks" / "table3.ipynb", tmp_path, dataset="svhn", models=["wrn-10-1"], **TINY_TABLE,
              checksums=sums, data_root=str(tmp_path), results_dir=str(tmp_path / "runs"))
    (record,) = _records(tmp_path / "runs")
    assert record["config"]["dataset"] == "svhn" and record["provenance"]["n_train"] == 64
    assert record["provenance"]["data_notes"] == {"train": _override_note("train_32x32.mat"),
                                                  "test": _override_note("test_32x32.mat")}
    text = _outputs_text(nb)
    assert "wrn-10-1" in text and "Natural" in text and "1 runs: 1 epochs (paper: 60)" in text


@pytest.mark.slow
@pytest.mark.slow   # starts a notebook kernel
def test_table3_runs_on_cifar10_once_the_test_batch_is_present(tmp_path, data_root):
    """The mirror lacks CIFAR-10's test_batch.bin, and Table 3 fails clearly without it (above).
    With one present — here the real training batches (linked) beside a generated test batch in
    the official binary layout, its md5 passed as an override — the same call runs."""
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for source in (data_root / "cifar-10-batches-bin").iterdir():
        (folder / source.name).symlink_to(source)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, (40, 1), dtype=np.uint8)
    (folder / "test_batch.bin").write_bytes(
        np.hstack([labels, rng.integers(0, 256, (40, 3072), dtype=np.uint8)]).tobytes())
    md5 = hashlib.md5((folder / "test_batch.bin").read_bytes()).hexdigest()
    nb = _run(REPO / "notebooks" / "table3.ipynb", tmp_path, dataset="cifar10", models=["wrn-10-1"], **TINY_TABLE,
              train_size=128, checksums={"test_batch.bin": md5}, data_root=str(tmp_path),
              results_dir=str(tmp_path / "runs"))
    (record,) = _records(tmp_path / "runs")
    assert record["config"]["test_split"] == "test" and record["provenance"]["n_test"] == 40
    assert record["provenance"]["data_notes"] == {"test": "md5 of test_batch.bin overridden by the caller "
                                                          f"(official: {CHECKSUMS['cifar10']['test_batch.bin']})"}
    assert "1 runs: 1 epochs (paper: 120)" in _outputs_text(nb)


@pytest.mark.slow
@pytest.mark.slow   # starts a notebook kernel
def test_table4_runs_both_dropout_rows_on_svhn_files(tmp_path, svhn_mat):
    sums = _svhn_copy(tmp_path, svhn_mat)
    nb = _run(REPO / "notebooks" / "table4.ipynb", tmp_path, dataset="svhn", models=["wrn-10-1"], **TINY_TABLE,
              checksums=sums, data_root=str(tmp_path), results_dir=str(tmp_path / "runs"))
    records = _records(tmp_path / "runs")
    assert sorted(r["config"]["dropout"] for r in records) == [0.0, 0.5]
    assert all("overridden by the caller" in r["provenance"]["data_notes"]["train"] for r in records)
    assert "2 runs: 1 epochs (paper: 60)" in _outputs_text(nb)


@pytest.mark.slow
@pytest.mark.slow   # starts a notebook kernel
def test_table3_runs_on_a_restricted_imagenet_folder(tmp_path, png):
    _restricted_imagenet(tmp_path, png)
    nb = _run(REPO / "notebooks" / "table3.ipynb", tmp_path, dataset="resimagenet", models=["resnet50"],
              **TINY_TABLE, data_root=str(tmp_path), results_dir=str(tmp_path / "runs"))
    (record,) = _records(tmp_path / "runs")
    prov = record["provenance"]
    assert record["config"]["dataset"] == "resimagenet" and (prov["n_train"], prov["n_test"]) == (18, 9)
    # ImageNet has no official md5s: the record says its files were not verified
    assert all("without official md5s, not verified" in prov["data_notes"][split] for split in ("train", "test"))
    assert "resnet50" in _outputs_text(nb)


@pytest.mark.parametrize("notebook, dataset, checksums, message", [
    ("table3", "svhn", {"train_32x32.mat": "xyz"}, "dict of file name -> md5 (32 hex digits)"),
    ("table3", "svhn", {"train.mat": "0" * 32}, "valid: ['test_32x32.mat', 'train_32x32.mat']"),
    ("table4", "svhn", ["train_32x32.mat"], "checksums must be None or a dict"),
    ("table2", "mnist", {"train_32x32.mat": "0" * 32}, "unknown file names ['train_32x32.mat'] for 'mnist'"),
])
@pytest.mark.slow   # starts a notebook kernel
def test_tables_reject_bad_checksums_through_papermill(tmp_path, notebook, dataset, checksums, message):
    with pytest.raises(papermill.PapermillExecutionError) as err:
        _run(REPO / "notebooks" / f"{notebook}.ipynb", tmp_path, dataset=dataset, checksums=checksums,
             train_missing=True, data_root=str(tmp_path), results_dir=str(tmp_path / "runs"))
    assert err.value.ename == "ValueError" and message in err.value.evalue
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
@pytest.mark.slow   # starts a notebook kernel
def test_papermill_sees_every_parameter(path):
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assigned = {line.split("=")[0].strip() for line in cell.source.splitlines()
                if "=" in line and not line.lstrip().startswith("#")}
    assert set(papermill.inspect_notebook(str(path))) == assigned


@pytest.mark.parametrize("params, message", [({"dataset": "imagenet"}, "valid choices: mnist"),
                                             ({"lipschitz_check_eps": 0.1}, "list of radii")])
@pytest.mark.slow   # starts a notebook kernel
def test_attacks_page_rejects_bad_parameters_through_papermill(tmp_path, params, message):
    with pytest.raises(papermill.PapermillExecutionError, match=message):
        _run(REPO / "notebooks" / "attacks.ipynb", tmp_path, **params)


@pytest.mark.slow   # starts a notebook kernel
def test_budget_page_rejects_a_missing_folder_through_papermill(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match="budget_dir '/nonexistent' is not a folder"):
        _run(REPO / "notebooks" / "budget.ipynb", tmp_path, budget_dir="/nonexistent")
