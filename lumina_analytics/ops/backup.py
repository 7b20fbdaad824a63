"""``backup``: a consistent Parquet snapshot of the warehouse with a checksummed manifest.

Layout: ``<root>/lumina-<YYYYmmddTHHMMSSffffff>Z/`` holding one ``<table>.parquet`` per base
table and ``manifest.json`` (format, created_at, schema version, source git commit, per table
row count, file name, size and sha256). The snapshot is written into a ``.partial`` folder and
renamed only when complete, so a crash leaves no directory that looks like a backup. Nothing
from the settings is written (no salt, no webhook URL, no paths other than the source file name).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lumina_analytics import __version__
from lumina_analytics.config import get_settings, project_root
from lumina_analytics.errors import WarehouseError
from lumina_analytics.warehouse import Warehouse

MANIFEST = "manifest.json"
FORMAT = "lumina-backup/1"
PREFIX = "lumina-"
STALE_PARTIAL_S = 86_400.0


@dataclass(frozen=True)
class BackupResult:
    """Where a backup went, what it holds, and which old backups were pruned."""

    path: Path
    counts: dict[str, int]
    schema_version: int
    pruned: tuple[Path, ...] = ()

    @property
    def total_rows(self) -> int:
        """Rows across every table."""
        return sum(self.counts.values())


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def git_commit(root: Path | None = None) -> str | None:
    """The checkout's HEAD commit, or None outside a git checkout / without git."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root or project_root()), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) == 40 else None


def default_backup_root() -> Path:
    """``backup_dir`` from the settings, else ``<data_dir>/backups``."""
    s = get_settings()
    return s.backup_dir or (s.data_dir / "backups")


def list_backups(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Complete backups (folders with a manifest) under ``root``, oldest first."""
    base = Path(root) if root else default_backup_root()
    if not base.is_dir():
        return []
    return sorted(
        p
        for p in base.iterdir()
        if p.is_dir() and p.name.startswith(PREFIX) and (p / MANIFEST).is_file()
    )


def prune_backups(root: str | os.PathLike[str] | None, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest complete backups (and day-old ``.partial`` leftovers)."""
    if keep < 1:
        raise WarehouseError(
            f"--keep must be at least 1 (got {keep}); refusing to delete every backup"
        )
    doomed = list_backups(root)[:-keep]
    base = Path(root) if root else default_backup_root()
    if base.is_dir():  # leftovers of interrupted backups, older than a day (not a running one)
        cutoff = time.time() - STALE_PARTIAL_S
        doomed += [
            p for p in base.glob(f".{PREFIX}*.partial") if p.is_dir() and p.stat().st_mtime < cutoff
        ]
    for p in doomed:
        shutil.rmtree(p)
    return doomed


def backup(
    to: str | os.PathLike[str] | None = None,
    *,
    keep: int | None = None,
    warehouse: Warehouse | str | os.PathLike[str] | None = None,
) -> BackupResult:
    """Snapshot the warehouse into a new folder under ``to`` (default: settings' backup dir).

    Reads through a read-only connection, so dashboards keep working; an ingest that starts
    meanwhile waits for the snapshot (up to the lock timeout). ``keep`` prunes older backups.
    """
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    root = Path(to) if to else default_backup_root()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    final = root / f"{PREFIX}{stamp}"
    partial = root / f".{PREFIX}{stamp}.partial"
    try:
        partial.mkdir(parents=True, exist_ok=False)
    except OSError as exc:
        raise WarehouseError(
            f"cannot create backup folder {partial}: {exc.strerror or exc}; check that {root} "
            "is writable and has free space, or pass --to DIR"
        ) from None
    try:
        version = wh.schema_version()
        counts = wh.export_parquet(partial)
        tables = {}
        for name, n in counts.items():
            f = partial / f"{name}.parquet"
            tables[name] = {
                "file": f.name,
                "rows": n,
                "bytes": f.stat().st_size,
                "sha256": sha256_file(f),
            }
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "schema_version": version,
            "source_file": wh.path.name,
            "source_commit": git_commit(),
            "lumina_analytics_version": __version__,
            "tables": tables,
        }
        tmp = partial / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, partial / MANIFEST)
        os.replace(partial, final)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise WarehouseError(
            f"backup to {root} failed: {exc.strerror or exc}; nothing was kept. Check free "
            "space and permissions of the backup folder"
        ) from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    pruned = tuple(prune_backups(root, keep)) if keep is not None else ()
    return BackupResult(final, counts, version, pruned)
