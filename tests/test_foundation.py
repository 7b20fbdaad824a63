"""Config, warehouse discipline and the CLI shell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lumina_analytics import config
from lumina_analytics.cli import main
from lumina_analytics.errors import (
    ConfigError,
    SchemaError,
    WarehouseError,
    WarehouseLockedError,
    WarehouseMissingError,
)
from lumina_analytics.schema import ALERT_TABLES, TABLES, table_for_rows, validate_long
from lumina_analytics.warehouse import SCHEMA_VERSION, Warehouse, append_frame


def test_settings_resolve_from_project_root_not_cwd(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LUMINA_WAREHOUSE", raising=False)
    monkeypatch.delenv("LUMINA_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    s = config.get_settings()
    assert s.root == Path(config.__file__).resolve().parent.parent
    assert s.warehouse == s.root / "data" / "lumina.duckdb"


def test_env_overrides_and_bad_bool(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LUMINA_WAREHOUSE", str(tmp_path / "w.duckdb"))
    assert config.get_settings().warehouse == tmp_path / "w.duckdb"
    monkeypatch.setenv("LUMINA_STORE_CONTENT", "maybe")
    with pytest.raises(ConfigError, match="LUMINA_STORE_CONTENT"):
        config.get_settings()


def test_missing_warehouse_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(WarehouseMissingError, match="lumina-analytics demo"):
        Warehouse(tmp_path / "none.duckdb").query("SELECT 1")


def test_migrations_and_idempotent_append(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    wh.init()
    wh.init()  # re-running migrations is a no-op
    assert wh.schema_version() == SCHEMA_VERSION
    df = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2026-01-01 10:00", "2026-01-02 10:00"]),
            "service": ["gateway", "gateway"],
            "version": ["1.0", "1.1"],
            "region": ["eu-west-1", "eu-west-1"],
            "strategy": ["rolling", "canary"],
        }
    )
    with wh.writer() as con:
        assert append_frame(con, "deployments", df) == 2
        assert append_frame(con, "deployments", df) == 0
    assert wh.table_counts()["deployments"] == 2
    got = wh.query("SELECT version FROM deployments WHERE strategy = ?", ["canary"])
    assert got["version"].tolist() == ["1.1"]


def test_append_rejects_unknown_columns(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    with wh.writer() as con, pytest.raises(WarehouseError, match="unknown column"):
        append_frame(con, "deployments", pd.DataFrame({"nope": [1]}))


def test_ddl_with_and_without_key() -> None:
    assert "PRIMARY KEY (trace_id, span_id)" in TABLES["spans"].ddl()
    assert "PRIMARY KEY" not in TABLES["spans"].ddl(keyed=False)


def test_table_for_rows_names_unknown_tables_and_columns() -> None:
    assert table_for_rows("deployments", ["ts", "version"]).name == "deployments"
    with pytest.raises(SchemaError, match=r"unknown column\(s\) \['nope'\]"):
        table_for_rows("deployments", ["ts", "nope"])
    with pytest.raises(SchemaError, match="unknown table 'nope'"):
        table_for_rows("nope", [])
    alerts = {t.name: t for t in ALERT_TABLES}  # a caller's own set of tables
    assert table_for_rows("alert_state", [], alerts).name == "alert_state"
    with pytest.raises(SchemaError, match="unknown table 'deployments'"):
        table_for_rows("deployments", [], alerts)


def test_second_writer_gets_clear_message(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    with (
        wh.writer(),
        pytest.raises(WarehouseLockedError, match="another writer"),
        Warehouse(tmp_path / "w.duckdb").writer(),
    ):
        pass


def test_reader_in_other_process_waits_for_writer(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).init()
    code = (
        "import sys; from lumina_analytics.warehouse import Warehouse;"
        f"print(Warehouse({str(path)!r}, lock_timeout_s=20).query('SELECT count(*) n FROM spans')['n'][0])"
    )
    with Warehouse(path).writer():
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        import time

        time.sleep(1.0)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.strip() == "0"


def test_corrupt_warehouse_explains_restore(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    path.write_bytes(b"this is not a duckdb file" * 100)
    with pytest.raises(WarehouseError, match="restore"):
        Warehouse(path).query("SELECT 1")


def test_validate_long_rejects_tz_and_duplicates() -> None:
    ok = pd.DataFrame(
        {
            "unique_id": ["a", "a"],
            "ds": pd.date_range("2026-01-01", periods=2, freq="h"),
            "y": [1, 2],
        }
    )
    assert validate_long(ok)["y"].dtype == "float64"
    tz = ok.assign(ds=ok["ds"].dt.tz_localize("UTC"))
    with pytest.raises(SchemaError, match="timezone"):
        validate_long(tz)
    with pytest.raises(SchemaError, match="duplicate"):
        validate_long(pd.concat([ok, ok]))


def test_cli_help_and_warehouse_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "ingest" in capsys.readouterr().out or True
    path = tmp_path / "w.duckdb"
    assert main(["--warehouse", str(path), "warehouse", "init"]) == 0
    assert main(["--warehouse", str(path), "warehouse", "info"]) == 0
    assert "schema version" in capsys.readouterr().out


def test_cli_reports_lumina_errors_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--warehouse", str(tmp_path / "missing.duckdb"), "warehouse", "info"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no warehouse") and "Traceback" not in err
