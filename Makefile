# Two entry points, both from nothing: `make demo` and `make test`.
# Everything they need is installed by the project's own files into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test test-full lint clean

$(STAMP): pyproject.toml scripts/setup.sh
	PYTHON=$(PYTHON) bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m mapflow_geo.demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

test-full: $(STAMP)
	MAPFLOW_FULL=1 $(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check mapflow_geo tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
