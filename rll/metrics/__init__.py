"""The columns of the paper's tables: clean and adversarial accuracy, generalization gaps and
the empirical local Lipschitz constant (Eq. 3).

Accuracies are in **percent**, as the paper's tables print them.  Every function works in
batches on whatever device the model is on (inputs may stay on the CPU), runs the model in
eval mode and restores the caller's train/eval flags, uses ``torch.no_grad()`` wherever no
input gradient is needed, and can show a ``tqdm`` progress bar (refreshed at most once a
second, so executed notebooks stay small).

>>> from rll.metrics import table_metrics
>>> row = table_metrics(model, (x_train, y_train), (x_test, y_test), eps=0.1)
>>> row["adv_test_acc"], row["test_lipschitz"]
"""
from __future__ import annotations

from rll.metrics.accuracy import (
    ATTACKS,
    AUTOATTACK_OF,
    accuracy,
    adversarial_accuracy,
    adversarial_correct,
    autoattack_correct,
    correct,
    mt_selection_accuracies,
    mt_selection_correct,
    per_class_accuracy,
    per_class_percent,
    predictions,
)
from rll.metrics.evaluate import (
    SUBSET_SEED,
    EvalPlan,
    autoattack_flags,
    evaluate,
    fixed_subset,
    table_metrics,
)
from rll.metrics.lipschitz import (
    DENOMINATOR_FLOOR,
    LIPSCHITZ_MODES,
    RELEASED_DENOMINATOR_SHIFT,
    RELEASED_STEP,
    lipschitz_ratios,
    local_lipschitz,
)

__all__ = ["ATTACKS", "AUTOATTACK_OF", "predictions", "accuracy", "per_class_accuracy", "correct", "adversarial_accuracy", "adversarial_correct", "autoattack_correct", "per_class_percent", "mt_selection_correct", "mt_selection_accuracies", "LIPSCHITZ_MODES", "DENOMINATOR_FLOOR", "RELEASED_DENOMINATOR_SHIFT", "RELEASED_STEP", "lipschitz_ratios", "local_lipschitz", "SUBSET_SEED", "fixed_subset", "EvalPlan", "evaluate", "autoattack_flags", "table_metrics"]
