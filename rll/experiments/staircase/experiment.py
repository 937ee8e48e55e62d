"""The Staircase experiment: every method fitted on seeded samples at two sample sizes, its metrics,
the table beside the paper's, natural against AT, the takeaway and the fits' figure."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from rll.experiments.staircase.fit import (
    SplineBasis,
    StaircaseFit,
    adversarial_mse,
    fit_staircase,
    local_lipschitz,
)
from rll.experiments.staircase.params import (
    _MAX_N,
    DEFAULT_METHODS,
    HEAVY_STAIRS,
    TABLE_COLUMNS,
    StaircaseParams,
    _check_int,
    _check_methods,
    _check_problem,
)
from rll.experiments.staircase.problem import (
    _split_seed,
    make_staircase_data,
    staircase_target,
)


def metrics(fit: StaircaseFit, x_train, y_train, x_test, y_test, eps: float = 1 / 3) -> dict:
    """The paper's columns for one fit: train/test MSE, adversarial train/test MSE, test local
    Lipschitz value, the gaps ``test − train`` (standard and adversarial), and
    ``test_mse_rare_part``, the part of the test MSE contributed by test points on the rarely
    sampled stairs (``k ≥ 5``): ``Σ_{rare} (f(x) − y)² / n_test``."""
    out = {"train_mse": float(np.mean((fit(x_train) - y_train) ** 2)),
           "test_mse": float(np.mean((fit(x_test) - y_test) ** 2)),
           "adv_train_mse": adversarial_mse(fit, x_train, y_train, eps),
           "adv_test_mse": adversarial_mse(fit, x_test, y_test, eps),
           "test_lipschitz": local_lipschitz(fit, x_test, eps)}
    out["gap"] = out["test_mse"] - out["train_mse"]
    out["adv_gap"] = out["adv_test_mse"] - out["adv_train_mse"]
    rare = staircase_target(x_test) >= HEAVY_STAIRS
    out["test_mse_rare_part"] = float(((fit(x_test) - y_test) ** 2 * rare).sum() / len(x_test))
    return out


def run_staircase(n: int, methods: Sequence[str] | str = DEFAULT_METHODS, seed: int = 0, *,
                  n_test: int = 10_000, eps: float = 1 / 3, smoothness: float = 0.01, noise: float = 0.1,
                  x_noise: float = 0.005, num_stairs: int = 10, return_fits: bool = False):
    """Fit every method of ``methods`` to one seeded training sample of size ``n`` and score it
    on a seeded test sample of size ``n_test`` (the test sample depends on ``seed`` only).

    Returns a DataFrame, one row per method: ``method`` (spec), ``label``, ``n``, ``seed``,
    the :data:`METRICS` and ``objective``.  With ``return_fits=True`` returns
    ``(table, fits, (x_train, y_train))`` with ``fits`` a dict spec → :class:`StaircaseFit`."""
    n = _check_int("n", n, 1, _MAX_N)
    n_test = _check_int("n_test", n_test, 1, _MAX_N)
    seed = _check_int("seed", seed, 0, 2**63 - 1)
    methods = _check_methods(methods)
    prob = _check_problem(eps=eps, smoothness=smoothness, noise=noise, x_noise=x_noise, num_stairs=num_stairs)
    data = dict(num_stairs=prob["num_stairs"], eps=prob["eps"], noise=prob["noise"], x_noise=prob["x_noise"])
    rng_train, rng_test = _split_seed(seed)
    x_train, y_train = make_staircase_data(n, seed=rng_train, **data)
    x_test, y_test = make_staircase_data(n_test, seed=rng_test, **data)
    basis = SplineBasis(prob["num_stairs"], prob["eps"])
    rows, fits = [], {}
    for spec in methods:
        fit = fit_staircase(x_train, y_train, spec, eps=prob["eps"], smoothness=prob["smoothness"],
                            num_stairs=prob["num_stairs"], basis=basis)
        fits[spec] = fit
        rows.append({"method": spec, "label": fit.label, "n": n, "seed": seed,
                     **metrics(fit, x_train, y_train, x_test, y_test, prob["eps"]), "objective": fit.objective})
    table = pd.DataFrame(rows)
    return (table, fits, (x_train, y_train)) if return_fits else table


def problem_kwargs(params: StaircaseParams) -> dict:
    """The keyword arguments of :func:`run_staircase` that ``params`` fixes."""
    return dict(n_test=params.n_test, eps=params.eps, smoothness=params.smoothness, noise=params.noise,
                x_noise=params.x_noise, num_stairs=params.num_stairs)


def run_settings(params: StaircaseParams) -> pd.DataFrame:
    """All runs of the page: (``n_small`` × ``seeds_small``, ``n_large`` × ``seeds_large``) ×
    methods, one row each, with a ``setting`` column (``small`` / ``large``)."""
    frames = [run_staircase(n, params.methods, seed, **problem_kwargs(params)).assign(setting=setting)
              for setting, n, seeds in (("small", params.n_small, params.seeds_small),
                                        ("large", params.n_large, params.seeds_large))
              for seed in seeds]
    return pd.concat(frames, ignore_index=True)


def staircase_table(results: pd.DataFrame) -> pd.DataFrame:
    """Methods × (setting, metric): the paper's columns averaged over seeds, rows in the order
    the methods were run.  Column groups are headed ``n = …``."""
    order = list(dict.fromkeys(results["label"]))
    groups = []
    for n in dict.fromkeys(results["n"]):
        part = results[results["n"] == n].groupby("label", sort=False)[list(TABLE_COLUMNS)].mean()
        part = part.reindex(order).rename(columns=TABLE_COLUMNS)
        part.columns = pd.MultiIndex.from_product([[f"n = {n}"], part.columns])
        groups.append(part)
    table = pd.concat(groups, axis=1)
    table.index.name = None
    return table


def natural_vs_at(results: pd.DataFrame) -> pd.DataFrame:
    """Per n and seed: the clean test MSE of natural training and of AT, their difference
    (AT − natural), and the parts of each contributed by the rare stairs; needs both
    ``natural`` and ``at`` among the methods run."""
    sub = results[results["method"].isin(["natural", "at"])]
    if set(sub["method"]) != {"natural", "at"}:
        raise ValueError("natural_vs_at needs results for both 'natural' and 'at'")
    wide = sub.pivot_table(index=["n", "seed"], columns="method", values=["test_mse", "test_mse_rare_part"],
                           sort=False)
    out = pd.DataFrame({"natural_test_mse": wide[("test_mse", "natural")], "at_test_mse": wide[("test_mse", "at")],
                        "natural_rare_part": wide[("test_mse_rare_part", "natural")],
                        "at_rare_part": wide[("test_mse_rare_part", "at")]})
    out["at_minus_natural"] = out["at_test_mse"] - out["natural_test_mse"]
    return out.reset_index()


def takeaway(results: pd.DataFrame, noise: float | None = None) -> str:
    """Two or three sentences on what the numbers in ``results`` show — natural vs AT at the
    smallest and the largest n, then robustness and local Lipschitzness at the smallest n —
    computed from ``results``, never typed.  ``noise`` (σ) adds the label-noise floor σ²."""
    cmp = natural_vs_at(results)
    ns = list(dict.fromkeys(results["n"]))
    small, large = ns[0], ns[-1]
    part = cmp[cmp["n"] == small]
    nat, at = part["natural_test_mse"].mean(), part["at_test_mse"].mean()
    first = (f"With n = {small}, adversarial training's clean test MSE averages {at:.4f} against natural "
             f"training's {nat:.4f}")
    if len(part) > 1:
        first += f" (AT higher in {int((part['at_minus_natural'] > 0).sum())} of {len(part)} seeds)"
    first += (f"; the rarely sampled stairs (k ≥ {HEAVY_STAIRS}) alone contribute "
              f"{part['at_rare_part'].mean():.4f} of AT's and {part['natural_rare_part'].mean():.4f} of natural "
              f"training's")
    sentences = [first + "."]
    if large != small:
        part = cmp[cmp["n"] == large]
        nat_l, at_l = part["natural_test_mse"].mean(), part["at_test_mse"].mean()
        floor = f", against a label-noise floor σ² = {noise ** 2:.4f}" if noise is not None else ""
        sentences.append(f"With n = {large} the two are {at_l:.4f} (AT) and {nat_l:.4f} (natural), a relative "
                         f"difference of {(at_l - nat_l) / nat_l:+.2%}{floor}.")
    by = results[results["n"] == small].groupby("method", sort=False)[["adv_test_mse", "test_lipschitz"]].mean()
    sentences.append(f"In exchange, at n = {small} AT's adversarial test MSE is {by.loc['at', 'adv_test_mse']:.4f} "
                     f"(natural: {by.loc['natural', 'adv_test_mse']:.4f}) and its test local Lipschitz value "
                     f"{by.loc['at', 'test_lipschitz']:.3f} (natural: {by.loc['natural', 'test_lipschitz']:.3f}).")
    return " ".join(sentences)


def plot_fits(fits: Sequence[StaircaseFit], x_train, y_train, *, eps: float = 1 / 3, num_stairs: int = 10,
              ax=None, title: str | None = None):
    """The fitted functions over ``[−ε, s−1+ε]`` against the staircase target and the training
    points.  Returns the matplotlib figure."""
    import matplotlib.pyplot as plt  # only the plotting helper needs matplotlib

    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 4.2))
    else:
        fig = ax.figure
    grid = np.linspace(-eps, num_stairs - 1 + eps, 1200)
    ax.plot(grid, staircase_target(grid, eps), color="0.25", lw=1.2, ls="--", label="target f*")
    for fit in fits:
        ax.plot(grid, fit(grid), lw=1.6, label=fit.label)
    ax.scatter(x_train, y_train, s=14, color="k", zorder=5, label=f"training data (n = {len(x_train)})")
    heavy = min(HEAVY_STAIRS, num_stairs)
    if heavy < num_stairs:
        ax.axvspan(heavy - 0.5, num_stairs - 1 + eps, color="0.92", zorder=0, label="rare stairs")
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.set_title(title or "Fitted functions vs the staircase")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig
