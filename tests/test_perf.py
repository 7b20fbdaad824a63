"""Regression verdicts on constructed regressions and non-regressions; deployment impact; CLI gate."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lumina_analytics.cli import main
from lumina_analytics.perf import (
    cliffs_delta,
    compare,
    deployment_impact,
    region_comparison,
    split_by_version,
)
from lumina_analytics.warehouse import Warehouse, append_frame

T0 = pd.Timestamp("2026-01-01")


def spans(
    n,
    median_ms,
    seed,
    start=T0,
    service="api",
    name="GET /x",
    error_rate=0.0,
    version="1.0",
    region="eu",
    minutes=60,
):
    rng = np.random.default_rng(seed)
    dur = median_ms * rng.lognormal(0, 0.3, n)
    st = start + pd.to_timedelta(np.sort(rng.uniform(0, minutes * 60, n)), unit="s")
    return pd.DataFrame(
        {
            "trace_id": [f"{seed}-{i}" for i in range(n)],
            "span_id": [f"s{seed}-{i}" for i in range(n)],
            "parent_span_id": None,
            "name": name,
            "kind": "server",
            "service": service,
            "start_ts": st,
            "end_ts": st + pd.to_timedelta(dur, unit="ms"),
            "duration_ms": dur,
            "status_code": np.where(rng.random(n) < error_rate, "error", "ok"),
            "attributes": "{}",
            "resource": json.dumps({"service.version": version, "cloud.region": region}),
        }
    )


def test_cliffs_delta():
    assert cliffs_delta(np.array([3, 4]), np.array([1, 2])) == 1.0
    assert cliffs_delta(np.array([1, 2]), np.array([1, 2])) == 0.0


def test_latency_regression_detected():
    v = compare(spans(300, 100, 1), spans(300, 130, 2))
    assert v.verdict == "regression" and v.is_regression
    row = v.table.iloc[0]
    assert row["median_ratio"] == pytest.approx(1.3, rel=0.1)
    assert row["cliffs_delta"] > 0.3 and row["p_value"] < 1e-6
    assert "latency" in v.reasons[0]
    assert json.loads(v.to_json())["verdict"] == "regression"
    assert "REGRESSION" in v.to_text()


def test_same_distribution_is_no_change():
    v = compare(spans(300, 100, 3), spans(300, 100, 4))
    assert v.verdict == "no_change" and not v.is_regression


def test_tiny_but_significant_shift_is_not_a_regression():
    # 3% slower on many samples: statistically significant, practically negligible
    v = compare(spans(5000, 100, 5), spans(5000, 103, 6))
    assert v.verdict == "no_change"


def test_improvement_and_error_regression():
    assert compare(spans(300, 100, 7), spans(300, 60, 8)).verdict == "improvement"
    v = compare(spans(400, 100, 9, error_rate=0.01), spans(400, 100, 10, error_rate=0.08))
    assert v.verdict == "regression" and "error rate" in v.reasons[0]


def test_insufficient_data():
    assert compare(spans(5, 100, 11), spans(5, 300, 12)).verdict == "insufficient_data"


def test_versions_deployments_and_regions():
    both = pd.concat(
        [
            spans(200, 100, 13, version="1.0"),
            spans(200, 150, 14, version="1.1", start=T0 + pd.Timedelta(hours=1)),
        ]
    )
    b, c = split_by_version(both, "1.0", "1.1")
    assert compare(b, c).is_regression
    deps = pd.DataFrame(
        {
            "ts": [T0 + pd.Timedelta(hours=1)],
            "service": ["api"],
            "version": ["1.1"],
            "region": ["eu"],
            "strategy": ["rolling"],
        }
    )
    imp = deployment_impact(both, deps, before="60min", after="60min")
    assert imp.loc[0, "verdict"] == "regression" and imp.loc[0, "worst_median_ratio"] > 1.3
    regions = pd.concat(
        [
            spans(200, 100, 15, region="eu"),
            spans(200, 100, 16, region="us"),
            spans(200, 200, 17, region="ap"),
        ]
    )
    rc = region_comparison(regions, "api").set_index("region")
    assert rc.loc["ap", "verdict"] == "regression" and rc.loc["eu", "verdict"] != "regression"


def test_cli_gate_exit_codes(tmp_path, capsys, monkeypatch):
    path = tmp_path / "w.duckdb"
    monkeypatch.setenv("LUMINA_WAREHOUSE", str(path))  # main() sets it; restored afterwards
    with Warehouse(path).writer() as con:
        append_frame(con, "spans", spans(200, 100, 21, version="1.0"))
        append_frame(
            con, "spans", spans(200, 160, 22, version="1.1", start=T0 + pd.Timedelta(hours=1))
        )
    rc = main(
        [
            "--warehouse",
            str(path),
            "perf",
            "compare",
            "--baseline",
            "version:1.0",
            "--candidate",
            "version:1.1",
            "--json",
        ]
    )
    assert rc == 1
    assert json.loads(capsys.readouterr().out)["verdict"] == "regression"
    rc = main(
        [
            "--warehouse",
            str(path),
            "perf",
            "compare",
            "--baseline",
            "2026-01-01T00:00..2026-01-01T00:30",
            "--candidate",
            "2026-01-01T00:30..2026-01-01T01:00",
            "--service",
            "api",
        ]
    )
    assert rc == 0
    assert "verdict: NO_CHANGE" in capsys.readouterr().out
