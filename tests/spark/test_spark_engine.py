"""The Spark engine (local[2]) gives the same answers as the DuckDB engine on the same data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lumina_analytics import scaleout
from lumina_analytics.cli import main
from lumina_analytics.lake import LAKE_TABLES, lake_counts, lake_query, read_manifest
from lumina_analytics.ops.rollups import ROLLUP_DIMENSIONS

pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)

DATA_TABLES = ("spans", "llm_calls", "logs")
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
    spark: Any, spark_lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LUMINA_ENGINE", "spark")
    out = tmp_path / "scores.csv"
    args = ["lake", "anomaly", "--lake", str(spark_lake), "--dimension", "region", "-o", str(out)]
    assert main(args) == 0
    scores = pd.read_csv(out)
    assert set(scores.columns) == {"unique_id", "ds", "score", "is_anomaly", "detector"}
    assert scores["unique_id"].str.startswith("region=").all()
