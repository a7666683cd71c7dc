"""The run journal: durable intents, fingerprint guard, one live process per run dir."""

import subprocess
import sys
import textwrap

import pytest

from mapflow_geo.exceptions import RunError
from mapflow_geo.run import journal as jr


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


def test_atomic_write_and_temp_cleanup(tmp_path):
    target = tmp_path / "sub" / "f.bin"
    jr.atomic_write_bytes(target, b"one")
    jr.atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    (tmp_path / "sub" / ".f.bin.123.tmp").write_bytes(b"torn")
    assert jr.remove_temp_files(tmp_path) == 1
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["f.bin"]
