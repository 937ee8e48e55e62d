"""The evaluation in channels-last memory format against the default layout (NCHW), on trained models:
does every column of a record come out the same, and how much faster is it?

    python benchmarks/eval_layout.py --data-root ../shared/datasets \
        checkpoints/mnist-cnn1-gr-beta1-directionl2-c01ae78d1c22.pt checkpoints/mnist-cnn2-natural-....pt

Each checkpoint (a ``python -m rll train`` checkpoint) is evaluated twice by
:func:`rll.metrics.evaluate` — model and inputs in NCHW, then in channels-last — with every attack
of the tables (PGD-10, the multi-targeted attack, AutoAttack's APGD and standard configurations)
and both Lipschitz estimators, on fixed subsets of the MNIST test and training images (``--plan``
sizes, smaller than the tables' so that it runs in minutes), the same seed.  Convolutions in the
two layouts run different kernels, which may round differently; the layout is adopted for the
evaluation only if every accuracy of every record is identical on every model (a change of a
borderline example would show as a different accuracy) and the Lipschitz estimates — continuous
maxima along a gradient ascent, which any change of kernel or machine can move — differ far less
than the estimator's own noise (the same estimate from another random start, also printed).  One
torch thread, the layouts alternating per model; prints a Markdown table and the CPU's flags.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch

from rll import data as rdata
from rll import metrics as rmetrics
from rll.config import TrainConfig
from rll.store import cpu_description
from rll.training.checkpoint import load_checkpoint
from rll.training.packing import load_trained_model

ATTACKS = ("pgd", "mt", "aa-apgd", "aa")

ESTIMATES = ("test_lipschitz", "test_lipschitz_released")


def _flat(metrics: dict, prefix: str = "") -> dict:
    """Every number of a record's metrics, by dotted name."""
    out = {}
    for k, v in metrics.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif isinstance(v, (list, tuple)):
            out.update({f"{prefix}{k}[{i}]": x for i, x in enumerate(v)})
        else:
            out[f"{prefix}{k}"] = v
    return out


def compare(path: str, data_root: str | None, plan: rmetrics.EvalPlan) -> dict:
    """Both layouts' evaluation of one checkpoint: seconds of each and the numbers that differ."""
    model, checkpoint, _ = load_trained_model(TrainConfig.from_dict(load_checkpoint(path)["config"]), path,
                                              device="cpu")
    c = checkpoint["config"]
    train = rdata.load_dataset(c["dataset"], "train", data_root)
    test = rdata.load_dataset(c["dataset"], "test", data_root)
    splits = [(rdata.to_float(s.images), s.labels) for s in (train, test)]
    seconds, numbers = {}, {}
    for channels_last in (False, True):
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        model.to(memory_format=fmt)
        (x_tr, y_tr), (x_te, y_te) = [(x.contiguous(memory_format=fmt), y) for x, y in splits]
        t = time.perf_counter()
        out = rmetrics.evaluate(model, (x_tr, y_tr), (x_te, y_te), eps=c["eps"], attacks=ATTACKS, plan=plan,
                                seed=c["seed"], num_classes=10)
        seconds[channels_last] = time.perf_counter() - t
        numbers[channels_last] = {f"{a}: {k}": v for a, m in out.items() for k, v in _flat(m).items()}
    # the yardstick: the same estimates (NCHW) from another random start, the estimator's own noise
    model.to(memory_format=torch.contiguous_format)
    lipschitz_only = dataclasses.replace(plan, pgd_test_images=2, train_images=2)
    other = rmetrics.evaluate(model, None, splits[1], eps=c["eps"], attacks=("pgd",), plan=lipschitz_only,
                              seed=c["seed"] + 1, num_classes=10)["pgd"]
    other_start = max(abs(other[k] / numbers[False][f"pgd: {k}"] - 1) for k in ESTIMATES)
    differ = sorted(k for k in numbers[False] if numbers[False][k] != numbers[True].get(k))
    estimates = [k for k in differ if "lipschitz" in k]
    label = f"{c['model']} {c['method']}" + (" (released)" if c["fidelity"] == "released" else "")
    return {"model": label, "epochs": checkpoint["epoch"], "nchw s": seconds[False], "channels-last s": seconds[True],
            "numbers": len(numbers[False]), "differ": differ,
            "counts differ": [k for k in differ if k not in estimates],
            "estimate max relative difference": max((abs(numbers[True][k] / numbers[False][k] - 1) for k in estimates),
                                                    default=0.0),
            "another random start": other_start,
            "values": {k: (numbers[False][k], numbers[True].get(k)) for k in differ}}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--data-root", default=None, help="dataset root (default: $RLL_DATA)")
    p.add_argument("--plan", default="pgd=1000,lipschitz=200,mt=200,mt_train=100,aa=100,aa_standard=40,train=1000",
                   help="images per column (test side unless *_train/train)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the comparisons here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    sizes = dict(kv.split("=") for kv in args.plan.split(","))
    plan = rmetrics.EvalPlan(pgd_test_images=int(sizes["pgd"]), lipschitz_images=int(sizes["lipschitz"]),
                             mt_test_images=int(sizes["mt"]), mt_train_images=int(sizes["mt_train"]),
                             aa_images=int(sizes["aa"]), aa_standard_images=int(sizes["aa_standard"]),
                             train_images=int(sizes["train"]), batch_size=64)
    rows = []
    for path in args.checkpoints:
        rows.append(compare(path, args.data_root, plan))
        r = rows[-1]
        print(f"{r['model']}: NCHW {r['nchw s']:.0f} s, channels-last {r['channels-last s']:.0f} s, "
              f"{len(r['differ'])} of {r['numbers']} numbers differ", flush=True)
    print(f"\nCPU: {cpu_description()}; torch {torch.__version__}, {args.threads} thread(s); plan {args.plan}\n")
    print("| model | epochs | NCHW s | channels-last s | speed-up | numbers | accuracies identical | "
          "Lipschitz estimates, max relative difference | the same, another random start (NCHW) |")
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in rows:
        same = "yes" if not r["counts differ"] else "no: " + ", ".join(r["counts differ"][:6])
        print(f"| {r['model']} | {r['epochs']} | {r['nchw s']:.0f} | {r['channels-last s']:.0f} | "
              f"{r['nchw s'] / r['channels-last s']:.2f}× | {r['numbers']} | {same} | "
              f"{r['estimate max relative difference']:.1e} | {r['another random start']:.1e} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2, default=str)


if __name__ == "__main__":
    main()
