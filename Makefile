# The two entry points of the README: `make book` and `make test`. Both create (or reuse) the virtual
# environment .venv and install the pinned dependencies of pyproject.toml into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PYTEST := $(BIN)/python -m pytest

.PHONY: setup book test refs bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[book,test]"
	rm -f $(VENV)/.installed-* && touch $@

## Execute every chapter whose page is missing or stale (GPU: `full` profile, else `default`), build HTML.
book: setup
	$(BIN)/python -m c2f book

## Unit tests, the nbval regression run of the smoke notebooks, the smoke-record metrics, the book build.
test: setup
	$(PYTEST) tests/unit tests/notebooks tests/regression --nbval --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider

## Re-execute the smoke references in tests/notebooks (after a deliberate change of a chapter).
refs: setup
	$(BIN)/python -m c2f refs

## Training throughput and profile wall times (not a test).
bench: setup
	$(BIN)/python benchmarks/bench_vae.py

clean:
	rm -rf _build .pytest_cache
