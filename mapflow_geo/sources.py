"""Builders for a processing's imagery source (``params.sourceParams``) and ``blocks``.

One builder per source kind, each returning ``{"sourceParams": {...}}`` with a repr that
hides credentials; the four kinds are in DESIGN.md, *Imagery*.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# The one list of credential names and the one redaction live in ``_secrets``; these
# names stay importable from here for existing callers.
from mapflow_geo._secrets import REDACTED, is_secret_key, redact

SOURCE_TYPES = ("XYZ", "TMS", "QUADKEY", "SENTINEL_L2A", "LOCAL")
_SOURCE_TYPE_ALIASES = {
    "QUADKEY": "QUADKEY",
    "TIF": "LOCAL",
    "TIFF": "LOCAL",
    "SENTINEL": "SENTINEL_L2A",
}


class SourceParams(dict):
    """A ``{"sourceParams": {...}}`` dict whose repr hides secrets. JSON-serialisable as
    any dict."""

    def __repr__(self) -> str:
        return repr(redact(dict(self)))

    __str__ = __repr__

    @property
    def kind(self) -> str:
        """``"dataProvider"``, ``"myImagery"``, ``"imagerySearch"`` or ``"userDefined"``."""
        return next(iter(self["sourceParams"]))


def _zoom(zoom: Any) -> int | None:
    if zoom is None:
        return None
    if isinstance(zoom, bool) or not isinstance(zoom, (int, float, str)):
        raise ValueError(f"zoom must be an integer, got {zoom!r}")
    try:
        z = int(zoom)
    except ValueError:
        raise ValueError(f"zoom must be an integer, got {zoom!r}") from None
    if float(zoom) != z or not 0 <= z <= 22:
        raise ValueError(f"zoom must be an integer between 0 and 22, got {zoom!r}")
    return z


def _ids(ids: Any, what: str) -> list[str]:
    if isinstance(ids, str):
        ids = [ids]
    try:
        out = [str(i) for i in ids]
    except TypeError:
        raise ValueError(f"{what} must be a list of ids, got {ids!r}") from None
    if not out or any(not i.strip() for i in out):
        raise ValueError(f"{what} must be a non-empty list of non-empty ids")
    return out


def _nonempty(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


def data_provider(name: str, zoom: int | None = None) -> SourceParams:
    """Imagery from a data provider linked to the account (``Mapbox``, ``arcgis_world_imagery``…).

    Parameters
    ----------
    name : str
        Provider name as in ``client.account.status().data_providers[i].name``.
    zoom : int, optional
        Tile zoom (basemaps: 17–19; the price depends on it).

    Examples
    --------
    >>> data_provider("Mapbox")
    {'sourceParams': {'dataProvider': {'providerName': 'Mapbox'}}}
    """
    body: dict[str, Any] = {"providerName": _nonempty(name, "provider name")}
    z = _zoom(zoom)
    if z is not None:
        body["zoom"] = z
    return SourceParams(sourceParams={"dataProvider": body})


def my_imagery(
    mosaic_id: str | None = None, image_ids: Iterable[str] | None = None
) -> SourceParams:
    """Imagery uploaded through the Data API: a whole mosaic, or chosen images.

    Give ``mosaic_id``, ``image_ids`` or both (images of that mosaic).

    Examples
    --------
    >>> my_imagery(mosaic_id="m-1")
    {'sourceParams': {'myImagery': {'mosaicId': 'm-1'}}}
    >>> my_imagery(image_ids=["i-1"])
    {'sourceParams': {'myImagery': {'imageIds': ['i-1']}}}
    """
    if mosaic_id is None and image_ids is None:
        raise ValueError("my_imagery needs mosaic_id or image_ids")
    body: dict[str, Any] = {}
    if image_ids is not None:
        body["imageIds"] = _ids(image_ids, "image_ids")
    if mosaic_id is not None:
        body["mosaicId"] = _nonempty(mosaic_id, "mosaic_id")
    return SourceParams(sourceParams={"myImagery": body})


def imagery_search(
    data_provider: str, image_ids: Iterable[str] | str, zoom: int | None = None
) -> SourceParams:
    """Imagery found with the catalog search (``client.catalog.search``).

    Parameters
    ----------
    data_provider : str
        The scene's ``providerName``.
    image_ids : list of str
        Scene ids from the search.

    Examples
    --------
    >>> imagery_search("CG_mosaic_2022", ["JL1KF01A_1"], zoom=18)
    {'sourceParams': {'imagerySearch': {'dataProvider': 'CG_mosaic_2022', 'imageIds': ['JL1KF01A_1'], 'zoom': 18}}}
    """
    body: dict[str, Any] = {
        "dataProvider": _nonempty(data_provider, "data_provider"),
        "imageIds": _ids(image_ids, "image_ids"),
    }
    z = _zoom(zoom)
    if z is not None:
        body["zoom"] = z
    return SourceParams(sourceParams={"imagerySearch": body})


def user_defined(
    url: str,
    source_type: str = "XYZ",
    zoom: int | None = None,
    crs: str | None = None,
    raster_login: str | None = None,
    raster_password: str | None = None,
) -> SourceParams:
    """A custom imagery source: a tile URL (XYZ/TMS/QUADKEY), a Sentinel-2 granule, or
    a ``LOCAL`` (uploaded ``s3://``) raster.

    ``raster_password`` is sent to the service but hidden in every repr.

    Examples
    --------
    >>> user_defined("https://t.example/{z}/{x}/{y}.png", zoom=18, raster_login="me",
    ...              raster_password="secret")
    {'sourceParams': {'userDefined': {'sourceType': 'XYZ', 'url': 'https://t.example/{z}/{x}/{y}.png', 'zoom': 18, 'rasterLogin': 'me', 'rasterPassword': '***'}}}
    """
    url = _nonempty(url, "url")
    st = str(source_type).strip().upper()
    st = _SOURCE_TYPE_ALIASES.get(st, st)
    if st not in SOURCE_TYPES:
        raise ValueError(
            f"source_type must be one of {', '.join(SOURCE_TYPES)}, got {source_type!r}"
        )
    if st in ("XYZ", "TMS") and not all(p in url for p in ("{x}", "{y}", "{z}")):
        raise ValueError(f"a {st} url must contain the {{x}}, {{y}} and {{z}} placeholders")
    if st == "QUADKEY" and "{q}" not in url:
        raise ValueError("a QUADKEY url must contain the {q} placeholder")
    if (raster_password is None) != (raster_login is None):
        raise ValueError("raster_login and raster_password go together")
    body: dict[str, Any] = {"sourceType": st, "url": url}
    z = _zoom(zoom)
    if z is not None:
        body["zoom"] = z
    if crs is not None:
        body["crs"] = _nonempty(crs, "crs")
    if raster_login is not None:
        body["rasterLogin"] = raster_login
        body["rasterPassword"] = raster_password
    return SourceParams(sourceParams={"userDefined": body})


def blocks(
    names: Iterable[str] | Mapping[str, bool] | None = None,
    /,
    *,
    model: Any = None,
    **flags: bool,
) -> list[dict[str, Any]]:
    """The ``blocks`` list of a create/cost body: ``[{"name": ..., "enabled": ...}]``.

    Parameters
    ----------
    names : list of str or mapping of name → bool, optional
        Blocks to enable (a list), or explicit flags (a mapping).
    model : Model, optional
        A model record (``mapflow_geo.models.Model``) or its ``blocks`` list. When
        given, names are checked against the model's blocks (case-insensitively, by
        ``name`` or ``displayName``), and every *optional* block not named is sent
        disabled, so the request says exactly what is paid for.
    **flags : bool
        ``Classification=True, OSM=False`` style flags.

    Examples
    --------
    >>> blocks(["Simplification"])
    [{'name': 'Simplification', 'enabled': True}]
    >>> blocks(Heights=False)
    [{'name': 'Heights', 'enabled': False}]
    """
    wanted: dict[str, bool] = {}
    if isinstance(names, Mapping):
        wanted.update({str(k): bool(v) for k, v in names.items()})
    elif names is not None:
        if isinstance(names, str):
            names = [names]
        wanted.update({str(n): True for n in names})
    wanted.update({k: bool(v) for k, v in flags.items()})
    if model is None:
        return [{"name": k, "enabled": v} for k, v in wanted.items()]

    model_blocks = getattr(model, "blocks", model) or []
    known: dict[str, tuple[str, bool]] = {}  # lower(name or displayName) -> (name, optional)
    for b in model_blocks:
        name = getattr(b, "name", None) or (b.get("name") if isinstance(b, Mapping) else None)
        if not name:
            continue
        display = getattr(b, "display_name", None) or (
            b.get("displayName") if isinstance(b, Mapping) else None
        )
        optional = getattr(b, "optional", None)
        if optional is None and isinstance(b, Mapping):
            optional = b.get("optional", True)
        known[name.lower()] = (name, bool(optional))
        if display:
            known.setdefault(display.lower(), (name, bool(optional)))
    out: dict[str, bool] = {}
    for k, v in wanted.items():
        if k.lower() not in known:
            avail = sorted({n for n, _ in known.values()})
            model_name = getattr(model, "name", "the model")
            raise ValueError(
                f"block {k!r} is not a block of {model_name}; available: {', '.join(avail) or 'none'}"
            )
        out[known[k.lower()][0]] = v
    for name, optional in known.values():
        if optional and name not in out:
            out[name] = False
    return [{"name": k, "enabled": v} for k, v in out.items()]


#: The source sent when none is given: the documented default data provider (a basemap)
#: at the zoom the pages and Geoalert's QGIS plugin use.
DEFAULT_PROVIDER = "Mapbox"
DEFAULT_ZOOM = 18


def default_source() -> SourceParams:
    """The ``params`` a create carries when the caller names no source: the documented
    default data provider, ``Mapbox`` at zoom 18.

    >>> default_source()
    {'sourceParams': {'dataProvider': {'providerName': 'Mapbox', 'zoom': 18}}}
    """
    return data_provider(DEFAULT_PROVIDER, zoom=DEFAULT_ZOOM)


def _as_params(source: Any) -> dict:
    """``params`` from a ``sourceParams`` dict, a whole ``params`` dict or a builder's
    result; the default source when None."""
    if source is None:
        return dict(default_source())
    if not isinstance(source, Mapping):
        raise TypeError("source must be a dict such as mapflow_geo.sources.data_provider(...)")
    params = dict(source)
    if "sourceParams" not in params:
        params = {"sourceParams": params}
    if not params.get("sourceParams"):
        params["sourceParams"] = dict(default_source())["sourceParams"]
    return params


_block_list = blocks  # ``create_body`` has a ``blocks`` argument


def _block_flags(wanted: Any) -> Mapping[str, bool] | list[str] | None:
    """Names, ``{name: bool}`` or ``[{"name", "enabled"}]`` → names or flags."""
    if wanted is None or isinstance(wanted, Mapping):
        return wanted
    if isinstance(wanted, str):
        return [wanted]
    flags: dict[str, bool] = {}
    for b in wanted:
        if isinstance(b, Mapping) and "name" in b:
            flags[str(b["name"])] = bool(b.get("enabled", True))
        else:
            flags[str(b)] = True
    return flags


def create_body(
    model: Any,
    geometry: Mapping[str, Any] | None = None,
    *,
    project_id: str | None,
    source: Any = None,
    blocks: Any = None,
    name: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The body of ``POST /processings/v2`` (and of ``/processing/cost/v2``), in the
    shape Geoalert's clients send.

    Always ``wdId`` (and ``wdName``), ``projectId`` when known (the client fills the
    default project's id otherwise), ``params.sourceParams`` (:func:`default_source` when
    ``source`` is None) and **every optional block of the model** with ``enabled`` true or
    false (those named in ``blocks`` on, the rest off), so the request, and the estimate
    made from the same body, say exactly what is paid for.

    Parameters
    ----------
    model : Model
        The model record (``client.account.find_model(...)``); its ``blocks`` decide the list.
    geometry : GeoJSON geometry, optional
        Left out for a shared part that is completed per processing.
    project_id : str or None
    source : dict, optional
        A :mod:`mapflow_geo.sources` builder's result, a ``sourceParams`` or ``params`` dict.
    blocks : list of str, mapping of name → bool, or list of ``{"name", "enabled"}``
    name : str, optional
    meta : mapping, optional

    Examples
    --------
    >>> from mapflow_geo.models import Model
    >>> m = Model.from_json({"id": "wd1", "name": "Buildings", "blocks": [
    ...     {"name": "Base", "optional": False}, {"name": "Classification", "optional": True},
    ...     {"name": "OSM", "optional": True}]})
    >>> b = create_body(m, project_id="p1", blocks=["Classification"])
    >>> b["blocks"], b["params"]["sourceParams"]["dataProvider"]["zoom"], b["projectId"]
    ([{'name': 'Classification', 'enabled': True}, {'name': 'OSM', 'enabled': False}], 18, 'p1')
    """
    body: dict[str, Any] = {"wdName": getattr(model, "name", None) or str(model)}
    wd_id = getattr(model, "id", None)
    if wd_id:
        body["wdId"] = wd_id
    if project_id:
        body["projectId"] = str(project_id)
    body["params"] = _as_params(source)
    model_blocks = getattr(model, "blocks", None)
    flags = _block_flags(blocks)
    if model_blocks:
        body["blocks"] = _block_list(flags, model=model)
    else:
        body["blocks"] = _block_list(flags) if flags else []
    if name is not None:
        body["name"] = name
    if geometry is not None:
        body["geometry"] = dict(geometry)
    if meta:
        body["meta"] = {str(k): (v if isinstance(v, str) else str(v)) for k, v in meta.items()}
    return body


__all__ = [
    "DEFAULT_PROVIDER",
    "DEFAULT_ZOOM",
    "REDACTED",
    "SOURCE_TYPES",
    "SourceParams",
    "blocks",
    "create_body",
    "data_provider",
    "default_source",
    "imagery_search",
    "is_secret_key",
    "my_imagery",
    "redact",
    "user_defined",
]
