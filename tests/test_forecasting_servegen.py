"""The ServeGen evaluation table reproduces (real data; skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lumina_analytics.forecasting.servegen import ceiling_servegen, evaluate_servegen


@pytest.mark.shared_data
def test_servegen_table(shared_data: Path) -> None:
    path = shared_data / "llm_workload" / "servegen_model_rate_10min.csv"
    if not path.exists():
        pytest.skip(f"{path} not present")
    table = evaluate_servegen(path)
    assert set(table["unique_id"]) == {"m-mid", "m-small"}
    models = set(table["model"].where(~table["model"].str.startswith("auto("), "auto"))
    assert models == {"auto", "prophet_default", "snaive_day", "snaive_week"}
    assert (table["n"] == 288).all()
    assert np.isfinite(table[["mae", "smape", "mase", "coverage"]].to_numpy()).all()
    ours = table[table["model"].str.startswith("auto(")].set_index("unique_id")
    # measured (see the report): m-mid 0.860 x best baseline, coverage 0.847; m-small 1.045 x,
    # coverage 0.760. m-small's training ends in three elevated days that the test days do
    # not continue; every inner backtest (training data only) favours the members that
    # follow the recent level there, so the 0.9 x goal is not reached on that series (the
    # best of all candidates on its test days, prophet_flat_log alone, is 0.895 x).
    ratio, cov = ours["mase_vs_best_baseline"].astype(float), ours["coverage"].astype(float)
    assert ratio["m-mid"] < 0.9
    assert ratio["m-small"] < 1.1
    assert cov["m-mid"] == pytest.approx(0.847, abs=0.03)
    assert cov["m-small"] == pytest.approx(0.76, abs=0.03)
    assert ours["coverage"].between(0.75, 0.85).all()  # the goal's band, both series


@pytest.mark.shared_data
def test_servegen_hindsight_ceiling(shared_data: Path) -> None:
    path = shared_data / "llm_workload" / "servegen_model_rate_10min.csv"
    if not path.exists():
        pytest.skip(f"{path} not present")
    table = ceiling_servegen(path).set_index(["unique_id", "model"])["mae_vs_best_baseline"]
    for uid in ("m-mid", "m-small"):
        members = table[uid].drop(["hindsight", "hindsight_level"])
        assert len(members) == 9  # every member of MEMBERS
        assert table[(uid, "hindsight")] <= members.min() + 1e-9
    # measured: even with weights fitted to the test days, no combination of the members
    # gets m-small much below 0.9 x the best baseline (0.892: prophet_flat_log 0.76,
    # profile_long 0.24); m-mid reaches 0.789
    assert table[("m-small", "hindsight")] == pytest.approx(0.892, abs=0.02)
    # knowing the test days' level in advance, the training days' daily shape gives 0.917 x
    assert table[("m-small", "hindsight_level")] == pytest.approx(0.917, abs=0.02)
    assert table[("m-mid", "hindsight")] < 0.85


def test_best_scale_is_the_weighted_median_ratio() -> None:
    from lumina_analytics.forecasting.servegen import _best_scale

    shape = np.array([1.0, 2.0, 4.0])
    actual = np.array([3.0, 2.0, 8.0])  # ratios 3, 1, 2 with weights 1, 2, 4
    assert _best_scale(actual, shape) == 2.0
    grid = np.linspace(0, 4, 4001)
    errs = [np.abs(actual - g * shape).sum() for g in grid]
    assert np.abs(actual - 2.0 * shape).sum() == pytest.approx(min(errs))
