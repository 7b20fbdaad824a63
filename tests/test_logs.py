"""Log search, span <-> log navigation and Drain3 clustering."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lumina_analytics.logs import (
    LogClusterer,
    logs_for_span,
    new_or_surging_templates,
    search_logs,
    span_for_log,
    template_counts,
)
from lumina_analytics.warehouse import Warehouse, append_frame

T0 = pd.Timestamp("2026-01-01")


def corpus() -> pd.DataFrame:
    rows = []
    for i in range(40):
        rows.append(
            (
                T0 + pd.Timedelta(minutes=i),
                "INFO",
                "api",
                f"request {i} served in {10 + i} ms",
                f"t{i}",
                f"s{i}",
            )
        )
        if i % 5 == 0:
            rows.append(
                (
                    T0 + pd.Timedelta(minutes=i, seconds=1),
                    "ERROR",
                    "db",
                    f"connection to 10.0.0.{i % 7}:5432 refused after {i} retries",
                    f"t{i}",
                    f"s{i}",
                )
            )
    for i in range(30, 40):  # a new error appears late and repeats
        rows.append(
            (
                T0 + pd.Timedelta(minutes=i, seconds=2),
                "ERROR",
                "api",
                f"timeout calling tool crm for user {1000 + i}",
                f"t{i}",
                f"s{i}",
            )
        )
    return pd.DataFrame(rows, columns=["ts", "severity", "service", "body", "trace_id", "span_id"])


def test_clustering_groups_variants():
    logs = corpus()
    c = LogClusterer().transform(logs)
    assert c["template"].nunique() == 3
    assert sorted(c.groupby("template").size()) == [8, 10, 40]
    err = c[c["service"] == "db"]["template"].unique()
    assert len(err) == 1 and "refused" in err[0]
    assert not list(Path.cwd().glob("drain3*"))  # nothing persisted in the working directory


def test_predict_and_counts():
    logs = corpus()
    cl = LogClusterer().fit(logs["body"])
    labels = cl.predict(["request 999 served in 5 ms", "something completely different here"])
    assert labels[0] != -1 and labels[1] == -1
    counts = template_counts(cl.transform(logs), freq="10min")
    assert counts["count"].sum() == len(logs)


def test_new_and_surging():
    c = LogClusterer().transform(corpus())
    res = new_or_surging_templates(c, T0 + pd.Timedelta(minutes=30), T0 + pd.Timedelta(minutes=40))
    assert len(res) == 1
    assert res.iloc[0]["status"] == "new" and "timeout" in res.iloc[0]["template"]


@pytest.fixture
def wh(tmp_path) -> Warehouse:
    w = Warehouse(tmp_path / "w.duckdb")
    logs = corpus().assign(
        attributes="{}",
        source_sha256="x",
        source_position=lambda d: [f"row {i}" for i in range(len(d))],
    )
    spans = pd.DataFrame(
        {
            "trace_id": ["t5"],
            "span_id": ["s5"],
            "name": ["GET /x"],
            "service": ["api"],
            "start_ts": [T0],
            "end_ts": [T0],
            "duration_ms": [1.0],
        }
    )
    with w.writer() as con:
        append_frame(con, "logs", logs)
        append_frame(con, "spans", spans)
    return w


def test_search_filters(wh):
    assert len(search_logs(wh, text="REFUSED")) == 8
    assert len(search_logs(wh, regex=r"10\.0\.0\.[0-3]:")) == 5
    assert len(search_logs(wh, min_severity="error", service="api")) == 10
    assert len(search_logs(wh, start=T0, end=T0 + pd.Timedelta(minutes=2))) == 3
    assert len(search_logs(wh, text="50%_")) == 0  # wildcards in text are literal


def test_span_log_navigation(wh):
    logs = logs_for_span(wh, "t5", "s5")
    assert list(logs["severity"]) == ["INFO", "ERROR"]
    span = span_for_log(wh, logs["trace_id"].iloc[0], logs["span_id"].iloc[0])
    assert span["name"].iloc[0] == "GET /x"
