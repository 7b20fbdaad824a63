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
from datetime import datetime

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
        "FROM llm_calls WHERE ts >= ? GROUP BY ALL"
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
    for grain, table in GRAINS.items():
        con.execute(f"DELETE FROM {table} WHERE bucket >= ?", [horizon])
        union = " UNION ALL ".join(_select(grain, d) for d in ROLLUP_DIMENSIONS)
        params: list[object] = []
        for _ in ROLLUP_DIMENSIONS:
            params += [now, horizon]
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
