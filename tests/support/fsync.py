"""Durable writes observed as syscalls: every descriptor passed to ``os.fsync``."""

from __future__ import annotations

import os


def record_fsyncs(monkeypatch) -> list[str]:
    """From now on, the path of every file or directory ``os.fsync`` is called on, in
    order (``"?"`` where the descriptor has no path); needs ``/proc/self/fd``."""
    seen: list[str] = []
    real = os.fsync

    def fsync(fd):
        try:
            seen.append(os.readlink(f"/proc/self/fd/{fd if isinstance(fd, int) else fd.fileno()}"))
        except OSError:
            seen.append("?")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen
