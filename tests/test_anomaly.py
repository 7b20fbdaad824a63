"""Detector contracts, causality, calibration, score_frame, diagnosis helpers and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lumina_analytics import anomaly
from lumina_analytics.cli import main
from lumina_analytics.errors import LuminaError


def _series(n: int = 1500, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 50 + 10 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 1.5, n)
    if n >= 1300:
        y[1000] += 40  # spike
        y[1200:1300] += 25  # level shift
    return y


STREAM = [
    anomaly.CausalEnsemble,
    anomaly.RollingZScore,
    anomaly.RangeNovelty,
    lambda: anomaly.LevelShift(window=20, reference=300),
    anomaly.ScaleShift,
]
IDS = ["ensemble", "zscore", "range", "level", "scale"]


@pytest.mark.parametrize("make", STREAM, ids=IDS)
def test_stream_detector_contract(make: Callable[[], anomaly.StreamDetector]) -> None:
    y = _series()
    det = make()
    fitted = det.fit(y)
    assert fitted is det
    s = det.decision_scores_
    assert s.shape == y.shape
    assert np.all((s >= 0) & (s <= 1)) and not np.isnan(s).any()
    assert set(np.unique(det.labels_)) <= {0, 1}
    # decision_function continues the stream: same as scoring the concatenation
    more = _series(300, seed=1)
    cont = det.decision_function(more)
    whole = make().fit(np.concatenate([y, more])).decision_scores_
    np.testing.assert_allclose(cont, whole[len(y) :])


@pytest.mark.parametrize("make", STREAM, ids=IDS)
def test_changing_the_future_never_changes_past_scores(
    make: Callable[[], anomaly.StreamDetector],
) -> None:
    y = _series()
    det = make()
    base = det.fit(y).decision_scores_.copy()
    for cut in (400, 1100, 1400):
        z = y.copy()
        z[cut:] = z[cut:] * 3 + 1000  # wild future
        perturbed = det.fit(z).decision_scores_
        np.testing.assert_array_equal(perturbed[:cut], base[:cut])


def test_ensemble_finds_injected_events_with_one_alarm_each() -> None:
    s = anomaly.CausalEnsemble().fit(_series()).decision_scores_
    alarms = np.flatnonzero(s >= anomaly.ALARM)
    late = alarms[alarms > 400]  # after the warm-up transients
    assert any(1000 <= a <= 1005 for a in late)  # the spike
    assert any(1200 <= a <= 1230 for a in late)  # the level shift
    gaps = np.diff(late)
    assert np.all(gaps > 50)  # repeated alarms of one event are suppressed
    assert len(late) <= 5


def test_suppress_repeats_keeps_first_alarm_of_each_event() -> None:
    s = np.array([0.1, 0.9, 0.8, 0.2, 0.7, 0.1, 0.1, 0.1, 0.95])
    out = anomaly.suppress_repeats(s, suppression=3)
    # rows 1, 2, 4 are one event (gaps <= 3); row 8 is 4 rows after the last alarm row
    assert list(out >= 0.5) == [False, True, False, False, False, False, False, False, True]
    assert out[2] < 0.5 and out[2] == pytest.approx(0.5)  # muted, not erased


def test_suppress_repeats_one_alarm_for_a_long_disturbance() -> None:
    s = np.zeros(400)
    s[100:300:20] = 0.9  # an alarm every 20 rows for 200 rows
    out = anomaly.suppress_repeats(s, suppression=50)
    assert list(np.flatnonzero(out >= 0.5)) == [100]


def test_scale_shift_catches_noise_that_starts_oscillating() -> None:
    rng = np.random.default_rng(8)
    y = 30 + rng.normal(0, 0.2, 1500)
    y[1200:] += 5 * np.sign(np.sin(np.arange(300) * 1.7))  # same mean, far wider spread
    s = anomaly.ScaleShift().fit(y).decision_scores_
    alarms = np.flatnonzero(s >= anomaly.ALARM)
    assert any(1200 <= a <= 1220 for a in alarms)
    assert not any(400 <= a < 1200 for a in alarms)


def test_range_novelty_ignores_a_peak_that_edges_past_the_old_maximum() -> None:
    y = np.tile(np.r_[np.zeros(99), 10.0], 20)
    y[1099] = 10.1  # 1% past the old range: a recurring peak, not news
    y[1599] = 12.0  # 20% past it
    s = anomaly.RangeNovelty().fit(y).decision_scores_
    assert s[1099] < 0.5 <= s[1599]


def test_calibrate_records_is_on_the_series_scale() -> None:
    raw = np.r_[np.ones(100), 2.0, 1.5, 3.0]
    out = anomaly.calibrate_records(raw, warmup=100)
    assert np.all(out[:100] < 0.5)
    assert out[100] >= 0.5 and out[101] < 0.5 and out[102] >= 0.5
    # scaling the raw scores does not change the calibrated scores
    np.testing.assert_allclose(anomaly.calibrate_records(raw * 1000, warmup=100), out)


def test_calibrate_records_settle_margin_only_while_history_is_young() -> None:
    raw = np.r_[np.ones(200), 1.1, np.ones(800), 1.2]
    plain = anomaly.calibrate_records(raw, warmup=100)
    assert plain[200] >= 0.5 and plain[1001] >= 0.5
    settled = anomaly.calibrate_records(raw, warmup=100, settle=1000)
    # at 200 rows of history a record needs (1000 / 200) ** 0.1 = 1.17x the old one
    assert settled[200] < 0.5
    # from 1000 rows on a plain record is enough again
    assert settled[1001] >= 0.5


def test_score_frame_shape_and_sensitivity() -> None:
    ds = pd.date_range("2024-01-01", periods=1500, freq="h")
    frame = pd.concat(
        [
            pd.DataFrame({"unique_id": "a", "ds": ds, "y": _series(seed=2)}),
            pd.DataFrame({"unique_id": "b", "ds": ds, "y": _series(seed=3)}),
        ]
    )
    out = anomaly.score_frame(frame, detector="ensemble")
    assert list(out.columns) == ["unique_id", "ds", "score", "is_anomaly", "detector"]
    assert len(out) == 3000 and set(out["unique_id"]) == {"a", "b"}
    assert out["is_anomaly"].any()
    strict = anomaly.score_frame(frame, sensitivity=0.2)
    assert strict["is_anomaly"].sum() <= out["is_anomaly"].sum()
    with pytest.raises(LuminaError):
        anomaly.score_frame(frame, sensitivity=0)
    with pytest.raises(LuminaError):
        anomaly.score_frame(frame, detector="nope")


@pytest.mark.parametrize("model", ["iforest", "ecod"])
def test_multivariate_detector_is_causal_and_calibrated(model: str) -> None:
    rng = np.random.default_rng(4)
    n = 300
    wide = pd.DataFrame(
        {
            "latency": rng.normal(800, 50, n),
            "errors": rng.poisson(2, n).astype(float),
            "tokens": rng.normal(5000, 300, n),
            "cost": rng.normal(1.0, 0.05, n),
        }
    )
    wide.loc[250:255, "latency"] += 2000
    wide.loc[250:255, "errors"] += 30
    det = anomaly.MultivariateDetector(model=model, window=6).fit(wide)
    s = det.decision_scores_
    assert s.shape == (n,) and np.all((s >= 0) & (s <= 1))
    assert s[250:256].max() >= 0.98
    z = wide.copy()
    z.loc[270:, "latency"] = 1e6
    s2 = anomaly.MultivariateDetector(model=model, window=6).fit(z).decision_scores_
    np.testing.assert_array_equal(s2[:270], s[:270])


def test_score_multivariate_long_frame() -> None:
    rng = np.random.default_rng(5)
    ds = pd.date_range("2024-01-01", periods=200, freq="h")
    frame = pd.concat(
        pd.DataFrame({"unique_id": m, "ds": ds, "y": rng.normal(10, 1, 200)})
        for m in ("latency", "errors", "tokens")
    )
    out = anomaly.score_multivariate(frame, service="chat")
    assert list(out.columns) == ["unique_id", "ds", "score", "is_anomaly", "detector"]
    assert (out["unique_id"] == "chat").all() and len(out) == 200


def test_top_contributors_finds_the_dimension_that_changed() -> None:
    rng = np.random.default_rng(6)
    ts = pd.date_range("2024-01-01", periods=48 * 60, freq="min")
    rows = pd.DataFrame(
        {
            "ts": ts,
            "provider": rng.choice(["openai", "anthropic", "google"], len(ts)),
            "model": rng.choice(["m1", "m2"], len(ts)),
            "latency_ms": rng.normal(500, 20, len(ts)),
        }
    )
    bad = (rows["ts"] >= "2024-01-02 12:00") & (rows["ts"] < "2024-01-02 14:00")
    bad &= rows["provider"] == "google"
    rows.loc[bad, "latency_ms"] += 5000
    top = anomaly.top_contributors(
        rows,
        ["provider", "model"],
        window=("2024-01-02 12:00", "2024-01-02 14:00"),
        baseline=("2024-01-01 00:00", "2024-01-02 12:00"),
        value="latency_ms",
    )
    assert (top.iloc[0]["dimension"], top.iloc[0]["value"]) == ("provider", "google")
    assert top.iloc[0]["share_of_change"] > 0.5


def test_evaluate_incidents_on_synthetic_data() -> None:
    ds = pd.date_range("2024-01-01", periods=24 * 6, freq="h")
    anomalies = pd.DataFrame({"unique_id": "x", "ds": ds, "score": 0.0, "is_anomaly": False})
    flag = ["2024-01-02 05:00", "2024-01-05 10:00", "2024-01-05 11:00"]
    anomalies.loc[anomalies["ds"].isin(pd.to_datetime(flag)), "is_anomaly"] = True
    incidents = pd.DataFrame(
        {
            "kind": ["latency_spike", "error_burst"],
            "start_ts": ["2024-01-02 04:00", "2024-01-03 08:00"],
            "end_ts": ["2024-01-02 06:00", "2024-01-03 09:00"],
            "dimension": ["provider", "model"],
            "value": ["openai", "m1"],
        }
    )
    res = anomaly.evaluate_incidents(anomalies, incidents)
    assert list(res["detected"]) == [True, False]
    assert res.loc[0, "delay"] == pd.Timedelta(hours=1)
    # clean days: Jan 1, 4, 5, 6 -> 2 false alerts on Jan 5
    assert res.attrs["clean_days"] == 4
    assert res.attrs["false_alerts_per_clean_day"] == pytest.approx(0.5)


def test_cli_score_small_file(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    ts = pd.date_range("2024-01-01", periods=600, freq="5min")
    y = _series(600)
    y[500] += 100
    pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": y}).to_csv(
        src, index=False
    )
    out = tmp_path / "out.csv"
    assert main(["anomaly", "score", str(src), "-o", str(out)]) == 0
    res = pd.read_csv(out)
    assert list(res.columns) == ["timestamp", "value", "anomaly_score"]
    assert len(res) == 600
    assert (res["timestamp"] == ts.strftime("%Y-%m-%d %H:%M:%S")).all()
    assert res["anomaly_score"].between(0, 1).all()
    assert res["anomaly_score"].iloc[500] >= 0.5


def test_cli_score_reports_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["anomaly", "score", str(bad), "-o", str(tmp_path / "o.csv")]) == 2
    assert "timestamp,value" in capsys.readouterr().err


def _temp_warehouse(path: Path) -> Path:
    """A small warehouse: 10 days of llm_calls with a latency incident on google, plus its truth."""
    from lumina_analytics.warehouse import Warehouse, append_frame

    rng = np.random.default_rng(7)
    n = 10 * 24 * 20
    ts = pd.Timestamp("2026-10-01") + pd.to_timedelta(np.sort(rng.uniform(0, 10 * 86400, n)), "s")
    provider = rng.choice(["openai", "anthropic", "google"], n)
    latency = rng.lognormal(np.log(800), 0.2, n)
    bad = (ts >= pd.Timestamp("2026-10-07 10:00")) & (ts < pd.Timestamp("2026-10-07 14:00"))
    latency[bad & (provider == "google")] *= 6
    calls = pd.DataFrame(
        {
            "ts": ts,
            "trace_id": [f"t{i}" for i in range(n)],
            "span_id": [f"s{i}" for i in range(n)],
            "provider": provider,
            "model": rng.choice(["m-small", "m-large"], n),
            "operation": "chat",
            "input_tokens": rng.integers(100, 2000, n),
            "output_tokens": rng.integers(10, 500, n),
            "latency_ms": latency,
            "status": np.where(rng.uniform(size=n) < 0.02, "error", "ok"),
            "tenant": rng.choice(["acme", "hooli"], n),
            "region": "us-east-1",
            "agent": "planner",
            "cost_usd": rng.uniform(0.001, 0.01, n),
        }
    )
    incidents = pd.DataFrame(
        {
            "incident_id": ["i1"],
            "kind": ["latency_regression"],
            "start_ts": [pd.Timestamp("2026-10-07 10:00")],
            "end_ts": [pd.Timestamp("2026-10-07 14:00")],
            "dimension": ["provider"],
            "value": ["google"],
        }
    )
    wh = Warehouse(path)
    with wh.writer() as con:
        append_frame(con, "llm_calls", calls)
        append_frame(con, "incidents", incidents)
    return path


def test_cli_detect_writes_anomalies(tmp_path: Path) -> None:
    from lumina_analytics.warehouse import Warehouse

    wh_path = _temp_warehouse(tmp_path / "wh.duckdb")
    args = ["--warehouse", str(wh_path), "anomaly", "detect", "--metric", "latency_p95"]
    assert main([*args, "--by", "provider", "--since", "2026-10-01"]) == 0
    got = Warehouse(wh_path).query("SELECT * FROM anomalies WHERE is_anomaly")
    hit = got[(got["unique_id"] == "google") & (got["ds"] >= pd.Timestamp("2026-10-07 10:00"))]
    assert (hit["ds"] <= pd.Timestamp("2026-10-07 14:00")).any()
    # idempotent: a second run adds nothing
    before = len(Warehouse(wh_path).query("SELECT * FROM anomalies"))
    assert main([*args, "--by", "provider", "--since", "2026-10-01"]) == 0
    assert len(Warehouse(wh_path).query("SELECT * FROM anomalies")) == before


@pytest.mark.slow
def test_notebook_runs_under_papermill(tmp_path: Path) -> None:
    import papermill as pm

    root = Path(__file__).resolve().parents[1]
    wh_path = _temp_warehouse(tmp_path / "wh.duckdb")
    out = tmp_path / "anomalies.out.ipynb"
    pm.execute_notebook(
        str(root / "notebooks" / "anomalies.ipynb"),
        str(out),
        parameters={"warehouse": str(wh_path), "metrics": "latency_p95,requests"},
        kernel_name="python3",
        progress_bar=False,
    )
    text = out.read_text()
    assert "biggest anomaly: latency_p95 / google" in text
    assert "Alerting has not run" in text
    assert "detected 1 of 1 incidents" in text
