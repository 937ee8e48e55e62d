"""bfloat16 against float32 for each training loss: speed, agreement of one step, and trained models.

    python benchmarks/precision.py speed                   # img/s fp32 vs bf16, every loss, CNN2 (--model cnn1)
    python benchmarks/precision.py flatten                 # rll.models.Flatten against nn.Flatten, both CNNs
    python benchmarks/precision.py losses --data-root D [--checkpoints C ...]   # one step, bf16 vs fp32
    python benchmarks/precision.py train --data-root D     # the equivalence runs (stored, resumable)
    python benchmarks/precision.py table                   # the equivalence table from the stored runs
    python benchmarks/precision.py attacks --data-root D   # PGD-10 with bf16 gradients vs fp32, example by example
    python benchmarks/precision.py trades-ascent --data-root D --checkpoints C ...   # TRADES' inner maximum per precision

``speed`` times rll.training.run's step (:func:`rll.training.loop.train_step`, channels-last, batch 64, one
thread unless ``--threads``) in float32 and under bfloat16 autocast, alternating rounds and
keeping each loop's best (as ``benchmarks/training.py``), and prints the CPU's bf16-relevant
flags (``amx_bf16``, ``avx512_bf16``) with the table.

``losses`` trains a CNN2 for one epoch on 20 000 MNIST images (natural loss, fp32), then computes
every loss twice on the same batch of 64 — float32 and bf16 autocast, the same random draws
(``torch.manual_seed`` before each) — and reports the relative change of the loss and the cosine
between the two parameter gradients; and GR's finite-difference quotient (ℓ(x + h·d) − ℓ(x)) / h at
h = 0.01 (the public implementation's) and h = 1 (the released code's, and paper fidelity's since
revision 3).  With ``--checkpoints`` it repeats the table on those trained models (fitted ones: where
the regularisers' terms are smallest) and compares the refused TRADES and paper LLR over 8
batches.  This, with ``train``, is what :data:`rll.losses.BF16_REFUSED` rests on.

``train`` trains CNN2 with each loss that accepts bf16 (natural, AT, GR at h = 1 in both fidelities,
released LLR) and with the refused ones it measures (:data:`MEASURED_REFUSED`: paper TRADES and LLR)
in both precisions, seeds 0, 1 and 2, at a small budget (10 000 images × 2 epochs at the full rate),
and evaluates each as the learning curves do (clean accuracy on the whole test set, PGD-10 on
1 000 fixed test images, both Lipschitz estimators on 1 000).  Records go to ``--results-dir``
(default ``results/precision``), so an interrupted run resumes where it stopped.  ``table``
prints, per loss and quantity, the mean of each precision over the seeds, their difference and
the seed spread (the larger of the two precisions' max − min over seeds); a quantity agrees when
the difference is within that spread.

``attacks`` asks whether the evaluation could take bf16 gradients: on each trained CNN2 checkpoint
of the 60 000-image learning curves (``--checkpoint-dir``), PGD-10 on ``--images`` fixed test
images three times — float32 gradients, bf16-autocast gradients from the same random start, and
float32 from another random start (the attack's own noise) — each adversarial example judged by
the float32 model.  bf16 would be adopted for an attack only if its per-example outcomes were
identical to float32's.

``trades-ascent`` separates TRADES' inner maximum from the evaluation of its loss: on each
checkpoint of ``--checkpoints``, for 8 batches of 64 training images (eval mode), the inner ascent
(:func:`rll.attacks.linf_ascent` with TRADES' start, step and steps at ε = 0.1) runs in float32,
in float32 from other random starts, in bf16 autocast as a bf16 TRADES run takes it (the clean
target too), with the clean target in float32 and every step in bf16, and with the first one or
two steps in float32 and the rest in bf16; the KL it reached is then evaluated in float32 at the
point it found.  A bf16 variant would serve only if the KL it reaches were within the
random starts' spread of float32's.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rll.losses import LOSSES, bf16_refusal  # noqa: E402
from rll.models import build_model  # noqa: E402
from rll.store import cpu_description
from rll.training.loop import make_batch, train_step  # noqa: E402

#: (label, method, fidelity, parameters) of every loss measured.
LOSS_ROWS = (
    ("natural", "natural", "paper", {}),
    ("AT", "at", "paper", {}),
    ("RST(λ=1)", "rst", "paper", {"lam": 1.0}),
    ("TRADES(β=6)", "trades", "paper", {"beta": 6.0}),
    ("GR (paper, h = 1)", "gr", "paper", {}),
    ("GR (paper, h = 0.01)", "gr", "paper", {"h": 0.01}),
    ("GR (released, h = 1)", "gr", "released", {}),
    ("LLR (paper)", "llr", "paper", {}),
    ("LLR (released)", "llr", "released", {}),
)
#: The equivalence runs: the losses that accept bf16, at the small budget.
EQUIVALENCE_ROWS = (("natural", "paper", {}), ("at", "paper", {}), ("gr", "released", {}), ("llr", "released", {}),
                    ("gr", "paper", {}))
#: Refused losses whose trained models are measured too, to test the refusal: their bf16 runs are
#: made with the refusal lifted in this process only (:func:`_refusal_lifted`).  Both agreed with
#: float32 at the small budget; on fitted checkpoints (``losses --checkpoints``) bf16 moved their
#: loss by half or more, so they stay refused.
MEASURED_REFUSED = (("trades", "paper", {"beta": 6.0}), ("llr", "paper", {}))
EQUIVALENCE_BUDGET = {"train_size": 10_000, "epochs": 2, "milestones": ()}
EQUIVALENCE_SEEDS = (0, 1, 2)
QUANTITIES = (("test_acc", "clean %"), ("adv_test_acc", "PGD-10 %"),
              ("test_lipschitz_released", "Lipschitz (released)"), ("train_acc", "train %"))


def step_loop(model_name: str, method: str, fidelity: str, params: dict, amp: bool, plain_flatten: bool = False):
    """A timer of training steps: ``run(steps)`` runs that many rll training steps (batch 64,
    channels-last, synthetic MNIST-shaped images) of a fresh ``model_name`` and returns img/s.
    ``plain_flatten``: the model flattens with ``nn.Flatten`` in place of ``rll.models.Flatten``."""
    from benchmarks.training import MODELS, synthetic

    x_u8, y = synthetic("cnn2", 1024)        # MNIST-shaped images, for either MNIST CNN
    _, eps, pad, _ = MODELS["cnn2"]
    torch.manual_seed(0)
    model = build_model(model_name, fidelity=fidelity).to(memory_format=torch.channels_last)
    if plain_flatten:
        model.classifier[0] = torch.nn.Flatten()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    state = {"i": 0}

    def run(steps):
        t0 = time.perf_counter()
        for _ in range(steps):
            j = (state["i"] * 64) % (len(y) - 64)
            state["i"] += 1
            idx = torch.arange(j, j + 64)
            xb = make_batch(x_u8, idx, pad, gen, channels_last=True)
            train_step(model.train(), opt, LOSSES[method], xb, y[idx], eps=eps, fidelity=fidelity,
                       params=params, amp=amp).item()
        return steps * 64 / (time.perf_counter() - t0)
    return run


def speed(args) -> None:
    from benchmarks.training import best_of

    torch.set_num_threads(args.threads)
    print(f"{cpu_description()}; torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.model.upper()}, batch 64, "
          "channels-last, best of rounds alternating fp32 and bf16")
    print("| loss | fp32 img/s | bf16 img/s | bf16 / fp32 | bf16 allowed |")
    print("|---|---:|---:|---:|---|")
    for label, method, fidelity, params in LOSS_ROWS:
        steps = args.steps or (30 if method in ("natural", "gr") else 6)
        best = best_of({"fp32": step_loop(args.model, method, fidelity, params, False),
                        "bf16": step_loop(args.model, method, fidelity, params, True)},
                       warmup=2, steps=steps, repeats=args.repeats)
        allowed = "no (refused)" if bf16_refusal(method, fidelity, params) else "yes"
        print(f"| {label} | {best['fp32']:.0f} | {best['bf16']:.0f} | {best['bf16'] / best['fp32']:.2f} | {allowed} |",
              flush=True)


def flatten(args) -> None:
    """rll.models.Flatten against nn.Flatten: training steps of both MNIST CNNs, in alternation."""
    from benchmarks.training import best_of

    torch.set_num_threads(args.threads)
    print(f"{cpu_description()}; torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch 64, "
          "channels-last, best of rounds alternating the two flattens")
    print("| model | loss | precision | nn.Flatten img/s | rll Flatten img/s | speed-up |")
    print("|---|---|---|---:|---:|---:|")
    for model in ("cnn1", "cnn2"):
        for label, method, params, amp in (("natural", "natural", {}, True), ("AT", "at", {}, True),
                                           ("TRADES(β=6)", "trades", {"beta": 6.0}, False)):
            steps = args.steps or (30 if method == "natural" else 6)
            best = best_of({"plain": step_loop(model, method, "paper", params, amp, plain_flatten=True),
                            "rll": step_loop(model, method, "paper", params, amp)},
                           warmup=2, steps=steps, repeats=args.repeats)
            print(f"| {model.upper()} | {label} | {'bf16' if amp else 'fp32'} | {best['plain']:.0f} | {best['rll']:.0f} | "
                  f"{best['rll'] / best['plain']:.2f}× |", flush=True)


def _one_epoch_model(data_root, with_data: bool = False):
    from rll.data import load_dataset

    ds = load_dataset("mnist", "train", root=data_root)
    x, y = ds.images[:20_000].float().div(255), ds.labels[:20_000]
    torch.manual_seed(0)
    model = build_model("cnn2", fidelity="paper")
    opt = torch.optim.SGD(model.parameters(), lr=6.4e-3, momentum=0.9)
    model.train()
    for i in range(0, len(y) - 64, 64):
        loss = F.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (model, x[-64:], y[-64:]) + ((x, y) if with_data else ())


def _one_step_table(model, x, y) -> None:
    """Every loss of :data:`LOSS_ROWS` on the batch ``(x, y)``, float32 against bf16 autocast
    with the same random draws, and float32 with other draws (the loss's own randomness: dropout
    masks, random starts), as a Markdown table."""
    def step(method, fidelity, params, amp, seed=123):
        torch.manual_seed(seed)
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            loss = LOSSES[method](model.train(), x, y, eps=0.1, fidelity=fidelity, **params)
        loss.backward()
        return loss.item(), torch.cat([p.grad.flatten() for p in model.parameters()])

    print("| loss | loss fp32 | loss bf16 | relative change | gradient cosine | cosine, fp32 with other random "
          "draws | bf16 allowed |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for label, method, fidelity, params in LOSS_ROWS:
        l32, g32 = step(method, fidelity, params, False)
        l16, g16 = step(method, fidelity, params, True)
        _, g32_other = step(method, fidelity, params, False, seed=124)     # the loss's own randomness
        cos = F.cosine_similarity(g32, g16, dim=0).item()
        floor = F.cosine_similarity(g32, g32_other, dim=0).item()
        allowed = "no (refused)" if bf16_refusal(method, fidelity, params) else "yes"
        print(f"| {label} | {l32:.4f} | {l16:.4f} | {abs(l16 - l32) / abs(l32):.3f} | {cos:.3f} | {floor:.3f} | "
              f"{allowed} |")


#: The refused losses whose loss is compared over several batches on a fitted checkpoint.
BIAS_ROWS = (("TRADES(β=6)", "trades", "paper", {"beta": 6.0}), ("LLR (paper)", "llr", "paper", {}))


def _bias_lines(model, x, y, batches: int = 8) -> None:
    """Each of :data:`BIAS_ROWS` on ``batches`` batches of 64 (eval mode, the same draws in both
    precisions): the mean loss in float32 and in bf16, and in how many batches bf16's is lower —
    whether bf16 shifts the loss one way (a weaker inner maximum) or only adds noise."""
    for label, method, fidelity, params in BIAS_ROWS:
        pairs = []
        for b in range(batches):
            xb, yb = x[b * 64:(b + 1) * 64], y[b * 64:(b + 1) * 64]
            pair = []
            for amp in (False, True):
                torch.manual_seed(1000 + b)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                    pair.append(LOSSES[method](model.eval(), xb, yb, eps=0.1, fidelity=fidelity, **params).item())
            pairs.append(pair)
        t = torch.tensor(pairs)
        print(f"- {label}, {batches} batches of 64, eval mode: mean loss fp32 {t[:, 0].mean():.4f}, bf16 "
              f"{t[:, 1].mean():.4f}; bf16 lower in {(t[:, 1] < t[:, 0]).sum().item()} of {batches}")


def _checkpoint_model(path):
    """The model in a training checkpoint (finished or not) and a label saying what it is."""
    from rll.config import TrainConfig
    from rll.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    config = TrainConfig.from_dict(ckpt["config"])
    model = build_model(config.model, dropout=config.dropout, fidelity=config.fidelity)
    model.load_state_dict(ckpt["model"])
    return model, (f"{config.label()}, fidelity {config.fidelity}, seed {config.seed}, "
                   f"{config.train_size or 60000} images, epoch {ckpt['epoch']}")


def losses(args) -> None:
    torch.set_num_threads(args.threads)
    model, x, y, train_x, train_y = _one_epoch_model(args.data_root, with_data=True)
    print("CNN2 after one natural epoch on 20 000 MNIST images; one batch of 64, same random draws")
    _one_step_table(model, x, y)
    for path in args.checkpoints or ():     # late in training: fitted models, where the terms are smallest
        trained, label = _checkpoint_model(path)
        print(f"\nCNN2 {label} ({Path(path).name}); the same batch")
        _one_step_table(trained, x, y)
        _bias_lines(trained, train_x, train_y)

    model.eval()
    print("\nGR's finite-difference quotient (ℓ(x + h·d) − ℓ(x)) / h, eval mode, per example (64):")
    print("| h | median quotient (fp32) | median abs(bf16 − fp32) | max abs(bf16 − fp32) |")
    print("|---:|---:|---:|---:|")
    for h in (0.01, 1.0):
        q = {}
        for amp in (False, True):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                x0 = x.clone().requires_grad_(True)
                ce = F.cross_entropy(model(x0), y, reduction="none")
                (g,) = torch.autograd.grad(ce.sum(), x0)
                d = g / g.flatten(1).norm(dim=1).clamp_min(1e-30).view(-1, 1, 1, 1)
                q[amp] = ((F.cross_entropy(model(x + h * d), y, reduction="none") - ce) / h).detach().float()
        diff = (q[True] - q[False]).abs()
        print(f"| {h:g} | {q[False].median():.4f} | {diff.median():.4f} | {diff.max():.4f} |")


def _refusal_lifted(method: str, fidelity: str):
    """A context in which bf16 is not refused for (``method``, ``fidelity``), in this process only:
    how the equivalence runs of a refused loss are made (the refusal itself is what they test)."""
    from unittest import mock

    from rll.losses import BF16_REFUSED

    return mock.patch.dict(BF16_REFUSED, {(method, fidelity): (lambda p: False, "lifted to measure it")})


def _configs(rows=None):
    from contextlib import ExitStack

    from rll.config import TrainConfig

    for method, fidelity, params in rows or EQUIVALENCE_ROWS + MEASURED_REFUSED:
        for precision in ("fp32", "bf16"):
            for seed in EQUIVALENCE_SEEDS:
                with ExitStack() as lifted:
                    if (method, fidelity, params) in MEASURED_REFUSED:
                        lifted.enter_context(_refusal_lifted(method, fidelity))
                    yield TrainConfig(dataset="mnist", model="cnn2", method=method, fidelity=fidelity, params=params,
                                      seed=seed, precision=precision, **EQUIVALENCE_BUDGET)


def _plan():
    from rll.metrics import EvalPlan

    return EvalPlan(train_images=2000, pgd_test_images=1000, lipschitz_images=1000, batch_size=64)


def train_runs(args) -> None:
    from rll.training.run import train

    torch.set_num_threads(args.threads)
    rows = [r for r in EQUIVALENCE_ROWS + MEASURED_REFUSED if not args.methods or r[0] in args.methods]
    for config in _configs(rows):
        refused = (config.method, config.fidelity) in {(m, f) for m, f, _ in MEASURED_REFUSED}
        with _refusal_lifted(config.method, config.fidelity) if refused else nullcontext():
            record = train(config, data_root=args.data_root, results_dir=args.results_dir,
                           checkpoint_dir=args.checkpoint_dir, eval_plan=_plan(), channels_last=True,
                           progress=not args.quiet)
        m = record["metrics"]
        print(f"{config.label()} seed {config.seed}: clean {m['test_acc']:.2f}, PGD-10 {m['adv_test_acc']:.1f}, "
              f"Lipschitz {m['test_lipschitz_released']:.2f}", flush=True)


def equivalence_label(method: str, fidelity: str, params: dict) -> str:
    """A loss's label in the equivalence table: ``TRADES(β=6)``, ``GR (released)``."""
    from rll.experiments.tables import method_label, row_params

    return method_label(method, row_params(method, params)) + (f" ({fidelity})" if method in ("gr", "llr") else "")


