"""The sample area run on a simulator that fails some of its processings."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd

from mapflow_geo import sim, sources
from support.paths import ROOT


@contextmanager
def failed_tiles_run(run_dir: Path) -> Iterator[tuple]:
    """``data/sample_aoi.geojson`` processed for buildings with their classes, on a
    simulator that fails 30 % of processings (no restarts: failed tiles stay failed):
    ``(gdf, res, server)``, with the simulator still serving."""
    gdf = gpd.read_file(ROOT / "data" / "sample_aoi.geojson")
    with sim.serve(aoi_area_limit_km2=5, processing_seconds=0, fail_fraction=0.3, seed=3) as s:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = gdf.mapflow.process(
                "buildings",
                client=s.client(),
                run_dir=run_dir,
                progress=False,
                poll_interval=0.2,
                min_poll_interval=0.05,
                errors="warn",
                max_restarts=0,
                blocks=sources.blocks(Classification=True),
            )
        yield gdf, res, s
