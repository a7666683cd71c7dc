"""The run journal: one durable record per processing, in SQLite (WAL mode).

The journal is what makes a run safe to kill. Its rules:

* **Intent before create.** A processing's record reaches ``intent`` (with the ``meta``
  the create will carry) and is committed to disk *before* the create request is sent.
  After a crash, a record left in ``intent`` means "maybe created, maybe charged": the
  runner lists the project's processings and adopts the one whose ``meta`` matches,
  instead of creating a second one.
* **Nothing is rewritten in place.** SQLite with ``journal_mode=WAL`` and
  ``synchronous=FULL`` commits each transaction atomically and durably; result files are
  written to a temporary name, fsynced and renamed (see :func:`atomic_write_bytes`).
* **One live process per run dir.** :class:`Journal` takes an exclusive ``flock`` on
  ``run_dir/lock``; a second process is refused with :class:`~mapflow_geo.exceptions.RunError`.
  The lock dies with its process, so a SIGKILLed run leaves nothing to clean up.
* **Same inputs or nothing.** The journal stores the run fingerprint (inputs and
  parameters); resuming with a different one is refused.

The token is never stored: records hold ids, statuses, costs, file names and ``meta``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mapflow_geo.exceptions import RunError
from mapflow_geo.models import Status

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Record states, in the order a processing moves through them.
PLANNED = "planned"  # known, nothing sent
INTENT = "intent"  # create is about to be / was sent; outcome unknown until recorded
CREATED = "created"  # the server gave us an id
FINISHED = "finished"  # terminal on the server and every downloadable result stored
STATES = (PLANNED, INTENT, CREATED, FINISHED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS run (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS processing (
    key            TEXT PRIMARY KEY,
    state          TEXT NOT NULL,
    processing_id  TEXT,
    status         TEXT,
    percent        REAL,
    estimate       INTEGER,
    cost           INTEGER,
    restarts       INTEGER NOT NULL DEFAULT 0,
    create_attempts INTEGER NOT NULL DEFAULT 0,
    messages       TEXT,
    meta           TEXT,
    area_km2       REAL,
    created_at     REAL,
    finished_at    REAL,
    updated_at     REAL
);
CREATE TABLE IF NOT EXISTS download (
    processing_key TEXT NOT NULL,
    aoi_id         TEXT NOT NULL,
    tile_id        TEXT,
    status         TEXT NOT NULL,
    path           TEXT,
    features       INTEGER,
    messages       TEXT,
    updated_at     REAL,
    PRIMARY KEY (processing_key, aoi_id)
);
"""


@dataclass
class ProcessingRecord:
    """One row of the ``processing`` table."""

    key: str
    state: str
    processing_id: str | None = None
    status: str | None = None
    percent: float | None = None
    estimate: int | None = None
    cost: int | None = None
    restarts: int = 0
    create_attempts: int = 0
    messages: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    area_km2: float | None = None
    created_at: float | None = None
    finished_at: float | None = None
    updated_at: float | None = None

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> ProcessingRecord:
        d = dict(row)
        d["messages"] = json.loads(d["messages"] or "[]")
        d["meta"] = json.loads(d["meta"] or "{}")
        return cls(**d)


@dataclass
class DownloadRecord:
    """One stored (or failed) per-AOI result."""

    processing_key: str
    aoi_id: str
    tile_id: str | None
    status: str
    path: str | None
    features: int | None
    messages: list = field(default_factory=list)
    updated_at: float | None = None

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> DownloadRecord:
        d = dict(row)
        d["messages"] = json.loads(d["messages"] or "[]")
        return cls(**d)


#: Environment variable naming a crash-test failpoint: ``name`` SIGKILLs the process the
#: first time it reaches ``name``; ``name:N`` at the N-th time.
FAILPOINT_ENV = "MAPFLOW_GEO_FAILPOINT"
_failpoint_hits: dict[str, int] = {}
_failpoint_lock = threading.Lock()


