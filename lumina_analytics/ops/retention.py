"""``maintain``: refresh rollups, apply retention, compact; idempotent and safe to re-run.

Raw ``llm_calls`` and ``spans`` older than ``retention_days`` (cut at a UTC midnight) are
deleted AFTER their rollups are refreshed, in the same transaction, so no day is ever lost
from the rollups. Rollups older than ``rollup_retention_days`` are deleted. Compaction runs
``VACUUM ANALYZE`` (statistics) and ``CHECKPOINT`` (DuckDB reuses the freed blocks; the file
only shrinks through backup + restore, which rewrites it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import duckdb

from lumina_analytics.config import get_settings
from lumina_analytics.ops.rollups import GRAINS, refresh_rollups
from lumina_analytics.warehouse import Warehouse

#: Raw tables and their time column, pruned by retention.
RAW_TABLES: dict[str, str] = {"llm_calls": "ts", "spans": "start_ts"}


@dataclass(frozen=True)
class MaintainResult:
    """What one ``maintain`` run did."""

    horizon: datetime
    deleted_raw: dict[str, int] = field(default_factory=dict)
    deleted_rollups: dict[str, int] = field(default_factory=dict)
    rollup_rows: dict[str, int] = field(default_factory=dict)
    bytes_before: int = 0
    bytes_after: int = 0


def _midnight(ts: datetime) -> datetime:
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> int:
    return int(con.execute(sql, params).fetchall()[0][0])


def apply_retention(
    con: duckdb.DuckDBPyConnection, horizon: datetime, rollup_horizon: datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """Delete raw rows before ``horizon`` and rollups before ``rollup_horizon`` (caller's con)."""
    raw: dict[str, int] = {}
    for table, col in RAW_TABLES.items():
        raw[table] = _count(con, f"SELECT count(*) FROM {table} WHERE {col} < ?", [horizon])
        con.execute(f"DELETE FROM {table} WHERE {col} < ?", [horizon])
    rolled: dict[str, int] = {}
    for table in GRAINS.values():
        rolled[table] = _count(
            con, f"SELECT count(*) FROM {table} WHERE bucket < ?", [rollup_horizon]
        )
        con.execute(f"DELETE FROM {table} WHERE bucket < ?", [rollup_horizon])
    return raw, rolled


def maintain(
    warehouse: Warehouse | str | os.PathLike[str] | None = None,
    *,
    retention_days: int | None = None,
    rollup_retention_days: int | None = None,
    now: datetime | None = None,
    compact: bool = True,
    wait_s: float = 60.0,
) -> MaintainResult:
    """Refresh rollups, then apply retention, then compact, as one writer session."""
    s = get_settings()
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    days = retention_days if retention_days is not None else s.retention_days
    rdays = rollup_retention_days if rollup_retention_days is not None else s.rollup_retention_days
    now_ = now or datetime.now(UTC).replace(tzinfo=None)
    horizon = _midnight(now_ - timedelta(days=days))
    rollup_horizon = _midnight(now_ - timedelta(days=rdays))
    before = wh.path.stat().st_size if wh.exists() else 0
    with wh.writer(wait_s=wait_s) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            rows = refresh_rollups(con, horizon, now_)
            raw, rolled = apply_retention(con, horizon, rollup_horizon)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        if compact:
            con.execute("VACUUM ANALYZE")
            con.execute("CHECKPOINT")
    after = wh.path.stat().st_size
    return MaintainResult(horizon, raw, rolled, rows, before, after)
