"""rll.store: atomic JSON records keyed by the canonical configuration; claims."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import warnings
from pathlib import Path

import pytest

from rll.config import TrainConfig
from rll.store import (
    ResultsStore,
    ResultsWarning,
    config_hash,
    config_stem,
    cpu_description,
)

REPO = Path(__file__).resolve().parents[1]

CFG = {"dataset": "mnist", "model": "cnn2", "method": "trades", "params": {"beta": 6.0},
       "epochs": 10, "milestones": [3, 5, 8, 9], "seed": 0}
METRICS = {"train_acc": 99.5, "test_acc": 99.0, "adv_train_acc": 95.0, "adv_test_acc": 94.0,
           "test_lipschitz": 5.0, "gap": 0.5, "adv_gap": 1.0}
PROV = {"git_commit": None, "rll_version": "0.1.0", "torch_version": "x", "device": "cpu",
        "started_utc": "2020-01-01T00:00:00Z", "wall_seconds": 1.0, "epochs_done": 10}


def test_put_get_roundtrip(tmp_path):
    store = ResultsStore(tmp_path)
    path = store.put(CFG, METRICS, PROV)
    assert path.exists() and path.parent == tmp_path
    assert path.name.startswith("mnist-cnn2-trades-beta6-") and path.suffix == ".json"
    rec = store.get(CFG)
    assert rec["config"] == CFG and rec["metrics"] == METRICS and rec["provenance"] == PROV
    assert rec["schema"] == 1
    assert CFG in store
    assert store.get({**CFG, "seed": 1}) is None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp left behind
    # overwriting replaces the record
    store.put(CFG, {**METRICS, "test_acc": 1.0}, PROV)
    assert store.get(CFG)["metrics"]["test_acc"] == 1.0
    assert len(list(tmp_path.glob("*.json"))) == 1


def test_key_stable_and_order_independent():
    shuffled = dict(reversed(list(CFG.items())))
    shuffled["params"] = dict(reversed(list(CFG["params"].items())))
    assert config_hash(shuffled) == config_hash(CFG)
    assert config_stem(shuffled) == config_stem(CFG)
    # tuples and lists are the same JSON
    assert config_hash({**CFG, "milestones": (3, 5, 8, 9)}) == config_hash(CFG)
    # a fixed value, pinned: the key must not drift between versions (sha256 of the sorted JSON)
    assert config_hash({"a": 1, "b": [1, 2]}) == "8baa73198470"
    assert len(config_hash(CFG)) == 12
    assert config_hash({**CFG, "seed": 1}) != config_hash(CFG)


def test_object_with_canonical_is_accepted(tmp_path):
    class Cfg:
        def canonical(self):
            return CFG

    store = ResultsStore(tmp_path)
    store.put(Cfg(), METRICS, PROV)
    assert store.get(CFG)["metrics"] == METRICS


def test_nan_metrics_are_refused(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        ResultsStore(tmp_path).put(CFG, {"test_acc": float("nan")}, PROV)
    assert not list(tmp_path.glob("*"))


def test_torn_and_foreign_files_are_reported_and_skipped(tmp_path):
    store = ResultsStore(tmp_path)
    good = store.put(CFG, METRICS, PROV)
    text = good.read_text()
    (tmp_path / "torn-run.json").write_text(text[: len(text) // 2])
    (tmp_path / "foreign.json").write_text(json.dumps({"hello": "world"}))
    (tmp_path / "list.json").write_text("[1, 2, 3]")
    (tmp_path / "notes.txt").write_text("not a record")
    with pytest.warns(ResultsWarning) as caught:
        recs = store.records()
    messages = " ".join(str(w.message) for w in caught)
    assert "torn-run.json" in messages and "foreign.json" in messages and "list.json" in messages
    assert len(recs) == 1 and recs[0]["config"] == CFG
    # a torn record file under the configuration's own name: get() warns and returns None
    good.write_text(text[:10])
    with pytest.warns(ResultsWarning, match=good.name):
        assert store.get(CFG) is None


def test_to_frame_columns(tmp_path):
    store = ResultsStore(tmp_path)
    store.put(CFG, METRICS, PROV)
    store.put({**CFG, "method": "at", "params": {}}, METRICS, PROV)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = store.to_frame()
    assert len(df) == 2
    for col in ("dataset", "model", "method", "beta", "epochs", "seed", *METRICS,
                "provenance.device", "provenance.wall_seconds", "path"):
        assert col in df.columns, col
    assert sorted(df["method"]) == ["at", "trades"]
    assert df.loc[df.method == "trades", "beta"].item() == 6.0


def test_empty_or_missing_folder(tmp_path):
    store = ResultsStore(tmp_path / "nope")
    assert store.records() == [] and len(store.to_frame()) == 0 and store.get(CFG) is None


def _writer(root, worker, n):
    store = ResultsStore(root)
    for i in range(n):
        store.put({**CFG, "seed": worker * 1000 + i}, {**METRICS, "worker": worker}, PROV)


def test_concurrent_writers_lose_nothing(tmp_path):
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        recs = ResultsStore(tmp_path).records()
    assert len(recs) == 100
    assert {r["config"]["seed"] for r in recs} == {w * 1000 + i for w in range(4) for i in range(25)}


def _claimer(root, barrier, queue, round_):
    store = ResultsStore(root)
    barrier.wait()
    queue.put((round_, os.getpid(), store.claim({**CFG, "seed": round_})))


def test_claim_race_exactly_one_wins(tmp_path):
    ctx = mp.get_context("fork")
    rounds, workers = 10, 3
    queue = ctx.Queue()
    for r in range(rounds):
        barrier = ctx.Barrier(workers)
        procs = [ctx.Process(target=_claimer, args=(str(tmp_path), barrier, queue, r))
                 for _ in range(workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
    results = [queue.get(timeout=10) for _ in range(rounds * workers)]
    for r in range(rounds):
        wins = [ok for rr, _, ok in results if rr == r]
        assert len(wins) == workers and sum(wins) == 1


def test_claim_release_and_stale(tmp_path):
    store = ResultsStore(tmp_path)
    assert store.claim(CFG, owner="me")
    assert not store.claim(CFG)
    info = store.claim_info(CFG)
    assert info["owner"] == "me" and info["pid"] == os.getpid() and "host" in info and "time" in info
    assert not store.claim_is_stale(CFG)            # alive, fresh
    assert not store.break_claim(CFG)               # not stale: left alone
    assert store.claim_is_stale(CFG, timeout=-1)    # older than a (negative) timeout
    store.release(CFG)
    assert store.claim_info(CFG) is None and store.claim(CFG)
    store.release(CFG)

    # a claim whose process is dead on this host is stale and can be broken explicitly
    ctx = mp.get_context("fork")
    p = ctx.Process(target=ResultsStore(tmp_path).claim, args=(CFG,))
    p.start()
    p.join()
    assert store.claim_info(CFG)["pid"] == p.pid
    assert not store.claim(CFG)
    assert store.claim_is_stale(CFG)
    assert store.break_claim(CFG)
    assert store.claim(CFG)
    store.release(CFG)


def test_release_leaves_other_live_process_claim(tmp_path):
    store = ResultsStore(tmp_path)
    path = store.claim_path(CFG)
    path.parent.mkdir(parents=True, exist_ok=True)
    import socket
    import time
    path.write_text(json.dumps({"owner": "other", "pid": os.getppid(), "host": socket.gethostname(),
                                "time": time.time()}))
    store.release(CFG)
    assert store.claim_info(CFG)["owner"] == "other"
    assert store.break_claim(CFG, force=True) and store.claim_info(CFG) is None


def test_committed_records_hold_no_machine_paths():
    """A record means the same on every clone: no absolute path of the machine that wrote it
    (the checkpoint is stored relative to its checkpoint directory)."""
    import re

    root = Path(__file__).resolve().parents[1] / "results"
    files = sorted(root.rglob("*.json"))
    assert files, "no committed records"
    machine_path = re.compile(r'"(/work|/tmp|/home|/root|/Users|[A-Za-z]:\\\\)[^"]*"')
    offenders = [f.relative_to(root).as_posix() for f in files if machine_path.search(f.read_text())]
    assert not offenders, f"records with machine paths: {offenders}"


#: Stored runs and the file stems they were written under (results/runs/, committed before the
#: precision field existed): their keys must never change, so each is rebuilt here from
#: constructor arguments — not from the stored config — and its stem compared byte for byte.
PINNED_KEYS = [
    (dict(dataset="mnist", model="cnn2", method="natural", train_size=34000, epochs=3, milestones=(2,)),
     "mnist-cnn2-natural-2f019aaa9678"),
    (dict(dataset="mnist", model="cnn1", method="trades", params={"beta": 1}, train_size=34000, epochs=8,
          milestones=(6,)), "mnist-cnn1-trades-beta1-steps10-6ea04e9c9a56"),
    (dict(dataset="mnist", model="cnn1", method="gr", train_size=34000, epochs=3, milestones=(2,), attack="aa"),
     "mnist-cnn1-gr-beta1-directionl2-0487ff477c1b"),
]


@pytest.mark.parametrize("kwargs, stem", PINNED_KEYS, ids=[s for _, s in PINNED_KEYS])
def test_stored_configurations_keep_their_keys(kwargs, stem):
    config = TrainConfig(**kwargs)
    assert config_stem(config) == stem
    assert (REPO / "results" / "runs" / f"{stem}.json").exists()


def test_two_precisions_of_one_configuration_never_share_a_key():
    fp32 = TrainConfig(dataset="mnist", model="cnn2", method="at", train_size=1000, epochs=2)
    bf16 = fp32.replace(precision="bf16")
    assert fp32.key != bf16.key and config_stem(fp32) != config_stem(bf16)
    assert fp32.training_canonical() != bf16.training_canonical()       # nor a checkpoint
    assert "precision" not in fp32.canonical() and bf16.canonical()["precision"] == "bf16"
    assert TrainConfig.from_dict(bf16.canonical()) == bf16


@pytest.mark.parametrize("kind", ["runs", "budget", "precision"])
def test_every_committed_record_loads_under_its_key(kind):
    """Each record the older code wrote (the oracle: the files themselves) still means the same
    configuration — re-validated, its canonical form is the stored one — and is found under the
    key today's code computes for it."""
    from contextlib import ExitStack

    # the precision store's bf16 runs of refused losses were made with the refusal lifted
    sys.path.insert(0, str(REPO))
    from benchmarks import precision

    measured_refused = {(m, f) for m, f, _ in precision.MEASURED_REFUSED}
    store = ResultsStore(REPO / "results" / kind)
    records = store.records()
    assert records, f"no committed records in results/{kind}"
    for record in records:
        c = record["config"]
        with ExitStack() as lifted:
            if kind == "precision" and (c["method"], c["fidelity"]) in measured_refused:
                lifted.enter_context(precision._refusal_lifted(c["method"], c["fidelity"]))
            config = TrainConfig.from_dict(c)
        assert config.canonical() == record["config"]
        assert store.get(config) == {k: v for k, v in record.items() if k != "path"}


