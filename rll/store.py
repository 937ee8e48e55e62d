"""Results store: one JSON file per run, keyed by the run's canonical configuration.

A record is plain JSON, never pickle::

    {"schema": 1,
     "config": {...},        # the canonical configuration (sorted keys, defaults filled)
     "metrics": {...},       # the paper's columns (train_acc, test_acc, adv_*, gap, ...)
     "provenance": {...}}    # git_commit, rll_version, torch_version, device, started_utc,
                             # wall_seconds, epochs_done, host, ...

The file name is a readable prefix plus a stable hash of the configuration, e.g.
``mnist-cnn2-trades-beta6-3f2a9c01d4e7.json``; the hash is the SHA-256 of the configuration
serialised as JSON with sorted keys, so the key does not depend on the order in which the
configuration's entries were written.  The store hashes what it is given: filling defaults
and normalising types (``6`` vs ``6.0``) is the job of the configuration object
(:meth:`rll.config.TrainConfig.canonical`), which the store also accepts directly.

Writes are atomic (temporary file in the same folder, ``fsync``, ``os.replace``): a reader
never sees half a record, and writers of different records never interfere.  A torn,
truncated or foreign JSON file in the folder is reported by name (``warnings.warn``) and
skipped.  :meth:`ResultsStore.claim` lets several workers share one folder without two of
them running the same configuration.

This module imports nothing else from rll.
"""
from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import re
import socket
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch

from rll import __version__

SCHEMA = 1
HASH_LENGTH = 12
# Fields that make up the readable part of a file name, in this order (when present).
PREFIX_FIELDS = ("dataset", "model", "method")
DEFAULT_STALE_SECONDS = 24 * 3600.0


class ResultsWarning(UserWarning):
    """A file in the results folder could not be read as a record (it is skipped)."""


