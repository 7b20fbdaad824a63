"""The Spark session the engine uses: local mode here, whatever ``spark-submit`` gives on a cluster.

:func:`spark_session` returns the active session when one exists (``spark-submit``, a
notebook on Databricks/EMR, the test fixture) and otherwise starts ``local[N]`` with settings
that make results match DuckDB: UTC session time zone, Arrow transfer for pandas UDFs, naive
timestamps (``TIMESTAMP_NTZ``, the lake's ``TIMESTAMP``) and dynamic partition overwrite.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd

from lumina_analytics.errors import LuminaError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: Spark SQL settings every lumina job relies on (applied to an existing session too).
SESSION_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "true",
}


#: PySpark 4.3 warns on every pandas conversion that pandas 3 is "not yet fully supported";
#: the equality tests (tests/spark) check the results the engine relies on.
PANDAS_WARNING = "PySpark does not yet fully support pandas"


class SparkUnavailableError(LuminaError):
    """PySpark or a Java runtime is missing."""


def java_available() -> bool:
    """Whether a Java runtime Spark can use is on this machine (``JAVA_HOME`` or ``java``)."""
    home = os.environ.get("JAVA_HOME")
    if home and os.path.exists(os.path.join(home, "bin", "java")):
        return True
    return shutil.which("java") is not None


def spark_session(
    master: str | None = None,
    app_name: str = "lumina-analytics",
    shuffle_partitions: int | None = None,
    conf: dict[str, Any] | None = None,
) -> SparkSession:
    """The active Spark session, or a new one on ``master`` (default ``local[2]``).

    ``LUMINA_SPARK_MASTER`` overrides the default master; under ``spark-submit`` the master
    it was given is kept. ``shuffle_partitions`` defaults
    to twice the default parallelism (Spark's 200 is far too many for one machine).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - pyspark is pinned in requirements.lock
        raise SparkUnavailableError(
            "the Spark engine needs pyspark (pip install pyspark, see requirements.lock)"
        ) from exc
    warnings.filterwarnings("ignore", message=PANDAS_WARNING, category=FutureWarning)
    active = SparkSession.getActiveSession()
    if active is None:
        if not java_available():
            raise SparkUnavailableError(
                "the Spark engine needs a Java 17+ runtime: install one (apt-get install -y "
                "openjdk-17-jre-headless) or set JAVA_HOME"
            )
        master = master or os.environ.get("LUMINA_SPARK_MASTER")
        builder = SparkSession.builder.appName(app_name)
        if "PYSPARK_GATEWAY_PORT" not in os.environ:
            # Our own JVM (not spark-submit, which sets master, memory and Python itself):
            # local mode, workers on this interpreter (the project's venv), no web UI.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
            builder = (
                builder.master(master or "local[2]")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.driver.memory", os.environ.get("LUMINA_SPARK_DRIVER_MEMORY", "2g"))
                .config("spark.python.worker.reuse", "true")
            )
        elif master is not None:
            builder = builder.master(master)
        for key, value in {**SESSION_CONF, **(conf or {})}.items():
            builder = builder.config(key, value)
        active = builder.getOrCreate()
        active.sparkContext.setLogLevel("ERROR")
    else:
        for key, value in {**SESSION_CONF, **(conf or {})}.items():
            active.conf.set(key, str(value))
    parts = shuffle_partitions or 2 * active.sparkContext.defaultParallelism
    active.conf.set("spark.sql.shuffle.partitions", str(parts))
    return active


@contextlib.contextmanager
def pandas_interop() -> Iterator[None]:
    """Silence PySpark's pandas-3 notices (version check, ``copy=`` keyword) around a conversion.

    Under ``-W error`` (the test suite) they would otherwise abort Arrow conversions whose
    results the equality tests check.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=PANDAS_WARNING, category=FutureWarning)
        warnings.filterwarnings("ignore", message="The copy keyword is deprecated")
        yield


def to_pandas(frame: DataFrame) -> pd.DataFrame:
    """``frame.toPandas()`` inside :func:`pandas_interop`."""
    with pandas_interop():
        return frame.toPandas()
