"""``lumina-analytics forecast``: forecast a CSV (or a warehouse metric) with intervals."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from lumina_analytics.errors import IngestError, SchemaError


def read_series_csv(path: str | Path) -> pd.DataFrame:
    """A CSV with ``ds,y`` or ``unique_id,ds,y`` as a long frame (``unique_id`` = ``all``)."""
    p = Path(path)
    if not p.exists():
        raise IngestError(str(p), None, "file does not exist")
    try:
        df = pd.read_csv(p)
    except (ValueError, pd.errors.ParserError) as exc:
        raise IngestError(str(p), None, f"not a readable CSV: {exc}") from exc
    missing = [c for c in ("ds", "y") if c not in df.columns]
    if missing:
        raise IngestError(
            str(p), "header", f"needs columns ds,y or unique_id,ds,y; missing {missing}"
        )
    if "unique_id" not in df.columns:
        df.insert(0, "unique_id", "all")
    try:
        ds = pd.to_datetime(df["ds"])
    except (ValueError, TypeError) as exc:
        raise IngestError(str(p), "column ds", f"unparseable timestamps: {exc}") from exc
    if isinstance(ds.dtype, pd.DatetimeTZDtype):
        ds = ds.dt.tz_convert("UTC").dt.tz_localize(None)
    df["ds"] = ds
    return df[["unique_id", "ds", "y"]]


def _run(args: argparse.Namespace) -> int:
    from lumina_analytics.forecasting import ProphetForecaster, backtest

    if args.file:
        df = read_series_csv(args.file)
    elif args.metric:
        from lumina_analytics.series import load_series

        by = [c for c in (args.by or "").split(",") if c]
        df = load_series(args.metric, by=by, freq=args.freq, start=args.start, end=args.end)
    else:
        raise SchemaError("give a CSV FILE or --metric NAME (read from the warehouse)")
    est = ProphetForecaster(
        freq=args.freq,
        horizon=args.horizon,
        level=args.level,
        n_jobs=args.n_jobs,
        n_folds=args.folds,
    )
    if args.backtest:
        res = backtest(df, est, n_windows=args.windows)
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            print(res.summary.round(3).to_string(index=False))
        return 0
    fc = est.fit(df).predict()
    for row in est.skipped_.itertuples(index=False):
        print(f"skipped {row.unique_id}: {row.reason}", file=sys.stderr)
    if args.save_model:
        est.save(args.save_model)
    if args.persist:
        if not args.metric:
            raise SchemaError("--persist needs --metric (forecasts of warehouse series)")
        from lumina_analytics.forecasting.report import save_forecasts

        cutoff = est.cutoff_
        if pd.isna(cutoff):
            raise SchemaError("no series could be forecast, nothing to store")
        n = save_forecasts(fc, pd.Timestamp(str(cutoff)), args.metric)
        print(f"stored {n} forecast rows in the warehouse (metric {args.metric})", file=sys.stderr)
    out = fc[["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper"]]
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        out.to_csv(args.output, index=False)
        print(f"wrote {len(out)} rows to {args.output}", file=sys.stderr)
    else:
        out.to_csv(sys.stdout, index=False)
    return 0


def register(sub: Any) -> None:
    """Add the ``forecast`` command."""
    p = sub.add_parser(
        "forecast",
        help="forecast series from a CSV (ds,y or unique_id,ds,y) or a warehouse metric",
        description=(
            "Fit one model per series (Prophet and seasonal-naive baselines, chosen by an "
            "inner backtest) and write unique_id,ds,yhat,yhat_lower,yhat_upper."
        ),
    )
    p.add_argument("file", nargs="?", help="CSV with ds,y or unique_id,ds,y (no warehouse needed)")
    p.add_argument("--metric", help="instead of FILE: a series.load_series metric, e.g. requests")
    p.add_argument(
        "--by", help="comma-separated grouping columns for --metric, e.g. provider,model"
    )
    p.add_argument("--start", help="first timestamp for --metric (ISO, inclusive)")
    p.add_argument("--end", help="end timestamp for --metric (ISO, exclusive)")
    p.add_argument("--freq", default="1h", help="bucket width of the series (default 1h)")
    p.add_argument("--horizon", type=int, default=24, help="steps to forecast (default 24)")
    p.add_argument("--level", type=float, default=80.0, help="interval level in %% (default 80)")
    p.add_argument("-o", "--output", help="output CSV (default: stdout)")
    p.add_argument("--backtest", action="store_true", help="print rolling-origin metrics instead")
    p.add_argument("--windows", type=int, default=3, help="backtest windows (default 3)")
    p.add_argument(
        "--folds",
        type=int,
        default=None,
        help="inner backtest windows for model choice (default: 8 for short series, else 4)",
    )
    p.add_argument(
        "--persist",
        action="store_true",
        help="with --metric: also store the forecast in the warehouse `forecasts` table (dashboards read it)",
    )
    p.add_argument("--n-jobs", type=int, default=1, help="worker processes (-1: all cores)")
    p.add_argument("--save-model", metavar="JSON", help="save fitted models as JSON")
    p.set_defaults(func=_run)
