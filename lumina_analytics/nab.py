"""NAB-style scoring of anomaly detectors, implemented from Lavin & Ahmad (2015).

Rules (as the Numenta Anomaly Benchmark applies them):

* each labelled anomaly window rewards the *first* detection inside it with a scaled sigmoid of
  its relative position (``2 * sigmoid(-5 * x) - 1``, x = -1 at the left edge, ~0 at the right
  edge), divided by its value at the left edge (so the earliest detection earns exactly
  ``tpWeight``); later detections in the same window are free;
* a window with no detection costs ``fnWeight``;
* a detection outside every window costs ``fpWeight`` times the scaled sigmoid of its distance
  past the preceding window (in units of that window's width; -1 with no preceding window or
  from 3 widths on), so alarms just after a window cost little;
* the first 15% of each file (at most 750 rows) is probationary and unscored;
* raw totals over the corpus are normalised between the null detector (0) and a perfect
  detector (100), which earns ``tpWeight`` for every labelled window; one threshold per
  profile is chosen over the whole corpus (exhaustively, over every distinct score).

These match NAB's own scorer (``nab/sweeper.py`` and the normalisation in ``nab/runner.py``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lumina_analytics.errors import LuminaError

#: The three NAB profiles (tpWeight, fnWeight, fpWeight); the defaults NAB ships.
DEFAULT_PROFILES: dict[str, dict[str, float]] = {
    "standard": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11},
    "reward_low_FP_rate": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.22},
    "reward_low_FN_rate": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11},
}


def scaled_sigmoid(relative_position: float) -> float:
    """NAB's reward curve: ~1 early in a window, 0 at its right edge, -1 far past it."""
    if relative_position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * relative_position)) - 1.0


def probationary_length(n: int, fraction: float = 0.15) -> int:
    """Rows at the start of a file that are not scored: 15% of the file, at most 750."""
    return int(min(math.floor(fraction * n), fraction * 5000))


#: The reward of a detection on a window's left edge; rewards are divided by it, as in NAB.
MAX_TP = scaled_sigmoid(-1.0)


@dataclass
class FileLabels:
    """Per-point scoring inputs of one file, independent of the detector's scores.

    ``window_id`` is -1 outside windows, -2 in the probationary period, else the window index;
    ``tp_unweighted``/``fp_unweighted`` hold the scaled-sigmoid value each point would earn
    (true positives already divided by :data:`MAX_TP`); ``n_windows`` counts the windows with
    scored rows, ``n_labelled`` every labelled window (the perfect detector's count).
    """

    window_id: np.ndarray
    tp_unweighted: np.ndarray
    fp_unweighted: np.ndarray
    n_windows: int
    n_labelled: int = 0


def label_points(
    timestamps: Sequence[pd.Timestamp] | pd.Series, windows: Sequence[tuple[str, str]]
) -> FileLabels:
    """Assign every row of a file to a window / probation / outside, with its sigmoid values."""
    ts = pd.to_datetime(pd.Series(timestamps)).to_numpy()
    n = len(ts)
    window_id = np.full(n, -1, dtype=np.int64)
    tp = np.zeros(n)
    fp = np.full(n, -1.0)
    bounds = []
    for start, end in windows:
        left = int(np.searchsorted(ts, np.datetime64(pd.Timestamp(start)), side="left"))
        right = int(np.searchsorted(ts, np.datetime64(pd.Timestamp(end)), side="right")) - 1
        if right >= left:
            bounds.append((left, right))
    bounds.sort()
    prev: tuple[int, int] | None = None
    k = 0
    for i in range(n):
        while k < len(bounds) and bounds[k][1] < i:
            prev = bounds[k]
            k += 1
        if k < len(bounds) and bounds[k][0] <= i <= bounds[k][1]:
            left, right = bounds[k]
            width = float(right - left + 1)
            window_id[i] = k
            tp[i] = scaled_sigmoid(-(right - i + 1) / width) / MAX_TP
        elif prev is not None:
            pleft, pright = prev
            pwidth = float(pright - pleft + 1)
            fp[i] = scaled_sigmoid(abs(pright - i) / max(pwidth - 1.0, 1.0))
    window_id[: probationary_length(n)] = -2
    scored_windows = {int(w) for w in window_id if w >= 0}
    # renumber so windows lying wholly in probation do not count
    remap = {w: j for j, w in enumerate(sorted(scored_windows))}
    window_id = np.array([remap.get(int(w), int(w)) if w >= 0 else int(w) for w in window_id])
    return FileLabels(window_id, tp, fp, len(scored_windows), len(windows))


