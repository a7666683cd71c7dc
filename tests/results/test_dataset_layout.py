"""The stitched dataset describes itself and is laid out for bbox reads: a data dictionary
and provenance in every file's ``mapflow_geo`` metadata and a README beside the parts;
rows in Hilbert order, row groups of tens of thousands of rows, zstd; geopandas and DuckDB
read only the row groups a bbox meets."""

from __future__ import annotations

import json
import os

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import shapely
from support.reads import Counting

import mapflow_geo
from mapflow_geo.results.dataset import write_frame_dataset
from mapflow_geo.results.describe import README
from mapflow_geo.results.geoparquet import (
    DESCRIPTION_KEY,
    ROW_GROUP_ROWS,
    frame_table,
    with_bbox,
    write_part,
)

FAST = {"poll_interval": 0.2, "min_poll_interval": 0.02, "progress": False}
AREA = gpd.GeoDataFrame(
    {"name": ["a", "b"]},
    geometry=[shapely.box(37.60, 55.70, 37.63, 55.72), shapely.box(37.63, 55.70, 37.66, 55.72)],
    crs=4326,
)
BLOCKS = [{"name": "Classification", "enabled": True}]
# the big dataset: objects in random order over a degree of longitude
N_BIG = 8 * ROW_GROUP_ROWS
EXTENT = (4.0, 50.5, 5.0, 51.0)
WINDOW = (4.40, 50.70, 4.45, 50.73)


