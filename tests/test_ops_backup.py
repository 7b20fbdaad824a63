"""Backup and restore: the restore drill, refusal of corrupt/partial backups, pruning, secrets."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from lumina_analytics.cli import main
from lumina_analytics.errors import WarehouseError
from lumina_analytics.ops import backup, list_backups, prune_backups, restore, verify_backup
from lumina_analytics.ops.backup import MANIFEST, sha256_file
from lumina_analytics.ops.restore import BackupCorruptError
from lumina_analytics.warehouse import SCHEMA_VERSION, Warehouse


@pytest.fixture(scope="module")
def sim_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse ingested from one simulated day (built once per module, copied per test)."""
    from lumina_analytics.ingest import ingest_paths
    from lumina_analytics.simulate import simulate

    d = tmp_path_factory.mktemp("sim")
    simulate(days=1, scale=0.02, out=d / "sim")
    wh = Warehouse(d / "base.duckdb")
    ingest_paths([d / "sim"], wh, progress=False)
    return wh.path


@pytest.fixture
def wh(sim_warehouse: Path, tmp_path: Path) -> Warehouse:
    target = tmp_path / "default.duckdb"  # the conftest's LUMINA_WAREHOUSE
    shutil.copy(sim_warehouse, target)
    return Warehouse(target)


def test_restore_drill_identical_counts_and_checksums(wh: Warehouse, tmp_path: Path) -> None:
    counts = wh.table_counts()
    assert counts["llm_calls"] > 0 and counts["spans"] > 0
    with wh.reader() as dashboard:  # a dashboard's read-only connection stays open meanwhile
        first = backup(tmp_path / "bk")
        assert dashboard.execute("SELECT count(*) FROM spans").fetchall()[0][0] == counts["spans"]
    manifest = json.loads((first.path / MANIFEST).read_text())
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert {"source_commit", "created_at", "tables"} <= set(manifest)
    for name, info in manifest["tables"].items():
        assert sha256_file(first.path / info["file"]) == info["sha256"]
        if name in counts:
            assert info["rows"] == counts[name]
    # wreck the live warehouse, restore, compare
    with wh.writer() as con:
        con.execute("DELETE FROM llm_calls")
    result = restore(first.path)
    assert result.previous is not None and result.previous.exists()
    assert wh.table_counts() == counts
    # a second backup of the restored file has the same content checksums per table
    second = backup(tmp_path / "bk2")
    m2 = json.loads((second.path / MANIFEST).read_text())
    for name, info in manifest["tables"].items():
        assert m2["tables"][name]["rows"] == info["rows"]
        if name != "schema_version":  # applied_at timestamps differ by design
            assert m2["tables"][name]["sha256"] == info["sha256"], name


def test_corrupt_backup_is_refused_before_touching_anything(wh: Warehouse, tmp_path: Path) -> None:
    b = backup(tmp_path / "bk")
    before = sha256_file(wh.path)
    f = b.path / "llm_calls.parquet"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(
        BackupCorruptError, match=r"llm_calls: llm_calls\.parquet checksum does not match"
    ):
        restore(b.path)
    assert sha256_file(wh.path) == before
    assert not list(wh.path.parent.glob("*.restore-*"))


