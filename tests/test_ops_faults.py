"""Fault injection: kill -9 during ingest, readers during a write, unwritable warehouses."""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lumina_analytics.cli import main
from lumina_analytics.errors import WarehouseError
from lumina_analytics.warehouse import Warehouse

INGEST = (
    "import sys; from lumina_analytics.ingest import ingest_paths; "
    "ingest_paths([sys.argv[1]], sys.argv[2], progress=False)"
)


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lumina_analytics.simulate import simulate

    d = tmp_path_factory.mktemp("sim") / "sim"
    simulate(days=1, scale=0.02, out=d)
    return d


@pytest.fixture(scope="module")
def reference_counts(sim_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """Row counts of one clean ingest; ``ok_files`` counts its ingest_log 'ok' lines."""
    from lumina_analytics.ingest import ingest_paths

    wh = Warehouse(tmp_path_factory.mktemp("ref") / "ref.duckdb")
    ingest_paths([sim_dir], wh, progress=False)
    ok = wh.query("SELECT count(*) AS n FROM ingest_log WHERE status = 'ok'")["n"].iloc[0]
    return {**wh.table_counts(), "ok_files": int(ok)}


def _ingest_proc(sim_dir: Path, path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", INGEST, str(sim_dir), str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_kill_9_during_ingest_then_rerun_loses_and_duplicates_nothing(
    sim_dir: Path, reference_counts: dict[str, int], tmp_path: Path
) -> None:
    rng = random.Random(20261127)
    wh = Warehouse(tmp_path / "w.duckdb")
    for _ in range(4):  # kill at four random points of successive (resuming) runs
        proc = _ingest_proc(sim_dir, wh.path)
        while not wh.lock_path.exists() and proc.poll() is None:  # first writer has started
            time.sleep(0.01)
        time.sleep(rng.uniform(0.3, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if wh.exists():
            # per-file atomicity: the stored rows are exactly those of the files logged 'ok'
            partial = wh.table_counts()
            stored = sum(n for t, n in partial.items() if t not in ("ingest_log", "quarantine"))
            log = wh.query("SELECT sha256, status, rows_loaded FROM ingest_log")
            ok = log[log["status"] == "ok"]
            assert stored == int(ok["rows_loaded"].sum())
            assert not ok["sha256"].duplicated().any()
    from lumina_analytics.ingest import ingest_paths

    ingest_paths([sim_dir], wh, progress=False)
    counts = wh.table_counts()
    for table in ("spans", "llm_calls", "metrics", "logs", "events", "deployments"):
        assert counts[table] == reference_counts[table], table
    log = wh.query("SELECT path, sha256, status FROM ingest_log WHERE status = 'ok'")
    assert not log.duplicated(["sha256"]).any()  # every file recorded ok exactly once
    ok_ref = reference_counts["ok_files"]
    assert len(log) == ok_ref  # the same files as one clean run, each once
    # a further rerun adds no data (only 'skipped' log lines)
    ingest_paths([sim_dir], wh, progress=False)
    again = wh.table_counts()
    assert {k: v for k, v in again.items() if k != "ingest_log"} == {
        k: v for k, v in counts.items() if k != "ingest_log"
    }


def test_reader_answers_while_a_writer_ingests(
    sim_dir: Path, reference_counts: dict[str, int], tmp_path: Path
) -> None:
    """Dashboards (readers in this process) keep answering while another process ingests."""
    wh = Warehouse(tmp_path / "w.duckdb", lock_timeout_s=60)
    wh.init()
    proc = _ingest_proc(sim_dir, wh.path)
    answers: list[int] = []
    try:
        while proc.poll() is None:
            answers.append(int(wh.query("SELECT count(*) AS n FROM spans")["n"].iloc[0]))
            time.sleep(0.05)
    finally:
        proc.wait()
    assert proc.returncode == 0
    assert len(answers) >= 2
    assert answers == sorted(answers)  # never a half-written or rolled-back state
    assert wh.table_counts()["spans"] == reference_counts["spans"]


def test_warehouse_in_unwritable_place_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")  # a folder under a file: refused even for root
    with pytest.raises(WarehouseError, match="cannot write warehouse"):
        Warehouse(blocker / "w.duckdb").init()
    assert main(["--warehouse", "/proc/lumina.duckdb", "warehouse", "init"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write warehouse /proc/lumina.duckdb")


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {done.stderr!r}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_read_only_mount_readers_work_writers_get_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with _tmpfs(tmp_path / "ro", "8m") as mnt:
        wh = Warehouse(mnt / "w.duckdb")
        wh.init()
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        assert wh.schema_version() > 0  # dashboards keep reading
        assert main(["--warehouse", str(wh.path), "warehouse", "init"]) == 2
        assert "Read-only file system" in capsys.readouterr().err


def test_full_disk_is_a_clear_error(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "full", "1m") as mnt:
        wh = Warehouse(mnt / "w.duckdb")
        with pytest.raises(WarehouseError, match="No space left on device"), wh.writer() as con:
            con.execute(
                "CREATE TABLE big AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(200000)"
            )
            con.execute("CHECKPOINT")


def test_restore_into_read_only_place_leaves_nothing(tmp_path: Path) -> None:
    from lumina_analytics.ops import backup, restore

    wh = Warehouse()
    wh.init()
    b = backup(tmp_path / "bk")
    with pytest.raises((WarehouseError, OSError)):
        restore(b.path, into="/proc/lumina-restore.duckdb")
