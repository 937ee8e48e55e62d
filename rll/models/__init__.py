"""The paper's four network architectures (Appendix A, "Details on the network structure").

=============  =========================  ==========================================
name           dataset (paper)            source the paper names
=============  =========================  ==========================================
``cnn1``       MNIST                      pytorch/examples ``mnist/main.py``
``cnn2``       MNIST                      TRADES ``models/small_cnn.py``
``wrn-40-10``  SVHN, CIFAR-10             Zagoruyko & Komodakis' wide ResNet [63]
``resnet50``   Restricted ImageNet 64×64  He et al. [20] (torchvision's layout)
=============  =========================  ==========================================

Any ``wrn-D-W`` with (D − 4) divisible by 6 builds from the same code (``wrn-16-4`` and
``wrn-16-2`` are the small variants used for CPU runs and tests).  Inputs are in [0, 1] with
no normalisation layer; every model returns raw logits.

``fidelity="released"`` changes only what the authors' released code built differently from
its named source: CNN1 there omits the ReLU after the second convolution and uses channel-wise
``Dropout2d(0.25)`` on the pooled feature maps (pytorch/examples of 2020; the second dropout
acts on a flat vector and is element-wise in both).  The other three networks are the same in
both fidelities.  (The released WRN also carried TRADES' unused ``sub_block1`` — parameters
that never enter the forward pass; we leave it out, so parameter counts are the literature's.)

>>> model = build_model("wrn-16-4", dropout=0.2)      # CIFAR-10 sized, dropout in every block
>>> model(torch.rand(2, 3, 32, 32)).shape
torch.Size([2, 10])
"""
from __future__ import annotations

import re
from typing import Literal

import torch
import torch.nn as nn

Fidelity = Literal["paper", "released"]
FIDELITIES = ("paper", "released")

MODELS = ("cnn1", "cnn2", "wrn-40-10", "resnet50")
"""The paper's architectures.  ``wrn-D-W`` for other depths/widths is accepted too."""

_WRN = re.compile(r"^wrn-(\d+)-(\d+)$")


def build_model(name: str, *, num_classes: int = 10, in_channels: int | None = None,
                dropout: float = 0.0, fidelity: Fidelity = "paper") -> nn.Module:
    """Build one of the paper's networks, freshly initialised (no pretraining).

    Args:
        name: ``"cnn1"``, ``"cnn2"``, ``"wrn-D-W"`` (e.g. ``"wrn-40-10"``) or ``"resnet50"``.
        num_classes: output logits (10; Restricted ImageNet uses 9).
        in_channels: input channels; default from the name (CNNs 1, others 3).
        dropout: drop probability for the wide ResNet (inside every block, between its two
            convolutions; paper: 0.2 CIFAR-10, 0.5 SVHN) and ResNet50 (before the last
            convolution of every bottleneck except the first of each stage).  The CNNs have
            their sources' fixed dropout and reject a non-zero value here.
        fidelity: ``"paper"`` (the named source) or ``"released"`` (as the authors' code
            built it; differs for ``cnn1`` only, see the module docstring).

    Raises:
        ValueError: unknown name (the message lists the choices), invalid WRN depth,
            dropout outside [0, 1), dropout given for a CNN, unknown fidelity.
    """
    if fidelity not in FIDELITIES:
        raise ValueError(f"fidelity must be one of {FIDELITIES}, got {fidelity!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    if name in ("cnn1", "cnn2"):
        if dropout:
            raise ValueError(f"{name} has its source's fixed dropout; the dropout argument "
                             "applies to wrn-D-W and resnet50 only")
        c = 1 if in_channels is None else in_channels
        if name == "cnn1":
            return CNN1(num_classes, c, released=fidelity == "released")
        return CNN2(num_classes, c)
    c = 3 if in_channels is None else in_channels
    if name == "resnet50":
        return ResNet50(num_classes, c, dropout)
    m = _WRN.match(name)
    if m:
        return WideResNet(int(m.group(1)), int(m.group(2)), num_classes, c, dropout)
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)} "
                     "(or any wrn-D-W with (D - 4) divisible by 6, e.g. wrn-16-4)")


