"""A result's processings under review: rate, accept, reject, read back.

The client is passed in (results make no HTTP request of their own): ``client.processings``
of a :class:`~mapflow_geo.api.RunClient`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import geopandas as gpd

from mapflow_geo.api import RunClient


def processing_ids(tiles: gpd.GeoDataFrame) -> list[str]:
    """The ids of the processings created on the service, sorted."""
    ids = tiles["processing_id"] if "processing_id" in tiles else []
    return sorted({str(i) for i in ids if isinstance(i, str) and i})


def _each(
    tiles: gpd.GeoDataFrame, processing_id: str | None, call: Callable[[str], Any]
) -> list[str]:
    """``call`` for ``processing_id``, or for every processing of the tiles; the ids."""
    ids = [processing_id] if processing_id is not None else processing_ids(tiles)
    if not ids:
        raise ValueError("the run has no processing on the service to review")
    for pid in ids:
        call(pid)
    return ids


def rate(
    tiles: gpd.GeoDataFrame,
    rating: int,
    feedback: str | None,
    client: RunClient,
    processing_id: str | None,
) -> list[str]:
    """Rate ``processing_id``, or every processing of the tiles; the ids rated."""
    return _each(
        tiles, processing_id, lambda pid: client.processings.review.rate(pid, rating, feedback)
    )


def accept(tiles: gpd.GeoDataFrame, client: RunClient, processing_id: str | None) -> list[str]:
    """Accept ``processing_id``, or every processing of the tiles; the ids accepted."""
    return _each(tiles, processing_id, lambda pid: client.processings.review.accept(pid))


def reject(
    tiles: gpd.GeoDataFrame,
    comment: str,
    features: Any,
    client: RunClient,
    processing_id: str | None,
) -> list[str]:
    """Reject ``processing_id``, or every processing of the tiles; the ids rejected."""
    return _each(
        tiles, processing_id, lambda pid: client.processings.review.reject(pid, comment, features)
    )


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
