"""Ingestion as a Spark job: telemetry files -> the Parquet lake, one task per file.

Each task runs the very code :mod:`lumina_analytics.ingest` runs (``parse_file``: format
detection, OTLP/Zipkin/Prometheus/CSV parsing, GenAI normalisation, pricing with
genai-prices and the price overrides, in-file dedupe, privacy redaction) inside a Python
worker, and hands the staged tables back to Spark as Arrow IPC chunks. The driver then, per
table: decodes the chunks (``mapInArrow``), drops keys repeated across files of the batch and
keys already in the lake (the lake's ``INSERT OR IGNORE``), and appends to the table's
``date=`` (and ``tenant=``) partitions. Quarantined records go to ``quarantine``; every file gets an
``ingest_log`` row, written last, so a failed job is simply run again (keys already written
are skipped). Files whose sha256 the lake's ``ingest_log`` already has are skipped.

Local (or shared-filesystem) files are opened by the workers directly; object-store URIs are
read with Spark's ``binaryFile`` source (one file must fit in a worker's memory, < 2 GiB).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from lumina_analytics.config import Settings, get_settings
from lumina_analytics.lake import (
    INGEST_TABLES,
    LAKE_TABLES,
    NULL_DATE,
    PARTITION_BY,
    PARTITION_COLUMN,
    PARTITION_SOURCE,
    LakeError,
    _lake_type,
    is_uri,
    lake_select_sql,
    layout_problem,
    local_path,
    resolve_lake,
    rows_spec,
    table_layout,
    table_path,
)
from lumina_analytics.pricing import PriceOverrides

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

#: rows per Arrow IPC chunk handed from a parsing task to Spark
CHUNK_ROWS = 65_536
RESULT = "_result"

_ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "TIMESTAMP": pa.timestamp("us"),
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
}


def arrow_schema(table: str) -> pa.Schema:
    """Arrow schema of ``table`` in the lake (``date`` last when partitioned)."""
    fields = [pa.field(c, _ARROW_TYPES[_lake_type(t)]) for c, t in LAKE_TABLES[table].columns]
    if table in PARTITION_SOURCE:
        fields.append(pa.field(PARTITION_COLUMN, pa.date32()))
    return pa.schema(fields)


def spark_schema(table: str) -> StructType:
    """Spark schema of ``table`` in the lake (timestamps are ``TIMESTAMP_NTZ``, naive UTC)."""
    from pyspark.sql import types as T

    conv: dict[str, Any] = {
        "VARCHAR": T.StringType(),
        "TIMESTAMP": T.TimestampNTZType(),
        "DOUBLE": T.DoubleType(),
        "BIGINT": T.LongType(),
        "INTEGER": T.IntegerType(),
        "BOOLEAN": T.BooleanType(),
        "DATE": T.DateType(),
    }
    fields = [T.StructField(f.name, conv[_duck_name(f.type)], True) for f in arrow_schema(table)]
    return T.StructType(fields)


def to_lake_rows(spark: SparkSession, rows: DataFrame | pd.DataFrame, table: str) -> DataFrame:
    """``rows`` (a Spark or pandas frame with some of ``table``'s columns) as lake rows.

    Columns are matched by name and cast to the lake types, missing ones become NULL, and
    ``date`` is derived from the table's time column as the DuckDB side does.
    """
    from pyspark.sql import functions as F

    from lumina_analytics.spark.session import pandas_interop

    rows_spec(table, rows.columns)
    if isinstance(rows, pd.DataFrame):
        with pandas_interop():
            frame = spark.createDataFrame(rows) if len(rows.columns) else spark.range(0)
    else:
        frame = rows
    schema = spark_schema(table)
    cols = [
        (F.col(f.name) if f.name in rows.columns else F.lit(None)).cast(f.dataType).alias(f.name)
        for f in schema.fields
        if f.name != PARTITION_COLUMN
    ]
    if table in PARTITION_SOURCE:
        when = F.to_date(F.col(PARTITION_SOURCE[table]))
        cols.append(F.coalesce(when, F.lit(NULL_DATE).cast("date")).alias(PARTITION_COLUMN))
    return frame.select(*cols)


def _duck_name(t: pa.DataType) -> str:
    return next(k for k, v in _ARROW_TYPES.items() if v == t)


def _ipc(table: pa.Table) -> Iterator[bytes]:
    for batch in table.to_batches(max_chunksize=CHUNK_ROWS):
        sink = pa.BufferOutputStream()
        opts = pa.ipc.IpcWriteOptions(compression="lz4")
        with pa.ipc.new_stream(sink, batch.schema, options=opts) as w:
            w.write_batch(batch)
        yield sink.getvalue().to_pybytes()


def _result(
    path: str, sha: str, fmt: str | None, status: str, **extra: Any
) -> tuple[str, int, bytes]:
    doc = {"path": path, "sha256": sha, "format": fmt, "status": status, **extra}
    return (RESULT, 0, json.dumps(doc, default=str).encode())


def parse_one(
    path: str,
    data: bytes | None,
    in_folder: bool,
    settings: Settings,
    overrides: PriceOverrides | None,
    skip: frozenset[str],
) -> Iterator[tuple[str, int, bytes]]:
    """Parse one file in a worker: ``(table, chunk, Arrow IPC)`` rows plus one ``_result`` row.

    ``data`` is the file's content (object stores) or None to open ``path`` directly.
    """
    from lumina_analytics.errors import IngestError, UnknownFormatError
    from lumina_analytics.ingest.detect import detect_format
    from lumina_analytics.ingest.loader import parse_file
    from lumina_analytics.ingest.stage import Stage

    started = datetime.now(UTC).replace(tzinfo=None)
    with tempfile.TemporaryDirectory(prefix="lumina-spark-ingest-") as tmp:
        if data is None:
            local = Path(path)
            if not local.is_file():
                yield _result(path, "", None, "failed", message=f"{path}: no such file")
                return
            h = hashlib.sha256()
            with open(local, "rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    h.update(block)
            sha = h.hexdigest()
        else:
            local = Path(tmp) / Path(path).name
            local.write_bytes(data)
            sha = hashlib.sha256(data).hexdigest()
        if sha in skip:
            yield _result(path, sha, None, "skipped", message="same content already loaded")
            return
        if in_folder:
            try:
                detect_format(local)
            except UnknownFormatError as exc:
                msg = f"not a telemetry file, skipped ({exc.problem})"
                yield _result(path, sha, None, "skipped", message=msg)
                return
            except IngestError:
                pass
        stage = Stage(path, sha)
        try:
            try:
                fmt = parse_file(local, stage, settings, overrides)
            except IngestError as exc:
                msg = str(exc).replace(str(local), path)
                yield _result(path, sha, None, "failed", message=msg, started_at=started)
                return
            staged: dict[str, int] = {}
            for table in stage.tables:
                arrow = stage.con.sql(lake_select_sql(table, f'"stage_{table}"')).arrow()
                if isinstance(arrow, pa.RecordBatchReader):
                    arrow = arrow.read_all()
                staged[table] = arrow.num_rows
                for i, chunk in enumerate(_ipc(arrow.cast(arrow_schema(table)))):
                    yield (table, i, chunk)
            n_q = stage.quarantined()
            if n_q:
                q = (
                    f"(SELECT '{path.replace(chr(39), chr(39) * 2)}' AS path, '{sha}' AS sha256, "
                    f"position, reason, raw, TIMESTAMP '{started.isoformat(sep=' ')}' "
                    "AS quarantined_at FROM stage_quarantine)"
                )
                arrow = stage.con.sql(lake_select_sql("quarantine", q)).arrow()
                if isinstance(arrow, pa.RecordBatchReader):
                    arrow = arrow.read_all()
                for i, chunk in enumerate(_ipc(arrow.cast(arrow_schema("quarantine")))):
                    yield ("quarantine", i, chunk)
            notes = list(stage.notes)
            if n_q:
                notes.append(f"{n_q} record(s) quarantined")
            yield _result(
                path,
                sha,
                fmt,
                "ok",
                rows_loaded=staged,
                rows_quarantined=n_q,
                message="; ".join(notes),
                started_at=started,
            )
        finally:
            stage.close()


def _decode(batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        for payload in batch.column("payload").to_pylist():
            with pa.ipc.open_stream(payload) as reader:
                for b in reader:
                    yield b.cast(schema) if b.schema != schema else b


def _list_local(paths: Sequence[str | os.PathLike[str]]) -> list[tuple[str, bool]]:
    from lumina_analytics.ingest.loader import iter_files

    folders = [Path(p).expanduser().resolve() for p in paths if Path(p).expanduser().is_dir()]
    out = []
    for f in iter_files(paths):
        r = f.resolve() if f.exists() else f
        out.append((str(r), any(d in r.parents for d in folders)))
    return out


def _staged_frame(
    spark: SparkSession,
    paths: Sequence[str | os.PathLike[str]],
    settings: Settings,
    overrides: PriceOverrides | None,
    skip: frozenset[str],
) -> DataFrame:
    from pyspark.sql import types as T

    schema = T.StructType(
        [
            T.StructField("table", T.StringType(), False),
            T.StructField("chunk", T.IntegerType(), False),
            T.StructField("payload", T.BinaryType(), False),
        ]
    )
    uris = [str(p) for p in paths if is_uri(str(p))]
    local = [p for p in paths if not is_uri(str(p))]
    rdds = []
    if local:
        files = _list_local(local)
        if files:
            rdd = spark.sparkContext.parallelize(files, len(files)).flatMap(
                lambda pf: parse_one(pf[0], None, pf[1], settings, overrides, skip)
            )
            rdds.append(rdd)
    if uris:
        binary = (
            spark.read.format("binaryFile")
            .option("recursiveFileLookup", "true")
            .option("pathGlobFilter", "[!._]*")
            .load(uris)
            .select("path", "content")
        )
        rdds.append(
            binary.rdd.flatMap(
                lambda r: parse_one(r[0], bytes(r[1]), True, settings, overrides, skip)
            )
        )
    if not rdds:
        return spark.createDataFrame([], schema)
    rdd = rdds[0] if len(rdds) == 1 else spark.sparkContext.union(rdds)
    return spark.createDataFrame(rdd, schema)


def lake_has(spark: SparkSession, lake: str, table: str) -> bool:
    """Whether the lake (any Hadoop filesystem) holds Parquet files for ``table``."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(table_path(lake, table))
    fs = path.getFileSystem(conf)
    if not fs.exists(path):
        return False
    files = fs.listFiles(path, True)
    while files.hasNext():
        if files.next().getPath().getName().endswith(".parquet"):
            return True
    return False


def read_table(spark: SparkSession, lake: str, table: str) -> DataFrame:
    """A lake table as a Spark DataFrame (an empty one with the lake schema when absent).

    Columns come in warehouse order plus ``date``, whichever layout the lake has (tenant in
    the folders or, in an older lake, in the files); filters on ``date`` and ``tenant``
    become partition filters, so Spark lists and reads the matching folders only.
    """
    schema = spark_schema(table)
    if not lake_has(spark, lake, table):
        return spark.createDataFrame([], schema)
    reader = spark.read.schema(schema)
    if table in PARTITION_SOURCE:
        reader = reader.option("basePath", table_path(lake, table))
    return reader.parquet(table_path(lake, table)).select(*schema.fieldNames())


def check_layout_any(spark: SparkSession, lake: str, table: str) -> None:
    """Raise :class:`LakeError` before appending to a table that has an older partition layout."""
    if not lake_has(spark, lake, table):
        return
    problem = layout_problem(lake, table, table_layout(lake, table, read_manifest_any(spark, lake)))
    if problem:
        raise LakeError(problem)


def append_new(spark: SparkSession, lake: str, table: str, rows: DataFrame) -> int:
    """Append ``rows`` (lake columns) whose key is neither repeated nor in the lake; rows now.

    The Spark side of the lake's ``INSERT OR IGNORE``: a repeated key keeps one copy, keys
    already in the table are skipped. Returns the table's row count afterwards.
    """
    check_layout_any(spark, lake, table)
    key = list(LAKE_TABLES[table].key)
    if key:
        rows = rows.dropDuplicates(key)
        if lake_has(spark, lake, table):
            rows = rows.join(read_table(spark, lake, table).select(*key), key, "left_anti")
    write_table(rows, lake, table)
    return count_rows(spark, lake, table)


def count_rows(spark: SparkSession, lake: str, table: str) -> int:
    """Rows of a lake table: from Parquet footers with DuckDB for local lakes, else Spark."""
    if not is_uri(lake):
        from lumina_analytics.lake import count_table

        return count_table(lake, table)
    return int(read_table(spark, lake, table).count())


def write_table(frame: DataFrame, lake: str, table: str, mode: str = "append") -> None:
    """Write ``frame`` (lake columns) to ``table``: ``append`` or ``overwrite`` (whole table)."""
    cols = [f.name for f in arrow_schema(table)]
    writer = frame.select(*cols).write.mode(mode).option("compression", "zstd")
    if mode == "overwrite":
        writer = writer.option("partitionOverwriteMode", "static")
    if table in PARTITION_BY:
        writer = writer.partitionBy(*PARTITION_BY[table])
    writer.parquet(table_path(lake, table))


def _manifest_fs(spark: SparkSession, lake: str) -> tuple[Any, Any]:
    from lumina_analytics.lake import MANIFEST

    jvm = spark.sparkContext._jvm
    assert jvm is not None
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(f"{lake}/{MANIFEST}")
    return path.getFileSystem(conf), path


def read_manifest_any(spark: SparkSession, lake: str) -> dict[str, Any]:
    """The lake manifest (local lakes directly, others via Hadoop FS); ``{}`` when absent."""
    from lumina_analytics.lake import read_manifest

    local = local_path(lake)
    if local is not None:
        return read_manifest(local)
    fs, path = _manifest_fs(spark, lake)
    if not fs.exists(path):
        return {}
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    stream = fs.open(path)
    try:
        doc: dict[str, Any] = json.loads(
            jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        )
    finally:
        stream.close()
    return doc


def write_manifest_any(spark: SparkSession, lake: str, counts: dict[str, int]) -> None:
    """Update the lake manifest for ``counts`` (local lakes directly, others via Hadoop FS)."""
    from lumina_analytics.lake import manifest_doc, write_manifest

    local = local_path(lake)
    if local is not None:
        write_manifest(str(local), counts, "spark")
        return
    previous = read_manifest_any(spark, lake)
    fs, path = _manifest_fs(spark, lake)
    doc = manifest_doc(counts, "spark", previous)
    out = fs.create(path, True)
    try:
        out.write(bytearray((json.dumps(doc, indent=2) + "\n").encode()))
    finally:
        out.close()


def spark_ingest(
    paths: Sequence[str | os.PathLike[str]],
    lake: str | os.PathLike[str] | None = None,
    *,
    spark: SparkSession | None = None,
    price_overrides: str | Path | None = None,
) -> Any:
    """Load telemetry files into the lake as a Spark job; returns an ``IngestReport``.

    Same parsing, normalisation, pricing, dedupe and quarantine as the DuckDB engine
    (:func:`lumina_analytics.lake.ingest_to_lake`); see the module docstring.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from lumina_analytics.ingest.loader import FileResult, IngestReport
    from lumina_analytics.pricing import load_overrides
    from lumina_analytics.spark.session import spark_session

    spark = spark or spark_session()
    settings = get_settings()
    root = resolve_lake(lake)
    for table in INGEST_TABLES:
        check_layout_any(spark, root, table)
    opath = price_overrides if price_overrides is not None else settings.price_overrides
    overrides = load_overrides(opath) if opath else None
    skip: frozenset[str] = frozenset()
    if lake_has(spark, root, "ingest_log"):
        done = read_table(spark, root, "ingest_log").filter(F.col("status") == "ok")
        skip = frozenset(r[0] for r in done.select("sha256").distinct().collect())
    # the staged batch is read once per table: keep it on local disk, not on the JVM heap
    # (10M spans in memory overran a 2 GB local-mode driver)
    staged = _staged_frame(spark, paths, settings, overrides, skip).persist(StorageLevel.DISK_ONLY)
    try:
        results = [
            json.loads(bytes(r[0]))
            for r in staged.filter(F.col("table") == RESULT).select("payload").collect()
        ]
        tables = sorted(
            {t for r in results for t, n in r.get("rows_loaded", {}).items() if n}
            | ({"quarantine"} if any(r.get("rows_quarantined") for r in results) else set())
        )

        def load(table: str) -> int:
            schema = arrow_schema(table)
            rows = (
                staged.filter(F.col("table") == table)
                .select("payload")
                .mapInArrow(lambda it: _decode(it, schema), spark_schema(table))
            )
            return append_new(spark, root, table, rows)

        # one Spark job per table, submitted concurrently so they share the executors
        with ThreadPoolExecutor(max_workers=max(1, min(4, len(tables)))) as pool:
            counts: dict[str, int] = dict(zip(tables, pool.map(load, tables), strict=True))
    finally:
        staged.unpersist()
    report = IngestReport(warehouse=root)
    log_rows = []
    now = datetime.now(UTC).replace(tzinfo=None)
    for r in sorted(results, key=lambda d: d["path"]):
        fr = FileResult(
            r["path"],
            r["sha256"],
            r.get("format"),
            r["status"],
            rows_loaded=dict(r.get("rows_loaded", {})),
            rows_quarantined=int(r.get("rows_quarantined", 0)),
            message=r.get("message", ""),
        )
        report.files.append(fr)
        if fr.status != "skipped":
            started = r.get("started_at")
            log_rows.append(
                (
                    fr.path,
                    fr.sha256,
                    fr.format,
                    sum(fr.rows_loaded.values()),
                    fr.rows_quarantined,
                    datetime.fromisoformat(started) if started else now,
                    now,
                    fr.status,
                    fr.message,
                    (datetime.fromisoformat(started) if started else now).date(),
                )
            )
    if log_rows:
        write_table(spark.createDataFrame(log_rows, spark_schema("ingest_log")), root, "ingest_log")
        counts["ingest_log"] = count_rows(spark, root, "ingest_log")
    if counts:
        write_manifest_any(spark, root, counts)
    return report
