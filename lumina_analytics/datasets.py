"""Loaders of public provider / workload measurements into the ``llm_calls`` shape.

Every loader returns a frame whose columns are ``llm_calls`` columns (see :mod:`schema`),
plus, where the source measured them directly, the optional extras in
:data:`MEASURED_EXTRAS` (``itl_ms`` inter-token latency, ``output_tps`` output tokens per
second). :func:`to_llm_calls` drops the extras before a warehouse append.

Column mapping for provider benchmarks (:func:`load_llmperf`), first match wins, names
compared case-insensitively; a ``_s`` / ``_sec`` / ``_seconds`` suffix means seconds and
is converted to milliseconds, ``_ms`` means milliseconds, and a bare name (``latency``,
``ttft``) is taken as seconds when its median is below 60, else milliseconds:

============== =====================================================================
llm_calls       accepted source columns
============== =====================================================================
provider        provider, framework, vendor, gen_ai.provider.name, gen_ai.system
model           model, model_name, gen_ai.request.model, llm.model_name
ts              ts, timestamp, start_time, run_timestamp (epoch s/ms/us/ns or ISO)
latency_ms      end_to_end_latency_s, e2e_latency_s, latency_s, latency_ms, duration_ms,
                request_latency_s/_ms, total_latency_s, total_time_s, elapsed_s,
                response_time_ms, end_to_end_latency, latency
ttft_ms         ttft_s, ttft_ms, time_to_first_token_s, time_to_first_token_ms, ttft
itl_ms          inter_token_latency_s, inter_token_latency_ms, itl_s, itl_ms, tpot_ms
output_tps      request_output_throughput_token_per_s, output_throughput,
                output_tokens_per_s, tokens_per_second
input_tokens    number_input_tokens, input_tokens, prompt_tokens, num_input_tokens
output_tokens   number_output_tokens, output_tokens, completion_tokens,
                num_output_tokens
error           error_code, status_code, http_status, status / outcome / result
                (HTTP code or text), error_msg / error_message / error (free text),
                success / is_success / ok (boolean flag)
============== =====================================================================

A benchmark run (``run_id``, ``run``, ``run_timestamp``, ``num_concurrent_requests``,
``concurrency``: those present, joined with ``/``) goes to ``session_id``, so
``compare(calls, by=("provider", "model", "session_id"))`` gives per-run statistics.

Without a provider column (and no ``provider=``) the provider is ``unknown``; without a
model column the model is taken from llmperf's file name
(``<model>_<in>_<out>_individual_responses.json``).

Errors: a row is an error when its error code is present and not a 2xx, or its
status says error, or it has an error message. HTTP 429 (or text mentioning rate
limit / too many requests) -> ``rate_limit``; 408/504 or "timeout" -> ``timeout``;
other 5xx or "server error"/"overloaded" -> ``server_error``; llmperf's client-side
``-100 Output too few tokens`` -> ``too_few_tokens``; anything else -> ``other``.
Latency fields of failed requests are set to NULL (llmperf records them as 0).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from lumina_analytics.errors import IngestError
from lumina_analytics.schema import columns_of

#: Optional measured columns a loader may add beside the ``llm_calls`` columns.
MEASURED_EXTRAS: tuple[str, ...] = ("itl_ms", "output_tps")

_PROVIDER = ("provider", "framework", "vendor", "gen_ai.provider.name", "gen_ai.system")
_MODEL = ("model", "model_name", "gen_ai.request.model", "llm.model_name")
_TS = ("ts", "timestamp", "start_time", "request_start_time", "run_timestamp")
_LATENCY = (
    "end_to_end_latency_s",
    "e2e_latency_s",
    "latency_s",
    "latency_ms",
    "duration_ms",
    "e2e_latency_ms",
    "end_to_end_latency_ms",
    "end_to_end_latency",
    "e2e_latency",
    "e2e_ms",
    "request_latency_s",
    "request_latency_ms",
    "total_latency_s",
    "total_time_s",
    "elapsed_s",
    "response_time_ms",
    "latency",
)
_TTFT = (
    "ttft_s",
    "ttft_ms",
    "time_to_first_token_s",
    "time_to_first_token_ms",
    "time_to_first_token",
    "ttft",
)
_ITL = (
    "inter_token_latency_s",
    "inter_token_latency_ms",
    "itl_s",
    "itl_ms",
    "tpot_s",
    "tpot_ms",
    "inter_token_latency",
    "itl",
)
_TPS = (
    "request_output_throughput_token_per_s",
    "output_throughput",
    "output_tokens_per_s",
    "output_tps",
    "tokens_per_second",
)
_IN_TOK = ("number_input_tokens", "input_tokens", "prompt_tokens", "num_input_tokens")
_OUT_TOK = ("number_output_tokens", "output_tokens", "completion_tokens", "num_output_tokens")
_ERR_CODE = ("error_code", "status_code", "http_status", "http_status_code")
_ERR_MSG = ("error_msg", "error_message", "error")
_STATUS = ("status", "outcome", "result")
_RUN = ("run_id", "run", "run_timestamp", "num_concurrent_requests", "concurrency")
_SUCCESS = ("success", "is_success", "succeeded", "ok")


def _find(frame: pd.DataFrame, names: Iterable[str]) -> str | None:
    lower = {c.lower(): c for c in frame.columns}
    for n in names:
        if n.lower() in lower:
            return lower[n.lower()]
    return None


def _to_ms(values: pd.Series, column: str) -> pd.Series:
    v = pd.to_numeric(values, errors="coerce").astype("float64")
    name = column.lower()
    if name.endswith("_ms"):
        return v
    if name.endswith(("_s", "_sec", "_seconds")):
        return v * 1000.0
    med = v[v > 0].median()
    return v * 1000.0 if (pd.notna(med) and med < 60) else v


def _parse_ts(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        v = pd.to_numeric(values, errors="coerce").astype("float64")
        mx = v.abs().max()
        unit = "s"
        if pd.notna(mx):
            if mx > 1e17:
                unit = "ns"
            elif mx > 1e14:
                unit = "us"
            elif mx > 1e11:
                unit = "ms"
        return pd.Series(pd.to_datetime(v, unit=unit), index=values.index)  # type: ignore[call-overload]
    out = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    return out.dt.tz_convert("UTC").dt.tz_localize(None)


def classify_error(code: object, message: object = None) -> str | None:
    """Map an HTTP/status code and/or error text to an ``error_type``; ``None`` means success."""
    text = (
        ""
        if message is None or (isinstance(message, float) and np.isnan(message))
        else str(message)
    )
    code_num: float | None = None
    code_text = ""
    if code is not None and not (isinstance(code, float) and np.isnan(code)):
        try:
            code_num = float(str(code).strip())
        except ValueError:
            code_text = str(code).strip().lower()
    if code_num is not None and 200 <= code_num < 300 and not text:
        return None
    if code_text in {"", "ok", "success", "succeeded", "unset"} and code_num is None and not text:
        return None
    low = f"{code_text} {text}".lower()
    if code_num == 429 or "rate limit" in low or "rate_limit" in low or "too many requests" in low:
        return "rate_limit"
    if code_num in (408, 504) or "timeout" in low or "timed out" in low:
        return "timeout"
    if (code_num is not None and 500 <= code_num < 600) or re.search(
        r"server.?error|overloaded|unavailable|internal", low
    ):
        return "server_error"
    if code_num == -100 or "too few tokens" in low:
        return "too_few_tokens"
    return "other"


def _stable_id(*parts: object, length: int = 32) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:length]


def _read_any(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        if suffix in {".jsonl", ".ndjson"}:
            return pd.read_json(path, lines=True)
        if suffix == ".json":
            with path.open() as fh:
                data = json.load(fh)
            if isinstance(data, dict):
                for key in ("results", "individual_responses", "requests", "data"):
                    if isinstance(data.get(key), list):
                        data = data[key]
                        break
            return pd.json_normalize(data) if isinstance(data, list) else pd.DataFrame([data])
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise IngestError(str(path), None, f"cannot read measurements: {exc}") from exc


def load_llmperf(
    path: str | os.PathLike[str], provider: str | None = None, model: str | None = None
) -> pd.DataFrame:
    """Load llmperf-style per-request measurements (CSV, JSON, JSONL, Parquet) as ``llm_calls``.

    ``provider`` / ``model`` fill those columns when the file has none (llmperf's own
    ``*_individual_responses.json`` files). See the module docstring for the column mapping.
    """
    p = Path(path)
    if not p.exists():
        raise IngestError(str(p), None, "file not found")
    raw = _read_any(p)
    if raw.empty:
        raise IngestError(str(p), None, "no rows")
    return measurements_to_calls(raw, source=str(p), provider=provider, model=model)


def measurements_to_calls(
    raw: pd.DataFrame,
    source: str = "<frame>",
    provider: str | None = None,
    model: str | None = None,
) -> pd.DataFrame:
    """Map a frame of per-request benchmark measurements to ``llm_calls`` (+ extras)."""
    n = len(raw)
    out = pd.DataFrame(index=range(n))
    raw = raw.reset_index(drop=True)
    pc = _find(raw, _PROVIDER)
    mc = _find(raw, _MODEL)
    if pc is None and provider is None:
        provider = "unknown"
    if mc is None and model is None:
        # llmperf names its files <model>_<in>_<out>_individual_responses.json
        stem = Path(source).name.split(".")[0]
        model = re.sub(r"(_\d+)*_individual_responses$", "", stem) or "unknown"
    lc = _find(raw, _LATENCY)
    if lc is None:
        raise IngestError(source, None, f"no latency column (looked for {list(_LATENCY)})")
    out["provider"] = (raw[pc].astype(str) if pc else pd.Series([provider] * n)).str.strip()
    out["model"] = (raw[mc].astype(str) if mc else pd.Series([model] * n)).str.strip()
    tc = _find(raw, _TS)
    idx_col = _find(raw, ("request_idx", "request_id", "idx"))
    if tc is not None:
        ts = _parse_ts(raw[tc])
    else:
        ts = pd.Series(pd.Timestamp("1970-01-01"), index=raw.index)
    if idx_col is not None and pd.api.types.is_numeric_dtype(raw[idx_col]):
        # llmperf stamps every request of a run with the run time: keep request order.
        ts = ts + pd.to_timedelta(pd.to_numeric(raw[idx_col]).fillna(0), unit="ms")
    out["ts"] = ts.astype("datetime64[us]")
    out["latency_ms"] = _to_ms(raw[lc], lc)
    ttc = _find(raw, _TTFT)
    out["ttft_ms"] = _to_ms(raw[ttc], ttc) if ttc else np.nan
    ic = _find(raw, _ITL)
    out["itl_ms"] = _to_ms(raw[ic], ic) if ic else np.nan
    tpc = _find(raw, _TPS)
    out["output_tps"] = pd.to_numeric(raw[tpc], errors="coerce") if tpc else np.nan
    for dest, names in (("input_tokens", _IN_TOK), ("output_tokens", _OUT_TOK)):
        c = _find(raw, names)
        out[dest] = pd.to_numeric(raw[c], errors="coerce").astype("Int64") if c else pd.NA
    ec, em, sc = _find(raw, _ERR_CODE), _find(raw, _ERR_MSG), _find(raw, _STATUS)
    codes = raw[ec] if ec else pd.Series([None] * n)
    msgs = raw[em] if em else pd.Series([None] * n)
    if sc is not None and ec is None:
        codes = raw[sc].map(
            lambda s: None if str(s).lower() in {"ok", "success", "succeeded", "200"} else s
        )
    etype = [classify_error(c, m) for c, m in zip(codes, msgs, strict=True)]
    okc = _find(raw, _SUCCESS)
    if okc is not None:  # a boolean success flag: a False row is an error even without a code
        flag = raw[okc].map(lambda v: str(v).strip().lower() in {"true", "1", "yes", "ok"})
        etype = [e if e is not None or f else "other" for e, f in zip(etype, flag, strict=True)]
    out["error_type"] = pd.Series(etype, dtype="string")
    out["status"] = np.where(out["error_type"].isna(), "ok", "error")
    failed = out["status"] == "error"
    for col in ("latency_ms", "ttft_ms", "itl_ms", "output_tps"):
        out.loc[failed & (out[col].fillna(0) <= 0), col] = np.nan
    out["operation"] = "chat"
    run_cols = [c for c in (_find(raw, (r,)) for r in _RUN) if c is not None]
    # one benchmark run = one session: compare(by=(..., "session_id")) gives per-run stats
    if run_cols:
        out["session_id"] = raw[run_cols].astype(str).agg("/".join, axis=1).to_numpy()
    keys = [
        out["provider"],
        out["model"],
        raw[tc] if tc else pd.Series([""] * n),
        raw[idx_col] if idx_col else pd.Series(range(n)),
    ]
    out["trace_id"] = [_stable_id(source, *k) for k in zip(*keys, strict=True)]
    out["span_id"] = [t[:16] for t in out["trace_id"]]
    out["service"] = "benchmark"
    return _conform(out)


def _conform(frame: pd.DataFrame) -> pd.DataFrame:
    cols = list(columns_of("llm_calls"))
    for c in cols:
        if c not in frame.columns:
            frame[c] = pd.NA
    for c in (
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
    ):
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("Int64")
    for c in ("latency_ms", "ttft_ms", "cost_usd", "reported_cost_usd"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
    extras = [c for c in MEASURED_EXTRAS if c in frame.columns]
    return frame[cols + extras]


def to_llm_calls(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop the measured extras so the frame can be appended to the ``llm_calls`` table."""
    return frame[[c for c in frame.columns if c not in MEASURED_EXTRAS]]


