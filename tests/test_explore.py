"""The theorem chapter's JupyterLab sliders (rll.book.explore): moving a slider recomputes the
spiral, Figure 3 and the astuteness check, with Theorem 4.4's guarantee holding inside r."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from rll.book import explore  # noqa: E402


def test_theorem_check_astute_inside_r_not_beyond():
    inside = explore.theorem_check(n=60, noise=0.5, radius=0.9, mlp_epochs=30, attack_steps=10)
    assert inside["g_clean"] == 1.0 and inside["g_astuteness"] == 1.0 and not inside["g_flipped"].any()
    assert inside["attack_radius"] == pytest.approx(0.9 * inside["rho"])
    beyond = explore.theorem_check(n=60, noise=0.5, radius=3.0, mlp_epochs=30, attack_steps=10)
    assert beyond["g_astuteness"] < 1.0 and beyond["g_flipped"].any()
    with pytest.raises(ValueError, match="n must be an even integer"):
        explore.theorem_check(n=3)
    with pytest.raises(ValueError, match="radius must be"):
        explore.theorem_check(radius=-1)


def test_sliders_redraw_figure_and_check():
    ex = explore.theorem_explorer(n=60, noise=0.5, mlp_epochs=30, attack_steps=10, draw=False)
    assert ex.last is None and set(ex.sliders) == {"n", "noise", "p", "radius"}
    ex.sliders["n"].value = 80                       # a slider release redraws
    assert len(ex.last["X"]) == 80 and ex.last["g_astuteness"] == 1.0
    assert "astuteness 1.000" in ex.status.value
    r_inf = ex.last["r"]
    ex.sliders["p"].value = "1"                      # l1: another separation, another l∞ attack radius
    assert ex.last["r"] != r_inf and ex.last["rho"] == pytest.approx(ex.last["r"] / 2)
    ex.sliders["radius"].value = 3.0
    assert ex.last["g_astuteness"] < 1.0
    assert len(ex.output.outputs) == 1 and "image/png" in ex.output.outputs[0]["data"]   # the redrawn figure
