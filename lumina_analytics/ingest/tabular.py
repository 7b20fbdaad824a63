"""CSV and Parquet files whose columns match a warehouse table, or a column mapping.

Which table a file loads into, in this order:

1. ``mapping=`` a YAML mapping file::

       table: spans                 # target warehouse table
       columns:                     # target column: source column
         trace_id: TraceID
         span_id: SpanID
         start_ts: StartTimeUnixNano
       time_units:                  # optional, per target column: s | ms | us | ns | iso
         start_ts: ns
       null_values:                 # optional, per target column: values that mean NULL
         parent_span_id: [root, ""]
       constants:                   # optional, per target column: a literal value
         kind: server

2. the built-in mapping ``trainticket`` when the header is exactly
   ``TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration``
   (Nezha's TrainTicket traces): ``ParentID=root`` means no parent, the service is the pod name
   without its ReplicaSet/pod hash suffix, and the pod is kept in ``resource`` as
   ``k8s.pod.name``;
3. ``table=`` (forces the target; columns must then be named like the table's);
4. the table whose column names cover the header (every header column is a column of that table
   and the table's required columns are present): events, deployments, incidents, metrics,
   spans, llm_calls, logs.

Values are converted to the table's types; a row with a value that does not convert (or a
missing required value) is quarantined as ``row N`` (N counts data rows from 1). Timestamps
without a unit are ISO strings, or epoch numbers whose unit is guessed from their magnitude
(s, ms, us, ns). ``llm_calls`` rows without ``cost_usd`` are priced at ingest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import yaml

from lumina_analytics.config import Settings
from lumina_analytics.errors import IngestError
from lumina_analytics.ingest.detect import is_gzip
from lumina_analytics.ingest.stage import RAW_LIMIT, Stage
from lumina_analytics.pricing import PriceOverrides, normalize_provider, price_frame
from lumina_analytics.schema import TABLES

TRAINTICKET_HEADER = (
    "TraceID",
    "SpanID",
    "ParentID",
    "PodName",
    "OperationName",
    "StartTimeUnixNano",
    "EndTimeUnixNano",
    "Duration",
)
AUTO_TABLES = ("events", "deployments", "incidents", "metrics", "spans", "llm_calls", "logs")
_UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def load_mapping(path: str | Path) -> dict[str, Any]:
    """Read and check a YAML column-mapping file."""
    p = Path(path).expanduser()
    if not p.exists():
        raise IngestError(str(p), None, "mapping file does not exist")
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise IngestError(str(p), None, f"mapping file is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("table") not in TABLES:
        raise IngestError(str(p), None, f"mapping needs 'table:' one of {sorted(TABLES)}")
    cols = doc.get("columns") or {}
    if not isinstance(cols, dict):
        raise IngestError(str(p), None, "'columns:' must map target column -> source column")
    known = set(TABLES[doc["table"]].column_names)
    bad = [c for c in list(cols) + list(doc.get("constants") or {}) if c not in known]
    if bad:
        raise IngestError(str(p), None, f"unknown column(s) {bad} for table {doc['table']}")
    for unit in (doc.get("time_units") or {}).values():
        if unit not in (*_UNITS, "iso"):
            raise IngestError(str(p), None, f"time unit {unit!r} must be one of s, ms, us, ns, iso")
    return doc


def _required(table: str) -> list[str]:
    spec = TABLES[table]
    return [c for c, t in spec.columns if "NOT NULL" in t]


def choose_table(header: list[str], table: str | None) -> str | None:
    """The table a header maps to by column names (``table`` forces it)."""
    if table is not None:
        return table
    hs = set(header)
    for name in AUTO_TABLES:
        cols = set(TABLES[name].column_names)
        if hs <= cols and set(_required(name)) <= hs:
            return name
    return None


def _convert(expr: str, sql_type: str, unit: str | None) -> str:
    base = sql_type.replace(" NOT NULL", "")
    if base == "TIMESTAMP":
        if unit and unit != "iso":
            return _epoch(expr, unit)
        return (
            f"coalesce(TRY_CAST(timezone('UTC', TRY_CAST({expr} AS TIMESTAMPTZ)) AS TIMESTAMP), "
            f"{_epoch(expr, None)})"
        )
    if base == "JSON":
        return f"CASE WHEN json_valid({expr}) THEN {expr}::JSON ELSE to_json({expr}) END"
    if base in ("BIGINT", "INTEGER"):
        return f"TRY_CAST(TRY_CAST({expr} AS DOUBLE) AS {base})"
    if base in ("DOUBLE", "BOOLEAN"):
        return f"TRY_CAST({expr} AS {base})"
    return f"{expr}::VARCHAR"


def _epoch(expr: str, unit: str | None) -> str:
    num = f"TRY_CAST({expr} AS DOUBLE)"
    if unit is not None:
        us = f"{num} * {1_000_000 / _UNITS[unit]}"
    else:
        us = (
            f"CASE WHEN abs({num}) >= 1e17 THEN {num} / 1000 WHEN abs({num}) >= 1e14 THEN {num} "
            f"WHEN abs({num}) >= 1e11 THEN {num} * 1000 ELSE {num} * 1000000 END"
        )
    return f"TRY(make_timestamp(CAST({us} AS BIGINT)))"


def read_tabular(
    path: Path,
    stage: Stage,
    fmt: str,
    settings: Settings,
    overrides: PriceOverrides | None,
    table: str | None = None,
    mapping: str | Path | None = None,
) -> str:
    """Stage a CSV/Parquet file; returns the format label (``csv:trainticket`` etc.)."""
    con = stage.con
    try:
        if fmt == "parquet":
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _src AS SELECT row_number() OVER () AS _row, "
                "COLUMNS(*)::VARCHAR FROM read_parquet(?)",
                [str(path)],
            )
        else:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _src AS SELECT row_number() OVER () AS _row, * "
                "FROM read_csv(?, all_varchar = true, header = true, compression = ?)",
                [str(path), "gzip" if is_gzip(path) else "none"],
            )
    except duckdb.Error as exc:
        msg = str(exc).splitlines()[0]
        raise IngestError(str(path), None, f"cannot read {fmt}: {msg}") from exc
    header = [r[0] for r in con.execute("DESCRIBE _src").fetchall()][1:]
    label = fmt
    spec: dict[str, Any]
    if mapping is not None:
        spec = load_mapping(mapping)
        label = f"{fmt}:mapping"
    elif tuple(header) == TRAINTICKET_HEADER:
        spec = {"table": "spans", "builtin": "trainticket"}
        label = f"{fmt}:trainticket"
    else:
        target = choose_table(header, table)
        if target is None:
            raise IngestError(
                str(path),
                "row 0",
                f"header {header} matches no warehouse table; name columns like a table "
                f"({', '.join(AUTO_TABLES)}) or pass --mapping FILE",
            )
        unknown = [h for h in header if h not in TABLES[target].column_names]
        if unknown:
            raise IngestError(str(path), "row 0", f"column(s) {unknown} are not in table {target}")
        spec = {"table": target, "columns": {h: h for h in header}}
        label = f"{fmt}:{target}"
    target = spec["table"]
    exprs, raws = _expressions(spec, header, path)
    _stage_rows(stage, target, exprs, raws)
    if target == "llm_calls":
        _price_staged(stage, settings, overrides, "cost_usd" in exprs)
    return label


def _expressions(
    spec: dict[str, Any], header: list[str], path: Path
) -> tuple[dict[str, str], dict[str, str]]:
    """SQL conversion per target column, and the raw value each converts (to spot bad ones)."""
    table = spec["table"]
    types = dict(TABLES[table].columns)
    raws: dict[str, str] = {}
    if spec.get("builtin") == "trainticket":
        raws["parent_span_id"] = "NULL"
        return {
            "trace_id": 'lower("TraceID")',
            "span_id": 'lower("SpanID")',
            "parent_span_id": "CASE WHEN \"ParentID\" IN ('root', '') THEN NULL ELSE lower(\"ParentID\") END",
            "name": '"OperationName"',
            "kind": "'unspecified'",
            "service": "regexp_replace(\"PodName\", '-[a-z0-9]{6,10}-[a-z0-9]{5}$', '')",
            "start_ts": _epoch('"StartTimeUnixNano"', "ns"),
            "end_ts": _epoch('"EndTimeUnixNano"', "ns"),
            "duration_ms": 'CAST(TRY_CAST("EndTimeUnixNano" AS HUGEINT) - TRY_CAST("StartTimeUnixNano" AS HUGEINT) AS DOUBLE) / 1e6',
            "status_code": "'unset'",
            "attributes": "'{}'::JSON",
            "resource": "json_object('service.name', regexp_replace(\"PodName\", '-[a-z0-9]{6,10}-[a-z0-9]{5}$', ''), 'k8s.pod.name', \"PodName\")",
        }, raws
    exprs: dict[str, str] = {}
    units = spec.get("time_units") or {}
    nulls = spec.get("null_values") or {}
    for target, source in (spec.get("columns") or {}).items():
        if source not in header:
            raise IngestError(
                str(path), "row 0", f"mapped source column {source!r} is not in the header {header}"
            )
        src = _q(source)
        if target in nulls:
            vals = nulls[target] if isinstance(nulls[target], list) else [nulls[target]]
            lits = ", ".join("'" + str(v).replace("'", "''") + "'" for v in vals)
            src = f"CASE WHEN {src} IN ({lits}) THEN NULL ELSE {src} END"
            raws[target] = src
        exprs[target] = _convert(src, types[target], units.get(target))
    for target, value in (spec.get("constants") or {}).items():
        lit = "'" + str(value).replace("'", "''") + "'"
        exprs[target] = _convert(lit, types[target], units.get(target))
    if table in ("spans", "llm_calls", "logs"):
        for c in ("trace_id", "span_id", "parent_span_id"):
            if c in exprs:
                exprs[c] = f"lower({exprs[c]})"
    for target in spec.get("constants") or {}:
        raws[target] = "NULL"
    return exprs, raws


def _stage_rows(
    stage: Stage, table: str, exprs: dict[str, str], raws: dict[str, str] | None = None
) -> None:
    con = stage.con
    name = stage.ensure(table)
    required = _required(table)
    checks: list[str] = []
    for col, expr in exprs.items():
        checks.append(
            f"WHEN ({expr}) IS NULL AND _v{len(checks)} IS NOT NULL "
            f"THEN 'column {col}: value ' || to_json(_v{len(checks)}) || ' is not {dict(TABLES[table].columns)[col].replace(' NOT NULL', '')}'"
        )
    # the raw (pre-conversion) value of each target column, to tell bad from absent
    raws = raws or {}
    raw_cols = ", ".join(
        f"({raws.get(col, _raw_of(expr))}) AS _v{i}" for i, (col, expr) in enumerate(exprs.items())
    )
    miss = [c for c in required if c not in exprs]
    missing_case = "".join(
        f"WHEN ({exprs[c]}) IS NULL THEN 'missing required {c}' " for c in required if c in exprs
    )
    conv = ", ".join(f"{e} AS {_q(c)}" for c, e in exprs.items())
    problem = (
        "CASE " + " ".join(checks) + " " + missing_case + " END"
        if (checks or missing_case)
        else "NULL"
    )
    if miss:
        problem = f"'missing required column(s) {', '.join(miss)}'"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _conv AS
        SELECT 'row ' || _row AS _pos, {problem} AS _problem, {conv},
               left(to_json(_src_row)::VARCHAR, {RAW_LIMIT}) AS _raw
        FROM (SELECT *, {raw_cols}, _src AS _src_row FROM _src) AS _src
        """
    )
    con.execute(
        "INSERT INTO stage_quarantine SELECT _pos, _problem, _raw FROM _conv "
        "WHERE _problem IS NOT NULL"
    )
    cols = ", ".join(_q(c) for c in exprs)
    con.execute(
        f'INSERT INTO "{name}" ({cols}, _pos) SELECT {cols}, _pos FROM _conv WHERE _problem IS NULL'
    )
    con.execute("DROP TABLE _conv; DROP TABLE _src")


def _raw_of(expr: str) -> str:
    """The source expression inside a conversion (first quoted identifier or literal)."""
    import re

    m = re.search(r'"(?:[^"]|"")+"', expr)
    return m.group(0) if m else "NULL"


def _price_staged(
    stage: Stage, settings: Settings, overrides: PriceOverrides | None, had_cost: bool
) -> None:
    frame = stage.con.execute("SELECT * FROM stage_llm_calls").df()
    if frame.empty:
        return
    frame["provider"] = frame["provider"].map(normalize_provider)
    need = frame["cost_usd"].isna() if had_cost else pd.Series(True, index=frame.index)
    if need.any():
        priced = price_frame(frame.loc[need], overrides)
        frame.loc[need, "cost_usd"] = priced["cost_usd"]
        frame.loc[need, "price_source"] = priced["price_source"]
    if settings.hash_user_ids and "user_id" in frame:
        import hashlib

        salt = settings.user_id_salt
        uniq = {
            u: hashlib.sha256((salt + str(u)).encode()).hexdigest()
            for u in frame["user_id"].dropna().unique()
        }
        frame["user_id"] = frame["user_id"].map(uniq)
    stage.con.execute("DELETE FROM stage_llm_calls")
    stage.append("llm_calls", frame)
