"""``lumina-analytics traces``: bottlenecks, service graph and slow queries for a window."""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd


def register(sub: Any) -> None:
    """Add the ``traces`` subcommands."""
    p = sub.add_parser("traces", help="critical-path bottlenecks, service graph, slow queries")
    tsub = p.add_subparsers(dest="traces_command", metavar="ACTION", required=True)
    for name, helptext in (
        ("bottlenecks", "operations ranked by share of critical-path and self time"),
        ("graph", "service dependency graph: calls, errors, latency per edge"),
        ("queries", "DB statements and HTTP routes by total time, with N+1 repeats"),
    ):
        c = tsub.add_parser(name, help=helptext)
        c.add_argument("--start", help="window start (ISO, UTC; default: 1 hour before --end)")
        c.add_argument("--end", help="window end (ISO, UTC; default: the last span)")
        c.add_argument(
            "--service", action="append", help="only traces touching this service (repeatable)"
        )
        c.add_argument("--sample", type=int, default=None, help="at most this many traces")
        c.add_argument("--top", type=int, default=20, help="rows to print")
        c.add_argument("--json", action="store_true", help="print JSON records")
        c.set_defaults(func=_run, what=name)


def _run(args: argparse.Namespace) -> int:
    from lumina_analytics import traces

    _, hi = traces.span_time_bounds(None)
    if hi is None:
        print("no spans in the warehouse")
        return 0
    end = pd.Timestamp(args.end) if args.end else hi + pd.Timedelta(microseconds=1)
    start = pd.Timestamp(args.start) if args.start else end - pd.Timedelta(hours=1)
    spans = traces.load_spans(None, start, end, args.service, args.sample)
    if args.what == "bottlenecks":
        res = traces.bottlenecks(traces.analyze_traces(spans), top=args.top)
    elif args.what == "graph":
        res = traces.service_graph(traces.analyze_traces(spans)).head(args.top)
    else:
        res = traces.query_analysis(spans, top=args.top)
    if args.json:
        print(res.to_json(orient="records", indent=2))
    else:
        print(f"{spans['trace_id'].nunique():,} traces in [{start}, {end})")
        with pd.option_context("display.width", 200, "display.max_colwidth", 60):
            print(res.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0
