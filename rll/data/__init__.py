"""The paper's datasets, read from their canonical files, plus the spiral of Appendix A.0.1.

Every loader returns an :class:`ImageDataset`: ``uint8`` images (N, C, H, W) and ``int64``
labels (N,), in the files' original order.  :func:`to_float` maps images to float32 in [0, 1]
at the edge; there is no mean/std normalisation anywhere (as in the paper's code).

Every file read is checked against its official md5 (cached in-process per path, size and
mtime).  A missing or corrupt file, or an absent split, raises :class:`DataError` naming the
file, the expected md5 and the fix.  Nothing is ever substituted silently.

Layout under the data root (:func:`resolve_root`: argument, else ``$RLL_DATA``, else
``~/.cache/rll``)::

    MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]   torchvision layout
    cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin          official binary version
    cifar-10-batches-py/{data_batch_1..5,test_batch}               official python version
    cifar-10-test-partial/test_batch_first1017.bin, test_labels.u8 split "test_partial"
    svhn/{train,test}_32x32.mat                                    official cropped digits
    restricted_imagenet/{train,val}/<class>/<image>                ImageFolder

MNIST reads the uncompressed IDX file when present, else the ``.gz``.  CIFAR-10 reads, per
split, whichever official layout holds all of that split's files (binary first).
``test_partial`` is the first 1017 of the 10 000 CIFAR-10 test images (a local copy, not a
test set; its ``note`` says so).  Restricted ImageNet class folders are either the nine
super-class names (``dog`` ... ``insect``) or ImageNet wnids (``n02085620`` ...); see
:func:`load_dataset`.  ``download`` fetches MNIST, CIFAR-10 (python version) and SVHN;
torchvision is imported only inside it.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import re
import tarfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

__all__ = [
    "CHECKSUMS", "DATASETS", "DATASET_INFO", "DataError", "DatasetInfo", "ImageDataset", "RaggedImages",
    "check_checksums", "download", "load_dataset", "load_resized_train", "make_spiral", "resolve_root",
    "to_float",
]

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


# ---------------------------------------------------------------- files and checksums

_MD5_CACHE: dict[tuple[str, int, int], str] = {}


def _md5_bytes(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _fix_hint(name: str, root: Path) -> str:
    if name in _DOWNLOADS:
        spec = _DOWNLOADS[name]
        where = (spec.mirrors[0] + next(iter(spec.files)) + " (or cifar-10-binary.tar.gz)"
                 if name == "cifar10" else spec.mirrors[0])
        return (f"(re-)download with `python -m rll download {name} --root {root}` "
                f"(or load_dataset(..., download=True)), or fetch the official files from "
                f"{where} yourself, or set RLL_DATA to a folder holding verified copies")
    return ("ImageNet cannot be downloaded automatically: build the ImageFolder from your own "
            "ILSVRC-2012 copy (see rll.data's docstring), or set RLL_DATA to a folder holding it")


_MD5 = re.compile(r"[0-9a-f]{32}")


def check_checksums(name: str, checksums: Mapping[str, str] | None) -> dict[str, str]:
    """Validate a caller's ``{file name: md5}`` overrides of ``CHECKSUMS[name]`` (e.g. for
    one's own copies, or small files written by tests) before any file is read; returns them
    as a plain dict with lower-case md5s ({} for None).

    Raises:
        ValueError: not a dict of file name -> 32 hex digits, or a file name ``name`` never
            reads (the message lists the valid ones).
    """
    form = ("checksums must be None or a dict of file name -> md5 (32 hex digits), e.g. "
            "{'train_32x32.mat': 'e26dedcc434d2e4c54c9b2d4a06d8373'}")
    _check_name(name)
    if checksums is None:
        return {}
    if not isinstance(checksums, Mapping):
        raise ValueError(f"{form}; got {checksums!r}")
    bad = {f: m for f, m in checksums.items()
           if not isinstance(f, str) or not isinstance(m, str) or not _MD5.fullmatch(m.lower())}
    if bad:
        raise ValueError(f"{form}; got {bad!r}")
    known = CHECKSUMS[name]
    unknown = sorted(set(checksums) - set(known))
    if unknown:
        raise ValueError(f"checksums has unknown file names {unknown} for {name!r}; "
                         f"valid: {sorted(known)}")
    return {f: m.lower() for f, m in checksums.items()}


class _Reader:
    """Reads files of one dataset, verifying md5s (or not, explicitly); remembers which files
    it checked against a caller's md5 instead of the official one."""

    def __init__(self, name: str, root: Path, verify: bool, checksums: Mapping[str, str] | None):
        self.name, self.root, self.verify = name, root, verify
        self.expected = {**CHECKSUMS[name], **check_checksums(name, checksums)}
        self.overridden: list[str] = []   # file names read against a caller's md5

    def missing(self, path: Path) -> DataError:
        md5 = self.expected.get(path.name, "n/a")
        return DataError(f"{self.name}: missing file {path} (expected md5 {md5}). "
                         f"Fix: {_fix_hint(self.name, self.root)}.")

    def read(self, path: Path) -> bytes:
        try:
            st = path.stat()
            data = path.read_bytes()
        except FileNotFoundError:
            raise self.missing(path) from None
        if self.verify:
            key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
            actual = _MD5_CACHE.get(key)
            if actual is None:
                actual = _md5_bytes(data)
                _MD5_CACHE[key] = actual
            self._check(path, actual)
        return data

    def _check(self, path: Path, actual: str) -> None:
        """Compare ``path``'s md5 with the expected one; a caller's override is named as such
        (its fix is the override, not a download)."""
        expected, official = self.expected[path.name], CHECKSUMS[self.name][path.name]
        if expected != official and path.name not in self.overridden:
            self.overridden.append(path.name)
        if actual == expected:
            return
        if expected == official:
            raise DataError(f"{self.name}: corrupt file {path}: md5 {actual}, expected "
                            f"{expected}. Fix: {_fix_hint(self.name, self.root)}.")
        raise DataError(f"{self.name}: file {path} has md5 {actual}, but the caller's checksums "
                        f"expect {expected} (official: {official}). Fix: correct the checksums "
                        f"entry for {path.name}, or drop it to check the official md5.")

    def override_note(self) -> str:
        """The caveat that files were checked against the caller's md5s, not the official
        ones, so the data may not be the official dataset ("" when none was)."""
        official = CHECKSUMS[self.name]
        return "; ".join(f"md5 of {f} overridden by the caller (official: {official[f]})"
                         for f in self.overridden)


