"""Build long ``unique_id, ds, y`` frames from the warehouse (or an in-memory ``llm_calls`` frame).

Aggregation runs in DuckDB (``time_bucket`` with a 1970-01-01 origin, bound parameters only);
the result is made gap-explicit: every series gets every bucket between ``start`` and ``end``,
with counts/sums filled by 0 and latencies/quantiles/rates left as NaN.

``unique_id`` is the group values joined with ``"/"`` (``"all"`` when ``by`` is empty);
a NULL group value shows as ``"unknown"``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from lumina_analytics.errors import SchemaError
from lumina_analytics.warehouse import Warehouse

__all__ = [
    "GROUP_COLUMNS",
    "LLM_METRICS",
    "data_extent",
    "freq_to_timedelta",
    "load_series",
    "series_from_frame",
]

#: Columns of ``llm_calls`` that may be used in ``by`` and ``filters``.
GROUP_COLUMNS: tuple[str, ...] = (
    "provider",
    "model",
    "operation",
    "status",
    "error_type",
    "tenant",
    "user_id",
    "session_id",
    "agent",
    "region",
    "service",
    "service_version",
    "price_source",
    "attr_style",
)

_EPOCH = datetime(1970, 1, 1)
_NULL_LABEL = "unknown"
_LABEL_KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class _Metric:
    sql: str  # aggregate over llm_calls rows of one bucket (alias c)
    fill_zero: bool  # counts/sums: a missing bucket is 0; otherwise NaN
    per_minute: bool = False  # peak_* metrics: max over per-minute sub-aggregates


LLM_METRICS: dict[str, _Metric] = {
    "requests": _Metric("count(*)", True),
    "errors": _Metric("count(*) FILTER (WHERE status = 'error')", True),
    "error_rate": _Metric("avg(CASE WHEN status = 'error' THEN 1.0 ELSE 0.0 END)", False),
    "input_tokens": _Metric("sum(coalesce(input_tokens, 0))", True),
    "output_tokens": _Metric("sum(coalesce(output_tokens, 0))", True),
    "tokens": _Metric("sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0))", True),
    "cost_usd": _Metric("sum(coalesce(cost_usd, 0))", True),
    "latency_p50": _Metric("quantile_cont(latency_ms, 0.5)", False),
    "latency_p95": _Metric("quantile_cont(latency_ms, 0.95)", False),
    "latency_p99": _Metric("quantile_cont(latency_ms, 0.99)", False),
    "ttft_p95": _Metric("quantile_cont(ttft_ms, 0.95)", False),
    "peak_rpm": _Metric("count(*)", True, per_minute=True),
    "peak_tpm": _Metric(
        "sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0))", True, per_minute=True
    ),
}


def freq_to_timedelta(freq: str) -> pd.Timedelta:
    """A fixed bucket width (``"10min"``, ``"1h"``, ``"1d"``) as a Timedelta."""
    try:
        td = pd.Timedelta(pd.tseries.frequencies.to_offset(freq))  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise SchemaError(
            f"freq {freq!r} is not a fixed bucket width; use e.g. '10min', '1h' or '1D'"
        ) from exc
    if td <= pd.Timedelta(0):
        raise SchemaError(f"freq {freq!r} must be positive")
    return td


def _check_by(by: Sequence[str], filters: Mapping[str, Sequence[str]] | None) -> list[str]:
    if isinstance(by, str):
        by = [by]
    cols = list(by)
    for col in [*cols, *(filters or {})]:
        if col not in GROUP_COLUMNS:
            raise SchemaError(
                f"cannot group or filter llm_calls by {col!r}; allowed columns: {list(GROUP_COLUMNS)}"
            )
    return cols


def _to_ts(value: str | datetime | pd.Timestamp | None) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def _join_ids(frame: pd.DataFrame, cols: Sequence[str]) -> pd.Series:
    if not cols:
        return pd.Series("all", index=frame.index, dtype=object)
    parts = [frame[c].astype(object).where(frame[c].notna(), _NULL_LABEL).astype(str) for c in cols]
    out = parts[0]
    for p in parts[1:]:
        out = out + "/" + p
    return out


def _complete(
    agg: pd.DataFrame,
    freq: pd.Timedelta,
    fill_zero: bool,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
) -> pd.DataFrame:
    """Make gaps explicit: every unique_id gets every bucket in [start, end)."""
    if agg.empty and (start is None or end is None):
        return pd.DataFrame(
            {
                "unique_id": pd.Series([], dtype=object),
                "ds": pd.Series([], dtype="datetime64[ns]"),
                "y": pd.Series([], dtype="float64"),
            }
        )
    agg = agg.copy()
    agg["ds"] = pd.to_datetime(agg["ds"]).astype("datetime64[ns]")
    first = start.floor(freq) if start is not None else agg["ds"].min()
    if end is not None:
        last = (end - pd.Timedelta(1, "ns")).floor(freq) if end > first else first
    else:
        last = agg["ds"].max()
    grid = pd.date_range(first, last, freq=freq)
    ids = sorted(agg["unique_id"].unique()) if not agg.empty else ["all"]
    full = pd.MultiIndex.from_product([ids, grid], names=["unique_id", "ds"])
    y = agg.set_index(["unique_id", "ds"])["y"].astype("float64")
    y = y[~y.index.duplicated()].reindex(full)
    if fill_zero:
        y = y.fillna(0.0)
    out = y.reset_index()
    out["ds"] = out["ds"].astype("datetime64[ns]")
    return out[["unique_id", "ds", "y"]]


def _where(
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    filters: Mapping[str, Sequence[str]] | None,
    column: Callable[[str], tuple[str, list[Any]]],
) -> tuple[list[str], list[Any]]:
    """WHERE clauses and bound parameters for a time range and ``key IN (...)`` filters.

    ``column(key)`` gives the SQL expression for a filter key and the parameters it binds.
    An empty value list matches nothing.
    """
    where: list[str] = []
    params: list[Any] = []
    if start is not None:
        where.append("ts >= ?")
        params.append(start.to_pydatetime())
    if end is not None:
        where.append("ts < ?")
        params.append(end.to_pydatetime())
    for key, values in (filters or {}).items():
        vals = [values] if isinstance(values, str) else list(values)
        if not vals:
            where.append("FALSE")
            continue
        expr, expr_params = column(key)
        where.append(f"{expr} IN ({', '.join('?' for _ in vals)})")
        params.extend([*expr_params, *(str(v) for v in vals)])
    return where, params


def _llm_sql(
    metric: str,
    cols: list[str],
    filters: Mapping[str, Sequence[str]] | None,
    freq: pd.Timedelta,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
) -> tuple[str, list[Any]]:
    spec = LLM_METRICS[metric]
    where, params = _where(start, end, filters, lambda col: (f'"{col}"', []))
    where_sql = ("WHERE " + " AND ".join(where)) if where else ""
    gsel = "".join(f'"{c}", ' for c in cols)
    gby = "".join(f', "{c}"' for c in cols)
    width = freq.to_pytimedelta()
    if spec.per_minute:
        sql = (
            f"WITH m AS (SELECT {gsel}date_trunc('minute', ts) AS minute, {spec.sql} AS v "
            f"FROM llm_calls {where_sql} GROUP BY ALL) "
            f"SELECT {gsel}time_bucket(?, minute, ?) AS ds, max(v) AS y FROM m "
            f"GROUP BY ds{gby} ORDER BY ALL"
        )
    else:
        sql = (
            f"SELECT {gsel}time_bucket(?, ts, ?) AS ds, {spec.sql} AS y FROM llm_calls "
            f"{where_sql} GROUP BY ds{gby} ORDER BY ALL"
        )
        # time_bucket params come first in the SELECT list, before WHERE params
        return sql, [width, _EPOCH, *params]
    return sql, [*params, width, _EPOCH]


def _metrics_sql(
    name: str,
    keys: list[str],
    filters: Mapping[str, Sequence[str]] | None,
    freq: pd.Timedelta,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
) -> tuple[str, list[Any]]:
    for k in [*keys, *(filters or {})]:
        if not _LABEL_KEY.match(k):
            raise SchemaError(f"label key {k!r} must match [A-Za-z0-9_.-]+")
    sel_params: list[Any] = []
    sel = []
    for i, k in enumerate(keys):
        sel.append(f"json_extract_string(labels, ?) AS g{i}")
        sel_params.append(f'$."{k}"')
    where, params = _where(
        start, end, filters, lambda k: ("json_extract_string(labels, ?)", [f'$."{k}"'])
    )
    where, params = ["name = ?", *where], [name, *params]
    gsel = "".join(f"{s}, " for s in sel)
    gby = "".join(f", g{i}" for i in range(len(keys)))
    sql = (
        f"SELECT {gsel}time_bucket(?, ts, ?) AS ds, avg(value) AS y FROM metrics "
        f"WHERE {' AND '.join(where)} GROUP BY ds{gby} ORDER BY ALL"
    )
    return sql, [*sel_params, freq.to_pytimedelta(), _EPOCH, *params]


def load_series(
    metric: str,
    by: Sequence[str] = (),
    freq: str = "1h",
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    warehouse: Warehouse | str | None = None,
    filters: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Aggregate ``metric`` into a long, gap-explicit ``unique_id, ds, y`` frame.

    ``metric`` is one of :data:`LLM_METRICS` (over ``llm_calls``) or ``"metric:<name>"``
    (mean ``value`` per bucket of the ``metrics`` table, grouped by the label keys in ``by``).
    ``start`` is inclusive, ``end`` exclusive; both default to the data's extent.
    """
    width = freq_to_timedelta(freq)
    t0, t1 = _to_ts(start), _to_ts(end)
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    by_list = [by] if isinstance(by, str) else list(by)
    from_rollups = _from_rollups(metric, by_list, width, t0, t1, wh, filters)
    if from_rollups is not None:
        return from_rollups
    if metric.startswith("metric:"):
        name = metric.split(":", 1)[1]
        if not name:
            raise SchemaError("metric:<name> needs a metric name, e.g. metric:gpu_utilization")
        sql, params = _metrics_sql(name, by_list, filters, width, t0, t1)
        raw = wh.query(sql, params)
        gcols = [f"g{i}" for i in range(len(by_list))]
        fill_zero = False
    else:
        if metric not in LLM_METRICS:
            raise SchemaError(
                f"unknown metric {metric!r}; use one of {sorted(LLM_METRICS)} or metric:<name>"
            )
        cols = _check_by(by_list, filters)
        sql, params = _llm_sql(metric, cols, filters, width, t0, t1)
        raw = wh.query(sql, params)
        gcols = cols
        fill_zero = LLM_METRICS[metric].fill_zero
    agg = pd.DataFrame({"unique_id": _join_ids(raw, gcols), "ds": raw["ds"], "y": raw["y"]})
    return _complete(agg, width, fill_zero, t0, t1)


