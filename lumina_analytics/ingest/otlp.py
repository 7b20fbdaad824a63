"""OTLP/JSON readers: traces (vectorised in DuckDB), metrics and logs.

Input: one JSON document (``TracesData``/``MetricsData``/``LogsData``) or JSON Lines with one
such document per line, optionally gzip-compressed. Files are read in bounded chunks
(``CHUNK_BYTES``) so memory stays flat on JSON Lines of any size; a single multi-line JSON
document is read whole (use JSON Lines for very large exports).

Decisions (documented behaviour):

* ids: hex in any case -> lower-case; base64 ids (protobuf-JSON style, 24/12 chars) are
  decoded to hex; anything else -> the span is quarantined.
* 64-bit integers (timestamps, ``intValue``) may be decimal strings or numbers.
* enums: span kind 0-5 or ``SPAN_KIND_*`` names; status code 0-2 or ``STATUS_CODE_*``; log
  severity number 0-24. An unknown enum value quarantines the record (reason names the value).
* missing start time, end before start (negative duration), timestamps outside 1970-2200 ->
  quarantine. Missing or dangling ``parentSpanId`` is kept (orphans stay queryable).
* attribute values of every AnyValue type are flattened into one JSON object; arrays and
  kvlists are kept one level deep (deeper values stay as their OTLP JSON). String values longer
  than ``MAX_ATTR_CHARS`` are truncated with a ``...[truncated N chars]`` marker (the span is
  kept; the file's ingest_log message counts truncations).
* with ``store_content`` off, prompt/completion content attributes are dropped before storing.
* a line that is not valid JSON is quarantined as ``line N``; a single-document file that is
  not valid JSON (e.g. truncated) fails as a whole.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from lumina_analytics.errors import IngestError
from lumina_analytics.ingest.detect import decode_text, is_gzip, open_binary
from lumina_analytics.ingest.stage import RAW_LIMIT, Stage

CHUNK_BYTES = 32 * 1024 * 1024
MAX_ATTR_CHARS = 64 * 1024

#: attribute keys that carry prompt/completion content (dropped unless store_content is on)
CONTENT_KEY_REGEX = (
    r"^(gen_ai\.(prompt|completion|input\.messages|output\.messages|system_instructions|"
    r"tool\.call\.arguments|tool\.call\.result)|llm\.(input_messages|output_messages|prompts|"
    r"prompt_template\.variables)|input\.value|output\.value)"
)

_KV = [
    {
        "key": "VARCHAR",
        "value": {
            "stringValue": "VARCHAR",
            "intValue": "VARCHAR",
            "doubleValue": "VARCHAR",
            "boolValue": "VARCHAR",
            "bytesValue": "VARCHAR",
            "arrayValue": "JSON",
            "kvlistValue": "JSON",
        },
    }
]
_SPAN = {
    "traceId": "VARCHAR",
    "spanId": "VARCHAR",
    "parentSpanId": "VARCHAR",
    "name": "VARCHAR",
    "kind": "VARCHAR",
    "startTimeUnixNano": "VARCHAR",
    "endTimeUnixNano": "VARCHAR",
    "attributes": _KV,
    "status": {"code": "VARCHAR", "message": "VARCHAR"},
}
_TRACES_DOC = json.dumps(
    {
        "resourceSpans": [
            {
                "resource": {"attributes": _KV},
                "scopeSpans": [{"scope": {"name": "VARCHAR"}, "spans": [_SPAN]}],
            }
        ]
    }
)

_MACROS = [
    r"""
CREATE OR REPLACE MACRO lumina_trunc(s) AS CASE
  WHEN length(s) > {max} THEN left(s, {max}) || '...[truncated ' || (length(s) - {max}) || ' chars]'
  ELSE s END
""",
    r"""
CREATE OR REPLACE MACRO lumina_av_json(v) AS CASE
  WHEN json_exists(v, '$.stringValue') THEN to_json(lumina_trunc(json_extract_string(v, '$.stringValue')))
  WHEN json_exists(v, '$.intValue') THEN to_json(TRY_CAST(json_extract_string(v, '$.intValue') AS HUGEINT))
  WHEN json_exists(v, '$.doubleValue') THEN to_json(TRY_CAST(json_extract_string(v, '$.doubleValue') AS DOUBLE))
  WHEN json_exists(v, '$.boolValue') THEN to_json(TRY_CAST(json_extract_string(v, '$.boolValue') AS BOOLEAN))
  WHEN json_exists(v, '$.bytesValue') THEN to_json(json_extract_string(v, '$.bytesValue'))
  ELSE v END
