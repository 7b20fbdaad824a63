"""Score alerting against ground-truth incidents (the simulator's ``incidents`` table).

An incident counts as **detected** when an alert starts firing inside its window
``[start_ts, end_ts]`` and points at it: the alert's labels or its root-cause hint name the
incident's culprit (``dimension = value``; for a ``service/version`` value the version alone
matches the ``service_version`` column). An unrelated alert that happens to fire in the
window does not count. **False alerts** are firing transitions on days that no incident
window touches, reported per such day.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from lumina_analytics.alerts.engine import Evaluator, replay
from lumina_analytics.alerts.rules import RuleSet, load_rules
from lumina_analytics.errors import LuminaError
from lumina_analytics.warehouse import Warehouse

__all__ = ["incident_detection", "names_culprit", "replay_incidents"]


def _as_dict(x: Any) -> dict[str, Any]:
    if isinstance(x, Mapping):
        return dict(x)
    if isinstance(x, str) and x:
        got = json.loads(x)
        return dict(got) if isinstance(got, Mapping) else {}
    return {}


def _as_list(x: Any) -> list[dict[str, Any]]:
    if isinstance(x, str) and x:
        x = json.loads(x)
    if isinstance(x, Sequence) and not isinstance(x, str):
        return [dict(h) for h in x if isinstance(h, Mapping)]
    return []


def _matches(value: str, got: Any) -> bool:
    return str(got) in (value, value.split("/")[-1])


def names_culprit(
    labels: Mapping[str, Any], root_cause: Sequence[Mapping[str, Any]], dimension: str, value: str
) -> bool:
    """Whether an alert's labels or root-cause hint name ``dimension = value``."""
    if dimension in labels and _matches(value, labels[dimension]):
        return True
    return any(
        h.get("dimension") == dimension and _matches(value, h.get("value", "")) for h in root_cause
    )


def incident_detection(
    history: pd.DataFrame,
    incidents: pd.DataFrame,
    start: Any,
    end: Any,
) -> pd.DataFrame:
    """One row per incident: detected, by which rule, when, and whether the culprit was named.

    ``history`` is ``alert_history``-shaped (a replay's transitions: ``rule, labels, state,
    eval_ts, root_cause``); ``incidents`` has ``incident_id, kind, start_ts, end_ts,
    dimension, value``; ``[start, end]`` is the evaluated period. The result carries
    ``attrs["clean_days"]``, ``attrs["false_alerts"]`` (firing transitions on days no
    incident touches), ``attrs["false_alerts_per_clean_day"]`` and ``attrs["false_by_rule"]``.
    """
    fired = history[history["state"] == "firing"].copy()
    fired["eval_ts"] = pd.to_datetime(fired["eval_ts"])
    rc = fired["root_cause"] if "root_cause" in fired else pd.Series(None, index=fired.index)
    fired = fired.assign(
        lab=pd.Series([_as_dict(x) for x in fired["labels"]], index=fired.index, dtype=object),
        rc=pd.Series([_as_list(x) for x in rc], index=fired.index, dtype=object),
    )
    fired = fired.sort_values("eval_ts", kind="stable")
    rows = []
    incs: list[dict[str, Any]] = [
        {str(k): v for k, v in r.items()}
        for r in incidents.sort_values("start_ts").to_dict("records")
    ]
    for inc in incs:
        s, e = pd.Timestamp(inc["start_ts"]), pd.Timestamp(inc["end_ts"])
        dim, val = str(inc["dimension"]), str(inc["value"])
        inside = fired[(fired["eval_ts"] >= s) & (fired["eval_ts"] <= e)]
        hits: list[dict[str, Any]] = [
            {str(k): v for k, v in r.items()}
            for r in inside.to_dict("records")
            if names_culprit(r["lab"], r["rc"], dim, val)
        ]
        first = hits[0] if hits else None
        rows.append(
            {
                "incident_id": inc["incident_id"],
                "kind": inc["kind"],
                "start_ts": s,
                "end_ts": e,
                "culprit": f"{dim}={val}",
                "detected": first is not None,
                "first_rule": first["rule"] if first is not None else None,
                "delay": (pd.Timestamp(first["eval_ts"]) - s) if first is not None else pd.NaT,
                "alerts_in_window": len(inside),
                "naming_rules": ", ".join(sorted({str(r["rule"]) for r in hits})),
            }
        )
    result = pd.DataFrame(rows)
    t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    days = pd.date_range(t0.normalize(), t1.normalize(), freq="D")
    busy: set[pd.Timestamp] = set()
    for inc in incs:
        s, e = pd.Timestamp(inc["start_ts"]), pd.Timestamp(inc["end_ts"])
        busy.update(pd.date_range(s.normalize(), e.normalize(), freq="D"))
    clean = [d for d in days if d not in busy]
    in_period = fired[(fired["eval_ts"] >= t0) & (fired["eval_ts"] <= t1)]
    false = in_period[in_period["eval_ts"].dt.normalize().isin(clean)]
    result.attrs["clean_days"] = len(clean)
    result.attrs["false_alerts"] = len(false)
    result.attrs["false_alerts_per_clean_day"] = len(false) / len(clean) if clean else float("nan")
    result.attrs["false_by_rule"] = false.groupby("rule").size().to_dict()
    return result


