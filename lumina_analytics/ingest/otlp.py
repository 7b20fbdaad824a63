"""OTLP/JSON readers: traces (vectorised in DuckDB), metrics and logs.

Input: one JSON document (``TracesData``/``MetricsData``/``LogsData``) or JSON Lines with one
such document per line, optionally gzip-compressed. Files are read in bounded chunks of whole
lines (``TRACE_CHUNK_BYTES`` for traces, ``CHUNK_BYTES`` for metrics/logs) so memory stays
bounded on JSON Lines of any size; a single multi-line JSON document is read whole (use JSON
Lines for very large exports).

Traces path (one SQL pass per chunk, no Python per span): Arrow splits the chunk into lines and
checks UTF-8; ``json_valid`` flags bad lines (quarantined); ``from_json`` with an explicit
struct schema parses the rest; ``UNNEST`` + ``generate_subscripts`` give each span its
``span K of line N`` position (counted across resourceSpans/scopeSpans); ids, enums, times and
validation are vector expressions; attributes become a JSON object; the ~40 GenAI attribute
keys are pulled from the attribute lists into ``stage__llm_raw`` for :mod:`.genai`.

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
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from lumina_analytics.errors import IngestError
from lumina_analytics.ingest.detect import decode_text, open_binary
from lumina_analytics.ingest.stage import RAW_LIMIT, STAGE_MEMORY_LIMIT, Stage

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
    path: Path, on_bytes: Callable[[int], None] | None = None, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[tuple[int, str]]:
    """Yield ``(first_line_number, text)`` chunks of whole lines, decoded as UTF-8."""
    line_no = 1
    offset = 0
    carry = b""
    with open_binary(path) as f:
        while True:
            block = f.read(chunk_bytes)
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


#: lines per staged batch of a JSON Lines traces file are bounded by ``TRACE_CHUNK_BYTES``
TRACE_CHUNK_BYTES = 8 * 1024 * 1024
#: staging memory limit while a single multi-line JSON document (not JSON Lines) is parsed
WHOLE_DOCUMENT_MEMORY_LIMIT = os.environ.get("LUMINA_WHOLE_DOCUMENT_MEMORY_LIMIT", "2GB")


def _iter_byte_chunks(
    path: Path, on_bytes: Callable[[int], None] | None, chunk_bytes: int
) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(first_line_number, byte_offset, data)`` chunks of whole lines (raw bytes)."""
    line_no = 1
    offset = 0
    carry = b""
    with open_binary(path) as f:
        while True:
            block = f.read(chunk_bytes)
            if on_bytes is not None and block:
                on_bytes(len(block))
            if not block:
                if carry:
                    yield line_no, offset, carry
                return
            data = carry + block
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            complete, carry = data[: cut + 1], data[cut + 1 :]
            yield line_no, offset, complete
            line_no += complete.count(b"\n")
            offset += len(complete)