def architecture_differs_by_fidelity(name: str) -> bool:
    """Whether ``fidelity="released"`` builds a different network for ``name`` (CNN1 only: the
    released code dropped the ReLU after the second convolution), so that a released-fidelity run
    of *any* method on it is another model, not only another loss reduction."""
    return name == "cnn1"


# ----------------------------------------------------------------------------- MNIST CNNs

class _ChannelsLastGradient(torch.autograd.Function):
    """The identity, whose backward hands the gradient on in channels-last layout."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=torch.channels_last)


class Flatten(nn.Flatten):
    """``nn.Flatten`` that returns a channels-last input's gradient in channels-last layout.

    Flattening a channels-last (N, C, H, W) tensor copies it into C-major order, so its gradient
    comes back C-major, and the max-pool before it then runs its backward on mismatched layouts:
    on the CPU that took 15 ms against 4 ms for CNN1's pool at batch 64, and a CNN1 AT step in
    bf16 ran 1.24× slower (``python benchmarks/precision.py flatten``; CNN2, whose last map is
    4 × 4, is unaffected).
    Only the layout changes: values, and the gradients they produce, are bitwise those of
    ``nn.Flatten`` (``tests/test_models.py``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.dim() == 4 and x.requires_grad and not x.is_contiguous()
                and x.is_contiguous(memory_format=torch.channels_last)):
            x = _ChannelsLastGradient.apply(x)
        return super().forward(x)


