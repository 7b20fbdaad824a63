"""Notification sinks against a real HTTP server on 127.0.0.1, the outbox, and the JSONL sink."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lumina_analytics.alerts import store
from lumina_analytics.alerts.engine import Evaluator
from lumina_analytics.alerts.rules import parse_rules
from lumina_analytics.alerts.runner import evaluate_warehouse
from lumina_analytics.alerts.sinks import (
    DeliveryError,
    JsonlSink,
    WebhookSink,
    build_sinks,
    deliver_owed,
    redact_url,
    slack_body,
)
from lumina_analytics.warehouse import Warehouse

T0 = pd.Timestamp("2026-03-02 00:00")
M5 = pd.Timedelta(minutes=5)


class Hook:
    """A webhook receiver that fails the first ``fail_first`` requests with HTTP 503."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.requests: list[dict[str, Any]] = []
        self.accepted: list[str] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers.get("Idempotency-Key", "")
                hook.requests.append({"key": key, "body": body})
                if len(hook.requests) <= hook.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                hook.accepted.append(key)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/SECRET"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Hook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def hook() -> Iterator[Hook]:
    with Hook(fail_first=2) as h:
        yield h


def dead_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here any more
    return f"http://127.0.0.1:{port}/hook/SECRET"


PAYLOAD = {
    "idempotency_key": "k1",
    "group_key": "alertname=err",
    "status": "firing",
    "at": "2026-03-02T01:05:00",
    "alerts": [
        {
            "rule": "err",
            "status": "firing",
            "severity": "page",
            "summary": "error rate 0.1",
            "labels": {"alertname": "err", "provider": "anthropic"},
            "runbook": "https://rb/err",
            "root_cause": [
                {
                    "dimension": "provider",
                    "value": "anthropic",
                    "share": 0.93,
                    "call_share": 0.3,
                    "excess": 40.0,
                    "lift": 12.0,
                }
            ],
            "fingerprint": "f1",
        }
    ],
}


def test_webhook_retries_with_exponential_backoff(hook: Hook) -> None:
    sleeps: list[float] = []
    sink = WebhookSink(hook.url, max_retries=3, backoff_s=0.01, sleep=sleeps.append)
    attempts = sink.send(PAYLOAD, "key-1")
    assert attempts == 3
    assert sleeps == [0.01, 0.02]
    assert [r["key"] for r in hook.requests] == ["key-1"] * 3
    assert hook.accepted == ["key-1"]
    body = hook.requests[-1]["body"]
    assert set(body) == {"text", "blocks"}  # Slack-compatible
    assert body["blocks"][0]["type"] == "header" and "FIRING:1" in body["blocks"][0]["text"]["text"]
    section = body["blocks"][1]["text"]["text"]
    assert (
        "provider=anthropic (93% of the excess, 30% of calls)" in section
        and "<https://rb/err|runbook>" in section
    )


def test_webhook_gives_up_after_max_retries_without_leaking_the_url(hook: Hook) -> None:
    sleeps: list[float] = []
    sink = WebhookSink(hook.url, max_retries=1, backoff_s=0.01, sleep=sleeps.append)
    with pytest.raises(DeliveryError) as info:
        sink.send(PAYLOAD, "key-2")
    assert info.value.attempts == 2 and sleeps == [0.01]
    assert "SECRET" not in str(info.value) and "HTTP 503" in str(info.value)
    assert "SECRET" not in repr(sink)
    dead = WebhookSink(dead_url(), max_retries=0, sleep=sleeps.append)
    with pytest.raises(DeliveryError) as info2:
        dead.send(PAYLOAD, "key-3")
    assert "SECRET" not in str(info2.value)
    assert redact_url("https://hooks.slack.com/services/T/B/XYZ?x=1") == "https://hooks.slack.com/…"


