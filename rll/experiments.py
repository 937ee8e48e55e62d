"""The paper's experiments as configurations: which runs make which table, and the
paper's own reference numbers (kept in ``rll/paper_reference.json``, transcribed from the
paper and labelled as such — never our results)."""
from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from rll import __version__
from rll import data as rdata
from rll import separation

REPO = Path(__file__).resolve().parents[1]
REFERENCE_FILE = Path(__file__).with_name("paper_reference.json")


@lru_cache(maxsize=1)
def paper_reference() -> dict:
    """The paper's published numbers (Tables 1–14), as transcribed into
    ``rll/paper_reference.json``.  Reference data, not results of this code."""
    with open(REFERENCE_FILE) as fh:
        return json.load(fh)


def provenance(device: str | torch.device | None = None) -> dict:
    """Where and with what a result was computed: git commit, versions, device, time."""
    return {
        "git_commit": git_commit(),
        "rll_version": __version__,
        "torch_version": torch.__version__,
        "device": device_name(device),
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def device_name(device: str | torch.device | None) -> str:
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({os.cpu_count()} cores)"


def git_commit() -> str:
    """The checked-out commit (``+dirty`` when the tree has uncommitted changes), or
    ``unknown`` outside a git checkout."""
    import subprocess

    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def dataset_separation(dataset: str, *, data_root: str | None = None, random_labels: bool = False,
                       seed: int = 0, include_test: bool = True, test_split: str = "test",
                       device: str | None = None, progress: bool = True) -> dict:
    """Table 1 / Table 8 for one dataset: exact l∞ distance from every training (and test)
    point to the nearest training point of another class.

    Returns a record with ``train_train_min``/``_mean`` and ``test_train_min``/``_mean``
    (after dropping the dataset's ``drop_smallest`` noisy points, as the paper did), the
    per-point distances and nearest indices, and provenance.  ``random_labels`` relabels train
    and test uniformly at random (seeded), the paper's Table 8 control.  ``test_split`` may name
    a labelled partial test set (``test_partial`` for CIFAR-10); the record's ``test_note`` then
    says what it covers.  A missing split raises :class:`rll.data.DataError`, never a substitute.
    """
    if dataset not in rdata.DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid choices: {', '.join(rdata.DATASETS)}")
    info = rdata.DATASET_INFO[dataset]
    started = time.perf_counter()
    train = rdata.load_dataset(dataset, "train", root=data_root)
    test = rdata.load_dataset(dataset, test_split, root=data_root) if include_test else None
    train_y, test_y = train.labels, test.labels if test is not None else None
    if random_labels:
        train_y = torch.as_tensor(separation.random_labels(train_y, info["num_classes"], seed))
        if test is not None:
            test_y = torch.as_tensor(separation.random_labels(test_y, info["num_classes"], seed + 1))
    record: dict = {"dataset": dataset, "eps": info["eps"], "random_labels": random_labels,
                    "seed": seed if random_labels else None, "drop_smallest": info["drop_smallest"],
                    "n_train": len(train_y), "n_test": None if test is None else len(test_y),
                    "test_split": test_split if test is not None else None,
                    "test_note": test.note if test is not None else ""}
    columns = [("train_train", train.images, train_y)]
    if test is not None:
        columns.append(("test_train", test.images, test_y))
    distances = {}
    for column, queries, labels in columns:
        dist, index = separation.nearest_other_class(queries, labels, train.images, train_y,
                                                     device=device, progress=progress)
        drop = info["drop_smallest"] if column == "train_train" else 0
        stats = separation.separation_stats(dist, drop_smallest=drop)
        record[f"{column}_min"] = float(stats["min"])
        record[f"{column}_mean"] = float(stats["mean"])
        distances[column] = {"distance": dist, "index": index}
    if test is None:
        record["test_train_min"] = record["test_train_mean"] = None
    record["provenance"] = {**provenance(device), "wall_seconds": round(time.perf_counter() - started, 2)}
    record["distances"] = distances
    return record


def save_separation(record: dict, directory: str | os.PathLike) -> Path:
    """Write a separation record (without per-point arrays) as JSON, atomically, under
    ``directory/separation-<dataset>[-random<seed>].json``.  Returns the path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"separation-{record['dataset']}" + (f"-random{record['seed']}" if record["random_labels"] else "")
    path = directory / f"{name}.json"
    payload = {k: v for k, v in record.items() if k != "distances"}
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def load_separation_records(directory: str | os.PathLike) -> list[dict]:
    """All stored separation records in ``directory`` (sorted by dataset)."""
    out = []
    for path in sorted(Path(directory).glob("separation-*.json")):
        with open(path) as fh:
            out.append(json.load(fh))
    return out


def check_separation_params(*, dataset: str, data_root: str | None, random_labels: bool, seed: int,
                            device: str | None, test_split: str = "test") -> None:
    """Validate the separation notebook's parameters; one readable ``ValueError`` otherwise."""
    if dataset not in rdata.DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid choices: {', '.join(rdata.DATASETS)}")
    if test_split not in ("test", "test_partial", "none"):
        raise ValueError(f"unknown test_split {test_split!r}; valid choices: test, test_partial, none")
    if not isinstance(random_labels, bool):
        raise ValueError(f"random_labels must be True or False, got {random_labels!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    check_device(device)
    check_data_root(data_root)


def check_device(device: str | None) -> None:
    """``None`` (cuda if available, else cpu), ``cpu``, ``cuda`` or ``cuda:N`` that exists."""
    if device is None:
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; valid choices: None, 'cpu', 'cuda', 'cuda:N'") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; valid choices: None, 'cpu', 'cuda', 'cuda:N'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but no CUDA device is available; use 'cpu'")


def check_data_root(data_root: str | None) -> None:
    """A given data root must be an existing folder (``None`` means ``$RLL_DATA``/default)."""
    if data_root is not None and not Path(data_root).expanduser().is_dir():
        raise ValueError(f"data_root {str(data_root)!r} does not exist or is not a folder; "
                         "pass the folder holding MNIST/, cifar-10-batches-bin/, ... or set RLL_DATA")


def separation_table(records: list[dict]):
    """Table 1 (and Table 8's columns) beside the paper's numbers: one row per record with
    ours, the paper's and the difference.  Returns a pandas DataFrame."""
    import pandas as pd

    ref = paper_reference()
    rows = []
    for rec in records:
        ds = rec["dataset"]
        table8 = ref.get("table8", {}).get(ds, {}).get("random" if rec["random_labels"] else "original", {})
        row = {"dataset": ds, "labels": "random" if rec["random_labels"] else "original", "eps": rec["eps"],
               "2·eps": 2 * rec["eps"]}
        for col in ("train_train", "test_train"):
            for stat in ("min", "mean"):
                ours = rec.get(f"{col}_{stat}")
                paper = table8.get(f"{col}_{stat}")
                if paper is None and not rec["random_labels"] and stat == "min":
                    paper = ref.get("table1", {}).get(ds, {}).get(f"{col}_min")
                row[f"{col} {stat}"] = ours
                row[f"{col} {stat} (paper)"] = paper
        row["test set"] = rec.get("test_note") or rec.get("test_split") or "—"
        rows.append(row)
    return pd.DataFrame(rows)


def closest_pairs(record: dict, *, column: str = "train_train", k: int = 4, data_root: str | None = None,
                  test_split: str | None = None) -> list[dict]:
    """The ``k`` closest cross-label pairs of a separation record (the paper's Figs 6/7):
    each a dict with the two uint8 images, their labels, indices and l∞ distance."""
    ds = rdata.load_dataset(record["dataset"], "train", root=data_root)
    if column == "train_train":
        queries = ds
    else:
        queries = rdata.load_dataset(record["dataset"], test_split or record["test_split"], root=data_root)
    dist = np.asarray(record["distances"][column]["distance"])
    index = np.asarray(record["distances"][column]["index"])
    order = np.argsort(dist, kind="stable")
    pairs, seen = [], set()
    for q in order:
        key = tuple(sorted((int(q), int(index[q])))) if column == "train_train" else (int(q),)
        if key in seen:
            continue
        seen.add(key)
        j = int(index[q])
        pairs.append({"query_index": int(q), "neighbour_index": j, "distance": float(dist[q]),
                      "query_image": queries.images[q], "neighbour_image": ds.images[j],
                      "query_label": ds.classes[int(queries.labels[q])],
                      "neighbour_label": ds.classes[int(ds.labels[j])]})
        if len(pairs) == k:
            break
    return pairs


def environment_table():
    """Package versions and the device of this build, as a one-column DataFrame (the book's
    status page)."""
    import platform
    from importlib import metadata

    import pandas as pd

    rows = {"python": platform.python_version(), "platform": platform.platform(),
            "device": device_name(None), "git commit": git_commit()}
    for pkg in ("rll", "torch", "numpy", "pandas", "matplotlib", "jupyter-book", "myst-nb", "papermill", "jupytext"):
        try:
            rows[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            rows[pkg] = "not installed"
    return pd.DataFrame({"value": rows})