""",
    r"""
CREATE OR REPLACE MACRO lumina_av(v) AS CASE
  WHEN v.stringValue IS NOT NULL THEN to_json(lumina_trunc(v.stringValue))
  WHEN v.intValue IS NOT NULL THEN to_json(TRY_CAST(v.intValue AS HUGEINT))
  WHEN v.doubleValue IS NOT NULL THEN to_json(TRY_CAST(v.doubleValue AS DOUBLE))
  WHEN v.boolValue IS NOT NULL THEN to_json(TRY_CAST(v.boolValue AS BOOLEAN))
  WHEN v.bytesValue IS NOT NULL THEN to_json(v.bytesValue)
  WHEN v.arrayValue IS NOT NULL THEN to_json(list_transform(
      json_extract(v.arrayValue, '$.values[*]'), lambda e: lumina_av_json(e)))
  WHEN v.kvlistValue IS NOT NULL THEN ('{' || array_to_string(list_transform(
      json_extract(v.kvlistValue, '$.values[*]'),
      lambda e: to_json(json_extract_string(e, '$.key')) || ':' ||
                coalesce(lumina_av_json(json_extract(e, '$.value'))::VARCHAR, 'null')), ',') || '}')::JSON
  ELSE NULL END
""",
    r"""
CREATE OR REPLACE MACRO lumina_attrs(a, drop_content) AS ('{' || coalesce(array_to_string(
  list_transform(
    list_filter(a, lambda x: x.key IS NOT NULL AND NOT (drop_content AND regexp_matches(x.key, '{content}'))),
    lambda x: to_json(x.key) || ':' || coalesce(lumina_av(x.value)::VARCHAR, 'null')), ','), '') || '}')::JSON
""",
    r"""
CREATE OR REPLACE MACRO lumina_id(s, n) AS CASE
  WHEN s IS NULL OR s = '' THEN NULL
  WHEN length(s) = 2 * n AND regexp_full_match(s, '[0-9a-fA-F]+') THEN lower(s)
  WHEN length(s) = 4 * ((n + 2) // 3) AND octet_length(TRY(from_base64(s))) = n
    THEN lower(hex(TRY(from_base64(s))))
  ELSE NULL END
""",
    r"""
CREATE OR REPLACE MACRO lumina_ns(s) AS TRY_CAST(trim(s, '"') AS HUGEINT)
""",
    r"""
CREATE OR REPLACE MACRO lumina_ts(ns) AS CASE
  WHEN ns BETWEEN 0 AND 7258118400000000000 THEN make_timestamp_ns(ns::BIGINT)::TIMESTAMP END
""",
]


def install_macros(stage: Stage) -> None:
    """Create the SQL macros the OTLP and GenAI steps use on the staging connection."""
    for m in _MACROS:
        stage.con.execute(
            m.replace("{max}", str(MAX_ATTR_CHARS)).replace("{content}", CONTENT_KEY_REGEX)
        )


def iter_line_chunks(
    path: Path, on_bytes: Callable[[int], None] | None = None
) -> Iterator[tuple[int, str]]:
    """Yield ``(first_line_number, text)`` chunks of whole lines, decoded as UTF-8."""
    line_no = 1
    offset = 0
    carry = b""
    with open_binary(path) as f:
        while True:
            block = f.read(CHUNK_BYTES)
            if on_bytes is not None and block:
                on_bytes(len(block))
            if not block:
                if carry:
                    yield line_no, decode_text(path, carry, offset)
                return
            data = carry + block
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            complete, carry = data[: cut + 1], data[cut + 1 :]
            text = decode_text(path, complete, offset)
            yield line_no, text
            line_no += complete.count(b"\n")
            offset += len(complete)


def _first_line_is_document(path: Path) -> bool:
    """JSON Lines if the first non-blank line is a complete JSON value."""
    with open_binary(path) as f:
        first = b""
        for raw in f:
            if raw.strip():
                first = raw
                break
    try:
        json.loads(first)
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def _chunks(path: Path, on_bytes: Callable[[int], None] | None) -> Iterator[tuple[int, str, bool]]:
    """Chunks plus a flag telling whether the file is one multi-line document."""
    if _first_line_is_document(path):
        for start, text in iter_line_chunks(path, on_bytes):
            yield start, text, False
        return
    with open_binary(path) as f:
        data = f.read()
    if on_bytes is not None:
        on_bytes(len(data))
    yield 1, decode_text(path, data), True


def _load_all_lines(stage: Stage, path: Path) -> int:
    """Load every line of a JSON Lines file into ``_all`` (line_no, line) with DuckDB's
    CSV reader (C++, spills to disk); returns the number of lines."""
    if is_gzip(path):
        # DuckDB's gzip CSV path reserves 16x max_line_size; unpack to the stage's temp dir
        plain = Path(stage.tmpdir) / "unpacked.jsonl"
        with open_binary(path) as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
        path = plain
    try:
        stage.con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _all AS
            SELECT row_number() OVER () AS line_no, line FROM read_csv(?,
              columns = {'line': 'VARCHAR'}, delim = chr(31), quote = '', escape = '',
              header = false, auto_detect = false, max_line_size = 268435456,
              compression = ?)
            """,
            [str(path), "none"],
        )
    except duckdb.Error as exc:
        msg = str(exc)
        m = re.search(r"Error on Line: (\d+)", msg)
        where = f"line {m.group(1)}" if m else None
        if "unicode" in msg.lower() or "utf" in msg.lower():
            raise IngestError(
                stage.path, where, "not UTF-8 text; re-encode the file as UTF-8"
            ) from exc
        raise IngestError(stage.path, where, f"cannot read lines: {msg.splitlines()[0]}") from exc
    return int(stage.con.execute("SELECT count(*) FROM _all").fetchall()[0][0])


