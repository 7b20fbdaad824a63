"""``lumina-analytics anomaly``: score a CSV, detect anomalies in the warehouse, run the NAB table."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from lumina_analytics.errors import IngestError


def register(sub: Any) -> None:
    """Add the ``anomaly`` subcommands."""
    from lumina_analytics.anomaly import DETECTORS

    p = sub.add_parser("anomaly", help="causal anomaly detection and NAB evaluation")
    asub = p.add_subparsers(dest="anomaly_command", metavar="ACTION", required=True)

    sc = asub.add_parser(
        "score",
        help="score a timestamp,value CSV causally into timestamp,value,anomaly_score",
    )
    sc.add_argument("file", help="CSV with columns timestamp,value (e.g. a NAB data file)")
    sc.add_argument("-o", "--output", required=True, help="output CSV path ('-' for stdout)")
    sc.add_argument("--detector", default="ensemble", choices=sorted(DETECTORS))
    sc.set_defaults(func=_score)

    de = asub.add_parser("detect", help="score warehouse series and write the anomalies table")
    de.add_argument(
        "--metric", required=True, help="e.g. latency_p95, errors, cost_usd, metric:<name>"
    )
    de.add_argument("--by", default="", help="comma-separated dimensions, e.g. provider,model")
    de.add_argument("--since", default=None, help="ISO start (inclusive); default: all data")
    de.add_argument("--until", default=None, help="ISO end (exclusive); default: all data")
    de.add_argument("--freq", default="1h", help="bucket width (default 1h)")
    de.add_argument("--detector", default="ensemble", choices=sorted(DETECTORS))
    de.add_argument("--sensitivity", type=float, default=1.0, help="(0, 1], 1 flags every alarm")
    de.add_argument(
        "--warmup", type=int, default=48, help="rows per series before any alarm (default 48)"
    )
    de.add_argument(
        "--suppression",
        type=int,
        default=12,
        help="longest gap in rows between alarms of one event; later alarms of the event are muted (default 12)",
    )
    de.add_argument("--dry-run", action="store_true", help="print flagged rows, write nothing")
    de.set_defaults(func=_detect)

    nb = asub.add_parser("nab", help="print the NAB-style score table of a detector")
    nb.add_argument("--data", default=None, help="NAB folder (default: ../shared/data/nab)")
    nb.add_argument("--detector", default="ensemble", choices=sorted(DETECTORS))
    nb.add_argument("--per-file", action="store_true", help="also print raw scores per file")
    nb.set_defaults(func=_nab)


def read_timestamp_value_csv(path: str | Path) -> pd.DataFrame:
    """Read a ``timestamp,value`` CSV keeping row order."""
    p = Path(path)
    if not p.is_file():
        raise IngestError(str(p), None, "file does not exist")
    try:
        df = pd.read_csv(p)
    except (ValueError, pd.errors.ParserError) as exc:
        raise IngestError(str(p), None, f"not a readable CSV: {exc}") from exc
    missing = [c for c in ("timestamp", "value") if c not in df.columns]
    if missing:
        raise IngestError(str(p), "header", f"needs columns timestamp,value; missing {missing}")
    try:
        df["value"] = pd.to_numeric(df["value"])
    except (ValueError, TypeError) as exc:
        raise IngestError(str(p), "column value", f"not numeric: {exc}") from exc
    return df


def _score(args: argparse.Namespace) -> int:
    from lumina_analytics.anomaly import score_values

    df = read_timestamp_value_csv(args.file)
    out = df[["timestamp", "value"]].copy()
    out["anomaly_score"] = score_values(df["value"].to_numpy(), args.detector)
    if args.output == "-":
        out.to_csv(sys.stdout, index=False)
    else:
        out.to_csv(args.output, index=False)
        flagged = int((out["anomaly_score"] >= 0.5).sum())
        print(f"scored {len(out)} rows of {args.file} -> {args.output} ({flagged} alarms)")
    return 0


def _detect(args: argparse.Namespace) -> int:
    from lumina_analytics.anomaly import make_detector, score_frame
    from lumina_analytics.series import load_series
    from lumina_analytics.warehouse import Warehouse, append_frame

    by = [c for c in args.by.split(",") if c]
    wh = Warehouse()
    frame = load_series(args.metric, by, args.freq, args.since, args.until, wh)
    if frame.empty:
        print(f"no data for {args.metric} in the requested range")
        return 0
    det = make_detector(args.detector, warmup=args.warmup, suppression=args.suppression)
    scored = score_frame(frame, detector=det, sensitivity=args.sensitivity)
    scored["metric"] = args.metric
    scored["detector"] = f"{args.detector}:{args.metric}"
    scored["created_at"] = datetime.now().replace(microsecond=0)
    flagged = scored[scored["is_anomaly"]]
    with pd.option_context("display.width", 160, "display.max_rows", 50):
        print(
            flagged[["unique_id", "ds", "score"]].to_string(index=False)
            if len(flagged)
            else "no anomalies"
        )
    if args.dry_run:
        return 0
    with wh.writer() as con:
        n = append_frame(con, "anomalies", scored)
    print(
        f"{len(scored)} scored rows ({len(flagged)} anomalies), {n} new rows written to anomalies"
    )
    return 0


def default_nab_dir() -> Path:
    """``../shared/data/nab`` next to the project root (the development copy of NAB)."""
    from lumina_analytics.config import project_root

    return project_root().parent / "shared" / "data" / "nab"


def _nab(args: argparse.Namespace) -> int:
    from lumina_analytics.anomaly import score_values
    from lumina_analytics.nab import evaluate

    data = Path(args.data) if args.data else default_nab_dir()
    res = evaluate(data, lambda f: score_values(f["value"].to_numpy(), args.detector))
    print(f"NAB-style scores of detector {args.detector!r} on {data} (0 = null, 100 = perfect)")
    print(res.table.round(1).to_string())
    print("thresholds: " + ", ".join(f"{k}={v:.4f}" for k, v in res.thresholds.items()))
    if args.per_file:
        per = res.per_file.pivot(index="file", columns="profile", values="raw")
        print(per.round(2).to_string())
    return 0
