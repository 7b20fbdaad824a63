"""Real public traces from ../shared/data: Zipkin v2 test data and TrainTicket span CSVs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from lumina_analytics.config import project_root
from lumina_analytics.ingest import ingest_paths
from lumina_analytics.warehouse import Warehouse

DATA = project_root().parent / "shared" / "data" / "traces"
ZIPKIN = DATA / "zipkin"
TRAINTICKET = DATA / "trainticket" / "trace"

pytestmark = pytest.mark.shared_data

_DANGLING = """
SELECT s.trace_id, count(*) AS spans,
       count(*) FILTER (WHERE s.parent_span_id IS NOT NULL AND p.span_id IS NULL) AS dangling,
       count(*) FILTER (WHERE s.parent_span_id IS NULL) AS roots
FROM spans s LEFT JOIN spans p ON p.trace_id = s.trace_id AND p.span_id = s.parent_span_id
GROUP BY s.trace_id
"""


@pytest.mark.skipif(not ZIPKIN.is_dir(), reason=f"{ZIPKIN} not present (shared data absent)")
def test_all_zipkin_files_load_with_trees_intact(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "z.duckdb")
    report = ingest_paths([ZIPKIN], wh, progress=False)
    assert report.ok, str(report)
    assert len(report.files) == 10 and {f.format for f in report.files} == {"zipkin"}
    trees = wh.query(_DANGLING).set_index("trace_id")
    assert (trees["roots"] == 1).all()
    # messaging2.json references two parents that are not in the file: kept as orphans
    dangling = trees[trees["dangling"] > 0]
    assert list(dangling.index) == ["00000000000000000d1a94ebc9256244"]
    # every parent id recorded in the source is resolvable or kept verbatim
    raw_ids = {
        (s.get("parentId")) for f in ZIPKIN.glob("*.json") for s in json.loads(f.read_text())
    }
    assert "0153a596db406c83" in raw_ids

    # clock skew: timestamps are kept as recorded, the shared server half is a child of its client
    skew = wh.query(
        "SELECT span_id, parent_span_id, service, start_ts, attributes FROM spans "
        "WHERE trace_id = '00000000000000001e223ff1f80f1c69'"
    ).set_index("span_id")
    client = skew.loc["74280ae0c10d8062"]
    server = skew[skew["attributes"].str.contains("zipkin.shared")].iloc[0]
    assert client["service"] == "servicea" and server["service"] == "serviceb"
    assert server["parent_span_id"] == "74280ae0c10d8062"
    assert server["start_ts"] < client["start_ts"]  # the skew survives
    assert skew.loc["43210ae0c10d1234"]["parent_span_id"] == server.name
    # re-ingest adds nothing
    again = ingest_paths([ZIPKIN], wh, progress=False)
    assert {f.status for f in again.files} == {"skipped"}


@pytest.mark.skipif(not TRAINTICKET.is_dir(), reason=f"{TRAINTICKET} not present")
def test_trainticket_csv_through_builtin_mapping(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "t.duckdb")
    files = sorted(TRAINTICKET.glob("*.csv"))[:3]
    report = ingest_paths(files, wh, progress=False)
    assert report.ok, str(report)
    assert {f.format for f in report.files} == {"csv:trainticket"}
    # traces straddle the minute files: overlapping spans are stored once
    src = pd.concat([pd.read_csv(f, usecols=["TraceID", "SpanID"]) for f in files])
    expected = len(src.drop_duplicates())
    assert sum(f.rows_loaded["spans"] for f in report.files) == expected
    assert wh.table_counts()["spans"] == expected
    assert sum(f.rows_quarantined for f in report.files) == 0
    trees = wh.query(_DANGLING)
    assert int(trees["dangling"].sum()) == 0
    row = wh.query(
        "SELECT service, resource, parent_span_id, duration_ms FROM spans "
        "WHERE resource LIKE '%ts-gateway-service-6f6cfc45b-d9pnv%' AND parent_span_id IS NULL "
        "LIMIT 1"
    )
    assert row["service"][0] == "ts-gateway-service"
    assert json.loads(row["resource"][0])["k8s.pod.name"] == "ts-gateway-service-6f6cfc45b-d9pnv"
    services = set(wh.query("SELECT DISTINCT service FROM spans")["service"])
    assert all(not s[-1].isdigit() or s.endswith("service") for s in services)
    assert "ts-order-service" in services
