"""Maps of plans and results: folium maps and the engine choice (:mod:`.explore`),
lonboard maps of millions of objects (:mod:`.deck`), static figures
(:mod:`.plotting`), a MapLibre page of a PMTiles archive (:mod:`.webmap`), colours for
every status and class (:mod:`.styles`) and Mapflow's own tile layers (:mod:`.layers`)."""

from mapflow_geo.viz.deck import OUTLINE_LIMIT, DeckMap, deck_result, lonboard_result
from mapflow_geo.viz.explore import (
    DEFAULT_BASEMAPS,
    LONBOARD_THRESHOLD,
    MAX_FEATURES,
    explore_plan,
    explore_result,
    folium_result,
    simplify_tolerance_deg,
)
from mapflow_geo.viz.layers import safe_tile_url
from mapflow_geo.viz.plotting import (
    RASTER_THRESHOLD,
    add_scalebar,
    plot_plan,
    plot_result,
    save_image,
)
from mapflow_geo.viz.styles import (
    AOI_COLOR,
    OTHER_STATUS_COLOR,
    STATUS_COLORS,
    class_colors,
    class_labels,
    status_color,
)
from mapflow_geo.viz.webmap import pmtiles_page, pmtiles_result

__all__ = [
    "AOI_COLOR",
    "DEFAULT_BASEMAPS",
    "DeckMap",
    "LONBOARD_THRESHOLD",
    "MAX_FEATURES",
    "OUTLINE_LIMIT",
    "RASTER_THRESHOLD",
    "OTHER_STATUS_COLOR",
    "STATUS_COLORS",
    "add_scalebar",
    "class_colors",
    "class_labels",
    "deck_result",
    "explore_plan",
    "explore_result",
    "folium_result",
    "lonboard_result",
    "plot_plan",
    "plot_result",
    "pmtiles_page",
    "pmtiles_result",
    "safe_tile_url",
    "save_image",
    "simplify_tolerance_deg",
    "status_color",
]