def _np_labels(labels: np.ndarray, num_classes: int, path: Path) -> torch.Tensor:
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{path}: labels outside 0..{num_classes - 1}")
    return torch.from_numpy(labels)


# ---------------------------------------------------------------- MNIST

def _idx(data: bytes, path: Path, magic: int, dims: int) -> np.ndarray:
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    if len(data) < 4 * (1 + dims):
        raise DataError(f"{path}: too short for an IDX header")
    header = np.frombuffer(data, ">i4", count=1 + dims)
    shape = tuple(int(d) for d in header[1:])
    if int(header[0]) != magic or len(data) != 4 * (1 + dims) + int(np.prod(shape)):
        raise DataError(f"{path}: not an IDX file of magic {magic} and its stated size")
    return np.frombuffer(data, np.uint8, offset=4 * (1 + dims)).reshape(shape)


def _load_mnist(rd: _Reader, split: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    raw = rd.root / "MNIST" / "raw"
    prefix = "train" if split == "train" else "t10k"
    paths = []
    for stem in (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"):
        plain, gz = raw / stem, raw / f"{stem}.gz"
        paths.append(plain if plain.exists() else gz)
    for p in paths:
        if not p.exists():
            raise rd.missing(p)
    images = _idx(rd.read(paths[0]), paths[0], 2051, 3)
    labels = _idx(rd.read(paths[1]), paths[1], 2049, 1)
    if len(images) != len(labels):
        raise DataError(f"{paths[0]} and {paths[1]} disagree on the number of examples")
    return (torch.from_numpy(images.reshape(-1, 1, 28, 28).copy()),
            _np_labels(labels, 10, paths[1]), "")


# ---------------------------------------------------------------- CIFAR-10

def _cifar_records(data: bytes, path: Path) -> tuple[np.ndarray, np.ndarray]:
    if len(data) % 3073:
        raise DataError(f"{path}: size {len(data)} is not a multiple of 3073-byte records")
    rec = np.frombuffer(data, np.uint8).reshape(-1, 3073)
    return rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0]


def _cifar_pickle(data: bytes, path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = pickle.loads(data, encoding="bytes")
        x = batch.get(b"data", batch.get("data"))
        y = batch.get(b"labels", batch.get("labels"))
        x = np.asarray(x, dtype=np.uint8).reshape(-1, 3, 32, 32)
        y = np.asarray(y, dtype=np.int64)
    except Exception as err:
        raise DataError(f"{path}: not a CIFAR-10 python batch ({err})") from err
    if len(x) != len(y):
        raise DataError(f"{path}: {len(x)} images but {len(y)} labels")
    return x, y


def _load_cifar10(rd: _Reader, split: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    if split == "test_partial":
        return _load_cifar10_partial(rd)
    stems = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    layouts = [(rd.root / "cifar-10-batches-bin", [f"{s}.bin" for s in stems], _cifar_records),
               (rd.root / "cifar-10-batches-py", stems, _cifar_pickle)]
    for folder, names, decode in layouts:
        paths = [folder / n for n in names]
        if all(p.exists() for p in paths):
            parts = [decode(rd.read(p), p) for p in paths]
            x = np.concatenate([p[0] for p in parts])
            y = np.concatenate([p[1] for p in parts])
            return torch.from_numpy(np.ascontiguousarray(x)), _np_labels(y, 10, paths[0]), ""
    # No complete layout: name what is missing, in the folder that exists (binary first).
    existing = [lay for lay in layouts if lay[0].is_dir()] or layouts[::-1]
    folder, names, _ = existing[0]
    missing = [folder / n for n in names if not (folder / n).exists()]
    msg = "; ".join(f"{p} (expected md5 {rd.expected[p.name]})" for p in missing)
    other = layouts[1] if folder == layouts[0][0] else layouts[0]
    text = (f"cifar10 split {split!r}: missing file(s) {msg}; the other official layout "
            f"{other[0]} is incomplete too (needs {', '.join(other[1])}).")
    partial = rd.root / "cifar-10-test-partial"
    if split == "test" and partial.is_dir():
        text += (f" Note: {partial}/ exists but is NOT a test set (only the first 1017 of the "
                 f"10 000 test images); it is never substituted. Use split='test_partial' "
                 f"explicitly for partial checks.")
    raise DataError(f"{text} Fix: {_fix_hint('cifar10', rd.root)}.")


def _load_cifar10_partial(rd: _Reader) -> tuple[torch.Tensor, torch.Tensor, str]:
    folder = rd.root / "cifar-10-test-partial"
    rec_path, lab_path = folder / "test_batch_first1017.bin", folder / "test_labels.u8"
    for p in (rec_path, lab_path):
        if not p.exists():
            raise rd.missing(p)
    x, y = _cifar_records(rd.read(rec_path), rec_path)
    all_labels = np.frombuffer(rd.read(lab_path), np.uint8)
    if len(all_labels) != 10000 or not np.array_equal(all_labels[:len(y)], y):
        raise DataError(f"{rec_path}: record labels disagree with the first {len(y)} of "
                        f"{lab_path} (expected 10 000 labels, got {len(all_labels)})")
    note = (f"CIFAR-10 test_partial: the first {len(y)} of the 10 000 official test images; "
            f"any number computed from it covers {len(y)} of 10 000 test images and is not a "
            f"test-set result")
    return torch.from_numpy(np.ascontiguousarray(x)), _np_labels(y, 10, rec_path), note


# ---------------------------------------------------------------- SVHN

def _load_svhn(rd: _Reader, split: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    import scipy.io  # lazy: only SVHN needs scipy

    path = rd.root / "svhn" / f"{split}_32x32.mat"
    if not path.exists():
        raise rd.missing(path)
    try:
        mat = scipy.io.loadmat(io.BytesIO(rd.read(path)))
        x, y = np.asarray(mat["X"], np.uint8), np.asarray(mat["y"]).reshape(-1)
    except DataError:
        raise
    except Exception as err:
        raise DataError(f"{path}: not an SVHN .mat file ({err})") from err
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != len(y):
        raise DataError(f"{path}: X has shape {x.shape}, expected (32, 32, 3, {len(y)})")
    y = y.astype(np.int64)
    y[y == 10] = 0  # SVHN labels digit 0 as 10
    return (torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1))),
            _np_labels(y, 10, path), "")


# ---------------------------------------------------------------- Restricted ImageNet

_IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
_WNID = re.compile(r"n\d{8}")


def _resimagenet_label(folder: str) -> int | None:
    """Label of a class folder: super-class name, or wnid inside a range (None: outside)."""
    classes = list(RESIMAGENET_RANGES)
    if folder in classes:
        return classes.index(folder)
    for label, (lo, hi) in enumerate(_RESIMAGENET_WNID_BOUNDS.values()):
        if lo <= folder <= hi:
            return label
    return None


def _resize_short(path: Path, short: int = 72) -> np.ndarray:
    """The image resized so that its short side is ``short`` (bilinear, aspect kept: the long
    side becomes ``int(short * long / short_side)``): torchvision's ``Resize(72)`` on PIL
    images.  Returns (3, H, W) uint8."""
    from PIL import Image  # lazy: only Restricted ImageNet needs Pillow

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            if w <= h:
                nw, nh = short, int(short * h / w)
            else:
                nw, nh = int(short * w / h), short
            arr = np.asarray(im.resize((nw, nh), Image.Resampling.BILINEAR), dtype=np.uint8)
    except Exception as err:
        raise DataError(f"resimagenet: cannot decode image {path} ({err})") from err
    return arr.transpose(2, 0, 1)


def _eval_transform(path: Path) -> np.ndarray:
    """Resize the short side to 72 (bilinear), center-crop 64: torchvision's
    ``Resize(72), CenterCrop(64)`` on PIL images.  Returns (3, 64, 64) uint8."""
    arr = _resize_short(path)
    _, nh, nw = arr.shape
    left, top = int(round((nw - 64) / 2.0)), int(round((nh - 64) / 2.0))
    return np.ascontiguousarray(arr[:, top:top + 64, left:left + 64])


def _resimagenet_files(rd: _Reader, split: str) -> tuple[Path, list[Path], list[int]]:
    base = rd.root / "restricted_imagenet"
    candidates = [base / "train"] if split == "train" else [base / "val", base / "test"]
    folder = next((c for c in candidates if c.is_dir()), None)
    if folder is None:
        raise DataError(f"resimagenet split {split!r}: missing folder {candidates[0]} "
                        f"(an ImageFolder of class folders; no md5 applies). "
                        f"Fix: {_fix_hint('resimagenet', rd.root)}.")
    class_dirs = sorted(d for d in folder.iterdir() if d.is_dir())
    names = [d.name for d in class_dirs]
    supers = [n for n in names if n in RESIMAGENET_RANGES]
    if supers and len(supers) != len(names):
        raise DataError(f"{folder}: mixes super-class folders {supers} with others "
                        f"{sorted(set(names) - set(supers))}; use either the nine super-class "
                        f"names {list(RESIMAGENET_RANGES)} or ImageNet wnid folders only")
    if not supers and any(not _WNID.fullmatch(n) for n in names):
        raise DataError(f"{folder}: class folders must be the super-class names "
                        f"{list(RESIMAGENET_RANGES)} or ImageNet wnids (n########); got "
                        f"{[n for n in names if not _WNID.fullmatch(n)][:5]}")
    files, labels = [], []
    for d in class_dirs:
        label = _resimagenet_label(d.name)
        if label is None:
            continue  # a wnid outside the nine ranges (e.g. a full ImageNet folder)
        for p in sorted(d.rglob("*")):
            if p.is_file() and p.suffix.lower() in _IMG_EXTENSIONS:
                files.append(p)
                labels.append(label)
    if not files:
        raise DataError(f"{folder}: no images of the nine Restricted ImageNet classes found. "
                        f"Fix: {_fix_hint('resimagenet', rd.root)}.")
    return folder, files, labels


def _resimagenet_note(folder: Path, n: int) -> str:
    return f"{n} images from {folder}: an image folder without official md5s, not verified"


def _load_resimagenet(rd: _Reader, split: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    folder, files, labels = _resimagenet_files(rd, split)
    images = np.empty((len(files), 3, 64, 64), np.uint8)

    def work(i: int) -> None:
        images[i] = _eval_transform(files[i])

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(work, range(len(files))))
    return torch.from_numpy(images), torch.tensor(labels, dtype=torch.int64), _resimagenet_note(folder, len(files))


@dataclass(frozen=True, eq=False)
class RaggedImages:
    """Images of different sizes, uint8 (C, Hᵢ, Wᵢ) each, kept on the CPU: Restricted ImageNet's
    training images as the released pipeline held them before its random crop."""

    images: tuple[torch.Tensor, ...]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, idx) -> "RaggedImages":
        """The images at ``idx`` (a sequence or tensor of indices), as another RaggedImages."""
        return RaggedImages(tuple(self.images[int(i)] for i in idx))

    def random_crops(self, idx, size: int, pad: int,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """torchvision's ``RandomCrop(size, padding=pad)`` of each image at ``idx``: a window of
        ``size`` × ``size`` at a uniformly random position of the image zero-padded by ``pad`` on
        every side, drawn from ``generator`` (CPU).  No flip.  Returns uint8 (len(idx), C, size, size)."""
        first = self.images[0]
        out = torch.zeros((len(idx), first.shape[0], size, size), dtype=torch.uint8)
        for k, i in enumerate(int(i) for i in idx):
            img = self.images[i]
            _, h, w = img.shape
            if h + 2 * pad < size or w + 2 * pad < size:
                raise ValueError(f"image {i} of size {h}x{w} is smaller than the {size}-pixel crop "
                                 f"even with {pad} pixels of padding")
            top = int(torch.randint(0, h + 2 * pad - size + 1, (1,), generator=generator))
            left = int(torch.randint(0, w + 2 * pad - size + 1, (1,), generator=generator))
            r0, c0 = top - pad, left - pad           # the window in the unpadded image's coordinates
            rs, re, cs, ce = max(r0, 0), min(r0 + size, h), max(c0, 0), min(c0 + size, w)
            out[k, :, rs - r0:re - r0, cs - c0:ce - c0] = img[:, rs:re, cs:ce]
        return out


def load_resized_train(name: str = "resimagenet", root: str | os.PathLike | None = None) -> tuple[
        RaggedImages, torch.Tensor, str]:
    """Restricted ImageNet's training split as the released code trained on it, before the
    random crop: every image resized so its short side is 72 (``Resize(72)``, aspect kept), as
    :class:`RaggedImages`, with the labels and the data note.  The same files in the same order
    as ``load_dataset("resimagenet", "train")`` (whose images are the evaluation view, centre
    crops of these), so one index selects the same image in both."""
    if name != "resimagenet":
        raise ValueError(f"only resimagenet has a resized training view, got {name!r}")
    rd = _Reader(name, resolve_root(root), verify=True, checksums=None)
    folder, files, labels = _resimagenet_files(rd, "train")
    images: list = [None] * len(files)

    def work(i: int) -> None:
        images[i] = torch.from_numpy(np.ascontiguousarray(_resize_short(files[i])))

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(work, range(len(files))))
    return (RaggedImages(tuple(images)), torch.tensor(labels, dtype=torch.int64),
            _resimagenet_note(folder, len(files)))


