# The two entry points of the README: `make book` and `make test`. Both create (or reuse) the virtual
# environment .venv and install the pinned dependencies of pyproject.toml into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PYTEST := $(BIN)/python -m pytest

.PHONY: setup book test test-fast refs bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[book,test,cluster]"
	rm -f $(VENV)/.installed-* && touch $@

## Execute every chapter whose page is missing or stale (GPU: `gpu` profile, else `default`), build HTML.
## JOBS=N: chapters at a time (default: one per CPU core, or one per GPU when several are visible).
JOBS ?=
JOBS_FLAG := $(if $(JOBS),--jobs $(JOBS))
book: setup
	$(BIN)/python -m c2f book $(JOBS_FLAG)

## Unit tests (and the test of the benchmarks' ensemble), the nbval regression run of the smoke notebooks, the smoke-record metrics, the book build.
test: setup
	$(PYTEST) tests/unit benchmarks/test_ensemble.py tests/notebooks tests/regression --nbval --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider --durations=15

## The quick path while you work: unit tests not marked slow (a couple of minutes).
test-fast: setup
	$(PYTEST) tests/unit -m "not slow" -p no:cacheprovider

## Re-execute the smoke references in tests/notebooks (after a deliberate change of a chapter).
refs: setup
	$(BIN)/python -m c2f refs $(JOBS_FLAG)

## Training throughput and profile wall times (not a test).
bench: setup
	$(BIN)/python benchmarks/bench_vae.py

clean:
	rm -rf _build .pytest_cache
