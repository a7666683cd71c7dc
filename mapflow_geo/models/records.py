"""The API's records, each declared once (``from_json`` reads the server's object).
DESIGN.md, "Typed records"."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

from pydantic import (
    AliasChoices,
    AliasPath,
    Field,
    PlainValidator,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mapflow_geo._secrets import redact
from mapflow_geo.messages import normalise_parameters
from mapflow_geo.models._base import (
    Bool,
    Float,
    Geometry,
    Int,
    Obj,
    Objs,
    Price,
    Str,
    Text,
    When,
    _adapter,
    _dict,
    _float,
    _get,
    _int,
    _list,
    _many,
    _mappings,
    _one,
    _optional,
    _Record,
    _record,
    _Shown,
    _str,
    _true,
    check_scale,
    to_fraction,
)
from mapflow_geo.models.enums import BillingType, ReviewStatus, Status, TemplateStatus


@_record
class Block(_Record):
    """An optional (or mandatory) step of a workflow, with its price per km²."""

    name: Text = ""
    display_name: Str = None
    description: Str = None
    optional: Annotated[bool, PlainValidator(_optional)] = True
    price: Price = Field(0.0, validation_alias=AliasChoices("price", "priceSqKm", "pricePerSqKm"))


@_record
class Model(_Record):
    """A workflow definition (AI model): ``🏠 Buildings``, ``🌲 Forest``…"""

    id: Str = Field(None, validation_alias=AliasChoices("id", "wdId"))
    name: Text = ""
    description: Str = None
    price_per_sq_km: Price = Field(
        0.0, validation_alias=AliasChoices("pricePerSqKm", "price_per_sq_km", "price")
    )
    blocks: _many(Block) = Field(default_factory=list)
    created: When = None
    updated: When = None

    def block(self, name: str) -> Block | None:
        """The block called ``name`` (or with that display name), case-insensitively."""
        n = name.lower()
        for b in self.blocks:
            if b.name.lower() == n or (b.display_name or "").lower() == n:
                return b
        return None


Workflow = Model


def _prices(price: Any) -> dict[int, float]:
    """``[{zoom, priceSqKm}]``, ``{zoom: price}`` or one number (zoom ``-1``) → {zoom: price}."""
    prices: dict[int, float] = {}
    if isinstance(price, list):
        for p in price:
            if isinstance(p, Mapping):
                z = _int(_get(p, "zoom"))
                v = _float(_get(p, "priceSqKm", "pricePerSqKm", "price"))
                if v is not None:
                    prices[z if z is not None else -1] = v
    elif isinstance(price, Mapping):
        for z, v in price.items():
            zi, vf = _int(z), _float(v)
            if zi is not None and vf is not None:
                prices[zi] = vf
    elif _float(price) is not None:
        prices[-1] = _float(price)
    return prices


@_record
class DataProvider(_Record):
    """An imagery provider linked to the account, with prices by zoom (credits/km²)."""

    id: Str = None
    name: Text = Field("", validation_alias=AliasChoices("name", "providerName"))
    display_name: Str = None
    prices: Annotated[dict[int, float], PlainValidator(_prices)] = Field(
        default_factory=dict, validation_alias=AliasChoices("price", "prices")
    )
    min_area_sq_km: Float = None

    def price_at(self, zoom: int | None = None) -> float:
        """Price per km² at ``zoom``. Without a zoom (or an unlisted one) the highest
        listed price is returned, so estimates err on the side of caution.

        >>> DataProvider.from_json({"name": "Mapbox", "price": [{"zoom": 18, "priceSqKm": 3}]}).price_at(18)
        3.0
        """
        if not self.prices:
            return 0.0
        if zoom is not None and int(zoom) in self.prices:
            return self.prices[int(zoom)]
        if -1 in self.prices and len(self.prices) == 1:
            return self.prices[-1]
        return max(self.prices.values())


@_record
class Team(_Record):
    id: Str = Field(None, validation_alias=AliasChoices("teamId", "id"))
    name: Str = None
    role: Str = None
    credits_limit: Float = None
    active_until: When = None


DEFAULT_MAX_AOIS_PER_PROCESSING = 10


def _max_aois(v: Any) -> int:
    return _int(v) or DEFAULT_MAX_AOIS_PER_PROCESSING


@_record
class UserStatus(_Record):
    """``GET /user/status``: billing, limits, models and data providers.

    Areas are in m² as the service sends them; ``max_aois_per_processing`` defaults to
    10 when the server omits it.
    """

    email: Str = Field(None, validation_alias=AliasChoices("email", "login"))
    billing_type: Annotated[BillingType | None, PlainValidator(BillingType.parse)] = None
    remaining_credits: Float = Field(
        None, validation_alias=AliasChoices("remainingCredits", "remaining_credits", "credits")
    )
    remaining_area: Int = None
    processed_area: Int = None
    area_limit: Int = None
    memory_limit: Int = None
    max_aois_per_processing: Annotated[int, PlainValidator(_max_aois)] = (
        DEFAULT_MAX_AOIS_PER_PROCESSING
    )
    models: _many(Model) = Field(default_factory=list)
    data_providers: _many(DataProvider) = Field(default_factory=list)
    teams: _many(Team) = Field(default_factory=list)

    @classmethod
    def _reshape(cls, raw: Any) -> Any:
        # the 2026 page nests some of it under "user"
        user = raw.get("user")
        return {**user, **raw} if isinstance(user, Mapping) else raw

    def data_provider(self, name: str) -> DataProvider | None:
        """The provider whose name or display name matches ``name`` (case-insensitive)."""
        n = name.lower()
        for p in self.data_providers:
            if p.name.lower() == n or (p.display_name or "").lower() == n or (p.id or "") == name:
                return p
        return None


@_record
class ProjectUser(_Record):
    """The ``user`` of a project: its owner, carrying the area limits (m²)."""

    id: Str = None
    email: Str = None
    login: Str = None
    role: Str = None
    area_limit: Int = None
    aoi_area_limit: Int = None
    processed_area: Int = None
    is_premium: Bool = None

    @property
    def aoi_area_limit_km2(self) -> float | None:
        return None if self.aoi_area_limit is None else self.aoi_area_limit / 1e6


@_record
class Project(_Record):
    id: Str = None
    name: Str = None
    description: Str = None
    is_default: Bool = None
    status: Annotated[Status | None, PlainValidator(Status.parse)] = Field(
        None, validation_alias=AliasPath("progress", "status")
    )
    percent_completed: Float = Field(
        None, validation_alias=AliasPath("progress", "percentCompleted")
    )
    aoi_count: Int = None
    area: Int = None
    user: _one(ProjectUser) = None
    workflow_defs: _many(Model) = Field(default_factory=list)
    created: When = None
    updated: When = None


@_record
class Layer(_Record):
    id: Str = None
    name: Str = None
    tile_url: Str = None
    tile_json_url: Str = None

    @classmethod
    def from_json(cls, d: Any) -> Layer | None:
        """The layer, or None when ``d`` is not an object."""
        return super().from_json(d) if isinstance(d, Mapping) else None


class Message(dict):
    """One entry of a processing's ``messages``: ``{"code": ..., "parameters": {...}}``.

    A plain ``dict`` (so it serialises to JSON as is) with ``.code`` and
    ``.parameters`` attributes. ``parameters`` is normalised to a plain dict (the docs
    also show ``{"key": ..., "value": ...}`` and lists of those); ``.raw`` keeps the
    server's form.

    >>> m = Message.from_json({"code": "c", "parameters": {"key": "max_res", "value": "1.2"}})
    >>> m.code, m.parameters, m
    ('c', {'max_res': '1.2'}, {'code': 'c', 'parameters': {'max_res': '1.2'}})
    """

    raw: Any

    def __init__(self, code: str | None = None, parameters: Mapping | None = None, raw: Any = None):
        super().__init__(code=code, parameters=dict(parameters or {}))
        self.raw = raw if raw is not None else {"code": code, "parameters": dict(parameters or {})}

    @property
    def code(self) -> str | None:
        return self.get("code")

    @property
    def parameters(self) -> dict:
        return self.get("parameters") or {}

    def __repr__(self) -> str:
        return repr(redact(dict(self)))

    @classmethod
    def from_json(cls, d: Any) -> Message:
        if isinstance(d, str):
            return cls(code=d, parameters={}, raw=d)
        dd = _dict(d)
        return cls(
            code=_str(_get(dd, "code")),
            parameters=normalise_parameters(_get(dd, "parameters", "params")),
            raw=dd,
        )


def _rating(v: Any) -> int | None:
    """``{"rating": 4, "feedback": ...}``, ``"4"`` or ``4`` → 4; null → None."""
    if isinstance(v, Mapping):
        v = v.get("rating")
    return _int(v)


def _messages(v: Any) -> list[Message]:
    return [Message.from_json(m) for m in _list(v)]


@_record
class Processing(_Record):
    """A processing (v1 or v2 shape). Areas in m², ``cost`` in credits."""

    id: Str = None
    name: Str = None
    description: Str = None
    project_id: Str = None
    status: Annotated[Status, PlainValidator(Status.parse)] = Status.UNKNOWN
    # the server's text; keywords name it (``dataclasses.replace`` passes every field)
    status_raw: Str = Field(None, validation_alias=AliasChoices("status_raw", "status"))
    percent_completed: Float = None
    aoi_count: Int = None
    area: Int = None
    aoi_area: Int = None
    cost: Int = None
    messages: Annotated[list[Message], PlainValidator(_messages)] = Field(default_factory=list)
    vector_layer: _one(Layer) = None
    raster_layer: _one(Layer) = None
    workflow_def: _one(Model) = None
    params: Obj = Field(default_factory=dict)
    blocks: Objs = Field(default_factory=list)
    meta: Obj = Field(default_factory=dict)
    review_status: Annotated[ReviewStatus | None, PlainValidator(ReviewStatus.parse)] = None
    rating: Annotated[int | None, PlainValidator(_rating)] = None
    feedback: Str = Field(
        None, validation_alias=AliasChoices(AliasPath("rating", "feedback"), "feedback")
    )
    in_review_until: When = Field(None, validation_alias=AliasPath("reviewStatus", "inReviewUntil"))
    created: When = None
    updated: When = None

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def model_name(self) -> str | None:
        return self.workflow_def.name if self.workflow_def else None


@_record
class Aoi(_Record):
    """One area of a processing (each polygon of the geometry is one AOI)."""

    id: Str = None
    status: Annotated[Status, PlainValidator(Status.parse)] = Status.UNKNOWN
    percent_completed: Float = None
    area: Int = None
    geometry: Geometry = None
    messages: Annotated[list[Message], PlainValidator(_messages)] = Field(default_factory=list)


@_record
class Image(_Record):
    id: Str = Field(None, validation_alias=AliasChoices("id", "image_id", "imageId"))
    mosaic_id: Str = Field(None, validation_alias=AliasChoices("mosaic_id", "mosaicId"))
    filename: Str = Field(None, validation_alias=AliasChoices("filename", "name"))
    file_size: Int = Field(None, validation_alias=AliasChoices("file_size", "fileSize"))
    uploaded: When = Field(
        None, validation_alias=AliasChoices("uploaded_at", "uploadedAt", "created_at", "created")
    )
    footprint: Any = None
    meta_data: Obj = Field(
        default_factory=dict, validation_alias=AliasChoices("meta_data", "metaData")
    )
    cog_link: Str = Field(
        None, validation_alias=AliasChoices("cog_link", "cogLink", "image_url", "url")
    )
    preview_url_s: Str = Field(None, validation_alias="preview_url_s")
    preview_url_l: Str = Field(None, validation_alias="preview_url_l")
    image_url: Str = Field(None, validation_alias=AliasChoices("image_url", "imageUrl", "url"))
    checksum: Str = None
    available_for_download: Bool = Field(
        None, validation_alias=AliasChoices("available_for_download", "availableForDownload")
    )


def _tags(v: Any) -> list[str]:
    return [str(t) for t in _list(v)]


@_record
class Mosaic(_Record):
    id: Str = Field(None, validation_alias=AliasChoices("id", "mosaic_id", "mosaicId"))
    name: Str = None
    tags: Annotated[list[str], PlainValidator(_tags)] = Field(default_factory=list)
    image_count: Int = Field(None, validation_alias=AliasChoices("image_count", "imageCount"))
    created: When = Field(None, validation_alias=AliasChoices("created_at", "createdAt", "created"))
    images: _many(Image) = Field(default_factory=list)

    @classmethod
    def _reshape(cls, raw: Any) -> Any:
        # an upload's answer carries one ``image``
        if not _mappings(raw.get("images")) and isinstance(raw.get("image"), Mapping):
            return {**raw, "images": [raw["image"]]}
        return raw


@_record
class Memory(_Record):
    """Data API storage (``GET /rasters/memory``), in bytes.

    Accepts the page's ``used_bytes/limit_bytes/...`` and the service's
    ``memoryLimit/memoryUsed/memoryFree``.

    >>> Memory.from_json({"memoryLimit": 100, "memoryUsed": 25}).free_bytes
    75
    """

    used_bytes: Int = None
    limit_bytes: Int = None
    free_bytes: Int = None

    @classmethod
    def _reshape(cls, raw: Any) -> Any:
        gb = 1024**3
        used = _int(_get(raw, "used_bytes", "memoryUsed", "usedBytes"))
        limit = _int(_get(raw, "limit_bytes", "memoryLimit", "limitBytes"))
        free = _int(_get(raw, "free_bytes", "memoryFree", "freeBytes"))
        if used is None and _float(raw.get("used_gb")) is not None:
            used = int(_float(raw["used_gb"]) * gb)
        if limit is None and _float(raw.get("limit_gb")) is not None:
            limit = int(_float(raw["limit_gb"]) * gb)
        if free is None and used is not None and limit is not None:
            free = max(0, limit - used)
        if used is None and free is not None and limit is not None:
            used = max(0, limit - free)
        return {"used_bytes": used, "limit_bytes": limit, "free_bytes": free}

    #: keys read by ``_reshape`` (not by a field's own names)
    _reads: ClassVar[tuple[str, ...]] = (
        "memoryUsed", "usedBytes", "memoryLimit", "limitBytes", "memoryFree", "freeBytes",
        "used_gb", "limit_gb", "usage_percent",
    )  # fmt: skip

    @property
    def usage_percent(self) -> float | None:
        if self.used_bytes is None or not self.limit_bytes:
            return _float(_get(self.raw, "usage_percent"))
        return 100.0 * self.used_bytes / self.limit_bytes


@_record
class CatalogScene(_Record):
    """One image of a catalog search. ``cloud_cover`` is as sent; ``cloud_cover_scale``
    is the scale of the endpoint that sent it (``"percent"`` for ``/catalog/meta`` and
    template images, as the service answers; ``"fraction"`` for a deployment on the
    2026 page's 0–1 scale), and ``cloud_cover_fraction`` is 0–1 by that scale, never by
    the value: a 0.8 % scene is 0.008.

    >>> CatalogScene.from_json({"cloudCover": 0.8}).cloud_cover_fraction
    0.008
    >>> CatalogScene.from_json({"cloudCover": 0.3}, cloud_cover_scale="fraction").cloud_cover_fraction
    0.3
    """

    id: Str = None
    provider_name: Str = Field(
        None, validation_alias=AliasChoices("providerName", "provider_name", "dataProvider")
    )
    product_type: Str = None
    acquisition_date: When = None
    sensor: Str = None
    pixel_resolution: Float = None
    cloud_cover: Float = None
    off_nadir_angle: Float = None
    color_band_order: Str = Field(None, validation_alias="colorBandOrder")
    preview_type: Str = Field(None, validation_alias="previewType")
    preview_url: Str = None
    footprint: Geometry = Field(None, validation_alias=AliasChoices("footprint", "geometry"))
    # the endpoint's (``from_json``'s argument), never read from the server's object
    cloud_cover_scale: str = Field("percent", validation_alias="(scale)", validate_default=True)

    @classmethod
    def from_json(cls, d: Any, *, cloud_cover_scale: str = "percent") -> CatalogScene:
        return _adapter(cls).validate_python(
            d, context={"cloud_cover_scale": check_scale(cloud_cover_scale)}
        )

    @field_validator("cloud_cover_scale", mode="plain")
    @classmethod
    def _scale(cls, v: Any, info: ValidationInfo) -> str:
        return check_scale((info.context or {}).get("cloud_cover_scale", v))

    @property
    def cloud_cover_fraction(self) -> float | None:
        if self.cloud_cover is None:
            return None
        return to_fraction(self.cloud_cover, self.cloud_cover_scale)


@_record
class CatalogSearchResult(_Record):
    """Result of ``POST /catalog/meta`` (or a template's images): the service's
    ``{"images", "total", "limit", "offset"}``, a bare list (2026 page) or
    ``{"images": [...]}`` (older page). Iterable over its scenes; ``cloud_cover_scale``
    is the scale the answer was read on."""

    images: _many(CatalogScene) = Field(
        default_factory=list,
        validation_alias=AliasChoices("images", "results", "items", "features"),
    )
    total: Int = Field(None, validation_alias=AliasChoices("total", "count"))
    limit: Int = None
    offset: Int = None

    _raw_shapes: ClassVar[tuple[type, ...]] = (Mapping, list)

    @classmethod
    def from_json(cls, d: Any, *, cloud_cover_scale: str = "percent") -> CatalogSearchResult:
        return _adapter(cls).validate_python(
            d, context={"cloud_cover_scale": check_scale(cloud_cover_scale)}
        )

    @classmethod
    def _reshape(cls, raw: Any) -> Any:
        return {"images": raw} if isinstance(raw, list) else raw

    @model_validator(mode="after")
    def _count(self) -> CatalogSearchResult:
        if self.total is None:
            self.total = len(self.images)
        return self

    def __iter__(self):  # type: ignore[override]
        return iter(self.images)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> CatalogScene:
        return self.images[i]


@_record
class ProcessingStats(_Record):
    """``POST /processings/stats?type=JSON``: history rows and totals."""

    results: Objs = Field(
        default_factory=list, validation_alias=AliasChoices("results", "items", "processings")
    )
    total: Int = None
    count: Int = None
    total_cost: Float = None
    total_area: Int = None

    _raw_shapes: ClassVar[tuple[type, ...]] = (Mapping, list)

    @classmethod
    def _reshape(cls, raw: Any) -> Any:
        if isinstance(raw, list):
            return {"results": raw, "total": len(raw), "count": len(raw)}
        return raw

    def to_dataframe(self):
        """The rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.results)


@dataclass(repr=False)
class AccountLimits(_Shown):
    """Limits a planner needs: AOI area (km²) and AOIs per processing."""

    aoi_area_limit_km2: float | None
    max_aois_per_processing: int = DEFAULT_MAX_AOIS_PER_PROCESSING
    raw: dict = field(default_factory=dict, compare=False)

    @property
    def aoi_area_limit_m2(self) -> int | None:
        return (
            None if self.aoi_area_limit_km2 is None else int(round(self.aoi_area_limit_km2 * 1e6))
        )


# ----------------------------------------------------------------------- paging
class Listing(list):
    """A list of records from a listing walked page by page. ``total`` is the service's
    count when it sent one; ``complete`` is True when the walk reached it (the offsets
    covered ``total``, or an unpaged listing was read whole).

    >>> Listing([1, 2], total=2).complete, Listing([1], total=3, complete=False).complete
    (True, False)
    """

    def __init__(self, items: Any = (), *, total: int | None = None, complete: bool = True):
        super().__init__(items)
        self.total = total
        self.complete = complete


@dataclass(repr=False)
class Page(_Shown):
    """One page of a paged listing (``{"results", "total", "count"}``).

    ``offset`` is where the page starts, ``limit`` what was asked for, ``total`` the
    service's count at the time of this page (None when unpaged), ``last`` True on the
    final page of a walk. ``reached`` = ``offset + len(items)``. ``shrank`` is True once
    the service counted fewer than on an earlier page of the same walk: something was
    deleted meanwhile, and what followed it moved onto pages already read (one item
    may have been skipped)."""

    items: list = field(default_factory=list)
    offset: int = 0
    limit: int | None = None
    total: int | None = None
    count: int | None = None
    last: bool = True
    raw: Any = field(default_factory=dict, compare=False)
    shrank: bool = False

    @property
    def reached(self) -> int:
        return self.offset + len(self.items)

    @property
    def complete(self) -> bool:
        """The last page of a walk whose offsets reached ``total``, the count never
        falling on the way."""
        return self.last and not self.shrank and (self.total is None or self.reached >= self.total)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@_record
class ImageDownload(_Record):
    """``GET /rasters/image/{id}/download``: a short-lived URL to the original file."""

    download_url: Str = Field(
        None, validation_alias=AliasChoices("download_url", "downloadUrl", "url")
    )
    filename: Str = None
    expires_in: Int = Field(None, validation_alias=AliasChoices("expires_in", "expiresIn"))


# ----------------------------------------------------------------------- templates
@_record
class TemplateAoi(_Record):
    """One named area of a template (``searchParams.aoiDetails.features[]``)."""

    id: Str = None
    name: Str = None
    has_new_images: Bool = None
    geometry: Geometry = None
    processings: Objs = Field(default_factory=list)

    @classmethod
    def _reshape(cls, raw: Any) -> Any:
        # a GeoJSON feature: the rest is in its properties
        props = _dict(raw.get("properties"))
        return {
            "id": raw.get("id") or props.get("id"),
            "name": props.get("name") or raw.get("name"),
            "hasNewImages": props.get("hasNewImages"),
            "geometry": raw.get("geometry"),
            "processings": props.get("processings"),
        }

    _reads: ClassVar[tuple[str, ...]] = ("properties",)


@_record
class Template(_Record):
    """A planned processing: a saved imagery search over named AOIs that the service
    re-runs daily. Answers ``{"template": T, "searchResults": [...]}`` and a bare ``T``
    are both accepted; ``search_results`` keeps the former's list."""

    id: Str = None
    name: Str = None
    status: Annotated[TemplateStatus, PlainValidator(TemplateStatus.parse)] = TemplateStatus.UNKNOWN
    user_id: Str = None
    project_id: Str = None
    created: When = Field(None, validation_alias=AliasChoices("createdAt", "created"))
    active_until: When = None
    last_checked: When = Field(None, validation_alias="lastCheckedAt")
    new_images_count: Int = None
    is_active: Annotated[bool, PlainValidator(_true)] = False
    is_archived: Bool = None
    area: Float = None
    search_params: Obj = Field(default_factory=dict)
    processing_params: Obj = Field(default_factory=dict)
    aois: _many(TemplateAoi) = Field(
        default_factory=list, validation_alias=AliasPath("searchParams", "aoiDetails", "features")
    )
    search_results: Objs = Field(default_factory=list)

    @classmethod
    def _reshape(cls, raw: Any) -> Any:
        t = raw.get("template")
        return {**t, "searchResults": raw.get("searchResults")} if isinstance(t, Mapping) else raw

    _reads: ClassVar[tuple[str, ...]] = ("template",)
