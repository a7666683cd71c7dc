"""The ``api`` fixture of the simulator tests: raw HTTP to the ``mapflow_sim`` simulator."""

from __future__ import annotations

import pytest
from support.sim_http import Api


@pytest.fixture
def api(mapflow_sim):
    return Api(mapflow_sim)
