"""The nowcast correction: the forecast start follows a deviation that persists at the cutoff."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lumina_analytics.forecasting import ProphetForecaster, mae
from lumina_analytics.forecasting.model import _nowcast, _nowcast_offset


def test_offset_and_decay_by_hand() -> None:
    p = np.array([10.0, 11.0, 12.0, 13.0])
    # last observation 15, forecast one period (3 steps) later 12: offset 3
    assert _nowcast_offset(np.array([1.0, 15.0]), p, 3, "none") == 3.0
    np.testing.assert_allclose(_nowcast(p, 3.0, 0.5, "none"), p + 3.0 * 0.5 ** np.arange(1, 5))
    np.testing.assert_allclose(_nowcast(p, 3.0, 0.0, "none"), p)  # decay 0: no correction
    # on the log1p scale the offset is a ratio: (1 + 15) / (1 + 12) kept at the first step
    z = _nowcast(p, _nowcast_offset(np.array([15.0]), p, 3, "log1p"), 1.0, "log1p")
    np.testing.assert_allclose(z, (1 + p) * 16 / 13 - 1)
    # a missing last observation, or a forecast shorter than one period: no offset
    assert _nowcast_offset(np.array([np.nan]), p, 3, "none") == 0.0
    assert _nowcast_offset(np.array([15.0]), p, 5, "none") == 0.0


def persistent(days: int, seed: int) -> pd.DataFrame:
    """A daily shape plus a slowly decaying AR(1) deviation (half-life ~ 7 hours)."""
    n = 24 * days
    rng = np.random.default_rng(seed)
    dev = np.zeros(n)
    for t in range(1, n):
        dev[t] = 0.9 * dev[t - 1] + rng.normal(0, 8)
    shape = 100 * (1 + 0.4 * np.sin(2 * np.pi * np.arange(n) / 24))
    ds = pd.date_range("2026-10-01", periods=n, freq="1h")
    return pd.DataFrame({"unique_id": "p", "ds": ds, "y": np.maximum(shape + dev, 0)})


def test_backtest_turns_the_correction_on_for_a_persistent_deviation(tmp_path: Path) -> None:
    early_gain = []
    for seed in range(3):
        df = persistent(15, seed)
        train, test = df.iloc[:-24], df["y"].to_numpy()[-24:]
        kw = {"freq": "1h", "horizon": 24, "members": ("profile_long", "snaive_day")}
        est = ProphetForecaster(**kw).fit(train)
        fit = est.fits_["p"]
        assert 0 < fit.decay < 1  # chosen on the inner windows
        halflife = est.selection_["nowcast_halflife"].iloc[0]
        assert halflife == pytest.approx(np.log(0.5) / np.log(fit.decay))
        fc = est.predict()["yhat"].to_numpy()
        off = ProphetForecaster(**kw, nowcast=False).fit(train).predict()["yhat"].to_numpy()
        early_gain.append(mae(test[:6], off[:6]) - mae(test[:6], fc[:6]))
        if seed == 0:  # the decay survives the JSON round trip
            loaded = ProphetForecaster.load(est.save(tmp_path / "m.json"))
            assert loaded.fits_["p"].decay == fit.decay
            np.testing.assert_allclose(loaded.predict()["yhat"].to_numpy(), fc, rtol=1e-9)
    assert np.mean(early_gain) > 0  # the first hours after the cutoff are nearer the truth


def test_short_horizon_and_switch_off() -> None:
    df = persistent(15, 0)
    est = ProphetForecaster(freq="1h", horizon=24, members=("profile_long",), select=False)
    est.fit(df)
    full = est.predict(24)["yhat"].to_numpy()
    # a horizon shorter than a day still gets the same correction at the same steps
    np.testing.assert_allclose(est.predict(6)["yhat"].to_numpy(), full[:6], rtol=1e-9)
    off = ProphetForecaster(
        freq="1h", horizon=24, members=("profile_long",), select=False, nowcast=False
    ).fit(df)
    assert off.fits_["p"].decay == 0.0
    assert np.isnan(off.selection_["nowcast_halflife"].iloc[0])
