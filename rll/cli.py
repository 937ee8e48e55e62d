"""Command line: ``python -m rll <command> ...``.

Each subcommand builds the same configuration objects the notebooks build, validates them
before any compute (invalid values exit with status 2 and list the valid choices), and with
``--json`` prints one machine-readable record on stdout.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import typing

from pydantic_core import PydanticUndefined

from rll.book.parameters import check_table_params
from rll.config import ATTACKS, TrainConfig
from rll.data import DATASETS, DataError, download
from rll.experiments.separation import dataset_separation, save_separation
from rll.experiments.sweep import run_sweep, sweep_status
from rll.experiments.tables import TABLE_BUDGETS, TABLE_EVAL_PLAN
from rll.losses import METHOD_PARAMS, PRECISIONS, fastest_precision
from rll.metrics import EvalPlan
from rll.store import results_folder
from rll.training import submit
from rll.training.checkpoint import (
    CheckpointMismatch,
    checkpoint_path,
    load_checkpoint,
    seconds_left,
)
from rll.training.claim import RunClaimed
from rll.training.export import export_robustbench
from rll.training.packing import pack_models, pack_unfinished
from rll.training.run import TrainingDiverged, evaluate, train
from rll.training.stop import TrainingStopped
from rll.training.submit import DEFAULT_LOG_DIR, DEFAULT_TIMEOUT_MIN, EXECUTORS
from rll.validation import field_choices, field_type


def _add_separation(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("separation", help="exact l∞ train–train / test–train separation (Table 1, Table 8)")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--data-root", default=None, help="dataset folder (default: $RLL_DATA, then ~/.cache/rll)")
    p.add_argument("--random-labels", action="store_true", help="Table 8: relabel train and test uniformly at random")
    p.add_argument("--seed", type=int, default=0, help="seed of the random labels")
    p.add_argument("--no-test", action="store_true", help="skip the test–train column")
    p.add_argument("--test-split", default="test", choices=("test", "test_partial"),
                   help="test, or test_partial: CIFAR-10's labelled copy of the first 1017 test images")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--save", default=None, metavar="DIR", help="also write the record as JSON into DIR")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.set_defaults(func=_run_separation)


def _run_separation(args: argparse.Namespace) -> int:
    record = dataset_separation(args.dataset, data_root=args.data_root, random_labels=args.random_labels,
                                seed=args.seed, include_test=not args.no_test, test_split=args.test_split,
                                device=args.device,
                                progress=not args.json)
    if args.save:
        path = save_separation(record, args.save)
        print(f"wrote {path}", file=sys.stderr)
    if args.json:
        print(json.dumps({k: v for k, v in record.items() if k != "distances"}, indent=2))
    else:
        print(f"{record['dataset']} (eps={record['eps']}): "
              f"train-train min {record['train_train_min']:.3f} mean {record['train_train_mean']:.3f}"
              + (f"; test-train min {record['test_train_min']:.3f} mean {record['test_train_mean']:.3f}"
                 if record.get("test_train_min") is not None else ""))
    return 0


def _add_download(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("download", help="fetch a dataset's official files and check their md5")
    p.add_argument("name", choices=("mnist", "cifar10", "svhn"))
    p.add_argument("--root", default=None, help="dataset folder (default: $RLL_DATA, then ~/.cache/rll)")
    p.set_defaults(func=_run_download)


def _run_download(args: argparse.Namespace) -> int:
    print(f"{args.name}: {download(args.name, args.root)}")
    return 0


# ---------------------------------------------------------------- data checksums

def _checksum_pair(text: str) -> tuple[str, str]:
    """One ``--checksum FILE=MD5`` as ``(file name, md5)``; a malformed one makes argparse
    exit with status 2 and this message."""
    name, eq, md5 = text.partition("=")
    if not (eq and name and re.fullmatch(r"[0-9a-fA-F]{32}", md5)):
        raise argparse.ArgumentTypeError(
            f"expected FILE=MD5 with an md5 of 32 hex digits, e.g. "
            f"train_32x32.mat=e26dedcc434d2e4c54c9b2d4a06d8373; got {text!r}")
    return name, md5


def _add_checksum_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checksum", action="append", type=_checksum_pair, default=None, metavar="FILE=MD5",
                   help="check FILE against MD5 instead of its official md5 (repeatable), for your own "
                        "copies; each overridden file is named in the record's provenance")


def _checksums(args: argparse.Namespace) -> dict[str, str] | None:
    """The --checksum flags as the ``checksums`` mapping (None: the official md5s)."""
    return dict(args.checksum) if args.checksum else None


# ---------------------------------------------------------------- train / evaluate

_METRIC_KEYS = ("train_acc", "test_acc", "adv_train_acc", "adv_test_acc", "test_lipschitz", "gap", "adv_gap")


def _param_flags() -> dict[str, type]:
    """Every method parameter (rll.losses.METHOD_PARAMS) as a flag name → type."""
    flags: dict[str, type] = {}
    for ps in METHOD_PARAMS.values():
        for name, default in ps.items():
            if isinstance(default, str):
                flags[name] = str
                continue
            is_int = isinstance(default, int) and not isinstance(default, bool)
            flags[name] = int if is_int and flags.get(name, int) is int else float
    return dict(sorted(flags.items()))


#: TrainConfig fields with flags of their own shape: ``params`` is one flag per method parameter
#: (:func:`_param_flags`), ``precision`` is ``--precision`` with ``auto`` and ``--amp``.
_NOT_GENERATED = ("params", "precision")


def _add_config_arguments(g) -> None:
    """One flag per :class:`TrainConfig` field, generated from its
    declaration: ``--batch-size`` for ``batch_size``, the field's type, its description and
    choices as the help.  Every flag defaults to None, meaning "not given": the configuration
    then takes its own default or the paper's schedule, and it alone validates the values, so
    a bad value gets the same message here as in a notebook."""
    for name, info in TrainConfig.model_fields.items():
        if name in _NOT_GENERATED:
            continue
        kind, _ = field_type(info.annotation)
        choices = field_choices(TrainConfig, name)
        shown = [info.description or ""]
        if info.default not in (None, PydanticUndefined, False, ()):
            shown.append(f"default {info.default}")
        help_text = "; ".join(t for t in shown if t).replace("%", "%%")
        flag = "--" + name.replace("_", "-")
        if kind is bool:
            g.add_argument(flag, action="store_true", default=None, help=help_text)
        elif typing.get_origin(kind) is tuple:
            g.add_argument(flag, type=int, nargs="*", default=None, metavar="EPOCH", help=help_text)
        else:
            g.add_argument(flag, type=kind if kind in (int, float) else str, default=None,
                           required=info.is_required(),
                           metavar="{" + ",".join(map(str, choices)) + "}" if choices else name.upper(),
                           help=help_text)


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The TrainConfig fields as flags (generated); schedule flags left out take the paper's schedule."""
    g = p.add_argument_group("run configuration (rll.config.TrainConfig; unset: the paper's schedule)")
    _add_config_arguments(g)
    for name, kind in _param_flags().items():
        owners = ", ".join(m for m, ps in METHOD_PARAMS.items() if name in ps)
        g.add_argument(f"--{name}", type=kind, default=None, help=f"method parameter ({owners})")
    _add_precision_arguments(g)
    o = p.add_argument_group("where and how")
    o.add_argument("--data-root", default=None, help="dataset folder (default: $RLL_DATA, then ~/.cache/rll)")
    _add_checksum_argument(o)
    o.add_argument("--results-dir", default=None,
                   help="results store (default: $RLL_RESULTS/runs, else the checkout's results/runs)")
    o.add_argument("--checkpoint-dir", default="checkpoints")
    o.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    _add_evaluation_arguments(o)
    o.add_argument("--json", action="store_true", help="print the record as JSON")