def _line_batches(
    stage: Stage, path: Path, on_bytes: Callable[[int], None] | None
) -> Iterator[bool]:
    """Fill ``_lines`` batch after batch (bounded size); yields whether it is a whole document."""
    if not _first_line_is_document(path):
        with open_binary(path) as f:
            data = f.read()
        if on_bytes is not None:
            on_bytes(len(data))
        text = decode_text(path, data)
        stage.con.execute("DROP TABLE IF EXISTS _lines")
        stage.con.execute(
            "CREATE TEMP TABLE _lines AS SELECT 1::BIGINT AS line_no, ?::VARCHAR AS line", [text]
        )
        if not stage.con.execute("SELECT json_valid(line) FROM _lines").fetchall()[0][0]:
            raise IngestError(
                stage.path,
                None,
                "not valid JSON (truncated or malformed document); nothing was loaded",
            )
        yield True
        return
    _load_all_lines(stage, path)
    stage.con.execute("DROP TABLE IF EXISTS _lines")
    stage.con.execute("ALTER TABLE _all RENAME TO _lines")
    bad = stage.con.execute(
        f"SELECT line_no, left(line, {RAW_LIMIT}) FROM _lines "
        "WHERE trim(line) <> '' AND NOT json_valid(line)"
    ).fetchall()
    for line_no, raw in bad:
        stage.quarantine(f"line {line_no}", "line is not valid JSON", raw)
    if on_bytes is not None:
        on_bytes(path.stat().st_size)
    yield False


