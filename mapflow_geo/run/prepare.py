"""Preparing a run: account limits, the one create-body builder, estimates and budgets.

Nothing here creates or costs anything: it reads the account (limits, prices, balance),
plans tiles with the pure geometry layer, builds each processing's create body and asks
the cost endpoint. The money rules that come before the first create live here:

1. plans over ``max_processings`` are refused before any cost request;
2. a model-price floor over ``max_credits`` is refused before any cost request;
3. the server's estimates over ``max_credits``, or over what the account has left (credits
   or area, by the account's billing type), are refused before any create.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import geopandas as gpd
import pandas as pd
import shapely
from shapely.geometry import mapping

from mapflow_geo._args import checked, jsonable
from mapflow_geo._defaults import MAX_PROCESSINGS
from mapflow_geo.aoi import polygon_parts, prepare_aois, require_rows
from mapflow_geo.api import RunClient
from mapflow_geo.client import default_client
from mapflow_geo.exceptions import BudgetError, ConfigError, MapflowError, PlanError
from mapflow_geo.scenes import plan_scenes
from mapflow_geo.sources import create_body, imagery_search
from mapflow_geo.tiling import (
    DEFAULT_MAX_AOIS,
    DEFAULT_SAFETY_MARGIN,
    DEFAULT_SLIVER_FRACTION,
    credits_for,
)
from mapflow_geo.tiling import plan as make_plan

#: ``meta`` keys every create carries: how a processing is found again after an
#: ambiguous create (the run's id and the processing's key within the run).
META_RUN = "mapflow_geo_run"
META_KEY = "mapflow_geo_key"


@dataclass
class PlannedProcessing:
    """One processing of a run: its key, create body (without ``meta``), area, tiles."""

    key: str
    body: dict
    area_km2: float
    tile_ids: list = field(default_factory=list)
    estimate: int | None = None


class PreparedRun(NamedTuple):
    """What :func:`prepare_run` made: the prepared areas, the plan (tiles with their
    ``processing_key``), one :class:`PlannedProcessing` per processing, and the run's
    parameters (as fingerprinted and stored in the run dir)."""

    aois: gpd.GeoDataFrame
    plan: gpd.GeoDataFrame
    processings: list[PlannedProcessing]
    params: dict


def digest(*parts: Any) -> str:
    """A stable SHA-256 of JSON-able parts (bytes taken as they are; numpy scalars as the
    numbers they hold, so a limit read from a frame is the same run as one typed)."""
    h = hashlib.sha256()
    for p in parts:
        text = None if isinstance(p, bytes) else json.dumps(p, sort_keys=True, default=jsonable)
        h.update(p if text is None else text.encode())
        h.update(b"\x00")
    return h.hexdigest()


# ------------------------------------------------------------------------ limits
def resolve_limits(
    client: RunClient, area_limit_km2: float | None = None, max_aois: int | None = None
) -> tuple[float, int]:
    """The limits to plan under: the ones given, else the account's (one request each
    for ``/projects/default`` and ``/user/status``, only when one is missing).

    A given limit always wins, including a falsy one (which then fails validation
    in the planner rather than silently becoming the account's)."""
    if (area_limit_km2 is None or max_aois is None) and client is not None:
        limits = client.account.limits()
        if area_limit_km2 is None:
            area_limit_km2 = limits.aoi_area_limit_km2
        if max_aois is None:
            max_aois = limits.max_aois_per_processing
    if area_limit_km2 is None:
        raise ConfigError(
            "no area limit to plan against: pass area_limit_km2= (and max_aois=), "
            "or client= to read the account's limits"
        )
    return area_limit_km2, DEFAULT_MAX_AOIS if max_aois is None else max_aois


@checked
def plan(
    gdf: Any,
    *,
    client: RunClient | None = None,
    model: str | None = None,
    area_limit_km2: float | None = None,
    max_aois: int | None = None,
    price_per_km2: float | None = None,
    input_errors: str = "raise",
    safety_margin: float = DEFAULT_SAFETY_MARGIN,
    sliver_fraction: float = DEFAULT_SLIVER_FRACTION,
) -> gpd.GeoDataFrame:
    """Plan tiles and processings under the account's limits: :func:`mapflow_geo.tiling.plan`
    with the limits (and, given ``model``, the price) read from ``client`` where not given.

    Parameters
    ----------
    gdf : GeoDataFrame
        The areas, one row each (any CRS).
    client : MapflowClient, optional
        Reads the account's limits (and the model's price) where they are not given;
        without it the plan is made offline from ``area_limit_km2``.
    model : str, optional
        With a client: fill ``planned_credits`` from the model's price.
    area_limit_km2, max_aois : optional
        Plan under these limits instead of the account's.
    price_per_km2 : float, optional
        Credits per km² for ``planned_credits`` (instead of the model's price).
    input_errors : {"raise", "skip"}
        Unusable input rows: raise an :class:`~mapflow_geo.exceptions.AOIError` naming
        the row, or skip it with a warning (as in :func:`mapflow_geo.run.process`).
    safety_margin, sliver_fraction : float
        Fraction of the limit kept free, and the size under which pieces are merged
        (see :func:`mapflow_geo.tiling.plan`).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> gdf = gpd.GeoDataFrame(geometry=[shapely.box(30, 50, 30.1, 50.1)], crs=4326)
    >>> len(plan(gdf, area_limit_km2=25)) >= 4      # offline: no client needed
    True
    """
    if client is not None:
        area_limit_km2, max_aois = resolve_limits(client, area_limit_km2, max_aois)
        if price_per_km2 is None and model is not None:
            price_per_km2 = client.account.model_price(model)
    return make_plan(
        gdf,
        area_limit_km2=area_limit_km2,
        max_aois=max_aois,
        price_per_km2=price_per_km2,
        input_errors=input_errors,
        safety_margin=safety_margin,
        sliver_fraction=sliver_fraction,
    )


# ------------------------------------------------------------------------ bodies
def source_params(source: Any) -> dict | None:
    """``params`` of a create from a user's ``source=`` (a ``sourceParams`` dict or a
    whole ``params`` dict)."""
    if source is None:
        return None
    if not isinstance(source, dict):
        raise TypeError("source must be a dict such as mapflow_geo.sources.data_provider(...)")
    return dict(source) if "sourceParams" in source else {"sourceParams": dict(source)}


def scene_source(tiles: pd.DataFrame, zoom: int | None = None) -> dict:
    """``params`` of a processing planned on one catalog scene
    (:func:`mapflow_geo.scenes.plan_scenes`): ``imagerySearch`` with that scene."""
    sid = str(tiles["scene_id"].iloc[0])
    prov = tiles["scene_provider"].iloc[0]
    return dict(imagery_search(str(prov), [sid], zoom=zoom))


def scene_sources(plan: gpd.GeoDataFrame) -> dict[int, dict]:
    """One ``imagerySearch`` source per processing of a scene plan."""
    return {int(k): scene_source(t) for k, t in plan.groupby("processing", sort=True)}


def base_body(model: Any, *, params: dict | None, blocks: list | None, project: str | None) -> dict:
    """The part of a create body every processing of a run shares:
    :func:`mapflow_geo.sources.create_body` without name and geometry (``projectId``,
    ``params.sourceParams`` with the documented default, every optional block of the
    model enabled or not), so the estimate is made on exactly what is sent."""
    return create_body(model, project_id=project, source=params, blocks=blocks)


def build_processing(
    key: str, base: dict, tiles: gpd.GeoDataFrame, prefix: str
) -> PlannedProcessing:
    """The one create-body builder: the shared ``base``, a name, and the union of the
    tiles' polygons as one Polygon or MultiPolygon (one AOI per polygon)."""
    return _build(
        key,
        base,
        tiles.geometry.values,
        tiles["tile_id"].astype(str).tolist(),
        float(tiles["area_km2"].sum()),
        prefix,
    )


def _build(
    key: str, base: dict, geoms: Any, tile_ids: list[str], area_km2: float, prefix: str
) -> PlannedProcessing:
    """:func:`build_processing` from the tiles' geometries, ids and total area."""
    parts = [p for g in geoms for p in polygon_parts(g)]
    geom = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
    body = dict(base, name=f"{prefix} {key}", geometry=mapping(geom))
    return PlannedProcessing(key, body, area_km2, sorted(tile_ids))


def shared_part(proc: PlannedProcessing) -> tuple[dict, str]:
    """The ``base`` and name prefix a processing was built from (its pieces, after a
    re-plan, are built from them again)."""
    base = {k: v for k, v in proc.body.items() if k not in ("name", "geometry")}
    prefix = proc.body.get("name", "mapflow-geo").rsplit(" ", 1)[0]
    return base, prefix


def prepare_run(
    gdf: gpd.GeoDataFrame,
    model: str,
    *,
    client: RunClient,
    source: Any = None,
    blocks: Any = None,
    project: str | None = None,
    area_limit_km2: float | None = None,
    max_aois: int | None = None,
    input_errors: str = "raise",
    name: str | None = None,
    max_processings: int | None = None,
) -> PreparedRun:
    """Validate the areas, resolve the limits, plan tiles and build one create body per
    processing: the front half of :func:`~mapflow_geo.run.process` and :func:`estimate`.
    Plans over ``max_processings`` (None: no cap) are refused. Sends nothing that
    creates or costs.
    """
    aois = prepare_aois(gdf, input_errors=input_errors)
    require_rows(aois, gdf)
    area_limit_km2, max_aois = resolve_limits(client, area_limit_km2, max_aois)
    found = client.account.find_model(model)
    scenes = source if isinstance(source, gpd.GeoDataFrame) else None
    if scenes is not None:  # chosen catalog scenes: tiles clipped to them, one per processing
        plan = plan_scenes(aois, scenes, area_limit_km2=area_limit_km2, max_aois=max_aois)
        source = None
    else:
        plan = make_plan(aois, area_limit_km2=area_limit_km2, max_aois=max_aois, prepared=True)
    params = source_params(source)
    block_list = list(blocks) if blocks is not None else None
    base = base_body(found, params=params, blocks=block_list, project=project)
    prefix = name or "mapflow-geo"
    processings = []
    # by positions, not by sub-frames: a 40,000-processing plan in seconds
    geoms = plan.geometry.values
    tile_ids = plan["tile_id"].astype(str).to_numpy()
    areas = plan["area_km2"].to_numpy(dtype=float)
    for proc_no, pos in sorted(plan.groupby("processing", sort=True).indices.items()):
        ids = sorted(tile_ids[pos].tolist())
        key = f"p{int(proc_no):05d}-{digest(ids)[:10]}"
        own = dict(base, params=scene_source(plan.iloc[pos])) if scenes is not None else base
        processings.append(_build(key, own, geoms[pos], ids, float(areas[pos].sum()), prefix))
    key_of = {t: p.key for p in processings for t in p.tile_ids}
    plan = plan.assign(processing_key=plan["tile_id"].astype(str).map(key_of))
    run_params = {
        "model": found.name,
        "source": params if scenes is None else sorted(map(str, scenes["id"])),
        "blocks": block_list,
        "project": project,
        "area_limit_km2": area_limit_km2,
        "max_aois": max_aois,
    }
    check_size(processings, max_processings)
    return PreparedRun(aois, plan, processings, run_params)


# ------------------------------------------------------------------------ money
def estimate_processings(
    client: RunClient, processings: list[PlannedProcessing], workers: int = 4
) -> None:
    """Fill ``estimate`` of each processing from the server's cost endpoint (no create)."""
    todo = [p for p in processings if p.estimate is None]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for p, cost in zip(
            todo, pool.map(lambda p: int(client.processings.cost(**p.body)), todo), strict=False
        ):
            p.estimate = cost


def check_size(procs: list[PlannedProcessing], max_processings: int | None) -> None:
    """Refuse plans over ``max_processings`` before any request about them."""
    if max_processings is not None and len(procs) > max_processings:
        area = sum(p.area_km2 for p in procs)
        raise PlanError(
            f"the plan has {len(procs)} processings for {area:,.1f} km² "
            f"(max_processings={max_processings}); nothing was sent. Pass a larger "
            "max_processings (or None) to run it, or raise the account's area limit."
        )


def check_credit_floor(
    client: RunClient,
    model: str,
    blocks: Any,
    procs: list[PlannedProcessing],
    max_credits: int | None,
) -> None:
    """Refuse before asking the server about each processing when even the model's own
    price (no imagery price: a lower bound of the server's cost) exceeds ``max_credits``."""
    if max_credits is None:
        return
    price = float(client.account.model_price(model, blocks))
    floor = sum(credits_for(p.area_km2, price) for p in procs)
    if floor > max_credits:
        raise BudgetError(
            f"the run costs at least {floor} credits for {len(procs)} processings "
            f"({price:g} credits/km² before imagery), over max_credits={max_credits}; "
            "nothing was created"
        )


def check_budget(
    client: RunClient,
    procs: list[PlannedProcessing],
    to_create: list[PlannedProcessing],
    max_credits: int | None,
    *,
    status: Any = None,
) -> None:
    """Refuse a run whose estimate exceeds ``max_credits``, or whose processings still
    to create need more than the account has left: credits on a ``CREDITS`` account,
    km² (the service counts m²) on an ``AREA`` account. ``status``: the account's
    ``/user/status`` if asked already for this check (else asked here)."""
    total = sum(p.estimate or 0 for p in procs)
    if max_credits is not None and total > max_credits:
        raise BudgetError(
            f"the run is estimated at {total} credits for {len(procs)} processings, "
            f"over max_credits={max_credits}; nothing was created"
        )
    if not to_create:
        return
    new_credits = sum(p.estimate or 0 for p in to_create)
    new_area_km2 = sum(p.area_km2 for p in to_create)
    status = status if status is not None else client.account.status()
    billing = str(getattr(status, "billing_type", "") or "").upper()
    if billing == "CREDITS" and status.remaining_credits is not None:
        if new_credits > status.remaining_credits:
            raise BudgetError(
                f"the run needs {new_credits} more credits but the account has "
                f"{status.remaining_credits} left; nothing was created"
            )
    if billing == "AREA" and status.remaining_area is not None:
        if new_area_km2 * 1e6 > status.remaining_area:
            raise BudgetError(
                f"the run needs {new_area_km2:.3f} km² more but the account has "
                f"{status.remaining_area / 1e6:.3f} km² left; nothing was created"
            )


@checked
def estimate(
    gdf: gpd.GeoDataFrame,
    model: str,
    *,
    client: RunClient | None = None,
    source: Any = None,
    blocks: Any = None,
    area_limit_km2: float | None = None,
    max_aois: int | None = None,
    input_errors: str = "raise",
    max_processings: int | None = MAX_PROCESSINGS,
) -> pd.DataFrame:
    """Estimated cost per input row: ``area_km2``, ``processings``, ``credits``.

    Plans the run and asks the server's cost endpoint about every planned processing;
    creates nothing. A processing shared by several rows is split between them by area.
    Plans over ``max_processings`` are refused before any cost request. The keywords
    mean what they mean in :func:`mapflow_geo.run.process`.

    Parameters
    ----------
    gdf : GeoDataFrame
        The areas, one row each (any CRS).
    model : str
        Model name, e.g. ``"buildings"``.
    client : MapflowClient, optional
        Defaults to one built from ``MAPFLOW_TOKEN`` / ``MAPFLOW_API_URL``.
    source, blocks : optional
        Imagery source (or chosen catalog scenes) and model options.
    area_limit_km2, max_aois : optional
        Plan under these limits instead of the account's.
    input_errors : {"raise", "skip"}
        Unusable input rows: raise naming the row, or skip it with a warning.
    max_processings : int or None
        Plans with more processings are refused before any cost request.
    """
    client = default_client(client)
    prepared = prepare_run(
        gdf,
        model,
        client=client,
        source=source,
        blocks=blocks,
        area_limit_km2=area_limit_km2,
        max_aois=max_aois,
        input_errors=input_errors,
        max_processings=max_processings,
    )
    plan, procs = prepared.plan, prepared.processings
    estimate_processings(client, procs)
    est = pd.Series({p.key: p.estimate for p in procs})
    share = plan.groupby(["processing_key", "row"], sort=False)["area_km2"].sum()
    frac = share / share.groupby(level=0).transform("sum")
    credits = (frac * est.reindex(frac.index.get_level_values(0)).values).groupby(level=1).sum()
    out = pd.DataFrame(
        {
            "area_km2": plan.groupby("row")["area_km2"].sum(),
            "processings": plan.groupby("row")["processing_key"].nunique(),
            "credits": credits,
        }
    ).reindex(prepared.aois.index)
    out.index.name = "row"
    out.attrs["total_credits"] = int(est.sum())
    out.attrs["processings"] = len(procs)
    return out


def fingerprint_of(
    aois: gpd.GeoDataFrame,
    run_params: dict,
    api_host: str | None = None,
    account: str | None = None,
) -> str:
    """Digest of the prepared inputs, the run's parameters, the API's host name and the
    account (:func:`account_of`).

    Not the token (a rotated key of the same account resumes the run), not the URL's port
    or path (a restarted local server resumes it); the host, so that a run dir made
    against one service is never resumed against another, whose processings it cannot
    see; the account, so that one account never reuses another's processings (nor reports
    their charges as its own).
    """
    wkb = shapely.to_wkb(aois.geometry.values, hex=False)
    parts: list[Any] = [[str(i) for i in aois.index], b"".join(wkb), run_params]
    if api_host:
        parts.append({"api_host": api_host.lower()})
    if account:
        parts.append({"account": account})
    return digest(*parts)


def fingerprint_for(aois: gpd.GeoDataFrame, run_params: dict, client: RunClient) -> str:
    """:func:`fingerprint_of` with the host and the account of ``client``."""
    return fingerprint_of(aois, run_params, api_host(client), account_of(client))


def api_host(client: RunClient) -> str | None:
    """The host name of the client's API (for the fingerprint)."""
    from urllib.parse import urlsplit

    try:
        return urlsplit(str(getattr(client, "base_url", "") or "")).hostname
    except ValueError:
        return None


def account_of(client: RunClient) -> str | None:
    """The identity of the client's account, for the fingerprint: the e-mail (else the
    user id) that ``/user/status`` names — the answer a run has read already for its
    limits and models, so no request is added. Never the key: a rotated key of the same
    account gives the same identity. When the service names no account, a one-way digest
    of the token stands in (runs are then kept apart per token, never across accounts).
    """
    status = None
    read = getattr(getattr(client, "account", None), "status", None)
    if read is not None:
        try:
            status = read(refresh=False)
        except MapflowError:
            status = None
    raw = getattr(status, "raw", None) or {}
    user = raw.get("user") if isinstance(raw.get("user"), dict) else {}
    for ident in (getattr(status, "email", None), raw.get("id"), user.get("id")):
        if ident:
            return f"user:{str(ident).strip().lower()}"
    secrets = getattr(client, "_secrets", None)
    forms = sorted(secrets()) if secrets is not None else []
    return f"token:{digest(forms)}" if forms else None


__all__ = [
    "MAX_PROCESSINGS",
    "META_KEY",
    "META_RUN",
    "PlannedProcessing",
    "PreparedRun",
    "account_of",
    "api_host",
    "build_processing",
    "check_budget",
    "check_credit_floor",
    "check_size",
    "estimate",
    "estimate_processings",
    "fingerprint_for",
    "fingerprint_of",
    "plan",
    "prepare_run",
    "resolve_limits",
]
