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

# Mutation testing, never part of `make test`.
# `make mutate MODULE=mapflow_geo/_secrets.py`: mutmut generates every small change of that
# module and runs the tests guarding it (tools/mutmut_module.py: modules, tests, known
# equivalent mutants); `make mutate` does every money and answer module in turn (hours on
# two cores). ONLY='<glob>' narrows to some mutants (e.g. ONLY='*processing_pages*');
# SAMPLE=N judges a random sample of N mutants per module (docs/reliability.md).
# `make mutate-named [MUTANTS="budget secrets"]`: the hand-written mutants of the promises
# (tools/mutate.py: create/adopt decisions, journal ordering, crash points...).
.PHONY: mutate mutate-named
mutate: $(TEST_STAMP)
	$(BIN)/python tools/mutmut_module.py $(MODULE) $(if $(ONLY),--only '$(ONLY)') $(if $(SAMPLE),--sample $(SAMPLE))

mutate-named: $(TEST_STAMP)
	$(BIN)/python tools/mutate.py $(MUTANTS)
