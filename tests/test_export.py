"""rll.training.export: RobustBench's model-info layout from stored records."""
from __future__ import annotations

import json

from rll import cli
from rll.config import TrainConfig
from rll.paper import paper_row
from rll.store import ResultsStore
from rll.training.export import ROBUSTBENCH_KEYS, model_name

# The keys of a RobustBench model-info file, as in its repository's
# model_info/cifar10/Linf/Zhang2019Theoretically.json.
ROBUSTBENCH_FILE_KEYS = ["link", "name", "authors", "additional_data", "number_forward_passes", "dataset",
                         "venue", "architecture", "eps", "clean_acc", "reported", "footnote", "autoattack_acc"]


def _put(store, config, metrics):
    store.put(config, metrics, {"n_train": 10000, "device": "cpu", "git_commit": "abc"})


def test_export_robustbench_layout(tmp_path):
    store = ResultsStore(tmp_path / "runs")
    cfg = TrainConfig.from_paper("mnist", "cnn2", "trades", beta=6.0, epochs=10, train_size=10000)
    _put(store, cfg, {"test_acc": 98.7654, "adv_test_acc": 93.1})
    _put(store, cfg.replace(attack="aa-apgd"), {"test_acc": 98.7654, "adv_test_acc": 91.25,
                                                 "evaluated_on": {"adv_test_acc": 500}})
    lonely = cfg.replace(method="natural", params={})            # no AutoAttack record: not exported
    _put(store, lonely, {"test_acc": 99.0, "adv_test_acc": 10.0})
    assert cli.main(["export", "--format", "robustbench", "--results-dir", str(tmp_path / "runs"),
                     "--out", str(tmp_path / "rb")]) == 0
    files = sorted((tmp_path / "rb").rglob("*.json"))
    assert [f.relative_to(tmp_path / "rb").as_posix() for f in files] == [
        "mnist/Linf/Yang2020Closer_cnn2_trades-beta6_seed0.json"]
    info = json.loads(files[0].read_text())
    assert list(info) == ROBUSTBENCH_FILE_KEYS == list(ROBUSTBENCH_KEYS)
    assert info["clean_acc"] == "98.77" and info["autoattack_acc"] == "91.25" and info["eps"] == "0.1"
    paper = paper_row("mnist", "cnn2", "trades", {"beta": 6.0}, 0.0, "pgd")
    assert paper["table"] == "table2" and info["reported"] == f"{paper['adv_test_acc']:.2f}"   # the paper's PGD-10
    assert info["architecture"] == "CNN2" and info["dataset"] == "mnist" and info["additional_data"] is False
    assert "APGD-CE + APGD-DLR" in info["footnote"] and "500 fixed test images" in info["footnote"]
    assert all(isinstance(info[k], str) for k in ("eps", "clean_acc", "reported", "autoattack_acc"))
    # the standard version wins when both are stored
    _put(store, cfg.replace(attack="aa"), {"test_acc": 98.7654, "adv_test_acc": 90.5,
                                            "evaluated_on": {"adv_test_acc": 200}})
    cli.main(["export", "--format", "robustbench", "--results-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "rb")])
    info = json.loads(files[0].read_text())
    assert info["autoattack_acc"] == "90.50" and "standard version" in info["footnote"]
    assert model_name({**cfg.canonical(), "fidelity": "released"}).endswith("_released")
