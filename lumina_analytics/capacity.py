"""Capacity planning from forecasts: provider quota breaches, replica plans, spend runway.

All functions take long frames (history ``unique_id, ds, y`` and forecasts ``unique_id, ds,
yhat, yhat_lower, yhat_upper``) and return DataFrames. Probabilities come from the forecast
distribution, approximated as a normal whose spread on each side is read off the interval
(``sigma_up = (yhat_upper - yhat) / z``), so skewed intervals give skewed tail probabilities.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import yaml
from scipy.stats import norm

from lumina_analytics.errors import ConfigError, SchemaError
from lumina_analytics.forecasting.model import ProphetForecaster
from lumina_analytics.schema import require_columns, validate_long

__all__ = [
    "DEFAULT_QUOTAS",
    "exceedance_probability",
    "load_quotas",
    "load_replica_config",
    "quota_breaches",
    "replica_chart",
    "replica_plan",
    "spend_runway",
]

DEFAULT_QUOTAS = Path(__file__).resolve().parent / "defaults" / "quotas.yaml"


def _read_yaml(path: str | Path | None, default: Path) -> dict[str, Any]:
    p = Path(path) if path else default
    if not p.exists():
        raise ConfigError(f"configuration file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p} must hold a mapping at the top level")
    return data


def load_quotas(path: str | Path | None = None) -> pd.DataFrame:
    """Quotas as ``provider, model, unique_id, rpm, tpm`` (default: ``defaults/quotas.yaml``)."""
    data = _read_yaml(path, DEFAULT_QUOTAS)
    rows = data.get("quotas") or []
    if not isinstance(rows, list):
        raise ConfigError("quotas must be a list of {provider, model, rpm, tpm}")
    out = []
    for i, q in enumerate(rows):
        if not isinstance(q, dict) or "provider" not in q or "model" not in q:
            raise ConfigError(f"quota #{i + 1} needs provider and model keys: {q!r}")
        out.append(
            {
                "provider": str(q["provider"]),
                "model": str(q["model"]),
                "unique_id": f"{q['provider']}/{q['model']}",
                "rpm": float(q["rpm"]) if q.get("rpm") is not None else np.nan,
                "tpm": float(q["tpm"]) if q.get("tpm") is not None else np.nan,
            }
        )
    return pd.DataFrame(out, columns=["provider", "model", "unique_id", "rpm", "tpm"])


def load_replica_config(path: str | Path | None = None) -> dict[str, float]:
    """``capacity_rpm_per_replica``, ``target_utilization``, ``min_replicas`` from quotas.yaml."""
    data = _read_yaml(path, DEFAULT_QUOTAS).get("replicas") or {}
    try:
        return {
            "capacity_rpm_per_replica": float(data.get("capacity_rpm_per_replica", 60)),
            "target_utilization": float(data.get("target_utilization", 0.7)),
            "min_replicas": float(data.get("min_replicas", 1)),
        }
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"replicas settings must be numbers: {exc}") from exc


def exceedance_probability(
    yhat: np.ndarray, lower: np.ndarray, upper: np.ndarray, limit: float, level: float = 80.0
) -> np.ndarray:
    """P(y > limit) per step from point forecasts and a ``level`` % central interval."""
    z = float(norm.ppf(0.5 + level / 200.0))
    yhat, lower, upper = (np.asarray(a, float) for a in (yhat, lower, upper))
    above = limit >= yhat
    sigma = np.where(above, (upper - yhat) / z, (yhat - lower) / z)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = norm.sf((limit - yhat) / sigma)
    step = np.where(yhat > limit, 1.0, 0.0)
    return np.where(sigma > 0, p, step)


def quota_breaches(
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    quotas: pd.DataFrame,
    kind: str = "rpm",
    level: float = 80.0,
    threshold: float = 0.5,
) -> pd.DataFrame:
    """Per quota: headroom today and the first forecast day likely (P >= threshold) to exceed it.

    ``history``/``forecast`` hold the peak-minute demand (``peak_rpm`` or ``peak_tpm``) per
    ``unique_id = provider/model``. "Today" is the last day of history.
    """
    if kind not in ("rpm", "tpm"):
        raise SchemaError("kind must be 'rpm' or 'tpm'")
    require_columns(quotas, ["unique_id", kind], "quotas")
    require_columns(forecast, ["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper"], "forecast")
    hist = validate_long(history)
    rows = []
    for q in quotas.itertuples(index=False):
        limit = float(getattr(q, kind))
        if not np.isfinite(limit):
            continue
        uid = str(q.unique_id)
        h = hist[hist["unique_id"] == uid].dropna(subset=["y"])
        f = forecast[forecast["unique_id"] == uid].sort_values("ds")
        row: dict[str, Any] = {"unique_id": uid, "limit_type": kind, "limit": limit}
        if h.empty:
            row.update(peak_today=np.nan, headroom_today=np.nan, headroom_pct=np.nan)
        else:
            today = h["ds"].max().normalize()
            peak = float(h.loc[h["ds"] >= today, "y"].max())
            row.update(
                peak_today=peak, headroom_today=limit - peak, headroom_pct=100 * (1 - peak / limit)
            )
        if f.empty:
            row.update(
                forecast_peak=np.nan,
                max_probability=np.nan,
                first_breach_date=pd.NaT,
                breach_probability=np.nan,
            )
        else:
            p = exceedance_probability(
                f["yhat"].to_numpy(),
                f["yhat_lower"].to_numpy(),
                f["yhat_upper"].to_numpy(),
                limit,
                level,
            )
            daily = pd.Series(p, index=pd.DatetimeIndex(f["ds"]).normalize()).groupby(level=0).max()
            hit = daily[daily >= threshold]
            row.update(
                forecast_peak=float(f["yhat"].max()),
                max_probability=float(daily.max()),
                first_breach_date=hit.index[0] if len(hit) else pd.NaT,
                breach_probability=float(hit.iloc[0]) if len(hit) else np.nan,
            )
        rows.append(row)
    cols = [
        "unique_id",
        "limit_type",
        "limit",
        "peak_today",
        "headroom_today",
        "headroom_pct",
        "forecast_peak",
        "max_probability",
        "first_breach_date",
        "breach_probability",
    ]
    return pd.DataFrame(rows, columns=cols)


def replica_plan(
    forecast: pd.DataFrame,
    capacity_per_replica: float,
    target_utilization: float = 0.7,
    min_replicas: int = 1,
    bucket: str = "1h",
) -> pd.DataFrame:
    """Replicas needed per hour: ``ceil(load / (capacity x target_utilization))``.

    ``forecast`` is load in the same unit as ``capacity_per_replica`` (e.g. peak requests
    per minute). ``replicas`` plans for the upper interval bound, ``replicas_expected`` for
    the point forecast.
    """
    if capacity_per_replica <= 0 or not 0 < target_utilization <= 1:
        raise ConfigError("capacity_per_replica must be > 0 and target_utilization in (0, 1]")
    require_columns(forecast, ["unique_id", "ds", "yhat", "yhat_upper"], "forecast")
    f = forecast.copy()
    f["ds"] = pd.to_datetime(f["ds"]).dt.floor(bucket)
    g = (
        f.groupby(["unique_id", "ds"], sort=True)
        .agg(load=("yhat", "max"), load_upper=("yhat_upper", "max"))
        .reset_index()
    )
    per = capacity_per_replica * target_utilization
    g["replicas_expected"] = np.maximum(np.ceil(g["load"] / per), min_replicas).astype(int)
    g["replicas"] = np.maximum(np.ceil(g["load_upper"] / per), min_replicas).astype(int)
    g["utilization_at_plan"] = g["load"] / (g["replicas"] * capacity_per_replica)
    return g


def replica_chart(plan: pd.DataFrame, title: str = "Replicas needed per hour") -> alt.Chart:
    """Step chart of planned replicas (upper bound) and expected replicas per series."""
    long = plan.melt(
        id_vars=["unique_id", "ds"],
        value_vars=["replicas", "replicas_expected"],
        var_name="plan",
        value_name="count",
    )
    return (
        alt.Chart(long, title=title)
        .mark_line(interpolate="step-after")
        .encode(
            x=alt.X("ds:T", title=None),
            y=alt.Y("count:Q", title="replicas"),
            color=alt.Color("unique_id:N", title=None),
            strokeDash=alt.StrokeDash("plan:N", title=None),
            tooltip=["unique_id", "ds:T", "plan", "count"],
        )
    )


def spend_runway(
    daily_cost: pd.DataFrame,
    budgets: Mapping[str, float] | pd.DataFrame,
    as_of: str | pd.Timestamp | None = None,
    level: float = 80.0,
    forecaster: ProphetForecaster | None = None,
) -> pd.DataFrame:
    """Month-end spend per tenant with an interval, and P(spend > budget).

    ``daily_cost`` is long daily spend (``unique_id`` = tenant). ``as_of`` is the first day
    not yet observed (default: the day after the last one in the data); the month is the
    month of the last observed day. The remaining days are forecast; their uncertainty is
    added assuming fully correlated daily errors (conservative: wider than independent).
    The default forecaster chooses its members on one inner window of at least a week (a
    month of daily points holds few more). ``budgets`` maps tenant to monthly budget, as
    :func:`lumina_analytics.costs.load_budgets` returns (a frame with ``tenant, budget``
    columns works too); tenants without one get NaN.
    """
    data = validate_long(daily_cost)
    if data.empty:
        raise SchemaError("spend_runway needs daily cost history")
    cut = (
        pd.Timestamp(as_of)
        if as_of is not None
        else data["ds"].max().normalize() + pd.Timedelta("1D")
    )
    last_day = cut - pd.Timedelta("1D")
    month_start = last_day.replace(day=1)
    month_end = month_start + pd.Timedelta(
        days=calendar.monthrange(last_day.year, last_day.month)[1]
    )
    remaining = int((month_end - cut) / pd.Timedelta("1D"))
    hist = data[data["ds"] < cut]
    z = float(norm.ppf(0.5 + level / 200.0))
    fc = pd.DataFrame(columns=["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper"])
    if remaining > 0:
        est = forecaster or ProphetForecaster(freq="1D", level=level, min_points=14, n_folds=1)
        # inner backtest windows are one horizon long: at least a week, even on the last day
        est.set_params(freq="1D", horizon=max(remaining, 7), level=level)
        fc = est.fit(hist).predict(remaining)
        skipped = set(est.skipped_["unique_id"])
        if skipped:  # too little history: flat mean of the last 7 days, +-2 sd
            fc = pd.concat(
                [fc, _flat_forecast(hist[hist["unique_id"].isin(skipped)], remaining, z)]
            )
    bud = _budget_map(budgets)
    rows = []
    for uid, g in hist.groupby("unique_id", sort=True):
        spent = float(g.loc[g["ds"] >= month_start, "y"].sum())
        f = fc[fc["unique_id"] == uid]
        mean_rem = float(f["yhat"].sum())
        up = float((f["yhat_upper"] - f["yhat"]).sum())
        lo = float((f["yhat"] - f["yhat_lower"]).sum())
        budget = float(bud.get(str(uid), np.nan))
        total = spent + mean_rem
        if not np.isfinite(budget):
            p = np.nan
        elif budget >= total:
            p = float(norm.sf((budget - total) / (up / z))) if up > 0 else 0.0
        else:
            p = float(norm.cdf((total - budget) / (lo / z))) if lo > 0 else 1.0
        rows.append(
            {
                "tenant": uid,
                "month": month_start.strftime("%Y-%m"),
                "spent_to_date": spent,
                "days_remaining": remaining,
                "forecast_remaining": mean_rem,
                "month_end": total,
                "month_end_lower": spent + mean_rem - lo,
                "month_end_upper": spent + mean_rem + up,
                "budget": budget,
                "p_exceed_budget": p,
                "budget_used_pct": 100 * total / budget
                if np.isfinite(budget) and budget
                else np.nan,
            }
        )
    return pd.DataFrame(rows)


def _budget_map(budgets: Mapping[str, float] | pd.DataFrame) -> dict[str, float]:
    """Tenant -> budget from a ``costs.load_budgets`` mapping or a ``tenant, budget`` frame."""
    if isinstance(budgets, pd.DataFrame):
        require_columns(budgets, ["tenant", "budget"], "budgets")
        return {str(t): float(b) for t, b in zip(budgets["tenant"], budgets["budget"], strict=True)}
    return {str(t): float(b) for t, b in budgets.items()}


def _flat_forecast(hist: pd.DataFrame, horizon: int, z: float) -> pd.DataFrame:
    parts = []
    for uid, g in hist.groupby("unique_id"):
        tail = g["y"].dropna().tail(7)
        mean = float(tail.mean()) if len(tail) else 0.0
        sd = float(tail.std()) if len(tail) > 1 else 0.0
        sd = 0.0 if math.isnan(sd) else sd
        ds = pd.date_range(g["ds"].max() + pd.Timedelta("1D"), periods=horizon, freq="1D")
        parts.append(
            pd.DataFrame(
                {
                    "unique_id": uid,
                    "ds": ds,
                    "yhat": mean,
                    "yhat_lower": max(mean - z * sd, 0.0),
                    "yhat_upper": mean + z * sd,
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
