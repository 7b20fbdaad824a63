"""``lumina-analytics lake``: the Parquet lake shared by DuckDB and Spark.

``export`` / ``import`` move tables between the DuckDB file and the lake; ``info`` and
``query`` read the lake in place with DuckDB; ``ingest``, ``rollups``, ``forecast`` and
``anomaly`` run on the ``engine`` setting (``--engine`` overrides it). ``forecast`` and
``anomaly`` store their results in the lake's ``forecasts`` / ``anomalies`` tables (keys
already there are skipped, so re-running the same cutoff adds nothing); ``-o`` also writes
a CSV.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

_EPILOG = """\
lake: --lake PATH or URI, else $LUMINA_LAKE / the `lake` setting, else <data_dir>/lake.
engine: --engine duckdb|spark, else $LUMINA_ENGINE / the `engine` setting (default duckdb).

examples:
  lumina-analytics lake export                       # warehouse -> lake (one snapshot)
  lumina-analytics lake import --into copy.duckdb    # lake -> a DuckDB file
  lumina-analytics lake info
  lumina-analytics lake query "SELECT date, sum(cost_usd) FROM llm_calls GROUP BY 1 ORDER BY 1"
  lumina-analytics lake ingest telemetry/ --engine spark
  lumina-analytics lake rollups --engine spark
  lumina-analytics lake forecast --dimension provider --horizon 24   # -> lake `forecasts`
  lumina-analytics lake anomaly --dimension provider -o scores.csv   # -> `anomalies` + CSV
  lumina-analytics lake query "SELECT * FROM forecasts WHERE cutoff = (SELECT max(cutoff) FROM forecasts)"