def equivalence_rows(results_dir) -> list[dict]:
    """One row per (loss, quantity): each precision's mean over the seeds, their difference, the
    seed spread and whether the difference is within it; rows whose runs are missing are left out."""
    import numpy as np

    from rll.store import ResultsStore

    store = ResultsStore(results_dir)
    rows = []
    for method, fidelity, params in EQUIVALENCE_ROWS + MEASURED_REFUSED:
        configs = [c for c in _configs() if (c.method, c.fidelity) == (method, fidelity)]
        records = {(c.precision, c.seed): store.get(c) for c in configs}
        if any(r is None for r in records.values()):
            continue
        label = equivalence_label(method, fidelity, params)
        for key, name in QUANTITIES:
            values = {p: np.array([records[p, s]["metrics"][key] for s in EQUIVALENCE_SEEDS]) for p in ("fp32", "bf16")}
            spread = max(np.ptp(v) for v in values.values())
            diff = values["bf16"].mean() - values["fp32"].mean()
            rows.append({"loss": label, "quantity": name, "fp32": values["fp32"].mean(), "bf16": values["bf16"].mean(),
                         "bf16 − fp32": diff, "seed spread": spread, "agree": abs(diff) <= spread,
                         "seconds fp32": sum(records["fp32", s]["provenance"]["train_seconds"] for s in EQUIVALENCE_SEEDS),
                         "seconds bf16": sum(records["bf16", s]["provenance"]["train_seconds"] for s in EQUIVALENCE_SEEDS)})
    return rows


def table(args) -> None:
    rows = equivalence_rows(args.results_dir)
    if not rows:
        print(f"no complete equivalence runs in {args.results_dir}: run `python benchmarks/precision.py train` first")
        return
    b = EQUIVALENCE_BUDGET
    print(f"CNN2, {b['train_size']} images × {b['epochs']} epochs at the full rate, seeds "
          f"{', '.join(map(str, EQUIVALENCE_SEEDS))}; mean over seeds")
    refused = {equivalence_label(m, f, p) for m, f, p in MEASURED_REFUSED}
    print("| loss | quantity | fp32 | bf16 | bf16 − fp32 | seed spread | within the spread | bf16 allowed |")
    print("|---|---|---:|---:|---:|---:|---|---|")
    for r in rows:
        print(f"| {r['loss']} | {r['quantity']} | {r['fp32']:.2f} | {r['bf16']:.2f} | {r['bf16 − fp32']:+.2f} | "
              f"{r['seed spread']:.2f} | {'yes' if r['agree'] else '**no**'} | "
              f"{'no (refused)' if r['loss'] in refused else 'yes'} |")


class _Bf16Gradients(torch.nn.Module):
    """``model`` under bfloat16 autocast, its logits returned in float32: an attack through it
    takes bf16 gradients."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return self.model(x).float()


def attack_precision(args) -> None:
    from rll.attacks import pgd
    from rll.data import load_dataset, to_float
    from rll.metrics.evaluate import fixed_subset
    from rll.training.checkpoint import CheckpointMismatch, load_checkpoint

    torch.set_num_threads(args.threads)
    test = load_dataset("mnist", "test", root=args.data_root)
    idx = fixed_subset(len(test.labels), args.images)
    x, y = to_float(test.images)[idx], test.labels[idx]
    rows = []
    for path in sorted(Path(args.checkpoint_dir).glob("mnist-cnn2-*.pt")):
        try:
            ckpt = load_checkpoint(path)
        except CheckpointMismatch as err:  # e.g. being rewritten by a running worker
            print(f"skipped: {err}", file=sys.stderr)
            continue
        c = ckpt["config"]
        if c.get("train_size") is not None or c.get("milestones") or ckpt["epoch"] < 10:
            continue                       # only the trained full-data, full-rate learning curves
        model = build_model("cnn2", fidelity=c["fidelity"])
        model.load_state_dict(ckpt["model"])
        model.eval()

        def robust(attacked, seed):
            t0 = time.perf_counter()
            x_adv = pgd(attacked, x, y, eps=0.1, generator=torch.Generator().manual_seed(seed))
            seconds = time.perf_counter() - t0
            with torch.no_grad():
                return model(x_adv).argmax(1) == y, seconds

        fp32, t32 = robust(model, 0)
        bf16, t16 = robust(_Bf16Gradients(model), 0)
        other, _ = robust(model, 1)
        params = {k: v for k, v in c["params"].items() if v is not None and k in ("beta", "h", "lam")}
        label = f"{c['method']}{params or ''} ({c['fidelity']}, {ckpt['epoch']} ep, trained {c.get('precision', 'fp32')})"
        rows.append((label, fp32.float().mean() * 100, bf16.float().mean() * 100, int((bf16 != fp32).sum()),
                     int((other != fp32).sum()), t32 / t16))
    print(f"{cpu_description()}; torch {torch.__version__}, {torch.get_num_threads()} thread(s); PGD-10 (ε = 0.1, step "
          f"0.02) on {len(y)} fixed MNIST test images, outcomes judged by the float32 model")
    print("| model | robust % (fp32 gradients) | robust % (bf16 gradients) | examples that differ, bf16 vs fp32 "
          "(same start) | examples that differ, fp32 vs fp32 (another start) | bf16 speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, a, b, diff, noise, ratio in rows:
        print(f"| {label} | {a:.1f} | {b:.1f} | {diff} | {noise} | {ratio:.2f}× |")


#: The inner ascents of ``trades-ascent``: label → (first step in bf16, or None for float32
#: throughout; whether the clean target is computed in bf16 too; the random starts' seed offset).
ASCENT_VARIANTS = {"float32": (None, False, 0), "float32, other random starts": (None, False, 1),
                   "bf16 (a bf16 TRADES run's)": (0, True, 0), "bf16 steps, float32 clean target": (0, False, 0),
                   "float32 first step, bf16 after": (1, False, 0), "float32 two steps, bf16 after": (2, False, 0)}


def trades_ascent(args) -> None:
    from rll.attacks import linf_ascent
    from rll.data import load_dataset, to_float
    from rll.losses import resolve_params
    from rll.losses.common import _kl

    torch.set_num_threads(args.threads)
    train = load_dataset("mnist", "train", root=args.data_root)
    x_all = to_float(train.images[:512])
    p = resolve_params("trades", eps=0.1, fidelity="paper", beta=6.0)

    def reached(model, x, first_bf16, clean_bf16, seed) -> float:
        """The batch's mean KL(f(x) ‖ f(x′)) in float32 at the x′ the ascent found."""
        def bf16(on: bool):
            return torch.autocast("cpu", dtype=torch.bfloat16, enabled=on)

        with torch.no_grad(), bf16(clean_bf16):
            target = F.softmax(model(x), dim=1).float()
        calls = [0]

        def objective(z):
            calls[0] += 1
            with bf16(first_bf16 is not None and calls[0] > first_bf16):
                return _kl(F.log_softmax(model(z), dim=1), target)

        x_adv = linf_ascent(objective, x, eps=0.1, step=p["step"], steps=p["steps"], start="normal",
                            project_start=False, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            return _kl(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x), dim=1)).mean().item()

    print(f"{cpu_description()}; torch {torch.__version__}; TRADES' inner ascent (ε = 0.1, {p['steps']} steps of "
          f"{p['step']:g}, start x + 0.001·N(0, I)) on 8 batches of 64 MNIST training images, eval mode; the KL "
          "reached, evaluated in float32 at the point found")
    for path in args.checkpoints or ():
        model, label = _checkpoint_model(path)
        model.eval()
        kl = {name: torch.tensor([reached(model, x_all[b * 64:(b + 1) * 64], first, clean, 1000 + b + 500 * other)
                                  for b in range(8)])
              for name, (first, clean, other) in ASCENT_VARIANTS.items()}
        base = kl["float32"]
        print(f"\nCNN2 {label} ({Path(path).name})")
        print("| inner ascent | mean KL reached | ÷ float32's | batches below float32's |")
        print("|---|---:|---:|---:|")
        for name, values in kl.items():
            print(f"| {name} | {values.mean():.5f} | {values.mean() / base.mean():.3f} | "
                  f"{(values < base).sum().item()} of 8 |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("speed", "flatten", "losses", "train", "table", "attacks",
                                           "trades-ascent"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=None, help="speed: timed steps per round")
    ap.add_argument("--model", default="cnn2", choices=("cnn1", "cnn2"), help="speed: the MNIST network timed")
    ap.add_argument("--repeats", type=int, default=3, help="speed: alternating rounds, best kept")
    ap.add_argument("--data-root", default=os.environ.get("RLL_DATA"))
    ap.add_argument("--results-dir", default=str(REPO / "results" / "precision"))
    ap.add_argument("--checkpoint-dir", default=str(REPO / "checkpoints" / "precision"))
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--images", type=int, default=1000, help="attacks: fixed test images")
    ap.add_argument("--methods", nargs="+", default=None, help="train: only these losses' equivalence runs")
    ap.add_argument("--checkpoints", nargs="*", default=None,
                    help="losses, trades-ascent: (also) on these training checkpoints (trained models, finished "
                         "or not)")
    args = ap.parse_args(argv)
    if args.what == "attacks" and args.checkpoint_dir == str(REPO / "checkpoints" / "precision"):
        args.checkpoint_dir = str(REPO / "checkpoints")     # the 60 000-image learning curves' checkpoints
    {"speed": speed, "flatten": flatten, "losses": losses, "train": train_runs, "table": table, "attacks": attack_precision,
     "trades-ascent": trades_ascent}[args.what](args)


if __name__ == "__main__":
    main()