def canonical_dict(config: Any) -> dict:
    """The configuration as a plain JSON-compatible dict: ``config.canonical()`` if the object
    has it, else the mapping itself; tuples become lists (a JSON round trip)."""
    if hasattr(config, "canonical"):
        config = config.canonical()
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a mapping or have .canonical(), got {type(config).__name__}")
    try:
        return json.loads(json.dumps(config, sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise ValueError(f"configuration is not plain JSON data: {err}") from None


def config_hash(config: Any, length: int = HASH_LENGTH) -> str:
    """Stable hex digest of the canonical configuration (independent of key order)."""
    text = json.dumps(canonical_dict(config), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def _slug(value: Any) -> str:
    if isinstance(value, float):
        value = f"{value:g}"
    return re.sub(r"[^A-Za-z0-9.]+", "_", str(value)).strip("_")


def config_stem(config: Any) -> str:
    """File stem: readable prefix (dataset, model, method, method parameters) + config hash."""
    cfg = canonical_dict(config)
    parts = [_slug(cfg[k]) for k in PREFIX_FIELDS if cfg.get(k) not in (None, "")]
    params = cfg.get("params")
    if isinstance(params, Mapping):
        parts += [f"{_slug(k)}{_slug(v)}" for k, v in sorted(params.items()) if v is not None]
    parts.append(config_hash(cfg))
    return "-".join(p for p in parts if p)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as err:
        return err.errno == errno.EPERM
    return True


class ResultsStore:
    """A folder of run records, one JSON file per configuration.

    >>> store = ResultsStore("results")
    >>> store.put(cfg, {"test_acc": 99.2}, {"device": "cpu"})    # doctest: +SKIP
    >>> store.get(cfg)["metrics"]["test_acc"]                     # doctest: +SKIP
    >>> store.to_frame()                                          # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.root)!r})"

    # -- paths ---------------------------------------------------------------------------
    def path(self, config: Any) -> Path:
        """Where the record of ``config`` lives (whether or not it exists)."""
        return self.root / f"{config_stem(config)}.json"

    def claim_path(self, config: Any) -> Path:
        return self.root / f"{config_stem(config)}.claim"

    # -- records -------------------------------------------------------------------------
    def put(self, config: Any, metrics: Mapping, provenance: Mapping) -> Path:
        """Write the record of one run atomically (replacing an earlier one) and return its path."""
        cfg = canonical_dict(config)
        record = {"schema": SCHEMA, "config": cfg, "metrics": dict(metrics),
                  "provenance": dict(provenance)}
        try:
            text = json.dumps(record, indent=2, sort_keys=True, allow_nan=False)
        except ValueError as err:
            raise ValueError(f"record is not plain JSON (NaN/inf are not allowed): {err}") from None
        return atomic_write_bytes(self.path(cfg), (text + "\n").encode("utf-8"))

    def get(self, config: Any) -> dict | None:
        """The stored record of ``config``, or None (also, with a warning, if its file is torn)."""
        cfg = canonical_dict(config)
        path = self.path(cfg)
        if not path.exists():
            return None
        record = self._read(path)
        if record is None:
            return None
        if record["config"] != cfg:
            warnings.warn(f"{path}: stored configuration differs from the requested one "
                          "(hash collision or edited file); ignoring it", ResultsWarning, stacklevel=2)
            return None
        return record

    def __contains__(self, config: Any) -> bool:
        return self.get(config) is not None

    def _read(self, path: Path) -> dict | None:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            warnings.warn(f"skipping unreadable results file {path.name}: {err}", ResultsWarning,
                          stacklevel=3)
            return None
        if not (isinstance(record, dict) and isinstance(record.get("config"), dict)
                and isinstance(record.get("metrics"), dict) and record.get("schema") == SCHEMA):
            warnings.warn(f"skipping {path.name}: not an rll results record (schema {SCHEMA})",
                          ResultsWarning, stacklevel=3)
            return None
        record.setdefault("provenance", {})
        return record

    def _files(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return iter(())
        return iter(sorted(p for p in self.root.glob("*.json") if not p.name.startswith(".")))

    def records(self) -> list[dict]:
        """Every readable record in the folder (sorted by file name); each gets a ``"path"``
        entry.  Torn or foreign files are named in a :class:`ResultsWarning` and skipped."""
        out = []
        for path in self._files():
            record = self._read(path)
            if record is not None:
                record["path"] = str(path)
                out.append(record)
        return out

    def to_frame(self):
        """All records as a pandas DataFrame, one row per run: configuration columns (nested
        entries such as ``params`` flattened to their own names, e.g. ``beta``), metric
        columns, then provenance columns prefixed ``provenance.``, and ``path``."""
        import pandas as pd

        rows = [flatten_record(r) for r in self.records()]
        return pd.DataFrame(rows)

    # -- claims --------------------------------------------------------------------------
    def claim(self, config: Any, owner: str | None = None) -> bool:
        """Claim ``config`` for this process: True if the claim was taken, False if another
        worker holds it.  Atomic (``O_CREAT | O_EXCL``), so of two workers racing for one
        configuration exactly one wins.  The claim file records owner, pid, host and time;
        a stale claim is never taken over silently — see :meth:`break_claim`."""
        path = self.claim_path(config)
        path.parent.mkdir(parents=True, exist_ok=True)
        info = {"owner": owner or f"pid {os.getpid()}", "pid": os.getpid(),
                "host": socket.gethostname(), "time": time.time()}
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(info, fh)
            fh.flush()
            os.fsync(fh.fileno())
        return True

    def claim_info(self, config: Any) -> dict | None:
        """The current claim on ``config`` (owner, pid, host, time), or None.  A claim file that
        cannot be parsed (its writer died mid-write) is returned as ``{"unreadable": True}``."""
        path = self.claim_path(config)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            info = json.loads(text)
            if not isinstance(info, dict):
                raise ValueError
        except ValueError:
            try:
                mtime = path.stat().st_mtime
            except FileNotFoundError:
                return None
            return {"unreadable": True, "time": mtime}
        return info

    def claim_is_stale(self, config: Any, timeout: float | None = DEFAULT_STALE_SECONDS) -> bool:
        """Whether the claim on ``config`` is stale: its process is dead on this host, or it is
        older than ``timeout`` seconds (``None``: age alone never makes it stale)."""
        info = self.claim_info(config)
        if info is None:
            return False
        if (info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int)
                and not _pid_alive(info["pid"])):
            return True
        age = time.time() - float(info.get("time", time.time()))
        return timeout is not None and age > timeout

    def break_claim(self, config: Any, *, timeout: float | None = DEFAULT_STALE_SECONDS,
                    force: bool = False) -> bool:
        """Remove a stale claim (or any claim with ``force=True``); True if one was removed.

        Safe against a race with another breaker: the claim file is first renamed to a private
        name, and if what was moved is not the stale claim that was inspected (someone broke it
        and re-claimed in between) it is put back."""
        path = self.claim_path(config)
        try:
            seen = path.read_bytes()
        except FileNotFoundError:
            return False
        if not (force or self.claim_is_stale(config, timeout)):
            return False
        grave = path.parent / f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.broken"
        try:
            os.rename(path, grave)
        except FileNotFoundError:
            return False
        if not force and grave.read_bytes() != seen:
            try:  # not the claim we judged stale: give it back
                os.link(grave, path)
            except FileExistsError:
                pass
            grave.unlink()
            return False
        grave.unlink()
        return True

    def release(self, config: Any) -> None:
        """Drop this process's claim on ``config`` (a claim held by another pid is left alone)."""
        info = self.claim_info(config)
        if info is None:
            return
        if info.get("pid") not in (None, os.getpid()) and info.get("host") == socket.gethostname():
            return
        try:
            self.claim_path(config).unlink()
        except FileNotFoundError:
            pass


@functools.lru_cache(maxsize=None)
def git_commit() -> tuple[str | None, bool | None]:
    """The checked-out commit of this rll and whether ``rll/`` has uncommitted changes;
    ``(None, None)`` outside a git checkout.  Part of every record's provenance.

    Read once per process (the first call; :func:`rll.training.run.train` makes it before training):
    a long run records the code it imported, not a commit made while it ran."""
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10)
        if commit.returncode != 0:
            return None, None
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "rll"],
                               capture_output=True, text=True, timeout=10)
        return commit.stdout.strip(), bool(dirty.stdout.strip()) if dirty.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None, None


