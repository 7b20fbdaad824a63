"""Residual analysis: where the data departs most from a robust trend + seasonality fit."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lumina_analytics.forecasting.model import quiet_prophet
from lumina_analytics.schema import validate_long

logging.getLogger("prophet.plot").disabled = True
logging.getLogger("cmdstanpy").disabled = True

from prophet import Prophet  # noqa: E402

__all__ = ["ResidualReport", "residual_analysis"]


@dataclass
class ResidualReport:
    """In-sample fit, standardized residuals, the largest of them, and the trend per series."""

    residuals: pd.DataFrame  # unique_id, ds, y, yhat, resid, z
    top: pd.DataFrame  # the ``top`` largest |z| per series, largest first
    trend: pd.DataFrame  # unique_id, start, end, trend_start, trend_end, growth_per_day, growth_pct

    def _repr_html_(self) -> str:
        return str(self.top.to_html(index=False)) + str(self.trend.to_html(index=False))


def residual_analysis(
    df: pd.DataFrame,
    top: int = 10,
    daily: bool = True,
    weekly: bool | None = None,
    changepoint_prior_scale: float = 0.01,
) -> ResidualReport:
    """Fit a stiff-trend Prophet per series and rank standardized residuals.

    Residuals are scaled by a robust sigma (1.4826 x median absolute deviation), so a
    surge stands out as a large positive ``z`` instead of inflating the scale. A small
    ``changepoint_prior_scale`` keeps the trend from bending into short surges; the trend
    table reports its total change over the history (``growth_pct``) and per day.
    """
    data = validate_long(df)
    res_parts, top_parts, trend_rows = [], [], []
    for uid, g in data.groupby("unique_id", sort=True):
        g = g.dropna(subset=["y"])
        if len(g) < 3:
            continue
        span = g["ds"].iloc[-1] - g["ds"].iloc[0]
        step = pd.Timedelta(g["ds"].diff().median())
        m = Prophet(
            changepoint_prior_scale=changepoint_prior_scale,
            daily_seasonality=bool(
                daily and step < pd.Timedelta("1D") and span >= pd.Timedelta("2D")
            ),
            weekly_seasonality=bool(span >= pd.Timedelta("14D") if weekly is None else weekly),
            yearly_seasonality=False,
            uncertainty_samples=0,
        )
        with quiet_prophet():
            m.fit(g[["ds", "y"]])
            p = m.predict(g[["ds"]])
        resid = g["y"].to_numpy() - p["yhat"].to_numpy()
        med = np.median(resid)
        sigma = 1.4826 * np.median(np.abs(resid - med))
        if not np.isfinite(sigma) or sigma == 0:
            sigma = float(np.std(resid)) or 1.0
        r = pd.DataFrame(
            {
                "unique_id": uid,
                "ds": g["ds"].to_numpy(),
                "y": g["y"].to_numpy(),
                "yhat": p["yhat"].to_numpy(),
                "resid": resid,
                "z": (resid - med) / sigma,
            }
        )
        res_parts.append(r)
        top_parts.append(r.reindex(r["z"].abs().sort_values(ascending=False).index).head(top))
        t0, t1 = float(p["trend"].iloc[0]), float(p["trend"].iloc[-1])
        days = max(span / pd.Timedelta("1D"), 1e-9)
        trend_rows.append(
            {
                "unique_id": uid,
                "start": g["ds"].iloc[0],
                "end": g["ds"].iloc[-1],
                "trend_start": t0,
                "trend_end": t1,
                "growth_per_day": (t1 - t0) / days,
                "growth_pct": (t1 / t0 - 1) * 100 if t0 else float("nan"),
            }
        )
    empty = pd.DataFrame(columns=["unique_id", "ds", "y", "yhat", "resid", "z"])
    return ResidualReport(
        residuals=pd.concat(res_parts, ignore_index=True) if res_parts else empty,
        top=pd.concat(top_parts, ignore_index=True) if top_parts else empty,
        trend=pd.DataFrame(trend_rows),
    )