class CNN1(nn.Module):
    """The pytorch/examples MNIST net as the paper cites it (the 2020 version): conv 1→32 3×3,
    ReLU, conv 32→64 3×3, ReLU, max-pool 2, channel-wise dropout 0.25 (``Dropout2d``: whole
    feature maps), FC 9216→128, ReLU, dropout 0.5, FC 128→classes (28×28 input).  That example's
    second dropout was also a ``Dropout2d``, applied to the (N, 128) activations, which the PyTorch
    of 2020 dropped element by element (a feature dropout over a 2-D input has one element per
    "feature"); today's ``Dropout2d`` would read that input as unbatched and drop whole examples,
    so it is ``nn.Dropout`` here, the 2020 behaviour.  (Today's example uses ``nn.Dropout`` for
    both.)

    ``released=True``: no ReLU after the second convolution, as the authors' released code built
    it; the dropouts as above (the released code copied the example's).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, released: bool = False):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, 32, 3, 1), nn.ReLU(),
                                   nn.Conv2d(32, 64, 3, 1)]
        if not released:
            layers.append(nn.ReLU())
        layers += [nn.MaxPool2d(2), nn.Dropout2d(0.25)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(Flatten(), nn.Linear(9216, 128), nn.ReLU(),
                                        nn.Dropout(0.5), nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class CNN2(nn.Module):
    """TRADES' small CNN: conv 32, conv 32, max-pool, conv 64, conv 64, max-pool (3×3 convs,
    ReLU after each), FC 1024→200, ReLU, dropout 0.5, FC 200→200, ReLU, FC 200→classes.

    Initialisation as TRADES: Kaiming-normal convolution weights, zero convolution biases,
    last linear layer (weight and bias) zero, so the untrained network outputs zero logits.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.Conv2d(64, 64, 3), nn.ReLU(),
            nn.MaxPool2d(2, 2))
        self.classifier = nn.Sequential(
            Flatten(), nn.Linear(64 * 4 * 4, 200), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(200, 200), nn.ReLU(), nn.Linear(200, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.classifier[-1].weight)
        nn.init.zeros_(self.classifier[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# ----------------------------------------------------------------------------- wide ResNet

class WideBasicBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3×3-BN-ReLU-[dropout]-conv3×3, plus the identity or,
    when the width or stride changes, a 1×1 convolution of the pre-activated input."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, dropout: float):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, 1, 1, bias=False)
        self.shortcut = (None if in_planes == out_planes and stride == 1
                         else nn.Conv2d(in_planes, out_planes, 1, stride, 0, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(pre)))
        if self.dropout is not None:
            out = self.dropout(out)
        out = self.conv2(out)
        return out + (x if self.shortcut is None else self.shortcut(pre))


class WideResNet(nn.Module):
    """WRN-D-W (Zagoruyko & Komodakis), the version TRADES and Madry et al. use on CIFAR-10:
    conv 3×3 → 16, three groups of (D − 4)/6 pre-activation blocks of widths 16W, 32W, 64W
    (strides 1, 2, 2), BN-ReLU, 8×8 average pool, linear.  WRN-40-10: widths 160/320/640,
    6 blocks per group, ≈55.8 M parameters.  Init: Kaiming-normal (fan-out) convolutions,
    BN weight 1 / bias 0, linear bias 0.
    """

    def __init__(self, depth: int = 40, width: int = 10, num_classes: int = 10,
                 in_channels: int = 3, dropout: float = 0.0):
        super().__init__()
        if depth < 10 or (depth - 4) % 6 or width < 1:
            raise ValueError(f"wrn-{depth}-{width}: depth must be 6n + 4 with n >= 1 "
                             "(10, 16, 22, 28, 34, 40, ...) and width >= 1")
        n = (depth - 4) // 6
        widths = [16, 16 * width, 32 * width, 64 * width]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        groups = []
        for g, stride in enumerate((1, 2, 2)):
            blocks = [WideBasicBlock(widths[g] if i == 0 else widths[g + 1], widths[g + 1],
                                     stride if i == 0 else 1, dropout) for i in range(n)]
            groups.append(nn.Sequential(*blocks))
        self.block1, self.block2, self.block3 = groups
        self.bn = nn.BatchNorm2d(widths[3])
        self.relu = nn.ReLU()
        self.pool = nn.AvgPool2d(8)
        self.fc = nn.Linear(widths[3], num_classes)
        _init_residual(self, zero_linear_bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = self.pool(self.relu(self.bn(out)))
        return self.fc(out.flatten(1))


# ----------------------------------------------------------------------------- ResNet50

class Bottleneck(nn.Module):
    """1×1 → 3×3 (stride here, as torchvision) → 1×1 ×4, BN after each, ReLU; optional
    dropout after the second ReLU, i.e. before the last convolution."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, dropout: float = 0.0):
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or in_planes != out_planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(out_planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        if self.dropout is not None:
            out = self.dropout(out)
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet50(nn.Module):
    """ResNet-50 (He et al.), torchvision's layout: 7×7/2 stem conv, BN, ReLU, 3×3/2 max-pool,
    stages of 3, 4, 6, 3 bottlenecks (widths 64–512, ×4 out), global average pool, linear.
    On 64×64 Restricted ImageNet inputs the last stage is 2×2.  Init: Kaiming-normal
    (fan-out) convolutions, BN weight 1 / bias 0, PyTorch's default linear init.
    ``dropout`` goes into every bottleneck but the first of each stage (12 in all).
    """

    layers = (3, 4, 6, 3)

    def __init__(self, num_classes: int = 9, in_channels: int = 3, dropout: float = 0.0):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_planes, stages = 64, []
        for planes, blocks, stride in zip((64, 128, 256, 512), self.layers, (1, 2, 2, 2)):
            stage = [Bottleneck(in_planes, planes, stride)]
            in_planes = planes * Bottleneck.expansion
            stage += [Bottleneck(in_planes, planes, 1, dropout) for _ in range(1, blocks)]
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * Bottleneck.expansion, num_classes)
        _init_residual(self, zero_linear_bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def _init_residual(model: nn.Module, *, zero_linear_bias: bool) -> None:
    """The residual networks' initialisation: Kaiming-normal (fan-out) convolutions, batch-norm
    scale 1 and shift 0, and (WRN) zero linear biases."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif zero_linear_bias and isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["MODELS", "FIDELITIES", "build_model", "count_parameters", "architecture_differs_by_fidelity", "CNN1", "CNN2",
           "WideResNet", "ResNet50"]