def read_otlp_traces(
    path: Path, stage: Stage, drop_content: bool, on_bytes: Callable[[int], None] | None = None
) -> None:
    """Stage spans from an OTLP/JSON traces file."""
    install_macros(stage)
    name = stage.ensure("spans")
    dc = "true" if drop_content else "false"
    for _whole in _line_batches(stage, path, on_bytes):
        stage.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _sp AS
            WITH d AS (
              SELECT line_no, from_json(line, '{_TRACES_DOC}') AS doc
              FROM _lines WHERE json_valid(line)),
            rs AS (SELECT line_no, unnest(doc.resourceSpans) AS rs FROM d),
            ss AS (SELECT line_no, lumina_attrs(rs.resource.attributes, false) AS res,
                          unnest(rs.scopeSpans) AS ss
                   FROM rs),
            sp AS (SELECT line_no, res, unnest(ss.spans) AS span FROM ss),
            u AS (SELECT line_no, row_number() OVER (PARTITION BY line_no) AS idx,
                         {{'res': res, 'span': span}} AS e FROM sp)
            SELECT
              'span ' || idx || ' of line ' || line_no AS _pos,
              e.span AS raw_span,
              lumina_id(e.span.traceId, 16) AS trace_id,
              lumina_id(e.span.spanId, 8) AS span_id,
              lumina_id(e.span.parentSpanId, 8) AS parent_span_id,
              nullif(e.span.parentSpanId, '') IS NOT NULL AND lumina_id(e.span.parentSpanId, 8) IS NULL AS bad_parent,
              e.span.name AS name,
              CASE upper(coalesce(e.span.kind, '0'))
                WHEN '0' THEN 'unspecified' WHEN 'SPAN_KIND_UNSPECIFIED' THEN 'unspecified'
                WHEN '1' THEN 'internal' WHEN 'SPAN_KIND_INTERNAL' THEN 'internal'
                WHEN '2' THEN 'server' WHEN 'SPAN_KIND_SERVER' THEN 'server'
                WHEN '3' THEN 'client' WHEN 'SPAN_KIND_CLIENT' THEN 'client'
                WHEN '4' THEN 'producer' WHEN 'SPAN_KIND_PRODUCER' THEN 'producer'
                WHEN '5' THEN 'consumer' WHEN 'SPAN_KIND_CONSUMER' THEN 'consumer'
              END AS kind,
              e.span.kind AS raw_kind,
              CASE upper(coalesce(e.span.status.code, '0'))
                WHEN '0' THEN 'unset' WHEN 'STATUS_CODE_UNSET' THEN 'unset'
                WHEN '1' THEN 'ok' WHEN 'STATUS_CODE_OK' THEN 'ok'
                WHEN '2' THEN 'error' WHEN 'STATUS_CODE_ERROR' THEN 'error'
              END AS status_code,
              e.span.status.code AS raw_status,
              e.span.status.message AS status_message,
              lumina_ns(e.span.startTimeUnixNano) AS st,
              lumina_ns(e.span.endTimeUnixNano) AS et,
              lumina_attrs(e.span.attributes, {dc}) AS attributes,
              e.res AS resource
            FROM u
            """
        )
        stage.con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _sp2 AS
            SELECT *, CASE
              WHEN raw_span.traceId IS NULL OR raw_span.traceId = '' THEN 'missing traceId'
              WHEN trace_id IS NULL THEN 'invalid traceId ' || to_json(raw_span.traceId)
              WHEN raw_span.spanId IS NULL OR raw_span.spanId = '' THEN 'missing spanId'
              WHEN span_id IS NULL THEN 'invalid spanId ' || to_json(raw_span.spanId)
              WHEN bad_parent THEN 'invalid parentSpanId ' || to_json(raw_span.parentSpanId)
              WHEN kind IS NULL THEN 'unknown span kind ' || raw_kind || ' (expected 0-5)'
              WHEN status_code IS NULL THEN 'unknown status code ' || raw_status || ' (expected 0-2)'
              WHEN st IS NULL THEN 'missing or invalid startTimeUnixNano'
              WHEN lumina_ts(st) IS NULL THEN 'startTimeUnixNano ' || st || ' out of range'
              WHEN raw_span.endTimeUnixNano IS NOT NULL AND et IS NULL THEN 'invalid endTimeUnixNano'
              WHEN et IS NOT NULL AND lumina_ts(et) IS NULL THEN 'endTimeUnixNano ' || et || ' out of range'
              WHEN et IS NOT NULL AND et < st THEN 'negative duration (end ' || et || ' before start ' || st || ')'
            END AS problem
            FROM _sp
            """
        )
        stage.con.execute(
            f"""
            INSERT INTO stage_quarantine
            SELECT _pos, problem, left(to_json(raw_span)::VARCHAR, {RAW_LIMIT}) FROM _sp2
            WHERE problem IS NOT NULL
            """
        )
        stage.con.execute(
            f"""
            INSERT INTO "{name}" (trace_id, span_id, parent_span_id, name, kind, service, start_ts,
              end_ts, duration_ms, status_code, status_message, attributes, resource, _pos)
            SELECT trace_id, span_id, parent_span_id, name, kind,
              coalesce(json_extract_string(resource, '$."service.name"'),
                       json_extract_string(attributes, '$."service.name"')),
              lumina_ts(st), lumina_ts(et), CAST(et - st AS DOUBLE) / 1e6, status_code,
              status_message, attributes, resource, _pos
            FROM _sp2 WHERE problem IS NULL
            """
        )
        stage.con.execute("DROP TABLE _sp; DROP TABLE _sp2; DROP TABLE _lines")
    stage.ensure("spans")


