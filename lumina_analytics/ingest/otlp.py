"""OTLP/JSON readers: traces, metrics and logs, all vectorised in DuckDB SQL.

Input: one JSON document (``TracesData``/``MetricsData``/``LogsData``) or JSON Lines with one
such document per line, optionally gzip-compressed. Files are read in bounded chunks of whole
lines (``TRACE_CHUNK_BYTES`` for traces, ``CHUNK_BYTES`` for metrics/logs) so memory stays
bounded on JSON Lines of any size; a single multi-line JSON document is read whole (use JSON
Lines for very large exports).

One SQL pass per chunk, no Python per record: Arrow splits the chunk into lines and checks
UTF-8 (the lines are handed to DuckDB without a copy); ``from_json`` with an explicit struct
schema parses them (a chunk with a line that is not valid JSON is checked line by line with
``json_valid`` and parsed again without the bad lines, which are quarantined); ``UNNEST`` +
``generate_subscripts`` give each record its position (``span K of line N``, ``point K of
line N``, ``record K of line N``, counted across resources and scopes); ids, enums, times and
validation are vector expressions; attributes become a JSON object. For traces the ~40 GenAI
attribute keys are pulled from the attribute lists into ``stage__llm_raw`` for :mod:`.genai`.
Metric labels are canonical JSON (sorted keys, no spaces, last value of a repeated key wins).

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

import duckdb

from lumina_analytics.errors import IngestError
from lumina_analytics.ingest.detect import decode_text, open_binary
from lumina_analytics.ingest.stage import RAW_LIMIT, STAGE_MEMORY_LIMIT, Stage

CHUNK_BYTES = 8 * 1024 * 1024
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


def iter_line_chunks(
    path: Path, on_bytes: Callable[[int], None] | None = None, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[tuple[int, str]]:
    """Yield ``(first_line_number, text)`` chunks of whole lines, decoded as UTF-8."""
    for line_no, offset, data in _iter_byte_chunks(path, on_bytes, chunk_bytes):
        yield line_no, decode_text(path, data, offset)


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


#: lines per staged batch of a JSON Lines file are bounded by ``TRACE_CHUNK_BYTES``
TRACE_CHUNK_BYTES = 16 * 1024 * 1024
#: staging memory limit while a single multi-line JSON document (not JSON Lines) is parsed
WHOLE_DOCUMENT_MEMORY_LIMIT = os.environ.get("LUMINA_WHOLE_DOCUMENT_MEMORY_LIMIT", "2GB")
#: lines per Arrow record batch handed to DuckDB (small batches let both cores parse)
_LINES_PER_BATCH = 64


def _register_lines(stage: Stage, path: Path, first_line: int, offset: int, data: bytes) -> int:
    """Expose the lines of ``data`` as the view ``_lines`` (line_no, line, ok); returns how many.

    Splitting and UTF-8 validation happen in Arrow (C++); invalid UTF-8 fails the file with
    the byte and line named. The lines are not copied and not validated here: ``ok`` is true
    for non-empty lines and a reader that meets invalid JSON calls :func:`_validate_lines`.
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
    tbl = pa.Table.from_batches(tbl.to_batches(max_chunksize=_LINES_PER_BATCH), tbl.schema)
    stage.con.register("_lumina_lines", tbl)
    stage.con.execute(
        "CREATE OR REPLACE TEMP VIEW _lines AS SELECT line_no, line, "
        "CASE WHEN line <> '' THEN true END AS ok FROM _lumina_lines"
    )
    return len(lines)


def _validate_lines(stage: Stage) -> None:
    """Re-check every line of the batch with ``json_valid``; quarantine the invalid ones."""
    stage.con.execute(
        "CREATE OR REPLACE TEMP TABLE _lines_checked AS SELECT line_no, line, "
        "CASE WHEN trim(line) <> '' THEN json_valid(line) END AS ok FROM _lumina_lines"
    )
    stage.con.execute(
        f"""
        INSERT INTO stage_quarantine
        SELECT 'line ' || line_no, 'line is not valid JSON', left(line, {RAW_LIMIT})
        FROM _lines_checked WHERE NOT ok
        """
    )
    stage.con.execute("CREATE OR REPLACE TEMP VIEW _lines AS SELECT * FROM _lines_checked")


