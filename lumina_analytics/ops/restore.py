"""``restore``: verify a backup completely, rebuild it into a NEW file, swap it in atomically.

Order: (1) read the manifest and check every table file's size and sha256, refusing the
whole backup on any problem (nothing is touched); (2) build ``<warehouse>.restore-<pid>``
beside the target, migrate it to the current schema, load every table and compare its row
counts with the manifest; (3) under the writer lock, keep the old file as
``<warehouse>.pre-restore-<stamp>`` (a hard link) and ``os.replace`` the new one over it.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lumina_analytics.errors import WarehouseError
from lumina_analytics.ops.backup import FORMAT, MANIFEST, sha256_file
from lumina_analytics.warehouse import SCHEMA_VERSION, Warehouse


class BackupCorruptError(WarehouseError):
    """A backup is partial, altered or unreadable; nothing was restored."""


@dataclass(frozen=True)
class RestoreResult:
    """The restored file, its verified counts, and where the previous file was kept."""

    path: Path
    counts: dict[str, int]
    previous: Path | None


def verify_backup(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Check a backup folder: manifest present and valid, every file's size and sha256.

    Returns the manifest; raises :class:`BackupCorruptError` listing every problem.
    """
    d = Path(directory)
    mpath = d / MANIFEST
    if not d.is_dir():
        raise BackupCorruptError(f"{d} is not a backup folder (it does not exist)")
    if not mpath.is_file():
        hint = (
            " (an interrupted backup: its name ends in .partial)"
            if d.name.endswith(".partial")
            else ""
        )
        raise BackupCorruptError(
            f"{d} has no {MANIFEST}: it is not a complete backup{hint}; nothing was restored. "
            "Pick another one (lumina-analytics backup writes lumina-<time>/ folders)"
        )
    try:
        manifest = json.loads(mpath.read_text())
        tables = manifest["tables"]
        version = int(manifest["schema_version"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupCorruptError(f"{mpath} is unreadable ({exc}); nothing was restored") from None
    if manifest.get("format") != FORMAT:
        raise BackupCorruptError(f"{mpath}: unknown backup format {manifest.get('format')!r}")
    if version > SCHEMA_VERSION:
        raise BackupCorruptError(
            f"{d} holds schema version {version}, newer than this workbench ({SCHEMA_VERSION}); "
            "upgrade lumina-analytics before restoring it"
        )
    problems: list[str] = []
    for name, info in sorted(tables.items()):
        f = d / str(info.get("file", ""))
        if not f.is_file():
            problems.append(f"{name}: file {f.name} is missing")
        elif f.stat().st_size != int(info.get("bytes", -1)):
            problems.append(
                f"{name}: {f.name} has {f.stat().st_size} bytes, manifest says {info.get('bytes')}"
            )
        elif sha256_file(f) != info.get("sha256"):
            problems.append(f"{name}: {f.name} checksum does not match the manifest")
    if problems:
        raise BackupCorruptError(
            f"backup {d} is corrupt or partial; nothing was restored: " + "; ".join(problems)
        )
    return dict(manifest)


def restore(
    directory: str | os.PathLike[str],
    into: str | os.PathLike[str] | None = None,
    *,
    lock_wait_s: float = 30.0,
) -> RestoreResult:
    """Restore a verified backup into ``into`` (default: the configured warehouse)."""
    src = Path(directory)
    manifest = verify_backup(src)
    target = Warehouse(into)
    target.path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = target.path.with_name(f"{target.path.name}.restore-{os.getpid()}")
    for leftover in (tmp_path, tmp_path.with_name(tmp_path.name + ".wal")):
        leftover.unlink(missing_ok=True)
    expected = {name: int(info["rows"]) for name, info in manifest["tables"].items()}
    files = {name: src / str(info["file"]) for name, info in manifest["tables"].items()}
    try:
        counts = Warehouse(tmp_path).import_parquet(files)
        wrong = {
            n: (counts.get(n), rows)
            for n, rows in expected.items()
            if n != "schema_version" and counts.get(n) != rows
        }
        if wrong:
            raise BackupCorruptError(
                f"restored row counts differ from the manifest {wrong}; the current warehouse "
                "was left untouched"
            )
        Warehouse(tmp_path).lock_path.unlink(missing_ok=True)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise WarehouseError(
            f"cannot write the restored file {tmp_path}: {exc.strerror or exc}; the current "
            "warehouse was left untouched"
        ) from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        tmp_path.with_name(tmp_path.name + ".wal").unlink(missing_ok=True)
        Warehouse(tmp_path).lock_path.unlink(missing_ok=True)
        raise
    previous: Path | None = None
    with target.lock(wait_s=lock_wait_s):
        if target.path.exists():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            previous = target.path.with_name(f"{target.path.name}.pre-restore-{stamp}")
            try:
                os.link(target.path, previous)
            except OSError:  # no hard links on this file system: copy instead
                shutil.copy2(target.path, previous)
            wal = target.path.with_name(target.path.name + ".wal")
            if wal.exists():  # a WAL of the OLD file must never be replayed onto the new one
                os.replace(wal, previous.with_name(previous.name + ".wal"))
        os.replace(tmp_path, target.path)
    return RestoreResult(target.path, counts, previous)
