"""Guards on papermill's injected parameters (rll.book.parameters), on hand-written cell
sources as IPython's ``In`` holds them."""
from __future__ import annotations

import pytest

from rll.book import parameters as guard

PARAMETERS_CELL = 'dataset = "mnist"   # a comment\nseeds = [0, 1, 2]\nepochs: int | None = None\n'


def test_assigned_names_are_the_top_level_assignments():
    assert guard.assigned_names(PARAMETERS_CELL) == {"dataset", "seeds", "epochs"}
    assert guard.assigned_names("a, b = 1, 2\nif True:\n    c = 3\nprint(a)") == {"a", "b"}
    assert guard.assigned_names("not python (") == set()


def test_a_misspelled_injected_parameter_names_the_closest_valid_one():
    inputs = ["", PARAMETERS_CELL, '# Parameters\ndatset = "mnist"\n', "guard()"]
    assert guard.unknown_parameters(inputs) == (["datset"], {"dataset", "seeds", "epochs"})
    with pytest.raises(ValueError, match=r"unknown parameter 'datset' \(papermill -p datset \.\.\.\): "
                                         r"did you mean 'dataset'\? this notebook's parameters are "
                                         r"dataset, epochs, seeds"):
        guard.check_injected(inputs)


def test_known_injected_parameters_and_runs_without_papermill_pass():
    guard.check_injected(["", PARAMETERS_CELL, "# Parameters\nseeds = [0]\nepochs = 2\n", "guard()"])
    guard.check_injected(["", PARAMETERS_CELL, "guard()"])          # JupyterLab, the book build
    with pytest.raises(ValueError, match="unknown parameter 'zzz' .*: this notebook's"):
        guard.check_injected(["", PARAMETERS_CELL, "# Parameters\nzzz = 1\n"])
