"""Training throughput: our loop (rll.training.run) against a loop written the way the released code ran.

    python benchmarks/training.py                                # CPU: CNN2 and WRN-16-4
    python benchmarks/training.py --device cuda --steps 50       # adds bf16/channels-last/compile
    python benchmarks/training.py --threads-vs-processes 2       # how a sweep should use 2 cores

For each model and method (natural, AT with PGD-10, TRADES) it times optimiser steps of

* **reference** — as the released code ran: float32 images on the host in a
  ``TensorDataset``-style dataset with per-image augmentation in ``__getitem__`` (CIFAR-shaped
  inputs: random crop with 4-pixel padding + horizontal flip), a ``DataLoader`` (batch 64,
  shuffled, ``--workers`` worker processes), a host→device copy per batch, the loss **summed**
  over the batch (``fidelity="released"``), float32, eager;
* **ours** — :func:`rll.training.loop.make_batch` + :func:`rll.training.loop.train_step` as :func:`rll.training.run.train`
  runs them: the whole split resident on the device as uint8, batches gathered, augmented
  (vectorised) and converted there, the loss the batch mean (``fidelity="paper"``), float32, eager;
* **ours + options**: the same with rll.training.run's speed options — on CUDA ``channels_last``,
  bfloat16 autocast and ``torch.compile`` together, on the CPU ``channels_last`` alone (the
  others measured slower there); ``train(..., channels_last=True)`` etc.

Same machine, same process, same models (rll.models, freshly initialised), inputs uniform
noise with random labels (the cost does not depend on the values).  Each loop runs
``--warmup`` untimed steps, then the loops are timed in alternation, ``--repeats`` rounds of
``--steps`` steps each (device synchronisation at both ends), keeping each loop's best round:
images per second = steps × batch / seconds.  Alternating and keeping the best makes the
ratio robust to other load on a shared machine.  Prints a Markdown table with the ratios
for benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from rll.losses import LOSSES
from rll.models import build_model
from rll.store import cpu_description
from rll.training.loop import make_batch, train_step

MODELS = {  # name: (input shape, ε, augmentation padding, what it stands for)
    "cnn2": ((1, 28, 28), 0.1, None, "MNIST CNN2"),
    "wrn-16-4": ((3, 32, 32), 0.031, 4, "small WRN (CIFAR-10 shape, augmented)"),
}
METHODS = {"natural": {}, "at": {}, "trades": {"beta": 6.0}}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _ReleasedStyleDataset(torch.utils.data.Dataset):
    """Float images on the host; per-image random crop + flip in ``__getitem__`` (what
    ``transforms.RandomCrop(size, padding)`` + ``RandomHorizontalFlip`` did per image)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, pad: int | None):
        self.x, self.y, self.pad = x, y, pad

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        img = self.x[i]
        if self.pad:
            _, h, w = img.shape
            p = torch.nn.functional.pad(img, (self.pad,) * 4)
            dy, dx = (int(v) for v in torch.randint(0, 2 * self.pad + 1, (2,)))
            img = p[:, dy:dy + h, dx:dx + w]
            if torch.rand(()) < 0.5:
                img = img.flip(-1)
        return img, self.y[i]