def _score_curve(
    scores: np.ndarray, labels: FileLabels, tp_w: float, fn_w: float, fp_w: float
) -> tuple[np.ndarray, np.ndarray]:
    """Step function of the raw file score over thresholds.

    Returns ``(thresholds, deltas)``: the raw score at threshold t is
    ``-fn_w * n_windows + sum(deltas[thresholds >= t])``.
    """
    th: list[np.ndarray] = []
    dl: list[np.ndarray] = []
    outside = labels.window_id == -1
    th.append(scores[outside])
    dl.append(fp_w * labels.fp_unweighted[outside])
    for w in range(labels.n_windows):
        idx = np.flatnonzero(labels.window_id == w)
        s = scores[idx]
        order = np.argsort(-s, kind="stable")
        s_sorted = s[order]
        best = np.maximum.accumulate(tp_w * labels.tp_unweighted[idx][order])
        # value of this window once the threshold drops to s_sorted[j]
        value = best
        prev_value = np.concatenate(([-fn_w], value[:-1]))
        th.append(s_sorted)
        dl.append(value - prev_value)
    return np.concatenate(th), np.concatenate(dl)


@dataclass
class NabResult:
    """Scores of one detector on a corpus: a table per profile plus per-file raw scores."""

    table: pd.DataFrame
    per_file: pd.DataFrame
    thresholds: dict[str, float] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        return str(self.table.to_html(float_format=lambda v: f"{v:.1f}"))


def _raw_at(th: np.ndarray, dl: np.ndarray, base: float, t: float) -> float:
    return float(base + dl[th >= t].sum())


def _best_threshold(curves: list[tuple[np.ndarray, np.ndarray, float]]) -> tuple[float, float]:
    """Exhaustively pick the threshold maximising the corpus raw score."""
    th = np.concatenate([c[0] for c in curves])
    dl = np.concatenate([c[1] for c in curves])
    base = sum(c[2] for c in curves)
    order = np.argsort(-th, kind="stable")
    th_s, cum = th[order], np.cumsum(dl[order])
    # only evaluate after the last point of each tied threshold value
    last = np.r_[th_s[1:] != th_s[:-1], True]
    cand_t, cand_v = th_s[last], base + cum[last]
    if len(cand_v) == 0 or cand_v.max() <= base:
        return float(np.inf), float(base)
    j = int(np.argmax(cand_v))
    return float(cand_t[j]), float(cand_v[j])


