"""rll.metrics.lipschitz_check: the exact Eq. 3 maximum on one linear region, against brute force and the
estimators (which must never exceed it)."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn

from rll.metrics.lipschitz_check import (
    estimator_check,
    exact_local_lipschitz,
    one_linear_region,
)


def _mlp(d=8, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(),
                         nn.Linear(12, 4)).double().eval()


def test_exact_value_equals_brute_force_over_the_allowed_vertices():
    model = _mlp()
    x = torch.rand(6, 1, 2, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x[0, 0, 0, :2] = 0.0          # pixels on the box's faces: one-sided directions only
    x[1, 0, 1, 3] = 1.0
    exact = exact_local_lipschitz(model, x)
    for i, xi in enumerate(x):
        jac = torch.autograd.functional.jacobian(lambda z: model(z.unsqueeze(0)).squeeze(0), xi).reshape(4, -1)
        flat = xi.flatten()
        choices = [(0.0, 1.0) if p <= 0 else (-1.0, 0.0) if p >= 1 else (-1.0, 1.0) for p in flat]
        brute = max((jac @ torch.tensor(s, dtype=torch.float64)).abs().sum().item()
                    for s in itertools.product(*choices))
        assert exact[i].item() == pytest.approx(brute, rel=1e-12)


def test_estimators_stay_below_the_exact_value_on_certified_balls():
    model = _mlp()
    x = torch.rand(200, 1, 2, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    eps = 0.01
    certified = one_linear_region(model, x, eps)
    assert 0 < certified.sum() < len(x)
    frame = estimator_check(model, x, eps=eps)
    assert len(frame) == int(certified.sum())
    assert (frame["Eq. 3 / exact"] <= 1 + 1e-9).all() and (frame["released / exact"] <= 1 + 1e-9).all()
    assert frame["Eq. 3 / exact"].median() > frame["released / exact"].median()
    # the ratio at random points of a certified ball never exceeds the exact value either
    xs = x[certified][:20]
    exact = exact_local_lipschitz(model, xs)
    g = torch.Generator().manual_seed(3)
    for _ in range(50):
        z = (xs + eps * (2 * torch.rand(xs.shape, generator=g, dtype=xs.dtype) - 1)).clamp(0, 1)
        with torch.no_grad():
            ratio = (model(xs) - model(z)).abs().sum(1) / (xs - z).flatten(1).abs().amax(1)
        assert (ratio <= exact * (1 + 1e-9)).all()


def test_region_certificate_is_sound():
    """A certified ball has the same ReLU pattern at random points inside it."""
    model = _mlp()
    x = torch.rand(100, 1, 2, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    eps = 0.02
    certified = one_linear_region(model, x, eps)

    def pattern(z):
        h = model[1](model[0](z))
        a = h > 0
        b = model[3](model[2](h)) > 0
        return torch.cat([a, b], 1)

    g = torch.Generator().manual_seed(5)
    xs = x[certified]
    for _ in range(20):
        z = (xs + eps * (2 * torch.rand(xs.shape, generator=g, dtype=xs.dtype) - 1)).clamp(0, 1)
        assert torch.equal(pattern(z), pattern(xs))


def test_only_piecewise_linear_sequentials():
    with pytest.raises(ValueError, match="Linear/ReLU/Flatten"):
        exact_local_lipschitz(nn.Sequential(nn.Flatten(), nn.Linear(4, 2), nn.Tanh()), torch.rand(1, 4))


def test_small_mlp_on_mnist_has_certified_balls(data_root):
    from rll import data as rdata
    from rll.metrics.lipschitz_check import small_mlp

    train = rdata.load_dataset("mnist", "train", root=data_root)
    test = rdata.load_dataset("mnist", "test", root=data_root)
    model = small_mlp(rdata.to_float(train.images[:2000]), train.labels[:2000], epochs=5)
    x = rdata.to_float(test.images[:200])
    assert (model(x).argmax(1) == test.labels[:200]).float().mean() > 0.8
    frame = estimator_check(model, x, eps=0.002)
    assert len(frame) >= 10 and (frame["Eq. 3 / exact"] <= 1 + 1e-6).all()
