# textmtl: two commands from a fresh clone.
#   make run    create .venv if missing, install, run the FDU-MTL main job (16 domains)
#   make test   create .venv if missing, install with the dev extras, run the whole test suite
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= configs/fdu_mtl_tfidf_mlp.yaml
ARGS   ?=

.PHONY: run test install install-dev benchmarks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# the stamp files re-install when pyproject.toml changes
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/textmtl run $(CONFIG) $(ARGS)

test: install-dev
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

benchmarks: install-dev
	$(BIN)/python benchmarks/fdu_hard_sharing_epoch.py

clean:
	rm -rf $(VENV) runs .pytest_cache
