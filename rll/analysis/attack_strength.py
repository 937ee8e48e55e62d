"""How strong are the evaluation attacks?  PGD-10 and the multi-targeted attack beside
AutoAttack (Croce & Hein, 2020), per stored model, with the usual signs of overstated
robustness computed from the numbers.

Every trained model's records (one per attack, :func:`rll.training.run.train`) are grouped back
into one row.  Two flags, each a sign that a number overstates robustness:

* **AA below PGD**: AutoAttack leaves at least :data:`FLAG_POINTS` points fewer examples
  robust than PGD-10 on the same images (PGD-10 alone would overstate robustness);
* **Square only**: the black-box Square attack fooled the model on examples every white-box
  component failed on — gradients that mislead gradient-based attacks (gradient masking).

>>> frame = attack_strength_frame(ResultsStore("results/runs").records())   # doctest: +SKIP
"""
from __future__ import annotations

import json

import numpy as np
import torch

from rll.analysis.frames import _row_key
from rll.attacks import linf_ascent, model_mode
from rll.data import DATASET_INFO, DATASETS
from rll.experiments.tables import method_label, row_params

#: AutoAttack this many points (or more) below PGD-10 on the same images raises a flag.
FLAG_POINTS = 3.0
#: The AutoAttack record names, cheap first, and their display names.
AUTOATTACK_NAMES = {"aa-apgd": "AA (APGD-CE + APGD-DLR)", "aa": "AA standard"}


def check_params(*, dataset: str, results_dir=None, lipschitz_check_eps=()) -> None:
    """Validate the attack-strength notebook's parameters (one readable ``ValueError`` each)."""
    from pathlib import Path


    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid choices: {', '.join(DATASETS)}")
    if results_dir is not None and not Path(results_dir).is_dir():
        raise ValueError(f"results_dir {results_dir!r} is not a folder of run records")
    if isinstance(lipschitz_check_eps, (int, float, str)) or not all(
            isinstance(e, (int, float)) and 0 < e < 1 for e in lipschitz_check_eps):
        raise ValueError(f"lipschitz_check_eps must be a list of radii in (0, 1), e.g. [0.002, 0.005]; "
                         f"got {lipschitz_check_eps!r}")


def by_model(records: list[dict]) -> list[dict[str, dict]]:
    """The records grouped by trained model (the configuration up to its ``attack``):
    ``[{attack: record}, ...]``, in the order the models first appear."""
    groups: dict[str, dict[str, dict]] = {}
    for r in records:
        key = json.dumps({**r["config"], "attack": None}, sort_keys=True)
        groups.setdefault(key, {})[r["config"]["attack"]] = r
    return list(groups.values())


def flags(autoattack_metrics: dict) -> list[str]:
    """The flags one AutoAttack record raises (see the module docstring)."""
    out = []
    pgd = autoattack_metrics.get("pgd_acc_same_images")
    if pgd is not None and pgd - autoattack_metrics["adv_test_acc"] >= FLAG_POINTS:
        out.append(f"AA {pgd - autoattack_metrics['adv_test_acc']:.1f} points below PGD-10")
    if autoattack_metrics.get("square_only", 0) > 0:
        out.append(f"Square only: {autoattack_metrics['square_only']} examples")
    return out


def attack_strength_frame(records: list[dict]):
    """One row per stored model with a PGD-10 record and at least one other attack's: clean
    and PGD-10 accuracy, the multi-targeted attack under both selections (and PGD-10 on its
    images, where the record holds it), each AutoAttack
    configuration and its components (each on its own fixed test subset, sizes in
    ``images``), and the flags."""
    import pandas as pd

    rows = []
    for attacks in by_model(records):
        if "pgd" not in attacks or len(attacks) < 2:
            continue
        c, pgd = attacks["pgd"]["config"], attacks["pgd"]["metrics"]
        row = {("", "dataset"): c["dataset"], ("", "model"): c["model"],
               ("", "method"): method_label(c["method"], row_params(c["method"], c["params"])),
               ("", "fidelity"): c["fidelity"], ("", "seed"): c["seed"],
               ("clean", "acc"): pgd["test_acc"], ("PGD-10", "acc"): pgd["adv_test_acc"]}
        if "mt" in attacks:
            mt = attacks["mt"]["metrics"]
            row[("MT", "released selection")] = mt.get("adv_test_acc_released_selection", mt["adv_test_acc"])
            row[("MT", "per-example worst")] = mt.get("adv_test_acc_worst_selection", np.nan)
            row[("MT", "PGD-10 same images")] = mt.get("pgd_acc_same_images", np.nan)
            row[("MT", "images")] = mt.get("evaluated_on", {}).get("adv_test_acc")
        raised = []
        for name, label in AUTOATTACK_NAMES.items():
            if name not in attacks:
                continue
            aa = attacks[name]["metrics"]
            row[(label, "acc")] = aa["adv_test_acc"]
            row[(label, "PGD-10 same images")] = aa.get("pgd_acc_same_images", np.nan)
            for component, value in aa.get("components", {}).items():
                row[(label, component)] = value
            row[(label, "images")] = aa.get("evaluated_on", {}).get("adv_test_acc")
            raised += [f"{label}: {f}" for f in flags(aa)]
        row[("", "flags")] = "; ".join(raised)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if len(frame):
        frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame


