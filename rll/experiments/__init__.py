"""The paper's experiments as configurations: which runs make which table, and the
paper's own reference numbers (kept in ``rll/paper_reference.json``, transcribed from the
paper and labelled as such — never our results)."""
from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from rll import __version__
from rll import data as rdata
from rll.store import device_name, git_commit

REPO = Path(__file__).resolve().parents[2]
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
REFERENCE_FILE = Path(__file__).resolve().parents[1] / "paper_reference.json"


@lru_cache(maxsize=1)
def paper_reference() -> dict:
    """The paper's published numbers (Tables 1–14), as transcribed into
    ``rll/paper_reference.json``.  Reference data, not results of this code."""
    with open(REFERENCE_FILE) as fh:
        return json.load(fh)


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


def dataset_separation(dataset: str, *, data_root: str | None = None, random_labels: bool = False,
                       seed: int = 0, include_test: bool = True, test_split: str = "test",
                       device: str | None = None, progress: bool = True, checksums=None) -> dict:
    """Table 1 / Table 8 for one dataset: exact l∞ distance from every training (and test)
    point to the nearest training point of another class.

    Returns a record with ``train_train_min``/``_mean`` and ``test_train_min``/``_mean``
    (the train–train minimum after dropping the noisy points the released notebook dropped:
    the dataset's ``min_rank``, see :func:`rll.metrics.separation.separation_stats`), the
    per-point distances and nearest indices, and provenance.  ``random_labels`` relabels train
    and test uniformly at random (seeded), the paper's Table 8 control.  ``test_split`` may name
    a labelled partial test set (``test_partial`` for CIFAR-10); the record's ``test_note`` then
    says what it covers.  ``checksums`` overrides official md5s (:func:`rll.data.load_dataset`).  A missing split raises :class:`rll.data.DataError`, never a substitute.
    """
    from rll.metrics import separation

    if dataset not in rdata.DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid choices: {', '.join(rdata.DATASETS)}")
    info = rdata.DATASET_INFO[dataset]
    started = time.perf_counter()
    train = rdata.load_dataset(dataset, "train", root=data_root, checksums=checksums)
    test = rdata.load_dataset(dataset, test_split, root=data_root, checksums=checksums) if include_test else None
    train_y, test_y = train.labels, test.labels if test is not None else None
    if random_labels:
        train_y = torch.as_tensor(separation.random_labels(train_y, info["num_classes"], seed))
        if test is not None:
            test_y = torch.as_tensor(separation.random_labels(test_y, info["num_classes"], seed + 1))
    record: dict = {"dataset": dataset, "eps": info["eps"], "random_labels": random_labels,
                    "seed": seed if random_labels else None, "min_rank": info["min_rank"],
                    "n_train": len(train_y), "n_test": None if test is None else len(test_y),
                    "test_split": test_split if test is not None else None,
                    "test_note": test.note if test is not None else ""}
    columns = [("train_train", train.images, train_y)]
    if test is not None:
        columns.append(("test_train", test.images, test_y))
    distances = {}
    for column, queries, labels in columns:
        dist, index = separation.nearest_other_class(queries, labels, train.images, train_y,
                                                     device=device, progress=progress)
        stats = separation.separation_stats(dist, min_rank=info["min_rank"] if column == "train_train" else 1)
        record[f"{column}_min"] = float(stats["min"])
        record[f"{column}_mean"] = float(stats["mean"])
        distances[column] = {"distance": dist, "index": index}
    if test is None:
        record["test_train_min"] = record["test_train_mean"] = None
    record["provenance"] = {**provenance(device), "wall_seconds": round(time.perf_counter() - started, 2)}
    record["distances"] = distances
    return record


def save_separation(record: dict, directory: str | os.PathLike) -> Path:
    """Write a separation record (without per-point arrays) as JSON, atomically, under
    ``directory/separation-<dataset>[-random<seed>].json``.  Returns the path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = (f"separation-{record['dataset']}" + (f"-random{record['seed']}" if record["random_labels"] else "")
            + ("-test_partial" if record.get("test_split") == "test_partial" else ""))
    path = directory / f"{name}.json"
    payload = {k: v for k, v in record.items() if k != "distances"}
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def load_separation_records(directory: str | os.PathLike) -> list[dict]:
    """All stored separation records in ``directory`` (sorted by dataset)."""
    out = []
    for path in sorted(Path(directory).glob("separation-*.json")):
        with open(path) as fh:
            out.append(json.load(fh))
    return out


def check_separation_params(*, dataset: str, data_root: str | None, random_labels: bool, seed: int,
                            device: str | None, test_split: str = "test") -> None:
    """Validate the separation notebook's parameters; one readable ``ValueError`` otherwise."""
    if dataset not in rdata.DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid choices: {', '.join(rdata.DATASETS)}")
    if test_split not in ("test", "test_partial", "none"):
        raise ValueError(f"unknown test_split {test_split!r}; valid choices: test, test_partial, none")
    if not isinstance(random_labels, bool):
        raise ValueError(f"random_labels must be True or False, got {random_labels!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    check_device(device)
    check_data_root(data_root)


def check_device(device: str | None) -> None:
    """``None`` (cuda if available, else cpu), ``cpu``, ``cuda`` or ``cuda:N`` that exists."""
    if device is None:
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; valid choices: None, 'cpu', 'cuda', 'cuda:N'") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; valid choices: None, 'cpu', 'cuda', 'cuda:N'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but no CUDA device is available; use 'cpu'")


def check_data_root(data_root: str | None) -> None:
    """A given data root must be an existing folder (``None`` means ``$RLL_DATA``/default)."""
    if data_root is not None and not Path(data_root).expanduser().is_dir():
        raise ValueError(f"data_root {str(data_root)!r} does not exist or is not a folder; "
                         "pass the folder holding MNIST/, cifar-10-batches-bin/, ... or set RLL_DATA")


def separation_table(records: list[dict]):
    """Table 1 (and Table 8's columns) beside the paper's numbers: one row per record with
    ours, the paper's and the difference.  Returns a pandas DataFrame."""
    import pandas as pd

    ref = paper_reference()
    rows = []
    for rec in records:
        ds = rec["dataset"]
        table8 = ref.get("table8", {}).get(ds, {}).get("random" if rec["random_labels"] else "original", {})
        row = {"dataset": ds, "labels": "random" if rec["random_labels"] else "original", "eps": rec["eps"],
               "2·eps": 2 * rec["eps"]}
        for col in ("train_train", "test_train"):
            for stat in ("min", "mean"):
                ours = rec.get(f"{col}_{stat}")
                paper = table8.get(f"{col}_{stat}")
                if paper is None and not rec["random_labels"] and stat == "min":
                    paper = ref.get("table1", {}).get(ds, {}).get(f"{col}_min")
                row[f"{col} {stat}"] = ours
                row[f"{col} {stat} (paper)"] = paper
        row["test set"] = rec.get("test_note") or rec.get("test_split") or "—"
        rows.append(row)
    return pd.DataFrame(rows)


def closest_pairs(record: dict, *, column: str = "train_train", k: int = 4, data_root: str | None = None,
                  test_split: str | None = None) -> list[dict]:
    """The ``k`` closest cross-label pairs of a separation record (the paper's Figs 6/7):
    each a dict with the two uint8 images, their labels, indices and l∞ distance."""
    ds = rdata.load_dataset(record["dataset"], "train", root=data_root)
    if column == "train_train":
        queries = ds
    else:
        queries = rdata.load_dataset(record["dataset"], test_split or record["test_split"], root=data_root)
    dist = np.asarray(record["distances"][column]["distance"])
    index = np.asarray(record["distances"][column]["index"])
    order = np.argsort(dist, kind="stable")
    pairs, seen = [], set()
    for q in order:
        key = tuple(sorted((int(q), int(index[q])))) if column == "train_train" else (int(q),)
        if key in seen:
            continue
        seen.add(key)
        j = int(index[q])
        pairs.append({"query_index": int(q), "neighbour_index": j, "distance": float(dist[q]),
                      "query_image": queries.images[q], "neighbour_image": ds.images[j],
                      "query_label": ds.classes[int(queries.labels[q])],
                      "neighbour_label": ds.classes[int(ds.labels[j])]})
        if len(pairs) == k:
            break
    return pairs


