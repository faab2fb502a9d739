# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install into it,
# torch first from its pinned CPU build (constraints.txt), so nothing pulls the CUDA packages.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HASH   := $(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
BASE   := $(VENV)/.base-$(HASH)
TESTS  := $(VENV)/.test-$(HASH)
PEER   := $(VENV)/.peer-$(HASH)
DOCS   := $(VENV)/.docs-$(HASH)

.PHONY: demo test lint docs pictures install clean bench-peer-install bench-peer bench-floor bench-smoke

install: $(BASE)

$(BASE): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e .
	rm -f $(VENV)/.base-* && touch $@

$(TESTS): $(BASE)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	rm -f $(VENV)/.test-* && touch $@

$(DOCS): $(TESTS)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[docs]'
	rm -f $(VENV)/.docs-* && touch $@

# the peers: pythae pins its own torch, so it goes in without dependencies, then the few it needs, so the pinned
# torch stays; PyOD (benchmarks/anomaly.py) through the bench extra
$(PEER): $(BASE)
	$(BIN)/python -m pip install -q -c constraints.txt cloudpickle imageio "pydantic>=2" scipy tqdm -e '.[bench]'
	$(BIN)/python -m pip install -q --no-deps pythae==0.1.2
	rm -f $(VENV)/.peer-* && touch $@

# the one install command every benchmark names where a peer is missing: installs, runs nothing
bench-peer-install: $(PEER)

# installs the peers, then runs benchmarks/peer.py (ARGS=--quick for a smoke run); bench-floor: step_floor.py
bench-peer: bench-peer-install
	$(BIN)/python benchmarks/peer.py $(ARGS)

bench-floor: bench-peer-install
	$(BIN)/python benchmarks/step_floor.py $(ARGS)

# every benchmark's smoke run in turn, into runs/smoke: a line each (exit status, seconds); fails if any failed
bench-smoke: bench-peer-install
	$(BIN)/python tools/bench_smoke.py $(ARGS)

demo: $(BASE)
	$(BIN)/vaekit train --config configs/demo.toml --out runs/demo --overwrite
	@echo "results in runs/demo: samples.png reconstructions.png loss.png metrics.csv model.safetensors"

# the lint and type gate: ruff (rules and format) and mypy, as configured in pyproject.toml
lint: $(TESTS)
	$(BIN)/ruff check src tests benchmarks tools && $(BIN)/ruff format --check src tests benchmarks tools && $(BIN)/mypy

# the suite on every core: one pytest-xdist worker per core, each with one torch thread (4 minutes against 7
# serially on a 2-core Xeon)
test: lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n auto

# the site, offline: benchmark pages rendered from benchmarks/results/*.json, then mkdocs --strict into site/
docs: $(DOCS)
	$(BIN)/python tools/benchmark_pages.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	@echo "site/index.html"

# the pictures the tutorial and the guides show, made by running their code in full (minutes); PAGES=tutorial
# for some of them
pictures: $(BASE)
	$(BIN)/python tools/docs.py pictures $(PAGES)

clean:
	rm -rf $(VENV) runs .pytest_cache site
