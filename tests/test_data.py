"""rll.data: real-mirror checks (MNIST, CIFAR-10 binary, the partial CIFAR-10 test copy) and
small files written here in the official formats (CIFAR-10 python, SVHN .mat, ImageFolder)."""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import rll.data as data
from rll.data import (
    DATASET_INFO,
    DataError,
    load_dataset,
    make_spiral,
    resolve_root,
    to_float,
)
from rll.data.download import _fetch
from rll.data.registry import _DOWNLOADS, _Download

REPO = Path(__file__).resolve().parents[1]
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


MNIST_TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def mnist_copy(data_root, tmp_path, names=MNIST_TEST_FILES):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in names:
        shutil.copy(data_root / "MNIST" / "raw" / name, raw / name)
    return raw


# ---------------------------------------------------------------- real data

def test_mnist_real(data_root):
    for split, n, counts in [("train", 60000, MNIST_TRAIN_COUNTS),
                             ("test", 10000, MNIST_TEST_COUNTS)]:
        ds = load_dataset("mnist", split, root=data_root)
        assert ds.images.shape == (n, 1, 28, 28) and ds.images.dtype == torch.uint8
        assert ds.labels.shape == (n,) and ds.labels.dtype == torch.int64
        assert torch.bincount(ds.labels).tolist() == counts
        assert ds.note == "" and ds.classes == DATASET_INFO["mnist"].classes and len(ds) == n
    assert 0 < ds.images.float().mean() < 255


def test_cifar10_real_train_matches_manual_decoding(data_root):
    ds = load_dataset("cifar10", "train", root=data_root)
    assert ds.images.shape == (50000, 3, 32, 32) and ds.images.dtype == torch.uint8
    assert torch.bincount(ds.labels).tolist() == [5000] * 10
    with open(data_root / "cifar-10-batches-bin" / "data_batch_3.bin", "rb") as f:
        for k in (0, 1234, 9999):
            f.seek(k * 3073)
            rec = f.read(3073)
            assert ds.labels[20000 + k].item() == rec[0]
            for c, i, j in [(0, 0, 0), (1, 5, 17), (2, 31, 31), (0, 16, 3)]:
                assert ds.images[20000 + k, c, i, j].item() == rec[1 + c * 1024 + i * 32 + j]


def test_cifar10_test_split_absent_is_an_error_not_a_substitution(data_root, tmp_path):
    for sub in ("cifar-10-batches-bin", "cifar-10-test-partial"):
        (tmp_path / sub).symlink_to(data_root / sub)
    with pytest.raises(DataError) as err:
        load_dataset("cifar10", "test", root=tmp_path)
    msg = str(err.value)
    assert "test_batch.bin" in msg and "803d5f7f4d78ea53de84dbe85f74fb6d" in msg
    assert "cifar-10-test-partial" in msg and "NOT a test set" in msg
    assert "python -m rll download cifar10" in msg


def test_cifar10_test_partial(data_root):
    ds = load_dataset("cifar10", "test_partial", root=data_root)
    assert ds.images.shape == (1017, 3, 32, 32) and ds.split == "test_partial"
    assert "1017 of 10 000" in ds.note
    folder = data_root / "cifar-10-test-partial"
    labels = np.fromfile(folder / "test_labels.u8", np.uint8)
    assert ds.labels.tolist() == labels[:1017].tolist()
    rec = (folder / "test_batch_first1017.bin").read_bytes()[3073 * 5: 3073 * 6]
    assert ds.images[5].flatten().tolist() == list(rec[1:])


# ---------------------------------------------------------------- checksums

def test_corrupt_file_names_file_and_md5s(data_root, tmp_path):
    raw = mnist_copy(data_root, tmp_path)
    path = raw / "t10k-labels-idx1-ubyte.gz"
    blob = bytearray(path.read_bytes())
    blob[100] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(DataError) as err:
        load_dataset("mnist", "test", root=tmp_path)
    msg = str(err.value)
    assert str(path) in msg and "ec29112dd5afa0611ce80d1b7f02629c" in msg
    assert hashlib.md5(bytes(blob)).hexdigest() in msg
    assert "python -m rll download mnist" in msg and "RLL_DATA" in msg


