"""The book's table layout, downloads, verdict badges and prose numbers (rll.book.report), on frames
built by the real table code from records written through the real results store."""
from __future__ import annotations

import base64
import math
import re

import numpy as np
import pandas as pd
import pytest

from rll.analysis.evidence import Verdict
from rll.analysis.frames import table_frame
from rll.book import report
from rll.book.findings import (
    budget_fractions,
    findings,
    findings_html,
    paper_mixed_lines,
    short_claim,
    verdict_counts,
    verdict_phrases,
)
from rll.config import TrainConfig
from rll.experiments.sweep import collect_runs
from rll.experiments.tables import table_configs
from rll.store import ResultsStore


def _frame(rows: dict) -> pd.DataFrame:
    """A two-level table frame like table_frame's: rows = {method: {metric: (ours, sd, paper)}}."""
    out = []
    for method, metrics in rows.items():
        row = {("", "model"): "cnn1", ("", "method"): method, ("", "runs"): 3}
        for metric, (ours, sd, paper) in metrics.items():
            row[(metric, "ours")], row[(metric, "±")], row[(metric, "paper")] = ours, sd, paper
            row[(metric, "Δ")] = ours - paper
        out.append(row)
    frame = pd.DataFrame(out)
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame


def test_format_cell():
    assert report.format_cell(98.931, 0.1234, 99.37) == "98.93 ± 0.12 (99.37)"
    assert report.format_cell(98.931, math.nan, 99.37) == "98.93 (99.37)"          # one seed: no spread
    assert report.format_cell(math.nan, math.nan, 99.37) == "— (99.37)"              # not yet run
    assert report.format_cell(1.5, 0.25, math.nan) == "1.50 ± 0.25"                  # paper has no value


def test_compact_frame_follows_the_frames_metrics():
    """One column per metric of the frame, in its order, labelled by METRIC_LABELS; a metric the
    mapping does not know (e.g. a new attack's column) still shows, under its own name."""
    frame = _frame({"AT": {"test_acc": (98.0, 0.5, 99.0), "test_lipschitz_released": (3.0, 0.1, np.nan),
                           "autoattack_acc": (90.0, 1.0, 91.0)}})
    compact = report.compact_frame(frame)
    assert list(compact.columns) == ["model", "method", "runs", "test acc.",
                                     "test Lipschitz (released estimator)", "autoattack acc"]
    assert compact.iloc[0]["test acc."] == "98.00 ± 0.50 (99.00)"
    assert compact.iloc[0]["test Lipschitz (released estimator)"] == "3.00 ± 0.10"


def test_delta_colours_sign_and_scale():
    frame = _frame({"A": {"test_acc": (90.0, np.nan, 99.0)}, "B": {"test_acc": (99.5, np.nan, 99.0)},
                    "C": {"test_acc": (np.nan, np.nan, 99.0)}})
    css = report.delta_colours(frame)["test acc."].tolist()
    assert "rgba(9, 105, 218, 0.55)" in css[0]          # ours lower: blue, the column's largest |Δ|
    assert css[1].startswith("background-color: rgba(207, 34, 46") and "0.03" in css[1]   # higher: faint red
    assert css[2] == ""                                 # no Δ, no colour


def test_table_block_has_compact_table_legend_and_full_download():
    frame = _frame({"AT": {"test_acc": (98.0, 0.5, 99.0), "gap": (1.0, 0.2, 0.5)}})
    block = report.table_block(frame, "t2.csv")._repr_html_()
    assert 'class="rll-compact"' in block and "98.00<br>" in block and "± 0.50</span>" in block
    assert "(99.00)</span>" in block
    href = re.search(r'href="data:text/csv;base64,([^"]+)"', block).group(1)
    csv = base64.b64decode(href).decode()
    header = csv.splitlines()[0].split(",")
    assert {"test_acc ours", "test_acc ±", "test_acc paper", "test_acc Δ", "gap Δ"} <= set(header)
    assert 'download="t2.csv"' in block


def _write(store: ResultsStore, config: TrainConfig, metrics: dict) -> None:
    store.put(config, metrics, {"n_train": 100, "n_test": 50, "device": "cpu", "git_commit": "abc",
                                "started_utc": "2026-01-01T00:00:00"})


