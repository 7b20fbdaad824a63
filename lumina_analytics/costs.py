"""Cost analytics over ``llm_calls`` frames: spend, unit economics, cache effect, response-cache
what-if, budgets, change attribution, reconciliation audit, what-if re-pricing, Pareto frontier.

Prices come from :func:`lumina_analytics.pricing.price` when that module is present, otherwise
from ``genai-prices`` directly (same semantics: input tokens include cache reads and writes,
output tokens include reasoning tokens; an unknown model has no price, never 0).

Re-pricing many calls is vectorised: per (provider, model, day) — per hour for models with
time-of-day prices — the price function is probed for its per-token rates (price is linear in
the token counts within a tier), and only calls large enough to reach a tier (input tokens at or
above the model's smallest tier start) are priced one by one.

Dimensions (:data:`DIMENSIONS`) are ``llm_calls`` columns, except ``tool``: the tool whose
output the LLM call consumed, derived from the trace by
:func:`lumina_analytics.datasets.tool_attribution_sql` (the latest sibling tool span that
ended before the call started, with no other LLM call in between; ``(none)`` for planner
and reflection calls). Load it with ``datasets.load_llm_calls(..., with_tool=True)`` or
``datasets.attach_tools(calls, spans)``; then ``spend(calls, by=("tool",))`` works as for
any other dimension.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from lumina_analytics.config import project_root
from lumina_analytics.errors import ConfigError, SchemaError

PriceFn = Callable[..., float | None]

DIMENSIONS: tuple[str, ...] = (
    "tenant",
    "user_id",
    "agent",
    "tool",
    "operation",
    "provider",
    "model",
    "region",
    "service",
)

_TOKEN_COLS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


# ----------------------------------------------------------------------------- pricing adapter
def _genai_price(
    provider: str | None,
    model: str,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    ts: datetime | None = None,
    overrides: Any = None,
) -> float | None:
    from genai_prices import Usage, calc_price

    try:
        r = calc_price(
            Usage(
                input_tokens=int(input_tokens),
                output_tokens=int(output_tokens),
                cache_read_tokens=int(cache_read_tokens),
                cache_write_tokens=int(cache_write_tokens),
            ),
            model,
            provider_id=provider or None,
            genai_request_timestamp=ts,
        )
    except (LookupError, ValueError):  # unknown model, or inconsistent usage genai-prices rejects
        return None
    return float(r.total_price)


def price_function() -> tuple[PriceFn, str]:
    """The price function in use and its name (``pricing`` module or ``genai-prices``)."""
    try:
        from lumina_analytics import pricing  # type: ignore[attr-defined,unused-ignore]

        fn = getattr(pricing, "price", None)
        if callable(fn):
            return fn, "lumina_analytics.pricing"
    except ImportError:
        pass
    return _genai_price, "genai-prices"


def _price_frame_function() -> Callable[..., pd.DataFrame] | None:
    try:
        from lumina_analytics import pricing  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    fn = getattr(pricing, "price_frame", None)
    return fn if callable(fn) else None


@lru_cache(maxsize=4096)
def _model_structure(provider: str, model: str) -> tuple[float, bool]:
    """(smallest tier start in input tokens or inf, has time-of-day prices) from genai-prices."""
    from genai_prices import Usage, calc_price

    try:
        r = calc_price(Usage(input_tokens=1, output_tokens=1), model, provider_id=provider or None)
    except LookupError:
        return math.inf, False
    info = r.model
    prices = getattr(info, "prices", None)
    variants = prices if isinstance(prices, list) else [prices]
    start = math.inf
    tod = False
    for v in variants:
        mp = getattr(v, "prices", v)
        constraint = getattr(v, "constraint", None)
        if constraint is not None and "Time" in type(constraint).__name__:
            tod = True
        for fname in getattr(type(mp), "__dataclass_fields__", {}) or vars(mp):
            val = getattr(mp, fname, None)
            for t in getattr(val, "tiers", None) or []:
                start = min(start, float(t.start))
    return start, tod


def _col(frame: pd.DataFrame, name: str, fill: float = 0.0) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), fill, dtype=float)
    return pd.to_numeric(frame[name], errors="coerce").astype("float64").fillna(fill).to_numpy()


def price_usage(
    calls: pd.DataFrame,
    provider: str | None = None,
    model: str | None = None,
    *,
    ignore_cache: bool = False,
    batch_discount: float = 0.0,
    overrides: Any = None,
    price_fn: PriceFn | None = None,
) -> pd.Series:
    """Cost in USD of each call's recorded usage, optionally under another ``provider``/``model``.

    ``ignore_cache=True`` prices cache reads and writes as ordinary input (the uncached price).
    ``batch_discount`` (0.5 = half price) models a batch API. NaN where the model is unknown.
    """
    n = len(calls)
    if n == 0:
        return pd.Series([], dtype="float64", index=calls.index)
    if price_fn is None:
        frame_fn = _price_frame_function()
        if frame_fn is not None:
            cols = [c for c in ("ts", "provider", "model", *_TOKEN_COLS) if c in calls.columns]
            frame = calls[cols].copy()
            if provider:
                frame["provider"] = provider
            if model:
                frame["model"] = model
            if ignore_cache:
                frame["cache_read_tokens"] = 0
                frame["cache_write_tokens"] = 0
            for c in ("provider", "model"):  # per-value work in price_frame runs once per category
                if c in frame.columns:
                    frame[c] = frame[c].astype("category")
            priced = frame_fn(frame, overrides=overrides)["cost_usd"].astype("float64")
            return pd.Series(
                priced.to_numpy() * (1.0 - batch_discount), index=calls.index, name="cost_usd"
            )
    fn = price_fn or price_function()[0]
    prov = (
        pd.Series([provider] * n, index=calls.index, dtype=object)
        if provider
        else calls.get("provider", pd.Series([None] * n, index=calls.index)).astype(object)
    )
    mod = (
        pd.Series([model] * n, index=calls.index, dtype=object)
        if model
        else calls.get("model", pd.Series([None] * n, index=calls.index)).astype(object)
    )
    inp, out = _col(calls, "input_tokens"), _col(calls, "output_tokens")
    cr, cw = _col(calls, "cache_read_tokens"), _col(calls, "cache_write_tokens")
    if ignore_cache:
        cr, cw = np.zeros(n), np.zeros(n)
    ts = (
        pd.to_datetime(calls["ts"])
        if "ts" in calls.columns
        else pd.Series(pd.NaT, index=calls.index)
    )
    day = ts.dt.floor("D")
    hour = ts.dt.floor("h")
    cost = np.full(n, np.nan)
    keys = pd.DataFrame({"p": prov.fillna("").to_numpy(), "m": mod.fillna("").to_numpy()})
    groups: dict[Any, Any] = keys.groupby(["p", "m"], sort=False).indices
    for (p, m), idx in groups.items():
        if not m:
            continue
        tier_start, tod = _model_structure(str(p), str(m))
        bucket = (hour if tod else day).iloc[idx]
        for b, sub in pd.Series(np.arange(len(idx)), index=idx).groupby(
            bucket.to_numpy(), dropna=False
        ):
            rows = sub.index.to_numpy()
            bts: Any = b
            when = (
                None
                if pd.isna(bts)
                else pd.Timestamp(bts).to_pydatetime()
                + (pd.Timedelta(0) if tod else pd.Timedelta(hours=12))
            )
            k = 1000

            def probe(
                i: int, o: int, r: int, w: int, _p: str = str(p), _m: str = str(m), _t: Any = when
            ) -> float | None:
                return (
                    fn(_p or None, _m, i, o, r, w, ts=_t, overrides=overrides)
                    if overrides is not None
                    else fn(_p or None, _m, i, o, r, w, ts=_t)
                )

            base = probe(0, 0, 0, 0)
            if base is None:
                continue
            r_in = (probe(k, 0, 0, 0) or 0.0) - base
            r_out = (probe(0, k, 0, 0) or 0.0) - base
            r_cr = (probe(k, 0, k, 0) or 0.0) - base
            r_cw = (probe(k, 0, 0, k) or 0.0) - base
            ii, oo, rr, ww = inp[rows], out[rows], cr[rows], cw[rows]
            uncached = np.maximum(ii - rr - ww, 0)
            cost[rows] = base + (uncached * r_in + oo * r_out + rr * r_cr + ww * r_cw) / k
            big = rows[ii >= tier_start]
            for j in big:
                v = probe(int(inp[j]), int(out[j]), int(cr[j]), int(cw[j]))
                cost[j] = np.nan if v is None else v
    return pd.Series(cost * (1.0 - batch_discount), index=calls.index, name="cost_usd")


def with_costs(calls: pd.DataFrame, overrides: Any = None, reprice: bool = False) -> pd.DataFrame:
    """``calls`` with ``cost_usd`` filled: kept as recorded unless missing entirely (or
    ``reprice``), then priced with ``pricing.price_frame`` when present, else :func:`price_usage`."""
    out = calls.copy()
    if not reprice and "cost_usd" in out.columns and out["cost_usd"].notna().any():
        return out
    try:
        from lumina_analytics import pricing  # type: ignore[attr-defined,unused-ignore]

        priced = pricing.price_frame(out, overrides=overrides)
        out["cost_usd"] = priced["cost_usd"].to_numpy()
        if "price_source" in priced.columns:
            out["price_source"] = priced["price_source"].to_numpy()
        return out
    except (ImportError, AttributeError):
        pass
    out["cost_usd"] = price_usage(out, overrides=overrides).to_numpy()
    out["price_source"] = out["cost_usd"].notna().map({True: "genai-prices", False: None})
    return out


# ----------------------------------------------------------------------------- spend, unit economics
def _check_dims(calls: pd.DataFrame, by: Sequence[str]) -> list[str]:
    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in by if c not in calls.columns]
    if missing:
        hint = (
            "; llm_calls has no tool column: load the calls with "
            "datasets.load_llm_calls(..., with_tool=True) or datasets.attach_tools(calls, spans)"
            if "tool" in missing
            else ""
        )
        raise SchemaError(
            f"cannot group by {missing}: the calls frame has {list(calls.columns)}{hint}"
        )
    return by


def time_bucket(ts: pd.Series, grain: str) -> pd.Series:
    """Start of the ``grain`` bucket of each timestamp: fixed grains (``1h``, ``D``) floor;
    ``W`` gives weeks starting Monday, ``M``/``MS`` calendar months."""
    t = pd.to_datetime(ts)
    try:
        return t.dt.floor(grain)
    except ValueError:
        period = {"MS": "M", "ME": "M", "W-MON": "W", "W-SUN": "W"}.get(grain.upper(), grain)
        return t.dt.to_period(period).dt.start_time


def _keyed(
    calls: pd.DataFrame, by: Sequence[str], grain: str | None
) -> tuple[pd.DataFrame, list[str]]:
    df = calls.copy()
    keys = list(by)
    for c in keys:
        df[c] = df[c].astype("object").where(df[c].notna(), "(none)")
    if grain:
        df["ds"] = time_bucket(df["ts"], grain)
        keys = ["ds", *keys]
    if not keys:
        df["_all"] = "all"
        keys = ["_all"]
    return df, keys


def spend(calls: pd.DataFrame, by: Sequence[str] = (), grain: str | None = None) -> pd.DataFrame:
    """Spend by any dimensions (see :data:`DIMENSIONS`; ``tool`` as derived from the trace, see
    the module docstring) and an optional time ``grain`` (pandas offset: ``1h``, ``D``, ``W``, ``MS``).

    Columns: [ds], by..., requests, cost_usd, unpriced_requests, input_tokens, output_tokens, share.
    Unpriced calls (``cost_usd`` NULL) are counted, never summed as 0 silently.
    """
    by = _check_dims(calls, by)
    df, keys = _keyed(calls, by, grain)
    df["_cost"] = _col(df, "cost_usd", np.nan)
    df["_unpriced"] = np.isnan(df["_cost"])
    df["_in"], df["_out"] = _col(df, "input_tokens"), _col(df, "output_tokens")
    g = df.groupby(keys, sort=True, dropna=False)
    out = pd.DataFrame(
        {
            "requests": g.size(),
            "cost_usd": g["_cost"].sum(min_count=0),
            "unpriced_requests": g["_unpriced"].sum(),
            "input_tokens": g["_in"].sum(),
            "output_tokens": g["_out"].sum(),
        }
    ).reset_index()
    total = out.groupby("ds")["cost_usd"].transform("sum") if grain else out["cost_usd"].sum()
    out["share"] = out["cost_usd"] / total
    return (
        out.drop(columns=["_all"], errors="ignore")
        .sort_values(
            [k for k in keys if k != "_all"] + ["cost_usd"] if grain else ["cost_usd"],
            ascending=bool(grain),
        )
        .reset_index(drop=True)
    )


def unit_economics(
    calls: pd.DataFrame, by: Sequence[str] = (), grain: str | None = None
) -> pd.DataFrame:
    """Cost per request, per successful request, per session, per active user and per 1k tokens.

    Sessions and users are distinct non-null ``session_id`` / ``user_id`` values in the group.
    """
    by = _check_dims(calls, by)
    df, keys = _keyed(calls, by, grain)
    df["_cost"] = _col(df, "cost_usd", np.nan)
    df["_ok"] = df["status"].astype("object").eq("ok") if "status" in df.columns else True
    df["_tok"] = _col(df, "input_tokens") + _col(df, "output_tokens")
    for c in ("session_id", "user_id"):
        if c not in df.columns:
            df[c] = None
    g = df.groupby(keys, sort=True, dropna=False)
    out = pd.DataFrame(
        {
            "requests": g.size(),
            "successful": g["_ok"].sum(),
            "sessions": g["session_id"].nunique(),
            "active_users": g["user_id"].nunique(),
            "tokens": g["_tok"].sum(),
            "cost_usd": g["_cost"].sum(),
        }
    ).reset_index()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["cost_per_request"] = out["cost_usd"] / out["requests"]
        out["cost_per_success"] = out["cost_usd"] / out["successful"].replace(0, np.nan)
        out["cost_per_session"] = out["cost_usd"] / out["sessions"].replace(0, np.nan)
        out["cost_per_active_user"] = out["cost_usd"] / out["active_users"].replace(0, np.nan)
        out["cost_per_1k_tokens"] = out["cost_usd"] / out["tokens"].replace(0, np.nan) * 1000
    return out.drop(columns=["_all"], errors="ignore")


# ----------------------------------------------------------------------------- cache effect
def cache_effect(
    calls: pd.DataFrame,
    grain: str | None = "D",
    by: Sequence[str] = (),
    price_fn: PriceFn | None = None,
) -> pd.DataFrame:
    """What prompt-cache reads saved against the uncached price, and the cache-hit rate.

    ``cache_hit_rate`` = cache-read tokens / input tokens; ``request_hit_rate`` = share of
    calls with any cache read. ``uncached_cost_usd`` re-prices every call with cache reads and
    writes as ordinary input; ``saved_usd`` = uncached - actual (negative when cache writes
    cost more than they saved). Both costs use the same price function, so the saving is
    consistent even where recorded costs were priced differently.
    """
    by = _check_dims(calls, by)
    df, keys = _keyed(calls, by, grain)
    df["_in"], df["_cr"] = _col(df, "input_tokens"), _col(df, "cache_read_tokens")
    df["_cw"] = _col(df, "cache_write_tokens")
    df["_hit"] = df["_cr"] > 0
    df["_actual"] = price_usage(df, price_fn=price_fn).to_numpy()
    df["_uncached"] = price_usage(df, ignore_cache=True, price_fn=price_fn).to_numpy()
    g = df.groupby(keys, sort=True, dropna=False)
    out = pd.DataFrame(
        {
            "requests": g.size(),
            "input_tokens": g["_in"].sum(),
            "cache_read_tokens": g["_cr"].sum(),
            "cache_write_tokens": g["_cw"].sum(),
            "request_hit_rate": g["_hit"].mean(),
            "cost_usd": g["_actual"].sum(),
            "uncached_cost_usd": g["_uncached"].sum(),
        }
    ).reset_index()
    out["cache_hit_rate"] = out["cache_read_tokens"] / out["input_tokens"].replace(0, np.nan)
    out["saved_usd"] = out["uncached_cost_usd"] - out["cost_usd"]
    out["saved_share"] = out["saved_usd"] / out["uncached_cost_usd"].replace(0, np.nan)
    return out.drop(columns=["_all"], errors="ignore")


def response_cache_hits(
    calls: pd.DataFrame,
    ttl: str | pd.Timedelta = "1h",
    key: Sequence[str] = ("model", "prompt_hash"),
) -> pd.Series:
    """Whether an exact-match response cache keyed on ``key`` would have answered each call.

    A successful call stores its response for ``ttl``; a later call with the same key within
    that time is a hit (served from cache, its own result not stored); the first call after
    expiry is a miss and refreshes the entry. Calls without a prompt hash are never hits.
    """
    ttl_ns = pd.Timedelta(ttl).value
    key = [k for k in key if k in calls.columns]
    hits = np.zeros(len(calls), dtype=bool)
    if "prompt_hash" not in key:
        return pd.Series(hits, index=calls.index, name="response_cache_hit")
    has = calls["prompt_hash"].notna().to_numpy()
    rows = np.flatnonzero(has)
    code = np.zeros(len(rows), dtype=np.int64)
    for k in key:  # one integer code per distinct key tuple
        c, uniq = pd.factorize(calls[k].to_numpy()[rows], use_na_sentinel=False)
        code = pd.factorize(code * (len(uniq) + 1) + c)[0]
    ts = pd.to_datetime(calls["ts"]).astype("datetime64[ns]").astype("int64").to_numpy()[rows]
    ok = (
        (calls["status"].astype("object") == "ok").to_numpy()[rows]
        if "status" in calls.columns
        else np.ones(len(rows), bool)
    )
    repeated = np.bincount(code)[code] > 1  # a key seen once is a miss: no state to track
    sel = np.flatnonzero(repeated)
    order = sel[np.lexsort((ts[sel], code[sel]))]
    ks, tss, oks = code[order].tolist(), ts[order].tolist(), ok[order].tolist()
    hit_sorted = [False] * len(order)
    current, expires = -1, -1
    for i, (k, t, good) in enumerate(zip(ks, tss, oks, strict=True)):
        if k != current:
            current, expires = k, -1
        if t < expires:
            hit_sorted[i] = True
        elif good:
            expires = t + ttl_ns
    hits[rows[order]] = hit_sorted
    return pd.Series(hits, index=calls.index, name="response_cache_hit")


def response_cache_whatif(
    calls: pd.DataFrame,
    ttl: str | pd.Timedelta = "1h",
    by: Sequence[str] = (),
    key: Sequence[str] = ("model", "prompt_hash"),
) -> pd.DataFrame:
    """What an exact-match response cache with ``ttl`` would have saved: repeat requests, hits,
    hit rate, saved cost (the hits' recorded cost) and saved model latency."""
    by = _check_dims(calls, by)
    df, keys = _keyed(calls, by, None)
    df["_hit"] = response_cache_hits(calls, ttl, key).to_numpy()
    df["_hashed"] = df["prompt_hash"].notna() if "prompt_hash" in df.columns else False
    df["_cost"] = _col(df, "cost_usd")
    df["_saved"] = np.where(df["_hit"], df["_cost"], 0.0)
    df["_lat"] = np.where(df["_hit"], _col(df, "latency_ms"), 0.0)
    g = df.groupby(keys, sort=True, dropna=False)
    out = pd.DataFrame(
        {
            "requests": g.size(),
            "hashed_requests": g["_hashed"].sum(),
            "hits": g["_hit"].sum(),
            "cost_usd": g["_cost"].sum(),
            "saved_usd": g["_saved"].sum(),
            "saved_latency_s": g["_lat"].sum() / 1000.0,
        }
    ).reset_index()
    out["hit_rate"] = out["hits"] / out["requests"]
    out["saved_share"] = out["saved_usd"] / out["cost_usd"].replace(0, np.nan)
    out["ttl"] = str(pd.Timedelta(ttl))
    return out.drop(columns=["_all"], errors="ignore")


# ----------------------------------------------------------------------------- budgets
def default_budget_path() -> Path:
    """``lumina_analytics/defaults/budgets.yaml`` (or ``LUMINA_BUDGETS`` when set)."""
    env = os.environ.get("LUMINA_BUDGETS")
    if env:
        p = Path(env).expanduser()
        return p if p.is_absolute() else project_root() / p
    return Path(__file__).resolve().parent / "defaults" / "budgets.yaml"


def load_budgets(path: str | os.PathLike[str] | None = None) -> dict[str, float]:
    """Monthly budgets per tenant from YAML ``budgets: {tenant: monthly_usd}``."""
    p = Path(path) if path else default_budget_path()
    if not p.exists():
        raise ConfigError(
            f"budget file {p} not found; create it with `budgets: {{tenant: monthly_usd}}`"
        )
    try:
        doc = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"budget file {p} is not valid YAML: {exc}") from exc
    raw = doc.get("budgets") if isinstance(doc, dict) else None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"budget file {p} needs a top-level mapping `budgets: {{tenant: monthly_usd}}`"
        )
    out: dict[str, float] = {}
    for tenant, usd in raw.items():
        try:
            val = float(usd)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"budget file {p}: budget of tenant {tenant!r} is {usd!r}, not a number"
            ) from exc
        if val < 0:
            raise ConfigError(f"budget file {p}: budget of tenant {tenant!r} is negative")
        out[str(tenant)] = val
    return out


