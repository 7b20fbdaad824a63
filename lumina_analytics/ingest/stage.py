"""Staging area for one file: an in-memory DuckDB (spilling to a temp dir) holding parsed rows.

Nothing here touches the warehouse; :mod:`lumina_analytics.ingest.loader` copies the staged
tables into it in one writer transaction.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import duckdb
import pandas as pd

from lumina_analytics.schema import TABLES
from lumina_analytics.warehouse import scratch

RAW_LIMIT = 64 * 1024  # quarantine keeps at most this many characters of the raw record
#: DuckDB memory limit of the staging database (it spills to a temp dir beyond it where it can)
STAGE_MEMORY_LIMIT = os.environ.get("LUMINA_STAGE_MEMORY_LIMIT", "512MB")


def _staging_type(sql_type: str) -> str:
    return sql_type.replace(" NOT NULL", "")


class Stage:
    """Staged rows of one source file plus its quarantined records."""

    def __init__(self, path: str, sha256: str) -> None:
        self.path = path
        self.sha256 = sha256
        self.con: duckdb.DuckDBPyConnection = scratch()
        self._tmp = tempfile.TemporaryDirectory(prefix="lumina-stage-")
        self.con.execute(f"SET temp_directory = '{self._tmp.name}'")
        self.con.execute(f"SET memory_limit = '{STAGE_MEMORY_LIMIT}'")
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET enable_progress_bar = false")
        self.tmpdir = self._tmp.name
        self.tables: list[str] = []
        self.con.execute(
            "CREATE TABLE stage_quarantine (position VARCHAR, reason VARCHAR, raw VARCHAR)"
        )
        self.notes: list[str] = []
        #: True when the reader staged raw GenAI columns in ``stage__llm_raw`` (OTLP path)
        self.llm_raw = False
        #: tables from which :meth:`dedupe` removed repeated keys
        self.deduped: set[str] = set()

    def reset(self, path: str, sha256: str) -> None:
        """Empty the stage for the next file (the connection and its macros are reused)."""
        for table in self.tables:
            self.con.execute(f'DROP TABLE IF EXISTS "stage_{table}"')
        self.tables = []
        self.con.execute("DELETE FROM stage_quarantine")
        self.con.execute("DROP TABLE IF EXISTS stage__llm_raw")
        self.notes = []
        self.llm_raw = False
        self.deduped = set()
        self.path = path
        self.sha256 = sha256

    def close(self) -> None:
        """Release the staging connection and its temp files."""
        try:
            self.con.close()
        finally:
            self._tmp.cleanup()

    def ensure(self, table: str) -> str:
        """Create ``stage_<table>`` (table columns + ``_pos``) if needed; return its name."""
        name = f"stage_{table}"
        if table not in self.tables:
            cols = ", ".join(f'"{c}" {_staging_type(t)}' for c, t in TABLES[table].columns)
            self.con.execute(f'CREATE TABLE "{name}" ({cols}, _pos VARCHAR)')
            self.tables.append(table)
        return name

    def append(self, table: str, frame: pd.DataFrame | Any) -> None:
        """Append a pandas frame or Arrow table (columns by name, ``_pos`` optional)."""
        name = self.ensure(table)
        if len(frame) == 0:
            return
        self.con.register("_lumina_batch", frame)
        try:
            self.con.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM _lumina_batch')
        finally:
            self.con.unregister("_lumina_batch")

    def quarantine(self, position: str | None, reason: str, raw: object) -> None:
        """Record one rejected record."""
        text = raw if isinstance(raw, str) else _dump(raw)
        self.con.execute(
            "INSERT INTO stage_quarantine VALUES (?, ?, ?)", [position, reason, text[:RAW_LIMIT]]
        )

    def quarantine_frame(self, frame: pd.DataFrame) -> None:
        """Append many quarantine rows (columns position, reason, raw)."""
        if frame.empty:
            return
        self.con.register("_lumina_q", frame[["position", "reason", "raw"]])
        try:
            self.con.execute(
                f"INSERT INTO stage_quarantine SELECT position, reason, left(raw, {RAW_LIMIT}) "
                "FROM _lumina_q"
            )
        finally:
            self.con.unregister("_lumina_q")

    def count(self, table: str) -> int:
        """Rows staged for ``table``."""
        if table not in self.tables:
            return 0
        return int(self.con.execute(f'SELECT count(*) FROM "stage_{table}"').fetchall()[0][0])

    def quarantined(self) -> int:
        """Number of quarantined records."""
        return int(self.con.execute("SELECT count(*) FROM stage_quarantine").fetchall()[0][0])

    def dedupe(self) -> None:
        """Quarantine rows whose table key repeats within this file (the first one stays)."""
        for table in self.tables:
            key = TABLES[table].key
            if not key:
                continue
            name = f"stage_{table}"
            keys = ", ".join(f'"{k}"' for k in key)
            dup = self.con.execute(
                f'SELECT count(*) - count(DISTINCT ({keys})) FROM "{name}"'
            ).fetchall()[0][0]
            if not dup:
                continue
            self.con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE _ranked AS
                SELECT *, rowid AS _rid, row_number() OVER (PARTITION BY {keys} ORDER BY rowid) AS _rn,
                       first(_pos) OVER (PARTITION BY {keys} ORDER BY rowid) AS _first_pos
                FROM "{name}"
                """
            )
            cols = ", ".join(f'"{c}"' for c in TABLES[table].column_names)
            self.con.execute(
                f"""
                INSERT INTO stage_quarantine
                SELECT _pos, 'duplicate {table} key (' || concat_ws(', ', {keys}) ||
                       ') already at ' || coalesce(_first_pos, '?') || ' of this file; kept the first',
                       left(to_json(struct_pack({cols}))::VARCHAR, {RAW_LIMIT})
                FROM _ranked WHERE _rn > 1
                """
            )
            self.con.execute(f'DELETE FROM "{name}"')
            self.con.execute(
                f'INSERT INTO "{name}" SELECT {cols}, _pos FROM _ranked WHERE _rn = 1 ORDER BY _rid'
            )
            self.con.execute("DROP TABLE _ranked")
            self.deduped.add(table)
            self.notes.append(f"{dup} duplicate {table} row(s) in file")

    def redact(self) -> None:
        """Redact secrets and personal data from staged log bodies, attributes and messages.

        One combined RE2 test finds the few rows that hold anything to redact; only those
        are rewritten (the per-pattern replacements run on them alone).
        """
        from lumina_analytics.privacy import PATTERNS, redact_sql

        alternatives = []
        for _label, pattern in PATTERNS:
            if pattern.startswith("(?i)"):
                alternatives.append("(?i:" + pattern[4:] + ")")
            else:
                alternatives.append("(?:" + pattern + ")")
        any_secret = "|".join(alternatives).replace("'", "''")
        columns = {
            "spans": ("attributes", "status_message"),
            "logs": ("body", "attributes"),
        }
        for table, cols in columns.items():
            if table not in self.tables:
                continue
            sets = ", ".join(f'"{c}" = ' + redact_sql(f'CAST("{c}" AS VARCHAR)') for c in cols)
            where = " OR ".join(
                f"""coalesce(regexp_matches(CAST("{c}" AS VARCHAR), '{any_secret}'), false)"""
                for c in cols
            )
            self.con.execute(f'UPDATE "stage_{table}" SET {sets} WHERE {where}')


def _dump(raw: object) -> str:
    try:
        return json.dumps(raw, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(raw)
