"""Mapflow's own tile layers (imagery and vector tiles of each processing) on a folium
map — the one place that asks a client for them, and that makes sure no credential is
written into a saved map."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from mapflow_geo import _secrets

if TYPE_CHECKING:  # pragma: no cover
    import folium

    from mapflow_geo.api import RunClient
    from mapflow_geo.results import MapflowResult

log = logging.getLogger(__name__)


def add_processing_layers(
    m: folium.Map, result: MapflowResult, client: RunClient, kinds: Sequence[str]
) -> None:
    import folium
    from folium.plugins import VectorGridProtobuf

    unknown = set(kinds) - {"raster", "vector"}
    if unknown:
        raise ValueError(f"layers must be 'raster' and/or 'vector', not {sorted(unknown)}")
    secrets = client_secrets(client)
    raster = folium.FeatureGroup(name="Mapflow imagery", show=False)
    vector = folium.FeatureGroup(name="Mapflow vector tiles", show=False)
    n_r = n_v = 0
    ids = result.processings.get("processing_id", pd.Series(dtype=object)).dropna().unique()
    for pid in ids:
        try:
            proc = client.processings.get(str(pid))
        except Exception as exc:  # noqa: BLE001 - a preview never fails on a lookup
            log.warning("preview: no layers for processing %s: %s", pid, exc)
            continue
        rl = getattr(proc, "raster_layer", None)
        vl = getattr(proc, "vector_layer", None)
        if "raster" in kinds and rl is not None and rl.tile_url:
            url = safe_tile_url(rl.tile_url, secrets)
            if url:
                folium.TileLayer(
                    tiles=url, attr="Mapflow", name=f"imagery {pid}", overlay=True
                ).add_to(raster)
                n_r += 1
        if "vector" in kinds and vl is not None and vl.tile_url:
            url = safe_tile_url(vl.tile_url, secrets)
            if url:
                VectorGridProtobuf(url, name=f"vector {pid}", overlay=True).add_to(vector)
                n_v += 1
    if n_r:
        raster.add_to(m)
    if n_v:
        vector.add_to(m)


def client_secrets(client: RunClient) -> tuple[str, ...]:
    """Every form of the credentials a client holds (token, decoded ``email:key``, the
    key alone), so that none is ever written into a map."""
    get = getattr(client, "_secrets", None)
    return tuple(get()) if callable(get) else ()


def safe_tile_url(url: str, secrets: Iterable[str] = ()) -> str | None:
    """A tile URL fit to be written into a map: user info and credential-like query
    parameters removed; ``None`` if a known secret still appears in it.

    Examples
    --------
    >>> safe_tile_url("https://u:p@h.example/t/{z}/{x}/{y}.png?token=abc&uri=s3://b/k")
    'https://h.example/t/{z}/{x}/{y}.png?uri=s3://b/k'
    >>> safe_tile_url("https://h.example/abcdef123456/{z}/{x}/{y}.png", ["abcdef123456"]) is None
    True
    """
    out = _secrets.redact_url(url, drop=True)
    if any(s and s in out for s in secrets) or _secrets.REDACTED in out:
        log.warning("preview: a tile URL holds a credential; layer left out")
        return None
    return out
