"""result.to_xarray: grid, CRS, counts, coverage accuracy, forest height classes."""

import geopandas as gpd
import numpy as np
import pytest
import shapely

xr = pytest.importorskip("xarray")
pytest.importorskip("rioxarray")

import mapflow_geo  # noqa: E402,F401
from mapflow_geo.results.raster import grid_for, rasterize_features  # noqa: E402

FAST = {"poll_interval": 0.2, "min_poll_interval": 0.02, "progress": False}
AOI = gpd.GeoDataFrame(
    geometry=[shapely.box(37.60, 55.70, 37.63, 55.72), shapely.box(37.635, 55.70, 37.66, 55.715)],
    crs=4326,
)


@pytest.fixture(scope="module")
def buildings_run(tmp_path_factory):
    from mapflow_geo import sim

    with sim.serve() as server:
        return AOI.mapflow.process(
            "buildings",
            client=server.client(),
            run_dir=tmp_path_factory.mktemp("run"),
            area_limit_km2=2,
            **FAST,
        )


def exact_coverage(features, ds):
    """Per-cell exact shapely intersection (the slow reference)."""
    geoms = features.to_crs(ds.rio.crs).geometry.values
    union = shapely.union_all(geoms)
    t = ds.rio.transform()
    res = t.a
    out = np.zeros((ds.sizes["y"], ds.sizes["x"]))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            cell = shapely.box(
                t.c + j * res, t.f - (i + 1) * res, t.c + (j + 1) * res, t.f - i * res
            )
            out[i, j] = shapely.intersection(union, cell).area / cell.area
    return out


def test_grid_crs_counts_and_coverage(buildings_run):
    res = buildings_run
    ds = res.to_xarray(resolution_m=50, supersample=4)
    assert isinstance(ds, xr.Dataset)
    assert ds.rio.crs.to_epsg() == 32637  # the AOI's UTM zone
    assert ds.rio.transform().a == 50 and ds.rio.transform().e == -50
    assert (np.diff(ds["x"]) == 50).all() and (np.diff(ds["y"]) == -50).all()
    assert int(ds["count"].sum()) == len(res.features)
    assert {"aoi_fraction", "count", "buildings_coverage"} <= set(ds.data_vars)
    assert float(ds["aoi_fraction"].max()) == 1.0 and float(ds["aoi_fraction"].min()) == 0.0
    # area: rasterised coverage × cell area ≈ the objects' area
    area = float(ds["buildings_coverage"].sum()) * 50 * 50
    true = res.features.to_crs(32637).area.sum()
    assert area == pytest.approx(true, rel=0.01)
    # per cell against exact intersection
    exact = exact_coverage(res.features, ds)
    err = np.abs(ds["buildings_coverage"].values - exact)
    assert err.mean() < 0.02 and err.max() < 0.25
    fine = res.to_xarray(resolution_m=50, supersample=16)
    assert np.abs(fine["buildings_coverage"].values - exact).mean() < err.mean()
    # ready for zonal statistics: clip to one input row
    clipped = ds[["count"]].astype("float64").rio.clip([AOI.geometry.iloc[1]], crs=4326)
    assert 0 < int(clipped["count"].sum()) < int(ds["count"].sum())


def test_given_crs_and_errors(buildings_run):
    ds = buildings_run.to_xarray(resolution_m=100, crs=3857)
    assert ds.rio.crs.to_epsg() == 3857
    assert int(ds["count"].sum()) == len(buildings_run.features)
    with pytest.raises(ValueError, match="geographic"):
        buildings_run.to_xarray(resolution_m=100, crs=4326)
    with pytest.raises(ValueError, match="> 0"):
        grid_for(AOI, 0)


def test_forest_height_classes_and_strips(tmp_path):
    from mapflow_geo import sim

    aoi = AOI.iloc[:1]
    with sim.serve() as server:
        res = aoi.mapflow.process(
            "Forest with heights", client=server.client(), run_dir=tmp_path, **FAST
        )
        geoms, props = server.truth(aoi.geometry.iloc[0], "forest")
    # the world's truth: each height class's area inside the row
    truth = gpd.GeoDataFrame({"class": props["class"]}, geometry=list(geoms), crs=4326)
    truth["geometry"] = truth.intersection(aoi.geometry.iloc[0])
    truth = truth[~truth.is_empty]
    true_area = truth.to_crs(32637).dissolve("class").area
    assert len(true_area) >= 2  # the test needs more than one class
    ds = res.to_xarray(resolution_m=100, strip_rows=3)
    shares = [v for v in ds.data_vars if v.startswith("forest_") and v != "forest_coverage"]
    assert shares == [f"forest_{c.replace('-', '_')}" for c in sorted(true_area.index)]
    for c, area in true_area.items():
        got = float(ds[f"forest_{c.replace('-', '_')}"].sum()) * 100 * 100
        assert got == pytest.approx(area, rel=0.02)
    total = sum(ds[v] for v in shares)
    assert float(np.abs(total - ds["forest_coverage"]).max()) < 1e-5  # classes do not overlap
    one_strip = res.to_xarray(resolution_m=100, strip_rows=10_000)
    xr.testing.assert_allclose(ds, one_strip)


def test_empty_features():
    empty = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=4326))
    ds = rasterize_features(empty, AOI, resolution_m=200)
    assert int(ds["count"].sum()) == 0 and "aoi_fraction" in ds
