"""The Parquet lake with the DuckDB engine: layout, export/import, in-place queries, ingestion."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from lake_samples import ODD_FOLDERS, ODD_TENANTS, make_old_layout, odd_calls, tenant_folders

from lumina_analytics.cli import main
from lumina_analytics.errors import WarehouseError
from lumina_analytics.lake import (
    LAKE_TABLES,
    MANIFEST,
    LakeError,
    append_rows,
    export_lake,
    import_lake,
    ingest_to_lake,
    lake_counts,
    lake_query,
    local_path,
    read_manifest,
    resolve_lake,
)
from lumina_analytics.warehouse import Warehouse

TABLES = ("spans", "llm_calls", "metrics", "logs", "events", "deployments", "incidents")
OTLP_TABLES = ("spans", "llm_calls", "logs")


def _counts(wh: Path) -> dict[str, int]:
    got = Warehouse(wh).table_counts()
    return {t: got[t] for t in TABLES}


def test_export_writes_hive_partitions_and_manifest(
    reference_warehouse: Path, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    counts = export_lake(reference_warehouse, lake)
    assert {t: counts[t] for t in TABLES} == _counts(reference_warehouse)
    days = sorted(p.name for p in (lake / "llm_calls").iterdir())
    assert days == ["date=2026-10-01", "date=2026-10-02", "date=2026-10-03", "date=2026-10-04"]
    assert all(p.name.startswith("part-") for p in (lake / "spans").rglob("*.parquet"))
    manifest = json.loads((lake / MANIFEST).read_text())
    assert manifest["tables"]["llm_calls"]["partition_by"] == ["date", "tenant"]
    assert manifest["tables"]["spans"]["partition_by"] == ["date"]
    assert manifest["tables"]["llm_calls"]["rows"] == counts["llm_calls"]
    assert manifest["tables"]["alert_state"]["partition_by"] == []
    assert dict(manifest["tables"]["spans"]["columns"])["attributes"] == "VARCHAR"
    assert read_manifest(lake)["updated_by"] == "duckdb"


def test_duckdb_queries_lake_in_place_with_partition_pruning(
    reference_warehouse: Path, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    export_lake(reference_warehouse, lake, tables=["llm_calls"])
    sql = (
        "SELECT provider, count(*) AS n, round(sum(cost_usd), 9) AS cost FROM llm_calls "
        "WHERE ts >= '2026-10-02' AND ts < '2026-10-03' GROUP BY 1 ORDER BY 1"
    )
    in_lake = lake_query(sql.replace("WHERE", "WHERE date = '2026-10-02' AND"), lake=lake)
    pd.testing.assert_frame_equal(in_lake, Warehouse(reference_warehouse).query(sql))
    # work in progress of a concurrent writer (Spark's _temporary, hidden files) is not read
    (lake / "llm_calls" / "_temporary" / "0").mkdir(parents=True)
    (lake / "llm_calls" / "_temporary" / "0" / "part-0.parquet").write_bytes(b"partial")
    (lake / "llm_calls" / "date=2026-10-02" / ".part-1.parquet").write_bytes(b"partial")
    assert lake_counts(lake)["llm_calls"] == _counts(reference_warehouse)["llm_calls"]
    plan = lake_query("EXPLAIN SELECT count(*) FROM llm_calls WHERE date = '2026-10-02'", lake=lake)
    assert "File Filters" in "\n".join(plan.iloc[:, 1]) or "date" in "\n".join(plan.iloc[:, 1])


def test_import_round_trip_gives_identical_tables(
    reference_warehouse: Path, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    export_lake(reference_warehouse, lake)
    back = tmp_path / "back.duckdb"
    counts = import_lake(lake, Warehouse(back))
    assert {t: counts[t] for t in TABLES} == _counts(reference_warehouse)
    q = "SELECT * FROM llm_calls ORDER BY trace_id, span_id"
    pd.testing.assert_frame_equal(Warehouse(back).query(q), Warehouse(reference_warehouse).query(q))
    q = "SELECT trace_id, span_id, attributes FROM spans ORDER BY 1, 2"
    pd.testing.assert_frame_equal(Warehouse(back).query(q), Warehouse(reference_warehouse).query(q))


def test_ingest_to_lake_matches_warehouse_ingest(
    duckdb_lake: Path, reference_warehouse: Path, telemetry: Any
) -> None:
    counts, reference = lake_counts(duckdb_lake), _counts(reference_warehouse)
    assert {t: counts[t] for t in OTLP_TABLES} == {t: reference[t] for t in OTLP_TABLES}
    cost = "SELECT round(sum(cost_usd), 9) AS c, count(cost_usd) AS priced FROM llm_calls"
    pd.testing.assert_frame_equal(
        lake_query(cost, lake=duckdb_lake), Warehouse(reference_warehouse).query(cost)
    )
    q = "SELECT position, reason FROM quarantine WHERE path LIKE '%bad.otlp.jsonl' ORDER BY 1"
    in_lake = lake_query(q, lake=duckdb_lake)
    assert in_lake.equals(Warehouse(reference_warehouse).query(q))
    assert len(in_lake) == 2  # the broken line and the in-file duplicate
    assert any("not valid JSON" in r for r in in_lake["reason"])


def test_reingest_is_idempotent_and_overlaps_add_nothing(
    lake_copy: Path, telemetry: Any, tmp_path: Path
) -> None:
    before = lake_counts(lake_copy)
    again = ingest_to_lake(telemetry.otlp, lake_copy)
    assert {f.status for f in again.files} == {"skipped"}
    copy = tmp_path / "renamed.otlp.jsonl"  # new content, but every span is already in the lake
    first = sorted((telemetry.paths[0]).glob("*.jsonl"))[0].read_text().splitlines()
    assert len(first) > 1
    copy.write_text(first[0] + "\n")
    report = ingest_to_lake([copy], lake_copy)
    assert report.files[0].status == "ok"
    assert report.files[0].rows_loaded["spans"] == 0
    after = lake_counts(lake_copy)
    assert after["spans"] == before["spans"] and after["llm_calls"] == before["llm_calls"]
    assert after["ingest_log"] == before["ingest_log"] + 1


def test_bad_input_gets_clear_errors(tmp_path: Path, reference_warehouse: Path) -> None:
    with pytest.raises(LakeError, match="needs a local or mounted lake path"):
        export_lake(reference_warehouse, "s3a://bucket/lake")
    with pytest.raises(LakeError, match="holds no Parquet data"):
        import_lake(tmp_path / "empty", Warehouse(tmp_path / "x.duckdb"))
    with pytest.raises(LakeError, match="unknown table"):
        export_lake(reference_warehouse, tmp_path / "lake", tables=["nope"])
    (tmp_path / "newer").mkdir()
    (tmp_path / "newer" / MANIFEST).write_text(json.dumps({"format": 1, "schema_version": 999}))
    with pytest.raises(LakeError, match="newer than this workbench"):
        read_manifest(tmp_path / "newer")
    assert resolve_lake("s3a://bucket/lake/") == "s3a://bucket/lake"


def test_import_refuses_duplicate_keys(duckdb_lake: Path, tmp_path: Path) -> None:
    lake = tmp_path / "dup"
    shutil.copytree(duckdb_lake, lake)
    part = next((lake / "logs").rglob("*.parquet"))
    shutil.copy(part, part.with_name("part-copy.parquet"))
    with pytest.raises(WarehouseError, match="key repeats"):
        import_lake(lake, Warehouse(tmp_path / "w.duckdb"), tables=["logs"])


def test_cli_export_info_query_import(
    reference_warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = str(tmp_path / "lake")
    assert main(["--warehouse", str(reference_warehouse), "lake", "export", "--lake", lake]) == 0
    assert main(["lake", "info", "--lake", lake]) == 0
    out = capsys.readouterr().out
    assert "llm_calls" in out and "partitioned by date" in out
    assert main(["lake", "query", "--lake", lake, "SELECT count(*) AS n FROM events"]) == 0
    assert str(_counts(reference_warehouse)["events"]) in capsys.readouterr().out
    into = tmp_path / "copy.duckdb"
    assert main(["lake", "import", "--lake", lake, "--into", str(into)]) == 0
    assert _counts(into) == _counts(reference_warehouse)
    assert main(["lake", "info", "--lake", str(tmp_path / "none")]) == 1


def test_engine_and_lake_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lumina_analytics import scaleout
    from lumina_analytics.config import get_settings
    from lumina_analytics.errors import ConfigError
    from lumina_analytics.spark.submit import run

    assert get_settings().engine == "duckdb" and scaleout.resolve_engine() == "duckdb"
    monkeypatch.setenv("LUMINA_ENGINE", "flink")
    with pytest.raises(ConfigError, match="engine must be one of duckdb, spark"):
        get_settings()
    settings = tmp_path / "s.yaml"
    settings.write_text("engine: spark\nlake: s3a://bucket/lumina/lake\n")
    monkeypatch.delenv("LUMINA_ENGINE")
    monkeypatch.setenv("LUMINA_SETTINGS", str(settings))
    assert scaleout.resolve_engine() == "spark"
    assert resolve_lake() == "s3a://bucket/lumina/lake"
    settings.write_text("engine: flink\n")
    with pytest.raises(ConfigError, match="engine"):
        get_settings()
    monkeypatch.delenv("LUMINA_SETTINGS")
    monkeypatch.setenv("LUMINA_LAKE", "lake-here")
    assert resolve_lake().endswith("/lake-here")
    assert run(["lake", "info", "--lake", str(tmp_path / "nothing")]) == 1  # spark-submit entry


# --------------------------------------------------------------------------- tenant layout
def test_tenant_partitions_exist_and_a_tenant_filter_prunes(
    reference_warehouse: Path, tmp_path: Path
) -> None:
    import duckdb

    lake = tmp_path / "lake"
    export_lake(reference_warehouse, lake, tables=["llm_calls", "events"])
    wh = Warehouse(reference_warehouse)
    per_tenant = wh.query("SELECT tenant, count(*) AS n FROM llm_calls GROUP BY 1 ORDER BY 1")
    assert len(per_tenant) > 2 and per_tenant["tenant"].notna().all()
    for table in ("llm_calls", "events"):
        files = list((lake / table).rglob("*.parquet"))
        assert files and all(
            p.parent.name.startswith("tenant=") and p.parent.parent.name.startswith("date=")
            for p in files
        )
        # the tenant lives in the folder name only (both engines drop it from the files)
        names = duckdb.sql(
            f"DESCRIBE SELECT * FROM read_parquet('{files[0]}', hive_partitioning = false)"
        ).df()
        assert "tenant" not in set(names["column_name"])
    assert tenant_folders(lake) == {f"tenant={t}" for t in per_tenant["tenant"]}
    one, n = str(per_tenant["tenant"][0]), int(per_tenant["n"][0])
    # reading only one tenant's folders gives exactly that tenant's rows
    only = duckdb.sql(
        f"SELECT tenant, count(*) AS n FROM read_parquet('{lake}/llm_calls/*/tenant={one}/*.parquet',"
        " hive_partitioning = true) GROUP BY 1"
    ).fetchall()
    assert only == [(one, n)]
    # the views keep warehouse column order, and a tenant filter never opens other folders
    cols = lake_query("SELECT * FROM llm_calls LIMIT 1", lake=lake).columns
    assert list(cols) == [*LAKE_TABLES["llm_calls"].column_names, "date"]
    files = sorted((lake / "llm_calls").rglob("*.parquet"))  # the first one gives the schema
    other = next(p for p in files[1:] if f"tenant={one}" not in str(p))
    other.write_bytes(b"not parquet")  # a reader that opened it would fail
    got = lake_query("SELECT count(*) AS n FROM llm_calls WHERE tenant = ?", [one], lake=lake)
    assert int(got["n"][0]) == n
    with pytest.raises(duckdb.Error):
        lake_query("SELECT count(*) FROM llm_calls", lake=lake)


def test_null_empty_and_odd_tenants_get_hive_folders(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    assert append_rows(odd_calls(), "llm_calls", lake) == len(ODD_TENANTS)
    assert tenant_folders(lake) == ODD_FOLDERS
    back = lake_query("SELECT tenant FROM llm_calls ORDER BY trace_id", lake=lake)["tenant"]
    expected = [None if t in (None, "") else t for t in ODD_TENANTS]  # '' is stored as NULL
    assert [None if pd.isna(t) else t for t in back] == expected
    nulls = lake_query("SELECT count(*) AS n FROM llm_calls WHERE tenant IS NULL", lake=lake)
    assert int(nulls["n"][0]) == 2
    # appending the same keys again adds nothing
    assert append_rows(odd_calls(), "llm_calls", lake) == 0
    assert read_manifest(lake)["tables"]["llm_calls"]["rows"] == len(ODD_TENANTS)


def test_date_only_lake_stays_readable_and_appends_are_refused(
    reference_warehouse: Path, telemetry: Any, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    export_lake(reference_warehouse, lake)
    make_old_layout(lake)
    assert all(p.parent.name.startswith("date=") for p in (lake / "llm_calls").rglob("*.parquet"))
    sql = "SELECT tenant, count(*) AS n, round(sum(cost_usd), 9) AS c FROM llm_calls GROUP BY 1 ORDER BY 1"
    pd.testing.assert_frame_equal(
        lake_query(sql, lake=lake), Warehouse(reference_warehouse).query(sql)
    )
    back = tmp_path / "back.duckdb"
    assert import_lake(lake, Warehouse(back), tables=["llm_calls"])["llm_calls"] == len(
        Warehouse(reference_warehouse).query("SELECT 1 FROM llm_calls")
    )
    with pytest.raises(
        LakeError, match=r"partitioned by date \(an older lake layout\).*lake export"
    ):
        ingest_to_lake(telemetry.otlp, lake)
    with pytest.raises(LakeError, match="older lake layout"):
        append_rows(odd_calls(), "llm_calls", lake)
    # re-exporting the table moves it to the current layout
    export_lake(Warehouse(back), lake, tables=["llm_calls"])
    assert read_manifest(lake)["tables"]["llm_calls"]["partition_by"] == ["date", "tenant"]
    assert all(p.parent.name.startswith("tenant=") for p in (lake / "llm_calls").rglob("*.parquet"))


# --------------------------------------------------------------------------- results in the lake
def test_forecast_and_anomaly_results_go_to_the_lake_idempotently(
    lake_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--engine", "duckdb", "--lake", str(lake_copy), "--dimension", "region"]
    out = tmp_path / "scores.csv"
    assert main(["lake", "anomaly", *base, "-o", str(out)]) == 0
    scores = pd.read_csv(out)
    assert set(scores.columns) == set(LAKE_TABLES["anomalies"].column_names)
    assert (scores["detector"] == "ensemble:llm_rollup_hourly.requests").all()
    stored = lake_counts(lake_copy)["anomalies"]
    assert stored == len(scores) > 0
    assert read_manifest(lake_copy)["tables"]["anomalies"]["rows"] == stored
    capsys.readouterr()
    assert main(["lake", "anomaly", *base]) == 0  # same data, same keys: nothing added
    assert "stored 0 new score rows" in capsys.readouterr().out
    assert lake_counts(lake_copy)["anomalies"] == stored
    # another metric of the same series is another detector key, so it is stored too
    assert main(["lake", "anomaly", *base, "--metric", "cost_usd"]) == 0
    assert lake_counts(lake_copy)["anomalies"] == 2 * stored

    assert main(["lake", "forecast", *base, "--horizon", "3"]) == 0
    first = lake_query("SELECT * FROM forecasts ORDER BY unique_id, ds", lake=lake_copy)
    assert len(first) > 0 and (first["metric"] == "llm_rollup_hourly.requests").all()
    assert first["model"].str.endswith(":llm_rollup_hourly.requests").all()
    cutoff = lake_query("SELECT max(bucket) AS b FROM llm_rollup_hourly", lake=lake_copy)["b"][0]
    assert (first["cutoff"] == cutoff).all() and (first["ds"] > cutoff).all()
    assert main(["lake", "forecast", *base, "--horizon", "3"]) == 0
    again = lake_query("SELECT * FROM forecasts ORDER BY unique_id, ds", lake=lake_copy)
    pd.testing.assert_frame_equal(first, again)  # the first run's rows are kept, none added
    assert read_manifest(lake_copy)["tables"]["forecasts"]["rows"] == len(first)


def test_local_path_of_folders_file_uris_and_object_stores(tmp_path: Path) -> None:
    assert local_path(str(tmp_path)) == tmp_path
    assert local_path(f"file://{tmp_path}") == tmp_path
    assert local_path("s3a://bucket/lake") is None
    with pytest.raises(LakeError, match="object-store lakes"):
        read_manifest("s3a://bucket/lake")
