"""Notification sinks: a Slack-compatible webhook and a JSON Lines file, fed by the outbox.

Delivery is at-least-once: every notification is first written to the ``alert_outbox`` table
(one row per sink), then sent; a row is marked delivered only after the sink accepted it. A
failed webhook is retried with exponential back-off within the run and, if still failing,
stays owed for the next run. Each request carries an ``Idempotency-Key`` header (and the JSONL
line an ``idempotency_key`` field) so receivers can drop the duplicates at-least-once implies.

The webhook URL comes from an environment variable (``LUMINA_ALERT_WEBHOOK_URL`` unless the
rules file names another); it is never stored in the warehouse or printed (see
:func:`redact_url`).
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from lumina_analytics.alerts import store
from lumina_analytics.alerts.rules import JsonlSinkSpec, RuleSet, WebhookSinkSpec
from lumina_analytics.config import get_settings
from lumina_analytics.errors import LuminaError
from lumina_analytics.warehouse import Warehouse

__all__ = [
    "DeliveryError",
    "JsonlSink",
    "Sink",
    "WebhookSink",
    "build_sinks",
    "deliver_owed",
    "redact_url",
    "slack_body",
]

log = logging.getLogger(__name__)
DEFAULT_WEBHOOK_ENV = "LUMINA_ALERT_WEBHOOK_URL"
_EMOJI = {"firing": ":rotating_light:", "resolved": ":white_check_mark:"}


class DeliveryError(LuminaError):
    """A sink could not take a notification; it stays owed in the outbox."""

    def __init__(self, message: str, attempts: int = 1) -> None:
        super().__init__(message)
        self.attempts = attempts


class Sink(Protocol):
    """Anything that can take one notification payload (raise :class:`DeliveryError` if not)."""

    name: str

    def send(self, payload: Mapping[str, Any], key: str) -> int:
        """Deliver ``payload``; return the number of attempts made."""
        ...


def redact_url(url: str) -> str:
    """``scheme://host/…``: enough to recognise a URL in logs, never its secret path/query."""
    parts = urlsplit(url)
    return (
        f"{parts.scheme}://{parts.hostname or '?'}{':' + str(parts.port) if parts.port else ''}/…"
    )


def _alert_line(a: Mapping[str, Any]) -> str:
    labels = a.get("labels") or {}
    shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("alertname",))
    line = f"*{a.get('rule')}* [{a.get('severity')}] {a.get('summary') or ''}"
    if shown:
        line += f"\n`{shown}`"
    hints = [h for h in (a.get("root_cause") or []) if "dimension" in h]
    if hints and a.get("status") == "firing":
        parts = [
            f"{h['dimension']}={h['value']} ({h['share']:.0%} of the excess, "
            f"{h.get('call_share', 0):.0%} of calls)"
            for h in hints
        ]
        line += "\nlikely cause: " + "; ".join(parts)
    if a.get("runbook"):
        line += f"\n<{a['runbook']}|runbook>"
    return line


