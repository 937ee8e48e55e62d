"""Export stored runs in other tools' formats.

RobustBench (Croce et al., 2021) describes each model by one JSON file in its ``model_info``
folder (``model_info/<dataset>/<threat model>/<name>.json``) with the keys of
:data:`ROBUSTBENCH_KEYS`; numbers are written as strings, as RobustBench's own files do.
:func:`robustbench_model_info` fills them from our records: ``clean_acc`` our clean test
accuracy, ``reported`` the paper's published PGD-10 number for the row (the robustness "claimed
in the paper"), ``autoattack_acc`` our AutoAttack robust accuracy (the standard version when it
was run, else the APGD-CE + APGD-DLR configuration, said in ``footnote``).

>>> from rll.training.export import export_robustbench
>>> paths = export_robustbench("results/runs", "robustbench")   # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from rll.experiments.tables import row_params
from rll.paper import paper_row
from rll.store import ResultsStore, atomic_write_bytes

ROBUSTBENCH_KEYS = ("link", "name", "authors", "additional_data", "number_forward_passes", "dataset",
                    "venue", "architecture", "eps", "clean_acc", "reported", "footnote", "autoattack_acc")
PAPER = {"link": "https://arxiv.org/abs/2003.02460",
         "name": "A Closer Look at Accuracy vs. Robustness",
         "authors": "Yao-Yuan Yang, Cyrus Rashtchian, Hongyang Zhang, Ruslan Salakhutdinov, Kamalika Chaudhuri",
         "venue": "NeurIPS 2020"}
ARCHITECTURES = {"cnn1": "CNN1", "cnn2": "CNN2", "resnet50": "ResNet-50"}
#: AutoAttack configurations in order of preference for ``autoattack_acc``.
AUTOATTACK_PREFERENCE = ("aa", "aa-apgd")


def _fmt(value: float) -> str:
    return f"{value:.2f}"


def _architecture(model: str) -> str:
    if model.startswith("wrn-"):
        return "WideResNet-" + "-".join(model.split("-")[1:])
    return ARCHITECTURES.get(model, model)


def model_name(config: dict) -> str:
    """RobustBench-style name of one of our models (ASCII), e.g.
    ``Yang2020Closer_cnn2_trades-beta6_seed0``, plus the dropout and the fidelity when not the
    defaults."""
    params = row_params(config["method"], config["params"])
    slug = "-".join([config["method"]] + [f"{k}{v:g}" for k, v in sorted(params.items())])
    parts = ["Yang2020Closer", config["model"], slug, f"seed{config['seed']}"]
    if config.get("dropout"):
        parts.append(f"dropout{config['dropout']:g}")
    if config["fidelity"] != "paper":
        parts.append(config["fidelity"])
    return "_".join(parts)


def robustbench_model_info(pgd_record: dict, autoattack_record: dict) -> dict:
    """RobustBench's model-info entry for one trained model, from its PGD-10 record (clean
    accuracy, configuration) and its AutoAttack record (``attack`` ``aa`` or ``aa-apgd``)."""
    c, m, aa = pgd_record["config"], pgd_record["metrics"], autoattack_record["metrics"]
    paper = paper_row(c["dataset"], c["model"], c["method"], row_params(c["method"], c["params"]),
                                  c["dropout"], "pgd") or {}
    n = aa.get("evaluated_on", {}).get("adv_test_acc")
    version = ("AutoAttack's standard version (APGD-CE, APGD-T, FAB-T, Square; reference iteration counts)"
               if autoattack_record["config"]["attack"] == "aa" else "AutoAttack's APGD-CE + APGD-DLR configuration")
    footnote = (f"rll reproduction ({c['fidelity']} fidelity, seed {c['seed']}, {c['epochs']} epochs on "
                f"{pgd_record['provenance'].get('n_train', '?')} training images); autoattack_acc: {version} on "
                f"{n} fixed test images; reported: the paper's PGD-10 number"
                + (f" (its {paper['table']})" if paper else " (none published for this row)") + ".")
    info = {**PAPER, "additional_data": False, "number_forward_passes": 1, "dataset": c["dataset"],
            "architecture": _architecture(c["model"]), "eps": f"{c['eps']:g}", "clean_acc": _fmt(m["test_acc"]),
            "reported": _fmt(paper["adv_test_acc"]) if "adv_test_acc" in paper else "",
            "footnote": footnote, "autoattack_acc": _fmt(aa["adv_test_acc"])}
    return {k: info[k] for k in ROBUSTBENCH_KEYS}


def export_robustbench(results_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """Write one RobustBench model-info JSON per stored model that has both a PGD-10 record and
    an AutoAttack record, under ``out_dir/<dataset>/Linf/<name>.json``; returns the paths."""
    records = ResultsStore(results_dir).records()
    by_model: dict[str, dict] = {}
    for r in records:
        key = json.dumps({**r["config"], "attack": None}, sort_keys=True)
        by_model.setdefault(key, {})[r["config"]["attack"]] = r
    paths = []
    for attacks in by_model.values():
        aa = next((attacks[a] for a in AUTOATTACK_PREFERENCE if a in attacks), None)
        if "pgd" not in attacks or aa is None:
            continue
        info = robustbench_model_info(attacks["pgd"], aa)
        path = Path(out_dir) / info["dataset"] / "Linf" / f"{model_name(attacks['pgd']['config'])}.json"
        paths.append(atomic_write_bytes(path, (json.dumps(info, indent=2) + "\n").encode("utf-8")))
    return sorted(paths)


__all__ = ["ROBUSTBENCH_KEYS", "export_robustbench", "model_name", "robustbench_model_info"]