def test_table_numbers_from_real_table_frame(tmp_path):
    configs = table_configs("table2", dataset="mnist", models=["cnn1"],
                                        methods=["natural", "at", "trades(beta=6)", "gr"], epochs=1, seeds=(0, 1))
    store = ResultsStore(tmp_path)
    adv = {"natural": 10.0, "at": 80.0, "trades": 70.0, "gr": 40.0}
    lip = {"natural": 50.0, "at": 5.0, "trades": 2.0, "gr": 30.0}
    for c in configs:
        _write(store, c, {"train_acc": 99.0, "test_acc": 98.0 + c.seed, "adv_test_acc": adv[c.method] + c.seed,
                          "test_lipschitz": lip[c.method], "test_lipschitz_released": lip[c.method],
                          "gap": 1.0, "adv_gap": 2.0})
    runs = collect_runs(configs, results_dir=tmp_path, exact_budget=True)
    frame = table_frame(runs, attack="pgd")
    numbers = report.table_numbers(frame)
    assert numbers["most_robust_ours"] == "AT at 80.50%"
    assert numbers["smoothest_ours"] == "TRADES(β=6) at 2.00"
    # ranks of Lipschitz (TRADES 1, AT 2, GR 3, natural 4) against adversarial accuracy (natural 1,
    # GR 2, TRADES 3, AT 4): Σd² = 4 + 4 + 1 + 9 = 18, ρ = 1 − 6·18 / (4·15) = −0.80
    assert numbers["spearman_ours"] == "CNN1 -0.80 (4 rows)"
    assert numbers["rows_run"] == "4" and numbers["seeds_max"] == "2"
    paper_lip = [67.25, 8.84, 2.87, 26.05]    # Table 2, CNN1: Natural, AT, TRADES(β=6), GR (the paper's text)
    ratios = sorted(p / ours for p, ours in zip(paper_lip, (50.0, 5.0, 2.0, 30.0)))
    assert numbers["lipschitz_paper_over_ours"] == (f"{(ratios[1] + ratios[2]) / 2:.1f}× ours (median over 4 rows; "
                                                    f"{ratios[0]:.1f}× to {ratios[3]:.1f}×)")
    # natural CNN1: PGD-10 10.5 (mean of 10 and 11) against Table 2's 59.83, Lipschitz 50 against 67.25
    assert numbers["natural_beside_paper"] == ("Natural: PGD-10 accuracy 10.50 % against the paper's 59.83 %, with a "
                                               "Lipschitz constant of 50.00 against the paper's 67.25 (1.3× ours)")
    seeds = report.seed_frame(runs)
    assert len(seeds) == 8 and set(seeds["seed"]) == {0, 1}
    assert "±" in report.compact_frame(frame).iloc[0]["test acc."]        # two seeds: the spread is shown


def test_table_numbers_without_runs_say_so():
    configs = table_configs("table3", dataset="cifar10", epochs=1)
    frame = table_frame([(c, None) for c in configs], attack="pgd")
    numbers = report.table_numbers(frame)
    assert numbers["most_robust_ours"] == report.NO_RUN and numbers["smoothest_ours"] == report.NO_RUN
    assert numbers["lipschitz_paper_over_ours"] == report.NO_RUN
    assert numbers["most_robust_paper"].endswith("%") and numbers["spearman_paper"].endswith(" rows)")
    assert numbers["spearman_ours"] == "not defined (fewer than four rows of a model)"
    assert report.compact_frame(frame).iloc[0]["test acc."].startswith("— (")


def test_verdicts_html_one_line_per_claim_with_badges():
    verdicts = [Verdict("Claim A", "3", "holds", "ev A", "mixed", "pe A"),
                Verdict("Claim <B>", "5.2", "not yet run", "", "does not hold", "pe B")]
    out = report.verdicts_html(verdicts)._repr_html_()
    assert out.count('class="rll-claim"') == 2 and out.count("<details") == 2
    assert out.count('class="rll-badge"') == 2 * 2 + 2 * 2      # per claim: two in the line, two in the evidence
    assert "#1a7f37" in out and "#cf222e" in out and "#bf8700" in out and "#6e7781" in out
    assert "Claim &lt;B&gt;" in out                           # escaped
    counts = verdict_counts(verdicts)
    assert counts["claims"] == 2 and counts["ours_holds"] == 1 and counts["paper_does_not_hold"] == 1
    # the prose's phrases agree with their numbers ("1 holds", "0 are mixed", "2 ... not yet run")
    phrases = verdict_phrases(counts | {"ours_not_yet_run": 2})
    assert phrases["ours_holds_phrase"] == "1 holds" and phrases["paper_does_not_hold_phrase"] == "1 does not hold"
    assert phrases["ours_mixed_phrase"] == "0 are mixed" and phrases["paper_mixed_phrase"] == "1 is mixed"
    assert phrases["ours_not_yet_run_phrase"] == "2 are not yet run"
    assert phrases["ours_depends_on_the_reading_phrase"] == "0 depend"
    assert "claims_phrase" not in phrases


def test_separation_numbers():
    records = [{"dataset": "mnist", "eps": 0.1, "random_labels": False, "train_train_min": 0.737,
                "test_train_min": 0.812},
               {"dataset": "mnist", "eps": 0.1, "random_labels": True, "train_train_min": 0.1}]
    n = report.separation_numbers(records)
    assert (n["train_min"], n["train_ratio"], n["test_min"], n["random_min"]) == ("0.737", "7.4", "0.812", "0.100")


