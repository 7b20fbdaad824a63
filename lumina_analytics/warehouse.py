"""The only module that opens DuckDB.

* Readers (notebooks, dashboards, analyses) use :func:`query` or :meth:`Warehouse.reader`:
  short-lived read-only connections that wait (up to ``lock_timeout_s``) while a writer
  commits, and never write.
* Writers use :meth:`Warehouse.writer`: it takes an exclusive advisory lock on
  ``<warehouse>.lock`` (a second writer gets :class:`WarehouseLockedError` naming the
  holder's pid), opens the file read-write, applies forward migrations, and closes as soon
  as the block ends so readers are held back only while a commit is written.
* Parsing and staging happen in :func:`scratch`, an in-memory DuckDB that touches no file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from lumina_analytics.config import get_settings
from lumina_analytics.errors import (
    SchemaError,
    WarehouseError,
    WarehouseLockedError,
    WarehouseMissingError,
)
from lumina_analytics.schema import ALERT_TABLES, ROLLUP_TABLES, TABLES, table_for_rows

SCHEMA_VERSION = 3

#: Forward migrations: version -> statements. Never edit a released one; append.
MIGRATIONS: dict[int, list[str]] = {
    1: [t.ddl() for t in TABLES.values()],
    # 2: alerting: alert state, alert history and the notification outbox.
    2: [t.ddl() for t in ALERT_TABLES],
    # 3: operations: hourly and daily llm_calls rollups (kept longer than raw rows).
    3: [t.ddl() for t in ROLLUP_TABLES],
}

_WRITE_FAILURES = ("No space left", "Read-only file system", "Permission denied", "Could not write")
_LOCK_MARKERS = ("Could not set lock", "Conflicting lock", "database is locked")


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _is_lock_conflict(exc: BaseException) -> bool:
    return any(m in str(exc) for m in _LOCK_MARKERS)


def scratch() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection for parsing and staging; it never touches a file."""
    con = duckdb.connect(":memory:")
    con.execute("SET preserve_insertion_order = true")
    return con


