"""The ServeGen procedure on a panel of real 14-day series: which forecaster settings generalise.

    .venv/bin/python benchmarks/eval_forecasting_panel.py [--data ../shared/data] [--set holdout]

Each task trains on all but the last two days and forecasts those two days (the ServeGen
procedure): both ServeGen models (10-minute steps), ten NAB AWS/known-cause series of 14
days resampled to 10 minutes, and five 14-day windows of NAB's NYC taxi demand (30-minute
steps). Per task it scores ``ProphetForecaster`` under each configuration against the
best of the seasonal-naive baselines (one day, one week) and reports, per configuration,
the geometric mean of MASE / best-baseline MASE, how many tasks reach <= 0.9, and the
80 % interval coverage. Configurations compared in the same run: the current defaults,
the same without the tied-backtest rule (``tie_margin=0``), without the nowcast correction,
and the original ones
(top-3 mean of the seven original members, all inner windows).
Development data only: the choice of defaults was made on this panel, not per file.

``--set holdout`` runs the same procedure on series that were never looked at while choosing
the defaults: the other NAB AWS/known-cause series with 14 days of data (10-minute steps)
and three 14-day windows of NAB's hourly ambient temperature (horizon 48 hours).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lumina_analytics.config import project_root
from lumina_analytics.forecasting import ProphetForecaster
from lumina_analytics.forecasting.metrics import coverage, mae, season_steps, seasonal_naive
from lumina_analytics.forecasting.servegen import load_servegen

NAB_FILES = (
    "realAWSCloudwatch/elb_request_count_8c0756",
    "realAWSCloudwatch/ec2_network_in_257a54",
    "realAWSCloudwatch/rds_cpu_utilization_cc0c53",
    "realAWSCloudwatch/rds_cpu_utilization_e47b3b",
    "realAWSCloudwatch/ec2_cpu_utilization_5f5533",
    "realAWSCloudwatch/ec2_cpu_utilization_fe7f93",
    "realAWSCloudwatch/ec2_cpu_utilization_825cc2",
    "realAWSCloudwatch/ec2_cpu_utilization_ac20cd",
    "realKnownCause/ec2_request_latency_system_failure",
    "realAWSCloudwatch/ec2_cpu_utilization_53ea38",
)
ORIGINAL = {
    "members": (
        "prophet",
        "prophet_flat",
        "snaive_day",
        "snaive_week",
        "profile_day",
        "profile_day_wl",
        "profile_week",
    ),
    "combine": "top",
    "top_k": 3,
    "nowcast": False,
}
HOLDOUT_FILES = (
    "realAWSCloudwatch/ec2_cpu_utilization_77c1ca",
    "realAWSCloudwatch/ec2_cpu_utilization_c6585a",
    "realAWSCloudwatch/ec2_disk_write_bytes_1ef3de",
    "realAWSCloudwatch/ec2_disk_write_bytes_c0d644",
    "realAWSCloudwatch/ec2_network_in_5abac7",
    "realAWSCloudwatch/grok_asg_anomaly",
    "realKnownCause/cpu_utilization_asg_misconfiguration",
    "realKnownCause/machine_temperature_system_failure",
    "realKnownCause/rogue_agent_key_hold",
)
CONFIGS: dict[str, dict[str, Any]] = {
    "current": {},
    "no_tie_rule": {"tie_margin": 0.0},
    "no_nowcast": {"nowcast": False},
    "original": ORIGINAL,
}


def _nab_14_days(nab: Path, name: str) -> pd.DataFrame:
    raw = pd.read_csv(nab / f"{name}.csv", parse_dates=["timestamp"])
    s = raw.set_index("timestamp")["value"].resample("10min").mean().iloc[1:2017]
    return pd.DataFrame({"ds": s.index, "y": s.to_numpy()})


def holdout_tasks(data: Path) -> Iterator[tuple[str, pd.DataFrame, str, int]]:
    """Series never used to choose the defaults, in the form of :func:`tasks`."""
    nab = data / "nab" / "data"
    for f in HOLDOUT_FILES:
        yield f, _nab_14_days(nab, f), "10min", 288
    raw = pd.read_csv(
        nab / "realKnownCause" / "ambient_temperature_system_failure.csv",
        parse_dates=["timestamp"],
    )
    hourly = raw.set_index("timestamp")["value"].resample("1h").mean()
    for k in range(3):
        w = hourly.iloc[k * 2000 : k * 2000 + 336]
        frame = pd.DataFrame({"ds": w.index, "y": w.to_numpy()})
        yield f"ambient_temperature@{k * 2000}", frame, "1h", 48


def tasks(data: Path) -> Iterator[tuple[str, pd.DataFrame, str, int]]:
    """``(name, frame with ds, y, freq, horizon)`` per task."""
    sg = load_servegen(data / "llm_workload" / "servegen_model_rate_10min.csv")
    for uid, g in sg.groupby("unique_id"):
        yield f"servegen/{uid}", g[["ds", "y"]].reset_index(drop=True), "10min", 288
    nab = data / "nab" / "data"
    for f in NAB_FILES:
        yield f, _nab_14_days(nab, f), "10min", 288
    taxi = pd.read_csv(nab / "realKnownCause" / "nyc_taxi.csv", parse_dates=["timestamp"])
    for start in range(0, len(taxi) - 672, 2016):
        w = taxi.iloc[start : start + 672]
        frame = pd.DataFrame({"ds": w["timestamp"].to_numpy(), "y": w["value"].to_numpy()})
        yield f"nyc_taxi@{start}", frame, "30min", 96


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=project_root().parent / "shared" / "data")
    ap.add_argument(
        "--set",
        choices=("dev", "holdout"),
        default="dev",
        help="dev: the panel the defaults were chosen on; holdout: series never used for that",
    )
    args = ap.parse_args()
    rows = []
    for name, g, freq, h in (tasks if args.set == "dev" else holdout_tasks)(args.data):
        train, test = g.iloc[:-h].assign(unique_id="s"), g.iloc[-h:]
        y_tr, y_te = train["y"].to_numpy(float), test["y"].to_numpy(float)
        td = pd.Timedelta(freq)
        base = min(
            mae(y_te, seasonal_naive(y_tr, h, season_steps(td, "1D"))),
            mae(y_te, seasonal_naive(y_tr, h, season_steps(td, "7D"))),
        )
        for label, params in CONFIGS.items():
            t0 = time.perf_counter()
            fc = ProphetForecaster(freq=freq, horizon=h, **params).fit(train).predict()
            rows.append(
                {
                    "task": name,
                    "config": label,
                    "vs_best_baseline": mae(y_te, fc["yhat"].to_numpy()) / base,
                    "coverage": coverage(
                        y_te, fc["yhat_lower"].to_numpy(), fc["yhat_upper"].to_numpy()
                    ),
                    "seconds": time.perf_counter() - t0,
                }
            )
        print(
            name,
            " ".join(f"{r['config']}={r['vs_best_baseline']:.2f}" for r in rows[-len(CONFIGS) :]),
            flush=True,
        )
    res = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 10)
    print(
        res.pivot(index="task", columns="config", values=["vs_best_baseline", "coverage"]).round(3)
    )
    summary = res.groupby("config").agg(
        gmean_vs_best_baseline=("vs_best_baseline", lambda v: float(np.exp(np.log(v).mean()))),
        median_vs_best_baseline=("vs_best_baseline", "median"),
        tasks_at_or_below_0_9=("vs_best_baseline", lambda v: int((v <= 0.9).sum())),
        coverage_mean=("coverage", "mean"),
        coverage_in_75_85=("coverage", lambda v: int(v.between(0.75, 0.85).sum())),
        tasks=("task", "count"),
        seconds=("seconds", "sum"),
    )
    print(summary.round(3).to_string())


if __name__ == "__main__":
    main()
