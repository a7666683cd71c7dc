"""Models by friendly name (with the docs' mojibake repaired) and local prices."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mapflow_geo.exceptions import ModelNotFoundError
from mapflow_geo.models import Model, UserStatus

_MOJIBAKE_RUN = re.compile(rb"[\x80-\xbf]{2,}|[\xc0-\xf7][\x80-\xbf]")


def _unmojibake(s: str) -> str:
    """Repair UTF-8 read as Mac Roman / cp1252 (the docs show ``üè† Buildings``, whose
    first byte was lost). Applied only when the re-encoded bytes look like UTF-8
    sequences, so genuine accented names (``Forêt``) are left alone."""
    for enc in ("mac_roman", "cp1252"):
        try:
            raw = s.encode(enc)
        except UnicodeEncodeError:
            continue
        if raw == s.encode("utf-8", errors="ignore") or not _MOJIBAKE_RUN.search(raw):
            continue
        fixed = raw.decode("utf-8", errors="ignore")
        if fixed and fixed != s:
            return fixed
    return s


def normalise_model_name(name: str) -> str:
    """Friendly form of a model name: no emoji, symbols or punctuation; casefolded;
    single spaces.

    Examples
    --------
    >>> normalise_model_name("🌲↕️ Forest with heights")
    'forest with heights'
    >>> normalise_model_name("  🚜 Fields (Sentinel-2) ")
    'fields sentinel 2'
    """
    s = unicodedata.normalize("NFKC", _unmojibake(str(name)))
    kept = []
    for ch in s:
        cat = unicodedata.category(ch)
        kept.append(ch if cat[0] in ("L", "N") else " ")
    return re.sub(r"\s+", " ", "".join(kept)).strip().casefold()


def _ambiguous(name: str, found: list[Model], available: list[str]) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"model name {name!r} is ambiguous: {', '.join(m.name for m in found)}",
        available=available,
    )


def find_model(models: Sequence[Model], name: str) -> Model:
    """The model of ``models`` called ``name`` (see :meth:`AccountAPI.find_model`)."""
    available = [m.name for m in models]
    for m in models:  # exact raw name or id
        if m.name == name or (m.id is not None and m.id == name):
            return m
    q = normalise_model_name(name)
    if not q:
        raise ModelNotFoundError(f"empty model name {name!r}", available=available)
    exact = [m for m in models if normalise_model_name(m.name) == q]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        raise _ambiguous(name, exact, available)
    prefix = [m for m in models if (normalise_model_name(m.name) + " ").startswith(q + " ")]
    if len(prefix) == 1:
        return prefix[0]
    if len(prefix) > 1:
        raise _ambiguous(name, prefix, available)
    raise ModelNotFoundError(
        f"no model called {name!r}; available: {', '.join(available) or 'none'}",
        available=available,
    )


def _enabled(blocks: Any) -> dict[str, bool]:
    """Block names (lower case) → enabled, from names, ``{name: bool}`` or
    ``[{"name", "enabled"}]``."""
    if isinstance(blocks, Mapping):
        return {str(k).lower(): bool(v) for k, v in blocks.items()}
    enabled: dict[str, bool] = {}
    for b in blocks or ():
        if isinstance(b, str):
            enabled[b.lower()] = True
        elif isinstance(b, Mapping) and "name" in b:
            enabled[str(b["name"]).lower()] = bool(b.get("enabled", True))
    return enabled


def model_price(
    model: Model,
    status: UserStatus,
    blocks: Iterable[str] | Mapping[str, bool] | Iterable[Mapping[str, Any]] | None = None,
    data_provider: str | None = None,
    zoom: int | None = None,
) -> float:
    """Credits per km² of ``model`` with ``blocks`` and a data provider of ``status``
    (see :meth:`AccountAPI.model_price`)."""
    enabled = _enabled(blocks)
    unknown = [k for k in enabled if model.block(k) is None]
    if unknown:
        raise ModelNotFoundError(
            f"{model.name} has no block(s) {', '.join(unknown)}",
            available=[b.name for b in model.blocks],
        )
    price = model.price_per_sq_km
    for b in model.blocks:
        on = enabled.get(b.name.lower(), enabled.get((b.display_name or "").lower()))
        if not b.optional or on:
            price += b.price
    if data_provider is not None:
        provider = status.data_provider(data_provider)
        if provider is None:
            raise ModelNotFoundError(
                f"no data provider called {data_provider!r}",
                available=[p.name for p in status.data_providers],
            )
        price += provider.price_at(zoom)
    return float(price)
