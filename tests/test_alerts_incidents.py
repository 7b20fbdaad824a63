"""Alerting against ground-truth incidents: culprit matching, seasonal-median baselines,
quantile and ratio series, and the replay of the shipped rules on the small demo warehouse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lumina_analytics.alerts import load_rules
from lumina_analytics.alerts.engine import (
    Evaluator,
    default_series_provider,
    parse_quantile_metric,
    parse_ratio_metric,
    replay,
)
from lumina_analytics.alerts.incidents import incident_detection, names_culprit, replay_incidents
from lumina_analytics.alerts.rootcause import attribute, measure_for_metric
from lumina_analytics.errors import LuminaError
from lumina_analytics.warehouse import Warehouse, append_frame
from tests.test_alerts_engine import FakeProvider, no_calls, rules, series

H = pd.Timedelta(hours=1)
T0 = pd.Timestamp("2026-03-02 00:00")


def test_names_culprit_by_label_or_hint() -> None:
    assert names_culprit({"provider": "google"}, [], "provider", "google")
    assert not names_culprit({"provider": "openai"}, [], "provider", "google")
    hint = [{"dimension": "service_version", "value": "3.5.0", "score": 0.2}]
    assert names_culprit({}, hint, "service_version", "llm-proxy/3.5.0")
    assert not names_culprit({}, hint, "service_version", "llm-proxy/3.5.1")
    assert not names_culprit({"tenant": "google"}, [], "provider", "google")


def _history(rows: list[tuple[str, str, dict[str, str], list[dict[str, str]]]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rule": [r[0] for r in rows],
            "state": "firing",
            "eval_ts": pd.to_datetime([r[1] for r in rows]),
            "labels": [r[2] for r in rows],
            "root_cause": [r[3] for r in rows],
        }
    )


def test_incident_detection_needs_an_alert_that_names_the_culprit() -> None:
    incidents = pd.DataFrame(
        {
            "incident_id": ["I1", "I2"],
            "kind": ["provider_outage", "latency_regression"],
            "start_ts": pd.to_datetime(["2026-03-03 10:00", "2026-03-05 10:00"]),
            "end_ts": pd.to_datetime(["2026-03-03 12:00", "2026-03-05 20:00"]),
            "dimension": ["provider", "service_version"],
            "value": ["google", "llm-proxy/3.5.0"],
        }
    )
    history = _history(
        [
            ("burn", "2026-03-03 10:15", {"provider": "google"}, []),  # names I1
            ("drop", "2026-03-05 11:00", {}, []),  # unrelated, in I2's window
            ("ttft", "2026-03-05 12:00", {}, [{"dimension": "service_version", "value": "3.5.0"}]),
            ("noise", "2026-03-02 09:00", {"tenant": "a"}, []),  # clean day
            ("noise", "2026-03-04 09:00", {"tenant": "b"}, []),  # clean day
            ("late", "2026-03-03 13:00", {"provider": "google"}, []),  # busy day, not clean
        ]
    )
    res = incident_detection(history, incidents, "2026-03-02", "2026-03-06 23:55")
    assert list(res["detected"]) == [True, True]
    assert list(res["first_rule"]) == ["burn", "ttft"]
    assert res.loc[0, "delay"] == pd.Timedelta(minutes=15)
    assert res.loc[1, "delay"] == pd.Timedelta(hours=2)  # the unrelated alert does not count
    # days 2, 4, 6 are incident-free: two false alerts
    assert res.attrs["clean_days"] == 3 and res.attrs["false_alerts"] == 2
    assert res.attrs["false_alerts_per_clean_day"] == pytest.approx(2 / 3)
    assert res.attrs["false_by_rule"] == {"noise": 2}


def test_rate_of_change_against_the_median_of_several_days() -> None:
    # hourly requests: 100 every hour for 8 days, one freak day (day 6) at 400 between
    # 10:00 and 12:00, then day 8 has a real surge to 500 from 10:00
    n = 8 * 24
    y = np.full(n, 100.0)
    y[5 * 24 + 10 : 5 * 24 + 12] = 400.0
    y[7 * 24 + 10 : 7 * 24 + 12] = 500.0
    prov = FakeProvider({"requests": series(y, freq=H)})
    spec = {
        "name": "surge",
        "kind": "rate_of_change",
        "metric": "requests",
        "freq": "1h",
        "window": "2h",
        "offset": "1d",
        "agg": "sum",
        "op": ">",
        "value": 300,
    }
    median = Evaluator(rules({**spec, "periods": 7}), series_provider=prov, calls_provider=no_calls)
    at = T0 + 7 * 24 * H + 12 * H  # 10:00-12:00 of day 8 is complete
    assert [a.value for a in median.active(median.rules.rules[0], at)] == [pytest.approx(400.0)]
    # against yesterday alone the freak day hides nothing here, but a day after it a plain
    # one-day offset misses a surge the median baseline still sees
    y2 = y.copy()
    y2[6 * 24 + 10 : 6 * 24 + 12] = 400.0  # day 7 busy too -> yesterday is a bad baseline
    prov2 = FakeProvider({"requests": series(y2, freq=H)})
    plain = Evaluator(rules(spec), series_provider=prov2, calls_provider=no_calls)
    med2 = Evaluator(rules({**spec, "periods": 7}), series_provider=prov2, calls_provider=no_calls)
    assert plain.active(plain.rules.rules[0], at) == []
    assert len(med2.active(med2.rules.rules[0], at)) == 1
    assert median.rules.rules[0].lookback() == pd.Timedelta(hours=2) + 7 * pd.Timedelta(days=1)


def test_quantile_and_ratio_metric_names() -> None:
    assert parse_quantile_metric("quantile:ttft_ms:0.5") == ("ttft_ms", 0.5)
    assert parse_ratio_metric("ratio:cache_read_tokens:input_tokens") == (
        "cache_read_tokens",
        "input_tokens",
    )
    for bad in ("quantile:user_id:0.5", "quantile:ttft_ms:2", "quantile:ttft_ms"):
        with pytest.raises(LuminaError, match="quantile"):
            parse_quantile_metric(bad)
    with pytest.raises(LuminaError, match="ratio"):
        parse_ratio_metric("ratio:status:input_tokens")
    assert measure_for_metric("quantile:ttft_ms:0.5") == "slow_ttft"
    assert measure_for_metric("quantile:latency_ms:0.95") == "slow"


def _calls_warehouse(path: Path) -> Warehouse:
    """Two days of calls; a release (3.5.0) on day 2 at 12:00 adds 900 ms to every TTFT."""
    rng = np.random.default_rng(3)
    n = 2 * 24 * 60
    ts = pd.Timestamp("2026-03-01") + pd.to_timedelta(np.sort(rng.uniform(0, 2 * 86400, n)), "s")
    late = ts >= pd.Timestamp("2026-03-02 12:00")
    ttft = rng.lognormal(np.log(600), 0.2, n) + np.where(late, 900.0, 0.0)
    calls = pd.DataFrame(
        {
            "ts": ts,
            "trace_id": [f"t{i}" for i in range(n)],
            "span_id": [f"s{i}" for i in range(n)],
            "provider": rng.choice(["openai", "google"], n),
            "model": "m1",
            "operation": "chat",
            "input_tokens": 1000,
            "output_tokens": 100,
            "cache_read_tokens": np.where(late, 20, 400),
            "latency_ms": ttft + 1000,
            "ttft_ms": ttft,
            "status": "ok",
            "tenant": rng.choice(["acme", "hooli"], n),
            "region": "us-east-1",
            "agent": "planner",
            "service": "llm-proxy",
            "service_version": np.where(late, "3.5.0", "3.4.2"),
            "cost_usd": 0.001,
        }
    )
    wh = Warehouse(path)
    with wh.writer() as con:
        append_frame(con, "llm_calls", calls)
    return wh


def test_quantile_ratio_series_and_ttft_root_cause(tmp_path: Path) -> None:
    wh = _calls_warehouse(tmp_path / "wh.duckdb")
    provide = default_series_provider(wh)
    q = provide("quantile:ttft_ms:0.5", freq="1h", start="2026-03-02 10:00", end="2026-03-02 14:00")
    assert list(q["y"] > 1200) == [False, False, True, True]
    r = provide(
        "ratio:cache_read_tokens:input_tokens", by=["model"], freq="1h",
        start="2026-03-02 11:00", end="2026-03-02 13:00",
    )  # fmt: skip
    assert r["y"].round(3).tolist() == [0.4, 0.02]
    calls = wh.query("SELECT * FROM llm_calls")
    contrib = attribute(
        calls,
        "2026-03-02 11:30",
        "2026-03-02 12:30",
        "2026-03-02 05:30",
        "2026-03-02 11:30",
        measure="slow_ttft",
        slow_quantile=0.5,
    )
    top = contrib.sort_values("score", ascending=False).iloc[0]
    assert (top["dimension"], top["value"]) == ("service_version", "3.5.0")


def test_shipped_ttft_rule_fires_on_a_release_and_names_the_version(tmp_path: Path) -> None:
    wh = _calls_warehouse(tmp_path / "wh.duckdb")
    shipped = load_rules()
    ttft = shipped.get("llm_ttft_regression")
    rs = shipped.model_copy(update={"rules": [ttft.model_copy(update={"min_requests": 20})]})
    ev = Evaluator(rs, warehouse=wh)
    hist, _ = replay(ev, "2026-03-02 06:00", "2026-03-02 18:00", "5min")
    fired = hist[hist["state"] == "firing"]
    assert len(fired) == 1
    t = fired["eval_ts"].iloc[0]
    assert pd.Timestamp("2026-03-02 12:00") < t <= pd.Timestamp("2026-03-02 13:00")
    hint = fired["root_cause"].iloc[0]
    assert hint[0]["dimension"] == "service_version" and hint[0]["value"] == "3.5.0"


@pytest.mark.slow
def test_replay_incidents_on_the_small_demo_warehouse(demo_warehouse: Path) -> None:
    table, history = replay_incidents(demo_warehouse)
    incidents = Warehouse(demo_warehouse).query("SELECT * FROM incidents")
    assert len(table) == len(incidents) == 6
    assert {"detected", "first_rule", "delay", "culprit"} <= set(table.columns)
    # at 4% of the demo's traffic the error SLO still pages on the outage, naming google
    outage = table[table["kind"] == "provider_outage"].iloc[0]
    assert outage["detected"] and outage["first_rule"] == "llm_availability_slo_burn"
    assert table.attrs["clean_days"] > 0
    assert np.isfinite(table.attrs["false_alerts_per_clean_day"])
    assert (history["state"] == "firing").any()
