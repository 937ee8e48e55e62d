"""Section 4 (rll.experiments.theory): the classifiers of Theorem 4.2 / 4.4 satisfy Lemma 4.1's
hypotheses at every sample point and are astute with radius r; the contrast MLP is a plain,
deterministic baseline; the notebook's parameters are validated."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from rll.data import make_spiral
from rll.experiments.theory import (
    BinaryDistanceClassifier,
    DistanceClassifier,
    TheoremParams,
    astuteness,
    astuteness_curve,
    astuteness_rows,
    check_theorem_params,
    decision_grid,
    fit_mlp,
    lemma_4_1_certificate,
    lp_norm,
    random_sample,
    sample_separation,
)

PS = [1, 2, math.inf]




@pytest.fixture(scope="module")
def spiral():
    return make_spiral(120, noise=0.75, seed=0)


@pytest.fixture(scope="module")
def sample():
    return random_sample(60, dim=3, num_classes=3, seed=1)


def _brute_force_r(X, y, p):
    best = math.inf
    for i, j in itertools.combinations(range(len(X)), 2):
        if y[i] != y[j]:
            best = min(best, lp_norm((X[i] - X[j]).double()[None], p).item())
    return best / 2


@pytest.mark.parametrize("p", PS)
def test_sample_separation_matches_brute_force(sample, p):
    X, y = sample
    assert sample_separation(X, y, p) == pytest.approx(_brute_force_r(X, y, p), rel=1e-12)


def test_sample_separation_edge_cases():
    X = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    assert sample_separation(X, torch.tensor([0, 0, 0])) == math.inf
    assert sample_separation(X, torch.tensor([0, 1, 1])) == 0.0          # coincident pair
    assert sample_separation(X[:2], torch.tensor([0, 1]), p="inf") == 0.5
    with pytest.raises(ValueError, match="valid choices: 1, 2, 'inf'"):
        sample_separation(X, torch.tensor([0, 1, 1]), p=3)


@pytest.mark.parametrize("p", PS)
def test_certificate_holds_on_random_sample(sample, p):
    X, y = sample
    g = DistanceClassifier(X, y, p=p)
    cert = lemma_4_1_certificate(g, X, y, g.r, n_random=16, steps=10)
    assert cert.holds and cert.holds_margin and cert.holds_lipschitz
    assert (cert.margins >= 2).all()                                    # exactly, no tolerance
    assert cert.lipschitz.max() <= 1 / g.r + 1e-6
    assert cert.lipschitz.max() >= (1 - 1e-9) / g.r                     # the bound is attained


@pytest.mark.parametrize("binary", [False, True])
def test_certificate_holds_on_spiral(spiral, binary):
    X, y = spiral
    g = (BinaryDistanceClassifier if binary else DistanceClassifier)(X, y)
    assert g.r == sample_separation(X, y)
    cert = lemma_4_1_certificate(g, X, y, g.r, n_random=16, steps=10)
    assert cert.holds and (cert.margins >= 2).all()
    assert cert.summary()["ratio * r (needs <= 1)"] <= 1 + 1e-6


def test_certificate_detects_violations(spiral):
    X, y = spiral
    too_big = DistanceClassifier(X, y, r=3 * sample_separation(X, y))
    cert = lemma_4_1_certificate(too_big, X, y, too_big.r, n_random=4, steps=5)
    assert not cert.holds_margin and not cert.holds                     # closest pair: margin 2/3
    assert cert.margins.min().item() == pytest.approx(2 / 3)
    g = DistanceClassifier(X, y)                                        # claim a smaller 1/r
    assert not lemma_4_1_certificate(g, X, y, 2 * g.r, n_random=4, steps=5).holds_lipschitz


@pytest.mark.parametrize("p", PS)
def test_lipschitz_on_random_pairs(sample, p):
    X, y = sample
    g = DistanceClassifier(X, y, p=p)
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(500, 3, generator=gen, dtype=torch.float64) * 1.4 - 0.2
    b = a + (torch.rand(500, 3, generator=gen, dtype=torch.float64) - 0.5) * 4 * g.r
    ratio = (g.scores(a) - g.scores(b)).abs().amax(1) / lp_norm(a - b, p)
    assert ratio.max().item() <= 1 / g.r + 1e-6


@pytest.mark.parametrize("p", PS)
def test_g_classifies_every_training_point(sample, spiral, p):
    for X, y in (sample, spiral):
        g = DistanceClassifier(X, y, p=p)
        assert torch.equal(g(X).argmax(1), y)
        assert torch.equal(g.scores(X).argmin(1), y)
        assert (g.scores(X.double()).gather(1, y[:, None]) == 0).all()  # f_y(x) = 0


def test_pgd_below_r_flips_nothing_and_above_r_does(spiral):
    X, y = spiral
    for g in (DistanceClassifier(X, y), BinaryDistanceClassifier(X, y)):
        assert astuteness(g, X, y, 0.99 * g.r, steps=20, restarts=2) == 1.0
    g = BinaryDistanceClassifier(X, y)
    curve = astuteness_curve(g, X, y, [0.5 * g.r, 0.99 * g.r, 4 * g.r], steps=20, restarts=1)
    assert curve[0] == curve[1] == 1.0 and curve[2] < 1.0               # the attack does bite


def test_binary_f_sign_and_size_at_training_points(spiral):
    """Lemma 4.3's (b) and (c): |f| ≥ 1 and sign f = label (1 ↔ +, 0 ↔ −)."""
    X, y = spiral
    g = BinaryDistanceClassifier(X, y)
    f = g.scores(X)
    assert torch.equal((f > 0).long(), y)
    assert (f.abs() >= 1).all()
    assert f.abs().min().item() == 1.0                                 # at the closest pair


