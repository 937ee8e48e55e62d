"""The Staircase's data: the stairs' weights, the target ⌊x + 1/2⌋, and seeded samples."""
from __future__ import annotations

import numpy as np

from rll.experiments.staircase.params import HEAVY_STAIRS, HEAVY_WEIGHT, LIGHT_WEIGHT


def stair_weights(num_stairs: int = 10) -> np.ndarray:
    """The categorical law of the stairs: weight 1/5 on each of the first five stairs, 0.01 on
    each other one, normalised to sum to 1 (Raghunathan et al.'s released code)."""
    w = np.r_[np.full(min(HEAVY_STAIRS, num_stairs), HEAVY_WEIGHT),
              np.full(max(num_stairs - HEAVY_STAIRS, 0), LIGHT_WEIGHT)]
    return w / w.sum()


def staircase_target(x, eps: float = 1 / 3) -> np.ndarray:
    """The noiseless target ``f*(x) = ⌊x + 1/2⌋``: equal to ``k`` on the whole stair
    ``{k − ε, k, k + ε}`` (``eps`` < 1/2; it does not enter the formula, only its validity)."""
    return np.floor(np.asarray(x, dtype=float) + 0.5)


def make_staircase_data(n: int, *, seed: int | np.random.Generator = 0, num_stairs: int = 10,
                        eps: float = 1 / 3, noise: float = 0.1, x_noise: float = 0.005
                        ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples ``(x, y)`` of the Staircase (float64 arrays of shape ``(n,)``).

    Stair ``k ~ stair_weights(num_stairs)``; ``x = k`` with probability ``1 − x_noise``, else
    ``k − eps`` or ``k + eps`` (½ each); ``y = k + noise·N(0, 1)``.  ``seed`` is an integer or a
    ``numpy.random.Generator``; the same integer always gives the same sample."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    k = rng.choice(num_stairs, size=n, p=stair_weights(num_stairs)).astype(float)
    y = k + noise * rng.standard_normal(n)
    shifted = rng.random(n) < x_noise
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return k + shifted * sign * eps, y


def _split_seed(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the training and the test sample of one seed (so the test
    set does not depend on n)."""
    train, test = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(train), np.random.default_rng(test)
