"""The Spark engine (``engine: spark``): lake ingestion, rollups and per-series fan-out.

Every job reads and writes the Parquet lake of :mod:`lumina_analytics.lake` and calls the
same package code the DuckDB engine calls (ingest parsing and pricing, the rollup definitions,
:class:`~lumina_analytics.forecasting.ProphetForecaster`, the anomaly detectors), so both
engines give the same answers. PySpark is imported only when a Spark function runs.
"""

from __future__ import annotations