def test_partial_backup_is_refused(
    wh: Warehouse, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    b = backup(tmp_path / "bk")
    (b.path / "spans.parquet").unlink()
    with pytest.raises(BackupCorruptError, match=r"spans: file spans\.parquet is missing"):
        verify_backup(b.path)
    assert main(["restore", "--verify-only", str(b.path)]) == 2
    assert "spans.parquet is missing" in capsys.readouterr().err
    (b.path / MANIFEST).unlink()
    assert main(["restore", str(b.path)]) == 2
    assert "not a complete backup" in capsys.readouterr().err


def test_backup_keep_prunes_oldest(wh: Warehouse, tmp_path: Path) -> None:
    root = tmp_path / "bk"
    made = [backup(root).path for _ in range(3)]
    assert main(["backup", "--to", str(root), "--keep", "2"]) == 0
    left = list_backups(root)
    assert len(left) == 2 and made[0] not in left and made[1] not in left
    stale, fresh = root / ".lumina-1.partial", root / ".lumina-2.partial"  # interrupted backups
    stale.mkdir()
    fresh.mkdir()
    os.utime(stale, (1, 1))
    pruned = prune_backups(root, 2)
    assert pruned == [stale] and fresh.exists()
    with pytest.raises(WarehouseError, match="at least 1"):
        backup(root, keep=0)


def test_backups_hold_no_secrets(
    sim_warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ingest with hashed user ids (salt in use), then no secret may appear in the backup."""
    from lumina_analytics.ingest import ingest_paths

    salt = "pepper-4f1c9e0d7a"
    hook = "https://hooks.example.invalid/T000/B000/secret-7d3e"
    monkeypatch.setenv("LUMINA_USER_ID_SALT", salt)
    monkeypatch.setenv("LUMINA_HASH_USER_IDS", "true")
    monkeypatch.setenv("LUMINA_ALERT_WEBHOOK_URL", hook)
    wh = Warehouse(tmp_path / "salted.duckdb")
    ingest_paths([sim_warehouse.parent / "sim"], wh, progress=False)
    assert wh.table_counts()["llm_calls"] > 0
    b = backup(tmp_path / "bk", warehouse=wh)
    for f in b.path.iterdir():
        blob = f.read_bytes()
        assert salt.encode() not in blob and hook.encode() not in blob, f.name
        assert b"hooks.example" not in blob and b"pepper" not in blob, f.name


def test_scheduled_backups_with_retention_count(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apscheduler.schedulers.blocking import BlockingScheduler

    from lumina_analytics.reports import schedule as sched
    from lumina_analytics.reports.catalog import ReportError

    default = sched.load_backup_schedule(sched.DEFAULT_SCHEDULE)
    assert default and all(e.keep >= 1 for e in default)
    f = tmp_path / "reports.yaml"
    f.write_text(
        f"reports: []\nbackups:\n  - {{name: hourly, cron: '0 * * * *', keep: 2, to: {tmp_path / 'bk'}}}\n"
    )
    (entry,) = sched.load_backup_schedule(f)
    s = BlockingScheduler(timezone="UTC")
    sched.add_backup_jobs(s, [entry])
    assert [j.id for j in s.get_jobs()] == ["backup:hourly"]
    for _ in range(3):
        assert sched.run_backup_entry(entry)
    assert len(list_backups(tmp_path / "bk")) == 2
    f.write_text("backups:\n  - {name: x, cron: '0 * * * *', keep: 0}\n")
    with pytest.raises(ReportError, match=r"'keep' must be a whole number >= 1"):
        sched.load_backup_schedule(f)
    # a failing backup is logged, never raised, so the scheduler keeps going
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert not sched.run_backup_entry(
        sched.ScheduledBackup("bad", "0 * * * *", 1, str(blocker / "x"))
    )


def test_restore_of_corrupted_warehouse_end_to_end(
    wh: Warehouse, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    counts = wh.table_counts()
    assert main(["backup", "--to", str(tmp_path / "bk")]) == 0
    # garbage over the file header: DuckDB can no longer open it
    with wh.path.open("r+b") as fh:
        fh.write(b"\x00garbage" * 1024)
    assert main(["warehouse", "info"]) == 2
    err = capsys.readouterr().err
    assert "restore the latest backup (lumina-analytics restore DIR)" in err
    (latest,) = list_backups(tmp_path / "bk")
    assert main(["restore", str(latest)]) == 0
    assert wh.table_counts() == counts


def test_backup_to_unwritable_place_is_a_clear_error(wh: Warehouse, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    # a folder "under a file" cannot be created, even by root
    with pytest.raises(WarehouseError, match="cannot create backup folder"):
        backup(blocker / "backups")
    # /proc refuses new folders for root too
    with pytest.raises(WarehouseError, match="check that /proc"):
        backup("/proc")