def test_logits_argmax_matches_g_on_the_plane(spiral):
    X, y = spiral
    g2, gC = BinaryDistanceClassifier(X, y), DistanceClassifier(X, y)
    gen = torch.Generator().manual_seed(0)
    z = torch.rand(2000, 2, generator=gen, dtype=torch.float64) * 30 - 15
    f = g2.scores(z)
    assert torch.equal(g2(z).argmax(1), (f > 0).long())
    assert torch.equal(gC(z).argmax(1), gC.scores(z).argmin(1))
    assert torch.equal(gC(z).argmax(1), g2(z).argmax(1))               # same rule for C = 2
    assert g2(X).dtype == torch.float32 and g2(z).dtype == torch.float64


def test_classifier_rejects_bad_samples():
    X = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match="not separated"):
        DistanceClassifier(X, torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="at least once"):
        DistanceClassifier(X, torch.tensor([0, 2, 2]))
    with pytest.raises(ValueError, match="labels must be 0"):
        BinaryDistanceClassifier(X, torch.tensor([0, 1, 2]))


def test_mlp_is_deterministic_and_leaves_the_global_rng_alone(spiral):
    X, y = spiral
    state = torch.get_rng_state()
    a, b = fit_mlp(X, y, epochs=30, seed=3), fit_mlp(X, y, epochs=30, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    c = fit_mlp(X, y, epochs=30, seed=4)
    assert not torch.equal(a[0].weight, c[0].weight)
    assert not a.training and a(X).shape == (len(X), 2)


def test_astuteness_of_a_plain_mlp_is_at_most_its_accuracy(spiral):
    X, y = spiral
    mlp = fit_mlp(X, y, epochs=200)
    clean = (mlp(X).argmax(1) == y).double().mean().item()
    curve = astuteness_curve(mlp, X, y, [0.0, 0.5, 2.0], steps=10, restarts=1)
    assert curve[0] == pytest.approx(clean)
    assert curve[0] >= curve[1] >= curve[2] and curve[2] < clean        # far out, it breaks
    assert mlp.training is False


def test_check_theorem_params():
    params = check_theorem_params(n=40, noise=0.5, seed=1, p="2", mlp_epochs=5,
                                  attack_steps=3, device="cpu")
    assert params == TheoremParams(n=40, noise=0.5, seed=1, p=2.0, mlp_epochs=5,
                                   attack_steps=3, device="cpu")
    assert check_theorem_params().p == math.inf
    for bad, message in [({"noise": -1}, "noise must be a finite number >= 0, got -1"),
                         ({"n": 7}, "n must be an even integer >= 4"),
                         ({"p": "l3"}, "valid choices: 1, 2, 'inf'"),
                         ({"mlp_epochs": 0}, "mlp_epochs must be an integer >= 1"),
                         ({"attack_steps": 2.5}, "attack_steps must be an integer >= 1"),
                         ({"device": "tpu"}, "valid choices: 'cpu', 'cuda', 'cuda:N'")]:
        with pytest.raises(ValueError, match="invalid theorem parameters") as err:
            check_theorem_params(**bad)
        assert message in str(err.value)
    with pytest.raises(ValueError) as err:                              # all problems at once
        check_theorem_params(n=3, noise=-1)
    assert "n must" in str(err.value) and "noise must" in str(err.value)


def test_decision_grid(spiral):
    X, y = spiral
    g = BinaryDistanceClassifier(X, y)
    xx, yy, f = decision_grid(g.scores, (-1, 1), (-2, 2), n=20)
    assert xx.shape == yy.shape == f.shape == (20, 20)
    assert xx[0, 0] == -1 and xx[0, -1] == 1 and yy[-1, 0] == 2
    _, _, logits = decision_grid(g, (-1, 1), (-2, 2), n=20)
    assert logits.shape == (20, 20, 2)
    assert (logits[..., 1] == f).all()
    _, _, v = decision_grid(lambda z: z[:, 0] + z[:, 1], (0, 1), (0, 1), n=5)
    assert v[-1, -1] == 2.0


def test_astuteness_rows_count_what_the_attack_flips():
    """A linear boundary at x₀ = 1.25: attacked within 0.5, only the point at x₀ = 1 (0.25 from it)
    can be pushed across — clean accuracy 1, astuteness 3/4, one flip, at that point."""
    class Boundary(torch.nn.Module):
        def forward(self, x):
            d = x[:, :1] - 1.25
            return torch.cat([-d, d], dim=1)

    X = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    y = torch.tensor([0, 0, 1, 1])
    rows, flipped = astuteness_rows({"linear": Boundary()}, X, y, 0.5, steps=20)
    assert rows["linear"] == {"clean accuracy": 1.0, "astuteness": 0.75, "predictions flipped": 1}
    assert flipped["linear"].tolist() == [False, True, False, False]