# -- metrics and logs (Python; these files are far smaller than traces) ---------------------


def any_value(v: Any) -> Any:
    """Flatten an OTLP AnyValue into a plain Python value."""
    if not isinstance(v, dict):
        return v
    if "stringValue" in v:
        s = v["stringValue"]
        if isinstance(s, str) and len(s) > MAX_ATTR_CHARS:
            return s[:MAX_ATTR_CHARS] + f"...[truncated {len(s) - MAX_ATTR_CHARS} chars]"
        return s
    if "intValue" in v:
        try:
            return int(v["intValue"])
        except (TypeError, ValueError):
            return None
    if "doubleValue" in v:
        try:
            return float(v["doubleValue"])
        except (TypeError, ValueError):
            return None
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "bytesValue" in v:
        return v["bytesValue"]
    if "arrayValue" in v:
        return [any_value(x) for x in (v["arrayValue"] or {}).get("values", []) or []]
    if "kvlistValue" in v:
        return attrs_dict((v["kvlistValue"] or {}).get("values", []))
    return None


def attrs_dict(kvs: Any) -> dict[str, Any]:
    """OTLP ``KeyValue`` list -> dict."""
    out: dict[str, Any] = {}
    if not isinstance(kvs, list):
        return out
    for kv in kvs:
        if isinstance(kv, dict) and isinstance(kv.get("key"), str):
            out[kv["key"]] = any_value(kv.get("value"))
    return out


def _ns(v: Any) -> int | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        n = int(v)
    except (TypeError, ValueError):
        return None
    return n if 0 < n < 7_258_118_400_000_000_000 else None


def hex_id(v: Any, nbytes: int) -> str | None:
    """Normalise a hex or base64 id to lower-case hex; ``None`` if empty or invalid."""
    if not isinstance(v, str) or not v:
        return None
    if len(v) == 2 * nbytes:
        try:
            bytes.fromhex(v)
            return v.lower()
        except ValueError:
            pass
    import base64
    import binascii

    try:
        b = base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        return None
    return b.hex() if len(b) == nbytes else None


def _iter_docs(
    stage: Stage, path: Path, on_bytes: Callable[[int], None] | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    for start, text, whole in _chunks(path, on_bytes):
        if whole:
            try:
                doc = json.loads(text)
            except ValueError as exc:
                raise IngestError(
                    stage.path, f"line {getattr(exc, 'lineno', '?')}", f"not valid JSON: {exc}"
                ) from exc
            if isinstance(doc, dict):
                yield 1, doc
            continue
        for i, line in enumerate(text.split("\n")):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                stage.quarantine(f"line {start + i}", "line is not valid JSON", line)
                continue
            if not isinstance(doc, dict):
                stage.quarantine(f"line {start + i}", "line is not a JSON object", line)
                continue
            yield start + i, doc


def _labels_json(d: dict[str, Any]) -> str:
    return json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)


def read_otlp_metrics(
    path: Path, stage: Stage, on_bytes: Callable[[int], None] | None = None
) -> None:
    """Stage metric points (gauge, sum, histogram/summary count and sum, quantiles)."""
    rows: list[dict[str, Any]] = []

    def flush() -> None:
        if rows:
            stage.append("metrics", pd.DataFrame(rows))
            rows.clear()

    for line_no, doc in _iter_docs(stage, path, on_bytes):
        k = 0
        for rm in doc.get("resourceMetrics") or []:
            res = attrs_dict((rm.get("resource") or {}).get("attributes"))
            svc = res.get("service.name")
            for sm in rm.get("scopeMetrics") or []:
                for m in sm.get("metrics") or []:
                    name = m.get("name")
                    for kind in ("gauge", "sum", "histogram", "exponentialHistogram", "summary"):
                        body = m.get(kind)
                        if body is None:
                            continue
                        for dp in body.get("dataPoints") or []:
                            k += 1
                            pos = f"point {k} of line {line_no}"
                            ts_ns = _ns(dp.get("timeUnixNano"))
                            if not name or ts_ns is None:
                                stage.quarantine(
                                    pos,
                                    "metric point without name"
                                    if not name
                                    else "missing or invalid timeUnixNano",
                                    dp,
                                )
                                continue
                            labels = attrs_dict(dp.get("attributes"))
                            if svc is not None and "service.name" not in labels:
                                labels["service.name"] = svc
                            ts = pd.Timestamp(ts_ns, unit="ns")
                            values: list[tuple[str, dict[str, Any], Any]] = []
                            if kind in ("gauge", "sum"):
                                raw = dp.get("asDouble", dp.get("asInt"))
                                values.append((name, labels, raw))
                            else:
                                values.append((f"{name}_count", labels, dp.get("count")))
                                if dp.get("sum") is not None:
                                    values.append((f"{name}_sum", labels, dp.get("sum")))
                                for q in dp.get("quantileValues") or []:
                                    values.append(
                                        (
                                            name,
                                            {**labels, "quantile": q.get("quantile")},
                                            q.get("value"),
                                        )
                                    )
                            for n, lab, raw in values:
                                try:
                                    val = float(raw) if raw is not None else None
                                except (TypeError, ValueError):
                                    stage.quarantine(pos, f"non-numeric value {raw!r}", dp)
                                    continue
                                rows.append(
                                    {
                                        "ts": ts,
                                        "name": n,
                                        "labels": _labels_json(lab),
                                        "value": val,
                                        "_pos": pos,
                                    }
                                )
        if len(rows) > 100_000:
            flush()
    flush()


