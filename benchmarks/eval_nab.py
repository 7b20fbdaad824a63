"""NAB-style evaluation table of one or more detectors on a NAB folder.

    .venv/bin/python benchmarks/eval_nab.py [--data ../shared/data/nab] [--detector ensemble zscore]

The same table as ``lumina-analytics anomaly nab``; prints wall time per detector too.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lumina_analytics.anomaly import DETECTORS, score_values
from lumina_analytics.nab import evaluate

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=str(DEFAULT))
    ap.add_argument(
        "--detector", nargs="+", default=["ensemble", "zscore"], choices=sorted(DETECTORS)
    )
    args = ap.parse_args()
    for name in args.detector:
        t0 = time.perf_counter()
        res = evaluate(args.data, lambda f, name=name: score_values(f["value"].to_numpy(), name))
        print(f"== {name} ({time.perf_counter() - t0:.1f} s incl. scoring)")
        print(res.table.round(1).to_string())
        print("thresholds:", {k: round(v, 4) for k, v in res.thresholds.items()})


if __name__ == "__main__":
    main()
