"""The :class:`MapflowResult` a run returns: objects, tiles, costs and stats."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from mapflow_geo.results import stats as _stats
from mapflow_geo.results._options import OPTIONS, FeaturesTooLargeError
from mapflow_geo.results.changes import changes as _changes
from mapflow_geo.results.dask import to_dask
from mapflow_geo.results.dataset import (
    DatasetInfo,
    stitched_features,
    stream_class_sums,
    write_dataset,
    write_frame_dataset,
)
from mapflow_geo.results.io import FILE_COLUMNS, empty_features
from mapflow_geo.results.raster import to_xarray
from mapflow_geo.results.repair import QA_COLUMNS
from mapflow_geo.results.tables import present


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
    ) -> None:
        self._features = features
        self._loader = loader  # makes `features` from `files` (default: stitched_features)
        self._sums: pd.DataFrame | None = None  # objects and area per (row, class)
        self._n_objects: int | None = None
        #: The stitched dataset last written by :meth:`to_parquet` (its folder).
        self.dataset: Path | None = None
        self.tiles = tiles
        self.aois = aois
        self.processings = processings
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.files = files if files is not None else pd.DataFrame(columns=FILE_COLUMNS)
        self.qa = qa if qa is not None else pd.DataFrame(columns=QA_COLUMNS)

    # -- objects (loaded on first access; results.dataset streams everything else) ------
    @property
    def features(self) -> gpd.GeoDataFrame:
        """The stitched objects (see the class docstring); loaded on first access."""
        if self._features is None:
            self._features = self._load_features()
        return self._features

    @features.setter
    def features(self, value: gpd.GeoDataFrame) -> None:
        self._features, self._sums, self._n_objects = value, None, None

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
            return self._loader()
        if len(self.files):
            return stitched_features(self.files, self.tiles)
        return empty_features()

    def class_sums(self, *, client: Any = None) -> pd.DataFrame:
        """Objects and area per (input ``row``, class) of the stitched objects
        (:func:`mapflow_geo.results.stats.class_sums`): from :attr:`features` when they
        are loaded, else by streaming over the stored files without loading them
        (:func:`mapflow_geo.results.dataset.stream_class_sums`; ``client``: on a dask
        cluster). Kept once computed; :meth:`to_parquet` computes them on the way."""
        if self._sums is None:
            if self._features is not None or not len(self.files):
                feats = self.features
                self._sums = _stats.class_sums(feats) if len(feats) else _stats.empty_sums()
                self._n_objects = len(feats)
            else:
                info = stream_class_sums(self.files, self.tiles, client=client)
                self._sums, self._n_objects = info.sums, info.objects
        return self._sums

    def to_parquet(
        self,
        path: str | Path,
        *,
        partition_features: int | None = None,
        client: Any = None,
        overwrite: bool = True,
    ) -> DatasetInfo:
        """Write the stitched objects as a GeoParquet 1.1 **dataset** (a folder of
        spatially partitioned files with a ``bbox`` covering column and ``_metadata``),
        streaming: the objects are never all in memory, whatever the size of the run.

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
        client : dask.distributed.Client or str, optional
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
        kw = {"partition_features": partition_features, "overwrite": overwrite}
        if len(self.files):
            info = write_dataset(self.files, self.tiles, path, client=client, qa=self.qa, **kw)
        else:
            info = write_frame_dataset(self.features, path, **kw)
        self._sums, self._n_objects, self.dataset = info.sums, info.objects, info.path
        return info

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

    def __repr__(self) -> str:
        n_ok = int((self.tiles["status"] == "OK").sum())
        if self._features is not None:
            objects = f"{len(self._features)} features"
        elif self._n_objects is not None:
            objects = f"{self._n_objects} features (not loaded)"
        else:
            objects = f"{self.n_pieces} stored pieces (not loaded)"
        return (
            f"<MapflowResult: {objects} from {n_ok}/{len(self.tiles)} "
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

    def explore(self, *, engine: str = "auto", threshold: int | None = None, **options: Any) -> Any:
        """An interactive map sized to the result: folium (:meth:`preview`) up to
        ``threshold`` objects (20,000 by default), lonboard (deck.gl, every object drawn
        by the GPU) above; same colours and legend, ``.save(path)`` on both. See
        :func:`mapflow_geo.viz.explore_result`."""
        from mapflow_geo.viz import explore_result  # presentation reaches up

        return explore_result(self, engine=engine, threshold=threshold, **options)

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
