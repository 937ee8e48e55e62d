"""rll.losses: each objective against an independent evaluation of its formula (Appendix
A.0.2), the reductions, the released-code differences, and back-propagation on the real nets.

Where a loss has an inner maximisation, the formula tests replace it (monkeypatch) with a fixed
point and record how it was called, so the outer formula and the attack's settings are checked
separately; the real attack loop is exercised by the mode and back-propagation tests."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import rll.losses as L
from rll.attacks import linf_ascent
from rll.losses import LOSSES, METHOD_PARAMS, get_loss
from rll.losses.common import _replay_point
from rll.models import build_model

EPS = 0.1
B = 4



class Tiny(nn.Module):
    """A small conv net on 1×6×6 inputs that records its training flag at every forward."""

    def __init__(self, act=nn.Tanh, classes=3, dropout=0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3), act(), nn.Flatten(),
                                 *([nn.Dropout(dropout)] if dropout else []), nn.Linear(64, classes))
        self.trace: list[bool] = []

    def forward(self, x):
        self.trace.append(self.training)
        return self.net(x)


@pytest.fixture
def tiny():
    return Tiny().double().train()


@pytest.fixture
def batch():
    x = torch.rand(B, 1, 6, 6, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 1])
    return x, y


def _ce(model, x, y):
    return F.cross_entropy(model(x), y, reduction="none")


def _red(v, fidelity):
    return v.sum() if fidelity == "released" else v.mean()


def _grads(model, loss):
    params = [p for p in model.parameters()]
    return torch.autograd.grad(loss, params, allow_unused=True)


def _assert_same_grads(model, a, b, **tol):
    for ga, gb in zip(_grads(model, a), _grads(model, b)):
        torch.testing.assert_close(ga, gb, **tol)


class FakeAscent:
    """Stands in for an inner maximisation: records the call, returns a fixed point."""

    def __init__(self, point, model=None):
        self.point, self.model, self.calls = point, model, []

    def __call__(self, *args, **kw):
        self.calls.append((args, kw, None if self.model is None else self.model.training))
        return self.point.clone()


def _fixed_point(x):
    g = torch.Generator().manual_seed(7)
    noise = (torch.rand(x.shape, generator=g, dtype=x.dtype) * 2 - 1) * EPS
    return (x + noise).clamp(0, 1)


# ----------------------------------------------------------------------------- registry

def test_registry():
    assert set(LOSSES) == {"natural", "gr", "llr", "at", "rst", "trades"}
    assert set(METHOD_PARAMS) == set(LOSSES)
    assert METHOD_PARAMS["rst"]["lam"] == 1.0
    assert METHOD_PARAMS["trades"]["beta"] == 1.0
    assert METHOD_PARAMS["llr"]["lam"] == 4.0 and METHOD_PARAMS["llr"]["mu"] == 3.0
    assert {"beta", "h"} <= set(METHOD_PARAMS["gr"])
    assert get_loss("trades") is L.trades_loss
    with pytest.raises(ValueError, match="natural.*trades"):
        get_loss("mart")


def test_resolve_params_fills_defaults():
    assert L.resolve_params("natural", eps=0.1) == {}
    assert L.resolve_params("at", eps=0.1) == {"steps": 10, "step": pytest.approx(0.02)}
    assert L.resolve_params("trades", eps=0.031, beta=6.0) == {
        "beta": 6.0, "steps": 10, "step": pytest.approx(0.0062)}
    assert L.resolve_params("llr", eps=0.1)["step"] == pytest.approx(0.05)
    # the text gives no h: paper fidelity takes the released code's (fidelity revision 3)
    assert L.resolve_params("gr", eps=0.1)["h"] == 1.0
    assert L.resolve_params("gr", eps=0.1, fidelity="released")["h"] == 1.0
    assert L.resolve_params("gr", eps=0.1, fidelity="released", h=0.5)["h"] == 0.5
    assert L.resolve_params("rst", eps=0.1, step=0.01, lam=2)["step"] == 0.01
    with pytest.raises(ValueError, match="choose one of natural"):
        L.resolve_params("mart", eps=0.1)


def test_unknown_parameter_and_fidelity_raise(tiny, batch):
    x, y = batch
    with pytest.raises(ValueError, match="accepted: lam, steps, step"):
        L.rst_loss(tiny, x, y, eps=EPS, beta=2.0)
    with pytest.raises(ValueError, match="accepted: none"):
        L.natural_loss(tiny, x, y, eps=EPS, lam=1.0)
    with pytest.raises(ValueError, match="fidelity"):
        L.natural_loss(tiny, x, y, eps=EPS, fidelity="official")
    with pytest.raises(ValueError, match="eps"):
        L.at_loss(tiny, x, y, eps=-0.1)


# ----------------------------------------------------------------------------- natural

def test_natural_formula_and_reduction(tiny, batch):
    x, y = batch
    paper = L.natural_loss(tiny, x, y, eps=EPS)
    released = L.natural_loss(tiny, x, y, eps=EPS, fidelity="released")
    torch.testing.assert_close(paper, F.cross_entropy(tiny(x), y))
    torch.testing.assert_close(released, F.cross_entropy(tiny(x), y, reduction="sum"))
    torch.testing.assert_close(released, B * paper)


# ----------------------------------------------------------------------------- AT and RST

@pytest.mark.parametrize("fidelity", ["paper", "released"])
def test_at_formula_and_attack_settings(monkeypatch, tiny, batch, fidelity):
    x, y = batch
    fake = FakeAscent(_fixed_point(x))
    monkeypatch.setattr(L.at, "pgd", fake)
    loss = L.at_loss(tiny, x, y, eps=EPS, fidelity=fidelity)
    torch.testing.assert_close(loss, _red(_ce(tiny, fake.point, y), fidelity))
    (args, kw, _), = fake.calls
    assert args[0] is tiny and kw["eps"] == EPS and kw["steps"] == 10
    assert kw["step"] == pytest.approx(EPS / 5) and kw["start"] == "uniform"
    assert kw["mode"] == "train"   # both fidelities: the released code's train-mode attack


@pytest.mark.parametrize("fidelity", ["paper", "released"])
@pytest.mark.parametrize("lam", [0.5, 2.0])
def test_rst_formula(monkeypatch, tiny, batch, fidelity, lam):
    x, y = batch
    fake = FakeAscent(_fixed_point(x))
    monkeypatch.setattr(L.rst, "pgd", fake)
    loss = L.rst_loss(tiny, x, y, eps=EPS, fidelity=fidelity, lam=lam)
    expected = _ce(tiny, x, y) + lam * _ce(tiny, fake.point, y)
    torch.testing.assert_close(loss, _red(expected, fidelity))
    (_, kw, _), = fake.calls
    assert kw["mode"] == "train"


@pytest.mark.parametrize("method", ["at", "rst"])
@pytest.mark.parametrize("caller_training", [True, False])
def test_attack_runs_in_train_mode_in_both_fidelities(tiny, batch, method, caller_training):
    """The real PGD: train-mode forwards in AT/RST of both fidelities (the released code's; the
    paper is silent); the loss itself in the caller's mode, which is restored afterwards."""
    x, y = batch
    tiny.train(caller_training)
    for fidelity, attack_flag in (("paper", True), ("released", True)):
        tiny.trace.clear()
        LOSSES[method](tiny, x, y, eps=EPS, fidelity=fidelity, steps=3)
        attack, outer = tiny.trace[:3], tiny.trace[3:]
        assert attack == [attack_flag] * 3
        assert outer == [caller_training] * (1 if method == "at" else 2)
        assert tiny.training is caller_training