class Warehouse:
    """A DuckDB warehouse file with reader/writer discipline and migrations."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, lock_timeout_s: float | None = None
    ):
        settings = get_settings()
        self.path = Path(path).expanduser().resolve() if path else settings.warehouse
        self.lock_timeout_s = settings.lock_timeout_s if lock_timeout_s is None else lock_timeout_s

    def __repr__(self) -> str:
        return f"Warehouse({str(self.path)!r})"

    @property
    def lock_path(self) -> Path:
        """The advisory lock file writers hold."""
        return self.path.with_name(self.path.name + ".lock")

    def exists(self) -> bool:
        """Whether the warehouse file exists."""
        return self.path.exists()

    # -- connections -------------------------------------------------------------------
    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.02
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
                con.execute("SET enable_progress_bar = false")  # commands print their own output
                return con
            except duckdb.Error as exc:
                if _is_lock_conflict(exc) and time.monotonic() < deadline:
                    time.sleep(delay + random.random() * delay)
                    delay = min(delay * 2, 0.5)
                    continue
                if _is_lock_conflict(exc):
                    raise WarehouseLockedError(
                        f"warehouse {self.path} stayed locked by another process for "
                        f"{self.lock_timeout_s:.0f}s; wait for the running ingest to finish "
                        "or raise LUMINA_LOCK_TIMEOUT_S"
                    ) from exc
                raise WarehouseError(
                    f"cannot open warehouse {self.path}: {exc}. If the file is corrupted, "
                    "restore the latest backup (lumina-analytics restore DIR) or rebuild it "
                    "with lumina-analytics demo / ingest"
                ) from exc

    @contextlib.contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived read-only connection. Raises if the warehouse does not exist."""
        if not self.exists():
            raise WarehouseMissingError(
                f"no warehouse at {self.path}; build one with `lumina-analytics demo` or load "
                "telemetry with `lumina-analytics ingest PATH`, or point LUMINA_WAREHOUSE / "
                "--warehouse at an existing file"
            )
        con = self._open(read_only=True)
        try:
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def writer(self, wait_s: float = 0.0) -> Iterator[duckdb.DuckDBPyConnection]:
        """An exclusive read-write connection, migrated to the current schema.

        ``wait_s`` is how long to wait for another writer before giving up.
        """
        with contextlib.ExitStack() as stack:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                stack.enter_context(self._writer_lock(wait_s))
            except OSError as exc:
                raise self._unwritable(exc) from None
            con = self._open(read_only=False)
            try:
                _migrate(con)
                yield con
            except duckdb.Error as exc:
                if any(m in str(exc) for m in _WRITE_FAILURES):  # disk full, read-only fs
                    raise self._unwritable(exc) from exc
                raise
            finally:
                con.close()

    def _unwritable(self, exc: BaseException) -> WarehouseError:
        detail = getattr(exc, "strerror", None) or str(exc)
        return WarehouseError(
            f"cannot write warehouse {self.path}: {detail}. Check that its folder exists, is "
            "writable (not a read-only mount) and has free space, or point LUMINA_WAREHOUSE / "
            "--warehouse elsewhere; nothing was changed"
        )

    @contextlib.contextmanager
    def _writer_lock(self, wait_s: float) -> Iterator[None]:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                        raise WarehouseLockedError(
                            f"another writer (pid {holder}) is using warehouse {self.path}; "
                            f"wait for it to finish (lock file {self.lock_path})"
                        ) from None
                    time.sleep(0.1)
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def lock(self, wait_s: float = 0.0) -> Iterator[None]:
        """Hold the writer lock without opening the file (restore swaps the file under it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._writer_lock(wait_s):
            yield

    def export_parquet(self, directory: str | os.PathLike[str]) -> dict[str, int]:
        """Write every base table to ``<directory>/<table>.parquet`` from ONE read-only snapshot.

        Uses a read-only connection (dashboards keep reading; a writer waits until it is done)
        and a single transaction, so all tables come from the same state. Returns row counts.
        """
        import pyarrow.parquet as pq

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        counts: dict[str, int] = {}
        with self.reader() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                names = [
                    r[0]
                    for r in con.execute(
                        "SELECT table_name FROM information_schema.tables "
                        "WHERE table_type = 'BASE TABLE' AND table_schema = 'main' "
                        "ORDER BY table_name"
                    ).fetchall()
                ]
                for name in names:
                    batches = con.sql(f'SELECT * FROM "{name}"').to_arrow_reader(100_000)
                    n = 0
                    with pq.ParquetWriter(out / f"{name}.parquet", batches.schema) as w:
                        for batch in batches:
                            w.write_batch(batch)
                            n += batch.num_rows
                    counts[name] = n
            finally:
                con.execute("COMMIT")
        return counts

    def import_parquet(self, files: dict[str, Path]) -> dict[str, int]:
        """Load ``table -> parquet file`` into this (new, migrated) warehouse in one transaction.

        Columns are matched by name; a table the current schema lacks is created from the file.
        Returns the row count of each table afterwards.
        """
        import pyarrow.parquet as pq

        counts: dict[str, int] = {}
        with self.writer() as con:
            present = table_names(con)
            con.execute("BEGIN TRANSACTION")
            try:
                for name, path in files.items():
                    if name == "schema_version":
                        continue
                    data = pq.read_table(path)
                    con.register("_lumina_restore", data)
                    try:
                        if name not in present:
                            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _lumina_restore')
                        else:
                            cols = ", ".join(f'"{c}"' for c in data.column_names)
                            con.execute(f'DELETE FROM "{name}"')
                            con.execute(
                                f'INSERT INTO "{name}" ({cols}) SELECT {cols} FROM _lumina_restore'
                            )
                    finally:  # after a failed insert the transaction is aborted: keep its error
                        with contextlib.suppress(duckdb.Error):
                            con.unregister("_lumina_restore")
                    counts[name] = int(
                        con.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0]
                    )
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
            con.execute("CHECKPOINT")
        return counts

    def init(self) -> None:
        """Create the file (if missing) and migrate it to the current schema."""
        with self.writer():
            pass

    # -- reading -----------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        """Run a read-only query with bound parameters and return a DataFrame."""
        with self.reader() as con:
            return con.execute(sql, params or []).df()

    def schema_version(self) -> int:
        """The schema version stored in the file (0 when never migrated)."""
        with self.reader() as con:
            return _stored_version(con)

    def table_counts(self) -> dict[str, int]:
        """Row count of every data-model table present in the file."""
        with self.reader() as con:
            present = {
                r[0]
                for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
            }
            return {
                name: int(con.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0])
                for name in TABLES
                if name in present
            }


def _stored_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchall()[0][0]
    if not exists:
        return 0
    row = con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0]
    return int(row or 0)


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)"
    )
    current = _stored_version(con)
    if current > SCHEMA_VERSION:
        raise WarehouseError(
            f"warehouse schema version {current} is newer than this workbench ({SCHEMA_VERSION}); "
            "upgrade lumina-analytics"
        )
    for version in sorted(v for v in MIGRATIONS if v > current):
        con.execute("BEGIN TRANSACTION")
        try:
            for stmt in MIGRATIONS[version]:
                con.execute(stmt)
            con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, _utcnow()])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise


def query(
    sql: str,
    params: Sequence[Any] | dict[str, Any] | None = None,
    warehouse: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Read-only query against the (default) warehouse, parameters bound, never formatted in."""
    return Warehouse(warehouse).query(sql, params)


def table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The names of the tables in ``con``'s main schema."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()
    return {str(r[0]) for r in rows}


def append_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> int:
    """Insert ``frame`` into ``table`` inside the caller's writer connection.

    Columns are matched by name (missing optional columns become NULL; extra columns are
    an error). Rows whose key already exists are skipped, so re-running never duplicates.
    Returns the number of rows actually inserted.
    """
    try:
        spec = table_for_rows(table, frame.columns)
    except SchemaError as exc:
        raise WarehouseError(str(exc)) from exc
    if frame.empty:
        return 0
    cols = [c for c in spec.column_names if c in frame.columns]
    before = int(con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0])
    con.register("_lumina_append", frame[cols])
    try:
        col_sql = ", ".join(f'"{c}"' for c in cols)
        verb = "INSERT OR IGNORE" if spec.key else "INSERT"
        con.execute(f'{verb} INTO "{table}" ({col_sql}) SELECT {col_sql} FROM _lumina_append')
    finally:
        con.unregister("_lumina_append")
    after = int(con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0])
    return after - before
