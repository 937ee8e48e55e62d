"""The intro's first screen: one sentence per claim family with its verdict, the data and the budget
as a fraction of the paper's, and why the paper's own numbers are mixed where they are."""
from __future__ import annotations

import html
import re

from rll.book.report import HTML
from rll.config import SCHEDULES


def verdict_counts(verdicts) -> dict:
    """How many claims hold, fail, are mixed, inconclusive (either kind) or not yet run, on our
    runs and on the paper's numbers: ``{"ours_holds": 3, "paper_mixed": 1, ...}`` (every key
    present)."""
    out = {}
    for who in ("ours", "paper"):
        for verdict in ("holds", "does not hold", "mixed", "depends on the reading", "not yet run"):
            out[f"{who}_{verdict.replace(' ', '_')}"] = sum(getattr(v, who) == verdict for v in verdicts)
        out[f"{who}_inconclusive"] = sum(str(getattr(v, who)).startswith("inconclusive") for v in verdicts)
    out["claims"] = len(verdicts)
    return out


#: Each count of :func:`verdict_counts` as the prose says it, singular and plural.
_VERBS = {"holds": ("holds", "hold"), "does_not_hold": ("does not hold", "do not hold"),
          "mixed": ("is mixed", "are mixed"), "depends_on_the_reading": ("depends", "depend"),
          "not_yet_run": ("is not yet run", "are not yet run"), "inconclusive": ("is inconclusive", "are inconclusive")}


def agree(n: int, one: str, many: str) -> str:
    """``n`` followed by the words that agree with it: ``agree(1, "holds", "hold")`` is
    ``"1 holds"``, ``agree(0, "holds", "hold")`` is ``"0 hold"``."""
    return f"{n} {one if n == 1 else many}"


def verdict_phrases(counts: dict) -> dict:
    """:func:`verdict_counts` as phrases for the prose, under the same keys with ``_phrase``
    appended: ``{"ours_holds_phrase": "1 holds", "paper_mixed_phrase": "2 are mixed", ...}``."""
    out = {}
    for key, n in counts.items():
        who, _, verdict = key.partition("_")
        if who in ("ours", "paper") and verdict in _VERBS:
            out[f"{key}_phrase"] = agree(n, *_VERBS[verdict])
    return out


#: The paper's training set sizes and MNIST schedule, for our budgets as a fraction of its.
PAPER_TRAIN_IMAGES = {"mnist": 60_000}


def budget_fractions(budgets: dict) -> list[str]:
    """Each model's table budget (``{dataset: {model: {"train_size", "epochs", ...}}}``, e.g.
    :data:`rll.experiments.tables.TABLE_BUDGETS`) as training images × epochs and as a percentage of
    the paper's image-epochs (all its training images × its schedule's epochs)."""
    out = []
    for dataset, models in budgets.items():
        full = PAPER_TRAIN_IMAGES[dataset] * SCHEDULES[dataset].epochs
        for model, b in sorted(models.items()):
            images = b.get("train_size") or PAPER_TRAIN_IMAGES[dataset]
            out.append(f"{model.upper()} {images:,} images × {b['epochs']} epochs = "
                       f"{100 * images * b['epochs'] / full:.1f} % of the paper's "
                       f"{PAPER_TRAIN_IMAGES[dataset]:,} × {SCHEDULES[dataset].epochs}".replace(",", " "))
    return out


#: Claim families of the intro's findings: (title, sections of the claims in it, where to read more).
FAMILIES = (
    ("Real data are r-separated (Section 3)", ("3, Table 1",), "../notebooks/separation"),
    ("Robust training and local Lipschitzness (Section 5, Tables 2, 9, 10)",
     ("5.2, 5.4", "5.2", "D.1, Tables 9–13"), "../notebooks/table2"),
    ("Dropout narrows the gaps (Section 5.3, Table 4)", ("5.3, Table 4",), "../notebooks/table4"),
    ("The multi-targeted attack is stronger than PGD (Appendix D.1)", ("D.1, Tables 9–14",), "../notebooks/attacks"),
    ("Trained with the test set, networks are nearly perfectly robust (Appendix B)", ("Appendix B, Table 6",),
     "../notebooks/proof_of_concept"),
)


#: Why a family has no runs here (the machines this book is built on), by section.
NOT_RUN_WHY = {"5.3, Table 4": "it needs wide ResNets trained on SVHN and CIFAR-10: SVHN is not in this "
                               "workplace's data mirror, CIFAR-10's test set is missing there, and no GPU was lent "
                               "to the sessions that ran it"}


