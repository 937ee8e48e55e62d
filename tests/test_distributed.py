"""rll.training.distributed: one run data-parallel under a real ``torchrun`` (gloo on the CPU).

The comparison tests train the same configuration once in one process and once with
``torchrun --nproc_per_node 2`` and compare the records.  Measured tolerance (2 epochs,
249 MNIST images in batches of 32, the last batch split 13/12, SGD at lr 0.05): with a
dropout-free MLP and natural training — nothing random in the step, so only the order of
floating-point sums differs — parameters agree to |Δ| ≤ 1.5e-8 (mean loss) and ≤ 1.2e-6 for
weights of size ~7 (summed loss), per-epoch losses to ~1e-8 relative, accuracies exactly and the
Lipschitz estimate to ~1e-6 relative.  The tests assert |Δw| ≤ 1e-5 · max|w|, losses and the
Lipschitz estimate to 1e-4 relative and accuracies to one example.  Methods that draw random
numbers per example (attack random starts, dropout masks) draw them per rank, so there the two
runs differ as two seeds do (AT: |Δw| ≈ 6 % of max|w| after 2 epochs); for those the tests check
that a killed data-parallel run resumes to the uninterrupted data-parallel run's record
exactly.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from rll.config import TrainConfig
from rll.store import ResultsStore
from rll.training import distributed as rdist
from rll.training.checkpoint import checkpoint_path, load_checkpoint

REPO = Path(__file__).resolve().parents[1]

# The command line with a dropout-free MLP in place of CNN1 (written to a file: torchrun runs
# scripts).  RLL_TEST_KILL_AT=N makes rank 0 send itself RLL_TEST_SIGNAL (default SIGKILL) after
# its N-th optimiser step.
_ENTRY = textwrap.dedent('''
    import functools, os, signal, sys
    import torch
    from torch import nn
    import rll.models, rll.training.run

    def build_model(name, *, num_classes=10, in_channels=None, dropout=0.0, fidelity="paper"):
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, num_classes))

    rll.models.build_model = build_model
    kill_at = int(os.environ.get("RLL_TEST_KILL_AT", "0"))
    if kill_at and os.environ.get("RANK", "0") == "0":
        steps = []
        def hook(epoch, step):
            steps.append(step)
            if len(steps) == kill_at:
                os.kill(os.getpid(), getattr(signal, os.environ.get("RLL_TEST_SIGNAL", "SIGKILL")))
        rll.training.run.train = functools.partial(rll.training.run.train, on_step=hook)
    from rll.cli import main
    raise SystemExit(main())
''')

TINY = ["--dataset", "mnist", "--model", "cnn1", "--train-size", "249", "--test-size", "64",
        "--batch-size", "32", "--lr", "0.05", "--device", "cpu", "--json"]


# ---------------------------------------------------------------------- the group, in one process

def test_single_process_group_is_the_identity():
    g = rdist.SINGLE
    x = torch.arange(10)
    assert g.shard(x) is x and g.loss_weight(3, 7, summed=False) == 1.0 and g.is_main
    assert g.sum(x) is x and g.rng_states(torch.device("cpu")) == {} and g.provenance() == {"world_size": 1}
    assert g.decide(lambda a, b=0: a + b, 1, b=2) == 3
    g.check_same(5, "anything")
    group, device = rdist.join("cpu")
    assert group is rdist.SINGLE and device == "cpu"       # not under torchrun: nothing opened
    assert not torch.distributed.is_initialized()


def test_shards_and_weights_rebuild_the_global_batch():
    ranks = [rdist.Group(rank=r, world_size=3) for r in range(3)]
    batch = torch.arange(8)
    shards = [g.shard(batch) for g in ranks]
    assert [s.tolist() for s in shards] == [[0, 3, 6], [1, 4, 7], [2, 5]]
    assert sorted(torch.cat(shards).tolist()) == batch.tolist()
    # mean losses: the shards' weights sum to one; summed losses: each counts fully
    assert sum(g.loss_weight(len(s), 8, summed=False) for g, s in zip(ranks, shards)) == pytest.approx(1)
    assert all(g.loss_weight(len(s), 8, summed=True) == 1.0 for g, s in zip(ranks, shards))
    assert ranks[0].is_main and not ranks[1].is_main
    assert ranks[2].provenance() == {"world_size": 3}


@pytest.mark.parametrize("n, batch, ok", [(11, 4, True), (9, 4, False), (8, 4, True), (2, 4, False),
                                          (12, 2, False)])
def test_every_batch_must_give_each_rank_an_example(n, batch, ok):
    g = rdist.Group(rank=0, world_size=3)
    if ok:
        g.check_batches(n, batch)
    else:
        with pytest.raises(ValueError, match="cannot split batches over 3 processes"):
            g.check_batches(n, batch)


def test_autoattack_shares_put_the_costliest_configuration_on_rank_1():
    from rll.training.run import autoattack_shares

    every = ("pgd", "mt", "aa-apgd", "aa")
    assert autoattack_shares(every, 1) == {}
    assert autoattack_shares(every, 2) == {1: "aa"}                      # rank 0 keeps aa-apgd
    assert autoattack_shares(every, 4) == {1: "aa", 2: "aa-apgd"}        # rank 3 has nothing to do
    assert autoattack_shares(("pgd", "aa-apgd"), 2) == {1: "aa-apgd"}
    assert autoattack_shares(("pgd", "mt"), 2) == {}


def test_evaluate_takes_autoattack_flags_measured_elsewhere():
    """The flags another process measures (autoattack_flags) give the record one process gives,
    and the record is built from the flags handed over, not measured again."""
    from torch import nn

    from rll.metrics import EvalPlan, autoattack_flags, evaluate

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    x, y = torch.rand(12, 1, 4, 4), torch.arange(12) % 3
    plan = EvalPlan(aa_images=8, batch_size=4)
    here = evaluate(model, None, (x, y), eps=0.1, attacks=("pgd", "aa-apgd"), plan=plan)
    flags = autoattack_flags(model, (x, y), "aa-apgd", eps=0.1, plan=plan)
    asked = []
    handed = evaluate(model, None, (x, y), eps=0.1, attacks=("pgd", "aa-apgd"), plan=plan,
                      measured_elsewhere=lambda a: asked.append(a) or flags)
    assert asked == ["aa-apgd"] and handed == here
    none_robust = {k: torch.zeros_like(v) for k, v in flags.items()}
    out = evaluate(model, None, (x, y), eps=0.1, attacks=("pgd", "aa-apgd"), plan=plan,
                   measured_elsewhere=lambda a: none_robust)["aa-apgd"]
    assert out["adv_test_acc"] == 0.0 and set(out["components"].values()) == {0.0}
    with pytest.raises(ValueError, match="attack must be one of"):
        autoattack_flags(model, (x, y), "pgd", eps=0.1, plan=plan)


# ---------------------------------------------------------------------- real torchrun (gloo)

def _run(tmp_path: Path, nproc: int, tag: str, args: list[str], *, kill_at: int = 0,
         signal_name: str = "SIGKILL", timeout: int = 600, command: str = "train",
         checkpoints_of: str | None = None) -> subprocess.CompletedProcess:
    """``command`` (train, evaluate) in ``nproc`` processes, storing under ``tmp_path/tag`` (the
    checkpoints under ``tmp_path/checkpoints_of`` if given)."""
    entry = tmp_path / "entry.py"
    entry.write_text(_ENTRY)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "RLL_TEST_KILL_AT": str(kill_at),
           "RLL_TEST_SIGNAL": signal_name}
    where = ["--results-dir", str(tmp_path / tag / "res"),
             "--checkpoint-dir", str(tmp_path / (checkpoints_of or tag) / "ck")]
    if nproc == 1:
        cmd = [sys.executable, str(entry)]
    else:
        with socket.socket() as s:          # a free port for the rendezvous
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
               "--master_addr", "127.0.0.1", "--master_port", str(port), str(entry)]
    return subprocess.run([*cmd, command, *args, *where], capture_output=True, text=True, env=env,
                          timeout=timeout)


def _record(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _weights(tmp_path: Path, tag: str, config: TrainConfig) -> dict:
    return load_checkpoint(checkpoint_path(config, tmp_path / tag / "ck"), config)["model"]


def _config(args: list[str]) -> TrainConfig:
    from rll import cli

    return cli._config_from_args(cli.build_parser().parse_args(["train", *args]))


@pytest.mark.slow
@pytest.mark.parametrize("fidelity", ["paper", "released"])
def test_torchrun_two_processes_match_one_process(tmp_path, data_root, fidelity):
    args = [*TINY, "--epochs", "2", "--fidelity", fidelity]
    one = _record(_run(tmp_path, 1, "one", args))
    two = _record(_run(tmp_path, 2, "two", args))
    config = _config(args)
    assert one["config"] == two["config"] == config.canonical()        # same store key
    assert one["provenance"]["world_size"] == 1
    assert two["provenance"]["world_size"] == 2 and two["provenance"]["distributed_backend"] == "gloo"
    assert two["provenance"]["n_train"] == one["provenance"]["n_train"] == 249
    # only rank 0 wrote: one record, no claim left, the checkpoint named relative to its folder
    store = ResultsStore(tmp_path / "two" / "res")
    assert len(store.records()) == 1 and not list(store.root.glob("*.claim"))
    assert two["provenance"]["checkpoint"] == checkpoint_path(config, tmp_path / "two" / "ck").name
    wa, wb = _weights(tmp_path, "one", config), _weights(tmp_path, "two", config)
    scale = max(w.abs().max().item() for w in wa.values())
    diff = max((wa[k] - wb[k]).abs().max().item() for k in wa)
    assert diff <= 1e-5 * scale, (diff, scale)
    la = [h["loss"] for h in one["provenance"]["history"]]
    lb = [h["loss"] for h in two["provenance"]["history"]]
    assert lb == pytest.approx(la, rel=1e-4)
    for key in ("train_acc", "test_acc", "adv_train_acc", "adv_test_acc"):
        n = one["provenance"]["n_train" if key.endswith("train_acc") else "n_test"]
        assert abs(one[key] - two[key]) <= 100 / n + 1e-9, key
    assert two["test_lipschitz"] == pytest.approx(one["test_lipschitz"], rel=1e-4)


@pytest.mark.slow
def test_torchrun_run_killed_mid_epoch_resumes_to_the_same_record(tmp_path, data_root):
    """Adversarial training (per-shard PGD with per-rank random starts): a data-parallel run
    killed in its second epoch resumes, on every rank, from rank 0's checkpoint and its
    per-rank random states, to the uninterrupted data-parallel run's record."""
    args = [*TINY, "--epochs", "3", "--method", "at", "--steps", "3"]
    config = _config(args)
    full = _record(_run(tmp_path, 2, "full", args))
    killed = _run(tmp_path, 2, "killed", args, kill_at=12)     # 8 steps an epoch: dies in epoch 2
    assert killed.returncode != 0
    ckpt = load_checkpoint(checkpoint_path(config, tmp_path / "killed" / "ck"), config)
    assert ckpt["epoch"] == 1 and len(ckpt["rng"]["ranks"]) == 2 and ckpt["world_sizes"] == [2]
    assert ResultsStore(tmp_path / "killed" / "res").get(config) is None
    resumed = _record(_run(tmp_path, 2, "killed", args))
    assert resumed["provenance"]["resumed_from_epoch"] == 1 and resumed["provenance"]["world_size"] == 2
    for key in ("train_acc", "test_acc", "adv_train_acc", "adv_test_acc", "test_lipschitz", "final_train_loss"):
        assert resumed[key] == full[key], key
    wa, wb = _weights(tmp_path, "full", config), _weights(tmp_path, "killed", config)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_torchrun_run_stopped_by_a_signal_to_one_rank_stops_every_rank_at_one_step_and_resumes_there(
        tmp_path, data_root):
    """SIGTERM to rank 0 alone, in the second epoch: the ranks agree on the next step, both stop
    after it (rank 1 never saw the signal), rank 0 writes the checkpoint inside the epoch, and
    torchrun run again resumes at that step to the uninterrupted data-parallel run's record."""
    args = [*TINY, "--epochs", "3", "--method", "at", "--steps", "3"]
    config = _config(args)
    full = _record(_run(tmp_path, 2, "full", args))
    stopped = _run(tmp_path, 2, "stopped", args, kill_at=12, signal_name="SIGTERM")   # epoch 2, step 4 of 8
    assert stopped.returncode != 0
    said = "stopped by SIGTERM in epoch 2/3 after step 5/8"
    assert stopped.stderr.count(said) == 2, stopped.stderr[-3000:]         # both ranks, at one step
    ckpt = load_checkpoint(checkpoint_path(config, tmp_path / "stopped" / "ck"), config)
    assert ckpt["epoch"] == 1 and ckpt["partial"]["step"] == 5 and len(ckpt["rng"]["ranks"]) == 2
    assert ResultsStore(tmp_path / "stopped" / "res").get(config) is None
    resumed = _record(_run(tmp_path, 2, "stopped", args))
    assert resumed["provenance"]["resumed_in_epoch"] == {"epoch": 2, "step": 5}
    for key in ("train_acc", "test_acc", "adv_train_acc", "adv_test_acc", "test_lipschitz", "final_train_loss"):
        assert resumed[key] == full[key], key
    wa, wb = _weights(tmp_path, "full", config), _weights(tmp_path, "stopped", config)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_torchrun_claimed_run_stops_every_rank(tmp_path, data_root):
    """Rank 0 alone looks at the store and claims; its refusal reaches every rank (no hang)."""
    args = [*TINY, "--epochs", "1"]
    config = _config(args)
    store = ResultsStore(tmp_path / "busy" / "res")
    path = store.claim_path(config.training_canonical())
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"owner": "another worker", "pid": os.getpid(), "host": socket.gethostname(),
                                "time": time.time()}))
    proc = _run(tmp_path, 2, "busy", args, timeout=300)
    assert proc.returncode != 0
    assert proc.stderr.count("is being trained by another worker") == 2, proc.stderr[-3000:]
    assert not (tmp_path / "busy" / "ck").exists()
    assert store.claim_info(config.training_canonical())["owner"] == "another worker"


