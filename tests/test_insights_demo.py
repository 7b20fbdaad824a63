"""On the simulator's world: every injected incident is among the findings of its week, and the
incident-free first week stays nearly quiet."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from lumina_analytics.insights import find_insights

pytestmark = pytest.mark.slow

#: which finding families may report each injected incident kind
FAMILIES = {
    "provider_outage": {"errors"},
    "latency_regression": {"latency"},
    "runaway_agent": {"spend", "traffic"},
    "rate_limit_storm": {"errors"},
    "traffic_surge": {"traffic", "spend"},
    "cache_hit_drop": {"cache"},
}


def _world() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The simulator's 28-day world at scale 0.5 as llm_calls rows, incidents, deployments."""
    from lumina_analytics.simulate import incidents, traces
    from lumina_analytics.simulate.model import AGENTS, MODELS, PROVIDERS, REGIONS, TENANTS

    rng = np.random.default_rng(7)
    plan = incidents.plan_period(datetime(2026, 10, 1), 28, rng)
    w = traces.generate(plan, 0.5, rng)
    sess = w.t_session[w.c_trace]

    def obj(xs: list[str]) -> np.ndarray:
        return np.asarray(xs, dtype=object)

    calls = pd.DataFrame(
        {
            "ts": pd.to_datetime(w.c_start, unit="ns"),
            "provider": obj([p.name for p in PROVIDERS])[w.c_provider],
            "model": obj([m.name for m in MODELS])[w.c_model],
            "input_tokens": w.c_input,
            "output_tokens": w.c_output,
            "cache_read_tokens": w.c_cache_read,
            "latency_ms": w.c_latency_ms,
            "status": np.where(w.c_error > 0, "error", "ok"),
            "error_type": obj(list(traces.ERROR_TYPES))[w.c_error],
            "tenant": obj([t.id for t in TENANTS])[w.s_tenant[sess]],
            "agent": obj([a.name for a in AGENTS])[w.s_agent[sess]],
            "region": obj(list(REGIONS))[w.s_region[sess]],
            "service": "llm-proxy",
        }
    )
    # a stand-in price: the test is about detection, not pricing
    calls["cost_usd"] = (calls["input_tokens"] - 0.9 * calls["cache_read_tokens"]) * 2e-6 + calls[
        "output_tokens"
    ] * 8e-6
    return calls, plan.incidents_frame(), plan.deployments


@pytest.fixture(scope="module")
def world() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    pytest.importorskip("lumina_analytics.simulate.traces")
    return _world()


def test_every_incident_is_found_in_its_week(
    world: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    calls, incidents, deployments = world
    start = pd.Timestamp("2026-10-01")
    missed = []
    for week in range(4):
        w0, w1 = start + pd.Timedelta(days=7 * week), start + pd.Timedelta(days=7 * (week + 1))
        found = find_insights(calls, w0, w1, deployments=deployments, top=10)
        inside = incidents[(incidents["start_ts"] >= w0) & (incidents["start_ts"] < w1)]
        if week == 0:
            assert inside.empty
            assert len(found) <= 3, [i.sentence for i in found]
        for inc in inside.itertuples():
            hit = [
                i
                for i in found
                if i.kind in FAMILIES[inc.kind] and i.start < inc.end_ts and i.end > inc.start_ts
            ]
            if not hit:
                missed.append((inc.kind, [i.sentence for i in found]))
    assert not missed, missed