def _register_lines(stage: Stage, path: Path, first_line: int, offset: int, data: bytes) -> int:
    """Replace ``_lines`` (line_no, line) with the lines of ``data``; returns how many.

    Splitting and UTF-8 validation happen in Arrow (C++); invalid UTF-8 fails the file with
    the byte and line named.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if offset == 0 and data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        offset = 3
    if data.endswith(b"\n"):
        data = data[:-1]
    try:
        text = pa.array([data], pa.large_binary()).cast(pa.large_string())
    except (pa.ArrowInvalid, UnicodeDecodeError):
        decode_text(path, data, offset)  # raises IngestError naming the byte and line
        raise
    lines = pc.split_pattern(text, "\n").flatten()
    del text
    tbl = pa.table(
        {
            "line_no": pa.array(range(first_line, first_line + len(lines)), pa.int64()),
            "line": lines,
        }
    )
    stage.con.register("_lumina_lines", tbl)
    try:
        stage.con.execute(
            "CREATE OR REPLACE TEMP TABLE _lines AS SELECT line_no, line, "
            "CASE WHEN trim(line) <> '' THEN json_valid(line) END AS ok FROM _lumina_lines"
        )
    finally:
        stage.con.unregister("_lumina_lines")
    return len(lines)


def _line_batches(
    stage: Stage, path: Path, on_bytes: Callable[[int], None] | None
) -> Iterator[bool]:
    """Fill ``_lines`` batch after batch (bounded size); yields whether it is a whole document.

    JSON Lines are cut into batches of whole lines of about ``TRACE_CHUNK_BYTES`` so memory
    does not grow with the file; invalid JSON lines are quarantined here.
    """
    if not _first_line_is_document(path):
        with open_binary(path) as f:
            data = f.read()
        if on_bytes is not None:
            on_bytes(len(data))
        text = decode_text(path, data)
        stage.con.execute("DROP TABLE IF EXISTS _lines")
        stage.con.execute(
            "CREATE TEMP TABLE _lines AS SELECT 1::BIGINT AS line_no, ?::VARCHAR AS line, "
            "json_valid(?::VARCHAR) AS ok",
            [text, text],
        )
        del text
        if not stage.con.execute("SELECT ok FROM _lines").fetchall()[0][0]:
            raise IngestError(
                stage.path,
                None,
                "not valid JSON (truncated or malformed document); nothing was loaded",
            )
        # a whole document is parsed at once: allow it more memory than line batches need
        stage.con.execute(f"SET memory_limit = '{WHOLE_DOCUMENT_MEMORY_LIMIT}'")
        try:
            yield True
        finally:
            stage.con.execute(f"SET memory_limit = '{STAGE_MEMORY_LIMIT}'")
        return
    for first_line, offset, data in _iter_byte_chunks(path, on_bytes, TRACE_CHUNK_BYTES):
        _register_lines(stage, path, first_line, offset, data)
        del data
        stage.con.execute(
            f"""
            INSERT INTO stage_quarantine
            SELECT 'line ' || line_no, 'line is not valid JSON', left(line, {RAW_LIMIT})
            FROM _lines WHERE NOT ok
            """
        )
        yield False


def _interest_keys_sql() -> str:
    from lumina_analytics.ingest.genai import ALIASES

    keys: list[str] = []
    for names in ALIASES.values():
        keys.extend(n for n in names if n not in keys)
    return ", ".join("'" + k.replace("'", "''") + "'" for k in keys)


def _llm_raw_sql() -> str:
    """SQL turning the valid GenAI candidate spans of ``_sp`` into raw llm_calls columns."""
    from lumina_analytics.ingest.genai import ALIASES, llm_select_sql

    keys: list[str] = []
    for names in ALIASES.values():
        keys.extend(n for n in names if n not in keys)

    def lookup(lst: str, key: str) -> str:
        k = key.replace("'", "''")
        return f"list_filter({lst}, lambda x: x.k = '{k}')[1].v"

    # each attribute is looked up once (columns "a<i>" / "r<i>"), then referenced by name
    cols = ", ".join(
        f'{lookup("a", k)} AS "a{i}", {lookup("r", k)} AS "r{i}"' for i, k in enumerate(keys)
    )
    idx = {k: i for i, k in enumerate(keys)}
    src = (
        f"(SELECT trace_id, span_id, start_ts, duration_ms, status_code, status_message, "
        f"service, _pos, oi, {cols} FROM _sp WHERE problem IS NULL AND a IS NOT NULL)"
    )
    return llm_select_sql(lambda k: f'"a{idx[k]}"', lambda k: f'"r{idx[k]}"', "oi", src)


def _spans_sql(drop_content: bool) -> str:
    """One pass over ``_lines``: parse, unnest, normalise, validate, GenAI candidate keys."""
    dc = "true" if drop_content else "false"
    keys = _interest_keys_sql()
    kv = (
        "lambda x: {'k': x.key, 'v': coalesce(x.value.stringValue, x.value.intValue, "
        "x.value.doubleValue, x.value.boolValue, x.value.bytesValue)}"
    )
    return f"""
    WITH d AS (
      SELECT line_no, from_json(line, '{_TRACES_DOC}') AS doc
      FROM _lines WHERE ok),
    c AS (
      SELECT line_no, doc, list_transform(doc.resourceSpans,
             lambda rs: list_transform(rs.scopeSpans, lambda s: len(s.spans))) AS cnt
      FROM d),
    rs AS (SELECT line_no, cnt, unnest(doc.resourceSpans) AS rs,
                  generate_subscripts(doc.resourceSpans, 1) AS ri FROM c),
    ss AS (SELECT line_no,
                  lumina_attrs(rs.resource.attributes, false) AS res,
                  list_transform(list_filter(rs.resource.attributes,
                                 lambda x: x.key IN ({keys})), {kv}) AS r,
                  list_filter(rs.resource.attributes,
                              lambda x: x.key = 'service.name')[1].value.stringValue AS res_svc,
                  coalesce(list_sum(flatten(cnt[1:ri - 1])), 0) AS off_rs,
                  cnt[ri] AS cnt_rs,
                  unnest(rs.scopeSpans) AS ss,
                  generate_subscripts(rs.scopeSpans, 1) AS si
           FROM rs),
    u AS (SELECT line_no, res, r, res_svc,
                 off_rs + coalesce(list_sum(cnt_rs[1:si - 1]), 0) AS off,
                 unnest(ss.spans) AS span, generate_subscripts(ss.spans, 1) AS k
          FROM ss),
    v AS (
      SELECT
        'span ' || (off + k) || ' of line ' || line_no AS _pos,
        span,
        lumina_id(span.traceId, 16) AS trace_id,
        lumina_id(span.spanId, 8) AS span_id,
        lumina_id(span.parentSpanId, 8) AS parent_span_id,
        span.name AS name,
        CASE upper(coalesce(span.kind, '0'))
          WHEN '0' THEN 'unspecified' WHEN 'SPAN_KIND_UNSPECIFIED' THEN 'unspecified'
          WHEN '1' THEN 'internal' WHEN 'SPAN_KIND_INTERNAL' THEN 'internal'
          WHEN '2' THEN 'server' WHEN 'SPAN_KIND_SERVER' THEN 'server'
          WHEN '3' THEN 'client' WHEN 'SPAN_KIND_CLIENT' THEN 'client'
          WHEN '4' THEN 'producer' WHEN 'SPAN_KIND_PRODUCER' THEN 'producer'
          WHEN '5' THEN 'consumer' WHEN 'SPAN_KIND_CONSUMER' THEN 'consumer'
        END AS kind,
        CASE upper(coalesce(span.status.code, '0'))
          WHEN '0' THEN 'unset' WHEN 'STATUS_CODE_UNSET' THEN 'unset'
          WHEN '1' THEN 'ok' WHEN 'STATUS_CODE_OK' THEN 'ok'
          WHEN '2' THEN 'error' WHEN 'STATUS_CODE_ERROR' THEN 'error'
        END AS status_code,
        lumina_ns(span.startTimeUnixNano) AS st,
        lumina_ns(span.endTimeUnixNano) AS et,
        res, r, res_svc,
        list_transform(list_filter(span.attributes, lambda x: x.key IN ({keys})), {kv}) AS a0
      FROM u),
    w AS (
      SELECT *, CASE
        WHEN span.traceId IS NULL OR span.traceId = '' THEN 'missing traceId'
        WHEN trace_id IS NULL THEN 'invalid traceId ' || to_json(span.traceId)
        WHEN span.spanId IS NULL OR span.spanId = '' THEN 'missing spanId'
        WHEN span_id IS NULL THEN 'invalid spanId ' || to_json(span.spanId)
        WHEN nullif(span.parentSpanId, '') IS NOT NULL AND parent_span_id IS NULL
          THEN 'invalid parentSpanId ' || to_json(span.parentSpanId)
        WHEN kind IS NULL THEN 'unknown span kind ' || span.kind || ' (expected 0-5)'
        WHEN status_code IS NULL THEN 'unknown status code ' || span.status.code || ' (expected 0-2)'
        WHEN st IS NULL THEN 'missing or invalid startTimeUnixNano'
        WHEN lumina_ts(st) IS NULL THEN 'startTimeUnixNano ' || st || ' out of range'
        WHEN span.endTimeUnixNano IS NOT NULL AND et IS NULL THEN 'invalid endTimeUnixNano'
        WHEN et IS NOT NULL AND lumina_ts(et) IS NULL THEN 'endTimeUnixNano ' || et || ' out of range'
        WHEN et IS NOT NULL AND et < st THEN 'negative duration (end ' || et || ' before start ' || st || ')'
      END AS problem
      FROM v)
    SELECT _pos, problem,
      CASE WHEN problem IS NOT NULL THEN left(to_json(span)::VARCHAR, {RAW_LIMIT}) END AS raw,
      trace_id, span_id, parent_span_id, name, kind, status_code,
      span.status.message AS status_message,
      lumina_ts(st) AS start_ts, lumina_ts(et) AS end_ts, CAST(et - st AS DOUBLE) / 1e6 AS duration_ms,
      CASE WHEN problem IS NULL THEN lumina_attrs(span.attributes, {dc}) END AS attributes,
      res AS resource,
      coalesce(res_svc, list_filter(span.attributes,
               lambda x: x.key = 'service.name')[1].value.stringValue) AS service,
      CASE WHEN gen THEN a0 END AS a,
      CASE WHEN gen THEN len(list_filter(span.attributes, lambda x: starts_with(x.key, 'llm.')
          OR starts_with(x.key, 'openinference.'))) > 0 END AS oi,
      r
    FROM (SELECT *, problem IS NULL AND len(list_filter(a0, lambda x: starts_with(x.k, 'gen_ai.')
                    OR starts_with(x.k, 'llm.') OR starts_with(x.k, 'openinference.'))) > 0 AS gen
          FROM w)
    """


def read_otlp_traces(
    path: Path, stage: Stage, drop_content: bool, on_bytes: Callable[[int], None] | None = None
) -> None:
    """Stage spans from an OTLP/JSON traces file, batch by batch, all in DuckDB SQL.

    Besides ``stage_spans`` this stages the raw GenAI columns of inference spans in
    ``stage__llm_raw`` (read straight from the attribute lists, no JSON re-parsing);
    :func:`lumina_analytics.ingest.genai.extract_llm_calls` finishes and prices them.
    """
    install_macros(stage)
    name = stage.ensure("spans")
    spans_sql = _spans_sql(drop_content)
    llm_sql = _llm_raw_sql()
    stage.con.execute("DROP TABLE IF EXISTS stage__llm_raw")
    created = False
    for _whole in _line_batches(stage, path, on_bytes):
        stage.con.execute(f"CREATE OR REPLACE TEMP TABLE _sp AS {spans_sql}")
        stage.con.execute(
            "INSERT INTO stage_quarantine SELECT _pos, problem, raw FROM _sp "
            "WHERE problem IS NOT NULL"
        )
        stage.con.execute(
            f"""
            INSERT INTO "{name}" (trace_id, span_id, parent_span_id, name, kind, service, start_ts,
              end_ts, duration_ms, status_code, status_message, attributes, resource, _pos)
            SELECT trace_id, span_id, parent_span_id, name, kind, service, start_ts, end_ts,
              duration_ms, status_code, status_message, attributes, resource, _pos
            FROM _sp WHERE problem IS NULL
            """
        )
        if created:
            stage.con.execute(f"INSERT INTO stage__llm_raw {llm_sql}")
        else:
            stage.con.execute(f"CREATE TABLE stage__llm_raw AS {llm_sql}")
            created = True
        stage.con.execute("DROP TABLE _sp; DROP TABLE _lines")
    stage.ensure("spans")
    stage.llm_raw = created


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
