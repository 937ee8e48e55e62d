"""Claiming a configuration in the results store before training it, so that two workers (processes,
GPUs, machines sharing the store) never train one configuration both, and finding it already
stored under every attack asked for."""
from __future__ import annotations

import os
import warnings

from rll.config import (
    TrainConfig,
)
from rll.losses import is_current
from rll.store import ResultsStore


class RunClaimed(RuntimeError):
    """Another live worker holds the claim on this configuration."""


def _stored_or_claimed(store: ResultsStore, config: TrainConfig, attacks: tuple[str, ...], *, force: bool,
                       claim: bool, owner: str | None) -> dict | None:
    """``config``'s stored record (unless ``force``), else None once the run is claimed."""
    if not force and (done := _stored(store, config, attacks)) is not None:
        return done
    if claim:
        _claim(store, config, owner)
        done = None if force else _stored(store, config, attacks)
        if done is not None:      # finished by another worker between our look and our claim
            store.release(config.training_canonical())
            return done
    return None


def _stored(store: ResultsStore, config: TrainConfig, attacks: tuple[str, ...]) -> dict | None:
    """``config``'s record if the store holds it under every attack in ``attacks`` at the current
    fidelity revision, else None (an older revision's record is trained again and replaced)."""
    records = [store.get(config.replace(attack=a)) for a in attacks]
    if not all(is_current(r) for r in records):
        return None
    records[0]["path"] = str(store.path(config))
    return records[0]


def _claim(store: ResultsStore, config: TrainConfig, owner: str | None = None) -> None:
    """Claim the *training* identity (configurations differing only in evaluation fields share
    one checkpoint, so they must not train concurrently either).  A claim left by ``owner``
    itself (an earlier attempt of a requeued job) is taken over."""
    key = config.training_canonical()
    owner = owner or f"rll.training.run pid {os.getpid()}: {config.label()}"
    if store.claim(key, owner=owner):
        return
    info = store.claim_info(key) or {}
    if info.get("owner") == owner:                # our own earlier attempt, killed and requeued
        if store.break_claim(key, force=True) and store.claim(key, owner=owner):
            return
    elif store.claim_is_stale(key, timeout=None):   # its process died on this host
        info = store.claim_info(key)
        if store.break_claim(key, timeout=None):
            warnings.warn(f"broke a stale claim on {config.label()} left by {info}", stacklevel=5)
        if store.claim(key, owner=owner):
            return
    raise RunClaimed(f"{config.label()} is being trained by another worker ({store.claim_info(key)}); "
                     f"claim file {store.claim_path(key)} — if that worker is gone, remove the file "
                     "or call ResultsStore.break_claim(config.training_canonical(), force=True)")
