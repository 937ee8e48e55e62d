"""What the paper's datasets are: names, shapes and classes, the official md5 of every file, the
data root, and the in-memory form every reader returns."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DATASETS = ("mnist", "cifar10", "svhn", "resimagenet")


class DataError(Exception):
    """A dataset file is missing or corrupt, or a split is absent; the message names the file,
    the expected md5 and the fix."""


@dataclass(frozen=True)
class DatasetInfo:
    """Constants of one dataset.  Fields are also readable as ``info["eps"]``."""

    eps: float                 # l∞ radius in [0, 1] pixel units (Section 5)
    num_classes: int
    shape: tuple[int, int, int]  # (C, H, W)
    classes: tuple[str, ...]
    min_rank: int              # the train–train minimum reported is the min_rank-th smallest distance
                               # (released notebook; rll.metrics.separation.separation_stats)
    splits: tuple[str, ...]

    def __getitem__(self, key: str):
        return getattr(self, key)


_DIGITS = tuple(str(i) for i in range(10))


_CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                  "dog", "frog", "horse", "ship", "truck")


# Restricted ImageNet (Tsipras et al.; MadryLab robustness): super-class -> inclusive ImageNet
# class-index range, in label order.
RESIMAGENET_RANGES = {
    "dog": (151, 268), "cat": (281, 285), "frog": (30, 32), "turtle": (33, 37),
    "bird": (80, 100), "primate": (365, 382), "fish": (389, 397), "crab": (118, 121),
    "insect": (300, 319),
}


# ImageNet class indices are the sorted order of the 1000 ILSVRC-2012 wnids, so an index range
# [a, b] is exactly the wnid interval [wnid(a), wnid(b)]: the endpoints suffice.
_RESIMAGENET_WNID_BOUNDS = {
    "dog": ("n02085620", "n02113978"), "cat": ("n02123045", "n02124075"),
    "frog": ("n01641577", "n01644900"), "turtle": ("n01664065", "n01669191"),
    "bird": ("n01795545", "n01860187"), "primate": ("n02480495", "n02494079"),
    "fish": ("n02514041", "n02655020"), "crab": ("n01978287", "n01981276"),
    "insect": ("n02165105", "n02268443"),
}


DATASET_INFO: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(0.1, 10, (1, 28, 28), _DIGITS, 1, ("train", "test")),
    "cifar10": DatasetInfo(0.031, 10, (3, 32, 32), _CIFAR_CLASSES, 1,
                           ("train", "test", "test_partial")),
    "svhn": DatasetInfo(0.031, 10, (3, 32, 32), _DIGITS, 5, ("train", "test")),
    "resimagenet": DatasetInfo(0.005, 9, (3, 64, 64), tuple(RESIMAGENET_RANGES), 7,
                               ("train", "test")),
}


# Official md5 of every file read, per dataset, keyed by file name.  MNIST's uncompressed
# entries are the md5s of the official .gz files' contents.  The two cifar-10-test-partial
# files are ours (not official); their md5s pin the shared mirror's copies.
CHECKSUMS: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "cifar10": {
        "data_batch_1.bin": "5dd7e06a14cb22eb9f671a540d1b7c25",
        "data_batch_2.bin": "5ea93a67294ea407fff1d09f752e9692",
        "data_batch_3.bin": "942cd6a4bcdd0dd3c604fbe906cb4421",
        "data_batch_4.bin": "ae636b3ba5c66a11e91e8cb52e771fcb",
        "data_batch_5.bin": "53f37980c15c3d472c316c40844f3f0d",
        "test_batch.bin": "803d5f7f4d78ea53de84dbe85f74fb6d",
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
        "test_batch_first1017.bin": "6ac134a1c8e0e152e254c10d0fc92b6f",
        "test_labels.u8": "251f18ce75337ae9ca5d0dbd7ea62cf4",
    },
    "svhn": {
        "train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
        "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3",
    },
    "resimagenet": {},  # ImageNet has no official per-image md5s: its files are not verified
}


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """One split in memory: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,); ``note`` is
    "" or a caveat that any number computed from this data must carry."""

    images: torch.Tensor
    labels: torch.Tensor
    name: str
    split: str
    classes: tuple[str, ...]
    note: str = ""

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or self.labels.shape != (len(self.images),):
            raise ValueError(f"labels must be int64 ({len(self.images)},), got "
                             f"{self.labels.dtype} {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        note = f", note={self.note!r}" if self.note else ""
        return (f"ImageDataset(name={self.name!r}, split={self.split!r}, "
                f"images=uint8{tuple(self.images.shape)}, classes={len(self.classes)}{note})")


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """Data root: ``root`` if given, else ``$RLL_DATA`` if set and non-empty, else
    ``~/.cache/rll``; returned absolute."""
    if root is None:
        root = os.environ.get("RLL_DATA") or Path.home() / ".cache" / "rll"
    return Path(root).expanduser().absolute()


def to_float(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] (x / 255), same shape and device."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if images.dtype != torch.uint8:
        raise TypeError(f"to_float expects uint8 images, got {images.dtype}")
    return images.to(torch.float32).div_(255.0)


def _check_name(name: str, split: str | None = None) -> None:
    if name not in DATASET_INFO:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    splits = DATASET_INFO[name].splits
    if split is not None and split not in splits:
        raise ValueError(f"unknown split {split!r} for {name!r}; valid: {', '.join(splits)}")


def check_data_root(data_root: str | None) -> None:
    """A given data root must be an existing folder (``None`` means ``$RLL_DATA``/default)."""
    if data_root is not None and not Path(data_root).expanduser().is_dir():
        raise ValueError(f"data_root {str(data_root)!r} does not exist or is not a folder; "
                         "pass the folder holding MNIST/, cifar-10-batches-bin/, ... or set RLL_DATA")


@dataclass(frozen=True)
class _Download:
    mirrors: tuple[str, ...]   # base URLs, tried in order
    subdir: str                # under the root
    files: dict[str, str]      # file name -> md5
    extracted: tuple[str, ...] = ()  # files an archive provides (md5s in CHECKSUMS)


_DOWNLOADS: dict[str, _Download] = {
    "mnist": _Download(
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        "MNIST/raw", {f: m for f, m in CHECKSUMS["mnist"].items() if f.endswith(".gz")}),
    "cifar10": _Download(
        ("https://www.cs.toronto.edu/~kriz/",), "",
        {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
        tuple(f"cifar-10-batches-py/{s}" for s in
              ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
               "test_batch"))),
    "svhn": _Download(("http://ufldl.stanford.edu/housenumbers/",), "svhn",
                      dict(CHECKSUMS["svhn"])),
}