# -- a run's dataset describes itself ---------------------------------------------------
@pytest.fixture(scope="module")
def written(tmp_path_factory):
    from mapflow_geo import sim

    run_dir = tmp_path_factory.mktemp("run")
    out = tmp_path_factory.mktemp("out") / "buildings"
    with sim.serve(credits=10**9) as server:
        res = AREA.mapflow.process(
            "buildings",
            blocks=BLOCKS,
            client=server.client(),
            run_dir=run_dir,
            area_limit_km2=1.0,
            max_aois=1,
            max_workers=4,
            **FAST,
        )
        processings = {p["id"]: server.imagery_date(p["id"]) for p in server.processings}
    info = mapflow_geo.open_run(run_dir, progress=False).to_parquet(
        out, partition_features=max(5, len(res.features) // 3)
    )
    return run_dir, out, info, processings, res


def test_every_file_carries_the_data_dictionary_and_provenance(written):
    run_dir, out, info, processings, res = written
    files = [*info.parts, str(out / "_common_metadata")]
    assert len(info.parts) > 1
    for path in files:
        schema = pq.read_schema(path)
        desc = json.loads(schema.metadata[DESCRIPTION_KEY.encode()])
        assert b"geo" in schema.metadata
        # the dictionary names every column, with the file's own types
        columns = {c["column"]: c for c in desc["columns"]}
        assert list(columns) == schema.names
        for field in schema:
            assert columns[field.name]["type"] == str(field.type)
            assert columns[field.name]["meaning"]
        assert columns["area_m2"]["unit"] == "m²"
        assert columns["imagery_date"]["unit"] == "UTC"
        prov = desc["provenance"]
        assert prov["run_id"] == run_dir.name
        assert prov["processings"] == sorted(processings)
        assert prov["model"] == res.params["model"] and "Buildings" in prov["model"]
        assert prov["blocks"] == BLOCKS
        assert prov["provider"] == "Mapbox"  # the service's default imagery
        assert prov["package_version"] == mapflow_geo.__version__
    # the dates are the objects' own: the imagery the simulator says each one saw
    whole = json.loads(pq.read_schema(out / "_common_metadata").metadata[b"mapflow_geo"])
    lo, hi = whole["dates"]["imagery_date"]
    seen = sorted(processings.values())
    assert (lo[:10], hi[:10]) == (seen[0], seen[-1])


def test_the_readme_describes_the_dataset(written):
    run_dir, out, info, processings, res = written
    text = (out / README).read_text()
    assert run_dir.name in text and res.params["model"] in text and "Mapbox" in text
    for name in pq.read_schema(info.parts[0]).names:
        assert f"| `{name}` |" in text
    assert f"{info.objects:,} objects" in text
    # readers take the folder as it is: the README is not a part
    assert len(gpd.read_parquet(out)) == info.objects
    assert ds.dataset(str(out), format="parquet").count_rows() == info.objects


def test_dates_have_one_type(written):
    _, out, info, _, res = written
    back = gpd.read_parquet(out)
    for col in ("imagery_date", "processing_date"):
        assert str(res.features[col].dtype) == "datetime64[ns, UTC]"
        assert pq.read_schema(info.parts[0]).field(col).type == pa.timestamp("ns", tz="UTC")
        assert back[col].dtype == res.features[col].dtype


# -- the layout: Hilbert order, row groups, bbox reads ----------------------------------
def _boxes(n: int, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(EXTENT[0], EXTENT[2], n)
    y = rng.uniform(EXTENT[1], EXTENT[3], n)
    return gpd.GeoDataFrame(
        {
            "id": np.arange(n).astype(str),
            "row": 0,
            "object_type": "buildings",
            "area": 80.0,
            "imagery_date": "2024-05-01",
        },
        geometry=shapely.box(x, y, x + 1e-4, y + 1e-4),
        crs=4326,
    )


def _meets(bounds: np.ndarray, window) -> np.ndarray:
    x0, y0, x1, y1 = window
    return (bounds[:, 0] <= x1) & (bounds[:, 2] >= x0) & (bounds[:, 1] <= y1) & (bounds[:, 3] >= y0)


def _row_group_boxes(path) -> np.ndarray:
    """Each row group's bbox from its Parquet statistics: what a reader skips on."""
    md = pq.read_metadata(path)
    names = [md.schema.column(j).path for j in range(md.num_columns)]
    out = []
    for i in range(md.num_row_groups):
        rg = md.row_group(i)
        st = {
            k: rg.column(names.index(f"bbox.{k}")).statistics
            for k in ("xmin", "ymin", "xmax", "ymax")
        }
        out.append([st["xmin"].min, st["ymin"].min, st["xmax"].max, st["ymax"].max])
    return np.array(out)


def test_a_part_is_written_in_hilbert_order(tmp_path):
    frame = _boxes(4 * ROW_GROUP_ROWS, seed=1)  # random order
    table, kinds = with_bbox(frame_table(frame))
    path = tmp_path / "part.parquet"
    write_part(table, path, kinds)
    boxes = _row_group_boxes(path)
    assert len(boxes) == 4
    extent = (EXTENT[2] - EXTENT[0]) * (EXTENT[3] - EXTENT[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    # four compact quarters, not four copies of the whole extent
    assert areas.sum() < 1.5 * extent
    back = gpd.read_parquet(path)
    assert sorted(back["id"]) == sorted(frame["id"])


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    frame = _boxes(N_BIG)
    out = tmp_path_factory.mktemp("big") / "objects"
    info = write_frame_dataset(frame, out, partition_features=N_BIG // 2)
    want = set(frame["id"][_meets(shapely.bounds(frame.geometry.values), WINDOW)])
    groups = sum(pq.read_metadata(p).num_row_groups for p in info.parts)
    met = sum(int(_meets(_row_group_boxes(p), WINDOW).sum()) for p in info.parts)
    size = sum(os.path.getsize(p) for p in info.parts)
    return out, info, want, met / groups, size


def _read_bytes(fn) -> tuple[object, int]:
    Counting.read_bytes = 0
    value = fn()
    return value, Counting.read_bytes


def test_row_groups_and_compression(big):
    out, info, want, share, size = big
    groups = 0
    for part in info.parts:
        md = pq.read_metadata(part)
        sizes = [md.row_group(i).num_rows for i in range(md.num_row_groups)]
        assert all(s == ROW_GROUP_ROWS for s in sizes[:-1]) and 0 < sizes[-1] <= ROW_GROUP_ROWS
        assert {md.row_group(0).column(j).compression for j in range(md.num_columns)} == {"ZSTD"}
        groups += md.num_row_groups
    met = sum(int(_meets(_row_group_boxes(p), WINDOW).sum()) for p in info.parts)
    assert groups >= 4 and 0 < met <= groups // 2


def test_geopandas_reads_only_the_row_groups_a_bbox_meets(big):
    out, info, want, share, size = big
    fs = Counting()
    full, full_bytes = _read_bytes(lambda: gpd.read_parquet(str(out), filesystem=fs))
    part, part_bytes = _read_bytes(lambda: gpd.read_parquet(str(out), bbox=WINDOW, filesystem=fs))
    assert len(full) == N_BIG
    assert set(part["id"]) == want and len(part) == len(want) > 0
    # the row groups the bbox meets (a quarter at most), the footers, nothing else (a full
    # read leaves out the covering column: it reads less than the files hold)
    assert share <= 0.25 and full_bytes > part_bytes
    assert part_bytes < (share + 0.05) * size, (part_bytes, full_bytes, size)


def test_duckdb_reads_only_the_row_groups_a_bbox_meets(big):
    duckdb = pytest.importorskip("duckdb")
    out, info, want, share, size = big
    x0, y0, x1, y1 = WINDOW
    where = f"bbox.xmin <= {x1} AND bbox.xmax >= {x0} AND bbox.ymin <= {y1} AND bbox.ymax >= {y0}"

    def query(sql: str):
        con = duckdb.connect()  # a fresh connection: nothing cached
        con.register_filesystem(Counting())
        con.execute("SET enable_geoparquet_conversion = false")  # geometry as its WKB
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    src = f"read_parquet('counting://{out}/*.parquet')"
    cols = "list(id), sum(octet_length(geometry))"
    (full,), full_bytes = _read_bytes(lambda: query(f"SELECT count(*), {cols} FROM {src}"))
    (part,), part_bytes = _read_bytes(
        lambda: query(f"SELECT count(*), {cols} FROM {src} WHERE {where}")
    )
    assert full[0] == N_BIG
    assert part[0] == len(want) and set(part[1]) == want
    # the row groups the bbox meets (a quarter at most), the footers, nothing else (a full
    # read leaves out the covering column: it reads less than the files hold)
    assert share <= 0.25 and full_bytes > part_bytes
    assert part_bytes < (share + 0.05) * size, (part_bytes, full_bytes, size)
