"""AutoAttack (Croce & Hein, 2020) through torchattacks 3.5.1: its components and its standard
version, and a named fix when torchattacks is missing."""
from __future__ import annotations

import torch

from rll.attacks.steps import _check_batch, _check_choice, model_mode

#: AutoAttack configurations (Croce & Hein, 2020) by name: their components, in order.
#: ``standard`` is the reference AutoAttack's standard version; ``apgd`` the cheaper
#: configuration the tables use (APGD-CE and APGD-DLR, one restart each).
AUTOATTACK_VERSIONS: dict[str, tuple[str, ...]] = {
    "standard": ("apgd-ce", "apgd-t", "fab-t", "square"),
    "apgd": ("apgd-ce", "apgd-dlr"),
}


#: The white-box components; a ``square`` success where all of these failed hints at masked gradients.
WHITE_BOX = ("apgd-ce", "apgd-dlr", "apgd-t", "fab-t")


AUTOATTACK_STEPS = 100        # APGD, APGD-T and FAB-T iterations of the reference standard version


AUTOATTACK_QUERIES = 5000     # Square's query budget


#: How to install the library AutoAttack runs on.  Not a pip extra of rll: torchattacks 3.5.1
#: declares an old ``requests`` and ``torchvision``, and a torchvision from the registry pulls its
#: own (CUDA) torch and cannot import beside the CPU one, so it is installed without them; its
#: AutoAttack components import neither.
TORCHATTACKS_FIX = "pip install --no-deps torchattacks==3.5.1"


def require_torchattacks():
    """The ``torchattacks`` module, or ``ImportError`` naming the fix (:data:`TORCHATTACKS_FIX`)."""
    try:
        import torchattacks
    except ImportError as err:
        raise ImportError(f"AutoAttack (attacks 'aa-apgd' and 'aa') needs the package torchattacks, which is not "
                          f"installed: {TORCHATTACKS_FIX} (--no-deps: its declared dependencies would replace "
                          "the CPU torch)") from err
    return torchattacks


def autoattack_component(name: str, model: torch.nn.Module, *, eps: float, num_classes: int = 10,
                         seed: int = 0):
    """One AutoAttack component as a ``torchattacks`` attack, l∞, configured as the reference
    AutoAttack's standard version (Croce & Hein, 2020; ``fra31/auto-attack``): APGD-CE and
    APGD-DLR with 100 iterations and one restart, APGD-T and FAB-T with 100 iterations over the
    C − 1 most likely other classes, Square with 5000 queries (p_init 0.8).

    ``torchattacks.AutoAttack(version="standard")`` itself runs its gradient components with
    the library's default of 10 iterations, ten times fewer than the reference; we build the
    components ourselves so the name "standard" means the reference's budget.

    ``torchattacks`` (installed with ``--no-deps``; it needs no torchvision for these) is
    imported here, not at module level.
    """
    torchattacks = require_torchattacks()
    common = dict(norm="Linf", eps=eps, seed=seed)
    if name == "apgd-ce":
        return torchattacks.APGD(model, steps=AUTOATTACK_STEPS, n_restarts=1, loss="ce", **common)
    if name == "apgd-dlr":
        return torchattacks.APGD(model, steps=AUTOATTACK_STEPS, n_restarts=1, loss="dlr", **common)
    if name == "apgd-t":
        return torchattacks.APGDT(model, steps=AUTOATTACK_STEPS, n_restarts=1, n_classes=num_classes, **common)
    if name == "fab-t":
        return torchattacks.FAB(model, steps=AUTOATTACK_STEPS, n_restarts=1, multi_targeted=True,
                                n_classes=num_classes, **common)
    if name == "square":
        return torchattacks.Square(model, n_queries=AUTOATTACK_QUERIES, n_restarts=1, p_init=0.8, **common)
    valid = sorted({c for cs in AUTOATTACK_VERSIONS.values() for c in cs})
    raise ValueError(f"unknown AutoAttack component {name!r}; valid choices: {', '.join(valid)}")


def autoattack(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
               version: str = "standard", seed: int = 0,
               num_classes: int | None = None) -> dict[str, torch.Tensor]:
    """AutoAttack (Croce & Hein, 2020), l∞: ``{component: x_adv}`` for every component of
    ``version`` (:data:`AUTOATTACK_VERSIONS`), each run on **every** input.

    The reference AutoAttack runs its components one after another, each only on the inputs
    the previous ones left robust; running each on all inputs costs more but gives each
    component's own robust accuracy and shows which attack breaks which example (a Square
    success where every white-box attack failed is the classic sign of masked gradients).
    The per-example worst case over the components — an example counts as robust only if
    every component's example is classified correctly — is the AutoAttack robust accuracy,
    identical to the sequential run's for the same component outputs.  The caller's global
    random-number state is left as it was (torchattacks reseeds it per component).

    Args:
        model: classifier returning logits; run in eval mode (the caller's flags restored).
        x: inputs (B, …) in [0, 1]; never modified.
        y: labels (B,).
        eps: l∞ radius ε.
        version: ``"standard"`` (APGD-CE, APGD-T, FAB-T, Square) or ``"apgd"`` (APGD-CE,
            APGD-DLR).
        seed: seed of every component's random starts (torchattacks' ``seed``).
        num_classes: C, default read off the model's output.

    >>> advs = autoattack(model, x, y, eps=0.1, version="apgd")
    >>> robust = torch.stack([model(a).argmax(1) == y for a in advs.values()]).all(0)
    """
    _check_batch(x, y)
    _check_choice("version", version, tuple(AUTOATTACK_VERSIONS))
    x = x.detach()
    # torchattacks reseeds the global generators with each component's seed: keep that inside
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []), model_mode(model, "eval"):
        if num_classes is None:
            with torch.no_grad():
                num_classes = model(x[:1]).shape[1]
        out = {}
        for name in AUTOATTACK_VERSIONS[version]:
            attack = autoattack_component(name, model, eps=eps, num_classes=num_classes, seed=seed)
            out[name] = attack(x, y).detach().to(x.dtype)
        return out
