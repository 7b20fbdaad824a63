"""Long ranges read the rollups: history older than raw retention stays available and equal."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lumina_analytics import series
from lumina_analytics.ops import maintain
from lumina_analytics.warehouse import Warehouse, append_frame


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    rng = np.random.default_rng(5)
    n = 20_000
    ts = pd.Timestamp("2026-06-01") + pd.to_timedelta(rng.uniform(0, 90 * 86400, n), unit="s")
    calls = pd.DataFrame(
        {
            "ts": ts,
            "trace_id": [f"{i:032x}" for i in range(n)],
            "span_id": [f"{i:016x}" for i in range(n)],
            "provider": rng.choice(["openai", "anthropic", "google"], n),
            "input_tokens": rng.integers(10, 500, n),
            "output_tokens": rng.integers(1, 100, n),
            "latency_ms": rng.uniform(100, 900, n),
            "status": np.where(rng.random(n) < 0.05, "error", "ok"),
            "cost_usd": rng.uniform(0.0, 0.01, n),
        }
    )
    w = Warehouse(tmp_path / "w.duckdb")
    with w.writer() as con:
        append_frame(con, "llm_calls", calls)
    return w


def test_long_range_reads_rollups_with_the_same_answer(wh: Warehouse) -> None:
    start, end = datetime(2026, 6, 1), datetime(2026, 8, 30)
    raw = series.load_series(
        "requests", by=["provider"], freq="1D", start=start, end=end, warehouse=wh
    )
    maintain(wh, retention_days=100_000, now=datetime(2026, 9, 1))  # build rollups, keep raw
    rolled = series.load_series(
        "requests", by=["provider"], freq="1D", start=start, end=end, warehouse=wh
    )
    pd.testing.assert_frame_equal(
        raw.sort_values(["unique_id", "ds"]).reset_index(drop=True),
        rolled.sort_values(["unique_id", "ds"]).reset_index(drop=True),
        check_dtype=False,
    )
    # after retention deletes old raw rows, the long range is still complete from rollups
    maintain(wh, retention_days=20, now=datetime(2026, 9, 1))
    assert wh.query("SELECT min(ts) AS t FROM llm_calls")["t"][0] >= pd.Timestamp("2026-08-12")
    kept = series.load_series(
        "requests", by=["provider"], freq="1D", start=start, end=end, warehouse=wh
    )
    assert kept["y"].sum() == raw["y"].sum() == 20_000
    cost = series.load_series("cost_usd", freq="7D", start=start, end=end, warehouse=wh)
    assert cost["y"].sum() == pytest.approx(
        wh.query("SELECT sum(cost_usd) AS c FROM llm_rollup_daily WHERE dimension = 'all'")["c"][0]
    )


def test_short_ranges_and_quantiles_stay_on_raw_rows(wh: Warehouse) -> None:
    maintain(wh, retention_days=100_000, now=datetime(2026, 9, 1))
    short = series.load_series(
        "requests", freq="1h", start="2026-07-01", end="2026-07-08", warehouse=wh
    )
    assert (
        short["y"].sum()
        == wh.query(
            "SELECT count(*) AS n FROM llm_calls WHERE ts >= '2026-07-01' AND ts < '2026-07-08'"
        )["n"][0]
    )
    p95 = series.load_series(
        "latency_p95", freq="1D", start="2026-06-01", end="2026-08-30", warehouse=wh
    )
    assert p95["y"].notna().any()  # quantiles are not additive: computed from raw rows


def test_dashboard_trend_reads_rollups_for_long_unfiltered_ranges(wh: Warehouse) -> None:
    from lumina_analytics import dashboards as d

    maintain(wh, retention_days=20, now=datetime(2026, 9, 1))  # raw rows before 08-12 are gone
    long = d.Filters(datetime(2026, 6, 1), datetime(2026, 8, 30))
    trend = d.calls_over_time(long, "provider", "1 day", wh)
    assert trend["requests"].sum() == 20_000  # the whole history, from rollups
    assert set(trend.columns) == {
        "ds",
        "unique_id",
        "requests",
        "errors",
        "latency_p95_ms",
        "spend_usd",
    }
    filtered = d.Filters(long.start, long.end, providers=("openai",))
    raw = d.calls_over_time(filtered, "provider", "1 day", wh)  # a filter needs raw rows
    assert raw["requests"].sum() < trend.loc[trend.unique_id == "openai", "requests"].sum()