#: Ranges at least this long are read from the hourly/daily rollups when those cover them.
ROLLUP_MIN_RANGE = pd.Timedelta(days=35)

_ROLLUP_SUMS = {
    "requests": "sum(requests)",
    "errors": "sum(errors)",
    "error_rate": "sum(errors) / nullif(sum(requests), 0)",
    "input_tokens": "sum(input_tokens)",
    "output_tokens": "sum(output_tokens)",
    "tokens": "sum(input_tokens + output_tokens)",
    "cost_usd": "sum(cost_usd)",
}


def _from_rollups(
    metric: str,
    by: list[str],
    width: pd.Timedelta,
    t0: pd.Timestamp | None,
    t1: pd.Timestamp | None,
    wh: Warehouse,
    filters: Mapping[str, Sequence[str]] | None,
) -> pd.DataFrame | None:
    """Long ranges of count/sum metrics from the rollups, so a year of history stays fast.

    Only when the range is at least :data:`ROLLUP_MIN_RANGE`, the metric is additive, there is
    at most one grouping column that the rollups carry and no filter, the bucket width is a
    whole number of hours, and the rollup covers the whole range; otherwise None (raw rows).
    """
    from lumina_analytics.ops.rollups import GRAINS, ROLLUP_DIMENSIONS, rollup_covers

    if metric not in _ROLLUP_SUMS or filters or len(by) > 1:
        return None
    dimension = by[0] if by else "all"
    if dimension not in ROLLUP_DIMENSIONS or width % pd.Timedelta(hours=1) != pd.Timedelta(0):
        return None
    if t0 is not None and t1 is not None and t1 - t0 < ROLLUP_MIN_RANGE:
        return None
    grain = "day" if width % pd.Timedelta(days=1) == pd.Timedelta(0) else "hour"
    try:
        span = rollup_covers(t0, t1, grain, wh)
    except Exception:  # an older warehouse without rollup tables
        return None
    if span is None or span[1] - span[0] < ROLLUP_MIN_RANGE:
        return None
    lo, hi = pd.Timestamp(span[0]), pd.Timestamp(span[1])
    raw = wh.query(
        f"SELECT time_bucket(CAST(? AS INTERVAL), bucket, TIMESTAMP '1970-01-01') AS ds, "
        f"value AS unique_id, {_ROLLUP_SUMS[metric]} AS y FROM {GRAINS[grain]} "
        "WHERE dimension = ? AND bucket >= ? AND bucket < ? GROUP BY ALL ORDER BY ds, unique_id",
        [
            f"{int(width.total_seconds())} seconds",
            dimension,
            lo.to_pydatetime(),
            hi.to_pydatetime(),
        ],
    )
    if raw.empty:
        return None
    agg = pd.DataFrame(
        {
            "unique_id": raw["unique_id"]
            .fillna("unknown")
            .astype(str)
            .replace("(none)", "unknown"),
            "ds": raw["ds"],
            "y": raw["y"],
        }
    )
    if not by:
        agg["unique_id"] = "all"
    return _complete(agg, width, LLM_METRICS[metric].fill_zero, lo, hi)