def score_corpus(
    files: Mapping[str, tuple[pd.Series, np.ndarray]],
    windows: Mapping[str, Sequence[tuple[str, str]]],
    profiles: Mapping[str, Mapping[str, float]] | None = None,
    threshold: float | None = None,
) -> NabResult:
    """Score detector output on many files the NAB way.

    ``files`` maps a relative name (``category/file.csv``) to ``(timestamps, scores)``;
    ``windows`` maps the same names to lists of ``(start, end)`` timestamps. With
    ``threshold=None`` each profile gets the threshold that maximises its corpus score.
    Returns the normalised score (0 = null detector, 100 = perfect) overall and per category.
    """
    profiles = profiles or DEFAULT_PROFILES
    labels = {name: label_points(ts, windows.get(name, [])) for name, (ts, _) in files.items()}
    rows, file_rows, chosen = [], [], {}
    for pname, prof in profiles.items():
        tp_w, fn_w, fp_w = (float(prof[k]) for k in ("tpWeight", "fnWeight", "fpWeight"))
        curves: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
        for name, (_, scores) in files.items():
            lab = labels[name]
            th, dl = _score_curve(np.asarray(scores, dtype=float), lab, tp_w, fn_w, fp_w)
            curves[name] = (th, dl, -fn_w * lab.n_windows)
        if threshold is None:
            t, _ = _best_threshold(list(curves.values()))
        else:
            t = threshold
        chosen[pname] = t
        per_cat: dict[str, list[float]] = {}
        for name, (th, dl, base) in curves.items():
            lab = labels[name]
            raw = _raw_at(th, dl, base, t)
            null = -fn_w * lab.n_windows
            perfect = tp_w * lab.n_labelled
            cat = name.split("/")[0]
            acc = per_cat.setdefault(cat, [0.0, 0.0, 0.0, 0.0])
            for j, v in enumerate((raw, null, _raw_at(th, dl, base, -np.inf), perfect)):
                acc[j] += v
            file_rows.append(
                {"profile": pname, "file": name, "raw": raw, "null": null, "perfect": perfect}
            )
        tot = [sum(v[i] for v in per_cat.values()) for i in range(4)]
        for cat, (raw, nothing, everything, perfect) in [("ALL", tot), *sorted(per_cat.items())]:
            # NAB's null detector scores 0.5 everywhere: its best threshold flags all or nothing
            null = max(nothing, everything)
            norm = 100.0 * (raw - null) / (perfect - null) if perfect != null else float("nan")
            rows.append(
                {"profile": pname, "category": cat, "score": norm, "raw": raw, "threshold": t}
            )
    table = pd.DataFrame(rows).pivot(index="category", columns="profile", values="score")
    table = table[list(profiles)].reindex(["ALL", *sorted(c for c in table.index if c != "ALL")])
    return NabResult(table=table, per_file=pd.DataFrame(file_rows), thresholds=chosen)


def default_data_dir() -> Path | None:
    """The development copy of NAB next to the project (``../shared/data/nab``), if present."""
    folder = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"
    return folder if (folder / "combined_windows.json").is_file() else None


def load_corpus(
    data_dir: str | Path,
) -> tuple[dict[str, pd.DataFrame], dict[str, list[tuple[str, str]]], dict[str, dict[str, float]]]:
    """Read a NAB folder: ``data/<category>/<file>.csv``, ``combined_windows.json``, ``profiles.json``."""
    root = Path(data_dir)
    if not (root / "data").is_dir() or not (root / "combined_windows.json").is_file():
        raise LuminaError(
            f"{root} is not a NAB folder: expected data/<category>/*.csv and combined_windows.json"
        )
    windows_raw = json.loads((root / "combined_windows.json").read_text())
    profiles: dict[str, dict[str, float]] = dict(DEFAULT_PROFILES)
    if (root / "profiles.json").is_file():
        raw = json.loads((root / "profiles.json").read_text())
        profiles = {k: {w: float(x) for w, x in v["CostMatrix"].items()} for k, v in raw.items()}
    frames: dict[str, pd.DataFrame] = {}
    for path in sorted((root / "data").glob("*/*.csv")):
        name = f"{path.parent.name}/{path.name}"
        frame = pd.read_csv(path)
        frame["timestamp"] = pd.to_datetime(frame["timestamp"])
        frames[name] = frame
    windows = {k: [(str(a), str(b)) for a, b in v] for k, v in windows_raw.items() if k in frames}
    return frames, windows, profiles


def evaluate(
    data_dir: str | Path,
    score_fn: Callable[[pd.DataFrame], np.ndarray],
) -> NabResult:
    """Run ``score_fn(timestamp,value frame) -> scores`` on every file of a NAB folder and score it."""
    frames, windows, profiles = load_corpus(data_dir)
    files = {
        name: (f["timestamp"], np.asarray(score_fn(f), dtype=float)) for name, f in frames.items()
    }
    return score_corpus(files, windows, profiles)
