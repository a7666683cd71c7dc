"""The ``mapflow`` accessor on GeoDataFrame: a thin door to the package.

pandas builds a new accessor object on every attribute access, so nothing is kept on it;
each method validates and delegates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from mapflow_geo.client import MapflowClient


@pd.api.extensions.register_dataframe_accessor("mapflow")
class MapflowAccessor:
    """``gdf.mapflow``: plan, estimate, process and preview Mapflow runs over the rows."""

    def __init__(self, obj: pd.DataFrame) -> None:
        if not isinstance(obj, gpd.GeoDataFrame):
            raise AttributeError("the mapflow accessor needs a GeoDataFrame")
        self._obj = obj

    def plan(
        self,
        *,
        area_limit_km2: float | None = None,
        max_aois: int | None = None,
        client: MapflowClient | None = None,
        model: str | None = None,
        **options: Any,
    ) -> gpd.GeoDataFrame:
        """Plan processings (tiles grouped into processings) under the account limits.

        See :func:`mapflow_geo.tiling.plan` for the columns and guarantees.
        """
        from mapflow_geo.tiling import plan

        return plan(
            self._obj,
            area_limit_km2=area_limit_km2,
            max_aois=max_aois,
            client=client,
            model=model,
            **options,
        )

    def estimate(
        self,
        model: str,
        *,
        client: MapflowClient | None = None,
        source: dict | None = None,
        blocks: list | None = None,
        area_limit_km2: float | None = None,
        max_aois: int | None = None,
        **options: Any,
    ) -> pd.DataFrame:
        """Estimated credits per input row, from the server's cost endpoint; creates nothing.

        Returns a DataFrame indexed by input row with ``area_km2``, ``processings`` and
        ``credits``; ``.attrs["total_credits"]`` holds the run's total. ``**options``:
        ``errors`` (bad rows: "raise" or "skip"), ``max_processings``.
        """
        from mapflow_geo.runner import estimate

        return estimate(
            self._obj,
            model,
            client=client,
            source=source,
            blocks=blocks,
            area_limit_km2=area_limit_km2,
            max_aois=max_aois,
            **options,
        )

    def search_imagery(
        self,
        *,
        client: MapflowClient | None = None,
        date_from: Any = None,
        date_to: Any = None,
        max_cloud_cover: float | None = None,
        **filters: Any,
    ) -> gpd.GeoDataFrame:
        """Catalog scenes over the rows' union: footprints with typed metadata columns
        (``cloud_cover`` a 0–1 fraction whichever scale the server used), all pages.

        Choose some (:func:`mapflow_geo.imagery.choose_scenes`) and pass them as
        ``source=`` to :meth:`process`: tiles are clipped to their footprints and each
        processing uses one scene (newest, then least cloudy). See
        :func:`mapflow_geo.imagery.search_imagery` for the filters.
        """
        from mapflow_geo.imagery import search_imagery

        return search_imagery(
            self._obj,
            client=client,
            date_from=date_from,
            date_to=date_to,
            max_cloud_cover=max_cloud_cover,
            **filters,
        )

    def process(
        self,
        model: str,
        *,
        client: MapflowClient | None = None,
        source: dict | None = None,
        blocks: list | None = None,
        project: str | None = None,
        run_dir: str | None = None,
        max_credits: int | None = None,
        progress: bool = True,
        errors: str = "raise",
        **options: Any,
    ):
        """Run a Mapflow model over every row; return a :class:`~mapflow_geo.results.MapflowResult`.

        Validates, plans and estimates before creating anything; journals every
        processing in ``run_dir`` so a killed run resumes without paying twice.

        Parameters
        ----------
        model : str
            Model name, e.g. ``"buildings"`` (friendly names are matched).
        client : MapflowClient, optional
            Defaults to one built from ``MAPFLOW_TOKEN`` / ``MAPFLOW_API_URL``.
        source, blocks : optional
            ``sourceParams`` (see :mod:`mapflow_geo.sources`) and model options.
        project : str, optional
            Project id; the account's default project otherwise.
        run_dir : path, optional
            Journal and results folder; a per-user cache dir keyed by the inputs otherwise.
        max_credits : int, optional
            Refuse (having spent nothing) when the estimate is higher.
        progress : bool
            Show one aggregate progress bar.
        errors : {"raise", "warn"}
            When some tiles fail: raise :class:`~mapflow_geo.runner.RunFailedError`
            (the partial result is on ``.result``) or warn and return it.
        **options
            ``poll_interval``, ``max_restarts``, ``max_workers``, ``area_limit_km2``,
            ``max_aois``, ``input_errors``, ``name``.

        Examples
        --------
        >>> from mapflow_geo import sim
        >>> with sim.serve() as server:                              # doctest: +SKIP
        ...     res = gdf.mapflow.process("buildings", client=server.client())
        """
        from mapflow_geo.runner import process

        return process(
            self._obj,
            model,
            client=client,
            source=source,
            blocks=blocks,
            project=project,
            run_dir=run_dir,
            max_credits=max_credits,
            progress=progress,
            errors=errors,
            **options,
        )

    def preview(
        self,
        *,
        area_limit_km2: float | None = None,
        max_aois: int | None = None,
        client: MapflowClient | None = None,
        model: str | None = None,
        plan: gpd.GeoDataFrame | None = None,
        **options: Any,
    ):
        """A folium map of the rows and the tiles a run would create (coloured by
        processing, with popups); the plan comes from the same limits as :meth:`plan`.

        See :func:`mapflow_geo.viz.preview_plan` (``basemap``, ``width``, ``height``).

        Examples
        --------
        >>> gdf.mapflow.preview(area_limit_km2=5, max_aois=10).save("plan.html")  # doctest: +SKIP
        """
        from mapflow_geo.viz import preview_plan

        return preview_plan(
            self._obj,
            plan=plan,
            area_limit_km2=area_limit_km2,
            max_aois=max_aois,
            client=client,
            model=model,
            **options,
        )


# ``da.mapflow`` on xarray DataArrays: registered when xarray is (or gets) imported.
from mapflow_geo.xr_accessor import install as _install_xarray_accessor  # noqa: E402

_install_xarray_accessor()
