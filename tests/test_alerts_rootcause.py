"""Root-cause attribution on constructed llm_calls frames where the culprit is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lumina_analytics.alerts.rootcause import attribute, hint, rank_dimensions
from lumina_analytics.warehouse import Warehouse, append_frame

A0 = pd.Timestamp("2026-03-02 12:00")
A1 = A0 + pd.Timedelta(hours=1)
B0 = A0 - pd.Timedelta(hours=6)


def calls_frame(seed: int = 7, culprit: str = "anthropic", busy: str | None = None) -> pd.DataFrame:
    """6 h baseline + 1 h alert window; 2% errors everywhere except ``culprit`` (40%) in the alert."""
    rng = np.random.default_rng(seed)
    n = 21000
    ts = B0 + pd.to_timedelta(rng.uniform(0, 7 * 3600, n), unit="s")
    providers = np.array(["openai", "anthropic", "google"])
    models = {"openai": "gpt-4o", "anthropic": "claude-sonnet", "google": "gemini-pro"}
    prov = providers[rng.integers(0, 3, n)]
    if (
        busy is not None
    ):  # ``busy`` gets 3x its share of traffic in the alert window, same error rate
        alert = ts >= A0
        extra = alert & (rng.uniform(size=n) < 0.5)
        prov = np.where(extra, busy, prov)
    frame = pd.DataFrame(
        {
            "ts": ts,
            "provider": prov,
            "model": [models[p] for p in prov],
            "region": np.array(["us-east-1", "eu-west-1", "ap-south-1"])[rng.integers(0, 3, n)],
            "tenant": np.array([f"t{i}" for i in range(8)])[rng.integers(0, 8, n)],
            "agent": np.array(["planner", "coder", "critic"])[rng.integers(0, 3, n)],
            "latency_ms": rng.gamma(2.0, 400.0, n),
        }
    )
    p_err = np.where((frame["ts"] >= A0) & (frame["provider"] == culprit), 0.40, 0.02)
    frame["status"] = np.where(rng.uniform(size=n) < p_err, "error", "ok")
    return frame


def test_provider_causing_errors_ranks_first() -> None:
    frame = calls_frame()
    frame["service"] = "llm-proxy"  # one value carries every call: explains nothing
    contrib = attribute(frame, A0, A1, B0, A0, measure="errors")
    top = contrib.iloc[0]
    assert (top["dimension"], top["value"]) in {
        ("provider", "anthropic"),
        ("model", "claude-sonnet"),
    }
    ranked = rank_dimensions(contrib).set_index("dimension")
    assert ranked.loc["provider", "value"] == "anthropic"
    assert ranked.loc["provider", "share"] == pytest.approx(1.0, abs=0.1)
    # dimensions unrelated to the cause spread the excess: no value explains much more than its share
    assert ranked.loc["region", "share"] < 0.5
    assert ranked.loc["tenant", "share"] < 0.3
    assert ranked.index[0] in ("provider", "model") and ranked.index[1] in ("provider", "model")
    row = contrib[(contrib["dimension"] == "provider") & (contrib["value"] == "anthropic")].iloc[0]
    assert row["lift"] > 10  # 40% vs ~2%
    assert row["expected"] == pytest.approx(row["alert_calls"] * row["baseline_rate"])
    h = hint(contrib)
    assert h[0]["dimension"] in ("provider", "model") and h[0]["share"] > 0.9
    assert h[0]["score"] == pytest.approx(h[0]["share"] - h[0]["call_share"])
    assert ranked.loc["service", "share"] == pytest.approx(1.0, abs=0.01)
    assert ranked.loc["service", "score"] == pytest.approx(0.0, abs=0.01)
    assert "service" not in {x["dimension"] for x in h}


def test_volume_is_adjusted_for() -> None:
    """openai triples its traffic at an unchanged error rate: more errors, but no excess."""
    contrib = attribute(calls_frame(busy="openai"), A0, A1, B0, A0, measure="errors")
    by = contrib[contrib["dimension"] == "provider"].set_index("value")
    assert by.loc["openai", "alert_measure"] > 2 * by.loc["google", "alert_measure"]
    assert abs(by.loc["openai", "share"]) < 0.15
    assert by.loc["anthropic", "share"] > 0.85


def test_slow_measure_and_spans_shaped_frame() -> None:
    frame = calls_frame()
    slow = (frame["ts"] >= A0) & (frame["region"] == "eu-west-1")
    frame.loc[slow, "latency_ms"] *= 10
    spans = frame.rename(
        columns={"ts": "start_ts", "latency_ms": "duration_ms", "status": "status_code"}
    )
    contrib = attribute(spans, A0, A1, B0, A0, measure="slow", dimensions=["region", "provider"])
    assert contrib.iloc[0][["dimension", "value"]].tolist() == ["region", "eu-west-1"]


def test_requests_measure_and_empty_window() -> None:
    frame = calls_frame(busy="google")
    contrib = attribute(frame, A0, A1, B0, A0, measure="requests", dimensions=["provider"])
    assert contrib.iloc[0]["value"] == "google"
    empty = attribute(frame, A1 + pd.Timedelta(days=1), A1 + pd.Timedelta(days=2), B0, A0)
    assert empty.empty and rank_dimensions(empty).empty
    with pytest.raises(Exception, match="unknown root-cause measure"):
        attribute(frame, A0, A1, B0, A0, measure="vibes")


def test_load_calls_thin_loader() -> None:
    from lumina_analytics.alerts.rootcause import load_calls

    frame = calls_frame().head(2000).copy()
    frame["trace_id"] = [f"{i:032x}" for i in range(len(frame))]
    frame["span_id"] = [f"{i:016x}" for i in range(len(frame))]
    wh = Warehouse()
    with wh.writer() as con:
        append_frame(con, "llm_calls", frame)
    got = load_calls(B0, A1, {"provider": ["openai"]}, wh)
    assert len(got) == int((frame["provider"] == "openai").sum())
    assert set(got["provider"]) == {"openai"}
