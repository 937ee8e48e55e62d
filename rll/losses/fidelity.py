"""The two readings of the paper a loss can follow, ``paper`` and ``released``, and the revisions of
what they mean: which stored records a later revision made stale."""
from __future__ import annotations

from typing import Callable, Literal

Fidelity = Literal["paper", "released"]


FIDELITIES = ("paper", "released")


#: Version of what the two fidelities mean, stored in every record's provenance (records
#: without it were trained under revision 1).  Each revision after the first names the runs it
#: changed (:data:`REVISIONS`); a record of an older revision stays current when no later
#: revision touched its configuration (:func:`is_current_revision`).
FIDELITY_REVISION = 3


def _paper_gr_default_h(config: dict) -> bool:
    return (config.get("method") == "gr" and config.get("fidelity") == "paper"
            and (config.get("params") or {}).get("h") is None)


#: Revision → (what it changed, which configurations it changed).
REVISIONS: dict[int, tuple[str, Callable[[dict], bool]]] = {
    2: ("the corrections of 2026-12: AT/RST attack in train mode and the released LLR step in both fidelities, "
        "the appendix's l2 GR direction in paper mode, the Lipschitz estimate's final iterate", lambda config: True),
    3: ("paper-fidelity GR takes the released code's finite-difference step h = 1 where the paper's text gives none "
        "(it was the public implementation's 0.01, which did not train stably at the paper's learning rate on all "
        "60 000 MNIST images)", _paper_gr_default_h),
}


def is_current_revision(revision: int | None, config: dict) -> bool:
    """Whether a run of ``config`` made under ``revision`` (None: 1) means what the current
    fidelities mean: no later revision changed its configuration."""
    revision = 1 if revision is None else int(revision)
    return all(not changed(config) for r, (_, changed) in REVISIONS.items() if r > revision)


def is_current(record: dict | None) -> bool:
    """Whether ``record`` was made under the current meaning of the fidelities
    (:data:`rll.losses.FIDELITY_REVISION`; records without one are revision 1): no later revision
    changed its configuration (:func:`rll.losses.is_current_revision`)."""
    return record is not None and is_current_revision(record.get("provenance", {}).get("fidelity_revision"),
                                                              record["config"])
