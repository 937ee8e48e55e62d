"""rll.models: shapes, parameter counts, initialisation, dropout placement, fidelity."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from rll.models import MODELS, build_model, count_parameters


def _count(model: nn.Module, kind) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


def _conv_params(cin: int, cout: int, k: int, bias: bool = False) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def _wrn_params(depth: int, width: int, num_classes: int = 10, cin: int = 3) -> int:
    """Independent count for Zagoruyko's WRN-D-W (pre-activation basic blocks)."""
    n = (depth - 4) // 6
    w = [16, 16 * width, 32 * width, 64 * width]
    total = _conv_params(cin, 16, 3)
    for g in range(3):
        for i in range(n):
            a, b = (w[g] if i == 0 else w[g + 1]), w[g + 1]
            total += 2 * a + _conv_params(a, b, 3) + 2 * b + _conv_params(b, b, 3)
            if a != b or (i == 0 and g > 0):
                total += _conv_params(a, b, 1)
    return total + 2 * w[3] + w[3] * num_classes + num_classes


@pytest.mark.parametrize("name, shape, classes", [
    ("cnn1", (2, 1, 28, 28), 10),
    ("cnn2", (2, 1, 28, 28), 10),
    ("wrn-16-2", (2, 3, 32, 32), 10),
    ("wrn-10-1", (2, 3, 32, 32), 7),
    ("resnet50", (2, 3, 64, 64), 9),
])
def test_output_shapes(name, shape, classes):
    model = build_model(name, num_classes=classes).eval()
    with torch.no_grad():
        out = model(torch.rand(shape))
    assert out.shape == (shape[0], classes)
    assert torch.isfinite(out).all()


def test_in_channels_default_and_override():
    assert build_model("cnn1").features[0].in_channels == 1
    assert build_model("cnn2").features[0].in_channels == 1
    assert build_model("wrn-16-2").conv1.in_channels == 3
    assert build_model("wrn-16-2", in_channels=1).conv1.in_channels == 1
    assert build_model("resnet50", num_classes=9).conv1.in_channels == 3


def test_parameter_counts():
    # pytorch/examples MNIST net, and TRADES' small CNN (counted layer by layer)
    assert count_parameters(build_model("cnn1")) == 1_199_882
    cnn2 = (_conv_params(1, 32, 3, True) + _conv_params(32, 32, 3, True)
            + _conv_params(32, 64, 3, True) + _conv_params(64, 64, 3, True)
            + 1024 * 200 + 200 + 200 * 200 + 200 + 200 * 10 + 10)
    assert cnn2 == 312_202
    assert count_parameters(build_model("cnn2")) == cnn2
    assert count_parameters(build_model("wrn-16-4")) == _wrn_params(16, 4)
    n = count_parameters(build_model("wrn-40-10"))
    assert n == _wrn_params(40, 10)
    assert abs(n - 55.8e6) < 0.1e6  # "WRN-40-10: 55.8M" (Zagoruyko & Komodakis)
    # torchvision's ResNet-50 has 25,557,032 parameters with the 1000-way head
    assert count_parameters(build_model("resnet50", num_classes=9)) == \
        25_557_032 - (2048 * 1000 + 1000) + (2048 * 9 + 9)


def test_cnn2_init_as_trades():
    model = build_model("cnn2")
    last = model.classifier[-1]
    assert torch.count_nonzero(last.weight) == 0 and torch.count_nonzero(last.bias) == 0
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4
    for conv in convs:
        assert torch.count_nonzero(conv.bias) == 0
    # Kaiming normal, fan-in: std sqrt(2 / fan_in) on the 64→64 layer (36 864 weights)
    w = convs[-1].weight
    assert w.std().item() == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.05)
    with torch.no_grad():
        assert torch.count_nonzero(model.eval()(torch.rand(3, 1, 28, 28))) == 0


def test_wrn_init():
    model = build_model("wrn-16-4")
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
    assert torch.all(model.fc.bias == 0)
    w = model.block3[1].conv2.weight  # 256→256 3×3: fan-out 256·9
    assert w.std().item() == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.05)


def test_wrn_structure():
    model = build_model("wrn-40-10")
    for group, width, stride in ((model.block1, 160, 1), (model.block2, 320, 2),
                                 (model.block3, 640, 2)):
        assert len(group) == 6
        assert group[0].conv1.out_channels == width and group[0].conv1.stride == (stride, stride)
        assert all(b.shortcut is None for b in group[1:])
    assert model.fc.in_features == 640


