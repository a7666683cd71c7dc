"""A run keeps the objects it stores, as decoded, for ``res.features``: the frame built
from them is the frame a reopened run reads from its files (geometries, columns, dtypes,
row order), and it matches the simulator's ground truth; past ``keep_run_features`` a
run keeps none and reads its files."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from support.areas import grid_gdf, rect_km
from support.campaign import FAST
from support.truth import check_against_truth, truth_in

import mapflow_geo
from mapflow_geo import open_run, sim
from mapflow_geo.results.io import Piece, kept_piece
from mapflow_geo.run.store import KeptPieces

SEAMS = gpd.GeoDataFrame(  # two rows cut into 1 km² tiles: seams, several AOIs a processing
    {"name": ["a", "b"]},
    geometry=[rect_km(37.56, 55.745, 3.0, 2.0), rect_km(37.62, 55.745, 1.5, 2.5)],
    crs=4326,
)
CASES = {
    # one polygon a processing (its whole result), some geometry repaired or dropped
    "squares": (grid_gdf(4, km=0.8), {"max_aois": 1},
                {"aoi_area_limit_km2": 25, "faults": {"damaged_geometry": 0.05}}),
    "seams": (SEAMS, {"area_limit_km2": 1.0}, {}),
    # small squares: one processing of six AOIs, its results fetched per AOI
    "per AOI": (grid_gdf(6, km=0.8), {}, {"aoi_area_limit_km2": 25}),
    # the service serves no result per AOI: the whole result, stored per tile
    "whole result per tile": (grid_gdf(6, km=0.8), {},
                              {"aoi_area_limit_km2": 25, "result_per_aoi": False}),
}  # fmt: skip


def _run(tmp_path, case: str):
    """The run of ``case``; its run dir copied aside, then its result files removed:
    ``res.features`` can only come from what the run kept."""
    gdf, opts, sim_opts = CASES[case]
    with sim.serve(seed=11, processing_seconds=0, **sim_opts) as server:
        res = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path / "run", **opts, **FAST
        )
        date = server.imagery_date(str(res.processings["processing_id"].iloc[0]))
        truth = truth_in(server, gdf.geometry, date)
    assert res.complete and len(res.files) > 1
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    shutil.rmtree(tmp_path / "run" / "results")
    return res, truth


@pytest.mark.parametrize("case", list(CASES))
def test_the_kept_frame_is_the_stored_frame_and_the_truth(tmp_path, case):
    res, (truth, _, damage) = _run(tmp_path, case)
    fresh = res.features
    stored = open_run(tmp_path / "copy", progress=False).features
    assert_geodataframe_equal(fresh, stored, check_dtype=True, check_index_type=True)
    assert list(fresh.columns) == list(stored.columns)
    assert (shapely.to_wkb(fresh.geometry.values) == shapely.to_wkb(stored.geometry.values)).all()
    for col in ("tile_id", "processing_id"):
        assert isinstance(fresh[col].dtype, pd.CategoricalDtype)
        assert list(fresh[col].cat.categories) == sorted(fresh[col].cat.categories)
    pieces = set(fresh["tile_id"].astype(str).str.split("+").explode())
    assert pieces <= set(res.tiles["tile_id"].astype(str))
    assert set(fresh["processing_id"].astype(str).str.split("+").explode()) <= set(
        res.processings["processing_id"]
    )
    if case == "squares":
        assert res.qa["repaired"].sum() > 0 and res.qa["dropped"].sum() > 0
    if case in ("per AOI", "whole result per tile"):  # one processing of several AOIs
        assert len(res.processings) == 1 and len(res.files) == len(res.tiles) == 6
    if case == "seams":
        assert fresh["tile_id"].astype(str).str.contains("+", regex=False).any()  # stitched
    check_against_truth(np.asarray(fresh.geometry.values), truth, damage)


@pytest.mark.parametrize("limit", [0, 50])
def test_past_the_limit_a_run_keeps_nothing_and_reads_its_files(tmp_path, limit):
    with mapflow_geo.set_options(keep_run_features=limit):
        res, _ = _run(tmp_path, "squares")
    assert res.n_pieces > limit
    with pytest.raises(OSError):
        res.features  # noqa: B018 - the files are gone: nothing was kept


def test_keep_run_features_is_checked():
    with pytest.raises(ValueError, match="keep_run_features"):
        mapflow_geo.set_options(keep_run_features=-1)


def _piece(n: int) -> Piece:
    geoms = shapely.points(np.arange(n), np.zeros(n))
    table = pa.table({"id": [str(i) for i in range(n)], "geometry": shapely.to_wkb(geoms)})
    return kept_piece(table, geoms)


@pytest.mark.parametrize(("limit", "kept"), [(250, 10), (200, 10), (199, 0), (100, 0)])
def test_a_run_stops_keeping_once_its_density_predicts_too_many(limit, kept):
    """Ten pieces of 20 objects over 1 km² each, of a 10 km² plan: 200 objects."""
    pieces = KeptPieces(limit, area_km2=10.0)
    for i in range(10):
        pieces.add(Path(f"p{i}"), _piece(20), 1.0)
        if limit < 200:  # predicted from the first tenth: 200 objects
            assert not pieces.open and not pieces.pieces
    assert len(pieces.pieces) == kept and pieces.open == (kept > 0)


def test_a_pickled_result_carries_nothing_kept_and_reads_its_files(tmp_path):
    """A result pickles (the kept objects stay behind); unpickled, it reads the same
    objects from its files, and without them it has nothing to show."""
    gdf, opts, _ = CASES["squares"]
    with sim.serve(seed=11, processing_seconds=0) as server:
        res = gdf.mapflow.process(
            "buildings", client=server.client(), run_dir=tmp_path / "run", **opts, **FAST
        )
    blob = pickle.dumps(res)
    assert len(blob) < 10 * len(res.files) * 1024 + 1_000_000  # files' list, not objects
    again = pickle.loads(blob)
    assert_geodataframe_equal(again.features, res.features, check_dtype=True)
    shutil.rmtree(tmp_path / "run" / "results")
    with pytest.raises(OSError):
        pickle.loads(blob).features  # noqa: B018 - nothing kept travelled with it
