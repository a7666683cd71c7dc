"""pytest plugin (entry point ``mapflow_sim``): the ``mapflow_sim`` fixture.

Options come from ``@pytest.mark.mapflow_sim(**options)`` (the closest marker wins; markers
on the class/module are merged underneath), e.g.::

    @pytest.mark.mapflow_sim(aoi_area_limit_km2=5, processing_seconds=0)
    def test_x(mapflow_sim):
        ...
"""

from __future__ import annotations

import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "mapflow_sim(**options): options for the mapflow_sim fixture (see mapflow_geo.sim.serve)",
    )


@pytest.fixture
def mapflow_sim(request):
    from . import serve

    options: dict = {}
    for mark in reversed(list(request.node.iter_markers("mapflow_sim"))):
        options.update(mark.kwargs)
    with serve(**options) as server:
        yield server
