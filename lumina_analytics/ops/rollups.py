"""Hourly and daily rollups of ``llm_calls``: read long ranges without scanning raw rows.

One row per (bucket, dimension, value) with requests, errors, latency sum / p50 / p95 / p99 /
max, tokens and cost. Dimensions: ``all`` (value ``*``), provider, model, tenant, agent,
region, service; a NULL dimension value is stored as ``(none)``.

Refreshing deletes and recomputes the buckets that still have raw rows at or after the raw
horizon (the retention cutoff), in one transaction: re-running never double counts, and
buckets older than the horizon (whose raw rows retention deleted) are never touched, so they
survive. Quantiles cannot be merged exactly across buckets: :func:`read_rollup` with
``combine=True`` returns request-weighted means of the per-bucket quantiles (an approximation;
``latency_max_ms`` and every count/sum are exact).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from lumina_analytics.errors import SchemaError
from lumina_analytics.warehouse import Warehouse

#: Dimensions rolled up (column names of ``llm_calls``); ``all`` is the grand total.
ROLLUP_DIMENSIONS: tuple[str, ...] = (
    "all",
    "provider",
    "model",
    "tenant",
    "agent",
    "region",
    "service",
)
GRAINS: dict[str, str] = {"hour": "llm_rollup_hourly", "day": "llm_rollup_daily"}
METRICS: tuple[str, ...] = (
    "requests",
    "errors",
    "latency_sum_ms",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
)


def _select(grain: str, dimension: str) -> str:
    value = "'*'" if dimension == "all" else f"coalesce(CAST({dimension} AS VARCHAR), '(none)')"
    return (
        f"SELECT date_trunc('{grain}', ts) AS bucket, '{dimension}' AS dimension, {value} AS value, "
        "count(*) AS requests, count(*) FILTER (WHERE status = 'error') AS errors, "
        "sum(latency_ms) AS latency_sum_ms, "
        "quantile_cont(latency_ms, 0.5) AS latency_p50_ms, "
        "quantile_cont(latency_ms, 0.95) AS latency_p95_ms, "
        "quantile_cont(latency_ms, 0.99) AS latency_p99_ms, "
        "max(latency_ms) AS latency_max_ms, "
        "sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, "
        "sum(cost_usd) AS cost_usd, CAST(? AS TIMESTAMP) AS refreshed_at "
        "FROM llm_calls WHERE ts >= ? AND ts < ? GROUP BY ALL"
    )


def refresh_rollups(
    con: duckdb.DuckDBPyConnection, horizon: datetime, now: datetime
) -> dict[str, int]:
    """Recompute every rollup bucket at or after ``horizon`` inside the caller's writer con.

    ``horizon`` must be aligned to a day boundary (so every bucket is complete). Returns rows
    written per rollup table.
    """
    if horizon != horizon.replace(hour=0, minute=0, second=0, microsecond=0):
        raise SchemaError(f"rollup horizon {horizon} must be midnight (a day boundary)")
    written: dict[str, int] = {}
    far = datetime(9999, 1, 1)
    # Days older than the horizon that were never rolled up (a first run, or late data):
    # roll them up now, one day at a time, before retention may delete their raw rows.
    old_days = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT date_trunc('day', ts) AS d FROM llm_calls WHERE ts < ? "
            "EXCEPT SELECT bucket FROM llm_rollup_daily WHERE dimension = 'all' ORDER BY 1",
            [horizon],
        ).fetchall()
    ]
    ranges = [(d, d + timedelta(days=1)) for d in old_days] + [(horizon, far)]
    for grain, table in GRAINS.items():
        union = " UNION ALL ".join(_select(grain, d) for d in ROLLUP_DIMENSIONS)
        for lo, hi in ranges:
            con.execute(f"DELETE FROM {table} WHERE bucket >= ? AND bucket < ?", [lo, hi])
            params: list[object] = []
            for _ in ROLLUP_DIMENSIONS:
                params += [now, lo, hi]
            con.execute(f"INSERT INTO {table} {union}", params)
        written[table] = int(
            con.execute(f"SELECT count(*) FROM {table} WHERE bucket >= ?", [horizon]).fetchall()[0][
                0
            ]
        )
    return written


def read_rollup(
    start: str | datetime,
    end: str | datetime,
    *,
    dimension: str = "all",
    grain: str = "day",
    combine: bool = False,
    warehouse: Warehouse | str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Rollup rows with ``start <= bucket < end`` for one dimension (a thin loader).

    ``combine=True`` collapses the range to one row per value (exact counts and sums,
    request-weighted mean quantiles, exact max) plus ``error_rate`` and ``mean_latency_ms``.
    """
    if grain not in GRAINS:
        raise SchemaError(f"grain must be one of {sorted(GRAINS)}, got {grain!r}")
    if dimension not in ROLLUP_DIMENSIONS:
        raise SchemaError(f"dimension must be one of {list(ROLLUP_DIMENSIONS)}, got {dimension!r}")
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    params = [dimension, pd.Timestamp(start).to_pydatetime(), pd.Timestamp(end).to_pydatetime()]
    table = GRAINS[grain]
    if not combine:
        return wh.query(
            f"SELECT bucket, dimension, value, {', '.join(METRICS)} FROM {table} "
            "WHERE dimension = ? AND bucket >= ? AND bucket < ? ORDER BY bucket, value",
            params,
        )
    weighted = ", ".join(
        f"sum({q} * requests) / nullif(sum(requests), 0) AS {q}"
        for q in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms")
    )
    return wh.query(
        "SELECT dimension, value, min(bucket) AS first_bucket, max(bucket) AS last_bucket, "
        "sum(requests) AS requests, sum(errors) AS errors, "
        "sum(errors) / nullif(sum(requests), 0) AS error_rate, "
        "sum(latency_sum_ms) / nullif(sum(requests), 0) AS mean_latency_ms, "
        f"{weighted}, max(latency_max_ms) AS latency_max_ms, "
        "sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, "
        f"sum(cost_usd) AS cost_usd FROM {table} "
        "WHERE dimension = ? AND bucket >= ? AND bucket < ? GROUP BY dimension, value "
        "ORDER BY requests DESC, value",
        params,
    )