#: The CPU flags that decide how fast bf16 runs here (benchmarks/README.md, "Precision").
SPEED_FLAGS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2")


@functools.cache
def cpu_description(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str:
    """The host CPU for provenance and benchmarks: its model name and which of
    :data:`SPEED_FLAGS` it has, e.g. ``"Intel(R) Xeon(R) Processor (amx_bf16 avx512_bf16 avx512f
    avx2)"``.  Training seconds mean little without it: a bf16 CNN2 AT step ran at 552 img/s on
    a CPU with AMX and at 135 on one without (benchmarks/README.md, "Precision").  Read from
    ``cpuinfo`` (Linux); elsewhere the platform's processor string."""
    import platform

    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return platform.processor() or platform.machine() or "unknown CPU"
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    flags_line = re.search(r"^flags\s*:\s*(.+)$", text, re.MULTILINE)
    flags = set(flags_line.group(1).split()) if flags_line else set()
    name = model.group(1).strip() if model else (platform.processor() or platform.machine() or "CPU")
    return f"{name} ({' '.join(f for f in SPEED_FLAGS if f in flags) or 'none of ' + ', '.join(SPEED_FLAGS)})"


def device_name(device) -> str:
    """A readable name of a torch device for provenance: the GPU's model, or ``cpu``."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu" if device.type == "cpu" else str(device)


def flatten_record(record: Mapping) -> dict:
    """One row of :meth:`ResultsStore.to_frame`."""
    row: dict[str, Any] = {}
    config = record.get("config", {})
    nested: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            for k, v in value.items():
                nested[k] = (key, v)
        elif isinstance(value, list):
            row[key] = tuple(value)
        else:
            row[key] = value
    for k, (parent, v) in nested.items():
        row[k if k not in row else f"{parent}.{k}"] = v
    for key, value in record.get("metrics", {}).items():
        row[key if key not in row else f"metrics.{key}"] = value
    for key, value in record.get("provenance", {}).items():
        row[f"provenance.{key}"] = value
    if "path" in record:
        row["path"] = record["path"]
    return row


REPO = Path(__file__).resolve().parents[1]


#: The kinds of stored results (folders of ``results/``).
RESULT_KINDS = ("runs", "budget", "separation", "precision")


def results_folder(kind: str = "runs", explicit=None) -> Path:
    """Where the stored results of ``kind`` are read from and written to: ``explicit`` if given,
    else ``$RLL_RESULTS/<kind>``, else this checkout's ``results/<kind>``.  An installed package
    (``pip install``, Colab) has no checkout: without ``$RLL_RESULTS`` it raises, naming the fix,
    rather than reading an empty store."""
    if kind not in RESULT_KINDS:
        raise ValueError(f"unknown kind of results {kind!r}; valid choices: {', '.join(RESULT_KINDS)}")
    if explicit is not None:
        return Path(explicit)
    if os.environ.get("RLL_RESULTS"):
        return Path(os.environ["RLL_RESULTS"]) / kind
    here = REPO / "results"
    if here.is_dir():
        return here / kind
    raise FileNotFoundError(
        f"no stored results: rll is installed without its repository ({REPO} has no results/ folder). Set "
        "RLL_RESULTS to a copy of the repository's results/ folder (git clone https://github.com/rll-companion/rll; "
        "export RLL_RESULTS=$PWD/rll/results), or pass results_dir explicitly")


def provenance(device: str | torch.device | None = None) -> dict:
    """Where and with what a result was computed: git commit, versions, device, time."""
    commit, dirty = git_commit()
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "rll_version": __version__,
        "torch_version": torch.__version__,
        "device": device_name(device or ("cuda" if torch.cuda.is_available() else "cpu")),
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
