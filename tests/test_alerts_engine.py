"""Alert engine: lifecycle, burn-rate windows, rate of change, dedup/grouping, anomaly, forecast.

Every test injects a fake series provider (a dict of long frames) instead of the warehouse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pytest

from lumina_analytics.alerts import store
from lumina_analytics.alerts.engine import (
    Alert,
    Evaluator,
    advance,
    fingerprint,
    replay,
    timeline,
)
from lumina_analytics.alerts.rules import RuleSet, parse_rules
from lumina_analytics.alerts.runner import evaluate_warehouse
from lumina_analytics.warehouse import Warehouse

T0 = pd.Timestamp("2026-03-02 00:00")
M5 = pd.Timedelta(minutes=5)


class FakeProvider:
    """``load_series``-shaped provider over in-memory frames keyed by metric."""

    def __init__(self, frames: Mapping[str, pd.DataFrame]) -> None:
        self.frames = frames
        self.calls: list[tuple[str, Any, Any]] = []

    def __call__(
        self,
        metric: str,
        by: Sequence[str] = (),
        freq: str = "1h",
        start: Any = None,
        end: Any = None,
        filters: Mapping[str, Sequence[str]] | None = None,
    ) -> pd.DataFrame:
        self.calls.append((metric, start, end))
        f = self.frames[metric]
        mask = pd.Series(True, index=f.index)
        if start is not None:
            mask &= f["ds"] >= pd.Timestamp(start)
        if end is not None:
            mask &= f["ds"] < pd.Timestamp(end)
        return f.loc[mask].reset_index(drop=True)


def series(
    values: Sequence[float], uid: str = "all", start: pd.Timestamp = T0, freq: pd.Timedelta = M5
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id": uid,
            "ds": pd.date_range(start, periods=len(values), freq=freq),
            "y": list(values),
        }
    )


def rules(*items: dict[str, Any], route: dict[str, Any] | None = None) -> RuleSet:
    data: dict[str, Any] = {"rules": [{"runbook": "https://rb/x", **r} for r in items]}
    if route:
        data["route"] = route
    return parse_rules(data)


def no_calls(start: Any, end: Any, filters: Any) -> pd.DataFrame:
    return pd.DataFrame()


# -- threshold + for ------------------------------------------------------------------------
THRESH = {
    "name": "err",
    "kind": "threshold",
    "metric": "error_rate",
    "freq": "5m",
    "value": 0.05,
    "for": "10m",
}


def rate_frames(
    rates: Sequence[float], uid: str = "all", calls: float = 100.0
) -> dict[str, pd.DataFrame]:
    """``errors`` and ``requests`` series whose ratio is ``rates`` (error_rate = errors/requests)."""
    return {
        "errors": series([r * calls for r in rates], uid=uid),
        "requests": series([calls] * len(rates), uid=uid),
    }


def _threshold_provider() -> FakeProvider:
    # buckets 0..11 normal, 12..19 high (T0+60m .. T0+95m), 20.. normal; a one-bucket blip at 30
    ys = [0.01] * 12 + [0.10] * 8 + [0.01] * 10 + [0.2] + [0.01] * 9
    return FakeProvider(rate_frames(ys))


def test_threshold_for_duration_lifecycle() -> None:
    ev = Evaluator(rules(THRESH), series_provider=_threshold_provider(), calls_provider=no_calls)
    state: dict[str, Any] = {}
    seen = []
    for k in range(10, 34):
        res = ev.evaluate(T0 + k * M5, state)
        state = res.state
        seen.extend((k, t["state"]) for t in res.transitions)
    # bucket 12 is first read at k=13: pending; held 10 minutes at k=15: firing; bucket 20 is
    # normal, read at k=21: resolved; the blip (bucket 30, read at k=31) only ever pends
    assert seen == [
        (13, "pending"),
        (15, "firing"),
        (21, "resolved"),
        (31, "pending"),
        (32, "cancelled"),
    ]


def test_keep_firing_for_rides_out_a_dip() -> None:
    # high in buckets 12..19 except a one-bucket dip at 15
    ys = [0.01] * 12 + [0.10] * 3 + [0.01] + [0.10] * 4 + [0.01] * 10
    r = {**THRESH, "for": 0, "keep_firing_for": "10m"}
    ev = Evaluator(rules(r), series_provider=FakeProvider(rate_frames(ys)), calls_provider=no_calls)
    hist, notes = replay(ev, T0 + 10 * M5, T0 + 30 * M5, "5min")
    # the dip (read at k=16) does not resolve; after the last high bucket (19, read at 20)
    # the alert resolves once it has not held for 10 minutes: at k=22
    assert list(zip(hist["state"], hist["eval_ts"], strict=True)) == [
        ("firing", T0 + 13 * M5),
        ("resolved", T0 + 22 * M5),
    ]
    assert [n.status for n in notes] == ["firing", "resolved"]


def test_threshold_for_duration_across_runs_persists_state() -> None:
    """Each evaluation is a separate run; the pending start survives in the warehouse."""
    wh = Warehouse()
    rs = rules(THRESH)
    states = []
    for k in (13, 14, 15, 16, 21):
        ev = Evaluator(rs, series_provider=_threshold_provider(), calls_provider=no_calls)
        rep = evaluate_warehouse(T0 + k * M5, rs, wh, notify=False, evaluator=ev, sinks={})
        states.append([t["state"] for t in rep.result.transitions])
    assert states == [["pending"], [], ["firing"], [], ["resolved"]]
    hist = store.history(wh)
    assert sorted(hist["state"]) == ["firing", "pending", "resolved"]
    assert store.load_state(wh) == {}
    # going back in time is refused (replay is for the past)
    ev = Evaluator(rs, series_provider=_threshold_provider(), calls_provider=no_calls)
    evaluate_warehouse(T0 + 14 * M5, rs, wh, notify=False, evaluator=ev, sinks={})
    with pytest.raises(Exception, match="before the last persisted evaluation"):
        evaluate_warehouse(T0 + 13 * M5, rs, wh, notify=False, evaluator=ev, sinks={})


def test_threshold_window_aggregation_and_no_data() -> None:
    r = {**THRESH, "metric": "latency_p95", "value": 500, "for": 0, "window": "15m"}
    ys = [100.0, 100.0, 1000.0, float("nan")]
    ev = Evaluator(
        rules(r),
        series_provider=FakeProvider({"latency_p95": series(ys)}),
        calls_provider=no_calls,
    )
    assert ev.active(ev.rules.rules[0], T0 + 3 * M5) == []  # mean(100, 100, 1000) = 400
    got = ev.active(ev.rules.rules[0], T0 + 4 * M5)  # mean(100, 1000) with the NaN ignored
    assert len(got) == 1 and got[0].value == pytest.approx(550.0)
    # not aligned to freq: the partial bucket is not read until it is complete
    assert ev.active(ev.rules.rules[0], T0 + 4 * M5 + pd.Timedelta(minutes=3))[0].value == 550.0


def test_error_rate_window_is_call_weighted_and_min_requests() -> None:
    r = {**THRESH, "for": 0, "window": "10m", "min_requests": 50}
    frames = {
        "errors": series([1.0, 5.0, 1.0]),
        "requests": series([1.0, 100.0, 10.0]),
    }
    ev = Evaluator(rules(r), series_provider=FakeProvider(frames), calls_provider=no_calls)
    rule = ev.rules.rules[0]
    # buckets 0-1: 6 errors / 101 calls = 5.9% (the mean of rates would be 52%)
    got = ev.active(rule, T0 + 2 * M5)
    assert len(got) == 1 and got[0].value == pytest.approx(6 / 101)
    # buckets 1-2: 6 / 110 = 5.5% > 5%; buckets 2-3 hold only 10 calls < min_requests
    assert len(ev.active(rule, T0 + 3 * M5)) == 1
    assert ev.active(rule, T0 + 4 * M5) == []


# -- burn rate ------------------------------------------------------------------------------
def _burn_provider(bad_from: int, bad_to: int, n: int) -> FakeProvider:
    # 1000 calls per 5-minute bucket; 1% errors in buckets [bad_from, bad_to)
    req = series([1000.0] * n)
    err = series([10.0 if bad_from <= k < bad_to else 0.0 for k in range(n)])
    return FakeProvider({"requests": req, "errors": err})


BURN = {
    "name": "slo",
    "kind": "burn_rate",
    "objective": 0.999,
    "freq": "5m",
    "windows": [
        {"long": "1h", "short": "5m", "factor": 14.4, "severity": "page"},
        {"long": "6h", "short": "30m", "factor": 6, "severity": "page"},
        {"long": "24h", "short": "2h", "factor": 3, "severity": "ticket"},
    ],
}


def test_burn_rate_windows_trip_exactly_when_expected() -> None:
    """1% errors against a 0.1% budget burn at 10x, so:

    * 1h/5m > 14.4 never trips;
    * 6h/30m > 6 needs 10*k/72 > 6, i.e. k = 44 bad buckets in the last 6 h;
    * 24h/2h > 3 needs 10*k/288 > 3, i.e. k = 87;
    * after the errors stop the 30m window drops under 6 on the third clean bucket, so the page
      resolves although the 6h window still burns; the ticket ends when the 2h window drops
      under 3.
    """
    start = 300  # 25 h of clean history first
    stop = start + 100
    prov = _burn_provider(start, stop, stop + 60)
    ev = Evaluator(rules(BURN), series_provider=prov, calls_provider=no_calls)
    rule = ev.rules.rules[0]

    def severities(k: int) -> set[str]:
        return {a.severity for a in ev.active(rule, T0 + k * M5)}

    assert severities(start + 43) == set()
    assert severities(start + 44) == {"page"}
    assert severities(start + 86) == {"page"}
    assert severities(start + 87) == {"page", "ticket"}
    assert severities(stop + 2) == {"page", "ticket"}
    assert severities(stop + 3) == {"ticket"}
    # the 2h window burns 10 * (24 - m) / 24 m buckets after the stop: > 3 while m <= 16
    assert severities(stop + 16) == {"ticket"}
    assert severities(stop + 17) == set()
    a = ev.active(rule, T0 + (start + 44) * M5)[0]
    assert a.value == pytest.approx(10 * 44 / 72, rel=1e-3)
    assert a.threshold == 6
    assert a.labels["severity"] == "page" and a.labels["alertname"] == "slo"


def test_burn_rate_fast_page_on_total_outage() -> None:
    prov = FakeProvider(
        {"requests": series([1000.0] * 40), "errors": series([0.0] * 30 + [500.0] * 10)}
    )
    ev = Evaluator(rules(BURN), series_provider=prov, calls_provider=no_calls)
    got = ev.active(ev.rules.rules[0], T0 + 31 * M5)
    # 50% errors = 500x burn: the 1h window holds 1 of 12 buckets -> 41.7 > 14.4 (a window
    # longer than the data burns over the data there is: 24h -> 1 of 40 buckets -> 12.5 > 3)
    assert [(a.severity, a.threshold) for a in got] == [("page", 14.4), ("ticket", 3.0)]
    assert got[0].value == pytest.approx(500 / 12, rel=1e-3)


def test_burn_rate_latency_sli_uses_slow_calls_series() -> None:
    r = {**BURN, "sli": "latency_ratio", "latency_threshold_ms": 2000}
    prov = FakeProvider(
        {"requests": series([100.0] * 20), "slow_calls:2000": series([0.0] * 10 + [50.0] * 10)}
    )
    ev = Evaluator(rules(r), series_provider=prov, calls_provider=no_calls)
    assert {a.severity for a in ev.active(ev.rules.rules[0], T0 + 20 * M5)} == {"page", "ticket"}
    assert any(c[0] == "slow_calls:2000" for c in prov.calls)


# -- rate of change -------------------------------------------------------------------------
def test_rate_of_change_pct_and_min_baseline() -> None:
    h = pd.Timedelta(hours=1)
    frame = pd.concat(
        [
            series([100, 100, 100, 250, 100], uid="acme", freq=h),
            series([0.2, 0.2, 0.2, 5.0, 0.2], uid="tiny", freq=h),
            series([100, 100, 100, 180, 100], uid="calm", freq=h),
        ]
    )
    r = {
        "name": "roc",
        "kind": "rate_of_change",
        "metric": "cost_usd",
        "by": ["tenant"],
        "freq": "1h",
        "window": "1h",
        "value": 100,
        "min_baseline": 1.0,
    }
    ev = Evaluator(
        rules(r), series_provider=FakeProvider({"cost_usd": frame}), calls_provider=no_calls
    )
    rule = ev.rules.rules[0]
    got = ev.active(rule, T0 + 4 * h)  # window = hour 3 vs hour 2
    assert [(a.labels["tenant"], a.value) for a in got] == [("acme", pytest.approx(150.0))]
    assert ev.active(rule, T0 + 3 * h) == []
    # the drop back is -60% (acme) and -96% (tiny, whose baseline 5.0 now clears min_baseline)
    fall = {**r, "name": "fall", "op": "<", "value": -50}
    ev2 = Evaluator(
        rules(fall), series_provider=FakeProvider({"cost_usd": frame}), calls_provider=no_calls
    )
    got2 = ev2.active(ev2.rules.rules[0], T0 + 5 * h)
    assert [a.labels["tenant"] for a in got2] == ["acme", "tiny"]
    # absolute change with a day offset
    absr = {**r, "name": "abs", "change": "abs", "offset": "3h", "value": 50}
    ev3 = Evaluator(
        rules(absr), series_provider=FakeProvider({"cost_usd": frame}), calls_provider=no_calls
    )
    assert [a.labels["tenant"] for a in ev3.active(ev3.rules.rules[0], T0 + 4 * h)] == [
        "acme",
        "calm",
    ]


# -- dedup and grouping ---------------------------------------------------------------------
def _multi() -> FakeProvider:
    uids = ("openai/gpt-4o", "openai/gpt-4o-mini", "anthropic/claude")
    parts = [rate_frames([0.2] * 4, uid=u) for u in uids]
    return FakeProvider(
        {k: pd.concat([p[k] for p in parts], ignore_index=True) for k in ("errors", "requests")}
    )


def test_grouping_and_dedup() -> None:
    r = {**THRESH, "for": 0, "by": ["provider", "model"]}
    rs = rules(r, route={"group_by": ["alertname", "provider"], "repeat_interval": "10m"})
    ev = Evaluator(rs, series_provider=_multi(), calls_provider=no_calls)
    res = ev.evaluate(T0 + M5, {})
    assert len(res.state) == 3
    notes = {n.group_key: n for n in res.notifications}
    assert set(notes) == {"alertname=err,provider=openai", "alertname=err,provider=anthropic"}
    assert len(notes["alertname=err,provider=openai"].alerts) == 2
    assert all(n.status == "firing" for n in res.notifications)
    # same alerts again: deduplicated (no new transitions, no new notifications)
    res2 = ev.evaluate(T0 + 2 * M5, res.state)
    assert res2.transitions == [] and res2.notifications == []
    # after repeat_interval the still-firing groups are reminded once
    res3 = ev.evaluate(T0 + 3 * M5, res2.state)
    assert len(res3.notifications) == 2
    assert all(a.get("repeat") for n in res3.notifications for a in n.alerts)
    # identical evaluations produce identical idempotency keys
    again = ev.evaluate(T0 + M5, {})
    assert [n.idempotency_key for n in again.notifications] == [
        n.idempotency_key for n in res.notifications
    ]


def test_duplicate_alerts_collapse_to_one_fingerprint() -> None:
    rs = rules({**THRESH, "for": 0})
    a = Alert("err", {"alertname": "err", "severity": "ticket"}, 0.2, 0.05, "ticket", "s", "rb")
    b = Alert("err", {"severity": "ticket", "alertname": "err"}, 0.3, 0.05, "ticket", "s", "rb")
    assert (
        a.fingerprint
        == b.fingerprint
        == fingerprint("err", {"severity": "ticket", "alertname": "err"})
    )
    state, trans = advance({}, [a, b], rs, T0)
    assert len(state) == 1 and [t["state"] for t in trans] == ["firing"]


def test_failed_rule_keeps_its_alerts() -> None:
    rs = rules({**THRESH, "for": 0})
    ev = Evaluator(rs, series_provider=_threshold_provider(), calls_provider=no_calls)
    res = ev.evaluate(T0 + 13 * M5, {})
    assert len(res.firing()) == 1

    def broken(*args: Any, **kwargs: Any) -> pd.DataFrame:
        raise KeyError("no such metric")

    ev_broken = Evaluator(rs, series_provider=broken, calls_provider=no_calls)
    res2 = ev_broken.evaluate(T0 + 25 * M5, res.state)
    assert "err" in res2.errors and res2.transitions == [] and len(res2.firing()) == 1


# -- anomaly and forecast -------------------------------------------------------------------
def test_anomaly_rule_uses_latest_scored_bucket() -> None:
    h = pd.Timedelta(hours=1)
    frame = series([1.0] * 48, uid="planner", freq=h)

    def scorer(f: pd.DataFrame, detector: str = "ensemble", **kw: Any) -> pd.DataFrame:
        out = f[["unique_id", "ds"]].copy()
        out["score"] = [9.0 if ds == T0 + 40 * h else 0.1 for ds in out["ds"]]
        out["is_anomaly"] = out["score"] > 1
        out["detector"] = detector
        return out

    r = {"name": "anom", "kind": "anomaly", "metric": "tokens", "by": ["agent"], "lookback": "1d"}
    ev = Evaluator(
        rules(r),
        series_provider=FakeProvider({"tokens": frame}),
        scorer=scorer,
        calls_provider=no_calls,
    )
    rule = ev.rules.rules[0]
    got = ev.active(rule, T0 + 41 * h)
    assert [(a.labels["agent"], a.value) for a in got] == [("planner", 9.0)]
    assert ev.active(rule, T0 + 42 * h) == []
    hist, _ = replay(ev, T0 + 38 * h, T0 + 44 * h, "1h")
    assert list(hist["state"]) == ["firing", "resolved"]
    assert list(hist["eval_ts"]) == [T0 + 41 * h, T0 + 42 * h]


def test_forecast_breach_threshold_and_interval() -> None:
    h = pd.Timedelta(hours=1)
    at = T0 + 10 * h
    fc = pd.DataFrame(
        {
            "unique_id": "all",
            "ds": pd.date_range(T0, periods=48, freq=h),
            "yhat": [10.0] * 30 + [60.0] * 18,
            "yhat_lower": 5.0,
            "yhat_upper": 15.0,
            "model": "prophet",
            "cutoff": T0,
        }
    )
    thr = {
        "name": "budget",
        "kind": "forecast_breach",
        "metric": "cost_usd",
        "value": 50,
        "horizon": "1d",
    }
    itv = {
        "name": "outside",
        "kind": "forecast_breach",
        "metric": "cost_usd",
        "mode": "interval",
        "direction": "both",
    }
    actual = series([10.0] * 9 + [20.0], freq=h)
    ev = Evaluator(
        rules(thr, itv),
        series_provider=FakeProvider({"cost_usd": actual}),
        forecast_provider=lambda metric, at: fc,
        calls_provider=no_calls,
    )
    got = ev.active(ev.rules.get("budget"), at)
    assert len(got) == 1 and got[0].value == 60.0 and "2026-03-03 06:00" in got[0].summary
    assert ev.active(ev.rules.get("budget"), T0 + 1 * h) == []  # breach beyond the 1-day horizon
    got2 = ev.active(ev.rules.get("outside"), at)
    assert len(got2) == 1 and got2[0].value == 20.0 and got2[0].threshold == 15.0


# -- root cause on firing, replay and timeline ----------------------------------------------
def test_firing_alert_carries_root_cause_and_timeline() -> None:
    def calls(start: Any, end: Any, filters: Any) -> pd.DataFrame:
        ts = pd.date_range(start, end, freq="10s", inclusive="left")
        n = len(ts)
        provider = ["openai", "anthropic"] * (n // 2) + ["openai"] * (n % 2)
        late = (ts >= T0 + 12 * M5) & (ts < T0 + 20 * M5)  # the incident buckets
        status = ["error" if (late[i] and provider[i] == "anthropic") else "ok" for i in range(n)]
        return pd.DataFrame({"ts": ts, "provider": provider, "region": "eu", "status": status})

    ev = Evaluator(
        rules({**THRESH, "for": 0}), series_provider=_threshold_provider(), calls_provider=calls
    )
    hist, notes = replay(ev, T0 + 10 * M5, T0 + 25 * M5, "5min")
    firing = hist[hist["state"] == "firing"].iloc[0]
    assert firing["root_cause"][0]["dimension"] == "provider"
    assert firing["root_cause"][0]["value"] == "anthropic"
    assert [n.status for n in notes] == ["firing", "resolved"]
    tl = timeline(hist)
    assert list(tl["phase"]) == ["firing"]
    assert tl["start"].iloc[0] == T0 + 13 * M5 and tl["end"].iloc[0] == T0 + 21 * M5


def test_schema_v2_migration_adds_alert_tables() -> None:
    """A warehouse at schema version 1 gains the alert tables on its next writer open."""
    from lumina_analytics.warehouse import SCHEMA_VERSION

    wh = Warehouse()
    wh.init()
    with wh.writer() as con:  # roll the file back to version 1
        for t in ("alert_state", "alert_history", "alert_outbox"):
            con.execute(f"DROP TABLE {t}")
        con.execute("DELETE FROM schema_version WHERE version >= 2")
    assert wh.schema_version() == 1
    assert store.load_state(wh) == {}  # reading a v1 file is fine
    wh.init()
    assert wh.schema_version() == SCHEMA_VERSION >= 2
    assert {"alert_state", "alert_history", "alert_outbox"} <= set(wh.table_counts())