def replay_incidents(
    warehouse: Warehouse | str | os.PathLike[str] | None = None,
    rules: RuleSet | str | os.PathLike[str] | None = None,
    step: str = "5min",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Replay ``rules`` (default: the configured rules) over the whole warehouse and score
    them against its ``incidents`` table with :func:`incident_detection`.

    The replay runs without root-cause hints; the hint is then computed (exactly as a live
    evaluation would, :meth:`Evaluator.explain`) only for the alerts that fire inside an
    incident window, in time order, until one names its culprit, which keeps a month's
    replay quick (so ``naming_rules`` lists the rules that name it by their labels, plus the
    first one that names it in its hint).
    Returns ``(detection table, alert history)``.
    """
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    rule_set = rules if isinstance(rules, RuleSet) else load_rules(rules)
    if not wh.table_counts().get("incidents"):
        raise LuminaError(f"{wh.path} has no ground-truth incidents (simulator warehouses do)")
    incidents = wh.query("SELECT * FROM incidents ORDER BY start_ts")
    span = wh.query("SELECT min(ts) AS a, max(ts) AS b FROM llm_calls")
    start = pd.Timestamp(span["a"].iloc[0]).ceil("1h")
    end = pd.Timestamp(span["b"].iloc[0]).floor(step)
    ev = Evaluator(rule_set, warehouse=wh, root_cause=False)
    history, _ = replay(ev, start, end, step)
    ev.root_cause = True
    history = history.copy()
    history["root_cause"] = history["root_cause"].astype(object)
    hints: dict[Any, Any] = {}
    for inc in incidents.to_dict("records"):
        s, e = pd.Timestamp(inc["start_ts"]), pd.Timestamp(inc["end_ts"])
        dim, val = str(inc["dimension"]), str(inc["value"])
        inside = history[
            (history["state"] == "firing") & (history["eval_ts"] >= s) & (history["eval_ts"] <= e)
        ].sort_values("eval_ts", kind="stable")
        for i in inside.index:  # in time order, until an alert names the culprit
            labels = _as_dict(history.at[i, "labels"])
            if names_culprit(labels, [], dim, val):
                break
            at = pd.Timestamp(str(history.at[i, "eval_ts"]))
            hints[i] = ev.explain(str(history.at[i, "rule"]), labels, at)
            if names_culprit(labels, _as_list(hints[i]), dim, val):
                break
    history["root_cause"] = [
        hints.get(i, rc) for i, rc in zip(history.index, history["root_cause"], strict=True)
    ]
    return incident_detection(history, incidents, start, end), history
