"""Insight ranking on a constructed two-week dataset: one incident in week 1, a quiet week 2."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lumina_analytics.insights import Insight, find_insights, hourly_metrics, insights_frame

T0 = pd.Timestamp("2026-10-05")  # a Monday
OUTAGE = (T0 + pd.Timedelta("2D 14h"), T0 + pd.Timedelta("2D 18h"))  # Wed 14:00-18:00, week 1


def _calls(seed: int = 1, days: int = 21, outage: bool = True) -> pd.DataFrame:
    """Three weeks of calls: a look-back week, week 1 with a provider outage, a quiet week 2."""
    rng = np.random.default_rng(seed)
    hours = pd.date_range(T0 - pd.Timedelta(days=7), periods=days * 24, freq="1h")
    profile = 0.4 + 0.6 * np.exp(-0.5 * ((hours.hour - 14) / 4.0) ** 2)
    weekly = np.where(hours.day_of_week >= 5, 0.5, 1.0)
    counts = rng.poisson(120 * profile * weekly)
    ts = (
        np.repeat(hours.to_numpy(), counts)
        + pd.to_timedelta(rng.uniform(0, 3600, counts.sum()), unit="s").to_numpy()
    )
    n = len(ts)
    provider = rng.choice(["openai", "anthropic", "mistral_ai"], n, p=[0.5, 0.3, 0.2])
    out = pd.DataFrame(
        {
            "ts": ts,
            "provider": provider,
            "model": np.char.add(provider.astype(str), "-m"),
            "tenant": rng.choice(["acme", "globex", "initech", "hooli"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "agent": rng.choice(["support", "coding", "sales"], n),
            "region": rng.choice(["us", "eu"], n),
            "service": "llm-proxy",
            "latency_ms": np.exp(rng.normal(7.0, 0.35, n)),
            "input_tokens": rng.integers(500, 1500, n),
            "output_tokens": rng.integers(100, 400, n),
        }
    )
    out["cache_read_tokens"] = (out["input_tokens"] * rng.uniform(0.3, 0.5, n)).astype("int64")
    out["cost_usd"] = out["input_tokens"] * 2e-6 + out["output_tokens"] * 8e-6
    err = rng.random(n) < 0.01
    if outage:
        hit = (out["provider"] == "anthropic") & (out["ts"] >= OUTAGE[0]) & (out["ts"] < OUTAGE[1])
        err = err | (hit & (rng.random(n) < 0.7)).to_numpy()
    out["status"] = np.where(err, "error", "ok")
    out["error_type"] = np.where(err, "server_error", None)
    return out.sort_values("ts").reset_index(drop=True)


@pytest.fixture(scope="module")
def calls() -> pd.DataFrame:
    return _calls()


@pytest.fixture(scope="module")
def hourly(calls: pd.DataFrame) -> pd.DataFrame:
    return hourly_metrics(calls)


def test_incident_week_ranks_the_outage_first(hourly: pd.DataFrame) -> None:
    found = find_insights(None, T0, T0 + pd.Timedelta(days=7), hourly=hourly)
    assert found, "the outage was not found"
    top = found[0]
    assert isinstance(top, Insight)
    assert (top.kind, top.dimension, top.value) == ("errors", "provider", "anthropic")
    assert top.start <= OUTAGE[0] + pd.Timedelta(hours=1) and top.end >= OUTAGE[1] - pd.Timedelta(
        hours=1
    )
    assert "anthropic" in top.sentence and "Wed 2026-10-07 14:00" in top.sentence
    assert top.observed > 0.3 and top.baseline < 0.03
    # the outage also moved "all" and the model of that provider, but it is reported once
    assert sum(i.kind == "errors" for i in found) == 1
    assert len(found) <= 3
    chart = top.chart()
    assert chart.to_dict()["layer"]
    frame = insights_frame(found)
    assert list(frame["sentence"]) == [i.sentence for i in found]


def test_quiet_week_yields_few_findings(hourly: pd.DataFrame) -> None:
    found = find_insights(
        None, T0 + pd.Timedelta(days=7), T0 + pd.Timedelta(days=14), hourly=hourly
    )
    assert len(found) <= 1, [i.sentence for i in found]


def test_no_incident_at_all_is_quiet() -> None:
    quiet = _calls(seed=5, outage=False)
    found = find_insights(quiet, T0, T0 + pd.Timedelta(days=14))
    assert len(found) <= 1, [i.sentence for i in found]


def test_traffic_surge_of_one_tenant_is_found() -> None:
    base = _calls(seed=2, outage=False)
    surge_t = T0 + pd.Timedelta("9D 10h")
    extra = base[
        (base["tenant"] == "hooli")
        & (base["ts"] >= surge_t)
        & (base["ts"] < surge_t + pd.Timedelta("3h"))
    ]
    surged = pd.concat(
        [base] + [extra.assign(ts=extra["ts"] + pd.Timedelta(seconds=k)) for k in range(1, 6)]
    )
    found = find_insights(surged, T0 + pd.Timedelta(days=7), T0 + pd.Timedelta(days=14))
    hits = [i for i in found if i.kind == "traffic" and i.value == "hooli"]
    assert hits, [i.sentence for i in found]
    assert hits[0].observed / hits[0].baseline > 4
