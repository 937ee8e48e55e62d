"""The validated models (rll.validation) and the command line generated from them."""
from __future__ import annotations

from typing import Literal

import pytest
from pydantic import Field, StrictBool

from rll import cli
from rll.config import TrainConfig
from rll.losses import METHOD_PARAMS
from rll.validation import ValidatedModel, field_choices, requirement


class Toy(ValidatedModel):
    count: int = Field(1, ge=1, strict=True)
    rate: float = Field(0.5, ge=0, lt=1, strict=True)
    size: int | None = Field(None, ge=1, le=10, strict=True)
    step: float = Field(1.0, gt=0, allow_inf_nan=False, strict=True)
    kind: Literal["a", "b"] = "a"
    flag: StrictBool = False


@pytest.mark.parametrize("kwargs, message", [
    # each expected line written out by hand from the declaration above
    ({"count": 0}, "count must be an integer >= 1 (got 0)"),
    ({"count": 2.0}, "count must be an integer >= 1 (got 2.0)"),
    ({"count": True}, "count must be an integer >= 1 (got True)"),
    ({"rate": 1}, "rate must be a finite number in [0, 1) (got 1)"),
    ({"size": 11}, "size must be an integer in [1, 10] or None (got 11)"),
    ({"step": 0.0}, "step must be a positive finite number (got 0.0)"),
    ({"step": float("inf")}, "step must be a positive finite number (got inf)"),
    ({"kind": "c"}, "unknown kind 'c'; valid choices: a, b"),
    ({"flag": "yes"}, "flag must be True or False (got 'yes')"),
    ({"colour": 1, "shape": 2}, "unknown parameter(s) 'colour', 'shape'; valid: count, rate, size, step, kind, flag"),
])
def test_refusals_name_the_field_the_rule_and_the_value(kwargs, message):
    with pytest.raises(ValueError) as err:
        Toy(**kwargs)
    assert str(err.value) == message


def test_valid_values_pass_and_the_model_is_frozen():
    toy = Toy(count=3, rate=0, size=None, step=2, kind="b", flag=True)
    assert (toy.count, toy.rate, toy.step) == (3, 0.0, 2.0) and isinstance(toy.rate, float)
    with pytest.raises(ValueError):
        toy.count = 4
    assert field_choices(Toy, "kind") == ("a", "b") and field_choices(Toy, "count") is None
    assert requirement(Toy, "rate") == "a finite number in [0, 1)"


def _train_flags() -> set[str]:
    parser = cli.build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    return {opt for action in train._actions for opt in action.option_strings}


def test_every_config_field_has_a_generated_flag():
    """A field added to TrainConfig reaches ``python -m rll train`` without touching the CLI."""
    flags = _train_flags()
    for name in TrainConfig.model_fields:
        if name == "params":
            assert {f"--{p}" for ps in METHOD_PARAMS.values() for p in ps} <= flags
        else:
            assert "--" + name.replace("_", "-") in flags, name


def test_flags_build_the_same_config_as_the_keywords():
    args = cli.build_parser().parse_args([
        "train", "--dataset", "cifar10", "--model", "wrn-16-4", "--method", "trades", "--beta", "3",
        "--fidelity", "released", "--optimizer", "sgd", "--batch-size", "32", "--momentum", "0.5",
        "--lr", "0.02", "--epochs", "6", "--milestones", "2", "4", "--eps", "0.02", "--dropout", "0.2",
        "--seed", "3", "--attack", "mt", "--train-size", "100", "--test-size", "50",
        "--test-split", "test_partial", "--train-with-test"])
    expected = TrainConfig(dataset="cifar10", model="wrn-16-4", method="trades", params={"beta": 3},
                           fidelity="released", optimizer="sgd", batch_size=32, momentum=0.5, lr=0.02, epochs=6,
                           milestones=(2, 4), eps=0.02, dropout=0.2, seed=3, attack="mt", train_size=100,
                           test_size=50, test_split="test_partial", train_with_test=True)
    assert cli._config_from_args(args) == expected
    # flags not given leave the paper's schedule to the configuration
    bare = cli.build_parser().parse_args(["train", "--dataset", "mnist", "--model", "cnn2"])
    assert cli._config_from_args(bare) == TrainConfig(dataset="mnist", model="cnn2")
    # an empty --milestones is "no decay", not "the default"
    none = cli.build_parser().parse_args(["train", "--dataset", "mnist", "--model", "cnn2", "--milestones"])
    assert cli._config_from_args(none).milestones == ()