#: Forecasting-module members of the month-end projection: seasonal naive (last week),
#: the median weekly profile and the median of the last days. Fast (no model fit); pass
#: ``forecast_members=None`` to :func:`budget_status` for every member, Prophet included
#: (about a second per tenant).
BUDGET_MEMBERS: tuple[str, ...] = ("snaive_week", "profile_week", "profile_day")


def _forecast_remaining(
    daily: pd.DataFrame, horizon: int, level: float, members: Sequence[str] | None = BUDGET_MEMBERS
) -> pd.DataFrame | None:
    """Forecast daily spend ``horizon`` days ahead per ``unique_id`` with the forecasting module
    (:class:`~lumina_analytics.forecasting.ProphetForecaster` restricted to ``members``; None:
    all) and sum it; None when the module is unavailable or fails. Bounds are the sums of the
    daily bounds (conservative: it assumes the daily errors move together). The ``model``
    column names the members the inner backtest chose per tenant."""
    try:
        from lumina_analytics.forecasting import ProphetForecaster
    except ImportError:
        return None
    try:
        kw: dict[str, Any] = {} if members is None else {"members": tuple(members)}
        model = ProphetForecaster(freq="1D", horizon=horizon, level=level * 100, n_jobs=1, **kw)
        fc = model.fit_predict(daily)
    except Exception:  # the forecaster is optional here: fall back to the simple projection
        return None
    need = {"unique_id", "yhat", "yhat_lower", "yhat_upper"}
    if not isinstance(fc, pd.DataFrame) or fc.empty or not need <= set(fc.columns):
        return None
    fc = fc.copy()
    for c in ("yhat", "yhat_lower", "yhat_upper"):
        fc[c] = fc[c].clip(lower=0)
    out = fc.groupby("unique_id")[["yhat", "yhat_lower", "yhat_upper"]].sum()
    models = fc.groupby("unique_id")["model"].first() if "model" in fc.columns else None
    out["model"] = models.reindex(out.index) if models is not None else "forecast"
    return out


