# Two entry points for a fresh machine (see README):  make book   and   make test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Data root: $RLL_DATA if set, else the workplace mirror beside the repo, else ~/.cache/rll.
RLL_DATA ?= $(if $(wildcard ../shared/datasets/MNIST),$(abspath ../shared/datasets),$(HOME)/.cache/rll)
export RLL_DATA
# apt-get runs as is when we are root, else through sudo.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: install book test test-fast browser lab clean
install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-test.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-test.txt
	$(BIN)/python -m pip install --quiet --no-deps torchattacks==3.5.1
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

## Install, execute the notebooks and build the HTML book into _build/html.
book: install
	$(BIN)/jupyter-book build . --all -W -n --keep-going
	@echo "Book: file://$(abspath _build/html/book/intro.html)"

## Run the test suite (unit, real-data, notebooks, book build and browser check), in
## TEST_WORKERS processes (each test file stays in one; the book's build and browser check run
## beside the rest).
TEST_WORKERS ?= 2
test: install browser
	$(BIN)/python -m pytest -ra -n $(TEST_WORKERS) --dist loadfile

## The quick subset: everything but the slow real-data/training/book tests.
test-fast: install
	$(BIN)/python -m pytest -ra -m "not slow and not book"

## Headless Chromium for the browser check of the built book: Debian's `chromium` package,
## installed with apt-get when no chromium is on PATH (as root, or through sudo).
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
	  echo "browser check: using $$(command -v chromium || command -v chromium-browser)"; \
	else \
	  echo "browser check: Chromium is not installed; installing Debian's 'chromium' package (apt-get install chromium) ..."; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null \
	    || { echo "browser check: could not install chromium; install it (apt-get install chromium) and re-run" >&2; exit 1; }; \
	  echo "browser check: installed $$(command -v chromium) ($$(chromium --version 2>/dev/null))"; \
	fi

## JupyterLab (a pinned extra, requirements-lab.txt) with the project's kernel; the MyST twins
## in notebooks/*.md open as notebooks (jupytext).
lab: install
	$(BIN)/python -m pip install --quiet -r requirements-lab.txt
	mkdir -p $(VENV)/share/jupyter/lab/settings
	cp binder/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf _build
