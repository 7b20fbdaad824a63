"""``lumina-analytics rca``: rank the services most likely to have caused a change."""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd

from lumina_analytics.errors import LuminaError


def register(sub: Any) -> None:
    """Add the ``rca`` subcommands."""
    p = sub.add_parser("rca", help="root-cause ranking of services for an anomaly window")
    rsub = p.add_subparsers(dest="rca_command", metavar="ACTION", required=True)
    rank = rsub.add_parser("rank", help="rank services by how likely each originated the change")
    rank.add_argument("--start", required=True, help="anomaly window start (ISO time, UTC)")
    rank.add_argument("--end", required=True, help="anomaly window end (ISO time, UTC)")
    rank.add_argument(
        "--baseline-start", help="baseline start (default: same length before --start)"
    )
    rank.add_argument("--baseline-end", help="baseline end (default: --start)")
    rank.add_argument("--top", type=int, default=10, help="how many services to print")
    rank.add_argument("--no-metrics", action="store_true", help="ignore the metrics table")
    rank.add_argument("--json", action="store_true", help="print JSON records")
    rank.set_defaults(func=_rank)
    tt = rsub.add_parser("trainticket", help="evaluate the ranking on the Nezha TrainTicket faults")
    tt.add_argument("--data", help="folder with trace/, metric/ and fault_list.json")
    tt.add_argument(
        "--window-minutes", type=float, default=3.0, help="anomaly window after each fault"
    )
    tt.add_argument(
        "--baseline-minutes", type=float, default=5.0, help="baseline before each fault"
    )
    tt.add_argument("--no-metrics", action="store_true", help="traces only")
    tt.set_defaults(func=_trainticket)


def _ts(value: str, what: str) -> pd.Timestamp:
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise LuminaError(
            f"{what}: cannot parse {value!r} as a time; use ISO format like 2026-01-31T12:00"
        ) from exc
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t


def _rank(args: argparse.Namespace) -> int:
    from lumina_analytics.rca import load_metrics, rank_root_causes
    from lumina_analytics.traces import load_spans

    start, end = _ts(args.start, "--start"), _ts(args.end, "--end")
    be = _ts(args.baseline_end, "--baseline-end") if args.baseline_end else start
    bs = _ts(args.baseline_start, "--baseline-start") if args.baseline_start else be - (end - start)
    lo, hi = min(bs, start), max(be, end)
    spans = load_spans(None, lo, hi)
    if spans.empty:
        raise LuminaError(f"no spans between {lo} and {hi} in the warehouse")
    metrics = None if args.no_metrics else load_metrics(None, lo, hi)
    ranked = rank_root_causes(spans, start, end, bs, be, metrics=metrics)
    out = ranked.head(args.top)
    if args.json:
        print(out.to_json(orient="records", indent=2))
    else:
        print(f"anomaly [{start}, {end}) vs baseline [{bs}, {be})")
        print(out.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def _trainticket(args: argparse.Namespace) -> int:
    from lumina_analytics.rca import evaluate_trainticket

    ev = evaluate_trainticket(
        args.data, args.window_minutes, args.baseline_minutes, use_metrics=not args.no_metrics
    )
    with pd.option_context("display.width", 200, "display.max_colwidth", 90):
        print(ev.cases.to_string(index=False))
    print(ev.summary())
    return 0
