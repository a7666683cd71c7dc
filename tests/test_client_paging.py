"""The client's paging against the simulator's record: a sweep's ``terms`` filter is
sent and applied by the service (its own listing rule), so a sweep for one name sees
only the processings the service says match."""

from __future__ import annotations

from mapflow_geo import sim, sources

SMALL = {  # ~0.35 km²
    "type": "Polygon",
    "coordinates": [
        [[37.60, 55.75], [37.61, 55.75], [37.61, 55.755], [37.60, 55.755], [37.60, 55.75]]
    ],
}


def test_a_sweep_with_terms_lists_only_the_matching_processings():
    """``processing_pages(project, terms=...)`` sends ``terms`` in the page request: of
    three processings, the two named "north …" come back, the service's own filter
    (name or description containing the terms, case-insensitive) deciding which."""
    with sim.serve(processing_seconds=0, seed=1) as server:
        client = server.client()
        pid = client.default_project_id()
        for name in ("north block", "North yard", "south block"):
            client.create_processing(
                name=name, wdName="🏠 Buildings", geometry=SMALL, projectId=pid,
                params=sources.data_provider("Mapbox", zoom=18),
            )  # fmt: skip
        pages = list(client.processing_pages(pid, terms="north", page_size=1))
        everything = list(client.processing_pages(pid, page_size=2))
    names = sorted(p.name for page in pages for p in page.items)
    assert names == ["North yard", "north block"]
    assert pages[-1].complete and pages[-1].total == 2
    assert sum(len(page.items) for page in everything) == 3
