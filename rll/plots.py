"""Figures for the book (matplotlib).  Each function draws one of the paper's figures from
our records and returns the ``Figure``; nothing here computes a result."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def separation_histograms(record: dict, *, bins: int = 20):
    """Figs 2 and 5: histograms of per-point train–train and test–train separation on [0, 1]
    (20 bins, as the paper) with a marker at 2ε."""
    columns = [c for c in ("train_train", "test_train") if c in record["distances"]]
    fig, axes = plt.subplots(1, len(columns), figsize=(5 * len(columns), 3.2), squeeze=False)
    for ax, col in zip(axes[0], columns):
        dist = np.asarray(record["distances"][col]["distance"])
        ax.hist(dist, bins=bins, range=(0, 1), color="#4c72b0")
        ax.axvline(2 * record["eps"], color="#c44e52", ls="--", label=f"2ε = {2 * record['eps']:.3g}")
        ax.set_xlabel(f"{col.replace('_', '–')} separation (l∞)")
        ax.set_ylabel("points")
        ax.set_yscale("log")
        ax.legend(loc="upper left")
    labels = "random labels" if record["random_labels"] else "original labels"
    fig.suptitle(f"{record['dataset']}: {labels}")
    fig.tight_layout()
    return fig


def separation_original_vs_random(original: dict, random: dict, *, bins: int = 20):
    """Fig 8: separation under the original labels against uniformly random labels."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for rec, color in ((original, "#4c72b0"), (random, "#dd8452")):
        dist = np.asarray(rec["distances"]["train_train"]["distance"])
        label = "random labels" if rec["random_labels"] else "original labels"
        ax.hist(dist, bins=bins, range=(0, 1), alpha=0.6, color=color, label=f"{label} (min {dist.min():.3f})")
    ax.axvline(2 * original["eps"], color="#c44e52", ls="--", label="2ε")
    ax.set_xlabel("train–train separation (l∞)")
    ax.set_ylabel("points")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title(f"{original['dataset']}: original vs random labels")
    fig.tight_layout()
    return fig


def image_pairs(pairs: list[dict]):
    """Figs 6/7 analogue: the closest cross-label pairs side by side with their distance."""
    fig, axes = plt.subplots(2, len(pairs), figsize=(2.2 * len(pairs), 4.6), squeeze=False)
    for k, pair in enumerate(pairs):
        for row, (img, label) in enumerate(((pair["query_image"], pair["query_label"]),
                                            (pair["neighbour_image"], pair["neighbour_label"]))):
            ax = axes[row][k]
            img = np.asarray(img)
            if img.shape[0] == 1:
                ax.imshow(img[0], cmap="gray", vmin=0, vmax=255)
            else:
                ax.imshow(np.transpose(img, (1, 2, 0)))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{label}" + (f"\nd∞ = {pair['distance']:.3f}" if row == 0 else ""), fontsize=9)
    fig.tight_layout()
    return fig
