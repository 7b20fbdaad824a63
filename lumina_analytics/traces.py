"""Trace trees, critical paths, self time, bottlenecks, service graph, queries and load.

Every analysis takes a spans-shaped DataFrame (the ``spans`` table's columns; only
``trace_id, span_id, parent_span_id, service, start_ts`` and ``end_ts`` or
``duration_ms`` are required) and returns DataFrames. The heavy lifting is vectorised
with numpy/pandas grouped operations, so :func:`analyze_traces` handles a million spans.

Conventions
-----------
* Orphans (a ``parent_span_id`` that is not in the trace) become roots of their own
  subtree (``is_orphan``); a trace without a true root uses its longest orphan as root.
* Clock skew: a child that starts before its parent or ends after it is clipped to the
  parent's interval (recursively) before self and critical-path time are computed.
* Critical path (as in Jaeger): walking back from the end of a span, the child that
  finished last is critical; then the child that finished last before that child
  started, and so on. ``critical_ms`` is each span's own contribution to the path, so
  per trace it sums to the root's duration.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lumina_analytics.errors import SchemaError
from lumina_analytics.schema import require_columns
from lumina_analytics.warehouse import Warehouse

__all__ = [
    "AgentCategory",
    "agent_time_split",
    "analyze_traces",
    "bottlenecks",
    "classify_spans",
    "critical_path",
    "load_distribution",
    "load_spans",
    "n_plus_one",
    "normalize_route",
    "normalize_statement",
    "parse_json_column",
    "query_analysis",
    "service_graph",
    "service_graph_chart",
    "span_attributes",
    "span_time_bounds",
    "synthetic_spans",
]

_REQUIRED = ("trace_id", "span_id", "parent_span_id", "start_ts")


# -- loading -------------------------------------------------------------------------
def load_spans(
    warehouse: Warehouse | str | None = None,
    start: Any = None,
    end: Any = None,
    services: Sequence[str] | None = None,
    trace_sample: int | None = None,
) -> pd.DataFrame:
    """Spans whose trace started in ``[start, end)`` (optionally only some services' traces).

    ``trace_sample`` keeps at most that many traces (a deterministic hash sample), always
    returning whole traces so trees stay intact.
    """
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    where = ["1=1"]
    params: list[Any] = []
    if start is not None:
        where.append("start_ts >= ?")
        params.append(pd.Timestamp(start).to_pydatetime())
    if end is not None:
        where.append("start_ts < ?")
        params.append(pd.Timestamp(end).to_pydatetime())
    if services:
        where.append("list_contains(?, service)")
        params.append(list(services))
    inner = f"SELECT DISTINCT trace_id FROM spans WHERE {' AND '.join(where)}"
    if trace_sample is not None:
        inner = f"SELECT trace_id FROM ({inner}) ORDER BY hash(trace_id) LIMIT ?"
        params.append(int(trace_sample))
    sql = (
        "SELECT trace_id, span_id, parent_span_id, name, kind, service, start_ts, end_ts, "
        "duration_ms, status_code, status_message, CAST(attributes AS VARCHAR) AS attributes, "
        "CAST(resource AS VARCHAR) AS resource FROM spans "
        f"WHERE trace_id IN ({inner}) ORDER BY trace_id, start_ts"
    )
    return wh.query(sql, params)


# -- JSON attributes -----------------------------------------------------------------
def parse_json_column(values: pd.Series) -> pd.Series:
    """Parse a column of JSON strings (or dicts / None) into dicts (empty when missing)."""

    def _one(v: Any) -> dict[str, Any]:
        if isinstance(v, dict):
            return v
        if v is None or (isinstance(v, float) and np.isnan(v)) or v == "":
            return {}
        try:
            out = json.loads(v)
        except (TypeError, ValueError):
            return {}
        return out if isinstance(out, dict) else {}

    return values.map(_one)


def span_attributes(
    spans: pd.DataFrame, keys: Iterable[str], column: str = "attributes"
) -> pd.DataFrame:
    """One column per attribute key (NaN/None when absent), index aligned with ``spans``."""
    keys = list(keys)
    if column not in spans.columns:
        return pd.DataFrame(
            {k: pd.Series([None] * len(spans), dtype=object) for k in keys}, index=spans.index
        )
    raw = spans[column]
    # Only parse rows that can possibly hold one of the keys (cheap substring pre-filter).
    if raw.dtype == object and len(raw) and not isinstance(raw.iloc[0], dict):
        txt = raw.fillna("").astype(str)
        mask = np.zeros(len(txt), dtype=bool)
        for k in keys:
            mask |= txt.str.contains(k, regex=False).to_numpy()
    else:
        mask = np.ones(len(raw), dtype=bool)
    out = pd.DataFrame(index=spans.index, columns=keys, dtype=object)
    if mask.any():
        parsed = parse_json_column(raw[mask])
        for k in keys:
            out.loc[mask, k] = parsed.map(lambda d, k=k: d.get(k)).to_numpy()
    return out


# -- tree, self time, critical path --------------------------------------------------
_NAT = np.iinfo("int64").min
_NO_PARENT = ["", "0", "0000000000000000", "root", "None", "null"]


def _arrow_str(values: pd.Series) -> pa.Array:
    """A column as an Arrow string array (nulls kept), without a Python-object round trip."""
    try:
        arr = pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = pa.array(
            values.map(lambda v: None if v is None or v != v else str(v)),
            type=pa.string(),
            from_pandas=True,
        )
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _to_ns(values: pd.Series) -> np.ndarray:
    s = pd.to_datetime(values)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.astype("datetime64[ns]").to_numpy().view("int64")


def _to_ms(values: pd.Series) -> np.ndarray:
    ns = _to_ns(values)
    return np.where(ns == _NAT, np.nan, ns.astype("float64") / 1e6)


def _group_sort(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Stable order by ``groups`` then ``values`` (ms >= 0 within a trace).

    One int64 argsort on a packed key (group, value in ns) when it fits, else lexsort.
    """
    if len(groups) == 0:
        return np.zeros(0, dtype="int64")
    gbits = int(groups.max()).bit_length()
    vmax = float(values.max()) if len(values) else 0.0
    if values.min() >= 0 and vmax * 1e6 < 2.0 ** (62 - gbits):
        key = (groups.astype("int64") << (62 - gbits)) | np.round(values * 1e6).astype("int64")
        return np.argsort(key, kind="stable")
    return np.lexsort((values, groups))


def _group_cummax(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Running max of ``values`` within consecutive runs of ``groups`` (sorted input)."""
    if len(values) == 0:
        return values.copy()
    lo = float(np.nanmin(values))
    span = float(np.nanmax(values)) - lo + 1.0
    g = np.cumsum(np.r_[True, groups[1:] != groups[:-1]]).astype("float64")
    shifted = (values - lo) + g * span
    return np.maximum.accumulate(shifted) - g * span + lo


def analyze_traces(spans: pd.DataFrame) -> pd.DataFrame:
    """Per span: tree structure, clipped interval, inclusive, self and critical-path time.

    Returns ``spans`` (reset index) plus ``depth, is_root, is_orphan, parent_service,
    start_ms, end_ms, inclusive_ms, self_ms, critical_ms, on_critical_path,
    trace_duration_ms`` where ``*_ms`` times are in milliseconds and ``start_ms`` is
    relative to the trace's root start.
    """
    require_columns(spans, _REQUIRED, "spans")
    if "end_ts" not in spans.columns and "duration_ms" not in spans.columns:
        raise SchemaError("spans need end_ts or duration_ms to compute durations")
    df = spans.reset_index(drop=True)
    n = len(df)
    if n == 0:
        out = df.copy()
        for c in ("depth",):
            out[c] = pd.Series(dtype="int64")
        for c in (
            "start_ms",
            "end_ms",
            "inclusive_ms",
            "self_ms",
            "critical_ms",
            "trace_duration_ms",
        ):
            out[c] = pd.Series(dtype="float64")
        for c in ("is_root", "is_orphan", "on_critical_path"):
            out[c] = pd.Series(dtype="bool")
        out["parent_service"] = pd.Series(dtype=object)
        return out

    tcode, _ = pd.factorize(df["trace_id"], sort=False)
    start_ns = _to_ns(df["start_ts"])
    # times relative to each trace's earliest start keep sub-microsecond float precision
    valid = start_ns != _NAT
    t0_per = np.full(int(tcode.max()) + 1, np.iinfo("int64").max, dtype="int64")
    np.minimum.at(t0_per, tcode, np.where(valid, start_ns, np.iinfo("int64").max))
    t0 = t0_per[tcode]
    start = np.where(valid, (start_ns - t0) / 1e6, np.nan)
    end = np.full(n, np.nan)
    if "end_ts" in df.columns:
        end_ns = _to_ns(df["end_ts"])
        end = np.where(end_ns != _NAT, (end_ns - t0) / 1e6, np.nan)
    if "duration_ms" in df.columns:
        dur = pd.to_numeric(df["duration_ms"], errors="coerce").to_numpy(dtype="float64")
        end = np.where(np.isnan(end), start + dur, end)
    start = np.where(np.isnan(start), 0.0, start)
    end = np.where(np.isnan(end) | (end < start), start, end)

    # Parent lookup by (trace, span_id) on integer keys: one (Arrow) factorisation of all ids.
    sid, pid = _arrow_str(df["span_id"]), _arrow_str(df["parent_span_id"])
    no_parent = pc.fill_null(pc.is_in(pid, value_set=pa.array(_NO_PARENT)), True)
    has_parent_id = (
        ~no_parent.to_numpy(zero_copy_only=False) & df["parent_span_id"].notna().to_numpy()
    )
    enc = pc.dictionary_encode(pa.concat_arrays([sid, pid]))
    codes = pc.fill_null(enc.indices, 0).to_numpy(zero_copy_only=False).astype("int64")
    n_ids = max(len(enc.dictionary), 1)
    # codes follow first appearance, so these keys are nearly sorted: cache-friendly lookups
    skey = tcode.astype("int64") * n_ids + codes[:n]
    pkey = tcode.astype("int64") * n_ids + codes[n:]
    order_k = np.argsort(skey, kind="stable")  # stable: duplicates resolve to the first span
    sorted_k = skey[order_k]
    pos = np.searchsorted(sorted_k, pkey, side="left")
    pos_c = np.minimum(pos, n - 1)
    found = (pos < n) & (sorted_k[pos_c] == pkey) & has_parent_id
    parent = np.where(found, order_k[pos_c], -1).astype("int64")
    parent[parent == np.arange(n)] = -1

    # Depth by repeated parent lookup; cycles are broken by cutting at the iteration cap.
    depth = np.zeros(n, dtype="int64")
    anc = parent.copy()
    for _ in range(256):
        active = anc >= 0
        if not active.any():
            break
        depth[active] += 1
        anc[active] = parent[anc[active]]
    else:  # cycles: cut the edge from each span whose chain never reached a root
        parent[anc >= 0] = -1
        depth[anc >= 0] = 0
    is_orphan = has_parent_id & (parent < 0)
    is_root_any = parent < 0

    # Clip every span into its parent's (already clipped) interval, level by level.
    cs, ce = start.copy(), end.copy()
    order = np.argsort(depth, kind="stable")
    bounds = np.searchsorted(depth[order], np.arange(depth.max() + 2))
    for d in range(1, int(depth.max()) + 1):
        idx = order[bounds[d] : bounds[d + 1]]
        p = parent[idx]
        cs[idx] = np.clip(cs[idx], cs[p], ce[p])
        ce[idx] = np.clip(ce[idx], cs[idx], ce[p])
    incl = ce - cs

    # Self time: duration minus the union of (clipped) children intervals.
    kids = np.flatnonzero(parent >= 0)
    self_ms = incl.copy()
    if len(kids):
        kp = parent[kids]
        o = _group_sort(kp, cs[kids])
        k_sorted, p_sorted = kids[o], kp[o]
        base = cs[p_sorted]
        ks, ke = cs[k_sorted] - base, ce[k_sorted] - base
        run_end = _group_cummax(p_sorted, ke)
        prev_end = np.empty_like(run_end)
        prev_end[1:] = run_end[:-1]
        first = np.ones(len(p_sorted), dtype=bool)
        first[1:] = p_sorted[1:] != p_sorted[:-1]
        prev_end[first] = -np.inf
        covered = np.maximum(0.0, ke - np.maximum(ks, prev_end))
        self_ms -= np.bincount(p_sorted, weights=covered, minlength=n)
        self_ms = np.maximum(self_ms, 0.0)

    # Critical children: greedy chain per parent from the last-finishing child backwards.
    crit_child = np.zeros(n, dtype=bool)
    if len(kids):
        kp = parent[kids]
        o = _group_sort(kp, ce[kids])  # by parent, then end ascending
        k_sorted, p_sorted = kids[o], kp[o]
        base = cs[p_sorted]  # times relative to the parent's start keep float precision
        ke, ks = ce[k_sorted] - base, cs[k_sorted] - base
        m = len(k_sorted)
        pos = np.arange(m)
        last = np.ones(m, dtype=bool)
        last[:-1] = p_sorted[1:] != p_sorted[:-1]
        grp_first = np.ones(m, dtype=bool)
        grp_first[1:] = p_sorted[1:] != p_sorted[:-1]
        gstart = np.maximum.accumulate(np.where(grp_first, pos, 0))
        # nxt[i]: the last-ending child of the same parent that ended by the time i started
        pcode = np.cumsum(grp_first).astype("float64")
        scale = float(max(ke.max(), ks.max())) + 1.0
        j = np.searchsorted(pcode * scale + ke, pcode * scale + ks, side="right") - 1
        nxt = np.minimum(j, pos - 1)
        nxt = np.where(nxt >= gstart, nxt, -1)
        frontier = pos[last]
        mark = np.zeros(m, dtype=bool)
        for _ in range(m + 1):
            if len(frontier) == 0:
                break
            frontier = frontier[~mark[frontier]]
            mark[frontier] = True
            frontier = nxt[frontier]
            frontier = frontier[frontier >= 0]
        crit_child[k_sorted[mark]] = True

    # Root of each trace: the true root with the longest span, else the longest orphan.
    ridx = np.flatnonzero(is_root_any)
    ro = np.lexsort((-incl[ridx], is_orphan[ridx], tcode[ridx]))  # trace, true roots, longest
    ridx = ridx[ro]
    first_root = np.ones(len(ridx), dtype=bool)
    first_root[1:] = tcode[ridx][1:] != tcode[ridx][:-1]
    main_root = np.zeros(n, dtype=bool)
    main_root[ridx[first_root]] = True
    on_cp = main_root.copy()
    for d in range(1, int(depth.max()) + 1):
        idx = order[bounds[d] : bounds[d + 1]]
        on_cp[idx] = crit_child[idx] & on_cp[parent[idx]]
    child_cp = (
        np.bincount(parent[kids], weights=np.where(on_cp[kids], incl[kids], 0.0), minlength=n)
        if len(kids)
        else np.zeros(n)
    )
    critical_ms = np.where(on_cp, np.maximum(incl - child_cp, 0.0), 0.0)

    # exactly one main root per trace: scatter its start and duration to the trace's spans
    n_t = int(tcode.max()) + 1
    rs_per, dur_per = np.zeros(n_t), np.zeros(n_t)
    rs_per[tcode[main_root]] = cs[main_root]
    dur_per[tcode[main_root]] = incl[main_root]
    root_start, trace_dur = rs_per[tcode], dur_per[tcode]

    if "service" in df.columns:
        # take() keeps the (Arrow) string dtype: no per-row Python objects
        psvc = df["service"].take(np.maximum(parent, 0)).reset_index(drop=True)
        psvc = psvc.where(pd.Series(parent >= 0), None)
    else:
        psvc = pd.Series([None] * n, dtype=object)
    extra = pd.DataFrame(
        {
            "depth": depth,
            "is_root": main_root,
            "is_orphan": is_orphan,
            "parent_service": psvc,
            "start_ms": cs - root_start,
            "end_ms": ce - root_start,
            "inclusive_ms": incl,
            "self_ms": self_ms,
            "critical_ms": critical_ms,
            "on_critical_path": on_cp,
            "trace_duration_ms": trace_dur,
            "_parent_idx": parent,
        }
    )
    keep = [c for c in df.columns if c not in extra.columns]
    return pd.concat([df[keep], extra], axis=1)


def critical_path(spans: pd.DataFrame, trace_id: str | None = None) -> pd.DataFrame:
    """The spans on the critical path (of one trace, or of every trace), in start order."""
    a = spans if "on_critical_path" in spans.columns else analyze_traces(spans)
    if trace_id is not None:
        a = a[a["trace_id"] == trace_id]
    cols = [
        c
        for c in (
            "trace_id",
            "span_id",
            "parent_span_id",
            "service",
            "name",
            "depth",
            "start_ms",
            "end_ms",
            "inclusive_ms",
            "self_ms",
            "critical_ms",
        )
        if c in a.columns
    ]
    return (
        a.loc[a["on_critical_path"], cols]
        .sort_values(["trace_id", "start_ms", "depth"])
        .reset_index(drop=True)
    )


# -- bottlenecks ---------------------------------------------------------------------
def bottlenecks(
    analyzed: pd.DataFrame, by: Sequence[str] = ("service", "name"), top: int | None = 20
) -> pd.DataFrame:
    """Operations (or any grouping) ranked by their share of critical-path time and self time.

    ``analyzed`` is the output of :func:`analyze_traces` (or raw spans, analysed here).
    """
    a = analyzed if "critical_ms" in analyzed.columns else analyze_traces(analyzed)
    by = list(by)
    g = a.groupby(by, dropna=False)
    res = g.agg(
        spans=("span_id", "size"),
        traces=("trace_id", "nunique"),
        critical_ms=("critical_ms", "sum"),
        self_ms=("self_ms", "sum"),
        inclusive_ms=("inclusive_ms", "sum"),
        p50_ms=("inclusive_ms", "median"),
        p95_ms=("inclusive_ms", lambda s: float(np.percentile(s, 95)) if len(s) else np.nan),
    ).reset_index()
    tot_cp = float(a["critical_ms"].sum()) or 1.0
    tot_self = float(a["self_ms"].sum()) or 1.0
    res["critical_share"] = res["critical_ms"] / tot_cp
    res["self_share"] = res["self_ms"] / tot_self
    res = res.sort_values(["critical_share", "self_share"], ascending=False).reset_index(drop=True)
    res["rank_critical"] = np.arange(1, len(res) + 1)
    res["rank_self"] = res["self_ms"].rank(ascending=False, method="min").astype("int64")
    return res.head(top).reset_index(drop=True) if top else res


# -- agent traces --------------------------------------------------------------------
@dataclass(frozen=True)
class AgentCategory:
    """Names of the categories used by :func:`classify_spans`."""

    LLM: str = "llm"
    TOOL: str = "tool"
    RETRIEVAL: str = "retrieval"
    DB: str = "db"
    AGENT: str = "agent_code"


_RETRIEVAL_DB = {
    "qdrant",
    "pinecone",
    "weaviate",
    "milvus",
    "chroma",
    "pgvector",
    "elasticsearch",
    "opensearch",
    "faiss",
    "vectordb",
}


def classify_spans(spans: pd.DataFrame) -> pd.Series:
    """Category of each span: ``llm``, ``tool``, ``retrieval``, ``db``, ``agent_code`` or ``other``.

    LLM: ``gen_ai.operation.name`` chat/text_completion/embeddings/... or a ``chat {model}``
    name; tool: ``execute_tool``, ``gen_ai.tool.name``, or an HTTP *client* span; retrieval:
    vector stores (qdrant, pinecone, ...) or ``retriev*`` names; db: other ``db.system``.
    Spans under a tool/LLM/retrieval span inherit its category (a tool's SQL is tool time).
    Remaining spans are ``agent_code`` in services that emit agent spans, else ``other``.
    """
    attrs = span_attributes(
        spans,
        [
            "gen_ai.operation.name",
            "gen_ai.agent.name",
            "db.system",
            "db.system.name",
            "http.route",
            "url.full",
            "gen_ai.tool.name",
        ],
    )
    blank = pd.Series([""] * len(spans), index=spans.index)
    name = spans.get("name", blank).fillna("").astype(str).str.lower()
    svc = spans.get("service", blank).fillna("").astype(str)
    kind = spans.get("kind", blank).fillna("").astype(str).str.lower()
    op = attrs["gen_ai.operation.name"].fillna("").astype(str).str.lower()
    dbs = attrs["db.system"].fillna(attrs["db.system.name"]).fillna("").astype(str).str.lower()
    agentish = (
        (op == "invoke_agent")
        | attrs["gen_ai.agent.name"].notna()
        | svc.str.lower().str.contains("agent")
    )
    agent_services = set(svc[agentish])
    cat = pd.Series(
        np.where(svc.isin(agent_services), "agent_code", "other"), index=spans.index, dtype=object
    )
    is_llm = op.isin(
        ["chat", "text_completion", "generate_content", "embeddings", "completion"]
    ) | name.str.startswith("chat ")
    is_retr = (
        (op == "retrieval")
        | dbs.isin(list(_RETRIEVAL_DB))
        | name.str.contains("retriev")
        | svc.str.lower().str.contains("retriev")
    )
    is_db = dbs.ne("") & ~is_retr
    is_http_client = (attrs["http.route"].notna() | attrs["url.full"].notna()) & kind.eq("client")
    is_tool = (op == "execute_tool") | attrs["gen_ai.tool.name"].notna() | is_http_client
    cat[is_db] = "db"
    cat[is_tool] = "tool"
    cat[is_retr] = "retrieval"
    cat[is_llm] = "llm"
    if "_parent_idx" in spans.columns and "depth" in spans.columns and len(spans):
        vals = cat.to_numpy(dtype=object).copy()
        parent = spans["_parent_idx"].to_numpy()
        depth = spans["depth"].to_numpy()
        strong = {"llm", "tool", "retrieval"}
        own_strong = np.isin(vals, list(strong))
        for d in range(1, int(depth.max()) + 1):
            idx = np.flatnonzero((depth == d) & ~own_strong)
            if len(idx) == 0:
                continue
            pv = vals[parent[idx]]
            inherit = np.isin(pv, list(strong))
            vals[idx[inherit]] = pv[inherit]
        cat = pd.Series(vals, index=spans.index, dtype=object)
    return cat


def agent_time_split(analyzed: pd.DataFrame, agent_column: str | None = None) -> pd.DataFrame:
    """Per agent, the split of end-to-end (critical-path) time between LLM, tools, retrieval, DB and agent code.

    ``analyzed`` must be the unsliced output of :func:`analyze_traces` (parent indices).

    The agent of a trace is its ``gen_ai.agent.name`` attribute (any span), else
    ``agent_column`` when given, else the service of the first ``agent`` service span.
    Output: ``agent, category, critical_ms, share, traces``.
    """
    a = analyzed if "critical_ms" in analyzed.columns else analyze_traces(analyzed)
    a = a.copy()
    a["category"] = classify_spans(a)
    if agent_column and agent_column in a.columns:
        per_trace = a.groupby("trace_id")[agent_column].first()
    else:
        ag = span_attributes(a, ["gen_ai.agent.name"])["gen_ai.agent.name"]
        per_trace = ag.groupby(a["trace_id"]).first()
        if per_trace.isna().all() and "service" in a.columns:
            cand = a[a["service"].fillna("").str.contains("agent")]
            per_trace = cand.groupby("trace_id")["service"].first().reindex(per_trace.index)
    a["agent"] = a["trace_id"].map(per_trace).fillna("(none)")
    res = (
        a.groupby(["agent", "category"])
        .agg(critical_ms=("critical_ms", "sum"), self_ms=("self_ms", "sum"))
        .reset_index()
    )
    res["share"] = res["critical_ms"] / res.groupby("agent")["critical_ms"].transform(
        "sum"
    ).replace(0, np.nan)
    res["traces"] = res["agent"].map(a.groupby("agent")["trace_id"].nunique())
    return res.sort_values(["agent", "share"], ascending=[True, False]).reset_index(drop=True)


# -- service graph -------------------------------------------------------------------
def service_graph(analyzed: pd.DataFrame, include_user: bool = True) -> pd.DataFrame:
    """Edges caller -> callee (parent span's service -> child span's service, where they differ).

    Columns: ``client, server, calls, errors, error_rate, p50_ms, p90_ms, p99_ms, mean_ms``
    (latency is the callee span's duration). Roots appear as calls from ``user``.
    """
    a = analyzed if "parent_service" in analyzed.columns else analyze_traces(analyzed)
    client = a["parent_service"]
    mask = client.notna() & (client != a["service"])
    e = a.loc[mask, ["service", "status_code", "inclusive_ms"]].assign(client=client[mask])
    if include_user:
        r = a.loc[a["is_root"], ["service", "status_code", "inclusive_ms"]].assign(client="user")
        e = pd.concat([r, e], ignore_index=True)
    e = e.rename(columns={"service": "server"})
    e["err"] = e["status_code"].fillna("").astype(str).str.lower().eq("error")
    g = e.groupby(["client", "server"])
    res = g.agg(
        calls=("err", "size"),
        errors=("err", "sum"),
        p50_ms=("inclusive_ms", "median"),
        p90_ms=("inclusive_ms", lambda s: float(np.percentile(s, 90))),
        p99_ms=("inclusive_ms", lambda s: float(np.percentile(s, 99))),
        mean_ms=("inclusive_ms", "mean"),
    ).reset_index()
    res["errors"] = res["errors"].astype("int64")
    res["error_rate"] = res["errors"] / res["calls"]
    return res.sort_values("calls", ascending=False).reset_index(drop=True)


def service_graph_chart(graph: pd.DataFrame, title: str = "Service graph") -> Any:
    """An Altair chart of a service graph: one row per edge, bar = calls, colour = error rate."""
    import altair as alt

    g = graph.assign(edge=graph["client"].astype(str) + " → " + graph["server"].astype(str))
    bars = (
        alt.Chart(g, title=title)
        .mark_bar()
        .encode(
            y=alt.Y("edge:N", sort="-x", title=None),
            x=alt.X("calls:Q"),
            color=alt.Color(
                "error_rate:Q", scale=alt.Scale(scheme="orangered"), title="error rate"
            ),
            tooltip=[
                "client",
                "server",
                "calls",
                "errors",
                alt.Tooltip("error_rate:Q", format=".1%"),
                "p50_ms",
                "p90_ms",
                "p99_ms",
            ],
        )
    )
    return bars


# -- query analysis ------------------------------------------------------------------
_STR_LIT = re.compile(r"'(?:[^']|'')*'")
_NUM_LIT = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")
_IN_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)+\s*\)")
_WS = re.compile(r"\s+")
_PLACEHOLDER = re.compile(r"\$\d+|:\w+|%s|%\(\w+\)s")
_SEG_ID = re.compile(
    r"/(?:\d+|[0-9a-fA-F]{8}-[0-9a-fA-F-]{27,}|[0-9a-fA-F]{16,}|[A-Za-z0-9_-]*\d[A-Za-z0-9_-]{7,})(?=/|$)"
)


def normalize_statement(sql: str | None) -> str | None:
    """A statement with literals and bind placeholders replaced by ``?`` and whitespace collapsed."""
    if sql is None or (isinstance(sql, float) and np.isnan(sql)):
        return None
    s = _STR_LIT.sub("?", str(sql))
    s = _PLACEHOLDER.sub("?", s)
    s = _NUM_LIT.sub("?", s)
    s = _IN_LIST.sub("(?)", s)
    return _WS.sub(" ", s).strip()


def normalize_route(url: str | None) -> str | None:
    """The path of a URL with id-like segments (numbers, uuids, hashes) replaced by ``{id}``."""
    if url is None or (isinstance(url, float) and np.isnan(url)):
        return None
    s = re.sub(r"^[a-z]+://[^/]+", "", str(url)).split("?", 1)[0].split("#", 1)[0]
    return _SEG_ID.sub("/{id}", s) or "/"


def _query_spans(spans: pd.DataFrame) -> pd.DataFrame:
    keys = [
        "db.query.text",
        "db.statement",
        "db.system",
        "db.system.name",
        "http.route",
        "url.full",
        "http.url",
        "http.request.method",
        "http.method",
        "url.path",
    ]
    at = span_attributes(spans, keys)
    stmt = at["db.query.text"].fillna(at["db.statement"])
    route = (
        at["http.route"]
        .fillna(at["url.full"].map(normalize_route))
        .fillna(at["http.url"].map(normalize_route))
        .fillna(at["url.path"].map(normalize_route))
    )
    method = at["http.request.method"].fillna(at["http.method"]).fillna("")
    qtype = pd.Series(None, index=spans.index, dtype=object)
    qtype[route.notna()] = "http"
    qtype[stmt.notna()] = "db"
    norm = np.where(
        stmt.notna(),
        stmt.map(normalize_statement),
        (method.astype(str) + " " + route.fillna("").astype(str)).str.strip(),
    )
    q = spans.assign(
        query_type=qtype, statement=norm, db_system=at["db.system"].fillna(at["db.system.name"])
    )
    return q[q["query_type"].notna()]


def query_analysis(spans: pd.DataFrame, top: int | None = 50) -> pd.DataFrame:
    """DB statements and HTTP routes grouped by normalised text: calls, time, calls per trace.

    Columns: ``query_type, service, statement, calls, traces, calls_per_trace, total_ms,
    mean_ms, p95_ms, error_rate, max_repeat_in_parent``.
    """
    q = _query_spans(spans)
    if q.empty:
        return pd.DataFrame(
            columns=[
                "query_type",
                "service",
                "statement",
                "calls",
                "traces",
                "calls_per_trace",
                "total_ms",
                "mean_ms",
                "p95_ms",
                "error_rate",
                "max_repeat_in_parent",
            ]
        )
    a = analyze_traces(spans)
    dur = (
        a["inclusive_ms"].to_numpy()[q.index.to_numpy()]
        if len(a) == len(spans) and (spans.index == a.index).all()
        else pd.to_numeric(q["duration_ms"], errors="coerce").to_numpy()
    )
    q = q.assign(
        dur=dur,
        err=q.get("status_code", pd.Series("", index=q.index))
        .fillna("")
        .astype(str)
        .str.lower()
        .eq("error"),
    )
    rep = (
        q.groupby(["trace_id", "parent_span_id", "statement"], dropna=False)
        .size()
        .rename("rep")
        .reset_index()
    )
    maxrep = rep.groupby("statement")["rep"].max()
    res = (
        q.groupby(["query_type", "service", "statement"], dropna=False)
        .agg(
            calls=("span_id", "size"),
            traces=("trace_id", "nunique"),
            total_ms=("dur", "sum"),
            mean_ms=("dur", "mean"),
            p95_ms=("dur", lambda s: float(np.percentile(s, 95))),
            error_rate=("err", "mean"),
        )
        .reset_index()
    )
    res["calls_per_trace"] = res["calls"] / res["traces"]
    res["max_repeat_in_parent"] = res["statement"].map(maxrep).astype("int64")
    res = res.sort_values("total_ms", ascending=False).reset_index(drop=True)
    return res.head(top).reset_index(drop=True) if top else res


def n_plus_one(spans: pd.DataFrame, min_repeats: int = 5) -> pd.DataFrame:
    """N+1 patterns: the same normalised statement/route called ``min_repeats``+ times under one parent.

    One row per (trace, parent span, statement): ``repeats, total_ms`` plus the
    parent's service and name, sorted by total time.
    """
    q = _query_spans(spans)
    cols = [
        "trace_id",
        "parent_span_id",
        "service",
        "query_type",
        "statement",
        "repeats",
        "total_ms",
        "parent_name",
    ]
    if q.empty:
        return pd.DataFrame(columns=cols)
    q = q.assign(
        dur=pd.to_numeric(q["duration_ms"], errors="coerce")
        if "duration_ms" in q.columns
        else np.nan
    )
    if q["dur"].isna().all() and "end_ts" in q.columns:
        q["dur"] = _to_ms(q["end_ts"]) - _to_ms(q["start_ts"])
    g = (
        q.groupby(
            ["trace_id", "parent_span_id", "service", "query_type", "statement"], dropna=False
        )
        .agg(repeats=("span_id", "size"), total_ms=("dur", "sum"))
        .reset_index()
    )
    g = g[g["repeats"] >= min_repeats]
    if "name" in spans.columns:
        pn = spans.set_index(["trace_id", "span_id"])["name"]
        pn = pn[~pn.index.duplicated()]
        g["parent_name"] = pn.reindex(
            pd.MultiIndex.from_arrays([g["trace_id"], g["parent_span_id"]])
        ).to_numpy()
    else:
        g["parent_name"] = None
    return g[cols].sort_values("total_ms", ascending=False).reset_index(drop=True)


# -- load distribution ---------------------------------------------------------------
_TARGET_KEYS = {
    "instance": ("resource", ["service.instance.id", "host.name", "k8s.pod.name"]),
    "region": ("resource", ["cloud.region"]),
    "provider": ("attributes", ["gen_ai.provider.name", "gen_ai.system"]),
    "service": ("", []),
}


def load_distribution(
    spans: pd.DataFrame,
    by: str = "instance",
    freq: str = "1min",
    service: str | None = None,
    excess_share: float = 1.25,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Requests, concurrency and latency per target (``instance|region|provider|service``) per window.

    Returns ``(per_target, per_window)``. ``per_target``: ``window, target, requests,
    concurrency`` (busy ms / window ms), ``p50_ms, p95_ms, share, over_share`` (share above
    ``excess_share`` x the fair share ``1/targets``). ``per_window``: ``window, targets,
    requests, max_over_mean, cv`` (imbalance of request counts across targets).
    """
    if by not in _TARGET_KEYS:
        raise SchemaError(f"load_distribution by={by!r}: use one of {sorted(_TARGET_KEYS)}")
    s = spans if service is None else spans[spans["service"] == service]
    if "kind" in s.columns and by != "provider":
        server = s["kind"].fillna("").astype(str).str.lower().isin(["server", "consumer"])
        if server.any():
            s = s[server]
    col, keys = _TARGET_KEYS[by]
    if by == "service":
        target = s["service"]
    else:
        at = span_attributes(s, keys, column=col)
        target = at[keys[0]]
        for k in keys[1:]:
            target = target.fillna(at[k])
    s = s.assign(target=target.to_numpy())
    s = s[s["target"].notna()]
    empty_t = pd.DataFrame(
        columns=[
            "window",
            "target",
            "requests",
            "concurrency",
            "p50_ms",
            "p95_ms",
            "share",
            "over_share",
        ]
    )
    if s.empty:
        return empty_t, pd.DataFrame(
            columns=["window", "targets", "requests", "max_over_mean", "cv"]
        )
    start = pd.to_datetime(s["start_ts"])
    dur = (
        pd.to_numeric(s["duration_ms"], errors="coerce")
        if "duration_ms" in s.columns
        else (_to_ms(s["end_ts"]) - _to_ms(s["start_ts"]))
    )
    s = s.assign(window=start.dt.floor(freq), dur=np.asarray(dur, dtype="float64"))
    win_ms = pd.Timedelta(freq).total_seconds() * 1000.0
    res = (
        s.groupby(["window", "target"])
        .agg(
            requests=("span_id", "size"),
            busy=("dur", "sum"),
            p50_ms=("dur", "median"),
            p95_ms=("dur", lambda x: float(np.percentile(x, 95))),
        )
        .reset_index()
    )
    res["concurrency"] = res.pop("busy") / win_ms
    n_t = s["target"].nunique()
    res["share"] = res["requests"] / res.groupby("window")["requests"].transform("sum")
    res["over_share"] = res["share"] > excess_share / max(n_t, 1)
    # imbalance per window over all targets seen anywhere (absent target = 0 requests)
    wide = res.pivot_table(index="window", columns="target", values="requests", fill_value=0)
    mean = wide.mean(axis=1)
    per_w = pd.DataFrame(
        {
            "targets": (wide > 0).sum(axis=1),
            "requests": wide.sum(axis=1),
            "max_over_mean": wide.max(axis=1) / mean.replace(0, np.nan),
            "cv": wide.std(axis=1, ddof=0) / mean.replace(0, np.nan),
        }
    ).reset_index()
    return res[
        ["window", "target", "requests", "concurrency", "p50_ms", "p95_ms", "share", "over_share"]
    ], per_w


# -- synthetic agent traces (tests, benchmarks, demos) -------------------------------
# (name, service, kind, parent position, parallel-with-previous-sibling, attributes)
_TEMPLATE: list[tuple[str, str, str, int, bool, dict[str, Any]]] = [
    (
        "POST /v1/agents/{agent}/messages",
        "gateway",
        "server",
        -1,
        False,
        {"http.route": "/v1/agents/{agent}/messages"},
    ),
    (
        "invoke_agent",
        "agent-runtime",
        "server",
        0,
        False,
        {"gen_ai.operation.name": "invoke_agent"},
    ),
    (
        "chat gpt-4o",
        "agent-runtime",
        "client",
        1,
        False,
        {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"},
    ),
    (
        "execute_tool search",
        "agent-runtime",
        "internal",
        1,
        False,
        {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
    ),
    (
        "GET",
        "agent-runtime",
        "client",
        3,
        False,
        {"http.request.method": "GET", "url.full": "https://search.internal/v1/search/12345?q=x"},
    ),
    ("GET /v1/search/{id}", "tool-search", "server", 4, False, {"http.route": "/v1/search/{id}"}),
    ("search kb", "retrieval", "client", 5, False, {"db.system": "qdrant"}),
    (
        "execute_tool crm",
        "agent-runtime",
        "internal",
        1,
        True,
        {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "crm"},
    ),
    *[
        (
            "SELECT crm.items",
            "agent-runtime",
            "client",
            7,
            False,
            {"db.system": "postgresql", "db.query.text": f"SELECT * FROM items WHERE id = {i}"},
        )
        for i in range(10)
    ],
    (
        "chat gpt-4o",
        "agent-runtime",
        "client",
        1,
        False,
        {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"},
    ),
]


_HEX_PAIRS = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")


def _hex_strings(values: np.ndarray) -> np.ndarray:
    """uint64 values as 16-char lower-case hex strings (vectorised)."""
    flat = np.ascontiguousarray(values.reshape(-1).astype(">u8"))
    pairs = _HEX_PAIRS[flat.view(np.uint8).reshape(-1, 8)]
    return np.ascontiguousarray(pairs).view("S16").reshape(values.shape).astype(str)


def synthetic_spans(
    n_traces: int,
    seed: int = 0,
    start: str = "2026-01-01",
    skew_share: float = 0.05,
    orphan_share: float = 0.01,
    with_attributes: bool = True,
) -> pd.DataFrame:
    """Agent-shaped traces (gateway -> agent -> LLM, two parallel tools, N+1 SQL, retrieval).

    ``skew_share`` of traces have a tool server span that starts before its client span;
    ``orphan_share`` lose the ``execute_tool search`` span, orphaning its subtree. 19 spans
    per trace before orphaning, vectorised, so a million spans take a few seconds.
    """
    rng = np.random.default_rng(seed)
    k = len(_TEMPLATE)
    t0 = pd.Timestamp(start).value + np.sort(rng.integers(0, 86_400 * 10**9, n_traces))
    st = np.zeros((k, n_traces))
    en = np.zeros((k, n_traces))
    children: dict[int, list[int]] = {}
    for i, (_, _, _, p, _, _) in enumerate(_TEMPLATE):
        children.setdefault(p, []).append(i)
    base_ms = {"chat gpt-4o": 800.0, "SELECT crm.items": 4.0, "search kb": 40.0}

    def place(i: int, at: np.ndarray) -> np.ndarray:
        st[i] = at
        cursor = at + rng.exponential(0.5, n_traces)
        prev_start = cursor
        for c in children.get(i, []):
            begin = prev_start if _TEMPLATE[c][4] else cursor
            prev_start = begin
            end_c = place(c, begin)
            cursor = np.maximum(cursor, end_c) + rng.exponential(0.3, n_traces)
        own = base_ms.get(_TEMPLATE[i][0], 1.0) * rng.lognormal(0.0, 0.4, n_traces)
        en[i] = cursor + (own if not children.get(i) else rng.exponential(0.5, n_traces))
        return en[i]

    place(0, np.zeros(n_traces))
    skew = rng.random(n_traces) < skew_share
    st[5, skew] = st[4, skew] - 2.0  # server span starts 2 ms before its client span
    trace_ids = np.char.add(
        _hex_strings(rng.integers(0, 2**63, n_traces, dtype=np.int64).astype(np.uint64)),
        _hex_strings(np.arange(n_traces, dtype=np.uint64)),
    )
    span_ids = _hex_strings(rng.integers(0, 2**63, (k, n_traces), dtype=np.int64).astype(np.uint64))
    parents = np.array([_TEMPLATE[i][3] for i in range(k)])
    par_ids = span_ids[np.maximum(parents, 0)].astype(object)
    par_ids[parents < 0] = None
    start_ns = t0[None, :] + (st * 1e6).astype("int64")
    end_ns = t0[None, :] + (en * 1e6).astype("int64")

    def rep(col: int) -> np.ndarray:
        return np.repeat(
            np.array([_TEMPLATE[i][col] for i in range(k)], dtype=object)[:, None], n_traces, 1
        )

    df = pd.DataFrame(
        {
            "trace_id": np.repeat(trace_ids[None, :], k, 0).ravel(order="F"),
            "span_id": span_ids.ravel(order="F"),
            "parent_span_id": par_ids.ravel(order="F"),
            "name": rep(0).ravel(order="F"),
            "kind": rep(2).ravel(order="F"),
            "service": rep(1).ravel(order="F"),
            "start_ts": pd.to_datetime(start_ns.ravel(order="F"), unit="ns"),
            "end_ts": pd.to_datetime(end_ns.ravel(order="F"), unit="ns"),
            "duration_ms": ((end_ns - start_ns) / 1e6).ravel(order="F"),
            "status_code": "ok",
        }
    )
    if with_attributes:
        attrs = [json.dumps(_TEMPLATE[i][5]) for i in range(k)]
        df["attributes"] = np.tile(np.array(attrs, dtype=object), n_traces)
    orphan = np.repeat(rng.random(n_traces) < orphan_share, k) & (
        np.tile(np.arange(k), n_traces) == 3
    )
    return df[~orphan].reset_index(drop=True)


def span_time_bounds(
    warehouse: Warehouse | str | None = None,
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Earliest and latest span start in the warehouse (``(None, None)`` when empty)."""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    r = wh.query("SELECT min(start_ts) AS lo, max(start_ts) AS hi FROM spans")
    lo, hi = r["lo"].iloc[0], r["hi"].iloc[0]
    return (None if pd.isna(lo) else pd.Timestamp(lo)), (None if pd.isna(hi) else pd.Timestamp(hi))