def environment_table():
    """Package versions and the device of this build, as a one-column DataFrame (the book's
    status page)."""
    import platform
    from importlib import metadata

    import pandas as pd

    rows = {"python": platform.python_version(), "platform": platform.platform(),
            "device": f"{device_name('cuda' if torch.cuda.is_available() else 'cpu')} ({os.cpu_count()} cores)",
            "git commit": "{} ({})".format(git_commit()[0], "with uncommitted changes" if git_commit()[1]
                                            else "no uncommitted changes")}
    for pkg in ("rll", "torch", "numpy", "pandas", "matplotlib", "seaborn", "jupyter-book", "myst-nb",
                "sphinxcontrib-bibtex", "sphinx-proof", "papermill", "jupytext", "ipywidgets"):
        try:
            rows[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            rows[pkg] = "not installed"
    return pd.DataFrame({"value": rows})


def store_summary(records: list[dict]):
    """What the results store holds: one row per budget and kind of run (dataset, model,
    attack, fidelity, with or without the test set, epochs, examples, device, commit), with the
    number of runs, their seeds and when they were run.  Returns a pandas DataFrame."""
    import pandas as pd

    groups: dict = {}
    for r in records:
        c, p = r["config"], r["provenance"]
        kind = ("proof of concept" if is_proof_of_concept_run(c) else "Section 5 table" if is_table_run(c)
                else "other")
        key = (c["dataset"], c["model"], kind + (" (with the test set)" if c.get("train_with_test") else ""),
               c["attack"], c["fidelity"], c["epochs"], p.get("n_train"), p.get("n_test"), p.get("device", "?"),
               p.get("fidelity_revision", 1), str(p.get("git_commit") or "?")[:10])
        g = groups.setdefault(key, {"runs": 0, "seeds": set(), "dates": set()})
        g["runs"] += 1
        g["seeds"].add(c["seed"])
        g["dates"].add(str(p.get("started_utc", "?"))[:10])
    columns = ("dataset", "model", "kind", "attack", "fidelity", "epochs", "training examples", "test examples",
               "device", "version of the methods", "commit")
    rows = [{**dict(zip(columns, key)), "runs": g["runs"], "seeds": ", ".join(map(str, sorted(g["seeds"]))),
             "run on": ", ".join(sorted(g["dates"]))} for key, g in sorted(groups.items(), key=lambda kv: str(kv[0]))]
    return pd.DataFrame(rows, columns=[*columns, "runs", "seeds", "run on"])


def store_overview(records: list[dict]):
    """What the results store holds, counted: one row per kind of run, dataset, network,
    fidelity and budget (training images × epochs, decays), with the trained models (records
    sharing a training count once), their seeds, the attacks they were evaluated with and the
    records.  The detail by device and commit is :func:`store_summary`."""
    import pandas as pd

    groups: dict = {}
    for r in records:
        c, p = r["config"], r["provenance"]
        kind = ("proof of concept" if is_proof_of_concept_run(c) else "Section 5 table" if is_table_run(c)
                else "other")
        images = p.get("n_trained_on") or p.get("n_train")
        budget = (f"{images:,} × {c['epochs']}".replace(",", " ") if images else f"? × {c['epochs']}") + (
            f", decays after {', '.join(map(str, c['milestones']))}" if c.get("milestones") else ", no decay")
        key = (kind, c["dataset"], c["model"], c["fidelity"], budget)
        g = groups.setdefault(key, {"models": set(), "seeds": set(), "attacks": set(), "records": 0})
        g["models"].add(json.dumps({**c, "attack": None}, sort_keys=True))
        g["seeds"].add(c["seed"])
        g["attacks"].add(c["attack"])
        g["records"] += 1
    rows = [{"kind": k[0], "network": f"{k[1].upper()} {k[2].upper()}", "fidelity": k[3],
             "training images × epochs": k[4], "models": len(g["models"]),
             "seeds": ", ".join(map(str, sorted(g["seeds"]))),
             "attacks": ", ".join(a for a in ATTACK_ORDER if a in g["attacks"]), "records": g["records"]}
            for k, g in sorted(groups.items(), key=lambda kv: str(kv[0]))]
    return pd.DataFrame(rows, columns=["kind", "network", "fidelity", "training images × epochs", "models", "seeds",
                                       "attacks", "records"])


#: The attacks in the order the book lists them.
ATTACK_ORDER = ("pgd", "mt", "aa-apgd", "aa")

#: The attacks every seed-0 table model is evaluated with; other seeds get PGD-10.
FULL_EVALUATION = ("pgd", "mt", "aa-apgd", "aa")


def table_progress(records: list[dict], *, table: str = "table2", dataset: str = "mnist", seeds=(0, 1, 2),
                   full_evaluation_seeds=(0,)):
    """How far the table's sweep at :data:`TABLE_BUDGETS` (each model's) has come: one row per (model,
    method), one column per seed, each cell ``done``, ``missing <attacks>`` or ``not run``
    (seeds in ``full_evaluation_seeds`` need every attack of :data:`FULL_EVALUATION`, the others
    PGD-10); a cell the plan does not ask for (:func:`in_table_plan`) and nothing stored is
    :data:`BEYOND_PLAN`."""
    import pandas as pd

    have = {json.dumps({**r["config"], "attack": None}, sort_keys=True): set() for r in records}
    for r in records:
        have[json.dumps({**r["config"], "attack": None}, sort_keys=True)].add(r["config"]["attack"])
    rows: dict = {}
    for config in table_configs(table, dataset=dataset, seeds=tuple(seeds), budgets=TABLE_BUDGETS.get(dataset)):
        want = FULL_EVALUATION if config.seed in full_evaluation_seeds else ("pgd",)
        stored = have.get(json.dumps({**config.canonical(), "attack": None}, sort_keys=True), set())
        missing = [a for a in want if a not in stored]
        cell = ("done" if not missing else "missing " + ", ".join(missing) if stored
                else "not run" if in_table_plan(config) else BEYOND_PLAN)
        row = rows.setdefault(_row_key(config), {"model": config.model, "method": method_label(
            config.method, _params_of(config))})
        row[f"seed {config.seed}"] = cell
    return pd.DataFrame(list(rows.values()))


# --------------------------------------------------------------------------- Section 5 tables

#: The paper's ten method rows (Tables 2, 3, 9–13) and the dropout study's five (Tables 4, 14),
#: as method specs ``name`` or ``name(param=value)``.
PAPER_METHODS = ("natural", "gr", "llr", "at", "rst(lam=0.5)", "rst(lam=1)", "rst(lam=2)",
                 "trades(beta=1)", "trades(beta=3)", "trades(beta=6)")
DROPOUT_METHODS = ("natural", "at", "rst(lam=2)", "trades(beta=3)", "trades(beta=6)")

#: Which models each table notebook trains per dataset, and the dropout rates of Table 4.
TABLE_MODELS = {
    "table2": {"mnist": ("cnn1", "cnn2")},
    "table3": {"cifar10": ("wrn-40-10",), "resimagenet": ("resnet50",), "svhn": ("wrn-40-10",)},
    "table4": {"svhn": ("wrn-40-10",), "cifar10": ("wrn-40-10",)},
}
DROPOUT_RATE = {"svhn": 0.5, "cifar10": 0.2}
#: Paper tables holding each attack's numbers (looked up in this order).
PAPER_TABLES = {"pgd": ("table2", "table3", "table4"),
                "mt": ("table9", "table10", "table11", "table12", "table13", "table14")}
METRIC_COLUMNS = ("train_acc", "test_acc", "adv_test_acc", "test_lipschitz_released", "test_lipschitz", "gap",
                  "adv_gap")
#: The paper's column each of ours is compared with, like with like.  The paper's Lipschitz
#: numbers were produced by the released estimator (descent, step 0.003, final iterate), so they
#: sit beside our ``test_lipschitz_released`` and Δ is computed there; our Eq. 3 estimate
#: (``test_lipschitz``, the paper's definition) has its own column and no paper counterpart.
PAPER_COUNTERPART: dict[str, str | None] = {"test_lipschitz_released": "test_lipschitz", "test_lipschitz": None}
def paper_value(paper: dict, metric: str) -> float:
    """The paper's number comparable with our ``metric`` (:data:`PAPER_COUNTERPART`); NaN if none."""
    source = PAPER_COUNTERPART.get(metric, metric)
    return np.nan if source is None else paper.get(source, np.nan)


#: Configuration fields that only set a run's budget; the rest say *what* is run.
BUDGET_FIELDS = ("epochs", "milestones", "lr", "train_size", "test_size")


def _table_eval_plan():
    from rll.metrics import EvalPlan

    return EvalPlan(train_images=10000, pgd_test_images=None, lipschitz_images=2000, mt_test_images=1000,
                    mt_train_images=500, aa_images=500, aa_standard_images=200, batch_size=64)


#: How the Section 5 table runs are evaluated (:class:`rll.metrics.EvalPlan`): clean and PGD-10
#: accuracy on the whole test split; the train-side columns on 10 000 fixed training images (the
#: regime check's minimum; records stored before the 60 000-image runs used 2 000); both
#: Lipschitz estimators on 2000 fixed test images; the multi-targeted attack on 1000 test and 500
#: training images; AutoAttack's APGD-CE + APGD-DLR on 500 and its standard version on 200 test
#: images (nested subsets of one fixed permutation); batch 64, the fastest on the 2-core CPU.
TABLE_EVAL_PLAN = _table_eval_plan()

#: The budget of the converged CPU runs of each dataset's table, per model (rll's choice,
#: measured on the budget page, ``notebooks/budget``): ``{dataset: {model: keyword arguments of
#: check_table_params}}``.  CNN2's is the budget rule's cheapest qualifying budget.  CNN1 does
#: not reach the rule's bars there (natural CNN1 stays below 98.5 % clean, though its last epoch
#: is flat), so it gets a longer one: the same training images, more epochs at the full rate —
#: the one longer budget measured for it, where natural and AT CNN1 both meet the bars (the
#: budget page's CNN1 section; a cheaper one that also does is not ruled out).
TABLE_BUDGETS = {"mnist": {"cnn2": {"train_size": 34000, "epochs": 3, "milestones": (2,)},
                           "cnn1": {"train_size": 34000, "epochs": 8, "milestones": (6,)}}}


#: The seeds the table plan asks of each model (the converged-runs issue: CNN2 seeds 0–2, CNN1
#: seed 0, more as the plan allows).  Other seeds are run only on request.
TABLE_PLAN_SEEDS = {"mnist": {"cnn2": (0, 1, 2), "cnn1": (0,)}}
BEYOND_PLAN = "not planned"


def in_table_plan(config) -> bool:
    """Whether the table plan (:data:`TABLE_PLAN_SEEDS`) asks for ``config``'s seed of its model
    (models without an entry: every seed)."""
    seeds = TABLE_PLAN_SEEDS.get(config.dataset, {}).get(config.model)
    return seeds is None or config.seed in seeds


def model_budget(dataset: str, model: str) -> dict | None:
    """The table budget of ``model`` on ``dataset`` (:data:`TABLE_BUDGETS`), or None if it has none."""
    return TABLE_BUDGETS.get(dataset, {}).get(model)


def at_budget(config: dict, budget: dict | None) -> bool:
    """Whether a record's configuration (its canonical dict) was run at ``budget`` (None: any)."""
    return budget is None or all((list(v) if isinstance(v, tuple) else v) == config.get(k)
                                 for k, v in budget.items())

_GREEK = {"lam": "λ", "beta": "β"}


def parse_method(spec: str) -> tuple[str, dict]:
    """``"trades(beta=6)"`` → ``("trades", {"beta": 6.0})``; ``"at"`` → ``("at", {})``."""
    from rll.losses import METHOD_PARAMS

    text = str(spec).strip().replace(" ", "")
    name, _, rest = text.partition("(")
    if name not in METHOD_PARAMS:
        raise ValueError(f"unknown method {spec!r}; valid choices: {', '.join(METHOD_PARAMS)} "
                         "(parameters as e.g. 'trades(beta=6)', 'rst(lam=0.5)')")
    params: dict = {}
    if rest:
        if not rest.endswith(")"):
            raise ValueError(f"malformed method {spec!r}: expected name(param=value, ...)")
        for item in filter(None, rest[:-1].split(",")):
            key, eq, value = item.partition("=")
            if not eq or key not in METHOD_PARAMS[name]:
                valid = ", ".join(METHOD_PARAMS[name]) or "none"
                raise ValueError(f"method {name!r} takes no parameter {key!r}; valid parameters: {valid}")
            if isinstance(METHOD_PARAMS[name][key], str):
                params[key] = value          # a choice (rll.losses.PARAM_CHOICES), checked by TrainConfig
                continue
            try:
                params[key] = float(value)
            except ValueError:
                raise ValueError(f"parameter {key} of {spec!r} must be a number, got {value!r}") from None
    return name, params


def method_label(method: str, params: dict) -> str:
    """The paper's row label: ``TRADES(β=6)``, ``RST(λ=.5)``, ``Natural``."""
    name = {"natural": "Natural"}.get(method, method.upper())
    if not params:
        return name
    inner = ",".join(f"{_GREEK.get(k, k)}={_short(v)}" for k, v in sorted(params.items()))
    return f"{name}({inner})"


def _short(v: float) -> str:
    s = f"{float(v):g}"
    return s[1:] if s.startswith("0.") else s


#: The parameter each table row is labelled by (the paper's grid); others keep their defaults.
ROW_PARAMS = {"rst": ("lam",), "trades": ("beta",)}


def row_params(method: str, params) -> dict:
    """The parameters that name a table row: λ for RST, β for TRADES, nothing else."""
    return {k: float(v) for k, v in dict(params).items() if k in ROW_PARAMS.get(method, ())}


def _params_of(config) -> dict:
    if isinstance(config, dict):
        return row_params(config["method"], config["params"])
    return row_params(config.method, config.params)


def paper_row(dataset: str, model: str, method: str, params: dict, dropout: float, attack: str) -> dict | None:
    """The paper's published row for one configuration (``None`` if the paper has none);
    the row carries ``table`` naming where it was printed."""
    ref = paper_reference()
    want = row_params(method, params)
    for table in PAPER_TABLES[attack]:
        for row in ref[table]["rows"]:
            if (row["dataset"], row["model"], row["method"]) != (dataset, model, method):
                continue
            if {k: float(v) for k, v in row["params"].items()} != want:
                continue
            if abs(float(row["dropout"]) - float(dropout)) > 1e-9:
                continue
            return {**row, "table": table}
    return None


def table_configs(table: str, *, dataset: str, methods=None, models=None, dropouts=None, epochs=None,
                  seeds=(0,), attack: str = "pgd", fidelity: str = "paper", train_size=None,
                  test_size=None, test_split: str = "test", eps=None, lr=None, milestones=None,
                  budgets=None, precision: str = "fp32") -> list:
    """The training configurations behind one table notebook: models × methods × dropout ×
    seeds.  ``methods`` defaults to the paper's rows; ``dropouts`` to ``(0,)`` except Table 4
    (no dropout and the paper's rate).  ``budgets`` (``{model: {"train_size", "epochs",
    "milestones"}}``, e.g. ``TABLE_BUDGETS[dataset]``) gives a model its own budget in place of
    ``train_size``, ``epochs`` and ``milestones``.  ``precision``: ``fp32``, ``bf16`` (an error
    for a row that refuses it) or ``auto`` (each row bf16 where
    :func:`rll.losses.fastest_precision` allows it, else fp32)."""
    from rll.config import TrainConfig
    from rll.losses import fastest_precision

    if table not in TABLE_MODELS:
        raise ValueError(f"unknown table {table!r}; valid choices: {', '.join(TABLE_MODELS)}")
    if dataset not in TABLE_MODELS[table]:
        raise ValueError(f"{table} covers datasets {', '.join(TABLE_MODELS[table])}; got {dataset!r}")
    methods = methods or (DROPOUT_METHODS if table == "table4" else PAPER_METHODS)
    models = models or TABLE_MODELS[table][dataset]
    if dropouts is None:
        dropouts = (0.0, DROPOUT_RATE[dataset]) if table == "table4" else (0.0,)
    if not seeds:
        raise ValueError("seeds must list at least one seed, e.g. [0] or [0, 1, 2]")
    configs = []
    for model in models:
        budget = {"train_size": train_size, "epochs": epochs, "milestones": milestones,
                  **(budgets or {}).get(model, {})}
        for spec in methods:
            method, params = parse_method(spec)
            row_precision = fastest_precision(method, fidelity, params) if precision == "auto" else precision
            for dropout in dropouts:
                for seed in seeds:
                    configs.append(TrainConfig(dataset=dataset, model=model, method=method, params=params,
                                               dropout=dropout, seed=int(seed), attack=attack,
                                               fidelity=fidelity, test_size=test_size,
                                               test_split=test_split, eps=eps, lr=lr,
                                               precision=row_precision, **budget))
    return configs


#: Configuration fields that say how a run was computed, not what: a bf16 run of a table row is
#: still that row (its record key differs; the equivalence table shows what bf16 changes).
HOW_FIELDS = ("precision",)


def _what(canonical: dict) -> dict:
    return {k: v for k, v in canonical.items() if k not in BUDGET_FIELDS + HOW_FIELDS}


def find_record(records: list[dict], config, *, exact_budget: bool) -> dict | None:
    """The stored record of ``config``.  With ``exact_budget=False`` any budget (epochs,
    subset sizes) matches and the largest stored one (epochs × training examples) wins."""
    want = config.canonical()
    if exact_budget:
        return next((r for r in records if r["config"] == want), None)
    what = _what(want)
    hits = [r for r in records if _what(r["config"]) == what]
    if not hits:
        return None
    return max(hits, key=lambda r: (r["config"]["epochs"] * (r["provenance"].get("n_train") or 0),
                                    r["provenance"].get("started_utc", "")))


def is_table_run(config: dict) -> bool:
    """Whether a stored configuration is a run of the paper's Section 5 tables, at any budget:
    the paper's schedule for its dataset, model, method, dropout, seed, fidelity and attack up to
    :data:`BUDGET_FIELDS` (so not, e.g., a proof-of-concept run or one at another batch size)."""
    from rll.config import TrainConfig

    c = TrainConfig.from_dict(config)
    paper = TrainConfig(dataset=c.dataset, model=c.model, method=c.method, params=c.params, dropout=c.dropout,
                        seed=c.seed, fidelity=c.fidelity, attack=c.attack, test_split=c.test_split)
    return _what(paper.canonical()) == _what(c.canonical())


def collect_runs(configs: list, *, results_dir, exact_budget: bool, train_missing: bool = False,
                 data_root=None, device=None, checkpoint_dir=None, progress: bool = True,
                 checksums=None, curve_images: int | None = None) -> list[tuple]:
    """Pair each configuration with its stored record; with ``train_missing`` train (and
    store) the ones the store lacks first, checking the data against ``checksums``
    (``{file name: md5}`` overrides, see :func:`rll.data.load_dataset`) and keeping learning
    curves on ``curve_images`` test images (:func:`rll.training.run.train`; the convergence test
    of the verdicts reads them).  Returns ``[(config, record or None), ...]``."""
    from rll.losses import is_current
    from rll.store import ResultsStore
    from rll.training.run import train

    store = ResultsStore(results_dir)
    records = store.records()
    out = []
    for config in configs:
        record = find_record(records, config, exact_budget=exact_budget)
        if train_missing and not is_current(record):    # absent, or an older fidelity revision's
            record = train(config, data_root=data_root, results_dir=results_dir, device=device,
                           checkpoint_dir=checkpoint_dir or (REPO / "checkpoints"), progress=progress,
                           checksums=checksums, curve_images=curve_images)
        out.append((config, record))
    return out


def _two_level_frame(rows: list[dict]):
    """A DataFrame of rows keyed by (group, column) pairs, with two-level column headers."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame


def _row_key(config) -> tuple:
    """A table row: (model, the paper's method label, dropout)."""
    return config.model, method_label(config.method, _params_of(config)), config.dropout


def _row_head(key: tuple, groups: dict, runs: int) -> dict:
    """The leading columns of a table row; ``dropout`` only when some row of the table has it."""
    model, label, dropout = key
    row = {("", "model"): model, ("", "method"): label}
    if any(k[2] for k in groups):
        row[("", "dropout")] = dropout
    row[("", "runs")] = runs
    return row


def attack_runs(configs: list, attack: str, *, results_dir, exact_budget: bool) -> list[tuple]:
    """The stored records of ``configs`` evaluated with ``attack`` instead (never trains): e.g.
    the multi-targeted records (Tables 9–14) of a PGD table's models."""
    return collect_runs([c.replace(attack=attack) for c in configs], results_dir=results_dir,
                        exact_budget=exact_budget)


def attack_comparison_frame(runs: list[tuple], other_runs: list[tuple]):
    """Adversarial test accuracy of the same trained models under two attacks (e.g. PGD-10 and
    MT), ours beside the paper's: one row per table row, ours the mean over the seeds whose
    model has both records (same training, only the attack differs)."""
    groups: dict = {}
    for (config, rec), (other, rec_other) in zip(runs, other_runs):
        g = groups.setdefault(_row_key(config), {"config": config, "attacks": (config.attack, other.attack),
                                                 "pairs": []})
        if rec is not None and rec_other is not None and \
                {**rec["config"], "attack": None} == {**rec_other["config"], "attack": None}:
            g["pairs"].append((rec["metrics"]["adv_test_acc"], rec_other["metrics"]["adv_test_acc"]))
    rows = []
    for (model, label, dropout), g in groups.items():
        cfg, (a, b) = g["config"], g["attacks"]
        row = _row_head((model, label, dropout), groups, len(g["pairs"]))
        pairs = np.array(g["pairs"], dtype=float).reshape(-1, 2)
        ours = pairs.mean(axis=0) if len(pairs) else (np.nan, np.nan)
        papers = [(paper_row(cfg.dataset, model, cfg.method, _params_of(cfg), dropout, att) or {}).get(
            "adv_test_acc", np.nan) for att in (a, b)]
        for source, (va, vb) in (("ours", ours), ("paper", papers)):
            row[(source, a.upper())] = va
            row[(source, b.upper())] = vb
            row[(source, f"{b.upper()} − {a.upper()}")] = vb - va
        rows.append(row)
    return _two_level_frame(rows)


def table_frame(runs: list[tuple], *, attack: str):
    """Our table beside the paper's: one row per (model, method, dropout), columns
    (metric, ours | ± | paper | Δ).  ``ours`` is the mean over the seeds that have a record,
    ``±`` their standard deviation (blank for one seed); ``paper`` the comparable paper number
    (:func:`paper_value`: the Lipschitz Δ is against our released-estimator value, the Eq. 3
    column has none); ``Δ`` = ours − paper."""
    groups: dict = {}
    for config, record in runs:
        g = groups.setdefault(_row_key(config), {"config": config, "records": []})
        if record is not None:
            g["records"].append(record)
    rows = []
    for (model, label, dropout), g in groups.items():
        cfg = g["config"]
        paper = paper_row(cfg.dataset, model, cfg.method, _params_of(cfg), dropout, attack) or {}
        row = _row_head((model, label, dropout), groups, len(g["records"]))
        for metric in METRIC_COLUMNS:
            values = [r["metrics"][metric] for r in g["records"] if metric in r["metrics"]]
            ours, spread = _mean_and_spread(values)
            ref = paper_value(paper, metric)
            row[(metric, "ours")] = ours
            row[(metric, "±")] = spread
            row[(metric, "paper")] = ref
            row[(metric, "Δ")] = ours - ref if values and not np.isnan(ref) else np.nan
        rows.append(row)
    return _two_level_frame(rows)


def _mean_and_spread(values: list) -> tuple[float, float]:
    """The mean of ``values`` and their standard deviation (ddof 1); NaN where undefined."""
    mean = float(np.mean(values)) if values else np.nan
    return mean, float(np.std(values, ddof=1)) if len(values) > 1 else np.nan


def style_table(frame):
    """Display form of :func:`table_frame`: two decimals, blanks for missing values, and the
    spread columns only when some row has several seeds."""
    if ("", "runs") in frame.columns and not (frame[("", "runs")] > 1).any():
        frame = frame.drop(columns=[c for c in frame.columns if c[1].startswith("±")])
    return (frame.style.format(precision=2, na_rep="").hide(axis="index")
            .set_table_styles([{"selector": "th, td",
                                 "props": "padding: 0.1em 0.4em; text-align: right; font-size: 0.85em;"}]))


def paper_budget(config):
    """``config`` at the paper's budget: its schedule's epochs and learning rate, all data."""
    return config.replace(epochs=None, lr=None, train_size=None, test_size=None)


def provenance_lines(runs: list[tuple], *, paper=paper_budget) -> list[str]:
    """How the numbers of a table were obtained: one line per distinct budget, naming the
    epochs, the decays and the learning rate (and the paper's, from ``paper(config)``),
    training/test examples, models, seeds, fidelity, devices, dates and commits; and the
    configurations not yet run.  Says so when a model's runs mix budgets (models with budgets
    of their own, :data:`TABLE_BUDGETS`, do not)."""
    budgets: dict = {}
    missing = []
    for config, record in runs:
        if record is None:
            missing.append(config)
            continue
        c, p = record["config"], record["provenance"]
        key = (c["epochs"], tuple(c["milestones"]), p.get("n_train"), p.get("n_test"), c["fidelity"], c["attack"],
               c["lr"], c.get("train_with_test", False))
        b = budgets.setdefault(key, {"seeds": set(), "models": set(), "devices": set(), "dates": set(),
                                     "commits": set(), "n": 0, "paper": paper(config)})
        b["n"] += 1
        b["seeds"].add(c["seed"])
        b["models"].add(c["model"])
        b["devices"].add(p.get("device", "?"))
        b["dates"].add(str(p.get("started_utc", "?"))[:10])
        b["commits"].add(str(p.get("git_commit") or "?")[:10])
    lines = []
    per_model: dict = {}   # runs with and without the test set share a budget
    for key, b in budgets.items():
        for model in b["models"]:
            per_model.setdefault(model, set()).add(key[:-1])
    if any(len(keys) > 1 for keys in per_model.values()):
        lines.append("NOTE: this table mixes budgets; each line below is one budget.")
    for (epochs, milestones, n_train, n_test, fidelity, attack, lr, with_test), b in budgets.items():
        ref = b["paper"]
        lr_note = f"lr {lr:g}" + ("" if abs(lr - ref.lr) < 1e-12 else f" (paper's schedule: {ref.lr:g})")
        lines.append(
            f"{b['n']} runs: {epochs} epochs (paper: {ref.epochs}), decays after {list(milestones)}, {lr_note}, "
            f"{n_train} training / {n_test} test examples{' (trained on both)' if with_test else ''}, "
            f"{'model' if len(b['models']) == 1 else 'models'} {', '.join(sorted(b['models']))}, "
            f"seeds {sorted(b['seeds'])}, fidelity {fidelity}, attack {attack}; "
            f"device {', '.join(sorted(b['devices']))}; run {', '.join(sorted(b['dates']))}; "
            f"commit {', '.join(sorted(b['commits']))}")
    from rll.losses import is_current_revision

    older = [r for _, r in runs if r is not None and not is_current_revision(r["provenance"].get("fidelity_revision"),
                                                                             r["config"])]
    if older:
        lines.append(f"NOTE: {len(older)} of these runs were trained before a later correction of the methods "
                     "changed what their configuration means (the deviations page lists each: e.g. the AT/RST inner "
                     "attack in eval mode, paper GR's step h); they stay until re-run (results/README.md) and never "
                     "enter the verdicts.")
    beyond = [c for c in missing if not in_table_plan(c)]
    missing = [c for c in missing if in_table_plan(c)]
    if beyond:
        by_model: dict = {}
        for c in beyond:
            by_model.setdefault(f"{c.dataset} {c.model}", set()).add(c.seed)
        lines.append(f"Not planned and not run (the plan runs CNN2 with three seeds and CNN1 with one): {len(beyond)} "
                     "configurations ("
                     + "; ".join(f"{m} seeds {', '.join(map(str, sorted(s)))}" for m, s in sorted(by_model.items()))
                     + ")")
    if missing:
        seeds: dict = {}
        several = len({c.dataset for c in missing}) > 1
        for c in missing:
            label = ((f"{c.dataset} " if several else "") + f"{c.model} {method_label(c.method, _params_of(c))}"
                     + (f" dropout {c.dropout}" if c.dropout else "")
                     + (" with the test set" if c.train_with_test else ""))
            seeds.setdefault(label, []).append(c.seed)
        shown = [f"{label} (seed{'s' if len(s) > 1 else ''} {', '.join(map(str, sorted(s)))})"
                 for label, s in sorted(seeds.items())]
        lines.append(f"Not yet run ({len(missing)} configurations): {'; '.join(shown)}")
    return lines


def _check_run_params(*, fidelity: str, epochs, seeds, train_missing, device, data_root,
                      default_epochs: str = "the paper's") -> None:
    """The parameters every training notebook shares; one readable ``ValueError`` each."""
    from rll.config import FIDELITIES

    if fidelity not in FIDELITIES:
        raise ValueError(f"unknown fidelity {fidelity!r}; valid choices: {', '.join(FIDELITIES)}")
    if epochs is not None and not (isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1):
        raise ValueError(f"epochs must be an integer >= 1 (or None for {default_epochs}), got {epochs!r}")
    if isinstance(seeds, (int, str)) or not list(seeds):
        raise ValueError(f"seeds must be a non-empty list of integers, e.g. [0] or [0, 1, 2]; got {seeds!r}")
    if not isinstance(train_missing, bool):
        raise ValueError(f"train_missing must be True or False, got {train_missing!r}")
    check_device(device)
    check_data_root(data_root)


def check_budget_params(*, budget_dir=None, results_dir=None) -> None:
    """Validate the budget notebook's parameters: each folder, when given, must exist."""
    for name, folder in (("budget_dir", budget_dir), ("results_dir", results_dir)):
        if folder is not None and not Path(folder).is_dir():
            raise ValueError(f"{name} {str(folder)!r} is not a folder of run records")


def table_budget(dataset: str, *, epochs=None, train_size=None, milestones=None) -> tuple[dict, bool]:
    """The budget a table notebook reads and trains: the given fields for every model, or — when
    none is given — each model's :data:`TABLE_BUDGETS` entry (``{"budgets": {model: ...}}``).
    Returns ``(keyword arguments for check_table_params, exact)``: ``exact`` is whether only
    runs of exactly that budget count (False only for a dataset without a table budget and
    nothing given: then the largest stored budget is read, and training uses the paper's
    schedule)."""
    given = {k: v for k, v in (("epochs", epochs), ("train_size", train_size), ("milestones", milestones))
             if v is not None}
    if given:
        return {k: tuple(v) if k == "milestones" else v for k, v in given.items()}, True
    if dataset in TABLE_BUDGETS:
        return {"budgets": dict(TABLE_BUDGETS[dataset])}, True
    return {}, False


def check_table_params(table: str, *, dataset: str, methods=None, models=None, dropouts=None, epochs=None, seeds=(0,),
                       attack: str = "pgd", fidelity: str = "paper", train_size=None, test_size=None,
                       test_split: str = "test", eps=None, lr=None, device=None, data_root=None,
                       train_missing: bool = False, checksums=None, milestones=None, budgets=None,
                       precision: str = "fp32") -> list:
    """Validate a table notebook's parameters (one readable ``ValueError`` naming the valid
    choices) and return its configurations.  ``checksums`` (``{file name: md5}`` overriding
    the dataset's official md5s) is checked against the dataset's file names here, before
    anything is trained.  ``budgets`` (per-model budgets, :func:`table_configs`) and the budget
    fields ``epochs``, ``train_size``, ``milestones`` exclude each other."""
    from rll.config import ATTACKS

    if budgets is not None and (epochs, train_size, milestones) != (None, None, None):
        raise ValueError("give either per-model budgets or epochs/train_size/milestones, not both "
                         "(a table notebook's epochs=None reads each model's table budget, "
                         "rll.experiments.TABLE_BUDGETS)")

    if table in TABLE_MODELS and dataset not in TABLE_MODELS[table]:
        raise ValueError(f"unknown dataset {dataset!r} for {table}; valid choices: {', '.join(TABLE_MODELS[table])}")
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}; valid choices: {', '.join(ATTACKS)}")
    if eps is not None and not (isinstance(eps, (int, float)) and eps > 0):
        raise ValueError(f"eps must be a positive radius (or None for the dataset's), got {eps!r}")
    _check_run_params(fidelity=fidelity, epochs=epochs, seeds=seeds, train_missing=train_missing, device=device,
                      data_root=data_root)
    if isinstance(methods, str):
        raise ValueError(f"methods must be a list, e.g. ['natural', 'trades(beta=6)']; got {methods!r}")
    if table not in TABLE_MODELS:
        raise ValueError(f"unknown table {table!r}; valid choices: {', '.join(TABLE_MODELS)}")
    rdata.check_checksums(dataset, checksums)
    if dropouts is not None and (isinstance(dropouts, (int, float, str)) or not all(
            isinstance(d, (int, float)) and 0 <= d < 1 for d in dropouts)):
        raise ValueError(f"dropouts must be a list of rates in [0, 1), e.g. [0, 0.5]; got {dropouts!r}")
    configs = table_configs(table, dataset=dataset, methods=methods, models=models, dropouts=dropouts,
                            epochs=epochs, seeds=tuple(seeds), attack=attack, fidelity=fidelity,
                            train_size=train_size, test_size=test_size, test_split=test_split, eps=eps, lr=lr,
                            milestones=milestones, budgets=budgets, precision=precision)
    if train_missing:   # training needs both splits: fail now, not after hours of training
        rdata.load_dataset(dataset, "train", root=data_root, checksums=checksums)
        try:
            rdata.load_dataset(dataset, test_split, root=data_root, checksums=checksums)
        except rdata.DataError as err:
            if test_split != "test" or dataset != "cifar10":
                raise
            raise rdata.DataError(f"{err} For a check without the full test set: `-p test_split test_partial` "
                                  "(papermill) trains and evaluates on the labelled partial test set, and every "
                                  "number then says so; without `-p train_missing True` the notebook only reads "
                                  "the results store.") from None
    return configs


def spearman(x, y) -> float:
    """Spearman rank correlation of two equal-length sequences (NaNs dropped)."""
    import pandas as pd

    s = pd.DataFrame({"x": x, "y": y}).dropna()
    return float(s["x"].rank().corr(s["y"].rank())) if len(s) > 2 else float("nan")


def table_summary(frame) -> list[str]:
    """Sentences computed from a table's numbers (ours and the paper's): which methods are most
    robust and smoothest, and the rank correlation of Lipschitz constant and robustness."""
    lines = []
    for src in ("ours", "paper"):
        adv = frame[("adv_test_acc", src)]
        lip = frame[("test_lipschitz_released", src)]   # the paper's estimator on both sides
        if adv.notna().sum() < 3:
            lines.append(f"{src}: too few rows for a summary")
            continue
        names = [f"{m} {lab}" for m, lab in zip(frame[("", "model")], frame[("", "method")])]
        top = [names[i] for i in adv.to_numpy().argsort()[::-1][:3] if not np.isnan(adv.iloc[i])]
        smooth = [names[i] for i in lip.to_numpy().argsort()[:3] if not np.isnan(lip.iloc[i])]
        rho = spearman(lip, adv)
        lines.append(f"{src}: most robust {', '.join(top)}; smoothest (released estimator) {', '.join(smooth)}; "
                     f"Spearman(Lipschitz, adversarial accuracy) = {rho:+.2f}")
    return lines


# --------------------------------------------------------------------------- released vs paper

def lipschitz_estimators_frame(records: list[dict]):
    """The released code's Lipschitz estimator (fixed step 0.003, descending update) beside
    Eq. 3 as the paper defines it (step ε/5, ascent), both at the final iterate, on the same
    trained models and images: one row per stored run that has both."""
    import pandas as pd

    rows = []
    for r in records:
        m, c = r["metrics"], r["config"]
        if "test_lipschitz" in m and "test_lipschitz_released" in m:
            rows.append({"dataset": c["dataset"], "model": c["model"],
                         "method": method_label(c["method"], _params_of(c)), "fidelity": c["fidelity"],
                         "seed": c["seed"], "epochs": c["epochs"], "Eq. 3 (paper)": m["test_lipschitz"],
                         "released estimator": m["test_lipschitz_released"],
                         "released / paper": m["test_lipschitz_released"] / m["test_lipschitz"]
                         if m["test_lipschitz"] else np.nan})
    return pd.DataFrame(rows)


def fidelity_pairs_frame(records: list[dict], methods=("gr", "llr")):
    """Runs that differ only in ``fidelity`` (paper vs released) for ``methods``: their
    metrics side by side, so the effect of the released code's deviations is visible.  A pair
    must take the same SGD steps: the released (summed-loss) learning rate times the batch
    size equals the paper (mean-loss) one."""
    import pandas as pd

    index: dict = {}
    for r in records:
        c = dict(r["config"])
        if c["method"] not in methods:
            continue
        fidelity = c.pop("fidelity")
        lr = c.pop("lr")
        effective = lr * c["batch_size"] if fidelity == "released" and c["optimizer"] == "sgd" else lr
        c["effective_lr"] = round(effective, 12)
        index.setdefault(json.dumps(c, sort_keys=True), {})[fidelity] = r
    rows = []
    for pair in index.values():
        if "paper" not in pair or "released" not in pair:
            continue
        c = pair["paper"]["config"]
        row = {("", "model"): c["model"], ("", "method"): method_label(c["method"], _params_of(c)),
               ("", "seed"): c["seed"], ("", "epochs"): c["epochs"], ("", "lr (mean loss)"): c["lr"]}
        for metric in ("test_acc", "adv_test_acc", "test_lipschitz_released", "test_lipschitz", "gap", "adv_gap"):
            row[(metric, "paper")] = pair["paper"]["metrics"].get(metric)
            row[(metric, "released")] = pair["released"]["metrics"].get(metric)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if len(frame):
        frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame


def run_sweep(configs: list, *, results_dir, checkpoint_dir=None, data_root=None, device=None,
              progress: bool = True, log=print, checksums=None, attacks=None, eval_plan=None,
              curve_images=None, stop_after: float | None = None, **speed) -> dict:
    """Run every configuration the store lacks, one after another.  Safe to start on several
    workers (processes, GPUs, machines sharing ``results_dir``) at once: each configuration
    is claimed in the store before it is trained, and a worker skips what another holds, so
    no run is ever duplicated.  A run whose loss diverges is reported and skipped (its
    checkpoint stays; nothing is stored), and the sweep goes on.  Returns counts of
    ``trained``, ``stored`` (already there), ``claimed_elsewhere`` and ``diverged``.
    ``checksums`` overrides the dataset's official md5s; ``attacks``, ``eval_plan`` and
    ``curve_images`` say how each trained model is evaluated before the next one starts
    (:func:`rll.training.run.train`): a configuration counts as stored only when every attack's
    record is there.  ``stop_after`` (minutes): start no new configuration after that long
    (counted as ``not_started``); ``speed``: ``channels_last``, ``compile`` for
    :func:`rll.training.run.train`."""
    from rll.store import ResultsStore
    from rll.training.run import RunClaimed, TrainingDiverged, train

    store = ResultsStore(results_dir)
    counts = {"trained": 0, "stored": 0, "claimed_elsewhere": 0, "diverged": 0, "not_started": 0}
    attack_names = tuple(attacks) if attacks else None
    started = time.monotonic()
    for i, config in enumerate(configs, 1):
        if stop_after is not None and time.monotonic() - started > 60 * stop_after:
            counts["not_started"] += 1
            continue
        if not _missing_attacks(store, config, attack_names):
            counts["stored"] += 1
            continue
        try:
            train(config, data_root=data_root, results_dir=results_dir, device=device, progress=progress,
                  checkpoint_dir=checkpoint_dir or (REPO / "checkpoints"), checksums=checksums,
                  attacks=attack_names, eval_plan=eval_plan, curve_images=curve_images, **speed)
        except RunClaimed:
            counts["claimed_elsewhere"] += 1
            log(f"[{i}/{len(configs)}] {config.label()}: claimed by another worker, skipped")
            continue
        except TrainingDiverged as err:
            counts["diverged"] += 1
            log(f"[{i}/{len(configs)}] {config.label()}: DIVERGED, not stored: {err}")
            continue
        counts["trained"] += 1
        log(f"[{i}/{len(configs)}] {config.label()}: stored")
    return counts


def sweep_status(configs, *, results_dir=None, attacks=None, checkpoint_dir=None) -> list[tuple]:
    """What :func:`run_sweep` would do with each configuration: ``(config, status)`` with
    status ``stored``, ``claimed by <owner>`` (another worker trains it now), ``missing
    <attacks>`` (trained, some attacks' records absent: the sweep evaluates them), ``to train``
    (``... again`` when an older fidelity revision's record is stored), ``to evaluate from its
    checkpoint`` (trained, its checkpoint on this machine), ``to resume from epoch N`` or ``to
    train from the N-epoch checkpoint`` (a shorter run's epochs are this one's first:
    :func:`rll.training.checkpoint.shorter_checkpoint`) — checkpoints looked up in ``checkpoint_dir``, default
    ``checkpoints/`` as :func:`run_sweep`.  ``python -m rll sweep --dry-run`` prints it."""
    from rll.store import ResultsStore

    store = ResultsStore(results_folder("runs", results_dir))
    checkpoint_dir = checkpoint_dir if checkpoint_dir is not None else REPO / "checkpoints"
    out = []
    for config in configs:
        missing = _missing_attacks(store, config, attacks)
        claim = store.claim_info(config.training_canonical()) if missing else None
        if not missing:
            status = "stored"
        elif claim:
            status = f"claimed by {claim.get('owner', '?')}"
        elif len(missing) == len(attacks or (config.attack,)):
            status = _checkpoint_status(config, checkpoint_dir, store)
            if (old := store.get(config)) is not None:
                status += f" again (fidelity revision {old['provenance'].get('fidelity_revision', 1)} stored)"
        else:
            status = "missing " + ", ".join(missing)
        out.append((config, status))
    return out


def _checkpoint_status(config, checkpoint_dir, store) -> str:
    """Where training ``config`` would start (:func:`rll.training.checkpoint.start_point`), in words."""
    from rll.training.checkpoint import CheckpointMismatch, checkpoint_path, start_point

    try:
        ckpt, shorter = start_point(config, checkpoint_dir, store)
    except CheckpointMismatch:
        return (f"to train (its checkpoint {checkpoint_path(config, checkpoint_dir).name} does not match: "
                "the sweep will stop on it)")
    if ckpt is None:
        return "to train"
    done = int(ckpt.get("epoch", 0))
    if shorter is not None:
        return f"to train from the {done}-epoch checkpoint"
    return "to evaluate from its checkpoint" if done >= config.epochs else f"to resume from epoch {done}"


def _missing_attacks(store, config, attacks=None) -> list[str]:
    """The attacks (default: the configuration's own) whose record of ``config`` the store lacks
    at the current fidelity revision."""
    from rll.losses import is_current

    return [a for a in (tuple(attacks) if attacks else (config.attack,))
            if not is_current(store.get(config.replace(attack=a)))]


# --------------------------------------------------------------------------- Table 6 (Appendix B)

#: Datasets of the paper's proof-of-concept table (Table 6), in its row order.
PROOF_OF_CONCEPT_DATASETS = ("mnist", "svhn", "cifar10")


def proof_of_concept_config(dataset: str, *, train_with_test: bool = True, epochs=None, seed: int = 0,
                            fidelity: str = "paper", train_size=None, test_size=None,
                            test_split: str = "test", lr=None, attack: str = "pgd"):
    """Appendix B's proof-of-concept run for ``dataset``: RST(λ=2) trained on the training
    set *and the test set* it is evaluated on, with Table 7's setup (network, optimiser,
    batch size, epochs, ε, attack step size, initial learning rate).

    Table 7's learning rate is the released code's, on a summed loss; in ``fidelity="paper"``
    (mean loss) SGD's rate is multiplied by the batch size, as for every run
    (:mod:`rll.training.run`), and Adam's is used as is.  Table 7 gives no momentum and no decay
    schedule: SGD keeps the dataset's momentum (MNIST 0.9) and every run its dataset's
    milestones scaled to the epochs.  ``train_with_test=False`` is the control: the same
    setup without access to the test set.  ``epochs``/``lr`` override Table 7's."""
    from rll.config import TrainConfig

    if dataset not in PROOF_OF_CONCEPT_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r} for the proof of concept (Table 6); "
                         f"valid choices: {', '.join(PROOF_OF_CONCEPT_DATASETS)}")
    setup = paper_reference()["table7"][dataset]
    row = paper_reference()["table6"]
    optimizer, batch = setup["optimizer"].lower(), setup["batch_size"]
    if lr is None:
        lr = setup["initial_lr"] * (batch if fidelity == "paper" and optimizer == "sgd" else 1)
    return TrainConfig(dataset=dataset, model=setup["network"], method=row["method"],
                       params={**row["params"], "step": setup["step_size"]}, epochs=epochs or setup["epochs"],
                       lr=lr, optimizer=optimizer, batch_size=batch, eps=setup["eps"], seed=int(seed),
                       fidelity=fidelity, attack=attack, train_size=train_size, test_size=test_size,
                       test_split=test_split, train_with_test=train_with_test)


