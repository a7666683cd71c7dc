"""Layer tiles on the simulator's own host: ``tileJsonUrl`` / ``tileUrl`` of processings'
``vectorLayer`` / ``rasterLayer`` and of mosaics' ``rasterLayer`` (the QGIS plugin fetches
the tile JSON for its ``bounds``).

``GET /tiles/{layer}/tile.json`` and ``GET /tiles/{layer}/{z}/{x}/{y}.{png|pbf}`` need the
account's token like every API route. With the hostile option ``tile_url_token_in_path`` the
URLs are ``/tiles/t/{token}/{layer}/...`` and need no header (the token in the path is the
credential: a client that saves such a URL into a map leaks it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

import shapely

from .api_data import mosaic_footprint
from .base import ApiError, Request, Response, json_response
from .preview import preview_jpeg

if TYPE_CHECKING:
    from .service import Service

WORLD = [-180.0, -85.0511, 180.0, 85.0511]


def _bounds(svc: Service, layer_id: str) -> list[float]:
    for p in svc.state.processings.values():
        if layer_id in (p.vector_layer_id, p.raster_layer_id):
            if not svc.mine(p):
                raise svc.forbid("layer", layer_id)
            geoms = [shapely.geometry.shape(a.geometry) for a in p.aois]
            return [round(v, 7) for v in shapely.union_all(geoms).bounds] if geoms else WORLD
    m = svc.state.mosaics.get(layer_id)
    if m is not None:
        if not svc.mine(m):
            raise svc.forbid("layer", layer_id)

        g = shapely.from_wkt(mosaic_footprint(svc, m))
        return WORLD if g.is_empty else [round(v, 7) for v in g.bounds]
    if layer_id.endswith("_MOSAIC"):  # a catalog mosaic's preview layer
        return WORLD
    raise ApiError(404, "LAYER_NOT_FOUND", f"Layer {layer_id} not found", {"layerId": layer_id})


def tile_json(svc: Service, req: Request, layer_id: str) -> Response:
    b = _bounds(svc, layer_id)
    url = svc.base + req.path.split("/rest", 1)[-1].rsplit("/", 1)[0]
    vector = any(layer_id == p.vector_layer_id for p in svc.state.processings.values())
    ext = "pbf" if vector else "png"
    return json_response(
        {
            "tilejson": "2.2.0",
            "name": layer_id,
            "scheme": "xyz",
            "tiles": [f"{url}/{{z}}/{{x}}/{{y}}.{ext}"],
            "minzoom": 0,
            "maxzoom": 19,
            "bounds": b,
            "center": [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, 12],
        }
    )


def tile(svc: Service, req: Request, layer_id: str, z: str, x: str, y: str) -> Response:
    _bounds(svc, layer_id)
    if y.endswith(".pbf") or y.endswith(".mvt"):
        return Response(200, b"", content_type="application/x-protobuf")  # an empty tile

    data, ctype = preview_jpeg(256, seed=f"{layer_id}/{z}/{x}/{y}")
    return Response(200, data, content_type=ctype)


def _check_token(svc: Service, token: str) -> None:
    who = svc.token_owner(unquote(token))
    if who is False:
        raise ApiError(401, "UNAUTHORIZED", "Invalid token in the tile URL")
    svc.current = who


def tile_json_t(svc: Service, req: Request, token: str, layer_id: str) -> Response:
    _check_token(svc, token)
    return tile_json(svc, req, layer_id)


def tile_t(
    svc: Service, req: Request, token: str, layer_id: str, z: str, x: str, y: str
) -> Response:
    _check_token(svc, token)
    return tile(svc, req, layer_id, z, x, y)
