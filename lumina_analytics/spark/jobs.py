"""Spark jobs over the lake: the ``llm_calls`` rollups and per-series forecasting/anomaly fan-out.

* :func:`spark_rollups` computes the hourly and daily rollups of
  :mod:`lumina_analytics.ops.rollups` (same dimensions, same metrics, exact
  ``percentile`` = DuckDB's ``quantile_cont``) from the lake's ``llm_calls`` and rewrites the
  lake's rollup tables.
* :func:`spark_forecast` and :func:`spark_score` fan a long ``unique_id, ds, y`` frame out
  with ``groupBy("unique_id").applyInPandas(...)``: each group runs the package's
  :class:`~lumina_analytics.forecasting.ProphetForecaster` (``n_jobs=1``; Spark is the pool)
  or :func:`lumina_analytics.anomaly.score_frame`, so no model code is duplicated and each
  series gets exactly the fit it gets in-process (the forecaster fits series independently).
* :func:`spark_append` writes result rows (``forecasts``, ``anomalies``) into the lake,
  skipping keys already there, as :func:`lumina_analytics.lake.append_rows` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from lumina_analytics.lake import resolve_lake
from lumina_analytics.ops.rollups import GRAINS, ROLLUP_DIMENSIONS
from lumina_analytics.spark.ingest import (
    append_new,
    count_rows,
    lake_has,
    read_table,
    spark_schema,
    to_lake_rows,
    write_manifest_any,
    write_table,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: Spark DDL of the fan-out outputs (the in-process frames' columns, naive UTC timestamps)
FORECAST_SCHEMA = (
    "unique_id string, ds timestamp_ntz, yhat double, yhat_lower double, yhat_upper double, "
    "model string"
)
SCORE_SCHEMA = (
    "unique_id string, ds timestamp_ntz, score double, is_anomaly boolean, detector string"
)
FORECAST_COLUMNS = tuple(c.split()[0] for c in FORECAST_SCHEMA.split(", "))
SCORE_COLUMNS = tuple(c.split()[0] for c in SCORE_SCHEMA.split(", "))


def _rollup_frame(calls: DataFrame, now: datetime) -> DataFrame:
    """Both grains and every dimension in ONE aggregation (calls exploded to grain x dimension)."""
    from pyspark.sql import functions as F

    keys = F.explode(
        F.array(
            *[
                F.struct(
                    F.lit(grain).alias("grain"),
                    F.date_trunc(grain, F.col("ts")).alias("bucket"),
                    F.lit(dim).alias("dimension"),
                    (
                        F.lit("*")
                        if dim == "all"
                        else F.coalesce(F.col(dim).cast("string"), F.lit("(none)"))
                    ).alias("value"),
                )
                for grain in GRAINS
                for dim in ROLLUP_DIMENSIONS
            ]
        )
    ).alias("k")
    exploded = calls.select(
        keys, "status", "latency_ms", "input_tokens", "output_tokens", "cost_usd"
    )
    return (
        exploded.groupBy("k.grain", "k.bucket", "k.dimension", "k.value")
        .agg(
            F.count(F.lit(1)).alias("requests"),
            F.count(F.when(F.col("status") == "error", 1)).alias("errors"),
            F.sum("latency_ms").alias("latency_sum_ms"),
            F.percentile("latency_ms", 0.5).alias("latency_p50_ms"),
            F.percentile("latency_ms", 0.95).alias("latency_p95_ms"),
            F.percentile("latency_ms", 0.99).alias("latency_p99_ms"),
            F.max("latency_ms").alias("latency_max_ms"),
            F.sum("input_tokens").alias("input_tokens"),
            F.sum("output_tokens").alias("output_tokens"),
            F.sum("cost_usd").alias("cost_usd"),
        )
        .withColumn("refreshed_at", F.lit(now).cast("timestamp_ntz"))
        .withColumn("date", F.to_date("bucket"))
    )


def spark_rollups(
    lake: str | None = None,
    *,
    spark: SparkSession | None = None,
    now: datetime | None = None,
) -> dict[str, int]:
    """Recompute the hourly and daily rollups from the lake's ``llm_calls``; rows per table.

    The rollup tables are rewritten whole (a lake keeps its raw rows, so every bucket is
    recomputed from them; re-running never double counts).
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from lumina_analytics.spark.session import spark_session

    spark = spark or spark_session()
    root = resolve_lake(lake)
    now = now or datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    rolled = _rollup_frame(read_table(spark, root, "llm_calls"), now).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    counts: dict[str, int] = {}
    try:
        for grain, table in GRAINS.items():
            schema = spark_schema(table)
            frame = rolled.filter(F.col("grain") == grain).select(
                *[F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields]
            )
            counts[table] = frame.count()
            write_table(frame, root, table, mode="overwrite")
    finally:
        rolled.unpersist()
    write_manifest_any(spark, root, counts)
    return counts


