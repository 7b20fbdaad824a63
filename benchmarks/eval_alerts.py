"""Simulator detection table: replay the alert rules over a warehouse, score against incidents.

    .venv/bin/python benchmarks/eval_alerts.py [--warehouse data/lumina.duckdb] [--rules R.yaml]

Replays every rule (default: the shipped ``defaults/alerts.yaml``) at 5-minute steps over
the whole warehouse, in memory (nothing is written), and prints per incident whether an
alert that names its culprit (labels or root-cause hint) started firing inside its window
(see :mod:`lumina_analytics.alerts.incidents`), plus false alerts per incident-free day.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from lumina_analytics.alerts.incidents import replay_incidents

DEFAULT = Path(__file__).resolve().parents[1] / "data" / "lumina.duckdb"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--warehouse", default=str(DEFAULT))
    ap.add_argument("--rules", default=None, help="rules YAML (default: the shipped rules)")
    ap.add_argument("--step", default="5min")
    args = ap.parse_args()
    t0 = time.perf_counter()
    table, _ = replay_incidents(args.warehouse, args.rules, args.step)
    print(f"replay and scoring: {time.perf_counter() - t0:.1f} s")
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(table.drop(columns=["end_ts"]).to_string(index=False))
    a = table.attrs
    print(
        f"detected {int(table['detected'].sum())} of {len(table)} incidents; "
        f"false alerts on {a['clean_days']} incident-free days: {a['false_alerts']} "
        f"= {a['false_alerts_per_clean_day']:.2f} per day; by rule: {a['false_by_rule']}"
    )


if __name__ == "__main__":
    main()
