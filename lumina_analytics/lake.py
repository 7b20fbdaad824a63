"""The Parquet lake: the warehouse as hive-partitioned Parquet that DuckDB and Spark share.

Layout (``lake`` setting, default ``<data_dir>/lake``; a folder or an object-store URI)::

    <lake>/_lumina_lake.json                          manifest (format, schema version, tables)
    <lake>/<table>/date=YYYY-MM-DD/part-*.parquet     one folder per table, partitioned by date
    <lake>/llm_calls/date=YYYY-MM-DD/tenant=<id>/...  per-tenant tables also by tenant
    <lake>/<table>/part-*.parquet                     small state tables (alerts): unpartitioned

``date`` is the UTC date of the table's time column (:data:`PARTITION_SOURCE`); rows without a
time go to ``date=1970-01-01``. Tables whose rows carry a tenant (:data:`TENANT_TABLES`) are
also partitioned by ``tenant``: the column itself lives in the folder name (both engines drop
it from the files), a NULL or empty tenant goes to ``tenant=__HIVE_DEFAULT_PARTITION__``
(read back as NULL by both engines) and other values are escaped the Hive/Spark way
(:func:`hive_escape`), so both engines write the same folder names. Columns keep the
warehouse names; ``JSON`` columns are stored as strings and timestamps as naive (UTC)
microsecond timestamps, which both engines read as ``TIMESTAMP``. Both engines name their
files ``part-<uuid>.parquet``, so appends never clash.

The manifest records each table's ``partition_by``. A table written by an older layout (by
date only) stays readable; appending to it is refused with a message saying how to re-export.

DuckDB reads the lake in place (:func:`lake_connection`, :func:`lake_query`: one view per
table over ``read_parquet(..., hive_partitioning = true)``; filters on ``date`` and ``tenant``
prune folders). :func:`export_lake` / :func:`import_lake` move data between the DuckDB file
and the lake; :func:`ingest_to_lake` loads telemetry files straight into the lake with the
same parsing, normalisation, pricing and quarantine as :mod:`lumina_analytics.ingest`;
:func:`append_rows` adds result rows (forecasts, anomaly scores) skipping keys already there.
:mod:`lumina_analytics.spark` reads and writes the same layout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import urllib.parse
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from lumina_analytics.config import Settings, get_settings
from lumina_analytics.errors import LuminaError, SchemaError, WarehouseError
from lumina_analytics.schema import ALERT_TABLES, TABLES, Table, table_for_rows
from lumina_analytics.warehouse import SCHEMA_VERSION, Warehouse, scratch, table_names

LAKE_FORMAT = 1
MANIFEST = "_lumina_lake.json"
PARTITION_COLUMN = "date"
#: Date given to rows whose time column is NULL (hive folders must be valid dates for both engines).
NULL_DATE = "1970-01-01"
#: table -> timestamp column whose UTC date is the ``date`` partition (absent: unpartitioned).
PARTITION_SOURCE: dict[str, str] = {
    "spans": "start_ts",
    "llm_calls": "ts",
    "metrics": "ts",
    "logs": "ts",
    "events": "ts",
    "deployments": "ts",
    "incidents": "start_ts",
    "ingest_log": "started_at",
    "quarantine": "quarantined_at",
    "forecasts": "cutoff",
    "anomalies": "ds",
    "llm_rollup_hourly": "bucket",
    "llm_rollup_daily": "bucket",
}
#: Every table a lake holds (the warehouse data model; ``schema_version`` lives in the manifest).
LAKE_TABLES: dict[str, Table] = {**TABLES, **{t.name: t for t in ALERT_TABLES}}
TENANT_COLUMN = "tenant"
#: Big per-tenant tables, partitioned by ``date`` then ``tenant`` (per-tenant cost, usage and
#: product questions read one tenant's folders only).
TENANT_TABLES = ("llm_calls", "events")
#: Folder value of a NULL partition value: Hive's, which DuckDB and Spark both write and read.
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
#: table -> hive partition columns, outermost first (absent: unpartitioned).
PARTITION_BY: dict[str, tuple[str, ...]] = {
    t: (PARTITION_COLUMN, TENANT_COLUMN) if t in TENANT_TABLES else (PARTITION_COLUMN,)
    for t in PARTITION_SOURCE
}
#: DuckDB memory limit while writing lake files (``LUMINA_LAKE_WRITE_MEMORY_LIMIT``)
WRITE_MEMORY_LIMIT = os.environ.get("LUMINA_LAKE_WRITE_MEMORY_LIMIT", "1GB")
#: Tables that telemetry ingestion appends to (checked for an older layout before it starts).
INGEST_TABLES = ("spans", "llm_calls", "metrics", "logs", "events", "ingest_log", "quarantine")
#: Characters Hive and Spark escape as ``%XX`` in partition folder names (``escapePathName``).
_HIVE_ESCAPED = frozenset("\"#%'*/:=?\\{[]^\x7f") | frozenset(chr(c) for c in range(1, 32))


class LakeError(LuminaError):
    """A lake that is missing, malformed or not writable."""


# --------------------------------------------------------------------------- paths
def resolve_lake(
    lake: str | os.PathLike[str] | None = None, settings: Settings | None = None
) -> str:
    """The lake root: ``lake`` if given, else the ``lake`` setting, else ``<data_dir>/lake``.

    URIs (``s3a://``, ``gs://``, ``abfss://``, ``file://``) are returned unchanged; local paths
    are made absolute (relative to the project root when they come from settings).
    """
    s = settings or get_settings()
    raw = str(lake) if lake is not None else s.lake
    if not raw:
        return str(s.data_dir / "lake")
    if is_uri(raw):
        return raw.rstrip("/")
    p = Path(raw).expanduser()
    base = Path.cwd() if lake is not None else s.root
    return str(p if p.is_absolute() else (base / p).resolve())


def is_uri(path: str) -> bool:
    """Whether ``path`` is a URI (object store or ``file://``) rather than a local path."""
    return "://" in path


def table_path(lake: str, table: str) -> str:
    """The folder of ``table`` in the lake."""
    return f"{lake.rstrip('/')}/{table}"


def local_path(lake: str) -> Path | None:
    """The folder of a local (or ``file://``) lake; None for an object-store URI."""
    if lake.startswith("file://"):
        return Path(lake[len("file://") :])
    return None if is_uri(lake) else Path(lake)


def _local(lake: str, what: str) -> Path:
    path = local_path(lake)
    if path is None:
        raise LakeError(
            f"{what} with DuckDB needs a local or mounted lake path, got {lake}; use the Spark "
            "engine (engine: spark) for object-store lakes"
        )
    return path


# --------------------------------------------------------------------------- manifest
def manifest_doc(
    tables: dict[str, int], writer: str, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The manifest after writing ``tables`` (name -> rows now in the lake) with ``writer``."""
    doc: dict[str, Any] = dict(previous or {})
    entries: dict[str, Any] = dict(doc.get("tables", {}))
    for name, rows in tables.items():
        spec = LAKE_TABLES[name]
        entries[name] = {
            "path": name,
            "partition_by": list(PARTITION_BY.get(name, ())),
            "partition_source": PARTITION_SOURCE.get(name),
            "key": list(spec.key),
            "columns": [[c, _lake_type(t)] for c, t in spec.columns],
            "rows": int(rows),
        }
    doc.update(
        {
            "format": LAKE_FORMAT,
            "schema_version": SCHEMA_VERSION,
            "partition_column": PARTITION_COLUMN,
            "tables": dict(sorted(entries.items())),
            "updated_at": datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
            "updated_by": writer,
        }
    )
    return doc


def read_manifest(lake: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The lake's manifest (an empty dict when the lake has none yet)."""
    root = _local(resolve_lake(lake), "reading the manifest")
    path = root / MANIFEST
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise LakeError(f"lake manifest {path} is unreadable: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != LAKE_FORMAT:
        raise LakeError(f"lake manifest {path}: format {doc.get('format')!r} is not {LAKE_FORMAT}")
    if int(doc.get("schema_version", 0)) > SCHEMA_VERSION:
        raise LakeError(
            f"lake manifest {path}: schema version {doc['schema_version']} is newer than this "
            f"workbench ({SCHEMA_VERSION}); upgrade lumina-analytics"
        )
    return doc


def write_manifest(lake: str, tables: dict[str, int], writer: str) -> dict[str, Any]:
    """Record ``tables`` (name -> rows) in the manifest of a local lake, atomically."""
    root = _local(lake, "writing the manifest")
    root.mkdir(parents=True, exist_ok=True)
    doc = manifest_doc(tables, writer, read_manifest(lake))
    tmp = root / f".{MANIFEST}.{uuid.uuid4().hex}"
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, root / MANIFEST)
    return doc


def table_layout(
    lake: str | os.PathLike[str], table: str, manifest: dict[str, Any] | None = None
) -> tuple[str, ...]:
    """How ``table`` is partitioned in this lake: the manifest's ``partition_by``, else current.

    A lake written before tables were partitioned by tenant says ``["date"]`` here; readers
    use it, writers that append refuse it (:func:`check_layout`).
    """
    doc = manifest if manifest is not None else read_manifest(lake)
    entry = doc.get("tables", {}).get(table)
    if entry is None or "partition_by" not in entry:
        return PARTITION_BY.get(table, ())
    return tuple(entry["partition_by"])


def layout_problem(lake: str, table: str, layout: Sequence[str]) -> str | None:
    """Why appending to ``table`` (partitioned by ``layout`` in the lake) is refused, or None."""
    want = PARTITION_BY.get(table, ())
    if tuple(layout) == want:
        return None
    tables = f"--tables {table}"
    return (
        f"lake {table_path(lake, table)} is partitioned by {', '.join(layout) or 'nothing'} "
        f"(an older lake layout) but this workbench writes {', '.join(want) or 'no partitions'};"
        " appending would mix layouts. Re-export the table first: `lumina-analytics lake export "
        f"{tables}` from the warehouse, or for a lake-only table `lumina-analytics lake import "
        f"{tables} --into tmp.duckdb` then `lumina-analytics --warehouse tmp.duckdb lake export "
        f"{tables}` (both with --lake {lake})"
    )


def check_layout(lake: str, table: str) -> None:
    """Raise :class:`LakeError` when a local lake's ``table`` has an older partition layout."""
    if not has_files(lake, table):
        return
    problem = layout_problem(lake, table, table_layout(lake, table))
    if problem:
        raise LakeError(problem)


def hive_escape(value: str) -> str:
    """A partition value as a folder name, escaped the way Hive and Spark escape it."""
    return "".join(f"%{ord(c):02X}" if c in _HIVE_ESCAPED else c for c in value)


def _canonicalize(staged: Path) -> None:
    """Rename DuckDB's partition folders in ``staged`` to the Hive/Spark spelling.

    DuckDB percent-encodes every byte outside ``[A-Za-z0-9]`` (including UTF-8), Spark only
    a few ASCII characters and decodes ``%XX`` as one character; so ``tenant=%C3%BC`` would
    read as ``"Ã¼"`` in Spark. After this both engines write, and read, ``tenant=ü``.
    """
    for folder, dirs, _files in os.walk(staged, topdown=False):
        for d in dirs:
            key, sep, raw = d.partition("=")
            if not sep or raw == NULL_PARTITION:
                continue
            name = f"{key}={hive_escape(urllib.parse.unquote(raw))}"
            if name != d:
                os.replace(Path(folder) / d, Path(folder) / name)


# --------------------------------------------------------------------------- SQL helpers
def _lake_type(duck_type: str) -> str:
    t = duck_type.replace(" NOT NULL", "")
    return "VARCHAR" if t == "JSON" else t


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def lake_select_sql(table: str, source: str) -> str:
    """``SELECT`` over ``source`` giving the lake columns of ``table`` plus ``date`` if partitioned."""
    spec = LAKE_TABLES[table]
    inner = PARTITION_BY.get(table, ())[1:]  # hive columns that are table columns (tenant)
    cols = [
        f"nullif(CAST({_q(c)} AS VARCHAR), '') AS {_q(c)}"  # '' and NULL share the NULL folder
        if c in inner
        else f"CAST({_q(c)} AS {_lake_type(t)}) AS {_q(c)}"
        for c, t in spec.columns
    ]
    if table in PARTITION_SOURCE:
        cols.append(
            f"coalesce(CAST({_q(PARTITION_SOURCE[table])} AS DATE), DATE '{NULL_DATE}') "
            f"AS {PARTITION_COLUMN}"
        )
    return f"SELECT {', '.join(cols)} FROM {source}"


def _copy_sql(table: str, source: str, dest: Path) -> str:
    """COPY ``source`` as lake rows of ``table`` into the NEW folder ``dest`` (see :func:`_write`)."""
    opts = ["FORMAT PARQUET", "COMPRESSION ZSTD", "FILENAME_PATTERN 'part-{uuid}'"]
    if table in PARTITION_BY:
        opts.append(f"PARTITION_BY ({', '.join(_q(c) for c in PARTITION_BY[table])})")
        target = _lit(str(dest))
    else:
        dest.mkdir(parents=True, exist_ok=True)
        target = _lit(str(dest / f"part-{uuid.uuid4()}.parquet"))
    return f"COPY ({lake_select_sql(table, source)}) TO {target} ({', '.join(opts)})"


def _size(text: str) -> float:
    """Bytes of a DuckDB memory setting such as ``'128MB'`` or ``'18.6 GiB'`` (inf if unknown)."""
    m = re.fullmatch(r"\s*([\d.]+)\s*([kmgt]?)(i?)b?\s*", text.lower())
    if not m:
        return float("inf")
    scale = (1024 if m[3] else 1000) ** ("kmgt".index(m[2]) + 1) if m[2] else 1
    return float(m[1]) * scale


def _write(
    con: duckdb.DuckDBPyConnection, table: str, source: str, root: Path, *, replace: bool
) -> None:
    """Write ``source`` as ``table`` into the lake at ``root``: replace the table or append.

    Files are written to a hidden folder beside the tables (readers skip it), partition
    folders get the Hive/Spark spelling, then the folder is swapped in (``replace``) or its
    files are moved into the table's partitions (append: a reader sees whole files only).
    """
    staged = root / f".tmp-{table}-{uuid.uuid4().hex[:8]}"
    limit = str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
    raise_limit = _size(limit) < _size(WRITE_MEMORY_LIMIT)
    try:
        # the parquet writer buffers a row group per thread and partition: give it room even
        # on a memory-capped staging connection (ingestion's), then give the cap back
        if raise_limit:
            con.execute(f"SET memory_limit = {_lit(WRITE_MEMORY_LIMIT)}")
        try:
            con.execute(_copy_sql(table, source, staged))
        finally:
            if raise_limit:
                con.execute(f"SET memory_limit = {_lit(limit)}")
        staged.mkdir(parents=True, exist_ok=True)  # an empty table: empty folder
        _canonicalize(staged)
        if replace:
            _swap_in(staged, root / table)
            return
        for f in sorted(staged.rglob("*.parquet")):
            dest = root / table / f.relative_to(staged)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(f, dest)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def table_files(lake: str, table: str) -> list[Path]:
    """The committed Parquet files of ``table`` in a local lake.

    Paths with a component starting with ``_`` or ``.`` are skipped, as Spark and Hive do:
    they are work in progress (Spark's ``_temporary``, staged exports).
    """
    folder = _local(lake, "reading") / table
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*.parquet")
        if not any(part[:1] in "_." for part in p.relative_to(folder).parts)
    )


def has_files(lake: str, table: str) -> bool:
    """Whether a local lake holds any committed Parquet file for ``table``."""
    return bool(table_files(lake, table))


def scan_sql(lake: str, table: str, layout: Sequence[str] | None = None) -> str:
    """A DuckDB table expression reading the committed files of ``table`` in place.

    ``layout`` is the table's partitioning in this lake (default: from the manifest); the
    partition columns get fixed types (``tenant=123`` stays the string ``'123'``). Every file
    of a table has the same columns (one schema version per lake), so only the first file's
    schema is read when binding and a partition filter leaves the other folders unopened.
    """
    files = ", ".join(_lit(str(p)) for p in table_files(lake, table))
    parts = table_layout(lake, table) if layout is None else layout
    if not parts:
        return f"read_parquet([{files}], hive_partitioning = false)"
    types = ", ".join(f"{_lit(c)}: {'DATE' if c == PARTITION_COLUMN else 'VARCHAR'}" for c in parts)
    return f"read_parquet([{files}], hive_partitioning = true, hive_types = {{{types}}})"


def count_table(lake: str | os.PathLike[str] | None, table: str) -> int:
    """Rows of one lake table (from the Parquet footers; 0 when it has no files)."""
    root = str(_local(resolve_lake(lake), "counting rows"))
    if not has_files(root, table):
        return 0
    con = scratch()
    try:
        return int(con.execute(f"SELECT count(*) FROM {scan_sql(root, table)}").fetchall()[0][0])
    finally:
        con.close()


# --------------------------------------------------------------------------- reading
def lake_connection(lake: str | os.PathLike[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per lake table (empty tables for absent ones).

    The views keep the warehouse columns (in warehouse order) plus ``date`` for partitioned
    tables, so every warehouse query runs unchanged; ``WHERE date >= ...`` and
    ``WHERE tenant = ...`` filters skip whole folders.
    """
    root = str(_local(resolve_lake(lake), "querying the lake"))
    manifest = read_manifest(root)
    con = scratch()
    con.execute("SET TimeZone = 'UTC'")
    for name, spec in LAKE_TABLES.items():
        if has_files(root, name):
            cols = [_q(c) for c in spec.column_names]
            if name in PARTITION_SOURCE:
                cols.append(PARTITION_COLUMN)
            scan = scan_sql(root, name, table_layout(root, name, manifest))
            con.execute(f"CREATE VIEW {_q(name)} AS SELECT {', '.join(cols)} FROM {scan}")
        else:
            cols = [f"{_q(c)} {_lake_type(t)}" for c, t in spec.columns]
            if name in PARTITION_SOURCE:
                cols.append(f"{PARTITION_COLUMN} DATE")
            con.execute(f"CREATE TABLE {_q(name)} ({', '.join(cols)})")
    return con


def lake_query(
    sql: str,
    params: Sequence[Any] | dict[str, Any] | None = None,
    lake: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Run a read-only query against the lake in place with DuckDB and return a DataFrame."""
    con = lake_connection(lake)
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()


def lake_counts(lake: str | os.PathLike[str] | None = None) -> dict[str, int]:
    """Row count of every lake table that holds data."""
    root = str(_local(resolve_lake(lake), "counting rows"))
    con = lake_connection(root)
    try:
        return {
            name: int(con.execute(f"SELECT count(*) FROM {_q(name)}").fetchall()[0][0])
            for name in LAKE_TABLES
            if has_files(root, name)
        }
    finally:
        con.close()


# --------------------------------------------------------------------------- export / import
def _swap_in(staged: Path, final: Path) -> None:
    old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
    if final.exists():
        os.replace(final, old)
    os.replace(staged, final)
    shutil.rmtree(old, ignore_errors=True)


def export_lake(
    warehouse: Warehouse | str | os.PathLike[str] | None = None,
    lake: str | os.PathLike[str] | None = None,
    tables: Iterable[str] | None = None,
) -> dict[str, int]:
    """Write warehouse tables to the lake (replacing those tables there); returns row counts.

    Reads ONE read-only snapshot (dashboards keep reading; writers wait until it is done).
    Each table is written beside the lake and swapped in when complete.
    """
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    root_s = resolve_lake(lake)
    root = _local(root_s, "export")
    wanted = list(tables) if tables is not None else list(LAKE_TABLES)
    unknown = [t for t in wanted if t not in LAKE_TABLES]
    if unknown:
        raise LakeError(f"unknown table(s) {unknown}; lake tables: {sorted(LAKE_TABLES)}")
    root.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    with wh.reader() as con:
        present = table_names(con)
        con.execute("BEGIN TRANSACTION")
        try:
            for name in wanted:
                if name not in present:
                    continue
                _write(con, name, _q(name), root, replace=True)
                counts[name] = int(con.execute(f"SELECT count(*) FROM {_q(name)}").fetchall()[0][0])
        finally:
            con.execute("COMMIT")
    write_manifest(root_s, counts, "duckdb")
    return counts


def import_lake(
    lake: str | os.PathLike[str] | None = None,
    warehouse: Warehouse | str | os.PathLike[str] | None = None,
    tables: Iterable[str] | None = None,
) -> dict[str, int]:
    """Load lake tables into the DuckDB warehouse, replacing those tables there.

    The lake is read with DuckDB, each table staged as one Parquet file, then loaded in one
    writer transaction (:meth:`Warehouse.import_parquet`): all tables or none. Returns the
    row count of each table afterwards.
    """
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    root = resolve_lake(lake)
    wanted = list(tables) if tables is not None else list(LAKE_TABLES)
    unknown = [t for t in wanted if t not in LAKE_TABLES]
    if unknown:
        raise LakeError(f"unknown table(s) {unknown}; lake tables: {sorted(LAKE_TABLES)}")
    names = [t for t in wanted if has_files(root, t)]
    if not names:
        raise LakeError(f"lake {root} holds no Parquet data for {', '.join(wanted)}")
    with tempfile.TemporaryDirectory(prefix="lumina-lake-import-") as tmp:
        files: dict[str, Path] = {}
        con = lake_connection(root)
        try:
            for name in names:
                _check_unique(con, root, name)
                cols = ", ".join(_q(c) for c in LAKE_TABLES[name].column_names)
                out = Path(tmp) / f"{name}.parquet"
                con.execute(
                    f"COPY (SELECT {cols} FROM {_q(name)}) TO {_lit(str(out))} (FORMAT PARQUET)"
                )
                files[name] = out
        finally:
            con.close()
        return wh.import_parquet(files)


def _check_unique(con: duckdb.DuckDBPyConnection, root: str, table: str) -> None:
    """Raise naming the table and one key when a lake table repeats its key."""
    key = LAKE_TABLES[table].key
    if not key:
        return
    cols = ", ".join(_q(k) for k in key)
    dup = con.execute(
        f"SELECT {cols}, count(*) AS n FROM {_q(table)} GROUP BY ALL HAVING count(*) > 1 LIMIT 1"
    ).fetchall()
    if dup:
        shown = ", ".join(f"{k}={v!r}" for k, v in zip(key, dup[0][:-1], strict=True))
        raise WarehouseError(
            f"lake {table_path(root, table)}: table key repeats ({shown} appears {dup[0][-1]} "
            "times; two writers appended the same rows?); nothing was imported"
        )


# --------------------------------------------------------------------------- ingestion
def loaded_hashes(lake: str | os.PathLike[str] | None = None) -> set[str]:
    """sha256 of every file the lake's ``ingest_log`` records as loaded (``ok``)."""
    root = resolve_lake(lake)
    if not has_files(root, "ingest_log"):
        return set()
    frame = lake_query("SELECT DISTINCT sha256 FROM ingest_log WHERE status = 'ok'", lake=root)
    return set(frame["sha256"].astype(str))


def _anti_join_sql(table: str, staged: str, lake: str) -> str:
    """Staged rows of ``table`` whose key is not in the lake yet (the lake's INSERT OR IGNORE)."""
    key = LAKE_TABLES[table].key
    if not key or not has_files(lake, table):
        return staged
    on = " AND ".join(f"x.{_q(k)} = s.{_q(k)}" for k in key)
    cols = ", ".join(_q(k) for k in key)
    return (
        f"(SELECT * FROM {staged} s WHERE NOT EXISTS (SELECT 1 FROM "
        f"(SELECT {cols} FROM {scan_sql(lake, table)}) x WHERE {on}))"
    )


def ingest_to_lake(
    paths: Sequence[str | os.PathLike[str]],
    lake: str | os.PathLike[str] | None = None,
    *,
    price_overrides: str | Path | None = None,
) -> Any:
    """Load telemetry files straight into the lake with DuckDB; returns an ``IngestReport``.

    Each file is parsed, normalised, priced and deduplicated exactly as
    :func:`lumina_analytics.ingest.ingest_paths` does (same staging code), then appended to
    the lake's partitions; rows whose table key is already in the lake are skipped, bad
    records go to ``quarantine`` and every file gets an ``ingest_log`` row (written last, so
    an interrupted file is simply loaded again). Identical content (sha256) is skipped.
    """
    from lumina_analytics.errors import IngestError, UnknownFormatError
    from lumina_analytics.ingest.detect import detect_format
    from lumina_analytics.ingest.loader import (
        FileResult,
        IngestReport,
        file_sha256,
        iter_files,
        parse_file,
    )
    from lumina_analytics.ingest.stage import Stage
    from lumina_analytics.pricing import load_overrides

    settings = get_settings()
    root_s = resolve_lake(lake)
    root = _local(root_s, "ingesting")
    root.mkdir(parents=True, exist_ok=True)
    opath = price_overrides if price_overrides is not None else settings.price_overrides
    overrides = load_overrides(opath) if opath else None
    for table in INGEST_TABLES:
        check_layout(root_s, table)
    done = loaded_hashes(root_s)
    report = IngestReport(warehouse=root_s)
    touched: set[str] = set()
    folders = {Path(p).expanduser().resolve() for p in paths if Path(p).is_dir()}
    for path in iter_files(paths):
        started = datetime.now(UTC).replace(tzinfo=None)
        spath = str(path.resolve())
        if not path.is_file():
            report.files.append(
                FileResult(spath, "", None, "failed", message=f"{path}: no such file")
            )
            continue
        sha = file_sha256(path)
        result = FileResult(spath, sha, None, "ok")
        in_folder = any(f in path.resolve().parents for f in folders)
        if sha in done:
            result.status, result.message = "skipped", "same content already loaded"
            report.files.append(result)
            continue
        if in_folder:
            try:
                detect_format(path)
            except UnknownFormatError as exc:
                result.status = "skipped"
                result.message = f"not a telemetry file, skipped ({exc.problem})"
                report.files.append(result)
                continue
            except IngestError:
                pass
        stage = Stage(spath, sha)
        try:
            try:
                result.format = parse_file(path, stage, settings, overrides)
            except IngestError as exc:
                result.status, result.message = "failed", str(exc)
            else:
                result.rows_quarantined = stage.quarantined()
                notes = list(stage.notes)
                if result.rows_quarantined:
                    notes.append(f"{result.rows_quarantined} record(s) quarantined")
                result.message = "; ".join(notes)
                for table in stage.tables:
                    source = _anti_join_sql(table, _q(f"stage_{table}"), root_s)
                    n = int(stage.con.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0])
                    if n:
                        _write(stage.con, table, source, root, replace=False)
                        touched.add(table)
                    result.rows_loaded[table] = n
                now = datetime.now(UTC).replace(tzinfo=None)
                if result.rows_quarantined:
                    q = (
                        f"(SELECT {_lit(spath)} AS path, {_lit(sha)} AS sha256, position, reason, "
                        f"raw, TIMESTAMP '{now.isoformat(sep=' ')}' AS quarantined_at "
                        "FROM stage_quarantine)"
                    )
                    _write(stage.con, "quarantine", q, root, replace=False)
                    touched.add("quarantine")
            _append_log(stage.con, root, result, started)
            touched.add("ingest_log")
            if result.status == "ok":
                done.add(sha)
        finally:
            stage.close()
        report.files.append(result)
    if touched:
        counts = lake_counts(root_s)
        write_manifest(root_s, {t: counts.get(t, 0) for t in touched}, "duckdb")
    return report


def rows_spec(table: str, columns: Iterable[str]) -> Table:
    """The lake table rows with ``columns`` go to; :class:`LakeError` for unknown names."""
    try:
        return table_for_rows(table, columns, LAKE_TABLES)
    except SchemaError as exc:
        raise LakeError(f"lake: {exc}") from exc


def append_rows(frame: pd.DataFrame, table: str, lake: str | os.PathLike[str] | None = None) -> int:
    """Append rows (e.g. ``forecasts``, ``anomalies``) to a lake table with DuckDB; rows written.

    Columns are matched by name (missing optional columns become NULL). Like the
    warehouse's ``append_frame`` (``INSERT OR IGNORE``), a row whose table key is already in
    the lake, or earlier in ``frame``, is skipped: re-running the same cutoff adds nothing.
    The manifest's row count is updated.
    """
    spec = rows_spec(table, frame.columns)
    root_s = resolve_lake(lake)
    root = _local(root_s, "writing rows")
    check_layout(root_s, table)
    rows = pd.DataFrame({c: frame[c] if c in frame.columns else None for c in spec.column_names})
    if spec.key:
        rows = rows.drop_duplicates(list(spec.key), keep="first")
    if rows.empty:
        return 0
    root.mkdir(parents=True, exist_ok=True)
    con = scratch()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("_lumina_rows", rows)
        source = _anti_join_sql(table, "_lumina_rows", root_s)
        n = int(con.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0])
        if n:
            _write(con, table, source, root, replace=False)
    finally:
        con.close()
    write_manifest(root_s, {table: count_table(root_s, table)}, "duckdb")
    return n


def _append_log(con: duckdb.DuckDBPyConnection, root: Path, result: Any, started: datetime) -> None:
    row = pd.DataFrame(
        [
            {
                "path": result.path,
                "sha256": result.sha256,
                "format": result.format,
                "rows_loaded": int(sum(result.rows_loaded.values())),
                "rows_quarantined": int(result.rows_quarantined),
                "started_at": started,
                "finished_at": datetime.now(UTC).replace(tzinfo=None),
                "status": result.status,
                "message": result.message,
            }
        ]
    )
    con.register("_lumina_log", row)
    try:
        _write(con, "ingest_log", "_lumina_log", root, replace=False)
    finally:
        con.unregister("_lumina_log")


# --------------------------------------------------------------------------- rollups
def lake_rollups(
    lake: str | os.PathLike[str] | None = None, now: datetime | None = None
) -> dict[str, int]:
    """Recompute the hourly/daily rollups from the lake's ``llm_calls`` with DuckDB.

    Runs :func:`lumina_analytics.ops.rollups.refresh_rollups` (the warehouse's own rollup
    code) over the lake in place, then rewrites the lake's rollup tables; rows per table.
    """
    from lumina_analytics.ops.rollups import GRAINS, refresh_rollups

    root_s = resolve_lake(lake)
    root = _local(root_s, "rollups")
    now = now or datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    con = lake_connection(root_s)
    counts: dict[str, int] = {}
    try:
        first = con.execute("SELECT min(date_trunc('day', ts)) FROM llm_calls").fetchall()[0][0]
        for table in GRAINS.values():
            con.execute(f"DROP TABLE IF EXISTS {_q(table)}")
            con.execute(f"DROP VIEW IF EXISTS {_q(table)}")
            con.execute(LAKE_TABLES[table].ddl())
        if first is not None:
            refresh_rollups(con, first, now)
        for table in GRAINS.values():
            _write(con, table, _q(table), root, replace=True)
            counts[table] = int(con.execute(f"SELECT count(*) FROM {_q(table)}").fetchall()[0][0])
    finally:
        con.close()
    write_manifest(root_s, counts, "duckdb")
    return counts


def lake_rollup_series(
    lake: str | os.PathLike[str] | None = None,
    *,
    dimension: str = "provider",
    metric: str = "requests",
    grain: str = "hour",
) -> pd.DataFrame:
    """The lake's rollup rows of one dimension as a long ``unique_id, ds, y`` frame (DuckDB)."""
    from lumina_analytics.ops.rollups import GRAINS, rollup_long

    check_rollup_args(dimension, metric, grain)
    rows = lake_query(
        f"SELECT bucket, dimension, value, {metric} FROM {GRAINS[grain]} WHERE dimension = ?",
        [dimension],
        lake=lake,
    )
    return rollup_long(rows, metric)


def check_rollup_args(dimension: str, metric: str, grain: str) -> None:
    """Raise :class:`SchemaError` naming the allowed values for a bad dimension/metric/grain."""
    from lumina_analytics.errors import SchemaError
    from lumina_analytics.ops.rollups import GRAINS, METRICS, ROLLUP_DIMENSIONS

    if grain not in GRAINS:
        raise SchemaError(f"grain must be one of {sorted(GRAINS)}, got {grain!r}")
    if dimension not in ROLLUP_DIMENSIONS:
        raise SchemaError(f"dimension must be one of {list(ROLLUP_DIMENSIONS)}, got {dimension!r}")
    if metric not in METRICS:
        raise SchemaError(f"metric must be one of {list(METRICS)}, got {metric!r}")