def test_missing_file(data_root, tmp_path):
    mnist_copy(data_root, tmp_path, names=("t10k-images-idx3-ubyte.gz",))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz.*ec29112dd5afa0611ce80d1b7"):
        load_dataset("mnist", "test", root=tmp_path)


def test_md5_cache_does_not_hide_a_changed_file(data_root, tmp_path):
    raw = mnist_copy(data_root, tmp_path)
    assert len(load_dataset("mnist", "test", root=tmp_path)) == 10000
    path = raw / "t10k-labels-idx1-ubyte.gz"
    blob = bytearray(path.read_bytes())
    blob[200] ^= 0x01
    path.write_bytes(bytes(blob))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(DataError, match="corrupt"):
        load_dataset("mnist", "test", root=tmp_path)


def test_mnist_uncompressed_idx_is_read_and_verified(data_root, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        gz = data_root / "MNIST" / "raw" / f"{stem}.gz"
        (raw / stem).write_bytes(gzip.decompress(gz.read_bytes()))
    ds = load_dataset("mnist", "test", root=tmp_path)
    ref = load_dataset("mnist", "test", root=data_root)
    assert torch.equal(ds.images, ref.images) and torch.equal(ds.labels, ref.labels)


# ---------------------------------------------------------------- generated official formats

def write_cifar_py(folder, n=3):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, n).tolist(),
                 b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"filenames": [f"{name}_{k}.png".encode() for k in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        batches[name] = batch
    return batches


def test_cifar10_python_pickles(tmp_path):
    batches = write_cifar_py(tmp_path / "cifar-10-batches-py")
    sums = {name: md5(tmp_path / "cifar-10-batches-py" / name) for name in batches}
    with pytest.raises(DataError, match="c99cafc152244af753f735de768cd75f"):
        load_dataset("cifar10", "train", root=tmp_path)  # the default verifies official md5s
    train = load_dataset("cifar10", "train", root=tmp_path, checksums=sums)
    test = load_dataset("cifar10", "test", root=tmp_path, checksums=sums)
    assert train.images.shape == (15, 3, 32, 32) and test.images.shape == (3, 3, 32, 32)
    assert train.note.count("overridden by the caller") == 5 and "data_batch_4" in train.note
    assert test.note == "md5 of test_batch overridden by the caller (official: 40351d587109b95175f43aff81a1287e)"
    b4 = batches["data_batch_4"]
    assert train.labels[9:12].tolist() == b4[b"labels"]
    # row = 1024 red, 1024 green, 1024 blue, each row-major
    assert train.images[10, 1, 2, 3].item() == b4[b"data"][1, 1024 + 2 * 32 + 3]
    unverified = load_dataset("cifar10", "test", root=tmp_path, verify=False)
    assert "not verified" in unverified.note and torch.equal(unverified.images, test.images)


def test_svhn_mat(tmp_path, svhn_mat):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (32, 32, 3, 5), dtype=np.uint8)
    sums = {"test_32x32.mat": svhn_mat(tmp_path, "test", x, [10, 1, 5, 10, 9])}
    ds = load_dataset("svhn", "test", root=tmp_path, checksums=sums)
    assert ds.images.shape == (5, 3, 32, 32) and ds.images.dtype == torch.uint8
    assert ds.labels.tolist() == [0, 1, 5, 0, 9]
    assert ds.images[3, 2, 7, 20].item() == x[7, 20, 2, 3]  # (N, C, H, W) from (H, W, C, N)
    with pytest.raises(DataError, match="eb5a983be6a315427106f1b164d9cef3"):
        load_dataset("svhn", "test", root=tmp_path)
    with pytest.raises(DataError, match="train_32x32.mat"):
        load_dataset("svhn", "train", root=tmp_path, checksums=sums)


