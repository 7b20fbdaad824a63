"""ProphetForecaster contract, backtest metrics by hand, residual analysis, JSON models, CLI."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lumina_analytics.cli import forecast as forecast_cli
from lumina_analytics.errors import IngestError, SchemaError
from lumina_analytics.forecasting import (
    ProphetForecaster,
    backtest,
    coverage,
    events_to_holidays,
    mae,
    mase,
    residual_analysis,
    seasonal_naive,
    smape,
)
from lumina_analytics.forecasting.backtest import (
    baseline_forecast,
    hindsight_combination,
    score_forecast,
)


def synth(
    uid: str,
    days: int = 10,
    level: float = 100.0,
    growth: float = 0.0,
    seed: int = 0,
    freq: str = "1h",
) -> pd.DataFrame:
    steps = int(pd.Timedelta("1D") / pd.Timedelta(freq)) * days
    ds = pd.date_range("2026-10-01", periods=steps, freq=freq)
    t = np.arange(steps) / (steps / days)  # days
    rng = np.random.default_rng(seed)
    y = level * (1 + growth * t) * (1 + 0.4 * np.sin(2 * np.pi * t)) + rng.normal(0, 3, steps)
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.maximum(y, 0)})


@pytest.fixture(scope="module")
def two_series() -> pd.DataFrame:
    return pd.concat([synth("a"), synth("b", level=50, growth=0.02, seed=1)], ignore_index=True)


@pytest.fixture(scope="module")
def fitted(two_series: pd.DataFrame) -> ProphetForecaster:
    return ProphetForecaster(freq="1h", horizon=24, n_folds=2).fit(two_series)


def test_fit_returns_self_and_output_contract(
    fitted: ProphetForecaster, two_series: pd.DataFrame
) -> None:
    est = ProphetForecaster(freq="1h", horizon=24, n_folds=2)
    assert est.fit(two_series) is est
    assert not hasattr(ProphetForecaster(), "fits_")  # __init__ only stores params
    for attr in ("fits_", "skipped_", "selection_", "cutoff_", "n_series_"):
        assert hasattr(fitted, attr)
    fc = fitted.predict()
    assert list(fc.columns) == ["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper", "model"]
    assert len(fc) == 48 and set(fc["unique_id"]) == {"a", "b"}
    assert fc["ds"].min() == pd.Timestamp("2026-10-11")
    assert (fc["yhat_lower"] <= fc["yhat"]).all() and (fc["yhat"] <= fc["yhat_upper"]).all()
    assert fc["model"].str.startswith("auto(").all()
    assert set(fitted.selection_["unique_id"]) == {"a", "b"}


def test_refit_equals_fresh_fit(fitted: ProphetForecaster, two_series: pd.DataFrame) -> None:
    other = pd.concat([synth("z", seed=5)])
    est = ProphetForecaster(freq="1h", horizon=24, n_folds=2).fit(other)
    refit = est.fit(two_series).predict()
    fresh = fitted.predict()
    pd.testing.assert_frame_equal(refit, fresh, check_exact=False, rtol=1e-6)
    assert set(est.fits_) == {"a", "b"}  # nothing left from the first fit


def test_tz_aware_rejected(two_series: pd.DataFrame) -> None:
    tz = two_series.assign(ds=two_series["ds"].dt.tz_localize("UTC"))
    with pytest.raises(SchemaError, match="timezone-aware"):
        ProphetForecaster(freq="1h").fit(tz)


def test_short_series_skipped_not_crashed(two_series: pd.DataFrame) -> None:
    short = pd.DataFrame(
        {"unique_id": "tiny", "ds": pd.date_range("2026-10-01", periods=5, freq="1h"), "y": 1.0}
    )
    est = ProphetForecaster(freq="1h", horizon=6, members=("snaive_day",)).fit(
        pd.concat([two_series[two_series["unique_id"] == "a"], short])
    )
    assert est.skipped_["unique_id"].tolist() == ["tiny"]
    assert "non-missing points" in est.skipped_["reason"].iloc[0]
    assert set(est.predict()["unique_id"]) == {"a"}


def test_off_grid_timestamps_are_a_schema_error() -> None:
    df = synth("a", days=3)
    df.loc[5, "ds"] += pd.Timedelta("7min")
    with pytest.raises(SchemaError, match="not on the"):
        ProphetForecaster(freq="1h").fit(df)


def test_metrics_by_hand() -> None:
    y = np.array([10.0, 20.0, 30.0, 40.0])
    yhat = np.array([12.0, 18.0, 33.0, 40.0])
    assert mae(y, yhat) == pytest.approx((2 + 2 + 3 + 0) / 4)
    assert smape(y, yhat) == pytest.approx(100 * np.mean([4 / 22, 4 / 38, 6 / 63, 0]))
    train = np.array([1.0, 2.0, 4.0, 3.0, 5.0])  # lag-2 naive errors: 3, 1, 1 -> scale 5/3
    assert mase(y, yhat, train, 2) == pytest.approx(1.75 / (5 / 3))
    assert coverage(y, y - 1, yhat) == pytest.approx(0.75)  # 12>10, 18<20 out, 33>30, 40=40
    assert seasonal_naive(train, 5, 2).tolist() == [3.0, 5.0, 3.0, 5.0, 3.0]
    assert smape(np.zeros(2), np.zeros(2)) == 0.0


def test_score_forecast_by_hand() -> None:
    ds = pd.date_range("2026-10-01", periods=6, freq="1h")
    train = pd.DataFrame({"unique_id": "s", "ds": ds[:4], "y": [1.0, 3.0, 2.0, 4.0]})
    test = pd.DataFrame({"unique_id": "s", "ds": ds[4:], "y": [3.0, 5.0]})
    fc = pd.DataFrame(
        {
            "unique_id": "s",
            "ds": ds[4:],
            "yhat": [2.0, 4.0],
            "yhat_lower": [1.0, 4.5],
            "yhat_upper": [3.0, 6.0],
            "model": "m",
        }
    )
    row = score_forecast(train, test, fc, season=2).iloc[0]
    assert row["mae"] == pytest.approx(1.0)
    assert row["mase"] == pytest.approx(1.0 / 1.0)  # lag-2 errors |2-1|, |4-3|
    assert row["coverage"] == pytest.approx(1.0)
    base = baseline_forecast(train, 2, "1h", "1D")
    assert base["yhat"].isna().all()  # one day of hourly history is not there


def test_backtest_has_baselines(two_series: pd.DataFrame) -> None:
    res = backtest(
        two_series[two_series["unique_id"] == "a"],
        ProphetForecaster(freq="1h", horizon=24, n_folds=2),
        n_windows=2,
    )
    assert set(res.summary["model"]) == {"auto", "snaive_day", "snaive_week"}
    assert res.metrics["cutoff"].nunique() == 2
    assert {"mae", "smape", "mase", "coverage"} <= set(res.summary.columns)
    auto = res.summary.set_index("model").loc["auto"]
    assert auto["mase"] < float(res.summary.set_index("model").loc["snaive_day", "mase"]) * 1.5
    assert "<table" in res._repr_html_()


def test_residual_analysis_finds_surge_and_trend() -> None:
    df = synth("s", days=21, growth=0.02, seed=3)
    surge = (df["ds"] >= "2026-10-15 10:00") & (df["ds"] < "2026-10-15 14:00")
    df.loc[surge, "y"] *= 2.5
    rep = residual_analysis(df, top=4)
    top = rep.top
    assert (top["z"] > 5).all()
    assert top["ds"].between("2026-10-15 10:00", "2026-10-15 13:00").all()
    trend = rep.trend.iloc[0]
    # true trend: +2 % of the level per day over 21 days -> about +40 %
    assert 25 < trend["growth_pct"] < 55
    assert trend["growth_per_day"] == pytest.approx(2.0, rel=0.35)


def test_json_roundtrip(fitted: ProphetForecaster, tmp_path: Path) -> None:
    path = fitted.save(tmp_path / "m.json")
    assert path.read_text().startswith("{")
    loaded = ProphetForecaster.load(path)
    pd.testing.assert_frame_equal(loaded.predict(), fitted.predict(), check_exact=False, rtol=1e-9)


def test_logistic_growth_and_regressor() -> None:
    df = synth("a", days=6)
    df["promo"] = (df["ds"].dt.hour == 12).astype(float)
    df.loc[df["promo"] == 1, "y"] += 80
    est = ProphetForecaster(
        freq="1h",
        horizon=24,
        members=("prophet",),
        growth="logistic",
        cap=500.0,
        regressors=("promo",),
    ).fit(df)
    fut = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2026-10-07", periods=24, freq="1h")})
    fut["promo"] = (fut["ds"].dt.hour == 12).astype(float)
    fc = est.predict(X_future=fut)
    noon = fc.set_index(fc["ds"].dt.hour)["yhat"]
    assert noon.loc[12] > noon.loc[11] + 40
    assert (fc["yhat"] <= 500).all()
    with pytest.raises(SchemaError, match="regressors"):
        est.predict()
    with pytest.raises(SchemaError, match="cap"):
        ProphetForecaster(growth="logistic").fit(df)


def test_parallel_equals_sequential(two_series: pd.DataFrame, fitted: ProphetForecaster) -> None:
    par = ProphetForecaster(freq="1h", horizon=24, n_folds=2, n_jobs=2).fit(two_series).predict()
    pd.testing.assert_frame_equal(par, fitted.predict(), check_exact=False, rtol=1e-6)


def _cli(argv: list[str]) -> int:
    """Run only the ``forecast`` subcommand (the full CLI imports every other command)."""
    parser = argparse.ArgumentParser()
    forecast_cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_forecast_csv(tmp_path: Path) -> None:
    src = synth("x", days=4)[["ds", "y"]]
    src.to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.csv"
    rc = _cli(
        [
            "forecast",
            str(tmp_path / "in.csv"),
            "--freq",
            "1h",
            "--horizon",
            "12",
            "-o",
            str(out),
            "--level",
            "90",
            "--folds",
            "1",
        ]
    )
    assert rc == 0
    fc = pd.read_csv(out)
    assert list(fc.columns) == ["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper"]
    assert len(fc) == 12 and (fc["unique_id"] == "all").all()
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(IngestError, match="needs columns ds,y"):
        _cli(["forecast", str(tmp_path / "bad.csv")])


def test_holidays_from_events_are_used() -> None:
    df = synth("a", days=8)
    launch = pd.Timestamp("2026-10-04")
    df.loc[df["ds"].dt.normalize() == launch, "y"] += 150
    hol = events_to_holidays([launch, launch + pd.Timedelta("2h")], name="launch")
    assert len(hol) == 1 and hol["holiday"].iloc[0] == "launch"
    est = ProphetForecaster(
        freq="1h", horizon=24, members=("prophet",), transform="none", holidays=hol, n_folds=1
    ).fit(df)
    fc = est.predict()
    assert fc["yhat"].mean() < 160  # the launch day is explained by the event, not the level


def test_profile_members_follow_the_last_level() -> None:
    # a clean daily shape whose level doubles on the last day
    df = synth("p", days=9)
    df["y"] = 100 * (1 + 0.4 * np.sin(2 * np.pi * np.arange(len(df)) / 24))
    df.loc[df.index >= len(df) - 24, "y"] *= 2
    est = ProphetForecaster(freq="1h", horizon=24, members=("profile_day",), select=False).fit(df)
    fc = est.predict()
    expected = df["y"].to_numpy()[-24:]
    np.testing.assert_allclose(fc["yhat"].to_numpy(), expected, rtol=0.02)
    wl = ProphetForecaster(freq="1h", horizon=24, members=("profile_day_wl",), select=False)
    assert wl.fit(df).predict()["yhat"].mean() < 0.8 * expected.mean()  # weekly level lags
    week = ProphetForecaster(freq="1h", horizon=24, members=("profile_week",), select=False)
    np.testing.assert_allclose(
        week.fit(df).predict()["yhat"].to_numpy(), df["y"].to_numpy()[-168:-144], rtol=1e-9
    )


def test_outage_zeros_are_not_copied_forward() -> None:
    df = synth("o", days=8)
    df.loc[df.index >= len(df) - 6, "y"] = 0.0  # the collector dropped out for 6 hours
    fc = (
        ProphetForecaster(freq="1h", horizon=24, members=("snaive_day",), select=False)
        .fit(df)
        .predict()
    )
    assert fc["yhat"].tail(6).min() > 20  # filled from the day before, not zero
    raw = ProphetForecaster(
        freq="1h", horizon=24, members=("snaive_day",), select=False, drop_outages=False
    )
    assert raw.fit(df).predict()["yhat"].tail(6).max() == 0.0


def test_top_k_combination_and_interval_by_lead(two_series: pd.DataFrame) -> None:
    est = ProphetForecaster(freq="1h", horizon=48, n_folds=3, combine="top", top_k=2).fit(
        two_series[two_series["unique_id"] == "a"]
    )
    fit = est.fits_["a"]
    assert len(fit.combo) == 2
    singles = {k: v for k, v in fit.scores.items() if "+" not in k}
    assert set(fit.combo) == set(sorted(singles, key=singles.__getitem__)[:2])
    assert est.selection_["backtest_mase"].notna().all()
    assert len(fit.q_hi) == 48 and (fit.q_hi >= 0).all() and (fit.q_lo <= 0).all()
    fc = est.predict(72)  # beyond the calibrated leads the last offset repeats
    width = (fc["yhat_upper"] - fc["yhat_lower"]).to_numpy()
    assert np.all(width > 0)
    with pytest.raises(SchemaError, match="combine"):
        ProphetForecaster(combine="best").fit(two_series)


def test_recency_weighted_quantile_by_hand() -> None:
    from lumina_analytics.forecasting.model import _interval_offsets, _wquantile

    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert _wquantile(x, np.ones(4), 0.5) == 2.0
    assert _wquantile(x, np.array([0.0, 0.0, 0.0, 1.0]), 0.1) == 4.0
    lo, hi = _interval_offsets(np.array([-1.0, 0.5, 2.0, np.nan]), 0.1, "symmetric")
    assert (lo, hi) == (-2.0, 2.0)


def test_tolerance_combination_keeps_close_members(two_series: pd.DataFrame) -> None:
    est = ProphetForecaster(freq="1h", horizon=24, n_folds=3, tolerance=0.2)
    fit = est.fit(two_series[two_series["unique_id"] == "a"]).fits_["a"]
    singles = {k: v for k, v in fit.scores.items() if "+" not in k}
    best = min(singles.values())
    assert set(fit.combo) == {m for m, v in singles.items() if v <= 1.2 * best}
    alone = ProphetForecaster(freq="1h", horizon=24, n_folds=3, tolerance=0.0)
    assert len(alone.fit(two_series[two_series["unique_id"] == "a"]).fits_["a"].combo) == 1
    with pytest.raises(SchemaError, match="tolerance"):
        ProphetForecaster(tolerance=-1).fit(two_series)


def test_tied_backtest_carries_a_recent_level_shift_forward() -> None:
    # every inner window straddles the shift, so all members score alike; hedging over
    # them would pull the forecast back toward the old level
    rng = np.random.default_rng(0)
    ds = pd.date_range("2024-01-01", periods=24 * 14, freq="1h")
    y = 6 + 0.25 * rng.standard_normal(len(ds))
    y[-36:] += 8.5
    df = pd.DataFrame({"unique_id": "cpu", "ds": ds, "y": y})
    tied = ProphetForecaster(freq="1h", horizon=48).fit(df)
    assert tied.selection_["model"].tolist() == ["snaive_day"]
    assert tied.selection_["rule"].iloc[0] == "tied within 3%: newest day carried forward"
    assert tied.predict()["yhat"].mean() == pytest.approx(14.5, abs=0.3)
    hedged = ProphetForecaster(freq="1h", horizon=48, tie_margin=0.0).fit(df)
    assert "+" in hedged.selection_["model"].iloc[0]
    assert hedged.selection_["rule"].iloc[0] == "within 20% of the best"
    assert hedged.predict()["yhat"].mean() < 12
    with pytest.raises(SchemaError, match="tie_margin"):
        ProphetForecaster(tie_margin=-0.1).fit(df)


def test_member_scores_use_shared_windows_weighted_by_recency() -> None:
    from lumina_analytics.forecasting.model import _member_scores

    actual = {10: np.array([1.0, 1.0]), 5: np.array([1.0, 1.0]), 0: np.array([1.0, 1.0])}
    preds = {
        (10, "a"): np.array([2.0, 2.0]),  # error 1 on the newest window
        (5, "a"): np.array([4.0, 4.0]),  # error 3
        (0, "a"): np.array([9.0, 9.0]),  # only "a" has the oldest window: not compared
        (10, "b"): np.array([3.0, 3.0]),  # error 2
        (5, "b"): np.array([2.0, 2.0]),  # error 1
    }
    flat = _member_scores(preds, actual, [10, 5, 0], ["a", "b"], 1.0, None)
    assert flat == pytest.approx({"a": 2.0, "b": 1.5})
    recent = _member_scores(preds, actual, [10, 5, 0], ["a", "b"], 1.0, 1.0)
    assert recent == pytest.approx({"a": (1 + 0.5 * 3) / 1.5, "b": (2 + 0.5 * 1) / 1.5})


def test_long_profile_ignores_a_recent_level_swing() -> None:
    df = synth("s", days=14)
    df["y"] = 100 * (1 + 0.4 * np.sin(2 * np.pi * np.arange(len(df)) / 24))
    df.loc[df.index >= len(df) - 48, "y"] *= 1.5  # a two-day surge
    est = ProphetForecaster(
        freq="1h", horizon=24, members=("profile_long",), select=False, nowcast=False
    )
    fc = est.fit(df).predict()
    np.testing.assert_allclose(fc["yhat"].to_numpy(), df["y"].to_numpy()[:24], rtol=0.02)


def test_hindsight_combination_by_hand() -> None:
    a, b = np.array([0.0, 10.0, 20.0, 30.0]), np.array([10.0, 10.0, 10.0, 10.0])
    best, w = hindsight_combination(0.3 * a + 0.7 * b, {"a": a, "b": b})
    assert best == pytest.approx(0.0, abs=1e-9)
    assert w == pytest.approx({"a": 0.3, "b": 0.7})
    # not reachable exactly: the optimum of a fine grid over the weight of a, by brute force
    y = b + 2.0
    best, w = hindsight_combination(y, {"a": a, "b": b})
    grid = np.linspace(0, 1, 10001)
    errs = [float(np.mean(np.abs(y - (g * a + (1 - g) * b)))) for g in grid]
    assert best == pytest.approx(min(errs), abs=1e-6)
    assert sum(w.values()) == pytest.approx(1.0) and min(w.values()) >= 0.0
    best, _ = hindsight_combination(np.array([1.0, np.nan]), {"a": np.array([3.0, 0.0])})
    assert best == pytest.approx(2.0)  # missing actual values are left out
    with pytest.raises(SchemaError, match="steps"):
        hindsight_combination(np.zeros(3), {"a": np.zeros(2)})
    with pytest.raises(SchemaError, match="at least one"):
        hindsight_combination(np.zeros(3), {})


def test_member_forecasts_one_per_member(two_series: pd.DataFrame) -> None:
    est = ProphetForecaster(freq="1h", horizon=24, members=("snaive_day", "profile_day"))
    out = est.member_forecasts(two_series, horizon=12)
    assert list(out.columns) == ["unique_id", "ds", "yhat", "model"]
    assert out.groupby(["unique_id", "model"]).size().to_dict() == {
        (u, m): 12 for u in ("a", "b") for m in ("profile_day", "snaive_day")
    }
    a = two_series[two_series["unique_id"] == "a"]["y"].to_numpy()
    snaive = out[(out["unique_id"] == "a") & (out["model"] == "snaive_day")]["yhat"]
    np.testing.assert_allclose(snaive.to_numpy(), a[-24:-12])
    with pytest.raises(SchemaError, match="regressors"):
        ProphetForecaster(regressors=("x",)).member_forecasts(two_series)
    negative = two_series.assign(y=two_series["y"] - 1000.0)
    with pytest.raises(SchemaError, match=r"'a'.*non-negative"):
        ProphetForecaster(freq="1h", transform="log1p").member_forecasts(negative)
