"""Point and interval accuracy metrics and seasonal-naive baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "coverage",
    "mae",
    "mase",
    "mase_scale",
    "season_steps",
    "seasonal_naive",
    "smape",
]


def mae(y: np.ndarray, yhat: np.ndarray) -> float:
    """Mean absolute error, ignoring NaN actuals."""
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    ok = ~np.isnan(y)
    return float(np.mean(np.abs(y[ok] - yhat[ok]))) if ok.any() else float("nan")


def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Symmetric MAPE in percent, ``mean(2|y - yhat| / (|y| + |yhat|)) * 100``; 0/0 counts as 0."""
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    ok = ~np.isnan(y)
    num = 2.0 * np.abs(y[ok] - yhat[ok])
    den = np.abs(y[ok]) + np.abs(yhat[ok])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(den == 0, 0.0, num / np.where(den == 0, 1.0, den))
    return float(np.mean(ratio) * 100.0) if ok.any() else float("nan")


def mase_scale(y_train: np.ndarray, season: int) -> float:
    """In-sample MAE of the seasonal-naive forecast with period ``season`` (falls back to lag 1)."""
    y = np.asarray(y_train, float)
    m = season if len(y) > season else 1
    if len(y) <= m:
        return float("nan")
    d = np.abs(y[m:] - y[:-m])
    d = d[~np.isnan(d)]
    return float(np.mean(d)) if d.size else float("nan")


def mase(y: np.ndarray, yhat: np.ndarray, y_train: np.ndarray, season: int) -> float:
    """Mean absolute scaled error: MAE over the in-sample seasonal-naive MAE of ``y_train``."""
    scale = mase_scale(y_train, season)
    if not np.isfinite(scale) or scale == 0:
        return float("nan")
    return mae(y, yhat) / scale


def coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actuals inside ``[lower, upper]`` (NaN actuals ignored)."""
    y, lo, hi = (np.asarray(a, float) for a in (y, lower, upper))
    ok = ~np.isnan(y)
    if not ok.any():
        return float("nan")
    return float(np.mean((y[ok] >= lo[ok]) & (y[ok] <= hi[ok])))


def season_steps(freq: pd.Timedelta, period: str = "1D") -> int:
    """Number of ``freq`` steps in one ``period`` (at least 1)."""
    return max(1, round(pd.Timedelta(period) / freq))


def seasonal_naive(y_train: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Repeat the last full season of ``y_train`` over ``horizon`` steps (NaN if too short)."""
    y = np.asarray(y_train, float)
    if len(y) < season or season < 1:
        return np.full(horizon, np.nan)
    last = y[-season:]
    if np.isnan(last).any():  # fill holes from one season earlier, then the series mean
        prev = y[-2 * season : -season] if len(y) >= 2 * season else np.full(season, np.nan)
        last = np.where(np.isnan(last), prev, last)
        finite = y[~np.isnan(y)]
        last = np.where(np.isnan(last), float(finite.mean()) if finite.size else 0.0, last)
    reps = int(np.ceil(horizon / season))
    return np.tile(last, reps)[:horizon]
