"""benchmarks/gpu_table2.sh, the one-command GPU run of Table 2, exercised on the CPU with a tiny
budget: workers share one store, every model is evaluated with every attack, and the output
folder holds at most 8 files under 64 MiB that unpack into the store."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_table2_script_on_cpu_with_a_tiny_budget(tmp_path, data_root):
    out = tmp_path / "out"
    env = {**os.environ, "RLL_DATA": str(data_root), "PY": sys.executable, "DEVICE": "cpu", "WORKERS": "2",
           "EPOCHS": "1", "MILESTONES": "", "TRAIN_SIZE": "256", "TEST_SIZE": "200", "SEEDS": "0", "MODELS": "cnn2",
           "METHODS": "natural at", "ATTACKS": "pgd aa-apgd", "STOP_AFTER": "10", "TIMEOUT": "900",
           "BENCH_STEPS": "2", "EXTRA": "", "CURVE_IMAGES": "20"}
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_table2.sh"), str(out)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert files == ["models.pt", "records.tar.gz", "summary.json", "throughput.md", "workers.log"]
    assert sum(p.stat().st_size for p in out.iterdir()) < 64 * 2**20
    summary = json.loads((out / "summary.json").read_text())
    assert summary["models"] == 2 and summary["by_attack"] == {"aa-apgd": 2, "pgd": 2}
    with tarfile.open(out / "records.tar.gz") as tar:
        names = sorted(tar.getnames())
        records = [json.load(tar.extractfile(n)) for n in names]
    assert len(records) == 4 and {(r["config"]["train_size"], r["config"]["test_size"]) for r in records} == {(256, 200)}
    assert all(not Path(r["provenance"]["checkpoint"]).is_absolute() for r in records)
    assert all(r["provenance"]["history"][-1]["curve"]["train_evaluated_on"] == 256 for r in records)
    models = torch.load(out / "models.pt", weights_only=True)
    assert len(models) == 2 and all(set(m) == {"config", "model"} for m in models.values())
    assert "| cnn2" in (out / "throughput.md").read_text()
