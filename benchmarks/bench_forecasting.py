"""Throughput of ProphetForecaster: 200 hourly series of 60 days, parallel vs sequential.

    .venv/bin/python benchmarks/bench_forecasting.py [--series 40] [--full] [--days 60]
        [--jobs 2] [--members prophet,prophet_flat_log,snaive_day,...]

Prints series per second for n_jobs=1 and n_jobs=--jobs in the same run and their ratio.
``--nowcast-overhead`` instead times n_jobs=1 with and without the nowcast correction.
``--full`` runs the 200-series workload of the issue (several minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from lumina_analytics.forecasting import DEFAULT_MEMBERS, ProphetForecaster


def make_series(n: int, days: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2026-08-01", periods=days * 24, freq="1h")
    t = np.arange(len(ds)) / 24
    parts = []
    for i in range(n):
        level = rng.uniform(20, 500)
        y = level * (1 + rng.uniform(0, 0.01) * t) * (1 + 0.4 * np.sin(2 * np.pi * t + i))
        y *= 1 + 0.15 * (pd.DatetimeIndex(ds).day_of_week >= 5)
        parts.append(
            pd.DataFrame(
                {
                    "unique_id": f"s{i:03d}",
                    "ds": ds,
                    "y": rng.poisson(np.maximum(y, 0)).astype(float),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=40)
    ap.add_argument("--full", action="store_true", help="200 series (the issue's workload)")
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--horizon", type=int, default=48)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--members", default=",".join(DEFAULT_MEMBERS))
    ap.add_argument("--nowcast-overhead", action="store_true", help="time nowcast on vs off")
    args = ap.parse_args()
    if args.full:
        args.series = 200
    df = make_series(args.series, args.days)
    members = tuple(m for m in args.members.split(",") if m)
    jobs = (os.cpu_count() or 1) if args.jobs < 0 else args.jobs
    if args.nowcast_overhead:  # alternate the two settings, keep each one's fastest run
        secs: dict[bool, float] = {}
        for nowcast in (False, True, False, True):
            est = ProphetForecaster(
                freq="1h", horizon=args.horizon, members=members, nowcast=nowcast
            )
            t0 = time.perf_counter()
            est.fit(df).predict()
            dt = time.perf_counter() - t0
            secs[nowcast] = min(dt, secs.get(nowcast, dt))
            print(f"nowcast={nowcast}: {args.series} series in {dt:.1f} s")
        print(f"time ratio nowcast on/off (fastest runs): {secs[True] / secs[False]:.3f}")
        return
    results = {}
    for n_jobs in (1, jobs):
        est = ProphetForecaster(freq="1h", horizon=args.horizon, members=members, n_jobs=n_jobs)
        t0 = time.perf_counter()
        fc = est.fit(df).predict()
        dt = time.perf_counter() - t0
        assert fc["unique_id"].nunique() == args.series
        results[n_jobs] = args.series / dt
        print(
            f"n_jobs={n_jobs}: {args.series} series in {dt:.1f} s = {results[n_jobs]:.2f} series/s"
        )
    print(
        f"parallel/sequential throughput ratio ({jobs} workers, {os.cpu_count()} cpus): "
        f"{results[jobs] / results[1]:.2f}"
    )


if __name__ == "__main__":
    main()
