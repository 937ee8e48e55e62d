"""Exact l∞ separation (Table 1): rll.metrics.separation against generic exact nearest-neighbour search.

    python benchmarks/separation.py --dataset mnist --data-root ../shared/datasets
    python benchmarks/separation.py --dataset cifar10 --data-root ../shared/datasets
    python benchmarks/separation.py --dataset mnist --data-root ../shared/datasets --subset 10000
    python benchmarks/separation.py --dataset cifar10 --device cuda --baselines   # GPU, rll only

Every method answers the same question on the same uint8 data: for each query, the l∞
distance to the nearest training point of another class.  ``rll`` (numba kernel on CPU, or
``--backend torch``) runs on all queries, best of ``--repeats`` (after an untimed warm-up that
also compiles the kernel).  The baselines run the search the way generic libraries do it — one
exact index per class, built on the other classes' points, queried with that class's points:

* ``sklearn``  NearestNeighbors(metric="chebyshev", algorithm="brute") — the released code's kind
  of search (sklearn's p=inf brute force);
* ``faiss``    IndexFlat(d, METRIC_Linf) on float32;
* ``torch``    chunked ``torch.cdist(p=inf)`` on float32 with an other-class mask.

The baselines take minutes to hours on the full data, so they are timed on
``--baseline-queries`` queries (a seeded uniform sample) and **extrapolated linearly** to all
queries (their cost is exactly proportional to the number of queries); their distances on the
sample are checked against rll's.  The machine's load average is printed: on a shared machine
timings are noisy, so repeat and take the best.  Prints a Markdown table for benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import gzip
import os
import time
from pathlib import Path

import numpy as np
import torch

import rll.metrics.separation as sep
from rll.store import cpu_description

# ---------------------------------------------------------------- data (raw files, no rll.data)

def _idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(dataset: str, root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (x uint8 (n, d), y int64), "test": ...} read straight from the mirror's files."""
    out = {}
    if dataset == "mnist":
        for split, stem in (("train", "train"), ("test", "t10k")):
            x = _idx(root / "MNIST" / "raw" / f"{stem}-images-idx3-ubyte.gz")
            y = _idx(root / "MNIST" / "raw" / f"{stem}-labels-idx1-ubyte.gz")
            out[split] = (x.reshape(len(x), -1), y.astype(np.int64))
    elif dataset == "cifar10":
        folder = root / "cifar-10-batches-bin"
        raw = np.concatenate([np.fromfile(folder / f"data_batch_{k}.bin", np.uint8).reshape(-1, 3073)
                              for k in range(1, 6)])
        out["train"] = (raw[:, 1:], raw[:, 0].astype(np.int64))
        test = folder / "test_batch.bin"
        if test.exists():             # absent from the mirror: test-train is then skipped
            raw = np.fromfile(test, np.uint8).reshape(-1, 3073)
            out["test"] = (raw[:, 1:], raw[:, 0].astype(np.int64))
    else:
        raise ValueError(f"unknown dataset {dataset!r}; valid choices: mnist, cifar10")
    return out


# ---------------------------------------------------------------- baselines (per-class indexes)

def per_class(build, q, lq, r, lr):
    """Nearest other-class distance (pixel units 0..255) by one exact index per class.

    Returns (distances, seconds spent building the indexes, seconds spent querying them): only
    the query time grows with the number of queries, so only it is extrapolated."""
    out = np.empty(len(q))
    t_build = t_query = 0.0
    for c in np.unique(lq):
        rows = lq == c
        t0 = time.perf_counter()
        search = build(r[lr != c])
        t1 = time.perf_counter()
        out[rows] = search(q[rows])
        t_build += t1 - t0
        t_query += time.perf_counter() - t1
    return out, t_build, t_query


def sklearn_build(r):
    from sklearn.neighbors import NearestNeighbors
    nn = NearestNeighbors(n_neighbors=1, metric="chebyshev", algorithm="brute")
    nn.fit(r.astype(np.float64))
    return lambda q: nn.kneighbors(q.astype(np.float64))[0][:, 0]


def faiss_build(r):
    import faiss
    index = faiss.IndexFlat(r.shape[1], faiss.METRIC_Linf)
    index.add(np.ascontiguousarray(r, dtype=np.float32))
    return lambda q: index.search(np.ascontiguousarray(q, dtype=np.float32), 1)[0][:, 0]


def cdist_build(r, chunk=256):
    rt = torch.from_numpy(np.ascontiguousarray(r, dtype=np.float32))

    def search(q):
        out = []
        for s in range(0, len(q), chunk):
            qt = torch.from_numpy(np.ascontiguousarray(q[s:s + chunk], dtype=np.float32))
            out.append(torch.cdist(qt, rt, p=float("inf")).min(dim=1).values.numpy())
        return np.concatenate(out)
    return search