def _add_evaluation_arguments(g) -> None:
    g.add_argument("--attacks", nargs="+", choices=ATTACKS, default=None, metavar="ATTACK",
                   help=f"evaluate with each of these attacks and store one record per attack "
                        f"({', '.join(ATTACKS)}; default: --attack)")
    g.add_argument("--eval-plan", choices=("full", "table"), default="full",
                   help="which images each column is measured on: full (every column on the whole "
                        "splits) or table (the Section 5 tables' fixed subsets, rll.experiments.tables.TABLE_EVAL_PLAN)")
    g.add_argument("--eval-batch-size", type=int, default=None,
                   help="evaluation batch size (default: the plan's; full: 512)")


def _add_precision_arguments(g) -> None:
    g.add_argument("--precision", choices=PRECISIONS + ("auto",), default=None,
                   help="training arithmetic, part of the run's key: fp32 (default), bf16 (bfloat16 autocast; "
                        "refused where it was measured to break the loss: TRADES, paper LLR, GR at h = 0.01) or auto "
                        "(bf16 where allowed, else fp32)")
    g.add_argument("--amp", action="store_true", help="the same as --precision bf16")


def _precision(args: argparse.Namespace, params: dict | None = None) -> str:
    """--precision / --amp as a precision; ``auto`` resolved for the run's method, fidelity and
    ``params``, or returned as ``auto`` when there is no single method (a sweep)."""
    if args.amp and args.precision not in (None, "bf16"):
        raise ValueError(f"--amp means --precision bf16; it contradicts --precision {args.precision}")
    precision = "bf16" if args.amp else (args.precision or "fp32")
    method = getattr(args, "method", None)
    if precision == "auto" and method is not None:
        return fastest_precision(method, args.fidelity, params)
    return precision


