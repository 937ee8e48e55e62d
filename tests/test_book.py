"""The real book: `jupyter-book build -W` on the repository, then every page of the TOC opened
in headless Chromium (Debian's package, driven by Playwright): pages load, images load, tables
render, no executed cell shows an error or traceback, internal links resolve.  Screenshots of
the pages are kept in ``_build/screenshots`` as build artifacts."""
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
    tab.screenshot(path=str(shots / f"{page.replace('/', '__')}.png"), full_page=True)

    broken = tab.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
                          ".map(i => i.getAttribute('src'))")
    assert not broken, f"{page}: images that did not load: {broken}"
    assert not failed_requests, f"{page}: failed requests {failed_requests}"

    text = tab.inner_text("main") if tab.query_selector("main") else tab.inner_text("body")
    for marker in ("Traceback (most recent call last)", "Error in callback"):
        assert marker not in text, f"{page}: executed output shows {marker!r}"
    errors = tab.query_selector_all(".output.error, .output.traceback, div.cell_output .stderr")
    assert not errors, f"{page}: {len(errors)} error outputs"

    if page.startswith("notebooks/"):
        assert tab.query_selector_all("main table"), f"{page}: no table rendered"
        figures = tab.evaluate("Array.from(document.querySelectorAll('main img')).filter(i => i.naturalWidth > 100).length")
        assert figures >= 1, f"{page}: no figure rendered"

    hrefs = tab.evaluate("Array.from(document.querySelectorAll('main a[href]')).map(a => a.href)")
    for href in hrefs:
        url, _ = urldefrag(href)
        if url.startswith(server):
            target = built_book / urlparse(url).path.lstrip("/")
            if target.is_dir():
                target = target / "index.html"
            assert target.exists(), f"{page}: internal link to missing {url}"
    tab.close()