_SEVERITY = {**dict.fromkeys(range(1, 5), "TRACE"), **dict.fromkeys(range(5, 9), "DEBUG")}
_SEVERITY.update(dict.fromkeys(range(9, 13), "INFO"))
_SEVERITY.update(dict.fromkeys(range(13, 17), "WARN"))
_SEVERITY.update(dict.fromkeys(range(17, 21), "ERROR"))
_SEVERITY.update(dict.fromkeys(range(21, 25), "FATAL"))


def read_otlp_logs(
    path: Path,
    stage: Stage,
    drop_content: Callable[[dict[str, Any]], dict[str, Any]],
    on_bytes: Callable[[int], None] | None = None,
) -> None:
    """Stage log records."""
    rows: list[dict[str, Any]] = []
    for line_no, doc in _iter_docs(stage, path, on_bytes):
        k = 0
        for rl in doc.get("resourceLogs") or []:
            res = attrs_dict((rl.get("resource") or {}).get("attributes"))
            for sl in rl.get("scopeLogs") or []:
                for rec in sl.get("logRecords") or []:
                    k += 1
                    pos = f"record {k} of line {line_no}"
                    ts_ns = _ns(rec.get("timeUnixNano")) or _ns(rec.get("observedTimeUnixNano"))
                    if ts_ns is None:
                        stage.quarantine(pos, "missing or invalid timeUnixNano", rec)
                        continue
                    sev_num = rec.get("severityNumber")
                    severity = None
                    if sev_num not in (None, 0, "0", "SEVERITY_NUMBER_UNSPECIFIED"):
                        try:
                            sn = int(sev_num)
                        except (TypeError, ValueError):
                            sn = -1
                            if isinstance(sev_num, str) and sev_num.startswith("SEVERITY_NUMBER_"):
                                severity = sev_num.removeprefix("SEVERITY_NUMBER_").rstrip("234")
                        if severity is None:
                            if sn not in _SEVERITY:
                                stage.quarantine(
                                    pos, f"unknown severityNumber {sev_num!r} (expected 0-24)", rec
                                )
                                continue
                            severity = _SEVERITY[sn]
                    if severity is None and rec.get("severityText"):
                        severity = str(rec["severityText"]).upper()
                    body = any_value(rec.get("body"))
                    if body is not None and not isinstance(body, str):
                        body = json.dumps(body, default=str)
                    attrs = drop_content(attrs_dict(rec.get("attributes")))
                    rows.append(
                        {
                            "ts": pd.Timestamp(ts_ns, unit="ns"),
                            "severity": severity,
                            "service": res.get("service.name"),
                            "body": body,
                            "trace_id": hex_id(rec.get("traceId"), 16),
                            "span_id": hex_id(rec.get("spanId"), 8),
                            "attributes": json.dumps(attrs, default=str),
                            "source_sha256": stage.sha256,
                            "source_position": pos,
                            "_pos": pos,
                        }
                    )
        if len(rows) > 100_000:
            stage.append("logs", pd.DataFrame(rows))
            rows.clear()
    if rows:
        stage.append("logs", pd.DataFrame(rows))
    stage.ensure("logs")