@pytest.mark.parametrize("value, out", [(None, report.NO_RUN), (float("nan"), report.NO_RUN), (1.234, "1.23")])
def test_fmt(value, out):
    assert report.fmt(value, missing=report.NO_RUN) == out


def test_proof_of_concept_layout_with_control_column():
    row = {("", "dataset"): "mnist", ("", "eps"): 0.3, ("", "runs"): 2}
    for metric in ("test_acc", "adv_test_acc"):
        row.update({(metric, "with test set"): 99.5, (metric, "±"): 0.1, (metric, "paper"): 99.9, (metric, "Δ"): -0.4,
                    (metric, "without (control)"): 90.0, (metric, "± (control)"): 1.0})
    frame = pd.DataFrame([row])
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    compact = report.compact_frame(frame, ours="with test set", extra={"without (control)": "± (control)"})
    assert compact.iloc[0]["adv. test acc., with test set"] == "99.50 ± 0.10 (99.90)"
    assert compact.iloc[0]["adv. test acc., without (control)"] == "90.00 ± 1.00"
    assert "rgba(9, 105, 218" in report.delta_colours(frame, ours="with test set")["adv. test acc., with test set"].iloc[0]


def test_budget_fractions_state_our_image_epochs_against_the_papers():
    # 34 000 × 3 = 102 000 of 60 000 × 160 = 9 600 000 image-epochs: 1.0625 %
    assert budget_fractions({"mnist": {"cnn2": {"train_size": 34000, "epochs": 3}}}) == [
        "CNN2 34 000 images × 3 epochs = 1.1 % of the paper's 60 000 × 160"]
    assert budget_fractions({"mnist": {"cnn1": {"train_size": None, "epochs": 40}}}) == [
        "CNN1 60 000 images × 40 epochs = 25.0 % of the paper's 60 000 × 160"]


def test_findings_give_each_family_its_verdicts_and_why_they_are_missing():
    from rll.analysis.evidence import OUTSIDE_REGIME, Verdict

    verdicts = [
        Verdict("sep", "3, Table 1", "holds", "e", "holds"),
        Verdict("a", "5.2, 5.4", OUTSIDE_REGIME, "paper reading (…): inconclusive — outside the paper's regime — "
                "3 of 20 rows not fitted as the paper's were. On these runs the claim would be 'holds': x", "mixed"),
        Verdict("b", "5.2", "holds", "e", "holds"),
        Verdict("d", "5.3, Table 4", "not yet run", "", "holds"),
    ]
    items = {i["title"].split(" (")[0]: i["text"] for i in findings(verdicts)}
    assert items["Real data are r-separated"] == "on our runs: holds; on the paper's own numbers: holds."
    assert items["Robust training and local Lipschitzness"] == (
        f"on our runs: a: {OUTSIDE_REGIME}; b: holds; on the paper's own numbers: holds, mixed. Our runs are "
        "outside the paper's regime: 3 of 20 rows not fitted as the paper's were.")
    assert items["Dropout narrows the gaps"].startswith("on our runs: not yet run; on the paper's own numbers: holds. "
                                                        "Not run here: it needs wide ResNets")
    same = [Verdict("AT, RST and TRADES produce the most robust classifiers", "5.2, 5.4", "holds", "", "holds"),
            Verdict("Local Lipschitzness is correlated with adversarial accuracy", "5.2", "holds", "", "holds")]
    assert findings(same)[0]["text"].startswith("on our runs: all 2 claims: holds;")
    assert short_claim("Under the multi-targeted attack too, AT, RST and TRADES are the smoothest") == \
        "MT: smoothest"
    html = findings_html(findings(verdicts))._repr_html_()
    assert '<a href="../notebooks/table2.html"><b>Robust training' in html
    # a table claim waiting for a block's rows says how many are stored, once per block
    waiting = [Verdict(c, "5.2", "not yet run", "mnist/cnn2 left out until all its rows are stored (3 of 10) || "
                       "released reading (GR, LLR and every CNN1 row as the released code trained them): not yet run", "holds")
               for c in ("Local Lipschitzness is correlated with adversarial accuracy", "The robust methods have larger")]
    assert findings(waiting)[0]["text"] == (
        "on our runs: all 2 claims: not yet run; on the paper's own numbers: holds. Judged once every row of a "
        "block is trained at the table budget: mnist/cnn2: 3 of 10 rows stored so far.")


def test_the_papers_mixed_verdicts_say_where_in_one_line():
    from rll.analysis.evidence import Verdict

    verdicts = [Verdict("The robust methods have larger clean and adversarial generalization gaps", "5.2", "x", "", "mixed",
                        "mixed: holds for cifar10 clean gap; does not hold for mnist/cnn1 clean gap. cifar10: ..."),
                Verdict("Local Lipschitzness is correlated", "5.2", "x", "", "holds", "e")]
    assert paper_mixed_lines(verdicts) == [
        "larger generalization gaps (§ 5.2): holds for cifar10 clean gap; does not hold for mnist/cnn1 clean gap"]
