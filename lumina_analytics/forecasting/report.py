"""Report helpers for the forecasting notebook: charts, warehouse-backed plans, persistence.

These glue :mod:`lumina_analytics.series` (loading), the forecaster and
:mod:`lumina_analytics.capacity` so the notebook body stays a few calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import altair as alt
import pandas as pd

from lumina_analytics import capacity, charts, costs
from lumina_analytics.forecasting.model import ProphetForecaster
from lumina_analytics.series import data_extent, freq_to_timedelta, load_series
from lumina_analytics.warehouse import Warehouse, append_frame

__all__ = [
    "CapacityPlan",
    "forecast_chart",
    "plan_capacity",
    "resolve_window",
    "runway_report",
    "save_forecasts",
]


def resolve_window(
    freq: str,
    cutoff: str | None = None,
    history_days: int | None = None,
    warehouse: Warehouse | str | None = None,
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``(history_start, cutoff)`` from parameters, derived from the data when ``None``.

    The default cutoff is the end of the last complete ``freq`` bucket of ``llm_calls``
    (a bucket counts as complete when the data reach its last tenth).
    """
    lo, hi = data_extent("llm_calls", warehouse)
    if lo is None or hi is None:
        from lumina_analytics.errors import WarehouseError

        raise WarehouseError("llm_calls is empty; load telemetry or run lumina-analytics demo")
    width = freq_to_timedelta(freq)
    if cutoff is None:
        up = hi.ceil(width)
        if up == hi:  # the last event opens a new bucket: leave that bucket out
            cut = hi
        elif up - hi <= width / 10:
            cut = up
        else:
            cut = hi.floor(width)
    else:
        cut = pd.Timestamp(cutoff)
    start = lo.floor(width)
    if history_days is not None:
        start = max(start, cut - pd.Timedelta(days=history_days))
    return start, cut


def forecast_chart(
    history: pd.DataFrame, forecast: pd.DataFrame, title: str = "", y_title: str = "y"
) -> alt.LayerChart | alt.FacetChart:
    """History lines with the forecast line and its interval band, one colour per series."""
    hist = history.assign(kind="history")
    fc = forecast.rename(columns={"yhat": "y"}).assign(kind="forecast")
    lines = charts.line(
        pd.concat([hist[["unique_id", "ds", "y", "kind"]], fc[["unique_id", "ds", "y", "kind"]]]),
        title=title,
        y_title=y_title,
    ).encode(strokeDash=alt.StrokeDash("kind:N", title=None))
    band = charts.band(forecast, color="unique_id")
    return alt.layer(band, lines)


@dataclass
class CapacityPlan:
    """Quota breaches, replica plan and the peak-demand forecasts behind them."""

    quotas: pd.DataFrame
    replicas: pd.DataFrame
    peak_rpm: pd.DataFrame  # forecast per provider/model
    peak_tpm: pd.DataFrame
    total_rpm_history: pd.DataFrame
    total_rpm_forecast: pd.DataFrame


def plan_capacity(
    cutoff: pd.Timestamp,
    history_start: pd.Timestamp,
    horizon_hours: int = 72,
    warehouse: Warehouse | str | None = None,
    quotas_path: str | Path | None = None,
    level: float = 80.0,
    threshold: float = 0.5,
    n_jobs: int = 1,
    n_folds: int | None = 1,
) -> CapacityPlan:
    """Forecast hourly peak-minute demand per provider/model and for the whole platform.

    Returns per-quota breach dates/probabilities and the hourly replica plan for the total.
    ``n_folds`` inner backtest windows of ``horizon_hours`` choose each series' members
    (1 keeps the many quota series cheap; ``None``: the forecaster's default).
    """
    quotas = capacity.load_quotas(quotas_path)
    rep_cfg = capacity.load_replica_config(quotas_path)
    est = ProphetForecaster(
        freq="1h", horizon=horizon_hours, level=level, n_jobs=n_jobs, n_folds=n_folds
    )
    tables, fcs = [], {}
    for kind, metric in (("rpm", "peak_rpm"), ("tpm", "peak_tpm")):
        hist = load_series(
            metric,
            by=["provider", "model"],
            freq="1h",
            start=history_start,
            end=cutoff,
            warehouse=warehouse,
        )
        hist = hist[hist["unique_id"].isin(quotas["unique_id"])]
        fc = est.fit(hist).predict() if len(hist) else hist.iloc[0:0]
        fcs[kind] = fc
        tables.append(capacity.quota_breaches(hist, fc, quotas, kind, level, threshold))
    total = load_series("peak_rpm", freq="1h", start=history_start, end=cutoff, warehouse=warehouse)
    total_fc = est.fit(total).predict()
    plan = capacity.replica_plan(
        total_fc,
        rep_cfg["capacity_rpm_per_replica"],
        rep_cfg["target_utilization"],
        int(rep_cfg["min_replicas"]),
    )
    return CapacityPlan(
        quotas=pd.concat(tables, ignore_index=True),
        replicas=plan,
        peak_rpm=fcs["rpm"],
        peak_tpm=fcs["tpm"],
        total_rpm_history=total,
        total_rpm_forecast=total_fc,
    )


def runway_report(
    cutoff: pd.Timestamp,
    warehouse: Warehouse | str | None = None,
    budgets_path: str | Path | None = None,
    level: float = 80.0,
    history_start: pd.Timestamp | None = None,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Month-end spend per tenant with an interval and P(over budget), as of ``cutoff``'s day.

    Budgets come from :func:`lumina_analytics.costs.load_budgets` (``budgets_path`` or the
    default file); ``n_jobs`` worker processes fit the tenants' daily spend.
    """
    as_of = pd.Timestamp(cutoff).normalize()
    month_start = (as_of - pd.Timedelta("1D")).replace(day=1)
    start = min(month_start, as_of - pd.Timedelta("28D"))
    first, _ = data_extent("llm_calls", warehouse)
    floor = history_start if history_start is not None else first
    if floor is not None:
        start = max(start, pd.Timestamp(floor).normalize())
    daily = load_series(
        "cost_usd", by=["tenant"], freq="1D", start=start, end=as_of, warehouse=warehouse
    )
    est = ProphetForecaster(freq="1D", level=level, min_points=14, n_folds=1)
    return capacity.spend_runway(
        daily,
        costs.load_budgets(budgets_path),
        as_of=as_of,
        level=level,
        forecaster=est.set_params(n_jobs=n_jobs),
    )


def save_forecasts(
    forecast: pd.DataFrame,
    cutoff: pd.Timestamp,
    metric: str,
    warehouse: Warehouse | str | None = None,
) -> int:
    """Append a forecast to the ``forecasts`` table (idempotent); returns rows inserted."""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    frame = forecast[["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper", "model"]].copy()
    frame["cutoff"] = pd.Timestamp(cutoff)
    frame["metric"] = metric
    frame["created_at"] = datetime.now(UTC).replace(tzinfo=None)
    with wh.writer(wait_s=30) as con:
        return append_frame(con, "forecasts", frame)