def load_llmperf_summary(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The published llmperf per-run summary with ``framework`` renamed to ``provider``."""
    p = Path(path)
    if not p.exists():
        raise IngestError(str(p), None, "file not found")
    s = pd.read_csv(p)
    return s.rename(columns={"framework": "provider"})


def load_azure_trace(
    path: str | os.PathLike[str],
    provider: str = "openai",
    model: str = "gpt-4o-mini",
    tenant: str | None = None,
) -> pd.DataFrame:
    """Azure LLM inference trace (``TIMESTAMP,ContextTokens,GeneratedTokens``) as ``llm_calls``.

    The trace has no provider, model or latency: they are set to the given values / NULL,
    so the frame is useful for cost analytics after pricing.
    """
    p = Path(path)
    if not p.exists():
        raise IngestError(str(p), None, "file not found")
    raw = pd.read_csv(p)
    need = {"TIMESTAMP", "ContextTokens", "GeneratedTokens"}
    if not need <= set(raw.columns):
        raise IngestError(str(p), None, f"expected columns {sorted(need)}, got {list(raw.columns)}")
    out = pd.DataFrame(
        {
            "ts": _parse_ts(raw["TIMESTAMP"]).astype("datetime64[us]"),
            "provider": provider,
            "model": model,
            "operation": "chat",
            "input_tokens": raw["ContextTokens"],
            "output_tokens": raw["GeneratedTokens"],
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "status": "ok",
            "tenant": tenant if tenant is not None else p.stem,
        }
    )
    out["trace_id"] = [_stable_id(p.name, i) for i in range(len(out))]
    out["span_id"] = [t[:16] for t in out["trace_id"]]
    return _conform(out)


def load_calls(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Load a calls file: ``llm_calls``-named columns as is, otherwise via :func:`load_llmperf`."""
    p = Path(path)
    if not p.exists():
        raise IngestError(str(p), None, "file not found")
    raw = _read_any(p)
    if {"ts", "provider", "model", "latency_ms"} <= set(raw.columns):
        raw["ts"] = _parse_ts(raw["ts"]).astype("datetime64[us]")
        if "trace_id" not in raw.columns:
            raw["trace_id"] = [_stable_id(p.name, i) for i in range(len(raw))]
        if "span_id" not in raw.columns:
            raw["span_id"] = [t[:16] for t in raw["trace_id"]]
        if "status" not in raw.columns:
            raw["status"] = np.where(
                raw.get("error_type", pd.Series(index=raw.index)).isna(), "ok", "error"
            )
        extras = [c for c in raw.columns if c in MEASURED_EXTRAS]
        keep = [c for c in raw.columns if c in set(columns_of("llm_calls"))] + extras
        return _conform(raw[keep].copy())
    return measurements_to_calls(raw, source=str(p))


#: The ``tool`` of an LLM call that followed no tool call (or has no span to place it).
NO_TOOL = "(none)"


def tool_attribution_sql(calls: str = "llm_calls", spans: str = "spans") -> str:
    """SQL of ``(trace_id, span_id, tool)`` for every row of ``calls``: the tool whose output
    the LLM call consumed, derived from the trace (``llm_calls`` has no tool column).

    Rule, from the shape of agent traces (the agent span's children run one after another:
    LLM call, tool call, LLM call that reads the tool's result, ...):

    * a *tool span* has a ``gen_ai.tool.name`` attribute, or ``gen_ai.operation.name`` =
      ``execute_tool`` (tool name from the span name ``execute_tool NAME``), whatever its
      kind (HTTP and DB client spans, internal spans);
    * an LLM call is attributed to the latest tool span that is its *sibling* (same trace,
      same parent span) and ended at or before the call started, provided that tool started
      after the previous sibling LLM call did: the tool's result is read by the next LLM
      call only, and a later reflection step (LLM after LLM) used no tool;
    * parallel tools before one call: the one that finished last;
    * no such tool, or the call has no span in ``spans``: :data:`NO_TOOL`.
    """
    return f"""
WITH _llm AS (
  SELECT l.trace_id, l.span_id, s.parent_span_id, s.start_ts,
         lag(s.start_ts) OVER (PARTITION BY l.trace_id, s.parent_span_id ORDER BY s.start_ts)
           AS _prev_start
  FROM {calls} l JOIN {spans} s ON s.trace_id = l.trace_id AND s.span_id = l.span_id
  WHERE s.parent_span_id IS NOT NULL
),
_tools AS (
  SELECT trace_id, parent_span_id, start_ts, end_ts, tool FROM (
    SELECT trace_id, parent_span_id, start_ts, end_ts,
           coalesce(json_extract_string(attributes, '$."gen_ai.tool.name"'),
                    CASE WHEN json_extract_string(attributes, '$."gen_ai.operation.name"')
                              = 'execute_tool'
                         THEN nullif(regexp_extract(name, '^execute_tool (.+)$', 1), '') END)
             AS tool
    FROM {spans}
    WHERE parent_span_id IS NOT NULL
      AND trace_id IN (SELECT trace_id FROM _llm)
  ) WHERE tool IS NOT NULL
),
_attr AS (
  SELECT c.trace_id, c.span_id,
         CASE WHEN c._prev_start IS NULL OR t.start_ts >= c._prev_start THEN t.tool END AS tool
  FROM _llm c ASOF LEFT JOIN _tools t
    ON c.trace_id = t.trace_id AND c.parent_span_id = t.parent_span_id
   AND c.start_ts >= t.end_ts
)
SELECT l.trace_id, l.span_id, coalesce(a.tool, '{NO_TOOL}') AS tool
FROM {calls} l LEFT JOIN _attr a ON a.trace_id = l.trace_id AND a.span_id = l.span_id
"""


def attach_tools(calls: pd.DataFrame, spans: pd.DataFrame) -> pd.DataFrame:
    """``calls`` with a ``tool`` column derived from ``spans`` (the ``spans`` table's columns:
    trace_id, span_id, parent_span_id, name, start_ts, end_ts, attributes as JSON text) by
    the rule of :func:`tool_attribution_sql`, computed in a scratch DuckDB connection."""
    from lumina_analytics.warehouse import scratch

    need_c = {"trace_id", "span_id"}
    need_s = {"trace_id", "span_id", "parent_span_id", "name", "start_ts", "end_ts", "attributes"}
    for what, frame, need in (("calls", calls, need_c), ("spans", spans, need_s)):
        missing = sorted(need - set(frame.columns))
        if missing:
            raise IngestError(what, None, f"tool attribution needs columns {missing}")
    sp = spans[sorted(need_s)].copy()
    sp["attributes"] = sp["attributes"].map(
        lambda v: v if v is None or isinstance(v, str) else json.dumps(v)
    )
    con = scratch()
    try:
        con.register("_calls", calls[["trace_id", "span_id"]])
        con.register("_spans", sp)
        tools = con.execute(tool_attribution_sql("_calls", "_spans")).df()
    finally:
        con.close()
    keyed = tools.drop_duplicates(["trace_id", "span_id"]).set_index(["trace_id", "span_id"])
    idx = pd.MultiIndex.from_frame(calls[["trace_id", "span_id"]].astype("object"))
    out = calls.copy()
    out["tool"] = keyed["tool"].reindex(idx).fillna(NO_TOOL).to_numpy()
    return out


def load_llm_calls(
    warehouse: object = None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    filters: dict[str, Iterable[str]] | None = None,
    with_tool: bool = False,
    columns: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Read ``llm_calls`` from the warehouse (``start`` inclusive, ``end`` exclusive; ``filters``
    maps a column to allowed values). Every value is a bound parameter. ``with_tool`` adds a
    ``tool`` column derived from the ``spans`` table (:func:`tool_attribution_sql`), so
    spend can be split ``by=("tool",)``; a filter on ``tool`` then applies too. ``columns``
    reads only those ``llm_calls`` columns (default all; far faster without the id strings)."""
    from lumina_analytics.warehouse import Warehouse

    allowed = set(columns_of("llm_calls")) | ({"tool"} if with_tool else set())
    cols = list(dict.fromkeys(columns)) if columns is not None else None
    unknown = [c for c in cols or [] if c not in columns_of("llm_calls")]
    if unknown:
        raise IngestError("llm_calls", None, f"cannot read unknown columns {unknown}")
    select = "*" if cols is None else ", ".join(f'"{c}"' for c in cols)
    conds: list[str] = []
    params: list[object] = []
    if start is not None:
        conds.append("ts >= ?")
        params.append(pd.Timestamp(start).to_pydatetime())
    if end is not None:
        conds.append("ts < ?")
        params.append(pd.Timestamp(end).to_pydatetime())
    tool_vals: list[object] = []
    for col, values in (filters or {}).items():
        vals = [values] if isinstance(values, str) else list(values)
        if not vals:
            continue
        if col not in allowed:
            raise IngestError("llm_calls", None, f"cannot filter on unknown column {col!r}")
        if col == "tool":
            tool_vals = list(vals)
            continue
        conds.append(f'"{col}" IN ({", ".join("?" for _ in vals)})')
        params.extend(vals)
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)  # type: ignore[arg-type]
    if not with_tool:
        return wh.query(f"SELECT {select} FROM llm_calls{where} ORDER BY ts", params)
    tool_where = f" WHERE t.tool IN ({', '.join('?' for _ in tool_vals)})" if tool_vals else ""
    picked = "_sel.*" if cols is None else ", ".join(f'_sel."{c}"' for c in cols)
    sql = f"""
WITH _sel AS (SELECT * FROM llm_calls{where}),
_t AS ({tool_attribution_sql("_sel", "spans")})
SELECT {picked}, t.tool FROM _sel JOIN _t t USING (trace_id, span_id){tool_where}
ORDER BY _sel.ts"""
    return wh.query(sql, [*params, *tool_vals])


#: (provider, model, ttft median ms, inter-token ms, base error rate) of :func:`synthetic_calls`.
SYNTHETIC_MODELS: tuple[tuple[str, str, float, float, float], ...] = (
    ("openai", "gpt-4o", 450.0, 12.0, 0.010),
    ("openai", "gpt-4o-mini", 300.0, 7.0, 0.008),
    ("anthropic", "claude-sonnet-4-20250514", 650.0, 14.0, 0.015),
    ("anthropic", "claude-3-5-haiku-20241022", 400.0, 8.0, 0.012),
    ("mistral_ai", "mistral-small-latest", 250.0, 6.0, 0.020),
    ("aws.bedrock", "lumina.private-model", 500.0, 10.0, 0.020),
)


def synthetic_calls(
    n: int = 10_000,
    days: int = 28,
    start: str = "2026-10-01",
    seed: int = 0,
    with_ids: bool = True,
) -> pd.DataFrame:
    """A small, fast synthetic ``llm_calls`` frame for tests, examples and benchmarks (not the
    platform simulator): log-normal tokens and latencies, cache reads, errors by type, repeated
    prompt hashes, tenants/agents/users/sessions, a few audit defects. ``cost_usd`` is NULL:
    price it with :func:`lumina_analytics.costs.with_costs`."""
    rng = np.random.default_rng(seed)
    k = len(SYNTHETIC_MODELS)
    mi = rng.choice(k, size=n, p=np.array([0.3, 0.25, 0.15, 0.1, 0.12, 0.08]))
    prov = np.array([m[0] for m in SYNTHETIC_MODELS], dtype=object)[mi]
    model = np.array([m[1] for m in SYNTHETIC_MODELS], dtype=object)[mi]
    ttft_med = np.array([m[2] for m in SYNTHETIC_MODELS])[mi]
    itl_med = np.array([m[3] for m in SYNTHETIC_MODELS])[mi]
    perr = np.array([m[4] for m in SYNTHETIC_MODELS])[mi]
    t0 = pd.Timestamp(start)
    offs = np.sort(rng.uniform(0, days * 86400.0, n))
    ts = t0 + pd.to_timedelta(offs, unit="s")
    inp = np.round(rng.lognormal(6.6, 1.0, n)).astype(np.int64) + 1
    out = np.round(rng.lognormal(5.0, 0.85, n)).astype(np.int64) + 1
    hit = rng.random(n) < 0.4
    cr = np.where(hit, np.floor(inp * rng.uniform(0.3, 0.9, n)), 0).astype(np.int64)
    ttft = rng.lognormal(np.log(ttft_med), 0.35, n)
    lat = ttft + itl_med * rng.lognormal(0, 0.25, n) * (out - 1)
    u = rng.random(n)
    etype = np.select(
        [u < perr * 0.5, u < perr * 0.8, u < perr],
        ["rate_limit", "server_error", "timeout"],
        default="",
    ).astype(object)
    status = np.where(etype == "", "ok", "error")
    etype[etype == ""] = None
    tenants = np.array(["acme", "globex", "initech", "umbrella", "hooli"], dtype=object)
    agents = np.array(["support", "coder", "researcher", "planner"], dtype=object)
    ti = rng.choice(5, size=n, p=[0.35, 0.25, 0.2, 0.12, 0.08])
    user = np.char.add(
        np.char.add(tenants[ti].astype(str), "-u"), rng.integers(0, 40, n).astype(str)
    )
    sess = np.char.add(user, np.char.add("-s", (offs // 1800).astype(np.int64).astype(str)))
    ph = np.char.add("p", rng.zipf(1.6, n).clip(max=5000).astype(str))
    frame = pd.DataFrame(
        {
            "ts": ts.astype("datetime64[us]"),
            "provider": prov,
            "model": model,
            "operation": rng.choice(
                np.array(["chat", "chat", "chat", "text_completion", "embeddings"], dtype=object), n
            ),
            "input_tokens": inp,
            "output_tokens": out,
            "cache_read_tokens": cr,
            "cache_write_tokens": np.zeros(n, dtype=np.int64),
            "reasoning_tokens": np.zeros(n, dtype=np.int64),
            "latency_ms": np.where(
                status == "ok", lat, np.where(etype == "timeout", 30000.0, ttft)
            ),
            "ttft_ms": np.where(status == "ok", ttft, np.nan),
            "status": status,
            "error_type": etype,
            "tenant": tenants[ti],
            "user_id": user.astype(object),
            "session_id": sess.astype(object),
            "agent": agents[rng.integers(0, 4, n)],
            "region": rng.choice(np.array(["us-east-1", "eu-west-1"], dtype=object), n),
            "service": "agent-runtime",
            "prompt_hash": ph.astype(object),
            "attr_style": rng.choice(
                np.array(["current"] * 18 + ["deprecated", "mixed"], dtype=object), n
            ),
        }
    )
    if with_ids:
        ids = rng.integers(0, 2**63 - 1, size=(n, 2), dtype=np.int64)
        frame["trace_id"] = [f"{a:016x}{b:016x}" for a, b in ids]
        frame["span_id"] = [f"{a:016x}" for a in ids[:, 1]]
    if n >= 100:
        bad = rng.choice(n, size=max(1, n // 500), replace=False)
        frame.loc[bad, "cache_read_tokens"] = frame.loc[bad, "input_tokens"] + 10
    return frame
