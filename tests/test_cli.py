"""`python -m rll train` / `python -m rll evaluate` as a user scripts them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rll import cli

REPO = Path(__file__).resolve().parents[1]
TABLE_KEYS = ("train_acc", "test_acc", "adv_train_acc", "adv_test_acc", "test_lipschitz", "gap", "adv_gap")


def rll(*args):
    # one intra-op thread: faster for these tiny runs on a shared 2-core machine
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "rll", *args], capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.mark.parametrize("args, fragments", [
    (["--dataset", "mnist", "--model", "cnn2", "--method", "at", "--beta", "6"],
     ["'at'", "step, steps"]),
    (["--dataset", "mnist", "--model", "cnn2", "--method", "madry"],
     ["madry", "natural, gr, llr, at, rst, trades"]),
    (["--dataset", "imagenet", "--model", "cnn2"], ["mnist", "cifar10", "svhn", "resimagenet"]),
    (["--dataset", "mnist", "--model", "wrn-40-10"], ["cnn1, cnn2"]),
    (["--dataset", "cifar10", "--model", "cnn2"], ["wrn-D-W"]),
    (["--dataset", "mnist", "--model", "cnn2", "--eps", "0"], ["eps"]),
    (["--dataset", "mnist", "--model", "cnn2", "--attack", "cw"], ["pgd", "mt"]),
    (["--dataset", "mnist", "--model", "cnn2", "--fidelity", "exact"], ["paper", "released"]),
    (["--dataset", "mnist", "--model", "cnn2", "--method", "trades", "--fidelity", "released", "--amp"],
     ["refused for trades", "fp32"]),
    (["--dataset", "mnist", "--model", "cnn2", "--method", "gr", "--h", "0.01", "--precision", "bf16"],
     ["refused for gr in fidelity 'paper'", "--precision auto"]),
    (["--dataset", "mnist", "--model", "cnn2", "--amp", "--precision", "fp32"], ["--amp means --precision bf16"]),
])
@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_invalid_configurations_exit_2_listing_choices(command, args, fragments, tmp_path, capsys):
    # in-process (no interpreter start-up): the same main() the module entry point calls;
    # argparse's own choices exit via SystemExit(2), TrainConfig's ValueError returns 2
    code = _exit_code([command, *args, "--results-dir", str(tmp_path / "res"),
                       "--checkpoint-dir", str(tmp_path / "ck"), "--data-root", str(tmp_path / "none")])
    assert code == 2
    err = capsys.readouterr().err
    for fragment in fragments:
        assert fragment in err, err
    assert not (tmp_path / "res").exists() and not (tmp_path / "ck").exists()   # nothing ran


def in_process(capsys, *args):
    """``python -m rll ARGS`` in this process (no interpreter start-up): (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = _exit_code(list(args))
    out = capsys.readouterr()
    return code or 0, out.out, out.err


def _exit_code(argv):
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return exc.code


def test_module_entry_point_exits_2(tmp_path):
    proc = rll("train", "--dataset", "mnist", "--model", "cnn2", "--method", "at", "--beta", "6",
               "--results-dir", str(tmp_path))
    assert proc.returncode == 2 and "valid parameters for 'at'" in proc.stderr and proc.stdout == ""


def test_evaluate_without_checkpoint_exits_2(tmp_path, capsys):
    code = cli.main(["evaluate", "--dataset", "mnist", "--model", "cnn1", "--epochs", "1",
                     "--checkpoint-dir", str(tmp_path / "ck"), "--results-dir", str(tmp_path / "res")])
    assert code == 2 and "no checkpoint" in capsys.readouterr().err


@pytest.mark.slow
def test_train_json_prints_the_record_then_evaluate(tmp_path, data_root):
    common = ["--dataset", "mnist", "--model", "cnn1", "--method", "natural", "--epochs", "1",
              "--train-size", "64", "--test-size", "16", "--batch-size", "32", "--seed", "0",
              "--results-dir", str(tmp_path / "res"), "--checkpoint-dir", str(tmp_path / "ck"),
              "--data-root", str(data_root), "--device", "cpu", "--fidelity", "paper"]
    proc = rll("train", *common, "--attack", "pgd", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for key in TABLE_KEYS:
        assert isinstance(out[key], float), key
    assert out["config"]["dataset"] == "mnist" and out["config"]["epochs"] == 1
    assert out["config"]["lr"] == pytest.approx(1e-4 * 32)
    assert out["provenance"]["epochs_done"] == 1 and out["provenance"]["device"] == "cpu"
    assert Path(out["path"]).exists() and len(list((tmp_path / "ck").glob("*.pt"))) == 1

    # re-evaluating the checkpoint on another test subset: a second record, same weights
    proc = rll("evaluate", *common, "--test-size", "8", "--json")
    assert proc.returncode == 0, proc.stderr
    ev = json.loads(proc.stdout)
    assert ev["config"]["test_size"] == 8 and ev["train_acc"] == out["train_acc"]
    assert ev["provenance"]["evaluated_from_checkpoint"] is True
    assert len(list((tmp_path / "res").glob("*.json"))) == 2

    # asking again returns the stored record without training
    proc = rll("train", *common, "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["provenance"] == out["provenance"]


def test_train_with_test_flag_sets_the_configuration():
    args = cli.build_parser().parse_args(["train", "--dataset", "mnist", "--model", "cnn2", "--method", "rst",
                                          "--lam", "2", "--train-with-test", "--test-size", "100"])
    config = cli._config_from_args(args)
    assert config.train_with_test and config.canonical()["train_with_test"] is True
    plain = cli._config_from_args(cli.build_parser().parse_args(["train", "--dataset", "mnist", "--model", "cnn2"]))
    assert not plain.train_with_test and "train_with_test" not in plain.canonical()


# ---------------------------------------------------------------- --checksum FILE=MD5

SVHN_RUN = {"train": ["train", "--dataset", "svhn", "--model", "wrn-10-1"],
            "evaluate": ["evaluate", "--dataset", "svhn", "--model", "wrn-10-1"],
            "sweep": ["sweep", "table3", "--dataset", "svhn", "--models", "wrn-10-1", "--methods", "natural"]}


@pytest.mark.parametrize("checksum, fragment", [
    ("train_32x32.mat", "expected FILE=MD5"),
    ("train_32x32.mat=xyz", "expected FILE=MD5"),
    ("=" + "0" * 32, "expected FILE=MD5"),
    ("train.mat=" + "0" * 32, "valid: ['test_32x32.mat', 'train_32x32.mat']"),
])
@pytest.mark.parametrize("command", sorted(SVHN_RUN))
def test_malformed_checksum_exits_2_before_anything_runs(command, checksum, fragment, tmp_path, capsys):
    code = _exit_code([*SVHN_RUN[command], "--checksum", checksum, "--data-root", str(tmp_path),
                       "--results-dir", str(tmp_path / "res"), "--checkpoint-dir", str(tmp_path / "ck")])
    assert code == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "res").exists() and not (tmp_path / "ck").exists()


def test_checksum_flags_let_train_and_sweep_read_own_copies(tmp_path, svhn_mat, capsys):
    sums = {"train_32x32.mat": svhn_mat(tmp_path, "train", n=16),
            "test_32x32.mat": svhn_mat(tmp_path, "test", n=8, seed=1)}
    flags = [arg for f, m in sums.items() for arg in ("--checksum", f"{f}={m}")]
    common = ["--epochs", "1", "--device", "cpu", "--data-root", str(tmp_path), *flags]
    code = cli.main([*SVHN_RUN["train"], *common, "--batch-size", "8", "--json",
                     "--results-dir", str(tmp_path / "res"), "--checkpoint-dir", str(tmp_path / "ck")])
    assert code == 0
    notes = json.loads(capsys.readouterr().out)["provenance"]["data_notes"]
    assert "md5 of train_32x32.mat overridden" in notes["train"] and "test_32x32.mat" in notes["test"]

    code = cli.main([*SVHN_RUN["sweep"], *common, "--results-dir", str(tmp_path / "sweep"),
                     "--checkpoint-dir", str(tmp_path / "ck2")])
    assert code == 0 and json.loads(capsys.readouterr().out)["trained"] == 1
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "sweep").glob("*.json")]
    assert record["provenance"]["data_notes"] == notes


