"""``lumina-analytics simulate`` and ``lumina-analytics demo``: synthetic telemetry."""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path
from typing import Any

from lumina_analytics.errors import ConfigError
from lumina_analytics.simulate.model import DEFAULT_START


def _start(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {value!r}") from exc


def _add_common(p: argparse.ArgumentParser, days: int, scale: float, out_help: str) -> None:
    p.add_argument("--days", type=int, default=days, help=f"days to simulate (default {days})")
    p.add_argument(
        "--scale",
        type=float,
        default=scale,
        help="traffic multiplier; 30 days at 1.0 is ~320,000 LLM calls (default %(default)s)",
    )
    p.add_argument(
        "--seed", type=int, default=7, help="random seed; same seed, same bytes (default 7)"
    )
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help=out_help)
    p.add_argument(
        "--start",
        type=_start,
        default=None,
        metavar="YYYY-MM-DD",
        help=f"first simulated day, UTC (default {DEFAULT_START}, fixed for reproducibility)",
    )
    p.add_argument("--gzip", action="store_true", help="gzip the OTLP JSON Lines files")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def register(sub: Any) -> None:
    """Add the ``simulate`` and ``demo`` commands."""
    files = (
        "Writes traces/*.otlp.jsonl, metrics/*.otlp.jsonl, metrics/*.prom, logs/*.otlp.jsonl, "
        "events.csv, deployments.csv, incidents.csv (ground truth), effects.json (true "
        "effect sizes) and manifest.json."
    )
    p = sub.add_parser(
        "simulate",
        help="write deterministic synthetic Lumina telemetry files (no warehouse)",
        description="Simulate Lumina platform telemetry with injected incidents. " + files,
    )
    _add_common(p, 30, 1.0, "output directory (default: <data dir>/demo-telemetry)")
    p.set_defaults(func=_simulate)

    d = sub.add_parser(
        "demo",
        help="simulate telemetry and ingest it into the warehouse (a ready-to-explore demo)",
        description=(
            "Simulate Lumina telemetry, then load every file through the normal ingest path "
            "(lumina_analytics.ingest.ingest_paths) into the warehouse given by --warehouse / "
            "LUMINA_WAREHOUSE (default data/lumina.duckdb). " + files
        ),
    )
    _add_common(
        d, 30, 1.0, "directory for the simulated files (default: <data dir>/demo-telemetry)"
    )
    d.set_defaults(func=_demo)


def _run_simulation(args: argparse.Namespace) -> Any:
    from lumina_analytics.simulate import simulate

    if args.days < 1:
        raise ConfigError(f"--days must be at least 1, got {args.days}")
    t0 = time.perf_counter()
    result = simulate(
        days=args.days,
        scale=args.scale,
        seed=args.seed,
        out=args.out,
        start=args.start,
        gzip=args.gzip,
        progress=not args.no_progress,
    )
    print(result.summary())
    print(
        f"  wrote {sum(len(v) for v in result.paths.values())} files in {time.perf_counter() - t0:.1f}s"
    )
    return result


def _simulate(args: argparse.Namespace) -> int:
    _run_simulation(args)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from lumina_analytics.ingest import ingest_paths
    from lumina_analytics.warehouse import Warehouse

    t0 = time.perf_counter()
    result = _run_simulation(args)
    wh = Warehouse()
    t1 = time.perf_counter()
    # Data files only: effects.json and manifest.json describe the run, they are not telemetry.
    report = ingest_paths(result.telemetry_paths(), wh)
    print(report)
    print(f"  ingest took {time.perf_counter() - t1:.1f}s")
    print(f"warehouse: {wh.path}")
    for table, n in wh.table_counts().items():
        print(f"  {table:<14} {n:>12,}")
    print(f"demo built in {time.perf_counter() - t0:.1f}s")
    ok = bool(getattr(report, "ok", True))
    return 0 if ok else 1
