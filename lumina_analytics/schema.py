"""Table and column names, DuckDB types, and ``validate_*`` helpers: the shared data model.

Time is UTC stored as naive ``TIMESTAMP``. Analyses of many series use the long frame
``unique_id, ds, y``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from lumina_analytics.errors import SchemaError


@dataclass(frozen=True)
class Table:
    """One warehouse table: ordered columns with DuckDB types and an optional natural key."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        """Column names in table order."""
        return [c for c, _ in self.columns]

    def ddl(self, keyed: bool = True) -> str:
        """``CREATE TABLE IF NOT EXISTS`` statement for this table (``keyed``: with its key)."""
        cols = ",\n  ".join(f"{c} {t}" for c, t in self.columns)
        if self.key and keyed:
            cols += f",\n  PRIMARY KEY ({', '.join(self.key)})"
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n  {cols}\n)"


SPANS = Table(
    "spans",
    (
        ("trace_id", "VARCHAR NOT NULL"),  # 32 lower-case hex chars
        ("span_id", "VARCHAR NOT NULL"),  # 16 lower-case hex chars
        ("parent_span_id", "VARCHAR"),  # NULL for roots; may dangle (orphans stay queryable)
        ("name", "VARCHAR"),
        ("kind", "VARCHAR"),  # unspecified|internal|server|client|producer|consumer
        ("service", "VARCHAR"),
        ("start_ts", "TIMESTAMP"),
        ("end_ts", "TIMESTAMP"),
        ("duration_ms", "DOUBLE"),
        ("status_code", "VARCHAR"),  # unset|ok|error
        ("status_message", "VARCHAR"),
        ("attributes", "JSON"),
        ("resource", "JSON"),
    ),
    key=("trace_id", "span_id"),
)

LLM_CALLS = Table(
    "llm_calls",
    (
        ("ts", "TIMESTAMP NOT NULL"),
        ("trace_id", "VARCHAR NOT NULL"),
        ("span_id", "VARCHAR NOT NULL"),
        ("provider", "VARCHAR"),  # genai-prices provider id, e.g. openai, anthropic
        ("model", "VARCHAR"),  # response model when known, else request model
        ("operation", "VARCHAR"),  # chat|text_completion|embeddings|...
        ("input_tokens", "BIGINT"),  # includes cache reads and writes
        ("output_tokens", "BIGINT"),  # includes reasoning tokens
        ("cache_read_tokens", "BIGINT"),
        ("cache_write_tokens", "BIGINT"),
        ("reasoning_tokens", "BIGINT"),
        ("latency_ms", "DOUBLE"),
        ("ttft_ms", "DOUBLE"),
        ("status", "VARCHAR"),  # ok|error
        ("error_type", "VARCHAR"),  # rate_limit|timeout|server_error|... or NULL
        ("tenant", "VARCHAR"),
        ("user_id", "VARCHAR"),
        ("session_id", "VARCHAR"),
        ("agent", "VARCHAR"),
        ("region", "VARCHAR"),
        ("cost_usd", "DOUBLE"),  # NULL when the model could not be priced, never a silent 0
        ("service", "VARCHAR"),
        ("service_version", "VARCHAR"),
        ("prompt_hash", "VARCHAR"),  # hash of the prompt, never its text
        ("reported_cost_usd", "DOUBLE"),  # cost the telemetry itself carried, if any
        ("price_source", "VARCHAR"),  # genai-prices|override|NULL
        ("attr_style", "VARCHAR"),  # current|deprecated|openinference|mixed
    ),
    key=("trace_id", "span_id"),
)

METRICS = Table(
    "metrics",
    (
        ("ts", "TIMESTAMP NOT NULL"),
        ("name", "VARCHAR NOT NULL"),
        ("labels", "JSON NOT NULL"),  # canonical JSON object, keys sorted ('{}' when none)
        ("value", "DOUBLE"),
    ),
    key=("name", "labels", "ts"),
)

LOGS = Table(
    "logs",
    (
        ("ts", "TIMESTAMP NOT NULL"),
        ("severity", "VARCHAR"),  # TRACE|DEBUG|INFO|WARN|ERROR|FATAL
        ("service", "VARCHAR"),
        ("body", "VARCHAR"),
        ("trace_id", "VARCHAR"),
        ("span_id", "VARCHAR"),
        ("attributes", "JSON"),
        ("source_sha256", "VARCHAR"),  # file the record came from (logs have no natural key)
        ("source_position", "VARCHAR"),
    ),
    key=("source_sha256", "source_position"),
)

EVENTS = Table(
    "events",
    (
        ("ts", "TIMESTAMP NOT NULL"),
        ("tenant", "VARCHAR"),
        ("user_id", "VARCHAR"),
        ("session_id", "VARCHAR"),
        ("event_type", "VARCHAR NOT NULL"),
        ("properties", "JSON"),
    ),
    key=("ts", "user_id", "session_id", "event_type"),
)

DEPLOYMENTS = Table(
    "deployments",
    (
        ("ts", "TIMESTAMP NOT NULL"),
        ("service", "VARCHAR NOT NULL"),
        ("version", "VARCHAR NOT NULL"),
        ("region", "VARCHAR"),
        ("strategy", "VARCHAR"),  # rolling|canary|blue_green
    ),
    key=("ts", "service", "version", "region"),
)

INCIDENTS = Table(
    "incidents",
    (
        ("incident_id", "VARCHAR NOT NULL"),
        ("kind", "VARCHAR NOT NULL"),
        ("start_ts", "TIMESTAMP NOT NULL"),
        ("end_ts", "TIMESTAMP NOT NULL"),
        ("dimension", "VARCHAR"),
        ("value", "VARCHAR"),
        ("magnitude", "DOUBLE"),
        ("description", "VARCHAR"),
    ),
    key=("incident_id",),
)

INGEST_LOG = Table(
    "ingest_log",
    (
        ("path", "VARCHAR NOT NULL"),
        ("sha256", "VARCHAR NOT NULL"),
        ("format", "VARCHAR"),
        ("rows_loaded", "BIGINT"),
        ("rows_quarantined", "BIGINT"),
        ("started_at", "TIMESTAMP"),
        ("finished_at", "TIMESTAMP"),
        ("status", "VARCHAR"),  # ok|failed|skipped
        ("message", "VARCHAR"),
    ),
)

QUARANTINE = Table(
    "quarantine",
    (
        ("path", "VARCHAR NOT NULL"),
        ("sha256", "VARCHAR NOT NULL"),
        ("position", "VARCHAR"),  # line 12 | row 7 | byte 345 | span 3 of line 2
        ("reason", "VARCHAR NOT NULL"),
        ("raw", "VARCHAR"),  # the offending record, truncated to 64 KiB
        ("quarantined_at", "TIMESTAMP"),
    ),
)

FORECASTS = Table(
    "forecasts",
    (
        ("unique_id", "VARCHAR NOT NULL"),
        ("ds", "TIMESTAMP NOT NULL"),
        ("yhat", "DOUBLE"),
        ("yhat_lower", "DOUBLE"),
        ("yhat_upper", "DOUBLE"),
        ("model", "VARCHAR NOT NULL"),
        ("cutoff", "TIMESTAMP NOT NULL"),
        ("metric", "VARCHAR"),
        ("created_at", "TIMESTAMP"),
    ),
    key=("unique_id", "ds", "model", "cutoff"),
)

ANOMALIES = Table(
    "anomalies",
    (
        ("unique_id", "VARCHAR NOT NULL"),
        ("ds", "TIMESTAMP NOT NULL"),
        ("score", "DOUBLE"),
        ("is_anomaly", "BOOLEAN"),
        ("detector", "VARCHAR NOT NULL"),
        ("metric", "VARCHAR"),
        ("created_at", "TIMESTAMP"),
    ),
    key=("unique_id", "ds", "detector"),
)

# -- alerting (schema version 2) -----------------------------------------------------------
ALERT_STATE = Table(
    "alert_state",
    (
        ("fingerprint", "VARCHAR NOT NULL"),  # sha256 of rule name + sorted labels (dedup key)
        ("rule", "VARCHAR NOT NULL"),
        ("labels", "JSON NOT NULL"),  # canonical JSON object, keys sorted
        ("state", "VARCHAR NOT NULL"),  # pending|firing (resolved alerts leave this table)
        ("severity", "VARCHAR"),
        ("group_key", "VARCHAR"),  # route group_by label values, for notification grouping
        ("active_since", "TIMESTAMP"),  # first evaluation at which the condition held
        ("fired_at", "TIMESTAMP"),
        ("last_eval_ts", "TIMESTAMP"),
        ("last_value", "DOUBLE"),
        ("threshold", "DOUBLE"),
        ("last_notified_at", "TIMESTAMP"),
        ("summary", "VARCHAR"),
        ("runbook", "VARCHAR"),
        ("root_cause", "JSON"),  # ranked dimension contributions, computed when it fires
    ),
    key=("fingerprint",),
)

ALERT_HISTORY = Table(
    "alert_history",
    (
        ("fingerprint", "VARCHAR NOT NULL"),
        ("rule", "VARCHAR NOT NULL"),
        ("labels", "JSON NOT NULL"),
        ("state", "VARCHAR NOT NULL"),  # pending|firing|resolved|cancelled (one row per transition)
        ("severity", "VARCHAR"),
        ("group_key", "VARCHAR"),
        ("eval_ts", "TIMESTAMP NOT NULL"),  # data time of the evaluation that made the transition
        ("active_since", "TIMESTAMP"),
        ("value", "DOUBLE"),
        ("threshold", "DOUBLE"),
        ("summary", "VARCHAR"),
        ("runbook", "VARCHAR"),
        ("root_cause", "JSON"),
        ("recorded_at", "TIMESTAMP"),  # wall-clock time of the write
    ),
    key=("fingerprint", "eval_ts", "state"),
)

ALERT_OUTBOX = Table(
    "alert_outbox",
    (
        ("idempotency_key", "VARCHAR NOT NULL"),  # same key on every retry of one notification
        ("sink", "VARCHAR NOT NULL"),  # webhook|jsonl:<path> (never a URL: no secrets stored)
        ("group_key", "VARCHAR"),
        ("status", "VARCHAR"),  # firing|resolved
        ("payload", "JSON NOT NULL"),
        ("created_at", "TIMESTAMP"),
        ("attempts", "INTEGER"),
        ("last_attempt_at", "TIMESTAMP"),
        ("last_error", "VARCHAR"),
        ("delivered_at", "TIMESTAMP"),  # NULL while owed
    ),
    key=("idempotency_key", "sink"),
)


def _rollup_table(name: str) -> Table:
    return Table(
        name,
        (
            ("bucket", "TIMESTAMP NOT NULL"),  # start of the hour / day (UTC)
            ("dimension", "VARCHAR NOT NULL"),  # all|provider|model|tenant|agent|region|service
            ("value", "VARCHAR NOT NULL"),  # the dimension's value ('*' for all, '(none)' for NULL)
            ("requests", "BIGINT"),
            ("errors", "BIGINT"),
            ("latency_sum_ms", "DOUBLE"),
            ("latency_p50_ms", "DOUBLE"),
            ("latency_p95_ms", "DOUBLE"),
            ("latency_p99_ms", "DOUBLE"),
            ("latency_max_ms", "DOUBLE"),
            ("input_tokens", "BIGINT"),
            ("output_tokens", "BIGINT"),
            ("cost_usd", "DOUBLE"),
            ("refreshed_at", "TIMESTAMP"),
        ),
        key=("bucket", "dimension", "value"),
    )


#: Rollups of ``llm_calls`` (schema version 3), kept far longer than the raw rows.
LLM_ROLLUP_HOURLY = _rollup_table("llm_rollup_hourly")
LLM_ROLLUP_DAILY = _rollup_table("llm_rollup_daily")
ROLLUP_TABLES: tuple[Table, ...] = (LLM_ROLLUP_HOURLY, LLM_ROLLUP_DAILY)

#: Tables added by schema version 2 (alerting).
ALERT_TABLES: tuple[Table, ...] = (ALERT_STATE, ALERT_HISTORY, ALERT_OUTBOX)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        SPANS,
        LLM_CALLS,
        METRICS,
        LOGS,
        EVENTS,
        DEPLOYMENTS,
        INCIDENTS,
        INGEST_LOG,
        QUARANTINE,
        FORECASTS,
        ANOMALIES,
        *ALERT_TABLES,
        *ROLLUP_TABLES,
    )
}

#: Telemetry tables that ingestion writes.
TELEMETRY_TABLES: tuple[str, ...] = (
    "spans",
    "llm_calls",
    "metrics",
    "logs",
    "events",
    "deployments",
)

LONG_COLUMNS: tuple[str, str, str] = ("unique_id", "ds", "y")


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str = "frame") -> None:
    """Raise :class:`SchemaError` naming every missing column."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(f"{what} is missing column(s) {missing}; it has {list(frame.columns)}")


