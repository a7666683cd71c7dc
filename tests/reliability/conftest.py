"""Reliability and security campaigns.

Every test here carries the ``reliability`` marker. The default run (``make test``) uses
bounded counts; ``MAPFLOW_FULL=1`` (``make test-full``) runs the full campaigns.
"""

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/reliability/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.reliability)
