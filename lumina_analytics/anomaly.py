"""Anomaly detection on long ``unique_id, ds, y`` frames, PyOD style (higher = more anomalous).

Univariate stream detectors are **causal**: the score at row t uses only rows up to t, so the same
detector runs on live data and gives the same past scores when more data arrives. Their scores are
calibrated to [0, 1] on each series' own scale:

* below 0.5: half the empirical percentile of the raw score among the series' past raw scores;
* 0.5 and above: an *alarm* — the raw score broke the series' record (exceeded ``factor`` times
  the largest raw score seen so far after a warm-up), 0.5 + 0.5 * tanh(relative excess).
  While the history is young (fewer than ``settle`` scored rows, default 20 x warm-up) a record
  must win by a margin, because young records are broken by chance far more often.

``CausalEnsemble`` takes the maximum of its members and suppresses repeated alarms for one event
(an event is a run of alarm rows with gaps of at most ``suppression`` rows; all but its first
alarm are capped below 0.5). ``MultivariateDetector``
scores windows over several metrics of one service with a PyOD model fitted on a training prefix.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from lumina_analytics.errors import LuminaError
from lumina_analytics.schema import validate_long

ALARM = 0.5  #: calibrated scores at or above this level are alarms


# --------------------------------------------------------------------------- calibration
def calibrate_records(
    raw: np.ndarray,
    factor: float = 1.0,
    warmup: int = 100,
    min_raw: float = 0.0,
    quantile: float | None = None,
    min_history: int = 20,
    settle: int = 0,
    settle_power: float = 0.1,
) -> np.ndarray:
    """Map raw scores to [0, 1] causally on the series' own scale (see module docstring).

    Non-finite raw scores (not enough history yet) score 0 and are not counted. An alarm
    needs ``raw > min_raw`` from row ``warmup`` on, at least ``min_history`` scored rows
    before it, and either a record
    (``raw > factor * max(past raw)``) or, when ``quantile`` is set, a raw score above that
    fraction of all past raw scores. Alarm strength is ``0.5 + 0.5 * tanh(raw / max(past raw))``.

    Records are cheap while history is short (with no anomaly, the n-th scored row breaks the
    record with probability 1/n), so with ``n < settle`` past scores a record must beat
    ``factor * (settle / n) ** settle_power`` times the old one (1.17x at ``settle / 5``).
    """
    raw = np.asarray(raw, dtype=float)
    out = np.zeros(len(raw))
    hist: list[float] = []
    best = -math.inf
    for i, v in enumerate(raw.tolist()):
        if not math.isfinite(v):  # undefined yet (too little history): no score, no history
            continue
        n = len(hist)
        if n:
            rank = bisect.bisect_left(hist, v) / n
            margin = factor * (settle / n) ** settle_power if n < settle else factor
            alarm = (
                i >= warmup
                and n >= min_history
                and v > min_raw
                and (v > margin * best or (quantile is not None and rank >= quantile))
            )
            if alarm:
                out[i] = ALARM + 0.5 * math.tanh(v / best) if best > 0 else 1.0
            else:
                out[i] = ALARM * bisect.bisect_left(hist, v) / (n + 1)
        bisect.insort(hist, v)
        best = max(best, v)
    return np.minimum(out, 1.0)


def suppress_repeats(scores: np.ndarray, suppression: int, alarm: float = ALARM) -> np.ndarray:
    """Keep only the first alarm of each event; later alarms of the event are capped below
    ``alarm``. An event is a run of alarm rows in which each follows the previous one (kept or
    muted) by at most ``suppression`` rows, so a long disturbance raises one alarm, not one per
    ``suppression`` rows."""
    out = np.asarray(scores, dtype=float).copy()
    last = -(10**12)
    cap = np.nextafter(alarm, 0.0)
    for i in np.flatnonzero(out >= alarm):
        if i - last <= suppression:
            out[i] = min(out[i], cap)
        last = int(i)
    return out


# --------------------------------------------------------------------------- raw features
def _level_shift(x: pd.Series, window: int, reference: int) -> np.ndarray:
    """|mean of the last ``window`` rows - mean of the ``reference`` rows before| / their std."""
    recent = x.rolling(window, min_periods=window).mean()
    ref = x.shift(window)
    minp = max(10, reference // 5)
    rm = ref.rolling(reference, min_periods=minp).mean()
    rs = ref.rolling(reference, min_periods=minp).std()
    z = (recent - rm).abs() / (rs + 1e-9 * (rm.abs() + 1.0))
    return np.asarray(z.to_numpy(), dtype=float)  # NaN until enough history


def _scale_shift(x: pd.Series, window: int, reference: int) -> np.ndarray:
    """|log(std of the last ``window`` rows / std of the ``reference`` rows before)|.

    Two-sided (noise that grows or vanishes); a tiny floor relative to the level keeps flat
    stretches finite (two flat stretches compare as equal, score 0).
    """
    recent = x.rolling(window, min_periods=window).std()
    ref = x.shift(window)
    minp = max(10, reference // 5)
    rs = ref.rolling(reference, min_periods=minp).std()
    floor = 1e-6 * ref.rolling(reference, min_periods=minp).mean().abs() + 1e-12
    z = np.log((recent + floor) / (rs + floor)).abs()
    return np.asarray(z.to_numpy(), dtype=float)  # NaN until enough history


def _range_novelty(x: pd.Series) -> np.ndarray:
    """How far the value lies outside the range of all earlier values, in units of that range."""
    hmax, hmin = x.cummax().shift(1), x.cummin().shift(1)
    span = hmax - hmin
    span = span.where(span > 0)
    excess = pd.concat([x - hmax, hmin - x], axis=1).max(axis=1).clip(lower=0.0)
    return np.asarray((excess / span).fillna(0.0).to_numpy(), dtype=float)


# --------------------------------------------------------------------------- detectors
#: Default ``settle`` of the record detectors, in units of ``warmup``: 100 -> 2000 rows.
SETTLE_PER_WARMUP = 20


def _settle(settle: int | None, warmup: int) -> int:
    return SETTLE_PER_WARMUP * warmup if settle is None else settle


class StreamDetector:
    """Base of the causal univariate detectors (PyOD-like ``fit`` / ``decision_function``).

    ``fit(X)`` scores the sequence X (1-D, or a one-column 2-D array) in time order and stores
    ``decision_scores_`` (calibrated, [0, 1]), ``labels_`` (alarms) and ``threshold_``.
    ``decision_function(X)`` continues the stream: X follows the fitted data in time.
    """

    threshold_: float
    decision_scores_: np.ndarray
    labels_: np.ndarray
    history_: np.ndarray

    def _raw(self, x: pd.Series) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _score(self, values: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fit(self, X: Any, y: Any = None) -> StreamDetector:
        """Score the training stream causally; ``y`` is ignored (unsupervised)."""
        values = _as_1d(X)
        self.history_ = values
        self.decision_scores_ = self._score(values)
        self.threshold_ = ALARM
        self.labels_ = (self.decision_scores_ >= ALARM).astype(int)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Scores of new rows that follow the fitted stream (causal continuation)."""
        values = _as_1d(X)
        full = np.concatenate([self.history_, values])
        return self._score(full)[len(self.history_) :]

    def predict(self, X: Any) -> np.ndarray:
        """1 for alarm rows of the continued stream, else 0."""
        return (self.decision_function(X) >= self.threshold_).astype(int)