# ----------------------------------------------------------------------------- TRADES

def _kl_official(model, x_adv, x):
    """TRADES' code: KLDivLoss(reduction='sum')(log_softmax f(x'), softmax f(x))."""
    crit = nn.KLDivLoss(reduction="sum")
    return crit(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x), dim=1))


@pytest.mark.parametrize("fidelity", ["paper", "released"])
@pytest.mark.parametrize("beta", [1.0, 6.0])
def test_trades_formula_and_inner_settings(monkeypatch, tiny, batch, fidelity, beta):
    x, y = batch
    fake = FakeAscent(_fixed_point(x), model=tiny)
    monkeypatch.setattr(L.trades, "linf_ascent", fake)
    loss = L.trades_loss(tiny, x, y, eps=EPS, fidelity=fidelity, beta=beta)
    if fidelity == "paper":  # TRADES: mean CE + β · (batch-summed KL) / batch size
        expected = F.cross_entropy(tiny(x), y) + beta * _kl_official(tiny, fake.point, x) / B
    else:
        expected = (F.cross_entropy(tiny(x), y, reduction="sum")
                    + beta * _kl_official(tiny, fake.point, x))
    torch.testing.assert_close(loss, expected)

    (args, kw, training), = fake.calls
    assert training is False  # inner maximisation in eval mode
    assert kw["eps"] == EPS and kw["step"] == pytest.approx(EPS / 5) and kw["steps"] == 10
    assert kw["start"] == "normal" and kw["project_start"] is False  # as TRADES' and the released code
    objective = args[0]
    with torch.no_grad():
        per = F.kl_div(F.log_softmax(tiny(fake.point), 1), F.softmax(tiny(x), 1),
                       reduction="none").sum(1)
        torch.testing.assert_close(objective(fake.point), per)
    assert tiny.training


