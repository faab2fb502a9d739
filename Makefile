# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install into it,
# torch first from its pinned CPU build (constraints.txt), so nothing pulls the CUDA packages.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HASH   := $(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
BASE   := $(VENV)/.base-$(HASH)
TESTS  := $(VENV)/.test-$(HASH)

.PHONY: demo test install clean

install: $(BASE)

$(BASE): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e .
	rm -f $(VENV)/.base-* && touch $@

$(TESTS): $(BASE)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	rm -f $(VENV)/.test-* && touch $@

demo: $(BASE)
	$(BIN)/vaekit train --config configs/demo.toml --out runs/demo --overwrite
	@echo "results in runs/demo: samples.png reconstructions.png loss.png metrics.csv model.safetensors"

test: $(TESTS)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache
