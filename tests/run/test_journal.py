"""The run journal: durable intents, fingerprint guard, one live process per run dir."""

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mapflow_geo.exceptions import RunError
from mapflow_geo.run import journal as jr
from mapflow_geo.run._failpoints import FAILPOINT_ENV
from mapflow_geo.run._files import atomic_write_bytes, parquet_intact, remove_temp_files


def test_records_survive_reopen(tmp_path):
    with jr.Journal(tmp_path, "f" * 64) as j:
        j.add_planned("p1", estimate=13, area_km2=1.5)
        j.mark_intent("p1", meta={"mapflow_geo_key": "p1"})
        run_id = j.run_id
    with jr.Journal(tmp_path, "f" * 64) as j:
        rec = j.get("p1")
        assert rec.state == jr.INTENT
        assert rec.meta == {"mapflow_geo_key": "p1"}
        assert rec.create_attempts == 1
        assert j.run_id == run_id
        j.mark_created("p1", "abc", status="IN_PROGRESS", cost=13)
        j.record_download("p1", "aoi-1", tile_id="t1", status="OK", path="x.parquet", features=4)
        j.mark_finished("p1")
    with jr.Journal(tmp_path, None, lock=False) as j:
        assert [r.state for r in j.records()] == [jr.FINISHED]
        assert j.get("p1").processing_id == "abc"
        assert [d.features for d in j.downloads("p1")] == [4]


def test_add_planned_does_not_reset_progress(tmp_path):
    with jr.Journal(tmp_path, "a" * 64) as j:
        j.add_planned("p1", estimate=1, area_km2=1.0)
        j.mark_intent("p1", meta={})
        j.mark_created("p1", "id-1")
        j.add_planned("p1", estimate=1, area_km2=1.0)
        assert j.get("p1").state == jr.CREATED


def test_other_fingerprint_refused(tmp_path):
    jr.Journal(tmp_path, "a" * 64).close()
    with pytest.raises(RunError, match="other inputs or parameters"):
        jr.Journal(tmp_path, "b" * 64)


def test_open_without_run_refused(tmp_path):
    with pytest.raises(RunError, match="holds no mapflow-geo run"):
        jr.Journal(tmp_path, None, lock=False)


def test_second_live_process_refused(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from mapflow_geo.run.journal import Journal
                j = Journal({str(tmp_path)!r}, "c" * 64)
                print("locked", flush=True)
                time.sleep(30)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunError, match="another process is running"):
            jr.Journal(tmp_path, "c" * 64)
    finally:
        holder.kill()
        holder.wait()
    # the lock dies with its holder, even when killed
    jr.Journal(tmp_path, "c" * 64).close()


def test_an_atomic_write_makes_the_folders_it_needs(tmp_path):
    """A file two folders below one that does not exist yet is written, folders and all."""
    target = tmp_path / "run" / "results" / "f.bin"
    atomic_write_bytes(target, b"data")
    assert target.read_bytes() == b"data"


def test_atomic_write_and_temp_cleanup(tmp_path):
    target = tmp_path / "sub" / "f.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    (tmp_path / "sub" / ".f.bin.123.tmp").write_bytes(b"torn")
    assert remove_temp_files(tmp_path) == 1
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["f.bin"]


def test_a_write_killed_before_its_rename_leaves_the_old_file(tmp_path):
    """The failpoint a write names kills it after the temp file, before the rename: the
    old file stays whole and only the temp file is left, for the clean-up."""
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    writer = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from mapflow_geo.run._files import atomic_write_bytes\n"
            "atomic_write_bytes(sys.argv[1], b'new', failpoint_name='before_result_rename')",
            str(target),
        ],
        env={**os.environ, FAILPOINT_ENV: "before_result_rename"},
        timeout=120,
    )
    assert writer.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"old"
    assert remove_temp_files(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_concurrent_intents_share_commits_and_each_is_on_disk(tmp_path):
    """Group commit: many threads' intents, each on disk when its call returns (a
    second connection sees it), one attempt each."""
    import sqlite3
    import threading

    keys = [f"p{i:03d}" for i in range(64)]
    seen_on_return = []
    with jr.Journal(tmp_path, "g" * 64) as j:
        j.add_planned_many((k, 1, 1.0) for k in keys)

        def intent(key):
            j.mark_intent(key, meta={"mapflow_geo_key": key})
            other = sqlite3.connect(tmp_path / "journal.sqlite")
            try:
                row = other.execute("SELECT state FROM processing WHERE key=?", (key,)).fetchone()
            finally:
                other.close()
            seen_on_return.append(row[0])

        threads = [threading.Thread(target=intent, args=(k,)) for k in keys]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seen_on_return == [jr.INTENT] * len(keys)
        assert [r.create_attempts for r in j.records()] == [1] * len(keys)
        assert [r.meta["mapflow_geo_key"] for r in j.records(jr.INTENT)] == keys


def test_failed_group_commit_raises_in_every_caller(tmp_path, monkeypatch):
    with jr.Journal(tmp_path, "h" * 64) as j:
        j.add_planned("p1", estimate=1, area_km2=1.0)

        def broken(*a, **k):
            raise OSError("disk full")

        monkeypatch.setattr(j, "_tx", broken)
        with pytest.raises(OSError, match="disk full"):
            j.mark_intent("p1", meta={})
        monkeypatch.undo()
        j.mark_intent("p1", meta={})  # the next one leads a commit again
        assert j.get("p1").state == jr.INTENT


def test_in_memory_records_match_the_database(tmp_path):
    """The locked journal's copy follows every write; a lock-free reader of the same
    file sees the same records."""
    with jr.Journal(tmp_path, "m" * 64) as j:
        j.add_planned_many([("b", 2, 2.0), ("a", 1, 1.0), ("c", 3, 3.0)])
        j.add_planned("a", estimate=9, area_km2=9.0)  # known: left as it is
        j.mark_intent("a", meta={"k": "a"})
        j.mark_created("a", "id-a", status="IN_PROGRESS", cost=1)
        j.mark_intent("b", meta={"k": "b"})
        j.mark_not_created("b", message="no credits")
        j.update_statuses(
            [
                {"key": "a", "status": "OK", "percent": 100, "cost": 2, "messages": []},
                {"key": "c", "status": "FAILED", "messages": ["x"]},
            ]
        )
        j.count_restart("c")
        j.mark_intent("a", meta={"k": "again"})  # created: left as it is
        j.mark_created("a", "id-a", status="IN_PROGRESS")  # created_at kept, cost set
        j.update_statuses([{"key": "a", "status": "OK", "cost": 2}])
        j.finish(
            "a",
            [
                {
                    "aoi_id": "whole",
                    "tile_id": "t",
                    "status": "OK",
                    "path": "r/a.parquet",
                    "features": 3,
                }
            ],
        )
        assert [r.key for r in j.records()] == ["a", "b", "c"]
        assert [r.key for r in j.records(jr.PLANNED)] == ["b", "c"]
        assert j.count(jr.PLANNED) == 2 and j.count() == 3
        assert j.get("a").estimate == 1
        mine = [dataclasses.asdict(r) for r in j.records()]
        with jr.Journal(tmp_path, None, lock=False) as view:
            assert [dataclasses.asdict(r) for r in view.records()] == mine
            assert [r.key for r in view.records(jr.FINISHED)] == ["a"]
            assert [d.features for d in view.downloads("a")] == [3]
        j.reopen_downloads({"a": ["whole"]})
        assert j.get("a").state == jr.CREATED and j.get("a").finished_at is None
        assert j.downloads("a") == []
    with jr.Journal(tmp_path, "m" * 64) as j:  # reopened: read from disk
        assert [dataclasses.asdict(r) for r in j.records()][1:] == mine[1:]
        assert j.get("a").state == jr.CREATED


def test_state_index_exists(tmp_path):
    with jr.Journal(tmp_path, "i" * 64) as j:
        plan = j._db.execute(
            "EXPLAIN QUERY PLAN SELECT key FROM processing WHERE state=?", (jr.CREATED,)
        ).fetchall()
    assert "processing_state" in " ".join(str(tuple(r)) for r in plan)


def _parquet_bytes() -> bytes:
    """A whole Parquet file as pyarrow writes it."""
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"a": [1, 2, 3]}), sink)
    return sink.getvalue().to_pybytes()


