"""Root-cause ranking: which service ORIGINATED a change between a baseline and an anomaly window.

The ranking combines evidence a victim does not show:

* **own self time** (exclusive time of a service's spans, excluding time spent waiting on
  other services) rising between the windows, per operation;
* **edge time** (the part of a client span not covered by the callee's server span:
  network, queueing, sidecars) rising on the edges around a service. A service whose
  edges *all* slowed (it is the common endpoint) is the likely origin; a caller with one
  slow edge among many normal ones is a victim;
* **errors** a service returns that its callees did not;
* **metrics** (per-pod CPU, latency percentiles, workload), when present, as robust
  z-scores of the window against the baseline.

:func:`rank_root_causes` is the API; :func:`load_trainticket` and
:func:`evaluate_trainticket` reproduce the evaluation on the Nezha TrainTicket data.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lumina_analytics.config import project_root
from lumina_analytics.errors import LuminaError, SchemaError
from lumina_analytics.traces import analyze_traces, parse_json_column
from lumina_analytics.warehouse import Warehouse

__all__ = [
    "RcaEvaluation",
    "default_trainticket_dir",
    "evaluate_trainticket",
    "load_metrics",
    "load_trainticket",
    "pod_to_service",
    "rank_root_causes",
    "service_features",
]

_POD_SUFFIX = re.compile(r"-[0-9a-f]{6,10}-[0-9a-z]{5}$")


def pod_to_service(pod: str) -> str:
    """``ts-basic-service-5dc8d4f9fd-llznp`` -> ``ts-basic-service`` (Kubernetes Deployment pods)."""
    return _POD_SUFFIX.sub("", str(pod))


# -- data ----------------------------------------------------------------------------
def default_trainticket_dir() -> Path:
    """``<project root>/../shared/data/traces/trainticket``."""
    return (project_root().parent / "shared" / "data" / "traces" / "trainticket").resolve()


def load_trainticket(root: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the Nezha TrainTicket folder: ``(spans, metrics)`` in the warehouse's shapes.

    ``spans`` has the ``spans`` table's columns (``service`` = pod name without the
    replica hash, resource JSON holds the pod); ``metrics`` is long ``ts, name, labels,
    value`` with labels ``{"pod", "service"}`` and one name per metric column.
    """
    base = Path(root) if root else default_trainticket_dir()
    tdir, mdir = base / "trace", base / "metric"
    if not tdir.is_dir():
        raise LuminaError(
            f"no TrainTicket traces under {tdir}; pass --data DIR pointing at the folder with trace/ and metric/"
        )
    frames = []
    for f in sorted(tdir.glob("*.csv")):
        frames.append(
            pd.read_csv(
                f,
                dtype={
                    "TraceID": str,
                    "SpanID": str,
                    "ParentID": str,
                    "PodName": str,
                    "OperationName": str,
                },
            )
        )
    if not frames:
        raise LuminaError(f"no *.csv span files in {tdir}")
    raw = pd.concat(frames, ignore_index=True).drop_duplicates(["TraceID", "SpanID"])
    start = pd.to_datetime(raw["StartTimeUnixNano"].astype("int64"), unit="ns")
    end = pd.to_datetime(raw["EndTimeUnixNano"].astype("int64"), unit="ns")
    pods = raw["PodName"].astype(str)
    parent = raw["ParentID"].astype(str)
    spans = pd.DataFrame(
        {
            "trace_id": raw["TraceID"].astype(str),
            "span_id": raw["SpanID"].astype(str),
            "parent_span_id": parent.where(parent.ne("root") & raw["ParentID"].notna(), None),
            "name": raw["OperationName"].astype(str),
            "kind": None,
            "service": pods.map(pod_to_service),
            "start_ts": start,
            "end_ts": end,
            "duration_ms": (raw["EndTimeUnixNano"] - raw["StartTimeUnixNano"]).astype("float64")
            / 1e6,
            "status_code": "unset",
            "status_message": None,
            "attributes": "{}",
            "resource": pods.map(
                lambda p: json.dumps({"k8s.pod.name": p, "service.name": pod_to_service(p)})
            ),
        }
    ).reset_index(drop=True)
    mframes = []
    for f in sorted(mdir.glob("*.csv")) if mdir.is_dir() else []:
        m = pd.read_csv(f)
        if "TimeStamp" not in m.columns:
            continue
        pod_col = (
            "PodName"
            if "PodName" in m.columns
            else ("ServiceName" if "ServiceName" in m.columns else None)
        )
        pod = m[pod_col].astype(str) if pod_col else pd.Series(f.stem, index=m.index)
        ts = pd.to_datetime(m["TimeStamp"].astype("int64"), unit="s")
        num = m.drop(
            columns=[c for c in ("Time", "TimeStamp", "PodName", "ServiceName") if c in m.columns]
        )
        num = num.apply(pd.to_numeric, errors="coerce")
        long = num.assign(ts=ts, pod=pod).melt(
            id_vars=["ts", "pod"], var_name="name", value_name="value"
        )
        mframes.append(long)
    if mframes:
        ml = pd.concat(mframes, ignore_index=True)
        ml["service"] = ml["pod"].map(pod_to_service)
        ml["labels"] = [
            json.dumps({"pod": p, "service": s}, sort_keys=True)
            for p, s in zip(ml["pod"], ml["service"], strict=True)
        ]
        metrics = ml[["ts", "name", "labels", "value", "service"]].reset_index(drop=True)
    else:
        metrics = pd.DataFrame(columns=["ts", "name", "labels", "value", "service"])
    return spans, metrics


