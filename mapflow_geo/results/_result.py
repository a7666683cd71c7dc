"""The :class:`MapflowResult` a run returns: objects, tiles, costs and stats."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from mapflow_geo.results import stats as _stats
from mapflow_geo.results.dask import to_dask
from mapflow_geo.results.io import FILE_COLUMNS
from mapflow_geo.results.raster import to_xarray
from mapflow_geo.results.tables import present


class MapflowResult:
    """What a run produced: objects, the plan with statuses, costs and stats.

    Attributes
    ----------
    features : GeoDataFrame
        Detected objects with Mapflow's properties plus ``row`` (input index label),
        ``tile_id`` and ``processing_id``; objects cut at tile seams are stitched.
    tiles : GeoDataFrame
        The plan with ``status``, ``processing_id``, ``area_km2``, ``cost``,
        ``messages`` and timings.
    aois : GeoDataFrame
        The prepared input areas (EPSG:4326), indexed by input row label.
    run_dir : Path or None
        Where the run's journal and files live (reopen with :func:`open_run`).
    files : DataFrame
        The stored result files (``path``, ``tile_id``, ``features``): the unstitched
        pieces as a partitioned GeoParquet dataset, read by :meth:`to_dask`.
    """

    def __init__(
        self,
        *,
        features: gpd.GeoDataFrame,
        tiles: gpd.GeoDataFrame,
        aois: gpd.GeoDataFrame,
        processings: pd.DataFrame,
        run_dir: str | Path | None = None,
        files: pd.DataFrame | None = None,
    ) -> None:
        self.features = features
        self.tiles = tiles
        self.aois = aois
        self.processings = processings
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.files = files if files is not None else pd.DataFrame(columns=FILE_COLUMNS)

    # -- tables --------------------------------------------------------------------
    @property
    def failed(self) -> gpd.GeoDataFrame:
        """Tiles that did not succeed, with their readable messages."""
        return self.tiles[self.tiles["status"] != "OK"]

    @property
    def costs(self) -> pd.DataFrame:
        """Per input row: area, processings, estimated and charged credits; a total row."""
        return _stats.cost_table(self)

    @property
    def stats(self) -> pd.DataFrame:
        """Per input row: object counts and areas by type / class, density, coverage."""
        return _stats.stats_table(self)

    def summary(self) -> gpd.GeoDataFrame:
        """The input areas with the stats and cost columns joined on."""
        return _stats.summary_frame(self)

    @property
    def complete(self) -> bool:
        """True when every tile succeeded."""
        return bool((self.tiles["status"] == "OK").all())

    def __repr__(self) -> str:
        n_ok = int((self.tiles["status"] == "OK").sum())
        return (
            f"<MapflowResult: {len(self.features)} features from {n_ok}/{len(self.tiles)} "
            f"tiles in {len(self.processings)} processings, "
            f"{int(self.processings['cost'].fillna(0).sum())} credits charged>"
        )

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(self.__repr__()[1:-1])}</p>" + self.costs_table("html")

    # -- review (the client is passed in: results know no HTTP) ------------------
    def processing_ids(self) -> list[str]:
        """The ids of the run's processings on the service (created ones only)."""
        ids = self.tiles["processing_id"] if "processing_id" in self.tiles else []
        return sorted({str(i) for i in ids if isinstance(i, str) and i})

    def _targets(self, processing_id: str | None) -> list[str]:
        ids = [processing_id] if processing_id is not None else self.processing_ids()
        if not ids:
            raise ValueError("the run has no processing on the service to review")
        return ids

    def rate(
        self,
        rating: int,
        *,
        feedback: str | None = None,
        client: Any,
        processing_id: str | None = None,
    ) -> list[str]:
        """Rate one processing, or every processing of the run, 1–5 (with ``feedback``),
        through ``client.rate_processing``. Returns the ids rated.

        Examples
        --------
        >>> res.rate(5, feedback="clean outlines", client=client)   # doctest: +SKIP
        """
        ids = self._targets(processing_id)
        for pid in ids:
            client.rate_processing(pid, rating, feedback)
        return ids

    def accept(self, *, client: Any, processing_id: str | None = None) -> list[str]:
        """Accept one processing in review, or every processing of the run."""
        ids = self._targets(processing_id)
        for pid in ids:
            client.accept_processing(pid)
        return ids

    def reject(
        self,
        comment: str,
        *,
        client: Any,
        processing_id: str | None = None,
        features: Any = None,
    ) -> list[str]:
        """Reject one processing in review, or every processing of the run, with a
        ``comment`` (and corrected ``features``, a FeatureCollection)."""
        ids = self._targets(processing_id)
        for pid in ids:
            client.reject_processing(pid, comment, features)
        return ids

    def review(self, client: Any) -> gpd.GeoDataFrame:
        """Fill ``reviewStatus`` and ``rating`` columns into :attr:`tiles`, by
        processing, from ``client.get_processing`` (one call per processing); returns
        the tiles."""
        status: dict[str, Any] = {}
        rating: dict[str, Any] = {}
        for pid in self.processing_ids():
            p = client.get_processing(pid)
            status[pid] = None if p.review_status is None else str(p.review_status)
            rating[pid] = p.rating
        pids = self.tiles["processing_id"] if "processing_id" in self.tiles else None
        if pids is None:
            self.tiles = self.tiles.assign(reviewStatus=None, rating=None)
        else:
            self.tiles = self.tiles.assign(
                reviewStatus=pids.map(status).astype("object"),
                rating=pids.map(rating).astype("Int64"),
            )
        return self.tiles

    # -- presentation (results.tables, mapflow_geo.viz) ------------------------
    def costs_table(self, fmt: str = "styler", path: str | Path | None = None) -> Any:
        """:attr:`costs` formatted: a pandas ``Styler`` (notebooks), or ``"markdown"``,
        ``"html"``, ``"csv"`` text; also written to ``path`` when given."""
        return present(self.costs, fmt, path, caption="Credits per input row")

    def stats_table(self, fmt: str = "styler", path: str | Path | None = None) -> Any:
        """:attr:`stats` formatted, as :meth:`costs_table`."""
        return present(self.stats, fmt, path, caption="Objects per input row")

    def preview(self, **options: Any) -> Any:
        """A folium map: input areas, tiles by status (popups with the error), objects
        by class, legend and layer control. See :func:`mapflow_geo.viz.preview_result`
        (``max_features`` / ``large`` for big results, ``client`` for Mapflow's layers)."""
        from mapflow_geo.viz import preview_result  # presentation reaches up (as explore)

        return preview_result(self, **options)

    def plot(self, ax: Any = None, **options: Any) -> Any:
        """A matplotlib map (areas, objects by class, failed tiles, legend, scale bar);
        returns the Axes. See :func:`mapflow_geo.viz.plot_result`."""
        from mapflow_geo.viz import plot_result  # presentation reaches up

        return plot_result(self, ax, **options)

    def to_image(self, path: str | Path, *, dpi: float = 150, **options: Any) -> Path:
        """Save :meth:`plot` as PNG, SVG or PDF (by extension). See
        :func:`mapflow_geo.viz.save_image`."""
        from mapflow_geo.viz import save_image  # presentation reaches up

        return save_image(self, path, dpi=dpi, **options)

    def to_file(self, path: str | Path, **kwargs: Any) -> None:
        """Write :attr:`features` (GeoPackage, GeoJSON, GeoParquet by extension)."""
        path = Path(path)
        if path.suffix.lower() == ".parquet":
            self.features.to_parquet(path, **kwargs)
        else:
            self.features.to_file(path, **kwargs)

    # -- rasters and scale-out (results.raster, results.dask) ---------------
    def to_xarray(self, resolution_m: float, *, crs: Any = None, **options: Any) -> Any:
        """The objects on a regular grid over the input areas, as an ``xarray.Dataset``:
        ``aoi_fraction``, ``count`` (objects per cell), ``<type>_coverage`` (share of the
        cell covered: buildings, forest…), ``forest_<class>`` height-class shares; CRS
        and transform via rioxarray (the AOI's UTM zone unless ``crs``). Needs the
        ``xarray`` extra. See :func:`mapflow_geo.results.raster.rasterize_features` for the
        method and its accuracy (``supersample``, ``strip_rows``).

        Examples
        --------
        >>> ds = res.to_xarray(resolution_m=100)                   # doctest: +SKIP
        >>> ds["buildings_coverage"].plot()                         # doctest: +SKIP
        """
        return to_xarray(self, resolution_m=resolution_m, crs=crs, **options)

    def to_dask(self, *, stitched: bool = True, partition_features: int = 250_000) -> Any:
        """The run's stored results as a dask-geopandas GeoDataFrame, partitioned by
        spatial neighbourhood; seams stitched lazily (``stitched=True``, equal to
        :attr:`features`) or the raw pieces. Needs the ``dask`` extra. See
        :mod:`mapflow_geo.results.dask`.
        """
        return to_dask(self, stitched=stitched, partition_features=partition_features)
