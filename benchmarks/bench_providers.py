"""Benchmark: provider comparison point estimates over many calls, DuckDB SQL against pandas.

Both implementations compute the same statistics (latency/TTFT/ITL/throughput percentiles
over successful calls, error rates by type, availability, cost per 1k tokens and per
successful request) for every provider/model; the run checks they agree and reports the
time of each and their ratio. Bootstrap intervals are not part of this comparison.

    .venv/bin/python benchmarks/bench_providers.py --rows 10000000
    .venv/bin/python benchmarks/bench_providers.py --rows 1000000 --boot 200   # also time compare() with intervals
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from lumina_analytics import providers

MODELS = [
    ("openai", "gpt-4o", 450.0, 12.0),
    ("openai", "gpt-4o-mini", 300.0, 7.0),
    ("anthropic", "claude-sonnet-4-20250514", 650.0, 14.0),
    ("anthropic", "claude-3-5-haiku-20241022", 400.0, 8.0),
    ("google", "gemini-2.5-flash", 350.0, 6.0),
    ("mistral_ai", "mistral-small-latest", 250.0, 6.0),
]


def make_calls(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` synthetic calls with the columns compare() reads (categoricals keep memory low)."""
    rng = np.random.default_rng(seed)
    prov_names = sorted({m[0] for m in MODELS})
    prov_code = np.array([prov_names.index(m[0]) for m in MODELS])
    mi = rng.integers(0, len(MODELS), n)
    ttft_med = np.array([m[2] for m in MODELS])[mi]
    itl_med = np.array([m[3] for m in MODELS])[mi]
    out = (rng.lognormal(5.0, 0.85, n) + 1).astype(np.int64)
    inp = (rng.lognormal(6.6, 1.0, n) + 1).astype(np.int64)
    ttft = rng.lognormal(np.log(ttft_med), 0.35)
    lat = ttft + itl_med * (out - 1) * rng.lognormal(0, 0.25, n)
    u = rng.random(n)
    err_codes = np.select([u < 0.005, u < 0.008, u < 0.01], [1, 2, 3], default=0)
    error_type = np.array([None, "rate_limit", "server_error", "timeout"], dtype=object)[err_codes]
    frame = pd.DataFrame(
        {
            "provider": pd.Categorical.from_codes(prov_code[mi], categories=prov_names),
            "model": pd.Categorical.from_codes(mi, categories=[m[1] for m in MODELS]),
            "latency_ms": lat,
            "ttft_ms": ttft,
            "input_tokens": inp,
            "output_tokens": out,
            "status": pd.Categorical.from_codes(
                (err_codes > 0).astype(int), categories=["ok", "error"]
            ),
            "error_type": error_type,
            "cost_usd": inp * 2.5e-6 + out * 1e-5,
        }
    )
    return frame


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--boot",
        type=int,
        default=0,
        help="also time compare() with this many bootstrap replicates",
    )
    args = ap.parse_args()

    t = time.perf_counter()
    calls = make_calls(args.rows, args.seed)
    gen_s = time.perf_counter() - t
    print(
        f"generated {len(calls):,} calls in {gen_s:.1f}s ({calls.memory_usage(deep=True).sum() / 1e9:.2f} GB)"
    )

    t = time.perf_counter()
    sql = providers.compare_warehouse(frame=calls)
    sql_s = time.perf_counter() - t
    print(f"duckdb sql   : {sql_s:8.2f} s")

    t = time.perf_counter()
    pdf = providers.compare_points(calls)
    pd_s = time.perf_counter() - t
    print(f"pandas       : {pd_s:8.2f} s")

    a = sql.set_index(["provider", "model"]).sort_index()
    b = pdf.set_index(["provider", "model"]).sort_index()
    worst = max(
        float(
            np.nanmax(
                np.abs(a[c].astype(float) - b[c].astype(float))
                / np.maximum(np.abs(b[c].astype(float)), 1e-12)
            )
        )
        for c in b.columns
        if c in a.columns
    )
    print(f"max relative difference between the two: {worst:.2e}")
    result = {
        "rows": len(calls),
        "duckdb_s": sql_s,
        "pandas_s": pd_s,
        "pandas_over_duckdb": pd_s / sql_s,
        "max_rel_diff": worst,
    }
    if args.boot:
        t = time.perf_counter()
        providers.compare(calls, n_boot=args.boot, pairwise=False)
        result["pandas_bootstrap_s"] = time.perf_counter() - t
        print(
            f"compare() with {args.boot} bootstrap replicates: {result['pandas_bootstrap_s']:.1f} s"
        )
    print(f"ratio pandas / duckdb: {pd_s / sql_s:.1f}x")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
