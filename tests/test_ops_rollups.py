"""Rollups and retention: idempotent refresh, rollups outlive raw rows, long-range reads."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from lumina_analytics.cli import main
from lumina_analytics.errors import SchemaError
from lumina_analytics.ops import maintain, read_rollup, rollup_long
from lumina_analytics.warehouse import Warehouse, append_frame

NOW = datetime(2026, 6, 30, 12, 0)


def _calls(days: int = 40, per_hour: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    start = NOW.replace(hour=0) - timedelta(days=days)
    ts = pd.date_range(start, NOW, freq=f"{60 // per_hour}min", inclusive="left")
    n = len(ts)
    return pd.DataFrame(
        {
            "ts": ts,
            "trace_id": [f"{i:032x}" for i in range(n)],
            "span_id": [f"{i:016x}" for i in range(n)],
            "provider": rng.choice(["openai", "anthropic"], n),
            "model": rng.choice(["m1", "m2", None], n),
            "latency_ms": rng.gamma(2.0, 300.0, n),
            "status": rng.choice(["ok", "error"], n, p=[0.9, 0.1]),
            "tenant": "t1",
            "input_tokens": rng.integers(10, 1000, n),
            "output_tokens": rng.integers(1, 100, n),
            "cost_usd": rng.random(n) / 100,
        }
    )


@pytest.fixture
def wh() -> Warehouse:
    w = Warehouse()
    with w.writer() as con:
        append_frame(con, "llm_calls", _calls())
    return w


def _total(wh: Warehouse, grain: str = "day") -> pd.DataFrame:
    return read_rollup("2000-01-01", "2100-01-01", grain=grain, combine=True, warehouse=wh)


def test_rollups_match_raw_and_rerun_does_not_double_count(wh: Warehouse) -> None:
    raw = wh.query(
        "SELECT count(*) AS n, sum(cost_usd) AS c, count(*) FILTER (WHERE status='error') AS e FROM llm_calls"
    )
    maintain(wh, retention_days=365, now=NOW)
    first = _total(wh)
    assert int(first["requests"].iloc[0]) == int(raw["n"].iloc[0])
    assert int(first["errors"].iloc[0]) == int(raw["e"].iloc[0])
    assert first["cost_usd"].iloc[0] == pytest.approx(raw["c"].iloc[0])
    maintain(wh, retention_days=365, now=NOW)
    again = _total(wh)
    pd.testing.assert_frame_equal(first, again)
    hourly = _total(wh, "hour")
    assert int(hourly["requests"].iloc[0]) == int(raw["n"].iloc[0])
    by_model = read_rollup(
        "2000-01-01", "2100-01-01", dimension="model", combine=True, warehouse=wh
    )
    assert set(by_model["value"]) == {"m1", "m2", "(none)"}
    assert int(by_model["requests"].sum()) == int(raw["n"].iloc[0])


def test_retention_deletes_raw_but_keeps_rollups(wh: Warehouse) -> None:
    maintain(wh, retention_days=365, now=NOW)
    before = _total(wh)
    res = maintain(wh, retention_days=10, now=NOW)
    assert res.deleted_raw["llm_calls"] > 0
    oldest = wh.query("SELECT min(ts) AS t FROM llm_calls")["t"].iloc[0]
    assert oldest >= res.horizon == datetime(2026, 6, 20)
    after = _total(wh)  # deleted days' rollups survive, recent ones were recomputed
    pd.testing.assert_frame_equal(before, after)
    maintain(wh, retention_days=10, now=NOW + timedelta(days=1))
    assert int(_total(wh)["requests"].iloc[0]) == int(before["requests"].iloc[0])
    # rollups themselves expire after rollup_retention_days
    maintain(wh, retention_days=10, rollup_retention_days=5, now=NOW)
    left = read_rollup("2000-01-01", "2100-01-01", warehouse=wh)
    assert left["bucket"].min() >= datetime(2026, 6, 25)


def test_read_rollup_per_bucket_and_long_frame(wh: Warehouse) -> None:
    maintain(wh, retention_days=365, now=NOW)
    days = read_rollup("2026-06-01", "2026-06-08", dimension="provider", warehouse=wh)
    assert set(days["value"]) == {"openai", "anthropic"}
    assert days["bucket"].nunique() == 7
    assert (days["latency_p50_ms"] <= days["latency_p95_ms"]).all()
    long = rollup_long(days, "cost_usd")
    assert list(long.columns) == ["unique_id", "ds", "y"]
    assert set(long["unique_id"]) == {"provider=openai", "provider=anthropic"}
    with pytest.raises(SchemaError, match="dimension must be one of"):
        read_rollup("2026-06-01", "2026-06-08", dimension="colour", warehouse=wh)


def test_maintain_cli(wh: Warehouse, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["maintain", "--retention-days", "3650"]) == 0
    out = capsys.readouterr().out
    assert "llm_rollup_daily" in out and "file size" in out