def synthetic(name: str, images: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``images`` uint8 noise images shaped for model ``name`` and random labels (seed 0): the
    cost of a step does not depend on the values."""
    shape = MODELS[name][0]
    g = torch.Generator().manual_seed(0)
    return (torch.randint(0, 256, (images, *shape), generator=g, dtype=torch.uint8),
            torch.randint(0, 10, (images,), generator=g))


def reference_loop(model_name: str, method: str, x_u8: torch.Tensor, y: torch.Tensor, *, eps: float,
                   pad: int | None, device: torch.device, batch: int, workers: int):
    """A ``run(steps) -> images/s`` closure over the released-style loop (state kept between calls)."""
    torch.manual_seed(0)
    model = build_model(model_name, in_channels=x_u8.shape[1]).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    ds = _ReleasedStyleDataset(x_u8.float() / 255, y, pad)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers,
                                         drop_last=True, persistent_workers=workers > 0)
    loss_fn, params = LOSSES[method], METHODS[method]

    def batches():
        while True:
            yield from loader

    it = batches()

    def run(steps: int) -> float:
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            xb, yb = next(it)
            xb, yb = xb.to(device), yb.to(device)
            model.train()
            loss = loss_fn(model, xb, yb, eps=eps, fidelity="released", **params)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()   # the released loop logged loss.item() every step
        _sync(device)
        return steps * batch / (time.perf_counter() - t0)

    return run


def our_loop(model_name: str, method: str, x_u8: torch.Tensor, y: torch.Tensor, *, eps: float,
             pad: int | None, device: torch.device, batch: int, channels_last: bool = False,
             amp: bool = False, compile_: bool = False):
    """A ``run(steps) -> images/s`` closure over rll.training.run's step (state kept between calls),
    with rll.training.run's speed options."""
    torch.manual_seed(0)
    model = build_model(model_name, in_channels=x_u8.shape[1]).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4 * batch, momentum=0.9)
    fmodel = torch.compile(model) if compile_ else model
    xs, ys = x_u8.to(device), y.to(device)      # resident, as rll.training.run keeps them
    gen = torch.Generator(device=device).manual_seed(0)
    loss_fn, params = LOSSES[method], METHODS[method]
    n = len(ys)
    state = {"i": 0, "perm": torch.randperm(n, generator=gen, device=device)}

    def run(steps: int) -> float:
        pending = []
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            j = (state["i"] * batch) % (n - batch + 1)
            state["i"] += 1
            idx = state["perm"][j:j + batch]
            model.train()
            xb = make_batch(xs, idx, pad, gen, channels_last=channels_last)
            pending.append(train_step(fmodel, opt, loss_fn, xb, ys[idx], eps=eps, fidelity="paper",
                                      params=params, amp=amp))
            if device.type == "cpu" or len(pending) == 50:   # rll.training.run's NaN-check cadence
                torch.stack(pending).isfinite().all().item()
                pending = []
        if pending:
            torch.stack(pending).isfinite().all().item()
        _sync(device)
        return steps * batch / (time.perf_counter() - t0)

    return run


def best_of(loops: dict, warmup: int, steps: int, repeats: int) -> dict:
    """Warm every loop up, then time them in alternation ``repeats`` times; best img/s of each
    (alternating and keeping the best makes the ratio robust to other load on the machine)."""
    for run in loops.values():
        run(warmup)
    best = dict.fromkeys(loops, 0.0)
    for _ in range(repeats):
        for name, run in loops.items():
            best[name] = max(best[name], run(steps))
    return best


def _process_worker(method: str, steps: int, warmup: int, rounds: int, barrier, out) -> None:
    """One single-threaded sweep worker: rll's CNN2 loop (channels-last, as the CPU sweeps run),
    each timed round started together with the other workers' (``barrier``)."""
    torch.set_num_threads(1)
    x, y = synthetic("cnn2", 1024)
    _, eps, pad, _ = MODELS["cnn2"]
    run = our_loop("cnn2", method, x, y, eps=eps, pad=pad, device=torch.device("cpu"), batch=64,
                   channels_last=True)
    run(warmup)
    for _ in range(rounds):
        barrier.wait()
        out.put(run(steps))


