"""Idempotent, atomic loading of telemetry files into the warehouse.

For each file: hash it (sha256 of the bytes on disk); if an ``ok`` load with that hash is
already in ``ingest_log`` -> ``skipped``. Otherwise parse and stage everything in a scratch
DuckDB (no writer lock held; it spills to disk beyond ``LUMINA_STAGE_MEMORY_LIMIT``), then in
ONE writer transaction insert, table by table and in Arrow batches of ``COMMIT_BATCH_ROWS``,
the staged rows whose table key is not stored yet (an anti-join on the key, so spans seen in
earlier files add nothing), append the quarantined records and the ``ingest_log`` row, and
commit. A file loads completely or not at all. Memory stays bounded by the two DuckDB memory
limits and the chunk sizes, whatever the file size. A file that cannot be parsed at all raises
:class:`IngestError` inside, is recorded in ``ingest_log`` as ``failed`` (nothing else
stored), and loading continues with the next file.
Files found while walking a folder whose format is not recognised (e.g. a simulator's
``manifest.json``) are reported as ``skipped`` and not logged; a file named explicitly fails.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from lumina_analytics.config import Settings, get_settings
from lumina_analytics.errors import IngestError, UnknownFormatError, WarehouseError
from lumina_analytics.ingest.detect import detect_format
from lumina_analytics.ingest.stage import STAGE_MEMORY_LIMIT, Stage
from lumina_analytics.pricing import PriceOverrides, load_overrides
from lumina_analytics.schema import TABLES
from lumina_analytics.warehouse import Warehouse

#: memory limit of the writer connection during a commit (DuckDB spills beyond it)
COMMIT_MEMORY_LIMIT = os.environ.get("LUMINA_COMMIT_MEMORY_LIMIT", "128MB")
#: staged rows travel to the warehouse in Arrow batches of this many rows (bounded memory)
COMMIT_BATCH_ROWS = 16_384

_HIDDEN = re.compile(r"(^\.|~$|\.(md|txt|lock|wal|duckdb|yaml|yml)$|^LICENSE)", re.I)


@dataclasses.dataclass
class FileResult:
    """Outcome of one file."""

    path: str
    sha256: str
    format: str | None
    status: str  # ok | skipped | failed
    rows_loaded: dict[str, int] = dataclasses.field(default_factory=dict)
    rows_quarantined: int = 0
    message: str = ""


@dataclasses.dataclass
class IngestReport:
    """Outcome of :func:`ingest_paths`: one :class:`FileResult` per file."""

    files: list[FileResult] = dataclasses.field(default_factory=list)
    warehouse: str = ""

    @property
    def ok(self) -> bool:
        """True when no file failed."""
        return all(f.status != "failed" for f in self.files)

    @property
    def failed(self) -> list[FileResult]:
        """The failed files."""
        return [f for f in self.files if f.status == "failed"]

    def to_frame(self) -> pd.DataFrame:
        """One row per file: path, format, status, rows per table, quarantined, message."""
        tables = sorted({t for f in self.files for t in f.rows_loaded})
        rows = []
        for f in self.files:
            row: dict[str, Any] = {
                "path": f.path,
                "sha256": f.sha256,
                "format": f.format,
                "status": f.status,
                "rows_loaded": sum(f.rows_loaded.values()),
            }
            for t in tables:
                row[t] = f.rows_loaded.get(t, 0)
            row["rows_quarantined"] = f.rows_quarantined
            row["message"] = f.message
            rows.append(row)
        cols = [
            "path",
            "sha256",
            "format",
            "status",
            "rows_loaded",
            *tables,
            "rows_quarantined",
            "message",
        ]
        return pd.DataFrame(rows, columns=cols)

    def __str__(self) -> str:
        if not self.files:
            return "no files found"
        tables = sorted({t for f in self.files for t in f.rows_loaded})
        head = ["file", "format", "status", *tables, "quarantined"]
        body = []
        for f in self.files:
            name = f.path if len(f.path) <= 48 else "..." + f.path[-45:]
            body.append(
                [
                    name,
                    f.format or "?",
                    f.status,
                    *[f"{f.rows_loaded.get(t, 0):,}" for t in tables],
                    f"{f.rows_quarantined:,}",
                ]
            )
        totals = [
            "TOTAL",
            "",
            f"{sum(f.status == 'ok' for f in self.files)} ok",
            *[f"{sum(f.rows_loaded.get(t, 0) for f in self.files):,}" for t in tables],
            f"{sum(f.rows_quarantined for f in self.files):,}",
        ]
        widths = [max(len(str(r[i])) for r in [head, *body, totals]) for i in range(len(head))]

        def fmt(r: list[str]) -> str:
            return "  ".join(
                str(v).ljust(w) if i < 3 else str(v).rjust(w)
                for i, (v, w) in enumerate(zip(r, widths, strict=True))
            )

        lines = [fmt(head), "  ".join("-" * w for w in widths), *map(fmt, body), fmt(totals)]
        n_skip = sum(f.status == "skipped" for f in self.files)
        n_fail = sum(f.status == "failed" for f in self.files)
        lines.append(
            f"{len(self.files)} file(s): {len(self.files) - n_skip - n_fail} loaded, "
            f"{n_skip} skipped (already loaded or not telemetry), {n_fail} failed"
        )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return self.to_frame().drop(columns=["sha256"]).to_html(index=False)


def iter_files(paths: Sequence[str | os.PathLike[str]]) -> Iterator[Path]:
    """Files named directly, and files under named folders (recursive, sorted, hidden skipped)."""
    for p, _in_folder in _iter_files_flagged(paths):
        yield p


def _iter_files_flagged(paths: Sequence[str | os.PathLike[str]]) -> Iterator[tuple[Path, bool]]:
    """Like :func:`iter_files`, with a flag telling whether the file was found in a folder."""
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            for child in sorted(p.rglob("*")):
                rel = child.relative_to(p)
                if child.is_file() and not any(_HIDDEN.search(part) for part in rel.parts):
                    yield child, True
        else:
            yield p, False


def file_sha256(path: Path) -> str:
    """sha256 of the file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _content_filter(settings: Settings) -> Callable[[dict[str, Any]], dict[str, Any]]:
    from lumina_analytics.ingest.otlp import CONTENT_KEY_REGEX

    if settings.store_content:
        return lambda d: d
    pattern = re.compile(CONTENT_KEY_REGEX)
    return lambda d: {k: v for k, v in d.items() if not pattern.match(k)}