def budget_status(
    calls: pd.DataFrame,
    budgets: Mapping[str, float],
    as_of: str | pd.Timestamp | None = None,
    method: str = "auto",
    level: float = 0.8,
    history_days: int = 28,
    n_boot: int = 2000,
    seed: int = 0,
    forecast_members: Sequence[str] | None = BUDGET_MEMBERS,
) -> pd.DataFrame:
    """Month to date against budget per tenant, with a projected month end and interval.

    ``method``: ``forecast`` (the forecasting module's ProphetForecaster on daily spend with
    ``forecast_members``, default :data:`BUDGET_MEMBERS`, None for all members including
    Prophet; a tenant the module skips for too short a history falls back to simple),
    ``simple`` (the last ``history_days`` days of daily spend resampled for each remaining
    day: mean projection with a bootstrap ``level`` interval) or ``auto`` (forecast when the
    module is present and works, else simple). The ``method`` column says which was used.
    ``as_of`` defaults to the last call's day; the month is the calendar month of ``as_of``.
    """
    require = ["ts", "tenant"]
    missing = [c for c in require if c not in calls.columns]
    if missing:
        raise SchemaError(f"budget status needs columns {missing}")
    ts = pd.to_datetime(calls["ts"])
    end_day = (pd.Timestamp(as_of) if as_of is not None else ts.max()).floor("D")
    month_start = end_day.replace(day=1)
    month_end = month_start + pd.offsets.MonthBegin(1)
    remaining = int((month_end - end_day).days) - 1
    df = pd.DataFrame(
        {
            "day": ts.dt.floor("D"),
            "tenant": calls["tenant"].astype("object"),
            "cost": _col(calls, "cost_usd"),
        }
    )
    df = df[df["day"] <= end_day]
    first_day = ts.min().floor("D")
    hist_start = max(end_day - pd.Timedelta(days=history_days - 1), first_day)
    days = pd.date_range(min(hist_start, month_start), end_day, freq="D")
    tenants = sorted(set(budgets) | set(df["tenant"].dropna().unique()))
    grid = (
        df.groupby(["tenant", "day"])["cost"]
        .sum()
        .reindex(
            pd.MultiIndex.from_product([tenants, days], names=["tenant", "day"]), fill_value=0.0
        )
    )
    used = "simple"
    fc = None
    if method not in ("auto", "forecast", "simple"):
        raise ConfigError(f"unknown projection method {method!r}; use auto, forecast or simple")
    if method in ("auto", "forecast") and remaining > 0:
        long = grid.reset_index().rename(columns={"tenant": "unique_id", "day": "ds", "cost": "y"})
        long = long[long["ds"] >= hist_start]
        fc = _forecast_remaining(long, remaining, level, forecast_members)
        if fc is not None:
            used = "forecast"
        elif method == "forecast":
            raise ConfigError(
                "method='forecast' failed: lumina_analytics.forecasting is unavailable or could not fit; use 'auto' or 'simple'"
            )
    rng = np.random.default_rng(seed)
    rows = []
    for t in tenants:
        series = grid.loc[t]
        mtd = float(series[series.index >= month_start].sum())
        recent = series[series.index >= hist_start].to_numpy()
        if used == "forecast" and fc is not None and t in fc.index:
            f_row: dict[Any, Any] = fc.loc[t].to_dict()
            proj = mtd + float(f_row["yhat"])
            lo, hi = mtd + float(f_row["yhat_lower"]), mtd + float(f_row["yhat_upper"])
            how = f"forecast ({str(f_row['model']).removeprefix('auto(').removesuffix(')')})"
        else:
            mean = float(recent.mean()) if len(recent) else 0.0
            proj = mtd + mean * remaining
            if remaining > 0 and len(recent) > 1:
                sims = rng.choice(recent, size=(n_boot, remaining), replace=True).sum(axis=1)
                lo, hi = mtd + np.quantile(sims, [(1 - level) / 2, (1 + level) / 2])
            else:
                lo = hi = proj
            how = "simple (bootstrap of recent daily spend)"
        budget = budgets.get(t, math.nan)
        rows.append(
            {
                "tenant": t,
                "month": month_start.strftime("%Y-%m"),
                "as_of": end_day,
                "budget_usd": budget,
                "mtd_usd": mtd,
                "pct_used": mtd / budget if budget else math.nan,
                "projected_usd": proj,
                "projected_lower": float(lo),
                "projected_upper": float(hi),
                "projected_pct": proj / budget if budget else math.nan,
                "days_remaining": remaining,
                "method": how,
                "interval": f"{level:.0%}",
            }
        )
    out = pd.DataFrame(rows)

    def status(r: pd.Series) -> str:
        if not np.isfinite(r["budget_usd"]):
            return "no budget"
        if r["mtd_usd"] > r["budget_usd"]:
            return "over budget"
        if r["projected_lower"] > r["budget_usd"]:
            return "will exceed"
        if r["projected_upper"] > r["budget_usd"]:
            return "at risk"
        return "on track"

    out["status"] = out.apply(status, axis=1)
    return out


