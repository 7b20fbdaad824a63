"""series.load_series on a small warehouse, and its in-memory twin series_from_frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lumina_analytics.errors import SchemaError
from lumina_analytics.series import load_series, series_from_frame
from lumina_analytics.warehouse import Warehouse, append_frame


def make_calls(days: int = 3, n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """An llm_calls-shaped frame with two providers, tenants (some NULL) and errors."""
    rng = np.random.default_rng(seed)
    secs = np.sort(rng.uniform(0, days * 86400, n))
    ts = pd.Timestamp("2026-10-01") + pd.to_timedelta(secs, unit="s")
    return pd.DataFrame(
        {
            "ts": ts.astype("datetime64[us]"),
            "trace_id": [f"{i:032x}" for i in range(n)],
            "span_id": [f"{i:016x}" for i in range(n)],
            "provider": rng.choice(["openai", "anthropic"], n),
            "model": rng.choice(["gpt-4o", "claude"], n),
            "input_tokens": rng.integers(10, 1000, n),
            "output_tokens": rng.integers(10, 500, n),
            "latency_ms": rng.gamma(2.0, 300.0, n),
            "ttft_ms": rng.gamma(2.0, 50.0, n),
            "status": rng.choice(["ok", "error"], n, p=[0.95, 0.05]),
            "tenant": rng.choice(np.array(["acme", "globex", None], dtype=object), n),
            "cost_usd": rng.uniform(0, 0.01, n),
        }
    )


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Warehouse, pd.DataFrame]:
    calls = make_calls()
    w = Warehouse(Path(tmp_path_factory.mktemp("series")) / "w.duckdb")
    with w.writer() as con:
        append_frame(con, "llm_calls", calls)
        metrics = pd.DataFrame(
            {
                "ts": pd.date_range("2026-10-01", periods=6, freq="30min").astype("datetime64[us]"),
                "name": "gpu_util",
                "labels": ['{"node":"a"}', '{"node":"b"}'] * 3,
                "value": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            }
        )
        append_frame(con, "metrics", metrics)
    return w, calls


@pytest.mark.parametrize(
    "metric",
    [
        "requests",
        "errors",
        "error_rate",
        "tokens",
        "cost_usd",
        "latency_p95",
        "ttft_p95",
        "peak_rpm",
        "peak_tpm",
    ],
)
def test_sql_matches_pandas(wh: tuple[Warehouse, pd.DataFrame], metric: str) -> None:
    w, calls = wh
    a = load_series(metric, by=["provider", "tenant"], freq="1h", warehouse=w)
    b = series_from_frame(calls, metric, by=["provider", "tenant"], freq="1h")
    pd.testing.assert_frame_equal(a, b, check_dtype=False, check_exact=False, rtol=1e-9)
    assert set(a["unique_id"]) >= {"openai/acme", "anthropic/unknown"}
    assert len(a) == 6 * 72  # 2 providers x 3 tenants x 72 hours, gaps explicit


def test_gaps_explicit_and_window(wh: tuple[Warehouse, pd.DataFrame]) -> None:
    w, calls = wh
    s = load_series(
        "requests",
        freq="10min",
        start="2026-09-30",
        end="2026-10-05",
        warehouse=w,
        filters={"provider": ["openai"]},
    )
    assert (s["unique_id"] == "all").all()
    assert len(s) == 5 * 144
    assert s["ds"].min() == pd.Timestamp("2026-09-30")
    assert s.loc[s["ds"] < "2026-10-01", "y"].eq(0).all()
    assert s["y"].sum() == (calls["provider"] == "openai").sum()
    lat = load_series(
        "latency_p50", freq="10min", start="2026-09-30", end="2026-10-01", warehouse=w
    )
    assert lat["y"].isna().all()


def test_peak_rpm_by_hand() -> None:
    ts = pd.to_datetime(
        ["2026-10-01 00:00:10", "2026-10-01 00:00:20", "2026-10-01 00:05:00", "2026-10-01 01:30:00"]
    )
    calls = pd.DataFrame({"ts": ts, "status": "ok", "input_tokens": 1, "output_tokens": 2})
    s = series_from_frame(calls, "peak_rpm", freq="1h")
    assert s["y"].tolist() == [2.0, 1.0]
    t = series_from_frame(calls, "peak_tpm", freq="1h")
    assert t["y"].tolist() == [6.0, 3.0]


def test_metrics_table(wh: tuple[Warehouse, pd.DataFrame]) -> None:
    w, _ = wh
    s = load_series("metric:gpu_util", by=["node"], freq="1h", warehouse=w)
    assert s["unique_id"].tolist() == ["a", "a", "a", "b", "b", "b"]
    assert s["y"].tolist() == [1.0, 3.0, 5.0, 2.0, 4.0, 6.0]


def test_rejects_unknown_columns_and_metrics(wh: tuple[Warehouse, pd.DataFrame]) -> None:
    w, _ = wh
    with pytest.raises(SchemaError, match="allowed columns"):
        load_series("requests", by=["ts; DROP TABLE llm_calls"], warehouse=w)
    with pytest.raises(SchemaError, match="allowed columns"):
        load_series("requests", filters={"1=1 OR provider": ["x"]}, warehouse=w)
    with pytest.raises(SchemaError, match="unknown metric"):
        load_series("bogus", warehouse=w)
    with pytest.raises(SchemaError, match="fixed bucket"):
        load_series("requests", freq="MS", warehouse=w)
    injected = load_series(
        "requests",
        filters={"provider": ["x' OR '1'='1"]},
        warehouse=w,
        start="2026-10-01",
        end="2026-10-02",
    )
    assert injected["y"].sum() == 0
