"""The Spark engine (local[2]) gives the same answers as the DuckDB engine on the same data."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lake_samples import ODD_FOLDERS, ODD_TENANTS, make_old_layout, odd_calls, tenant_folders

from lumina_analytics import scaleout
from lumina_analytics.cli import main
from lumina_analytics.lake import (
    LAKE_TABLES,
    append_rows,
    lake_counts,
    lake_query,
    read_manifest,
)
from lumina_analytics.ops.rollups import ROLLUP_DIMENSIONS

pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)

DATA_TABLES = ("spans", "llm_calls", "logs")
#: fixed created_at of stored results, so both engines write identical rows
NOW = datetime(2026, 11, 1)
FORECAST = {"freq": "1h", "horizon": 6, "members": ("prophet", "snaive_day"), "n_folds": 2}


def _same(sql: str, a: Path, b: Path) -> pd.DataFrame:
    left, right = lake_query(sql, lake=a), lake_query(sql, lake=b)
    pd.testing.assert_frame_equal(left, right, check_dtype=False, rtol=1e-9)
    return left


def test_spark_ingest_same_rows_costs_and_quarantine(
    spark_lake: Path, duckdb_lake: Path, telemetry: Any
) -> None:
    a, b = lake_counts(duckdb_lake), lake_counts(spark_lake)
    assert {t: b[t] for t in DATA_TABLES} == {t: a[t] for t in DATA_TABLES}
    assert b["ingest_log"] == a["ingest_log"] and b["quarantine"] == a["quarantine"] == 2
    # every priced call has the same cost, price source and normalised fields
    cols = "trace_id, span_id, ts, provider, model, input_tokens, output_tokens, cost_usd, " + (
        "price_source, status, error_type, tenant, agent"
    )
    calls = _same(
        f"SELECT {cols} FROM llm_calls ORDER BY trace_id, span_id", duckdb_lake, spark_lake
    )
    assert calls["cost_usd"].notna().sum() > 0.9 * len(calls)
    _same(
        "SELECT trace_id, span_id, start_ts, duration_ms, attributes, resource FROM spans "
        "ORDER BY 1, 2",
        duckdb_lake,
        spark_lake,
    )
    _same(
        "SELECT * EXCLUDE (quarantined_at) FROM quarantine ORDER BY position",
        duckdb_lake,
        spark_lake,
    )
    _same("SELECT * FROM logs ORDER BY source_sha256, source_position", duckdb_lake, spark_lake)
    assert read_manifest(spark_lake)["updated_by"] == "spark"


def test_spark_reingest_skips_and_reads_duckdb_written_lake(
    spark: Any, spark_lake: Path, duckdb_lake: Path, telemetry: Any
) -> None:
    from lumina_analytics.spark.ingest import read_table, spark_ingest

    report = spark_ingest(telemetry.otlp, str(spark_lake), spark=spark)
    assert {f.status for f in report.files} == {"skipped"}
    # Spark reads the lake DuckDB wrote: same counts and the same total cost
    calls = read_table(spark, str(duckdb_lake), "llm_calls")
    assert calls.count() == lake_counts(duckdb_lake)["llm_calls"]
    cost = calls.agg({"cost_usd": "sum"}).collect()[0][0]
    assert cost == pytest.approx(
        lake_query("SELECT sum(cost_usd) AS c FROM llm_calls", lake=duckdb_lake)["c"][0], rel=1e-12
    )
    assert [f.name for f in calls.schema.fields] == [*LAKE_TABLES["llm_calls"].column_names, "date"]


def test_spark_rollups_equal_duckdb_rollups(spark_lake: Path, duckdb_lake: Path) -> None:
    for table in ("llm_rollup_hourly", "llm_rollup_daily"):
        rows = _same(
            f"SELECT * EXCLUDE (date) FROM {table} ORDER BY bucket, dimension, value",
            duckdb_lake,
            spark_lake,
        )
        assert set(rows["dimension"]) == set(ROLLUP_DIMENSIONS)
    daily = lake_query(
        "SELECT sum(requests) AS n, sum(cost_usd) AS c FROM llm_rollup_daily WHERE dimension = 'all'",
        lake=spark_lake,
    )
    raw = lake_query("SELECT count(*) AS n, sum(cost_usd) AS c FROM llm_calls", lake=spark_lake)
    assert int(daily["n"][0]) == int(raw["n"][0])
    assert float(daily["c"][0]) == pytest.approx(float(raw["c"][0]), rel=1e-9)


def test_spark_forecasts_and_scores_equal_in_process(
    spark: Any, spark_lake: Path, duckdb_lake: Path
) -> None:
    series = scaleout.rollup_series(lake=str(duckdb_lake), engine="duckdb", dimension="provider")
    pd.testing.assert_frame_equal(
        series,
        scaleout.rollup_series(lake=str(spark_lake), engine="spark", dimension="provider"),
        check_dtype=False,
    )
    # two series long enough to fit, one too short (the forecaster skips it on both engines)
    some = series[
        series["unique_id"].isin(["provider=openai", "provider=anthropic", "provider=aws"])
    ]
    local = scaleout.forecast(some, engine="duckdb", n_jobs=1, **FORECAST)
    fanned = scaleout.forecast(some, engine="spark", **FORECAST)
    assert sorted(set(fanned["unique_id"])) == ["provider=anthropic", "provider=openai"]
    pd.testing.assert_frame_equal(local, fanned, check_dtype=False, rtol=1e-6, atol=1e-6)
    assert np.isfinite(fanned["yhat"]).all()

    scores_local = scaleout.score(series, engine="duckdb")
    scores_spark = scaleout.score(series, engine="spark")
    pd.testing.assert_frame_equal(scores_local, scores_spark, check_dtype=False)
    assert len(scores_spark) == len(series)


def test_cli_runs_on_the_spark_engine(
    spark: Any,
    spark_lake: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lake = tmp_path / "lake"
    shutil.copytree(spark_lake, lake)
    monkeypatch.setenv("LUMINA_ENGINE", "spark")
    out = tmp_path / "scores.csv"
    args = ["lake", "anomaly", "--lake", str(lake), "--dimension", "region"]
    assert main([*args, "-o", str(out)]) == 0
    scores = pd.read_csv(out)
    assert set(scores.columns) == set(LAKE_TABLES["anomalies"].column_names)
    assert scores["unique_id"].str.startswith("region=").all()
    assert lake_counts(lake)["anomalies"] == len(scores)
    assert read_manifest(lake)["tables"]["anomalies"]["rows"] == len(scores)
    assert read_manifest(lake)["updated_by"] == "spark"
    capsys.readouterr()
    assert main(args) == 0  # the same run again adds nothing
    assert "stored 0 new score rows" in capsys.readouterr().out
    assert lake_counts(lake)["anomalies"] == len(scores)


# --------------------------------------------------------------------------- tenant layout
def test_both_engines_write_and_read_the_same_tenant_folders(
    spark: Any, spark_lake: Path, duckdb_lake: Path, tmp_path: Path
) -> None:
    from pyspark.sql import functions as F

    from lumina_analytics.spark.ingest import read_table
    from lumina_analytics.spark.jobs import spark_append

    # ingestion: the same date/tenant folders whichever engine wrote them
    def layout(lake: Path) -> set[str]:
        return {str(p.parent.relative_to(lake)) for p in (lake / "llm_calls").rglob("*.parquet")}

    assert layout(spark_lake) == layout(duckdb_lake)
    assert all(f.startswith("tenant=") for f in tenant_folders(spark_lake))
    # odd tenant values: Hive escaping on both sides, '' and NULL in Hive's NULL folder
    by_duck, by_spark = tmp_path / "duck", tmp_path / "spark"
    append_rows(odd_calls(), "llm_calls", by_duck)
    assert spark_append(odd_calls(), "llm_calls", str(by_spark), spark=spark) == len(ODD_TENANTS)
    assert tenant_folders(by_duck) == tenant_folders(by_spark) == ODD_FOLDERS
    expected = [None if t in (None, "") else t for t in ODD_TENANTS]
    for lake in (by_duck, by_spark):
        rows = read_table(spark, str(lake), "llm_calls").orderBy("trace_id").collect()
        assert [r["tenant"] for r in rows] == expected  # Spark reads either engine's folders
        got = lake_query("SELECT tenant FROM llm_calls ORDER BY trace_id", lake=lake)["tenant"]
        assert [None if pd.isna(t) else t for t in got] == expected  # and so does DuckDB
    # a tenant filter is a partition filter: other tenants' files are never opened
    calls = read_table(spark, str(by_duck), "llm_calls")
    only = calls.filter(F.col("tenant") == "a/b")
    plan = only._jdf.queryExecution().executedPlan().toString()
    assert "PartitionFilters: [" in plan and "tenant" in plan.split("PartitionFilters: [")[1]
    next((by_duck / "llm_calls").rglob("tenant=ü/*.parquet")).write_bytes(b"not parquet")
    assert only.count() == 1
    with pytest.raises(Exception, match=r"(?i)parquet"):
        read_table(spark, str(by_duck), "llm_calls").count()


def test_spark_reads_a_date_only_lake_and_refuses_to_append(
    spark: Any, duckdb_lake: Path, telemetry: Any, tmp_path: Path
) -> None:
    from lumina_analytics.lake import LakeError
    from lumina_analytics.spark.ingest import read_table, spark_ingest

    lake = tmp_path / "lake"
    shutil.copytree(duckdb_lake, lake)
    make_old_layout(lake)
    calls = read_table(spark, str(lake), "llm_calls")
    assert [f.name for f in calls.schema.fields] == [*LAKE_TABLES["llm_calls"].column_names, "date"]
    tenants = {r["tenant"]: r["count"] for r in calls.groupBy("tenant").count().collect()}
    sql = "SELECT tenant, count(*) AS n FROM llm_calls GROUP BY 1"
    assert tenants == dict(lake_query(sql, lake=duckdb_lake).itertuples(index=False))
    with pytest.raises(LakeError, match="older lake layout"):
        spark_ingest(telemetry.otlp, str(lake), spark=spark)


# --------------------------------------------------------------------------- results in the lake
def test_forecasts_and_scores_stored_by_spark_equal_duckdb(
    spark: Any, duckdb_lake: Path, tmp_path: Path
) -> None:
    series = scaleout.rollup_series(lake=str(duckdb_lake), engine="duckdb", dimension="provider")
    some = series[series["unique_id"].isin(["provider=openai", "provider=anthropic"])]
    metric = "llm_rollup_hourly.requests"
    lakes = {}
    for engine in ("duckdb", "spark"):
        lake = tmp_path / engine
        shutil.copytree(duckdb_lake, lake)
        lakes[engine] = lake
        fc = scaleout.forecast(some, engine=engine, n_jobs=1, **FORECAST)
        rows = scaleout.forecast_rows(fc, metric=metric, cutoff=some["ds"].max(), created_at=NOW)
        assert scaleout.save_results(rows, "forecasts", lake=str(lake), engine=engine) == len(rows)
        assert scaleout.save_results(rows, "forecasts", lake=str(lake), engine=engine) == 0
        sc = scaleout.score(some, engine=engine)
        srows = scaleout.score_rows(sc, metric=metric, created_at=NOW)
        assert scaleout.save_results(srows, "anomalies", lake=str(lake), engine=engine) == len(sc)
        assert scaleout.save_results(srows, "anomalies", lake=str(lake), engine=engine) == 0
        assert read_manifest(lake)["tables"]["forecasts"]["rows"] == len(rows)
    for table, tol in (("forecasts", 1e-6), ("anomalies", 1e-9)):
        sql = f"SELECT * FROM {table} ORDER BY unique_id, ds"
        left, right = lake_query(sql, lake=lakes["duckdb"]), lake_query(sql, lake=lakes["spark"])
        assert len(left) > 0
        pd.testing.assert_frame_equal(left, right, check_dtype=False, rtol=tol, atol=tol)
    days = {p.parent.name for p in (lakes["spark"] / "forecasts").rglob("*.parquet")}
    assert days == {f"date={some['ds'].max():%Y-%m-%d}"}  # partitioned by the cutoff's date