"""


def _common(p: argparse.ArgumentParser, engine: bool = False) -> None:
    p.add_argument("--lake", metavar="PATH", help="lake root (default: the lake setting)")
    if engine:
        p.add_argument(
            "--engine", choices=("duckdb", "spark"), help="engine (default: the engine setting)"
        )


def register(sub: Any) -> None:
    """Add ``lake export|import|info|query|ingest|rollups|forecast|anomaly``."""
    p = sub.add_parser(
        "lake",
        help="hive-partitioned Parquet lake shared by DuckDB and Spark",
        description=__doc__,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lsub = p.add_subparsers(dest="lake_command", metavar="ACTION", required=True)

    e = lsub.add_parser("export", help="write warehouse tables to the lake (replacing them)")
    _common(e)
    e.add_argument("--tables", nargs="+", metavar="T", help="only these tables")
    e.set_defaults(func=_export)

    i = lsub.add_parser("import", help="load lake tables into a DuckDB warehouse (replacing them)")
    _common(i)
    i.add_argument("--into", metavar="PATH", help="warehouse file (default: the configured one)")
    i.add_argument("--tables", nargs="+", metavar="T", help="only these tables")
    i.set_defaults(func=_import)

    n = lsub.add_parser("info", help="manifest and row counts of the lake")
    _common(n)
    n.add_argument("--json", action="store_true", help="print the manifest as JSON")
    n.set_defaults(func=_info)

    q = lsub.add_parser("query", help="run read-only SQL over the lake with DuckDB")
    _common(q)
    q.add_argument("sql", help="SQL over the lake's tables (each has a `date` partition column)")
    q.add_argument("-o", "--out", metavar="CSV", help="write the result to a CSV file")
    q.set_defaults(func=_query)

    g = lsub.add_parser("ingest", help="load telemetry files straight into the lake")
    _common(g, engine=True)
    g.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    g.add_argument("--price-overrides", metavar="FILE", help="YAML price overrides")
    g.set_defaults(func=_ingest)

    r = lsub.add_parser("rollups", help="recompute the hourly/daily llm_calls rollups in the lake")
    _common(r, engine=True)
    r.set_defaults(func=_rollups)

    for name, helptext in (
        ("forecast", "forecast rollup series of one dimension (fan-out per series)"),
        ("anomaly", "score rollup series of one dimension for anomalies (fan-out per series)"),
    ):
        f = lsub.add_parser(name, help=helptext)
        _common(f, engine=True)
        f.add_argument(
            "--dimension", default="provider", help="rollup dimension (default provider)"
        )
        f.add_argument("--metric", default="requests", help="rollup metric (default requests)")
        f.add_argument("--grain", default="hour", choices=("hour", "day"), help="rollup grain")
        f.add_argument("-o", "--out", metavar="CSV", help="also write the results to a CSV")
        if name == "forecast":
            f.add_argument("--horizon", type=int, default=24, help="steps ahead (default 24)")
            f.set_defaults(func=_forecast)
        else:
            f.add_argument("--detector", default="ensemble", help="detector (default ensemble)")
            f.add_argument("--sensitivity", type=float, default=1.0, help="in (0, 1]")
            f.set_defaults(func=_anomaly)


def _export(args: argparse.Namespace) -> int:
    from lumina_analytics.lake import export_lake, resolve_lake

    counts = export_lake(None, args.lake, args.tables)
    print(
        f"exported {sum(counts.values()):,} rows in {len(counts)} tables to {resolve_lake(args.lake)}"
    )
    for t, n in counts.items():
        print(f"  {t:<18} {n:>12,}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from lumina_analytics.lake import import_lake, resolve_lake
    from lumina_analytics.warehouse import Warehouse

    wh = Warehouse(args.into)
    counts = import_lake(args.lake, wh, args.tables)
    print(f"imported {resolve_lake(args.lake)} into {wh.path}: {sum(counts.values()):,} rows")
    for t, n in counts.items():
        print(f"  {t:<18} {n:>12,}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from lumina_analytics.lake import lake_counts, read_manifest, resolve_lake

    root = resolve_lake(args.lake)
    manifest = read_manifest(root)
    if args.json:
        print(json.dumps(manifest, indent=2))
        return 0
    if not manifest:
        print(
            f"no lake at {root} (create one with `lumina-analytics lake export` or `lake ingest`)"
        )
        return 1
    print(
        f"lake {root}: format {manifest['format']}, schema version {manifest['schema_version']}, "
        f"updated {manifest['updated_at']} by {manifest['updated_by']}"
    )
    counts = lake_counts(root)
    for t, entry in manifest["tables"].items():
        part = ",".join(entry["partition_by"]) or "-"
        print(f"  {t:<18} {counts.get(t, 0):>12,} rows  partitioned by {part}")
    return 0


def _query(args: argparse.Namespace) -> int:
    from lumina_analytics.lake import lake_query

    frame = lake_query(args.sql, lake=args.lake)
    if args.out:
        frame.to_csv(args.out, index=False)
        print(f"wrote {len(frame):,} rows to {args.out}")
    else:
        print(frame.to_string(index=False, max_rows=200))
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from lumina_analytics import scaleout

    report = scaleout.ingest(
        args.paths, lake=args.lake, engine=args.engine, price_overrides=args.price_overrides
    )
    print(report)
    for f in report.failed:
        print(f"failed: {f.message}", file=sys.stderr)
    return 0 if report.ok else 1


def _rollups(args: argparse.Namespace) -> int:
    from lumina_analytics import scaleout

    counts = scaleout.rollups(lake=args.lake, engine=args.engine)
    for t, n in counts.items():
        print(f"  rollup {t:<18} {n:>10,} rows")
    return 0


def _series(args: argparse.Namespace) -> Any:
    from lumina_analytics import scaleout

    return scaleout.rollup_series(
        lake=args.lake,
        engine=args.engine,
        dimension=args.dimension,
        metric=args.metric,
        grain=args.grain,
    )


def _metric(args: argparse.Namespace) -> str:
    from lumina_analytics.ops.rollups import GRAINS

    return f"{GRAINS[args.grain]}.{args.metric}"


def _store(args: argparse.Namespace, rows: Any, table: str, what: str) -> None:
    from lumina_analytics import scaleout
    from lumina_analytics.lake import resolve_lake

    n = scaleout.save_results(rows, table, lake=args.lake, engine=args.engine)
    skipped = len(rows) - n
    print(
        f"stored {n:,} new {what} rows in {table} of {resolve_lake(args.lake)}"
        + (f" ({skipped:,} already there, kept)" if skipped else "")
    )
    if args.out:
        rows.to_csv(args.out, index=False)
        print(f"wrote {len(rows):,} rows to {args.out}")


def _forecast(args: argparse.Namespace) -> int:
    from lumina_analytics import scaleout

    series = _series(args)
    if series.empty:
        print("no rollup rows for this dimension: run `lumina-analytics lake rollups` first")
        return 1
    freq = "1h" if args.grain == "hour" else "1D"
    out = scaleout.forecast(series, engine=args.engine, freq=freq, horizon=args.horizon)
    rows = scaleout.forecast_rows(out, metric=_metric(args), cutoff=series["ds"].max())
    print(f"forecast {len(out):,} steps for {out['unique_id'].nunique()} series")
    _store(args, rows, "forecasts", "forecast")
    return 0


def _anomaly(args: argparse.Namespace) -> int:
    from lumina_analytics import scaleout

    series = _series(args)
    if series.empty:
        print("no rollup rows for this dimension: run `lumina-analytics lake rollups` first")
        return 1
    out = scaleout.score(
        series, engine=args.engine, detector=args.detector, sensitivity=args.sensitivity
    )
    rows = scaleout.score_rows(out, metric=_metric(args))
    print(
        f"scored {len(out):,} points of {out['unique_id'].nunique()} series "
        f"({int(out['is_anomaly'].sum())} flagged)"
    )
    _store(args, rows, "anomalies", "score")
    return 0