def failpoint(name: str) -> None:
    """Crash-test hook: SIGKILL this process at ``name`` when ``$MAPFLOW_GEO_FAILPOINT``
    asks for it (``name`` or ``name:N``, the N-th hit). A no-op otherwise."""
    want = os.environ.get(FAILPOINT_ENV)
    if not want:
        return
    wanted, _, nth = want.partition(":")
    if wanted != name:
        return
    with _failpoint_lock:
        _failpoint_hits[name] = hit = _failpoint_hits.get(name, 0) + 1
    if hit >= int(nth or 1):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def atomic_write_bytes(
    path: str | os.PathLike, data: bytes, *, failpoint_name: str | None = None
) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, rename,
    fsync of the folder. A reader sees the old file or the new one, never a torn one.
    ``failpoint_name`` names the :func:`failpoint` just before the rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    if failpoint_name:
        failpoint(failpoint_name)
    os.replace(tmp, path)
    fsync_dir(path.parent)


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


class Journal:
    """The durable state of one run, in ``run_dir/journal.sqlite``.

    Parameters
    ----------
    run_dir : path
        Folder of the run; created if missing.
    fingerprint : str
        Digest of the run's inputs and parameters. A journal made with another
        fingerprint refuses to open (:class:`RunError`).
    lock : bool
        Take the exclusive per-run-dir lock (default). ``False`` opens read-only use,
        e.g. :func:`mapflow_geo.open_run` on a finished run.

    Examples
    --------
    >>> with Journal(tmp_path, "abc") as j:                    # doctest: +SKIP
    ...     j.add_planned("p0001", estimate=13, area_km2=1.0)
    ...     j.mark_intent("p0001", meta={"mapflow_geo.run": j.run_id})
    """

    def __init__(
        self, run_dir: str | os.PathLike, fingerprint: str | None, *, lock: bool = True
    ) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fh = None
        if lock:
            self._acquire_lock()
        self._mutex = threading.RLock()
        self._db = sqlite3.connect(
            self.run_dir / "journal.sqlite", check_same_thread=False, isolation_level=None
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        stored = self.get_run("fingerprint")
        if fingerprint is not None:
            if stored is None:
                self.set_run("fingerprint", fingerprint)
                self.set_run("run_id", uuid.uuid4().hex[:16])
                self.set_run("created_at", repr(time.time()))
            elif stored != fingerprint:
                self.close()
                raise RunError(
                    f"run dir {self.run_dir} holds a run with other inputs or parameters "
                    f"(fingerprint {stored[:12]}…, this call {fingerprint[:12]}…); "
                    "use another run_dir to start a new run"
                )
        elif stored is None:
            self.close()
            raise RunError(f"{self.run_dir} holds no mapflow-geo run")

    # ------------------------------------------------------------------ lifecycle
    def _acquire_lock(self) -> None:
        if fcntl is None:  # pragma: no cover
            return
        fh = open(self.run_dir / "lock", "a+")  # noqa: SIM115 - held for the run's life
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise RunError(
                f"another process is running in {self.run_dir}; wait for it to finish "
                "or use another run_dir"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._lock_fh = fh

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._db.close()
        if self._lock_fh is not None:
            with contextlib.suppress(Exception):
                self._lock_fh.close()
            self._lock_fh = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({str(self.run_dir)!r})"

    @property
    def run_id(self) -> str:
        return self.get_run("run_id") or ""

    # ------------------------------------------------------------------ run table
    def get_run(self, key: str, default: str | None = None) -> str | None:
        row = self._db.execute("SELECT value FROM run WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_run(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO run(key, value) VALUES (?, ?)", (key, value))

    # ------------------------------------------------------------------ processings
    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._mutex:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def add_planned(self, key: str, *, estimate: int | None, area_km2: float) -> None:
        """Record a planned processing (no-op if the key is known)."""
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO processing(key, state, estimate, area_km2, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (key, PLANNED, estimate, area_km2, time.time()),
            )

    def mark_intent(self, key: str, *, meta: dict) -> None:
        """Durably record that a create is about to be sent, with its ``meta``."""
        with self._tx() as db:
            db.execute(
                "UPDATE processing SET state=?, meta=?, create_attempts=create_attempts+1,"
                " updated_at=? WHERE key=? AND state IN (?, ?)",
                (INTENT, json.dumps(meta, sort_keys=True), time.time(), key, PLANNED, INTENT),
            )

    def mark_not_created(self, key: str, *, message: str | None = None) -> None:
        """The server refused the create (a 4xx): nothing was charged; back to planned."""
        with self._tx() as db:
            db.execute(
                "UPDATE processing SET state=?, messages=?, updated_at=? WHERE key=?",
                (PLANNED, json.dumps([message] if message else []), time.time(), key),
            )

    def mark_created(
        self, key: str, processing_id: str, *, status: str | None = None, cost: int | None = None
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE processing SET state=?, processing_id=?, status=?, cost=?,"
                " created_at=COALESCE(created_at, ?), updated_at=? WHERE key=?",
                (CREATED, processing_id, status, cost, time.time(), time.time(), key),
            )

    def update_status(
        self,
        key: str,
        *,
        status: str,
        percent: float | None = None,
        cost: int | None = None,
        messages: list | None = None,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE processing SET status=?, percent=?, cost=COALESCE(?, cost),"
                " messages=COALESCE(?, messages), updated_at=? WHERE key=?",
                (
                    status,
                    percent,
                    cost,
                    None if messages is None else json.dumps(messages),
                    time.time(),
                    key,
                ),
            )

    def reopen_not_created(self) -> list[str]:
        """Records the server refused (finished as ``NOT_CREATED``, never given an id, so
        never charged) go back to ``planned``, to be created on this resume."""
        with self._tx() as db:
            keys = [
                r[0]
                for r in db.execute(
                    "SELECT key FROM processing WHERE status=? AND processing_id IS NULL",
                    (Status.NOT_CREATED.value,),
                )
            ]
            db.execute(
                "UPDATE processing SET state=?, status=NULL, finished_at=NULL, updated_at=?"
                " WHERE status=? AND processing_id IS NULL",
                (PLANNED, time.time(), Status.NOT_CREATED.value),
            )
        return keys

    def count_restart(self, key: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE processing SET restarts=restarts+1 WHERE key=?", (key,))

    def mark_finished(self, key: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE processing SET state=?, finished_at=?, updated_at=? WHERE key=?",
                (FINISHED, time.time(), time.time(), key),
            )

    def get(self, key: str) -> ProcessingRecord | None:
        row = self._db.execute("SELECT * FROM processing WHERE key=?", (key,)).fetchone()
        return ProcessingRecord._from_row(row) if row else None

    def records(self) -> list[ProcessingRecord]:
        rows = self._db.execute("SELECT * FROM processing ORDER BY key").fetchall()
        return [ProcessingRecord._from_row(r) for r in rows]

    # ------------------------------------------------------------------ downloads
    def record_download(
        self,
        processing_key: str,
        aoi_id: str,
        *,
        tile_id: str | None,
        status: str,
        path: str | None = None,
        features: int | None = None,
        messages: list | None = None,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO download VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    processing_key,
                    aoi_id,
                    tile_id,
                    status,
                    path,
                    features,
                    json.dumps(messages or []),
                    time.time(),
                ),
            )

    def downloads(self, processing_key: str | None = None) -> list[DownloadRecord]:
        if processing_key is None:
            rows = self._db.execute("SELECT * FROM download ORDER BY processing_key, aoi_id")
        else:
            rows = self._db.execute(
                "SELECT * FROM download WHERE processing_key=? ORDER BY aoi_id",
                (processing_key,),
            )
        return [DownloadRecord._from_row(r) for r in rows.fetchall()]