@pytest.mark.slow
def test_torchrun_evaluation_shares_autoattack_and_stores_the_one_process_records(tmp_path, data_root):
    """Rank 1 measures AutoAttack's standard configuration on rank 0's model while rank 0 measures
    the rest: every record holds exactly what one process evaluating the same checkpoint stores."""
    attacks = ["--attacks", "pgd", "mt", "aa-apgd", "aa", "--channels-last"]
    args = [*TINY, "--epochs", "1"]
    two = _run(tmp_path, 2, "two", [*args, *attacks])
    _record(two)
    assert "waiting for process 1's aa (AutoAttack standard)" in two.stderr
    _record(_run(tmp_path, 1, "one", [*args, *attacks], command="evaluate", checkpoints_of="two"))
    shared = {r["config"]["attack"]: r for r in ResultsStore(tmp_path / "two" / "res").records()}
    alone = {r["config"]["attack"]: r for r in ResultsStore(tmp_path / "one" / "res").records()}
    assert set(shared) == set(alone) == {"pgd", "mt", "aa-apgd", "aa"}
    for attack, record in shared.items():
        assert record["provenance"]["evaluation_ranks"] == {"aa": 1}
        assert alone[attack]["provenance"]["evaluated_from_checkpoint"] is True
        assert record["metrics"] == alone[attack]["metrics"], attack
    assert shared["aa"]["metrics"]["components"].keys() == {"apgd-ce", "apgd-t", "fab-t", "square"}