_LOADERS = {"mnist": _load_mnist, "cifar10": _load_cifar10, "svhn": _load_svhn,
            "resimagenet": _load_resimagenet}


def _check_name(name: str, split: str | None = None) -> None:
    if name not in DATASET_INFO:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    splits = DATASET_INFO[name].splits
    if split is not None and split not in splits:
        raise ValueError(f"unknown split {split!r} for {name!r}; valid: {', '.join(splits)}")


def load_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None,
                 download: bool | None = None, *, verify: bool = True,
                 checksums: Mapping[str, str] | None = None) -> ImageDataset:
    """Load one split of ``name`` (see ``DATASETS``) into memory as uint8.

    Args:
        name: ``mnist``, ``cifar10``, ``svhn`` or ``resimagenet``.
        split: ``train`` or ``test``; cifar10 also ``test_partial`` (the first 1017 test
            images, with a ``note`` saying so; never used in place of ``test``).
        root: data root (see :func:`resolve_root`).
        download: when a file is missing or corrupt, fetch the dataset with :func:`download`
            (mnist, cifar10, svhn) and retry once.  ``None`` (the default): only when the
            environment variable ``RLL_DOWNLOAD`` is ``1`` (as on Binder), else never.
        verify: check every file's md5 (default).  ``verify=False`` skips the check and
            records that in ``note``.
        checksums: ``{file name: md5}`` overriding entries of ``CHECKSUMS[name]`` (e.g. for
            small files written by tests; see :func:`check_checksums`); unknown file names
            raise ``ValueError``.  Each file read against an md5 other than the official one
            is named in ``note``.

    Restricted ImageNet: ``<root>/restricted_imagenet/train`` and ``.../val`` (or ``test``),
    each with class folders that are either the nine super-class names (labels in
    ``DATASET_INFO["resimagenet"].classes`` order, not alphabetical) or ImageNet wnids, mapped
    by the index ranges of Tsipras et al. (wnids outside them are ignored, so a full ImageNet
    folder works).  Images get the eval transform (resize 72, center-crop 64).  ImageNet has
    no per-image md5s, so these files are not verified, and ``note`` says so.  CIFAR-10 python batches are
    unpickled: keep ``verify=True`` for files you did not write.

    Raises:
        ValueError: unknown name, split or checksum key, or a malformed md5.
        DataError: missing or corrupt file, absent split.
    """
    _check_name(name, split)
    if download is None:
        download = os.environ.get("RLL_DOWNLOAD", "") == "1"
    root_path = resolve_root(root)
    reader = _Reader(name, root_path, verify, checksums)
    try:
        images, labels, note = _LOADERS[name](reader, split)
    except DataError:
        if not download or name not in _DOWNLOADS or split == "test_partial":
            raise
        _download(name, root_path)
        images, labels, note = _LOADERS[name](reader, split)
    if not verify and name != "resimagenet":
        note = "; ".join(filter(None, [note, "md5 checksums not verified (verify=False)"]))
    note = "; ".join(filter(None, [note, reader.override_note()]))
    info = DATASET_INFO[name]
    if tuple(images.shape[1:]) != info.shape:
        raise DataError(f"{name} {split}: images of shape {tuple(images.shape[1:])}, "
                        f"expected {info.shape}")
    return ImageDataset(images, labels, name, split, info.classes, note)


