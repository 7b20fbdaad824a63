"""Quota breach dates, exceedance probabilities, replica plans and spend runway."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lumina_analytics.capacity import (
    exceedance_probability,
    load_quotas,
    load_replica_config,
    quota_breaches,
    replica_chart,
    replica_plan,
    spend_runway,
)
from lumina_analytics.costs import load_budgets
from lumina_analytics.errors import ConfigError
from lumina_analytics.forecasting import ProphetForecaster


def test_default_configs_load() -> None:
    q = load_quotas()
    assert {"provider", "model", "unique_id", "rpm", "tpm"} <= set(q.columns)
    assert (q["unique_id"] == q["provider"] + "/" + q["model"]).all()
    assert load_replica_config()["target_utilization"] == pytest.approx(0.7)
    b = load_budgets()  # the one budgets reader (costs) feeds the runway
    assert b and all(v > 0 for v in b.values())


def test_bad_config_is_actionable(tmp_path: Path) -> None:
    p = tmp_path / "q.yaml"
    p.write_text("quotas:\n  - {rpm: 3}\n")
    with pytest.raises(ConfigError, match="provider and model"):
        load_quotas(p)
    with pytest.raises(ConfigError, match="does not exist"):
        load_replica_config(tmp_path / "missing.yaml")


def test_exceedance_probability_by_hand() -> None:
    # 80 % interval [80, 120] around 100: sigma = 20 / 1.2816
    p = exceedance_probability(np.array([100.0]), np.array([80.0]), np.array([120.0]), 120.0)
    assert p[0] == pytest.approx(0.10, abs=1e-9)
    p = exceedance_probability(np.array([100.0]), np.array([80.0]), np.array([120.0]), 100.0)
    assert p[0] == pytest.approx(0.5)
    p = exceedance_probability(np.array([150.0]), np.array([150.0]), np.array([150.0]), 100.0)
    assert p[0] == 1.0


def test_quota_breach_on_known_crossing() -> None:
    # peak rpm grows 10/day from 400; the 500-rpm quota is crossed on day 10 (2026-10-11)
    hist_ds = pd.date_range("2026-09-21", periods=10 * 24, freq="1h")
    t = (hist_ds - pd.Timestamp("2026-10-01")) / pd.Timedelta("1D")
    rng = np.random.default_rng(0)
    history = pd.DataFrame(
        {"unique_id": "openai/gpt-4o", "ds": hist_ds, "y": 400 + 10 * t + rng.normal(0, 2, len(t))}
    )
    est = ProphetForecaster(freq="1h", horizon=24 * 20, members=("prophet",), transform="none").fit(
        history
    )
    fc = est.predict()
    quotas = pd.DataFrame({"unique_id": ["openai/gpt-4o", "x/y"], "rpm": [500.0, 1.0]})
    rep = quota_breaches(history, fc, quotas, kind="rpm", threshold=0.5)
    row = rep.set_index("unique_id").loc["openai/gpt-4o"]
    assert row["first_breach_date"] == pd.Timestamp("2026-10-11")
    assert 0.5 <= row["breach_probability"] <= 1.0
    assert row["peak_today"] == pytest.approx(400, abs=8)
    assert row["headroom_today"] == pytest.approx(100, abs=8)
    assert row["max_probability"] > 0.99
    assert pd.isna(rep.set_index("unique_id").loc["x/y", "peak_today"])


def test_replica_plan_and_chart() -> None:
    ds = pd.date_range("2026-10-01", periods=4, freq="30min")
    fc = pd.DataFrame(
        {
            "unique_id": "gw",
            "ds": ds,
            "yhat": [10.0, 50.0, 100.0, 20.0],
            "yhat_lower": 0.0,
            "yhat_upper": [20.0, 60.0, 130.0, 30.0],
        }
    )
    plan = replica_plan(fc, capacity_per_replica=50, target_utilization=0.5, min_replicas=1)
    assert plan["ds"].tolist() == [
        pd.Timestamp("2026-10-01 00:00"),
        pd.Timestamp("2026-10-01 01:00"),
    ]
    assert plan["replicas"].tolist() == [3, 6]  # ceil(60/25), ceil(130/25)
    assert plan["replicas_expected"].tolist() == [2, 4]
    assert replica_chart(plan).to_dict()["mark"]["type"] == "line"


def test_spend_runway() -> None:
    ds = pd.date_range("2026-10-01", "2026-10-25", freq="1D")
    rng = np.random.default_rng(1)
    daily = pd.concat(
        [
            pd.DataFrame({"unique_id": "acme", "ds": ds, "y": 100 + rng.normal(0, 5, len(ds))}),
            pd.DataFrame({"unique_id": "small", "ds": ds, "y": 10 + rng.normal(0, 1, len(ds))}),
        ]
    )
    budgets = {"acme": 2500.0, "small": 1000.0}  # as costs.load_budgets returns them
    r = spend_runway(daily, budgets).set_index("tenant")
    as_frame = pd.DataFrame({"tenant": list(budgets), "budget": list(budgets.values())})
    pd.testing.assert_frame_equal(spend_runway(daily, as_frame).set_index("tenant"), r)
    assert (r["days_remaining"] == 6).all()
    acme = r.loc["acme"]
    assert acme["month_end"] == pytest.approx(3100, rel=0.05)
    assert acme["month_end_lower"] < acme["month_end"] < acme["month_end_upper"]
    assert acme["p_exceed_budget"] > 0.99
    assert r.loc["small", "p_exceed_budget"] < 0.01
    no_budget = spend_runway(daily, {"acme": 2500.0}).set_index("tenant")
    assert np.isnan(no_budget.loc["small", "budget"])
    assert np.isnan(no_budget.loc["small", "p_exceed_budget"])


def test_runway_reads_budgets_through_costs(tmp_path: Path) -> None:
    p = tmp_path / "b.yaml"
    p.write_text("budgets:\n  acme: 10\n")
    ds = pd.date_range("2026-10-01", "2026-10-25", freq="1D")
    daily = pd.DataFrame({"unique_id": "acme", "ds": ds, "y": 5.0})
    r = spend_runway(daily, load_budgets(p))
    assert r.loc[0, "budget"] == 10.0 and r.loc[0, "p_exceed_budget"] > 0.99
