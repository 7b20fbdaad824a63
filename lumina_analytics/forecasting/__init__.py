"""Forecasting: many-series Prophet with baselines chosen by backtest, backtests, residuals."""

from __future__ import annotations

from lumina_analytics.forecasting.backtest import BacktestResult, backtest, baseline_forecast
from lumina_analytics.forecasting.metrics import coverage, mae, mase, seasonal_naive, smape
from lumina_analytics.forecasting.model import (
    DEFAULT_MEMBERS,
    MEMBERS,
    ProphetForecaster,
    events_to_holidays,
)
from lumina_analytics.forecasting.residuals import ResidualReport, residual_analysis

__all__ = [
    "DEFAULT_MEMBERS",
    "MEMBERS",
    "BacktestResult",
    "ProphetForecaster",
    "ResidualReport",
    "backtest",
    "baseline_forecast",
    "coverage",
    "events_to_holidays",
    "mae",
    "mase",
    "residual_analysis",
    "seasonal_naive",
    "smape",
]
