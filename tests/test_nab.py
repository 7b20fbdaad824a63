"""The NAB-style scorer against hand-worked examples, and the corpus score on real NAB files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lumina_analytics import nab

STD = {"standard": nab.DEFAULT_PROFILES["standard"]}


def _ts(n: int) -> pd.Series:
    return pd.Series(pd.date_range("2024-01-01", periods=n, freq="5min"))


def _win(ts: pd.Series, a: int, b: int) -> list[tuple[str, str]]:
    return [(str(ts[a]), str(ts[b]))]


def _alarm_at(n: int, *rows: int) -> np.ndarray:
    s = np.zeros(n)
    s[list(rows)] = 1.0
    return s


def test_scaled_sigmoid_values() -> None:
    assert nab.scaled_sigmoid(-1.0) == pytest.approx(0.9866143, abs=1e-6)  # left edge of a window
    assert nab.scaled_sigmoid(0.0) == 0.0  # right edge
    assert nab.scaled_sigmoid(3.5) == -1.0  # far past a window


def test_probationary_length() -> None:
    assert nab.probationary_length(100) == 15
    assert nab.probationary_length(4032) == 604
    assert nab.probationary_length(22695) == 750  # capped


def test_one_true_positive_by_hand() -> None:
    # 40 rows, probation = floor(6) = 6 rows; window rows 20..23 (width 4); alarm at row 21.
    # sigmoid = 2/(1+exp(5 * -(23-21+1)/4)) - 1 = 2/(1+e^-3.75) - 1 = 0.9540453, divided (as NAB
    # does) by its left-edge value 2/(1+e^-5) - 1 = 0.9866143: reward 0.9669891
    # null = -1 (window missed; flagging every row would cost 14 FPs before it), perfect =
    # tpWeight per window = 1; normalised = 100 * (0.9669891 + 1) / (1 + 1) = 98.3495
    ts = _ts(40)
    res = nab.score_corpus(
        {"c/f.csv": (ts, _alarm_at(40, 21))}, {"c/f.csv": _win(ts, 20, 23)}, STD, 0.5
    )
    raw = res.per_file.iloc[0]
    assert raw["raw"] == pytest.approx(0.9669891, abs=1e-6)
    assert raw["null"] == -1.0
    assert raw["perfect"] == 1.0
    assert res.table.loc["ALL", "standard"] == pytest.approx(98.3495, abs=1e-3)


def test_null_detector_may_flag_everything_on_a_tiny_corpus() -> None:
    # NAB's null detector scores 0.5 everywhere, so its best threshold flags all rows or none.
    # 10 rows, probation 1, window rows 4..7: flagging all earns 1 (window) - 3 * 0.11 (rows
    # 1..3) + 0.11 * (sigmoid(1/3) + sigmoid(2/3)) (rows 8, 9) = 0.4929 > -1 (flag none).
    ts = _ts(10)
    res = nab.score_corpus(
        {"c/f.csv": (ts, _alarm_at(10, 5))}, {"c/f.csv": _win(ts, 4, 7)}, STD, 0.5
    )
    null = 1 - 0.33 + 0.11 * (nab.scaled_sigmoid(1 / 3) + nab.scaled_sigmoid(2 / 3))
    expected = 100 * (0.9669891 - null) / (1 - null)
    assert res.table.loc["ALL", "standard"] == pytest.approx(expected, abs=1e-4)


def test_only_first_detection_in_window_counts() -> None:
    ts = _ts(10)
    one = nab.score_corpus(
        {"c/f.csv": (ts, _alarm_at(10, 5))}, {"c/f.csv": _win(ts, 4, 7)}, STD, 0.5
    )
    many = nab.score_corpus(
        {"c/f.csv": (ts, _alarm_at(10, 5, 6, 7))}, {"c/f.csv": _win(ts, 4, 7)}, STD, 0.5
    )
    assert many.per_file["raw"].iloc[0] == pytest.approx(one.per_file["raw"].iloc[0])


def test_false_positive_after_window_and_missed_window_by_hand() -> None:
    # 20 rows, probation 3; window rows 5..8 (width 4); alarms at row 1 (probation, ignored)
    # and row 10 (FP). FP weight: 2/(1+exp(5 * |8-10|/(4-1))) - 1 = -0.9311096, times 0.11
    # = -0.1024221; the missed window costs -1: raw = -1.1024221.
    ts = _ts(20)
    res = nab.score_corpus(
        {"c/f.csv": (ts, _alarm_at(20, 1, 10))}, {"c/f.csv": _win(ts, 5, 8)}, STD, 0.5
    )
    assert res.per_file["raw"].iloc[0] == pytest.approx(-1.1024221, abs=1e-6)


def test_false_positive_without_preceding_window_costs_full_weight() -> None:
    ts = _ts(20)
    res = nab.score_corpus(
        {"c/f.csv": (ts, _alarm_at(20, 4, 12))}, {"c/f.csv": _win(ts, 10, 13)}, STD, 0.5
    )
    # FP at row 4 (before any window): -0.11; TP at 12: (2/(1+exp(5*-(13-12+1)/4)) - 1) / 0.9866143
    assert res.per_file["raw"].iloc[0] == pytest.approx(-0.11 + 0.8597926, abs=1e-6)


def test_fp_three_widths_past_a_window_costs_full_weight() -> None:
    # window rows 10..13 (width 4): a row 9 past its right edge is 9 / 3 = 3 widths on: -1 * 0.11
    ts = _ts(40)
    res = nab.score_corpus(
        {"c/f.csv": (ts, _alarm_at(40, 10, 22))}, {"c/f.csv": _win(ts, 10, 13)}, STD, 0.5
    )
    assert res.per_file["raw"].iloc[0] == pytest.approx(1.0 - 0.11, abs=1e-9)


def test_perfect_counts_every_labelled_window() -> None:
    # a window lying wholly in the probationary period cannot be scored but still counts
    # towards the perfect score, as in NAB's normalisation (tpCount over the labels file)
    ts = _ts(100)
    wins = {"c/f.csv": [(str(ts[2]), str(ts[5])), (str(ts[40]), str(ts[49]))]}
    res = nab.score_corpus({"c/f.csv": (ts, _alarm_at(100, 40))}, wins, STD, 0.5)
    row = res.per_file.iloc[0]
    assert row["perfect"] == 2.0 and row["null"] == -1.0 and row["raw"] == pytest.approx(1.0)
    assert res.table.loc["ALL", "standard"] == pytest.approx(100 * 2 / 3)


def test_null_and_perfect_detectors_normalise_to_0_and_100() -> None:
    ts = _ts(200)
    windows = {"c/f.csv": [(str(ts[50]), str(ts[69])), (str(ts[120]), str(ts[139]))]}
    perfect = np.zeros(200)
    perfect[[50, 120]] = 1.0
    for prof in nab.DEFAULT_PROFILES:
        prof_d = {prof: nab.DEFAULT_PROFILES[prof]}
        null = nab.score_corpus({"c/f.csv": (ts, np.zeros(200))}, windows, prof_d)
        best = nab.score_corpus({"c/f.csv": (ts, perfect)}, windows, prof_d)
        assert null.table.loc["ALL", prof] == pytest.approx(0.0)
        assert best.table.loc["ALL", prof] == pytest.approx(100.0)


def test_threshold_is_optimised_over_the_whole_corpus() -> None:
    # file a: window hit by a score of 0.9, a false alarm at 0.6 far from it.
    # file b: window hit by a score of 0.6. One threshold for both: 0.6 (hits both
    # windows, pays one FP) beats 0.9 (misses b's window).
    ts = _ts(100)
    win = {"c/a.csv": _win(ts, 40, 49), "c/b.csv": _win(ts, 40, 49)}
    a = np.zeros(100)
    a[42], a[20] = 0.9, 0.6
    b = np.zeros(100)
    b[42] = 0.6
    res = nab.score_corpus({"c/a.csv": (ts, a), "c/b.csv": (ts, b)}, win, STD)
    assert res.thresholds["standard"] == pytest.approx(0.6)


@pytest.mark.shared_data
def test_nab_corpus_score(shared_data: Path) -> None:
    from lumina_analytics.anomaly import score_values

    folder = shared_data / "nab"
    if not (folder / "combined_windows.json").is_file():
        pytest.skip(f"NAB files not present in {folder}")
    res = nab.evaluate(folder, lambda f: score_values(f["value"].to_numpy()))
    table = res.table
    assert table.loc["ALL", "standard"] > 74.9  # measured 75.2 on the 30 files
    assert table.loc["ALL", "reward_low_FP_rate"] > 68.5  # measured 69.6
    assert table.loc["ALL", "reward_low_FN_rate"] > 79.0  # measured 79.9
