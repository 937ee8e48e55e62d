"""Shared fixtures.  Real-data tests read the mirrored datasets: ``RLL_DATA`` if set, else
``../shared/datasets`` beside the repository.  Without them the test is skipped locally but
*fails* under CI (``CI`` set), so a missing mirror can never turn a red build green.

Datasets the mirror lacks (SVHN, Restricted ImageNet) are tested on small files written in
their official formats: the ``svhn_mat`` and ``png`` fixtures are those writers."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
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


# ---------------------------------------------------------------- files in official formats

def write_svhn_mat(root: Path, split: str, x: np.ndarray | None = None, y=None, *, n: int = 8,
                   seed: int = 0) -> str:
    """Write ``root/svhn/<split>_32x32.mat`` in the official layout (``X`` uint8 (32, 32, 3, N),
    ``y`` uint8 (N, 1), labels 1..10 with 10 for digit 0) and return its md5.  ``x``/``y``
    default to ``n`` seeded random images and labels."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    if x is None:
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    if y is None:
        y = rng.integers(1, 11, x.shape[3])
    path = root / "svhn" / f"{split}_32x32.mat"
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"X": x, "y": np.asarray(y, np.uint8).reshape(-1, 1)})
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_png(path: Path, array: np.ndarray) -> None:
    """Write ``array`` (H, W) or (H, W, 3) uint8 as a PNG, creating the folders."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def svhn_mat():
    """:func:`write_svhn_mat`: ``svhn_mat(root, split, x=None, y=None, n=8, seed=0) -> md5``."""
    return write_svhn_mat


@pytest.fixture
def png():
    """:func:`write_png`: ``png(path, array)``."""
    return write_png
