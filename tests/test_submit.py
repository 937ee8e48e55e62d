"""rll.training.submit: sweeps through real submitit executors.

* The local executor (real subprocesses, submitit's own controller and requeue protocol) runs
  a sweep of two jobs into one store; one job gets the pre-emption signal mid-training and is
  requeued by submitit, the other is killed outright and finished by submitting the sweep
  again.  Both records equal uninterrupted runs'; nothing is duplicated or lost.
* The Slurm executor is exercised up to the submission: submitit writes the sbatch script
  and calls ``sbatch``, here a stand-in on PATH that records what it was given and answers
  as Slurm does (``Submitted batch job N``); the test reads the script and the job pickles.
"""
from __future__ import annotations

import json
import os
import signal
import stat
import time
from pathlib import Path

import pytest
import torch
from submitit.core.utils import DelayedSubmission

from rll import cli
from rll.config import TrainConfig
from rll.data import DataError
from rll.store import ResultsStore
from rll.training import submit as rsubmit
from rll.training.checkpoint import checkpoint_path, load_checkpoint
from rll.training.claim import RunClaimed
from rll.training.run import train

REPO = Path(__file__).resolve().parents[1]


def _exit_code(argv):
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """``sbatch`` and ``srun`` on PATH: sbatch copies the script it is given to ``calls/`` and
    prints Slurm's answer; srun only has to exist (submitit looks for it)."""
    bin_ = tmp_path / "bin"
    calls = tmp_path / "calls"
    bin_.mkdir()
    calls.mkdir()
    (bin_ / "sbatch").write_text(f'#!/bin/sh\nn=$(ls {calls} | wc -l)\ncp "$1" {calls}/$n.sh\n'
                                 f'echo "$@" > {calls}/$n.args\necho "Submitted batch job 4242"\n')
    (bin_ / "srun").write_text("#!/bin/sh\nexit 1\n")
    for f in bin_.iterdir():
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    return calls


# ---------------------------------------------------------------------- options, before anything runs

SWEEP = ["sweep", "table2", "--dataset", "mnist", "--models", "cnn1", "--methods", "natural", "--epochs", "1"]


@pytest.mark.parametrize("extra, fragments", [
    (["--executor", "pbs"], ["invalid choice", "slurm", "local"]),
    (["--partition", "gpu"], ["--partition", "--executor", "slurm | local"]),
    (["--executor", "local", "--partition", "gpu"], ["--partition", "slurm only"]),
    (["--executor", "local", "--max-parallel", "2"], ["--max-parallel", "slurm only"]),
    (["--executor", "local", "--device", "cuda:0"], ["--device", "--gpus-per-job"]),
    (["--executor", "local", "--gpus-per-job", "2", "--procs-per-job", "1"], ["--procs-per-job", "2"]),
    (["--executor", "local", "--gpus-per-job", "-1"], [">= 0"]),
    (["--executor", "local", "--gpus-per-job", str(torch.cuda.device_count() + 1)], ["GPU(s)"]),
    (["--executor", "local", "--timeout", "0"], ["--timeout", "positive"]),
    (["--executor", "slurm", "--slurm", "colour=blue"], ["colour", "Valid parameters", "partition"]),
    (["--executor", "slurm", "--slurm", "novalue"], ["KEY=VALUE"]),
    (["--executor", "local", "--stop-after", "5"], ["--stop-after", "--timeout"]),
])
def test_bad_scheduling_options_exit_2_before_anything_runs(extra, fragments, tmp_path, capsys, fake_slurm):
    code = _exit_code([*SWEEP, *extra, "--results-dir", str(tmp_path / "res"),
                       "--checkpoint-dir", str(tmp_path / "ck"), "--log-dir", str(tmp_path / "logs")])
    assert code == 2
    err = capsys.readouterr().err
    for fragment in fragments:
        assert fragment in err, err
    assert not (tmp_path / "res").exists() and not (tmp_path / "ck").exists()
    assert not list(fake_slurm.iterdir())                     # nothing submitted


def test_slurm_without_slurm_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))                  # no srun, no sbatch
    code = _exit_code([*SWEEP, "--executor", "slurm", "--log-dir", str(tmp_path / "logs"),
                       "--results-dir", str(tmp_path / "res")])
    assert code == 2 and "needs Slurm's sbatch and srun" in capsys.readouterr().err


# ---------------------------------------------------------------------- Slurm: the sbatch script