# Two /proc/cpuinfo excerpts (the two machines the sweeps ran on, flags abridged by hand).
_AMX_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx_vnni avx512_bf16 amx_bf16 avx512_fp16 amx_tile amx_int8

processor\t: 1
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx_vnni avx512_bf16 amx_bf16 avx512_fp16 amx_tile amx_int8
"""
_ZEN4_CPUINFO = """processor\t: 0
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_bf16 avx512_vnni
"""


@pytest.mark.parametrize("text, expected", [
    (_AMX_CPUINFO, "Intel(R) Xeon(R) Processor (amx_bf16 avx512_bf16 avx512f avx2)"),
    (_ZEN4_CPUINFO, "AMD EPYC 9R14 96-Core Processor (avx512_bf16 avx512f avx2)"),
    ("processor\t: 0\nmodel name\t: Old CPU\nflags\t\t: fpu sse2\n", "Old CPU (none of amx_bf16, avx512_bf16, avx512f, avx2)"),
])
def test_cpu_description_names_the_model_and_the_flags_that_decide_bf16_speed(tmp_path, text, expected):
    (tmp_path / "cpuinfo").write_text(text)
    assert cpu_description(tmp_path / "cpuinfo") == expected


def test_cpu_description_without_cpuinfo_falls_back_to_the_platform(tmp_path):
    assert cpu_description(tmp_path / "absent")       # a non-empty name, not an error
