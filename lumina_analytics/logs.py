"""Log search, span <-> log navigation, and template clustering with Drain3.

Search runs in the warehouse with DuckDB built-ins (``ILIKE``, ``regexp_matches``; the FTS
extension needs a download and is not used); every value is a bound parameter.
Clustering uses Drain3 configured in memory (no persistence file, no ``drain3.ini``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from lumina_analytics.errors import LuminaError
from lumina_analytics.warehouse import Warehouse

__all__ = [
    "LogClusterer",
    "logs_for_span",
    "new_or_surging_templates",
    "search_logs",
    "span_for_log",
    "template_counts",
]

_SEVERITIES = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]


def search_logs(
    warehouse: Warehouse | str | None = None,
    text: str | None = None,
    regex: str | None = None,
    service: str | Iterable[str] | None = None,
    min_severity: str | None = None,
    start: Any = None,
    end: Any = None,
    trace_id: str | None = None,
    span_id: str | None = None,
    limit: int | None = 10_000,
) -> pd.DataFrame:
    """Logs matching every given filter, newest first.

    ``text`` is a case-insensitive substring, ``regex`` an RE2 regular expression,
    ``min_severity`` keeps that level and above (``WARN`` keeps WARN, ERROR, FATAL).
    """
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    where: list[str] = ["1=1"]
    params: list[Any] = []
    if text:
        where.append("body ILIKE ?")
        params.append(
            "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        where[-1] += " ESCAPE '\\'"
    if regex:
        where.append("regexp_matches(body, ?)")
        params.append(regex)
    if service:
        svcs = [service] if isinstance(service, str) else list(service)
        where.append("list_contains(?, service)")
        params.append(svcs)
    if min_severity:
        sev = min_severity.upper().replace("WARNING", "WARN")
        if sev not in _SEVERITIES:
            raise LuminaError(f"unknown severity {min_severity!r}; use one of {_SEVERITIES}")
        where.append("list_contains(?, upper(severity))")
        params.append(
            _SEVERITIES[_SEVERITIES.index(sev) :]
            + (["WARNING"] if sev in ("TRACE", "DEBUG", "INFO", "WARN") else [])
        )
    if start is not None:
        where.append("ts >= ?")
        params.append(pd.Timestamp(start).to_pydatetime())
    if end is not None:
        where.append("ts < ?")
        params.append(pd.Timestamp(end).to_pydatetime())
    if trace_id:
        where.append("trace_id = ?")
        params.append(trace_id)
    if span_id:
        where.append("span_id = ?")
        params.append(span_id)
    sql = (
        "SELECT ts, severity, service, body, trace_id, span_id, CAST(attributes AS VARCHAR) AS attributes "
        f"FROM logs WHERE {' AND '.join(where)} ORDER BY ts DESC"
    )
    if limit:
        sql += " LIMIT ?"
        params.append(int(limit))
    return wh.query(sql, params)


def logs_for_span(
    warehouse: Warehouse | str | None, trace_id: str, span_id: str | None = None
) -> pd.DataFrame:
    """The logs emitted inside one span (or one whole trace when ``span_id`` is None)."""
    return (
        search_logs(warehouse, trace_id=trace_id, span_id=span_id, limit=None)
        .sort_values("ts")
        .reset_index(drop=True)
    )


def span_for_log(warehouse: Warehouse | str | None, trace_id: str, span_id: str) -> pd.DataFrame:
    """The span a log record points to (empty frame when it is not in the warehouse)."""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    return wh.query(
        "SELECT trace_id, span_id, parent_span_id, name, service, start_ts, end_ts, duration_ms, status_code, "
        "status_message FROM spans WHERE trace_id = ? AND span_id = ?",
        [trace_id, span_id],
    )


# -- clustering ----------------------------------------------------------------------
_MASKS = [
    (
        r"((?<=[^A-Za-z0-9])|^)[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}((?=[^A-Za-z0-9])|$)",
        "UUID",
    ),
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(:\d+)?((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^A-Za-z0-9])|^)(0x)?[0-9a-fA-F]{12,}((?=[^A-Za-z0-9])|$)", "HEX"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+(\.\d+)?(ms|s|%)?)((?=[^A-Za-z0-9])|$)", "NUM"),
]


class LogClusterer:
    """Drain3 template mining, in memory (sklearn style: ``fit`` returns ``self``).

    Parameters: ``sim_th`` (Drain similarity threshold), ``depth`` (parse tree depth),
    ``max_clusters``. Fitted: ``templates_`` (``cluster_id, template, size``) and
    ``labels_`` (cluster id per fitted message).
    """

    def __init__(
        self, sim_th: float = 0.4, depth: int = 4, max_clusters: int | None = 1000
    ) -> None:
        self.sim_th = sim_th
        self.depth = depth
        self.max_clusters = max_clusters

    def _miner(self) -> Any:
        from drain3 import TemplateMiner
        from drain3.masking import MaskingInstruction
        from drain3.template_miner_config import TemplateMinerConfig

        cfg = TemplateMinerConfig()  # built in code: no drain3.ini is read, no state is saved
        cfg.drain_sim_th = self.sim_th
        cfg.drain_depth = self.depth
        cfg.drain_max_clusters = self.max_clusters
        cfg.profiling_enabled = False
        cfg.masking_instructions = [MaskingInstruction(p, m) for p, m in _MASKS]
        return TemplateMiner(persistence_handler=None, config=cfg)

    def fit(self, messages: Iterable[str]) -> LogClusterer:
        """Mine templates from ``messages``."""
        self.miner_ = self._miner()
        labels = [
            self.miner_.add_log_message("" if m is None else str(m))["cluster_id"] for m in messages
        ]
        self.labels_ = np.asarray(labels, dtype="int64")
        self.templates_ = self._templates()
        return self

    def _templates(self) -> pd.DataFrame:
        rows = [
            {"cluster_id": c.cluster_id, "template": c.get_template(), "size": c.size}
            for c in self.miner_.drain.clusters
        ]
        return (
            pd.DataFrame(rows, columns=["cluster_id", "template", "size"])
            .sort_values("size", ascending=False)
            .reset_index(drop=True)
        )

    def predict(self, messages: Iterable[str]) -> np.ndarray:
        """Cluster id of each message under the fitted templates (-1 when none matches)."""
        if not hasattr(self, "miner_"):
            raise LuminaError("LogClusterer is not fitted; call fit(messages) first")
        out = []
        for m in messages:
            c = self.miner_.match("" if m is None else str(m), full_search_strategy="fallback")
            out.append(-1 if c is None else c.cluster_id)
        return np.asarray(out, dtype="int64")

    def transform(self, logs: pd.DataFrame, column: str = "body") -> pd.DataFrame:
        """Fit on ``logs[column]`` and return ``logs`` with ``cluster_id`` and ``template``."""
        self.fit(logs[column].tolist())
        tmpl = {c.cluster_id: c.get_template() for c in self.miner_.drain.clusters}
        return logs.assign(cluster_id=self.labels_, template=[tmpl[i] for i in self.labels_])


def template_counts(
    clustered: pd.DataFrame, freq: str = "5min", by: Iterable[str] = ("template",)
) -> pd.DataFrame:
    """Counts per template (and e.g. service) per time bucket, long: ``ds, <by...>, count``."""
    by = list(by)
    f = clustered.assign(ds=pd.to_datetime(clustered["ts"]).dt.floor(freq))
    return f.groupby(["ds", *by]).size().rename("count").reset_index()


def new_or_surging_templates(
    clustered: pd.DataFrame,
    start: Any,
    end: Any,
    baseline_start: Any = None,
    baseline_end: Any = None,
    min_count: int = 3,
    surge_ratio: float = 3.0,
) -> pd.DataFrame:
    """Templates that are new in ``[start, end)`` or whose rate rose ``surge_ratio``-fold.

    Rates are per minute of each window; the baseline defaults to everything before
    ``start``. Columns: ``template, count_window, count_baseline, rate_window,
    rate_baseline, ratio, status`` (``new`` | ``surging``), most striking first.
    """
    ts = pd.to_datetime(clustered["ts"])
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    bs = pd.Timestamp(baseline_start) if baseline_start is not None else ts.min()
    be = pd.Timestamp(baseline_end) if baseline_end is not None else start
    w = clustered[(ts >= start) & (ts < end)]
    b = clustered[(ts >= bs) & (ts < be)]
    wmin = max((end - start).total_seconds() / 60, 1e-9)
    bmin = max((be - bs).total_seconds() / 60, 1e-9)
    cw = w.groupby("template").size()
    cb = b.groupby("template").size().reindex(cw.index, fill_value=0)
    res = pd.DataFrame({"count_window": cw, "count_baseline": cb})
    res["rate_window"] = res["count_window"] / wmin
    res["rate_baseline"] = res["count_baseline"] / bmin
    res["ratio"] = (res["rate_window"] / res["rate_baseline"].replace(0, np.nan)).astype("float64")
    res["status"] = np.where(
        res["count_baseline"] == 0,
        "new",
        np.where(res["ratio"] >= surge_ratio, "surging", "steady"),
    )
    res = res[(res["status"] != "steady") & (res["count_window"] >= min_count)]
    res = (
        res.assign(_k=res["ratio"].fillna(np.inf))
        .sort_values(["_k", "count_window"], ascending=False)
        .drop(columns="_k")
    )
    return res.reset_index()
