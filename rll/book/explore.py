"""Interactive versions of the book's figures, for JupyterLab (``ipywidgets``).  The book
itself shows each figure once, at the notebook's parameters; here sliders redraw it.

:func:`theorem_explorer` is the theorem chapter's: sliders for the spiral's size ``n`` and
``noise``, the metric ``p`` and the attack radius (as a multiple of r) redraw Figure 3 and
the astuteness check of Theorem 4.4's classifier g = sign f against a naturally trained MLP.
"""
from __future__ import annotations

import io
import math

import matplotlib.pyplot as plt

from rll.book.theorem_plots import theorem_figure3
from rll.data import make_spiral
from rll.experiments import theory


def theorem_check(*, n: int = 300, noise: float = 0.75, p="inf", radius: float = 0.99, seed: int = 0,
                  mlp_epochs: int = 300, attack_steps: int = 20) -> dict:
    """One setting of the theorem chapter: the spiral (``n``, ``noise``, ``seed``), its
    separation r in l_p, Theorem 4.4's g and a natural MLP, both attacked with l∞ PGD at
    ``radius`` × the l∞ radius the l_p guarantee covers.  Returns ``r``, ``rho`` (that l∞ radius),
    the attack radius, both models' clean accuracy and astuteness, and the points each attack
    flipped, with the data and ``g``."""
    params = theory.check_theorem_params(n=n, noise=noise, seed=seed, p=p, mlp_epochs=mlp_epochs,
                                         attack_steps=attack_steps)
    if not (isinstance(radius, (int, float)) and math.isfinite(radius) and radius >= 0):
        raise ValueError(f"radius must be a finite multiple of r >= 0, got {radius!r}")
    X, y = make_spiral(params.n, noise=params.noise, seed=params.seed)
    r = theory.sample_separation(X, y, params.p)
    rho = theory.linf_radius(r, params.p)
    g = theory.BinaryDistanceClassifier(X, y, p=params.p)
    mlp = theory.fit_mlp(X, y, epochs=params.mlp_epochs, seed=params.seed)
    attack = dict(steps=params.attack_steps, restarts=3, seed=params.seed)
    out = {"X": X, "y": y, "g": g, "r": r, "rho": rho, "attack_radius": radius * rho}
    rows, flipped = theory.astuteness_rows({"g": g, "mlp": mlp}, X, y, radius * rho, **attack)
    for name in ("g", "mlp"):
        out[f"{name}_clean"] = rows[name]["clean accuracy"]
        out[f"{name}_astuteness"] = rows[name]["astuteness"]
        out[f"{name}_flipped"] = flipped[name].numpy()
    return out


def summary_line(check: dict) -> str:
    """The astuteness check of :func:`theorem_check` in one sentence."""
    return (f"r = {check['r']:.4f}; attack radius {check['attack_radius']:.4f} (l∞). "
            f"g = sign f: clean {check['g_clean']:.3f}, astuteness {check['g_astuteness']:.3f}; "
            f"natural MLP: clean {check['mlp_clean']:.3f}, astuteness {check['mlp_astuteness']:.3f}")


class TheoremExplorer:
    """Sliders (n, noise, p, attack radius / r) and an output that redraws Figure 3 and the
    astuteness check whenever one is released.  ``last`` holds the latest
    :func:`theorem_check`; ``widget`` is the ipywidgets box (displayed by the notebook)."""

    def __init__(self, *, n: int = 300, noise: float = 0.75, p="inf", radius: float = 0.99, seed: int = 0,
                 mlp_epochs: int = 300, attack_steps: int = 20, draw: bool = True):
        import ipywidgets as w

        self.fixed = dict(seed=seed, mlp_epochs=mlp_epochs, attack_steps=attack_steps)
        style = {"description_width": "9em"}
        self.sliders = {
            "n": w.IntSlider(value=n, min=20, max=600, step=20, description="points n", continuous_update=False,
                             style=style),
            "noise": w.FloatSlider(value=noise, min=0.0, max=2.0, step=0.05, description="noise",
                                   continuous_update=False, style=style),
            "p": w.Dropdown(options=["inf", "2", "1"], value=str(p), description="metric l_p", style=style),
            "radius": w.FloatSlider(value=radius, min=0.0, max=3.0, step=0.05, description="attack radius / r",
                                    continuous_update=False, style=style),
        }
        self.output = w.Output()
        self.status = w.HTML("<i>Move a slider, or press draw.</i>")
        self.button = w.Button(description="draw", icon="refresh")
        self.button.on_click(lambda _b: self.redraw())
        for slider in self.sliders.values():
            slider.observe(lambda _change: self.redraw(), names="value")
        self.widget = w.VBox([w.HBox([self.sliders["n"], self.sliders["noise"]]),
                              w.HBox([self.sliders["p"], self.sliders["radius"], self.button]), self.status,
                              self.output])
        self.last: dict | None = None
        self.figure = None
        if draw:
            self.redraw()

    def values(self) -> dict:
        v = {k: s.value for k, s in self.sliders.items()}
        v["p"] = v["p"] if v["p"] == "inf" else int(v["p"])
        v["n"] = int(v["n"]) // 2 * 2
        return v

    def redraw(self) -> dict:
        """Recompute :func:`theorem_check` at the sliders' values and redraw."""
        from IPython.display import Image


        self.status.value = "<i>computing…</i>"
        check = theorem_check(**self.values(), **self.fixed)
        self.last = check
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
        theorem_figure3(check["g"], check["X"], check["y"], ax=axes[0], n=150,
                              flipped=check["g_flipped"], title="Figure 3: f of Theorem 4.4, g = sign f")
        names = ["g = sign f", "natural MLP"]
        clean = [check["g_clean"], check["mlp_clean"]]
        robust = [check["g_astuteness"], check["mlp_astuteness"]]
        pos = range(len(names))
        axes[1].bar([i - 0.2 for i in pos], clean, width=0.4, label="clean accuracy", color="#8c8c8c")
        axes[1].bar([i + 0.2 for i in pos], robust, width=0.4, label="astuteness (PGD)", color="#4c72b0")
        axes[1].set_xticks(list(pos), names)
        axes[1].set(ylim=(0, 1.05), title=f"attack radius {self.values()['radius']:.2f} r")
        axes[1].legend(loc="lower left", fontsize=8)
        fig.tight_layout()
        self.figure = fig
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        plt.close(fig)
        self.output.outputs = ()                     # replace the previous figure
        self.output.append_display_data(Image(data=buffer.getvalue(), format="png"))
        self.status.value = summary_line(check)
        return check

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def theorem_explorer(**kwargs) -> TheoremExplorer:
    """:class:`TheoremExplorer` with the given starting values (display it in JupyterLab)."""
    return TheoremExplorer(**kwargs)