def parse_file(
    path: Path,
    stage: Stage,
    settings: Settings,
    overrides: PriceOverrides | None,
    table: str | None = None,
    mapping: str | Path | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> str:
    """Parse one file into ``stage``; returns the format label."""
    from lumina_analytics.ingest import genai, otlp, prometheus, tabular, zipkin

    fmt = detect_format(path)
    drop = _content_filter(settings)
    if fmt == "otlp_traces":
        otlp.read_otlp_traces(path, stage, not settings.store_content, on_bytes)
    elif fmt == "otlp_metrics":
        otlp.read_otlp_metrics(path, stage, on_bytes)
    elif fmt == "otlp_logs":
        otlp.read_otlp_logs(path, stage, not settings.store_content, on_bytes)
    elif fmt == "zipkin":
        zipkin.read_zipkin(path, stage, drop, on_bytes)
    elif fmt == "prometheus":
        prometheus.read_prometheus(path, stage, on_bytes)
    else:
        fmt = tabular.read_tabular(path, stage, fmt, settings, overrides, table, mapping)
        if on_bytes is not None:
            on_bytes(path.stat().st_size)
    stage.dedupe()
    if "spans" in stage.tables and "llm_calls" not in stage.tables:
        genai.extract_llm_calls(stage, settings, overrides)
        stage.dedupe()
    stage.redact()  # after GenAI extraction: ids and token counts are never secrets
    return fmt


def _already_loaded(wh: Warehouse, sha: str) -> bool:
    if not wh.exists():
        return False
    try:
        df = wh.query(
            "SELECT count(*) AS n FROM ingest_log WHERE sha256 = ? AND status = 'ok'", [sha]
        )
    except (WarehouseError, Exception):  # table missing in a fresh file
        return False
    return bool(df["n"].iloc[0])


def _insert_new_sql(table: str, source: str) -> str:
    """``INSERT`` of the rows of ``source`` whose table key is not in ``table`` yet.

    An anti-join on the key (the staged rows have no repeated keys: :meth:`Stage.dedupe`)
    instead of ``INSERT OR IGNORE``, which probes the key index row by row.
    """
    spec = TABLES[table]
    cols = ", ".join(f'"{c}"' for c in spec.column_names)
    sql = f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM {source} AS s'
    if spec.key:
        on = " AND ".join(f't."{k}" = s."{k}"' for k in spec.key)
        sql += f' WHERE NOT EXISTS (SELECT 1 FROM "{table}" AS t WHERE {on})'
    return sql


def _commit(wh: Warehouse, stage: Stage, result: FileResult, started: datetime) -> bool:
    """Write the staged rows; returns False if the same content was loaded meanwhile."""
    with wh.writer() as con:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"SET memory_limit = '{COMMIT_MEMORY_LIMIT}'")  # DuckDB spills beyond it
        con.execute("BEGIN TRANSACTION")
        try:
            n = con.execute(
                "SELECT count(*) FROM ingest_log WHERE sha256 = ? AND status = 'ok'",
                [result.sha256],
            ).fetchall()[0][0]
            if n:
                con.execute("ROLLBACK")
                return False
            for table in stage.tables:
                cols = ", ".join(f'"{c}"' for c in TABLES[table].column_names)
                reader = stage.con.sql(f'SELECT {cols} FROM "stage_{table}"').to_arrow_reader(
                    COMMIT_BATCH_ROWS
                )
                con.register("_lumina_stage", reader)
                try:
                    inserted = con.execute(_insert_new_sql(table, "_lumina_stage")).fetchall()
                finally:
                    con.unregister("_lumina_stage")
                result.rows_loaded[table] = int(inserted[0][0]) if inserted else 0
            now = _utcnow()
            qreader = stage.con.sql(
                "SELECT position, reason, raw FROM stage_quarantine"
            ).to_arrow_reader(COMMIT_BATCH_ROWS)
            con.register("_lumina_q", qreader)
            try:
                con.execute(
                    "INSERT INTO quarantine (path, sha256, position, reason, raw, quarantined_at) "
                    "SELECT ?, ?, position, reason, raw, ? FROM _lumina_q",
                    [result.path, result.sha256, now],
                )
            finally:
                con.unregister("_lumina_q")
            _log(con, result, started, now)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return True


