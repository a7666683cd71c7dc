"""Shared test settings. The ``mapflow_sim`` fixture comes from the package's pytest
plugin (entry point ``mapflow_sim``), as it does for users."""

import os

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
# ``make test-random``: new examples each run, and a failure prints how to reproduce it.
settings.register_profile("random", parent=settings.get_profile("default"), print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