def test_jsonl_sink(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "n.jsonl"
    sink = JsonlSink(p)
    sink.send(PAYLOAD, "a")
    sink.send({**PAYLOAD, "status": "resolved"}, "b")
    lines = [json.loads(x) for x in p.read_text().splitlines()]
    assert [x["idempotency_key"] for x in lines] == ["a", "b"]
    assert [x["status"] for x in lines] == ["firing", "resolved"]
    assert lines[0]["alerts"][0]["root_cause"][0]["value"] == "anthropic"
    assert slack_body(PAYLOAD)["text"].startswith(":rotating_light: [FIRING:1]")


def test_build_sinks_reads_url_from_env(tmp_path: Path) -> None:
    rs = parse_rules(
        {
            "rules": [
                {"name": "r", "kind": "threshold", "metric": "x", "value": 1, "runbook": "rb"}
            ],
            "sinks": [
                {"type": "webhook", "url_env": "HOOK_URL"},
                {"type": "jsonl", "path": str(tmp_path / "x.jsonl")},
            ],
        }
    )
    sinks, notes = build_sinks(rs, env={})
    assert list(sinks) == ["jsonl"] and "HOOK_URL is not set" in notes[0]
    sinks, notes = build_sinks(rs, env={"HOOK_URL": "https://hooks.example/T/SECRET"})
    assert list(sinks) == ["webhook", "jsonl"] and notes == []
    assert "SECRET" not in repr(sinks["webhook"])


# -- outbox: at-least-once across runs ------------------------------------------------------
def _provider(
    metric: str,
    by: Any = (),
    freq: str = "1h",
    start: Any = None,
    end: Any = None,
    filters: Any = None,
) -> pd.DataFrame:
    rates = [0.01] * 12 + [0.2] * 8 + [0.01] * 12  # errors/requests: high in buckets 12..19
    ys = [100.0] * len(rates) if metric == "requests" else [100.0 * r for r in rates]
    f = pd.DataFrame(
        {"unique_id": "all", "ds": pd.date_range(T0, periods=len(ys), freq=M5), "y": ys}
    )
    return f[(f["ds"] >= pd.Timestamp(start)) & (f["ds"] < pd.Timestamp(end))]


RULES = parse_rules(
    {
        "rules": [
            {
                "name": "err",
                "kind": "threshold",
                "metric": "error_rate",
                "value": 0.05,
                "runbook": "https://rb/err",
            }
        ]
    }
)


def _run(k: int, wh: Warehouse, sinks: dict[str, Any]) -> Any:
    ev = Evaluator(RULES, series_provider=_provider, calls_provider=lambda *a: pd.DataFrame())
    return evaluate_warehouse(T0 + k * M5, RULES, wh, notify=True, evaluator=ev, sinks=sinks)


def test_server_down_leaves_notification_owed_then_next_run_delivers_once(tmp_path: Path) -> None:
    wh = Warehouse()
    jsonl = JsonlSink(tmp_path / "n.jsonl")
    down = WebhookSink(dead_url(), max_retries=2, backoff_s=0.0)
    rep = _run(13, wh, {"webhook": down, "jsonl": jsonl})
    assert [t["state"] for t in rep.result.transitions] == ["firing"]
    assert rep.enqueued == 2
    assert rep.delivery.delivered == 1 and rep.delivery.failed == 1 and rep.delivery.still_owed == 1
    owed = store.owed(wh)
    assert list(owed["sink"]) == ["webhook"] and int(owed["attempts"].iloc[0]) == 3
    key = owed["idempotency_key"].iloc[0]

    with Hook(fail_first=1) as h:
        up = WebhookSink(h.url, max_retries=3, backoff_s=0.0)
        # next run: nothing new happens (still firing) but the owed notification goes out
        rep2 = _run(14, wh, {"webhook": up, "jsonl": jsonl})
        assert rep2.result.transitions == [] and rep2.enqueued == 0
        assert rep2.delivery.delivered == 1 and rep2.delivery.still_owed == 0
        # a third run owes nothing and sends nothing
        rep3 = _run(15, wh, {"webhook": up, "jsonl": jsonl})
        assert rep3.delivery.delivered == 0
        assert h.accepted == [key]
        assert [r["key"] for r in h.requests] == [key, key]  # one 503, one success
        # the resolution is a new notification with its own key
        rep4 = _run(21, wh, {"webhook": up, "jsonl": jsonl})
        assert [t["state"] for t in rep4.result.transitions] == ["resolved"]
        assert len(h.accepted) == 2 and h.accepted[1] != key
        assert h.requests[-1]["body"]["blocks"][0]["text"]["text"].startswith(
            ":white_check_mark: [RESOLVED:1]"
        )
    lines = [json.loads(x) for x in (tmp_path / "n.jsonl").read_text().splitlines()]
    assert [x["status"] for x in lines] == ["firing", "resolved"]
    assert lines[0]["idempotency_key"] == key
    done = wh.query("SELECT count(*) AS n FROM alert_outbox WHERE delivered_at IS NULL")
    assert int(done["n"].iloc[0]) == 0


def test_deliver_owed_is_idempotent_per_key() -> None:
    """Re-saving the same evaluation never adds a second outbox row for a key."""
    wh = Warehouse()
    ev = Evaluator(RULES, series_provider=_provider, calls_provider=lambda *a: pd.DataFrame())
    res = ev.evaluate(T0 + 13 * M5, {})
    assert store.save(wh, res, ["webhook"]) == 1
    assert store.save(wh, res, ["webhook"]) == 0
    with Hook() as h:
        report = deliver_owed(wh, {"webhook": WebhookSink(h.url, backoff_s=0.0)})
        assert report.delivered == 1
        assert deliver_owed(wh, {"webhook": WebhookSink(h.url, backoff_s=0.0)}).delivered == 0
        assert len(h.accepted) == 1
