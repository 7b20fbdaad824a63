"""Generated insights: the most important changes of a period, one plain sentence each.

How a finding is made (:func:`find_insights`):

1. ``llm_calls`` rows (and, optionally, hourly span aggregates per service) are turned into
   hourly series per metric and segment (all traffic, each tenant, provider, model, agent,
   region, service): requests, cost, tokens, error rate, rate-limit rate, p95 latency and
   prompt-cache hit rate (:func:`hourly_metrics`).
2. Each series gets a robust baseline over the period plus a look-back window before it:
   volumes (requests, cost, tokens) the median of the same hour of day on the same kind of day
   (weekday / weekend); latencies the median of the same hour of day (latency is also
   measured mix-adjusted: each call against its model's usual); rates the median over days of
   the pooled daily rate. The spread is the median absolute deviation of the residuals (for
   volumes also their 90th percentile), floored by the sampling noise (compound Poisson for
   sums, binomial for rates) and by a small share of the baseline, so a quiet week stays quiet.
3. An hour is abnormal when its robust z-score passes ``z_hour`` (3) AND the change is large
   in business terms (``min_ratio`` / ``min_abs`` per metric; volumes must also move by 10% of
   the platform's usual hourly value); consecutive abnormal hours (gaps of one or two normal
   hours, or of hours too quiet to judge, bridged) form a run, kept if it lasts ``min_hours``
   (2) and its combined evidence, sum of z / sqrt(hours), passes ``z_threshold`` (6).
4. impact = share of traffic in the segment x relative size of the change (capped at 10) x
   sqrt(duration in hours). Runs of one metric family that overlap in time keep only the most
   impactful segment (an outage of one provider also moves "all traffic" and its models);
   runs of other families on the same segment and time are folded into one finding.

Each :class:`Insight` carries its sentence, numbers and a builder for the Altair chart that
supports it (observed vs baseline with the abnormal window shaded).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from lumina_analytics.errors import SchemaError
from lumina_analytics.schema import require_columns
from lumina_analytics.warehouse import Warehouse

__all__ = [
    "DIMENSIONS",
    "METRICS",
    "Insight",
    "MetricRule",
    "default_period",
    "find_insights",
    "generate",
    "hourly_metrics",
    "insights_frame",
    "load_inputs",
    "open_alerts",
    "scan",
    "service_health",
]

#: Segments scanned (``all`` is the whole platform).
DIMENSIONS: tuple[str, ...] = ("all", "tenant", "provider", "model", "agent", "region", "service")


@dataclass(frozen=True)
class MetricRule:
    """How one metric is baselined and what counts as a material change."""

    name: str
    label: str  # words used in sentences
    family: str  # traffic|spend|errors|latency|cache
    seasonal: bool  # baseline by hour of day and weekday/weekend
    kind: str  # count|rate|level
    min_ratio: float  # observed/baseline (or baseline/observed for drops) must reach this
    min_abs: float = 0.0  # and |observed - baseline| must reach this
    direction: int = 0  # +1 only rises, -1 only drops, 0 both
    fmt: str = "{:,.0f}"
    min_n: float = 20.0  # hours with fewer requests are not judged (rates, levels)
    weight: float = 1.0  # multiplies the impact (secondary metrics rank below primary ones)


METRICS: dict[str, MetricRule] = {
    m.name: m
    for m in (
        MetricRule(
            "requests", "requests per hour", "traffic", True, "count", 1.6, 30.0, 0, "{:,.0f}", 0.0
        ),
        MetricRule(
            "cost_usd", "LLM spend per hour", "spend", True, "level", 1.8, 0.5, 1, "${:,.2f}", 0.0
        ),
        MetricRule(
            "tokens",
            "tokens per hour",
            "spend",
            True,
            "level",
            1.8,
            20000.0,
            1,
            "{:,.0f}",
            0.0,
            0.5,
        ),
        MetricRule("error_rate", "error rate", "errors", False, "rate", 2.5, 0.03, 1, "{:.1%}"),
        MetricRule(
            "rate_limit_rate",
            "rate-limit error rate",
            "errors",
            False,
            "rate",
            3.0,
            0.03,
            1,
            "{:.1%}",
        ),
        MetricRule(
            "latency_index",
            "LLM latency relative to each model's usual",
            "latency",
            False,
            "level",
            1.2,
            0.15,
            1,
            "{:.2f}x",
            30.0,
        ),
        MetricRule(
            "latency_p95",
            "p95 LLM latency",
            "latency",
            False,
            "level",
            1.35,
            300.0,
            1,
            "{:,.0f} ms",
            50.0,
        ),
        MetricRule(
            "cache_hit_rate",
            "prompt-cache hit rate",
            "cache",
            False,
            "rate",
            1.4,
            0.08,
            -1,
            "{:.1%}",
        ),
        MetricRule(
            "span_p95_ms",
            "p95 span duration",
            "latency",
            False,
            "level",
            1.35,
            50.0,
            1,
            "{:,.0f} ms",
        ),
        MetricRule(
            "span_error_rate", "span error rate", "errors", False, "rate", 2.5, 0.03, 1, "{:.1%}"
        ),
    )
}
#: segments that name no particular customer, provider or model
_BROAD = frozenset({"all", "service"})
#: which segment names a change when several explain it equally well (lower first)
_PRIORITY = {
    "provider": 0,
    "agent": 1,
    "tenant": 2,
    "service": 3,
    "region": 4,
    "model": 5,
    "all": 6,
}


@dataclass
class Insight:
    """One finding: a plain sentence with its numbers and the chart that supports it."""

    sentence: str
    impact: float
    kind: str  # metric family: traffic|spend|errors|latency|cache
    metric: str
    dimension: str
    value: str
    start: pd.Timestamp
    end: pd.Timestamp  # exclusive
    baseline: float
    observed: float
    change: float  # observed / baseline - 1
    share: float  # share of traffic in the segment during the finding
    hours: int
    related: list[str] = field(default_factory=list)
    chart_builder: Callable[[], alt.TopLevelMixin] | None = field(default=None, repr=False)

    def chart(self) -> alt.TopLevelMixin:
        """The Altair chart supporting the finding."""
        if self.chart_builder is None:
            raise SchemaError("this insight has no chart")
        return self.chart_builder()

    def as_dict(self) -> dict[str, Any]:
        """The finding's fields without the chart builder."""
        return {
            "sentence": self.sentence,
            "impact": self.impact,
            "kind": self.kind,
            "metric": self.metric,
            "dimension": self.dimension,
            "value": self.value,
            "start": self.start,
            "end": self.end,
            "baseline": self.baseline,
            "observed": self.observed,
            "change": self.change,
            "share": self.share,
            "hours": self.hours,
        }

    def _repr_html_(self) -> str:
        return f"<p><b>{self.kind}</b> (impact {self.impact:.2f}): {self.sentence}</p>"