def test_every_command_prints_its_help():
    """`python -m rll COMMAND --help` works for every command (argparse formats each help
    string with %, so a literal % in one — submitit's %j — broke `sweep --help`)."""
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert {"train", "evaluate", "sweep", "export", "pack"} <= set(commands)
    for name, sub in commands.items():
        text = sub.format_help()
        assert name in text and "%%" not in text, name
    assert "logs/submitit/%j" in commands["sweep"].format_help()


def test_sweep_dry_run_lists_each_configuration_with_its_seed_and_state(tmp_path, capsys):
    code, stdout, stderr = in_process(capsys, "sweep", "table2", "--dataset", "mnist", "--models", "cnn2", "--methods", "natural", "at",
              "--seeds", "0", "1", "--epochs", "1", "--results-dir", str(tmp_path), "--dry-run",
              "--checkpoint-dir", str(tmp_path / "checkpoints"))
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert [(line.split()[:2], line.endswith("to train")) for line in lines[:4]] == [
        (["seed", "0"], True), (["seed", "1"], True)] * 2, lines
    assert "mnist cnn2 natural" in lines[0] and "mnist cnn2 at" in lines[2], lines
    assert lines[-1] == "0 of 4 stored; 4 left for the sweep"
    assert not list(tmp_path.iterdir()), "a dry run writes nothing"


