"""Section 3's experiment: the exact ℓ∞ separation of each dataset (Table 1), computed, stored and
read back as a table."""
from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from rll import data as rdata
from rll.config import check_device
from rll.data import check_data_root
from rll.data.files import file_md5
from rll.metrics import separation
from rll.paper import paper_reference
from rll.store import atomic_write_bytes, provenance


def dataset_separation(dataset: str, *, data_root: str | None = None, random_labels: bool = False,
                       seed: int = 0, include_test: bool = True, test_split: str = "test",
                       device: str | None = None, progress: bool = True, checksums=None) -> dict:
    """Table 1 / Table 8 for one dataset: exact l∞ distance from every training (and test)
    point to the nearest training point of another class.

    Returns a record with ``train_train_min``/``_mean`` and ``test_train_min``/``_mean``
    (the train–train minimum after dropping the noisy points the released notebook dropped:
    the dataset's ``min_rank``, see :func:`rll.metrics.separation.separation_stats`), the
    per-point distances and nearest indices, and provenance.  ``random_labels`` relabels train
    and test uniformly at random (seeded), the paper's Table 8 control.  ``test_split`` may name
    a labelled partial test set (``test_partial`` for CIFAR-10); the record's ``test_note`` then
    says what it covers.  ``checksums`` overrides official md5s (:func:`rll.data.load_dataset`).  A missing split raises :class:`rll.data.DataError`, never a substitute.
    """
    if dataset not in rdata.DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid choices: {', '.join(rdata.DATASETS)}")
    info = rdata.DATASET_INFO[dataset]
    started = time.perf_counter()
    train = rdata.load_dataset(dataset, "train", root=data_root, checksums=checksums)
    test = rdata.load_dataset(dataset, test_split, root=data_root, checksums=checksums) if include_test else None
    train_y, test_y = train.labels, test.labels if test is not None else None
    if random_labels:
        train_y = torch.as_tensor(separation.random_labels(train_y, info["num_classes"], seed))
        if test is not None:
            test_y = torch.as_tensor(separation.random_labels(test_y, info["num_classes"], seed + 1))
    record: dict = {"dataset": dataset, "eps": info["eps"], "random_labels": random_labels,
                    "seed": seed if random_labels else None, "min_rank": info["min_rank"],
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
        stats = separation.separation_stats(dist, min_rank=info["min_rank"] if column == "train_train" else 1)
        record[f"{column}_min"] = float(stats["min"])
        record[f"{column}_mean"] = float(stats["mean"])
        distances[column] = {"distance": dist, "index": index}
    if test is None:
        record["test_train_min"] = record["test_train_mean"] = None
    record["provenance"] = {**provenance(device), "wall_seconds": round(time.perf_counter() - started, 2)}
    record["distances"] = distances
    return record


def _record_name(record: dict) -> str:
    return (f"separation-{record['dataset']}" + (f"-random{record['seed']}" if record["random_labels"] else "")
            + ("-test_partial" if record.get("test_split") == "test_partial" else ""))


def save_separation(record: dict, directory: str | os.PathLike) -> Path:
    """Write a separation record under ``directory/separation-<dataset>[-random<seed>].json`` and
    its per-point arrays beside it (``.npz``: for each column the nearest other-class distance as
    an integer number of grey levels — exact, since every ℓ∞ distance between 8-bit images is
    k/255 — and the nearest training index), both atomically; the JSON names the array file and
    its md5.  Returns the JSON's path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = _record_name(record)
    payload = {k: v for k, v in record.items() if k != "distances"}
    if record.get("distances"):
        arrays = {}
        for column, d in record["distances"].items():
            levels = np.rint(np.asarray(d["distance"], dtype=np.float64) * 255)
            if not np.allclose(levels / 255, np.asarray(d["distance"], dtype=np.float64), atol=1e-6):
                raise ValueError(f"{column} distances are not multiples of 1/255; not 8-bit images")
            arrays[f"{column}_levels"] = levels.astype(np.uint8)
            arrays[f"{column}_index"] = np.asarray(d["index"], dtype=np.int32)
        array_path = directory / f"{name}.npz"
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        atomic_write_bytes(array_path, buffer.getvalue())
        payload["arrays"] = {"file": array_path.name, "md5": file_md5(array_path)}
    path = directory / f"{name}.json"
    atomic_write_bytes(path, json.dumps(payload, indent=2, sort_keys=True).encode())
    return path


def load_separation_records(directory: str | os.PathLike, *, arrays: bool = False) -> list[dict]:
    """All stored separation records in ``directory`` (sorted by file name); with ``arrays``, each
    record whose per-point arrays are stored gets them back as ``distances`` (as
    :func:`dataset_separation` returns them), after checking the array file's md5."""
    out = []
    for path in sorted(Path(directory).glob("separation-*.json")):
        with open(path) as fh:
            record = json.load(fh)
        if arrays and record.get("arrays"):
            record["distances"] = _load_arrays(path.parent / record["arrays"]["file"], record["arrays"]["md5"])
        out.append(record)
    return out


def _load_arrays(path: Path, md5: str) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (its record names it); recompute it with "
                                "`python -m rll separation --dataset DATASET --save results/separation`")
    if file_md5(path) != md5:
        raise ValueError(f"{path} has md5 {file_md5(path)}, its record expects {md5}: the file changed since it "
                         "was stored; recompute it with `python -m rll separation --dataset DATASET --save "
                         "results/separation`")
    with np.load(path) as z:
        columns = sorted({k.rsplit("_", 1)[0] for k in z.files})
        return {c: {"distance": z[f"{c}_levels"].astype(np.float32) / np.float32(255), "index": z[f"{c}_index"]}
                for c in columns}


