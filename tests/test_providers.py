"""Provider comparison: llmperf loading and published medians, intervals, tests, verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lumina_analytics import costs, datasets, providers
from lumina_analytics.errors import IngestError, SchemaError


def _llmperf(shared_data: Path) -> Path:
    p = shared_data / "providers" / "llmperf_leaderboard_requests.csv"
    if not p.exists():
        pytest.skip(f"{p} not present")
    return p


# ----------------------------------------------------------------------------- real data
@pytest.mark.shared_data
def test_llmperf_reproduces_published_medians(shared_data: Path) -> None:
    calls = datasets.load_llmperf(_llmperf(shared_data))
    assert len(calls) == 2845
    summary = datasets.load_llmperf_summary(
        shared_data / "providers" / "llmperf_leaderboard_summary.csv"
    )
    wide = providers.compare(calls, n_boot=0, pairwise=False).wide()
    m = wide.merge(summary, on=["provider", "model"], validate="one_to_one")
    assert len(m) == len(summary) == 19
    pairs = {
        "ttft_p50": ("results_ttft_s_quantiles_p50", 1000.0),
        "ttft_p95": ("results_ttft_s_quantiles_p95", 1000.0),
        "latency_p50": ("results_end_to_end_latency_s_quantiles_p50", 1000.0),
        "output_tps_p50": ("results_request_output_throughput_token_per_s_quantiles_p50", 1.0),
    }
    for ours, (theirs, scale) in pairs.items():
        np.testing.assert_allclose(m[ours], m[theirs] * scale, rtol=1e-6, err_msg=ours)
    np.testing.assert_allclose(
        m["error_rate"],
        m["results_error_rate"].where(m["results_error_rate"] > 0, m["error_rate"]),
        atol=1e-9,
    )
    # llmperf's error rate counts errors among the requests it recorded
    np.testing.assert_allclose(
        m["error_rate"] * m["count"], m["count"] - m["results_num_completed_requests"], atol=1e-6
    )


@pytest.mark.shared_data
def test_llmperf_429s_are_rate_limits(shared_data: Path) -> None:
    raw = pd.read_csv(_llmperf(shared_data))
    calls = datasets.load_llmperf(_llmperf(shared_data))
    assert (
        int((calls["error_type"] == "rate_limit").sum())
        == int((raw["error_code"] == 429).sum())
        == 392
    )
    assert (
        calls.loc[calls["error_type"] == "rate_limit", "latency_ms"].isna().all()
    )  # recorded as 0 s
    res = providers.compare(calls, by=("provider",), n_boot=200, pairwise=False)
    lepton = res.metric("rate_limit_rate").set_index("provider").loc["lepton"]
    assert lepton["value"] == pytest.approx(390 / 450)
    assert lepton["ci_low"] < lepton["value"] < lepton["ci_high"]
    avail = res.metric("availability").set_index("provider")["value"]
    assert avail["lepton"] == pytest.approx(60 / 450) and avail["groq"] == 1.0


# ----------------------------------------------------------------------------- loader robustness
def test_loader_handles_units_and_layouts(tmp_path: Path) -> None:
    rows = [
        {
            "ttft_s": 0.2,
            "end_to_end_latency_s": 1.5,
            "inter_token_latency_s": 0.01,
            "number_input_tokens": 10,
            "number_output_tokens": 100,
            "error_code": None,
            "error_msg": "",
        },
        {
            "ttft_s": 0,
            "end_to_end_latency_s": 0,
            "number_input_tokens": 10,
            "number_output_tokens": 1,
            "error_code": 503,
            "error_msg": "Service Unavailable",
        },
        {
            "ttft_s": 0,
            "end_to_end_latency_s": 0,
            "number_input_tokens": 10,
            "number_output_tokens": 1,
            "error_code": 408,
            "error_msg": "Request timed out",
        },
    ]
    j = tmp_path / "x_individual_responses.json"
    j.write_text(json.dumps(rows))
    calls = datasets.load_llmperf(j, provider="acme-ai", model="m1")
    assert list(calls["error_type"].astype(object).where(calls["error_type"].notna(), None)) == [
        None,
        "server_error",
        "timeout",
    ]
    assert calls.loc[0, "latency_ms"] == pytest.approx(1500.0) and calls.loc[
        0, "ttft_ms"
    ] == pytest.approx(200.0)
    assert calls["provider"].eq("acme-ai").all()

    ms = pd.DataFrame(
        {
            "Provider": ["a", "a", "b"],
            "model_name": ["m", "m", "n"],
            "timestamp": ["2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z", "2024-01-01T00:00:02Z"],
            "latency_ms": [1200.0, 900.0, 50.0],
            "ttft_ms": [100.0, 80.0, None],
            "prompt_tokens": [5, 5, 5],
            "completion_tokens": [50, 40, 0],
            "status": ["ok", "ok", "429 Too Many Requests"],
        }
    )
    p = tmp_path / "m.csv"
    ms.to_csv(p, index=False)
    c2 = datasets.load_calls(p)
    assert c2["latency_ms"].iloc[0] == pytest.approx(1200.0)
    assert c2["error_type"].iloc[2] == "rate_limit" and c2["status"].iloc[2] == "error"
    assert str(c2["ts"].dtype).startswith("datetime64") and c2["ts"].iloc[0] == pd.Timestamp(
        "2024-01-01"
    )
    with pytest.raises(IngestError, match="latency"):
        datasets.measurements_to_calls(pd.DataFrame({"provider": ["a"], "model": ["m"]}))


def test_classify_error() -> None:
    assert datasets.classify_error(429) == "rate_limit"
    assert datasets.classify_error(200) is None
    assert datasets.classify_error(None, "rate limit exceeded") == "rate_limit"
    assert datasets.classify_error(500) == "server_error"
    assert datasets.classify_error(-100, "Output too few tokens 39") == "too_few_tokens"
    assert datasets.classify_error("ok") is None
    assert providers.bucket_error(
        pd.Series(["too_few_tokens", "429", "RateLimitError", None, "ServerError"])
    ).tolist() == ["other", "rate_limit", "rate_limit", None, "server_error"]


# ----------------------------------------------------------------------------- statistics
def test_optional_columns_may_be_missing() -> None:
    calls = pd.DataFrame(
        {"provider": ["a"] * 5 + ["b"] * 5, "model": "m", "latency_ms": np.arange(10.0) + 1}
    )
    res = providers.compare(calls, n_boot=50)
    w = res.wide()
    assert w["latency_p50"].tolist() == [3.0, 8.0]
    assert w["error_rate"].tolist() == [0.0, 0.0]
    assert w["cost_per_1k_tokens"].isna().all()
    with pytest.raises(SchemaError):
        providers.compare(calls.drop(columns="latency_ms"))


def test_bootstrap_is_seeded_and_sql_matches_pandas() -> None:
    calls = datasets.synthetic_calls(3000, seed=3)
    calls["cost_usd"] = calls["input_tokens"] * 1e-6 + calls["output_tokens"] * 4e-6
    a = providers.compare(calls, n_boot=100, seed=7, pairwise=False)
    b = providers.compare(calls, n_boot=100, seed=7, pairwise=False)
    pd.testing.assert_frame_equal(a.table, b.table)
    pdw = providers.compare_points(calls).set_index(["provider", "model"]).sort_index()
    sql = providers.compare_warehouse(frame=calls).set_index(["provider", "model"]).sort_index()
    for col in pdw.columns:
        np.testing.assert_allclose(
            sql[col].astype(float), pdw[col].astype(float), rtol=1e-9, atol=1e-12, err_msg=col
        )


def _coverage_sample(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """n calls with known parameters: median latency exp(mu), error rate P_ERR and cost per
    1k tokens PRICE_1K (per-call price per token uniform around it, independent of tokens)."""
    lat = rng.lognormal(MU, 0.5, n)
    err = rng.random(n) < P_ERR
    tokens = np.round(rng.lognormal(6.0, 0.8, n)).astype(np.int64) + 1
    return pd.DataFrame(
        {
            "provider": "p",
            "model": "m",
            "latency_ms": lat,
            "status": np.where(err, "error", "ok"),
            "error_type": np.where(err, "server_error", None),
            "input_tokens": tokens,
            "output_tokens": 0,
            "cost_usd": tokens * rng.uniform(0.5, 1.5, n) * PRICE_1K / 1000,
        }
    )


MU, P_ERR, PRICE_1K = np.log(800.0), 0.1, 0.002


@pytest.mark.parametrize(
    ("path", "reps", "n"),
    [
        ("pandas", 300, 200),  # every row bootstrapped
        ("pandas-sampled", 300, 300),  # cost ratios on a 100-row sample (m-out-of-n)
        ("duckdb", 300, 300),  # DuckDB statistics, 100-row per-group sample for intervals
    ],
)
def test_bootstrap_intervals_cover_at_nominal_rate(path: str, reps: int, n: int) -> None:
    """Simulated data sets (one group each, independent bootstrap streams): the 95% intervals
    of the median latency, the error rate and the cost per 1k tokens cover the true values
    about 95% of the time (binomial band: 3.5 sd), on both compare paths, including the
    sampled (m-out-of-n) intervals of groups larger than ``max_boot_rows``."""
    rng = np.random.default_rng(2024)
    calls = pd.concat(
        [_coverage_sample(rng, n).assign(model=f"m{r:03d}") for r in range(reps)],
        ignore_index=True,
    )
    if path == "duckdb":
        res = providers.compare_duckdb(frame=calls, n_boot=400, seed=1, max_boot_rows=100)
    else:
        cap = 100 if path == "pandas-sampled" else None
        res = providers.compare(calls, n_boot=400, seed=1, pairwise=False, max_boot_rows=cap)
    truth = {"latency_p50": np.exp(MU), "error_rate": P_ERR, "cost_per_1k_tokens": PRICE_1K}
    sd = np.sqrt(0.95 * 0.05 / reps)
    lo, hi = 0.95 - 3.5 * sd, min(1.0, 0.95 + 3.5 * sd)
    for m, true in truth.items():
        t = res.metric(m)
        assert len(t) == reps
        share = float(((t["ci_low"] <= true) & (true <= t["ci_high"])).mean())
        assert lo <= share <= hi, (m, share)


def test_duckdb_intervals_match_pandas_on_small_groups() -> None:
    """Groups within max_boot_rows are bootstrapped in full: same intervals on both paths;
    a sampled group's intervals stay close to the full bootstrap's."""
    calls = costs.with_costs(datasets.synthetic_calls(4000, seed=4))
    a = providers.compare(calls, n_boot=300, seed=1, pairwise=False).wide(intervals=True)
    b = providers.compare_duckdb(frame=calls, n_boot=300, seed=1).wide(intervals=True)
    a, b = a.set_index("group").sort_index(), b.set_index("group").sort_index()
    for col in ("latency_p95_lo", "error_rate_hi", "cost_per_1k_tokens_lo", "ttft_p50_hi"):
        np.testing.assert_allclose(
            b[col].astype(float), a[col].astype(float), rtol=1e-9, err_msg=col
        )
    s = providers.compare_duckdb(frame=calls, n_boot=300, seed=1, max_boot_rows=300).wide(True)
    s = s.set_index("group").sort_index()
    width = a["latency_p50_hi"] - a["latency_p50_lo"]
    assert ((s["latency_p50_hi"] - s["latency_p50_lo"]) / width).between(0.6, 1.6).all()
    assert (s["latency_p50_lo"] < s["latency_p50"]).all() and (
        s["latency_p50"] < s["latency_p50_hi"]
    ).all()
    w = providers.compare_warehouse(frame=calls, n_boot=50)
    assert {"latency_p50_lo", "cost_per_success_hi"} <= set(w.columns) and "group" not in w


def test_pairwise_corrections() -> None:
    p = [0.01, 0.04, 0.03, 0.5, np.nan]
    h = providers.holm(p)
    np.testing.assert_allclose(h[:4], [0.04, 0.09, 0.09, 0.5])
    assert np.isnan(h[4])
    bh = providers.benjamini_hochberg(p)
    np.testing.assert_allclose(bh[:4], [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    rng = np.random.default_rng(0)
    calls = pd.concat(
        [
            pd.DataFrame(
                {"provider": "fast", "latency_ms": rng.lognormal(6, 0.3, 300), "status": "ok"}
            ),
            pd.DataFrame(
                {"provider": "same", "latency_ms": rng.lognormal(6, 0.3, 300), "status": "ok"}
            ),
            pd.DataFrame(
                {
                    "provider": "slow",
                    "latency_ms": rng.lognormal(6.5, 0.3, 300),
                    "status": np.where(rng.random(300) < 0.2, "error", "ok"),
                }
            ),
        ]
    )
    pw = providers.pairwise_tests(calls, by=("provider",), correction="holm")
    lat = pw[pw["metric"] == "latency_ms"].set_index(["a", "b"])
    assert not lat.loc[("fast", "same"), "significant"]
    assert lat.loc[("fast", "slow"), "significant"] and lat.loc[("same", "slow"), "significant"]
    err = pw[pw["metric"] == "error_rate"].set_index(["a", "b"])
    assert err.loc[("fast", "slow"), "significant"] and not err.loc[("fast", "same"), "significant"]
    assert (pw["p_adjusted"] >= pw["p_value"]).all()
    assert set(pw["correction"]) == {"holm"}


def test_rank_with_weights() -> None:
    wide = pd.DataFrame(
        {
            "group": ["a", "b", "c"],
            "latency_p50": [100.0, 200.0, 300.0],
            "error_rate": [0.2, 0.0, 0.0],
        }
    )
    r = providers.rank(wide, {"latency_p50": 1})
    assert r["group"].tolist() == ["a", "b", "c"]
    r = providers.rank(wide, {"latency_p50": 1, "error_rate": 3})
    assert r["group"].tolist()[0] == "b"
    with pytest.raises(SchemaError):
        providers.rank(wide, {"nope": 1})


# ----------------------------------------------------------------------------- verdict
def _two_arms(regress: bool, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 600
    base = pd.DataFrame(
        {
            "provider": "openai",
            "model": "gpt-4o",
            "latency_ms": rng.lognormal(7, 0.3, n),
            "ttft_ms": rng.lognormal(5.5, 0.3, n),
            "output_tokens": 200,
            "input_tokens": 500,
        }
    )
    base["status"] = np.where(rng.random(n) < 0.01, "error", "ok")
    factor = 1.4 if regress else 1.0
    cand = pd.DataFrame(
        {
            "provider": "anthropic",
            "model": "claude",
            "latency_ms": rng.lognormal(7, 0.3, n) * factor,
            "ttft_ms": rng.lognormal(5.5, 0.3, n),
            "output_tokens": 200,
            "input_tokens": 500,
        }
    )
    cand["status"] = np.where(rng.random(n) < (0.08 if regress else 0.01), "error", "ok")
    calls = pd.concat([base, cand], ignore_index=True)
    calls["error_type"] = np.where(calls["status"] == "error", "server_error", None)
    calls["cost_usd"] = 0.001
    return calls


def test_verdict_fails_on_known_regression() -> None:
    v = providers.judge(_two_arms(True), "openai / gpt-4o", ("anthropic", "claude"))
    assert v.decision == "fail"
    res = v.metrics.set_index("metric")["result"]
    assert res["latency_ms"] == "high" and res["error_rate"] == "high"
    assert res["ttft_ms"] == "pass"
    assert any("error_rate" in r and "critical" in r for r in v.reasons)
    d = json.loads(v.to_json())
    assert d["decision"] == "fail" and len(d["metrics"]) == len(providers.DEFAULT_METRICS)
    assert "FAIL" in v._repr_html_()


def test_verdict_passes_without_regression(tmp_path: Path) -> None:
    v = providers.judge(_two_arms(False), {"provider": "openai"}, {"provider": "anthropic"})
    assert v.decision == "pass", v.reasons
    assert v.score == 100.0
    out = tmp_path / "v.json"
    v.to_json(out)
    assert json.loads(out.read_text())["decision"] == "pass"


def test_verdict_marginal_on_non_critical_regression() -> None:
    calls = _two_arms(False)
    cand = calls["provider"] == "anthropic"
    calls.loc[cand, "ttft_ms"] *= 1.5
    v = providers.judge(calls, "openai", "anthropic")
    assert v.decision == "marginal"
    assert v.metrics.set_index("metric").loc["ttft_ms", "result"] == "high"
    with pytest.raises(SchemaError, match="no calls match"):
        providers.judge(calls, "openai", "nobody")


def test_comparison_renders_and_saves(tmp_path: Path) -> None:
    res = providers.compare(
        _two_arms(True), n_boot=100, weights={"latency_p50": 1, "error_rate": 1}
    )
    html = res._repr_html_()
    assert "Provider comparison" in html and "Ranking" in html
    res.to_json(tmp_path / "c.json")
    d = json.loads((tmp_path / "c.json").read_text())
    assert d["settings"]["n_boot"] == 100 and d["ranking"][0]["group"] == "openai / gpt-4o"
    w = res.wide(intervals=True)
    assert {"latency_p50_lo", "latency_p50_hi"} <= set(w.columns)
    assert (w["latency_p50_lo"] <= w["latency_p50"]).all() and (
        w["latency_p50"] <= w["latency_p50_hi"]
    ).all()


def test_latency_sample_caps_each_group() -> None:
    calls = datasets.synthetic_calls(3000, seed=8)
    s = providers.latency_sample(calls, max_points=100, seed=2)
    counts = s["group"].value_counts()
    ok = calls[calls["status"] == "ok"]
    sizes = ok.groupby(["provider", "model"]).size()
    assert counts.max() == 100 and len(counts) == len(sizes)
    assert (counts.sort_index().to_numpy() == sizes.clip(upper=100).to_numpy()).all()
    assert s["latency_ms"].notna().all()
    pd.testing.assert_frame_equal(s, providers.latency_sample(calls, max_points=100, seed=2))
