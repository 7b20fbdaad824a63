"""Cost analytics: prices against genai-prices, attribution identities, caches, budgets, audit."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from genai_prices import Usage, calc_price

from lumina_analytics import costs, datasets, providers
from lumina_analytics.errors import ConfigError
from lumina_analytics.warehouse import Warehouse, append_frame


def _gp(provider: str, model: str, ts: datetime | None = None, **usage: int) -> float:
    return float(
        calc_price(
            Usage(**usage), model, provider_id=provider, genai_request_timestamp=ts
        ).total_price
    )


_USAGE = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
_NOON = "2026-10-01 12:00"
#: provider, model, ts, input, output, cache read, cache write, reasoning tokens
HAND_PICKED = [
    ("openai", "gpt-4o", _NOON, 1000, 500, 0, 0, 0),  # plain
    # cached: reads and writes are part of the input
    ("anthropic", "claude-sonnet-4-20250514", _NOON, 10000, 300, 6000, 2000, 0),
    # reasoning: part of the output, not counted twice
    ("openai", "o3-mini", _NOON, 2000, 1500, 0, 0, 1200),
    # a dated price change (deepseek-v4-flash changed on 2026-08-17 and 2026-09-10)
    ("deepseek", "deepseek-v4-flash", "2026-08-01 12:00", 100000, 20000, 50000, 0, 0),
    ("deepseek", "deepseek-v4-flash", "2026-09-01 12:00", 100000, 20000, 50000, 0, 0),
    # tiered: above gemini-2.5-pro's 200k input tier
    ("google", "gemini-2.5-pro", _NOON, 250000, 1000, 0, 0, 0),
    # unknown model: no price, never 0
    ("aws.bedrock", "lumina.private-model", _NOON, 100, 10, 0, 0, 0),
]


@pytest.fixture
def hand_picked() -> pd.DataFrame:
    """The hand-picked calls: plain, cached, reasoning, a dated price change, tiered, unknown."""
    f = pd.DataFrame(HAND_PICKED, columns=["provider", "model", "ts", *_USAGE, "reasoning_tokens"])
    f["ts"] = pd.to_datetime(f["ts"])
    return f


@pytest.fixture
def priced_calls() -> pd.DataFrame:
    """Two weeks of synthetic calls priced with genai-prices."""
    return costs.with_costs(datasets.synthetic_calls(6000, days=14, seed=5))


def _expected(row: pd.Series) -> float:
    try:
        usage = {c: int(row[c]) for c in _USAGE}
        return _gp(row["provider"], row["model"], row["ts"].to_pydatetime(), **usage)
    except LookupError:
        return float("nan")


@pytest.mark.parametrize("path", ["pricing", "probe"])
def test_prices_match_genai_prices(path: str, hand_picked: pd.DataFrame) -> None:
    calls = hand_picked
    fn = None if path == "pricing" else costs._genai_price
    got = costs.price_usage(calls, price_fn=fn)
    want = calls.apply(_expected, axis=1)
    assert np.isnan(got.iloc[-1]) and np.isnan(want.iloc[-1])
    np.testing.assert_allclose(got.iloc[:-1], want.iloc[:-1], rtol=1e-9)
    assert got.iloc[3] != pytest.approx(got.iloc[4])  # the dated change is honoured
    # reasoning tokens are inside output: same price as without the reasoning split
    assert got.iloc[2] == pytest.approx(
        _gp("openai", "o3-mini", input_tokens=2000, output_tokens=1500)
    )


def test_with_costs_and_spend_count_unpriced(hand_picked: pd.DataFrame) -> None:
    calls = costs.with_costs(hand_picked)
    assert calls["cost_usd"].isna().sum() == 1
    s = costs.spend(calls, by=["provider"])
    bedrock = s.set_index("provider").loc["aws.bedrock"]
    assert bedrock["unpriced_requests"] == 1 and bedrock["cost_usd"] == 0
    assert s["share"].sum() == pytest.approx(1.0)
    assert s["cost_usd"].sum() == pytest.approx(calls["cost_usd"].sum())
    w = costs.spend(calls, by=["model"], grain="W")
    assert set(w["ds"].dt.day_of_week) == {0}  # weeks start Monday


def test_whatif_reprices_recorded_usage(hand_picked: pd.DataFrame) -> None:
    calls = hand_picked.iloc[:2].copy()
    calls["status"] = "ok"
    calls["latency_ms"] = [1000.0, 2000.0]
    out = costs.whatif(calls, [("openai", "gpt-4o-mini"), ("openai", "gpt-4o")], batch_discount=0.5)
    row = out.iloc[0]
    as_mini = calls.assign(provider="openai", model="gpt-4o-mini")
    manual = as_mini.apply(_expected, axis=1).sum()
    assert row["whatif_cost_usd"] == pytest.approx(manual * 0.5)
    assert row["current_cost_usd"] == pytest.approx(calls.apply(_expected, axis=1).sum())
    assert row["saving_usd"] == pytest.approx(row["current_cost_usd"] - row["whatif_cost_usd"])
    assert row["observed_requests"] == 0 and np.isnan(row["observed_latency_p50"])
    # gpt-4o was observed in the calls: its latency and errors sit beside the saving
    same = out.iloc[1]
    assert same["observed_requests"] == 1 and same["observed_latency_p50"] == 1000.0
    assert same["observed_error_rate"] == 0.0


def test_cache_effect_saving_is_cache_discount(hand_picked: pd.DataFrame) -> None:
    calls = hand_picked.iloc[[1]]
    eff = costs.cache_effect(calls, grain=None)
    actual = _expected(calls.iloc[0])
    uncached = _gp("anthropic", "claude-sonnet-4-20250514", input_tokens=10000, output_tokens=300)
    assert eff["saved_usd"].iloc[0] == pytest.approx(uncached - actual)
    assert eff["cache_hit_rate"].iloc[0] == pytest.approx(0.6)
    assert eff["request_hit_rate"].iloc[0] == 1.0


def test_change_attribution_adds_up_exactly(priced_calls: pd.DataFrame) -> None:
    calls = priced_calls
    # a new model appears in the current week only
    late = pd.to_datetime(calls["ts"]) >= pd.Timestamp("2026-10-10")
    calls.loc[late & (calls["tenant"] == "acme"), "model"] = "gpt-4o-new"
    out = costs.change_attribution(calls, dims=("tenant", "model", "agent"))
    total = out.attrs["total_change_usd"]
    assert total != 0
    for _, part in out.groupby("dimension"):
        assert part["change_usd"].sum() == pytest.approx(total, abs=1e-9)
        assert part["share_of_change"].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(
        out["volume_effect_usd"] + out["rate_effect_usd"], out["change_usd"], atol=1e-12
    )
    new = out[(out["dimension"] == "model") & (out["value"] == "gpt-4o-new")].iloc[0]
    assert new["previous_usd"] == 0 and new["volume_effect_usd"] == pytest.approx(new["change_usd"])
    ts = pd.to_datetime(calls["ts"])
    cur = (ts >= pd.Timestamp(out.attrs["current_start"])) & (
        ts < pd.Timestamp(out.attrs["current_end"])
    )
    assert out.attrs["current_total_usd"] == pytest.approx(calls.loc[cur, "cost_usd"].sum())


def test_unit_economics() -> None:
    calls = pd.DataFrame(
        {
            "tenant": ["a", "a", "a", "b"],
            "status": ["ok", "ok", "error", "ok"],
            "session_id": ["s1", "s1", "s2", "s3"],
            "user_id": ["u1", "u1", "u2", "u3"],
            "input_tokens": [1000, 1000, 0, 500],
            "output_tokens": [0, 0, 0, 500],
            "cost_usd": [0.3, 0.3, 0.0, 0.1],
        }
    )
    u = costs.unit_economics(calls, by=["tenant"]).set_index("tenant")
    assert u.loc["a", "cost_per_request"] == pytest.approx(0.2)
    assert u.loc["a", "cost_per_success"] == pytest.approx(0.3)
    assert u.loc["a", "cost_per_session"] == pytest.approx(0.3)
    assert u.loc["a", "cost_per_active_user"] == pytest.approx(0.3)
    assert u.loc["a", "cost_per_1k_tokens"] == pytest.approx(0.3)
    assert u.loc["b", "cost_per_1k_tokens"] == pytest.approx(0.1)


def test_response_cache_whatif_respects_ttl() -> None:
    t0 = pd.Timestamp("2026-10-01")
    mins = [0, 30, 59, 61, 90, 10, 20, 5, 6, 7]
    calls = pd.DataFrame(
        {
            "ts": [t0 + pd.Timedelta(minutes=m) for m in mins],
            "model": ["m"] * 5 + ["m", "m"] + ["other", "m", "m"],
            "prompt_hash": ["h1"] * 5 + ["h2", "h2"] + ["h1", None, None],
            "status": ["ok"] * 5 + ["error", "ok"] + ["ok", "ok", "ok"],
            "cost_usd": [1.0] * 10,
            "latency_ms": [100.0] * 10,
        }
    )
    hits = costs.response_cache_hits(calls, ttl="1h")
    # h1: 0 miss (stores until 60), 30 hit, 59 hit, 61 miss (refresh until 121), 90 hit
    # h2: first call failed (nothing stored), second is a miss; other model and no hash never hit
    assert hits.tolist() == [False, True, True, False, True, False, False, False, False, False]
    s = costs.response_cache_whatif(calls, ttl="1h").iloc[0]
    assert s["hits"] == 3 and s["saved_usd"] == 3.0 and s["hashed_requests"] == 8
    assert s["saved_latency_s"] == pytest.approx(0.3)


def test_budgets_file_and_status(tmp_path: Path) -> None:
    f = tmp_path / "budgets.yaml"
    f.write_text("budgets:\n  acme: 400\n  globex: 500\n  initech: 1000\n")
    budgets = costs.load_budgets(f)
    assert budgets == {"acme": 400.0, "globex": 500.0, "initech": 1000.0}
    days = pd.date_range("2026-10-01", "2026-10-15", freq="D")
    calls = pd.DataFrame(
        {
            "ts": np.repeat(days, 3) + pd.Timedelta(hours=10),
            "tenant": ["acme", "globex", "initech"] * len(days),
            "cost_usd": [10.0, 20.0, 5.0] * len(days),
        }
    )
    st = costs.budget_status(calls, budgets, method="simple").set_index("tenant")
    assert st.loc["acme", "mtd_usd"] == pytest.approx(150.0)
    assert st.loc["acme", "days_remaining"] == 16
    assert st.loc["acme", "projected_usd"] == pytest.approx(310.0)
    assert st.loc["acme", "projected_lower"] == pytest.approx(310.0)  # constant spend
    assert st.loc["acme", "status"] == "on track"
    assert st.loc["globex", "status"] == "will exceed"  # 300 spent, 620 projected, budget 500
    assert st.loc["globex", "projected_usd"] == pytest.approx(620.0)
    assert st["method"].str.startswith("simple").all()
    auto = costs.budget_status(calls, budgets, method="auto")
    assert auto["method"].str.match(r"^(simple|forecast)").all()
    noisy = calls.copy()
    noisy["cost_usd"] *= np.random.default_rng(0).uniform(0.5, 1.5, len(noisy))
    st2 = costs.budget_status(noisy, budgets, method="simple").set_index("tenant")
    assert (st2["projected_lower"] < st2["projected_usd"]).all() and (
        st2["projected_usd"] < st2["projected_upper"]
    ).all()
    bad = tmp_path / "bad.yaml"
    bad.write_text("acme: 3\n")
    with pytest.raises(ConfigError, match="budgets"):
        costs.load_budgets(bad)
    with pytest.raises(ConfigError, match="not found"):
        costs.load_budgets(tmp_path / "missing.yaml")


def test_audit_finds_defects() -> None:
    calls = pd.DataFrame(
        {
            "span_id": [f"s{i}" for i in range(7)],
            "provider": ["openai"] * 5 + ["aws.bedrock", "openai"],
            "model": ["gpt-4o"] * 5 + ["private", "gpt-4o"],
            "service": ["svc-a"] * 4 + ["svc-b"] * 3,
            "status": ["ok"] * 7,
            "input_tokens": [100, 100, 100, None, 100, 100, 100],
            "output_tokens": [10, 10, 10, None, 10, 10, 10],
            "cache_read_tokens": [0, 150, 0, 0, 0, 0, 0],
            "cache_write_tokens": [0, 0, 0, 0, 0, 0, 0],
            "reasoning_tokens": [0, 0, 20, 0, 0, 0, 0],
            "cost_usd": [0.001, 0.001, 0.001, None, 0.001, None, 0.001],
            "reported_cost_usd": [0.001, None, None, None, 0.002, None, None],
            "attr_style": [
                "current",
                "current",
                "deprecated",
                "current",
                "mixed",
                "current",
                "current",
            ],
        }
    )
    a = costs.audit(calls).set_index("check")
    assert a.loc["cache_read_exceeds_input", "examples"] == "s1"
    assert a.loc["reasoning_exceeds_output", "examples"] == "s2"
    assert a.loc["missing_usage", "examples"] == "s3"
    assert (
        a.loc["unpriced_model", "examples"] == "s5"
        and "private" in a.loc["unpriced_model", "detail"]
    )
    assert a.loc["reported_cost_mismatch", "examples"] == "s4"
    assert a.loc["mixed_attribute_names", "rows"] == 1
    assert "svc-a" in a.loc["service_mixes_styles", "detail"]
    assert list(a["severity"]) == sorted(
        a["severity"], key={"error": 0, "warning": 1, "info": 2}.get
    )


def test_pareto_frontier() -> None:
    rows = []
    for name, cost, lat in [
        ("cheap", 0.001, 3000.0),
        ("fast", 0.01, 500.0),
        ("bad", 0.02, 4000.0),
        ("mid", 0.005, 1000.0),
    ]:
        for i in range(20):
            rows.append(
                {
                    "operation": "chat",
                    "provider": "p",
                    "model": name,
                    "cost_usd": cost,
                    "latency_ms": lat + i,
                    "status": "ok",
                }
            )
    out = costs.pareto_frontier(pd.DataFrame(rows)).set_index("model")
    assert out["on_frontier"].to_dict() == {"bad": False, "cheap": True, "fast": True, "mid": True}


def test_warehouse_roundtrip(tmp_path: Path) -> None:
    calls = costs.with_costs(datasets.synthetic_calls(2000, days=10, seed=9))
    wh = Warehouse(tmp_path / "w.duckdb")
    with wh.writer() as con:
        assert append_frame(con, "llm_calls", calls) == len(calls)
    back = datasets.load_llm_calls(
        wh, start="2026-10-03", end="2026-10-08", filters={"tenant": ["acme", "globex"]}
    )
    ts = pd.to_datetime(calls["ts"])
    expect = calls[
        (ts >= "2026-10-03") & (ts < "2026-10-08") & calls["tenant"].isin(["acme", "globex"])
    ]
    assert len(back) == len(expect)
    assert back["cost_usd"].sum() == pytest.approx(expect["cost_usd"].sum())
    sql = (
        providers.compare_warehouse(wh, start="2026-10-03", end="2026-10-08")
        .set_index(["provider", "model"])
        .sort_index()
    )
    pdw = (
        providers.compare_points(calls[(ts >= "2026-10-03") & (ts < "2026-10-08")])
        .set_index(["provider", "model"])
        .sort_index()
    )
    np.testing.assert_allclose(sql["latency_p95"], pdw["latency_p95"], rtol=1e-9)
    np.testing.assert_allclose(
        sql["cost_per_1k_tokens"].astype(float), pdw["cost_per_1k_tokens"], rtol=1e-9
    )


def test_whatif_rollup_equals_the_direct_table(priced_calls: pd.DataFrame) -> None:
    calls = priced_calls[priced_calls["ts"] < pd.Timestamp("2026-10-03")]
    alts = [("openai", "gpt-4o-mini"), ("anthropic", "claude-3-5-haiku-20241022")]
    by_op = costs.whatif(calls, alts, by=["operation"], batch_discount=0.5)
    direct = costs.whatif(calls, alts, batch_discount=0.5)
    rolled = costs.whatif_rollup(by_op)
    assert list(rolled.columns) == list(direct.columns)
    pd.testing.assert_frame_equal(rolled, direct, check_dtype=False)


def test_budget_projection_uses_the_forecasting_module() -> None:
    """Four weeks of a weekly pattern: the month end is projected by the forecasting module's
    fast members (no Prophet fit) and follows the weekly shape, inside its interval."""
    days = pd.date_range("2026-10-01", "2026-10-28", freq="D")
    weekly = np.where(days.day_of_week < 5, 10.0, 2.0)
    calls = pd.DataFrame({"ts": days + pd.Timedelta(hours=9), "tenant": "acme", "cost_usd": weekly})
    st = costs.budget_status(calls, {"acme": 400.0}, method="forecast").iloc[0]
    assert st["method"].startswith("forecast (") and "prophet" not in st["method"]
    rest = pd.date_range("2026-10-29", "2026-10-31", freq="D")  # Thu, Fri, Sat
    expect = weekly.sum() + np.where(rest.day_of_week < 5, 10.0, 2.0).sum()
    assert st["projected_usd"] == pytest.approx(expect, rel=0.05)
    assert st["projected_lower"] <= st["projected_usd"] <= st["projected_upper"]
