"""Rolling-origin backtests, always next to seasonal-naive baselines (one day, one week)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone

from lumina_analytics.errors import SchemaError
from lumina_analytics.forecasting.metrics import (
    coverage,
    mae,
    mase,
    season_steps,
    seasonal_naive,
    smape,
)
from lumina_analytics.forecasting.model import ProphetForecaster, _empty_forecast, quiet_prophet
from lumina_analytics.schema import validate_long

logging.getLogger("cmdstanpy").disabled = True

__all__ = [
    "BacktestResult",
    "backtest",
    "baseline_forecast",
    "hindsight_combination",
    "mase_season",
    "prophet_default_forecast",
    "score_forecast",
]

ForecastFn = Callable[[pd.DataFrame], pd.DataFrame]


def mase_season(freq: pd.Timedelta) -> int:
    """Season used to scale MASE: one day of steps, or one week for daily (or coarser) data."""
    if freq >= pd.Timedelta("1D"):
        return season_steps(freq, "7D")
    return season_steps(freq, "1D")


def baseline_forecast(
    df: pd.DataFrame, horizon: int, freq: str, season: str = "1D", level: float = 80.0
) -> pd.DataFrame:
    """Seasonal-naive forecast (repeat the last ``season``) with empirical intervals.

    Intervals are quantiles of the in-sample seasonal differences ``y[t] - y[t - m]``.
    The model is named ``snaive_day`` / ``snaive_week`` (or ``snaive_<season>``).
    """
    from lumina_analytics.series import freq_to_timedelta

    td = freq_to_timedelta(freq)
    m = season_steps(td, season)
    name = {"1D": "snaive_day", "7D": "snaive_week"}.get(season, f"snaive_{season}")
    data = validate_long(df)
    alpha = (1 - level / 100) / 2
    parts = []
    for uid, g in data.groupby("unique_id", sort=True):
        y = g["y"].to_numpy(float)
        yhat = seasonal_naive(y, horizon, m)
        d = y[m:] - y[:-m] if len(y) > m else np.array([])
        d = d[np.isfinite(d)]
        lo, hi = (np.quantile(d, alpha), np.quantile(d, 1 - alpha)) if d.size else (0.0, 0.0)
        ds = pd.date_range(g["ds"].iloc[-1] + td, periods=horizon, freq=td)
        parts.append(
            pd.DataFrame(
                {
                    "unique_id": uid,
                    "ds": ds,
                    "yhat": yhat,
                    "yhat_lower": yhat + min(lo, 0.0),
                    "yhat_upper": yhat + max(hi, 0.0),
                    "model": name,
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else _empty_forecast()


def prophet_default_forecast(
    df: pd.DataFrame, horizon: int, freq: str, level: float = 80.0
) -> pd.DataFrame:
    """Prophet with its default settings (only ``interval_width`` set), one model per series."""
    from prophet import Prophet

    from lumina_analytics.series import freq_to_timedelta

    td = freq_to_timedelta(freq)
    data = validate_long(df)
    parts = []
    for uid, g in data.groupby("unique_id", sort=True):
        fut = pd.DataFrame({"ds": pd.date_range(g["ds"].iloc[-1] + td, periods=horizon, freq=td)})
        with quiet_prophet():
            model = Prophet(interval_width=level / 100)
            model.fit(g[["ds", "y"]].dropna())
            p = model.predict(fut)
        parts.append(
            pd.DataFrame(
                {
                    "unique_id": uid,
                    "ds": fut["ds"],
                    "yhat": p["yhat"].to_numpy(),
                    "yhat_lower": p["yhat_lower"].to_numpy(),
                    "yhat_upper": p["yhat_upper"].to_numpy(),
                    "model": "prophet_default",
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else _empty_forecast()


def hindsight_combination(
    actual: np.ndarray, forecasts: dict[str, np.ndarray]
) -> tuple[float, dict[str, float]]:
    """Lowest MAE any fixed convex combination of ``forecasts`` reaches on ``actual``.

    The weights (non-negative, summing to one) are fitted to the actual values themselves,
    so this is a ceiling, not a method: no selection made without the test data can beat
    it with these forecasts. Solved exactly as a linear programme; returns
    ``(mae, weights)`` with the weights by forecast name.
    """
    from scipy import sparse
    from scipy.optimize import linprog

    names = list(forecasts)
    if not names:
        raise SchemaError("hindsight_combination needs at least one forecast")
    y = np.asarray(actual, float)
    keep = np.isfinite(y)
    x = np.column_stack([np.asarray(forecasts[k], float) for k in names])
    if x.shape[0] != y.shape[0]:
        raise SchemaError(f"forecasts have {x.shape[0]} steps, actual has {y.shape[0]}")
    keep &= np.isfinite(x).all(axis=1)
    y, x = y[keep], x[keep]
    n, k = x.shape
    if not n:
        raise SchemaError("no step has both an actual value and every forecast")
    # minimise sum(t) subject to -t <= y - x w <= t, w >= 0, sum(w) = 1 (sparse: the
    # constraint matrix is 2n x (k + n), mostly the identity)
    xs, eye = sparse.csr_array(x), sparse.eye_array(n, format="csr")
    res = linprog(
        np.r_[np.zeros(k), np.ones(n)],
        A_ub=sparse.block_array([[xs, -eye], [-xs, -eye]], format="csr"),
        b_ub=np.r_[y, -y],
        A_eq=np.r_[np.ones(k), np.zeros(n)][None, :],
        b_eq=[1.0],
        bounds=[(0, None)] * (k + n),
        method="highs",
    )
    if not res.success:  # pragma: no cover - the programme is always feasible and bounded
        raise SchemaError(f"hindsight_combination: the solver failed ({res.message})")
    w = np.clip(res.x[:k], 0.0, None)
    w = w / w.sum()
    return float(mae(y, x @ w)), dict(zip(names, w.tolist(), strict=True))


def score_forecast(
    train: pd.DataFrame, test: pd.DataFrame, forecast: pd.DataFrame, season: int
) -> pd.DataFrame:
    """MAE, sMAPE, MASE and interval coverage per ``unique_id`` and model."""
    rows = []
    merged = forecast.merge(test[["unique_id", "ds", "y"]], on=["unique_id", "ds"], how="inner")
    hist = {str(k): g["y"].to_numpy(float) for k, g in train.groupby("unique_id")}
    for (uid, model), g in merged.groupby(["unique_id", "model"], sort=True):
        y, yhat = g["y"].to_numpy(float), g["yhat"].to_numpy(float)
        rows.append(
            {
                "unique_id": uid,
                "model": model,
                "n": int(np.sum(~np.isnan(y))),
                "mae": mae(y, yhat),
                "smape": smape(y, yhat),
                "mase": mase(y, yhat, hist.get(str(uid), np.array([])), season),
                "coverage": coverage(y, g["yhat_lower"].to_numpy(), g["yhat_upper"].to_numpy()),
            }
        )
    return pd.DataFrame(
        rows, columns=["unique_id", "model", "n", "mae", "smape", "mase", "coverage"]
    )


@dataclass
class BacktestResult:
    """Per-window metrics, their mean per series and model, and the forecasts themselves."""

    metrics: pd.DataFrame  # unique_id, cutoff, model, n, mae, smape, mase, coverage
    summary: pd.DataFrame  # unique_id, model, mae, smape, mase, coverage, windows
    forecasts: pd.DataFrame  # unique_id, ds, yhat, yhat_lower, yhat_upper, model, cutoff, y

    def _repr_html_(self) -> str:
        return str(self.summary.to_html(index=False, float_format=lambda v: f"{v:.3f}"))


def backtest(
    df: pd.DataFrame,
    forecaster: ProphetForecaster | None = None,
    horizon: int | None = None,
    n_windows: int = 3,
    step: int | None = None,
    freq: str | None = None,
    level: float | None = None,
    include_prophet_default: bool = False,
) -> BacktestResult:
    """Rolling-origin backtest of ``forecaster`` next to seasonal-naive baselines.

    Windows end at the last timestamp and step back by ``step`` (default: ``horizon``);
    each fits on everything before its cutoff and forecasts ``horizon`` steps. MASE is
    scaled by the in-sample seasonal-naive error of each window's training data.
    """
    from lumina_analytics.series import freq_to_timedelta

    est = forecaster if forecaster is not None else ProphetForecaster()
    freq = freq or est.freq
    horizon = int(horizon or est.horizon)
    level = float(level if level is not None else est.level)
    step = int(step or horizon)
    td = freq_to_timedelta(freq)
    data = validate_long(df)
    if data.empty:
        raise SchemaError("backtest needs a non-empty series frame")
    all_ds = pd.DatetimeIndex(sorted(data["ds"].unique()))
    cutoffs = [all_ds[-1] - td * (horizon + k * step) for k in range(n_windows)]
    cutoffs = sorted(c for c in cutoffs if c > all_ds[0])
    season = mase_season(td)
    metric_parts, fc_parts = [], []
    for cutoff in cutoffs:
        train = data[data["ds"] <= cutoff]
        test = data[(data["ds"] > cutoff) & (data["ds"] <= cutoff + td * horizon)]
        model = clone(est).set_params(freq=freq, horizon=horizon, level=level)
        fcs = [model.fit(train).predict(horizon)]
        fcs.append(baseline_forecast(train, horizon, freq, "1D", level))
        if season_steps(td, "7D") != season_steps(td, "1D"):
            fcs.append(baseline_forecast(train, horizon, freq, "7D", level))
        if include_prophet_default:
            fcs.append(prophet_default_forecast(train, horizon, freq, level))
        fc = pd.concat(fcs, ignore_index=True)
        m = score_forecast(train, test, fc, season)
        m.insert(1, "cutoff", cutoff)
        metric_parts.append(m)
        fc = fc.merge(test[["unique_id", "ds", "y"]], on=["unique_id", "ds"], how="left")
        fc["cutoff"] = cutoff
        fc_parts.append(fc)
    metrics = pd.concat(metric_parts, ignore_index=True) if metric_parts else pd.DataFrame()
    if metrics.empty:
        raise SchemaError(
            f"series too short for a backtest with horizon {horizon} and {n_windows} windows"
        )
    summary = (
        metrics.assign(family=metrics["model"].map(_family))
        .groupby(["unique_id", "family"], sort=True)
        .agg(
            mae=("mae", "mean"),
            smape=("smape", "mean"),
            mase=("mase", "mean"),
            coverage=("coverage", "mean"),
            windows=("cutoff", "nunique"),
        )
        .reset_index()
        .rename(columns={"family": "model"})
    )
    return BacktestResult(metrics, summary, pd.concat(fc_parts, ignore_index=True))


def _family(model: str) -> str:
    """Group the auto-selected combinations of one forecaster under ``auto``."""
    return "auto" if model.startswith("auto(") else model
