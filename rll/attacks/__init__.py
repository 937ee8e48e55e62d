"""Attacks in the l∞ threat model on [0, 1] pixel space.

Threat model (Section 2 and 5.1 of the paper): an adversary may move an input x to any
x′ ∈ B∞(x, ε) ∩ [0, 1]^d, with ε = 0.1 (MNIST), 0.031 (SVHN, CIFAR-10) and 0.005
(Restricted ImageNet).  Inputs are never normalised.

Geometry (random start, signed step, projection) lives in one loop, :func:`linf_ascent`;
every attack, the TRADES inner maximisation and the Lipschitz estimate of
:mod:`rll.metrics` are that loop with a different per-example objective.

* :func:`pgd` — the paper's evaluation attack: PGD-10 with step ε/5 and a uniform random
  start (Section 5.1, Madry et al. [32]); optional restarts.
* :func:`multi_targeted` — the multi-targeted attack of Appendix D.1 (Gowal et al. [18]):
  one targeted PGD per class, 20 steps of ε/10, then one example kept per input, chosen as
  the released code chose it (``selection="released"``) or as the per-example worst case
  (``selection="worst"``).

Every attack runs the model in eval mode by default and restores the caller's train/eval
flags afterwards (:func:`model_mode`), never modifies its inputs, and returns a tensor with
the input's shape, dtype and device inside the ε-ball and [0, 1].
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Literal

import torch
import torch.nn.functional as F

Objective = Callable[[torch.Tensor], torch.Tensor]
Start = Literal["uniform", "normal", "none"]
Mode = Literal["eval", "train", "keep"]

STARTS = ("uniform", "normal", "none")
MODES = ("eval", "train", "keep")
KEEPS = ("last", "best")
SELECTIONS = ("released", "worst")
DIRECTIONS = ("sign", "linf")
PROJECTIONS = ("clip", "rescale")


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


@contextlib.contextmanager
def model_mode(model: torch.nn.Module, mode: Mode) -> Iterator[None]:
    """Put ``model`` (and every submodule) in ``mode`` for the block, then restore each
    submodule's own ``training`` flag exactly as it was.

    ``mode`` is ``"eval"`` (batch-norm running statistics, dropout off), ``"train"`` or
    ``"keep"`` (leave the flags alone).

    >>> with model_mode(model, "eval"):
    ...     logits = model(x)
    """
    if mode == "keep":
        yield
        return
    _check_choice("mode", mode, ("eval", "train", "keep"))
    saved = [(m, m.training) for m in model.modules()]
    model.train(mode == "train")
    try:
        yield
    finally:
        for m, flag in saved:
            m.training = flag


def project_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: float,
                 bounds: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """Project onto B∞(x, ε) ∩ [lo, hi]^d (the box only when ``bounds`` is given)."""
    x_adv = torch.max(torch.min(x_adv, x + eps), x - eps)
    if bounds is not None:
        x_adv = x_adv.clamp(*bounds)
    return x_adv


def rescale_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: float,
                 bounds: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """The released LLR's projection: clamp x′ to ``bounds``, then *rescale* each example's
    δ = x′ − x so that ‖δ‖∞ ≤ ε (``torch.renorm(δ, p=∞, dim=0, maxnorm=ε)``: δ ← δ·ε/(‖δ‖∞ + 1e-7)
    where ‖δ‖∞ > ε).  Unlike :func:`project_linf`, which clips each pixel to the ball, it
    shrinks every pixel of an example that left the ball by the same factor."""
    if bounds is not None:
        x_adv = x_adv.clamp(*bounds)
    return x + torch.renorm(x_adv - x, p=float("inf"), dim=0, maxnorm=eps)


def random_start(x: torch.Tensor, eps: float, start: Start,
                 bounds: tuple[float, float] | None = (0.0, 1.0),
                 generator: torch.Generator | None = None, project: bool = True) -> torch.Tensor:
    """Starting point of the ascent: ``uniform`` in the ε-ball (PGD, Madry et al.),
    ``normal`` x + 0.001·N(0, I) (TRADES, LLR and the Lipschitz estimate), or ``none`` (x
    itself); projected onto the ε-ball and ``bounds`` unless ``project=False`` (the released
    TRADES, LLR and Lipschitz loops take their first gradient at the unprojected start).

    With a ``generator`` the noise is drawn on the generator's device and then moved to
    ``x``'s, so a seeded CPU generator gives the same starts on every device.
    """
    _check_choice("start", start, STARTS)
    if start == "none":
        return x.clone()
    where = generator.device if generator is not None else x.device
    if start == "uniform":
        noise = torch.rand(x.shape, generator=generator, device=where, dtype=x.dtype) * 2 - 1
        noise = noise * eps
    else:
        noise = 0.001 * torch.randn(x.shape, generator=generator, device=where, dtype=x.dtype)
    start_point = x + noise.to(x.device)
    return project_linf(start_point, x, eps, bounds) if project else start_point


def _step_direction(grad: torch.Tensor, direction: str,
                    generator: torch.Generator | None) -> torch.Tensor:
    """``sign``: sign ∇.  ``linf``: ∇ / ‖∇‖∞ per example, and where ∇ = 0 a standard normal
    draw instead (the released LLR's "avoid nan" rule), so only the largest-gradient pixels
    move by a full step."""
    if direction == "sign":
        return grad.sign()
    norms = grad.flatten(1).abs().amax(1).view(-1, *([1] * (grad.dim() - 1)))
    out = grad / norms
    zero = norms.flatten() == 0
    if zero.any():
        where = generator.device if generator is not None else grad.device
        noise = torch.randn(out[zero].shape, generator=generator, device=where, dtype=grad.dtype)
        out[zero] = noise.to(grad.device)
    return out


def linf_ascent(objective: Objective, x: torch.Tensor, *, eps: float, step: float, steps: int,
                start: Start = "uniform", bounds: tuple[float, float] | None = (0.0, 1.0),
                keep: Literal["last", "best"] = "last",
                generator: torch.Generator | None = None,
                direction: Literal["sign", "linf"] = "sign",
                projection: Literal["clip", "rescale"] = "clip",
                project_start: bool = True) -> torch.Tensor:
    """Signed-gradient ascent of a per-example ``objective`` inside B∞(x, ε) ∩ [0, 1]^d.

    x⁽ᵗ⁺¹⁾ = Π_{B∞(x,ε)∩[0,1]^d}( x⁽ᵗ⁾ + step · sign ∇ₓ Σᵢ objective(x⁽ᵗ⁾)ᵢ )

    (the defaults; the released LLR loop instead steps along ∇/‖∇‖∞ and rescales, see
    ``direction`` and ``projection``).

    Args:
        objective: maps a batch (B, …) to B values to maximise (per example, no reduction).
            To *minimise* something (a targeted attack), pass its negation.
        x: clean inputs (B, …); never modified.
        eps: l∞ radius ε ≥ 0.
        step: step size (PGD: ε/5).
        steps: number of signed steps (PGD: 10).
        start: ``"uniform"`` (default), ``"normal"`` or ``"none"``; see :func:`random_start`.
        bounds: pixel box, default (0, 1); ``None`` for no box.
        keep: ``"last"`` (default; the final iterate, the paper's convention) or ``"best"``
            (per example, the iterate with the largest objective, start and final included).
        generator: optional ``torch.Generator`` for the random start (and ``linf``'s
            zero-gradient draws).
        direction: ``"sign"`` (default; sign ∇, every pixel moves by ``step``) or
            ``"linf"`` (∇/‖∇‖∞ per example, the released LLR's step; see :func:`_step_direction`).
        projection: ``"clip"`` (default; :func:`project_linf`) or ``"rescale"`` (the
            released LLR's clamp-then-renorm, :func:`rescale_linf`).
        project_start: project the random start before the first gradient (default True);
            the released TRADES, LLR and Lipschitz loops do not.

    Returns the adversarial batch (same shape, dtype, device as ``x``), detached.
    Gradients with respect to the model's parameters are not accumulated.

    >>> x_adv = linf_ascent(lambda z: F.cross_entropy(model(z), y, reduction="none"),
    ...                     x, eps=0.1, step=0.02, steps=10)
    """
    if eps < 0 or step < 0 or steps < 0:
        raise ValueError(f"eps, step and steps must be non-negative (got {eps}, {step}, {steps})")
    _check_choice("keep", keep, KEEPS)
    _check_choice("direction", direction, DIRECTIONS)
    _check_choice("projection", projection, PROJECTIONS)
    project = project_linf if projection == "clip" else rescale_linf
    x = x.detach()
    x_adv = random_start(x, eps, start, bounds, generator, project=project_start)
    best, best_val = None, None
    for _ in range(steps):
        x_adv.requires_grad_(True)
        with torch.enable_grad():
            values = objective(x_adv)
            (grad,) = torch.autograd.grad(values.sum(), x_adv)
        if keep == "best":
            best, best_val = _keep_best(best, best_val, x_adv.detach(), values.detach())
        x_adv = project(x_adv.detach() + step * _step_direction(grad, direction, generator), x, eps, bounds)
    if steps == 0 and not project_start:
        x_adv = project(x_adv, x, eps, bounds)   # the result always lies in the ball and the box
    if keep == "best":
        with torch.no_grad():
            values = objective(x_adv)
        best, _ = _keep_best(best, best_val, x_adv, values)
        return best
    return x_adv.detach()


def _keep_best(best, best_val, cand, cand_val):
    if best is None:
        return cand.clone(), cand_val.clone()
    better = cand_val > best_val
    best[better] = cand[better]
    best_val = torch.where(better, cand_val, best_val)
    return best, best_val


def _check_batch(x: torch.Tensor, y: torch.Tensor) -> None:
    if not torch.is_floating_point(x):
        raise TypeError(f"x must be a floating-point tensor in [0, 1] (got {x.dtype}); "
                        "convert uint8 images with rll.data.to_float")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have shape ({x.shape[0]},), got {tuple(y.shape)}")


def _margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """max_{k≠y} f_k − f_y per example (> 0 ⇔ misclassified, ties aside)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
    return other - true


def pgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
        step: float | None = None, steps: int = 10, start: Start = "uniform",
        keep: Literal["last", "best"] = "last", mode: Mode = "eval",
        bounds: tuple[float, float] | None = (0.0, 1.0),
        generator: torch.Generator | None = None, restarts: int = 1) -> torch.Tensor:
    """Untargeted l∞ PGD (Madry et al. [32]; the paper's evaluation attack, Section 5.1).

    Maximises the cross-entropy CE(f(x′), y) over x′ ∈ B∞(x, ε) ∩ [0, 1]^d with ``steps``
    signed steps of size ``step`` from a uniform random start and returns the final iterate
    — exactly the paper's PGD-10 with the defaults.

    Args:
        model: classifier returning logits (B, C).
        x: inputs (B, …), floating point in [0, 1]; never modified.
        y: true labels (B,), int64.
        eps: l∞ radius ε (MNIST 0.1, SVHN/CIFAR-10 0.031, Restricted ImageNet 0.005).
        step: step size, default ε/5.
        steps: number of steps, default 10.
        start: ``"uniform"`` (default) in the ε-ball, ``"normal"`` or ``"none"``.
        keep: ``"last"`` (default, the paper's) or ``"best"`` iterate by loss, per example.
        mode: model mode during the attack: ``"eval"`` (default; the paper's evaluation),
            ``"train"`` (what the released adversarial training did) or ``"keep"``.
            The caller's own flags are restored afterwards.
        bounds: pixel box, default (0, 1).
        generator: optional ``torch.Generator`` for the random starts (reproducibility).
        restarts: number of random restarts, default 1 (the paper's). With more, each
            example keeps the restart that misclassifies it (the first that does, or, among
            those that do, the one with the highest loss) or else the one with the highest
            cross-entropy.

    Returns ``x_adv`` with ``x``'s shape, dtype and device.

    >>> x_adv = pgd(model, x, y, eps=0.1)   # PGD-10, step 0.02: the paper's MNIST attack
    >>> acc = (model(x_adv).argmax(1) == y).float().mean()
    """
    _check_batch(x, y)
    _check_choice("mode", mode, MODES)
    if restarts < 1:
        raise ValueError(f"restarts must be >= 1, got {restarts}")
    step = eps / 5 if step is None else step

    def objective(z: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(z), y, reduction="none")

    with model_mode(model, mode):
        best = linf_ascent(objective, x, eps=eps, step=step, steps=steps, start=start,
                           bounds=bounds, keep=keep, generator=generator)
        if restarts == 1:
            return best
        with torch.no_grad():
            logits = model(best)
            best_loss = F.cross_entropy(logits, y, reduction="none")
            best_wrong = logits.argmax(1) != y
        for _ in range(restarts - 1):
            cand = linf_ascent(objective, x, eps=eps, step=step, steps=steps, start=start,
                               bounds=bounds, keep=keep, generator=generator)
            with torch.no_grad():
                logits = model(cand)
                loss = F.cross_entropy(logits, y, reduction="none")
                wrong = logits.argmax(1) != y
            better = (wrong & ~best_wrong) | ((wrong == best_wrong) & (loss > best_loss))
            best[better] = cand[better]
            best_loss = torch.where(better, loss, best_loss)
            best_wrong = best_wrong | wrong
        return best


def multi_targeted(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                   step: float | None = None, steps: int = 20, num_classes: int | None = None,
                   selection: Literal["released", "worst"] = "released", mode: Mode = "eval",
                   start: Start = "uniform", bounds: tuple[float, float] | None = (0.0, 1.0),
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Multi-targeted l∞ attack (Gowal et al. [18]; the paper's Appendix D.1, Tables 9–14).

    For every class j ≠ y a targeted PGD minimises CE(f(x′), j) — signed ascent of
    −CE(f(x′), j) — over x′ ∈ B∞(x, ε) ∩ [0, 1]^d: ``steps`` steps (default 20) of size
    ``step`` (default ε/10) from a uniform random start, final iterate.  One example per
    input is then kept:

    * ``selection="released"`` (default; what the paper's numbers used): the target j ≠ y
      with the largest score softmax(f(x′_j))_j − softmax(f(x))_y.  This chooses by score,
      not by misclassification, so an input may be counted robust although another target's
      example fools the model.
    * ``selection="worst"``: the per-example worst case — the first target, in class order,
      whose example is misclassified; if none is, the target with the largest margin
      max_{k≠y} f_k(x′) − f_y(x′).  Never weaker than ``"released"`` for the same examples.

    The per-target runs are batched (one :func:`linf_ascent` call per target on the inputs
    whose label is not that target); the ``generator`` is consumed in class order, so two
    calls with equally seeded generators produce the same per-target examples whatever the
    selection.

    Args:
        model: classifier returning logits (B, C).
        x: inputs (B, …), floating point in [0, 1]; never modified.
        y: true labels (B,), int64.
        eps: l∞ radius ε.
        step: step size, default ε/10.
        steps: steps per target, default 20.
        num_classes: number of classes C; default: read off the model's output.
        selection: ``"released"`` (default) or ``"worst"``.
        mode: model mode during the attack, ``"eval"`` (default), ``"train"`` or ``"keep"``;
            the caller's flags are restored afterwards.
        start: random start, default ``"uniform"`` in the ε-ball.
        bounds: pixel box, default (0, 1).
        generator: optional ``torch.Generator`` for the random starts.

    Returns ``x_adv`` with ``x``'s shape, dtype and device (``x`` itself, copied, for an
    input when there is no other class).

    >>> x_adv = multi_targeted(model, x, y, eps=0.1, selection="worst")
    """
    _check_choice("selection", selection, SELECTIONS)
    return multi_targeted_selections(model, x, y, eps=eps, step=step, steps=steps, num_classes=num_classes,
                                     selections=(selection,), mode=mode, start=start, bounds=bounds,
                                     generator=generator)[selection]


def multi_targeted_selections(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                              step: float | None = None, steps: int = 20, num_classes: int | None = None,
                              selections: tuple[str, ...] = SELECTIONS, mode: Mode = "eval",
                              start: Start = "uniform", bounds: tuple[float, float] | None = (0.0, 1.0),
                              generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """:func:`multi_targeted` with several selections applied to **one** set of per-target
    examples: ``{selection: x_adv}``.  The attack's cost is the per-target ascent, so comparing
    the released selection with the per-example worst case this way costs one attack, and the
    difference between the two is due to the selection alone."""
    _check_batch(x, y)
    _check_choice("mode", mode, MODES)
    for selection in selections:
        _check_choice("selection", selection, SELECTIONS)
    step = eps / 10 if step is None else step
    x = x.detach()
    with model_mode(model, mode):
        with torch.no_grad():
            clean_logits = model(x)
        if num_classes is None:
            num_classes = clean_logits.shape[1]
        clean_prob_y = clean_logits.softmax(1).gather(1, y[:, None]).squeeze(1)
        best = {s: x.clone() for s in selections}
        best_score = {s: torch.full((x.shape[0],), float("-inf"), device=x.device) for s in selections}
        found = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        for j in range(num_classes):
            idx = (y != j).nonzero().squeeze(1)
            if idx.numel() == 0:
                continue
            xs, ys = x[idx], y[idx]
            target = torch.full_like(ys, j)

            def objective(z: torch.Tensor, target=target) -> torch.Tensor:
                return -F.cross_entropy(model(z), target, reduction="none")

            cand = linf_ascent(objective, xs, eps=eps, step=step, steps=steps, start=start,
                               bounds=bounds, keep="last", generator=generator)
            with torch.no_grad():
                logits = model(cand)
            for selection in selections:
                if selection == "released":
                    score = logits.softmax(1)[:, j] - clean_prob_y[idx]
                    better = score > best_score[selection][idx]
                else:
                    wrong = logits.argmax(1) != ys
                    score = _margin(logits, ys)
                    prev_found = found[idx]
                    better = ~prev_found & (wrong | (score > best_score[selection][idx]))
                    found[idx] = prev_found | wrong
                take = idx[better]
                best[selection][take] = cand[better]
                best_score[selection][take] = score[better].to(best_score[selection].dtype)
    return best


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