# ---------------------------------------------------------------- downloads

def _file_md5(path: Path) -> str | None:
    if not path.is_file():
        return None
    h = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fetch(url: str, dest: Path, md5: str) -> None:
    """Stdlib download of ``url`` to ``dest``, verified against ``md5``; nothing is left at
    ``dest`` unless the md5 matches."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    h = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=60) as src, part.open("wb") as out:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != md5:
            raise DataError(f"downloaded {url}: md5 {h.hexdigest()}, expected {md5}")
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)


def _extract(archive: Path, folder: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(folder, filter="data")
        else:  # pragma: no cover - Python without extraction filters
            tar.extractall(folder)


def download(name: str, root: str | os.PathLike | None = None) -> Path:
    """Fetch ``name``'s official files into the root's layout (mnist, cifar10 python version,
    svhn) and verify their md5s; intact files already there are kept.  Uses torchvision's
    download utilities when they import, else urllib.  Returns the dataset's folder."""
    if name not in _DOWNLOADS:
        _check_name(name)
        raise ValueError(f"{name!r} cannot be downloaded automatically (ImageNet needs a "
                         f"registered copy); downloadable: {', '.join(_DOWNLOADS)}")
    return _download(name, resolve_root(root))


def _extracted_ok(name: str, folder: Path) -> bool:
    spec = _DOWNLOADS[name]
    return all(_file_md5(folder / rel) == CHECKSUMS[name][Path(rel).name]
               for rel in spec.extracted)