def proof_of_concept_configs(*, datasets=None, control: bool = True, seeds=(0,), **kwargs) -> list:
    """The runs of the proof-of-concept notebook: per dataset and seed, the run with access to
    the test set and (``control``) the same run without it."""
    out = []
    for dataset in datasets or PROOF_OF_CONCEPT_DATASETS:
        for seed in seeds:
            for with_test in (True, False) if control else (True,):
                out.append(proof_of_concept_config(dataset, train_with_test=with_test, seed=seed, **kwargs))
    return out


def proof_of_concept_paper_budget(config):
    """Table 7's budget for a proof-of-concept ``config`` (for :func:`provenance_lines`)."""
    return proof_of_concept_config(config.dataset, train_with_test=config.train_with_test,
                                   fidelity=config.fidelity)


def is_proof_of_concept_run(config: dict) -> bool:
    """Whether a stored configuration is a proof-of-concept run (with the test set or the
    control), at any budget (:data:`BUDGET_FIELDS`)."""
    if config["dataset"] not in PROOF_OF_CONCEPT_DATASETS:
        return False
    ref = proof_of_concept_config(config["dataset"], train_with_test=config.get("train_with_test", False),
                                  seed=config["seed"], fidelity=config["fidelity"], attack=config["attack"],
                                  test_split=config["test_split"])
    return _what(ref.canonical()) == _what(config)