def load_metrics(warehouse: Warehouse | str | None, start: Any, end: Any) -> pd.DataFrame:
    """Metrics rows in ``[start, end)`` with a ``service`` column from their labels."""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    m = wh.query(
        "SELECT ts, name, CAST(labels AS VARCHAR) AS labels, value FROM metrics WHERE ts >= ? AND ts < ?",
        [pd.Timestamp(start).to_pydatetime(), pd.Timestamp(end).to_pydatetime()],
    )
    lab = parse_json_column(m["labels"])
    m["service"] = lab.map(
        lambda d: d.get("service") or d.get("service.name") or d.get("service_name") or d.get("job")
    )
    return m


# -- features ------------------------------------------------------------------------
_EXTERNAL_KEYS = [
    "peer.service",
    "server.address",
    "db.system",
    "db.system.name",
    "gen_ai.provider.name",
]


def _tag_spans(analyzed: pd.DataFrame) -> pd.DataFrame:
    """Add ``client_like`` (all children in other services) and ``callee`` to analysed spans."""
    a = analyzed
    parent = a["_parent_idx"].to_numpy()
    svc = a["service"].astype(str).to_numpy()
    kids = np.flatnonzero(parent >= 0)
    n = len(a)
    cross = svc[kids] != svc[parent[kids]]
    nk = np.bincount(parent[kids], minlength=n)
    nc = np.bincount(parent[kids][cross], minlength=n)
    first = pd.Series(svc[kids], index=parent[kids])
    first = first[~first.index.duplicated()]
    callee = pd.Series(first.reindex(np.arange(n)).to_numpy(), index=a.index, dtype=object)
    # A span is "client-like" (its exclusive time is time on the wire/queue to its callee)
    # when it is a client span whose children are all remote. Without span kinds, a span
    # that is not its service's entry span (its parent is in the same service) and whose
    # children are all remote is taken for a client span (as in Zipkin-style data).
    kind = (
        a["kind"].fillna("").astype(str).str.lower().to_numpy()
        if "kind" in a.columns
        else np.full(n, "", dtype=object)
    )
    psvc = np.where(parent >= 0, svc[np.maximum(parent, 0)], None)
    entry = (parent < 0) | (psvc != svc)
    unknown_kind = np.isin(kind, ["", "none", "unspecified", "nan"])
    client_like = (nk > 0) & (nk == nc) & ((kind == "client") | (unknown_kind & ~entry))
    # leaf client spans towards un-instrumented peers (DBs, LLM providers, external APIs)
    if "kind" in a.columns:
        leaf_client = (nk == 0) & a["kind"].fillna("").astype(str).str.lower().eq(
            "client"
        ).to_numpy()
        if leaf_client.any() and "attributes" in a.columns:
            from lumina_analytics.traces import span_attributes

            at = span_attributes(a[leaf_client], _EXTERNAL_KEYS)
            peer = at[_EXTERNAL_KEYS[0]]
            for k in _EXTERNAL_KEYS[1:]:
                peer = peer.fillna(at[k])
            peer = peer.fillna("external")
            callee.loc[a.index[leaf_client]] = ("ext:" + peer.astype(str)).to_numpy()
            client_like = client_like | leaf_client
    return a.assign(client_like=client_like, callee=callee.to_numpy(), service=svc)


