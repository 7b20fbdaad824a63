"""Warehouse-level entry points used by the CLI and notebooks: evaluate, deliver, replay."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from lumina_analytics.alerts import sinks as sinks_mod
from lumina_analytics.alerts import store
from lumina_analytics.alerts.engine import EvaluationResult, Evaluator, latest_data_time, replay
from lumina_analytics.alerts.rules import RuleSet, load_rules
from lumina_analytics.errors import LuminaError
from lumina_analytics.warehouse import Warehouse

__all__ = ["RunReport", "deliver", "evaluate_warehouse", "replay_warehouse"]


@dataclass
class RunReport:
    """One ``alerts evaluate`` run: the evaluation, outbox rows added, delivery outcome."""

    result: EvaluationResult
    enqueued: int = 0
    delivery: sinks_mod.DeliveryReport | None = None
    notes: list[str] = field(default_factory=list)


def _wh(warehouse: Warehouse | str | os.PathLike[str] | None) -> Warehouse:
    return warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)


def evaluate_warehouse(
    at: datetime | pd.Timestamp | str | None = None,
    rules: RuleSet | str | os.PathLike[str] | None = None,
    warehouse: Warehouse | str | os.PathLike[str] | None = None,
    notify: bool = True,
    evaluator: Evaluator | None = None,
    sinks: dict[str, sinks_mod.Sink] | None = None,
) -> RunReport:
    """Evaluate every rule at ``at`` (default: end of the latest data), persist and notify.

    State from earlier runs is loaded first so ``for`` durations span runs; transitions go to
    ``alert_history``; notifications go to the outbox and then to the sinks, together with any
    notifications earlier runs still owe.
    """
    wh = _wh(warehouse)
    rule_set = rules if isinstance(rules, RuleSet) else load_rules(rules)
    at_ts = pd.Timestamp(at) if at is not None else latest_data_time(wh)
    if at_ts.tzinfo is not None:
        at_ts = at_ts.tz_convert("UTC").tz_localize(None)
    previous = store.load_state(wh)
    last = max(
        (s.last_eval_ts for s in previous.values() if s.last_eval_ts is not None), default=None
    )
    if last is not None and at_ts < last:
        raise LuminaError(
            f"evaluation time {at_ts} is before the last persisted evaluation ({last}); "
            "use `lumina-analytics alerts replay` to look at the past"
        )
    ev = evaluator or Evaluator(rule_set, warehouse=wh)
    result = ev.evaluate(at_ts, previous)
    notes: list[str] = []
    if sinks is None:
        sinks, notes = sinks_mod.build_sinks(rule_set)
    names = list(sinks) if notify else []
    enqueued = store.save(wh, result, names)
    report = RunReport(result, enqueued, None, notes)
    if notify:
        report.delivery = sinks_mod.deliver_owed(wh, sinks)
    return report


def deliver(
    rules: RuleSet | str | os.PathLike[str] | None = None,
    warehouse: Warehouse | str | os.PathLike[str] | None = None,
) -> sinks_mod.DeliveryReport:
    """Send what earlier runs still owe."""
    rule_set = rules if isinstance(rules, RuleSet) else load_rules(rules)
    sinks, _ = sinks_mod.build_sinks(rule_set)
    return sinks_mod.deliver_owed(_wh(warehouse), sinks)


def replay_warehouse(
    start: datetime | pd.Timestamp | str,
    end: datetime | pd.Timestamp | str | None = None,
    step: str = "5min",
    rules: RuleSet | str | os.PathLike[str] | None = None,
    warehouse: Warehouse | str | os.PathLike[str] | None = None,
    **evaluator_kwargs: Any,
) -> tuple[pd.DataFrame, list[Any]]:
    """Evaluate every ``step`` over a past period, in memory (nothing is written or sent)."""
    wh = _wh(warehouse)
    rule_set = rules if isinstance(rules, RuleSet) else load_rules(rules)
    end_ts = pd.Timestamp(end) if end is not None else latest_data_time(wh, step)
    ev = Evaluator(rule_set, warehouse=wh, **evaluator_kwargs)
    return replay(ev, start, end_ts, step)