def check_proof_of_concept_params(*, datasets=None, control: bool = True, epochs=None, seeds=(0,),
                                  fidelity: str = "paper", train_size=None, test_size=None,
                                  test_split: str = "test", lr=None, device=None, data_root=None,
                                  train_missing: bool = False, curve_images=None) -> list:
    """Validate the proof-of-concept notebook's parameters (one readable ``ValueError``
    naming the valid choices) and return its configurations."""
    if isinstance(datasets, str) or (datasets is not None and not list(datasets)):
        raise ValueError(f"datasets must be a non-empty list, e.g. ['mnist'] (papermill: -y 'datasets: [mnist]'); "
                         f"got {datasets!r}")
    for dataset in datasets or ():
        if dataset not in PROOF_OF_CONCEPT_DATASETS:
            raise ValueError(f"unknown dataset {dataset!r} for the proof of concept (Table 6); "
                             f"valid choices: {', '.join(PROOF_OF_CONCEPT_DATASETS)}")
    if not isinstance(control, bool):
        raise ValueError(f"control must be True or False, got {control!r}")
    _check_run_params(fidelity=fidelity, epochs=epochs, seeds=seeds, train_missing=train_missing, device=device,
                      data_root=data_root, default_epochs="Table 7's")
    from rll.training.run import check_curve_images

    check_curve_images(curve_images)
    configs = proof_of_concept_configs(datasets=datasets, control=control, seeds=tuple(seeds), epochs=epochs,
                                       fidelity=fidelity, train_size=train_size, test_size=test_size,
                                       test_split=test_split, lr=lr)
    if train_missing:   # training needs both splits: fail now, not after hours of training
        for dataset in dict.fromkeys(c.dataset for c in configs):
            rdata.load_dataset(dataset, "train", root=data_root)
            rdata.load_dataset(dataset, test_split, root=data_root)
    return configs


