"""Shared fixtures.  Real-data tests read the mirrored datasets: ``RLL_DATA`` if set, else
``../shared/datasets`` beside the repository.  Without them the test is skipped locally but
*fails* under CI (``CI`` set), so a missing mirror can never turn a red build green."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _data_root() -> Path:
    env = os.environ.get("RLL_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "datasets")


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = _data_root()
    if not (root / "MNIST").is_dir():
        msg = f"real datasets not found at {root} (set RLL_DATA)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return root


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """The suite's models and batches are tiny: intra-op threads gain nothing on them, and on a
    shared 2-core machine the pool's oversubscription makes them many times slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield
