"""The run journal: one durable record per processing, in SQLite (WAL mode).

Its rules (intent before create, nothing rewritten in place, what money rests on is on
disk first, one live process per run dir) are in DESIGN.md, *The journal*.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mapflow_geo.exceptions import RunError
from mapflow_geo.models import Status
from mapflow_geo.run.status import RunStatus

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Record states, in the order a processing moves through them.
#: The journal's file name in a run dir.
JOURNAL_FILE = "journal.sqlite"

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
CREATE INDEX IF NOT EXISTS processing_state ON processing(state);
CREATE TABLE IF NOT EXISTS download (
    processing_key TEXT NOT NULL,
    aoi_id         TEXT NOT NULL,
    tile_id        TEXT,
    status         TEXT NOT NULL,
    path           TEXT,
    features       INTEGER,
    messages       TEXT,
    updated_at     REAL,
    repaired       INTEGER NOT NULL DEFAULT 0,
    dropped        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (processing_key, aoi_id)
);
"""
#: Columns added to the download table since its first version (journals made before
#: get them on open): objects repaired and dropped on ingest.
_DOWNLOAD_ADDED = ("repaired", "dropped")


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
        d["messages"] = _loads(d["messages"], list)
        d["meta"] = _loads(d["meta"], dict)
        return cls(**d)


def _loads(text: str | None, empty: type) -> Any:
    """JSON text of a record's field (``None``, ``[]`` and ``{}`` without parsing)."""
    if not text or text in ("[]", "{}"):
        return empty()
    return json.loads(text)


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
    repaired: int = 0
    dropped: int = 0

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> DownloadRecord:
        d = dict(row)
        d["messages"] = _loads(d["messages"], list)
        return cls(**d)


class _Ticket:
    """One write waiting for a group commit."""

    __slots__ = ("done", "error", "params")

    def __init__(self, params: tuple) -> None:
        self.params = params
        self.done = False
        self.error: BaseException | None = None


class _GroupCommit:
    """Writes of concurrent callers committed together: one caller leads and commits
    every write waiting (its own among them), the others wait; each returns once its
    own write is committed, or raises what the commit raised."""

    def __init__(self, commit: Callable[[list[tuple]], None]) -> None:
        self._commit = commit
        self._waiting: list[_Ticket] = []
        self._cv = threading.Condition(threading.Lock())
        self._leading = False

    def submit(self, params: tuple) -> None:
        ticket = _Ticket(params)
        cv = self._cv
        with cv:
            self._waiting.append(ticket)
            while not ticket.done:
                if self._leading:  # another caller is committing: wait for it
                    cv.wait()
                    continue
                batch, self._waiting = self._waiting, []
                self._leading = True
                error: BaseException | None = None
                cv.release()
                try:
                    self._commit([t.params for t in batch])
                except BaseException as exc:  # every write of the batch failed
                    error = exc
                finally:
                    cv.acquire()
                for t in batch:
                    t.done, t.error = True, error
                self._leading = False
                cv.notify_all()
        if ticket.error is not None:
            raise ticket.error


_INTENT_SQL = (
    "UPDATE processing SET state=?, meta=?, create_attempts=create_attempts+1,"
    " updated_at=? WHERE key=? AND state IN (?, ?)"
)


