"""Rule evaluation, alert lifecycle, deduplication and grouping.

* Evaluation is over *data time*: a rule evaluated ``at`` T sees only the buckets (of its
  ``freq``) that are complete at T: with ``T' = floor(T, freq)``, windows are
  ``[T' - window, T')``. Nothing after T is read (causal), so replays are honest.
* Lifecycle (as Prometheus): a condition that starts holding makes a **pending** alert; once it
  has held for the rule's ``for`` duration (across evaluations, the state is persisted) it is
  **firing**; when it stops holding a firing alert is **resolved** (a pending one is
  **cancelled**; with ``keep_firing_for`` it stays firing that long after the condition last
  held, which stops flapping). Alerts of a rule that failed to evaluate keep their state.
* Deduplication: an alert's identity is its fingerprint, a hash of the rule name and its sorted
  labels, so repeated evaluations and duplicate series never make a second alert.
* Grouping: the route's ``group_by`` labels form the group key; one notification per group and
  status per evaluation (and a reminder every ``repeat_interval`` while a group keeps firing).

The :class:`Evaluator` takes its data through injected callables (a *series provider* with
the signature of :func:`lumina_analytics.series.load_series`, a forecast provider, a calls
provider for root-cause hints and an anomaly scorer) so it is testable without a warehouse.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, cast

import numpy as np
import pandas as pd

from lumina_analytics.alerts import rootcause
from lumina_analytics.alerts.rules import (
    AnomalyRule,
    BurnRateRule,
    ForecastBreachRule,
    RateOfChangeRule,
    RuleSet,
    ThresholdRule,
    format_duration,
)
from lumina_analytics.errors import LuminaError
from lumina_analytics.warehouse import Warehouse

__all__ = [
    "Alert",
    "AlertState",
    "EvaluationResult",
    "Evaluator",
    "Notification",
    "advance",
    "build_notifications",
    "default_series_provider",
    "fingerprint",
    "latest_data_time",
    "replay",
    "timeline",
]

SeriesProvider = Callable[..., pd.DataFrame]
#: ``(metric, at) -> forecasts rows`` (latest cutoff not after ``at`` per series and model).
ForecastProvider = Callable[[str, pd.Timestamp], pd.DataFrame]
#: ``(start, end, filters) -> llm_calls-shaped rows`` for root-cause hints.
CallsProvider = Callable[[pd.Timestamp, pd.Timestamp, Mapping[str, Sequence[str]]], pd.DataFrame]
Scorer = Callable[..., pd.DataFrame]

_SLOW_PREFIX = "slow_calls:"
_QUANTILE_PREFIX = "quantile:"
_RATIO_PREFIX = "ratio:"


# -- data classes ----------------------------------------------------------------------------
def fingerprint(rule: str, labels: Mapping[str, str]) -> str:
    """Stable identity of an alert: sha256 of the rule name and its sorted labels (16 hex)."""
    blob = json.dumps({"rule": rule, "labels": dict(sorted(labels.items()))}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def group_key(labels: Mapping[str, str], group_by: Sequence[str]) -> str:
    """Alertmanager-style group key: ``k=v`` of the ``group_by`` labels (``...`` = every label)."""
    keys = sorted(labels) if "..." in group_by else list(group_by)
    return ",".join(f"{k}={labels.get(k, '')}" for k in keys)


@dataclass(frozen=True)
class Alert:
    """A rule condition that holds for one series at one evaluation."""

    rule: str
    labels: dict[str, str]
    value: float
    threshold: float | None
    severity: str
    summary: str
    runbook: str
    filters: dict[str, list[str]] = field(default_factory=dict)  # narrows root-cause data
    window: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(minutes=5))  # for hints

    @property
    def fingerprint(self) -> str:
        """See :func:`fingerprint`."""
        return fingerprint(self.rule, self.labels)


@dataclass
class AlertState:
    """The persisted state of one active (pending or firing) alert; a row of ``alert_state``."""

    fingerprint: str
    rule: str
    labels: dict[str, str]
    state: str
    severity: str
    group_key: str
    active_since: pd.Timestamp
    fired_at: pd.Timestamp | None = None
    last_eval_ts: pd.Timestamp | None = None
    last_value: float | None = None
    threshold: float | None = None
    last_notified_at: pd.Timestamp | None = None
    summary: str = ""
    runbook: str = ""
    root_cause: list[dict[str, Any]] | None = None

    def history_row(self, state: str, at: pd.Timestamp) -> dict[str, Any]:
        """A row of ``alert_history`` recording a transition to ``state`` at ``at``."""
        return {
            "fingerprint": self.fingerprint,
            "rule": self.rule,
            "labels": dict(self.labels),
            "state": state,
            "severity": self.severity,
            "group_key": self.group_key,
            "eval_ts": at,
            "active_since": self.active_since,
            "value": self.last_value,
            "threshold": self.threshold,
            "summary": self.summary,
            "runbook": self.runbook,
            "root_cause": self.root_cause,
        }


@dataclass(frozen=True)
class Notification:
    """One grouped message: every alert of one group that fired (or resolved) at ``at``."""

    idempotency_key: str
    group_key: str
    status: str  # firing|resolved
    at: pd.Timestamp
    alerts: tuple[dict[str, Any], ...]

    def payload(self) -> dict[str, Any]:
        """The JSON-able body stored in the outbox (sinks render it their own way)."""
        return {
            "idempotency_key": self.idempotency_key,
            "group_key": self.group_key,
            "status": self.status,
            "at": self.at.isoformat(),
            "alerts": list(self.alerts),
        }


@dataclass
class EvaluationResult:
    """What one evaluation produced."""

    at: pd.Timestamp
    state: dict[str, AlertState]
    transitions: list[dict[str, Any]]
    notifications: list[Notification]
    active: list[Alert]
    errors: dict[str, str]

    def firing(self) -> list[AlertState]:
        """States currently firing."""
        return [s for s in self.state.values() if s.state == "firing"]

    def to_frame(self) -> pd.DataFrame:
        """Current state as a DataFrame (one row per active alert)."""
        rows = [asdict(s) for s in self.state.values()]
        return pd.DataFrame(rows, columns=[f for f in AlertState.__dataclass_fields__])


# -- lifecycle -------------------------------------------------------------------------------
def advance(
    previous: Mapping[str, AlertState],
    active: Iterable[Alert],
    rules: RuleSet,
    at: pd.Timestamp,
    failed_rules: Iterable[str] = (),
) -> tuple[dict[str, AlertState], list[dict[str, Any]]]:
    """Move every alert one evaluation forward; returns the new state and the transitions.

    Pure: ``previous`` is not modified. Duplicate alerts (same fingerprint) collapse into one.
    """
    failed = set(failed_rules)
    route = rules.route
    by_name = {r.name: r for r in rules.rules}
    new: dict[str, AlertState] = {}
    transitions: list[dict[str, Any]] = []
    seen: dict[str, Alert] = {}
    for a in active:
        seen.setdefault(a.fingerprint, a)
    for fp, a in seen.items():
        prev = previous.get(fp)
        if prev is None:
            st = AlertState(
                fingerprint=fp,
                rule=a.rule,
                labels=dict(a.labels),
                state="pending",
                severity=a.severity,
                group_key=group_key(a.labels, route.group_by),
                active_since=at,
            )
        else:
            st = replace(prev, labels=dict(prev.labels))
        st.last_eval_ts = at
        st.last_value = a.value
        st.threshold = a.threshold
        st.summary = a.summary
        st.runbook = a.runbook
        hold = by_name[a.rule].for_
        if st.state == "pending" and at - st.active_since >= hold:
            st.state = "firing"
            st.fired_at = at
            transitions.append(st.history_row("firing", at))
        elif prev is None:
            transitions.append(st.history_row("pending", at))
        new[fp] = st
    for fp, prev in previous.items():
        if fp in seen:
            continue
        if prev.rule in failed:
            new[fp] = prev  # could not evaluate: keep the alert as it was
            continue
        rule = by_name.get(prev.rule)
        last_held = prev.last_eval_ts if prev.last_eval_ts is not None else prev.active_since
        if prev.state == "firing" and rule is not None and at - last_held < rule.keep_firing_for:
            new[fp] = prev  # keep_firing_for: no flapping on a brief dip
            continue
        ended = replace(prev, last_eval_ts=at)
        transitions.append(
            ended.history_row("resolved" if prev.state == "firing" else "cancelled", at)
        )
    return new, transitions


def _alert_dict(st: AlertState, status: str) -> dict[str, Any]:
    return {
        "fingerprint": st.fingerprint,
        "rule": st.rule,
        "status": status,
        "severity": st.severity,
        "labels": dict(st.labels),
        "value": st.last_value,
        "threshold": st.threshold,
        "summary": st.summary,
        "runbook": st.runbook,
        "active_since": st.active_since.isoformat(),
        "fired_at": st.fired_at.isoformat() if st.fired_at is not None else None,
        "root_cause": st.root_cause,
    }


def build_notifications(
    previous: Mapping[str, AlertState],
    state: dict[str, AlertState],
    transitions: Sequence[Mapping[str, Any]],
    repeat_interval: pd.Timedelta,
    at: pd.Timestamp,
) -> list[Notification]:
    """Group firing and resolved transitions (and due reminders) into notifications.

    Marks ``last_notified_at`` on the firing states it includes (``state`` is updated in place).
    The idempotency key hashes the group, status, time and fingerprints, so re-running the same
    evaluation yields the same key and a sink never gets two different keys for one message.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    notified: list[str] = []
    for t in transitions:
        if t["state"] == "firing":
            st = state[t["fingerprint"]]
            groups.setdefault((st.group_key, "firing"), []).append(_alert_dict(st, "firing"))
            notified.append(st.fingerprint)
        elif t["state"] == "resolved":
            st = previous[t["fingerprint"]]
            item = _alert_dict(st, "resolved")
            item["resolved_at"] = at.isoformat()
            groups.setdefault((st.group_key, "resolved"), []).append(item)
    for st in state.values():
        if st.state != "firing" or st.fingerprint in notified or st.last_notified_at is None:
            continue
        if at - st.last_notified_at >= repeat_interval:
            item = _alert_dict(st, "firing")
            item["repeat"] = True
            groups.setdefault((st.group_key, "firing"), []).append(item)
            notified.append(st.fingerprint)
    for fp in notified:
        state[fp].last_notified_at = at
    out = []
    for (gkey, status), alerts in sorted(groups.items()):
        alerts.sort(key=lambda d: (d["rule"], d["fingerprint"]))
        blob = json.dumps([gkey, status, at.isoformat(), [a["fingerprint"] for a in alerts]])
        key = hashlib.sha256(blob.encode()).hexdigest()[:32]
        out.append(Notification(key, gkey, status, at, tuple(alerts)))
    return out