def test_slurm_sweep_writes_the_job_array_script(tmp_path, fake_slurm, capsys):
    """Table 3 on CIFAR-10 (the README's example), 2 seeds: one array, a job per row and seed."""
    logs = tmp_path / "logs" / "%j"
    code = cli.main(["sweep", "table3", "--dataset", "cifar10", "--seeds", "0", "1", "--channels-last",
                     "--attacks", "pgd", "mt", "--executor", "slurm",
                     "--partition", "gpu", "--gpus-per-job", "4", "--timeout", "720", "--max-parallel", "5",
                     "--slurm", "account=robust", "--slurm", "mem=64G",
                     "--log-dir", str(logs), "--results-dir", str(tmp_path / "res"),
                     "--checkpoint-dir", str(tmp_path / "ck")])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    from rll.experiments.tables import table_configs

    configs = table_configs("table3", dataset="cifar10", seeds=(0, 1))
    n = len(configs)
    assert n > 2 and out["submitted"] == n and out["jobs"] == [f"4242_{i}" for i in range(n)]
    assert sorted(p.name for p in fake_slurm.iterdir()) == ["0.args", "0.sh"]   # one sbatch call
    script = (fake_slurm / "0.sh").read_text()
    folder = tmp_path / "logs"
    for line in ["#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=4", "#SBATCH --ntasks-per-node=4",
                 "#SBATCH --nodes=1", "#SBATCH --time=720", "#SBATCH --signal=USR2@120",
                 f"#SBATCH --array=0-{n - 1}%5", "#SBATCH --job-name=rll-sweep", "#SBATCH --account=robust",
                 "#SBATCH --mem=64G", "#SBATCH --open-mode=append",
                 f"#SBATCH --output={folder}/%A_%a/%A_%a_0_log.out",
                 f"#SBATCH --error={folder}/%A_%a/%A_%a_0_log.err",
                 "export SUBMITIT_EXECUTOR=slurm"]:
        assert line in script.splitlines(), (line, script)
    assert (folder / "4242" / "4242_submission.sh").read_text() == script       # kept beside the logs
    command = script.strip().splitlines()[-1]
    assert command.startswith(f"srun --unbuffered --output {folder}/%A_%a/%A_%a_%t_log.out")
    assert command.endswith(f"-u -m submitit.core._submit {folder}/%j")
    # each array task's pickle is a TrainJob of its configuration, with absolute paths, on cuda
    for i, config in enumerate(configs):
        delayed = DelayedSubmission.load(folder / f"4242_{i}" / f"4242_{i}_submitted.pkl")
        job = delayed.function
        assert isinstance(job, rsubmit.TrainJob) and job.config == config.canonical()
        assert job.results_dir == str((tmp_path / "res").resolve()) and job.device == "cuda"
        assert job.checkpoint_dir == str((tmp_path / "ck").resolve())
        assert job.attacks == ("pgd", "mt") and job.speed["channels_last"] is True
        assert delayed._timeout_countdown == rsubmit.MAX_TIMEOUTS
    assert not (tmp_path / "res").exists()       # nothing trained or claimed by the submission


def test_slurm_submission_skips_stored_and_claimed_configurations(tmp_path, fake_slurm):
    configs = [TrainConfig.from_paper("mnist", "cnn1", "natural", epochs=1, seed=s) for s in range(3)]
    store = ResultsStore(tmp_path / "res")
    store.put(configs[0], {"test_acc": 1.0}, {})
    assert store.claim(configs[1].training_canonical(), owner="submitit job 77: another submission")
    executor = rsubmit.make_executor("slurm", tmp_path / "logs" / "%j", gpus_per_job=1)
    jobs, counts = rsubmit.submit_sweep(configs, executor, results_dir=tmp_path / "res",
                                        checkpoint_dir=tmp_path / "ck", log=lambda m: None)
    assert counts == {"submitted": 1, "stored": 1, "claimed_elsewhere": 1}
    assert [j.job_id for j in jobs] == ["4242"]                 # one job: not an array
    script = (fake_slurm / "0.sh").read_text()
    assert "--array" not in script and "#SBATCH --gpus-per-node=1" in script


def test_a_job_takes_over_its_own_claim_but_not_another(tmp_path):
    """A requeued job (same job id, perhaps on another node) finds the claim its killed
    attempt left and takes it over; a claim of another job stops it."""
    config = TrainConfig.from_paper("mnist", "cnn1", "natural", epochs=1)
    store = ResultsStore(tmp_path / "res")
    key = config.training_canonical()
    mine = f"submitit job 4242_3: {config.label()}"
    store.root.mkdir()

    def left_by(owner):
        store.claim_path(key).write_text(json.dumps({"owner": owner, "pid": 1, "host": "node-17",
                                                     "time": time.time()}))

    def run():
        train(config, results_dir=store.root, checkpoint_dir=tmp_path / "ck", progress=False,
              data_root=tmp_path / "no-data", claim_owner=mine)

    left_by(mine)
    with pytest.raises(DataError):           # taken over: it went on to load the data (none here)
        run()
    assert store.claim_info(key) is None     # and released it
    left_by("submitit job 4242_4: another")
    with pytest.raises(RunClaimed, match="another worker"):
        run()
    assert store.claim_info(key)["owner"] == "submitit job 4242_4: another"     # left alone


# ---------------------------------------------------------------------- local executor, real jobs

def _tiny(seed: int, **kw) -> TrainConfig:
    return TrainConfig.from_paper("mnist", "cnn1", "natural", train_size=384, test_size=32, epochs=4,
                                  batch_size=32, seed=seed, **kw)


