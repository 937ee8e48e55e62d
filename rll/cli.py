"""Command line: ``python -m rll <command> ...``.

Each subcommand builds the same configuration objects the notebooks build, validates them
before any compute (invalid values exit with status 2 and list the valid choices), and with
``--json`` prints one machine-readable record on stdout.
"""
from __future__ import annotations

import argparse
import json
import sys


def _add_separation(sub: argparse._SubParsersAction) -> None:
    from rll.data import DATASETS

    p = sub.add_parser("separation", help="exact l∞ train–train / test–train separation (Table 1, Table 8)")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--data-root", default=None, help="dataset folder (default: $RLL_DATA, then ~/.cache/rll)")
    p.add_argument("--random-labels", action="store_true", help="Table 8: relabel train and test uniformly at random")
    p.add_argument("--seed", type=int, default=0, help="seed of the random labels")
    p.add_argument("--no-test", action="store_true", help="skip the test–train column")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--save", default=None, metavar="DIR", help="also write the record as JSON into DIR")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.set_defaults(func=_run_separation)


def _run_separation(args: argparse.Namespace) -> int:
    from rll.experiments import dataset_separation, save_separation

    record = dataset_separation(args.dataset, data_root=args.data_root, random_labels=args.random_labels,
                                seed=args.seed, include_test=not args.no_test, device=args.device,
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
    from rll.data import download

    print(f"{args.name}: {download(args.name, args.root)}")
    return 0


# Training subcommands (train, evaluate) register themselves here.
_REGISTRARS = [_add_separation, _add_download]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rll", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _REGISTRARS:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from rll.data import DataError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
