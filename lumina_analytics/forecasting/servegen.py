"""Evaluate the forecaster on the real ServeGen request-rate trace (two models, 14 days).

``ts_s`` (seconds from trace start) is mapped to datetimes from the arbitrary fixed epoch
2024-01-01 00:00 (a Monday), so weekday effects are relative, not calendar ones. The first
12 days train, the last 2 (288 ten-minute steps) are forecast; MASE is scaled by the
in-sample one-day seasonal-naive error. Run: ``python -m lumina_analytics.forecasting.servegen``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lumina_analytics.config import project_root
from lumina_analytics.errors import SchemaError
from lumina_analytics.forecasting.backtest import (
    baseline_forecast,
    hindsight_combination,
    prophet_default_forecast,
    score_forecast,
)
from lumina_analytics.forecasting.metrics import mae, season_steps, seasonal_naive
from lumina_analytics.forecasting.model import (
    MEMBERS,
    ProphetForecaster,
    _drop_outages,
    _wquantile,
)

__all__ = ["EPOCH", "ceiling_servegen", "default_path", "evaluate_servegen", "load_servegen"]

EPOCH = pd.Timestamp("2024-01-01")


def default_path() -> Path:
    """``../shared/data/llm_workload/servegen_model_rate_10min.csv`` beside the project root."""
    return (
        project_root().parent / "shared" / "data" / "llm_workload" / "servegen_model_rate_10min.csv"
    )


def load_servegen(path: str | Path | None = None) -> pd.DataFrame:
    """The trace as a long ``unique_id, ds, y`` frame (y = requests per second)."""
    p = Path(path) if path else default_path()
    if not p.exists():
        raise SchemaError(f"ServeGen file not found at {p}")
    raw = pd.read_csv(p)
    return pd.DataFrame(
        {
            "unique_id": raw["model"].astype(str),
            "ds": EPOCH + pd.to_timedelta(raw["ts_s"], unit="s"),
            "y": raw["req_per_s"].astype(float),
        }
    )


def _split(path: str | Path | None, train_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = load_servegen(path)
    cut = df["ds"].min() + pd.Timedelta(days=train_days)
    return df[df["ds"] < cut], df[df["ds"] >= cut]


def ceiling_servegen(
    path: str | Path | None = None, train_days: int = 12, horizon: int = 288
) -> pd.DataFrame:
    """What hindsight could reach: every candidate member alone, and their best combination.

    Per series, each member of :data:`MEMBERS` forecasts the test days from the training
    days alone; ``hindsight`` is the lowest MAE of any fixed convex combination of them,
    with weights fitted to the test days themselves (see :func:`hindsight_combination`);
    ``hindsight_level`` is the median daily shape of all training days at the level (a
    scale factor) fitted to the test days, i.e. a forecaster that knew the coming level.
    Columns: ``unique_id, model, mae, mae_vs_best_baseline, weights``.
    """
    train, test = _split(path, train_days)
    est = ProphetForecaster(freq="10min", horizon=horizon, members=MEMBERS)
    members = est.member_forecasts(train)
    day = season_steps(pd.Timedelta("10min"), "1D")
    rows: list[dict[str, object]] = []
    for uid, g in test.groupby("unique_id", sort=True):
        actual = g["y"].to_numpy(float)
        y_tr = train.loc[train["unique_id"] == uid, "y"].to_numpy(float)
        h = len(actual)
        best_base = min(mae(actual, seasonal_naive(y_tr, h, m)) for m in (day, 7 * day))
        fc = {
            str(m): p["yhat"].to_numpy(float)
            for m, p in members[members["unique_id"] == uid].groupby("model", sort=False)
        }
        best, w = hindsight_combination(actual, fc)
        kept = sorted(((v, k) for k, v in w.items() if v >= 0.01), reverse=True)
        shape = _daily_median(y_tr, day, h)
        scale = _best_scale(actual, shape)
        for name, err, weights in [
            *((m, mae(actual, p), "") for m, p in fc.items()),
            ("hindsight", best, ", ".join(f"{k} {v:.2f}" for v, k in kept)),
            ("hindsight_level", mae(actual, scale * shape), f"scale {scale:.3f}"),
        ]:
            rows.append(
                {
                    "unique_id": uid,
                    "model": name,
                    "mae": err,
                    "mae_vs_best_baseline": err / best_base,
                    "weights": weights,
                }
            )
    return pd.DataFrame(rows)[["unique_id", "model", "mae", "mae_vs_best_baseline", "weights"]]


def _daily_median(y: np.ndarray, period: int, h: int) -> np.ndarray:
    """Median of each time of day over every whole day of ``y`` (outages left out), ``h`` long."""
    z = _drop_outages(y)
    days = len(z) // period
    prof = np.nanmedian(z[len(z) - days * period :].reshape(days, period), axis=0)
    return np.tile(prof, -(-h // period))[:h]


def _best_scale(actual: np.ndarray, shape: np.ndarray) -> float:
    """The factor ``s`` minimising ``mean |actual - s * shape|``: the median of
    ``actual / shape`` weighted by ``shape`` (``shape > 0``)."""
    ok = np.isfinite(actual) & np.isfinite(shape) & (shape > 0)
    return _wquantile(actual[ok] / shape[ok], shape[ok], 0.5)


def evaluate_servegen(
    path: str | Path | None = None,
    train_days: int = 12,
    horizon: int = 288,
    level: float = 80.0,
    n_jobs: int = 1,
    forecaster: ProphetForecaster | None = None,
) -> pd.DataFrame:
    """MASE, sMAPE, MAE and interval coverage of our forecaster, default Prophet and naive baselines."""
    train, test = _split(path, train_days)
    est = forecaster or ProphetForecaster(freq="10min", horizon=horizon, level=level, n_jobs=n_jobs)
    est.set_params(freq="10min", horizon=horizon, level=level)
    fc = pd.concat(
        [
            est.fit(train).predict(horizon),
            prophet_default_forecast(train, horizon, "10min", level),
            baseline_forecast(train, horizon, "10min", "1D", level),
            baseline_forecast(train, horizon, "10min", "7D", level),
        ],
        ignore_index=True,
    )
    scores = score_forecast(train, test, fc, season=144)
    best_base = scores[~scores["model"].str.startswith("auto(")].groupby("unique_id")["mase"].min()
    scores["mase_vs_best_baseline"] = scores["mase"] / scores["unique_id"].map(best_base)
    return scores


def main(argv: Sequence[str] | None = None) -> int:
    """Print the evaluation table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("path", nargs="?", default=None)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument(
        "--ceiling",
        action="store_true",
        help="also print each candidate member alone and the best combination of them "
        "chosen with hindsight of the test days (a ceiling for any selection rule)",
    )
    args = ap.parse_args(argv)
    pd.set_option("display.width", 160)
    if args.ceiling:
        print(ceiling_servegen(args.path).round(3).to_string(index=False))
        print()
    print(evaluate_servegen(args.path, n_jobs=args.n_jobs).round(3).to_string(index=False))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
