"""Reading dataset files with their md5 checked (cached per path, size and mtime): a missing or
corrupt file raises :class:`rll.data.DataError` naming the file, the expected md5 and the fix."""
from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from rll.data.registry import _DOWNLOADS, CHECKSUMS, DataError, _check_name

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


def file_md5(path: Path) -> str | None:
    if not path.is_file():
        return None
    h = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