def proof_of_concept_frame(runs: list[tuple]):
    """Table 6 beside the paper's: per dataset, test accuracy and adversarial test accuracy of
    the run trained with access to the test set (mean over seeds, ``±`` their standard
    deviation), the paper's values, the difference, and the same setup trained without that
    access (the control, with its own spread ``± (control)``)."""
    ref = {row["dataset"]: row for row in paper_reference()["table6"]["rows"]}
    groups: dict = {}
    for config, record in runs:
        g = groups.setdefault(config.dataset, {True: [], False: [], "eps": config.eps})
        if record is not None:
            g[config.train_with_test].append(record["metrics"])
    rows = []
    for dataset, g in groups.items():
        row = {("", "dataset"): dataset, ("", "eps"): g["eps"], ("", "runs"): len(g[True])}
        for metric, paper_key in (("test_acc", "accuracy"), ("adv_test_acc", "adv_accuracy")):
            ours, spread = _mean_and_spread([m[metric] for m in g[True]])
            paper = ref.get(dataset, {}).get(paper_key, np.nan)
            row[(metric, "with test set")] = ours
            row[(metric, "±")] = spread
            row[(metric, "paper")] = paper
            row[(metric, "Δ")] = ours - paper
            row[(metric, "without (control)")], row[(metric, "± (control)")] = _mean_and_spread(
                [m[metric] for m in g[False]])
        rows.append(row)
    return _two_level_frame(rows)


