"""``lumina-analytics costs``: spend summary, budgets, audit, change attribution, what-if."""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd

from lumina_analytics.cli import LazyModule

costs = LazyModule("lumina_analytics.costs")
datasets = LazyModule("lumina_analytics.datasets")


def _calls(args: argparse.Namespace) -> pd.DataFrame:
    calls = (
        datasets.load_calls(args.file)
        if args.file
        else datasets.load_llm_calls(None, args.start, args.end)
    )
    if args.file:
        ts = pd.to_datetime(calls["ts"])
        keep = pd.Series(True, index=calls.index)
        if args.start:
            keep &= ts >= pd.Timestamp(args.start)
        if args.end:
            keep &= ts < pd.Timestamp(args.end)
        calls = calls[keep]
    return costs.with_costs(calls)


def _show(frame: pd.DataFrame) -> None:
    with pd.option_context(
        "display.width", 200, "display.max_columns", 30, "display.max_colwidth", 60
    ):
        print(frame.to_string(index=False))


def register(sub: Any) -> None:
    """Add the ``costs`` subcommands."""
    p = sub.add_parser("costs", help="LLM spend: summary, budgets, audit, attribution, what-if")
    csub = p.add_subparsers(dest="costs_command", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--file", help="an llm_calls CSV/Parquet instead of the warehouse")
        q.add_argument("--start", help="first timestamp (inclusive, ISO)")
        q.add_argument("--end", help="last timestamp (exclusive, ISO)")

    s = csub.add_parser("summary", help="total spend, top drivers and unit economics")
    common(s)
    s.add_argument("--by", default="tenant", help="dimension for the top list")
    s.add_argument("--top", type=int, default=10)
    s.set_defaults(func=_summary)
    b = csub.add_parser("budgets", help="month to date against budget, projected month end")
    common(b)
    b.add_argument(
        "--budgets", help="YAML `budgets: {tenant: monthly_usd}` (default: defaults/budgets.yaml)"
    )
    b.add_argument("--as-of", help="day to report (default: last call)")
    b.add_argument("--method", choices=["auto", "forecast", "simple"], default="auto")
    b.set_defaults(func=_budgets)
    a = csub.add_parser("audit", help="reconciliation audit findings")
    common(a)
    a.set_defaults(func=_audit)
    w = csub.add_parser(
        "attribution", help="week-over-week change in spend by tenant, model and agent"
    )
    common(w)
    w.add_argument("--dims", default="tenant,model,agent")
    w.add_argument("--period", default="7D")
    w.set_defaults(func=_attribution)
    f = csub.add_parser("whatif", help="replay recorded usage under other models' prices")
    common(f)
    f.add_argument(
        "--to",
        action="append",
        required=True,
        metavar="PROVIDER:MODEL",
        help="alternative (repeatable)",
    )
    f.add_argument(
        "--batch-discount", type=float, default=0.0, help="0.5 = batch API at half price"
    )
    f.set_defaults(func=_whatif)


def _summary(args: argparse.Namespace) -> int:
    rep = costs.summarize(_calls(args), by=args.by, top=args.top)
    print(
        f"spend ${rep.total_usd:,.2f} over {rep.requests:,} calls ({rep.unpriced_requests:,} unpriced)\n"
    )
    _show(rep.top)
    print()
    _show(rep.unit)
    if len(rep.findings):
        print(f"\n{len(rep.findings)} audit finding(s); run `lumina-analytics costs audit`")
    return 0


def _budgets(args: argparse.Namespace) -> int:
    out = costs.budget_status(
        _calls(args), costs.load_budgets(args.budgets), as_of=args.as_of, method=args.method
    )
    _show(out)
    return 0


def _audit(args: argparse.Namespace) -> int:
    out = costs.audit(_calls(args))
    if out.empty:
        print("no findings")
    else:
        _show(out)
    return 0


def _attribution(args: argparse.Namespace) -> int:
    out = costs.change_attribution(
        _calls(args), dims=[d.strip() for d in args.dims.split(",")], period=args.period
    )
    a = out.attrs
    print(
        f"spend {a['previous_total_usd']:,.2f} -> {a['current_total_usd']:,.2f} USD (change {a['total_change_usd']:+,.2f}); current window {a['current_start']} .. {a['current_end']}\n"
    )
    _show(out)
    return 0


def _whatif(args: argparse.Namespace) -> int:
    alts = []
    for t in args.to:
        prov, sep, model = t.partition(":")
        if not sep:
            raise SystemExit(f"--to expects PROVIDER:MODEL, got {t!r}")
        alts.append((prov, model))
    _show(costs.whatif(_calls(args), alts, batch_discount=args.batch_discount))
    return 0
