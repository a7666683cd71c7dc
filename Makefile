# Two entry points, both from nothing: `make demo` and `make test`.
# Everything they need is installed by the project's own files into .venv:
# `scripts/setup.sh demo` only what the demo runs (lean: no dev tools, browser or npm),
# `scripts/setup.sh test` everything the suite needs. Each has its own stamp.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_STAMP := $(VENV)/.demo-stamp
TEST_STAMP := $(VENV)/.test-stamp

.PHONY: setup demo test test-full test-random lint clean

$(DEMO_STAMP): pyproject.toml scripts/setup.sh
	PYTHON=$(PYTHON) bash scripts/setup.sh demo
	touch $(DEMO_STAMP)

# the test setup installs everything the demo needs too
$(TEST_STAMP): pyproject.toml scripts/setup.sh
	PYTHON=$(PYTHON) bash scripts/setup.sh test
	touch $(TEST_STAMP) $(DEMO_STAMP)

setup: $(TEST_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/python -u -m mapflow_geo.demo

# Property tests replay the same examples on every run (profile "ci", tests/conftest.py),
# so a failure seen once is seen again; `make test-random` explores new ones (opt-in).
test: $(TEST_STAMP)
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest -n 2 -q

test-full: $(TEST_STAMP)
	HYPOTHESIS_PROFILE=ci MAPFLOW_FULL=1 $(BIN)/python -m pytest -n 2 -q

PROPERTY_TESTS = $(shell grep -rl --include='test_*.py' -e '^from hypothesis' tests)

test-random: $(TEST_STAMP)
	HYPOTHESIS_PROFILE=random $(BIN)/python -m pytest -n 2 -q $(PROPERTY_TESTS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check mapflow_geo tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis

# Mutation testing of the guarantee functions: tools/mutate.py applies hand-written
# mutants (create/adopt decisions, journal ordering, stitch, tiling limits, budgets,
# redaction) to a scratch copy, runs the tests guarding each, prints killed/survived.
.PHONY: mutate
mutate: $(TEST_STAMP)
	$(BIN)/python tools/mutate.py $(MUTANTS)
