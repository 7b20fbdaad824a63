"""Points scored per second: the causal ensemble vs a plain rolling z-score, in the same run.

    .venv/bin/python benchmarks/bench_anomaly.py [--n 20000] [--repeat 3]

Uses a NAB file when ../shared/data/nab is present (machine_temperature, 22,695 rows),
otherwise a synthetic series of --n rows.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lumina_analytics.anomaly import CausalEnsemble, RollingZScore, StreamDetector

NAB_FILE = (
    Path(__file__).resolve().parents[2]
    / "shared/data/nab/data/realKnownCause/machine_temperature_system_failure.csv"
)


def _series(n: int) -> tuple[str, np.ndarray]:
    if NAB_FILE.is_file():
        return NAB_FILE.name, pd.read_csv(NAB_FILE)["value"].to_numpy(float)
    rng = np.random.default_rng(0)
    t = np.arange(n)
    return "synthetic", 50 + 10 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 1.5, n)


def _rate(det: StreamDetector, y: np.ndarray, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        det.fit(y)
        best = min(best, time.perf_counter() - t0)
    return len(y) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    name, y = _series(args.n)
    ens = _rate(CausalEnsemble(), y, args.repeat)
    z = _rate(RollingZScore(), y, args.repeat)
    print(f"series: {name}, {len(y)} points (best of {args.repeat})")
    print(f"  ensemble        {ens:12,.0f} points/s")
    print(f"  rolling z-score {z:12,.0f} points/s")
    print(f"  ratio z-score/ensemble: {z / ens:.1f}x")


if __name__ == "__main__":
    main()
