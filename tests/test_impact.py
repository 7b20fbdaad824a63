"""Effect recovery: simulated sessions with known logit / linear effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lumina_analytics.impact import estimate_effects, session_outcomes

TRUE = {
    "conversion": {"latency_s": -0.35, "errors": -0.6},
    "abandonment": {"latency_s": 0.30, "errors": 0.8},
    "feedback": {"latency_s": -0.25, "errors": -0.4},
}


def _sessions(n: int = 6000, seed: int = 7) -> pd.DataFrame:
    """Sessions whose latency and errors depend on tenant/hour/agent, which also drive outcomes."""
    rng = np.random.default_rng(seed)
    tenants = np.array(["a", "b", "c", "d"])
    agents = np.array(["support", "coding", "sales"])
    tenant = rng.choice(tenants, n)
    agent = rng.choice(agents, n)
    hour = rng.integers(0, 24, n)
    t_eff = pd.Series({"a": 0.4, "b": 0.0, "c": -0.3, "d": 0.2})[tenant].to_numpy()
    a_eff = pd.Series({"support": 0.0, "coding": 0.5, "sales": -0.4})[agent].to_numpy()
    busy = ((hour >= 13) & (hour <= 20)).astype(float)
    # confounding: slow tenants / agents / busy hours also differ in baseline outcomes
    latency = np.exp(rng.normal(0.6 + 0.5 * a_eff + 0.4 * busy - 0.5 * t_eff, 0.4))
    errors = rng.poisson(0.3 + 0.4 * busy + 0.2 * (agent == "coding"))
    lin_c = -0.5 + t_eff + a_eff - 0.3 * busy
    pc = 1 / (
        1
        + np.exp(
            -(
                lin_c
                + TRUE["conversion"]["latency_s"] * latency
                + TRUE["conversion"]["errors"] * errors
            )
        )
    )
    lin_a = -1.5 - t_eff + 0.2 * busy
    pa = 1 / (
        1
        + np.exp(
            -(
                lin_a
                + TRUE["abandonment"]["latency_s"] * latency
                + TRUE["abandonment"]["errors"] * errors
            )
        )
    )
    fb = (
        4.0
        + 0.5 * t_eff
        + TRUE["feedback"]["latency_s"] * latency
        + TRUE["feedback"]["errors"] * errors
    )
    fb = fb + rng.normal(0, 0.7, n)
    has_fb = rng.random(n) < 0.5
    return pd.DataFrame(
        {
            "session_id": [f"s{i}" for i in range(n)],
            "tenant": tenant,
            "agent": agent,
            "hour": hour,
            "latency_s": latency,
            "errors": errors.astype(float),
            "conversion": (rng.random(n) < pc).astype(float),
            "abandonment": (rng.random(n) < pa).astype(float),
            "feedback": np.where(has_fb, fb, np.nan),
        }
    )


def test_estimates_recover_known_effects_within_intervals() -> None:
    res = estimate_effects(_sessions(), treatments=["latency_s", "errors"])
    assert not res.notes
    t = res.table.set_index(["outcome", "treatment"])
    for outcome, effects in TRUE.items():
        for treat, true in effects.items():
            row = t.loc[(outcome, treat)]
            assert row["ci_low"] <= true <= row["ci_high"], (outcome, treat, row.to_dict())
            assert np.sign(row["effect"]) == np.sign(true)
    assert "logistic regression" in t.loc[("conversion", "latency_s"), "method"]
    assert "fixed effects" in t.loc[("feedback", "errors"), "sentence"]


def test_unadjusted_estimate_is_biased_but_adjusted_is_not() -> None:
    s = _sessions(seed=3)
    raw = estimate_effects(
        s, outcomes=["conversion"], treatments=["latency_s", "errors"], confounders=()
    )
    adj = estimate_effects(s, outcomes=["conversion"], treatments=["latency_s", "errors"])
    true = TRUE["conversion"]["latency_s"]
    err_raw = abs(raw.table.iloc[0]["effect"] - true)
    err_adj = abs(adj.table.iloc[0]["effect"] - true)
    assert err_adj < err_raw


def test_bootstrap_intervals_cover_truth() -> None:
    res = estimate_effects(
        _sessions(n=3000, seed=11),
        outcomes=["conversion"],
        treatments=["latency_s", "errors"],
        n_boot=40,
    )
    row = res.table.set_index("treatment").loc["latency_s"]
    assert row["ci_low"] <= TRUE["conversion"]["latency_s"] <= row["ci_high"]
    assert "bootstrap" in row["method"]


def test_session_outcomes_joins_events_and_calls() -> None:
    t0 = pd.Timestamp("2026-10-01 10:00")
    events = pd.DataFrame(
        {
            "ts": [
                t0,
                t0 + pd.Timedelta("1min"),
                t0 + pd.Timedelta("2min"),
                t0,
                t0 + pd.Timedelta("5min"),
            ],
            "tenant": ["a", "a", "a", "b", "b"],
            "user_id": ["u1", "u1", "u1", "u2", "u2"],
            "session_id": ["s1", "s1", "s1", "s2", "s2"],
            "event_type": [
                "session_start",
                "feedback",
                "conversion",
                "session_start",
                "abandonment",
            ],
            "properties": [None, '{"score": 4}', None, None, None],
        }
    )
    calls = pd.DataFrame(
        {
            "session_id": ["s1", "s1", "s2"],
            "latency_ms": [1000.0, 3000.0, 500.0],
            "status": ["ok", "error", "ok"],
            "cost_usd": [0.01, 0.02, 0.005],
            "agent": ["x", "x", "y"],
        }
    )
    out = session_outcomes(events, calls).set_index("session_id")
    assert out.loc["s1", "latency_s"] == pytest.approx(2.0)
    assert out.loc["s1", "errors"] == 1
    assert out.loc["s1", "conversion"] == 1 and out.loc["s2", "conversion"] == 0
    assert out.loc["s2", "abandonment"] == 1
    assert out.loc["s1", "feedback"] == 4 and np.isnan(out.loc["s2", "feedback"])
    assert out.loc["s1", "hour"] == 10 and out.loc["s2", "agent"] == "y"


def test_rounded_feedback_and_binary_errors_like_the_simulator() -> None:
    """Scores rounded and clipped to 1-5: interval regression recovers the latent effect, OLS does not."""
    rng = np.random.default_rng(5)
    n = 5000
    tenant = rng.choice(["a", "b", "c"], n)
    lat = np.exp(rng.normal(1.0, 0.35, n)) + (tenant == "a") * 0.8
    err = (rng.random(n) < 0.15).astype(float)
    raw = 4.3 - 0.35 * (lat - 3) - 1.4 * err + 0.3 * (tenant == "a") + rng.normal(0, 0.8, n)
    s = pd.DataFrame(
        {
            "session_id": np.arange(n).astype(str),
            "tenant": tenant,
            "latency_ok_s": lat,
            "error_any": err,
            "feedback": np.clip(np.round(raw), 1, 5),
        }
    )
    res = estimate_effects(
        s, outcomes=["feedback"], treatments=["latency_ok_s", "error_any"], confounders=["tenant"]
    )
    t = res.table.set_index("treatment")
    for treat, true in (("latency_ok_s", -0.35), ("error_any", -1.4)):
        assert t.loc[treat, "ci_low"] <= true <= t.loc[treat, "ci_high"]
    assert "interval regression" in t.loc["error_any", "sentence"]
    ols = estimate_effects(
        s,
        outcomes=["feedback"],
        treatments=["latency_ok_s", "error_any"],
        confounders=["tenant"],
        score_model="ols",
    )
    assert (
        not ols.table.set_index("treatment").loc["error_any", "ci_low"]
        <= -1.4
        <= ols.table.set_index("treatment").loc["error_any", "ci_high"]
    )


def test_recovers_the_simulators_recorded_effects() -> None:
    """The simulator's own session world: estimates cover the effects it records in effects.json."""
    pytest.importorskip("lumina_analytics.simulate.outcomes")
    from datetime import datetime

    from lumina_analytics.simulate import incidents, outcomes, traces
    from lumina_analytics.simulate.model import AGENTS

    rng = np.random.default_rng(3)
    plan = incidents.plan_period(datetime(2026, 10, 1), 7, rng)
    world = traces.generate(plan, 0.8, rng)
    drawn = outcomes.session_outcomes(world, rng)
    events = outcomes.events_frame(world, drawn, rng)
    sess = world.t_session[world.c_trace]
    calls = pd.DataFrame(
        {
            "session_id": np.asarray(world.s_id, dtype=object)[sess],
            "latency_ms": world.c_latency_ms,
            "status": np.where(world.c_error > 0, "error", "ok"),
            "agent": np.asarray([a.name for a in AGENTS], dtype=object)[world.s_agent[sess]],
        }
    )
    res = estimate_effects(
        session_outcomes(events, calls), treatments=["latency_ok_s", "error_any"]
    )
    truth = outcomes.EFFECTS
    expected = {
        ("conversion", "latency_ok_s"): truth["conversion"]["per_latency_s_logit"],
        ("conversion", "error_any"): truth["conversion"]["error_logit"],
        ("abandonment", "latency_ok_s"): truth["abandonment"]["per_latency_s_logit"],
        ("abandonment", "error_any"): truth["abandonment"]["error_logit"],
        ("feedback", "latency_ok_s"): truth["feedback"]["per_latency_s"],
        ("feedback", "error_any"): truth["feedback"]["error"],
    }
    t = res.table.set_index(["outcome", "treatment"])
    for key, true in expected.items():
        assert t.loc[key, "ci_low"] <= true <= t.loc[key, "ci_high"], (
            key,
            true,
            t.loc[key].to_dict(),
        )
