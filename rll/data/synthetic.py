"""The spiral of Appendix A.0.1."""
from __future__ import annotations

import numpy as np
import torch


def make_spiral(n: int, noise: float = 0.75, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The two-spiral data of Appendix A.0.1: t ~ U[0, 4.33π]; the first n // 2 points are
    negatives (−t cos t, t sin t) + U(0, noise)², label 0; the rest positives
    (−t cos t, −t sin t) + U(0, noise)², label 1.  Returns X float32 (n, 2), y int64 (n,)."""
    if n < 0 or noise < 0:
        raise ValueError(f"n and noise must be non-negative, got n={n}, noise={noise}")
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, 4.33 * np.pi, size=n)
    jitter = rng.uniform(0.0, noise, size=(n, 2))
    y = np.zeros(n, np.int64)
    y[n // 2:] = 1
    sign = np.where(y == 0, 1.0, -1.0)
    x = np.stack([-t * np.cos(t), sign * t * np.sin(t)], axis=1) + jitter
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)
