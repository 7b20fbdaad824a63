"""Ingestion: formats, GenAI normalisation, quarantine, atomicity and idempotency."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lumina_analytics.cli import main as cli_main
from lumina_analytics.errors import WarehouseLockedError
from lumina_analytics.ingest import detect_format, ingest_paths
from lumina_analytics.warehouse import Warehouse

SAMPLES = Path(__file__).parent / "ingest_samples"


@pytest.fixture()
def wh(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "w.duckdb")


def _span(i: int, **over: Any) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": "0123456789abcdef0123456789abcdef",
        "spanId": f"{i:016x}",
        "name": f"op{i}",
        "kind": 2,
        "startTimeUnixNano": str(1_750_000_000_000_000_000 + i * 1000),
        "endTimeUnixNano": str(1_750_000_000_000_000_000 + i * 1000 + 5_000_000),
        "attributes": [{"key": "i", "value": {"intValue": str(i)}}],
        "status": {"code": 0},
    }
    span.update(over)
    return span


def _doc(spans: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]
                },
                "scopeSpans": [{"spans": spans}],
            }
        ]
    }


def _write_jsonl(path: Path, docs: list[Any]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def _counts(wh: Warehouse) -> dict[str, int]:
    return wh.table_counts()


# -- detection ------------------------------------------------------------------------------


def test_detect_by_content_not_extension(tmp_path: Path) -> None:
    f = tmp_path / "spans.data"
    _write_jsonl(f, [_doc([_span(1)])])
    assert detect_format(f) == "otlp_traces"
    g = tmp_path / "noext"
    g.write_bytes(gzip.compress(f.read_bytes()))
    assert detect_format(g) == "otlp_traces"
    assert detect_format(SAMPLES / "scrape.prom") == "prometheus"
    assert detect_format(SAMPLES / "metrics.otlp.json") == "otlp_metrics"
    assert detect_format(SAMPLES / "logs.otlp.jsonl") == "otlp_logs"
    assert detect_format(SAMPLES / "deployments.csv") == "csv"


# -- the sample files -----------------------------------------------------------------------


def test_samples_load_with_genai_rows(wh: Warehouse) -> None:
    files = [
        SAMPLES / n
        for n in (
            "genai_traces.jsonl",
            "metrics.otlp.json",
            "logs.otlp.jsonl",
            "scrape.prom",
            "deployments.csv",
            "calls.csv",
        )
    ]
    report = ingest_paths(files, wh, progress=False)
    assert report.ok, str(report)
    assert "TOTAL" in str(report)
    frame = report.to_frame()
    assert set(frame["status"]) == {"ok"}
    counts = _counts(wh)
    assert counts["spans"] == 6 and counts["metrics"] == 8 and counts["logs"] == 2
    assert counts["deployments"] == 2 and counts["llm_calls"] == 6

    calls = wh.query("SELECT * FROM llm_calls ORDER BY ts").set_index("span_id")
    chat = calls.loc["eee19b7ec3c1b175"]
    assert chat["trace_id"] == "5b8efff798038103d269b633813fc60c"  # upper-case hex lowered
    assert chat["provider"] == "openai" and chat["model"] == "gpt-4o-2024-08-06"
    assert chat["cache_read_tokens"] == 1000 and chat["ttft_ms"] == 210.5
    assert chat["tenant"] == "acme" and chat["user_id"] == "u-42" and chat["agent"] == "planner"
    assert chat["session_id"] == "conv-1" and chat["prompt_hash"] == "ab12"
    assert chat["region"] == "eu-west-1" and chat["service_version"] == "1.4.2"
    assert chat["reported_cost_usd"] == 0.004 and chat["attr_style"] == "current"
    assert chat["cost_usd"] == pytest.approx(200 * 2.5e-6 + 1000 * 1.25e-6 + 300 * 10e-6)
    claude = calls.loc["eee19b7ec3c1b176"]
    assert claude["status"] == "error" and claude["error_type"] == "rate_limit"
    assert claude["attr_style"] == "deprecated" and claude["ttft_ms"] == 500.0
    assert claude["provider"] == "anthropic" and claude["input_tokens"] == 800
    oi = calls.loc["b7ad6b7169203331"]
    assert oi["attr_style"] == "openinference" and oi["model"] == "o3"
    assert oi["reasoning_tokens"] == 400 and oi["output_tokens"] == 500
    assert pd.isna(calls.loc["b7ad6b7169203333"]["cost_usd"])  # unknown model: NULL, not 0
    assert "eee19b7ec3c1b174" not in calls.index  # invoke_agent is not an inference call

    attrs = json.loads(
        wh.query("SELECT attributes FROM spans WHERE span_id = 'eee19b7ec3c1b175'")["attributes"][0]
    )
    assert attrs["flags"] == [True, 7, "x"] and attrs["meta"] == {"a": 1.5, "b": "AAEC"}
    assert attrs["gen_ai.usage.input_tokens"] == 1200
    assert "gen_ai.input.messages" not in attrs  # store_content is off by default
    orphan = wh.query("SELECT parent_span_id FROM spans WHERE span_id = 'b7ad6b7169203332'")
    assert orphan["parent_span_id"][0] == "ffffffffffffffff"  # dangling parent kept

    q = wh.query("SELECT position, reason FROM quarantine ORDER BY reason")
    assert ("line 2", "line is not valid JSON") in set(map(tuple, q.values.tolist()))
    assert any("unknown severityNumber 99" in r for r in q["reason"])
    assert any("not-a-date" in r for r in q["reason"])

    prom = wh.query(
        "SELECT ts FROM metrics WHERE name = 'lumina_requests_total' "
        'AND labels = \'{"code":"200","route":"/chat"}\''
    )
    assert str(prom["ts"][0]) == "2025-06-15 15:06:40"


def test_reingest_adds_nothing_and_overlap_no_duplicates(wh: Warehouse, tmp_path: Path) -> None:
    a = _write_jsonl(tmp_path / "a.jsonl", [_doc([_span(i) for i in range(5)])])
    b = _write_jsonl(tmp_path / "b.jsonl", [_doc([_span(i) for i in range(3, 8)])])
    assert ingest_paths([a], wh, progress=False).ok
    again = ingest_paths([a], wh, progress=False)
    assert again.files[0].status == "skipped"
    r = ingest_paths([b], wh, progress=False)
    assert r.files[0].rows_loaded["spans"] == 3  # 3..4 were already there
    assert _counts(wh)["spans"] == 8


def test_privacy_settings(monkeypatch: pytest.MonkeyPatch, wh: Warehouse) -> None:
    import hashlib

    monkeypatch.setenv("LUMINA_HASH_USER_IDS", "true")
    monkeypatch.setenv("LUMINA_USER_ID_SALT", "pepper")
    monkeypatch.setenv("LUMINA_STORE_CONTENT", "true")
    assert ingest_paths([SAMPLES / "genai_traces.jsonl"], wh, progress=False).ok
    uid = wh.query("SELECT user_id FROM llm_calls WHERE span_id = 'eee19b7ec3c1b175'")
    assert uid["user_id"][0] == hashlib.sha256(b"pepperu-42").hexdigest()
    attrs = wh.query("SELECT attributes FROM spans WHERE span_id = 'eee19b7ec3c1b175'")
    assert "gen_ai.input.messages" in json.loads(attrs["attributes"][0])


def test_mapping_file(wh: Warehouse) -> None:
    r = ingest_paths(
        [SAMPLES / "custom_spans.csv"],
        wh,
        progress=False,
        mapping=SAMPLES / "custom_spans.mapping.yaml",
    )
    assert r.ok, str(r)
    spans = wh.query("SELECT * FROM spans ORDER BY start_ts")
    assert spans["parent_span_id"].isna().tolist() == [True, False]
    assert spans["kind"].tolist() == ["server", "server"]
    assert str(spans["start_ts"][1]) == "2025-06-15 15:06:40.002000"


def test_parquet_and_prometheus_mtime(wh: Warehouse, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2025-06-15 10:00", "2025-06-15 11:00"]),
            "service": ["a", "b"],
            "version": ["1", "2"],
            "region": ["eu", "us"],
            "strategy": ["canary", "rolling"],
        }
    )
    frame.to_parquet(tmp_path / "deploys.bin")
    prom = tmp_path / "scrape.txt"
    shutil.copy(SAMPLES / "scrape.prom", prom)
    os.utime(prom, (1_760_000_000, 1_760_000_000))
    r = ingest_paths([tmp_path / "deploys.bin", prom], wh, progress=False)
    assert r.ok, str(r)
    assert [f.format for f in r.files] == ["parquet:deployments", "prometheus"]
    assert wh.query("SELECT count(*) AS n FROM deployments")["n"][0] == 2
    ts = wh.query("SELECT ts FROM metrics WHERE name = 'lumina_queue_depth'")["ts"][0]
    assert ts == pd.Timestamp(1_760_000_000, unit="s")  # no timestamp -> file mtime (UTC)


def test_unmatched_csv_fails_cleanly(wh: Warehouse) -> None:
    r = ingest_paths([SAMPLES / "custom_spans.csv"], wh, progress=False)
    assert not r.ok and "matches no warehouse table" in r.files[0].message
    assert _counts(wh)["spans"] == 0


# -- malformed input ------------------------------------------------------------------------


def test_record_level_problems_are_quarantined(wh: Warehouse, tmp_path: Path) -> None:
    big = "x" * (10 * 1024 * 1024)
    spans = [
        _span(1),
        _span(2, traceId=""),  # missing id
        _span(3, spanId=12345),  # wrong type
        _span(4, endTimeUnixNano="1"),  # negative duration
        _span(5, startTimeUnixNano="yesterday"),  # bad timestamp
        _span(6, kind=9),  # unknown enum
        _span(7, status={"code": 7}),
        _span(8, attributes=[{"key": "huge", "value": {"stringValue": big}}]),
        _span(1),  # duplicate of the first
        _span(9, traceId="ASNFZ4mrze8BI0VniavN7w==", spanId="AAAAAAAAAAk="),  # base64 ids
    ]
    f = _write_jsonl(tmp_path / "bad.jsonl", [_doc(spans), {"oops": 1}])
    with open(f, "a") as fh:
        fh.write('{"resourceSpans": [\n')
    r = ingest_paths([f], wh, progress=False)
    assert r.ok and r.files[0].rows_loaded["spans"] == 3
    q = wh.query("SELECT position, reason, length(raw) AS n FROM quarantine")
    reasons = dict(zip(q["position"], q["reason"], strict=True))
    assert reasons["span 2 of line 1"] == "missing traceId"
    assert reasons["span 3 of line 1"].startswith("invalid spanId")
    assert reasons["span 4 of line 1"].startswith("negative duration")
    assert "startTimeUnixNano" in reasons["span 5 of line 1"]
    assert reasons["span 6 of line 1"] == "unknown span kind 9 (expected 0-5)"
    assert reasons["span 7 of line 1"].startswith("unknown status code 7")
    assert reasons["span 9 of line 1"].startswith("duplicate spans key")
    assert reasons["line 3"] == "line is not valid JSON"
    assert q["n"].max() <= 64 * 1024
    huge = wh.query("SELECT attributes FROM spans WHERE span_id = '0000000000000008'")
    value = json.loads(huge["attributes"][0])["huge"]
    assert len(value) < 70 * 1024 and value.endswith("chars]")
    ids = wh.query("SELECT trace_id, span_id FROM spans WHERE name = 'op9'")
    assert ids.values.tolist() == [["0123456789abcdef0123456789abcdef", "0000000000000009"]]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{\n  "resourceSpans": [{"scopeSpans": [', "not valid JSON"),
        (b'{"resourceSpans": []}\n{"resourceSpans": ["\xff\xfe"]}\n', "UTF-8"),
        (b"hello world\nthis is not telemetry\n", "unknown format"),
        (b'[{"traceId": "abc", "id": "1"', "not valid JSON"),
    ],
)
def test_unparseable_file_fails_and_stores_nothing(
    wh: Warehouse, tmp_path: Path, content: bytes, problem: str
) -> None:
    _write_jsonl(tmp_path / "a_good.jsonl", [_doc([_span(1)])])
    bad = tmp_path / "b_bad.json"
    bad.write_bytes(content)
    r = ingest_paths([tmp_path / "a_good.jsonl", bad], wh, progress=False)  # named explicitly
    assert [f.status for f in r.files] == ["ok", "failed"]
    assert problem in r.files[1].message and str(bad) in r.files[1].message
    assert _counts(wh)["spans"] == 1 and _counts(wh)["quarantine"] == 0
    log = wh.query("SELECT status, sha256 FROM ingest_log ORDER BY status")
    assert log["status"].tolist() == ["failed", "ok"]


def test_folder_skips_files_of_unknown_format(wh: Warehouse, tmp_path: Path) -> None:
    _write_jsonl(tmp_path / "a_good.jsonl", [_doc([_span(1)])])
    (tmp_path / "effects.json").write_text('[{"incident": "outage", "factor": 2.0}]')
    (tmp_path / "notes.bin").write_bytes(b"hello world\nthis is not telemetry\n")
    r = ingest_paths([tmp_path], wh, progress=False)
    assert r.ok
    assert [f.status for f in r.files] == ["ok", "skipped", "skipped"]
    assert all("not a telemetry file" in f.message for f in r.files[1:])
    assert wh.query("SELECT count(*) AS n FROM ingest_log WHERE status = 'failed'")["n"][0] == 0
    # the same file named explicitly still fails
    again = ingest_paths([tmp_path / "effects.json"], wh, progress=False)
    assert [f.status for f in again.files] == ["failed"]


def test_crash_mid_commit_leaves_nothing(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lumina_analytics.ingest import loader

    f = _write_jsonl(tmp_path / "a.jsonl", [_doc([_span(i) for i in range(10)])])

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(loader, "_log", boom)  # fails after the spans were inserted
    with pytest.raises(RuntimeError):
        ingest_paths([f], wh, progress=False)
    monkeypatch.undo()
    assert _counts(wh)["spans"] == 0
    assert ingest_paths([f], wh, progress=False).files[0].rows_loaded["spans"] == 10


def test_second_writer_gets_lock_message(wh: Warehouse, tmp_path: Path) -> None:
    f = _write_jsonl(tmp_path / "a.jsonl", [_doc([_span(1)])])
    wh.init()
    with wh.writer(), pytest.raises(WarehouseLockedError, match="another writer"):
        ingest_paths([f], wh, progress=False)


def test_gzip_and_single_document(wh: Warehouse, tmp_path: Path) -> None:
    doc = json.dumps(_doc([_span(i) for i in range(4)]), indent=2).encode()
    (tmp_path / "pretty.json").write_bytes(doc)
    (tmp_path / "lines.jsonl.gz").write_bytes(
        gzip.compress(json.dumps(_doc([_span(i) for i in range(4, 6)])).encode() + b"\n")
    )
    r = ingest_paths([tmp_path], wh, progress=False)
    assert r.ok, str(r)
    assert _counts(wh)["spans"] == 6


# -- CLI ------------------------------------------------------------------------------------


def test_cli_ingest_unpriced_and_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    w = tmp_path / "cli.duckdb"
    monkeypatch.setenv("LUMINA_WAREHOUSE", str(w))
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLES / "genai_traces.jsonl", folder)
    (folder / "broken.json").write_text('{"resourceSpans": [')
    rc = cli_main(["--warehouse", str(w), "ingest", str(folder), "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 1 and "TOTAL" in out
    assert f"{folder / 'broken.json'}" in err and "not valid JSON" in err
    assert cli_main(["--warehouse", str(w), "ingest", "unpriced"]) == 0
    out, _ = capsys.readouterr()
    assert "no-such-model-xyz" in out
    assert cli_main(["--warehouse", str(w), "ingest", "log"]) == 0
    out, _ = capsys.readouterr()
    assert "failed" in out and "recent ingests" in out
    with pytest.raises(SystemExit):
        cli_main(["ingest", "--help"])
    assert "--price-overrides" in capsys.readouterr().out


def test_span_positions_count_across_resources_and_scopes(wh: Warehouse, tmp_path: Path) -> None:
    bad = _span(4, kind=9)
    doc = {
        "resourceSpans": [
            {"scopeSpans": [{"spans": [_span(1), _span(2)]}, {"spans": [_span(3)]}]},
            {"scopeSpans": [{"spans": []}, {"spans": [bad, _span(5)]}]},
        ]
    }
    (tmp_path / "t.jsonl").write_text(
        json.dumps(_doc([_span(9)])) + "\n{not json\n" + json.dumps(doc) + "\n"
    )
    r = ingest_paths([tmp_path / "t.jsonl"], wh, progress=False)
    assert r.files[0].rows_loaded["spans"] == 5
    q = wh.query("SELECT position, reason FROM quarantine ORDER BY position")
    assert q["position"].tolist() == ["line 2", "span 4 of line 3"]
    assert q["reason"].tolist()[0] == "line is not valid JSON"


# -- metrics and logs (SQL readers) ---------------------------------------------------------


def _kvs(**attrs: Any) -> list[dict[str, Any]]:
    out = []
    for k, v in attrs.items():
        key = k.replace("_", ".")
        if isinstance(v, bool):
            out.append({"key": key, "value": {"boolValue": v}})
        elif isinstance(v, int):
            out.append({"key": key, "value": {"intValue": str(v)}})
        else:
            out.append({"key": key, "value": {"stringValue": v}})
    return out


def test_metric_points_values_labels_and_quarantine(wh: Warehouse, tmp_path: Path) -> None:
    t = "1750000000000000000"
    metrics = [
        {
            "name": "req",
            "sum": {
                "dataPoints": [
                    # repeated key: the last value wins; keys come out sorted
                    {
                        "attributes": _kvs(zone="b", code=200) + _kvs(zone="a"),
                        "timeUnixNano": t,
                        "asInt": "7",
                    },
                    {"timeUnixNano": t, "asDouble": "oops"},  # point 2: non-numeric
                ]
            },
        },
        {"gauge": {"dataPoints": [{"timeUnixNano": t, "asDouble": 1.0}]}},  # point 3: no name
        {
            "name": "lat",
            "summary": {
                "dataPoints": [
                    {
                        "attributes": _kvs(service_name="own"),
                        "timeUnixNano": t,
                        "count": "4",
                        "sum": 10.5,
                        "quantileValues": [
                            {"quantile": 0.5, "value": 2},
                            {"quantile": 0.99, "value": 9.5},
                        ],
                    }
                ]
            },
            "histogram": {"dataPoints": [{"timeUnixNano": "soon", "count": 1}]},
        },
    ]
    doc = {
        "resourceMetrics": [
            {
                "resource": {"attributes": _kvs(service_name="api")},
                "scopeMetrics": [{"metrics": metrics}],
            }
        ]
    }
    f = tmp_path / "m.jsonl"
    f.write_text("\n" + json.dumps(doc) + "\n")
    r = ingest_paths([f], wh, progress=False)
    assert r.ok, str(r)
    rows = wh.query("SELECT name, labels, value FROM metrics ORDER BY name, value")
    got = [tuple(x) for x in rows.values.tolist()]
    assert got == [
        ("lat", '{"quantile":0.5,"service.name":"own"}', 2.0),
        ("lat", '{"quantile":0.99,"service.name":"own"}', 9.5),
        ("lat_count", '{"service.name":"own"}', 4.0),
        ("lat_sum", '{"service.name":"own"}', 10.5),
        ("req", '{"code":200,"service.name":"api","zone":"a"}', 7.0),
    ]
    q = wh.query("SELECT position, reason FROM quarantine ORDER BY position")
    assert q.values.tolist() == [
        ["point 2 of line 2", "non-numeric value oops"],
        ["point 3 of line 2", "metric point without name"],
        ["point 4 of line 2", "missing or invalid timeUnixNano"],  # histogram before summary
    ]


def test_log_records_severity_body_ids(wh: Warehouse, tmp_path: Path) -> None:
    t = 1_750_000_000_000_000_000
    recs = [
        {
            "timeUnixNano": str(t),
            "severityNumber": "SEVERITY_NUMBER_WARN2",
            "body": {"stringValue": "slow"},
            "traceId": "ASNFZ4mrze8BI0VniavN7w==",
        },
        {
            "observedTimeUnixNano": str(t + 1000),
            "severityText": "notice",
            "body": {"kvlistValue": {"values": _kvs(msg="ok", n=2)}},
        },
        {
            "timeUnixNano": str(t + 2000),
            "severityNumber": 21,
            "body": {"intValue": "5"},
            "attributes": _kvs(user="alice@example.com"),
            "spanId": "not-an-id",
        },
        {"severityNumber": 9},  # no time at all
    ]
    doc = {
        "resourceLogs": [
            {
                "resource": {"attributes": _kvs(service_name="gw")},
                "scopeLogs": [{"logRecords": recs[:2]}, {"logRecords": recs[2:]}],
            }
        ]
    }
    f = tmp_path / "l.jsonl"
    f.write_text(json.dumps(doc) + "\r\n{broken\n")
    r = ingest_paths([f], wh, progress=False)
    assert r.ok and r.files[0].rows_loaded["logs"] == 3
    logs = wh.query(
        "SELECT severity, service, body, trace_id, span_id, attributes, source_position "
        "FROM logs ORDER BY ts"
    )
    assert logs["severity"].tolist() == ["WARN", "NOTICE", "FATAL"]
    assert set(logs["service"]) == {"gw"}
    assert logs["body"].tolist() == ["slow", '{"msg":"ok","n":2}', "5"]
    assert logs["trace_id"][0] == "0123456789abcdef0123456789abcdef"  # base64 id decoded
    assert pd.isna(logs["span_id"][2])  # an invalid id on a log record is dropped, not fatal
    assert json.loads(logs["attributes"][2]) == {"user": "[REDACTED:email]"}
    assert logs["source_position"].tolist() == [
        "record 1 of line 1",
        "record 2 of line 1",
        "record 3 of line 1",
    ]
    q = wh.query("SELECT position, reason FROM quarantine ORDER BY position")
    assert q.values.tolist() == [
        ["line 2", "line is not valid JSON"],
        ["record 4 of line 1", "missing or invalid timeUnixNano"],
    ]


def test_small_chunks_keep_positions_and_quarantine(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lumina_analytics.ingest import otlp

    monkeypatch.setattr(otlp, "TRACE_CHUNK_BYTES", 700)  # a few lines per batch
    lines = []
    for i in range(12):
        lines.append(json.dumps(_doc([_span(2 * i), _span(2 * i + 1)])))
        if i == 5:
            lines.append("not json at all")
        if i == 8:
            lines.append("")
    lines.append(json.dumps(_doc([_span(3, kind=42)])))  # duplicate key and a bad kind
    f = tmp_path / "many.jsonl"
    f.write_text("\n".join(lines) + "\n")
    r = ingest_paths([f], wh, progress=False)
    assert r.ok and r.files[0].rows_loaded["spans"] == 24
    q = wh.query("SELECT position, reason FROM quarantine ORDER BY position")
    assert q.values.tolist() == [
        ["line 7", "line is not valid JSON"],
        ["span 1 of line 15", "unknown span kind 42 (expected 0-5)"],
    ]
    pos = wh.query("SELECT count(*) AS n FROM spans WHERE span_id = '0000000000000017'")
    assert pos["n"][0] == 1