def test_dropout_placement():
    assert _count(build_model("wrn-16-2"), nn.Dropout) == 0
    wrn = build_model("wrn-16-2", dropout=0.3)
    assert _count(wrn, nn.Dropout) == 6  # one per block: 3 groups × 2 blocks
    for block in (b for g in (wrn.block1, wrn.block2, wrn.block3) for b in g):
        names = [n for n, _ in block.named_children()]
        assert names.index("conv1") < names.index("dropout") < names.index("conv2")
        assert block.dropout.p == 0.3
    assert _count(build_model("wrn-40-10", dropout=0.2), nn.Dropout) == 18

    assert _count(build_model("resnet50", num_classes=9), nn.Dropout) == 0
    res = build_model("resnet50", num_classes=9, dropout=0.2)
    assert _count(res, nn.Dropout) == (3 - 1) + (4 - 1) + (6 - 1) + (3 - 1)
    for stage in (res.layer1, res.layer2, res.layer3, res.layer4):
        assert stage[0].dropout is None
        assert all(b.dropout is not None and b.dropout.p == 0.2 for b in stage[1:])

    assert _count(build_model("cnn1"), (nn.Dropout, nn.Dropout2d)) == 2
    assert _count(build_model("cnn2"), nn.Dropout) == 1


def test_dropout_inside_wrn_block_is_active_in_train_mode():
    model = build_model("wrn-10-1", dropout=0.5)
    x = torch.rand(2, 3, 32, 32)
    model.train()
    a, b = model(x), model(x)
    assert not torch.allclose(a, b)
    model.eval()
    assert torch.allclose(model(x), model(x))


def test_released_cnn1_omits_relu_after_second_conv():
    paper, released = build_model("cnn1"), build_model("cnn1", fidelity="released")
    assert _count(paper, nn.ReLU) == 3
    assert _count(released, nn.ReLU) == 2
    # a ReLU right after conv2 in the paper's net, max-pool right after it in the released one
    assert isinstance(paper.features[3], nn.ReLU)
    assert isinstance(released.features[3], nn.MaxPool2d)
    assert isinstance(released.features[4], nn.Dropout2d)
    # both: the cited (2020) example's channel-wise first dropout, element-wise second
    assert isinstance(paper.features[5], nn.Dropout2d) and type(paper.classifier[3]) is nn.Dropout
    assert type(released.classifier[3]) is nn.Dropout
    torch.manual_seed(0)
    maps = paper.train().features[5](torch.ones(2, 64, 12, 12))
    per_map = maps.flatten(2)
    assert ((per_map == 0).all(2) | (per_map != 0).all(2)).all()      # whole feature maps dropped
    assert count_parameters(paper) == count_parameters(released)
    # the released net can output negative pre-pool activations, the paper's cannot
    x = torch.rand(4, 1, 28, 28)
    assert (released.features[:4](x) < 0).any()
    assert (paper.features[:5](x) >= 0).all()


@pytest.mark.parametrize("name", ["cnn2", "wrn-16-2", "resnet50"])
def test_other_models_identical_across_fidelities(name):
    torch.manual_seed(1)
    a = build_model(name)
    torch.manual_seed(1)
    b = build_model(name, fidelity="released")
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("bad", ["cnn3", "wrn-41-10", "wrn-40", "resnet18", "WRN-40-10", ""])
def test_unknown_names_raise_listing_choices(bad):
    with pytest.raises(ValueError) as err:
        build_model(bad)
    msg = str(err.value)
    if bad.startswith("wrn-41"):
        assert "6n + 4" in msg
    else:
        assert all(name in msg for name in MODELS)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="fidelity"):
        build_model("cnn1", fidelity="official")
    with pytest.raises(ValueError, match="dropout"):
        build_model("wrn-16-2", dropout=1.0)
    with pytest.raises(ValueError, match="dropout"):
        build_model("cnn2", dropout=0.2)


def test_models_module_imports_no_torchvision():
    import ast

    import rll.models
    tree = ast.parse(open(rll.models.__file__).read())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
             for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom) and n.module}
    assert "torchvision" not in names
    assert names <= {"__future__", "re", "typing", "torch"}


@pytest.mark.parametrize("name", ["cnn1", "cnn2"])
@pytest.mark.parametrize("amp", [False, True])
def test_flatten_hands_a_channels_last_gradient_back_and_changes_no_bit(name, amp):
    """rll.models.Flatten: the pooled features' gradient comes back channels-last (nn.Flatten's
    comes back C-major, which made CNN1's max-pool backward 3× slower), and the loss, the input
    gradient and every parameter gradient are bitwise nn.Flatten's — dropout masks included."""
    import copy

    torch.manual_seed(0)
    ours = build_model(name).to(memory_format=torch.channels_last).train()
    plain = copy.deepcopy(ours)
    plain.classifier[0] = nn.Flatten()
    x = torch.rand(16, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (16,))
    results = []
    for model in (ours, plain):
        layouts = []

        def watch(module, inputs, out, layouts=layouts):
            out.register_hook(lambda g: layouts.append(g.is_contiguous(memory_format=torch.channels_last)))

        model.features.register_forward_hook(watch)
        torch.manual_seed(1)
        xi = x.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            loss = nn.functional.cross_entropy(model(xi), y)
        grads = torch.autograd.grad(loss, [xi, *model.parameters()])
        results.append((loss, grads, layouts))
    (loss, grads, layouts), (plain_loss, plain_grads, plain_layouts) = results
    assert layouts == [True] and plain_layouts == [False]
    assert torch.equal(loss, plain_loss) and all(torch.equal(a, b) for a, b in zip(grads, plain_grads))
