"""rll.metrics: accuracies in percent, adversarial accuracy, the Eq. 3 Lipschitz estimate
(checked against the closed form of a linear model) and the table row."""
from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch
import torch.nn as nn
from test_attacks import SmallCNN, gen, mnist_subset, train_mlp

from rll.attacks import linf_ascent
from rll.metrics import (
    accuracy,
    adversarial_accuracy,
    lipschitz_ratios,
    local_lipschitz,
    mt_selection_accuracies,
    per_class_accuracy,
    predictions,
    table_metrics,
)

EPS = 0.1


@pytest.fixture(scope="module")
def data(data_root):
    x_tr, y_tr = mnist_subset(data_root, "train", 1000)
    x_te, y_te = mnist_subset(data_root, "test", 500)
    return x_tr, y_tr, x_te, y_te


@pytest.fixture(scope="module")
def mlp(data):
    x_tr, y_tr, _, _ = data
    return train_mlp(x_tr, y_tr, epochs=3)


# ---------------------------------------------------------------- clean accuracy

def test_accuracy_percent_and_batch_size_independent(data, mlp):
    _, _, x, y = data
    with torch.no_grad():
        want = 100.0 * (mlp(x).argmax(1) == y).double().mean().item()
    assert accuracy(mlp, x, y) == pytest.approx(want)
    assert accuracy(mlp, x, y, batch_size=7) == pytest.approx(want)
    assert 80 < want <= 100           # percent, not a fraction
    pred = predictions(mlp, x, batch_size=64)
    assert pred.dtype == torch.long and pred.shape == y.shape and pred.device == x.device


def test_per_class_accuracy(data, mlp):
    _, _, x, y = data
    pc = per_class_accuracy(mlp, x, y, num_classes=11)
    assert pc.shape == (11,) and math.isnan(pc[10])      # class 10 has no examples
    counts = torch.bincount(y, minlength=10).double()
    overall = (pc[:10] * counts).sum() / counts.sum()
    assert overall.item() == pytest.approx(accuracy(mlp, x, y))


def test_accuracy_mode_restored_and_eval_used():
    model = SmallCNN().train()
    x, y = torch.rand(10, 1, 28, 28), torch.randint(0, 10, (10,))
    a = accuracy(model, x, y)
    assert model.training
    assert a == accuracy(model, x, y)    # eval mode: dropout off, deterministic
    with pytest.raises(TypeError, match="floating-point"):
        accuracy(model, (x * 255).to(torch.uint8), y)


# ---------------------------------------------------------------- adversarial accuracy

def test_adversarial_accuracy_bounds_and_determinism(data, mlp):
    _, _, x, y = data
    x, y = x[:300], y[:300]
    clean = accuracy(mlp, x, y)
    a = adversarial_accuracy(mlp, x, y, eps=0.05, generator=gen(0), batch_size=128)
    b = adversarial_accuracy(mlp, x, y, eps=0.05, generator=gen(0), batch_size=128)
    assert a == b
    assert a <= clean
    mt = adversarial_accuracy(mlp, x, y, eps=0.05, attack="mt", selection="worst", steps=5,
                              generator=gen(0))
    assert mt <= clean
    # attack_kw reach the attack: no start, no steps = clean accuracy
    assert adversarial_accuracy(mlp, x, y, eps=0.05, start="none", steps=0) == clean


def test_mt_selection_accuracies_match_each_selection_alone(data, mlp):
    x, y = data[2][:48], data[3][:48]
    both = mt_selection_accuracies(mlp, x, y, eps=0.05, steps=3, batch_size=16, generator=gen())
    for selection in ("released", "worst"):
        alone = adversarial_accuracy(mlp, x, y, eps=0.05, attack="mt", selection=selection, steps=3, batch_size=16,
                                     generator=gen())
        assert both[selection] == alone, selection
    assert both["worst"] <= both["released"] <= accuracy(mlp, x, y)


def test_adversarial_accuracy_mode_restored_and_choices():
    model = SmallCNN().train()
    x, y = torch.rand(6, 1, 28, 28), torch.randint(0, 10, (6,))
    adversarial_accuracy(model, x, y, eps=EPS, steps=2)
    adversarial_accuracy(model, x, y, eps=EPS, attack="mt", steps=1)
    assert all(m.training for m in model.modules())
    with pytest.raises(ValueError, match="'pgd', 'mt'"):
        adversarial_accuracy(model, x, y, eps=EPS, attack="cw")
    with pytest.raises(ValueError, match="'released', 'worst'"):
        adversarial_accuracy(model, x, y, eps=EPS, attack="mt", selection="first")


# ---------------------------------------------------------------- local Lipschitz (Eq. 3)

SIGNS = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=8)))


def linear_model(weight: torch.Tensor) -> nn.Module:
    lin = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        lin.weight.copy_(weight)
        lin.bias.fill_(0.3)
    return nn.Sequential(nn.Flatten(), lin)