def _log(con: Any, result: FileResult, started: datetime, finished: datetime) -> None:
    con.execute(
        "INSERT INTO ingest_log (path, sha256, format, rows_loaded, rows_quarantined, "
        "started_at, finished_at, status, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            result.path,
            result.sha256,
            result.format,
            sum(result.rows_loaded.values()),
            result.rows_quarantined,
            started,
            finished,
            result.status,
            result.message,
        ],
    )


def _record_failure(wh: Warehouse, result: FileResult, started: datetime) -> None:
    with wh.writer() as con:
        con.execute("BEGIN TRANSACTION")
        _log(con, result, started, _utcnow())
        con.execute("COMMIT")


def ingest_file(
    path: Path,
    wh: Warehouse,
    settings: Settings,
    overrides: PriceOverrides | None,
    table: str | None = None,
    mapping: str | Path | None = None,
    on_bytes: Callable[[int], None] | None = None,
    stage: Stage | None = None,
    skip_unknown: bool = False,
) -> FileResult:
    """Load one file (see module docstring); never raises IngestError, returns its result.

    ``stage`` lets a caller reuse one staging database across files (it is reset here).
    ``skip_unknown`` (used for files found in a folder) reports a file whose format is not
    recognised as ``skipped`` (not logged) instead of ``failed``.
    """
    started = _utcnow()
    spath = str(path.resolve()) if path.exists() else str(path)
    if not path.is_file():
        res = FileResult(spath, "", None, "failed", message=f"{path}: no such file")
        return res
    sha = file_sha256(path)
    result = FileResult(spath, sha, None, "ok")
    if skip_unknown and table is None and mapping is None:
        try:
            detect_format(path)
        except UnknownFormatError as exc:
            result.status = "skipped"
            result.message = f"not a telemetry file, skipped ({exc.problem})"
            if on_bytes is not None:
                on_bytes(path.stat().st_size)
            return result
        except IngestError:
            pass
    if _already_loaded(wh, sha):
        result.status = "skipped"
        result.message = "same content already loaded"
        if on_bytes is not None:
            on_bytes(path.stat().st_size)
        return result
    own_stage = stage is None
    if stage is None:
        stage = Stage(spath, sha)
    else:
        stage.reset(spath, sha)
    try:
        try:
            try:
                result.format = parse_file(
                    path, stage, settings, overrides, table, mapping, on_bytes
                )
            except duckdb.OutOfMemoryException as exc:
                raise IngestError(
                    spath,
                    None,
                    f"staging ran out of memory ({exc}); split the file or raise "
                    f"LUMINA_STAGE_MEMORY_LIMIT (now {STAGE_MEMORY_LIMIT})",
                ) from exc
        except IngestError as exc:
            result.status = "failed"
            result.message = str(exc)
            try:
                result.format = detect_format(path)
            except IngestError:
                result.format = None
            _record_failure(wh, result, started)
            return result
        result.rows_quarantined = stage.quarantined()
        notes = list(stage.notes)
        if result.rows_quarantined:
            notes.append(f"{result.rows_quarantined} record(s) quarantined")
        result.message = "; ".join(notes)
        if not _commit(wh, stage, result, started):
            result.status = "skipped"
            result.message = "same content already loaded"
            result.rows_loaded = {}
    finally:
        if own_stage:
            stage.close()
        else:
            stage.reset(spath, sha)
    return result