def _log_ratio(w: pd.Series, b: pd.Series, floor: float) -> pd.Series:
    return pd.Series(np.log((w + floor) / (b + floor)), index=w.index)


def service_features(
    window: pd.DataFrame,
    baseline: pd.DataFrame,
    *,
    min_calls: int = 2,
    edge_floor_ms: float = 0.5,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-service and per-edge change features between two sets of analysed spans.

    Tag the full analysed frame with ``_tag_spans`` before slicing it into windows (the
    parent index refers to the unsliced frame).

    Returns ``(services, edges)``. ``edges``: ``caller, callee, calls_w, median_b,
    median_w, log_ratio`` of edge time (client span time not covered by the callee).
    ``services``: ``own_log_ratio`` (call-weighted log ratio of own self time per
    operation), ``own_excess_ms``, ``error_rate_b/_w``, ``calls_w``.
    """
    w = window if "client_like" in window.columns else _tag_spans(window)
    b = baseline if "client_like" in baseline.columns else _tag_spans(baseline)

    def _edges(x: pd.DataFrame) -> pd.DataFrame:
        x = x[x["client_like"] & x["callee"].notna()]
        return x.groupby(["service", "callee"])["self_ms"].agg(["median", "size"])

    ew, eb = _edges(w), _edges(b)
    e = (
        ew.merge(eb, left_index=True, right_index=True, how="inner", suffixes=("_w", "_b"))
        if len(ew) and len(eb)
        else pd.DataFrame()
    )
    if len(e):
        e = e[(e["size_w"] >= min_calls) & (e["size_b"] >= 1)]
        e = e.assign(
            log_ratio=_log_ratio(e["median_w"], e["median_b"], edge_floor_ms)
        ).reset_index()
        e = e.rename(columns={"service": "caller", "size_w": "calls_w", "size_b": "calls_b"})
    else:
        e = pd.DataFrame(
            columns=["caller", "callee", "median_w", "calls_w", "median_b", "calls_b", "log_ratio"]
        )

    def _own(x: pd.DataFrame) -> pd.DataFrame:
        x = x[~x["client_like"]]
        return x.groupby(["service", "name"])["self_ms"].agg(["median", "mean", "size"])

    ow, ob = _own(w), _own(b)
    j = ow.merge(ob, left_index=True, right_index=True, how="inner", suffixes=("_w", "_b"))
    j = j[j["size_w"] >= min_calls]
    j = j.assign(
        lr=_log_ratio(j["median_w"], j["median_b"], 0.5),
        exc=(j["mean_w"] - j["mean_b"]) * j["size_w"],
    )
    j = j.reset_index()
    j = j.assign(_wt=np.sqrt(j["size_w"].astype("float64")))
    j = j.assign(_wlr=j["lr"] * j["_wt"])
    gj = j.groupby("service")
    own = pd.DataFrame(
        {
            "own_log_ratio": gj["_wlr"].sum() / gj["_wt"].sum(),
            "own_excess_ms": gj["exc"].sum(),
        }
    )

    def _err(x: pd.DataFrame) -> pd.Series:
        st = x.get("status_code", pd.Series("", index=x.index)).fillna("").astype(str).str.lower()
        return st.eq("error").groupby(x["service"]).mean()

    svc = pd.DataFrame(
        index=pd.Index(sorted(set(w["service"]) | set(b["service"])), name="service")
    )
    svc = svc.join(own)
    svc["error_rate_b"] = _err(b)
    svc["error_rate_w"] = _err(w)
    svc["calls_w"] = w.groupby("service").size()
    svc = svc.fillna(
        {
            "own_log_ratio": 0.0,
            "own_excess_ms": 0.0,
            "error_rate_b": 0.0,
            "error_rate_w": 0.0,
            "calls_w": 0,
        }
    )
    return svc.reset_index(), e


def _metric_shift(
    metrics: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    b_start: pd.Timestamp,
    b_end: pd.Timestamp,
    pattern: str,
) -> pd.Series:
    """Per service: max over matching metrics/labels of (mean_w - mean_b) / max(std_b, 10% |mean_b|)."""
    if metrics is None or metrics.empty or "service" not in metrics.columns:
        return pd.Series(dtype="float64")
    m = metrics[metrics["name"].astype(str).str.contains(pattern, case=False, regex=True)]
    ts = pd.to_datetime(m["ts"])
    key = ["service", "name"] + (["labels"] if "labels" in m.columns else [])
    mw = m[(ts >= start) & (ts < end)].groupby(key)["value"].mean()
    mb = m[(ts >= b_start) & (ts < b_end)].groupby(key)["value"].agg(["mean", "std"])
    if mw.empty or mb.empty:
        return pd.Series(dtype="float64")
    denom = np.maximum(mb["std"].fillna(0.0), 0.1 * mb["mean"].abs()) + 1e-9
    shift = ((mw - mb["mean"]) / denom).dropna()
    return shift.groupby(level="service").max()


# -- ranking -------------------------------------------------------------------------
@dataclass
class _Weights:
    edge_threshold: float = 0.5  # ln units: edge time must grow by ~65% before it counts
    callee_weight: float = 1.0  # an edge slowing down is blamed on its callee first ...
    caller_weight: float = 0.6  # ... and on its caller second
    own_weight: float = 1.0
    own_threshold: float = 0.3
    metric_sigmas: float = 10.0  # saturation metrics count once they shift by > 10 sigma
    metric_weight: float = 1.5
    error_weight: float = 3.0


def rank_root_causes(
    spans: pd.DataFrame,
    start: Any,
    end: Any,
    baseline_start: Any = None,
    baseline_end: Any = None,
    metrics: pd.DataFrame | None = None,
    analyzed: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Rank services by how likely each ORIGINATED the change in ``[start, end)`` vs the baseline.

    ``spans``: spans-shaped frame covering both windows (traces are assigned to a window
    by their root start). ``baseline_*`` default to the same length just before ``start``.
    ``metrics``: optional long ``ts, name, value, service`` frame (CPU/memory saturation
    metrics are used). Returns ``service, score, rank, edge_score, own_score,
    metric_score, error_score, consistency, evidence``; higher score = more likely origin.
    """
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if end <= start:
        raise LuminaError(f"anomaly window end {end} is not after its start {start}")
    if baseline_end is None:
        baseline_end = start
    baseline_end = pd.Timestamp(baseline_end)
    baseline_start = (
        pd.Timestamp(baseline_start) if baseline_start is not None else baseline_end - (end - start)
    )
    a = analyzed if analyzed is not None else analyze_traces(spans)
    if "_parent_idx" not in a.columns:
        raise SchemaError("analyzed spans must come from traces.analyze_traces")
    if "client_like" not in a.columns:
        a = _tag_spans(a)
    ts = pd.to_datetime(a["start_ts"])
    root_ts = ts.where(a["is_root"]).groupby(a["trace_id"]).transform("min").fillna(ts)
    win = a[(root_ts >= start) & (root_ts < end)]
    base = a[(root_ts >= baseline_start) & (root_ts < baseline_end)]
    if win.empty:
        raise LuminaError(f"no spans in the anomaly window [{start}, {end})")
    if base.empty:
        raise LuminaError(
            f"no spans in the baseline window [{baseline_start}, {baseline_end}); choose an earlier baseline"
        )
    wt = _Weights()
    svc, edges = service_features(win, base)
    services = set(svc["service"]) | set(edges["caller"]) | set(edges["callee"])
    score = pd.DataFrame(index=pd.Index(sorted(services), name="service"))

    an = edges.assign(mass=np.maximum(edges["log_ratio"] - wt.edge_threshold, 0.0))
    into = an.groupby("callee")["mass"].sum() * wt.callee_weight
    out = an.groupby("caller")["mass"].sum() * wt.caller_weight
    inc = pd.concat(
        [
            an[["caller", "mass"]].rename(columns={"caller": "s"}),
            an[["callee", "mass"]].rename(columns={"callee": "s"}),
        ]
    )
    frac = (inc["mass"] > 0).groupby(inc["s"]).mean()
    score["edge_raw"] = into.reindex(score.index, fill_value=0.0) + out.reindex(
        score.index, fill_value=0.0
    )
    score["consistency"] = frac.reindex(score.index).fillna(0.0)
    score["edge_score"] = score["edge_raw"] * (0.5 + 0.5 * score["consistency"])
    own = svc.set_index("service")
    score["own_score"] = wt.own_weight * np.maximum(
        own["own_log_ratio"].reindex(score.index).fillna(0.0) - wt.own_threshold, 0.0
    )
    err_jump = (own["error_rate_w"] - own["error_rate_b"]).reindex(score.index).fillna(0.0)
    # errors a service returns although none of its callees' error rates rose
    callee_err = (
        edges.assign(j=edges["callee"].map(err_jump).fillna(0.0)).groupby("caller")["j"].max()
    )
    score["error_score"] = wt.error_weight * np.maximum(
        err_jump - callee_err.reindex(score.index).fillna(0.0), 0.0
    )
    ms = pd.Series(dtype="float64")
    if metrics is not None and not metrics.empty:
        ms = _metric_shift(
            metrics,
            start,
            end,
            baseline_start,
            baseline_end,
            r"cpu|memory|mem_|gc_|thread|saturation",
        )
        ms = ms[~ms.index.astype(str).str.contains("node", case=False)]
    score["metric_score"] = wt.metric_weight * np.maximum(
        np.log(np.maximum(ms.reindex(score.index).fillna(0.0), 1e-9) / wt.metric_sigmas), 0.0
    )
    score["score"] = score[["edge_score", "own_score", "metric_score", "error_score"]].sum(axis=1)

    def _why(r: pd.Series) -> str:
        parts = []
        if r["edge_score"] > 0:
            parts.append(f"slower edges ({r['consistency']:.0%} of its edges)")
        if r["own_score"] > 0:
            parts.append("own self time up")
        if r["metric_score"] > 0:
            parts.append("saturation metrics up")
        if r["error_score"] > 0:
            parts.append("new errors not from callees")
        return ", ".join(parts) or "no change"

    score["evidence"] = score.apply(_why, axis=1)
    res = (
        score.drop(columns=["edge_raw"])
        .reset_index()
        .sort_values(["score", "service"], ascending=[False, True])
    )
    res["rank"] = np.arange(1, len(res) + 1)
    cols = [
        "rank",
        "service",
        "score",
        "edge_score",
        "own_score",
        "metric_score",
        "error_score",
        "consistency",
        "evidence",
    ]
    return res[cols].reset_index(drop=True)


# -- TrainTicket evaluation ----------------------------------------------------------
@dataclass
class RcaEvaluation:
    """Accuracy of :func:`rank_root_causes` over a list of injected faults."""

    cases: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def top1(self) -> float:
        """Share of faults whose service ranked first."""
        return float((self.cases["rank"] == 1).mean()) if len(self.cases) else float("nan")

    @property
    def top3(self) -> float:
        """Share of faults whose service ranked in the top three."""
        return float((self.cases["rank"] <= 3).mean()) if len(self.cases) else float("nan")

    def summary(self) -> str:
        """One-line result."""
        return f"{len(self.cases)} faults: top-1 {self.top1:.1%}, top-3 {self.top3:.1%}"


def evaluate_trainticket(
    root: str | Path | None = None,
    window_minutes: float = 3.0,
    baseline_minutes: float = 5.0,
    use_metrics: bool = True,
) -> RcaEvaluation:
    """Rank root causes for every fault in ``fault_list.json``; one window rule for all faults.

    Window: ``[inject, inject + window_minutes)``; baseline: ``[inject - baseline_minutes, inject)``.
    """
    base = Path(root) if root else default_trainticket_dir()
    fl = base / "fault_list.json"
    if not fl.exists():
        raise LuminaError(f"no fault_list.json in {base}")
    faults = [f for group in json.loads(fl.read_text()).values() for f in group]
    spans, metrics = load_trainticket(base)
    a = _tag_spans(analyze_traces(spans))
    rows = []
    for f in faults:
        t = pd.Timestamp(int(f["inject_timestamp"]), unit="s")
        truth = pod_to_service(f["inject_pod"])
        ranked = rank_root_causes(
            spans,
            t,
            t + pd.Timedelta(minutes=window_minutes),
            t - pd.Timedelta(minutes=baseline_minutes),
            t,
            metrics=metrics if use_metrics else None,
            analyzed=a,
        )
        hit = ranked.index[ranked["service"] == truth]
        rank = int(ranked.loc[hit[0], "rank"]) if len(hit) else len(ranked) + 1
        rows.append(
            {
                "inject_time": t,
                "service": truth,
                "fault": f.get("inject_type"),
                "rank": rank,
                "top1_service": ranked["service"].iloc[0],
                "top3": ", ".join(ranked["service"].head(3)),
            }
        )
    return RcaEvaluation(pd.DataFrame(rows))