def insights_frame(insights: Sequence[Insight]) -> pd.DataFrame:
    """Findings as a table (one row each, best first)."""
    cols = list(Insight.__dataclass_fields__)[:-2]
    return pd.DataFrame([i.as_dict() for i in insights], columns=cols)


# -- hourly metrics ---------------------------------------------------------------------------
def _segment_key(calls: pd.DataFrame, dim: str) -> pd.Series:
    if dim == "all":
        return pd.Series("all", index=calls.index, dtype=object)
    return calls[dim].astype(object).where(calls[dim].notna(), "unknown").astype(str)


def hourly_metrics(
    calls: pd.DataFrame, dimensions: Sequence[str] = DIMENSIONS, freq: str = "1h"
) -> pd.DataFrame:
    """Long hourly metrics of ``llm_calls`` rows: ``metric, dimension, value, ds, y, n``.

    ``n`` is the number of requests behind the value (the weight of a rate); ``s2`` is the sum
    of squared per-call values of sums (cost, tokens), for their sampling noise. Dimensions
    the frame does not have are skipped.
    """
    require_columns(calls, ["ts"], "llm_calls frame")
    df = pd.DataFrame({"ds": pd.to_datetime(calls["ts"]).dt.floor(freq)}, index=calls.index)
    num = {
        c: pd.to_numeric(calls[c], errors="coerce")
        if c in calls
        else pd.Series(np.nan, index=calls.index)
        for c in ("latency_ms", "cost_usd", "input_tokens", "output_tokens", "cache_read_tokens")
    }
    status = calls["status"] if "status" in calls else pd.Series("ok", index=calls.index)
    etype = calls["error_type"] if "error_type" in calls else pd.Series(None, index=calls.index)
    df["err"] = (status == "error").astype(float)
    df["rl"] = ((status == "error") & (etype == "rate_limit")).astype(float)
    df["cost"] = num["cost_usd"].fillna(0.0)
    df["tok"] = num["input_tokens"].fillna(0) + num["output_tokens"].fillna(0)
    df["cost2"] = df["cost"] ** 2
    df["tok2"] = df["tok"] ** 2
    df["inp"] = num["input_tokens"].fillna(0)
    df["cache"] = num["cache_read_tokens"].fillna(0)
    df["lat"] = num["latency_ms"]
    # mix-adjusted latency: each call against its model's median over the frame, so a shift
    # of the platform shows even while the mix of fast and slow models moves over the day
    model = calls["model"] if "model" in calls else pd.Series("all", index=calls.index)
    df["lat_idx"] = df["lat"] / df["lat"].groupby(model).transform("median")
    has_cache = "cache_read_tokens" in calls and num["cache_read_tokens"].notna().any()
    frames: list[pd.DataFrame] = []
    for dim in dimensions:
        if dim != "all" and dim not in calls:
            continue
        df["value"] = _segment_key(calls, dim)
        g = df.groupby(["value", "ds"], sort=True)
        agg = g.agg(
            n=("err", "size"),
            errors=("err", "sum"),
            rl=("rl", "sum"),
            cost=("cost", "sum"),
            tok=("tok", "sum"),
            cost2=("cost2", "sum"),
            tok2=("tok2", "sum"),
            inp=("inp", "sum"),
            cache=("cache", "sum"),
        )
        agg["p95"] = g["lat"].quantile(0.95)
        agg["lat_idx"] = g["lat_idx"].median()
        agg = agg.reset_index()
        base = agg[["value", "ds", "n"]]
        parts = {
            "requests": agg["n"].astype(float),
            "cost_usd": agg["cost"],
            "tokens": agg["tok"],
            "error_rate": agg["errors"] / agg["n"],
            "rate_limit_rate": agg["rl"] / agg["n"],
            "latency_index": agg["lat_idx"],
            "latency_p95": agg["p95"],
        }
        if has_cache:
            parts["cache_hit_rate"] = (agg["cache"] / agg["inp"].where(agg["inp"] > 0)).astype(
                float
            )
        squares = {"cost_usd": agg["cost2"], "tokens": agg["tok2"]}
        for metric, y in parts.items():
            s2 = squares.get(metric, pd.Series(np.nan, index=agg.index))
            frames.append(base.assign(metric=metric, dimension=dim, y=y.astype(float), s2=s2))
    if not frames:
        return pd.DataFrame(columns=["metric", "dimension", "value", "ds", "y", "n", "s2"])
    out = pd.concat(frames, ignore_index=True)
    return out[["metric", "dimension", "value", "ds", "y", "n", "s2"]]


