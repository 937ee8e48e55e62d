"""The real book: `jupyter-book build -W` on the repository, then every page of the TOC opened
in headless Chromium (Debian's package, driven by Playwright): pages load, images load, tables
render, no executed cell shows an error, traceback or warning, internal links resolve; the
bibliography lists the cited works, the theorem blocks render numbered, the compact tables fit
the page at 1280 px, the verdicts show badges, and the launch buttons are well-formed.
Screenshots of the pages are kept in ``_build/screenshots`` as build artifacts."""
from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.book, pytest.mark.slow]


def toc_pages() -> list[str]:
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [ch["file"] for ch in part.get("chapters", [])]
    return pages


@pytest.fixture(scope="module")
def built_book(data_root) -> Path:
    proc = subprocess.run([str(Path(sys.executable).with_name("jupyter-book")), "build", str(REPO), "--all", "-W",
                           "-n", "--keep-going"], capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        reports = sorted((REPO / "_build" / "html" / "reports").glob("**/*.log"))
        detail = "\n".join(p.read_text()[-3000:] for p in reports)
        pytest.fail(f"jupyter-book build failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}\n{detail}")
    return REPO / "_build" / "html"


@pytest.fixture(scope="module")
def server(built_book):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(built_book))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `make test` installs Debian's package (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


#: Output text a reader cannot see whole: an element of an executed cell's output, or of the
#: prose, whose content is wider than its box (scrollWidth > clientWidth) — cut at the right
#: edge or hidden in a sideways scroll.  Tables are checked above; code input may scroll.
CLIPPED_TEXT = """() => Array.from(document.querySelectorAll(
        'main div.cell_output *, main p, main li, main dd, main summary'))
    .filter(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1
                 && !e.closest('table, .cell_input, mjx-container, .MathJax, svg')
                 && getComputedStyle(e).overflowX !== 'visible')
    .map(e => `${e.tagName.toLowerCase()}.${e.className}: "${e.innerText.slice(0, 60)}"`)"""


def _typeset(tab) -> None:
    """Wait until MathJax has typeset the page (pages without math return at once)."""
    if tab.query_selector(".math"):
        tab.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30000)
        tab.evaluate("() => MathJax.startup.promise.then(() => true)")


def test_every_toc_page_is_built(built_book):
    for page in toc_pages():
        assert (built_book / f"{page}.html").is_file(), f"{page}.html missing from the build"


@pytest.mark.parametrize("page", toc_pages())
def test_page_in_browser(page, server, browser, built_book):
    shots = REPO / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    failed_requests = []
    tab.on("requestfailed", lambda r: failed_requests.append(r.url) if r.url.startswith(server) else None)
    response = tab.goto(urljoin(server, f"{page}.html"), wait_until="load")
    assert response is not None and response.ok, f"{page}: HTTP {response.status if response else '—'}"
    _typeset(tab)
    tab.screenshot(path=str(shots / f"{page.replace('/', '__')}.png"), full_page=True)

    broken = tab.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
                          ".map(i => i.getAttribute('src'))")
    assert not broken, f"{page}: images that did not load: {broken}"
    assert not failed_requests, f"{page}: failed requests {failed_requests}"

    text = tab.inner_text("main") if tab.query_selector("main") else tab.inner_text("body")
    for marker in ("Traceback (most recent call last)", "Error in callback", "Warning:", "IProgress not found"):
        assert marker not in text, f"{page}: executed output shows {marker!r}"
    for raw in ("\\(", "\\[", "$$"):      # every equation typeset by MathJax, none left as TeX source
        assert raw not in text, f"{page}: math left untypeset ({raw!r} in the page text)"
    errors = tab.query_selector_all(".output.error, .output.traceback, div.cell_output .stderr")
    assert not errors, f"{page}: {len(errors)} error outputs"

    if page.startswith("notebooks/"):
        assert tab.query_selector_all("main table"), f"{page}: no table rendered"
        figures = tab.evaluate("Array.from(document.querySelectorAll('main .cell_output img'))"
                               ".filter(i => i.naturalWidth > 100).length")
        if tab.query_selector("main .rll-empty"):
            # a table page without runs: one box and the paper's table, no placeholder figures
            assert figures == 0 and len(tab.query_selector_all("main .rll-empty")) == 1, f"{page}: empty page shows {figures} figures"
            assert "python -m rll sweep" in tab.inner_text("main .rll-empty"), f"{page}: the box lacks its command"
        else:
            assert figures >= 1, f"{page}: no figure rendered"
        # the parameters cell stays visible; plumbing cells show no code
        assert tab.query_selector(".tag_parameters .cell_input"), f"{page}: parameters cell not visible"
        launch = tab.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"
                              ".filter(h => h.includes('mybinder.org') || h.includes('colab.research'))")
        stem = page.split("/")[-1]
        assert f"https://mybinder.org/v2/gh/rll-companion/rll/main?urlpath=lab/tree/notebooks/{stem}.ipynb" in launch, launch
        assert f"https://colab.research.google.com/github/rll-companion/rll/blob/main/notebooks/{stem}.ipynb" in launch, launch

    # the main table fits the page: no horizontal scroll of the page or of the table's box
    assert tab.evaluate("document.documentElement.scrollWidth") <= 1280, f"{page}: the page scrolls sideways"
    overflow = tab.evaluate("""() => Array.from(document.querySelectorAll('main table.rll-compact')).map(t => {
        let box = t.parentElement;
        while (box && box.tagName !== 'MAIN' && box.scrollWidth <= box.clientWidth) box = box.parentElement;
        return box && box.tagName !== 'MAIN' ? [t.getBoundingClientRect().width, box.clientWidth] : null; })""")
    assert not any(overflow), f"{page}: a compact table scrolls sideways at 1280 px: {overflow}"
    clipped = tab.evaluate(CLIPPED_TEXT)
    assert not clipped, f"{page}: text clipped by a box narrower than its content at 1280 px: {clipped}"

    hrefs = tab.evaluate("Array.from(document.querySelectorAll('main a[href]')).map(a => a.href)")
    for href in hrefs:
        url, _ = urldefrag(href)
        if url.startswith(server):
            target = built_book / urlparse(url).path.lstrip("/")
            if target.is_dir():
                target = target / "index.html"
            assert target.exists(), f"{page}: internal link to missing {url}"
    tab.close()


