"""Persistence of alert state, history and the notification outbox in the warehouse.

Reads go through short read-only connections; writes through :meth:`Warehouse.writer`, held
only for the inserts (never while a webhook is being called).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from lumina_analytics.alerts.engine import AlertState, EvaluationResult
from lumina_analytics.warehouse import Warehouse, append_frame

__all__ = ["DeliveryOutcome", "history", "load_state", "owed", "record_deliveries", "save"]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _query_if_table(
    wh: Warehouse, table: str, sql: str, params: list[Any] | None = None
) -> pd.DataFrame | None:
    """Run ``sql`` in one read-only connection if ``table`` exists (None otherwise)."""
    if not wh.exists():
        return None
    with wh.reader() as con:
        n = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
        ).fetchall()[0][0]
        if not n:
            return None
        return con.execute(sql, params or []).df()


def _ts(v: Any) -> pd.Timestamp | None:
    return None if v is None or pd.isna(v) else pd.Timestamp(v)


def _json(v: Any) -> Any:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return None
    return json.loads(v) if isinstance(v, str) else v


def load_state(wh: Warehouse) -> dict[str, AlertState]:
    """Active (pending/firing) alerts persisted by earlier evaluations."""
    frame = _query_if_table(wh, "alert_state", "SELECT * FROM alert_state ORDER BY fingerprint")
    if frame is None:
        return {}
    out: dict[str, AlertState] = {}
    for r in frame.to_dict("records"):
        out[r["fingerprint"]] = AlertState(
            fingerprint=r["fingerprint"],
            rule=r["rule"],
            labels=_json(r["labels"]) or {},
            state=r["state"],
            severity=r["severity"] or "",
            group_key=r["group_key"] or "",
            active_since=pd.Timestamp(r["active_since"]),
            fired_at=_ts(r["fired_at"]),
            last_eval_ts=_ts(r["last_eval_ts"]),
            last_value=None if pd.isna(r["last_value"]) else float(r["last_value"]),
            threshold=None if pd.isna(r["threshold"]) else float(r["threshold"]),
            last_notified_at=_ts(r["last_notified_at"]),
            summary=r["summary"] or "",
            runbook=r["runbook"] or "",
            root_cause=_json(r["root_cause"]),
        )
    return out


def _dumps(v: Any) -> str | None:
    return None if v is None else json.dumps(v, sort_keys=True, default=str)


def _state_frame(states: Iterable[AlertState]) -> pd.DataFrame:
    rows = []
    for s in states:
        rows.append(
            {
                "fingerprint": s.fingerprint,
                "rule": s.rule,
                "labels": _dumps(s.labels),
                "state": s.state,
                "severity": s.severity,
                "group_key": s.group_key,
                "active_since": s.active_since,
                "fired_at": s.fired_at,
                "last_eval_ts": s.last_eval_ts,
                "last_value": s.last_value,
                "threshold": s.threshold,
                "last_notified_at": s.last_notified_at,
                "summary": s.summary,
                "runbook": s.runbook,
                "root_cause": _dumps(s.root_cause),
            }
        )
    frame = pd.DataFrame(rows)
    for c in ("active_since", "fired_at", "last_eval_ts", "last_notified_at"):
        if c in frame:
            frame[c] = pd.to_datetime(frame[c]).astype("datetime64[us]")
    return frame


def _history_frame(rows: Sequence[Mapping[str, Any]], recorded: datetime) -> pd.DataFrame:
    out = []
    for t in rows:
        r = dict(t)
        r["labels"] = _dumps(r["labels"])
        r["root_cause"] = _dumps(r.get("root_cause"))
        r["recorded_at"] = recorded
        out.append(r)
    frame = pd.DataFrame(out)
    for c in ("eval_ts", "active_since", "recorded_at"):
        if c in frame:
            frame[c] = pd.to_datetime(frame[c]).astype("datetime64[us]")
    return frame


def save(wh: Warehouse, result: EvaluationResult, sinks: Sequence[str]) -> int:
    """Persist the new state, the transitions and one outbox row per notification and sink.

    Returns the number of outbox rows added (a re-run of the same evaluation adds none).
    """
    now = _now()
    with wh.writer() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("DELETE FROM alert_state")
            append_frame(con, "alert_state", _state_frame(result.state.values()))
            if result.transitions:
                append_frame(con, "alert_history", _history_frame(result.transitions, now))
            rows = [
                {
                    "idempotency_key": n.idempotency_key,
                    "sink": sink,
                    "group_key": n.group_key,
                    "status": n.status,
                    "payload": json.dumps(n.payload(), sort_keys=True, default=str),
                    "created_at": now,
                    "attempts": 0,
                }
                for n in result.notifications
                for sink in sinks
            ]
            added = append_frame(con, "alert_outbox", pd.DataFrame(rows)) if rows else 0
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return added


def owed(wh: Warehouse, sinks: Sequence[str] | None = None) -> pd.DataFrame:
    """Notifications not yet delivered (oldest first), optionally only for ``sinks``."""
    cols = ["idempotency_key", "sink", "group_key", "status", "payload", "created_at", "attempts"]
    frame = _query_if_table(
        wh,
        "alert_outbox",
        f"SELECT {', '.join(cols)} FROM alert_outbox WHERE delivered_at IS NULL "
        "ORDER BY created_at, idempotency_key, sink",
    )
    if frame is None:
        return pd.DataFrame({c: [] for c in cols})
    if sinks is not None:
        frame = frame[frame["sink"].isin(list(sinks))]
    return frame.reset_index(drop=True)


class DeliveryOutcome:
    """Result of trying one outbox row."""

    def __init__(self, key: str, sink: str, ok: bool, attempts: int, error: str | None) -> None:
        self.key, self.sink, self.ok, self.attempts, self.error = key, sink, ok, attempts, error

    def __repr__(self) -> str:
        return (
            f"DeliveryOutcome({self.key[:8]}, {self.sink}, ok={self.ok}, attempts={self.attempts})"
        )


def record_deliveries(wh: Warehouse, outcomes: Sequence[DeliveryOutcome]) -> None:
    """Mark delivered rows and count attempts/errors on the ones still owed."""
    if not outcomes:
        return
    now = _now()
    with wh.writer() as con:
        for o in outcomes:
            con.execute(
                "UPDATE alert_outbox SET attempts = coalesce(attempts, 0) + ?, last_attempt_at = ?, "
                "last_error = ?, delivered_at = CASE WHEN ? THEN ? ELSE delivered_at END "
                "WHERE idempotency_key = ? AND sink = ?",
                [o.attempts, now, o.error, o.ok, now, o.key, o.sink],
            )


def history(
    wh: Warehouse,
    state: str | None = None,
    rule: str | None = None,
    start: datetime | pd.Timestamp | None = None,
    end: datetime | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Transitions from ``alert_history`` (filters are optional), newest first."""
    where: list[str] = ["TRUE"]
    params: list[Any] = []
    for col, val in (("state", state), ("rule", rule)):
        if val is not None:
            where.append(f"{col} = ?")
            params.append(val)
    if start is not None:
        where.append("eval_ts >= ?")
        params.append(pd.Timestamp(start).to_pydatetime())
    if end is not None:
        where.append("eval_ts < ?")
        params.append(pd.Timestamp(end).to_pydatetime())
    got = _query_if_table(
        wh,
        "alert_history",
        f"SELECT * FROM alert_history WHERE {' AND '.join(where)} ORDER BY eval_ts DESC, rule",
        params,
    )
    return pd.DataFrame() if got is None else got
