"""Shared test settings. The ``mapflow_sim`` fixture comes from the package's pytest
plugin (entry point ``mapflow_sim``), as it does for users."""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# CI (``.ci/run``, ``make test``): the same examples on every run, so a failure found once
# shows again; failing cases found by the random run are kept as explicit ``@example``s.
settings.register_profile(
    "ci", parent=settings.get_profile("default"), derandomize=True, database=None
)
# ``make test-random``: new examples each run (also where Hypothesis would derandomise on
# its own, as it does when the environment says CI), and a failure prints how to
# reproduce it.
settings.register_profile(
    "random", parent=settings.get_profile("default"), derandomize=False, print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Every test has a bounded time (pytest-timeout; ``timeout`` in pyproject.toml, 300 s), so
# a rule broken into a loop fails its test instead of hanging the suite. Long campaigns
# get a longer bound: the ``slow`` and ``reliability`` markers and the heavy files below
# (their own ``@pytest.mark.timeout`` wins), longer still in their full form.
LONG_S = 3600 if os.environ.get("MAPFLOW_FULL") else 900
LONG_FILES = ("tests/browser/", "test_scale.py", "test_notebooks.py", "test_runner_kill.py")


@pytest.fixture(autouse=True)
def _package_options_restored():
    """Options a test or a docs example sets for the process do not reach the next test."""
    from mapflow_geo.results._options import OPTIONS

    saved = dict(OPTIONS)
    yield
    OPTIONS.clear()
    OPTIONS.update(saved)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("timeout") is not None:
            continue
        path = str(item.fspath).replace("\\", "/")
        long = item.get_closest_marker("slow") or "/reliability/" in path
        if long or any(f in path for f in LONG_FILES):
            item.add_marker(pytest.mark.timeout(LONG_S))
