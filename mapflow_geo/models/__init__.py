"""Typed records for Mapflow API objects.

Each record is a pydantic dataclass declared once (``records``): its fields, their
camelCase wire names (``projectId`` for ``project_id``, generated) and the other
spellings the published pages use (``AliasChoices``) or nested places (``AliasPath``).
``from_json(dict)`` builds one. Records are tolerant (``_base``): a field of the wrong
type reads as ``None`` (or its default), missing fields become ``None`` (or an empty
list/dict), and the server's object is kept whole in ``.raw`` (its unknown fields in
``.extra``). Reprs never show ``rasterPassword`` (or other secrets). Statuses and other
enums: ``enums``. Why pydantic: DESIGN.md, "Typed records".

>>> p = Processing.from_json({"id": "p1", "status": "AWAITING", "percentCompleted": 0})
>>> p.status, p.status.is_terminal
(<Status.AWAITING: 'AWAITING'>, False)
"""

from mapflow_geo.messages import normalise_parameters
from mapflow_geo.models._base import (
    SCALES,
    check_scale,
    from_fraction,
    parse_datetime,
    to_fraction,
)
from mapflow_geo.models.enums import BillingType, ReviewStatus, Status, TemplateStatus
from mapflow_geo.models.records import (
    DEFAULT_MAX_AOIS_PER_PROCESSING,
    AccountLimits,
    Aoi,
    Block,
    CatalogScene,
    CatalogSearchResult,
    DataProvider,
    Image,
    ImageDownload,
    Layer,
    Listing,
    Memory,
    Message,
    Model,
    Mosaic,
    Page,
    Processing,
    ProcessingStats,
    Project,
    ProjectUser,
    Team,
    Template,
    TemplateAoi,
    UserStatus,
    Workflow,
)

__all__ = [
    "DEFAULT_MAX_AOIS_PER_PROCESSING",
    "AccountLimits",
    "Aoi",
    "BillingType",
    "Block",
    "CatalogScene",
    "CatalogSearchResult",
    "DataProvider",
    "Image",
    "ImageDownload",
    "Layer",
    "Listing",
    "Memory",
    "Message",
    "Model",
    "Mosaic",
    "Page",
    "Processing",
    "ProcessingStats",
    "Project",
    "ProjectUser",
    "ReviewStatus",
    "Status",
    "Team",
    "Template",
    "TemplateAoi",
    "TemplateStatus",
    "UserStatus",
    "Workflow",
    "normalise_parameters",
    "SCALES",
    "check_scale",
    "from_fraction",
    "parse_datetime",
    "to_fraction",
]
