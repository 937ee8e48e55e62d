"""`python -m rll separation` as a user scripts it."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest


def rll(*args, env=None):
    return subprocess.run([sys.executable, "-m", "rll", *args], capture_output=True, text=True, env=env)


def test_unknown_dataset_exits_2_listing_choices():
    proc = rll("separation", "--dataset", "imagenet")
    assert proc.returncode == 2
    assert "mnist" in proc.stderr and "cifar10" in proc.stderr


def test_absent_cifar10_test_split_exits_2_naming_file(data_root):
    proc = rll("separation", "--dataset", "cifar10", "--data-root", str(data_root), "--json")
    assert proc.returncode == 2
    assert "test_batch.bin" in proc.stderr and "803d5f7f4d78ea53de84dbe85f74fb6d" in proc.stderr
    assert proc.stdout == ""


def test_missing_data_root_file_exits_2(tmp_path):
    proc = rll("separation", "--dataset", "mnist", "--data-root", str(tmp_path), "--json")
    assert proc.returncode == 2
    assert "train-images-idx3-ubyte" in proc.stderr


@pytest.mark.slow
def test_mnist_json_reproduces_table1(data_root, tmp_path):
    proc = rll("separation", "--dataset", "mnist", "--data-root", str(data_root), "--json", "--save", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert round(record["train_train_min"], 3) == 0.737
    assert round(record["test_train_min"], 3) == 0.812
    assert 0.98 < record["train_train_mean"] < 1.0
    assert record["provenance"]["git_commit"]
    assert (tmp_path / "separation-mnist.json").exists()
