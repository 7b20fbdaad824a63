"""GenAI spans -> ``llm_calls`` rows: attribute aliases, error normalisation, privacy, pricing.

An inference span is one whose ``gen_ai.operation.name`` is an inference operation (chat,
text_completion, generate_content, embeddings, ...), or whose OpenInference
``openinference.span.kind`` is LLM/EMBEDDING, or that carries token usage. Agent and tool
spans (``invoke_agent``, ``create_agent``, ``execute_tool``, ``invoke_workflow``) never become
llm_calls even when they carry aggregated usage: that would count their children's tokens twice.

Attribute names read (first present wins; span attributes before resource attributes):
current OTel semconv, the deprecated ``gen_ai.system`` / ``gen_ai.usage.prompt_tokens`` /
``completion_tokens``, OpenInference ``llm.*``, and Lumina's ``lumina.*`` attributes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from lumina_analytics.config import Settings
from lumina_analytics.ingest.stage import Stage
from lumina_analytics.pricing import PriceOverrides, normalize_provider, price_frame

INFERENCE_OPERATIONS = (
    "chat",
    "text_completion",
    "generate_content",
    "embeddings",
    "completion",
    "responses",
    "embedding",
)
NON_INFERENCE_OPERATIONS = ("invoke_agent", "create_agent", "execute_tool", "invoke_workflow")

#: output field -> attribute names, in priority order
ALIASES: dict[str, tuple[str, ...]] = {
    "provider": ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"),
    "request_model": ("gen_ai.request.model", "llm.model_name"),
    "response_model": ("gen_ai.response.model",),
    "operation": ("gen_ai.operation.name",),
    "oi_kind": ("openinference.span.kind",),
    "input_tokens": (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "llm.token_count.prompt",
    ),
    "output_tokens": (
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.token_count.completion",
    ),
    "cache_read_tokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "llm.token_count.prompt_details.cache_read",
    ),
    "cache_write_tokens": (
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
        "llm.token_count.prompt_details.cache_write",
    ),
    "reasoning_tokens": (
        "gen_ai.usage.reasoning.output_tokens",
        "llm.token_count.completion_details.reasoning",
    ),
    "ttft_ms": ("lumina.time_to_first_token_ms",),
    "ttft_s": ("gen_ai.server.time_to_first_token",),
    "prompt_hash": ("lumina.prompt.hash",),
    "tenant": ("lumina.tenant.id", "tenant.id"),
    "user_id": ("enduser.id", "user.id"),
    "session_id": ("gen_ai.conversation.id", "session.id"),
    "agent": ("gen_ai.agent.name",),
    "region": ("cloud.region",),
    "service_version": ("service.version",),
    "reported_cost_usd": ("lumina.cost_usd",),
    "error_attr": ("error.type",),
    "http_status": ("http.response.status_code", "http.status_code"),
    "exception_type": ("exception.type",),
}
_FROM_RESOURCE_TOO = {"tenant", "region", "service_version", "user_id", "provider"}
_CURRENT = {"gen_ai.provider.name", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"}
_DEPRECATED = {"gen_ai.system", "gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens"}


def _path(key: str) -> str:
    return '$."' + key.replace('"', '\\"') + '"'


def _alias_keys() -> list[str]:
    keys: list[str] = []
    for names in ALIASES.values():
        keys.extend(n for n in names if n not in keys)
    return keys


def llm_select_sql(
    attr: Callable[[str], str], res: Callable[[str], str], oi: str, source: str
) -> str:
    """``SELECT ... FROM source WHERE ...`` of the raw llm_calls columns of inference spans.

    ``attr(key)`` / ``res(key)`` give the SQL expression of a span / resource attribute's text
    value (NULL when absent); ``oi`` is a boolean SQL expression (OpenInference attributes
    present). The input relation must have trace_id, span_id, start_ts, duration_ms,
    status_code, status_message, service and _pos.
    """
    ops = ", ".join(f"'{o}'" for o in INFERENCE_OPERATIONS)
    non = ", ".join(f"'{o}'" for o in NON_INFERENCE_OPERATIONS)

    def first(field: str) -> str:
        return "coalesce(" + ", ".join(attr(k) for k in ALIASES[field]) + ")"

    def first_res(field: str) -> str:
        return "coalesce(" + ", ".join(res(k) for k in ALIASES[field]) + ")"

    cur = " OR ".join(f"{attr(k)} IS NOT NULL" for k in sorted(_CURRENT))
    dep = " OR ".join(f"{attr(k)} IS NOT NULL" for k in sorted(_DEPRECATED))
    tok = ["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"]
    return f"""
    SELECT trace_id, span_id, start_ts AS ts, duration_ms AS latency_ms, status_code,
           status_message, service,
           {first("provider")} AS provider_span, {first_res("provider")} AS provider_res,
           {first("request_model")} AS request_model, {first("response_model")} AS response_model,
           {first("operation")} AS operation, upper({first("oi_kind")}) AS oi_kind,
           {", ".join(f"TRY_CAST(TRY_CAST({first(t)} AS DOUBLE) AS BIGINT) AS {t}" for t in tok)},
           TRY_CAST(TRY_CAST({first("reasoning_tokens")} AS DOUBLE) AS BIGINT) AS reasoning_tokens,
           coalesce(TRY_CAST({first("ttft_ms")} AS DOUBLE),
                    TRY_CAST({first("ttft_s")} AS DOUBLE) * 1000) AS ttft_ms,
           {first("prompt_hash")} AS prompt_hash,
           coalesce({first("tenant")}, {first_res("tenant")}) AS tenant,
           coalesce({first("user_id")}, {first_res("user_id")}) AS user_id,
           {first("session_id")} AS session_id, {first("agent")} AS agent,
           coalesce({first("region")}, {first_res("region")}) AS region,
           coalesce({first("service_version")}, {first_res("service_version")}) AS service_version,
           TRY_CAST({first("reported_cost_usd")} AS DOUBLE) AS reported_cost_usd,
           {first("error_attr")} AS error_attr, {first("http_status")} AS http_status,
           {first("exception_type")} AS exception_type,
           CASE WHEN ({cur})::INT + ({dep})::INT + ({oi})::INT > 1 THEN 'mixed'
                WHEN {dep} THEN 'deprecated' WHEN {oi} THEN 'openinference'
                ELSE 'current' END AS attr_style,
           _pos
    FROM {source}
    WHERE (lower(coalesce({first("operation")}, '')) IN ({ops})
           OR upper(coalesce({first("oi_kind")}, '')) IN ('LLM', 'EMBEDDING')
           OR {first("input_tokens")} IS NOT NULL OR {first("output_tokens")} IS NOT NULL)
      AND lower(coalesce({first("operation")}, '')) NOT IN ({non})
    """


#: llm_calls rows are finished and priced in batches of this many rows (bounded memory)
LLM_BATCH_ROWS = 16_384


def extract_llm_calls(stage: Stage, settings: Settings, overrides: PriceOverrides | None) -> int:
    """Build llm_calls rows from the staged spans and stage them; returns how many.

    Readers that already staged the raw GenAI columns (``stage__llm_raw``, the OTLP path) are
    used directly, restricted to the spans that survived the in-file dedupe; otherwise the
    columns are read from the staged spans' JSON attributes.
    """
    if "spans" not in stage.tables or stage.count("spans") == 0:
        stage.ensure("llm_calls")
        return 0
    if stage.llm_raw:
        # only spans that survived the in-file dedupe (all of them when nothing repeated)
        keep = "WHERE _pos IN (SELECT _pos FROM stage_spans)" if "spans" in stage.deduped else ""
        stage.con.execute(
            f"CREATE OR REPLACE TABLE stage__llm_batch AS SELECT * FROM stage__llm_raw {keep}"
        )
    else:
        keys = _alias_keys()
        paths = ", ".join(f"'{_path(k)}'" for k in keys)
        idx = {k: i + 1 for i, k in enumerate(keys)}
        body = llm_select_sql(lambda k: f"a[{idx[k]}]", lambda k: f"r[{idx[k]}]", "oi", "x")
        stage.con.execute(
            f"""
            CREATE OR REPLACE TABLE stage__llm_batch AS
            WITH x AS (
              SELECT trace_id, span_id, start_ts, duration_ms, status_code, status_message,
                     service, _pos,
                     json_extract_string(attributes, [{paths}]) AS a,
                     json_extract_string(resource, [{paths}]) AS r,
                     (attributes LIKE '%"llm.%' OR attributes LIKE '%"openinference.%') AS oi
              FROM stage_spans
              WHERE attributes LIKE '%gen_ai.%' OR attributes LIKE '%llm.%'
                 OR attributes LIKE '%openinference.%')
            {body}
            """
        )
    stage.ensure("llm_calls")
    total = int(stage.con.execute("SELECT count(*) FROM stage__llm_batch").fetchall()[0][0])
    # stream the batches (a plain scan keeps insertion order, no sort) through a second
    # cursor while the main connection appends
    cursor = stage.con.cursor()
    try:
        reader = cursor.sql("SELECT * FROM stage__llm_batch").to_arrow_reader(LLM_BATCH_ROWS)
        for batch in reader:
            priced = price_frame(_finish(batch.to_pandas(), settings), overrides)
            stage.append("llm_calls", priced)
            del priced
    finally:
        cursor.close()
    stage.con.execute("DROP TABLE stage__llm_batch")
    return total


def _finish(raw: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    out = pd.DataFrame(index=raw.index)
    for c in (
        "trace_id",
        "span_id",
        "ts",
        "latency_ms",
        "ttft_ms",
        "prompt_hash",
        "tenant",
        "session_id",
        "agent",
        "region",
        "service",
        "service_version",
        "reported_cost_usd",
        "reasoning_tokens",
        "attr_style",
        "_pos",
    ):
        out[c] = raw[c]
    provider = raw["provider_span"].where(raw["provider_span"].notna(), raw["provider_res"])
    out["provider"] = provider.map(normalize_provider)
    out["model"] = raw["response_model"].where(raw["response_model"].notna(), raw["request_model"])
    op = raw["operation"].astype("object")
    oi_kind = raw["oi_kind"].astype("object")
    op = op.where(op.notna(), oi_kind.map({"LLM": "chat", "EMBEDDING": "embeddings"}))
    out["operation"] = op.where(op.notna(), "chat")
    for t in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
        out[t] = raw[t].fillna(0).astype("int64")
    err = error_type(raw)
    failed = (raw["status_code"] == "error") | err.notna()
    out["status"] = np.where(failed, "error", "ok")
    out["error_type"] = err.where(failed, None)
    out.loc[failed & out["error_type"].isna(), "error_type"] = "other"
    uid = raw["user_id"]
    if settings.hash_user_ids:
        salt = settings.user_id_salt
        uniq = {
            u: hashlib.sha256((salt + str(u)).encode()).hexdigest() for u in uid.dropna().unique()
        }
        uid = uid.map(uniq)
    out["user_id"] = uid
    return out


_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "rate_limit",
        re.compile(
            r"rate.?limit|too.?many.?requests|throttl|quota|\b429\b|resource.?exhausted", re.I
        ),
    ),
    ("timeout", re.compile(r"time.?out|timed.?out|deadline|\b408\b|\b504\b", re.I)),
    (
        "content_filter",
        re.compile(r"content.?filter|content.?policy|safety|moderation|blocked", re.I),
    ),
    (
        "server_error",
        re.compile(r"\b5\d\d\b|server|internal|overload|unavailable|bad.?gateway|service", re.I),
    ),
    (
        "client_error",
        re.compile(
            r"\b4\d\d\b|bad.?request|invalid|auth|permission|forbidden|not.?found|unprocessable|client|validation|context.?length",
            re.I,
        ),
    ),
]


def normalize_error(value: Any) -> str | None:
    """Map an error type, HTTP status or exception class to the closed vocabulary."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    if not text or text.lower() in ("none", "null", "_other", "ok"):
        return "other" if text == "_OTHER" else None
    if text.isdigit():
        code = int(text)
        if code == 429:
            return "rate_limit"
        if code in (408, 504):
            return "timeout"
        if 500 <= code < 600:
            return "server_error"
        if 400 <= code < 500:
            return "client_error"
        return None
    for label, pattern in _RULES:
        if pattern.search(text):
            return label
    return "other"


def error_type(raw: pd.DataFrame) -> pd.Series:
    """Normalised error type per row from error.type, HTTP status, exception type, message."""
    result = pd.Series([None] * len(raw), index=raw.index, dtype="object")
    for col in ("error_attr", "http_status", "exception_type"):
        vals = raw[col]
        mapping = {v: normalize_error(v) for v in vals.dropna().unique()}
        mapped = vals.map(mapping)
        if col == "http_status":
            code = pd.to_numeric(vals, errors="coerce")
            mapped = mapped.where(code >= 400, None)
        result = result.where(result.notna(), mapped)
    is_err = raw["status_code"] == "error"
    msg = raw["status_message"].where(is_err & result.isna())
    mapping = {v: normalize_error(v) for v in msg.dropna().unique()}
    result = result.where(result.notna(), msg.map(mapping))
    return result
