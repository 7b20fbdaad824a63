"""``lumina-analytics ingest``: load telemetry files, list unpriced models, show the ingest log."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import pandas as pd

_EPILOG = """\
formats (detected from content, .gz welcome): OTLP/JSON traces, metrics and logs (one document
or JSON Lines), Zipkin v2 JSON, Prometheus text (samples without timestamp get the file mtime),
CSV/Parquet named like a warehouse table, TrainTicket span CSVs, or any CSV via --mapping.

examples:
  lumina-analytics ingest telemetry/ more/spans.jsonl.gz
  lumina-analytics ingest calls.csv --price-overrides prices.yaml
  lumina-analytics ingest custom.csv --mapping custom.mapping.yaml
  lumina-analytics ingest unpriced
  lumina-analytics ingest log --limit 20
"""


def register(sub: Any) -> None:
    """Add ``ingest`` (load), ``ingest unpriced`` and ``ingest log``."""
    p = sub.add_parser(
        "ingest",
        help="load telemetry files into the warehouse (or: ingest unpriced | ingest log)",
        description=(
            "Load telemetry files or folders (recursive) into the warehouse. Each file loads "
            "completely or not at all; files already loaded (same sha256) are skipped; bad "
            "records go to the quarantine table. Exits 1 if any file failed. "
            "Subcommands: `ingest unpriced` lists models without a price, `ingest log` shows "
            "recent loads."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="files or folders; or the word 'unpriced' or 'log' (see below)",
    )
    p.add_argument(
        "--price-overrides",
        metavar="FILE",
        help="YAML price overrides (default: $LUMINA_PRICE_OVERRIDES)",
    )
    p.add_argument("--table", metavar="T", help="force the warehouse table for CSV/Parquet files")
    p.add_argument(
        "--mapping",
        metavar="FILE",
        help="YAML column mapping for CSV/Parquet files (see docs in ingest/tabular.py)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--limit", type=int, default=20, help="rows to show for `ingest log` (default 20)"
    )
    p.set_defaults(func=_dispatch)


def _dispatch(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.paths == ["unpriced"] and not Path("unpriced").exists():
        return _unpriced(args)
    if args.paths == ["log"] and not Path("log").exists():
        return _log(args)
    return _ingest(args)


def _ingest(args: argparse.Namespace) -> int:
    from lumina_analytics.ingest import ingest_paths

    report = ingest_paths(
        args.paths,
        progress=False if args.no_progress else None,
        price_overrides=args.price_overrides,
        table=args.table,
        mapping=args.mapping,
    )
    print(report)
    for f in report.failed:
        print(
            f.message if f.message.startswith(f.path) else f"{f.path}: {f.message}", file=sys.stderr
        )
    return 0 if report.ok else 1


def _unpriced(args: argparse.Namespace) -> int:
    from lumina_analytics.pricing import load_overrides, price_frame, unpriced_models
    from lumina_analytics.warehouse import Warehouse

    wh = Warehouse()
    calls = wh.query(
        "SELECT provider, model, ts, input_tokens, output_tokens, cache_read_tokens, "
        "cache_write_tokens, cost_usd FROM llm_calls"
    )
    if args.price_overrides:
        calls = price_frame(calls.drop(columns=["cost_usd"]), load_overrides(args.price_overrides))
    report = unpriced_models(calls)
    if report.empty:
        print(f"every one of {len(calls):,} llm_calls rows has a price")
        return 0
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(report.to_string(index=False))
    print(
        f"{int(report['calls'].sum()):,} of {len(calls):,} calls have no price; add the models "
        "to a price-overrides YAML (see lumina_analytics/defaults/price_overrides.example.yaml)"
    )
    return 0


def _log(args: argparse.Namespace) -> int:
    from lumina_analytics.warehouse import Warehouse

    wh = Warehouse()
    log = wh.query(
        "SELECT finished_at, status, format, rows_loaded, rows_quarantined, path, message "
        "FROM ingest_log ORDER BY finished_at DESC LIMIT ?",
        [args.limit],
    )
    q = wh.query(
        "SELECT path, reason, count(*) AS records FROM quarantine GROUP BY path, reason "
        "ORDER BY records DESC LIMIT ?",
        [args.limit],
    )
    with pd.option_context(
        "display.width", 200, "display.max_columns", 20, "display.max_colwidth", 60
    ):
        print("recent ingests:")
        print(log.to_string(index=False) if not log.empty else "  (none)")
        print("\nquarantined records by file and reason:")
        print(q.to_string(index=False) if not q.empty else "  (none)")
    return 0
