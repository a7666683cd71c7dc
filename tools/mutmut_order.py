"""A pytest plugin for mutation runs only: each mutant's tests run fastest first.

mutmut runs a mutant's tests with ``-x`` in the order it lists them, so a mutant that
the first quick test kills can still wait for a slow simulator test that runs before it.
This plugin sorts the collected tests by the durations mutmut recorded in its clean run
(``mutmut-stats.json``, read from the working folder mutmut runs the tests in); tests it
has no duration for keep their order, last. Copied into the mutation work folder by
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
    items.sort(key=lambda item: durations.get(item.nodeid, unknown))
