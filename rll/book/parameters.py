"""Guards for the parameters papermill injects into a notebook.

``papermill nb.ipynb out.ipynb -p datset mnist`` only warns "Passed unknown parameter" and runs
the notebook on its defaults.  :func:`guard`, called first in each notebook's validation cell,
makes that an error before any computation, naming the closest valid parameter, and makes a
refused parameter's message the whole error: the cell's traceback is IPython's ``Minimal`` one
(the exception's one line), restored to the previous mode once the cell has run.

How the injected names are found: IPython keeps the source of every executed cell in ``In``;
papermill's injected cell starts with the comment ``# Parameters`` and runs right after the
notebook's ``parameters`` cell.  A name assigned there and not in the ``parameters`` cell is
unknown.  Outside papermill (JupyterLab, the book build) there is no injected cell and
:func:`guard` only sets the short tracebacks.
"""
from __future__ import annotations

import ast
import difflib

INJECTED_MARKER = "# Parameters"


def assigned_names(source: str) -> set[str]:
    """Names bound at the top level of ``source`` by plain assignments (``a = 1``, ``a: int = 1``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AnnAssign, ast.AugAssign)) else []
        for target in targets:
            names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def unknown_parameters(inputs: list[str]) -> tuple[list[str], set[str]]:
    """From the executed cells' sources ``inputs`` (IPython's ``In``): the names papermill
    injected that the notebook's parameters cell does not define, and the names it defines."""
    marked = [i for i, src in enumerate(inputs) if i > 0 and src.lstrip().startswith(INJECTED_MARKER)]
    if not marked:
        return [], set()
    i = marked[-1]
    declared = assigned_names(inputs[i - 1])
    return sorted(assigned_names(inputs[i]) - declared), declared


def check_injected(inputs: list[str]) -> None:
    """Raise ``ValueError`` for the first unknown injected parameter, naming the closest valid
    one and all of them."""
    unknown, declared = unknown_parameters(inputs)
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, sorted(declared), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown parameter {name!r} (papermill -p {name} ...): {hint}"
                         f"this notebook's parameters are {', '.join(sorted(declared))}")


def guard() -> None:
    """Short tracebacks for the rest of the calling cell, then :func:`check_injected` on the
    kernel's executed cells.  A no-op outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover — the notebooks always run under IPython
        return
    ip = get_ipython()
    if ip is None:
        return
    _short_tracebacks_for_this_cell(ip)
    check_injected(list(ip.user_ns.get("In", [])))


def _short_tracebacks_for_this_cell(ip) -> None:
    """IPython's ``Minimal`` exception mode until the current cell has run, then the previous mode."""
    previous = ip.InteractiveTB.mode
    ip.InteractiveTB.set_mode("Minimal")

    def restore(*_):
        ip.InteractiveTB.set_mode(previous)
        ip.events.unregister("post_run_cell", restore)

    ip.events.register("post_run_cell", restore)


__all__ = ["assigned_names", "unknown_parameters", "check_injected", "guard"]