def page_records(dataset: str, *, random_labels: bool, seed: int, test_split: str, recompute: bool,
                 directory: str | os.PathLike | None, **run) -> list[tuple[dict, str]]:
    """The separation page's records: the dataset's (and with ``random_labels`` the seeded
    random-label control's) stored record with its per-point arrays when there is one and
    ``recompute`` is False, else computed now (:func:`dataset_separation`, keyword ``run``).
    Returns ``[(record, where it came from), ...]``: ``"stored in <file>"`` or ``"computed now"``."""
    stored = load_separation_records(directory, arrays=True) if directory is not None and Path(directory).is_dir() else []
    include_test = test_split != "none"
    out = []
    for random in (False, True) if random_labels else (False,):
        want = {"dataset": dataset, "random_labels": random, "seed": seed if random else None,
                "test_split": test_split if include_test else None}
        hit = next((r for r in stored if not recompute and r.get("distances") is not None
                    and all(r.get(k) == v for k, v in want.items())), None)
        if hit is not None:
            out.append((hit, f"stored in {_record_name(hit)}.json"))
        else:
            out.append((dataset_separation(dataset, random_labels=random, seed=seed, include_test=include_test,
                                           test_split=test_split if include_test else "test", **run), "computed now"))
    return out


def check_separation_params(*, dataset: str, data_root: str | None, random_labels: bool, seed: int,
                            device: str | None, test_split: str = "test", recompute: bool = False) -> None:
    """Validate the separation notebook's parameters; one readable ``ValueError`` otherwise."""
    if dataset not in rdata.DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid choices: {', '.join(rdata.DATASETS)}")
    if test_split not in ("test", "test_partial", "none"):
        raise ValueError(f"unknown test_split {test_split!r}; valid choices: test, test_partial, none")
    if not isinstance(random_labels, bool):
        raise ValueError(f"random_labels must be True or False, got {random_labels!r}")
    if not isinstance(recompute, bool):
        raise ValueError(f"recompute must be True or False, got {recompute!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    check_device(device)
    check_data_root(data_root)


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