def validate_long(frame: pd.DataFrame, what: str = "series frame") -> pd.DataFrame:
    """Check a long ``unique_id, ds, y`` frame: naive datetimes, numeric y, no duplicate keys.

    Returns a copy sorted by ``unique_id, ds`` with ``unique_id`` as string.
    """
    require_columns(frame, LONG_COLUMNS, what)
    out = frame.copy()
    ds = out["ds"]
    if isinstance(ds.dtype, pd.DatetimeTZDtype):
        raise SchemaError(
            f"{what}: column 'ds' is timezone-aware ({ds.dtype}); convert to naive UTC with "
            "ds.dt.tz_convert('UTC').dt.tz_localize(None)"
        )
    try:
        out["ds"] = pd.to_datetime(ds)
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"{what}: column 'ds' is not parseable as datetimes: {exc}") from exc
    if isinstance(out["ds"].dtype, pd.DatetimeTZDtype):
        raise SchemaError(
            f"{what}: column 'ds' holds timezone-aware timestamps; convert to naive UTC first"
        )
    try:
        out["y"] = pd.to_numeric(out["y"]).astype("float64")
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"{what}: column 'y' is not numeric: {exc}") from exc
    out["unique_id"] = out["unique_id"].astype(str)
    dup = out.duplicated(["unique_id", "ds"])
    if dup.any():
        first = out.loc[dup, ["unique_id", "ds"]].iloc[0]
        raise SchemaError(
            f"{what}: {int(dup.sum())} duplicate (unique_id, ds) rows, first "
            f"({first['unique_id']}, {first['ds']}); aggregate them before fitting"
        )
    return out.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)


def validate_table_frame(frame: pd.DataFrame, table: str) -> None:
    """Check that ``frame`` has every column of warehouse table ``table``."""
    if table not in TABLES:
        raise SchemaError(f"unknown table {table!r}; known tables: {sorted(TABLES)}")
    require_columns(frame, TABLES[table].column_names, f"frame for table {table!r}")


def table_for_rows(
    table: str, columns: Iterable[str], tables: Mapping[str, Table] | None = None
) -> Table:
    """The table of ``tables`` (default: the warehouse's) that rows with ``columns`` go to.

    Raises :class:`SchemaError` for an unknown table or a column the table does not have.
    """
    known = TABLES if tables is None else tables
    if table not in known:
        raise SchemaError(f"unknown table {table!r}; known tables: {sorted(known)}")
    spec = known[table]
    extra = [c for c in columns if c not in spec.column_names]
    if extra:
        raise SchemaError(f"rows for table {table!r} have unknown column(s) {extra}")
    return spec


def columns_of(table: str) -> Sequence[str]:
    """Column names of a warehouse table."""
    return TABLES[table].column_names