def _add_speed_arguments(g) -> None:
    g.add_argument("--channels-last", action="store_true", help="channels-last memory format (speed option)")
    g.add_argument("--compile", action="store_true", help="torch.compile the model (speed option; not paper GR/LLR)")


def _speed(args: argparse.Namespace) -> dict:
    return {"channels_last": args.channels_last, "compile": args.compile}


def _eval_plan(args: argparse.Namespace):
    """The --eval-plan and --eval-batch-size flags as an rll.metrics.EvalPlan."""
    import dataclasses

    plan = TABLE_EVAL_PLAN if args.eval_plan == "table" else EvalPlan()
    return dataclasses.replace(plan, batch_size=args.eval_batch_size) if args.eval_batch_size else plan


def _config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The run's TrainConfig from the flags that were given (the rest take its defaults)."""
    params = {n: getattr(args, n) for n in _param_flags() if getattr(args, n) is not None}
    given = {name: getattr(args, name) for name in TrainConfig.model_fields
             if name not in _NOT_GENERATED and getattr(args, name, None) is not None}
    return TrainConfig(**given, params=params, precision=_precision(args, params))


def _print_record(record: dict, as_json: bool) -> None:
    if as_json:
        out = {**record["metrics"], "config": record["config"], "provenance": record["provenance"],
               "path": record.get("path")}
        print(json.dumps(out, indent=2))
        return
    m, c = record["metrics"], record["config"]
    print(f"{c['dataset']} {c['model']} {c['method']} ({c['fidelity']}, {c['attack']}): "
          + ", ".join(f"{k} {m[k]:.2f}" for k in _METRIC_KEYS if k in m))
    if record.get("path"):
        print(f"record: {record['path']}", file=sys.stderr)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one configuration of Tables 2–4 and store its record")
    _add_run_arguments(p)
    p.add_argument("--force", action="store_true", help="train again even if the record exists")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--curve-images", type=int, default=None, metavar="N",
                   help="learning curves: after every epoch, clean test accuracy, PGD-10 on N fixed "
                        "test images and both Lipschitz estimators on N/2 (kept in the record's history)")
    _add_speed_arguments(p)
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    config = _config_from_args(args)          # ValueError (exit 2) before any compute
    try:
        record = train(config, data_root=args.data_root, results_dir=args.results_dir,
                       checkpoint_dir=args.checkpoint_dir, device=args.device, progress=not args.json,
                       resume=not args.no_resume, force=args.force, attacks=args.attacks,
                       eval_plan=_eval_plan(args), curve_images=args.curve_images,
                       checksums=_checksums(args), **_speed(args))
    except (TrainingDiverged, RunClaimed) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if record is not None:          # under torchrun only rank 0 holds the record
        _print_record(record, args.json)
    return 0


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="re-evaluate a finished run's checkpoint (e.g. --attack mt)")
    _add_run_arguments(p)
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint file (default: the configuration's file in --checkpoint-dir)")
    p.add_argument("--channels-last", action="store_true",
                   help="evaluate in channels-last memory format (speed option)")
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    config = _config_from_args(args)
    try:
        record = evaluate(config, args.checkpoint, data_root=args.data_root, results_dir=args.results_dir,
                          checkpoint_dir=args.checkpoint_dir, device=args.device, progress=not args.json,
                          attacks=args.attacks, eval_plan=_eval_plan(args), checksums=_checksums(args),
                          channels_last=args.channels_last)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _print_record(record, args.json)
    return 0


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="train every configuration of a table that the store lacks "
                                     "(several workers may share one results dir)")
    p.add_argument("table", choices=("table2", "table3", "table4"))
    p.add_argument("--dataset", required=True)
    p.add_argument("--models", nargs="+", default=None, help="default: the table's models")
    p.add_argument("--methods", nargs="+", default=None,
                   help="method specs, e.g. natural at 'trades(beta=6)' (default: the paper's rows)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--epochs", type=int, default=None, help="default: the paper's")
    p.add_argument("--milestones", type=int, nargs="*", default=None, metavar="EPOCH",
                   help="learning-rate decays (default: the fidelity's rule for the epochs)")
    p.add_argument("--table-budget", action="store_true",
                   help="each model's table budget (rll.experiments.tables.TABLE_BUDGETS: training images, epochs, "
                        "milestones) instead of --train-size, --epochs, --milestones")
    p.add_argument("--lr", type=float, default=None, help="default: the paper's schedule")
    p.add_argument("--train-size", type=int, default=None)
    p.add_argument("--test-size", type=int, default=None)
    p.add_argument("--test-split", default="test")
    p.add_argument("--attack", default="pgd", help="the attack that names the configurations (default pgd)")
    _add_precision_arguments(p)
    _add_evaluation_arguments(p)
    p.add_argument("--curve-images", type=int, default=None, metavar="N",
                   help="learning curves in every record (see train --help)")
    _add_speed_arguments(p)
    p.add_argument("--stop-after", type=float, default=None, metavar="MINUTES",
                   help="start no new configuration after this many minutes (a time-boxed worker)")
    p.add_argument("--fidelity", default="paper")
    p.add_argument("--data-root", default=None)
    _add_checksum_argument(p)
    p.add_argument("--results-dir", default=None,
                   help="results store (default: $RLL_RESULTS/runs, else the checkout's results/runs)")
    p.add_argument("--checkpoint-dir", default="checkpoints")
    p.add_argument("--device", default=None)
    p.add_argument("--dry-run", action="store_true", help="list the configurations and exit")
    _add_executor_arguments(p)
    p.set_defaults(func=_run_sweep)