#: A block a table claim waits for (:func:`rll.analysis.evidence._complete`'s note).
_WAITING = re.compile(r"(\S+) left out until all its rows are stored \((\d+) of (\d+)\)")


def findings(verdicts) -> list[dict]:
    """The intro's first screen: one entry per claim family (:data:`FAMILIES`), ``{"title",
    "text", "link"}`` — the verdicts of its claims on our runs and on the paper's numbers, and
    for a verdict outside the paper's regime or not yet run, why (:func:`findings_html` lays
    them out)."""
    out = []
    for title, sections, link in FAMILIES:
        vs = [v for v in verdicts if v.section in sections]
        if not vs:
            continue
        if len({v.ours for v in vs}) == 1:
            ours = vs[0].ours if len(vs) == 1 else f"all {len(vs)} claims: {vs[0].ours}"
        else:   # name each claim's verdict
            ours = "; ".join(f"{short_claim(v.claim)}: {v.ours}" for v in vs)
        paper = ", ".join(sorted({v.paper for v in vs}))
        text = f"on our runs: {ours}; on the paper's own numbers: {paper}."
        outside = next((v for v in vs if v.ours == "inconclusive — outside the paper's regime"), None)
        if outside is not None and (summary := _regime_summary(outside.ours_evidence)):
            text += f" Our runs are outside the paper's regime: {summary}."
        if all(v.ours == "not yet run" for v in vs):
            why = next((NOT_RUN_WHY[s] for s in sections if s in NOT_RUN_WHY), "")
            waiting = sorted({f"{m[1]}: {m[2]} of {m[3]} rows" for v in vs for m in _WAITING.finditer(v.ours_evidence)})
            text += f" Not run here: {why}." if why else ""
            text += (" Judged once every row of a block is trained at the table budget: "
                     + "; ".join(waiting) + " stored so far."
                     if waiting else "")
        out.append({"title": title, "text": text, "link": link})
    return out


#: Short names of the claims, for the intro's one line per family (by the claim's opening words).
SHORT_CLAIMS = (
    ("Under the multi-targeted attack too, AT, RST and TRADES are the most robust", "MT: most robust"),
    ("Under the multi-targeted attack too, AT, RST and TRADES are the smoothest", "MT: smoothest"),
    ("Under the multi-targeted attack too, local Lipschitzness", "MT: Lipschitz–robustness correlation"),
    ("AT, RST and TRADES produce the most robust", "most robust"),
    ("AT, RST and TRADES produce the smoothest", "smoothest"),
    ("Local Lipschitzness is correlated", "Lipschitz–robustness correlation"),
    ("The robust methods have larger", "larger generalization gaps"),
    ("Dropout narrows the clean", "clean gap"),
    ("Dropout narrows the adversarial", "adversarial gap"),
    ("Dropout lowers", "Lipschitz constant"),
)


def short_claim(claim: str) -> str:
    """A claim's short name (:data:`SHORT_CLAIMS`), else its first words."""
    return next((short for start, short in SHORT_CLAIMS if claim.startswith(start)), " ".join(claim.split()[:6]))


def paper_mixed_lines(verdicts) -> list[str]:
    """For each claim the paper's own numbers support only in part, one line: where they do and
    where not (the ``mixed:`` lead of its evidence, :func:`rll.analysis.claims._why_mixed`)."""
    out = []
    for v in verdicts:
        if v.paper == "mixed":
            why = v.paper_evidence.split(". ", 1)[0] if v.paper_evidence.startswith("mixed:") else v.paper_evidence
            out.append(f"{short_claim(v.claim)} (§ {v.section}): {why.removeprefix('mixed: ')}")
    return out


def findings_html(items: list[dict]) -> HTML:
    """:func:`findings` as a bulleted list, each family's title linking to its page (relative to
    a page in ``book/``)."""
    lis = "".join(f'<li><a href="{html.escape(i["link"])}.html"><b>{html.escape(i["title"])}</b></a> — '
                  f'{html.escape(i["text"])}</li>' for i in items)
    return HTML(f'<ul class="rll-findings">{lis}</ul>',
                text="\n".join(f"• {i['title']} — {i['text']}" for i in items))


def _regime_summary(evidence: str) -> str:
    """The counts that open a regime failure's evidence (:func:`rll.analysis.evidence._in_regime`), of the
    paper reading where both readings are shown."""
    for text in evidence.split(" || "):
        if ". On these runs" in text:
            text = text.split("inconclusive — outside the paper's regime — ", 1)[-1].split(". On these runs", 1)[0]
            reading, sep, rest = text.partition(" reading: ")
            return f"{rest} (the {reading} reading)" if sep and reading in ("paper", "released") else text
    return ""