def _as_spark(spark: SparkSession, frame: DataFrame | pd.DataFrame) -> DataFrame:
    if isinstance(frame, pd.DataFrame):
        from lumina_analytics.schema import validate_long
        from lumina_analytics.spark.session import pandas_interop

        long = validate_long(frame)[["unique_id", "ds", "y"]].astype({"y": "float64"})
        with pandas_interop():
            return spark.createDataFrame(long)
    return frame.select("unique_id", "ds", "y")


def _forecast_group(params: Mapping[str, Any]) -> Any:
    def run(pdf: pd.DataFrame) -> pd.DataFrame:
        from lumina_analytics.forecasting import ProphetForecaster

        model = ProphetForecaster(**{**params, "n_jobs": 1})
        out = model.fit_predict(pdf[["unique_id", "ds", "y"]])
        return out[list(FORECAST_COLUMNS)]

    return run


def spark_forecast(
    frame: DataFrame | pd.DataFrame,
    *,
    spark: SparkSession | None = None,
    **params: Any,
) -> DataFrame:
    """Forecast every series of a long frame, one ``applyInPandas`` group per ``unique_id``.

    ``params`` are :class:`ProphetForecaster` parameters (``freq``, ``horizon``, ``level``...).
    Returns a Spark DataFrame ``unique_id, ds, yhat, yhat_lower, yhat_upper, model``; series
    the forecaster skips (too short) are absent, as in-process.
    """
    from lumina_analytics.forecasting import ProphetForecaster
    from lumina_analytics.spark.session import spark_session

    ProphetForecaster(**params)._config()  # bad parameters fail here, not in a worker
    spark = spark or spark_session()
    data = _as_spark(spark, frame)
    return data.groupBy("unique_id").applyInPandas(_forecast_group(params), FORECAST_SCHEMA)


def spark_score(
    frame: DataFrame | pd.DataFrame,
    *,
    spark: SparkSession | None = None,
    detector: str = "ensemble",
    sensitivity: float = 1.0,
) -> DataFrame:
    """Causal anomaly scores of every series (:func:`lumina_analytics.anomaly.score_frame`).

    Returns a Spark DataFrame ``unique_id, ds, score, is_anomaly, detector``.
    """
    from lumina_analytics.anomaly import make_detector
    from lumina_analytics.errors import LuminaError
    from lumina_analytics.spark.session import spark_session

    make_detector(detector)  # an unknown name fails here, not in a worker
    if not 0.0 < sensitivity <= 1.0:
        raise LuminaError(f"sensitivity must be in (0, 1], got {sensitivity}")
    spark = spark or spark_session()

    def run(pdf: pd.DataFrame) -> pd.DataFrame:
        from lumina_analytics.anomaly import score_frame

        return score_frame(pdf, detector, sensitivity)[list(SCORE_COLUMNS)]

    return _as_spark(spark, frame).groupBy("unique_id").applyInPandas(run, SCORE_SCHEMA)


def spark_rollup_series(
    lake: str | None = None,
    *,
    spark: SparkSession | None = None,
    dimension: str = "provider",
    metric: str = "requests",
    grain: str = "hour",
) -> DataFrame:
    """Rollup rows of the lake as a long ``unique_id, ds, y`` Spark frame (``dim=value`` ids).

    The Spark counterpart of :func:`lumina_analytics.ops.rollups.rollup_long`.
    """
    from pyspark.sql import functions as F

    from lumina_analytics.lake import check_rollup_args
    from lumina_analytics.spark.session import spark_session

    check_rollup_args(dimension, metric, grain)
    spark = spark or spark_session()
    rows = read_table(spark, resolve_lake(lake), GRAINS[grain]).filter(
        F.col("dimension") == dimension
    )
    return rows.select(
        F.concat(F.col("dimension"), F.lit("="), F.col("value")).alias("unique_id"),
        F.col("bucket").alias("ds"),
        F.col(metric).cast("double").alias("y"),
    )


def spark_append(
    rows: DataFrame | pd.DataFrame,
    table: str,
    lake: str | None = None,
    *,
    spark: SparkSession | None = None,
) -> int:
    """Append result rows to a lake table with Spark, skipping keys already there; rows written.

    ``rows`` is a Spark or pandas frame with (some of) the table's columns, e.g. the output
    of :func:`spark_forecast` plus ``cutoff``, ``metric`` and ``created_at``. A key already in
    the lake, or repeated in ``rows``, is written once (the lake's ``INSERT OR IGNORE``), so
    re-running the same cutoff adds nothing. The manifest's row count is updated.
    """
    from lumina_analytics.spark.session import spark_session

    spark = spark or spark_session()
    root = resolve_lake(lake)
    before = count_rows(spark, root, table) if lake_has(spark, root, table) else 0
    after = append_new(spark, root, table, to_lake_rows(spark, rows, table))
    write_manifest_any(spark, root, {table: after})
    return after - before
