"""Launching the book elsewhere: Binder's environment (repo2docker files in binder/), the Colab
and Binder buttons in _config.yml, JupyterLab's extra, and pins everywhere (an unpinned package
may pull a CUDA torch).  Binder and Colab themselves cannot be reached from here; these check
what they read."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def _requirements(path: Path) -> dict[str, str]:
    """{name: pinned version} of a requirements file, following -r includes."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line or line.startswith("--"):
            continue
        if line.startswith("-r "):
            pins.update(_requirements((path.parent / line[3:].strip()).resolve()))
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([A-Za-z0-9_.+\-]+)", line)
        assert m, f"{path.name}: {line!r} is not pinned exactly (name==version)"
        pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-test.txt", "requirements-lab.txt",
                                  "binder/requirements.txt"])
def test_every_requirement_is_pinned(name):
    assert _requirements(REPO / name)


def test_binder_gets_the_pinned_torch_as_its_cpu_build():
    main = _requirements(REPO / "requirements.txt")
    binder_text = (REPO / "binder" / "requirements.txt").read_text()
    binder = _requirements(REPO / "binder" / "requirements.txt")
    assert binder["torch"] == f"{main['torch']}+cpu"              # same release, CPU wheel
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in binder_text
    for pkg, version in main.items():                            # the tested environment, unchanged
        if pkg != "torch":
            assert binder[pkg] == version, pkg
    assert "jupyterlab" in binder and "ipywidgets" in binder and "torchvision" not in binder


def test_binder_installs_rll_and_downloads_data_on_first_use():
    post = (REPO / "binder" / "postBuild").read_text()
    assert "pip install --no-deps" in post and "-e ." in post
    assert "binder/overrides.json" in post
    start = (REPO / "binder" / "start").read_text()
    assert "export RLL_DOWNLOAD=1" in start and start.rstrip().endswith('exec "$@"')
    for script in ("postBuild", "start"):
        assert (REPO / "binder" / script).stat().st_mode & 0o111, f"binder/{script} must be executable"
    assert (REPO / "binder" / "runtime.txt").read_text().strip().startswith("python-3.")


def test_myst_twins_open_as_notebooks_in_jupyterlab():
    overrides = json.loads((REPO / "binder" / "overrides.json").read_text())
    viewers = overrides["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers == {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}
    makefile = (REPO / "Makefile").read_text()
    assert "requirements-lab.txt" in makefile and "binder/overrides.json" in makefile


def test_launch_buttons_configured():
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    buttons = config["launch_buttons"]
    assert buttons["binderhub_url"] == "https://mybinder.org"
    assert buttons["colab_url"] == "https://colab.research.google.com"
    assert config["repository"]["url"].startswith("https://github.com/")
