"""``lumina-analytics insights``: print the top findings of a period."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    """Add the ``insights`` command."""
    p = sub.add_parser(
        "insights",
        help="print the most important changes of a period (errors, latency, spend, traffic, cache)",
        description=(
            "Scan the warehouse for what changed, by how much, where and since when; one "
            "sentence per finding, ranked by impact. Default period: the last 7 days of data."
        ),
    )
    p.add_argument("--start", help="period start (ISO date or time, UTC)")
    p.add_argument("--end", help="period end, exclusive (ISO date or time, UTC)")
    p.add_argument("--top", type=int, default=10, help="how many findings to print (default 10)")
    p.add_argument(
        "--lookback-days", type=int, default=14, help="history used for baselines (default 14)"
    )
    p.add_argument("--json", action="store_true", help="print JSON lines instead of sentences")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from lumina_analytics.insights import scan

    found = scan(start=args.start, end=args.end, top=args.top, lookback_days=args.lookback_days)
    if args.json:
        for ins in found:
            print(json.dumps(ins.as_dict(), default=str))
        return 0
    if not found:
        print("no material changes found in this period")
        return 0
    for n, ins in enumerate(found, start=1):
        print(f"{n:>2}. [{ins.kind}, impact {ins.impact:.2f}] {ins.sentence}")
    return 0