class RollingZScore(StreamDetector):
    """Baseline: |value - trailing mean| / trailing std, mapped to [0, 1] by 2*Phi(|z|) - 1."""

    def __init__(self, window: int = 100) -> None:
        self.window = window

    def _score(self, values: np.ndarray) -> np.ndarray:
        from scipy.special import ndtr

        x = pd.Series(values)
        ref = x.shift(1).rolling(self.window, min_periods=max(3, self.window // 5))
        z = ((x - ref.mean()).abs() / ref.std()).replace([np.inf, -np.inf], np.nan).fillna(0.0)
        return np.asarray(2.0 * ndtr(z.to_numpy()) - 1.0, dtype=float)


class RangeNovelty(StreamDetector):
    """Alarms when a value leaves the range of everything seen before, by more than
    ``quantile`` of all earlier departures (most rows lie inside the range and score 0) and by
    at least ``min_excess`` of that range (a recurring peak that edges past the old maximum by
    a hair is not news).

    ``settle`` (rows, default ``SETTLE_PER_WARMUP * warmup``): see :func:`calibrate_records`.
    """

    def __init__(
        self,
        quantile: float = 0.99,
        warmup: int = 100,
        settle: int | None = None,
        min_excess: float = 0.02,
    ) -> None:
        self.quantile = quantile
        self.warmup = warmup
        self.settle = settle
        self.min_excess = min_excess

    def _score(self, values: np.ndarray) -> np.ndarray:
        raw = _range_novelty(pd.Series(values))
        return calibrate_records(
            raw,
            factor=1.0,
            warmup=self.warmup,
            min_raw=self.min_excess,
            quantile=self.quantile,
            settle=_settle(self.settle, self.warmup),
        )


class LevelShift(StreamDetector):
    """Alarms when the mean of the last ``window`` rows departs from the preceding ``reference``
    rows by more than ``factor`` times any departure seen before (``window=1`` catches spikes).

    ``settle`` (rows, default ``SETTLE_PER_WARMUP * warmup``): see :func:`calibrate_records`.
    """

    def __init__(
        self,
        window: int = 20,
        reference: int = 300,
        factor: float = 1.0,
        warmup: int = 100,
        settle: int | None = None,
    ) -> None:
        self.window = window
        self.reference = reference
        self.factor = factor
        self.warmup = warmup
        self.settle = settle

    @staticmethod
    def _departure(x: pd.Series, window: int, reference: int) -> np.ndarray:
        return _level_shift(x, window, reference)

    def _score(self, values: np.ndarray) -> np.ndarray:
        raw = self._departure(pd.Series(values), self.window, self.reference)
        return calibrate_records(
            raw, factor=self.factor, warmup=self.warmup, settle=_settle(self.settle, self.warmup)
        )


class ScaleShift(LevelShift):
    """Alarms when the spread of the last ``window`` rows departs (up or down, on a log scale)
    from the spread of the ``reference`` rows before by more than ``factor`` (default 1.5)
    times any such departure seen before: noise that starts oscillating, or a signal that
    goes flat. Parameters as :class:`LevelShift`.
    """

    def __init__(
        self,
        window: int = 20,
        reference: int = 300,
        factor: float = 1.5,
        warmup: int = 100,
        settle: int | None = None,
    ) -> None:
        super().__init__(window, reference, factor, warmup, settle)

    @staticmethod
    def _departure(x: pd.Series, window: int, reference: int) -> np.ndarray:
        return _scale_shift(x, window, reference)


def default_members(warmup: int = 100) -> list[StreamDetector]:
    """The members of the default ensemble: range novelty, spikes and level shifts at 4 scales,
    and a change of spread (:class:`ScaleShift`) at the short scale.

    A single-row spike must beat the largest earlier spike by 50% (``factor=1.5``; 1.5-2.0 is
    a plateau on NAB). The slow member (300 rows against the 3000 before, about a day against
    ten days of 5-minute data) catches drifts the short windows miss; it only pays off with
    the ``settle`` margin on young records (see :func:`calibrate_records`), which keeps its
    early, poorly supported records quiet.
    """
    return [
        RangeNovelty(warmup=warmup),
        LevelShift(window=1, reference=100, factor=1.5, warmup=warmup),
        LevelShift(window=20, reference=300, factor=1.0, warmup=warmup),
        LevelShift(window=50, reference=500, factor=1.0, warmup=warmup),
        LevelShift(window=300, reference=3000, factor=1.0, warmup=warmup),
        ScaleShift(window=20, reference=300, factor=1.5, warmup=warmup),
    ]


class CausalEnsemble(StreamDetector):
    """Maximum of member scores with repeated alarms for one event suppressed.

    ``members`` default to :func:`default_members` (with ``warmup`` rows before any alarm);
    ``suppression`` is the longest gap, in rows, between alarm rows of one event (see
    :func:`suppress_repeats`).
    """

    def __init__(
        self,
        members: Sequence[StreamDetector] | None = None,
        suppression: int = 50,
        warmup: int = 100,
    ) -> None:
        self.members = members
        self.suppression = suppression
        self.warmup = warmup

    def _score(self, values: np.ndarray) -> np.ndarray:
        members = list(self.members) if self.members is not None else default_members(self.warmup)
        if len(values) == 0:
            return np.zeros(0)
        combined = np.maximum.reduce([m._score(values) for m in members])
        return suppress_repeats(combined, self.suppression)


DETECTORS: dict[str, type[StreamDetector]] = {
    "ensemble": CausalEnsemble,
    "zscore": RollingZScore,
    "range": RangeNovelty,
    "level": LevelShift,
    "scale": ScaleShift,
}


def make_detector(
    name: str | StreamDetector, warmup: int | None = None, suppression: int | None = None
) -> StreamDetector:
    """A detector instance from its name (``ensemble``, ``zscore``, ``range``, ``level``, ``scale``).

    ``warmup`` (rows before any alarm, default 100) and, for the ensemble, ``suppression``
    (the longest gap between alarm rows of one event, default 50) are in rows: the defaults
    suit 5-minute monitoring data (NAB); hourly warehouse series want e.g. 48 and 12.
    """
    if isinstance(name, StreamDetector):
        return name
    try:
        cls = DETECTORS[name]
    except KeyError:
        raise LuminaError(
            f"unknown detector {name!r}; choose one of {', '.join(sorted(DETECTORS))}"
        ) from None
    params: dict[str, int] = {}
    if warmup is not None and cls is not RollingZScore:
        params["warmup"] = warmup
    if suppression is not None and cls is CausalEnsemble:
        params["suppression"] = suppression
    return cls(**params)


def _as_1d(X: Any) -> np.ndarray:
    arr = np.asarray(X, dtype=float)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise LuminaError(f"a stream detector needs one column of values, got shape {arr.shape}")
    return arr


def score_values(values: Any, detector: str | StreamDetector = "ensemble") -> np.ndarray:
    """Causal scores in [0, 1] for one series given in time order (NaNs carry the last value)."""
    series = pd.Series(np.asarray(values, dtype=float)).ffill().fillna(0.0)
    det = make_detector(detector)
    return det.fit(series.to_numpy()).decision_scores_


def score_frame(
    frame: pd.DataFrame,
    detector: str | StreamDetector = "ensemble",
    sensitivity: float = 1.0,
) -> pd.DataFrame:
    """Score every series of a long ``unique_id, ds, y`` frame.

    Returns the ``anomalies`` table shape: ``unique_id, ds, score, is_anomaly, detector``.
    ``sensitivity`` in (0, 1]: a row is an anomaly when ``score >= 1 - sensitivity / 2``
    (1.0 flags every alarm; lower values keep only alarms that beat the record by more).
    """
    if not 0.0 < sensitivity <= 1.0:
        raise LuminaError(f"sensitivity must be in (0, 1], got {sensitivity}")
    long = validate_long(frame)
    name = (
        detector
        if isinstance(detector, str)
        else next((k for k, v in DETECTORS.items() if type(detector) is v), type(detector).__name__)
    )
    parts = []
    for uid, grp in long.sort_values(["unique_id", "ds"]).groupby("unique_id", sort=True):
        scores = score_values(grp["y"].to_numpy(), detector)
        parts.append(
            pd.DataFrame(
                {
                    "unique_id": str(uid),
                    "ds": grp["ds"].to_numpy(),
                    "score": scores,
                    "is_anomaly": scores >= 1.0 - sensitivity / 2.0,
                    "detector": name,
                }
            )
        )
    cols = ["unique_id", "ds", "score", "is_anomaly", "detector"]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    return pd.concat(parts, ignore_index=True)[cols]


# --------------------------------------------------------------------------- multivariate
_BATCH_CAUSAL = {"iforest", "knn", "hbos", "pca"}


class MultivariateDetector:
    """Windows over several metrics of one service scored by a PyOD model.

    Features per row: each metric's value and its rolling mean and std over ``window`` rows
    (trailing, so causal). The PyOD model (``iforest``, ``ecod``, ``knn``, ``hbos``, ``pca``) is
    fitted on the first ``train_fraction`` of the rows; later rows are scored against it one at a
    time where the model's batch scoring would let rows see each other (ECOD), so every score is
    causal. Scores are calibrated to [0, 1] by the percentile among the training scores.
    """

    def __init__(
        self,
        model: str = "iforest",
        window: int = 12,
        train_fraction: float = 0.5,
        random_state: int = 0,
    ) -> None:
        self.model = model
        self.window = window
        self.train_fraction = train_fraction
        self.random_state = random_state

    def _features(self, X: pd.DataFrame) -> np.ndarray:
        roll = X.rolling(self.window, min_periods=1)
        feats = pd.concat(
            [X, roll.mean().add_suffix("_mean"), roll.std().fillna(0.0).add_suffix("_std")], axis=1
        )
        return np.asarray(feats.ffill().fillna(0.0).to_numpy(), dtype=float)

    def _make(self) -> Any:
        if self.model == "iforest":
            from pyod.models.iforest import IForest

            return IForest(random_state=self.random_state)
        if self.model == "ecod":
            from pyod.models.ecod import ECOD

            return ECOD()
        if self.model == "knn":
            from pyod.models.knn import KNN

            return KNN()
        if self.model == "hbos":
            from pyod.models.hbos import HBOS

            return HBOS()
        if self.model == "pca":
            from pyod.models.pca import PCA

            return PCA()
        raise LuminaError(
            f"unknown PyOD model {self.model!r}; choose iforest, ecod, knn, hbos or pca"
        )

    def fit(self, X: pd.DataFrame | np.ndarray, y: Any = None) -> MultivariateDetector:
        """Fit on the training prefix and score every row causally into ``decision_scores_``."""
        wide = pd.DataFrame(X).astype(float)
        if len(wide) < 10:
            raise LuminaError("a multivariate detector needs at least 10 rows")
        feats = self._features(wide)
        n_train = max(10, int(len(feats) * self.train_fraction))
        self.model_ = self._make().fit(feats[:n_train])
        self.train_scores_ = np.sort(np.asarray(self.model_.decision_scores_, dtype=float))
        raw = np.concatenate([self.model_.decision_scores_, self._raw(feats[n_train:])])
        self.n_train_ = n_train
        self.history_ = wide
        self.decision_scores_ = self._calibrate(raw)
        self.threshold_ = 0.98
        self.labels_ = (self.decision_scores_ >= self.threshold_).astype(int)
        return self

    def _raw(self, feats: np.ndarray) -> np.ndarray:
        if len(feats) == 0:
            return np.zeros(0)
        if self.model in _BATCH_CAUSAL:
            return np.asarray(self.model_.decision_function(feats), dtype=float)
        return np.array(
            [float(self.model_.decision_function(feats[i : i + 1])[0]) for i in range(len(feats))]
        )

    def _calibrate(self, raw: np.ndarray) -> np.ndarray:
        ranks = np.searchsorted(self.train_scores_, raw, side="right")
        return np.asarray(ranks / (len(self.train_scores_) + 1.0), dtype=float)

    def decision_function(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Scores of new rows that follow the fitted rows in time (rolling features continue)."""
        new = pd.DataFrame(X).astype(float)
        new.columns = self.history_.columns
        feats = self._features(pd.concat([self.history_, new], ignore_index=True))[
            len(self.history_) :
        ]
        return self._calibrate(self._raw(feats))


def score_multivariate(
    frame: pd.DataFrame,
    model: str = "iforest",
    window: int = 12,
    service: str = "service",
    threshold: float = 0.98,
) -> pd.DataFrame:
    """Score a long frame whose ``unique_id`` are metrics of one service, jointly per ``ds``.

    Returns the ``anomalies`` shape with ``unique_id = service``.
    """
    long = validate_long(frame)
    wide = long.pivot_table(
        index="ds", columns="unique_id", values="y", aggfunc="mean"
    ).sort_index()
    det = MultivariateDetector(model=model, window=window).fit(wide)
    return pd.DataFrame(
        {
            "unique_id": service,
            "ds": wide.index.to_numpy(),
            "score": det.decision_scores_,
            "is_anomaly": det.decision_scores_ >= threshold,
            "detector": f"multivariate_{model}",
        }
    )


# --------------------------------------------------------------------------- diagnosis
def top_contributors(
    rows: pd.DataFrame,
    dimensions: Iterable[str],
    window: tuple[Any, Any],
    baseline: tuple[Any, Any],
    value: str | None = None,
    ts: str = "ts",
    top: int = 10,
    agg: str = "sum",
) -> pd.DataFrame:
    """Which dimension values explain an anomaly: compare the anomaly window to a baseline.

    For each dimension and value: its level in the window and in the baseline, the change,
    and its share of the summed absolute change, sorted by absolute change (likely root causes first).
    ``agg="sum"``: rate of ``value`` per hour (rows per hour when ``value`` is None);
    ``agg="mean"``: the value's contribution to the change of the overall mean, i.e.
    ``(mean in window - mean in baseline) * share of the window's rows``.
    """
    if agg not in ("sum", "mean"):
        raise LuminaError(f"agg must be 'sum' or 'mean', got {agg!r}")
    if agg == "mean" and not value:
        raise LuminaError("agg='mean' needs a value column")
    w0, w1 = pd.Timestamp(window[0]), pd.Timestamp(window[1])
    b0, b1 = pd.Timestamp(baseline[0]), pd.Timestamp(baseline[1])
    hours_w = max((w1 - w0) / pd.Timedelta(hours=1), 1e-9)
    hours_b = max((b1 - b0) / pd.Timedelta(hours=1), 1e-9)
    t = pd.to_datetime(rows[ts])
    in_w = rows[(t >= w0) & (t < w1)]
    in_b = rows[(t >= b0) & (t < b1)]
    out = []
    for dim in dimensions:
        if dim not in rows.columns:
            raise LuminaError(f"dimension {dim!r} is not a column; have {', '.join(rows.columns)}")

        def rate(part: pd.DataFrame, hours: float, dim: str = dim) -> pd.Series:
            g = part.groupby(part[dim].astype(str))
            if agg == "mean" and value:
                return g[value].mean().astype(float)
            total = g[value].sum() if value else g.size()
            return total.astype(float) / hours

        rw, rb = rate(in_w, hours_w), rate(in_b, hours_b)
        both = pd.concat([rw.rename("window_rate"), rb.rename("baseline_rate")], axis=1)
        if agg == "mean":
            share = in_w.groupby(in_w[dim].astype(str)).size() / max(len(in_w), 1)
            both["baseline_rate"] = both["baseline_rate"].fillna(both["window_rate"])
            both = both.fillna(0.0)
            both["change"] = (both["window_rate"] - both["baseline_rate"]) * share.reindex(
                both.index
            ).fillna(0.0)
        else:
            both = both.fillna(0.0)
            both["change"] = both["window_rate"] - both["baseline_rate"]
        total = both["change"].abs().sum()
        both["share_of_change"] = both["change"] / total if total else np.nan
        both["ratio"] = (both["window_rate"] + 1e-9) / (both["baseline_rate"] + 1e-9)
        both = both.reset_index(names="value")
        both.insert(0, "dimension", dim)
        out.append(both)
    cols = [
        "dimension",
        "value",
        "window_rate",
        "baseline_rate",
        "change",
        "share_of_change",
        "ratio",
    ]
    if not out:
        return pd.DataFrame(columns=cols)
    res = pd.concat(out, ignore_index=True)
    res = res.reindex(res["change"].abs().sort_values(ascending=False).index)
    return res.head(top).reset_index(drop=True)[cols]


def evaluate_incidents(
    anomalies: pd.DataFrame,
    incidents: pd.DataFrame,
    slack: pd.Timedelta | str = "0min",
) -> pd.DataFrame:
    """Per incident: was an anomaly flagged inside ``[start_ts, end_ts + slack]``, and how soon.

    ``anomalies`` has the ``anomalies`` table shape (``ds``, ``is_anomaly``); ``incidents`` has
    ``kind, start_ts, end_ts`` (plus optional ``dimension, value``). The frame carries the
    false-alert rate on incident-free days in ``attrs["false_alerts_per_clean_day"]`` and
    ``attrs["clean_days"]``.
    """
    slack_td = pd.Timedelta(slack)
    flagged = pd.to_datetime(
        anomalies.loc[anomalies["is_anomaly"].astype(bool), "ds"]
    ).sort_values()
    flagged_arr = flagged.to_numpy()
    starts = pd.to_datetime(incidents["start_ts"]).tolist()
    ends = pd.to_datetime(incidents["end_ts"]).tolist()
    rows = []
    for k, inc in enumerate(incidents.itertuples(index=False)):
        start: pd.Timestamp = starts[k]
        end: pd.Timestamp = ends[k] + slack_td
        lo = int(np.searchsorted(flagged_arr, np.datetime64(start), side="left"))
        hi = int(np.searchsorted(flagged_arr, np.datetime64(end), side="right"))
        rows.append(
            {
                "kind": getattr(inc, "kind", None),
                "start_ts": start,
                "end_ts": ends[k],
                "dimension": getattr(inc, "dimension", None),
                "value": getattr(inc, "value", None),
                "detected": hi > lo,
                "n_alerts": hi - lo,
                "delay": pd.Timestamp(flagged_arr[lo]) - start if hi > lo else pd.NaT,
            }
        )
    result = pd.DataFrame(rows)
    # false alerts on days that no incident touches
    all_ds = pd.to_datetime(anomalies["ds"])
    days = pd.Series(all_ds.dt.normalize().unique())
    busy: set[pd.Timestamp] = set()
    for start, end in zip(starts, ends, strict=True):
        busy.update(pd.date_range(start.normalize(), (end + slack_td).normalize(), freq="D"))
    clean = {d for d in days if d not in busy}
    n_false = int(sum(1 for d in flagged if d.normalize() in clean))
    result.attrs["clean_days"] = len(clean)
    result.attrs["false_alerts_per_clean_day"] = n_false / len(clean) if clean else float("nan")
    return result


# --------------------------------------------------------------------------- notebook helpers
#: How to explain a series metric from ``llm_calls`` rows: (row filter, value column, agg).
_METRIC_ROWS: dict[str, tuple[str | None, str | None, str]] = {
    "requests": (None, None, "sum"),
    "errors": ("error", None, "sum"),
    "error_rate": ("error", None, "sum"),
    "input_tokens": (None, "input_tokens", "sum"),
    "output_tokens": (None, "output_tokens", "sum"),
    "tokens": (None, "tokens", "sum"),
    "cost_usd": (None, "cost_usd", "sum"),
    "latency_p50": (None, "latency_ms", "mean"),
    "latency_p95": (None, "latency_ms", "mean"),
    "latency_p99": (None, "latency_ms", "mean"),
    "ttft_p95": (None, "ttft_ms", "mean"),
}


def explain_anomaly(
    calls: pd.DataFrame,
    metric: str,
    dimensions: Sequence[str],
    window: tuple[Any, Any],
    baseline: tuple[Any, Any],
    top: int = 10,
) -> pd.DataFrame:
    """:func:`top_contributors` for an ``llm_calls`` metric (latency, errors, tokens, cost...)."""
    if metric not in _METRIC_ROWS:
        raise LuminaError(f"cannot explain {metric!r}; choose one of {sorted(_METRIC_ROWS)}")
    status, value, agg = _METRIC_ROWS[metric]
    rows = calls
    if status is not None:
        rows = rows[rows["status"] == status]
    if value == "tokens":
        rows = rows.assign(tokens=rows["input_tokens"].fillna(0) + rows["output_tokens"].fillna(0))
    dims = [d for d in dimensions if d in rows.columns]
    return top_contributors(rows, dims, window, baseline, value=value, top=top, agg=agg)


def expected_band(frame: pd.DataFrame, window: int = 24, k: float = 3.0) -> pd.DataFrame:
    """Causal expected range per series: trailing mean +- ``k`` trailing std (current row excluded).

    Returns ``unique_id, ds, y, lower, upper`` for charts.
    """
    long = validate_long(frame)
    g = long.groupby("unique_id", sort=False)["y"]
    mean = g.transform(lambda s: s.shift(1).rolling(window, min_periods=3).mean())
    std = g.transform(lambda s: s.shift(1).rolling(window, min_periods=3).std())
    return long.assign(lower=mean - k * std, upper=mean + k * std)


def biggest_anomaly(scored: pd.DataFrame) -> pd.Series | None:
    """The flagged row with the highest score (``None`` when nothing is flagged)."""
    flagged = scored[scored["is_anomaly"].astype(bool)]
    if flagged.empty:
        return None
    return flagged.iloc[int(np.argmax(flagged["score"].to_numpy()))]


def load_calls(start: Any, end: Any, warehouse: Any = None) -> pd.DataFrame:
    """Thin loader: ``llm_calls`` rows with ``start <= ts < end`` (parameters bound)."""
    from lumina_analytics.warehouse import Warehouse

    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    return wh.query(
        "SELECT * FROM llm_calls WHERE ts >= ? AND ts < ?",
        [pd.Timestamp(start).to_pydatetime(), pd.Timestamp(end).to_pydatetime()],
    )


def load_table_if_any(table: str, warehouse: Any = None) -> pd.DataFrame | None:
    """Thin loader: all rows of ``table``, or ``None`` when it is missing or empty."""
    from lumina_analytics.warehouse import Warehouse

    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    try:
        counts = wh.table_counts()
    except LuminaError:
        return None
    if not counts.get(table):
        return None
    return wh.query(f'SELECT * FROM "{table}"')
