"""What the results store holds: the environment, a summary per kind of run, and how far each
table's plan has come."""
from __future__ import annotations

import json
import os

import torch

from rll.analysis.frames import _row_key
from rll.experiments.proof_of_concept import is_proof_of_concept_run
from rll.experiments.tables import (
    ATTACK_ORDER,
    BEYOND_PLAN,
    FULL_EVALUATION,
    TABLE_BUDGETS,
    _params_of,
    in_table_plan,
    is_table_run,
    method_label,
    stand_ins,
    table_configs,
)
from rll.store import cpu_description, device_name, git_commit


def environment_table():
    """Package versions and the device of this build, as a one-column DataFrame (the book's
    status page)."""
    import platform
    from importlib import metadata

    import pandas as pd

    rows = {"python": platform.python_version(), "platform": platform.platform(),
            "device": f"{device_name('cuda' if torch.cuda.is_available() else 'cpu')} ({os.cpu_count()} cores)",
            "CPU": cpu_description(),
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


def table_progress(records: list[dict], *, table: str = "table2", dataset: str = "mnist", seeds=(0, 1, 2),
                   full_evaluation_seeds=(0,), reading: str = "paper"):
    """How far the table's sweep at :data:`TABLE_BUDGETS` (each model's) has come: one row per (model,
    method), one column per seed, each cell ``done``, ``missing <attacks>`` or ``not run``
    (seeds in ``full_evaluation_seeds`` need every attack of :data:`FULL_EVALUATION`, the others
    PGD-10); a cell the plan does not ask for (:func:`in_table_plan`) and nothing stored is
    :data:`BEYOND_PLAN`.  ``reading="released"``: the released-fidelity rows the released reading
    adds (:func:`rll.analysis.evidence.reading_fidelity`: GR, LLR and every CNN1 row), seed 0."""
    import pandas as pd

    from rll.analysis.evidence import reading_fidelity

    have = {json.dumps({**r["config"], "attack": None}, sort_keys=True): set() for r in records}
    for r in records:
        have[json.dumps({**r["config"], "attack": None}, sort_keys=True)].add(r["config"]["attack"])
    rows: dict = {}
    fidelity = "paper" if reading == "paper" else "released"
    for config in table_configs(table, dataset=dataset, seeds=tuple(seeds), budgets=TABLE_BUDGETS.get(dataset),
                                precision="auto", fidelity=fidelity):
        if reading_fidelity(config.model, config.method, reading) != fidelity:
            continue
        want = FULL_EVALUATION if config.seed in full_evaluation_seeds else ("pgd",)
        stored = next((found for c in stand_ins(config)          # bf16 where allowed; an fp32 record stands in
                       if (found := have.get(json.dumps({**c.canonical(), "attack": None}, sort_keys=True)))), set())
        missing = [a for a in want if a not in stored]
        cell = ("done" if not missing else "missing " + ", ".join(missing) if stored
                else "not run" if in_table_plan(config) else BEYOND_PLAN)
        row = rows.setdefault(_row_key(config), {"model": config.model, "method": method_label(
            config.method, _params_of(config))})
        row[f"seed {config.seed}"] = cell
    return pd.DataFrame(list(rows.values()))
