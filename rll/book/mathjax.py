"""Sphinx extension: the book typesets its math offline, from a pinned MathJax copied into the build.

Sphinx loads MathJax from a CDN by default, so a book built and opened without a network shows
raw LaTeX.  This extension points ``mathjax_path`` at ``_static/mathjax/tex-mml-chtml.js`` and,
when the HTML build finishes, copies that file with the parts it loads on demand (the CHTML
fonts, the TeX extensions, the menu and accessibility components) from the pinned package
``django-static-mathjax`` (MathJax 3.2.2, ``requirements.txt``).  Enabled in ``_config.yml``
(``sphinx.extra_extensions``).
"""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

#: What is copied from MathJax's ``es5`` folder (about 4 MB), relative to it.
PARTS = ("tex-mml-chtml.js", "output/chtml/fonts", "input/tex/extensions", "ui", "a11y")
ENTRY = "mathjax/tex-mml-chtml.js"


def mathjax_source() -> Path:
    """MathJax's ``es5`` folder inside the installed ``django-static-mathjax`` package."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the book's offline MathJax needs the package django-static-mathjax "
                           "(requirements.txt): pip install django-static-mathjax==3.2.2.1")
    return Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax" / "es5"


def _point_at_local_copy(app, config) -> None:
    config.mathjax_path = ENTRY


def _copy(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    src, dest = mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
    for part in PARTS:
        if (src / part).is_dir():
            shutil.copytree(src / part, dest / part, dirs_exist_ok=True)
        else:
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / part, dest / part)


def setup(app):
    mathjax_source()        # fail at the start of the build, not after it
    app.connect("config-inited", _point_at_local_copy)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
