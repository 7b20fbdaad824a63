"""Fixtures of the scale-out tests: small simulated telemetry, lakes, and ONE Spark session.

The Spark session (``local[2]``) starts once per test run and stops at its end; tests that
need it skip with a reason when PySpark or a Java runtime is missing (``.ci/run`` installs
``openjdk-17-jre-headless`` when ``java`` is absent).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

#: fixed "now" for rollup refreshed_at, so both engines write identical rows
NOW = datetime(2026, 11, 1)


@dataclass(frozen=True)
class Telemetry:
    """Simulated telemetry plus a file of bad and repeated records."""

    paths: list[Path]
    bad_file: Path

    @property
    def otlp(self) -> list[Path]:
        """The OTLP/JSON inputs (traces, logs and the bad file) the lake tests ingest."""
        return [p for p in self.paths if p.name in ("traces", "logs", "extra")]


def _bad_file(traces: Path, out: Path) -> Path:
    """A JSON Lines file: a span repeated from another file, a broken line, an in-file duplicate."""
    first = sorted(traces.glob("*.jsonl"))[0].read_text().splitlines()[0]
    doc: dict[str, Any] = json.loads(first)
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"] = spans[:2] + spans[:1]
    out.write_text(json.dumps(doc) + "\n{not json\n")
    return out


@pytest.fixture(scope="session")
def telemetry(tmp_path_factory: pytest.TempPathFactory) -> Telemetry:
    """Four simulated days (traces, metrics, logs, CSVs) and ``extra/bad.otlp.jsonl``."""
    from lumina_analytics.simulate import simulate

    root = tmp_path_factory.mktemp("scaleout")
    result = simulate(days=4, scale=0.08, seed=11, out=root / "telemetry")
    extra = root / "extra"
    extra.mkdir()
    bad = _bad_file(root / "telemetry" / "traces", extra / "bad.otlp.jsonl")
    return Telemetry([*result.telemetry_paths(), extra], bad)


@pytest.fixture(scope="session")
def reference_warehouse(telemetry: Telemetry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same telemetry loaded the ordinary way: ``ingest_paths`` into a DuckDB file."""
    from lumina_analytics.ingest import ingest_paths

    path = tmp_path_factory.mktemp("reference") / "lumina.duckdb"
    report = ingest_paths(telemetry.paths, str(path), progress=False)
    assert report.ok, str(report)
    return path


@pytest.fixture(scope="session")
def duckdb_lake(telemetry: Telemetry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The OTLP telemetry ingested straight into a lake by the DuckDB engine, rollups refreshed."""
    from lumina_analytics import scaleout

    lake = tmp_path_factory.mktemp("lake-duckdb") / "lake"
    report = scaleout.ingest(telemetry.otlp, lake=str(lake), engine="duckdb")
    assert report.ok, str(report)
    scaleout.rollups(lake=str(lake), engine="duckdb", now=NOW)
    return lake


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One ``local[2]`` Spark session for the whole run (skips without PySpark or Java)."""
    pytest.importorskip("pyspark", reason="pyspark is not installed (see requirements.lock)")
    from lumina_analytics.spark.session import java_available, spark_session

    if not java_available():
        pytest.skip("no Java runtime for Spark (apt-get install -y openjdk-17-jre-headless)")
    session = spark_session("local[2]", app_name="lumina-tests", shuffle_partitions=2)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_lake(telemetry: Telemetry, spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The OTLP telemetry ingested into a lake by the Spark engine, rollups refreshed by Spark."""
    from lumina_analytics.spark.ingest import spark_ingest
    from lumina_analytics.spark.jobs import spark_rollups

    lake = tmp_path_factory.mktemp("lake-spark") / "lake"
    report = spark_ingest(telemetry.otlp, str(lake), spark=spark)
    assert report.ok, str(report)
    spark_rollups(str(lake), spark=spark, now=NOW)
    return lake


@pytest.fixture
def lake_copy(duckdb_lake: Path, tmp_path: Path) -> Path:
    """A private copy of the DuckDB-engine lake that a test may change."""
    dest = tmp_path / "lake"
    shutil.copytree(duckdb_lake, dest)
    return dest
