"""``lumina-analytics perf``: regression verdicts (a pipeline gate) and deployment impact."""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd

from lumina_analytics.errors import LuminaError

_SPEC_HELP = "START..END (ISO times) or version:V (resource service.version)"


def register(sub: Any) -> None:
    """Add the ``perf`` subcommands."""
    p = sub.add_parser("perf", help="performance regression verdicts and deployment impact")
    psub = p.add_subparsers(dest="perf_command", metavar="ACTION", required=True)
    c = psub.add_parser("compare", help="baseline vs candidate; exits 1 on a regression")
    c.add_argument("--baseline", required=True, help=_SPEC_HELP)
    c.add_argument("--candidate", required=True, help=_SPEC_HELP)
    c.add_argument("--service", help="only this service's spans")
    c.add_argument("--region", help="only spans whose resource cloud.region is this (window specs)")
    c.add_argument(
        "--alpha", type=float, default=0.01, help="significance level (Bonferroni-corrected)"
    )
    c.add_argument(
        "--min-ratio", type=float, default=1.1, help="minimal slowdown (median or p95 ratio)"
    )
    c.add_argument("--json", action="store_true", help="print the verdict as JSON")
    c.set_defaults(func=_compare)
    d = psub.add_parser("deployments", help="verdict for every deployment (before vs after)")
    d.add_argument("--before", default="30min", help="baseline length before each deployment")
    d.add_argument("--after", default="30min", help="candidate length after each deployment")
    d.add_argument("--json", action="store_true", help="print JSON records")
    d.set_defaults(func=_deployments)


def _load(spec: str, service: str | None, region: str | None) -> pd.DataFrame:
    from lumina_analytics.perf import load_version_spans, load_window_spans

    if spec.startswith("version:"):
        return load_version_spans(None, spec.split(":", 1)[1], service)
    if ".." in spec:
        a, b = spec.split("..", 1)
        try:
            start, end = pd.Timestamp(a), pd.Timestamp(b)
        except (ValueError, TypeError) as exc:
            raise LuminaError(
                f"cannot parse window {spec!r}; use START..END in ISO format"
            ) from exc
        return load_window_spans(None, start, end, service, region)
    raise LuminaError(f"cannot read {spec!r}: use {_SPEC_HELP}")


def _compare(args: argparse.Namespace) -> int:
    from lumina_analytics.perf import compare

    base = _load(args.baseline, args.service, args.region)
    cand = _load(args.candidate, args.service, args.region)
    v = compare(
        base,
        cand,
        alpha=args.alpha,
        min_ratio=args.min_ratio,
        baseline_label=args.baseline,
        candidate_label=args.candidate,
    )
    print(v.to_json() if args.json else v.to_text())
    return 1 if v.is_regression else 0


def _deployments(args: argparse.Namespace) -> int:
    from lumina_analytics.perf import deployment_impact, load_deployments
    from lumina_analytics.traces import load_spans

    deps = load_deployments(None)
    if deps.empty:
        print("no deployments in the warehouse")
        return 0
    lo = pd.Timestamp(deps["ts"].min()) - pd.Timedelta(args.before)
    hi = pd.Timestamp(deps["ts"].max()) + pd.Timedelta(args.after)
    spans = load_spans(None, lo, hi, services=sorted(deps["service"].unique()))
    res = deployment_impact(spans, deps, args.before, args.after)
    if args.json:
        print(res.to_json(orient="records", indent=2, date_format="iso"))
    else:
        print(res.drop(columns=["reasons"]).to_string(index=False))
    return 1 if (res["verdict"] == "regression").any() else 0
