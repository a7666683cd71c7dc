"""File utilities of a run dir: atomic writes, fsync of a folder, torn-file checks and
the clean-up of what a killed writer left."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from mapflow_geo.run._failpoints import failpoint


def atomic_write_bytes(
    path: str | os.PathLike,
    data: bytes,
    *,
    failpoint_name: str | None = None,
    durable: bool = True,
) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, rename. A
    reader sees the old file or the new one, never a torn one, and a killed process
    leaves one or the other. ``durable``: fsync the file before the rename and the
    folder after it, so that a power cut cannot lose it either. ``failpoint_name``
    names the crash-test failpoint just before the rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    if failpoint_name:
        failpoint(failpoint_name)
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)


def parquet_intact(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a whole Parquet file as far as its ends tell (``PAR1`` at
    both, and room between them for a footer: more than the 12 bytes of the two magics
    and the footer's length): what a power cut can leave of an unsynced file is missing
    or cut short."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            fh.seek(0, os.SEEK_END)
            if fh.tell() <= 12:
                return False
            fh.seek(-4, os.SEEK_END)
            return head == b"PAR1" and fh.read(4) == b"PAR1"
    except OSError:
        return False


def fsync_dir(folder: str | os.PathLike) -> None:
    """fsync a directory so a rename inside it is durable (no-op where unsupported)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_temp_files(folder: str | os.PathLike) -> int:
    """Delete ``.*.tmp`` files a killed writer left below ``folder``; return how many."""
    n = 0
    for p in Path(folder).rglob(".*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()
            n += 1
    return n