def _open(browser, server, page):
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    tab.goto(urljoin(server, f"{page}.html"), wait_until="load")
    _typeset(tab)
    return tab


def test_bibliography_lists_the_cited_works(server, browser, built_book):
    tab = _open(browser, server, "book/references")
    entries = tab.evaluate("Array.from(document.querySelectorAll('main .citation, main dl.citation > dt')).length")
    text = tab.inner_text("main")
    tab.close()
    assert entries >= 15, f"{entries} bibliography entries"
    for needle in ("A Closer Look at Accuracy vs. Robustness", "arxiv.org/abs/2003.02460", "robust-local-lipschitz",
                   "Towards Deep Learning Models Resistant", "Theoretically Principled Trade-off",
                   "Scaleable Input Gradient Regularization", "Local Linearization", "Surrogate Loss",
                   "Reliable Evaluation of Adversarial Robustness", "Robustness May Be at Odds",
                   "Overfitting in Adversarially Robust", "Document Recognition", "Tiny Images"):
        assert needle.lower() in text.lower(), f"bibliography lacks {needle!r}"   # the style lower-cases titles


def test_pages_cite_into_the_bibliography(server, browser, built_book):
    """At least 15 citations across the pages, each a link to an entry of the bibliography page."""
    total, targets = 0, set()
    for page in toc_pages():
        tab = _open(browser, server, page)
        hrefs = tab.evaluate("Array.from(document.querySelectorAll('main a[href*=\"references.html#\"]'))"
                             ".map(a => a.getAttribute('href'))")
        tab.close()
        total += len(hrefs)
        targets |= {h.split("#")[1] for h in hrefs}
    ref = (built_book / "book" / "references.html").read_text()
    assert total >= 15, f"only {total} citations in the book"
    missing = [t for t in targets if f'id="{t}"' not in ref]
    assert not missing, f"citations pointing at no bibliography entry: {missing}"


def test_theorem_blocks_render_numbered(server, browser, built_book):
    tab = _open(browser, server, "notebooks/theorem")
    titles = tab.evaluate("Array.from(document.querySelectorAll('main div.proof.admonition > p.admonition-title'))"
                          ".map(p => p.innerText.trim())")
    proofs = tab.evaluate("Array.from(document.querySelectorAll('main div.proof.admonition'))"
                          ".filter(d => d.classList.length === 2 && d.innerText.trim().startsWith('Proof.')).length")
    math = tab.evaluate("document.querySelectorAll('main mjx-container').length")
    prose = tab.evaluate("Array.from(document.querySelectorAll('main p, main li')).map(e => e.innerText).join(' ')")
    tab.close()
    assert "$" not in prose, "unparsed $…$ math left in the theorem page's prose"
    heads = [t.split("(")[0].strip() for t in titles]
    for expected in ("Definition 1", "Definition 2", "Lemma 1", "Theorem 2", "Lemma 3", "Theorem 4"):
        assert expected in heads, f"{expected} missing among the proof blocks: {titles}"
    assert proofs == 4, f"{proofs} proof blocks"
    assert any("Lemma 4.1" in t for t in titles) and any("Theorem 4.4" in t for t in titles)
    assert math >= 20, f"{math} typeset equations on the theorem page"
    # the pages that check the results link to them
    for page in ("notebooks/separation", "notebooks/proof_of_concept", "book/intro"):
        html = (built_book / f"{page}.html").read_text()
        assert "theorem.html#def-r-separation" in html or "theorem.html#thm-separation" in html, page


def test_verdicts_lead_with_badges(server, browser, built_book):
    tab = _open(browser, server, "book/verdicts")
    claims = tab.evaluate("document.querySelectorAll('main .rll-claim').length")
    badges = tab.evaluate("Array.from(document.querySelectorAll('main .rll-claim > div .rll-badge'))"
                          ".map(b => getComputedStyle(b).backgroundColor)")
    folded = tab.evaluate("Array.from(document.querySelectorAll('main .rll-claim details')).filter(d => !d.open).length")
    tab.close()
    assert claims >= 10 and len(badges) == 2 * claims and folded == claims
    assert all(b != "rgba(0, 0, 0, 0)" for b in badges), "badges without colour"


def test_status_page_has_execution_table(built_book):
    html = (built_book / "book" / "status.html").read_text()
    for page in ("notebooks/table2", "notebooks/theorem", "book/verdicts"):
        assert page in html, f"execution table lacks {page}"
    assert "Run Time (s)" in html
