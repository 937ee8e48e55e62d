"""benchmarks/gpu_table2.sh, the one-command GPU run of Table 2, exercised on the CPU with a tiny
budget: workers share one store seeded with the stored records (whose rows are skipped), a training
stopped inside an epoch by an earlier call resumes at its step, every model is evaluated with every
attack, and the output folder holds at most 8 files under 64 MiB that unpack into the store."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from rll import cli
from rll.training import run as rrun
from rll.training.checkpoint import load_checkpoint, save_checkpoint
from rll.training.packing import pack_unfinished

REPO = Path(__file__).resolve().parents[1]

# the script's sweep arguments for the environment below (benchmarks/gpu_table2.sh builds the same)
TINY = {"EPOCHS": "1", "MILESTONES": "", "TRAIN_SIZE": "256", "TEST_SIZE": "200", "MODELS": "cnn2",
        "RELEASED": "gr", "RELEASED_MODELS": "cnn2", "MORE_SEEDS": "", "ATTACKS": "pgd aa-apgd",
        "CURVE_IMAGES": "20"}  # EXTRA: the default
SWEEP = ["sweep", "table2", "--dataset", "mnist", "--seeds", "0", "--models", "cnn2", "--epochs", "1", "--milestones",
         "--train-size", "256", "--test-size", "200", "--attacks", "pgd", "aa-apgd", "--eval-plan", "table",
         "--curve-images", "20", "--device", "cpu", "--precision", "auto", "--channels-last"]


@pytest.mark.slow
def test_gpu_table2_script_on_cpu_skips_stored_rows_and_resumes_a_stopped_one(tmp_path, data_root, monkeypatch):
    store, resume = tmp_path / "store", tmp_path / "resume"
    # natural is already stored; AT was stopped (SIGTERM) after its first step by an earlier call
    assert cli.main(SWEEP + ["--methods", "natural", "--data-root", str(data_root), "--results-dir", str(store),
                             "--checkpoint-dir", str(tmp_path / "ck0")]) == 0
    real_step = rrun.train_step

    def step_then_sigterm(*args, **kwargs):
        loss = real_step(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        return loss

    monkeypatch.setattr(rrun, "train_step", step_then_sigterm)
    assert cli.main(SWEEP + ["--methods", "at", "--data-root", str(data_root), "--results-dir",
                             str(tmp_path / "elsewhere"), "--checkpoint-dir", str(resume)]) == 128 + signal.SIGTERM
    monkeypatch.setattr(rrun, "train_step", real_step)
    (stopped,) = resume.glob("*.pt")
    assert load_checkpoint(stopped)["partial"]["step"] == 1

    out = tmp_path / "out"
    env = {**os.environ, **TINY, "RLL_DATA": str(data_root), "PY": sys.executable, "DEVICE": "cpu", "WORKERS": "2",
           "METHODS": "natural at", "STOP_AFTER": "10", "TIMEOUT": "900", "BENCH_STEPS": "2",
           "STORE": str(store), "RESUME_FROM": str(resume)}
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_table2.sh"), str(out)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=1500, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert files == ["models.pt", "records.tar.gz", "resume.tar", "summary.json", "throughput.md", "workers.log"]
    assert sum(p.stat().st_size for p in out.iterdir()) < 64 * 2**20
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records_seeded_from_store"] == 2 and summary["checkpoints_given"] == 1
    # natural was stored: AT was trained from the step it had stopped at, then released GR, then
    # RELEASED_MODELS' rows (METHODS) in fidelity released; nothing is left unfinished
    assert summary["models"] == 4 and summary["by_attack"] == {"aa-apgd": 4, "pgd": 4}
    assert summary["unfinished_packed"] == []
    with tarfile.open(out / "records.tar.gz") as tar:
        records = [json.load(tar.extractfile(n)) for n in sorted(tar.getnames())]
    assert len(records) == 8
    assert sorted((r["config"]["method"], r["config"]["fidelity"]) for r in records) == [
        ("at", "paper"), ("at", "paper"), ("at", "released"), ("at", "released"), ("gr", "released"),
        ("gr", "released"), ("natural", "released"), ("natural", "released")]
    assert {(r["config"]["train_size"], r["config"]["test_size"]) for r in records} == {(256, 200)}
    at = [r for r in records if (r["config"]["method"], r["config"]["fidelity"]) == ("at", "paper")]
    assert all(r["provenance"]["resumed_in_epoch"] == {"epoch": 1, "step": 1} for r in at)
    assert all(not Path(r["provenance"]["checkpoint"]).is_absolute() for r in records)
    assert all(r["provenance"]["history"][-1]["curve"]["train_evaluated_on"] == 256 for r in records)
    models = torch.load(out / "models.pt", weights_only=True)
    assert len(models) == 4 and all(set(m) == {"config", "model"} for m in models.values())
    assert "| cnn2" in (out / "throughput.md").read_text()


def test_pack_unfinished_takes_the_most_advanced_trainings_that_fit(tmp_path):
    """``python -m rll pack --unfinished``: whole checkpoints of unfinished trainings (a stopped
    epoch's steps counted), the most advanced first, each that still fits; finished ones stay
    out (they go to models.pt); the tar unpacks to files that load as the same checkpoints."""
    ck = tmp_path / "ck"

    def write(name: str, epoch: int, epochs: int, partial: dict | None = None, mib: float = 1.0) -> None:
        payload = {"format": 1, "config": {"epochs": epochs}, "epoch": epoch,
                   "model": {"w": torch.zeros(int(mib * 2**20) // 4)}}
        save_checkpoint(ck / name, payload | ({"partial": partial} if partial else {}))

    ck.mkdir()
    write("finished.pt", 4, 4)
    write("half.pt", 2, 4)
    write("half-and-a-step.pt", 2, 4, {"step": 1, "steps_per_epoch": 10})
    write("quarter.pt", 1, 4)
    write("big-three-quarters.pt", 3, 4, mib=3.0)
    path, packed, left_out = pack_unfinished(ck, tmp_path / "resume.tar", max_mib=2.5)
    assert packed == ["half-and-a-step.pt", "half.pt"] and left_out == ["big-three-quarters.pt", "quarter.pt"]
    with tarfile.open(path) as tar:
        assert tar.getnames() == packed
        tar.extractall(tmp_path / "unpacked", filter="data")
    assert load_checkpoint(tmp_path / "unpacked" / "half-and-a-step.pt")["partial"]["step"] == 1
    assert cli.main(["pack", "--unfinished", "--checkpoint-dir", str(ck), "--out", str(tmp_path / "x.tar")]) == 2
