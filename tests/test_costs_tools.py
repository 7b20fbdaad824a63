"""Spend by tool: the tool of an LLM call derived from its trace (llm_calls has no tool column)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from lumina_analytics import costs, datasets
from lumina_analytics.errors import SchemaError
from lumina_analytics.warehouse import Warehouse, append_frame

T0 = pd.Timestamp("2026-10-01 09:00")


def _span(
    span_id: str,
    parent: str | None,
    name: str,
    start: float,
    end: float,
    trace_id: str = "t1",
    **attrs: str,
) -> dict[str, object]:
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": name,
        "kind": "client",
        "service": "svc",
        "start_ts": T0 + pd.Timedelta(seconds=start),
        "end_ts": T0 + pd.Timedelta(seconds=end),
        "duration_ms": (end - start) * 1000.0,
        "status_code": "ok",
        "attributes": json.dumps(attrs),
    }


def _trace() -> tuple[pd.DataFrame, pd.DataFrame]:
    """One agent trace with every case of the rule, and the calls it holds."""
    tool = "gen_ai.tool.name"
    spans = pd.DataFrame(
        [
            _span("gw", None, "POST /messages", 0, 60),
            _span("agent", "gw", "invoke_agent support", 0, 60),
            _span("plan", "agent", "plan", 0, 9),
            _span("L0", "plan", "chat gpt-4o", 1, 8),  # planner call: no sibling tool
            _span("R", "agent", "search kb", 10, 11, **{"db.system": "qdrant"}),  # not a tool
            _span("L1", "agent", "chat gpt-4o", 12, 20),  # nothing before it
            _span("X1", "agent", "GET /search", 21, 25, **{tool: "web_search"}),
            _span("L2", "agent", "chat gpt-4o", 26, 30),  # reads web_search
            _span("L3", "agent", "chat gpt-4o", 31, 35),  # reflection after L2: no tool
            _span("X2", "agent", "SELECT orders", 36, 40, **{tool: "sql_query"}),
            # a tool named only by its execute_tool span, finishing after X2 (parallel tools)
            _span(
                "X3",
                "agent",
                "execute_tool crm_lookup",
                36,
                42,
                **{"gen_ai.operation.name": "execute_tool"},
            ),
            _span("X3a", "X3", "SELECT order_items", 37, 38, **{tool: "inner"}),  # not a sibling
            _span("L4", "agent", "chat gpt-4o", 43, 50),  # reads the last finished: crm_lookup
            _span("X4", "agent", "POST /render", 51, 52, **{tool: "chart_render"}),  # unread
            # another trace: same span ids must not mix
            _span("agent", None, "invoke_agent coder", 0, 9, trace_id="t2"),
            _span("X1", "agent", "GET /repo", 1, 2, trace_id="t2", **{tool: "repo_search"}),
            _span("L1", "agent", "chat gpt-4o", 3, 8, trace_id="t2"),
        ]
    )
    ids = [
        ("t1", "L0"),
        ("t1", "L1"),
        ("t1", "L2"),
        ("t1", "L3"),
        ("t1", "L4"),
        ("t2", "L1"),
        ("t3", "L9"),  # a call whose trace was not ingested
    ]
    calls = pd.DataFrame(ids, columns=["trace_id", "span_id"])
    calls["ts"] = T0 + pd.to_timedelta(range(len(calls)), unit="s")
    calls["provider"], calls["model"], calls["tenant"] = "openai", "gpt-4o", "acme"
    calls["cost_usd"] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    calls["status"] = "ok"
    return spans, calls


EXPECTED = ["(none)", "(none)", "web_search", "(none)", "crm_lookup", "repo_search", "(none)"]


def test_attach_tools_follows_the_rule() -> None:
    spans, calls = _trace()
    out = datasets.attach_tools(calls, spans)
    assert out["tool"].tolist() == EXPECTED
    assert out.index.equals(calls.index) and "tool" not in calls.columns


def test_spend_by_tool_from_the_warehouse(tmp_path: Path) -> None:
    spans, calls = _trace()
    wh = Warehouse(tmp_path / "w.duckdb")
    with wh.writer() as con:
        append_frame(con, "spans", spans)
        append_frame(con, "llm_calls", calls)
    loaded = datasets.load_llm_calls(wh, with_tool=True)
    got = dict(
        zip(zip(loaded["trace_id"], loaded["span_id"], strict=True), loaded["tool"], strict=True)
    )
    want = dict(zip(zip(calls["trace_id"], calls["span_id"], strict=True), EXPECTED, strict=True))
    assert got == want
    s = costs.spend(loaded, by=("tool",)).set_index("tool")
    assert s.loc["(none)", "cost_usd"] == 1 + 2 + 8 + 64
    assert s.loc["crm_lookup", "requests"] == 1 and s.loc["web_search", "cost_usd"] == 4
    assert s["cost_usd"].sum() == calls["cost_usd"].sum()
    trend = costs.spend(loaded, by=("tenant", "tool"), grain="D")
    assert set(trend["tool"]) == set(EXPECTED)
    only = datasets.load_llm_calls(
        wh, with_tool=True, filters={"tool": ["web_search"]}, columns=["ts", "cost_usd"]
    )
    assert list(only.columns) == ["ts", "cost_usd", "tool"] and only["cost_usd"].tolist() == [4.0]


def test_spend_by_tool_needs_the_tool_column() -> None:
    _, calls = _trace()
    with pytest.raises(SchemaError, match="with_tool=True"):
        costs.spend(calls, by=("tool",))


@pytest.mark.slow
def test_simulated_traces_attribute_every_tool_once(demo_warehouse: Path) -> None:
    """In the simulator's agent traces each tool's result is read by the next LLM call: every
    tool span beside LLM calls is attributed to exactly one call, and calls without one are
    the planner and reflection calls."""
    wh = Warehouse(demo_warehouse)
    calls = datasets.load_llm_calls(wh, with_tool=True)
    tools = wh.query(
        """SELECT json_extract_string(attributes, '$."gen_ai.tool.name"') AS tool, count(*) AS n
        FROM spans WHERE service = 'tool-executor' AND parent_span_id IN
          (SELECT span_id FROM spans WHERE name LIKE 'invoke_agent %')
        GROUP BY ALL"""
    )
    tools["tool"] = tools["tool"].fillna("(unnamed)")
    attributed = calls.loc[calls["tool"] != "(none)", "tool"].value_counts()
    assert attributed.sort_index().to_dict() == tools.set_index("tool")["n"].sort_index().to_dict()
    planner = wh.query("SELECT count(*) AS n FROM spans WHERE name = 'plan'")["n"].iloc[0]
    assert (calls["tool"] == "(none)").sum() >= planner
    s = costs.spend(calls, by=("tool",))
    assert s["cost_usd"].sum() == pytest.approx(calls["cost_usd"].sum())