def _task_pid(job, timeout: float = 120.0) -> int:
    """The pid of a local job's (single) task: the child of submitit's controller process."""
    controller = int(job.job_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = Path(f"/proc/{controller}/task/{controller}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise AssertionError(f"job {job.job_id} started no task")


@pytest.mark.slow
def test_local_sweep_survives_preemption_and_a_kill(tmp_path, data_root, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    configs = [_tiny(0), _tiny(1)]
    res, ck = tmp_path / "res", tmp_path / "ck"
    executor = rsubmit.make_executor("local", tmp_path / "logs" / "%j", timeout_min=30)
    jobs, counts = rsubmit.submit_sweep(configs, executor, results_dir=res, checkpoint_dir=ck,
                                        data_root=data_root, log=lambda m: None)
    assert counts == {"submitted": 2, "stored": 0, "claimed_elsewhere": 0}
    # once a job has checkpointed its first epoch (of 4): job 0 gets the pre-emption signal
    # (what Slurm sends before pre-empting or at the time limit), job 1 is killed outright
    pending = {0: signal.SIGUSR2, 1: signal.SIGKILL}
    deadline = time.monotonic() + 300
    while pending and time.monotonic() < deadline:
        for i in list(pending):
            if checkpoint_path(configs[i], ck).exists():
                os.kill(_task_pid(jobs[i]), pending.pop(i))
        time.sleep(0.02)
    assert not pending, "the jobs never checkpointed an epoch"
    counts = rsubmit.wait(jobs, log=lambda m: None)
    assert counts["trained"] == 1 and counts["failed"] == 1
    store = ResultsStore(res)
    assert store.get(configs[0]) is not None and store.get(configs[1]) is None
    log0 = (jobs[0].stdout() or "") + (jobs[0].stderr() or "")
    assert "Requeued job" in log0, log0[-2000:]                   # submitit requeued it
    # after the step it was in and a checkpoint (rll.training.stop), not in the middle of it
    assert "stopped by SIGUSR2" in log0 and "SIGUSR2 handed to its handler" in log0, log0[-2000:]
    # the killed job left its claim and checkpoint; the same sweep, submitted again, finishes it
    assert store.claim_info(configs[1].training_canonical()) is not None
    assert 1 <= load_checkpoint(checkpoint_path(configs[1], ck), configs[1])["epoch"] < 4
    jobs2, counts2 = rsubmit.submit_sweep(configs, executor, results_dir=res, checkpoint_dir=ck,
                                          data_root=data_root, log=lambda m: None)
    assert counts2 == {"submitted": 1, "stored": 1, "claimed_elsewhere": 0}
    assert rsubmit.wait(jobs2, log=lambda m: None)["trained"] == 1
    # both resumed mid-training, to the records and weights of uninterrupted runs
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # as the jobs ran (OMP_NUM_THREADS=1): the same reductions
    try:
        refs = [train(config, data_root=data_root, results_dir=tmp_path / "ref", checkpoint_dir=tmp_path / "ref-ck",
                      progress=False, device="cpu") for config in configs]
    finally:
        torch.set_num_threads(threads)
    for config, ref in zip(configs, refs):
        record = store.get(config)
        assert 1 <= record["provenance"]["resumed_from_epoch"] < 4
        if config is configs[0] and "stopped by SIGUSR2 in epoch" in log0:     # not at an epoch's end
            assert record["provenance"]["resumed_in_epoch"]["step"] >= 1
        assert record["metrics"] == ref["metrics"]
        assert [h["loss"] for h in record["provenance"]["history"]] == [h["loss"] for h in ref["provenance"]["history"]]
        a = load_checkpoint(checkpoint_path(config, ck), config)["model"]
        b = load_checkpoint(checkpoint_path(config, tmp_path / "ref-ck"), config)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a)
    # nothing duplicated, nothing lost, nothing half-written
    assert sorted(p.name for p in res.iterdir()) == sorted(store.path(c).name for c in configs)
    assert sorted(p.name for p in ck.iterdir()) == sorted(checkpoint_path(c, ck).name for c in configs)


@pytest.mark.slow
def test_local_job_with_two_processes_trains_data_parallel(tmp_path, data_root, monkeypatch, capsys):
    """``--procs-per-job 2``: submitit starts two tasks, they export torch's distributed
    environment and train the run with DDP over gloo; rank 0 writes the one record."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    code = cli.main(["sweep", "table2", "--dataset", "mnist", "--models", "cnn1", "--methods", "natural",
                     "--epochs", "1", "--train-size", "128", "--test-size", "32", "--executor", "local",
                     "--procs-per-job", "2", "--timeout", "30", "--data-root", str(data_root),
                     "--log-dir", str(tmp_path / "logs" / "%j"), "--results-dir", str(tmp_path / "res"),
                     "--checkpoint-dir", str(tmp_path / "ck")])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["submitted"] == 1 and out["trained"] == 1, out
    (record,) = ResultsStore(tmp_path / "res").records()
    assert record["provenance"]["world_size"] == 2 and record["provenance"]["distributed_backend"] == "gloo"
    assert record["provenance"]["n_train"] == 128
