"""Throughput of the evaluation: PGD-10, the multi-targeted attack (9 targets × 20 steps),
AutoAttack (APGD-CE + APGD-DLR, and the standard version) and the Eq. 3 Lipschitz estimate, at
the released code's evaluation batch (16) and ours (512).

    python benchmarks/attacks.py                      # CPU, CNN2 and WRN-16-2, 512 images
    python benchmarks/attacks.py --device cuda --images 4096
    python benchmarks/attacks.py --checkpoint checkpoints/mnist-cnn2-at-....pt --images 200 \
        --batches 64 --tasks pgd mt autoattack       # a trained model on MNIST test images

Without ``--checkpoint`` the models are rll.models' own (freshly initialised; the cost of PGD,
MT and the Lipschitz estimate does not depend on the weights) and the inputs uniform noise in
[0, 1].  AutoAttack's cost does depend on them — its components attack only the examples still
classified correctly, Square until it succeeds — so AutoAttack is timed only on a trained
checkpoint (``--checkpoint``, a ``python -m rll train`` checkpoint) and MNIST test images.  Each configuration runs once untimed on
one batch (warm-up), then ``--repeats`` times over ``--images`` images; the best repeat is
reported, as images per second.  Prints a Markdown table for benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from rll.attacks import autoattack, multi_targeted, pgd
from rll.metrics import local_lipschitz
from rll.models import build_model
from rll.store import cpu_description

MODELS = {  # name: (input shape, ε, what it stands for)
    "cnn2": ((1, 28, 28), 0.1, "MNIST CNN2"),
    "wrn-16-2": ((3, 32, 32), 0.031, "small WRN (CIFAR-10 shape)"),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, x: torch.Tensor, y: torch.Tensor, batch: int, device: torch.device,
          repeats: int) -> float:
    """Best-of-``repeats`` images/s of ``fn(xb, yb)`` over all of x in batches of ``batch``."""
    fn(x[:batch].to(device), y[:batch].to(device))           # warm-up
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        for i in range(0, len(x), batch):
            fn(x[i:i + batch].to(device), y[i:i + batch].to(device))
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return len(x) / best


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--images", type=int, default=512, help="images per timing (default 512)")
    p.add_argument("--batches", type=int, nargs="+", default=[16, 512])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--tasks", nargs="+", default=None, help="substrings of the task names to run (default: all)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--checkpoint", default=None,
                   help="time this trained MNIST model (an rll training checkpoint) on MNIST test images")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)

    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs ({cpu_description()}), "
          f"load average {os.getloadavg()[0]:.1f}, {args.images} images")
    rows = []
    for name, model, x, y, eps, what in _subjects(args, device):
        gen = torch.Generator().manual_seed(0)
        tasks = {
            "PGD-10": lambda xb, yb: pgd(model, xb, yb, eps=eps, generator=gen),
            "MT (9 targets × 20 steps)": lambda xb, yb: multi_targeted(model, xb, yb, eps=eps, generator=gen),
            "Lipschitz (Eq. 3, 10 steps)": lambda xb, yb: local_lipschitz(
                model, xb, eps=eps, batch_size=len(xb), generator=gen),
        }
        if args.checkpoint:
            tasks["AutoAttack APGD-CE + APGD-DLR"] = lambda xb, yb: autoattack(model, xb, yb, eps=eps, version="apgd")
            tasks["AutoAttack standard"] = lambda xb, yb: autoattack(model, xb, yb, eps=eps, version="standard")
        for task, fn in tasks.items():
            if args.tasks and not any(t.lower() in task.lower() for t in args.tasks):
                continue
            rates = {b: _time(fn, x, y, b, device, args.repeats) for b in args.batches}
            rows.append((what, name, task, rates))
            print(f"  {name:9s} {task:28s} " + "  ".join(f"b{b}: {r:8.1f} img/s"
                                                        for b, r in rates.items()), flush=True)

    lo, hi = min(args.batches), max(args.batches)
    print()
    if lo == hi:
        print(f"| model | task | batch {lo} (img/s) | seconds per 1 000 images |")
        print("|---|---|---:|---:|")
        for what, name, task, rates in rows:
            print(f"| {name} ({what}) | {task} | {rates[lo]:.2f} | {1000 / rates[lo]:.0f} |")
        return
    print(f"| model | task | batch {lo} (img/s) | batch {hi} (img/s) | speed-up |")
    print("|---|---|---:|---:|---:|")
    for what, name, task, rates in rows:
        print(f"| {name} ({what}) | {task} | {rates[lo]:.1f} | {rates[hi]:.1f} | "
              f"{rates[hi] / rates[lo]:.2f}× |")


def _subjects(args, device):
    """(name, model, x, y, eps, description) to time: fresh models on noise, or one trained
    checkpoint on MNIST test images."""
    if args.checkpoint:
        from rll import data as rdata
        from rll.config import TrainConfig
        from rll.training.checkpoint import load_checkpoint

        ckpt = load_checkpoint(args.checkpoint)
        config = TrainConfig.from_dict(ckpt["config"])
        model = build_model(config.model, fidelity=config.fidelity)
        model.load_state_dict(ckpt["model"])
        test = rdata.load_dataset(config.dataset, "test")
        x, y = rdata.to_float(test.images[:args.images]), test.labels[:args.images]
        yield config.model, model.to(device).eval(), x, y, config.eps, f"trained {config.label()}"
        return
    for name in args.models:
        shape, eps, what = MODELS[name]
        yield name, build_model(name).to(device).eval(), torch.rand(args.images, *shape), \
            torch.randint(0, 10, (args.images,)), eps, what


if __name__ == "__main__":
    main()