def test_overridden_md5_is_noted_and_a_wrong_one_still_fails(tmp_path, svhn_mat):
    sums = {"train_32x32.mat": svhn_mat(tmp_path, "train"), "test_32x32.mat": svhn_mat(tmp_path, "test")}
    ds = load_dataset("svhn", "train", root=tmp_path, checksums=sums)
    # only the file read is named, with the official md5 it was not checked against
    assert ds.note == "md5 of train_32x32.mat overridden by the caller (official: e26dedcc434d2e4c54c9b2d4a06d8373)"
    unverified = load_dataset("svhn", "train", root=tmp_path, verify=False, checksums=sums)
    assert unverified.note == "md5 checksums not verified (verify=False)"   # no md5 was checked
    assert torch.equal(unverified.images, ds.images)
    wrong = "0123456789abcdef" * 2
    with pytest.raises(DataError) as err:
        load_dataset("svhn", "train", root=tmp_path, checksums={"train_32x32.mat": wrong})
    msg = str(err.value)
    path = tmp_path / "svhn" / "train_32x32.mat"
    assert str(path) in msg and wrong in msg and sums["train_32x32.mat"] in msg
    assert "e26dedcc434d2e4c54c9b2d4a06d8373" in msg and "checksums entry for train_32x32.mat" in msg


@pytest.mark.parametrize("checksums, fragment", [
    ({"train_32x32.mat": "xyz"}, "32 hex digits"),
    (["train_32x32.mat"], "must be None or a dict"),
    ({"train.mat": "0" * 32}, "valid: ['test_32x32.mat', 'train_32x32.mat']"),
])
def test_malformed_checksums_are_rejected_before_reading(tmp_path, checksums, fragment):
    with pytest.raises(ValueError) as err:
        load_dataset("svhn", "train", root=tmp_path, checksums=checksums)   # no file there
    assert fragment in str(err.value)


def test_resimagenet_superclass_folders_and_eval_crop(tmp_path, png):
    train = tmp_path / "restricted_imagenet" / "train"
    rows, cols = np.meshgrid(np.arange(144), np.arange(72), indexing="ij")
    tall = np.stack([rows, cols, np.full_like(rows, 7)], axis=-1).astype(np.uint8)  # w 72, h 144
    png(train / "insect" / "a.png", tall)
    png(train / "cat" / "a.png", np.full((80, 100, 3), 200, np.uint8))
    png(train / "cat" / "b.png", np.full((90, 90), 50, np.uint8))  # grayscale
    png(train / "dog" / "a.png", np.zeros((64, 64, 3), np.uint8))
    ds = load_dataset("resimagenet", "train", root=tmp_path)
    assert ds.images.shape == (4, 3, 64, 64) and ds.images.dtype == torch.uint8
    # folders in sorted order (cat, dog, insect); labels by the paper's class order
    assert ds.labels.tolist() == [1, 1, 0, 8]
    assert (ds.images[0] == 200).all() and (ds.images[1] == 50).all()
    # 72x144 needs no resize; center crop 64 starts at row 40, column 4
    expected = torch.from_numpy(tall[40:104, 4:68].transpose(2, 0, 1).copy())
    assert torch.equal(ds.images[3], expected)
    assert ds.classes[ds.labels[3]] == "insect"
    assert ds.note.startswith("4 images from ") and ds.note.endswith("without official md5s, not verified")


def test_resimagenet_wnid_folders_by_index_range(tmp_path, png):
    val = tmp_path / "restricted_imagenet" / "val"
    img = np.zeros((70, 70, 3), np.uint8)
    wnids = {"n01443537": None, "n01641577": 2, "n02085620": 0, "n02113978": 0,
             "n02114367": None, "n02268443": 8, "n02268853": None}
    for wnid in wnids:
        png(val / wnid / "x.png", img)
    ds = load_dataset("resimagenet", "test", root=tmp_path)
    assert ds.labels.tolist() == [v for v in wnids.values() if v is not None]