def true_linf_to_l1(weight: torch.Tensor) -> float:
    """sup_δ ‖Wδ‖₁ / ‖δ‖∞ = max over sign vectors s of ‖Ws‖₁ (a convex function's max over
    the cube is at a vertex), brute-forced over all 2^8 of them."""
    return (SIGNS @ weight.T).abs().sum(1).max().item()


def interior_points(n: int = 100) -> torch.Tensor:
    # in [0.3, 0.7]: with ε = 0.1 the box [0, 1] never binds, so the sup is the linear one
    return 0.3 + 0.4 * torch.rand(n, 1, 2, 4, generator=gen(1))


def test_lipschitz_linear_model_rank_one():
    """f(x) = a·(bᵀx) + c: the sup is ‖a‖₁‖b‖₁ and signed ascent has no spurious local
    maximum; the paper-mode estimate (final iterate) is within 10% (it lags because every
    step also pulls the largest coordinate of x′ − x back to shrink the denominator)."""
    g = gen(0)
    weight = torch.randn(3, 1, generator=g) @ torch.randn(1, 8, generator=g)
    true = true_linf_to_l1(weight)
    assert true == pytest.approx((weight[:, 0].abs().sum() * weight[0].abs().sum()
                                  / weight[0, 0].abs()).item(), rel=1e-5)
    model, x = linear_model(weight), interior_points()
    paper = local_lipschitz(model, x, eps=EPS, generator=gen(0))
    released = local_lipschitz(model, x, eps=EPS, mode="released", generator=gen(0))
    print(f"rank-one 3x8: true {true:.4f}  paper {paper:.4f} ({paper / true:.3f})  "
          f"released {released:.4f}")
    assert 0.9 * true <= paper <= true * (1 + 1e-5)
    assert released < 0.5 * paper       # the released update descends the ratio


def test_lipschitz_linear_model_generic():
    """A generic 3×8 W: the estimate is a lower bound of the true value; the best point
    reaches it, but signed ascent on this (in general NP-hard) ∞→1 norm can stop at a local
    maximum for some starts, so the mean is lower (≈ 0.81–0.96 of the truth over seeds)."""
    weight = torch.randn(3, 8, generator=gen(0))
    true = true_linf_to_l1(weight)
    model, x = linear_model(weight), interior_points()
    ratios = lipschitz_ratios(model, x, eps=EPS, generator=gen(0))
    released = local_lipschitz(model, x, eps=EPS, mode="released", generator=gen(0))
    print(f"generic 3x8: true {true:.4f}  paper mean {ratios.mean():.4f} "
          f"({ratios.mean() / true:.3f}), best point {ratios.max():.4f}  released {released:.4f}")
    assert ratios.max() <= true * (1 + 1e-5)
    assert ratios.max() >= 0.99 * true
    assert ratios.mean() >= 0.8 * true
    assert released < ratios.mean()