def rollup_long(frame: pd.DataFrame, metric: str = "requests") -> pd.DataFrame:
    """Per-bucket rollup rows as the long ``unique_id, ds, y`` frame analyses take."""
    if metric not in METRICS:
        raise SchemaError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    out = pd.DataFrame(
        {
            "unique_id": frame["dimension"].astype(str) + "=" + frame["value"].astype(str),
            "ds": pd.to_datetime(frame["bucket"]),
            "y": frame[metric].astype("float64"),
        }
    )
    return out.sort_values(["unique_id", "ds"]).reset_index(drop=True)


def rollup_covers(
    start: datetime | None,
    end: datetime | None,
    grain: str,
    warehouse: Warehouse | str | os.PathLike[str] | None = None,
) -> tuple[datetime, datetime] | None:
    """The ``[start, end)`` the ``grain`` rollup fully covers, or None when it does not.

    Open ends take the rollup's own extent. Used by analyses and dashboards to read long
    ranges from rollups instead of raw rows (which retention may already have deleted).
    """
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    width = pd.Timedelta(hours=1) if grain == "hour" else pd.Timedelta(days=1)
    ext = wh.query(
        f"SELECT min(bucket) AS lo, max(bucket) AS hi FROM {GRAINS[grain]} WHERE dimension = 'all'"
    )
    lo, hi = ext["lo"][0], ext["hi"][0]
    if pd.isna(lo) or pd.isna(hi):
        return None
    t0 = pd.Timestamp(start) if start is not None else pd.Timestamp(lo)
    t1 = pd.Timestamp(end) if end is not None else pd.Timestamp(hi) + width
    if pd.Timestamp(lo) > t0 or pd.Timestamp(hi) + width < t1:
        return None
    return t0.to_pydatetime(), t1.to_pydatetime()