class Journal:
    """The durable state of one run, in ``run_dir/journal.sqlite``.

    A journal opened with the lock (the run's own) keeps a copy of every processing
    record in memory, refreshed after each of its writes, so that :meth:`records` costs
    no query (a run reads them every poll cycle); one opened without the lock reads the
    database each time.

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
            self.run_dir / JOURNAL_FILE, check_same_thread=False, isolation_level=None
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._sync = "FULL"
        self._db.executescript(_SCHEMA)
        have = {r[1] for r in self._db.execute("PRAGMA table_info(download)")}
        for col in _DOWNLOAD_ADDED:
            if col not in have:
                self._db.execute(
                    f"ALTER TABLE download ADD COLUMN {col} INTEGER NOT NULL DEFAULT 0"
                )
        # in-memory copy of the processing table (locked journals only): key → record,
        # keys by state, and the keys in order (None: to sort again)
        self._cache: dict[str, ProcessingRecord] | None = None
        self._by_state: dict[str, set[str]] = {s: set() for s in STATES}
        self._order: list[str] | None = None
        self._caching = lock
        self._intents = _GroupCommit(self._commit_intents)
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
                    "(or for another service or account: fingerprint "
                    f"{stored[:12]}…, this call {fingerprint[:12]}…); "
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
        with self._tx(sync=True) as db:
            db.execute("INSERT OR REPLACE INTO run(key, value) VALUES (?, ?)", (key, value))

    # ------------------------------------------------------------------ processings
    @contextlib.contextmanager
    def _tx(self, *, sync: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction; ``sync``: fsynced before it returns (``synchronous=FULL``),
        else atomic and safe from a killed process, on disk by the next FULL commit."""
        with self._mutex:
            mode = "FULL" if sync else "NORMAL"
            if self._sync != mode:
                self._db.execute(f"PRAGMA synchronous={mode}")
                self._sync = mode
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db  # writes, and their changes to the in-memory copy
                self._db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                self._cache = None  # it may hold what did not commit: read it again
                raise

    # -- the in-memory copy --------------------------------------------------------
    def _load_cache(self) -> dict[str, ProcessingRecord]:
        if self._cache is None:
            with self._mutex:
                rows = self._db.execute("SELECT * FROM processing").fetchall()
                self._cache = {}
                self._by_state = {s: set() for s in STATES}
                for row in rows:
                    self._put(ProcessingRecord._from_row(row))
                self._order = None
        return self._cache

    def _put(self, rec: ProcessingRecord) -> None:
        assert self._cache is not None
        old = self._cache.get(rec.key)
        if old is None:
            self._order = None
        else:
            self._by_state.setdefault(old.state, set()).discard(rec.key)
        self._cache[rec.key] = rec
        self._by_state.setdefault(rec.state, set()).add(rec.key)

    def _change(self, key: str, **values: Any) -> None:
        """Apply a committed write to the in-memory copy (no read back)."""
        if self._cache is not None:
            with self._mutex:
                rec = self._cache.get(key)
                if rec is not None:
                    self._put(dataclasses.replace(rec, **values))

    def _refresh(self, keys: Any = None) -> None:
        """Read the given records (all when None) again after a write."""
        if not self._caching or self._cache is None:
            return
        with self._mutex:
            if keys is None:
                self._cache = None
                self._load_cache()
                return
            keys = list(keys)
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT * FROM processing WHERE key IN ({marks})", chunk
                ).fetchall()
                for row in rows:
                    self._put(ProcessingRecord._from_row(row))

    # -- writes ----------------------------------------------------------------------
    def add_planned(self, key: str, *, estimate: int | None, area_km2: float) -> None:
        """Record a planned processing (no-op if the key is known)."""
        self.add_planned_many([(key, estimate, area_km2)])

    def add_planned_many(self, rows: Any) -> None:
        """Record planned processings, ``(key, estimate, area_km2)`` each, in one
        transaction (known keys are left as they are)."""
        now = time.time()
        params = [(key, PLANNED, est, area, now) for key, est, area in rows]
        if not params:
            return
        with self._tx() as db:
            db.executemany(
                "INSERT OR IGNORE INTO processing(key, state, estimate, area_km2, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                params,
            )
            if self._cache is not None:
                for key, _, est, area, at in params:
                    if key not in self._cache:
                        self._put(
                            ProcessingRecord(
                                key, PLANNED, estimate=est, area_km2=area, updated_at=at
                            )
                        )

    def mark_intent(self, key: str, *, meta: dict) -> None:
        """Durably record that a create is about to be sent, with its ``meta``: returns
        once the intent is fsynced. Intents of concurrent callers share one commit."""
        text, now = json.dumps(meta, sort_keys=True), time.time()
        self._intents.submit((INTENT, text, now, key, PLANNED, INTENT))
        with self._mutex:
            rec = self._cache.get(key) if self._cache is not None else None
            if rec is not None and rec.state in (PLANNED, INTENT):
                self._change(
                    key,
                    state=INTENT,
                    meta=json.loads(text),
                    create_attempts=rec.create_attempts + 1,
                    updated_at=now,
                )

    def _commit_intents(self, params: list[tuple]) -> None:
        with self._tx(sync=True) as db:
            db.executemany(_INTENT_SQL, params)

    def mark_not_created(self, key: str, *, message: str | None = None) -> None:
        """The server refused the create (a 4xx): nothing was charged; back to planned."""
        with self._tx() as db:
            db.execute(
                "UPDATE processing SET state=?, messages=?, updated_at=? WHERE key=?",
                (PLANNED, json.dumps([message] if message else []), time.time(), key),
            )
        self._refresh([key])

    def mark_created(
        self, key: str, processing_id: str, *, status: str | None = None, cost: int | None = None
    ) -> None:
        """The server gave the processing an id (found again by ``meta`` if this record
        is lost with a power cut: not fsynced on its own)."""
        now = time.time()
        with self._tx() as db:
            db.execute(
                "UPDATE processing SET state=?, processing_id=?, status=?, cost=?,"
                " created_at=COALESCE(created_at, ?), updated_at=? WHERE key=?",
                (CREATED, processing_id, status, cost, now, now, key),
            )
            rec = self._cache.get(key) if self._cache is not None else None
            if rec is not None:
                self._change(
                    key,
                    state=CREATED,
                    processing_id=processing_id,
                    status=status,
                    cost=cost,
                    created_at=now if rec.created_at is None else rec.created_at,
                    updated_at=now,
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
        self.update_statuses(
            [{"key": key, "status": status, "percent": percent, "cost": cost, "messages": messages}]
        )

    def update_statuses(self, updates: list[dict]) -> None:
        """Several :meth:`update_status` at once (dicts with ``key``, ``status`` and
        optionally ``percent``, ``cost``, ``messages``), in one transaction."""
        if not updates:
            return
        now = time.time()
        params = [
            (
                u["status"],
                u.get("percent"),
                u.get("cost"),
                None if u.get("messages") is None else json.dumps(u["messages"]),
                now,
                u["key"],
            )
            for u in updates
        ]
        with self._tx() as db:
            db.executemany(
                "UPDATE processing SET status=?, percent=?, cost=COALESCE(?, cost),"
                " messages=COALESCE(?, messages), updated_at=? WHERE key=?",
                params,
            )
            if self._cache is not None:
                for status, percent, cost, messages, at, key in params:
                    rec = self._cache.get(key)
                    if rec is None:
                        continue
                    self._change(
                        key,
                        status=status,
                        percent=percent,
                        cost=rec.cost if cost is None else cost,
                        messages=rec.messages if messages is None else _loads(messages, list),
                        updated_at=at,
                    )

    def reopen_not_created(self) -> list[str]:
        """Records the server refused (finished as ``NOT_CREATED``, never given an id, so
        never charged) go back to ``planned``, to be created on this resume."""
        with self._tx() as db:
            keys = [
                r[0]
                for r in db.execute(
                    "SELECT key FROM processing WHERE status=? AND processing_id IS NULL",
                    (RunStatus.NOT_CREATED.value,),
                )
            ]
            db.execute(
                "UPDATE processing SET state=?, status=NULL, finished_at=NULL, updated_at=?"
                " WHERE status=? AND processing_id IS NULL",
                (PLANNED, time.time(), RunStatus.NOT_CREATED.value),
            )
        self._refresh(keys)
        return keys

    def count_restart(self, key: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE processing SET restarts=restarts+1 WHERE key=?", (key,))
            rec = self._cache.get(key) if self._cache is not None else None
            if rec is not None:
                self._change(key, restarts=rec.restarts + 1)

    def mark_finished(self, key: str) -> None:
        self.finish(key)

    def finish(self, key: str, downloads: list[dict] | None = None) -> None:
        """Mark ``key`` finished, recording ``downloads`` (keyword arguments of
        :meth:`record_download` each, with ``aoi_id``) in the same transaction."""
        now = time.time()
        with self._tx() as db:
            for d in downloads or ():
                self._insert_download(db, key, **d)
            db.execute(
                "UPDATE processing SET state=?, finished_at=?, updated_at=? WHERE key=?",
                (FINISHED, now, now, key),
            )
            self._change(key, state=FINISHED, finished_at=now, updated_at=now)

    def reopen_downloads(self, lost: dict[str, list[str]]) -> None:
        """Forget stored downloads whose files are gone (``{key: [aoi_id, ...]}``) and
        put their finished processings back to ``created``, to be fetched again."""
        now = time.time()
        with self._tx() as db:
            for key, aoi_ids in lost.items():
                db.executemany(
                    "DELETE FROM download WHERE processing_key=? AND aoi_id=?",
                    [(key, a) for a in aoi_ids],
                )
                db.execute(
                    "UPDATE processing SET state=?, finished_at=NULL, updated_at=?"
                    " WHERE key=? AND state=? AND processing_id IS NOT NULL",
                    (CREATED, now, key, FINISHED),
                )
        self._refresh(list(lost))

    def get(self, key: str) -> ProcessingRecord | None:
        if self._caching and self._cache is not None:
            return self._cache.get(key)
        row = self._db.execute("SELECT * FROM processing WHERE key=?", (key,)).fetchone()
        return ProcessingRecord._from_row(row) if row else None

    def records(self, *states: str) -> list[ProcessingRecord]:
        """Every processing record in key order, or those in the given ``states``.

        The records of a locked journal are shared snapshots: each write replaces a
        record, never changes one in place; do not change them either."""
        if not self._caching:
            if states:
                marks = ",".join("?" * len(states))
                rows = self._db.execute(
                    f"SELECT * FROM processing WHERE state IN ({marks}) ORDER BY key", states
                ).fetchall()
            else:
                rows = self._db.execute("SELECT * FROM processing ORDER BY key").fetchall()
            return [ProcessingRecord._from_row(r) for r in rows]
        with self._mutex:
            cache = self._load_cache()
            if states:
                keys = sorted(k for s in states for k in self._by_state.get(s, ()))
                return [cache[k] for k in keys]
            if self._order is None:
                self._order = sorted(cache)
            return [cache[k] for k in self._order]

    def count(self, *states: str) -> int:
        """How many records are in the given ``states`` (all when none is given)."""
        if not self._caching:
            return len(self.records(*states))
        with self._mutex:
            cache = self._load_cache()
            if not states:
                return len(cache)
            return sum(len(self._by_state.get(s, ())) for s in states)

    # ------------------------------------------------------------------ downloads
    def record_download(self, processing_key: str, aoi_id: str, **fields: Any) -> None:
        """Record one stored (or failed) AOI result: ``tile_id`` and ``status``, and
        optionally ``path``, ``features``, ``messages``, ``repaired``, ``dropped``."""
        with self._tx() as db:
            self._insert_download(db, processing_key, aoi_id=aoi_id, **fields)

    @staticmethod
    def _insert_download(
        db: sqlite3.Connection,
        processing_key: str,
        *,
        aoi_id: str,
        tile_id: str | None,
        status: str,
        path: str | None = None,
        features: int | None = None,
        messages: list | None = None,
        repaired: int = 0,
        dropped: int = 0,
    ) -> None:
        db.execute(
            "INSERT OR REPLACE INTO download (processing_key, aoi_id, tile_id, status, path,"
            " features, messages, updated_at, repaired, dropped)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                processing_key,
                aoi_id,
                tile_id,
                status,
                path,
                features,
                json.dumps(messages or []),
                time.time(),
                int(repaired),
                int(dropped),
            ),
        )

    def tally(self) -> dict[str, int]:
        """Counts over every processing record, in one query (no record is built):
        ``records``, ``finished``, ``live`` (intent or created), ``created`` (given an
        id), ``failed`` (finished other than OK or re-planned) and ``credits`` (charged
        for the created ones)."""
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(state=?), 0), COALESCE(SUM(state IN (?, ?)), 0),"
            " COALESCE(SUM(processing_id IS NOT NULL), 0),"
            " COALESCE(SUM(state=? AND COALESCE(status, '') NOT IN (?, ?)), 0),"
            " COALESCE(SUM(CASE WHEN processing_id IS NOT NULL THEN cost END), 0)"
            " FROM processing",
            (FINISHED, INTENT, CREATED, FINISHED, Status.OK.value, RunStatus.REPLANNED.value),
        ).fetchone()
        names = ("records", "finished", "live", "created", "failed", "credits")
        return dict(zip(names, map(int, row), strict=True))

    def stored_objects(self) -> int:
        """Objects in the stored results (pieces before stitching)."""
        row = self._db.execute(
            "SELECT COALESCE(SUM(features), 0) FROM download WHERE status=?",
            (Status.OK.value,),
        ).fetchone()
        return int(row[0])

    def downloads(self, processing_key: str | None = None) -> list[DownloadRecord]:
        if processing_key is None:
            rows = self._db.execute("SELECT * FROM download ORDER BY processing_key, aoi_id")
        else:
            rows = self._db.execute(
                "SELECT * FROM download WHERE processing_key=? ORDER BY aoi_id",
                (processing_key,),
            )
        return [DownloadRecord._from_row(r) for r in rows.fetchall()]