def _slurm_pair(text: str) -> tuple[str, object]:
    """One ``--slurm KEY=VALUE`` (a submitit.SlurmExecutor parameter); numbers become numbers."""
    key, eq, value = text.partition("=")
    if not (eq and key):
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, e.g. account=myproject or mem=64G; got {text!r}")
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


def _add_executor_arguments(p: argparse.ArgumentParser) -> None:
    """Job submission through submitit (rll.training.submit); without --executor the sweep runs here."""
    g = p.add_argument_group("jobs through submitit (rll.training.submit; default: train in this process)")
    g.add_argument("--executor", choices=EXECUTORS, default=None,
                   help="slurm: submit a job array; local: run the same jobs on this machine and wait")
    g.add_argument("--partition", default=None, help="Slurm partition")
    g.add_argument("--gpus-per-job", type=int, default=None, metavar="G",
                   help="GPUs per job, one process each, data-parallel (default: 1 on slurm, 0 local)")
    g.add_argument("--procs-per-job", type=int, default=None, metavar="N",
                   help="processes per job (default: G, or 1 without GPUs; N > 1 on CPUs: gloo)")
    g.add_argument("--timeout", type=float, default=None, metavar="MIN",
                   help=f"time limit of a job in minutes (default {DEFAULT_TIMEOUT_MIN}); a job that "
                        "reaches it is requeued and resumes from its checkpoint")
    g.add_argument("--max-parallel", type=int, default=None, metavar="N",
                   help="Slurm: at most N jobs of the array at once")
    g.add_argument("--slurm", action="append", type=_slurm_pair, default=None, metavar="KEY=VALUE",
                   help="further submitit.SlurmExecutor parameter (repeatable), e.g. account=X, qos=Y, "
                        "cpus_per_task=8, mem=64G")
    g.add_argument("--log-dir", default=None,
                   help="submitit's folder for job logs, pickles and sbatch scripts "
                        f"(default {DEFAULT_LOG_DIR.replace('%', '%%')}, %%j the job id)")