# -- providers -------------------------------------------------------------------------------
def _labels_of(unique_id: str, by: Sequence[str]) -> dict[str, str]:
    if not by:
        return {}
    parts = str(unique_id).split("/")
    if len(parts) == len(by):
        return dict(zip(by, parts, strict=True))
    return {"series": str(unique_id)}


#: ``llm_calls`` columns a ``quantile:<column>:<q>`` series may read.
QUANTILE_COLUMNS: tuple[str, ...] = ("latency_ms", "ttft_ms")
#: ``llm_calls`` columns a ``ratio:<numerator>:<denominator>`` series may read.
RATIO_COLUMNS: tuple[str, ...] = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
)


def _calls_series(
    agg_sql: str,
    agg_params: Sequence[Any],
    where: Sequence[str],
    where_params: Sequence[Any],
    fill_zero: bool,
    by: Sequence[str],
    freq: str,
    start: Any,
    end: Any,
    warehouse: Warehouse,
    filters: Mapping[str, Sequence[str]] | None,
) -> pd.DataFrame:
    """One aggregate of ``llm_calls`` per bucket and group, as a long ``unique_id, ds, y`` frame."""
    from lumina_analytics import series as series_mod

    width = series_mod.freq_to_timedelta(freq)
    cols = series_mod._check_by(list(by), filters)
    t0 = pd.Timestamp(start) if start is not None else None
    t1 = pd.Timestamp(end) if end is not None else None
    conds = list(where)
    params: list[Any] = list(where_params)
    if t0 is not None:
        conds.append("ts >= ?")
        params.append(t0.to_pydatetime())
    if t1 is not None:
        conds.append("ts < ?")
        params.append(t1.to_pydatetime())
    for col, values in (filters or {}).items():
        vals = [values] if isinstance(values, str) else [str(v) for v in values]
        conds.append(f'"{col}" IN ({", ".join("?" for _ in vals)})')
        params.extend(vals)
    gsel = "".join(f'"{c}", ' for c in cols)
    gby = "".join(f', "{c}"' for c in cols)
    sql = (
        f"SELECT {gsel}time_bucket(?, ts, ?) AS ds, {agg_sql} AS y FROM llm_calls "
        f"WHERE {' AND '.join(conds) or 'TRUE'} GROUP BY ds{gby} ORDER BY ALL"
    )
    raw = warehouse.query(sql, [width.to_pytimedelta(), datetime(1970, 1, 1), *agg_params, *params])
    agg = pd.DataFrame(
        {"unique_id": series_mod._join_ids(raw, cols), "ds": raw["ds"], "y": raw["y"]}
    )
    return series_mod._complete(agg, width, fill_zero, t0, t1)


