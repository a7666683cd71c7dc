"""A result's processings under review: rate, accept, reject, read back.

The client is passed in (results make no HTTP request of their own): ``client.processings``
of a :class:`~mapflow_geo.api.RunClient`.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd

from mapflow_geo.api import RunClient


def processing_ids(tiles: gpd.GeoDataFrame) -> list[str]:
    """The ids of the processings created on the service, sorted."""
    ids = tiles["processing_id"] if "processing_id" in tiles else []
    return sorted({str(i) for i in ids if isinstance(i, str) and i})


def _targets(tiles: gpd.GeoDataFrame, processing_id: str | None) -> list[str]:
    ids = [processing_id] if processing_id is not None else processing_ids(tiles)
    if not ids:
        raise ValueError("the run has no processing on the service to review")
    return ids


def rate(
    tiles: gpd.GeoDataFrame,
    rating: int,
    feedback: str | None,
    client: RunClient,
    processing_id: str | None,
) -> list[str]:
    """Rate ``processing_id``, or every processing of the tiles; the ids rated."""
    ids = _targets(tiles, processing_id)
    for pid in ids:
        client.processings.review.rate(pid, rating, feedback)
    return ids


def accept(tiles: gpd.GeoDataFrame, client: RunClient, processing_id: str | None) -> list[str]:
    """Accept ``processing_id``, or every processing of the tiles; the ids accepted."""
    ids = _targets(tiles, processing_id)
    for pid in ids:
        client.processings.review.accept(pid)
    return ids


def reject(
    tiles: gpd.GeoDataFrame,
    comment: str,
    features: Any,
    client: RunClient,
    processing_id: str | None,
) -> list[str]:
    """Reject ``processing_id``, or every processing of the tiles; the ids rejected."""
    ids = _targets(tiles, processing_id)
    for pid in ids:
        client.processings.review.reject(pid, comment, features)
    return ids


def with_review_columns(tiles: gpd.GeoDataFrame, client: RunClient) -> gpd.GeoDataFrame:
    """The tiles with ``reviewStatus`` and ``rating`` of their processing (one
    ``client.processings.get`` per processing)."""
    status: dict[str, Any] = {}
    rating: dict[str, Any] = {}
    for pid in processing_ids(tiles):
        p = client.processings.get(pid)
        status[pid] = None if p.review_status is None else str(p.review_status)
        rating[pid] = p.rating
    pids = tiles["processing_id"] if "processing_id" in tiles else None
    if pids is None:
        return tiles.assign(reviewStatus=None, rating=None)
    return tiles.assign(
        reviewStatus=pids.map(status).astype("object"),
        rating=pids.map(rating).astype("Int64"),
    )
