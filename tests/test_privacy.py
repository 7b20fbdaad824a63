"""Secrets and personal data never reach the warehouse: redaction at ingest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lumina_analytics.ingest import ingest_paths
from lumina_analytics.privacy import redact, redact_values
from lumina_analytics.warehouse import Warehouse

#: (secret, label) pairs that must be redacted.
CORPUS = [
    ("alice.smith@example.com", "email"),
    ("bob+tag@mail.co.uk", "email"),
    ("Authorization: Bearer abcdef1234567890XYZ", "bearer_token"),
    ("key sk-proj-AbCdEf0123456789GhIjKlMn", "openai_key"),
    ("sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAA", "openai_key"),
    ("AKIAIOSFODNN7EXAMPLE", "aws_access_key"),
    ("ghp_0123456789abcdefghijklmnopqrstuvwxyzAB", "github_token"),
    ("xoxb-1234567890-abcdefghij", "slack_token"),
    ("AIzaSyA1234567890abcdefghijklmnopqrstuv", "google_api_key"),
    ("password=hunter2!!", "password"),
    ("api_key: 9f8e7d6c5b4a", "password"),
    (
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "jwt",
    ),
]

HARMLESS = [
    "GET /v1/chat/completions 200 in 812 ms",
    "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
    "retrying provider openai model gpt-4o after 429",
    "ts=1700000000000 tokens=1234",
]


@pytest.mark.parametrize(("secret", "label"), CORPUS)
def test_corpus_is_redacted(secret: str, label: str) -> None:
    out = redact(f"user said {secret} today") or ""
    assert f"[REDACTED:{label}]" in out
    core = secret.split()[-1].split("=")[-1]
    assert core not in out


@pytest.mark.parametrize("text", HARMLESS)
def test_harmless_text_is_untouched(text: str) -> None:
    assert redact(text) == text


def test_nested_values() -> None:
    got = redact_values({"a": ["x alice@example.com"], "n": 3, "b": {"c": "Bearer abcdefghijk123"}})
    assert got == {"a": ["x [REDACTED:email]"], "n": 3, "b": {"c": "[REDACTED:bearer_token]"}}


def _attr(key: str, value: str) -> dict[str, object]:
    return {"key": key, "value": {"stringValue": value}}


def test_ingest_redacts_logs_and_span_attributes(tmp_path: Path) -> None:
    secrets = [s for s, _ in CORPUS]
    logs = {
        "resourceLogs": [
            {
                "resource": {"attributes": [_attr("service.name", "gateway")]},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "1790000000000000000",
                                "severityNumber": 17,
                                "body": {"stringValue": f"login failed for {s}"},
                                "attributes": [_attr("detail", s)],
                            }
                            for s in secrets
                        ]
                    }
                ],
            }
        ]
    }
    spans = {
        "resourceSpans": [
            {
                "resource": {"attributes": [_attr("service.name", "gateway")]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": f"{i + 1:032x}",
                                "spanId": f"{i + 1:016x}",
                                "name": "POST /login",
                                "kind": 2,
                                "startTimeUnixNano": "1790000000000000000",
                                "endTimeUnixNano": "1790000001000000000",
                                "attributes": [_attr("http.request.header.authorization", s)],
                                "status": {"code": 2, "message": f"denied {s}"},
                            }
                            for i, s in enumerate(secrets)
                        ]
                    }
                ],
            }
        ]
    }
    (tmp_path / "logs.otlp.json").write_text(json.dumps(logs))
    (tmp_path / "spans.otlp.json").write_text(json.dumps(spans))
    wh = Warehouse(tmp_path / "w.duckdb")
    report = ingest_paths(
        [tmp_path / "logs.otlp.json", tmp_path / "spans.otlp.json"], wh, progress=False
    )
    assert report.ok, str(report)
    stored = (
        wh.query("SELECT string_agg(body || attributes, ' ') AS t FROM logs")["t"][0]
        + wh.query("SELECT string_agg(attributes || status_message, ' ') AS t FROM spans")["t"][0]
    )
    assert wh.table_counts()["logs"] == len(secrets) and wh.table_counts()["spans"] == len(secrets)
    for secret, label in CORPUS:
        core = secret.split()[-1].split("=")[-1]
        assert core not in stored, secret
        assert f"[REDACTED:{label}]" in stored


HOSTILE = [
    "x'; DROP TABLE llm_calls; --",
    "1 OR 1=1",
    "provider); DELETE FROM spans; --",
    "🙂\x00'\"",
]


@pytest.mark.slow
def test_hostile_cli_and_notebook_parameters_change_nothing(
    demo_warehouse: Path, tmp_path: Path
) -> None:
    import shutil

    from lumina_analytics.cli import main
    from lumina_analytics.reports import run_report

    wh_path = tmp_path / "copy.duckdb"
    shutil.copy(demo_warehouse, wh_path)
    wh = Warehouse(wh_path)
    before = wh.table_counts()
    for bad in HOSTILE:
        # series metric / grouping names are checked against whitelists, values are bound
        assert (
            main(["--warehouse", str(wh_path), "anomaly", "detect", "--metric", bad, "--dry-run"])
            != 0
        )
        assert (
            main(
                [
                    "--warehouse",
                    str(wh_path),
                    "anomaly",
                    "detect",
                    "--metric",
                    "requests",
                    "--by",
                    bad,
                    "--dry-run",
                ]
            )
            != 0
        )
        main(["--warehouse", str(wh_path), "insights", "--start", bad])
        main(["--warehouse", str(wh_path), "rca", "rank", "--start", bad, "--end", bad])
    # a hostile tenant filter through a notebook parameter: bound, so it just matches nothing
    run = run_report(
        "cost",
        {"warehouse": str(wh_path), "tenants": [HOSTILE[0]]},
        "2026-10-20",
        out_root=tmp_path / "reports",
    )
    assert "DROP TABLE" not in (run.error or "")
    assert wh.table_counts() == before
