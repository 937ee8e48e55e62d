"""Downloading MNIST, CIFAR-10 (python version) and SVHN from their official mirrors, verified by
md5 and extracted atomically (torchvision is never imported)."""
from __future__ import annotations

import hashlib
import os
import tarfile
import urllib.request
from pathlib import Path

from rll.data.files import file_md5
from rll.data.registry import (
    _DOWNLOADS,
    CHECKSUMS,
    DataError,
    _check_name,
    resolve_root,
)


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
    return all(file_md5(folder / rel) == CHECKSUMS[name][Path(rel).name]
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
        if file_md5(dest) != md5:
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
                    if file_md5(dest) == md5:
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