def _run_sweep(args: argparse.Namespace) -> int:
    args.results_dir = str(results_folder("runs", args.results_dir))

    budgets = None
    if args.table_budget:
        budgets = TABLE_BUDGETS.get(args.dataset)
        if budgets is None:
            raise ValueError(f"{args.dataset} has no table budget (rll.experiments.tables.TABLE_BUDGETS has "
                             f"{', '.join(TABLE_BUDGETS)}); give --epochs, --train-size, --milestones")
    configs = check_table_params(
        args.table, dataset=args.dataset, methods=args.methods, models=args.models, epochs=args.epochs,
        seeds=args.seeds, attack=args.attack, fidelity=args.fidelity, train_size=args.train_size,
        test_size=args.test_size, test_split=args.test_split, lr=args.lr,
        device=None if args.executor else args.device, data_root=args.data_root, checksums=_checksums(args),
        milestones=tuple(args.milestones) if args.milestones is not None else None, budgets=budgets,
        precision=_precision(args))
    if args.executor is not None or any(getattr(args, k) is not None for k in _EXECUTOR_OPTIONS):
        return _submit_sweep(args, configs)
    if args.dry_run:
        _print_sweep_status(configs, args)
        return 0
    counts = run_sweep(configs, results_dir=args.results_dir, checkpoint_dir=args.checkpoint_dir,
                                   data_root=args.data_root, device=args.device, checksums=_checksums(args),
                                   attacks=args.attacks, eval_plan=_eval_plan(args),
                                   curve_images=args.curve_images, stop_after=args.stop_after,
                                   log=lambda m: print(m, file=sys.stderr, flush=True), **_speed(args))
    print(json.dumps(counts))
    return 0


def _print_sweep_status(configs, args) -> None:
    """``--dry-run``: one line per configuration (seed, label, what the store holds), then the counts."""

    status = sweep_status(configs, results_dir=args.results_dir, attacks=args.attacks,
                                      checkpoint_dir=args.checkpoint_dir)
    for config, state in status:
        print(f"seed {config.seed}  {config.label():<40} {state}{_time_left(config, state, args)}")
    todo = sum(state != "stored" for _, state in status)
    print(f"{len(status) - todo} of {len(status)} stored; {todo} left for the sweep")


def _time_left(config, state: str, args) -> str:
    """For a run to resume or in training (claimed): how much training its checkpoint still needs
    at its last epochs' pace."""
    if not state.startswith(("to resume", "claimed by")):
        return ""
    try:
        left = seconds_left(load_checkpoint(checkpoint_path(config, args.checkpoint_dir), config), config.epochs)
    except CheckpointMismatch:
        return ""
    if left is None:
        return ""
    said = f"{left / 3600:.1f} h" if left >= 5400 else f"{left / 60:.0f} min"
    return f" (about {said} of training left at its last epochs' pace)"


_EXECUTOR_OPTIONS = ("partition", "gpus_per_job", "procs_per_job", "timeout", "max_parallel", "slurm", "log_dir")


