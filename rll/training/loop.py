"""The training step: subsets, batches on the training device, augmentation as the released code,
one optimiser step of a method's loss, and building the model, optimiser and scheduler of a run."""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F

from rll import data as rdata
from rll import models as rmodels
from rll.config import LR_DECAY, RESIZED_CROP, RESIZED_TRAIN, TrainConfig


def subset_indices(n: int, size: int | None, seed: int, salt: int) -> torch.Tensor | None:
    """Sorted indices of a seeded random subset of ``size`` out of ``n`` (None: all)."""
    if size is None or size >= n:
        return None
    g = torch.Generator().manual_seed(seed * 1_000_003 + salt)
    return torch.randperm(n, generator=g)[:size].sort().values


def load_split(config: TrainConfig, split: str, size: int | None, salt: int, data_root,
                device: torch.device, checksums: Mapping[str, str] | None = None):
    ds = rdata.load_dataset(config.dataset, split, root=data_root, checksums=checksums)
    images, labels = ds.images, ds.labels
    idx = subset_indices(len(labels), size, config.seed, salt)
    if idx is not None:
        images, labels = images[idx], labels[idx]
    return images.to(device), labels.to(device), ds.note


def resized_train(config: TrainConfig, data_root) -> "rdata.RaggedImages":
    """The resized training images of a :data:`RESIZED_TRAIN` dataset, the same seeded subset
    as :func:`load_split`'s training split (same files, same order)."""
    images, labels, _ = rdata.load_resized_train(config.dataset, root=data_root)
    idx = subset_indices(len(labels), config.train_size, config.seed, 0)
    return images if idx is None else images[idx]


def augment_batch(x: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop (zero padding ``pad``, output the input's size) and random horizontal flip,
    independently per image, vectorised; works on uint8 or float batches (N, C, H, W) on any
    device.  As torchvision's ``RandomCrop(size, padding=pad)`` + ``RandomHorizontalFlip()``."""
    n, c, h, w = x.shape
    dev = generator.device if generator is not None else x.device
    off = torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=dev).to(x.device)
    flip = (torch.rand(n, generator=generator, device=dev) < 0.5).to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (off[0][:, None] + torch.arange(h, device=x.device))            # (n, h)
    cols = (off[1][:, None] + torch.arange(w, device=x.device))            # (n, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    bi = torch.arange(n, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]


def make_batch(images, idx: torch.Tensor, pad: int | None,
               generator: torch.Generator | None = None, channels_last: bool = False,
               device: torch.device | None = None) -> torch.Tensor:
    """The training batch ``images[idx]`` (uint8, resident on the device): augmented when ``pad``
    is set (:func:`augment_batch`), then float32 in [0, 1] (:func:`rll.data.to_float`).
    :class:`rll.data.RaggedImages` (Restricted ImageNet) are randomly cropped to the dataset's
    size with ``pad`` (no flip) on the CPU and moved to ``device``."""
    if isinstance(images, rdata.RaggedImages):
        xb = images.random_crops(idx.cpu(), RESIZED_CROP, pad or 0, generator)
        xb = xb.to(device if device is not None else idx.device)
    else:
        xb = images[idx]
        if pad:
            xb = augment_batch(xb, pad, generator)
    xb = rdata.to_float(xb)
    return xb.contiguous(memory_format=torch.channels_last) if channels_last else xb


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss_fn, x: torch.Tensor,
               y: torch.Tensor, *, eps: float, fidelity: str, params: Mapping[str, Any],
               amp: bool = False, loss_scale: float = 1.0) -> torch.Tensor:
    """One optimiser step on ``loss_fn(model, x, y, eps=…, fidelity=…, **params)`` (model in
    train mode); returns the detached loss.  ``amp``: bfloat16 autocast for the forward passes
    (inner attack included); parameters, gradients and the optimiser stay float32.
    ``loss_scale``: backpropagate ``loss_scale × loss`` (a data-parallel shard's share,
    :meth:`rll.training.distributed.Group.loss_weight`); the returned loss is unscaled."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        loss = loss_fn(model, x, y, eps=eps, fidelity=fidelity, **params)
    optimizer.zero_grad(set_to_none=True)
    (loss if loss_scale == 1.0 else loss * loss_scale).backward()
    optimizer.step()
    return loss.detach()


def ieee_float32() -> str:
    """Make float32 mean IEEE float32 on CUDA, as on the CPU, and return the setting's name.

    PyTorch runs float32 *convolutions* on cuDNN in TF32 by default (a 10-bit mantissa;
    ``torch.backends.cudnn.conv.fp32_precision == "tf32"``), though not float32 matrix products.
    That would silently change every "fp32" computation on a GPU — the very ones bfloat16 was
    refused for (TRADES' KL, paper LLR's linearity gap, GR's finite difference at h = 0.01,
    ``benchmarks/README.md``, "Precision") — so rll turns it off: a speed option may change the
    arithmetic only where it is measured and named (``config.precision``)."""
    try:
        torch.backends.cudnn.conv.fp32_precision = "ieee"
        torch.backends.cuda.matmul.fp32_precision = "ieee"
    except AttributeError:  # pragma: no cover — a PyTorch before the fp32_precision settings
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    return "ieee"


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device`` (None: CUDA if available, else the CPU); on CUDA, float32
    is set to IEEE float32 (:func:`ieee_float32`)."""
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        ieee_float32()
    return device


def build_run(config: TrainConfig, device: torch.device):
    info = rdata.DATASET_INFO[config.dataset]
    torch.manual_seed(config.seed)
    model = rmodels.build_model(config.model, num_classes=info.num_classes, in_channels=info.shape[0],
                                dropout=config.dropout, fidelity=config.fidelity).to(device)
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(config.milestones), gamma=LR_DECAY)
    return model, opt, sched


def run_generators(config: TrainConfig, device: torch.device) -> dict[str, torch.Generator]:
    gens = {}
    for salt, name in enumerate(("shuffle", "augment")):
        # resized images are cropped on the CPU, so their augmentation draws from a CPU generator
        where = "cpu" if name == "augment" and config.dataset in RESIZED_TRAIN else device
        g = torch.Generator(device=where)
        g.manual_seed(config.seed * 1_000_003 + 101 + salt)
        gens[name] = g
    return gens


__all__ = ["subset_indices", "load_split", "resized_train", "augment_batch", "make_batch", "train_step", "ieee_float32", "resolve_device", "build_run", "run_generators"]
