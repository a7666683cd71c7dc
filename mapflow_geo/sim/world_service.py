"""The world as the simulated service uses it: its options, the date of the imagery a
processing sees, and the ground-truth oracle of a running simulator.

* **Options**: ``SimOptions.world`` (a dict of :class:`~.world_core.WorldOptions` fields)
  and ``SimOptions.basemap_vintage`` (``"YYYY-MM-DD"``) are checked when the service
  starts (:func:`check_options`); every world call passes ``options=svc.opts.world``.
* **Imagery dates** (:func:`imagery_date`): a processing sees the world as it stood on
  the date of its imagery: the acquisition date of its catalog scene (``imagerySearch``;
  the latest of several), of its uploaded images (``myImagery``: the image's
  ``acquisition_date`` read from its GeoTIFF tags, else its upload date), the stated
  vintage of its data provider (``dataProvider`` or no source: the provider's own
  ``vintage``, else ``basemap_vintage``; a provider whose ``vintage`` is None serves
  fresh imagery) or, for fresh imagery and ``userDefined`` sources, the day the
  processing was created.
* **Oracle** (:func:`truth`, :func:`truth_geojson`; ``Server.truth`` and
  ``GET /_sim/world``): the whole objects of the simulator's world in a bbox on a date.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import TYPE_CHECKING, Any

import shapely

from . import catalog, pricing, world
from . import world_time as wt
from .geo import meters_per_degree
from .scenes import scenes_for
from .world_core import WorldOptions

if TYPE_CHECKING:
    from .service import Service, SimOptions
    from .state import Processing

#: the largest bbox ``GET /_sim/world`` answers (km²)
MAX_BBOX_KM2 = 100.0


class BboxTooLarge(ValueError):
    """A ``/_sim/world`` bbox over :data:`MAX_BBOX_KM2`."""

    def __init__(self, km2: float, limit: float):
        super().__init__(f"bbox is {km2:.1f} km², the world route answers at most {limit:g} km²")
        self.km2, self.limit = km2, limit


# ----------------------------------------------------------------------------- options
def check_options(opts: SimOptions) -> None:
    """Refuse bad world options (``TypeError`` / ``ValueError``) when the service starts."""
    if opts.world is not None and not isinstance(opts.world, dict | WorldOptions):
        raise TypeError("the world option must be a dict of WorldOptions fields")
    WorldOptions.of(opts.world)
    if not isinstance(opts.basemap_vintage, str):
        raise TypeError("basemap_vintage must be a YYYY-MM-DD string")
    wt.to_day(opts.basemap_vintage)


def provider_vintage(opts: SimOptions, provider: dict) -> str | None:
    """A data provider's stated vintage: its own ``vintage`` (a ``YYYY-MM-DD`` date, or None
    for fresh imagery), else the simulator's ``basemap_vintage``."""
    if "vintage" in provider:
        return provider["vintage"]
    return opts.basemap_vintage


def provider_json(opts: SimOptions, provider: dict) -> dict:
    """A provider as ``/user/status`` lists it, with its ``vintage``."""
    return {**catalog.public_provider(provider), "vintage": provider_vintage(opts, provider)}


# ----------------------------------------------------------------------------- imagery dates
_STAMP = re.compile(r"_(20\d{2})(\d{2})(\d{2})")


def _day(value: Any) -> str | None:
    """``YYYY-MM-DD`` of a date or timestamp string, None when it is none."""
    s = str(value or "")[:10]
    try:
        return _dt.date.fromisoformat(s).isoformat()
    except ValueError:
        return None


def _utc_day(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).date().isoformat()


def imagery_date(svc: Service, proc: Processing) -> str:
    """``YYYY-MM-DD``: the date of the imagery ``proc`` runs on (see the module doc)."""
    created = _utc_day(proc.created)
    try:
        src = pricing.source(svc, proc.params)
    except Exception:  # noqa: BLE001 - e.g. a provider removed since: the creation day
        return created
    kind = src["type"]
    if kind == "imagerySearch":
        return _scene_date(svc, proc, src.get("imageIds") or []) or created
    if kind == "myImagery":
        return _upload_date(svc, src) or created
    if kind in ("dataProvider", "default") and src.get("provider"):
        return _day(provider_vintage(svc.opts, src["provider"])) or created
    return created


def _scene_date(svc: Service, proc: Processing, ids: list) -> str | None:
    """The latest acquisition date of the chosen catalog scenes (or one in their ids)."""
    polys = [shapely.from_wkb(bytes.fromhex(a.wkb)) for a in proc.aois]
    if not polys:
        return None
    dates = {
        sc["id"]: sc["acquisitionDate"]
        for sc in scenes_for(shapely.union_all(polys), svc.opts.seed, proc.created)
    }
    found = []
    for sid in map(str, ids):
        day = _day(dates.get(sid))
        if day is None and (m := _STAMP.search(sid)):  # an id outside the catalog's cells
            day = _day("-".join(m.groups()))
        if day is not None:
            found.append(day)
    return max(found) if found else None


def _upload_date(svc: Service, src: dict) -> str | None:
    """The latest acquisition (else upload) date of the chosen uploaded images."""
    images = [svc.state.images.get(str(i)) for i in src.get("imageIds") or []]
    if not images and src.get("mosaicId"):
        images = svc.state.images_of(str(src["mosaicId"]))
    days = [
        _day((i.meta_data or {}).get("acquisition_date")) or _utc_day(i.uploaded_at)
        for i in images
        if i is not None
    ]
    return max(days) if days else None


# ----------------------------------------------------------------------------- the oracle
def bbox_km2(bounds) -> float:
    """Area (km²) of a lon/lat bbox at its mid latitude."""
    x0, y0, x1, y1 = bounds
    my, mx = meters_per_degree((y0 + y1) / 2)
    return float((x1 - x0) * mx * (y1 - y0) * my) / 1e6


def truth(
    opts: SimOptions, bbox, model: str = "buildings", *, date: Any = None, max_km2=None
) -> tuple:
    """:func:`world.truth` of the simulator's world (its seed, density and world options):
    ``(geometries, properties)``; :class:`BboxTooLarge` over ``max_km2``."""
    bounds = world._bounds(bbox)
    if max_km2 is not None and (km2 := bbox_km2(bounds)) > max_km2:
        raise BboxTooLarge(km2, max_km2)
    return world.truth(
        bounds, model, seed=opts.seed, density=opts.density, options=opts.world, date=date
    )


def truth_geojson(
    opts: SimOptions, bbox, model: str = "buildings", *, date: Any = None, max_km2=None
) -> dict:
    """:func:`truth` as a GeoJSON FeatureCollection (what ``GET /_sim/world`` answers)."""
    bounds = world._bounds(bbox)
    if max_km2 is not None and (km2 := bbox_km2(bounds)) > max_km2:
        raise BboxTooLarge(km2, max_km2)
    return world.truth_geojson(
        bounds, model, seed=opts.seed, density=opts.density, options=opts.world, date=date
    )