# ----------------------------------------------------------------------------- change attribution
def change_attribution(
    calls: pd.DataFrame,
    dims: Sequence[str] = ("tenant", "model", "agent"),
    period: str | pd.Timedelta = "7D",
    end: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Which values of each dimension explain the change in spend from the previous period to
    the current one (default week over week, ending at the day after the last call or ``end``).

    For every dimension the ``change`` column sums exactly to the total change; each change is
    split exactly into ``volume_effect`` (requests) and ``rate_effect`` (cost per request) with
    midpoint weights: Δcost = Δn·(r0+r1)/2 + Δr·(n0+n1)/2 (a new value is all volume).
    """
    dims = _check_dims(calls, dims)
    ts = pd.to_datetime(calls["ts"])
    width = pd.Timedelta(period)
    t_end = pd.Timestamp(end) if end is not None else ts.max().floor("D") + pd.Timedelta(days=1)
    cur = (ts >= t_end - width) & (ts < t_end)
    prev = (ts >= t_end - 2 * width) & (ts < t_end - width)
    cost = _col(calls, "cost_usd")
    total_prev, total_cur = float(cost[prev.to_numpy()].sum()), float(cost[cur.to_numpy()].sum())
    rows = []
    for d in dims:
        key = calls[d].astype("object").where(calls[d].notna(), "(none)")
        frame = pd.DataFrame(
            {"key": key, "cost": cost, "cur": cur.to_numpy(), "prev": prev.to_numpy()}
        )
        frame = frame[frame["cur"] | frame["prev"]]
        g = frame.groupby(["key", "cur"])["cost"].agg(["sum", "size"]).unstack("cur", fill_value=0)
        c0 = g[("sum", False)] if ("sum", False) in g.columns else pd.Series(0.0, index=g.index)
        c1 = g[("sum", True)] if ("sum", True) in g.columns else pd.Series(0.0, index=g.index)
        n0 = g[("size", False)] if ("size", False) in g.columns else pd.Series(0, index=g.index)
        n1 = g[("size", True)] if ("size", True) in g.columns else pd.Series(0, index=g.index)
        r0 = (c0 / n0.replace(0, np.nan)).astype(float)
        r1 = (c1 / n1.replace(0, np.nan)).astype(float)
        r0, r1 = r0.fillna(r1).fillna(0.0), r1.fillna(r0).fillna(0.0)
        change = c1 - c0
        vol = (n1 - n0) * (r0 + r1) / 2
        part = pd.DataFrame(
            {
                "dimension": d,
                "value": g.index.astype(str),
                "previous_usd": c0.to_numpy(),
                "current_usd": c1.to_numpy(),
                "change_usd": change.to_numpy(),
                "volume_effect_usd": vol.to_numpy(),
                "rate_effect_usd": (change - vol).to_numpy(),
                "previous_requests": n0.to_numpy(),
                "current_requests": n1.to_numpy(),
            }
        )
        rows.append(part)
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    total = total_cur - total_prev
    out["share_of_change"] = out["change_usd"] / total if total else np.nan
    out["abs_change"] = out["change_usd"].abs()
    out = out.sort_values(["dimension", "abs_change"], ascending=[True, False]).drop(
        columns="abs_change"
    )
    out.attrs.update(
        total_change_usd=total,
        previous_total_usd=total_prev,
        current_total_usd=total_cur,
        current_start=str(t_end - width),
        current_end=str(t_end),
    )
    return out.reset_index(drop=True)


# ----------------------------------------------------------------------------- audit
def audit(
    calls: pd.DataFrame, rtol: float = 0.02, atol: float = 1e-6, examples: int = 3
) -> pd.DataFrame:
    """Reconciliation audit: one row per finding (check, severity, rows, share, detail, examples).

    Checks: cache reads above input tokens, cache reads + writes above input, reasoning above
    output, negative tokens, missing usage on successful calls, unpriced models (per model),
    deprecated / OpenInference / mixed attribute names (``attr_style``), and recorded
    ``reported_cost_usd`` against computed ``cost_usd`` beyond ``rtol``/``atol``.
    """
    n = len(calls)
    rows: list[dict[str, Any]] = []
    ids = (
        calls["span_id"].astype(str)
        if "span_id" in calls.columns
        else pd.Series(calls.index.astype(str), index=calls.index)
    )
    ok = (
        (calls["status"].astype("object") == "ok")
        if "status" in calls.columns
        else pd.Series(True, index=calls.index)
    )

    def add(check: str, severity: str, mask: pd.Series, detail: str) -> None:
        k = int(mask.sum())
        if k:
            rows.append(
                {
                    "check": check,
                    "severity": severity,
                    "rows": k,
                    "share": k / n if n else math.nan,
                    "detail": detail,
                    "examples": ", ".join(ids[mask].head(examples)),
                }
            )

    def num(c: str) -> pd.Series:
        return (
            pd.to_numeric(calls[c], errors="coerce")
            if c in calls.columns
            else pd.Series(np.nan, index=calls.index)
        )

    inp, out, cr, cw, rs = (num(c) for c in (*_TOKEN_COLS, "reasoning_tokens"))
    add(
        "cache_read_exceeds_input",
        "error",
        cr > inp,
        "cache_read_tokens > input_tokens: input must include cache reads; the exporter probably reports uncached input only",
    )
    add(
        "cache_tokens_exceed_input",
        "warning",
        ((cr.fillna(0) + cw.fillna(0)) > inp) & ~(cr > inp),
        "cache reads + writes > input tokens",
    )
    add(
        "reasoning_exceeds_output",
        "error",
        rs > out,
        "reasoning_tokens > output_tokens: output must include reasoning",
    )
    add(
        "negative_tokens",
        "error",
        (inp < 0) | (out < 0) | (cr < 0) | (cw < 0),
        "negative token counts",
    )
    embeds = (
        calls["operation"].astype("object").eq("embeddings")
        if "operation" in calls.columns
        else pd.Series(False, index=calls.index)
    )
    add(
        "missing_usage",
        "warning",
        ok & (inp.isna() | (out.isna() & ~embeds)),
        "successful call without input/output token counts: cost cannot be computed",
    )
    if "cost_usd" in calls.columns:
        unpriced = calls["cost_usd"].isna() & inp.notna()
        if unpriced.any():
            keys = (
                calls.loc[unpriced, ["provider", "model"]].astype("object").fillna("(none)")
                if {"provider", "model"} <= set(calls.columns)
                else None
            )
            if keys is not None:
                unpriced_groups: dict[Any, Any] = keys.groupby(["provider", "model"]).groups
                for (p, m), idx in unpriced_groups.items():
                    mask = pd.Series(False, index=calls.index)
                    mask[idx] = True
                    add(
                        "unpriced_model",
                        "warning",
                        mask,
                        f"{p} / {m}: genai-prices has no price; add an override (LUMINA_PRICE_OVERRIDES)",
                    )
            else:
                add("unpriced_model", "warning", unpriced, "calls without a price")
    if "attr_style" in calls.columns:
        style = calls["attr_style"].astype("object")
        add(
            "mixed_attribute_names",
            "warning",
            style == "mixed",
            "a span mixes current and deprecated GenAI attribute names",
        )
        add(
            "deprecated_attribute_names",
            "info",
            style == "deprecated",
            "deprecated gen_ai.system / usage.prompt_tokens names",
        )
        add(
            "openinference_attribute_names",
            "info",
            style == "openinference",
            "OpenInference llm.* names",
        )
        if "service" in calls.columns:
            styled = pd.DataFrame(
                {"service": calls["service"].astype("object"), "style": style}
            ).dropna()
            counts = styled.groupby(["service", "style"]).size()
            majority = counts.groupby(level="service").idxmax().map(lambda k: k[1])
            multi = [
                str(s) for s, n in styled.groupby("service")["style"].nunique().items() if n > 1
            ]
            minority = (
                calls["service"].isin(multi)
                & style.notna()
                & (style != calls["service"].map(majority))
            )
            add(
                "service_mixes_styles",
                "warning",
                minority,
                f"services sending more than one attribute style (rows not in the service's usual style): {', '.join(multi[:5])}",
            )
    if "reported_cost_usd" in calls.columns and "cost_usd" in calls.columns:
        rep, comp = num("reported_cost_usd"), num("cost_usd")
        both = rep.notna() & comp.notna()
        diff = (rep - comp).abs()
        bad = both & (diff > np.maximum(atol, rtol * comp.abs()))
        total_gap = float((rep - comp)[bad].sum())
        add(
            "reported_cost_mismatch",
            "warning",
            bad,
            f"reported cost differs from computed by more than {rtol:.0%} (net reported - computed ${total_gap:,.4f})",
        )
        add(
            "reported_cost_unpriced",
            "info",
            rep.notna() & comp.isna(),
            "telemetry carried a cost but the model could not be priced",
        )
    cols = ["check", "severity", "rows", "share", "detail", "examples"]
    res = pd.DataFrame(rows, columns=cols)
    sev = {"error": 0, "warning": 1, "info": 2}
    return res.sort_values(
        ["severity", "rows"], key=lambda s: s.map(sev) if s.name == "severity" else -s
    ).reset_index(drop=True)


# ----------------------------------------------------------------------------- what-if and Pareto
def _observed(calls: pd.DataFrame) -> dict[str, float]:
    ok = (
        calls["status"].astype("object").eq("ok")
        if "status" in calls.columns
        else pd.Series(True, index=calls.index)
    )
    lat = (
        pd.to_numeric(calls.loc[ok, "latency_ms"], errors="coerce")
        if "latency_ms" in calls.columns
        else pd.Series(dtype=float)
    )
    return {
        "observed_requests": float(len(calls)),
        "observed_latency_p50": float(lat.median()) if lat.notna().any() else math.nan,
        "observed_latency_p95": float(lat.quantile(0.95)) if lat.notna().any() else math.nan,
        "observed_error_rate": float(1 - ok.mean()) if len(calls) else math.nan,
    }


def whatif(
    calls: pd.DataFrame,
    alternatives: Sequence[tuple[str, str]],
    by: Sequence[str] = (),
    batch_discount: float = 0.0,
    keep_cache: bool = True,
    observed: pd.DataFrame | None = None,
    price_fn: PriceFn | None = None,
) -> pd.DataFrame:
    """Replay recorded usage under other ``(provider, model)`` alternatives and their prices
    (tiers, cache discounts; ``batch_discount`` for a batch API; ``keep_cache=False`` drops
    cache discounts) and show the saving next to the latency and error rate observed for
    that alternative in ``observed`` (default: the same calls; dated response-model names
    are merged into the request name first, see :func:`providers.merge_model_versions`).

    Current cost uses the same price function on the recorded provider/model, so the
    comparison is like for like; ``unpriced_requests`` counts calls either side could not price.
    """
    from lumina_analytics.providers import merge_model_versions

    by = _check_dims(calls, by)
    obs = merge_model_versions(calls if observed is None else observed)
    df, keys = _keyed(calls, by, None)
    current = price_usage(df, ignore_cache=not keep_cache, price_fn=price_fn)
    rows = []
    for provider, model in alternatives:
        alt = price_usage(
            df,
            provider,
            model,
            ignore_cache=not keep_cache,
            batch_discount=batch_discount,
            price_fn=price_fn,
        )
        both = current.notna() & alt.notna()
        tmp = pd.DataFrame({"cur": current.where(both), "alt": alt.where(both), "unpriced": ~both})
        for c in keys:
            tmp[c] = df[c].to_numpy()
        g = tmp.groupby(keys, sort=True)
        part = pd.DataFrame(
            {
                "requests": g.size(),
                "current_cost_usd": g["cur"].sum(),
                "whatif_cost_usd": g["alt"].sum(),
                "unpriced_requests": g["unpriced"].sum(),
            }
        ).reset_index()
        part.insert(0, "alt_model", model)
        part.insert(0, "alt_provider", provider)
        mask = pd.Series(True, index=obs.index)
        if "provider" in obs.columns:
            mask &= obs["provider"].astype("object") == provider
        if "model" in obs.columns:
            mask &= obs["model"].astype("object") == model
        for k, v in _observed(obs[mask]).items():
            part[k] = v
        rows.append(part)
    out = pd.concat(rows, ignore_index=True)
    out["saving_usd"] = out["current_cost_usd"] - out["whatif_cost_usd"]
    out["saving_pct"] = out["saving_usd"] / out["current_cost_usd"].replace(0, np.nan)
    out["batch_discount"] = batch_discount
    return out.drop(columns=["_all"], errors="ignore")


def whatif_rollup(table: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Re-aggregate a :func:`whatif` table to coarser ``by`` columns (default: one row per
    alternative) without re-pricing: request and cost columns are summed, the observed
    latency and error columns (one value per alternative) kept, the saving recomputed."""
    keys = ["alt_provider", "alt_model", *by]
    missing = [c for c in keys if c not in table.columns]
    if missing:
        raise SchemaError(
            f"cannot roll a what-if table up by {missing}: it has {list(table.columns)}"
        )
    added = ["requests", "current_cost_usd", "whatif_cost_usd", "unpriced_requests"]
    kept = [c for c in table.columns if c.startswith("observed_")] + ["batch_discount"]
    g = table.groupby(keys, sort=False)
    out = pd.concat([g[added].sum(), g[kept].first()], axis=1).reset_index()
    out["saving_usd"] = out["current_cost_usd"] - out["whatif_cost_usd"]
    out["saving_pct"] = out["saving_usd"] / out["current_cost_usd"].replace(0, np.nan)
    order = [c for c in table.columns if c in out.columns]
    return out[order]


def pareto_frontier(
    calls: pd.DataFrame,
    by: Sequence[str] = ("operation",),
    option: Sequence[str] = ("provider", "model"),
    latency: str = "latency_p50",
) -> pd.DataFrame:
    """Cost per request against latency for every option (default provider/model) within each
    group (default operation); ``on_frontier`` marks the options no other option beats on both
    (lower or equal cost and latency, one strictly lower)."""
    from lumina_analytics.providers import merge_model_versions

    by, option = _check_dims(calls, by), _check_dims(calls, option)
    if "model" in option:
        calls = merge_model_versions(calls)
    q = {"latency_p50": 0.5, "latency_p95": 0.95, "latency_p99": 0.99}.get(latency)
    if q is None:
        raise SchemaError(
            f"latency must be latency_p50, latency_p95 or latency_p99, not {latency!r}"
        )
    df, keys = _keyed(calls, [*by, *option], None)
    df["_ok"] = df["status"].astype("object").eq("ok") if "status" in df.columns else True
    df["_lat"] = _col(df, "latency_ms", np.nan)
    df["_lat"] = df["_lat"].where(df["_ok"])
    df["_cost"] = _col(df, "cost_usd", np.nan)
    g = df.groupby(keys, sort=True)
    out = pd.DataFrame(
        {
            "requests": g.size(),
            "cost_per_request": g["_cost"].mean(),
            latency: g["_lat"].quantile(q),
            "error_rate": 1 - g["_ok"].mean(),
        }
    ).reset_index()
    flags = np.zeros(len(out), dtype=bool)
    groups = out.groupby(list(by), sort=False).indices if by else {"all": np.arange(len(out))}
    for idx in groups.values():
        c = out["cost_per_request"].to_numpy()[idx]
        lat = out[latency].to_numpy()[idx]
        for j in range(len(idx)):
            if not (np.isfinite(c[j]) and np.isfinite(lat[j])):
                continue
            dominated = ((c <= c[j]) & (lat <= lat[j]) & ((c < c[j]) | (lat < lat[j]))).any()
            flags[idx[j]] = not dominated
    out["on_frontier"] = flags
    return out


@dataclass
class CostReport:
    """Small bundle for the CLI: spend total, top drivers, unit economics, audit."""

    total_usd: float
    requests: int
    unpriced_requests: int
    top: pd.DataFrame
    unit: pd.DataFrame
    findings: pd.DataFrame


def summarize(calls: pd.DataFrame, by: str = "tenant", top: int = 10) -> CostReport:
    """Total spend, the top ``by`` values, overall unit economics and audit findings."""
    s = spend(calls, by=[by]) if by else spend(calls)
    cost = _col(calls, "cost_usd", np.nan)
    return CostReport(
        total_usd=float(np.nansum(cost)),
        requests=len(calls),
        unpriced_requests=int(np.isnan(cost).sum()),
        top=s.head(top),
        unit=unit_economics(calls),
        findings=audit(calls),
    )