def test_unsynced_write_and_parquet_check(tmp_path):
    target = tmp_path / "r" / "x.parquet"
    data = _parquet_bytes()
    atomic_write_bytes(target, data, durable=False)
    assert pq.read_table(target).column("a").to_pylist() == [1, 2, 3]
    assert parquet_intact(target)
    target.write_bytes(data[:-1])  # cut short
    with pytest.raises(pa.ArrowInvalid):
        pq.read_metadata(target)
    assert not parquet_intact(target)
    assert not parquet_intact(tmp_path / "r" / "missing.parquet")


@pytest.mark.parametrize("gap", [0, 1, 2, 3, 4])
def test_parquet_check_rejects_files_too_short_for_a_footer(tmp_path, gap):
    """A Parquet file ends in its footer, the footer's 4-byte length and ``PAR1`` after
    the leading ``PAR1``: in 12 bytes or fewer there is no footer, so no file is whole,
    even with the magic at both ends (pyarrow cannot read one)."""
    target = tmp_path / "short.parquet"
    target.write_bytes(b"PAR1" + b"\0" * gap + b"PAR1")
    with pytest.raises((pa.ArrowInvalid, OSError)):
        pq.read_metadata(target)
    assert not parquet_intact(target)


def test_parquet_check_takes_the_smallest_file_with_a_footer_as_whole(tmp_path):
    """13 bytes hold the leading ``PAR1``, a footer of one byte, its length (1, little
    endian, as the Parquet format lays it out) and the closing ``PAR1``: the ends of
    such a file say it is whole; a torn-file check by the ends takes it so."""
    target = tmp_path / "least.parquet"
    target.write_bytes(b"PAR1" + b"\x00" + (1).to_bytes(4, "little") + b"PAR1")
    assert target.stat().st_size == 13
    assert parquet_intact(target)


def test_failed_write_leaves_the_in_memory_copy_as_on_disk(tmp_path, monkeypatch):
    with jr.Journal(tmp_path, "w" * 64) as j:
        j.add_planned("p1", estimate=1, area_km2=1.0)
        j.records()
        real = j._db

        class FailingCommit:
            def __getattr__(self, name):
                return getattr(real, name)

            def execute(self, sql, *args):
                if sql == "COMMIT":
                    raise sqlite3.OperationalError("disk I/O error")
                return real.execute(sql, *args)

        monkeypatch.setattr(j, "_db", FailingCommit())
        with pytest.raises(sqlite3.OperationalError):
            j.update_statuses([{"key": "p1", "status": "OK"}])
        monkeypatch.setattr(j, "_db", real)
        assert j.get("p1").status is None
        assert [r.status for r in j.records()] == [None]


def test_run_statuses_live_in_the_run_layer():
    from mapflow_geo.models import Status
    from mapflow_geo.run.status import RunStatus, is_finished, parse_status

    assert {s.value for s in RunStatus} == {
        "PLANNED", "NOT_CREATED", "REPLANNED", "TOO_LARGE_PROCESSING"
    }  # fmt: skip
    assert not {s.value for s in RunStatus} & {s.value for s in Status}
    finished = {s for s in RunStatus if is_finished(s.value)}
    assert finished == {RunStatus.NOT_CREATED, RunStatus.REPLANNED, RunStatus.TOO_LARGE_PROCESSING}
    # the service's statuses read as the service's, terminal as the API says
    assert parse_status("awaiting") is Status.AWAITING and not is_finished("AWAITING")
    assert parse_status("canceled") is Status.CANCELLED and is_finished("REFUNDED")
    assert parse_status("not created") is RunStatus.NOT_CREATED and is_finished("not_created")
    assert parse_status(None) is Status.UNKNOWN and not is_finished(None)
    assert not is_finished("PLANNED") and RunStatus.PLANNED == "PLANNED"
    assert f"{RunStatus.REPLANNED}" == "REPLANNED" and str(RunStatus.NOT_CREATED) == "NOT_CREATED"
    # in a table's column a member is padded and aligned as its text is
    for spec in (">14", "<14", "^14", ".3"):
        assert format(RunStatus.PLANNED, spec) == format("PLANNED", spec)
    # statuses read as a user or another tool writes them: any case, hyphens, spaces
    assert parse_status(" Too-Large processing ") is RunStatus.TOO_LARGE_PROCESSING
    assert parse_status("replanned") is RunStatus.REPLANNED