def threads_vs_processes(method: str, cores: int, *, steps: int, warmup: int, repeats: int) -> tuple[float, float]:
    """CNN2 training throughput (images/s, all cores together) of one process with ``cores``
    intra-op threads against ``cores`` processes with one thread each, training side by side
    (how a sweep runs its workers); rounds alternate, best kept."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(cores + 1), ctx.Queue()
    procs = [ctx.Process(target=_process_worker, args=(method, steps, warmup, repeats, barrier, out))
             for _ in range(cores)]
    for p in procs:
        p.start()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(cores)
    x, y = synthetic("cnn2", 1024)
    _, eps, pad, _ = MODELS["cnn2"]
    run = our_loop("cnn2", method, x, y, eps=eps, pad=pad, device=torch.device("cpu"), batch=64, channels_last=True)
    run(warmup)
    best_threads = best_processes = 0.0
    try:
        for _ in range(repeats):
            best_threads = max(best_threads, run(steps))        # the workers wait at the barrier meanwhile
            barrier.wait()
            best_processes = max(best_processes, sum(out.get(timeout=600) for _ in procs))
    finally:
        torch.set_num_threads(threads_before)
        for p in procs:
            p.join(timeout=60)
    return best_threads, best_processes


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--batch", type=int, default=64, help="batch size (the released code's 64)")
    ap.add_argument("--steps", type=int, default=None,
                    help="timed steps per loop (default CPU: cnn2 20 natural / 5 adversarial, "
                         "wrn-16-4 3 / 1; CUDA 50)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps (default CPU 2, CUDA 10)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="alternating timed rounds, best kept (default 3; CPU wrn-16-4: 1)")
    ap.add_argument("--images", type=int, default=1024, help="size of the synthetic training set")
    ap.add_argument("--workers", type=int, default=0, help="reference DataLoader workers (released: 4)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--threads-vs-processes", type=int, metavar="CORES", default=None,
                    help="instead: CNN2 images/s of one process with CORES threads against CORES "
                         "one-thread processes side by side (how the sweeps use the cores)")
    args = ap.parse_args(argv)
    if args.threads_vs_processes:
        cores = args.threads_vs_processes
        print(f"cpu {cpu_description()}, torch {torch.__version__}, cpus {os.cpu_count()}, "
              f"CNN2, batch 64, channels-last, {cores} cores")
        print(f"| method | 1 process × {cores} threads img/s | {cores} processes × 1 thread img/s (sum) | processes / threads |")
        print("|---|---:|---:|---:|")
        for method in args.methods:
            steps = args.steps or (20 if method == "natural" else 5)
            t, p = threads_vs_processes(method, cores, steps=steps, warmup=args.warmup or 2, repeats=args.repeats or 3)
            print(f"| {method} | {t:.1f} | {p:.1f} | {p / t:.2f} |", flush=True)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    warmup = args.warmup if args.warmup is not None else (10 if cuda else 2)
    print(f"device {torch.cuda.get_device_name(device) if cuda else cpu_description()}, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}, "
          f"batch {args.batch}, reference DataLoader workers {args.workers}")
    # the speed options measured beside the default loop: on the CPU channels-last alone (bf16
    # autocast and compile measured slower there), on CUDA all three
    extra = ({"bf16, channels-last, compile": dict(channels_last=True, amp=True, compile_=True)} if cuda
             else {"channels-last": dict(channels_last=True)})
    head = "| model | method | reference img/s | ours img/s | ours / reference |"
    sep = "|---|---|---:|---:|---:|"
    for label in extra:
        head += f" ours + {label} img/s | that / reference |"
        sep += "---:|---:|"
    print(head)
    print(sep)
    for name in args.models:
        x, y = synthetic(name, args.images)
        _, eps, pad, _ = MODELS[name]
        for method in args.methods:
            steps = args.steps
            small = not name.startswith("wrn")
            if steps is None:
                steps = 50 if cuda else ((20 if small else 3) if method == "natural" else (5 if small else 1))
            kw = dict(eps=eps, pad=pad, device=device, batch=args.batch)
            loops = {"ref": reference_loop(name, method, x, y, workers=args.workers, **kw),
                     "ours": our_loop(name, method, x, y, **kw)}
            for label, options in extra.items():
                loops[label] = our_loop(name, method, x, y, **options, **kw)
            repeats = args.repeats if args.repeats is not None else (3 if cuda or small else 1)
            best = best_of(loops, warmup, steps, repeats)
            ref, ours = best["ref"], best["ours"]
            row = f"| {name} | {method} | {ref:.1f} | {ours:.1f} | {ours / ref:.2f} |"
            for label in extra:
                row += f" {best[label]:.1f} | {best[label] / ref:.2f} |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
