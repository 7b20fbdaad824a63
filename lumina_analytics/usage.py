"""Product usage: active users, sessions, retention cohorts, funnels and adoption.

Every analysis takes a DataFrame (``events`` or ``llm_calls`` rows) and returns a DataFrame;
only the ``load_*`` functions read the warehouse (through :meth:`Warehouse.query`, with bound
parameters).

* :func:`active_users`: DAU, WAU (trailing 7 days), MAU (trailing 30 days) and stickiness
  (DAU / MAU) per day, optionally per tenant / agent / feature / region.
* :func:`usage_summary`: requests, tokens, cost and distinct users per group.
* :func:`sessionize` / :func:`sessions`: sessions re-derived from event times with an
  inactivity gap (a new session starts when a user is idle longer than ``gap``).
* :func:`retention_cohorts` / :func:`retention_triangle`: cohorts by first-seen week (or day,
  month) and the share of each cohort active ``k`` periods later.
* :func:`funnel`: ordered steps, users reaching each step after the previous one.
* :func:`adoption`: distinct users of each agent or feature per period and their share.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from lumina_analytics.errors import SchemaError
from lumina_analytics.schema import require_columns
from lumina_analytics.warehouse import Warehouse

__all__ = [
    "EVENT_COLUMNS",
    "active_users",
    "adoption",
    "event_property",
    "funnel",
    "kpi_comparison",
    "load_calls",
    "load_events",
    "period_kpis",
    "retention_cohorts",
    "retention_heatmap",
    "retention_triangle",
    "session_summary",
    "sessionize",
    "sessions",
    "usage_summary",
]

EVENT_COLUMNS: tuple[str, ...] = ("ts", "tenant", "user_id", "session_id", "event_type")
_GRAINS = {"D": "D", "W": "W", "M": "M", "day": "D", "week": "W", "month": "M"}
_CALL_COLUMNS = (
    "ts",
    "tenant",
    "user_id",
    "session_id",
    "agent",
    "region",
    "provider",
    "model",
    "status",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "cost_usd",
)


# -- loaders ----------------------------------------------------------------------------------
def _where(
    start: str | datetime | None,
    end: str | datetime | None,
    tenants: Sequence[str] | None,
    ts_col: str = "ts",
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if start is not None:
        clauses.append(f"{ts_col} >= ?")
        params.append(_ts(start).to_pydatetime())
    if end is not None:
        clauses.append(f"{ts_col} < ?")
        params.append(_ts(end).to_pydatetime())
    if tenants:
        clauses.append(f"tenant IN ({', '.join('?' for _ in tenants)})")
        params.extend(str(t) for t in tenants)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _ts(value: str | datetime | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def _wh(warehouse: Warehouse | str | None) -> Warehouse:
    return warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)


def load_events(
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    tenants: Sequence[str] | None = None,
    warehouse: Warehouse | str | None = None,
) -> pd.DataFrame:
    """``events`` rows in ``[start, end)`` (optionally of some tenants), ordered by time.

    Adds ``score``, ``agent`` and ``feature`` columns extracted from ``properties`` (NULL when
    the event carries no such property).
    """
    where, params = _where(start, end, tenants)
    sql = (
        "SELECT ts, tenant, user_id, session_id, event_type, CAST(properties AS VARCHAR) AS properties, "
        "TRY_CAST(json_extract_string(properties, '$.score') AS DOUBLE) AS score, "
        "json_extract_string(properties, '$.agent') AS agent, "
        "json_extract_string(properties, '$.feature') AS feature "
        f"FROM events{where} ORDER BY ts"
    )
    out = _wh(warehouse).query(sql, params)
    out["ts"] = pd.to_datetime(out["ts"]).astype("datetime64[ns]")
    return out


def load_calls(
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    tenants: Sequence[str] | None = None,
    warehouse: Warehouse | str | None = None,
    columns: Sequence[str] = _CALL_COLUMNS,
) -> pd.DataFrame:
    """Selected ``llm_calls`` columns in ``[start, end)``, ordered by time."""
    from lumina_analytics.schema import columns_of

    known = set(columns_of("llm_calls"))
    bad = [c for c in columns if c not in known]
    if bad:
        raise SchemaError(f"llm_calls has no column(s) {bad}")
    where, params = _where(start, end, tenants)
    cols = ", ".join(f'"{c}"' for c in columns)
    out = _wh(warehouse).query(f"SELECT {cols} FROM llm_calls{where} ORDER BY ts", params)
    if "ts" in out:
        out["ts"] = pd.to_datetime(out["ts"]).astype("datetime64[ns]")
    return out


def event_property(events: pd.DataFrame, key: str) -> pd.Series:
    """One key of the JSON ``properties`` column (strings or dicts) as a Series (NaN if absent)."""
    if key in events.columns:
        return events[key]
    if "properties" not in events.columns:
        return pd.Series(np.nan, index=events.index, dtype=object)

    def get(raw: Any) -> Any:
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                return np.nan
        if isinstance(raw, Mapping):
            return raw.get(key, np.nan)
        return np.nan

    return events["properties"].map(get)


# -- active users and volumes -----------------------------------------------------------------
def _group_cols(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def active_users(
    frame: pd.DataFrame,
    by: str | Sequence[str] = (),
    start: str | datetime | None = None,
    end: str | datetime | None = None,
) -> pd.DataFrame:
    """Daily active users with trailing WAU/MAU and stickiness, per group.

    ``frame`` is any table with ``ts`` and ``user_id`` (events or llm_calls). Returns one row
    per day (and group): ``day, dau, wau, mau, stickiness`` where WAU/MAU count distinct users
    over the trailing 7/30 days ending that day and stickiness = DAU / MAU. Days before
    ``start`` are used for the trailing windows but not returned.
    """
    cols = _group_cols(by)
    require_columns(frame, ["ts", "user_id", *cols], "usage frame")
    df = frame.loc[frame["user_id"].notna(), ["ts", "user_id", *cols]].copy()
    df["day"] = pd.to_datetime(df["ts"]).dt.floor("D")
    if df.empty:
        return pd.DataFrame(columns=[*cols, "day", "dau", "wau", "mau", "stickiness"])
    first, last = df["day"].min(), df["day"].max()
    if end is not None:
        last = min(last, (_ts(end) - pd.Timedelta(1, "ns")).floor("D"))
    days = pd.date_range(first, last, freq="D")
    rows: list[pd.DataFrame] = []
    groups = df.groupby(cols, dropna=False, sort=True) if cols else [((), df)]
    for key, g in groups:
        seen = g.drop_duplicates(["day", "user_id"])
        per_day = seen.groupby("day")["user_id"].agg(list)
        dau = seen.groupby("day").size().reindex(days, fill_value=0)
        # trailing windows: last-seen day per user makes distinct counts O(days * users)
        wau = _trailing_distinct(per_day, days, 7)
        mau = _trailing_distinct(per_day, days, 30)
        out = pd.DataFrame({"day": days, "dau": dau.to_numpy(), "wau": wau, "mau": mau})
        keys: tuple[Any, ...] = key if isinstance(key, tuple) else (key,)
        out = out.assign(**{str(c): v for c, v in zip(cols, keys, strict=False)})
        rows.append(out)
    res = pd.concat(rows, ignore_index=True)
    res["stickiness"] = np.where(
        res["mau"] > 0, res["dau"] / res["mau"].where(res["mau"] > 0, 1), np.nan
    )
    if start is not None:
        res = res[res["day"] >= _ts(start).floor("D")]
    return res[[*cols, "day", "dau", "wau", "mau", "stickiness"]].reset_index(drop=True)


def _trailing_distinct(per_day: pd.Series, days: pd.DatetimeIndex, window: int) -> np.ndarray:
    last_seen: dict[Any, pd.Timestamp] = {}
    out = np.zeros(len(days), dtype=np.int64)
    for i, day in enumerate(days):
        for u in per_day.get(day, []):
            last_seen[u] = day
        cutoff = day - pd.Timedelta(days=window - 1)
        out[i] = sum(1 for d in last_seen.values() if d >= cutoff)
    return out


def usage_summary(calls: pd.DataFrame, by: str | Sequence[str] = ("tenant",)) -> pd.DataFrame:
    """Requests, tokens, cost, error rate, distinct users and sessions per group of llm_calls."""
    cols = _group_cols(by)
    require_columns(calls, ["ts", *cols], "llm_calls frame")
    df = calls.copy()
    df["_tokens"] = df.get("input_tokens", 0) + df.get("output_tokens", 0)
    df["_tokens"] = pd.to_numeric(df["_tokens"], errors="coerce").fillna(0)
    df["_err"] = (df["status"] == "error").astype(float) if "status" in df else 0.0
    df["_cost"] = pd.to_numeric(df["cost_usd"], errors="coerce") if "cost_usd" in df else np.nan
    grouped = df.groupby(cols, dropna=False) if cols else df.groupby(lambda _: "all")
    out = grouped.agg(
        requests=("ts", "size"),
        tokens=("_tokens", "sum"),
        cost_usd=("_cost", "sum"),
        error_rate=("_err", "mean"),
    )
    if "user_id" in df:
        out["users"] = grouped["user_id"].nunique()
    if "session_id" in df:
        out["sessions"] = grouped["session_id"].nunique()
    out = out.reset_index()
    if not cols:
        out = out.drop(columns=out.columns[0])
    return out.sort_values("requests", ascending=False, kind="stable").reset_index(drop=True)


# -- sessions ---------------------------------------------------------------------------------
def sessionize(events: pd.DataFrame, gap: str | pd.Timedelta = "30min") -> pd.DataFrame:
    """Events with a ``session`` column: a user's new session starts after ``gap`` of inactivity.

    Sessions are per ``(tenant, user_id)`` (per user when there is no tenant column) and named
    ``<user_id>#<n>`` with ``n`` counting from 1 in time order.
    """
    require_columns(events, ["ts", "user_id"], "events frame")
    width = pd.Timedelta(gap)
    if width <= pd.Timedelta(0):
        raise SchemaError(f"session gap must be positive, got {gap!r}")
    keys = ["tenant", "user_id"] if "tenant" in events.columns else ["user_id"]
    df = events.copy()
    df["ts"] = pd.to_datetime(df["ts"])
    df = df.sort_values([*keys, "ts"], kind="stable")
    prev = df.groupby(keys, dropna=False)["ts"].shift()
    new = prev.isna() | ((df["ts"] - prev) > width)
    n = new.astype(int).groupby([df[k] for k in keys], dropna=False).cumsum()
    df["session"] = df["user_id"].astype(str) + "#" + n.astype(str)
    return df.sort_values("ts", kind="stable")


def sessions(
    events: pd.DataFrame, gap: str | pd.Timedelta = "30min", message_type: str = "message"
) -> pd.DataFrame:
    """One row per session: ``tenant, user_id, session, start, end, length_s, events, messages``."""
    df = sessionize(events, gap)
    keys = [c for c in ("tenant", "user_id") if c in df.columns]
    df["_msg"] = (df["event_type"] == message_type).astype(int) if "event_type" in df else 0
    out = (
        df.groupby([*keys, "session"], dropna=False, sort=False)
        .agg(
            start=("ts", "min"), end=("ts", "max"), events=("ts", "size"), messages=("_msg", "sum")
        )
        .reset_index()
    )
    out["length_s"] = (out["end"] - out["start"]).dt.total_seconds()
    return out.sort_values("start", kind="stable").reset_index(drop=True)


def session_summary(sess: pd.DataFrame, by: str | Sequence[str] = ()) -> pd.DataFrame:
    """Session count, mean/median length (minutes) and messages per session, per group."""
    cols = _group_cols(by)
    require_columns(sess, ["session", "length_s", "messages", *cols], "sessions frame")
    g = sess.groupby(cols, dropna=False) if cols else sess.groupby(lambda _: "all")
    out = g.agg(
        sessions=("session", "size"),
        mean_length_min=("length_s", lambda s: float(s.mean()) / 60.0),
        median_length_min=("length_s", lambda s: float(s.median()) / 60.0),
        messages_per_session=("messages", "mean"),
    ).reset_index()
    if not cols:
        out = out.drop(columns=out.columns[0])
    return out


# -- retention --------------------------------------------------------------------------------
def _period(ts: pd.Series, grain: str) -> pd.Series:
    g = _GRAINS.get(grain)
    if g is None:
        raise SchemaError(f"cohort grain {grain!r} must be one of D, W, M")
    ts = pd.to_datetime(ts)
    if g == "D":
        return ts.dt.floor("D")
    if g == "W":  # weeks start on Monday
        day = ts.dt.floor("D")
        return pd.Series(day - pd.to_timedelta(day.dt.day_of_week, unit="D"), index=ts.index)
    return pd.Series(ts.dt.to_period("M").dt.to_timestamp(), index=ts.index)


def _period_index(period: pd.Series, cohort: pd.Series, grain: str) -> pd.Series:
    g = _GRAINS[grain]
    if g == "M":
        return (period.dt.year - cohort.dt.year) * 12 + (period.dt.month - cohort.dt.month)
    step = 7 if g == "W" else 1
    return ((period - cohort).dt.days // step).astype(int)


def retention_cohorts(frame: pd.DataFrame, grain: str = "W") -> pd.DataFrame:
    """Long cohort table: ``cohort, period, users, cohort_size, retention``.

    A user's cohort is the period (Monday-based week by default) of their first activity in
    ``frame``; ``period`` k counts periods since then and ``retention`` is the share of the
    cohort active in period k (period 0 is 1.0 by construction).
    """
    require_columns(frame, ["ts", "user_id"], "usage frame")
    df = frame.loc[frame["user_id"].notna(), ["ts", "user_id"]].copy()
    df["p"] = _period(df["ts"], grain)
    df = df.drop_duplicates(["user_id", "p"])
    df["cohort"] = df.groupby("user_id")["p"].transform("min")
    df["period"] = _period_index(df["p"], df["cohort"], grain)
    counts = df.groupby(["cohort", "period"]).size().rename("users").reset_index()
    size = counts.loc[counts["period"] == 0, ["cohort", "users"]].rename(
        columns={"users": "cohort_size"}
    )
    out = counts.merge(size, on="cohort", how="left")
    out["retention"] = out["users"] / out["cohort_size"]
    return out.sort_values(["cohort", "period"]).reset_index(drop=True)


def retention_triangle(cohorts: pd.DataFrame) -> pd.DataFrame:
    """The cohort triangle: rows = cohort (with its size), columns = period, values = retention.

    Periods a cohort has not reached yet stay NaN; periods it reached with no active user are 0.
    """
    require_columns(cohorts, ["cohort", "period", "retention", "cohort_size"], "cohort table")
    wide = cohorts.pivot(index="cohort", columns="period", values="retention")
    if wide.empty:
        return wide
    n_periods = len(wide.index)
    # a cohort k positions from the last one can only have been observed for k periods
    max_p = int(cohorts["period"].max())
    full = wide.reindex(columns=range(max_p + 1))
    for i, cohort in enumerate(full.index):
        reachable = n_periods - 1 - i
        for p in full.columns:
            if int(p) <= reachable and pd.isna(full.loc[cohort, p]):
                full.loc[cohort, p] = 0.0
    sizes = cohorts.drop_duplicates("cohort").set_index("cohort")["cohort_size"]
    full.insert(0, "cohort_size", sizes.reindex(full.index).astype("int64"))
    full.columns.name = "period"
    return full


def retention_heatmap(cohorts: pd.DataFrame, title: str = "Retention by cohort") -> alt.LayerChart:
    """Heat map of a :func:`retention_cohorts` table (cohort rows, period columns)."""
    from lumina_analytics.charts import heatmap

    data = cohorts.assign(cohort=pd.to_datetime(cohorts["cohort"]).dt.strftime("%Y-%m-%d"))
    return heatmap(data, x="period", y="cohort", value="retention", title=title)


# -- funnels and adoption ---------------------------------------------------------------------
def funnel(
    events: pd.DataFrame,
    steps: Sequence[str],
    within: str = "session_id",
    by: str | None = None,
) -> pd.DataFrame:
    """Ordered funnel over ``steps`` (event types).

    A unit (``within``: ``session_id`` or ``user_id``) reaches step k when it has an event of
    type ``steps[k]`` at or after the time it reached step k-1. Returns ``step, order, units,
    conversion`` (share of units entering step 0), ``step_conversion`` (share of the previous
    step) and ``drop_off`` (units lost since the previous step), per ``by`` group if given.
    """
    if len(steps) < 2:
        raise SchemaError("a funnel needs at least two steps")
    require_columns(events, ["ts", "event_type", within, *([by] if by else [])], "events frame")
    df = events.loc[events["event_type"].isin(steps) & events[within].notna()].copy()
    df["ts"] = pd.to_datetime(df["ts"])
    keys = [by, within] if by else [within]
    reached_at = df.loc[df["event_type"] == steps[0]].groupby(keys, dropna=False)["ts"].min()
    counts = [reached_at.groupby(level=0).size() if by else pd.Series({"all": len(reached_at)})]
    for step in steps[1:]:
        cand = df.loc[df["event_type"] == step, [*keys, "ts"]]
        cand = cand.merge(reached_at.rename("prev").reset_index(), on=keys, how="inner")
        cand = cand.loc[cand["ts"] >= cand["prev"]]
        reached_at = cand.groupby(keys, dropna=False)["ts"].min()
        counts.append(
            reached_at.groupby(level=0).size() if by else pd.Series({"all": len(reached_at)})
        )
    table = pd.concat(counts, axis=1).fillna(0).astype("int64")
    table.columns = list(range(len(steps)))
    rows = []
    for group, vals in table.iterrows():
        first = vals.iloc[0]
        for k, step in enumerate(steps):
            n = int(vals.iloc[k])
            prev = int(vals.iloc[k - 1]) if k else n
            row: dict[str, Any] = {
                "step": step,
                "order": k,
                "units": n,
                "conversion": n / first if first else np.nan,
                "step_conversion": n / prev if prev else np.nan,
                "drop_off": prev - n,
            }
            if by:
                row = {by: group, **row}
            rows.append(row)
    return pd.DataFrame(rows)


def adoption(frame: pd.DataFrame, dimension: str = "agent", grain: str = "W") -> pd.DataFrame:
    """Distinct users of each ``dimension`` value per period and their share of active users.

    Returns ``period, <dimension>, users, share, cumulative_users`` (users who have used the
    value at least once by the end of the period).
    """
    require_columns(frame, ["ts", "user_id", dimension], "usage frame")
    df = frame.loc[frame["user_id"].notna(), ["ts", "user_id", dimension]].copy()
    df["period"] = _period(df["ts"], grain)
    active = df.groupby("period")["user_id"].nunique().rename("active")
    used = df.dropna(subset=[dimension])
    out = used.groupby(["period", dimension])["user_id"].nunique().rename("users").reset_index()
    out = out.merge(active, on="period")
    out["share"] = out["users"] / out["active"]
    firsts = used.groupby([dimension, "user_id"])["period"].min().reset_index()
    cum = (
        firsts.groupby([dimension, "period"])
        .size()
        .groupby(level=0)
        .cumsum()
        .rename("cumulative_users")
    )
    out = out.merge(cum.reset_index(), on=[dimension, "period"], how="left")
    out = out.sort_values([dimension, "period"], kind="stable")
    out["cumulative_users"] = (
        out.groupby(dimension)["cumulative_users"].ffill().fillna(0).astype("int64")
    )
    return out.drop(columns="active").sort_values(["period", dimension]).reset_index(drop=True)


def _num(frame: pd.DataFrame, col: str) -> pd.Series:
    if col not in frame:
        return pd.Series(np.nan, index=frame.index, dtype="float64")
    return pd.Series(pd.to_numeric(frame[col], errors="coerce"), index=frame.index)


# -- period KPIs ------------------------------------------------------------------------------
def period_kpis(calls: pd.DataFrame, events: pd.DataFrame | None = None) -> dict[str, float]:
    """Headline numbers of one period: requests, tokens, cost, error rate, p95 latency, users,
    sessions, and (from events) conversion, abandonment and mean feedback per session."""
    out: dict[str, float] = {"requests": float(len(calls))}
    if len(calls):
        tok = _num(calls, "input_tokens").fillna(0) + _num(calls, "output_tokens").fillna(0)
        out["tokens"] = float(tok.sum())
        out["cost_usd"] = float(_num(calls, "cost_usd").sum())
        out["error_rate"] = (
            float((calls["status"] == "error").mean()) if "status" in calls else np.nan
        )
        out["latency_p95_ms"] = float(
            pd.to_numeric(calls["latency_ms"], errors="coerce").quantile(0.95)
        )
        out["active_users"] = float(calls["user_id"].nunique()) if "user_id" in calls else np.nan
        days = max(pd.to_datetime(calls["ts"]).dt.floor("D").nunique(), 1)
        if "user_id" in calls:
            dau = (
                calls.assign(_d=pd.to_datetime(calls["ts"]).dt.floor("D"))
                .groupby("_d")["user_id"]
                .nunique()
            )
            out["mean_dau"] = float(dau.sum() / days)
    if events is not None and len(events):
        n_sess = events["session_id"].nunique()
        out["sessions"] = float(n_sess)
        for kind, name in (("conversion", "conversion_rate"), ("abandonment", "abandonment_rate")):
            hit = events.loc[events["event_type"] == kind, "session_id"].nunique()
            out[name] = hit / n_sess if n_sess else np.nan
        fb = events.loc[events["event_type"] == "feedback"]
        if len(fb):
            out["mean_feedback"] = float(
                pd.to_numeric(event_property(fb, "score"), errors="coerce").mean()
            )
    return out


def kpi_comparison(current: Mapping[str, float], previous: Mapping[str, float]) -> pd.DataFrame:
    """``kpi, current, previous, change`` (relative change; NaN when there is no previous)."""
    rows = []
    for k, v in current.items():
        p = previous.get(k, np.nan)
        change = (v / p - 1) if p and np.isfinite(p) and p != 0 else np.nan
        rows.append({"kpi": k, "current": v, "previous": p, "change": change})
    return pd.DataFrame(rows, columns=["kpi", "current", "previous", "change"])
