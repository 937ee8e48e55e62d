"""One reader per dataset (MNIST, CIFAR-10 and its labelled partial test copy, SVHN, Restricted
ImageNet) and :func:`load_dataset`, which picks one."""
from __future__ import annotations

import io
import os
import pickle
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from rll.data.download import _DOWNLOADS, _download
from rll.data.files import _fix_hint, _idx, _np_labels, _Reader
from rll.data.registry import (
    _RESIMAGENET_WNID_BOUNDS,
    DATASET_INFO,
    RESIMAGENET_RANGES,
    DataError,
    ImageDataset,
    _check_name,
    resolve_root,
)


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