def parse_ratio_metric(metric: str) -> tuple[str, str]:
    """``ratio:<num>:<den>`` -> (num, den): sum(num) / sum(den) per bucket, e.g.
    ``ratio:cache_read_tokens:input_tokens`` (the prompt-cache hit ratio)."""
    parts = metric[len(_RATIO_PREFIX) :].split(":")
    if len(parts) != 2 or not all(p in RATIO_COLUMNS for p in parts):
        raise LuminaError(
            f"metric {metric!r}: use ratio:<numerator>:<denominator> with columns in "
            f"{list(RATIO_COLUMNS)}, e.g. ratio:cache_read_tokens:input_tokens"
        )
    return parts[0], parts[1]


def parse_quantile_metric(metric: str) -> tuple[str, float]:
    """``quantile:<column>:<q>`` -> (column, q), e.g. ``quantile:ttft_ms:0.5`` (median TTFT)."""
    parts = metric[len(_QUANTILE_PREFIX) :].split(":")
    if len(parts) != 2 or parts[0] not in QUANTILE_COLUMNS:
        raise LuminaError(
            f"metric {metric!r}: use quantile:<column>:<q> with a column in "
            f"{list(QUANTILE_COLUMNS)}, e.g. quantile:ttft_ms:0.5"
        )
    try:
        q = float(parts[1])
    except ValueError:
        q = -1.0
    if not 0.0 <= q <= 1.0:
        raise LuminaError(f"metric {metric!r}: the quantile must be a number in [0, 1]")
    return parts[0], q


def default_series_provider(
    warehouse: Warehouse | str | os.PathLike[str] | None = None,
) -> SeriesProvider:
    """A provider backed by :func:`lumina_analytics.series.load_series` on ``warehouse``.

    Adds ``slow_calls:<ms>`` (calls slower than that many milliseconds) for latency SLOs and
    ``quantile:<column>:<q>`` (a quantile of ``latency_ms`` or ``ttft_ms`` per bucket, e.g.
    ``quantile:ttft_ms:0.5``, the median time to first token) and ``ratio:<num>:<den>`` (a
    ratio of two column sums per bucket, e.g. ``ratio:cache_read_tokens:input_tokens``).
    """
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)

    def provide(
        metric: str,
        by: Sequence[str] = (),
        freq: str = "1h",
        start: Any = None,
        end: Any = None,
        filters: Mapping[str, Sequence[str]] | None = None,
    ) -> pd.DataFrame:
        if metric.startswith(_SLOW_PREFIX):
            ms = float(metric[len(_SLOW_PREFIX) :])
            return _calls_series(
                "count(*)", [], ["latency_ms > ?"], [ms], True, by, freq, start, end, wh, filters
            )
        if metric.startswith(_QUANTILE_PREFIX):
            col, q = parse_quantile_metric(metric)
            return _calls_series(
                f'quantile_cont("{col}", ?)', [q], [], [], False, by, freq, start, end, wh, filters
            )
        if metric.startswith(_RATIO_PREFIX):
            num, den = parse_ratio_metric(metric)
            agg = f'sum(coalesce("{num}", 0)) / nullif(sum(coalesce("{den}", 0)), 0)'
            return _calls_series(agg, [], [], [], False, by, freq, start, end, wh, filters)
        from lumina_analytics.series import load_series

        return load_series(
            metric, by=by, freq=freq, start=start, end=end, warehouse=wh, filters=filters
        )

    return provide


def _table_exists(wh: Warehouse, table: str) -> bool:
    got = wh.query(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = ?", [table]
    )
    return bool(int(got["n"].iloc[0]))


_FORECAST_COLS = [
    "unique_id",
    "ds",
    "yhat",
    "yhat_lower",
    "yhat_upper",
    "model",
    "cutoff",
    "metric",
]