def test_sweep_table_budget_gives_each_model_its_own(tmp_path, capsys):
    from rll.config import TrainConfig
    from rll.experiments.tables import TABLE_BUDGETS
    from rll.losses import FIDELITY_REVISION
    from rll.store import ResultsStore

    cnn1 = TrainConfig.from_paper("mnist", "cnn1", "natural", **TABLE_BUDGETS["mnist"]["cnn1"])
    ResultsStore(tmp_path).put(cnn1, {"test_acc": 99.0}, {"fidelity_revision": FIDELITY_REVISION})
    code, stdout, stderr = in_process(capsys, "sweep", "table2", "--dataset", "mnist", "--methods", "natural",
                                      "--table-budget", "--results-dir", str(tmp_path), "--checkpoint-dir",
                                      str(tmp_path / "checkpoints"), "--dry-run")
    assert code == 0, stderr
    assert [line.split()[-1] for line in stdout.splitlines()[:2]] == ["stored", "train"], stdout
    assert stdout.splitlines()[-1] == "1 of 2 stored; 1 left for the sweep"
    code, _, stderr = in_process(capsys, "sweep", "table2", "--dataset", "mnist", "--table-budget", "--epochs", "2",
                                 "--dry-run")
    assert code != 0 and "either per-model budgets or epochs" in stderr
    code, _, stderr = in_process(capsys, "sweep", "table3", "--dataset", "svhn", "--table-budget", "--dry-run")
    assert code != 0 and "svhn has no table budget" in stderr


def test_sweep_dry_run_says_how_much_training_a_stopped_run_has_left(tmp_path, capsys):
    """A checkpoint after epoch 6 of 10, stopped half-way through epoch 7; its last five epochs took
    100, 100, 300, 100 and 100 s plus 10 s of learning-curve point each (median 110 s), an older
    one 1 000 s (outside the window): 3.5 epochs × 110 s = 385 s left, about 6 minutes."""
    import torch

    from rll.config import TrainConfig
    from rll.losses import FIDELITY_REVISION
    from rll.training.checkpoint import CHECKPOINT_FORMAT, checkpoint_path, seconds_left

    config = TrainConfig.from_paper("mnist", "cnn2", "natural", epochs=10)
    history = [{"epoch": 1, "seconds": 1000.0}] + [
        {"epoch": e, "seconds": s, "curve_seconds": 10.0} for e, s in zip(range(2, 7), [100.0, 100.0, 300.0, 100.0, 100.0])]
    ckpt = {"format": CHECKPOINT_FORMAT, "config": config.training_canonical(), "epoch": 6, "history": history,
            "fidelity_revision": FIDELITY_REVISION, "partial": {"step": 469, "steps_per_epoch": 938}}
    assert seconds_left(ckpt, 10) == 385.0
    assert seconds_left({**ckpt, "partial": None}, 10) == 440.0 and seconds_left({"epoch": 0}, 10) is None
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    torch.save(ckpt, checkpoint_path(config, folder))
    code, stdout, stderr = in_process(capsys, "sweep", "table2", "--dataset", "mnist", "--models", "cnn2",
                                      "--methods", "natural", "--epochs", "10", "--results-dir", str(tmp_path / "res"),
                                      "--checkpoint-dir", str(folder), "--dry-run")
    assert code == 0, stderr
    line = stdout.splitlines()[0]
    assert line.endswith("to resume in epoch 7 after step 469/938 (about 6 min of training left at its "
                         "last epochs' pace)"), line


def test_sweep_precision_auto_gives_bf16_only_where_it_is_allowed(tmp_path, capsys):
    code, stdout, stderr = in_process(capsys, "sweep", "table2", "--dataset", "mnist", "--models", "cnn2", "--methods",
                                      "natural", "gr", "trades(beta=6)", "llr", "--epochs", "1", "--precision", "auto",
                                      "--results-dir", str(tmp_path), "--dry-run", "--checkpoint-dir",
                                      str(tmp_path / "checkpoints"))
    assert code == 0, stderr
    labels = stdout.splitlines()[:4]
    assert ["bf16" in line for line in labels] == [True, True, False, False], labels    # TRADES, paper LLR: fp32
    code, _, stderr = in_process(capsys, "sweep", "table2", "--dataset", "mnist", "--models", "cnn2", "--methods",
                                 "natural", "llr", "--epochs", "1", "--amp", "--results-dir", str(tmp_path), "--dry-run")
    assert code == 2 and "refused for llr" in stderr, stderr