@pytest.mark.parametrize("mode, step, sign", [("paper", EPS / 5, 1.0), ("released", 0.003, -1.0)])
def test_lipschitz_is_the_ratio_at_the_final_iterate(mode, step, sign):
    """Both modes: start x + 0.001·N(0, I) unprojected (the first gradient taken there), signed
    steps, the ratio at the **final** iterate (the released loop's; the text does not say best
    or final), ascent of ε/5 (paper) or descent of 0.003 (released)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.rand(30, 1, 2, 4, generator=gen(2))
    x[:5] = 0.0                                  # on the box's edge: the start leaves the box

    def ratio(z):
        top = (model(x) - model(z)).abs().sum(1)
        diff = (x - z).flatten(1)
        down = (diff + 1e-6 if mode == "released" else diff).abs().amax(1)
        return top / down

    z = linf_ascent(lambda z: sign * ratio(z), x, eps=EPS, step=step, steps=10, start="normal",
                    project_start=False, generator=gen(4))
    with torch.no_grad():
        want = ratio(z).double()
    got = lipschitz_ratios(model, x, eps=EPS, mode=mode, generator=gen(4))
    torch.testing.assert_close(got, want)


def test_released_lipschitz_is_the_released_loop():
    """An independent re-statement of the released ``estimate_local_lip_v2`` (lolip/utils.py:
    batch 16, x′ = x + 0.001·N(0, I), ten steps x′ ← x′ + 0.003·sign(∇(−mean ratio)), then the
    ε-ball clip and the [0, 1] clamp; Σ ratio / n at the final iterate, logits, l1 over l∞ with
    1e-6 added to x − x′) gives rll's ``mode="released"`` on the same random start, on a small
    CNN (inputs on the box's edge included)."""
    torch.manual_seed(0)
    model = SmallCNN().eval()
    x = torch.rand(40, 1, 28, 28, generator=gen(3))
    x[:4] = 0.0

    def ratio(a, b):
        return (model(a).flatten(1) - model(b).flatten(1)).norm(p=1, dim=1) / \
            ((a - b).flatten(1) + 1e-6).norm(p=float("inf"), dim=1)

    noise = 0.001 * torch.randn(x.shape, generator=gen(5))
    total = 0.0
    for i in range(0, len(x), 16):
        xb, x_adv = x[i:i + 16], (x[i:i + 16] + noise[i:i + 16])
        for _ in range(10):
            x_adv = x_adv.detach().requires_grad_(True)
            loss = -ratio(xb, x_adv).mean()
            loss.backward()
            x_adv = x_adv.detach() + 0.003 * x_adv.grad.sign()
            x_adv = (xb + (x_adv - xb).clamp(-EPS, EPS)).clamp(0, 1)
        with torch.no_grad():
            total += ratio(xb, x_adv).sum().item()
    released = total / len(x)
    assert local_lipschitz(model, x, eps=EPS, mode="released", batch_size=len(x), generator=gen(5)) == \
        pytest.approx(released, rel=1e-5)


def test_lipschitz_constant_model_is_zero():
    model = linear_model(torch.zeros(3, 8))
    x = interior_points(20)
    for mode in ("paper", "released"):
        assert local_lipschitz(model, x, eps=EPS, mode=mode, generator=gen()) < 1e-6


def test_lipschitz_trained_net(data, mlp):
    _, _, x, _ = data
    x = x[:200]
    paper = local_lipschitz(mlp, x, eps=EPS, generator=gen(0), batch_size=64)
    again = local_lipschitz(mlp, x, eps=EPS, generator=gen(0), batch_size=64)
    released = local_lipschitz(mlp, x, eps=EPS, mode="released", generator=gen(0))
    print(f"MLP on MNIST: paper {paper:.2f}  released {released:.2f}")
    assert paper == again
    assert math.isfinite(paper) and 0 < released < paper


def test_lipschitz_mode_restored_and_choices():
    model = SmallCNN().train()
    x = torch.rand(4, 1, 28, 28)
    seen = []
    model.register_forward_pre_hook(lambda m, inp: seen.append(m.training))
    local_lipschitz(model, x, eps=EPS, steps=2)
    assert model.training and seen and not any(seen)
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="'paper', 'released'"):
        local_lipschitz(model, x, eps=EPS, mode="exact")


# ---------------------------------------------------------------- table row

def test_table_metrics_row(data, mlp):
    x_tr, y_tr, x_te, y_te = data
    train, test = (x_tr[:200], y_tr[:200]), (x_te[:200], y_te[:200])
    row = table_metrics(mlp, train, test, eps=EPS, device="cpu", batch_size=128)
    assert set(row) == {"train_acc", "test_acc", "adv_train_acc", "adv_test_acc",
                        "test_lipschitz", "gap", "adv_gap"}
    assert row["gap"] == pytest.approx(row["train_acc"] - row["test_acc"])
    assert row["adv_gap"] == pytest.approx(row["adv_train_acc"] - row["adv_test_acc"])
    assert row["adv_test_acc"] <= row["test_acc"] and row["adv_train_acc"] <= row["train_acc"]
    assert row["test_acc"] == pytest.approx(accuracy(mlp, *test))
    assert row["adv_test_acc"] == adversarial_accuracy(mlp, *test, eps=EPS, generator=gen(0),
                                                       batch_size=128)
    assert row["test_lipschitz"] == local_lipschitz(mlp, test[0], eps=EPS, generator=gen(0),
                                                    batch_size=128)
    assert table_metrics(mlp, train, test, eps=EPS, batch_size=128) == row   # seeded
    with pytest.raises(ValueError, match="'paper', 'released'"):
        table_metrics(mlp, train, test, eps=EPS, lipschitz_mode="max")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_model_on_gpu_inputs_on_cpu(data, mlp):
    """Inputs stay on the CPU, batches go to the model's device; a seeded CPU generator
    gives the same random starts there, so the numbers agree up to float rounding."""
    _, _, x, y = data
    x, y = x[:200], y[:200]
    cpu = adversarial_accuracy(mlp, x, y, eps=0.05, generator=gen(0))
    lip_cpu = local_lipschitz(mlp, x, eps=EPS, generator=gen(0))
    gpu_model = copy.deepcopy(mlp).cuda()
    assert predictions(gpu_model, x).device == x.device
    assert abs(adversarial_accuracy(gpu_model, x, y, eps=0.05, generator=gen(0)) - cpu) <= 1.0
    assert local_lipschitz(gpu_model, x, eps=EPS, generator=gen(0)) == pytest.approx(lip_cpu,
                                                                                   rel=0.05)
    row = table_metrics(mlp, (x, y), (x, y), eps=EPS, device="cuda", batch_size=128)
    assert next(mlp.parameters()).device.type == "cpu"      # moved back afterwards
    assert row["gap"] == 0.0