def _complete_hours(g: pd.DataFrame, grid: pd.DatetimeIndex, rule: MetricRule) -> pd.DataFrame:
    cols = ["y", "n", "s2"] if "s2" in g else ["y", "n"]
    s = g.set_index("ds")[cols].reindex(grid)
    s["n"] = s["n"].fillna(0.0)
    if rule.seasonal:  # counts and sums: an hour without calls is a zero
        s["y"] = s["y"].fillna(0.0)
    return s


# -- detection --------------------------------------------------------------------------------
@dataclass
class _Run:
    metric: str
    dimension: str
    value: str
    start: pd.Timestamp
    end: pd.Timestamp
    observed: float
    baseline: float
    severity: float
    share: float
    hours: int
    peak_z: float
    series: pd.DataFrame  # ds, y, baseline (context for the chart)
    impact: float = 0.0
    excess: float = 0.0  # signed excess volume (events, dollars, ms x requests) over the run


def _median(a: np.ndarray) -> float:
    """Median ignoring NaN (as pandas does); NaN when nothing is left."""
    a = a[~np.isnan(a)]
    return float(np.median(a)) if len(a) else float("nan")


def _group_median(values: np.ndarray, key: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """For every position, the median of ``values[mask]`` sharing its ``key`` (NaN if none)."""
    out = np.full(len(values), np.nan)
    for k in np.unique(key[mask]):
        out[key == k] = _median(values[mask & (key == k)])
    return out


def _baseline(s: pd.DataFrame, rule: MetricRule) -> tuple[pd.Series, pd.Series]:
    """Expected value and noise scale per hour of one complete hourly series (numpy: it runs
    for every metric and segment)."""
    idx = pd.DatetimeIndex(s.index)
    y = s["y"].to_numpy(dtype=float)
    n = s["n"].to_numpy(dtype=float)
    hour = np.asarray(idx.hour, dtype=np.int64)
    weekend = (np.asarray(idx.day_of_week) >= 5).astype(np.int64)
    valid = ~np.isnan(y) & (n >= rule.min_n)
    if rule.seasonal or rule.family == "latency":
        # by hour of day (and weekday/weekend for volumes): traffic and the mix of agents,
        # models and regions behind a latency change over the day
        base = _group_median(y, hour * 2 + (weekend if rule.seasonal else 0), valid)
    elif rule.kind == "rate":
        # median over days of the pooled daily rate: rare events (1% errors) make the
        # median of hourly rates 0, and whole days keep an incident of hours from moving it
        has = ~np.isnan(y) & (n > 0)
        _, day = np.unique(idx.normalize().asi8[has], return_inverse=True)
        num = np.bincount(day, weights=y[has] * n[has]) if has.any() else np.zeros(0)
        den = np.bincount(day, weights=n[has]) if has.any() else np.zeros(0)
        daily = (num / np.where(den > 0, den, np.nan))[den >= 5 * max(rule.min_n, 1.0)]
        level = _median(daily) if len(daily) else _median(y[valid]) if valid.any() else np.nan
        base = np.full(len(y), level)
    else:
        base = np.full(len(y), _median(y[valid]) if valid.any() else np.nan)
    resid = (y - base)[valid]
    # volumes have heavy tails (bursty sessions): also the 90th percentile of |residual|
    mad = 0.0
    if len(resid):
        dev = _median(np.abs(resid - _median(resid))) * 1.4826
        tail = np.abs(resid[~np.isnan(resid)])
        q90 = float(np.quantile(tail, 0.9)) / 1.645 if rule.seasonal and len(tail) else 0.0
        if rule.seasonal and not len(tail):
            q90 = float("nan")
        mad = max(dev, q90)
    b = np.abs(base)
    with np.errstate(invalid="ignore"):
        if rule.kind == "count":
            noise = np.clip(b, 1.0, None) ** 0.5
        elif rule.kind == "rate":
            # rare events: floor p at 2 events per hour so a couple of stray errors stay quiet
            nn = np.clip(n, 1.0, None)
            p = np.clip(np.fmax(base, 2.0 / nn), None, 0.5)
            noise = (p * (1 - p) / nn) ** 0.5
        elif "s2" in s and s["s2"].notna().any() and n.sum() > 0:
            # a sum of heavy-tailed per-call values (compound Poisson): var = E[n] * E[c^2]
            ec2 = float(np.nansum(s["s2"].to_numpy(dtype=float))) / float(n.sum())
            key = hour * 2 + weekend
            n_base = _group_median(n, key, np.ones(len(n), dtype=bool))
            noise = np.fmax((np.clip(n_base, 1.0, None) * ec2) ** 0.5, 0.1 * b)
        else:
            noise = 0.1 * b
        spread = np.full(len(y), mad)
        if not rule.seasonal:
            # per-hour statistics (medians, quantiles, rates) are noisier in quiet hours
            n_med = _median(n[valid]) if valid.any() else 1.0
            spread = spread * np.clip(n_med / np.clip(n, 1.0, None), 1.0, None) ** 0.5
        scale = np.fmax(np.fmax(noise, 0.05 * b), spread)
        scale = np.where(scale > 0, scale, 1e-9)
    return pd.Series(base, index=s.index), pd.Series(scale, index=s.index)


def _runs_for_series(
    s: pd.DataFrame,
    rule: MetricRule,
    start: pd.Timestamp,
    end: pd.Timestamp,
    z_threshold: float,
    min_hours: int,
    z_hour: float = 3.5,
    min_abs: float | None = None,
) -> list[tuple[pd.Timestamp, pd.Timestamp, pd.Series, pd.Series, pd.Series]]:
    """Runs of abnormal hours: each hour passes ``z_hour`` and the size rules; a run is kept
    when it lasts ``min_hours`` and its combined evidence (sum of z / sqrt(hours), Stouffer)
    passes ``z_threshold``."""
    base_s, scale_s = _baseline(s, rule)
    base, scale = base_s.to_numpy(), scale_s.to_numpy()
    floor = rule.min_abs if min_abs is None else min_abs
    y = s["y"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        z = (y - base) / scale
        up = (y >= base * rule.min_ratio) & ((y - base) >= floor) & (z >= z_hour)
        down = (y * rule.min_ratio <= base) & ((base - y) >= floor) & (z <= -z_hour)
    if rule.direction > 0:
        down[:] = False
    elif rule.direction < 0:
        up[:] = False
    judged = (s["n"].to_numpy() >= rule.min_n) | rule.seasonal
    out = []
    for arr in (up & judged, down & judged):
        if not arr.any():
            continue
        # bridge one or two normal hours, and any stretch of hours too quiet to judge, between
        # two abnormal ones
        bridged = arr.copy()
        hits = np.flatnonzero(arr)
        for last, nxt in itertools.pairwise(hits.tolist()):
            if nxt - last > 1 and (nxt - last - 1 <= 2 or not judged[last + 1 : nxt].any()):
                bridged[last + 1 : nxt] = True
        # runs of consecutive bridged hours
        edges = np.diff(np.concatenate(([0], bridged.astype(np.int8), [0])))
        for i, j in zip(
            np.flatnonzero(edges == 1).tolist(),
            (np.flatnonzero(edges == -1) - 1).tolist(),
            strict=True,
        ):
            r0, r1 = s.index[i], s.index[j] + pd.Timedelta(hours=1)
            zz = np.where(judged[i : j + 1], np.nan_to_num(np.abs(z[i : j + 1])), 0.0)
            length = int(judged[i : j + 1].sum()) or 1
            evidence = float(np.clip(zz, None, 4 * z_threshold).sum()) / math.sqrt(length)
            if length >= min_hours and evidence >= z_threshold and r1 > start and r0 < end:
                index = s.index[i : j + 1]
                out.append(
                    (
                        r0,
                        r1,
                        s["y"].iloc[i : j + 1],
                        base_s.iloc[i : j + 1],
                        pd.Series(zz, index=index),
                    )
                )
    return out


def _severity(observed: float, baseline: float, rule: MetricRule) -> float:
    if rule.kind == "rate":
        floor = max(rule.min_abs, 0.005)
        if observed >= baseline:
            return (observed - baseline) / max(baseline, floor)
        return (baseline - observed) / max(observed, floor)
    if observed >= baseline:
        return observed / max(baseline, 1e-9) - 1
    return baseline / max(observed, 1e-9) - 1


def _fmt(rule: MetricRule, v: float) -> str:
    return rule.fmt.format(v) if np.isfinite(v) else "n/a"


def _when(start: pd.Timestamp, end: pd.Timestamp, period_end: pd.Timestamp) -> str:
    if end >= period_end:
        return f"since {start:%a %Y-%m-%d %H:%M} UTC (still ongoing at the end of the period)"
    hours = round((end - start) / pd.Timedelta(hours=1))
    same_day = start.normalize() == (end - pd.Timedelta(seconds=1)).normalize()
    stop = f"{end:%H:%M}" if same_day else f"{end:%a %Y-%m-%d %H:%M}"
    return f"from {start:%a %Y-%m-%d %H:%M} to {stop} UTC ({hours} h)"


def _where(dimension: str, value: str) -> str:
    return "across the platform" if dimension == "all" else f"for {dimension} {value}"


def _sentence(run: _Run, rule: MetricRule, period_end: pd.Timestamp) -> str:
    direction = "rose" if run.observed >= run.baseline else "fell"
    if run.baseline > 0 and np.isfinite(run.baseline):
        ratio = run.observed / run.baseline
        size = f"{ratio:.1f}x" if ratio >= 2 else f"{ratio - 1:+.0%}"
    else:
        size = "from zero"
    if rule.kind == "rate":
        size = f"{(run.observed - run.baseline) * 100:+.1f} points"
    share = "" if run.dimension == "all" else f", {run.share:.0%} of requests in that window"
    return (
        f"{rule.label[0].upper()}{rule.label[1:]} {_where(run.dimension, run.value)} {direction} to "
        f"{_fmt(rule, run.observed)} from a usual {_fmt(rule, run.baseline)} ({size}) "
        f"{_when(run.start, run.end, period_end)}{share}."
    )


def _chart_builder(run: _Run, rule: MetricRule) -> Callable[[], alt.TopLevelMixin]:
    data = run.series.copy()
    title = f"{rule.label[0].upper()}{rule.label[1:]} {_where(run.dimension, run.value)}"
    window = pd.DataFrame({"start": [run.start], "end": [run.end]})

    def build() -> alt.TopLevelMixin:
        long = data.melt(
            id_vars="ds", value_vars=["observed", "baseline"], var_name="series", value_name="y"
        )
        lines = (
            alt.Chart(long, title=title)
            .mark_line()
            .encode(
                x=alt.X("ds:T", title=None),
                y=alt.Y("y:Q", title=rule.label),
                color=alt.Color("series:N", title=None),
                strokeDash=alt.StrokeDash(
                    "series:N",
                    scale=alt.Scale(domain=["observed", "baseline"], range=[[1, 0], [5, 4]]),
                    legend=None,
                ),
                tooltip=["ds:T", "series:N", alt.Tooltip("y:Q", format=",.4g")],
            )
        )
        shade = (
            alt.Chart(window)
            .mark_rect(opacity=0.15, color="#e03131")
            .encode(x="start:T", x2="end:T")
        )
        return shade + lines

    return build


def _share(calls_n: pd.DataFrame, run: _Run) -> float:
    if run.dimension == "all" or calls_n.empty:
        return 1.0
    m = (calls_n["ds"] >= run.start) & (calls_n["ds"] < run.end)
    tot = calls_n.loc[m & (calls_n["dimension"] == "all"), "n"].sum()
    seg = calls_n.loc[
        m & (calls_n["dimension"] == run.dimension) & (calls_n["value"] == run.value), "n"
    ].sum()
    return float(seg / tot) if tot > 0 else 1.0


def find_insights(
    calls: pd.DataFrame | None,
    start: str | datetime,
    end: str | datetime,
    span_hourly: pd.DataFrame | None = None,
    deployments: pd.DataFrame | None = None,
    top: int | None = 10,
    dimensions: Sequence[str] = DIMENSIONS,
    z_threshold: float = 6.0,
    min_hours: int = 2,
    z_hour: float = 3.0,
    materiality: float = 0.1,
    min_impact: float = 0.5,
    hourly: pd.DataFrame | None = None,
) -> list[Insight]:
    """Ranked findings of ``[start, end)``, best first.

    ``calls`` are ``llm_calls`` rows covering the period and a look-back window before it
    (the longer the look-back, the steadier the baselines); ``span_hourly`` (optional) is a
    long ``metric, dimension, value, ds, y, n`` frame of span metrics (``span_p95_ms``,
    ``span_error_rate`` per service); ``deployments`` (optional) lets latency and error
    findings name the deployment that preceded them. ``hourly`` may be passed instead of
    ``calls`` when it is already computed by :func:`hourly_metrics`.
    """
    p0 = pd.Timestamp(start)
    p1 = pd.Timestamp(end)
    if p1 <= p0:
        raise SchemaError(f"insight period is empty: start {p0} is not before end {p1}")
    if hourly is None:
        hourly = hourly_metrics(calls, dimensions) if calls is not None and len(calls) else None
    parts = [h for h in (hourly, span_hourly) if h is not None and len(h)]
    if not parts:
        return []
    long = pd.concat(parts, ignore_index=True)
    long["ds"] = pd.to_datetime(long["ds"])
    long = long[long["ds"] < p1]
    if long.empty:
        return []
    grid = pd.date_range(long["ds"].min().floor("1h"), p1 - pd.Timedelta(hours=1), freq="1h")
    req_n = long.loc[long["metric"] == "requests", ["dimension", "value", "ds", "n"]]
    allm = long[long["dimension"] == "all"]
    platform = {str(k): float(v) for k, v in allm.groupby("metric")["y"].median().items()}
    runs: list[_Run] = []
    for (metric, dim, value), g in long.groupby(["metric", "dimension", "value"], sort=False):
        rule = METRICS.get(str(metric))
        if rule is None:
            continue
        s = _complete_hours(g, grid, rule)
        if rule.seasonal and s["y"].sum() <= 0:
            continue
        floor = rule.min_abs
        if rule.seasonal:  # volumes: the change must matter at platform scale
            floor = max(floor, materiality * platform.get(rule.name, 0.0))
        found = _runs_for_series(s, rule, p0, p1, z_threshold, min_hours, z_hour, floor)
        for r0, r1, obs, base, zz in found:
            weight = (
                s["n"].loc[obs.index] if rule.kind in {"rate"} or rule.family == "latency" else 1.0
            )
            excess = float(((obs - base) * weight).sum())
            observed = float(obs.mean())
            baseline = float(base.mean())
            ctx = s.loc[
                (s.index >= r0 - pd.Timedelta(days=2)) & (s.index < r1 + pd.Timedelta(days=1))
            ]
            cbase, _ = _baseline(s, rule)
            series = pd.DataFrame(
                {
                    "ds": ctx.index,
                    "observed": ctx["y"].to_numpy(),
                    "baseline": cbase.loc[ctx.index].to_numpy(),
                }
            )
            run = _Run(
                str(metric),
                str(dim),
                str(value),
                r0,
                r1,
                observed,
                baseline,
                _severity(observed, baseline, rule),
                1.0,
                len(obs),
                float(zz.max()),
                series,
            )
            run.share = 1.0 if str(metric).startswith("span_") else _share(req_n, run)
            run.impact = rule.weight * run.share * min(run.severity, 10.0) * math.sqrt(run.hours)
            run.excess = excess
            runs.append(run)
    runs.sort(key=lambda r: (-r.impact, _PRIORITY.get(r.dimension, 99)))
    kept: list[_Run] = []
    families: list[set[str]] = []
    folded: list[list[_Run]] = []
    for run in runs:
        if run.impact < min_impact:
            continue
        fam = METRICS[run.metric].family
        dup = False
        for k, other in enumerate(kept):
            if _overlap(run, other) <= 0.5:
                continue
            if fam in families[k]:
                # the same change seen in a narrower segment that explains most of it: say
                # where it happened (the provider, not "the platform"), keep the larger impact
                if (
                    run.share < other.share
                    and run.metric == other.metric
                    and np.sign(run.excess) == np.sign(other.excess)
                    and abs(run.excess) >= 0.6 * abs(other.excess)
                ):
                    run.impact = max(run.impact, other.impact)
                    kept[k] = run
                elif (
                    run.dimension not in _BROAD
                    and other.dimension in _BROAD
                    and run.metric != other.metric
                    and _overlap(run, other) >= 0.8
                ):
                    # a platform-wide symptom (span errors at the gateway) of a change that a
                    # narrower segment (one provider's calls) pins down: name the segment
                    run.impact = max(run.impact, other.impact)
                    kept[k] = run
                    folded[k].append(other)
                dup = True
                break
            if (other.dimension, other.value) == (run.dimension, run.value):
                # another symptom of the same segment at the same time: one finding. Spend
                # rising about as much as traffic is a traffic change, so traffic leads then.
                lead, side = other, run
                if (
                    METRICS[other.metric].family == "spend"
                    and fam == "traffic"
                    and other.severity + 1 < 1.5 * (run.severity + 1)
                ):
                    run.impact = max(run.impact, other.impact)
                    lead, side = run, other
                kept[k] = lead
                folded[k].append(side)
                families[k].add(fam)
                dup = True
                break
        if not dup:
            kept.append(run)
            families.append({fam})
            folded.append([])
    order = sorted(range(len(kept)), key=lambda k: -kept[k].impact)
    kept = [kept[k] for k in order]
    folded = [folded[k] for k in order]
    out: list[Insight] = []
    for k, run in enumerate(kept[: top if top else None]):
        rule = METRICS[run.metric]
        sentence = _sentence(run, rule, p1)
        related = [
            f"{METRICS[r.metric].label} {'rose' if r.observed >= r.baseline else 'fell'} to "
            f"{_fmt(METRICS[r.metric], r.observed)} from {_fmt(METRICS[r.metric], r.baseline)}"
            for r in folded[k]
        ]
        if related:
            sentence = sentence[:-1] + "; at the same time " + "; ".join(related[:2]) + "."
        dep = _deployment_before(deployments, run)
        if dep:
            sentence = sentence[:-1] + f", right after {dep}."
        out.append(
            Insight(
                sentence=sentence,
                impact=round(run.impact, 4),
                kind=rule.family,
                metric=run.metric,
                dimension=run.dimension,
                value=run.value,
                start=run.start,
                end=run.end,
                baseline=run.baseline,
                observed=run.observed,
                change=(run.observed / run.baseline - 1) if run.baseline else float("inf"),
                share=run.share,
                hours=run.hours,
                related=related,
                chart_builder=_chart_builder(run, rule),
            )
        )
    return out


def _overlap(a: _Run, b: _Run) -> float:
    inter = (min(a.end, b.end) - max(a.start, b.start)) / pd.Timedelta(hours=1)
    shorter = min(a.hours, b.hours) or 1
    return max(float(inter), 0.0) / shorter


def _deployment_before(deployments: pd.DataFrame | None, run: _Run) -> str | None:
    if (
        deployments is None
        or deployments.empty
        or METRICS[run.metric].family not in {"latency", "errors"}
    ):
        return None
    d = deployments.copy()
    d["ts"] = pd.to_datetime(d["ts"])
    near = d[
        (d["ts"] >= run.start - pd.Timedelta(hours=2))
        & (d["ts"] <= run.start + pd.Timedelta(hours=1))
    ]
    if run.dimension == "service":
        same = near[near["service"] == run.value]
        near = same if not same.empty else near
    if near.empty:
        return None
    row = near.sort_values("ts").iloc[-1]
    return f"the deployment of {row['service']} {row['version']} at {row['ts']:%Y-%m-%d %H:%M} UTC"


# -- warehouse loaders ------------------------------------------------------------------------
_INPUT_COLUMNS = (
    "ts",
    "provider",
    "model",
    "agent",
    "tenant",
    "region",
    "service",
    "status",
    "error_type",
    "latency_ms",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
)


def _tables(wh: Warehouse) -> set[str]:
    q = wh.query("SELECT table_name FROM information_schema.tables")
    return set(q["table_name"])


def default_period(
    warehouse: Warehouse | str | None = None, days: int = 7
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The last ``days`` whole days of data in ``llm_calls`` (end = day after the last call)."""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    row = wh.query("SELECT max(ts) AS hi FROM llm_calls")
    hi = row["hi"].iloc[0]
    if pd.isna(hi):
        raise SchemaError(f"warehouse {wh.path} has no llm_calls to scan")
    end = pd.Timestamp(hi).floor("D") + pd.Timedelta(days=1)
    return end - pd.Timedelta(days=days), end


def load_inputs(
    start: str | datetime,
    end: str | datetime,
    lookback_days: int = 14,
    warehouse: Warehouse | str | None = None,
) -> dict[str, pd.DataFrame | None]:
    """What :func:`find_insights` needs from the warehouse: calls, span aggregates, deployments."""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    lo = (pd.Timestamp(start) - pd.Timedelta(days=lookback_days)).to_pydatetime()
    hi = pd.Timestamp(end).to_pydatetime()
    tables = _tables(wh)
    cols = ", ".join(f'"{c}"' for c in _INPUT_COLUMNS)
    calls = wh.query(f"SELECT {cols} FROM llm_calls WHERE ts >= ? AND ts < ?", [lo, hi])
    spans: pd.DataFrame | None = None
    if "spans" in tables:
        agg = wh.query(
            "SELECT service AS value, date_trunc('hour', start_ts) AS ds, count(*) AS n, "
            "quantile_cont(duration_ms, 0.95) AS p95, "
            "avg(CASE WHEN status_code = 'error' THEN 1.0 ELSE 0.0 END) AS err "
            "FROM spans WHERE start_ts >= ? AND start_ts < ? AND parent_span_id IS NULL "
            "OR (start_ts >= ? AND start_ts < ? AND kind = 'server') GROUP BY ALL",
            [lo, hi, lo, hi],
        )
        if not agg.empty:
            agg["value"] = agg["value"].fillna("unknown").astype(str)
            spans = pd.concat(
                [
                    agg.assign(metric="span_p95_ms", dimension="service", y=agg["p95"]),
                    agg.assign(metric="span_error_rate", dimension="service", y=agg["err"]),
                ],
                ignore_index=True,
            )[["metric", "dimension", "value", "ds", "y", "n"]]
    deps = None
    if "deployments" in tables:
        deps = wh.query(
            "SELECT ts, service, version, region FROM deployments WHERE ts >= ? AND ts < ?",
            [lo, hi],
        )
    return {"calls": calls, "spans": spans, "deployments": deps}


def scan(
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    top: int | None = 10,
    warehouse: Warehouse | str | None = None,
    lookback_days: int = 14,
    **kwargs: Any,
) -> list[Insight]:
    """Scan the warehouse for the top findings of ``[start, end)`` (default: the last 7 days)."""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    if start is None or end is None:
        d0, d1 = default_period(wh)
        start = (
            start
            if start is not None
            else (pd.Timestamp(end) - pd.Timedelta(days=7) if end is not None else d0)
        )
        end = end if end is not None else d1
    inputs = load_inputs(start, end, lookback_days, wh)
    return find_insights(
        inputs["calls"],
        start,
        end,
        span_hourly=inputs["spans"],
        deployments=inputs["deployments"],
        top=top,
        **kwargs,
    )


def service_health(
    start: str | datetime,
    end: str | datetime,
    warehouse: Warehouse | str | None = None,
) -> pd.DataFrame:
    """Per service over ``[start, end)`` from spans: ``service, spans, requests`` (server or
    root spans), ``error_rate``, ``p50_ms``, ``p95_ms`` (of all its spans). Empty without spans."""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    cols = ["service", "spans", "requests", "error_rate", "p50_ms", "p95_ms"]
    if "spans" not in _tables(wh):
        return pd.DataFrame(columns=cols)
    return wh.query(
        "SELECT coalesce(service, 'unknown') AS service, count(*) AS spans, "
        "count(*) FILTER (WHERE kind = 'server' OR parent_span_id IS NULL) AS requests, "
        "avg(CASE WHEN status_code = 'error' THEN 1.0 ELSE 0.0 END) AS error_rate, "
        "quantile_cont(duration_ms, 0.5) AS p50_ms, quantile_cont(duration_ms, 0.95) AS p95_ms "
        "FROM spans WHERE start_ts >= ? AND start_ts < ? GROUP BY ALL ORDER BY spans DESC",
        [pd.Timestamp(start).to_pydatetime(), pd.Timestamp(end).to_pydatetime()],
    )


def open_alerts(warehouse: Warehouse | str | None = None) -> pd.DataFrame | None:
    """Alerts currently pending or firing (``alert_state``), or None when the table is absent."""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    if "alert_state" not in _tables(wh):
        return None
    return wh.query(
        "SELECT rule, state, severity, CAST(labels AS VARCHAR) AS labels, active_since, fired_at, "
        "last_value, threshold, summary FROM alert_state ORDER BY fired_at DESC NULLS LAST"
    )


def generate(
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    warehouse: Warehouse | str | None = None,
    top: int | None = 10,
    **kwargs: Any,
) -> list[Insight]:
    """Alias of :func:`scan` (the name the dashboards use)."""
    return scan(start=start, end=end, top=top, warehouse=warehouse, **kwargs)
