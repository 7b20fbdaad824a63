"""``lumina-analytics providers``: compare providers/models and judge a traffic switch."""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd

from lumina_analytics.cli import LazyModule

datasets = LazyModule("lumina_analytics.datasets")
providers = LazyModule("lumina_analytics.providers")


def _calls(args: argparse.Namespace) -> pd.DataFrame:
    if args.file:
        calls = datasets.load_calls(args.file)
        ts = pd.to_datetime(calls["ts"])
        if args.start:
            calls = calls[ts >= pd.Timestamp(args.start)]
        if args.end:
            calls = calls[pd.to_datetime(calls["ts"]) < pd.Timestamp(args.end)]
        return calls
    return datasets.load_llm_calls(None, args.start, args.end)


def _weights(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    out: dict[str, float] = {}
    for part in text.split(","):
        name, _, w = part.partition("=")
        out[name.strip()] = float(w or 1)
    return out


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "file",
        nargs="?",
        help="calls or llmperf CSV/JSON/Parquet (default: the warehouse's llm_calls)",
    )
    p.add_argument("--by", default="provider,model", help="grouping columns, comma-separated")
    p.add_argument("--start", help="first timestamp (inclusive, ISO)")
    p.add_argument("--end", help="last timestamp (exclusive, ISO)")
    p.add_argument("--json", metavar="PATH", help="also write the result as JSON")


def register(sub: Any) -> None:
    """Add the ``providers`` subcommands."""
    p = sub.add_parser("providers", help="compare AI providers/models; judge a traffic switch")
    psub = p.add_subparsers(dest="providers_command", metavar="ACTION", required=True)
    c = psub.add_parser(
        "compare",
        help="latency, TTFT, throughput, errors, availability and cost per group, with intervals",
    )
    _common(c)
    c.add_argument(
        "--n-boot", type=int, default=1000, help="bootstrap replicates (0: no intervals)"
    )
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--correction", choices=["holm", "bh"], default="holm")
    c.add_argument(
        "--weights", help="ranking weights, e.g. latency_p50=1,error_rate=2,cost_per_1k_tokens=1"
    )
    c.add_argument(
        "--sql",
        action="store_true",
        help="point estimates computed in DuckDB (large data, no intervals)",
    )
    c.set_defaults(func=_compare)
    j = psub.add_parser(
        "judge",
        help="Kayenta-style pass/marginal/fail verdict for baseline -> candidate (exit 1 unless pass)",
    )
    _common(j)
    j.add_argument(
        "--baseline", required=True, help="group label, e.g. 'openai / gpt-4o', or a provider"
    )
    j.add_argument("--candidate", required=True)
    j.set_defaults(func=_judge)


def _compare(args: argparse.Namespace) -> int:
    by = [b.strip() for b in args.by.split(",") if b.strip()]
    if args.sql:
        if args.file:
            table = providers.compare_warehouse(
                by=by,
                start=args.start,
                end=args.end,
                frame=datasets.load_calls(args.file),
                n_boot=args.n_boot,
                seed=args.seed,
            )
        else:
            table = providers.compare_warehouse(
                None, by=by, start=args.start, end=args.end, n_boot=args.n_boot, seed=args.seed
            )
        print(table.to_string(index=False))
        if args.json:
            table.to_json(args.json, orient="records", indent=2)
        return 0
    res = providers.compare(
        _calls(args),
        by=by,
        n_boot=args.n_boot,
        seed=args.seed,
        correction=args.correction,
        weights=_weights(args.weights),
    )
    with pd.option_context(
        "display.width", 200, "display.max_columns", 30, "display.max_colwidth", 40
    ):
        print(res.summary().to_string(index=False))
        if res.ranking is not None:
            print("\nranking:")
            print(res.ranking[["rank", "group", "score"]].to_string(index=False))
        if res.pairwise is not None:
            sig = res.pairwise[res.pairwise["significant"]]
            print(
                f"\n{len(sig)} of {len(res.pairwise)} pairwise differences significant ({res.settings['correction']}-corrected)"
            )
    if args.json:
        res.to_json(args.json)
    return 0


def _judge(args: argparse.Namespace) -> int:
    by = [b.strip() for b in args.by.split(",") if b.strip()]
    v = providers.judge(_calls(args), args.baseline, args.candidate, by=by)
    print(f"{v.baseline} -> {v.candidate}: {v.decision.upper()} (score {v.score:.0f})")
    for r in v.reasons:
        print(f"  - {r}")
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(
            v.metrics[
                ["metric", "baseline", "candidate", "effect", "p_value", "allowed", "result"]
            ].to_string(index=False)
        )
    if args.json:
        v.to_json(args.json)
    return 0 if v.decision == "pass" else 1
