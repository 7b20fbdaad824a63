"""Root-cause hints: which dimension values best explain an alert.

For every dimension (service, provider, model, region, tenant, agent, deployment version) and
each of its values, compare the alert window with a baseline window:

* rate measures (``errors``, ``slow``, ``cost_usd``, ``tokens``): the value's baseline rate per
  call (shrunk towards the overall baseline rate, so a value with few baseline calls or none at
  all is judged against the overall rate) times its alert-window calls gives the expected amount;
  ``excess = observed - expected``. Volume is adjusted for: a value that merely got busier is
  expected to produce proportionally more errors and shows no excess.
* ``requests``: the expected count is the baseline count scaled by the window lengths.

``share`` is the value's excess over the total excess of the alert window (overall observed
minus overall expected), so 1.0 means "this value alone explains the whole change".
``score = share - call_share`` (its share of the alert window's calls) ranks the values: a
value that carries all the calls (the only service, the only region of a tenant) trivially
"explains" everything and scores 0, while a provider with 20% of the calls and all of the
excess scores 0.8. A value absent from the baseline (a new release, a new model) is not
discounted by its call share (``score = share``): that it appeared is the change. A
dimension's explanatory power is the score of its top value.

:func:`attribute` is a pure function on an ``llm_calls``-shaped (or ``spans``-shaped) frame;
:func:`load_calls` is the thin warehouse loader.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from lumina_analytics.errors import SchemaError
from lumina_analytics.warehouse import Warehouse

__all__ = ["DIMENSIONS", "attribute", "load_calls", "measure_for_metric", "rank_dimensions"]

#: Dimensions of ``llm_calls`` a root cause is looked for in (``service_version`` is the
#: deployment version).
DIMENSIONS: tuple[str, ...] = (
    "service",
    "provider",
    "model",
    "region",
    "tenant",
    "agent",
    "service_version",
)
_SHRINK = 20.0  # pseudo-calls of the overall baseline rate mixed into each value's rate
_MEASURES = ("errors", "requests", "slow", "slow_ttft", "cost_usd", "tokens")
#: The per-call column each "slower than" measure compares with its threshold.
_SLOW_COLUMN = {"slow": "latency_ms", "slow_ttft": "ttft_ms"}


def measure_for_metric(metric: str) -> str | None:
    """The per-call measure that explains an alert on ``metric`` (None: no hint possible)."""
    if metric in ("errors", "error_rate", "error_ratio"):
        return "errors"
    if metric.startswith(("ttft_", "quantile:ttft_ms")):
        return "slow_ttft"
    if metric.startswith(("latency_", "slow_calls", "latency_ratio", "quantile:")):
        return "slow"
    if metric in ("requests", "peak_rpm"):
        return "requests"
    if metric == "cost_usd":
        return "cost_usd"
    if metric in ("tokens", "input_tokens", "output_tokens", "peak_tpm"):
        return "tokens"
    return None


def _normalise(calls: pd.DataFrame) -> pd.DataFrame:
    """Accept ``llm_calls`` or ``spans`` columns; return ts, status, latency_ms and the rest."""
    df = calls.copy()
    if "ts" not in df.columns and "start_ts" in df.columns:
        df["ts"] = df["start_ts"]
    if "status" not in df.columns and "status_code" in df.columns:
        df["status"] = df["status_code"]
    if "latency_ms" not in df.columns and "duration_ms" in df.columns:
        df["latency_ms"] = df["duration_ms"]
    if "ts" not in df.columns:
        raise SchemaError(
            f"calls frame needs a 'ts' (or 'start_ts') column; has {list(df.columns)}"
        )
    ts = df["ts"]
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    df["ts"] = pd.to_datetime(ts)
    return df


def _per_call(df: pd.DataFrame, measure: str, slow_ms: float | None) -> pd.Series:
    if measure == "errors":
        if "status" not in df.columns:
            raise SchemaError("measure 'errors' needs a 'status' (or 'status_code') column")
        return (df["status"].astype(object) == "error").astype(float)
    if measure == "requests":
        return pd.Series(1.0, index=df.index)
    if measure in _SLOW_COLUMN:
        col = _SLOW_COLUMN[measure]
        if col not in df.columns:
            raise SchemaError(f"measure {measure!r} needs a {col!r} column")
        assert slow_ms is not None
        return (pd.to_numeric(df[col]) > slow_ms).astype(float)
    if measure == "cost_usd":
        return pd.to_numeric(df["cost_usd"]).fillna(0.0).astype(float)
    if measure == "tokens":
        return (
            pd.to_numeric(df["input_tokens"]).fillna(0)
            + pd.to_numeric(df["output_tokens"]).fillna(0)
        ).astype(float)
    raise SchemaError(f"unknown root-cause measure {measure!r}; use one of {list(_MEASURES)}")


_COLUMNS = [
    "dimension",
    "value",
    "alert_calls",
    "alert_measure",
    "baseline_calls",
    "baseline_measure",
    "baseline_rate",
    "alert_rate",
    "expected",
    "excess",
    "share",
    "call_share",
    "score",
    "lift",
]


def attribute(
    calls: pd.DataFrame,
    alert_start: datetime | pd.Timestamp,
    alert_end: datetime | pd.Timestamp,
    baseline_start: datetime | pd.Timestamp,
    baseline_end: datetime | pd.Timestamp,
    measure: str = "errors",
    dimensions: Sequence[str] | None = None,
    slow_ms: float | None = None,
    slow_quantile: float = 0.95,
) -> pd.DataFrame:
    """Contribution of every (dimension, value) to the change of ``measure`` in the alert window.

    Windows are ``[start, end)``. ``measure`` is one of errors, requests, slow (calls slower
    than ``slow_ms``; default: the ``slow_quantile`` of the baseline's latency, p95), slow_ttft
    (the same on time to first token; ``slow_quantile=0.5`` explains a shift of the whole
    distribution, such as a release that slows every call), cost_usd, tokens. Returns one
    row per (dimension, value) with ``alert_calls, alert_measure, baseline_calls,
    baseline_measure, baseline_rate, alert_rate, expected, excess, share, lift``, sorted by
    ``share`` (descending). Empty when the alert window holds no calls.
    """
    if measure not in _MEASURES:
        raise SchemaError(f"unknown root-cause measure {measure!r}; use one of {list(_MEASURES)}")
    df = _normalise(calls)
    a0, a1, b0, b1 = (
        pd.Timestamp(t) for t in (alert_start, alert_end, baseline_start, baseline_end)
    )
    in_a = (df["ts"] >= a0) & (df["ts"] < a1)
    in_b = (df["ts"] >= b0) & (df["ts"] < b1)
    dims = [d for d in (dimensions or DIMENSIONS) if d in df.columns]
    if not in_a.any() or not dims:
        return pd.DataFrame({c: [] for c in _COLUMNS})
    if measure in _SLOW_COLUMN and slow_ms is None:
        col = _SLOW_COLUMN[measure]
        if col not in df.columns:
            raise SchemaError(f"measure {measure!r} needs a {col!r} column")
        base_lat = pd.to_numeric(df.loc[in_b, col]).dropna()
        slow_ms = (
            float(base_lat.quantile(slow_quantile))
            if len(base_lat)
            else float(pd.to_numeric(df.loc[in_a, col]).median())
        )
    df = df.loc[in_a | in_b].copy()
    df["_m"] = _per_call(df, measure, slow_ms)
    df["_win"] = np.where(in_a.loc[df.index], "a", "b")
    a_len = (a1 - a0) / pd.Timedelta(seconds=1)
    b_len = (b1 - b0) / pd.Timedelta(seconds=1)
    a_mask = df["_win"] == "a"
    n_a, m_a = float(a_mask.sum()), float(df.loc[a_mask, "_m"].sum())
    n_b, m_b = float((~a_mask).sum()), float(df.loc[~a_mask, "_m"].sum())
    overall_rate = m_b / n_b if n_b else 0.0
    if measure == "requests":
        total_excess = m_a - m_b * (a_len / b_len if b_len > 0 else 0.0)
    else:
        total_excess = m_a - n_a * overall_rate
    m = df["_m"].to_numpy(dtype=float)
    is_a = (df["_win"] == "a").to_numpy()
    scale = a_len / b_len if b_len > 0 else 0.0
    frames = []
    for dim in dims:
        codes, uniques = pd.factorize(df[dim].astype(object).where(df[dim].notna(), "unknown"))
        k = len(uniques)
        out = pd.DataFrame({"value": [str(u) for u in uniques]})
        out["alert_calls"] = np.bincount(codes[is_a], minlength=k).astype("int64")
        out["alert_measure"] = np.bincount(codes[is_a], weights=m[is_a], minlength=k)
        out["baseline_calls"] = np.bincount(codes[~is_a], minlength=k).astype("int64")
        out["baseline_measure"] = np.bincount(codes[~is_a], weights=m[~is_a], minlength=k)
        if measure == "requests":
            out["baseline_rate"] = out["baseline_measure"] / (b_len / 3600.0 if b_len else 1.0)
            out["alert_rate"] = out["alert_measure"] / (a_len / 3600.0 if a_len else 1.0)
            out["expected"] = out["baseline_measure"] * scale
        else:
            out["baseline_rate"] = (out["baseline_measure"] + _SHRINK * overall_rate) / (
                out["baseline_calls"] + _SHRINK
            )
            out["alert_rate"] = out["alert_measure"] / out["alert_calls"].where(
                out["alert_calls"] > 0
            )
            out["expected"] = out["alert_calls"] * out["baseline_rate"]
        out["excess"] = out["alert_measure"] - out["expected"]
        denom = total_excess if total_excess > 0 else float(out["excess"].clip(lower=0).sum())
        out["share"] = out["excess"] / denom if denom > 0 else 0.0
        out["call_share"] = out["alert_calls"] / n_a if n_a else 0.0
        # a value that carries no more than its share of the calls explains nothing, unless it
        # is new since the baseline (a release, a new model): then the change is the suspect
        out["score"] = out["share"] - out["call_share"].where(out["baseline_calls"] > 0, 0.0)
        out["lift"] = out["alert_rate"] / out["baseline_rate"].where(out["baseline_rate"] > 0)
        out.insert(0, "dimension", dim)
        frames.append(out)
    res = pd.concat(frames, ignore_index=True)[_COLUMNS]
    return res.sort_values(["share", "excess"], ascending=False, kind="stable").reset_index(
        drop=True
    )


def rank_dimensions(contributions: pd.DataFrame) -> pd.DataFrame:
    """One row per dimension: its top value (by ``score``) with share, score, excess, best first."""
    cols = ["dimension", "value", "share", "call_share", "score", "excess", "lift"]
    if contributions.empty:
        return pd.DataFrame({c: [] for c in cols})
    top = (
        contributions.sort_values("score", ascending=False, kind="stable")
        .groupby("dimension", sort=False)
        .head(1)
    )
    return top[cols].reset_index(drop=True)


def hint(
    contributions: pd.DataFrame, top: int = 3, min_score: float = 0.05
) -> list[dict[str, Any]]:
    """The ``top`` dimensions as small JSON-able dicts (for alerts and notifications)."""
    ranked = rank_dimensions(contributions)
    ranked = ranked[ranked["score"] >= min_score].head(top)
    out: list[dict[str, Any]] = []
    row: Any
    for row in ranked.itertuples(index=False):
        lift = float(row.lift) if pd.notna(row.lift) else None
        out.append(
            {
                "dimension": str(row.dimension),
                "value": str(row.value),
                "share": round(float(row.share), 4),
                "call_share": round(float(row.call_share), 4),
                "score": round(float(row.score), 4),
                "excess": round(float(row.excess), 4),
                "lift": round(lift, 3) if lift is not None and np.isfinite(lift) else None,
            }
        )
    return out


def load_calls(
    start: datetime | pd.Timestamp,
    end: datetime | pd.Timestamp,
    filters: Mapping[str, Sequence[str]] | None = None,
    warehouse: Warehouse | str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """``llm_calls`` rows in ``[start, end)`` with the columns root-cause analysis needs."""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    cols = [
        "ts",
        "status",
        "latency_ms",
        "ttft_ms",
        "cost_usd",
        "input_tokens",
        "output_tokens",
        *DIMENSIONS,
    ]
    where = ["ts >= ?", "ts < ?"]
    params: list[Any] = [pd.Timestamp(start).to_pydatetime(), pd.Timestamp(end).to_pydatetime()]
    for col, values in (filters or {}).items():
        if col not in DIMENSIONS and col not in ("operation", "error_type", "user_id"):
            continue  # labels that are not llm_calls columns cannot filter calls
        vals = [values] if isinstance(values, str) else [str(v) for v in values]
        where.append(f'"{col}" IN ({", ".join("?" for _ in vals)})')
        params.extend(vals)
    col_sql = ", ".join(f'"{c}"' for c in cols)
    return wh.query(f"SELECT {col_sql} FROM llm_calls WHERE {' AND '.join(where)}", params)