def _download(name: str, root: Path) -> Path:
    spec = _DOWNLOADS[name]
    folder = root / spec.subdir
    folder.mkdir(parents=True, exist_ok=True)
    try:  # lazy: torchvision is never imported at module level
        from torchvision.datasets.utils import (
            download_and_extract_archive,
            download_url,
        )
    except Exception:  # ImportError, or a torchvision built for another torch
        download_and_extract_archive = download_url = None
    for fname, md5 in spec.files.items():
        dest = folder / fname
        if spec.extracted and _extracted_ok(name, folder):
            continue
        if _file_md5(dest) != md5:
            errors = []
            for base in spec.mirrors:
                url = base + fname
                try:
                    if download_url is None:
                        _fetch(url, dest, md5)
                    elif spec.extracted:
                        download_and_extract_archive(url, str(folder), filename=fname, md5=md5)
                    else:
                        download_url(url, str(folder), filename=fname, md5=md5)
                    if _file_md5(dest) == md5:
                        break
                    errors.append(f"{url}: md5 mismatch")
                except Exception as err:
                    errors.append(f"{url}: {err}")
            else:
                raise DataError(f"{name}: could not download {fname} (md5 {md5}) into "
                                f"{folder}: {'; '.join(errors)}. Fetch it yourself, or set "
                                f"RLL_DATA to a folder holding verified copies.")
        if spec.extracted and not _extracted_ok(name, folder):
            _extract(dest, folder)
            if not _extracted_ok(name, folder):
                raise DataError(f"{name}: {dest} did not extract to files with the official "
                                f"md5s ({', '.join(spec.extracted)})")
    return folder


