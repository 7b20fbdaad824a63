"""365-day range query on rollups vs the same on raw ``llm_calls`` (same run, ratio printed).

    .venv/bin/python benchmarks/bench_rollups.py [--rows 2000000]

Synthesizes a year of calls with DuckDB's ``range()`` into a temporary warehouse, runs
``maintain`` (which builds the hourly and daily rollups), then times per-provider requests,
errors, cost, tokens and p95 latency over 365 days: from raw rows vs ``read_rollup``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from lumina_analytics.ops import maintain, read_rollup
from lumina_analytics.warehouse import Warehouse

END = datetime(2026, 11, 1)
START = END - timedelta(days=365)


def synthesize(wh: Warehouse, rows: int) -> None:
    """A year of calls, evenly spread, five providers, random latency and errors."""
    step_ms = int(365 * 86_400_000 / rows)
    with wh.writer() as con:
        con.execute(
            "INSERT INTO llm_calls (ts, trace_id, span_id, provider, model, tenant, agent, region, "
            "service, latency_ms, status, input_tokens, output_tokens, cost_usd) "
            "SELECT ? + to_milliseconds(range * ?), lpad(to_hex(range), 32, '0'), "
            "lpad(to_hex(range), 16, '0'), "
            "(['openai','anthropic','google','mistral','aws'])[1 + range % 5], "
            "'m' || (range % 7), 't' || (range % 20), 'a' || (range % 4), 'r' || (range % 3), "
            "'svc' || (range % 6), 50 + random() * 2000, "
            "CASE WHEN random() < 0.03 THEN 'error' ELSE 'ok' END, "
            "(random() * 2000)::BIGINT, (random() * 300)::BIGINT, random() / 100 "
            "FROM range(?)",
            [START, step_ms, rows],
        )


RAW_SQL = (
    "SELECT provider AS value, count(*) AS requests, count(*) FILTER (WHERE status='error') AS errors, "
    "sum(cost_usd) AS cost_usd, sum(input_tokens) AS input_tokens, "
    "quantile_cont(latency_ms, 0.95) AS latency_p95_ms "
    "FROM llm_calls WHERE ts >= ? AND ts < ? GROUP BY provider ORDER BY requests DESC"
)


def _time(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        wh = Warehouse(Path(d) / "bench.duckdb")
        t = time.perf_counter()
        synthesize(wh, args.rows)
        print(f"synthesized {args.rows:,} calls over 365 days in {time.perf_counter() - t:.1f}s")
        t = time.perf_counter()
        res = maintain(wh, retention_days=400, now=END)
        print(f"maintain (rollups {res.rollup_rows}) in {time.perf_counter() - t:.1f}s")
        raw = _time(lambda: wh.query(RAW_SQL, [START, END]), args.repeat)
        roll = _time(
            lambda: read_rollup(START, END, dimension="provider", combine=True, warehouse=wh),
            args.repeat,
        )
        overhead = _time(lambda: wh.query("SELECT 1 AS one"), args.repeat)
        a = wh.query(RAW_SQL, [START, END]).set_index("value")
        b = read_rollup(START, END, dimension="provider", combine=True, warehouse=wh).set_index(
            "value"
        )
        assert (a["requests"] == b["requests"].loc[a.index]).all()
        print(
            f"365-day per-provider query: raw {raw * 1000:.1f} ms, rollups {roll * 1000:.1f} ms "
            f"(median of {args.repeat}); ratio raw/rollup = {raw / roll:.1f}x"
        )
        net_raw, net_roll = raw - overhead, max(roll - overhead, 1e-4)
        print(
            f"minus the {overhead * 1000:.1f} ms of opening a read-only connection: raw "
            f"{net_raw * 1000:.1f} ms, rollups {net_roll * 1000:.1f} ms, ratio {net_raw / net_roll:.1f}x"
        )


if __name__ == "__main__":
    main()
