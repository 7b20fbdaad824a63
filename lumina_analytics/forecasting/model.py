"""One Prophet model per series, combined with seasonal-naive baselines chosen by backtest.

For each series the forecaster:

1. transforms ``y`` (``log1p`` for non-negative counts and rates by default, or ``sqrt``)
   and treats near-zero dropouts of a positive series as missing while fitting;
2. runs a rolling-origin backtest *inside the training data* (``n_folds`` windows of the
   forecast horizon, one day apart) for every member -- Prophet with trend on the
   transformed scale, flat-trend Prophet on the transformed scale (multiplicative
   seasonality under ``log1p``; ``prophet_flat`` on the raw scale is available but not in
   the default pool), seasonal naive one day and one week, median daily profiles at the
   level of the last day or week, a long-memory median daily profile and a median weekly
   profile -- scores them on the windows they share, recent windows weighted more, and
   averages every member within ``tolerance`` (20 %) of the best MASE: a clear winner is
   used alone, close contenders are hedged;
3. refits the chosen members on the whole history (Prophet on its last ``prophet_days``);
4. sets prediction intervals from the backtest errors in the transformed space -- of the
   combination each window would have chosen without itself, per day of lead time, with
   recent windows weighted more (``recency_halflife``) -- so the interval width is earned
   on held-out data rather than assumed;
5. corrects the start of the forecast for the current deviation from it (``nowcast``): the
   last observation minus the forecast for the same time of day one period later, added on
   the transformed scale with a decay whose half-life (or none) is chosen on the same inner
   windows -- a level that is off at the cutoff usually stays off for a while.

Prophet models are stored with ``prophet.serialize.model_to_json`` (never pickled), which is
also how they travel between worker processes.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from lumina_analytics.errors import SchemaError
from lumina_analytics.forecasting.metrics import mae, mase_scale, season_steps, seasonal_naive
from lumina_analytics.schema import validate_long

logging.getLogger("prophet.plot").disabled = True
logging.getLogger("cmdstanpy").disabled = True
logging.getLogger("prophet").setLevel(logging.WARNING)

from prophet import Prophet  # noqa: E402
from prophet.serialize import model_from_json, model_to_json  # noqa: E402


@contextlib.contextmanager
def quiet_prophet() -> Iterator[None]:
    """Silence cmdstanpy and the pandas deprecation warnings Prophet 1.5 triggers on pandas 3."""
    logging.getLogger("cmdstanpy").disabled = True
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")
        warnings.filterwarnings("ignore", module="prophet.*")
        yield


__all__ = [
    "DEFAULT_MEMBERS",
    "MEMBERS",
    "ProphetForecaster",
    "events_to_holidays",
    "forecast_frame_columns",
]

MEMBERS: tuple[str, ...] = (
    "prophet",
    "prophet_flat",
    "prophet_flat_log",
    "snaive_day",
    "snaive_week",
    "profile_day",
    "profile_day_wl",
    "profile_week",
    "profile_long",
)
# the default pool leaves out ``prophet_flat``: on development series it tracked
# ``prophet_flat_log`` closely, and every Prophet member multiplies the fitting cost
DEFAULT_MEMBERS: tuple[str, ...] = tuple(m for m in MEMBERS if m != "prophet_flat")
_PROPHETS = ("prophet", "prophet_flat", "prophet_flat_log")
_PROFILE_DAYS = 7  # days in the median daily profile
_PROFILE_WEEKS = 4  # weeks in the median weekly profile
forecast_frame_columns: tuple[str, ...] = (
    "unique_id",
    "ds",
    "yhat",
    "yhat_lower",
    "yhat_upper",
    "model",
)


# -- transforms -------------------------------------------------------------------------
def _fwd(y: np.ndarray, kind: str) -> np.ndarray:
    if kind == "log1p":
        return np.log1p(np.maximum(y, 0.0))
    if kind == "sqrt":
        return np.sqrt(np.maximum(y, 0.0))
    return y


def _inv(z: np.ndarray, kind: str) -> np.ndarray:
    if kind == "log1p":
        return np.expm1(z)
    if kind == "sqrt":
        return np.square(np.maximum(z, 0.0))
    return z


# -- per-series work (module level so worker processes can run it) ---------------------
@dataclass
class _Config:
    freq: pd.Timedelta
    horizon: int
    level: float
    transform: str
    members: tuple[str, ...]
    growth: str
    cap: float | None
    changepoint_prior_scale: float
    seasonality_mode: str
    daily_order: int
    weekly_order: int
    regressors: tuple[str, ...]
    holidays: pd.DataFrame | None
    n_folds: int | None
    min_points: int
    select: bool
    interval: str
    combine: str = "tolerance"
    top_k: int = 3
    tolerance: float = 0.2
    drop_outages: bool = True
    prophet_days: float | None = 28.0
    recency_halflife: float | None = 2.0
    nowcast: bool = True
    tie_margin: float = 0.03


@dataclass
class _SeriesFit:
    unique_id: str
    transform: str
    combo: tuple[str, ...]
    prophet_json: dict[str, str]
    last_ds: pd.Timestamp
    tail: np.ndarray  # last week (or all) of y, for the naive members
    q_lo: np.ndarray  # lower offset on the transformed scale per lead step (last one repeats)
    q_hi: np.ndarray
    nonneg: bool
    scores: dict[str, float] = field(default_factory=dict)
    decay: float = 0.0  # per-step decay of the nowcast offset (0: no correction)


def _prophet(cfg: _Config, span: pd.Timedelta, uncertainty: bool) -> Prophet:
    m = Prophet(
        growth=cfg.growth,  # type: ignore[arg-type]
        changepoint_prior_scale=cfg.changepoint_prior_scale,
        seasonality_mode=cfg.seasonality_mode,  # type: ignore[arg-type]
        daily_seasonality=False,
        weekly_seasonality=False,
        yearly_seasonality=False,
        holidays=cfg.holidays,
        interval_width=cfg.level / 100.0,
        uncertainty_samples=1000 if uncertainty else 0,
    )
    if cfg.freq < pd.Timedelta("1D") and span >= pd.Timedelta("2D"):
        m.add_seasonality("daily", period=1, fourier_order=cfg.daily_order)
    if span >= pd.Timedelta("8D") and cfg.freq < pd.Timedelta("7D"):
        m.add_seasonality("weekly", period=7, fourier_order=cfg.weekly_order)
    if span >= pd.Timedelta("730D"):
        m.add_seasonality("yearly", period=365.25, fourier_order=10)
    for r in cfg.regressors:
        m.add_regressor(r)
    return m


def _prophet_frame(hist: pd.DataFrame, cfg: _Config, transform: str) -> pd.DataFrame:
    out = pd.DataFrame({"ds": hist["ds"].to_numpy(), "y": _fwd(hist["y"].to_numpy(), transform)})
    for r in cfg.regressors:
        out[r] = hist[r].to_numpy()
    if cfg.growth == "logistic":
        out["cap"] = _cap(cfg, transform)
        out["floor"] = 0.0
    return out


def _cap(cfg: _Config, transform: str) -> float:
    if cfg.cap is None:
        raise SchemaError("growth='logistic' needs cap=<capacity> (the saturation level of y)")
    return float(_fwd(np.array([cfg.cap], float), transform)[0])


def _future_frame(
    model: Prophet, ds: pd.DatetimeIndex, cfg: _Config, transform: str, xf: pd.DataFrame | None
) -> pd.DataFrame:
    fut = pd.DataFrame({"ds": ds})
    if cfg.regressors:
        if xf is None:
            raise SchemaError(
                f"this forecaster uses regressors {list(cfg.regressors)}; pass their future "
                "values in predict(X_future=...) with unique_id, ds and those columns"
            )
        fut = fut.merge(xf[["ds", *cfg.regressors]], on="ds", how="left")
        if fut[list(cfg.regressors)].isna().any().any():
            raise SchemaError("X_future lacks regressor values for some forecast timestamps")
    if cfg.growth == "logistic":
        fut["cap"] = _cap(cfg, transform)
        fut["floor"] = 0.0
    return fut


def _member_forecast(
    member: str,
    hist: pd.DataFrame,
    ds: pd.DatetimeIndex,
    cfg: _Config,
    transform: str,
    xf: pd.DataFrame | None,
) -> np.ndarray:
    """Point forecast of one member over ``ds`` from history ``hist`` (original scale)."""
    h = len(ds)
    y = hist["y"].to_numpy(float)
    if member not in _PROPHETS:
        return _naive_forecast(member, y, h, cfg.freq, transform)
    if member in _PROPHETS:
        mcfg, mtf = _member_setup(member, cfg, transform)
        hist = _prophet_window(hist, cfg)
        train = _prophet_frame(hist, mcfg, mtf).dropna(subset=["y"])
        m = _prophet(mcfg, hist["ds"].iloc[-1] - hist["ds"].iloc[0], uncertainty=False)
        m.fit(train)
        return _inv(m.predict(_future_frame(m, ds, mcfg, mtf, xf))["yhat"].to_numpy(), mtf)
    raise SchemaError(f"unknown member {member!r}; choose from {list(MEMBERS)}")


def _prophet_window(hist: pd.DataFrame, cfg: _Config) -> pd.DataFrame:
    """The last ``prophet_days`` of ``hist`` (Prophet's cost grows with the points it sees)."""
    if cfg.prophet_days is None or hist.empty:
        return hist
    start = hist["ds"].iloc[-1] - pd.Timedelta(days=cfg.prophet_days)
    return hist[hist["ds"] > start]


def _naive_forecast(
    member: str, y: np.ndarray, h: int, freq: pd.Timedelta, transform: str
) -> np.ndarray:
    """Seasonal-naive and median-profile members from the history ``y`` (original scale).

    ``profile_day``: median of the same time of day over the last 7 days, shifted (on the
    transformed scale, i.e. scaled for ``log1p``) to the level of the last day;
    ``profile_day_wl``: the same profile at the level of the last week; ``profile_week``:
    median of the same time of week over up to 4 past weeks; ``profile_long``: median of the
    same time of day over up to 28 days, smoothed over neighbouring steps, at its own level
    (long memory: a recent swing in level is not carried forward).
    """
    day, week = season_steps(freq, "1D"), season_steps(freq, "7D")
    if member == "snaive_day":
        return seasonal_naive(y, h, day)
    if member == "snaive_week":
        return seasonal_naive(y, h, week)
    if member not in ("profile_day", "profile_day_wl", "profile_week", "profile_long"):
        raise SchemaError(f"unknown member {member!r}; choose from {list(MEMBERS)}")
    z = _fwd(y, transform)
    period = week if member == "profile_week" else day
    k_max = {"profile_week": _PROFILE_WEEKS, "profile_long": _PROFILE_WEEKS * 7}.get(
        member, _PROFILE_DAYS
    )
    k = min(k_max, len(z) // period)
    if k < 1:
        return np.full(h, np.nan)
    rows = z[len(z) - k * period :].reshape(k, period)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        prof = np.nanmedian(rows, axis=0)
        if member == "profile_long":
            prof = _circular_median(prof, period // 72)
        elif member != "profile_week":
            n_lvl = (k if member == "profile_day_wl" else 1) * period
            adj = float(np.nanmean(z[-n_lvl:] - np.tile(prof, n_lvl // period)))
            prof = prof + (adj if np.isfinite(adj) else 0.0)
    if np.isnan(prof).any():  # no value at that phase: fall back to the naive forecast
        prof = np.where(np.isnan(prof), _fwd(seasonal_naive(y, period, period), transform), prof)
    return _inv(np.tile(prof, int(np.ceil(h / period)))[:h], transform)


def _circular_median(x: np.ndarray, half: int) -> np.ndarray:
    """Running median over ``2 * half + 1`` neighbours of a periodic profile (NaN ignored)."""
    if half < 1:
        return x
    padded = np.concatenate([x[-half:], x, x[:half]])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    return np.asarray(np.nanmedian(windows, axis=1))


def _drop_outages(y: np.ndarray) -> np.ndarray:
    """Treat near-zero dropouts of a positive series (<= 2 % of its median) as missing."""
    finite = y[np.isfinite(y)]
    if not finite.size or np.min(finite) < 0:
        return y
    med = float(np.median(finite))
    if med <= 0:
        return y
    return np.where(y <= 0.02 * med, np.nan, y)


def _member_setup(member: str, cfg: _Config, transform: str) -> tuple[_Config, str]:
    """``prophet_flat``: no trend, untransformed y (seasonality around the mean level);
    ``prophet_flat_log``: no trend on the transformed scale (multiplicative seasonality)."""
    if member == "prophet_flat":
        return replace(cfg, growth="flat"), "none"
    if member == "prophet_flat_log":
        return replace(cfg, growth="flat"), transform
    return cfg, transform


def _combos(members: Sequence[str]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for k in range(1, len(members) + 1):
        out.extend(itertools.combinations(members, k))
    return out


def _available(members: Sequence[str], n_hist: int, cfg: _Config) -> list[str]:
    week = season_steps(cfg.freq, "7D")
    day = season_steps(cfg.freq, "1D")
    out = []
    for m in members:
        if m in ("snaive_week", "profile_week") and (n_hist < week or week == day):
            continue
        if m in ("snaive_day", "profile_day", "profile_day_wl", "profile_long") and (
            n_hist < day or day == 1
        ):
            continue
        out.append(m)
    return out or ["prophet"]


def _fold_plan(n_hist: int, span: pd.Timedelta, cfg: _Config) -> tuple[int, list[int]]:
    """Inner backtest windows: (window length, cutoffs), newest first, one day apart."""
    day = season_steps(cfg.freq, "1D")
    n_folds = cfg.n_folds
    if n_folds is None:  # many windows for short histories, fewer where fits are costly
        n_folds = 8 if span <= pd.Timedelta("21D") else 4
    fold_h = min(cfg.horizon, max(1, n_hist // 4))
    fold_step = min(fold_h, day) if day > 1 else fold_h
    cutoffs = [n_hist - fold_h - k * fold_step for k in range(n_folds)]
    return fold_h, [c for c in cutoffs if c >= max(cfg.min_points, 2 * day)]


def _combine(parts: Sequence[np.ndarray], how: str) -> np.ndarray:
    """Combine member forecasts: median for ``combine='median'``, mean otherwise."""
    return np.median(parts, axis=0) if how == "median" else np.mean(parts, axis=0)


# half-lives of the nowcast offset tried by the inner backtest, as fractions of a day
_NOWCAST_HALFLIVES = (1 / 48, 1 / 24, 1 / 12, 1 / 6, 1 / 4, 1 / 2)


def _nowcast_period(cfg: _Config) -> int:
    """Steps between the last observation and the forecast at the same phase (0: none)."""
    day, week = season_steps(cfg.freq, "1D"), season_steps(cfg.freq, "7D")
    period = day if day > 1 else week
    return period if period > 1 else 0


def _nowcast_decays(cfg: _Config) -> list[float]:
    """Per-step decays to try: 0 (no correction) and one per half-life of the grid."""
    day = season_steps(cfg.freq, "1D")
    return [0.0] + [0.5 ** (1.0 / max(1.0, f * day)) for f in _NOWCAST_HALFLIVES]


def _nowcast_offset(y_hist: np.ndarray, p: np.ndarray, period: int, transform: str) -> float:
    """Last observation minus the forecast ``period`` steps later (same phase), transformed.

    That forecast stands in for the model's fitted value at the cutoff; a missing last
    observation (or a forecast shorter than one period) gives no offset.
    """
    if period < 1 or len(p) < period or not len(y_hist) or not np.isfinite(y_hist[-1]):
        return 0.0
    r0 = float(_fwd(y_hist[-1:], transform)[0] - _fwd(p[period - 1 : period], transform)[0])
    return r0 if np.isfinite(r0) else 0.0


def _nowcast(
    p: np.ndarray, r0: float, decay: float, transform: str, nonneg: bool = False
) -> np.ndarray:
    """``p`` plus the offset ``r0`` decaying by ``decay`` per step (transformed scale)."""
    if decay <= 0.0 or r0 == 0.0:
        return p
    out = _inv(_fwd(p, transform) + r0 * decay ** np.arange(1, len(p) + 1), transform)
    return np.maximum(out, 0.0) if nonneg else out


def _choose_decay(
    preds: dict[tuple[int, str], np.ndarray],
    actual: dict[int, np.ndarray],
    history: np.ndarray,
    cutoffs: Sequence[int],
    combo: Sequence[str],
    cfg: _Config,
    transform: str,
    nonneg: bool,
) -> float:
    """Nowcast decay with the lowest recency-weighted inner-backtest MAE of ``combo``."""
    period = _nowcast_period(cfg)
    if not cfg.nowcast or not period:
        return 0.0
    decays = _nowcast_decays(cfg)
    hl = cfg.recency_halflife
    errs: list[list[float]] = []
    weights: list[float] = []
    for age, c in enumerate(cutoffs):
        if not all((c, m) in preds for m in combo) or len(actual[c]) < period:
            continue
        p = _combine([preds[(c, m)] for m in combo], cfg.combine)
        p = np.maximum(p, 0.0) if nonneg else p
        r0 = _nowcast_offset(history[:c], p, period, transform)
        errs.append([mae(actual[c], _nowcast(p, r0, d, transform, nonneg)) for d in decays])
        weights.append(0.5 ** (age / hl) if hl else 1.0)
    if not errs:
        return 0.0
    e = np.asarray(errs, float)
    ok = np.isfinite(e).all(axis=1)
    if not ok.any():
        return 0.0
    score = np.average(e[ok], axis=0, weights=np.asarray(weights)[ok])
    return float(decays[int(np.argmin(score))])


def _wquantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    """Weighted quantile: the smallest ``x`` whose cumulative weight reaches ``q``."""
    order = np.argsort(x)
    cum = np.cumsum(w[order])
    i = int(np.searchsorted(cum, q * cum[-1]))
    return float(x[order][min(i, len(x) - 1)])


def _interval_offsets(
    errs: np.ndarray, alpha: float, how: str, weights: np.ndarray | None = None
) -> tuple[float, float]:
    """Lower/upper offsets on the transformed scale from held-out errors.

    ``"conformal"``: the ``alpha`` and ``1 - alpha`` quantiles of the errors;
    ``"symmetric"``: plus/minus the ``1 - 2 alpha`` quantile of their absolute values, which
    does not carry a bias of the backtest windows (e.g. a level that rose during them)
    into the future. ``weights`` (e.g. favouring recent windows) make the quantiles weighted.
    """
    w = np.ones(errs.size) if weights is None else weights
    ok = np.isfinite(errs)
    errs, w = errs[ok], w[ok]
    if not errs.size:
        return 0.0, 0.0
    if how == "symmetric":
        q = _wquantile(np.abs(errs), w, 1 - 2 * alpha)
        return -q, q
    return _wquantile(errs, w, alpha), _wquantile(errs, w, 1 - alpha)


def _member_scores(
    preds: dict[tuple[int, str], np.ndarray],
    actual: dict[int, np.ndarray],
    cutoffs: Sequence[int],
    members: Sequence[str],
    scale: float,
    halflife: float | None,
) -> dict[str, float]:
    """Backtest MASE per member, compared on the windows every member could forecast.

    Members needing a week of history miss the early windows; scoring all members on the
    same windows keeps the comparison fair (all windows are used when fewer than two are
    shared). Windows are weighted ``0.5 ** (age / halflife)`` (age 0 = newest).
    """
    members = [m for m in members if any((c, m) in preds for c in cutoffs)]
    common = [c for c in cutoffs if all((c, m) in preds for m in members)]
    folds = common if len(common) >= 2 else list(cutoffs)
    out: dict[str, float] = {}
    for m in members:
        e, w = [], []
        for age, c in enumerate(folds):
            if (c, m) in preds:
                e.append(mae(actual[c], preds[(c, m)]) / scale)
                w.append(0.5 ** (age / halflife) if halflife else 1.0)
        ok = np.isfinite(e)
        if ok.any():
            out[m] = float(np.average(np.asarray(e)[ok], weights=np.asarray(w)[ok]))
    return out


def _choose(scores: dict[str, float], cfg: _Config) -> tuple[str, ...]:
    """Members to combine from their backtest scores (see ``combine`` and ``tie_margin``)."""
    ranked = sorted(scores, key=lambda k: (scores[k], MEMBERS.index(k)))
    if _backtest_tied(scores, cfg.tie_margin):
        return ("snaive_day",)
    if cfg.combine == "median":
        return tuple(ranked)
    if cfg.combine == "tolerance":
        bound = scores[ranked[0]] * (1.0 + cfg.tolerance)
        return tuple(m for m in ranked if scores[m] <= bound)
    return tuple(ranked[: max(1, cfg.top_k)])


def _backtest_tied(scores: dict[str, float], margin: float) -> bool:
    """True when three or more members, the one-day seasonal naive among them, all score
    within ``margin`` of the best: the inner windows cannot tell the members apart."""
    if margin <= 0 or len(scores) < 3 or "snaive_day" not in scores:
        return False
    lo, hi = min(scores.values()), max(scores.values())
    return bool(np.isfinite(hi) and hi <= lo * (1.0 + margin))


def _selection_rule(fit: _SeriesFit, cfg: _Config) -> str:
    """How ``fit.combo`` was chosen, for the ``selection_`` table."""
    if not cfg.select:
        return "all members (select=False)"
    singles = {k: v for k, v in fit.scores.items() if "+" not in k}
    if not singles:
        return "no inner window: default member"
    if cfg.combine != "subset" and _backtest_tied(singles, cfg.tie_margin):
        return f"tied within {cfg.tie_margin:.0%}: newest day carried forward"
    if cfg.combine == "tolerance":
        return f"within {cfg.tolerance:.0%} of the best"
    return {"top": f"best {cfg.top_k}", "median": "median of all", "subset": "best subset"}[
        cfg.combine
    ]


def _prepare(hist: pd.DataFrame, cfg: _Config) -> tuple[str, bool, pd.DataFrame] | str:
    """``(transform, y >= 0, history the members learn from)`` of one sorted series, or why
    the configured transform cannot apply. Members learn from the history without dropouts
    (``drop_outages``); they are scored on the raw values."""
    y = hist["y"].to_numpy(float)
    nonneg = bool(np.nanmin(y) >= 0)
    transform = cfg.transform
    if transform == "auto":
        transform = "log1p" if nonneg else "none"
    if transform in ("log1p", "sqrt") and not nonneg:
        return f"transform {transform!r} needs non-negative y; use transform='none'"
    fit_hist = hist.assign(y=_drop_outages(y)) if cfg.drop_outages else hist
    return transform, nonneg, fit_hist


def _fit_one(uid: str, hist: pd.DataFrame, cfg: _Config) -> _SeriesFit | tuple[str, str]:
    """Select, refit and calibrate one series; a ``(uid, reason)`` tuple means skipped."""
    hist = hist.sort_values("ds").reset_index(drop=True)
    y = hist["y"].to_numpy(float)
    n_obs = int(np.sum(~np.isnan(y)))
    if n_obs < cfg.min_points:
        return (uid, f"only {n_obs} non-missing points; need at least {cfg.min_points}")
    prepared = _prepare(hist, cfg)
    if isinstance(prepared, str):
        return (uid, prepared)
    transform, nonneg, fit_hist = prepared
    day = season_steps(cfg.freq, "1D")
    members = list(cfg.members)
    fold_h, cutoffs = _fold_plan(len(hist), hist["ds"].iloc[-1] - hist["ds"].iloc[0], cfg)
    scale = mase_scale(y, day)
    if not np.isfinite(scale) or scale == 0:
        scale = float(np.nanmean(np.abs(np.diff(y)))) if len(y) > 1 else 1.0
        scale = scale if np.isfinite(scale) and scale > 0 else 1.0
    preds: dict[tuple[int, str], np.ndarray] = {}
    actual: dict[int, np.ndarray] = {}
    for c in cutoffs:
        train, test = fit_hist.iloc[:c], hist.iloc[c : c + fold_h]
        avail = _available(members, len(train), cfg)
        actual[c] = test["y"].to_numpy(float)
        ds = pd.DatetimeIndex(test["ds"])
        for m in avail:
            p = _member_forecast(m, train, ds, cfg, transform, test)
            if np.isfinite(p).all():
                preds[(c, m)] = p
    final_avail = _available(members, len(hist), cfg)
    scores: dict[str, float] = {}
    best: tuple[str, ...] = ("prophet",) if "prophet" in final_avail else (final_avail[0],)
    how = cfg.combine
    hl = cfg.recency_halflife

    def combo_errs(combo: Sequence[str]) -> list[float]:
        return [
            mae(actual[c], _combine([preds[(c, m)] for m in combo], how)) / scale
            for c in cutoffs
            if all((c, m) in preds for m in combo)
        ]

    if cutoffs and cfg.select:
        if how == "subset":
            for m in final_avail:
                errs = combo_errs([m])
                if errs:
                    scores[m] = float(np.mean(errs))
            fold_avail = [m for m in scores if all((c, m) in preds for c in cutoffs)]
            for combo in _combos(fold_avail):
                scores["+".join(combo)] = float(np.mean(combo_errs(combo)))
            if scores:
                name = min(scores, key=lambda k: (scores[k], k.count("+")))
                best = tuple(name.split("+"))
        else:
            scores = _member_scores(preds, actual, cutoffs, final_avail, scale, hl)
            if scores:
                best = _choose(scores, cfg)
                errs = combo_errs(best)
                if errs and len(best) > 1:
                    scores["+".join(best)] = float(np.mean(errs))
    elif not cfg.select:
        best = tuple(final_avail)
    fit_y = fit_hist["y"].to_numpy(float)
    decay = _choose_decay(preds, actual, fit_y, cutoffs, best, cfg, transform, nonneg)
    period = _nowcast_period(cfg)
    # interval: conformal quantiles of transformed errors of the chosen combination
    alpha = (1.0 - cfg.level / 100.0) / 2.0
    resid: list[np.ndarray] = []
    resid_w: list[float] = []  # weight of each window: halves every `recency_halflife` windows
    for age, c in enumerate(cutoffs):
        # errors of the combination chosen WITHOUT this window (selection would flatter it)
        combo_c = best
        if how != "subset" and cfg.select and len(cutoffs) > 1:
            others = [o for o in cutoffs if o != c]
            avail_c = [m for m in final_avail if (c, m) in preds]
            other = _member_scores(preds, actual, others, avail_c, scale, hl)
            combo_c = _choose(other, cfg) if other else best
        if all((c, m) in preds for m in combo_c):
            p = _combine([preds[(c, m)] for m in combo_c], how)
            p = np.maximum(p, 0) if nonneg else p
            r0 = _nowcast_offset(fit_y[:c], p, period, transform)
            p = _nowcast(p, r0, decay, transform, nonneg)
            resid.append(_fwd(actual[c], transform) - _fwd(p, transform))
            resid_w.append(0.5 ** (age / hl) if hl else 1.0)
    # final refit of Prophet on all data
    pj: dict[str, str] = {}
    in_sample: np.ndarray | None = None
    for member in (m for m in best if m in _PROPHETS):
        mcfg, mtf = _member_setup(member, cfg, transform)
        p_hist = _prophet_window(fit_hist, cfg)
        train = _prophet_frame(p_hist, mcfg, mtf).dropna(subset=["y"])
        model = _prophet(mcfg, p_hist["ds"].iloc[-1] - p_hist["ds"].iloc[0], uncertainty=False)
        model.fit(train)
        pj[member] = model_to_json(model)
        if not resid and in_sample is None:
            fitted = _inv(model.predict(train)["yhat"].to_numpy(), mtf)
            in_sample = _fwd(hist["y"].to_numpy(float)[train.index.to_numpy()], transform) - _fwd(
                np.maximum(fitted, 0) if nonneg else fitted, transform
            )
    if resid:  # offsets by lead time, in blocks of one day (errors grow with the lead)
        block = day if 1 < day < fold_h else fold_h
        q_lo_l, q_hi_l = [], []
        for start in range(0, fold_h, block):
            e_b = np.concatenate([r[start : start + block] for r in resid])
            w_b = np.concatenate(
                [
                    np.full(len(r[start : start + block]), rw)
                    for r, rw in zip(resid, resid_w, strict=True)
                ]
            )
            lo_b, hi_b = _interval_offsets(e_b, alpha, cfg.interval, w_b)
            n_b = min(block, fold_h - start)
            q_lo_l += [lo_b] * n_b
            q_hi_l += [hi_b] * n_b
        q_lo, q_hi = np.array(q_lo_l), np.array(q_hi_l)
    else:
        errs_all = in_sample
        if errs_all is None:  # naive only and no fold: in-sample seasonal differences
            lag = season_steps(cfg.freq, "1D")
            zy = _fwd(y, transform)
            errs_all = zy[lag:] - zy[:-lag] if len(zy) > lag else np.diff(zy)
        lo1, hi1 = _interval_offsets(errs_all[np.isfinite(errs_all)], alpha, cfg.interval)
        q_lo, q_hi = np.array([lo1]), np.array([hi1])
    week = season_steps(cfg.freq, "7D")
    tail_y = fit_hist["y"].to_numpy(float)
    return _SeriesFit(
        unique_id=uid,
        transform=transform,
        combo=best,
        prophet_json=pj,
        last_ds=pd.Timestamp(hist["ds"].iloc[-1]),
        tail=tail_y[-max(_PROFILE_WEEKS * week, _PROFILE_DAYS * day) :].copy(),
        q_lo=np.minimum(q_lo, 0.0),
        q_hi=np.maximum(q_hi, 0.0),
        nonneg=nonneg,
        scores=scores,
        decay=decay,
    )


def _predict_one(
    fit: _SeriesFit, horizon: int, cfg: _Config, xf: pd.DataFrame | None
) -> pd.DataFrame:
    period = _nowcast_period(cfg) if fit.decay > 0 else 0
    # the nowcast compares the last observation with the forecast one period later; with
    # regressors the forecast cannot run past the supplied X_future, so it needs horizon >= period
    steps = max(horizon, period) if not cfg.regressors else horizon
    ds = pd.date_range(fit.last_ds + cfg.freq, periods=steps, freq=cfg.freq)
    parts = []
    for m in fit.combo:
        if m in _PROPHETS:
            mcfg, mtf = _member_setup(m, cfg, fit.transform)
            model = model_from_json(fit.prophet_json[m])
            fut = _future_frame(model, ds, mcfg, mtf, xf)
            parts.append(_inv(model.predict(fut)["yhat"].to_numpy(), mtf))
        else:
            parts.append(_naive_forecast(m, fit.tail, steps, cfg.freq, fit.transform))
    yhat = _combine(parts, cfg.combine)
    if fit.nonneg:
        yhat = np.maximum(yhat, 0.0)
    if period:
        r0 = _nowcast_offset(fit.tail, yhat, period, fit.transform)
        yhat = _nowcast(yhat, r0, fit.decay, fit.transform, fit.nonneg)
    yhat, ds = yhat[:horizon], ds[:horizon]
    z = _fwd(yhat, fit.transform)
    lead = np.minimum(np.arange(horizon), len(fit.q_lo) - 1)
    lo = _inv(z + fit.q_lo[lead], fit.transform)
    hi = _inv(z + fit.q_hi[lead], fit.transform)
    if fit.nonneg:
        lo = np.maximum(lo, 0.0)
    return pd.DataFrame(
        {
            "unique_id": fit.unique_id,
            "ds": ds,
            "yhat": yhat,
            "yhat_lower": np.minimum(lo, yhat),
            "yhat_upper": np.maximum(hi, yhat),
            "model": f"auto({'+'.join(fit.combo)})",
        }
    )


def _fit_task(args: tuple[str, pd.DataFrame, _Config]) -> _SeriesFit | tuple[str, str]:
    with quiet_prophet():
        return _fit_one(*args)


def _predict_task(
    args: tuple[_SeriesFit, int, _Config, pd.DataFrame | None],
) -> pd.DataFrame:
    with quiet_prophet():
        return _predict_one(*args)


def _n_workers(n_jobs: int | None, n_tasks: int) -> int:
    cpus = os.cpu_count() or 1
    n = cpus if n_jobs is None or n_jobs < 0 else max(1, n_jobs)
    return max(1, min(n, n_tasks))


class ProphetForecaster(BaseEstimator):
    """Many-series forecaster: Prophet + seasonal-naive members, chosen by inner backtest.

    Parameters
    ----------
    freq: bucket width of the series (``"10min"``, ``"1h"``, ``"1D"``).
    horizon: steps to forecast (also the length of each inner backtest window).
    level: prediction interval level in percent.
    transform: ``"auto"`` (``log1p`` when y >= 0), ``"log1p"``, ``"sqrt"`` or ``"none"``.
    members: candidate members (default :data:`DEFAULT_MEMBERS`; all: :data:`MEMBERS`).
    select: choose the member combination by inner backtest (False: average all members).
    growth: ``"linear"``, ``"flat"`` or ``"logistic"`` (then ``cap`` is required).
    cap: saturation level of y (original scale) for logistic growth.
    changepoint_prior_scale, seasonality_mode, daily_order, weekly_order: Prophet settings.
    regressors: extra columns of the training frame used as Prophet regressors.
    holidays: Prophet holidays frame (``holiday, ds[, lower_window, upper_window]``), e.g.
        deployments and known launches (see :func:`events_to_holidays`).
    n_folds: inner rolling-origin windows (one horizon long, one day apart) used for
        selection and interval calibration; ``None``: 8 for histories up to 21 days, else 4.
    min_points: series with fewer non-missing points are skipped (``skipped_``).
    n_jobs: worker processes (1 = in-process; -1 = all cores).
    combine: ``"tolerance"`` (mean of every member whose inner-backtest MASE is within
        ``tolerance`` of the best one: one member when it clearly wins, a hedge over several
        when they are close), ``"top"`` (mean of the ``top_k`` members with the lowest MASE),
        ``"median"`` (median of all members) or ``"subset"`` (the best-scoring average over
        every subset of members).
    top_k: members averaged by ``combine="top"``.
    tolerance: relative MASE margin of ``combine="tolerance"`` (0.2: within 20 % of the best).
    drop_outages: treat near-zero dropouts of a positive series (<= 2 % of its median) as
        missing when fitting (they are still scored).
    interval: ``"symmetric"`` (plus/minus the level quantile of absolute held-out errors on
        the transformed scale) or ``"conformal"`` (their lower and upper quantiles).
    prophet_days: Prophet members fit on the last this many days only (``None``: all);
        bounds the cost on long histories (seasonal-naive members use up to 4 weeks).
    recency_halflife: member scores and interval quantiles weight each inner window by
        ``0.5 ** (age / recency_halflife)`` (age 0 = newest), so selection and width follow
        the recent error level (``None``: equal weights).
    nowcast: correct the start of the forecast for the deviation of the last observation
        from it, decaying with a half-life (1/48 to 1/2 day, or no correction) chosen by the
        inner backtest; needs a horizon of at least one day (one week for daily data).
    tie_margin: when three or more members all score within this relative margin of the
        best, the inner windows cannot tell them apart (typically every window straddles a
        recent level shift); the forecast is then the one-day seasonal naive, which carries
        the newest day forward, instead of a hedge that pulls the old level back in (0: off).
    """

    def __init__(
        self,
        freq: str = "1h",
        horizon: int = 24,
        level: float = 80.0,
        transform: str = "auto",
        members: Sequence[str] = DEFAULT_MEMBERS,
        select: bool = True,
        growth: str = "linear",
        cap: float | None = None,
        changepoint_prior_scale: float = 0.05,
        seasonality_mode: str = "additive",
        daily_order: int = 10,
        weekly_order: int = 5,
        regressors: Sequence[str] = (),
        holidays: pd.DataFrame | None = None,
        n_folds: int | None = None,
        min_points: int | None = None,
        n_jobs: int | None = 1,
        combine: str = "tolerance",
        top_k: int = 3,
        tolerance: float = 0.2,
        drop_outages: bool = True,
        interval: str = "symmetric",
        prophet_days: float | None = 28.0,
        recency_halflife: float | None = 2.0,
        nowcast: bool = True,
        tie_margin: float = 0.03,
    ) -> None:
        self.freq = freq
        self.horizon = horizon
        self.level = level
        self.transform = transform
        self.members = members
        self.select = select
        self.growth = growth
        self.cap = cap
        self.changepoint_prior_scale = changepoint_prior_scale
        self.seasonality_mode = seasonality_mode
        self.daily_order = daily_order
        self.weekly_order = weekly_order
        self.regressors = regressors
        self.holidays = holidays
        self.n_folds = n_folds
        self.min_points = min_points
        self.n_jobs = n_jobs
        self.combine = combine
        self.top_k = top_k
        self.tolerance = tolerance
        self.drop_outages = drop_outages
        self.interval = interval
        self.prophet_days = prophet_days
        self.recency_halflife = recency_halflife
        self.nowcast = nowcast
        self.tie_margin = tie_margin

    # -- helpers -------------------------------------------------------------------------
    def _config(self) -> _Config:
        from lumina_analytics.series import freq_to_timedelta

        td = freq_to_timedelta(self.freq)
        if self.horizon < 1:
            raise SchemaError("horizon must be at least 1 step")
        if not 0 < self.level < 100:
            raise SchemaError("level must be a percentage strictly between 0 and 100")
        if self.transform not in ("auto", "log1p", "sqrt", "none"):
            raise SchemaError("transform must be one of auto, log1p, sqrt, none")
        if self.interval not in ("symmetric", "conformal"):
            raise SchemaError("interval must be symmetric or conformal")
        if self.combine not in ("tolerance", "top", "median", "subset"):
            raise SchemaError("combine must be one of tolerance, top, median, subset")
        if not self.tie_margin >= 0:
            raise SchemaError("tie_margin must be >= 0 (a relative MASE margin, e.g. 0.03; 0: off)")
        if not self.tolerance >= 0:
            raise SchemaError("tolerance must be >= 0 (a relative MASE margin, e.g. 0.2)")
        if self.n_folds is not None and self.n_folds < 0:
            raise SchemaError("n_folds must be >= 0 (or None for automatic)")
        bad = [m for m in self.members if m not in MEMBERS]
        if bad or not self.members:
            raise SchemaError(f"unknown member(s) {bad}; choose from {list(MEMBERS)}")
        if self.growth == "logistic" and self.cap is None:
            raise SchemaError("growth='logistic' needs cap=<capacity> (the saturation level of y)")
        min_points = self.min_points
        if min_points is None:
            min_points = max(10, 2 * season_steps(td, "1D")) if td < pd.Timedelta("1D") else 14
        return _Config(
            freq=td,
            horizon=int(self.horizon),
            level=float(self.level),
            transform=self.transform,
            members=tuple(self.members),
            growth=self.growth,
            cap=self.cap,
            changepoint_prior_scale=float(self.changepoint_prior_scale),
            seasonality_mode=self.seasonality_mode,
            daily_order=int(self.daily_order),
            weekly_order=int(self.weekly_order),
            regressors=tuple(self.regressors),
            holidays=self.holidays,
            n_folds=None if self.n_folds is None else int(self.n_folds),
            min_points=int(min_points),
            select=bool(self.select),
            interval=self.interval,
            combine=self.combine,
            top_k=int(self.top_k),
            tolerance=float(self.tolerance),
            drop_outages=bool(self.drop_outages),
            prophet_days=None if self.prophet_days is None else float(self.prophet_days),
            recency_halflife=None
            if self.recency_halflife is None
            else float(self.recency_halflife),
            nowcast=bool(self.nowcast),
            tie_margin=float(self.tie_margin),
        )

    def _validated(self, df: pd.DataFrame, cfg: _Config) -> pd.DataFrame:
        extra = [r for r in cfg.regressors if r not in df.columns]
        if extra:
            raise SchemaError(f"regressor column(s) {extra} missing from the training frame")
        base = validate_long(df[["unique_id", "ds", "y"]], "training frame")
        if cfg.regressors:
            regs = df[["unique_id", "ds", *cfg.regressors]].copy()
            regs["unique_id"] = regs["unique_id"].astype(str)
            regs["ds"] = pd.to_datetime(regs["ds"])
            base = base.merge(regs, on=["unique_id", "ds"], how="left")
        return _regularise(base, cfg.freq)

    # -- public API ------------------------------------------------------------------------
    def fit(self, df: pd.DataFrame) -> ProphetForecaster:
        """Fit one model per ``unique_id`` of the long frame ``df`` (``unique_id, ds, y``)."""
        cfg = self._config()
        data = self._validated(df, cfg)
        tasks = [(str(uid), g.reset_index(drop=True), cfg) for uid, g in data.groupby("unique_id")]
        workers = _n_workers(self.n_jobs, len(tasks))
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                results = list(
                    pool.map(_fit_task, tasks, chunksize=max(1, len(tasks) // (4 * workers)))
                )
        else:
            results = [_fit_task(t) for t in tasks]
        self.fits_: dict[str, _SeriesFit] = {}
        skipped = []
        for r in results:
            if isinstance(r, tuple):
                skipped.append({"unique_id": r[0], "reason": r[1]})
            else:
                self.fits_[r.unique_id] = r
        self.skipped_ = pd.DataFrame(skipped, columns=["unique_id", "reason"])
        self.selection_ = pd.DataFrame(
            [
                {
                    "unique_id": f.unique_id,
                    "model": "+".join(f.combo),
                    "rule": _selection_rule(f, cfg),
                    "transform": f.transform,
                    "backtest_mase": f.scores.get("+".join(f.combo), np.nan),
                    "nowcast_halflife": _halflife_steps(f.decay),
                    **{f"mase[{k}]": v for k, v in f.scores.items() if "+" not in k},
                }
                for f in self.fits_.values()
            ]
        )
        self.cutoff_ = data["ds"].max() if len(data) else pd.NaT
        self.config_ = cfg
        self.n_series_ = len(self.fits_)
        return self

    def predict(
        self, horizon: int | None = None, X_future: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Long forecast ``unique_id, ds, yhat, yhat_lower, yhat_upper, model``."""
        if not hasattr(self, "fits_"):
            raise SchemaError("call fit() before predict()")
        cfg: _Config = self.config_
        h = int(horizon or cfg.horizon)
        xf_by: dict[str, pd.DataFrame] = {}
        if X_future is not None:
            xf = X_future.copy()
            xf["unique_id"] = xf["unique_id"].astype(str)
            xf["ds"] = pd.to_datetime(xf["ds"])
            xf_by = {str(k): g for k, g in xf.groupby("unique_id")}
        tasks = [(f, h, cfg, xf_by.get(uid)) for uid, f in self.fits_.items()]
        workers = _n_workers(self.n_jobs, len(tasks))
        if workers > 1 and sum(bool(f.prophet_json) for f in self.fits_.values()) > workers:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                parts = list(
                    pool.map(_predict_task, tasks, chunksize=max(1, len(tasks) // (4 * workers)))
                )
        else:
            parts = [_predict_task(t) for t in tasks]
        if not parts:
            return _empty_forecast()
        out = pd.concat(parts, ignore_index=True)
        out["ds"] = out["ds"].astype("datetime64[ns]")
        return out[list(forecast_frame_columns)]

    def member_forecasts(self, df: pd.DataFrame, horizon: int | None = None) -> pd.DataFrame:
        """Each candidate member's forecast alone, fitted on ``df`` with this configuration.

        Long ``unique_id, ds, yhat, model`` (``model`` is the member's name), so a reader can
        set the members the selection chose from side by side; no selection, no intervals.
        """
        cfg = self._config()
        if cfg.regressors:
            raise SchemaError("member_forecasts does not take regressors; drop `regressors`")
        h = int(horizon or cfg.horizon)
        parts = []
        with quiet_prophet():
            for uid, g in self._validated(df, cfg).groupby("unique_id", sort=True):
                hist = g.sort_values("ds").reset_index(drop=True)
                prepared = _prepare(hist, cfg)
                if isinstance(prepared, str):
                    raise SchemaError(f"series {uid!r}: {prepared}")
                tf, nonneg, fit_hist = prepared
                ds = pd.date_range(hist["ds"].iloc[-1] + cfg.freq, periods=h, freq=cfg.freq)
                for m in _available(cfg.members, len(hist), cfg):
                    p = _member_forecast(m, fit_hist, ds, cfg, tf, None)
                    yhat = np.maximum(p, 0.0) if nonneg else p
                    parts.append(
                        pd.DataFrame({"unique_id": str(uid), "ds": ds, "yhat": yhat, "model": m})
                    )
        if not parts:
            return _empty_forecast()[["unique_id", "ds", "yhat", "model"]]
        return pd.concat(parts, ignore_index=True)

    def fit_predict(self, df: pd.DataFrame, horizon: int | None = None) -> pd.DataFrame:
        """``fit(df).predict(horizon)``."""
        return self.fit(df).predict(horizon)

    def to_json(self) -> str:
        """All fitted series as JSON (Prophet parts via ``model_to_json``), no pickle."""
        if not hasattr(self, "fits_"):
            raise SchemaError("call fit() before to_json()")
        payload: dict[str, Any] = {
            "params": {k: v for k, v in self.get_params().items() if k != "holidays"},
            "series": {
                uid: {
                    "transform": f.transform,
                    "combo": list(f.combo),
                    "prophet": f.prophet_json,
                    "last_ds": f.last_ds.isoformat(),
                    "tail": [None if np.isnan(v) else float(v) for v in f.tail],
                    "q_lo": [float(v) for v in f.q_lo],
                    "q_hi": [float(v) for v in f.q_hi],
                    "nonneg": f.nonneg,
                    "scores": f.scores,
                    "decay": f.decay,
                }
                for uid, f in self.fits_.items()
            },
        }
        payload["params"]["members"] = list(payload["params"]["members"])
        payload["params"]["regressors"] = list(payload["params"]["regressors"])
        return json.dumps(payload)

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path``."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(self.to_json())
        return out

    @classmethod
    def load(cls, path: str | Path, holidays: pd.DataFrame | None = None) -> ProphetForecaster:
        """Rebuild a fitted forecaster saved with :meth:`save`."""
        payload = json.loads(Path(path).read_text())
        est = cls(**payload["params"], holidays=holidays)
        est.config_ = est._config()
        est.fits_ = {
            uid: _SeriesFit(
                unique_id=uid,
                transform=s["transform"],
                combo=tuple(s["combo"]),
                prophet_json=s["prophet"],
                last_ds=pd.Timestamp(s["last_ds"]),
                tail=np.array([np.nan if v is None else v for v in s["tail"]], float),
                q_lo=np.atleast_1d(np.array(s["q_lo"], float)),
                q_hi=np.atleast_1d(np.array(s["q_hi"], float)),
                nonneg=bool(s["nonneg"]),
                scores=dict(s["scores"]),
                decay=float(s.get("decay", 0.0)),
            )
            for uid, s in payload["series"].items()
        }
        est.skipped_ = pd.DataFrame(columns=["unique_id", "reason"])
        est.n_series_ = len(est.fits_)
        est.cutoff_ = max((f.last_ds for f in est.fits_.values()), default=pd.NaT)
        return est


def _halflife_steps(decay: float) -> float:
    """Half-life in steps of a per-step decay (NaN when there is no nowcast correction)."""
    return float(np.log(0.5) / np.log(decay)) if 0.0 < decay < 1.0 else float("nan")


def _empty_forecast() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id": pd.Series([], dtype=object),
            "ds": pd.Series([], dtype="datetime64[ns]"),
            "yhat": pd.Series([], dtype=float),
            "yhat_lower": pd.Series([], dtype=float),
            "yhat_upper": pd.Series([], dtype=float),
            "model": pd.Series([], dtype=object),
        }
    )


def _regularise(df: pd.DataFrame, freq: pd.Timedelta) -> pd.DataFrame:
    """Put every series on a regular grid of ``freq`` (missing steps become NaN)."""
    parts = []
    for uid, g in df.groupby("unique_id", sort=True):
        g = g.set_index("ds").sort_index()
        grid = pd.date_range(g.index.min(), g.index.max(), freq=freq)
        if len(grid) != len(g) or not g.index.equals(grid):
            off = g.index.difference(grid)
            if len(off):
                raise SchemaError(
                    f"series {uid!r}: timestamp {off[0]} is not on the {freq} grid starting at "
                    f"{g.index.min()}; resample the series to freq={freq} first"
                )
            g = g.reindex(grid)
            g["unique_id"] = uid
        g.index.name = "ds"
        parts.append(g.reset_index())
    if not parts:
        return df
    return pd.concat(parts, ignore_index=True)


def events_to_holidays(
    ts: Sequence[Any] | pd.Series, name: str = "event", lower_window: int = 0, upper_window: int = 0
) -> pd.DataFrame:
    """A Prophet holidays frame from event timestamps (deployments, launches)."""
    days = pd.to_datetime(pd.Series(list(ts))).dt.normalize().drop_duplicates()
    return pd.DataFrame(
        {
            "holiday": name,
            "ds": days.to_numpy(),
            "lower_window": lower_window,
            "upper_window": upper_window,
        }
    )
