"""A pytest plugin for mutation runs only: each mutant's tests run fastest first.

mutmut runs a mutant's tests with ``-x`` in the order it lists them, so a mutant that
the first quick test kills can still wait for a slow simulator test that runs before it.
This plugin sorts the collected tests by the durations mutmut recorded in its clean run
(``mutmut-stats.json``, read from the working folder mutmut runs the tests in): the
files by their total, each file's tests by their own, so that a file's module-scoped
fixtures (a simulator, a finished run) are still set up once. Tests it has no duration
for come last. Copied into the mutation work folder by
``tools/mutmut_module.py``; never loaded by the test suite.
"""

from __future__ import annotations

import json
from pathlib import Path


def pytest_collection_modifyitems(session, config, items):
    try:
        durations = json.loads(Path("mutmut-stats.json").read_text())["duration_by_test"]
    except (OSError, ValueError, KeyError):
        return  # mutmut's clean run, which records the durations
    unknown = float("inf")
    per_file: dict[str, float] = {}
    for item in items:
        file = item.nodeid.split("::")[0]
        per_file[file] = per_file.get(file, 0.0) + durations.get(item.nodeid, unknown)
    items.sort(
        key=lambda item: (per_file[item.nodeid.split("::")[0]], durations.get(item.nodeid, unknown))
    )
