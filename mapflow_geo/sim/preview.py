"""Small real preview images (JPEG via Pillow when available, else PNG via zlib)."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from functools import lru_cache

import numpy as np


def _pixels(size: int, seed: str) -> np.ndarray:
    h = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:4], "big")
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    r = 90 + 60 * np.sin(6.28 * (x + (h % 97) / 97))
    g = 110 + 50 * np.cos(6.28 * (y + (h % 89) / 89))
    b = 80 + 40 * np.sin(6.28 * (x + y))
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def png_bytes(rgb: np.ndarray) -> bytes:
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[i].tobytes() for i in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + tag
            + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


@lru_cache(maxsize=64)
def preview_jpeg(size: int, seed: str = "") -> tuple[bytes, str]:
    """(image bytes, content type) of a size×size preview."""
    rgb = _pixels(size, seed)
    try:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=80)
        return buf.getvalue(), "image/jpeg"
    except Exception:  # noqa: BLE001 - Pillow missing: fall back to PNG
        return png_bytes(rgb), "image/png"