def test_resimagenet_rejects_mixed_layout(tmp_path, png):
    train = tmp_path / "restricted_imagenet" / "train"
    png(train / "dog" / "a.png", np.zeros((64, 64, 3), np.uint8))
    png(train / "n02123045" / "a.png", np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(DataError, match="mixes"):
        load_dataset("resimagenet", "train", root=tmp_path)


# ---------------------------------------------------------------- downloads

@pytest.fixture
def no_torchvision(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import fails -> urllib fallback


def test_download_fallback_from_file_urls(data_root, tmp_path, monkeypatch, no_torchvision):
    spec = _DOWNLOADS["mnist"]
    base = (data_root / "MNIST" / "raw").as_uri() + "/"
    monkeypatch.setitem(_DOWNLOADS, "mnist",
                        _Download(("file:///nonexistent/", base), spec.subdir, spec.files))
    root = tmp_path / "root"
    ds = load_dataset("mnist", "test", root=root, download=True)
    assert len(ds) == 10000
    assert sorted(p.name for p in (root / "MNIST" / "raw").iterdir()) == sorted(spec.files)


def test_download_on_first_use_when_rll_download_is_set(data_root, tmp_path, monkeypatch, no_torchvision):
    """Binder sets RLL_DOWNLOAD=1: a missing MNIST is fetched (md5-checked) by the first
    load_dataset that needs it; without the variable a missing file stays an error."""
    spec = _DOWNLOADS["mnist"]
    base = (data_root / "MNIST" / "raw").as_uri() + "/"
    monkeypatch.setitem(_DOWNLOADS, "mnist", _Download((base,), spec.subdir, spec.files))
    monkeypatch.delenv("RLL_DOWNLOAD", raising=False)
    with pytest.raises(DataError, match="missing file"):
        load_dataset("mnist", "test", root=tmp_path / "off")
    assert not (tmp_path / "off" / "MNIST").exists()
    monkeypatch.setenv("RLL_DOWNLOAD", "1")
    ds = load_dataset("mnist", "test", root=tmp_path / "on")
    assert len(ds) == 10000
    assert sorted(p.name for p in (tmp_path / "on" / "MNIST" / "raw").iterdir()) == sorted(spec.files)


def test_fetch_rejects_wrong_md5(tmp_path, no_torchvision):
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello")
    dest = tmp_path / "out" / "dest.bin"
    with pytest.raises(DataError, match="md5"):
        _fetch(src.as_uri(), dest, "0" * 32)
    assert not dest.exists() and not list(dest.parent.iterdir())
    _fetch(src.as_uri(), dest, hashlib.md5(b"hello").hexdigest())
    assert dest.read_bytes() == b"hello"


def test_download_rejects_unknown_and_imagenet(tmp_path):
    with pytest.raises(ValueError, match="mnist, cifar10, svhn"):
        data.download("resimagenet", tmp_path)
    with pytest.raises(ValueError, match="valid: mnist, cifar10, svhn, resimagenet"):
        data.download("imagenet", tmp_path)


def test_import_does_not_import_torchvision():
    code = "import sys, rll.data; assert 'torchvision' not in sys.modules"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=env)


# ---------------------------------------------------------------- registry, root, helpers

def test_unknown_names_list_valid_choices(tmp_path):
    with pytest.raises(ValueError, match="mnist, cifar10, svhn, resimagenet"):
        load_dataset("cifar100", root=tmp_path)
    with pytest.raises(ValueError, match="train, test, test_partial"):
        load_dataset("cifar10", "val", root=tmp_path)
    with pytest.raises(ValueError, match="valid: train, test$"):
        load_dataset("mnist", "test_partial", root=tmp_path)
    with pytest.raises(ValueError, match="unknown file names"):
        load_dataset("svhn", "test", root=tmp_path, checksums={"train.mat": "0" * 32})


def test_dataset_info():
    assert [DATASET_INFO[n].eps for n in data.DATASETS] == [0.1, 0.031, 0.031, 0.005]
    assert [DATASET_INFO[n]["min_rank"] for n in data.DATASETS] == [1, 1, 5, 7]
    assert DATASET_INFO["resimagenet"].shape == (3, 64, 64)
    assert DATASET_INFO["resimagenet"].classes == (
        "dog", "cat", "frog", "turtle", "bird", "primate", "fish", "crab", "insect")
    assert all(len(i.classes) == i.num_classes for i in DATASET_INFO.values())


def test_resolve_root(monkeypatch, tmp_path):
    monkeypatch.setenv("RLL_DATA", str(tmp_path / "env"))
    assert resolve_root() == tmp_path / "env"
    assert resolve_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("RLL_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_root() == tmp_path / ".cache" / "rll"


def test_to_float():
    x = torch.tensor([[0, 51, 255]], dtype=torch.uint8)
    y = to_float(x)
    assert y.dtype == torch.float32 and torch.allclose(y, torch.tensor([[0.0, 0.2, 1.0]]))
    assert x.dtype == torch.uint8  # input untouched
    with pytest.raises(TypeError):
        to_float(y)


def test_spiral():
    X, y = make_spiral(1000)
    assert X.shape == (1000, 2) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert y.tolist() == [0] * 500 + [1] * 500
    X2, y2 = make_spiral(1000)
    assert torch.equal(X, X2) and torch.equal(y, y2)
    assert not torch.equal(X, make_spiral(1000, seed=1)[0])
    # noise-free points lie on the two arms: radius t in [0, 4.33π], (−t cos t, ±t sin t)
    clean, _ = make_spiral(1000, noise=0.0)
    t = clean.double().norm(dim=1)
    assert t.max() <= 4.33 * np.pi + 1e-4
    sign = torch.where(y == 0, 1.0, -1.0).double()
    assert torch.allclose(clean[:, 0].double(), -t * torch.cos(t), atol=1e-3)
    assert torch.allclose(clean[:, 1].double(), sign * t * torch.sin(t), atol=1e-3)
    # same seed, same t: the noise is an offset in [0, noise) on each coordinate
    offset = X - clean
    assert (offset >= 0).all() and (offset < 0.75).all()


def test_resimagenet_resized_training_view_and_released_random_crop(tmp_path, png):
    """The released training pipeline: ``Resize(72)`` (short side 72, aspect kept) then
    ``RandomCrop(64, padding=8)`` of the whole resized image, no flip.  The evaluation view is
    the centre crop of the same resized image."""
    from rll.data import RaggedImages, load_resized_train

    train = tmp_path / "restricted_imagenet" / "train"
    rows, cols = np.meshgrid(np.arange(90), np.arange(180), indexing="ij")
    wide = np.stack([rows, cols % 256, np.full_like(rows, 7)], axis=-1).astype(np.uint8)   # h 90, w 180
    png(train / "cat" / "a.png", wide)
    png(train / "dog" / "a.png", np.full((72, 72, 3), 9, np.uint8))
    resized, labels, note = load_resized_train("resimagenet", root=tmp_path)
    evaluation = load_dataset("resimagenet", "train", root=tmp_path)
    assert torch.equal(labels, evaluation.labels) and note == evaluation.note
    assert [tuple(im.shape) for im in resized.images] == [(3, 72, 144), (3, 72, 72)]
    top, left = 4, 40                                  # the centre crop of the resized image
    assert torch.equal(evaluation.images[0], resized.images[0][:, top:top + 64, left:left + 64])

    g = torch.Generator().manual_seed(0)
    crops = resized.random_crops(torch.tensor([0] * 200), 64, 8, g)
    assert crops.shape == (200, 3, 64, 64) and crops.dtype == torch.uint8
    padded = torch.nn.functional.pad(resized.images[0], (8, 8, 8, 8))
    offsets = set()
    for crop in crops:          # every crop is an unflipped window of the zero-padded resized image
        hits = [(dy, dx) for dy in range(88 - 64 + 1) for dx in range(160 - 64 + 1)
                if torch.equal(padded[:, dy:dy + 64, dx:dx + 64], crop)]
        assert hits, "not a window of the padded resized image (flipped?)"
        offsets.add(hits[0])
    assert len(offsets) > 100                          # positions over the whole padded width
    assert max(dx for _, dx in offsets) > 64 and min(dx for _, dx in offsets) < 16
    again = resized.random_crops(torch.tensor([0] * 200), 64, 8, torch.Generator().manual_seed(0))
    assert torch.equal(again, crops)                   # seeded
    assert isinstance(resized[torch.tensor([1])], RaggedImages) and len(resized[[1, 0]]) == 2
