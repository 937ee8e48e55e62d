# Two entry points for a fresh machine (see README):  make book   and   make test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Data root: $RLL_DATA if set, else the workplace mirror beside the repo, else ~/.cache/rll.
RLL_DATA ?= $(if $(wildcard ../shared/datasets/MNIST),$(abspath ../shared/datasets),$(HOME)/.cache/rll)
export RLL_DATA

.PHONY: install book test test-fast clean
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

## Run the test suite (unit, real-data, notebooks, book build and browser check).
test: install
	$(BIN)/python -m pytest -ra

## The quick subset: everything but the slow real-data/training/book tests.
test-fast: install
	$(BIN)/python -m pytest -ra -m "not slow and not book"

clean:
	rm -rf _build