def _submit_sweep(args: argparse.Namespace, configs: list) -> int:
    """``sweep --executor``: submit the configurations the store lacks as submitit jobs."""
    slurm = dict(args.slurm) if args.slurm else None
    if args.stop_after is not None:
        raise ValueError("--stop-after applies to a sweep in this process; jobs stop at --timeout "
                         "(and are requeued to resume)")
    submit.check_options(args.executor, partition=args.partition, gpus_per_job=args.gpus_per_job,
                         procs_per_job=args.procs_per_job, timeout_min=args.timeout,
                         max_parallel=args.max_parallel, slurm=slurm, device=args.device, log_dir=args.log_dir)
    if args.dry_run:
        _print_sweep_status(configs, args)
        return 0
    executor = submit.make_executor(args.executor, args.log_dir or submit.DEFAULT_LOG_DIR,
                                    partition=args.partition, gpus_per_job=args.gpus_per_job,
                                    procs_per_job=args.procs_per_job,
                                    timeout_min=args.timeout or submit.DEFAULT_TIMEOUT_MIN,
                                    max_parallel=args.max_parallel, slurm=slurm)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    jobs, counts = submit.submit_sweep(configs, executor, results_dir=args.results_dir,
                                       checkpoint_dir=args.checkpoint_dir, data_root=args.data_root,
                                       checksums=_checksums(args), attacks=args.attacks,
                                       eval_plan=_eval_plan(args), curve_images=args.curve_images,
                                       speed=_speed(args), log=log)
    if args.executor == "local" and jobs:
        counts = {**counts, **submit.wait(jobs, log=log)}
    print(json.dumps({**counts, "jobs": [j.job_id for j in jobs]}))
    return 0 if not counts.get("failed") else 1


def _add_pack(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pack", help="pack the trained models of a checkpoint folder into one file "
                                    "(weights and training configuration only), e.g. to carry them off a machine; "
                                    "--unfinished: the unfinished trainings as resumable checkpoints in a tar")
    p.add_argument("--checkpoint-dir", default="checkpoints")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--max-mib", type=float, default=None,
                   help="fail if the file would be larger (--unfinished: leave out what does not fit, "
                        "the least advanced first; required)")
    p.add_argument("--unfinished", action="store_true",
                   help="pack the checkpoints of unfinished trainings, whole, into a tar: unpack it into "
                        "a checkpoint directory and run the same command to resume them")
    p.set_defaults(func=_run_pack)


def _run_pack(args: argparse.Namespace) -> int:
    if args.unfinished:
        if args.max_mib is None:
            raise ValueError("pack --unfinished needs --max-mib (the most the tar may hold)")
        path, packed, left_out = pack_unfinished(args.checkpoint_dir, args.out, max_mib=args.max_mib)
        print(f"packed {len(packed)} unfinished trainings into {path} ({path.stat().st_size / 2**20:.1f} MiB)"
              + (f"; left out for the size: {', '.join(left_out)}" if left_out else ""), file=sys.stderr)
        return 0
    path, n = pack_models(args.checkpoint_dir, args.out, max_mib=args.max_mib)
    print(f"packed {n} finished models into {path} ({path.stat().st_size / 2**20:.1f} MiB)", file=sys.stderr)
    return 0


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write stored runs in another tool's format (RobustBench model info)")
    p.add_argument("--format", required=True, choices=("robustbench",))
    p.add_argument("--results-dir", default=None,
                   help="results store (default: $RLL_RESULTS/runs, else the checkout's results/runs)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (DIR/<dataset>/Linf/<name>.json)")
    p.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    args.results_dir = str(results_folder("runs", args.results_dir))

    paths = export_robustbench(args.results_dir, args.out)
    for path in paths:
        print(path)
    print(f"wrote {len(paths)} model-info files (models with a PGD-10 and an AutoAttack record)", file=sys.stderr)
    return 0


_REGISTRARS = [_add_separation, _add_download, _add_train, _add_evaluate, _add_sweep, _add_pack, _add_export]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rll", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _REGISTRARS:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except TrainingStopped as err:      # SIGINT/SIGTERM while training: checkpoint written
        print(f"stopped: {err}", file=sys.stderr)
        return 128 + err.signum


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
