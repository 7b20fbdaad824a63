"""Engine dispatch for the lake: the ``engine`` setting picks DuckDB or Spark.

``engine: duckdb`` (default) runs everything in this process (DuckDB over the lake, the
forecaster's process pool); ``engine: spark`` runs the same steps as Spark jobs
(:mod:`lumina_analytics.spark`). Both read and write the same lake and give the same answers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from lumina_analytics.config import ENGINES, get_settings
from lumina_analytics.errors import ConfigError


def resolve_engine(engine: str | None = None) -> str:
    """``engine`` if given, else the ``engine`` setting (``LUMINA_ENGINE``); validated."""
    name = engine or get_settings().engine
    if name not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {name!r}")
    return name


def ingest(
    paths: Sequence[str | os.PathLike[str]],
    *,
    lake: str | None = None,
    engine: str | None = None,
    price_overrides: str | Path | None = None,
) -> Any:
    """Load telemetry files into the lake; returns an ``IngestReport``."""
    if resolve_engine(engine) == "spark":
        from lumina_analytics.spark.ingest import spark_ingest

        return spark_ingest(paths, lake, price_overrides=price_overrides)
    from lumina_analytics.lake import ingest_to_lake

    return ingest_to_lake(paths, lake, price_overrides=price_overrides)


def rollups(
    *, lake: str | None = None, engine: str | None = None, now: datetime | None = None
) -> dict[str, int]:
    """Recompute the lake's hourly/daily ``llm_calls`` rollups; rows per table."""
    if resolve_engine(engine) == "spark":
        from lumina_analytics.spark.jobs import spark_rollups

        return spark_rollups(lake, now=now)
    from lumina_analytics.lake import lake_rollups

    return lake_rollups(lake, now=now)


def rollup_series(
    *,
    lake: str | None = None,
    engine: str | None = None,
    dimension: str = "provider",
    metric: str = "requests",
    grain: str = "hour",
) -> pd.DataFrame:
    """The lake's rollups of one dimension as a long ``unique_id, ds, y`` frame."""
    if resolve_engine(engine) == "spark":
        from lumina_analytics.spark.jobs import spark_rollup_series
        from lumina_analytics.spark.session import to_pandas

        frame = spark_rollup_series(lake, dimension=dimension, metric=metric, grain=grain)
        out = to_pandas(frame)
        out["ds"] = pd.to_datetime(out["ds"])
        return out.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    from lumina_analytics.lake import lake_rollup_series

    return lake_rollup_series(lake, dimension=dimension, metric=metric, grain=grain)


def forecast(
    frame: pd.DataFrame, *, engine: str | None = None, n_jobs: int | None = -1, **params: Any
) -> pd.DataFrame:
    """Forecast every series of a long frame: process pool (duckdb) or applyInPandas (spark)."""
    if resolve_engine(engine) == "spark":
        from lumina_analytics.spark.jobs import spark_forecast
        from lumina_analytics.spark.session import to_pandas

        out = to_pandas(spark_forecast(frame, **params))
        out["ds"] = pd.to_datetime(out["ds"]).astype("datetime64[ns]")
        return out.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    from lumina_analytics.forecasting import ProphetForecaster

    out = ProphetForecaster(**params, n_jobs=n_jobs).fit_predict(frame)
    return out.sort_values(["unique_id", "ds"]).reset_index(drop=True)


def score(
    frame: pd.DataFrame,
    *,
    engine: str | None = None,
    detector: str = "ensemble",
    sensitivity: float = 1.0,
) -> pd.DataFrame:
    """Causal anomaly scores of every series of a long frame, on the chosen engine."""
    if resolve_engine(engine) == "spark":
        from lumina_analytics.spark.jobs import spark_score
        from lumina_analytics.spark.session import to_pandas

        out = to_pandas(spark_score(frame, detector=detector, sensitivity=sensitivity))
        out["ds"] = pd.to_datetime(out["ds"])
        return out.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    from lumina_analytics.anomaly import score_frame

    out = score_frame(frame, detector, sensitivity)
    return out.sort_values(["unique_id", "ds"]).reset_index(drop=True)


def save_results(
    rows: pd.DataFrame, table: str, *, lake: str | None = None, engine: str | None = None
) -> int:
    """Append ``forecasts`` / ``anomalies`` rows to the lake, skipping keys already there.

    Returns the rows written (0 when every key was already in the lake: re-running the same
    cutoff never duplicates).
    """
    if resolve_engine(engine) == "spark":
        from lumina_analytics.spark.jobs import spark_append

        return spark_append(rows, table, lake)
    from lumina_analytics.lake import append_rows

    return append_rows(rows, table, lake)


def forecast_rows(
    forecast: pd.DataFrame,
    *,
    metric: str,
    cutoff: datetime,
    created_at: datetime | None = None,
) -> pd.DataFrame:
    """A forecast frame as ``forecasts`` rows of one metric (e.g. ``llm_rollup_hourly.requests``).

    The metric joins the model name (``ensemble:llm_rollup_hourly.requests``) because the
    table key is ``unique_id, ds, model, cutoff`` and the same series id (``provider=openai``)
    is forecast for several metrics and grains, as the warehouse's ``anomaly detect`` does
    for detectors.
    """
    rows = forecast[["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper", "model"]].copy()
    rows["model"] = rows["model"].astype(str) + f":{metric}"
    rows["cutoff"] = pd.Timestamp(cutoff)
    rows["metric"] = metric
    rows["created_at"] = created_at or datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    return rows


def score_rows(
    scores: pd.DataFrame, *, metric: str, created_at: datetime | None = None
) -> pd.DataFrame:
    """Anomaly scores as ``anomalies`` rows of one metric (detector ``ensemble:<metric>``)."""
    rows = scores[["unique_id", "ds", "score", "is_anomaly", "detector"]].copy()
    rows["detector"] = rows["detector"].astype(str) + f":{metric}"
    rows["metric"] = metric
    rows["created_at"] = created_at or datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    return rows