def proof_of_concept_summary(frame) -> list[str]:
    """One sentence per dataset of :func:`proof_of_concept_frame`, computed from its numbers."""
    lines = []
    for _, row in frame.iterrows():
        ours, control = row[("adv_test_acc", "with test set")], row[("adv_test_acc", "without (control)")]
        if np.isnan(ours):
            lines.append(f"{row[('', 'dataset')]}: not yet run")
            continue
        lines.append(f"{row[('', 'dataset')]}: adversarial test accuracy {ours:.2f}% with the test set"
                     + (f", {control:.2f}% without it ({ours - control:+.2f} points)" if not np.isnan(control) else "")
                     + f"; paper {row[('adv_test_acc', 'paper')]:.2f}%")
    return lines


# --------------------------------------------------------------------------- LLR's inner step (deviation)

def llr_step_comparison(model, x, y, *, eps: float, seed: int = 0) -> dict:
    """How far LLR's inner maximisation moves the inputs with the released step — two steps of
    (ε/2)·∇/‖∇‖∞ with clamping and rescaling, both fidelities' rule — and with the signed steps
    rll's released mode took before the fidelity corrections (two steps of ε/2 on every pixel,
    clipped): mean |δ| and the share of pixels at |δ| ≥ ε/2 for each, same model, same inputs,
    same start (the ascent of the released objective, the cross-entropy, in eval mode)."""
    import torch.nn.functional as F

    from rll.attacks import linf_ascent, model_mode

    out = {}
    with model_mode(model, "eval"):
        def objective(z):
            return F.cross_entropy(model(z), y, reduction="none")

        for name, kw in (("released step", dict(direction="linf", projection="rescale", project_start=False)),
                         ("signed steps", dict())):
            z = linf_ascent(objective, x, eps=eps, step=eps / 2, steps=2, start="normal",
                            generator=torch.Generator().manual_seed(seed), **kw)
            delta = (z - x).abs()
            out[name] = {"mean |δ|": delta.mean().item(), "pixels at ≥ ε/2": (delta >= eps / 2 - 1e-7).float().mean().item()}
    return out


# --------------------------------------------------------------------------- MT selection (deviation)

def mt_selection_frame(records: list[dict]):
    """The multi-targeted attack's released selection against the per-example worst case, both
    from the same attack run (every MT record holds both, :func:`rll.metrics.evaluate`): per
    model, clean accuracy, adversarial accuracy under each selection and how many points the
    released selection overstates robustness by."""
    import pandas as pd

    rows = []
    for r in records:
        c, m = r["config"], r["metrics"]
        if c["attack"] != "mt" or "adv_test_acc_worst_selection" not in m:
            continue
        released, worst = m["adv_test_acc_released_selection"], m["adv_test_acc_worst_selection"]
        rows.append({"dataset": c["dataset"], "model": c["model"],
                     "method": method_label(c["method"], row_params(c["method"], c["params"])),
                     "seed": c["seed"], "epochs": c["epochs"],
                     "test images": m.get("evaluated_on", {}).get("adv_test_acc"), "clean": m["test_acc"],
                     "MT, released selection": released, "MT, per-example worst": worst,
                     "released − worst": released - worst})
    return pd.DataFrame(rows)