BASELINES = {"sklearn": sklearn_build, "faiss": faiss_build, "torch.cdist": cdist_build}


# ---------------------------------------------------------------- main

def _fmt(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s" if seconds >= 10 else f"{seconds:.2f} s"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist", choices=["mnist", "cifar10"])
    p.add_argument("--data-root", type=Path, default=Path(os.environ.get("RLL_DATA", "../shared/datasets")))
    p.add_argument("--subset", type=int, default=None,
                   help="use only the first N training (and N/6 test) points")
    p.add_argument("--backend", default="auto", choices=list(sep.BACKENDS))
    p.add_argument("--device", default=None, help="device for rll (e.g. cuda); baselines use the CPU")
    p.add_argument("--repeats", type=int, default=2, help="timed runs of rll (best is reported)")
    p.add_argument("--baseline-queries", type=int, default=300,
                   help="queries each baseline is timed on, then extrapolated (default 300)")
    p.add_argument("--baselines", nargs="*", default=list(BASELINES), choices=list(BASELINES))
    args = p.parse_args(argv)

    data = load(args.dataset, args.data_root)
    if args.subset:
        data = {k: (x[:args.subset if k == "train" else max(1, args.subset // 6)],
                    y[:args.subset if k == "train" else max(1, args.subset // 6)])
                for k, (x, y) in data.items()}
    xr, yr = data["train"]
    tasks = [("train-train", xr, yr)]
    if "test" in data:
        tasks.append(("test-train", *data["test"]))

    import importlib.util
    needs = {"sklearn": "sklearn", "faiss": "faiss", "torch.cdist": "torch"}
    missing = [b for b in args.baselines if importlib.util.find_spec(needs[b]) is None]
    if missing:
        print(f"# skipping baselines whose package is not installed: {', '.join(missing)}")
    args.baselines = [b for b in args.baselines if b not in missing]

    load0 = os.getloadavg()
    threads = sep._numba.get_num_threads() if sep._numba is not None else None
    print(f"# {args.dataset}: {len(xr)} training points, d = {xr.shape[1]}; "
          f"{cpu_description()}, {os.cpu_count()} CPUs, "
          f"numba threads {threads}, torch threads {torch.get_num_threads()}, "
          f"load average {load0[0]:.1f}")

    t0 = time.perf_counter()
    sep.nearest_other_class(xr[:64], yr[:64], xr[:512], yr[:512], backend=args.backend,
                            device=args.device)
    print(f"# warm-up (includes numba compile or cache load): {time.perf_counter() - t0:.1f} s")

    rows = []
    total_ours = 0.0
    for name, xq, yq in tasks:
        same = xq is xr
        best, result = float("inf"), None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            result = sep.nearest_other_class(xq, yq, xq if same else xr, yq if same else yr,
                                             backend=args.backend, device=args.device)
            best = min(best, time.perf_counter() - t0)       # returns numpy: synchronised
        total_ours += best
        d, _ = result
        stats = sep.separation_stats(d)
        print(f"# {name}: min {stats['min']:.3f} ({round(stats['min'] * 255)}/255), "
              f"mean {stats['mean']:.3f}, exact; rll {best:.2f} s (best of {args.repeats})")
        rows.append((name, "rll", len(xq), best, best, 1.0))
        rng = np.random.default_rng(0)
        k = min(args.baseline_queries, len(xq))
        pick = np.sort(rng.choice(len(xq), k, replace=False))
        for bname in args.baselines:
            got, t_build, t_query = per_class(BASELINES[bname], xq[pick], yq[pick], xr, yr)
            if not np.array_equal(np.rint(got), np.rint(d[pick] * 255)):
                raise SystemExit(f"{bname} disagrees with rll on {name}: a bug somewhere")
            full = t_build + t_query * len(xq) / k
            rows.append((name, bname, k, t_build + t_query, full, full / best))

    print()
    print("| task | method | queries timed | measured | all queries (extrapolated) | × rll |")
    print("|---|---|---|---|---|---|")
    for name, method, k, took, full, ratio in rows:
        tag = "" if method == "rll" else " (linear extrapolation)"
        print(f"| {name} | {method} | {k} | {_fmt(took)} | {_fmt(full)}{tag} | {ratio:.0f}× |"
              if method != "rll" else
              f"| {name} | **rll** ({args.backend}) | {k} (all) | {_fmt(took)} | {_fmt(full)} | 1× |")
    load1 = os.getloadavg()
    print(f"\nrll total: {total_ours:.1f} s; load average before/after: {load0[0]:.1f}/{load1[0]:.1f}")


if __name__ == "__main__":
    main()
