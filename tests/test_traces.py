"""Trace trees, self time, critical path, bottlenecks, service graph, queries, load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lumina_analytics.traces import (
    agent_time_split,
    analyze_traces,
    bottlenecks,
    critical_path,
    load_distribution,
    n_plus_one,
    normalize_route,
    normalize_statement,
    query_analysis,
    service_graph,
    synthetic_spans,
)

T0 = pd.Timestamp("2026-01-01")


def sp(tid, sid, parent, svc, s, e, name="op", status="ok", attrs=None, resource=None, kind=None):
    return {
        "trace_id": tid,
        "span_id": sid,
        "parent_span_id": parent,
        "name": name,
        "kind": kind,
        "service": svc,
        "start_ts": T0 + pd.Timedelta(milliseconds=s),
        "end_ts": T0 + pd.Timedelta(milliseconds=e),
        "duration_ms": float(e - s),
        "status_code": status,
        "attributes": json.dumps(attrs or {}),
        "resource": json.dumps(resource or {}),
    }


@pytest.fixture
def tree() -> pd.DataFrame:
    # root a [0,100]; b [10,50] and c [20,90] overlap (parallel); d inside c;
    # e starts before its parent (clock skew) and is clipped to [0, 5].
    return pd.DataFrame(
        [
            sp("t1", "a", None, "gw", 0, 100),
            sp("t1", "b", "a", "svc1", 10, 50),
            sp("t1", "c", "a", "svc2", 20, 90),
            sp("t1", "d", "c", "db", 30, 40, status="error"),
            sp("t1", "e", "a", "svc1", -5, 5),
            # trace 2: the root is missing, x is an orphan; y is late past x's end (skew)
            sp("t2", "x", "gone", "s", 0, 10),
            sp("t2", "y", "x", "s", 2, 14),
        ]
    )


def by_id(a: pd.DataFrame) -> pd.DataFrame:
    return a.set_index(["trace_id", "span_id"])


def test_self_time_with_parallel_children_and_skew(tree):
    a = by_id(analyze_traces(tree))
    # a's children cover [0,5] u [10,90] = 85 ms -> 15 ms self time
    assert a.loc[("t1", "a"), "self_ms"] == pytest.approx(15.0)
    assert a.loc[("t1", "c"), "self_ms"] == pytest.approx(60.0)
    assert a.loc[("t1", "e"), "inclusive_ms"] == pytest.approx(5.0)  # clipped at parent start
    assert a.loc[("t1", "e"), "start_ms"] == pytest.approx(0.0)
    assert a.loc[("t2", "y"), "inclusive_ms"] == pytest.approx(8.0)  # clipped at parent end
    assert a.loc[("t2", "x"), "self_ms"] == pytest.approx(2.0)


def test_critical_path_is_last_finishing_chain(tree):
    a = by_id(analyze_traces(tree))
    on = a["on_critical_path"]
    assert on[("t1", "a")] and on[("t1", "c")] and on[("t1", "d")] and on[("t1", "e")]
    assert not on[("t1", "b")]  # overlapped by c, which finished later
    assert a.loc[("t1", "a"), "critical_ms"] == pytest.approx(100 - 70 - 5)
    # per trace the critical contributions add up to the root's duration
    sums = a.groupby(level="trace_id")["critical_ms"].sum()
    assert sums["t1"] == pytest.approx(100.0)
    assert sums["t2"] == pytest.approx(10.0)
    cp = critical_path(analyze_traces(tree), "t1")
    assert list(cp["span_id"]) == ["a", "e", "c", "d"]


def test_orphans_and_missing_roots(tree):
    a = by_id(analyze_traces(tree))
    assert a.loc[("t2", "x"), "is_orphan"] and a.loc[("t2", "x"), "is_root"]
    assert not a.loc[("t1", "b"), "is_orphan"]
    assert a.loc[("t2", "y"), "depth"] == 1


def test_orphan_subtree_does_not_steal_the_root():
    df = pd.DataFrame(
        [
            sp("t", "r", None, "gw", 0, 50),
            sp("t", "o", "lost", "x", 0, 500),
            sp("t", "k", "r", "y", 5, 20),
        ]
    )
    a = by_id(analyze_traces(df))
    assert a.loc[("t", "r"), "is_root"] and not a.loc[("t", "o"), "is_root"]
    assert a.loc[("t", "o"), "is_orphan"]
    assert a.loc[("t", "r"), "trace_duration_ms"] == pytest.approx(50.0)


def test_synthetic_traces_sum_and_skew_robust():
    s = synthetic_spans(300, seed=3, skew_share=0.3, orphan_share=0.05)
    a = analyze_traces(s)
    sums = a.groupby("trace_id")["critical_ms"].sum()
    root = a[a["is_root"]].set_index("trace_id")["inclusive_ms"]
    assert np.allclose(sums, root.reindex(sums.index), atol=1e-6)
    assert (a["self_ms"] >= 0).all() and (a["self_ms"] <= a["inclusive_ms"] + 1e-9).all()
    assert a["is_orphan"].sum() > 0


def test_bottlenecks_rank_llm_first():
    a = analyze_traces(synthetic_spans(200, seed=1))
    b = bottlenecks(a, top=5)
    assert b.iloc[0]["name"] == "chat gpt-4o"
    assert b["critical_share"].iloc[0] > 0.5
    assert set(b.columns) >= {"critical_share", "self_share", "rank_self"}


def test_agent_time_split_categories():
    a = analyze_traces(synthetic_spans(200, seed=2))
    split = agent_time_split(a).set_index("category")
    assert set(split.index) >= {"llm", "tool", "retrieval", "agent_code", "other"}
    assert split["share"].sum() == pytest.approx(1.0)
    assert split.loc["llm", "share"] > split.loc["tool", "share"]


def test_service_graph_numbers(tree):
    g = service_graph(analyze_traces(tree)).set_index(["client", "server"])
    assert g.loc[("gw", "svc1"), "calls"] == 2
    assert g.loc[("gw", "svc2"), "calls"] == 1
    assert g.loc[("svc2", "db"), "errors"] == 1
    assert g.loc[("svc2", "db"), "error_rate"] == pytest.approx(1.0)
    assert g.loc[("gw", "svc1"), "p50_ms"] == pytest.approx((40 + 5) / 2)
    assert g.loc[("user", "gw"), "calls"] == 1
    assert ("s", "s") not in g.index  # same-service parent/child is not an edge


def test_normalisers():
    assert (
        normalize_statement("SELECT * FROM t WHERE id = 42 AND n = 'bob'")
        == "SELECT * FROM t WHERE id = ? AND n = ?"
    )
    assert (
        normalize_statement("select x from t where id in (1, 2, 3)")
        == "select x from t where id in (?)"
    )
    assert normalize_route("https://h.example/v1/users/12345/orders?x=1") == "/v1/users/{id}/orders"


def test_n_plus_one_detection():
    s = synthetic_spans(50, seed=4, orphan_share=0.0)
    n1 = n_plus_one(s, min_repeats=5)
    assert len(n1) == 50  # one N+1 group per trace
    assert (n1["repeats"] == 10).all()
    assert (n1["parent_name"] == "execute_tool crm").all()
    q = query_analysis(s).set_index("statement")
    stmt = "SELECT * FROM items WHERE id = ?"
    assert q.loc[stmt, "calls_per_trace"] == pytest.approx(10.0)
    assert q.loc[stmt, "max_repeat_in_parent"] == 10


def test_load_distribution_imbalance():
    rows = []
    for i in range(60):
        inst = "i-1" if i % 4 else "i-2"  # i-1 takes 3/4 of the requests
        rows.append(
            sp(
                f"t{i}",
                "s",
                None,
                "api",
                i * 1000,
                i * 1000 + 50,
                kind="server",
                resource={"service.instance.id": inst, "cloud.region": "eu"},
            )
        )
    per_t, per_w = load_distribution(pd.DataFrame(rows), by="instance", freq="1min")
    one = per_t.set_index("target")
    assert one.loc["i-1", "requests"] == 45 and one.loc["i-2", "requests"] == 15
    assert one.loc["i-1", "over_share"] and not one.loc["i-2", "over_share"]
    assert per_w["max_over_mean"].iloc[0] == pytest.approx(1.5)
    assert per_w["cv"].iloc[0] == pytest.approx(0.5)


ZIPKIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "traces" / "zipkin"


def _zipkin_frame(path: Path) -> pd.DataFrame:
    rows = json.loads(path.read_text())
    df = pd.DataFrame(
        {
            "trace_id": [r["traceId"] for r in rows],
            "span_id": [r["id"] for r in rows],
            "parent_span_id": [r.get("parentId") for r in rows],
            "name": [r.get("name") for r in rows],
            "kind": [str(r.get("kind", "")).lower() or None for r in rows],
            "service": [(r.get("localEndpoint") or {}).get("serviceName") for r in rows],
            "start_ts": pd.to_datetime([r.get("timestamp", 0) for r in rows], unit="us"),
            "duration_ms": [r.get("duration", 0) / 1000 for r in rows],
        }
    )
    return df


@pytest.mark.shared_data
@pytest.mark.skipif(not ZIPKIN.is_dir(), reason=f"Zipkin test traces not found at {ZIPKIN}")
@pytest.mark.parametrize(
    "name",
    ["skew.json", "yelp.json", "messaging-kafka.json", "smartthings-mobile-web-install.json"],
)
def test_real_zipkin_traces(name):
    df = _zipkin_frame(ZIPKIN / name)
    a = analyze_traces(df)
    assert len(a) == len(df)
    assert (a["self_ms"] >= -1e-9).all() and (a["self_ms"] <= a["inclusive_ms"] + 1e-9).all()
    # critical-path contributions add up to the main root's duration in every trace
    sums = a.groupby("trace_id")["critical_ms"].sum()
    root = a[a["is_root"]].set_index("trace_id")["inclusive_ms"]
    assert np.allclose(sums, root.reindex(sums.index), atol=1e-6)
    assert a["is_root"].groupby(a["trace_id"]).sum().eq(1).all()