def test_trades_real_inner_loop_is_seeded_and_increases_kl(tiny, batch):
    x, y = batch
    a = L.trades_loss(tiny, x, y, eps=EPS, generator=torch.Generator().manual_seed(3))
    b = L.trades_loss(tiny, x, y, eps=EPS, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    weak = L.trades_loss(tiny, x, y, eps=EPS, steps=0, beta=1.0)
    strong = L.trades_loss(tiny, x, y, eps=EPS, steps=10, beta=1.0)
    assert strong > weak


# ----------------------------------------------------------------------------- GR

def _gr_expected(model, x, y, beta, h, signed):
    x0 = x.clone().requires_grad_(True)
    ce = _ce(model, x0, y)
    (g,) = torch.autograd.grad(ce.sum(), x0, retain_graph=True)
    if signed:  # Finlay & Oberman's direction for l∞ attacks: sign / sqrt(dimension)
        d = g.sign() / 6.0  # 1×6×6 inputs
    else:
        d = g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    pen = ((_ce(model, x + h * d, y) - ce) / h) ** 2 / 2
    return ce, pen


def test_gr_paper_formula_uses_the_appendix_l2_direction(tiny, batch):
    """Paper: d = ∇ₓℓ/‖∇ₓℓ‖₂ (the appendix), h = 1 by default (the text gives none), the mean;
    and any h given."""
    x, y = batch
    loss = L.gr_loss(tiny, x, y, eps=EPS, beta=2.0)
    ce, pen = _gr_expected(tiny, x, y, beta=2.0, h=1.0, signed=False)
    expected = (ce + 2.0 * pen).mean()
    torch.testing.assert_close(loss, expected)
    _assert_same_grads(tiny, loss, expected)
    loss = L.gr_loss(tiny, x, y, eps=EPS, beta=2.0, h=0.01)
    ce, pen = _gr_expected(tiny, x, y, beta=2.0, h=0.01, signed=False)
    expected = (ce + 2.0 * pen).mean()
    torch.testing.assert_close(loss, expected)
    _assert_same_grads(tiny, loss, expected)


def test_gr_signed_direction_is_an_explicit_option(tiny, batch):
    x, y = batch
    loss = L.gr_loss(tiny, x, y, eps=EPS, beta=2.0, direction="sign", h=0.01)
    ce, pen = _gr_expected(tiny, x, y, beta=2.0, h=0.01, signed=True)
    torch.testing.assert_close(loss, (ce + 2.0 * pen).mean())
    assert L.resolve_params("gr", eps=EPS)["direction"] == "l2"
    with pytest.raises(ValueError, match="direction of 'gr' must be one of l2, sign"):
        L.gr_loss(tiny, x, y, eps=EPS, direction="l1")


def test_gr_released_formula_and_doubled_clean_gradient(tiny, batch):
    x, y = batch
    loss = L.gr_loss(tiny, x, y, eps=EPS, beta=0.5, fidelity="released")
    ce, pen = _gr_expected(tiny, x, y, beta=0.5, h=1.0, signed=False)
    # the value is what the released code logged: Σ CE + β Σ penalty ...
    torch.testing.assert_close(loss, (ce + 0.5 * pen).sum())
    # ... its parameter gradient what it applied: the clean CE's gradient twice
    _assert_same_grads(tiny, loss, (2 * ce + 0.5 * pen).sum())


def test_gr_finite_difference_approaches_double_backprop(tiny, batch):
    """((ℓ(x + h d) − ℓ(x)) / h) → ∇ₓℓ · d as h → 0; for d = sign(∇ₓℓ)/√D the GR penalty
    → ‖∇ₓℓ‖₁² / (2D), the gradient-norm regulariser GR approximates."""
    x, y = batch
    x0 = x.clone().requires_grad_(True)
    ce = _ce(tiny, x0, y)
    (g,) = torch.autograd.grad(ce.sum(), x0)
    d = g.sign() / 6.0
    exact = (g * d).flatten(1).sum(1)  # = ‖∇ₓℓ‖₁ / √D per example
    torch.testing.assert_close(exact, g.abs().flatten(1).sum(1) / 6.0)
    natural = L.natural_loss(tiny, x, y, eps=EPS)
    errors, pen_errors = [], []
    for h in (1e-1, 1e-2, 1e-3, 1e-4):
        with torch.no_grad():
            fd = (_ce(tiny, x + h * d, y) - _ce(tiny, x, y)) / h
        errors.append((fd - exact).abs().max().item())
        pen = L.gr_loss(tiny, x, y, eps=EPS, beta=1.0, h=h, direction="sign") - natural
        pen_errors.append(abs(pen.item() - (exact ** 2 / 2).mean().item()))
    assert all(a > b for a, b in zip(errors, errors[1:]))
    assert all(a > b for a, b in zip(pen_errors, pen_errors[1:]))
    assert errors[-1] < 1e-3 * exact.abs().max().item()
    assert pen_errors[-1] < 1e-3 * (exact ** 2 / 2).mean().item()


def test_gr_finite_difference_shares_dropout_masks(batch):
    """In train mode ℓ(x + h·d) is taken under ℓ(x)'s dropout masks: the paper penalty is the
    squared directional derivative of one network even at h = 1e-6.  Two independently masked
    passes would differ by O(1) and give a penalty of order 1/h²."""
    x, y = batch
    model = Tiny(dropout=0.5).double().train()  # train-mode passes are random functions
    torch.manual_seed(7)
    loss = L.gr_loss(model, x, y, eps=EPS, beta=1.0, h=1e-6)
    torch.manual_seed(7)  # the first pass's masks, by hand
    x0 = x.clone().requires_grad_(True)
    ce = _ce(model, x0, y)
    (g,) = torch.autograd.grad(ce.sum(), x0)
    directional = g.flatten(1).norm(dim=1)  # ∇ₓℓ · ∇ₓℓ/‖∇ₓℓ‖₂
    torch.testing.assert_close(loss, (ce + directional ** 2 / 2).mean(), rtol=1e-4, atol=1e-8)
    # the generator is left where one forward pass leaves it (not rewound: the next batch
    # draws fresh masks)
    torch.manual_seed(7)
    model(x)
    after_one_pass = torch.get_rng_state()
    torch.manual_seed(7)
    L.gr_loss(model, x, y, eps=EPS, beta=1.0)
    assert torch.equal(torch.get_rng_state(), after_one_pass)


def test_llr_gap_shares_dropout_masks(monkeypatch, batch):
    """The linearity gap γ = |ℓ(x + δ) − ℓ(x) − δᵀ∇ₓℓ| in train mode is one network's: at
    δ = 0 it is exactly 0, so the paper LLR loss equals the clean loss under the same masks."""
    x, y = batch
    model = Tiny(dropout=0.5).double().train()  # train-mode passes are random functions
    monkeypatch.setattr(L.llr, "linf_ascent", FakeAscent(x.clone(), model=model))
    torch.manual_seed(3)
    loss = L.llr_loss(model, x, y, eps=EPS, lam=4.0, mu=3.0)
    torch.manual_seed(3)
    torch.testing.assert_close(loss, L.natural_loss(model, x, y, eps=EPS), rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- LLR

@pytest.mark.parametrize("act", [nn.Tanh, nn.ReLU])
def test_llr_paper_formula_and_inner_settings(monkeypatch, batch, act):
    model = Tiny(act).double().train()
    x, y = batch
    fake = FakeAscent(_fixed_point(x), model=model)
    monkeypatch.setattr(L.llr, "linf_ascent", fake)
    loss = L.llr_loss(model, x, y, eps=EPS, lam=4.0, mu=3.0)

    delta = fake.point - x
    x0 = x.clone().requires_grad_(True)
    ce = _ce(model, x0, y)
    (g,) = torch.autograd.grad(ce.sum(), x0, create_graph=True)
    lin = (delta * g).sum(dim=(1, 2, 3))
    gamma = (_ce(model, x + delta, y) - ce - lin).abs()
    expected = (ce + 4.0 * gamma + 3.0 * lin.abs()).mean()
    torch.testing.assert_close(loss, expected)
    _assert_same_grads(model, loss, expected)

    (args, kw, training), = fake.calls
    assert training is False
    assert kw["steps"] == 2 and kw["step"] == pytest.approx(EPS / 2) and kw["start"] == "normal"
    # the released inner step, which the paper does not specify
    assert (kw["direction"], kw["projection"], kw["project_start"]) == ("linf", "rescale", False)
    with torch.no_grad():  # the inner objective is the per-example linearity gap g(δ)
        torch.testing.assert_close(args[0](fake.point), gamma.detach())


def test_llr_released_formula(monkeypatch, tiny, batch):
    x, y = batch
    fake = FakeAscent(_fixed_point(x), model=tiny)
    monkeypatch.setattr(L.llr, "linf_ascent", fake)
    loss = L.llr_loss(tiny, x, y, eps=EPS, fidelity="released", lam=4.0, mu=3.0)
    # zeroed input gradient, ℓ(x) not subtracted: Σ CE(x) + λ Σ CE(x + δ), no μ term
    expected = (_ce(tiny, x, y) + 4.0 * _ce(tiny, fake.point, y)).sum()
    torch.testing.assert_close(loss, expected)
    _assert_same_grads(tiny, loss, expected)
    (args, kw, training), = fake.calls
    assert training is False and kw["steps"] == 2
    assert (kw["direction"], kw["projection"], kw["project_start"]) == ("linf", "rescale", False)
    with torch.no_grad():  # the inner loop just ascends the cross-entropy
        torch.testing.assert_close(args[0](fake.point), _ce(tiny, fake.point, y))


def _released_llr_reference(model, x, y, *, epsilon, step_size, perturb_steps, lambd, mu, generator):
    """``locally_linearity_regularization`` of the released code (``lolip/models/torch_utils/
    llr.py``, version "sum", l∞), line for line; only ``.cuda()`` dropped and the start drawn
    from ``generator``.  Returns the loss it returned and its δ."""
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    model.eval()
    batch_size = len(x)
    x = x.clone()

    def model_grad(x):
        x.requires_grad_(True)
        lx = loss_fn(model(x), y)
        lx.backward()
        ret = x.grad
        x.grad.zero_()
        x.requires_grad_(False)
        return ret

    def grad_dot(x, delta, model_grad):
        ret = torch.matmul(model_grad.flatten(start_dim=1), delta.flatten(start_dim=1).T)
        return torch.mean(ret)

    def g(x, delta, model_grad):
        ret = loss_fn(model(x + delta), y) - grad_dot(x, delta, model_grad)
        return torch.abs(ret)

    mg = model_grad(x)
    delta = 0.001 * torch.randn(x.shape, generator=generator, dtype=x.dtype)
    delta = delta.detach().requires_grad_(True)
    optimizer_delta = torch.optim.SGD([delta], lr=step_size)
    for _ in range(perturb_steps):
        optimizer_delta.zero_grad()
        loss = (-1) * g(x, delta, mg)
        loss.backward()
        grad_norms = delta.grad.view(batch_size, -1).norm(p=float("inf"), dim=1)
        delta.grad.div_(grad_norms.view(-1, 1, 1, 1))
        optimizer_delta.step()
        delta.data.add_(x)
        delta.data.clamp_(0, 1).sub_(x)
        delta.data.renorm_(p=float("inf"), dim=0, maxnorm=epsilon)
    delta.requires_grad_(False)
    model.train()
    model.zero_grad(set_to_none=True)
    outputs = model(x)
    loss_natural = loss_fn(outputs, y)
    loss = loss_natural + lambd * g(x, delta, mg) + mu * grad_dot(x, delta, mg) * len(x)
    return loss, delta


def test_llr_released_matches_the_released_code_line_for_line(batch):
    """Released LLR against a verbatim port of the released function: same loss, same
    gradient.  Its inner step moves δ by (ε/2)·∇/‖∇‖∞ and rescales, so only the
    largest-gradient pixels move by ε/2; signed steps would move every pixel by ε/2."""
    model = Tiny(nn.ReLU).double().train()
    x, y = batch
    x = x * 0.6 + 0.2            # away from the box, so the step rule alone decides δ
    eps = 0.1
    ref_loss, ref_delta = _released_llr_reference(model, x, y, epsilon=eps, step_size=eps / 2,
                                                  perturb_steps=2, lambd=4.0, mu=3.0,
                                                  generator=torch.Generator().manual_seed(11))
    ours = L.llr_loss(model, x, y, eps=eps, fidelity="released",
                      generator=torch.Generator().manual_seed(11))
    torch.testing.assert_close(ours, ref_loss)
    _assert_same_grads(model, ours, ref_loss)
    # δ itself, through the same loop the loss calls
    point = linf_ascent(lambda z: _ce(model.eval(), z, y), x, eps=eps, step=eps / 2, steps=2,
                          start="normal", direction="linf", projection="rescale", project_start=False,
                          generator=torch.Generator().manual_seed(11))
    torch.testing.assert_close(point - x, ref_delta)
    signed = linf_ascent(lambda z: _ce(model, z, y), x, eps=eps, step=eps / 2, steps=2,
                           start="normal", generator=torch.Generator().manual_seed(11))
    assert (point - x).abs().mean() < 0.75 * (signed - x).abs().mean()


def test_llr_input_gradient_term_paper_nonzero_released_zero(batch):
    """The μ·|δᵀ∇ₓℓ| term: present and trainable (double back-prop, even through ReLUs) in
    the paper's LLR; identically zero in the released code."""
    model = Tiny(nn.ReLU).double().train()
    x, y = batch
    gen = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    mu_term = (L.llr_loss(model, x, y, eps=EPS, lam=0.0, mu=1.0, generator=gen())
               - L.natural_loss(model, x, y, eps=EPS))
    assert mu_term.item() > 0
    assert any(g is not None and g.abs().sum() > 0 for g in _grads(model, mu_term))

    released = L.llr_loss(model, x, y, eps=EPS, lam=0.0, mu=1.0, fidelity="released",
                          generator=gen())
    natural = L.natural_loss(model, x, y, eps=EPS, fidelity="released")
    torch.testing.assert_close(released, natural)
    _assert_same_grads(model, released, natural)


# ----------------------------------------------------------------------------- all losses

@pytest.mark.parametrize("method", ["natural", "at", "rst", "trades"])
def test_released_is_batch_size_times_paper_for_fixed_inner_points(monkeypatch, tiny, batch,
                                                                    method):
    x, y = batch
    fixed = _fixed_point(x)
    for module in (L.at, L.rst, L.trades, L.llr):       # every loss with an inner maximisation
        for name in ("pgd", "linf_ascent"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, FakeAscent(fixed))
    paper = LOSSES[method](tiny, x, y, eps=EPS)
    released = LOSSES[method](tiny, x, y, eps=EPS, fidelity="released")
    torch.testing.assert_close(released, B * paper)


class ModeNet(nn.Module):
    """BN + dropout so that train/eval matters; one submodule left in eval on purpose."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(64, 3)

    def forward(self, x):
        return self.fc(self.drop(torch.relu(self.bn(self.conv(x)))).flatten(1))


@pytest.mark.parametrize("method", sorted(LOSSES))
@pytest.mark.parametrize("fidelity", ["paper", "released"])
def test_no_parameter_gradients_left_and_mode_restored(batch, method, fidelity):
    x, y = batch
    model = ModeNet().double().train()
    model.drop.eval()
    flags = [m.training for m in model.modules()]
    x_before = x.clone()
    loss = LOSSES[method](model, x, y, eps=EPS, fidelity=fidelity, **(
        {"steps": 2} if "steps" in METHOD_PARAMS[method] else {}))
    assert all(p.grad is None for p in model.parameters())
    assert [m.training for m in model.modules()] == flags
    assert torch.equal(x, x_before) and not x.requires_grad
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name, shape", [("cnn1", (2, 1, 28, 28)), ("cnn2", (2, 1, 28, 28)),
                                         ("wrn-16-2", (2, 3, 32, 32))])
@pytest.mark.parametrize("fidelity", ["paper", "released"])
def test_every_loss_backpropagates_on_the_real_models(name, shape, fidelity):
    model = build_model(name, fidelity=fidelity).train()
    x, y = torch.rand(shape), torch.tensor([3, 7])
    for method, fn in LOSSES.items():
        model.zero_grad(set_to_none=True)
        kw = {"steps": 2} if "steps" in METHOD_PARAMS[method] else {}
        loss = fn(model, x, y, eps=0.031, fidelity=fidelity, **kw)
        assert torch.isfinite(loss), (method, loss)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads, method
        assert all(torch.isfinite(g).all() for g in grads), method
        assert any(g.abs().sum() > 0 for g in grads), method
        assert model.training


@pytest.mark.parametrize("compiled", [False, True])
def test_replay_point_reproduces_dropout_masks(compiled):
    """The replay GR and LLR rely on holds for eager and for ``torch.compile``d models (the
    trainer's ``compile`` option), whose generated kernels draw from the same generator."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3)).train()
    f = torch.compile(net) if compiled else net
    x = torch.rand(4, 8)
    f(x)
    replay = _replay_point(x.device)
    first = f(x)
    assert not torch.equal(first, f(x))  # the masks are random ...
    replay()
    assert torch.equal(first, f(x))      # ... and replayed


def test_a_revision_changes_only_the_runs_it_names():
    """Revision 3 changed paper GR's default step: a revision-2 record of paper GR without its own
    h is out of date, one of any other method or with an explicit h is not; revision 1 records
    predate revision 2, which changed every run."""
    def config(method="gr", fidelity="paper", h=None):
        return {"method": method, "fidelity": fidelity, "params": {"h": h} if method == "gr" else {}}

    assert L.FIDELITY_REVISION == 3
    assert not L.is_current_revision(2, config())
    assert L.is_current_revision(2, config(h=0.01)) and L.is_current_revision(2, config(fidelity="released"))
    assert L.is_current_revision(2, config("at")) and L.is_current_revision(3, config())
    assert not L.is_current_revision(1, config("at")) and not L.is_current_revision(None, config("at"))


def test_gr_direction_stays_a_unit_vector_when_the_gradient_is_tiny():
    """GR's d = ∇ₓℓ/‖∇ₓℓ‖₂ by hand on a 3-4-5 triangle, at the scale a fitted model's input
    gradients reach (1e-22 and below): the plain quotient's ‖g‖₂² = 2.5e-49 underflows to 0 in
    float32 and its "unit" vector has norm ~4e13 (released GR's NaN at epoch 39 on all 60 000 images)."""
    from rll.losses.gr import unit_direction

    g = torch.tensor([[3e-25, -4e-25, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 0.0]])
    naive = g / g.norm(dim=1, keepdim=True).clamp_min(torch.finfo(g.dtype).tiny)
    assert naive[0].abs().max() > 1e10                       # the failure this guards against
    d = unit_direction(g)
    assert torch.allclose(d, torch.tensor([[0.6, -0.8, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 0.0]]), atol=1e-6)
    images = g.view(3, 1, 1, 3)                               # per example, whatever its shape
    assert torch.equal(unit_direction(images), d.view(3, 1, 1, 3))
