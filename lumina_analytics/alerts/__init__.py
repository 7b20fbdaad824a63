"""Alerting: YAML rules, evaluation with a persisted lifecycle, grouped notifications, root cause.

* :mod:`.rules`: rule models (threshold, rate of change, SLO burn rate, anomaly, forecast breach)
* :mod:`.engine`: evaluation over injected data providers, lifecycle, dedup, grouping, replay
* :mod:`.store`: alert state, history and the notification outbox in the warehouse
* :mod:`.sinks`: Slack-compatible webhook and JSON Lines sinks, at-least-once delivery
* :mod:`.rootcause`: which dimension values explain an alert
* :mod:`.runner`: warehouse-level ``evaluate`` / ``deliver`` / ``replay``
"""

from __future__ import annotations

from lumina_analytics.alerts.engine import (
    Alert,
    AlertState,
    EvaluationResult,
    Evaluator,
    Notification,
    advance,
    replay,
    timeline,
)
from lumina_analytics.alerts.rootcause import attribute, rank_dimensions
from lumina_analytics.alerts.rules import AlertRuleError, RuleSet, load_rules, parse_rules
from lumina_analytics.alerts.runner import deliver, evaluate_warehouse, replay_warehouse

__all__ = [
    "Alert",
    "AlertRuleError",
    "AlertState",
    "EvaluationResult",
    "Evaluator",
    "Notification",
    "RuleSet",
    "advance",
    "attribute",
    "deliver",
    "evaluate_warehouse",
    "load_rules",
    "parse_rules",
    "rank_dimensions",
    "replay",
    "replay_warehouse",
    "timeline",
]
