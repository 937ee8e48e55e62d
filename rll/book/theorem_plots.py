"""The theorem chapter's figures: f of Theorem 4.4 over the plane (Figure 3), the close-up of g's
and a natural MLP's boundaries among the r-balls (Figure 4), astuteness against the radius,
and the three-class g of Theorem 4.2."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from rll.experiments.theory import decision_grid


def theorem_figure3(g, X, y, *, ax=None, n: int = 250, flipped=None, title: str = ""):
    """Figure 3: f of Theorem 4.4 (``g.scores``) over the plane around the sample, the
    decision boundary f = 0 in black, the points coloured by label; ``flipped`` (bool per
    point) circles the points an attack flipped.  Returns the ``Figure``."""
    Xc, yc = X.detach().cpu(), y.detach().cpu()
    lim = (Xc.min().item() - 1, Xc.max().item() + 1)
    xx, yy, f = decision_grid(g.scores, lim, lim, n=n)
    vmax = float(np.abs(f).max()) or 1.0
    fig = ax.figure if ax is not None else plt.figure(figsize=(6.4, 5.4))
    ax = ax or fig.add_subplot()
    cs = ax.contourf(xx, yy, f, levels=np.linspace(-vmax, vmax, 25), cmap="RdBu_r")
    ax.contour(xx, yy, f, levels=[0], colors="k", linewidths=1)
    ax.scatter(*Xc.T, c=yc, cmap="bwr", s=9, edgecolors="k", linewidths=0.3)
    if flipped is not None and bool(np.asarray(flipped).any()):
        pts = Xc[np.asarray(flipped, dtype=bool)]
        ax.scatter(*pts.T, s=60, facecolors="none", edgecolors="gold", linewidths=1.5, label="flipped by PGD")
        ax.legend(loc="upper right", fontsize=7)
    fig.colorbar(cs, ax=ax, label="f(x)")
    ax.set(aspect="equal", title=title or "f of Theorem 4.4 on the spiral; g = sign f")
    return fig


def figure4_closeup(g, mlp, X, y, rho: float, centre, *, half_width: float | None = None, n: int = 200):
    """Figure 4: a window of half-width ``half_width`` (default 10 ρ) around ``centre``, with f of
    Theorem 4.4 as colour, g's boundary f = 0 solid, the MLP's boundary (logit difference 0)
    dashed, and the l∞ ball of radius ``rho`` around every training point.  Returns the ``Figure``."""
    half = 10 * rho if half_width is None else half_width
    win = [(c - half, c + half) for c in torch.as_tensor(centre).tolist()]
    xz, yz, f_zoom = decision_grid(g.scores, *win, n=n)
    _, _, logits = decision_grid(mlp, *win, n=n)
    fig, ax = plt.subplots(figsize=(5.4, 5.4))
    ax.contourf(xz, yz, f_zoom, levels=np.linspace(-10, 10, 21), cmap="RdBu_r", extend="both")
    ax.contour(xz, yz, f_zoom, levels=[0], colors="k", linewidths=1.5)
    ax.contour(xz, yz, logits[..., 1] - logits[..., 0], levels=[0], colors="k", linestyles="--")
    for (px, py), label in zip(X.cpu().tolist(), y.cpu().tolist()):
        ax.add_patch(plt.Rectangle((px - rho, py - rho), 2 * rho, 2 * rho, fill=False,
                                   ec="darkred" if label else "navy"))
    ax.scatter(*X.cpu().T, c=y.cpu(), cmap="bwr", s=12, edgecolors="k", zorder=3)
    ax.set(xlim=win[0], ylim=win[1], aspect="equal", title="r-balls; g = sign f (solid) vs natural MLP (dashed)")
    return fig


def astuteness_curves(curves: dict, radii_over_r):
    """Astuteness (PGD) of each model of ``curves`` (name → values) against the attack radius in
    multiples of r, with r marked.  Returns the ``Figure``."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for (name, curve), style in zip(curves.items(), ("o-", "s--", "^-.")):
        ax.plot(radii_over_r, curve, style, label=name)
    ax.axvline(1.0, color="grey", ls=":")
    ax.set(xlabel="l∞ attack radius / r", ylabel="astuteness (PGD)", ylim=(None, 1.01))
    ax.legend()
    return fig


def three_class_figure(G, X, y, *, n: int = 200):
    """Theorem 4.2's g = argmin f for three classes on the unit square: regions and points."""
    xx, yy, logits = decision_grid(G, (0, 1), (0, 1), n=n)
    light, dark = ["#fbb4ae", "#b3cde3", "#ccebc5"], np.array(["#e41a1c", "#377eb8", "#4daf4a"])
    fig, ax = plt.subplots(figsize=(4.4, 4.4))
    ax.contourf(xx, yy, logits.argmax(-1), levels=[-0.5, 0.5, 1.5, 2.5], colors=light)
    ax.scatter(*X.cpu().T, c=dark[y.cpu().numpy()], s=14, edgecolors="k")
    ax.set(aspect="equal", title="g = argmin f, three classes")
    return fig