def series_from_frame(
    calls: pd.DataFrame,
    metric: str,
    by: Sequence[str] = (),
    freq: str = "1h",
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    filters: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """The same as :func:`load_series` on an in-memory ``llm_calls``-shaped DataFrame."""
    if metric not in LLM_METRICS:
        raise SchemaError(f"unknown metric {metric!r}; use one of {sorted(LLM_METRICS)}")
    width = freq_to_timedelta(freq)
    cols = _check_by([by] if isinstance(by, str) else list(by), filters)
    if "ts" not in calls.columns:
        raise SchemaError(f"calls frame is missing column 'ts'; it has {list(calls.columns)}")
    df = calls.copy()
    if isinstance(df["ts"].dtype, pd.DatetimeTZDtype):
        df["ts"] = df["ts"].dt.tz_convert("UTC").dt.tz_localize(None)
    df["ts"] = pd.to_datetime(df["ts"]).astype("datetime64[ns]")
    t0, t1 = _to_ts(start), _to_ts(end)
    if t0 is not None:
        df = df[df["ts"] >= t0]
    if t1 is not None:
        df = df[df["ts"] < t1]
    for col, values in (filters or {}).items():
        vals = [values] if isinstance(values, str) else [str(v) for v in values]
        df = df[df[col].astype(object).isin(vals)]
    for c in ("input_tokens", "output_tokens", "cost_usd"):
        if c in df.columns:
            df[c] = pd.to_numeric(df[c]).fillna(0)
    spec = LLM_METRICS[metric]
    df["unique_id"] = _join_ids(df, cols)

    def _value(g: pd.DataFrame) -> pd.Series:
        if metric in ("requests", "peak_rpm"):
            return pd.Series(1.0, index=g.index)
        if metric in ("errors", "error_rate"):
            return (g["status"] == "error").astype(float)
        if metric in ("tokens", "peak_tpm"):
            return (g["input_tokens"] + g["output_tokens"]).astype(float)
        return g[_COLUMN_OF[metric]].astype(float)

    if df.empty:
        agg = pd.DataFrame({"unique_id": [], "ds": pd.Series([], dtype="datetime64[ns]"), "y": []})
        return _complete(agg, width, spec.fill_zero, t0, t1)
    df["v"] = _value(df)
    if spec.per_minute:
        df["minute"] = df["ts"].dt.floor("1min")
        per_min = df.groupby(["unique_id", "minute"], sort=True)["v"].sum().reset_index()
        per_min["ds"] = _floor_epoch(per_min["minute"], width)
        agg = per_min.groupby(["unique_id", "ds"], sort=True)["v"].max().reset_index()
    else:
        df["ds"] = _floor_epoch(df["ts"], width)
        grouped = df.groupby(["unique_id", "ds"], sort=True)["v"]
        if metric in ("requests", "errors", "input_tokens", "output_tokens", "tokens", "cost_usd"):
            agg = grouped.sum().reset_index()
        elif metric == "error_rate":
            agg = grouped.mean().reset_index()
        else:
            q = _QUANTILE_OF[metric]
            agg = grouped.quantile(q).reset_index()
    agg = agg.rename(columns={"v": "y"})
    return _complete(agg, width, spec.fill_zero, t0, t1)


_COLUMN_OF = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cost_usd": "cost_usd",
    "latency_p50": "latency_ms",
    "latency_p95": "latency_ms",
    "latency_p99": "latency_ms",
    "ttft_p95": "ttft_ms",
}
_QUANTILE_OF = {"latency_p50": 0.5, "latency_p95": 0.95, "latency_p99": 0.99, "ttft_p95": 0.95}


def _floor_epoch(ts: pd.Series, width: pd.Timedelta) -> pd.Series:
    """Floor to buckets aligned on 1970-01-01 (as ``time_bucket(width, ts, epoch)`` does)."""
    ns = ts.astype("datetime64[ns]").astype("int64").to_numpy()
    step = int(width.value)
    floored = (ns // step) * step
    return pd.Series(floored.astype("datetime64[ns]"), index=ts.index)


def data_extent(
    table: str = "llm_calls", warehouse: Warehouse | str | None = None
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """First and last ``ts`` of ``llm_calls`` or ``metrics`` (``(None, None)`` when empty)."""
    if table not in ("llm_calls", "metrics"):
        raise SchemaError("data_extent works on llm_calls or metrics")
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    row = wh.query(f"SELECT min(ts) AS lo, max(ts) AS hi FROM {table}")
    lo, hi = row["lo"].iloc[0], row["hi"].iloc[0]
    return (None if pd.isna(lo) else pd.Timestamp(lo), None if pd.isna(hi) else pd.Timestamp(hi))