# ---------------------------------------------------------------- spiral (Appendix A.0.1)

def make_spiral(n: int, noise: float = 0.75, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The two-spiral data of Appendix A.0.1: t ~ U[0, 4.33π]; the first n // 2 points are
    negatives (−t cos t, t sin t) + U(0, noise)², label 0; the rest positives
    (−t cos t, −t sin t) + U(0, noise)², label 1.  Returns X float32 (n, 2), y int64 (n,)."""
    if n < 0 or noise < 0:
        raise ValueError(f"n and noise must be non-negative, got n={n}, noise={noise}")
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, 4.33 * np.pi, size=n)
    jitter = rng.uniform(0.0, noise, size=(n, 2))
    y = np.zeros(n, np.int64)
    y[n // 2:] = 1
    sign = np.where(y == 0, 1.0, -1.0)
    x = np.stack([-t * np.cos(t), sign * t * np.sin(t)], axis=1) + jitter
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)


def check_data_root(data_root: str | None) -> None:
    """A given data root must be an existing folder (``None`` means ``$RLL_DATA``/default)."""
    if data_root is not None and not Path(data_root).expanduser().is_dir():
        raise ValueError(f"data_root {str(data_root)!r} does not exist or is not a folder; "
                         "pass the folder holding MNIST/, cifar-10-batches-bin/, ... or set RLL_DATA")
