"""Benchmark: provider comparison over many calls, DuckDB against pandas, in the same run.

Both implementations compute the same statistics (latency/TTFT/ITL/throughput percentiles
over successful calls, error rates by type, availability, cost per 1k tokens and per
successful request) for every provider/model. The run times each path twice: point
estimates only, then with bootstrap intervals (``--boot`` replicates, 95%): pandas
``providers.compare`` (exact order-statistic bootstrap of the quantiles over all rows,
multinomial error rates, cost ratios on a ``--max-boot-rows`` sample) against
``providers.compare_duckdb`` (SQL aggregates and a per-group hash sample, m-out-of-n
bootstrap). It checks the point estimates agree and reports how the interval widths of
the two paths compare, the time of each and the ratios.

    .venv/bin/python benchmarks/bench_providers.py --rows 10000000
    .venv/bin/python benchmarks/bench_providers.py --rows 1000000 --boot 200
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


def _max_rel_diff(a: pd.DataFrame, b: pd.DataFrame) -> float:
    return max(
        float(
            np.nanmax(
                np.abs(a[c].astype(float) - b[c].astype(float))
                / np.maximum(np.abs(b[c].astype(float)), 1e-12)
            )
        )
        for c in b.columns
        if c in a.columns
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap replicates (0: skip)")
    ap.add_argument("--max-boot-rows", type=int, default=5000)
    args = ap.parse_args()

    t = time.perf_counter()
    calls = make_calls(args.rows, args.seed)
    gen_s = time.perf_counter() - t
    print(
        f"generated {len(calls):,} calls in {gen_s:.1f}s ({calls.memory_usage(deep=True).sum() / 1e9:.2f} GB)"
    )
    keys = ["provider", "model"]

    def timed(label: str, fn: object) -> tuple[object, float]:
        t0 = time.perf_counter()
        out = fn()  # type: ignore[operator]
        s = time.perf_counter() - t0
        print(f"{label:<34}: {s:8.2f} s", flush=True)
        return out, s

    sql, sql_s = timed("duckdb points", lambda: providers.compare_warehouse(frame=calls))
    pdf, pd_s = timed("pandas points", lambda: providers.compare_points(calls))
    worst = _max_rel_diff(sql.set_index(keys).sort_index(), pdf.set_index(keys).sort_index())
    print(f"max relative difference of the point estimates: {worst:.2e}")
    result: dict[str, float | int] = {
        "rows": len(calls),
        "duckdb_s": sql_s,
        "pandas_s": pd_s,
        "pandas_over_duckdb": pd_s / sql_s,
        "max_rel_diff": worst,
    }
    if args.boot:
        kw = {"n_boot": args.boot, "max_boot_rows": args.max_boot_rows}
        db, db_s = timed(
            f"duckdb with {args.boot}-replicate CIs",
            lambda: providers.compare_duckdb(frame=calls, **kw),
        )
        pc, pc_s = timed(
            f"pandas with {args.boot}-replicate CIs",
            lambda: providers.compare(calls, pairwise=False, **kw),
        )
        wd = db.wide(intervals=True).set_index("group")  # type: ignore[attr-defined]
        wp = pc.wide(intervals=True).set_index("group")  # type: ignore[attr-defined]
        ratios = {}
        for m in ("latency_p50", "latency_p99", "error_rate", "cost_per_1k_tokens"):
            ratios[m] = float(
                np.nanmedian((wd[f"{m}_hi"] - wd[f"{m}_lo"]) / (wp[f"{m}_hi"] - wp[f"{m}_lo"]))
            )
        print("median CI width duckdb / pandas:", {k: round(v, 3) for k, v in ratios.items()})
        result.update(
            duckdb_ci_s=db_s,
            pandas_ci_s=pc_s,
            pandas_ci_over_duckdb_ci=pc_s / db_s,
            **{f"ci_width_ratio_{k}": v for k, v in ratios.items()},
        )
    print(f"ratio pandas / duckdb: points {pd_s / sql_s:.1f}x", end="")
    print(f", with intervals {result['pandas_ci_over_duckdb_ci']:.1f}x" if args.boot else "")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