def autoattack_by_row(runs: list[tuple], records: list[dict], attack: str = "aa-apgd") -> dict:
    """For the rows of a table (``runs`` from :func:`rll.experiments.sweep.collect_runs`): the mean
    AutoAttack accuracy over the seeds that have an ``attack`` record of the same trained
    model, and the flags they raise: ``{row key: (mean or NaN, "flags")}``, keyed like
    :func:`rll.analysis.frames.table_frame`'s rows."""
    index = {json.dumps({**r["config"], "attack": None}, sort_keys=True): r
             for r in records if r["config"]["attack"] == attack}
    out: dict = {}
    for config, record in runs:
        key = _row_key(config)
        values, raised = out.setdefault(key, ([], []))
        if record is None:
            continue
        aa = index.get(json.dumps({**record["config"], "attack": None}, sort_keys=True))
        if aa is not None:
            values.append(aa["metrics"]["adv_test_acc"])
            raised += [f"seed {config.seed}: {f}" for f in flags(aa["metrics"])]
    return {k: (float(np.mean(v)) if v else np.nan, "; ".join(f)) for k, (v, f) in out.items()}


def robustness_frame(runs: list[tuple], records: list[dict]):
    """A table's rows under the stronger attacks: PGD-10 (mean over the seeds run), AutoAttack's
    APGD-CE + APGD-DLR configuration and its standard version (mean over the seeds that have
    them, each on its fixed test subset), the worst class under PGD-10 and the flags any of
    them raises.  One row per table row (``runs`` from :func:`rll.experiments.sweep.collect_runs`)."""
    import pandas as pd

    apgd, standard = autoattack_by_row(runs, records, "aa-apgd"), autoattack_by_row(runs, records, "aa")
    worst = {(r["model"], r["method"]): r["worst class"] for _, r in per_class_frame(runs).iterrows()}
    rows: dict = {}
    for config, record in runs:
        key = _row_key(config)
        row = rows.setdefault(key, {"model": key[0], "method": key[1] + (f" dropout {key[2]:g}" if key[2] else ""),
                                    "pgd": []})
        if record is not None:
            row["pgd"].append(record["metrics"]["adv_test_acc"])
    out = []
    for key, row in rows.items():
        flags_text = "; ".join(f for f in (apgd[key][1], standard[key][1]) if f)
        out.append({"model": row["model"], "method": row["method"],
                    "PGD-10": float(np.mean(row["pgd"])) if row["pgd"] else np.nan,
                    AUTOATTACK_NAMES["aa-apgd"]: apgd[key][0], AUTOATTACK_NAMES["aa"]: standard[key][0],
                    "worst class (PGD-10)": worst.get((row["model"], row["method"]), ""), "flags": flags_text})
    return pd.DataFrame(out)


def per_class_frame(runs: list[tuple], metric: str = "per_class_adv_test_acc"):
    """Per-class accuracy (percent) of each table row, the mean over its seeds: rows (model,
    method), one column per class (the dataset's class names), and the worst class named."""
    import pandas as pd


    groups: dict = {}
    for config, record in runs:
        g = groups.setdefault(_row_key(config), {"config": config, "values": []})
        if record is not None and metric in record["metrics"]:
            g["values"].append(record["metrics"][metric])
    rows = []
    for (model, label, dropout), g in groups.items():
        if not g["values"]:
            continue
        classes = DATASET_INFO[g["config"].dataset].classes
        mean = np.nanmean(np.array(g["values"], dtype=float), axis=0)
        row = {"model": model, "method": label + (f" dropout {dropout:g}" if dropout else ""),
               **dict(zip(classes, mean)), "worst class": classes[int(np.nanargmin(mean))],
               "seeds": len(g["values"])}
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = ["AUTOATTACK_NAMES", "FLAG_POINTS", "attack_strength_frame", "autoattack_by_row", "by_model", "check_params",
           "flags", "per_class_frame", "robustness_frame"]


def llr_step_comparison(model, x, y, *, eps: float, seed: int = 0) -> dict:
    """How far LLR's inner maximisation moves the inputs with the released step — two steps of
    (ε/2)·∇/‖∇‖∞ with clamping and rescaling, both fidelities' rule — and with the signed steps
    rll's released mode took before the fidelity corrections (two steps of ε/2 on every pixel,
    clipped): mean |δ| and the share of pixels at |δ| ≥ ε/2 for each, same model, same inputs,
    same start (the ascent of the released objective, the cross-entropy, in eval mode)."""
    import torch.nn.functional as F


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
