"""Sessions, cohorts, funnels, active users and adoption on hand-built events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lumina_analytics import usage
from lumina_analytics.errors import SchemaError
from lumina_analytics.warehouse import Warehouse, append_frame


def _ev(rows: list[tuple[str, str, str, str]], tenant: str = "t1") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.to_datetime([r[0] for r in rows]),
            "tenant": tenant,
            "user_id": [r[1] for r in rows],
            "session_id": [r[2] for r in rows],
            "event_type": [r[3] for r in rows],
        }
    )


def test_sessions_split_on_inactivity_gap() -> None:
    ev = _ev(
        [
            ("2026-10-01 10:00", "u1", "a", "session_start"),
            ("2026-10-01 10:05", "u1", "a", "message"),
            ("2026-10-01 10:20", "u1", "a", "message"),  # 15 min gap: same session
            ("2026-10-01 11:00", "u1", "a", "message"),  # 40 min gap: new session
            ("2026-10-01 10:02", "u2", "b", "message"),
        ]
    )
    s = usage.sessions(ev, gap="30min")
    assert len(s) == 3
    u1 = s[s["user_id"] == "u1"].sort_values("start")
    assert list(u1["events"]) == [3, 1]
    assert list(u1["messages"]) == [2, 1]
    assert u1.iloc[0]["length_s"] == 20 * 60
    assert list(u1["session"]) == ["u1#1", "u1#2"]
    # a longer gap merges them
    assert len(usage.sessions(ev, gap="1h")) == 2
    summ = usage.session_summary(s)
    assert summ.loc[0, "sessions"] == 3
    assert summ.loc[0, "messages_per_session"] == pytest.approx(4 / 3)
    with pytest.raises(SchemaError):
        usage.sessionize(ev, gap="0s")


def test_retention_triangle_weekly() -> None:
    ev = _ev(
        [
            ("2026-10-05 09:00", "a", "s", "message"),  # week 0 cohort: a, b
            ("2026-10-06 09:00", "b", "s", "message"),
            ("2026-10-13 09:00", "a", "s", "message"),  # a back in week 1
            ("2026-10-21 09:00", "b", "s", "message"),  # b back in week 2
            ("2026-10-14 09:00", "c", "s", "message"),  # week 1 cohort: c
            ("2026-10-22 09:00", "c", "s", "message"),
        ]
    )
    cohorts = usage.retention_cohorts(ev, grain="W")
    tri = usage.retention_triangle(cohorts)
    w0, w1 = pd.Timestamp("2026-10-05"), pd.Timestamp("2026-10-12")
    assert tri.loc[w0, "cohort_size"] == 2 and tri.loc[w1, "cohort_size"] == 1
    assert tri.loc[w0, 0] == 1.0 and tri.loc[w0, 1] == 0.5 and tri.loc[w0, 2] == 0.5
    assert tri.loc[w1, 1] == 1.0
    assert np.isnan(tri.loc[w1, 2])  # the second cohort cannot have reached period 2
    chart = usage.retention_heatmap(cohorts)
    assert chart.to_dict()["layer"]


def test_funnel_respects_order() -> None:
    ev = _ev(
        [
            ("2026-10-01 10:00", "u1", "s1", "session_start"),
            ("2026-10-01 10:01", "u1", "s1", "message"),
            ("2026-10-01 10:05", "u1", "s1", "conversion"),
            ("2026-10-01 10:00", "u2", "s2", "session_start"),
            ("2026-10-01 10:03", "u2", "s2", "message"),
            ("2026-10-01 09:00", "u3", "s3", "message"),  # message before start: not counted
            ("2026-10-01 10:00", "u3", "s3", "session_start"),
            ("2026-10-01 10:30", "u3", "s3", "conversion"),
        ]
    )
    f = usage.funnel(ev, ["session_start", "message", "conversion"])
    assert list(f["units"]) == [3, 2, 1]
    assert list(f["drop_off"]) == [0, 1, 1]
    assert f.loc[2, "conversion"] == pytest.approx(1 / 3)
    assert f.loc[2, "step_conversion"] == pytest.approx(0.5)
    by = usage.funnel(
        ev.assign(tenant=["x", "x", "x", "y", "y", "y", "y", "y"]),
        ["session_start", "message"],
        by="tenant",
    )
    assert by.set_index(["tenant", "step"]).loc[("y", "message"), "units"] == 1


def test_active_users_and_stickiness() -> None:
    days = pd.date_range("2026-10-01", periods=10, freq="D")
    rows = [(str(d), "daily", "s", "message") for d in days]
    rows += [(str(days[0]), "once", "s", "message")]
    au = usage.active_users(_ev(rows))
    assert list(au["dau"][:2]) == [2, 1]
    assert au.iloc[-1]["wau"] == 1  # 'once' fell out of the 7-day window
    assert au.iloc[-1]["mau"] == 2
    assert au.iloc[-1]["stickiness"] == pytest.approx(0.5)
    per = usage.active_users(_ev(rows).assign(agent="x"), by="agent", start="2026-10-05")
    assert per["day"].min() == pd.Timestamp("2026-10-05") and set(per["agent"]) == {"x"}


def test_adoption_and_usage_summary() -> None:
    calls = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2026-10-05", "2026-10-05", "2026-10-12", "2026-10-13"]),
            "user_id": ["a", "b", "a", "c"],
            "session_id": ["1", "2", "3", "4"],
            "agent": ["support", "coding", "coding", "coding"],
            "tenant": ["t", "t", "t", "u"],
            "input_tokens": [10, 20, 30, 40],
            "output_tokens": [1, 2, 3, 4],
            "status": ["ok", "error", "ok", "ok"],
            "cost_usd": [0.1, 0.2, 0.3, np.nan],
        }
    )
    ad = usage.adoption(calls, "agent").set_index(["period", "agent"])
    assert ad.loc[(pd.Timestamp("2026-10-12"), "coding"), "users"] == 2
    assert ad.loc[(pd.Timestamp("2026-10-12"), "coding"), "share"] == 1.0
    assert ad.loc[(pd.Timestamp("2026-10-12"), "coding"), "cumulative_users"] == 3
    summ = usage.usage_summary(calls, by="tenant").set_index("tenant")
    assert summ.loc["t", "requests"] == 3 and summ.loc["t", "tokens"] == 66
    assert summ.loc["t", "error_rate"] == pytest.approx(1 / 3)
    assert summ.loc["u", "users"] == 1


def test_loaders_read_a_temp_warehouse(tmp_path) -> None:  # type: ignore[no-untyped-def]
    wh = Warehouse(tmp_path / "w.duckdb")
    ev = _ev(
        [("2026-10-01 10:00", "u1", "s1", "feedback"), ("2026-10-02 10:00", "u2", "s2", "message")]
    )
    ev["properties"] = ['{"score": 4, "agent": "support-agent"}', "{}"]
    with wh.writer() as con:
        append_frame(con, "events", ev)
    got = usage.load_events("2026-10-01", "2026-10-02", tenants=["t1"], warehouse=wh)
    assert len(got) == 1 and got.loc[0, "score"] == 4 and got.loc[0, "agent"] == "support-agent"
    assert usage.event_property(ev, "score").tolist()[0] == 4
