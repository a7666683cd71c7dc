"""``client.account``: the user's status, limits and models."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mapflow_geo._http import Transport
from mapflow_geo.api import pricing
from mapflow_geo.api.projects import ProjectsAPI
from mapflow_geo.models import DEFAULT_MAX_AOIS_PER_PROCESSING, AccountLimits, Model, UserStatus


class AccountAPI:
    """``/user/status`` and what is read from it: limits, models, prices."""

    def __init__(self, http: Transport, projects: ProjectsAPI) -> None:
        self._http = http
        self._projects = projects
        self._status: UserStatus | None = None

    def status(self, *, refresh: bool = True) -> UserStatus:
        """``GET /user/status``: billing, limits, models and data providers.

        Parameters
        ----------
        refresh : bool, default True
            False reuses the last answer (model lookups use it).

        Examples
        --------
        >>> client.account.status().max_aois_per_processing            # doctest: +SKIP
        10
        """
        if refresh or self._status is None:
            self._status = UserStatus.from_json(self._http.request("GET", "/user/status"))
        return self._status

    def limits(self) -> AccountLimits:
        """The limits a planner needs.

        ``aoi_area_limit_km2`` is ``user.aoiAreaLimit`` of ``/projects/default`` (m² →
        km², None if absent); ``max_aois_per_processing`` comes from ``/user/status``
        (10 when absent).

        Examples
        --------
        >>> client.account.limits().aoi_area_limit_km2                 # doctest: +SKIP
        25.0
        """
        project = self._projects.default()
        status = self.status()
        limit_m2 = project.user.aoi_area_limit if project.user else None
        return AccountLimits(
            aoi_area_limit_km2=None if limit_m2 is None else limit_m2 / 1e6,
            max_aois_per_processing=status.max_aois_per_processing
            or DEFAULT_MAX_AOIS_PER_PROCESSING,
            raw={"aoiAreaLimit": limit_m2, "maxAoisPerProcessing": status.max_aois_per_processing},
        )

    def models(self, *, refresh: bool = False) -> list[Model]:
        """The account's models (from :meth:`status`, cached unless ``refresh``)."""
        return self.status(refresh=refresh or self._status is None).models

    def find_model(self, name: str, *, refresh: bool = False) -> Model:
        """The account's model called ``name``, matched on friendly names.

        ``"buildings"``, ``"Buildings"`` and ``"🏠 Buildings"`` are the same model:
        emoji, symbols and punctuation are dropped, case folded and spaces collapsed.
        An exact match of that normal form wins (``"forest"`` is ``🌲 Forest``, not
        ``🌲↕️ Forest with heights``); failing that a unique model whose normal form
        starts with the query's words is taken; a model id also matches.

        Raises
        ------
        ModelNotFoundError
            No match or several, listing the available names.

        Examples
        --------
        >>> client.account.find_model("forest").name                   # doctest: +SKIP
        '🌲 Forest'
        """
        return pricing.find_model(self.models(refresh=refresh), name)

    def model_price(
        self,
        name: str,
        blocks: Iterable[str] | Mapping[str, bool] | Iterable[Mapping[str, Any]] | None = None,
        data_provider: str | None = None,
        zoom: int | None = None,
    ) -> float:
        """Credits per km² for a model, its blocks and a data provider (a local
        estimate; :meth:`ProcessingsAPI.cost` is authoritative).

        ``price = model pricePerSqKm + mandatory block prices + enabled optional block
        prices + data provider price at zoom``. Optional blocks count only when
        enabled in ``blocks`` (names, ``{name: bool}`` or ``[{"name","enabled"}]``).
        Without a zoom the provider's highest listed price is used. Remember the
        service bills at least 1 km² per processing and rounds the total up.

        Examples
        --------
        >>> client.account.model_price(                                 # doctest: +SKIP
        ...     "buildings", ["Classification"], "Mapbox", zoom=18)
        19.0
        """
        model = self.find_model(name)
        return pricing.model_price(model, self.status(refresh=False), blocks, data_provider, zoom)