def _parse_batch(stage: Stage, table: str, select_sql: str, whole: bool) -> None:
    """``CREATE TEMP TABLE table AS select_sql`` over ``_lines``.

    Fast path: no separate validation pass. When a line turns out not to be valid JSON the
    batch is validated line by line (bad lines quarantined) and parsed again without them.
    """
    sql = f"CREATE OR REPLACE TEMP TABLE {table} AS {select_sql}"
    try:
        stage.con.execute(sql)
    except duckdb.InvalidInputException:
        if whole:
            raise
        _validate_lines(stage)
        stage.con.execute(sql)


def _line_batches(
    stage: Stage,
    path: Path,
    on_bytes: Callable[[int], None] | None,
    chunk_bytes: int,
) -> Iterator[bool]:
    """Expose ``_lines`` batch after batch (bounded size); yields whether it is a whole document.

    JSON Lines are cut into batches of whole lines of about ``chunk_bytes`` so memory does not
    grow with the file. A single multi-line document is validated up front (a truncated one
    fails the file).
    """
    if not _first_line_is_document(path):
        with open_binary(path) as f:
            data = f.read()
        if on_bytes is not None:
            on_bytes(len(data))
        text = decode_text(path, data)
        stage.con.execute(
            "CREATE OR REPLACE TEMP TABLE _lines_checked AS SELECT 1::BIGINT AS line_no, "
            "?::VARCHAR AS line, json_valid(?::VARCHAR) AS ok",
            [text, text],
        )
        del text
        stage.con.execute("CREATE OR REPLACE TEMP VIEW _lines AS SELECT * FROM _lines_checked")
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
            stage.con.execute("DROP VIEW IF EXISTS _lines")
            stage.con.execute("DROP TABLE IF EXISTS _lines_checked")
        return
    try:
        for first_line, offset, data in _iter_byte_chunks(path, on_bytes, chunk_bytes):
            _register_lines(stage, path, first_line, offset, data)
            del data
            yield False
    finally:
        stage.con.execute("DROP VIEW IF EXISTS _lines")
        stage.con.execute("DROP TABLE IF EXISTS _lines_checked")
        stage.con.unregister("_lumina_lines")


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
        return f"{lst}v[list_position({lst}k, '{k}')]"

    # each attribute is looked up once (columns "a<i>" / "r<i>"), then referenced by name
    cols = ", ".join(
        f'{lookup("a", k)} AS "a{i}", {lookup("r", k)} AS "r{i}"' for i, k in enumerate(keys)
    )
    idx = {k: i for i, k in enumerate(keys)}
    src = (
        f"(SELECT trace_id, span_id, start_ts, duration_ms, status_code, status_message, "
        f"service, _pos, oi, {cols} FROM (SELECT *, "
        "list_transform(a, lambda x: x.k) AS ak, list_transform(a, lambda x: x.v) AS av, "
        "list_transform(r, lambda x: x.k) AS rk, list_transform(r, lambda x: x.v) AS rv "
        "FROM _sp WHERE problem IS NULL AND a IS NOT NULL))"
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
    for whole in _line_batches(stage, path, on_bytes, TRACE_CHUNK_BYTES):
        _parse_batch(stage, "_sp", spans_sql, whole)
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
        stage.con.execute("DROP TABLE _sp")
    stage.ensure("spans")
    stage.llm_raw = created


# -- metrics and logs (DuckDB SQL, batch by batch, like traces) -------------------------------

_DP = {
    "attributes": _KV,
    "timeUnixNano": "VARCHAR",
    "asDouble": "VARCHAR",
    "asInt": "VARCHAR",
    "count": "VARCHAR",
    "sum": "VARCHAR",
    "quantileValues": [{"quantile": "JSON", "value": "VARCHAR"}],
}
_METRIC_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")
_METRICS_DOC = json.dumps(
    {
        "resourceMetrics": [
            {
                "resource": {"attributes": _KV},
                "scopeMetrics": [
                    {
                        "metrics": [
                            {"name": "VARCHAR", **{k: {"dataPoints": [_DP]} for k in _METRIC_KINDS}}
                        ]
                    }
                ],
            }
        ]
    }
)
_LOG_RECORD = {
    "timeUnixNano": "VARCHAR",
    "observedTimeUnixNano": "VARCHAR",
    "severityNumber": "VARCHAR",
    "severityText": "VARCHAR",
    "body": _KV[0]["value"],
    "traceId": "VARCHAR",
    "spanId": "VARCHAR",
    "attributes": _KV,
}
_LOGS_DOC = json.dumps(
    {
        "resourceLogs": [
            {
                "resource": {"attributes": _KV},
                "scopeLogs": [{"logRecords": [_LOG_RECORD]}],
            }
        ]
    }
)

#: ``lumina_labels(entries)``: a list of ``{k, v}`` (v: JSON text) -> canonical labels JSON
#: (last value of a repeated key wins, keys sorted, no spaces)
_LABELS_MACRO = r"""
CREATE OR REPLACE MACRO lumina_labels(e) AS '{' || coalesce(array_to_string(list_transform(
  list_sort(list_filter(e, lambda x, i: NOT list_contains(
    list_transform(e[i + 1:], lambda y: y.k), x.k))),
  lambda x: to_json(x.k) || ':' || coalesce(x.v, 'null')), ','), '') || '}'
"""

#: valid OTLP time in ns (as HUGEINT) -> TIMESTAMP, else NULL (1970 exclusive .. 2200)
_TS = "CASE WHEN {ns} > 0 AND {ns} < 7258118400000000000 THEN lumina_ts({ns}) END"


def _unnest_chain(levels: list[tuple[str, str, list[str]]]) -> str:
    """CTEs unnesting the parsed ``d.doc`` level by level, each keeping its index ``<alias>i``.

    ``levels`` are ``(alias, list expression, extra columns)``; columns travel down.
    """
    ctes = []
    prev = "d"
    keep = ["line_no"]
    for alias, lst, extra in levels:
        cols = ", ".join([*keep, *extra])
        ctes.append(
            f"{alias} AS (SELECT {cols}, unnest({lst}) AS {alias}, "
            f"generate_subscripts({lst}, 1) AS {alias}i FROM {prev})"
        )
        keep = [*keep, *[e.split(" AS ")[-1] for e in extra], f"{alias}i"]
        prev = alias
    return ",\n".join(ctes)


def _resource_value(resource: str, key: str) -> str:
    """SQL: the AnyValue struct of resource attribute ``key`` (NULL when absent)."""
    return f"list_filter({resource}.resource.attributes, lambda x: x.key = '{key}')[1].value"


def _metrics_sql() -> str:
    """One pass over ``_lines``: metric points -> rows (one per value) with position/problem."""
    kinds = ", ".join(
        f"{{'ki': {i}, 'kind': '{k}', 'dps': m.\"{k}\".dataPoints}}"
        for i, k in enumerate(_METRIC_KINDS, start=1)
    )
    chain = _unnest_chain(
        [
            ("rm", "doc.resourceMetrics", []),
            ("sm", "rm.scopeMetrics", [_resource_value("rm", "service.name") + " AS svc"]),
            ("m", "sm.metrics", []),
            ("kd", f"list_filter([{kinds}], lambda x: x.dps IS NOT NULL)", ["m.name AS name"]),
            ("dp", "kd.dps", ["kd.ki AS ki", "kd.kind AS kind"]),
        ]
    )
    return f"""
    WITH d AS (SELECT line_no, from_json(line, '{_METRICS_DOC}') AS doc FROM _lines WHERE ok),
    {chain},
    p AS (
      SELECT 'point ' || row_number() OVER (PARTITION BY line_no ORDER BY rmi, smi, mi, ki, dpi)
               || ' of line ' || line_no AS _pos,
             name, kind, dp, lumina_ns(dp.timeUnixNano) AS ns,
             list_transform(list_filter(coalesce(dp.attributes, []), lambda x: x.key IS NOT NULL),
                            lambda x: {{'k': x.key, 'v': lumina_av(x.value)::VARCHAR}})
             || CASE WHEN svc IS NOT NULL AND NOT list_contains(
                       list_transform(coalesce(dp.attributes, []), lambda x: x.key), 'service.name')
                     THEN [{{'k': 'service.name', 'v': lumina_av(svc)::VARCHAR}}]
                     ELSE [] END AS lab
      FROM dp),
    v AS (
      SELECT _pos, dp, {_TS.format(ns="ns")} AS ts,
             CASE WHEN name IS NULL OR name = '' THEN 'metric point without name'
                  WHEN {_TS.format(ns="ns")} IS NULL THEN 'missing or invalid timeUnixNano'
             END AS problem,
             unnest(CASE WHEN kind IN ('gauge', 'sum')
               THEN [{{'n': name, 'q': NULL::JSON, 'qk': false,
                       'raw': coalesce(dp.asDouble, dp.asInt)}}]
               ELSE [{{'n': name || '_count', 'q': NULL::JSON, 'qk': false, 'raw': dp.count}}]
                    || CASE WHEN dp.sum IS NOT NULL
                       THEN [{{'n': name || '_sum', 'q': NULL::JSON, 'qk': false,
                               'raw': dp.sum}}] ELSE [] END
                    || coalesce(list_transform(dp.quantileValues,
                         lambda q: {{'n': name, 'q': q.quantile, 'qk': true, 'raw': q.value}}), [])
             END) AS val,
             lab
      FROM p)
    SELECT _pos, ts, val.n AS name,
      lumina_labels(lab || CASE WHEN val.qk THEN [{{'k': 'quantile', 'v': val.q::VARCHAR}}]
                                ELSE [] END) AS labels,
      TRY_CAST(val.raw AS DOUBLE) AS value,
      coalesce(problem, CASE WHEN val.raw IS NOT NULL AND TRY_CAST(val.raw AS DOUBLE) IS NULL
                             THEN 'non-numeric value ' || val.raw END) AS problem,
      dp
    FROM v
    """


def read_otlp_metrics(
    path: Path, stage: Stage, on_bytes: Callable[[int], None] | None = None
) -> None:
    """Stage metric points (gauge, sum, histogram/summary count and sum, quantiles).

    Histogram and summary points become ``<name>_count`` and ``<name>_sum`` rows; summary
    quantiles become ``<name>`` rows with a ``quantile`` label. Labels are the point's
    attributes plus the resource's ``service.name``, as canonical JSON (sorted keys).
    """
    install_macros(stage)
    stage.con.execute(_LABELS_MACRO)
    name = stage.ensure("metrics")
    sql = _metrics_sql()
    for whole in _line_batches(stage, path, on_bytes, CHUNK_BYTES):
        _parse_batch(stage, "_mp", sql, whole)
        # a point with a problem is quarantined once (not once per value)
        stage.con.execute(
            f"""
            INSERT INTO stage_quarantine
            SELECT _pos, first(problem ORDER BY problem), left(to_json(first(dp))::VARCHAR,
                   {RAW_LIMIT})
            FROM _mp WHERE problem IS NOT NULL GROUP BY _pos ORDER BY min(rowid)
            """
        )
        stage.con.execute(
            f"""
            INSERT INTO "{name}" (ts, name, labels, value, _pos)
            SELECT ts, name, labels, value, _pos FROM _mp WHERE problem IS NULL ORDER BY rowid
            """
        )
        stage.con.execute("DROP TABLE _mp")


_SEVERITIES = "['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL']"


def _logs_sql(drop_content: bool) -> str:
    """One pass over ``_lines``: log records -> logs rows with position and problem."""
    dc = "true" if drop_content else "false"
    svc = _resource_value("rl", "service.name") + ".stringValue AS service"
    chain = _unnest_chain(
        [
            ("rl", "doc.resourceLogs", []),
            ("sl", "rl.scopeLogs", [svc]),
            ("rec", "sl.logRecords", []),
        ]
    )
    ts = (
        "coalesce("
        + _TS.format(ns="lumina_ns(rec.timeUnixNano)")
        + ", "
        + _TS.format(ns="lumina_ns(rec.observedTimeUnixNano)")
        + ")"
    )
    return f"""
    WITH d AS (SELECT line_no, from_json(line, '{_LOGS_DOC}') AS doc FROM _lines WHERE ok),
    {chain},
    r AS (
      SELECT 'record ' || row_number() OVER (PARTITION BY line_no ORDER BY rli, sli, reci)
               || ' of line ' || line_no AS _pos,
             rec, service, {ts} AS ts,
             nullif(rec.severityNumber, '') AS sev,
             TRY_CAST(nullif(rec.severityNumber, '') AS INTEGER) AS sn
      FROM rec),
    c AS (
      SELECT *, sev IS NULL OR sev IN ('0', 'SEVERITY_NUMBER_UNSPECIFIED') AS unset,
             sn IS NULL AND starts_with(sev, 'SEVERITY_NUMBER_') AS named
      FROM r)
    SELECT _pos, ts,
      CASE WHEN unset THEN upper(nullif(rec.severityText, ''))
           WHEN named THEN rtrim(sev[17:], '234')
           WHEN sn BETWEEN 1 AND 24 THEN {_SEVERITIES}[(sn - 1) // 4 + 1]
      END AS severity,
      service,
      CASE WHEN rec.body.stringValue IS NOT NULL THEN lumina_trunc(rec.body.stringValue)
           ELSE lumina_av(rec.body)::VARCHAR END AS body,
      lumina_id(rec.traceId, 16) AS trace_id, lumina_id(rec.spanId, 8) AS span_id,
      lumina_attrs(rec.attributes, {dc}) AS attributes,
      CASE WHEN ts IS NULL THEN 'missing or invalid timeUnixNano'
           WHEN NOT unset AND NOT named AND NOT coalesce(sn BETWEEN 1 AND 24, false)
             THEN 'unknown severityNumber ' || sev || ' (expected 0-24)'
      END AS problem,
      rec
    FROM c
    """


def read_otlp_logs(
    path: Path,
    stage: Stage,
    drop_content: bool,
    on_bytes: Callable[[int], None] | None = None,
) -> None:
    """Stage log records (severity from the number, else the text; body flattened to text).

    ``drop_content`` drops prompt/completion content attributes (``CONTENT_KEY_REGEX``).
    """
    install_macros(stage)
    name = stage.ensure("logs")
    sql = _logs_sql(drop_content)
    for whole in _line_batches(stage, path, on_bytes, CHUNK_BYTES):
        _parse_batch(stage, "_lr", sql, whole)
        stage.con.execute(
            f"""
            INSERT INTO stage_quarantine
            SELECT _pos, problem, left(to_json(rec)::VARCHAR, {RAW_LIMIT})
            FROM _lr WHERE problem IS NOT NULL ORDER BY rowid
            """
        )
        stage.con.execute(
            f"""
            INSERT INTO "{name}" (ts, severity, service, body, trace_id, span_id, attributes,
              source_sha256, source_position, _pos)
            SELECT ts, severity, service, body, trace_id, span_id, attributes, ?, _pos, _pos
            FROM _lr WHERE problem IS NULL ORDER BY rowid
            """,
            [stage.sha256],
        )
        stage.con.execute("DROP TABLE _lr")


# -- Python helpers (AnyValue flattening and id normalisation, for other readers) -------------


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