def slack_body(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook body (``text`` fallback plus ``blocks``) for a notification."""
    alerts = list(payload.get("alerts") or [])
    status = str(payload.get("status", "firing"))
    title = (
        f"{_EMOJI.get(status, '')} [{status.upper()}:{len(alerts)}] "
        f"{payload.get('group_key', '')}".strip()
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
    ]
    for a in alerts[:20]:  # Slack allows 50 blocks per message
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _alert_line(a)[:3000]}}
        )
    if len(alerts) > 20:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"+{len(alerts) - 20} more"}],
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"at {payload.get('at')} · key {payload.get('idempotency_key')}",
                }
            ],
        }
    )
    text = title + "\n" + "\n".join(f"{a.get('rule')}: {a.get('summary') or ''}" for a in alerts)
    return {"text": text, "blocks": blocks}


@dataclass
class WebhookSink:
    """POST a Slack-compatible JSON body; retry 5xx/429/network errors with back-off."""

    url: str
    name: str = "webhook"
    timeout_s: float = 5.0
    max_retries: int = 3
    backoff_s: float = 0.5
    sleep: Callable[[float], None] = time.sleep

    def __repr__(self) -> str:
        return f"WebhookSink({redact_url(self.url)!r}, name={self.name!r})"

    def _post(self, body: bytes, key: str) -> None:
        req = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": key,
                "User-Agent": "lumina-analytics-alerts",
            },
        )
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
            resp.read()

    def send(self, payload: Mapping[str, Any], key: str) -> int:
        body = json.dumps(slack_body(payload)).encode()
        attempts = 0
        last = ""
        while True:
            attempts += 1
            try:
                self._post(body, key)
                return attempts
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
                retryable = exc.code >= 500 or exc.code in (408, 429)
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"{type(exc).__name__}: {reason}".replace(self.url, redact_url(self.url))
                retryable = True
            log.warning("webhook %s attempt %d failed: %s", redact_url(self.url), attempts, last)
            if not retryable or attempts > self.max_retries:
                raise DeliveryError(
                    f"webhook {redact_url(self.url)}: {last} after {attempts} attempt(s)", attempts
                )
            self.sleep(self.backoff_s * 2 ** (attempts - 1))


@dataclass
class JsonlSink:
    """Append one JSON object per notification (with its ``idempotency_key``) to ``path``."""

    path: Path
    name: str = "jsonl"

    def send(self, payload: Mapping[str, Any], key: str) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({**payload, "idempotency_key": key}, sort_keys=True) + "\n")
        except OSError as exc:
            raise DeliveryError(f"cannot append to {self.path}: {exc.strerror or exc}") from exc
        return 1


def build_sinks(
    rules: RuleSet, env: Mapping[str, str] | None = None
) -> tuple[dict[str, Sink], list[str]]:
    """Sinks configured in the rules file (default: JSONL, plus a webhook when its env var is set).

    Returns the sinks by name and notes about configured sinks that are unusable (a webhook
    whose URL variable is unset), which are skipped rather than left to fail forever.
    """
    env = os.environ if env is None else env
    settings = get_settings()
    specs: Sequence[Any] = rules.sinks or [
        JsonlSinkSpec(type="jsonl"),
        WebhookSinkSpec(type="webhook"),
    ]
    sinks: dict[str, Sink] = {}
    notes: list[str] = []
    for spec in specs:
        if isinstance(spec, WebhookSinkSpec):
            url = env.get(spec.url_env, "").strip()
            if not url:
                if rules.sinks:
                    notes.append(f"sink {spec.name!r}: ${spec.url_env} is not set; skipped")
                continue
            if not url.startswith(("http://", "https://")):
                notes.append(f"sink {spec.name!r}: ${spec.url_env} is not an http(s) URL; skipped")
                continue
            sinks[spec.name] = WebhookSink(
                url, spec.name, spec.timeout_s, spec.max_retries, spec.backoff_s
            )
        else:
            p = Path(spec.path).expanduser()
            sinks[spec.name] = JsonlSink(
                p if p.is_absolute() else settings.reports_dir / p, spec.name
            )
    return sinks, notes


@dataclass
class DeliveryReport:
    """What one delivery pass did."""

    delivered: int
    failed: int
    still_owed: int
    errors: list[str]


def deliver_owed(wh: Warehouse, sinks: Mapping[str, Sink]) -> DeliveryReport:
    """Send every owed outbox row whose sink is configured; record the outcome of each."""
    everything = store.owed(wh)
    rows = everything[everything["sink"].isin(list(sinks))]
    outcomes: list[store.DeliveryOutcome] = []
    errors: list[str] = []
    for r in rows.to_dict("records"):
        sink = sinks[r["sink"]]
        payload = json.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"]
        try:
            n = sink.send(payload, r["idempotency_key"])
            outcomes.append(store.DeliveryOutcome(r["idempotency_key"], r["sink"], True, n, None))
        except DeliveryError as exc:
            outcomes.append(
                store.DeliveryOutcome(
                    r["idempotency_key"], r["sink"], False, exc.attempts, str(exc)
                )
            )
            errors.append(str(exc))
    store.record_deliveries(wh, outcomes)
    ok = sum(o.ok for o in outcomes)
    return DeliveryReport(ok, len(outcomes) - ok, len(everything) - ok, errors)
