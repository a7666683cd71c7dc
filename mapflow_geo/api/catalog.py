"""``client.catalog``: imagery search over the linked providers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mapflow_geo._http import Transport
from mapflow_geo.models import CatalogSearchResult, check_scale, from_fraction


class CatalogAPI:
    """``/catalog/meta``, and the scale its cloud cover and intersection are given on."""

    #: Page size of :meth:`search` and of template images (the QGIS plugin's 100); set on
    #: an instance to change it.
    page_size: int = 100
    #: The scale ``/catalog/meta`` and template images use for ``maxCloudCover``,
    #: ``minAoiIntersectionPercent`` and ``cloudCover``: the service's ``"percent"``;
    #: ``"fraction"`` for a deployment on the 2026 page's 0–1 scale.
    scale: str = "percent"

    def __init__(self, http: Transport) -> None:
        self._http = http

    def search(
        self,
        aoi: Mapping[str, Any] | None = None,
        *,
        max_cloud_cover: float | None = None,
        min_aoi_intersection: float | None = None,
        **body: Any,
    ) -> CatalogSearchResult:
        """``POST /catalog/meta``: search imagery of linked providers (one page).

        Parameters
        ----------
        aoi : GeoJSON geometry
            Polygon or MultiPolygon (its area is limited by ``searchAreaLimit``).
        max_cloud_cover, min_aoi_intersection : float, optional
            **Fractions 0–1**, sent as ``maxCloudCover`` and ``minAoiIntersectionPercent``
            on :attr:`scale` (the service's percent: 0.2 → 20).
        **body
            Further fields sent as given (on the service's scale): ``acquisitionDateFrom``,
            ``acquisitionDateTo``, ``minResolution``, ``maxResolution``,
            ``maxCloudCover``, ``limit`` (default :attr:`page_size`), ``offset``,
            ``sortBy``, ``sortOrder``, ``dataProviders``, ``productTypes``…

        Returns
        -------
        CatalogSearchResult
            Scenes read on :attr:`scale` (``cloud_cover_fraction`` is 0–1).

        Examples
        --------
        >>> scenes = client.catalog.search(geom, max_cloud_cover=0.1)  # doctest: +SKIP
        >>> sources.imagery_search(scenes[0].provider_name, [scenes[0].id])  # doctest: +SKIP
        """
        b = dict(body)
        if aoi is not None:
            b["aoi"] = dict(aoi)
        if "aoi" not in b:
            raise ValueError("catalog.search needs an aoi (GeoJSON Polygon or MultiPolygon)")
        b.update(self.filters(None, None, max_cloud_cover, min_aoi_intersection))
        b.setdefault("limit", self.page_size)
        b.setdefault("offset", 0)
        return CatalogSearchResult.from_json(
            self._http.request("POST", "/catalog/meta", json_body=b, idempotent=True),
            cloud_cover_scale=check_scale(self.scale),
        )

    def filters(
        self,
        date_from: Any = None,
        date_to: Any = None,
        max_cloud_cover: float | None = None,
        min_aoi_intersection: float | None = None,
    ) -> dict[str, Any]:
        """Search fields on the service's names and :attr:`scale`: ``acquisitionDateFrom``,
        ``acquisitionDateTo``, and the fractions ``max_cloud_cover`` and
        ``min_aoi_intersection`` as ``maxCloudCover``/``minAoiIntersectionPercent``; the
        ones given only."""
        scale = check_scale(self.scale)
        out: dict[str, Any] = {}
        if date_from is not None:
            out["acquisitionDateFrom"] = str(date_from)
        if date_to is not None:
            out["acquisitionDateTo"] = str(date_to)
        if max_cloud_cover is not None:
            out["maxCloudCover"] = from_fraction(max_cloud_cover, scale)
        if min_aoi_intersection is not None:
            out["minAoiIntersectionPercent"] = from_fraction(min_aoi_intersection, scale)
        return out