def latest_forecasts(forecasts: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    """Rows of the latest forecast (per ``unique_id`` and ``model``) whose cutoff is <= ``at``."""
    if forecasts.empty:
        return forecasts
    f = forecasts[pd.to_datetime(forecasts["cutoff"]) <= at]
    if f.empty:
        return f
    latest = f.groupby(["unique_id", "model"])["cutoff"].transform("max")
    return f[f["cutoff"] == latest].sort_values(["unique_id", "ds"]).reset_index(drop=True)


def default_forecast_provider(
    warehouse: Warehouse | str | os.PathLike[str] | None = None,
) -> ForecastProvider:
    """Latest ``forecasts`` rows (per series and model, cutoff not after ``at``) of a metric.

    Reads each metric's forecasts once per provider (the table is small) and picks the latest
    cutoff in memory, so a replay does not query the warehouse at every step.
    """
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    cache: dict[str, pd.DataFrame] = {}

    def provide(metric: str, at: pd.Timestamp) -> pd.DataFrame:
        if metric not in cache:
            if not _table_exists(wh, "forecasts"):
                cache[metric] = pd.DataFrame({c: [] for c in _FORECAST_COLS})
            else:
                cache[metric] = wh.query(
                    f"SELECT {', '.join(_FORECAST_COLS)} FROM forecasts "
                    "WHERE metric = ? OR metric IS NULL ORDER BY unique_id, ds",
                    [metric],
                )
        return latest_forecasts(cache[metric], at)

    return provide


def default_calls_provider(
    warehouse: Warehouse | str | os.PathLike[str] | None = None,
) -> CallsProvider:
    """``llm_calls`` rows for root-cause hints (see :func:`rootcause.load_calls`)."""

    def provide(
        start: pd.Timestamp, end: pd.Timestamp, filters: Mapping[str, Sequence[str]]
    ) -> pd.DataFrame:
        return rootcause.load_calls(start, end, filters, warehouse)

    return provide


def _default_scorer(frame: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
    from lumina_analytics import anomaly  # type: ignore[attr-defined,unused-ignore]

    result: pd.DataFrame = anomaly.score_frame(frame, **kwargs)
    return result


def latest_data_time(
    warehouse: Warehouse | str | os.PathLike[str] | None = None, step: str = "5min"
) -> pd.Timestamp:
    """The default evaluation time: the end of the bucket holding the newest ``llm_calls`` row.

    (For a demo warehouse "now" is when its data ends, not the wall clock.)
    """
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    got = wh.query("SELECT max(ts) AS t FROM llm_calls")
    t = got["t"].iloc[0]
    if t is None or pd.isna(t):
        raise LuminaError(
            f"warehouse {wh.path} has no llm_calls rows; load telemetry first or pass --at TIME"
        )
    width = pd.Timedelta(step)
    return pd.Timestamp(t).floor(width) + width


class _CachedProvider:
    """Loads each (metric, by, freq, filters) once over a fixed range and slices it (replay)."""

    def __init__(self, inner: SeriesProvider, start: pd.Timestamp, end: pd.Timestamp) -> None:
        self.inner = inner
        self.start = start
        self.end = end
        self.cache: dict[Any, pd.DataFrame] = {}

    def __call__(
        self,
        metric: str,
        by: Sequence[str] = (),
        freq: str = "1h",
        start: Any = None,
        end: Any = None,
        filters: Mapping[str, Sequence[str]] | None = None,
    ) -> pd.DataFrame:
        fkey = tuple(sorted((k, tuple(v)) for k, v in (filters or {}).items()))
        key = (metric, tuple(by), freq, fkey)
        if key not in self.cache:
            width = pd.Timedelta(freq)
            self.cache[key] = self.inner(
                metric,
                by=list(by),
                freq=freq,
                start=self.start.floor(width),
                end=self.end,
                filters=dict(filters) if filters else None,
            )
        frame = self.cache[key]
        mask = pd.Series(True, index=frame.index)
        if start is not None:
            mask &= frame["ds"] >= pd.Timestamp(start)
        if end is not None:
            mask &= frame["ds"] < pd.Timestamp(end)
        return frame.loc[mask]


class _CachedCalls:
    """Loads llm_calls once for a replay and filters/slices them in memory."""

    def __init__(self, inner: CallsProvider, start: pd.Timestamp, end: pd.Timestamp) -> None:
        self.inner, self.start, self.end = inner, start, end
        self.frame: pd.DataFrame | None = None

    def __call__(
        self, start: pd.Timestamp, end: pd.Timestamp, filters: Mapping[str, Sequence[str]]
    ) -> pd.DataFrame:
        if self.frame is None:
            self.frame = self.inner(self.start, self.end, {})
            if not self.frame.empty:
                self.frame = self.frame.assign(ts=pd.to_datetime(self.frame["ts"]))
        f = self.frame
        if f.empty:
            return f
        mask = (f["ts"] >= start) & (f["ts"] < end)
        for col, vals in filters.items():
            if col in f.columns:
                mask &= f[col].astype(object).isin(list(vals))
        return f.loc[mask]


# -- evaluation ------------------------------------------------------------------------------
def _freq_str(td: pd.Timedelta) -> str:
    return f"{int(td.total_seconds())}s"


class _SafeDict(dict[str, str]):
    """``str.format_map`` helper: unknown ``{names}`` stay as they are."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fmt(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:.4g}"


_OP_FRAME: dict[str, Callable[[Any, float], Any]] = {
    ">": lambda x, v: x > v,
    ">=": lambda x, v: x >= v,
    "<": lambda x, v: x < v,
    "<=": lambda x, v: x <= v,
}
_COND_COLS = ["unique_id", "t", "value", "threshold", "severity", "note"]


def _empty_conditions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id": pd.Series([], dtype=object),
            "t": pd.Series([], dtype="datetime64[ns]"),
            "value": pd.Series([], dtype="float64"),
            "threshold": pd.Series([], dtype="float64"),
            "severity": pd.Series([], dtype=object),
            "note": pd.Series([], dtype=object),
        }
    )


class Evaluator:
    """Evaluates a :class:`RuleSet` at given times over injected data providers."""

    def __init__(
        self,
        rules: RuleSet,
        series_provider: SeriesProvider | None = None,
        forecast_provider: ForecastProvider | None = None,
        calls_provider: CallsProvider | None = None,
        scorer: Scorer | None = None,
        warehouse: Warehouse | str | os.PathLike[str] | None = None,
        root_cause: bool = True,
    ) -> None:
        self.rules = rules
        self.series_provider = series_provider or default_series_provider(warehouse)
        self.forecast_provider = forecast_provider or default_forecast_provider(warehouse)
        self.calls_provider = calls_provider or default_calls_provider(warehouse)
        self.scorer = scorer or _default_scorer
        self.root_cause = root_cause
        # replay: conditions of each rule over the whole period, grouped by evaluation time
        self._replay_range: tuple[pd.Timestamp, pd.Timestamp] | None = None
        self._replay_cache: dict[str, dict[pd.Timestamp, list[dict[str, Any]]]] = {}

    # each kind -> a frame of conditions over many evaluation times -----------------------
    def conditions(self, rule: Any, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Where ``rule`` holds at every evaluation time ``t`` in ``[start, end]`` on its grid.

        Evaluation times are multiples of ``rule.freq``; at ``t`` the rule sees the complete
        buckets ``ds < t`` only. Returns rows ``unique_id, t, value, threshold, severity, note``
        for the (series, time) pairs where the condition holds (vectorised over times, so a
        replay computes each rule once).
        """
        f = rule.freq
        t0, t1 = start.floor(f), end.floor(f)
        if isinstance(rule, ThresholdRule):
            out = self._threshold(rule, t0, t1)
        elif isinstance(rule, RateOfChangeRule):
            out = self._rate_of_change(rule, t0, t1)
        elif isinstance(rule, BurnRateRule):
            out = self._burn_rate(rule, t0, t1)
        elif isinstance(rule, AnomalyRule):
            out = self._anomaly(rule, t0, t1)
        elif isinstance(rule, ForecastBreachRule):
            out = self._forecast(rule, t0, t1)
        else:
            raise LuminaError(f"unknown rule type {type(rule).__name__}")
        return out.reset_index(drop=True) if not out.empty else _empty_conditions()

    def active(self, rule: Any, at: pd.Timestamp) -> list[Alert]:
        """Alerts whose condition holds at ``at`` for one rule (no lifecycle).

        ``at`` is floored to the rule's ``freq``: a rule sees complete buckets only.
        """
        at_r = pd.Timestamp(at).floor(rule.freq)
        if self._replay_range is not None:
            if rule.name not in self._replay_cache:
                lo, hi = self._replay_range
                cond = self.conditions(rule, lo, hi)
                by_t: dict[pd.Timestamp, list[dict[str, Any]]] = {}
                for r in cond.to_dict("records"):
                    by_t.setdefault(pd.Timestamp(r["t"]), []).append(
                        {str(k): x for k, x in r.items()}
                    )
                self._replay_cache[rule.name] = by_t
            rows = self._replay_cache[rule.name].get(at_r, [])
        else:
            cond = self.conditions(rule, at_r, at_r)
            rows = [
                {str(k): x for k, x in r.items()}
                for r in cond[cond["t"] == at_r].to_dict("records")
            ]
        return [self._alert(rule, r) for r in rows]

    def _wide(
        self, rule: Any, metric: str, t0: pd.Timestamp, t1: pd.Timestamp, back: pd.Timedelta
    ) -> pd.DataFrame:
        """``metric`` as a (bucket start x unique_id) matrix on a regular grid."""
        f = rule.freq
        lo = (t0 - back).floor(f)
        frame = self.series_provider(
            metric,
            by=list(rule.by),
            freq=_freq_str(f),
            start=lo,
            end=t1,
            filters=dict(rule.filters) or None,
        )
        grid = pd.date_range(lo, t1 - f, freq=f) if t1 > lo else pd.DatetimeIndex([])
        if frame.empty:
            return pd.DataFrame(index=grid, dtype="float64")
        frame = frame.assign(
            ds=pd.to_datetime(frame["ds"]), unique_id=frame["unique_id"].astype(str)
        )
        frame = frame[(frame["ds"] >= lo) & (frame["ds"] < t1)]
        wide = frame.pivot_table(
            index="ds", columns="unique_id", values="y", aggfunc="mean", dropna=False
        )
        return wide.reindex(grid).astype("float64")

    @staticmethod
    def _rolling(wide: pd.DataFrame, n: int, how: str) -> pd.DataFrame:
        if how == "last":
            return wide.ffill(limit=max(n - 1, 0)) if n > 1 else wide
        roll = wide.rolling(n, min_periods=1)
        return cast(pd.DataFrame, getattr(roll, how)())

    @staticmethod
    def _long(
        values: pd.DataFrame,
        mask: pd.DataFrame,
        f: pd.Timedelta,
        t0: pd.Timestamp,
        t1: pd.Timestamp,
        **cols: Any,
    ) -> pd.DataFrame:
        """Stack a (bucket x series) matrix where ``mask`` holds into condition rows at t = ds + f."""
        if values.empty:
            return _empty_conditions()
        buckets = pd.DatetimeIndex(values.index)
        times = buckets + f
        sel = np.asarray((times >= t0) & (times <= t1))
        v = values.loc[sel]
        keep_frame = mask.reindex(index=buckets[sel], columns=v.columns)
        keep: np.ndarray[Any, Any] = keep_frame.fillna(False).astype(bool).to_numpy()
        st = pd.DataFrame(
            {
                "t": np.repeat(times[sel].to_numpy(), v.shape[1]),
                "unique_id": np.tile(v.columns.astype(str).to_numpy(), v.shape[0]),
                "value": v.to_numpy().ravel(),
                "_keep": keep.ravel(),
            }
        )
        st = st[st["_keep"]].drop(columns="_keep").reset_index(drop=True)
        for k, c in cols.items():
            st[k] = c
        return st

    def _window_values(
        self, rule: Any, t0: pd.Timestamp, t1: pd.Timestamp, back: pd.Timedelta, n: int
    ) -> pd.DataFrame:
        """The rule's aggregate over ``n`` buckets; ``error_rate`` is errors / requests of the
        window (weighted by calls, so a quiet bucket with one failed call does not dominate)."""
        if rule.metric == "error_rate":
            errors = self._wide(rule, "errors", t0, t1, back)
            req = self._wide(rule, "requests", t0, t1, back).reindex(columns=errors.columns)
            e_sum = errors.fillna(0.0).rolling(n, min_periods=1).sum()
            r_sum = req.fillna(0.0).rolling(n, min_periods=1).sum()
            return e_sum / r_sum.where(r_sum > 0)
        return self._rolling(self._wide(rule, rule.metric, t0, t1, back), n, rule.agg)

    def _requests_ok(
        self,
        rule: Any,
        t0: pd.Timestamp,
        t1: pd.Timestamp,
        back: pd.Timedelta,
        n: int,
        like: pd.DataFrame,
    ) -> pd.DataFrame:
        if getattr(rule, "min_requests", 0) <= 0 or rule.metric.startswith("metric:"):
            return pd.DataFrame(True, index=like.index, columns=like.columns)
        req = self._wide(rule, "requests", t0, t1, back).reindex(
            index=like.index, columns=like.columns
        )
        return req.fillna(0.0).rolling(n, min_periods=1).sum() >= rule.min_requests

    def _threshold(self, rule: ThresholdRule, t0: pd.Timestamp, t1: pd.Timestamp) -> pd.DataFrame:
        assert rule.window is not None
        n = int(rule.window / rule.freq)
        agg = self._window_values(rule, t0, t1, rule.window, n)
        mask = _OP_FRAME[rule.op](agg, rule.value) & self._requests_ok(
            rule, t0, t1, rule.window, n, agg
        )
        note = f"{rule.metric} {rule.agg} over {format_duration(rule.window)} is {{value}} ({rule.op} {_fmt(rule.value)})"
        return self._long(
            agg, mask, rule.freq, t0, t1, threshold=rule.value, severity=rule.severity, note=note
        )

    def _rate_of_change(
        self, rule: RateOfChangeRule, t0: pd.Timestamp, t1: pd.Timestamp
    ) -> pd.DataFrame:
        assert rule.offset is not None
        n = int(rule.window / rule.freq)
        k = int(rule.offset / rule.freq)
        back = rule.window + rule.offset * rule.periods
        cur = self._window_values(rule, t0, t1, back, n)
        if rule.periods == 1:
            base = cur.shift(k)
        else:  # median of the same window 1..periods offsets back (those with data)
            stack = np.stack([cur.shift(k * i).to_numpy() for i in range(1, rule.periods + 1)])
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN early rows
                med = np.nanmedian(stack, axis=0)
            base = pd.DataFrame(med, index=cur.index, columns=cur.columns)
        if rule.change == "pct":
            change = (cur - base) / base.abs().where(base != 0) * 100.0
        else:
            change = cur - base
        mask = _OP_FRAME[rule.op](change, rule.value) & (base.abs() > rule.min_baseline)
        mask &= self._requests_ok(rule, t0, t1, back, n, cur)
        unit = "%" if rule.change == "pct" else ""
        ago = format_duration(rule.offset)
        if rule.periods > 1:
            ago = f"the median of the same window {ago} to {format_duration(rule.offset * rule.periods)}"
        note = f"{rule.metric} changed {{value}}{unit} over {format_duration(rule.window)} vs {ago} earlier"
        return self._long(
            change, mask, rule.freq, t0, t1, threshold=rule.value, severity=rule.severity, note=note
        )

    def _burn_rate(self, rule: BurnRateRule, t0: pd.Timestamp, t1: pd.Timestamp) -> pd.DataFrame:
        longest = max(w.long for w in rule.windows)
        if rule.sli == "error_ratio":
            bad = self._wide(rule, "errors", t0, t1, longest)
        else:
            bad = self._wide(rule, f"{_SLOW_PREFIX}{rule.latency_threshold_ms:g}", t0, t1, longest)
        total = self._wide(rule, "requests", t0, t1, longest)
        cols = total.columns.union(bad.columns)
        total = total.reindex(columns=cols).fillna(0.0)
        bad = bad.reindex(index=total.index, columns=cols).fillna(0.0)
        budget = 1.0 - rule.objective
        floor_n = max(rule.min_requests, 1)

        def burn(window: pd.Timedelta, least: int) -> pd.DataFrame:
            n = int(window / rule.freq)
            tot = total.rolling(n, min_periods=1).sum()
            rate = bad.rolling(n, min_periods=1).sum() / tot.where(tot >= least)
            return (rate / budget).fillna(0.0)

        parts = []
        for sev in sorted({w.severity for w in rule.windows}):
            # the tripped pair with the highest factor speaks for the severity
            value = pd.DataFrame(float("nan"), index=total.index, columns=cols)
            factor = pd.DataFrame(float("nan"), index=total.index, columns=cols)
            note = pd.DataFrame("", index=total.index, columns=cols, dtype=object)
            for w in sorted((w for w in rule.windows if w.severity == sev), key=lambda w: w.factor):
                lb, sb = burn(w.long, floor_n), burn(w.short, 1)
                hit = (lb > w.factor) & (sb > w.factor)
                value = value.mask(hit, lb)
                factor = factor.mask(hit, w.factor)
                note = note.mask(
                    hit, f"{format_duration(w.long)}/{format_duration(w.short)} > {w.factor:g}"
                )
            mask = value.notna()
            long_v = self._long(value, mask, rule.freq, t0, t1, severity=sev)
            if long_v.empty:
                continue
            fac = self._long(factor, mask, rule.freq, t0, t1)
            nts = self._long(note, mask, rule.freq, t0, t1)
            long_v["threshold"] = fac["value"].to_numpy(dtype=float)
            long_v["note"] = [
                f"{rule.sli} SLO {rule.objective:.4%}: burn rate {{value}} over {w}"
                for w in nts["value"]
            ]
            parts.append(long_v)
        return pd.concat(parts, ignore_index=True) if parts else _empty_conditions()

    def _anomaly(self, rule: AnomalyRule, t0: pd.Timestamp, t1: pd.Timestamp) -> pd.DataFrame:
        kwargs: dict[str, Any] = {"detector": rule.detector}
        if rule.sensitivity is not None:
            kwargs["sensitivity"] = rule.sensitivity
        wide = self._wide(rule, rule.metric, t0, t1, rule.lookback())
        if wide.empty:
            return _empty_conditions()
        frame = pd.DataFrame(
            {
                "ds": np.repeat(wide.index.to_numpy(), wide.shape[1]),
                "unique_id": np.tile(wide.columns.astype(str).to_numpy(), wide.shape[0]),
                "y": wide.to_numpy(dtype=float).ravel(),
            }
        ).dropna(subset=["y"])
        if frame.empty:
            return _empty_conditions()
        # the detector is causal, so one pass over the whole range scores every step
        scored = self.scorer(frame[["unique_id", "ds", "y"]], **kwargs)
        if scored.empty:
            return _empty_conditions()
        scored = scored.assign(
            ds=pd.to_datetime(scored["ds"]), unique_id=scored["unique_id"].astype(str)
        )
        hit = scored["is_anomaly"].astype(bool)
        if rule.min_score is not None:
            hit &= scored["score"] >= rule.min_score
        out = scored.loc[hit, ["unique_id", "ds", "score"]].rename(columns={"score": "value"})
        out["t"] = out["ds"] + rule.freq
        out = out[(out["t"] >= t0) & (out["t"] <= t1)].drop(columns="ds")
        out["threshold"] = rule.min_score
        out["severity"] = rule.severity
        out["note"] = f"{rule.metric} is anomalous (score {{value}}, detector {rule.detector})"
        return out

    def _forecast(
        self, rule: ForecastBreachRule, t0: pd.Timestamp, t1: pd.Timestamp
    ) -> pd.DataFrame:
        times = pd.date_range(t0, t1, freq=rule.freq)
        actual = (
            self._wide(rule, rule.metric, t0, t1, rule.freq) if rule.mode == "interval" else None
        )
        rows: list[dict[str, Any]] = []
        for at in times:
            fc = self.forecast_provider(rule.metric, at)
            if fc is None or fc.empty:
                continue
            fc = fc.assign(ds=pd.to_datetime(fc["ds"]), unique_id=fc["unique_id"].astype(str))
            if rule.model is not None:
                fc = fc[fc["model"] == rule.model]
            if rule.mode == "threshold":
                assert rule.value is not None
                ahead = fc[(fc["ds"] >= at) & (fc["ds"] < at + rule.horizon)]
                ahead = ahead[_OP_FRAME[rule.op](ahead[rule.field].astype(float), rule.value)]
                for uid, g in ahead.sort_values("ds").groupby("unique_id", sort=True):
                    first = g.iloc[0]
                    note = f"forecast {rule.field} of {rule.metric} reaches {{value}} ({rule.op} {_fmt(rule.value)}) at {first['ds']:%Y-%m-%d %H:%M}"
                    rows.append(
                        {
                            "unique_id": str(uid),
                            "t": at,
                            "value": float(first[rule.field]),
                            "threshold": rule.value,
                            "severity": rule.severity,
                            "note": note,
                        }
                    )
                continue
            assert actual is not None
            last = at - rule.freq
            if last not in actual.index:
                continue
            y_last = cast(pd.Series, actual.loc[last]).dropna()
            for uid, y in y_last.items():
                match = fc[(fc["unique_id"] == str(uid)) & (fc["ds"] == last)]
                if match.empty:
                    continue
                lo, hi = float(match["yhat_lower"].iloc[0]), float(match["yhat_upper"].iloc[0])
                above = rule.direction in ("above", "both") and y > hi
                below = rule.direction in ("below", "both") and y < lo
                if above or below:
                    note = f"{rule.metric} {{value}} is {'above' if above else 'below'} the forecast interval [{_fmt(lo)}, {_fmt(hi)}]"
                    rows.append(
                        {
                            "unique_id": str(uid),
                            "t": at,
                            "value": float(y),
                            "threshold": hi if above else lo,
                            "severity": rule.severity,
                            "note": note,
                        }
                    )
        return pd.DataFrame(rows) if rows else _empty_conditions()

    def _alert(self, rule: Any, row: Mapping[str, Any]) -> Alert:
        uid = str(row["unique_id"])
        value = float(row["value"])
        threshold = row.get("threshold")
        threshold = None if threshold is None or pd.isna(threshold) else float(threshold)
        series_labels = _labels_of(uid, rule.by)
        sev = str(row.get("severity") or rule.severity)
        labels = {**rule.labels, **series_labels, "alertname": rule.name, "severity": sev}
        if rule.summary:
            text = rule.summary.format_map(_SafeDict(labels, value=_fmt(value)))
        else:
            text = str(row.get("note") or "").replace("{value}", _fmt(value))
        filters = {k: list(v) for k, v in rule.filters.items()}
        for k, v in series_labels.items():
            if k != "series":
                filters[k] = [v]
        window = getattr(rule, "window", None) or rule.freq
        if isinstance(rule, BurnRateRule):
            window = min(w.short for w in rule.windows)
        return Alert(
            rule=rule.name,
            labels=labels,
            value=value,
            threshold=threshold,
            severity=sev,
            summary=text,
            runbook=rule.runbook,
            filters=filters,
            window=window,
        )

    # root cause ---------------------------------------------------------------------------
    def _root_cause(self, rule: Any, alert: Alert, at: pd.Timestamp) -> list[dict[str, Any]] | None:
        measure = rule.rootcause.measure or (
            "slow"
            if isinstance(rule, BurnRateRule) and rule.sli == "latency_ratio"
            else "errors"
            if isinstance(rule, BurnRateRule)
            else rootcause.measure_for_metric(rule.metric)
        )
        if not self.root_cause or not rule.rootcause.enabled or measure is None:
            return None
        if rule.metric.startswith("metric:"):
            return None
        a0 = at - alert.window
        b0 = a0 - rule.rootcause.baseline
        try:
            calls = self.calls_provider(b0, at, alert.filters)
            slow_ms = (
                rule.latency_threshold_ms
                if isinstance(rule, BurnRateRule) and rule.sli == "latency_ratio"
                else None
            )
            contrib = rootcause.attribute(
                calls,
                a0,
                at,
                b0,
                a0,
                measure=measure,
                dimensions=rule.rootcause.dimensions,
                slow_ms=slow_ms,
                slow_quantile=rule.rootcause.slow_quantile,
            )
        except (LuminaError, KeyError, ValueError) as exc:
            return [{"error": str(exc)}]
        # a dimension pinned by the alert's own labels/filters explains nothing new
        pinned = set(alert.filters)
        contrib = contrib[~contrib["dimension"].isin(pinned)]
        return rootcause.hint(contrib)

    def explain(
        self, rule_name: str, labels: Mapping[str, Any], at: datetime | pd.Timestamp | str
    ) -> list[dict[str, Any]] | None:
        """The root-cause hint an alert of ``rule_name`` with ``labels`` gets when firing at ``at``.

        The same hint :meth:`evaluate` attaches, computed on demand (e.g. after a replay run
        with ``root_cause=False``, only for the alerts one wants explained).
        """
        rule = self.rules.get(rule_name)
        uid = "/".join(str(labels.get(b, "")) for b in rule.by) if rule.by else "all"
        alert = self._alert(rule, {"unique_id": uid, "value": 0.0})
        at_ts = pd.Timestamp(at)
        if at_ts.tzinfo is not None:
            at_ts = at_ts.tz_convert("UTC").tz_localize(None)
        return self._root_cause(rule, alert, at_ts)

    # one evaluation -----------------------------------------------------------------------
    def evaluate(
        self, at: datetime | pd.Timestamp | str, previous: Mapping[str, AlertState] | None = None
    ) -> EvaluationResult:
        """Evaluate every enabled rule at ``at`` and advance the lifecycle from ``previous``."""
        at_ts = pd.Timestamp(at)
        if at_ts.tzinfo is not None:
            at_ts = at_ts.tz_convert("UTC").tz_localize(None)
        previous = dict(previous or {})
        active: list[Alert] = []
        errors: dict[str, str] = {}
        for rule in self.rules.enabled():
            try:
                active.extend(self.active(rule, at_ts))
            except (LuminaError, KeyError, ValueError, ImportError) as exc:
                errors[rule.name] = f"{type(exc).__name__}: {exc}"
        # a disabled rule's alerts keep their state (it is not evaluated)
        skipped = [r.name for r in self.rules.rules if not r.enabled]
        state, transitions = advance(previous, active, self.rules, at_ts, [*errors, *skipped])
        by_name = {r.name: r for r in self.rules.rules}
        by_fp = {a.fingerprint: a for a in active}
        for t in transitions:
            if t["state"] == "firing":
                st = state[t["fingerprint"]]
                st.root_cause = self._root_cause(by_name[st.rule], by_fp[st.fingerprint], at_ts)
                t["root_cause"] = st.root_cause
        notes = build_notifications(
            previous, state, transitions, self.rules.route.repeat_interval, at_ts
        )
        return EvaluationResult(at_ts, state, transitions, notes, active, errors)


# -- replay and timeline ---------------------------------------------------------------------
def replay(
    evaluator: Evaluator,
    start: datetime | pd.Timestamp | str,
    end: datetime | pd.Timestamp | str,
    step: str | pd.Timedelta = "5min",
    previous: Mapping[str, AlertState] | None = None,
) -> tuple[pd.DataFrame, list[Notification]]:
    """Evaluate at every ``step`` in ``[start, end]`` with in-memory state.

    Each rule's conditions are computed once for the whole period (vectorised over evaluation
    times), and series and calls are loaded once and sliced, so a week at 5-minute steps is
    quick. Returns the transitions (``alert_history``-shaped) and the
    notifications that would have been sent.
    """
    t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    width = pd.Timedelta(step)
    if width <= pd.Timedelta(0):
        raise LuminaError(f"replay step must be positive, got {step!r}")
    if t1 < t0:
        raise LuminaError(f"replay end {t1} is before start {t0}")
    lookback = max((r.lookback() for r in evaluator.rules.enabled()), default=pd.Timedelta(0))
    longest = max(
        (r.freq + r.lookback() + r.rootcause.baseline for r in evaluator.rules.enabled()),
        default=pd.Timedelta(0),
    )
    original, original_calls = evaluator.series_provider, evaluator.calls_provider
    margin = max((r.freq for r in evaluator.rules.enabled()), default=width) + width
    evaluator.series_provider = _CachedProvider(original, t0 - lookback - margin, t1)
    evaluator.calls_provider = _CachedCalls(original_calls, t0 - longest, t1)
    evaluator._replay_range, evaluator._replay_cache = (t0, t1), {}
    rows: list[dict[str, Any]] = []
    notes: list[Notification] = []
    state = dict(previous or {})
    try:
        for at in pd.date_range(t0, t1, freq=width):
            res = evaluator.evaluate(at, state)
            state = res.state
            rows.extend(res.transitions)
            notes.extend(res.notifications)
    finally:
        evaluator.series_provider, evaluator.calls_provider = original, original_calls
        evaluator._replay_range, evaluator._replay_cache = None, {}
    return history_frame(rows), notes


_HISTORY_COLS = [
    "fingerprint",
    "rule",
    "labels",
    "state",
    "severity",
    "group_key",
    "eval_ts",
    "active_since",
    "value",
    "threshold",
    "summary",
    "runbook",
    "root_cause",
]


def history_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Transitions as a DataFrame with the ``alert_history`` columns (labels as dicts)."""
    frame = pd.DataFrame(list(rows), columns=_HISTORY_COLS)
    for c in ("eval_ts", "active_since"):
        frame[c] = pd.to_datetime(frame[c])
    return frame


def timeline(history: pd.DataFrame, end: datetime | pd.Timestamp | None = None) -> pd.DataFrame:
    """Intervals per alert and phase (``pending``/``firing``) from transitions, for a Gantt chart.

    Columns ``fingerprint, rule, labels, severity, phase, start, end, open`` (``open``: still
    ongoing at ``end``, which defaults to the last transition time).
    """
    cols = ["fingerprint", "rule", "labels", "severity", "phase", "start", "end", "open"]
    if history.empty:
        return pd.DataFrame({c: [] for c in cols})
    h = history.sort_values(["fingerprint", "eval_ts"], kind="stable")
    horizon = pd.Timestamp(end) if end is not None else pd.Timestamp(h["eval_ts"].max())
    out: list[dict[str, Any]] = []
    for fp, g in h.groupby("fingerprint", sort=False):
        phase: str | None = None
        since: pd.Timestamp | None = None
        meta: dict[str, Any] = {}
        row: Any
        for row in g.itertuples(index=False):
            ts = pd.Timestamp(row.eval_ts)
            if phase is not None and since is not None:
                out.append({**meta, "phase": phase, "start": since, "end": ts, "open": False})
            meta = {
                "fingerprint": fp,
                "rule": row.rule,
                "labels": row.labels,
                "severity": row.severity,
            }
            phase, since = (row.state, ts) if row.state in ("pending", "firing") else (None, None)
        if phase is not None and since is not None:
            out.append({**meta, "phase": phase, "start": since, "end": horizon, "open": True})
    return pd.DataFrame(out, columns=cols)
