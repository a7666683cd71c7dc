"""``client.processings.review``: rate, accept or reject a processing (accounts with
``reviewWorkflowEnabled``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mapflow_geo._http import Transport, quote_path


class ReviewAPI:
    """``/processings/{id}/rate``, ``/acceptation`` and ``/rejection``."""

    def __init__(self, http: Transport) -> None:
        self._http = http

    def rate(self, processing_id: str, rating: int, feedback: str | None = None) -> Any:
        """``PUT /processings/{id}/rate`` with ``{"rating": 1–5, "feedback"}``.

        Raises
        ------
        ValueError
            ``rating`` is not a whole number from 1 to 5 (nothing is sent).

        Examples
        --------
        >>> client.processings.review.rate(p.id, 5, "clean outlines")  # doctest: +SKIP
        """
        if isinstance(rating, bool) or not isinstance(rating, (int, float)):
            raise ValueError(f"rating must be a whole number from 1 to 5, got {rating!r}")
        if rating != int(rating) or not 1 <= int(rating) <= 5:
            raise ValueError(f"rating must be a whole number from 1 to 5, got {rating!r}")
        body: dict[str, Any] = {"rating": int(rating)}
        if feedback is not None:
            body["feedback"] = str(feedback)
        path = f"/processings/{quote_path(processing_id)}/rate"
        return self._http.request("PUT", path, json_body=body, expect="json_optional")

    def accept(self, processing_id: str) -> Any:
        """``PUT /processings/{id}/acceptation``: accept a processing in review."""
        return self._http.request(
            "PUT", f"/processings/{quote_path(processing_id)}/acceptation", expect="json_optional"
        )

    def reject(
        self,
        processing_id: str,
        comment: str | None = None,
        features: Mapping[str, Any] | Iterable[Mapping[str, Any]] | None = None,
    ) -> Any:
        """``PUT /processings/{id}/rejection`` with ``{"comment", "features"}``:
        ``features`` are the corrections (a FeatureCollection or a list of features; an
        empty FeatureCollection when None). The review status becomes ``NOT_ACCEPTED``."""
        if features is None:
            fc: dict[str, Any] = {"type": "FeatureCollection", "features": []}
        elif isinstance(features, Mapping):
            fc = dict(getattr(features, "__geo_interface__", features))
        else:
            fc = {"type": "FeatureCollection", "features": [dict(f) for f in features]}
        body: dict[str, Any] = {"comment": "" if comment is None else str(comment), "features": fc}
        path = f"/processings/{quote_path(processing_id)}/rejection"
        return self._http.request("PUT", path, json_body=body, expect="json_optional")
