"""The GR diagnosis (rll.analysis.gr_diagnosis) on hand-made learning curves."""
from __future__ import annotations

from rll.analysis import gr_diagnosis


def run(losses, *, h=None, beta=1.0, lr=0.0064, milestones=()):
    history = [{"epoch": i + 1, "lr": lr, "loss": loss,
                "curve": {"test_acc": 95.0, "adv_test_acc": 85.0, "test_lipschitz_released": 2.0, "train_acc": 95.0}}
               for i, loss in enumerate(losses)]
    return {"config": {"dataset": "mnist", "model": "cnn2", "method": "gr", "fidelity": "paper", "seed": 0,
                       "attack": "pgd", "train_size": None, "milestones": list(milestones), "lr": lr,
                       "params": {"beta": beta, "h": h, "direction": "l2"}},
            "metrics": {}, "provenance": {"history": history, "fidelity_revision": 2}}


def test_stability_is_whether_the_loss_kept_falling():
    # 0.509 at its lowest, 0.807 at the end: 58 % above, more than the 10 % allowed
    assert gr_diagnosis.stability(run([0.802, 0.566, 0.509, 0.541, 0.650, 0.807])) == (
        False, "loss rose from 0.509 (epoch 3) to 0.807 (epoch 6)")
    assert gr_diagnosis.stability(run([0.55, 0.18, 0.13, 0.14])) == (True, "loss fell to 0.140 by epoch 4")  # 7.7 %


def test_variants_are_named_by_what_differs_from_the_paper_reading():
    records = [run([0.8, 0.5, 0.9]), run([0.5, 0.2, 0.1], h=1.0), run([0.9, 0.4, 0.39], lr=0.0032),
               run([0.5, 0.3, 0.2], beta=0.1), run([0.5, 0.2, 0.1], milestones=(2,))]
    labels = [label for label, _ in gr_diagnosis.variant_runs(records)]
    assert labels == ["the paper reading (h = 0.01, β = 1)", "h = 1 (the released code's step)",
                      "learning rate 0.0032 (0.5× the paper's)", "β = 0.1"]        # the decayed run is not one
    assert gr_diagnosis.finding(records) == (
        "At the paper's learning rate on all 60 000 images, unstable: the paper reading (h = 0.01, β = 1); stable: "
        "h = 1 (the released code's step); learning rate 0.0032 (0.5× the paper's); β = 0.1.")


def test_the_step_of_a_run_without_its_own_is_its_revisions_default():
    old, new = run([0.5]), run([0.5])
    new["provenance"]["fidelity_revision"] = 3
    assert (gr_diagnosis.step(old), gr_diagnosis.step(new), gr_diagnosis.step(run([0.5], h=0.5))) == (0.01, 1.0, 0.5)