def ingest_paths(
    paths: Sequence[str | os.PathLike[str]],
    warehouse: Warehouse | str | None = None,
    *,
    progress: bool | None = None,
    price_overrides: str | Path | None = None,
    table: str | None = None,
    mapping: str | Path | None = None,
) -> IngestReport:
    """Load files or folders (recursively) into the warehouse; see the module docstring.

    ``progress`` None shows a tqdm bar over bytes only when stderr is a terminal.
    ``price_overrides`` defaults to ``LUMINA_PRICE_OVERRIDES``.
    """
    settings = get_settings()
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    overrides_path = price_overrides if price_overrides is not None else settings.price_overrides
    overrides = load_overrides(overrides_path) if overrides_path else None
    flagged = list(_iter_files_flagged(paths))
    files = [f for f, _ in flagged]
    report = IngestReport(warehouse=str(wh.path))
    show = sys.stderr.isatty() if progress is None else progress
    total = sum(f.stat().st_size for f in files if f.is_file())
    bar: Any = None
    if show and files:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="B", unit_scale=True, desc="ingest", file=sys.stderr)
    stage: Stage | None = None
    try:
        for f, in_folder in flagged:
            if bar is not None:
                bar.set_postfix_str(f.name[-30:])
            done = 0

            def on_bytes(n: int) -> None:
                nonlocal done
                done += n
                if bar is not None:
                    bar.update(n)

            if stage is None:
                stage = Stage(str(f), "")
            res = ingest_file(
                f, wh, settings, overrides, table, mapping, on_bytes, stage, skip_unknown=in_folder
            )
            if bar is not None and f.is_file():
                rest = f.stat().st_size - done
                if rest > 0:
                    bar.update(rest)
            report.files.append(res)
    finally:
        if stage is not None:
            stage.close()
        if bar is not None:
            bar.close()
    return report