def test_every_change_reaches_the_file_as_written(tmp_path):
    """What each call records is what a later process reads from the file: states, ids,
    statuses, costs, messages, restarts and times (the in-memory copy is no witness)."""
    t0 = time.time()
    with jr.Journal(tmp_path, "d" * 64) as j:
        j.add_planned_many([(k, 1, 1.0) for k in "abcdefg"])
        j.records()  # the runner reads them first: from here on writes update its copy too
        for k in "adefg":
            j.mark_intent(k, meta={"k": k})
        for k, cost in (("a", 6), ("d", 1), ("e", 2), ("g", 4)):
            j.mark_created(k, f"id-{k}", status="IN_PROGRESS", cost=cost)
        j.mark_intent("b", meta={"k": "b"})
        j.mark_not_created("b", message="no credits")
        j.mark_not_created("f")  # refused without a message: none recorded
        j.mark_intent("f", meta={"k": "f"})
        j.update_status("a", status="IN_PROGRESS", percent=40, messages=["slow"])
        j.mark_created("g", "id-g", status="IN_PROGRESS", cost=4)  # found again: same time
        unknown = {"key": "no such key", "status": "OK"}
        j.update_statuses([unknown, {"key": "d", "status": "REPLANNED"}])
        j.update_statuses([{"key": "e", "status": "FAILED"}])
        j.update_status("c", status="NOT_CREATED", cost=3)  # refused, never given an id
        for k in "acde":
            if k == "a":
                j.update_status("a", status="OK", percent=100, cost=6)
            stored = {"aoi_id": "w", "tile_id": k, "status": "OK", "features": 2}
            j.finish(k, [{**stored, "path": f"r/{k}.parquet"}])
        j.count_restart("g")
        j.count_restart("g")
        assert j.get("g").restarts == 2  # the runner's own copy counts them too
        j.update_status("g", status="IN_PROGRESS", percent=10)
        mine = [dataclasses.asdict(r) for r in j.records()]
        t1 = time.time()
    with jr.Journal(tmp_path, "d" * 64) as j:
        assert [dataclasses.asdict(r) for r in j.records()] == mine  # the copy was the file
        a, b, c, g = (j.get(k) for k in "abcg")
        assert (a.state, a.processing_id, a.status, a.percent, a.cost) == (
            jr.FINISHED,
            "id-a",
            "OK",
            100,
            6,
        )
        assert a.messages == ["slow"] and t0 <= a.created_at <= a.finished_at <= t1
        assert (b.state, b.processing_id, b.messages) == (jr.PLANNED, None, ["no credits"])
        assert (c.status, c.cost, c.processing_id) == ("NOT_CREATED", 3, None)
        assert (g.state, g.restarts, g.create_attempts) == (jr.CREATED, 2, 1)
        assert all(t0 <= r.updated_at <= t1 for r in j.records() if r.key != "f")
        # credits: what created processings cost; failed: finished other than OK/re-planned
        assert j.tally() == {
            "records": 7,
            "finished": 4,
            "live": 2,
            "created": 4,
            "failed": 2,
            "credits": 13,
        }
        assert j.stored_objects() == 8
        assert j.reopen_not_created() == ["c"]
        j.reopen_downloads({"a": ["w"], "c": ["w"]})
    with jr.Journal(tmp_path, "d" * 64) as j:
        a, c = j.get("a"), j.get("c")
        assert (a.state, a.finished_at) == (jr.CREATED, None) and a.updated_at >= t1
        assert (c.state, c.status, c.finished_at) == (jr.PLANNED, None, None)
        assert [d.aoi_id for d in j.downloads()] == ["w", "w"]  # d's and e's
        assert sorted(d.processing_key for d in j.downloads()) == ["d", "e"]
        assert j.tally()["finished"] == 2 and j.tally()["credits"] == 13
    with jr.Journal(tmp_path, None, lock=False) as view:  # read from the file, no copy
        assert view.get("f").messages == [] and view.get("f").create_attempts == 2
        assert view.get("no such key") is None
