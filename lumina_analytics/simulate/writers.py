"""Serialise the simulated world: OTLP/JSON Lines (traces, metrics, logs), Prometheus text, CSV.

JSON is assembled from pre-escaped string pieces (every string the simulator emits is free of
quotes and backslashes), which is many times faster than building dicts for ``json.dumps``
and byte-for-byte deterministic. Gzip output uses ``mtime=0`` so it is deterministic too.
"""

from __future__ import annotations

import contextlib
import gzip
import io
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from lumina_analytics.simulate import incidents as inc
from lumina_analytics.simulate.model import ENVIRONMENT, REGIONS, SERVICES
from lumina_analytics.simulate.signals import SEVERITY_NUMBER, MetricSeries
from lumina_analytics.simulate.traces import NS, World, _ns

DAY_NS = 86400 * NS
SPANS_PER_LINE = 1000
LOGS_PER_LINE = 1000
SCOPE = '{"name":"lumina.simulator","version":"1.0.0"}'

_METRIC_META: dict[str, tuple[str, str, bool]] = {
    # name -> (unit, description, is_sum)
    "process.cpu.utilization": ("1", "CPU utilisation of the instance (0-1)", False),
    "process.memory.usage": ("By", "resident memory of the instance", False),
    "lumina.service.requests": ("{request}", "spans handled since the period start", True),
    "lumina.queue.depth": ("{request}", "requests waiting or in flight", False),
}


@contextlib.contextmanager
def open_text(path: Path, gz: bool) -> Iterator[IO[str]]:
    """Open ``path`` for writing text, gzip-compressed (deterministic header) when ``gz``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with (
            open(path, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zf,
            io.TextIOWrapper(zf, encoding="utf-8", newline="\n") as fh,
        ):
            yield fh
    else:
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            yield fh


def _attr(key: str, value: str) -> str:
    return '{"key":"' + key + '","value":{"stringValue":"' + value + '"}}'


def _resource(service: str, version: str | None, region: str, instance: bool = False) -> str:
    attrs = [_attr("service.name", service)]
    if version is not None:
        attrs.append(_attr("service.version", version))
    if instance:
        attrs.append(_attr("service.instance.id", f"{service}-{region}-0"))
    attrs += [
        _attr("cloud.region", region),
        _attr("cloud.provider", "aws"),
        _attr("deployment.environment", ENVIRONMENT),
    ]
    return '{"attributes":[' + ",".join(attrs) + "]}"


def _day_name(start: datetime, day: int) -> str:
    return (start + timedelta(days=day)).strftime("%Y-%m-%d")


def write_traces(
    world: World,
    start: datetime,
    days: int,
    out: Path,
    gz: bool,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """One ``traces/traces-YYYY-MM-DD.otlp.jsonl`` per day, one ``TracesData`` per line."""
    sp = world.spans
    trace = np.concatenate(sp.trace)
    svc = np.concatenate(sp.service)
    st = np.concatenate(sp.start)
    en = np.concatenate(sp.end)
    kind = np.concatenate(sp.kind)
    status = np.concatenate(sp.status)
    span_id = [x for part in sp.span_id for x in part]
    parent = [x for part in sp.parent for x in part]
    name = [x for part in sp.name for x in part]
    msg = [x for part in sp.status_msg for x in part]
    attrs = [x for part in sp.attrs for x in part]
    n = len(trace)
    t_region = world.s_region[world.t_session]
    # resource of every span: service, the version running when its trace started, region
    version = np.empty(n, dtype=object)
    for s_i, service in enumerate(SERVICES):
        m = svc == s_i
        if m.any():
            version[m] = world.t_versions[service][trace[m]]
    region = t_region[trace]
    key = (
        pd.Series(np.asarray(SERVICES, dtype=object)[svc]).astype(str)
        + "|"
        + pd.Series(version).astype(str)
        + "|"
        + pd.Series(np.asarray(REGIONS, dtype=object)[region]).astype(str)
    )
    res_code, uniques = pd.factorize(key)
    res_json = [_resource(*u.split("|")) for u in uniques]
    # order: traces by start time, spans by start within a trace
    t_rank = np.empty(len(world.t_start), dtype=np.int64)
    t_order = np.argsort(world.t_start, kind="stable")
    t_rank[t_order] = np.arange(len(t_order))
    order = np.lexsort((st, t_rank[trace]))
    start_ns = _ns(start)
    t_day = (world.t_start - start_ns) // DAY_NS
    # line ids per trace: a new line every ~SPANS_PER_LINE spans, and at each day boundary
    spans_per_trace = np.bincount(trace, minlength=len(world.t_start))[t_order]
    day_sorted = t_day[t_order]
    cum = np.cumsum(spans_per_trace) - spans_per_trace
    day_first = (
        np.r_[True, day_sorted[1:] != day_sorted[:-1]] if len(day_sorted) else np.zeros(0, bool)
    )
    day_base = np.repeat(cum[day_first], np.diff(np.r_[np.flatnonzero(day_first), len(cum)]))
    line_sorted = day_sorted * 1_000_000 + (cum - day_base) // SPANS_PER_LINE
    span_line = np.empty(len(world.t_start), dtype=np.int64)
    span_line[t_order] = line_sorted
    line_of_span = span_line[trace][order]
    codes_sorted = res_code[order]
    st_s = st.astype(str).tolist()
    en_s = en.astype(str).tolist()
    kind_l = kind.tolist()
    status_l = status.tolist()
    tid = world.t_id
    trace_l = trace.tolist()
    span_json = [
        f'{{"traceId":"{tid[trace_l[i]]}","spanId":"{span_id[i]}"'
        f'{_parent(parent[i])},"name":"{name[i]}","kind":{kind_l[i]},'
        f'"startTimeUnixNano":"{st_s[i]}","endTimeUnixNano":"{en_s[i]}",'
        f'"attributes":[{attrs[i]}]{_status(status_l[i], msg[i])}}}'
        for i in order.tolist()
    ]
    paths: list[Path] = []
    bounds = np.flatnonzero(np.r_[True, line_of_span[1:] != line_of_span[:-1], True])
    fh: IO[str] | None = None
    ctx: contextlib.AbstractContextManager[IO[str]] | None = None
    current_day = -1
    suffix = ".otlp.jsonl.gz" if gz else ".otlp.jsonl"
    try:
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            day = int(line_of_span[a] // 1_000_000)
            if day != current_day:
                if ctx is not None:
                    ctx.__exit__(None, None, None)
                    if progress:
                        progress(1)
                path = out / "traces" / f"traces-{_day_name(start, day)}{suffix}"
                paths.append(path)
                ctx = open_text(path, gz)
                fh = ctx.__enter__()
                current_day = day
            codes = codes_sorted[a:b]
            grp = np.argsort(codes, kind="stable")
            gc = codes[grp]
            gb = np.flatnonzero(np.r_[True, gc[1:] != gc[:-1], True])
            pieces = []
            for ga, gbb in zip(gb[:-1].tolist(), gb[1:].tolist(), strict=True):
                body = ",".join(span_json[a + j] for j in grp[ga:gbb].tolist())
                pieces.append(
                    '{"resource":'
                    + res_json[int(gc[ga])]
                    + ',"scopeSpans":[{"scope":'
                    + SCOPE
                    + ',"spans":['
                    + body
                    + "]}]}"
                )
            assert fh is not None
            fh.write('{"resourceSpans":[' + ",".join(pieces) + "]}\n")
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)
            if progress:
                progress(1)
    return paths


def _parent(p: str) -> str:
    return f',"parentSpanId":"{p}"' if p else ""


def _status(code: int, msg: str) -> str:
    return f',"status":{{"code":2,"message":"{msg}"}}' if code == 2 else ""


def _fmt(v: float) -> str:
    return repr(round(float(v), 6))


def write_metrics(
    series: MetricSeries, start: datetime, days: int, out: Path, gz: bool
) -> list[Path]:
    """One ``metrics/metrics-YYYY-MM-DD.otlp.jsonl`` per day, one ``MetricsData`` per instance."""
    paths: list[Path] = []
    start_ns = _ns(start)
    ts_s = series.ts.astype(str)
    day_of = (series.ts - start_ns) // DAY_NS
    suffix = ".otlp.jsonl.gz" if gz else ".otlp.jsonl"
    for day in range(days):
        idx = np.flatnonzero(day_of == day)
        path = out / "metrics" / f"metrics-{_day_name(start, day)}{suffix}"
        with open_text(path, gz) as fh:
            for (service, region), values in series.values.items():
                # Labels on every point too, so readers that keep only some resource
                # attributes still tell the instances apart.
                labels = ',"attributes":[' + _attr("cloud.region", region) + "]}"
                metrics = []
                for mname, arr in values.items():
                    unit, desc, is_sum = _METRIC_META[mname]
                    if is_sum:
                        pts = ",".join(
                            '{"startTimeUnixNano":"'
                            + str(start_ns)
                            + '","timeUnixNano":"'
                            + ts_s[i]
                            + '","asInt":"'
                            + str(int(arr[i]))
                            + '"'
                            + labels
                            for i in idx.tolist()
                        )
                        data = (
                            '"sum":{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":['
                            + pts
                            + "]}"
                        )
                    else:
                        pts = ",".join(
                            '{"timeUnixNano":"' + ts_s[i] + '","asDouble":' + _fmt(arr[i]) + labels
                            for i in idx.tolist()
                        )
                        data = '"gauge":{"dataPoints":[' + pts + "]}"
                    metrics.append(
                        '{"name":"'
                        + mname
                        + '","unit":"'
                        + unit
                        + '","description":"'
                        + desc
                        + '",'
                        + data
                        + "}"
                    )
                fh.write(
                    '{"resourceMetrics":[{"resource":'
                    + _resource(service, None, region, True)
                    + ',"scopeMetrics":[{"scope":'
                    + SCOPE
                    + ',"metrics":['
                    + ",".join(metrics)
                    + "]}]}]}\n"
                )
        paths.append(path)
    return paths


_PROM_HELP = {
    "lumina_llm_requests_total": ("counter", "LLM calls through llm-proxy by provider and outcome"),
    "lumina_llm_quota_remaining_ratio": ("gauge", "share of the provider token quota left"),
}


def write_prometheus(samples: pd.DataFrame, start: datetime, days: int, out: Path) -> list[Path]:
    """One ``metrics/llm-proxy-YYYY-MM-DD.prom`` per day: text exposition with timestamps (ms)."""
    paths: list[Path] = []
    start_ns = _ns(start)
    day_of = (samples["ts_ns"].to_numpy() - start_ns - 1) // DAY_NS  # scrape at bin end
    for day in range(days):
        d = samples[day_of == day]
        lines = []
        for metric, (mtype, help_) in _PROM_HELP.items():
            m = d[d["metric"] == metric]
            lines.append(f"# HELP {metric} {help_}")
            lines.append(f"# TYPE {metric} {mtype}")
            for ts, prov, reg, outc, val in zip(
                (m["ts_ns"].to_numpy() // 1_000_000).tolist(),
                m["provider"].tolist(),
                m["region"].tolist(),
                m["outcome"].tolist(),
                m["value"].tolist(),
                strict=True,
            ):
                labels = f'provider="{prov}",region="{reg}"' + (
                    f',outcome="{outc}"' if outc else ""
                )
                lines.append(f"{metric}{{{labels}}} {_fmt(val)} {ts}")
        path = out / "metrics" / f"llm-proxy-{_day_name(start, day)}.prom"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def write_logs(logs: pd.DataFrame, start: datetime, days: int, out: Path, gz: bool) -> list[Path]:
    """One ``logs/logs-YYYY-MM-DD.otlp.jsonl`` per day, one ``LogsData`` per ~1000 records."""
    paths: list[Path] = []
    start_ns = _ns(start)
    ts = logs["ts_ns"].to_numpy()
    day_of = (ts - start_ns) // DAY_NS
    ts_s = ts.astype(str)
    sev = logs["severity"].tolist()
    body = logs["body"].tolist()
    tid = logs["trace_id"].tolist()
    sid = logs["span_id"].tolist()
    rec = [
        '{"timeUnixNano":"'
        + ts_s[i]
        + '","observedTimeUnixNano":"'
        + ts_s[i]
        + '","severityNumber":'
        + str(SEVERITY_NUMBER[sev[i]])
        + ',"severityText":"'
        + sev[i]
        + '","body":{"stringValue":"'
        + body[i]
        + '"}'
        + (',"traceId":"' + tid[i] + '","spanId":"' + sid[i] + '"' if tid[i] else "")
        + "}"
        for i in range(len(ts_s))
    ]
    key = logs["service"].astype(str) + "|" + logs["region"].astype(str)
    codes, uniques = pd.factorize(key)
    res_json = [_resource(u.split("|")[0], None, u.split("|")[1]) for u in uniques]
    suffix = ".otlp.jsonl.gz" if gz else ".otlp.jsonl"
    for day in range(days):
        idx = np.flatnonzero(day_of == day)
        path = out / "logs" / f"logs-{_day_name(start, day)}{suffix}"
        with open_text(path, gz) as fh:
            for a in range(0, len(idx), LOGS_PER_LINE):
                chunk = idx[a : a + LOGS_PER_LINE]
                cc = codes[chunk]
                grp = np.argsort(cc, kind="stable")
                gc = cc[grp]
                gb = np.flatnonzero(np.r_[True, gc[1:] != gc[:-1], True])
                pieces = []
                for ga, gbb in zip(gb[:-1].tolist(), gb[1:].tolist(), strict=True):
                    recs = ",".join(rec[int(chunk[j])] for j in grp[ga:gbb].tolist())
                    pieces.append(
                        '{"resource":'
                        + res_json[int(gc[ga])]
                        + ',"scopeLogs":[{"scope":'
                        + SCOPE
                        + ',"logRecords":['
                        + recs
                        + "]}]}"
                    )
                fh.write('{"resourceLogs":[' + ",".join(pieces) + "]}\n")
        paths.append(path)
    return paths


def _ts_str(col: pd.Series) -> pd.Series:
    return pd.to_datetime(col).dt.strftime("%Y-%m-%d %H:%M:%S")


def write_csvs(events: pd.DataFrame, plan: inc.Plan, out: Path) -> dict[str, Path]:
    """``events.csv``, ``deployments.csv`` and ``incidents.csv`` with the warehouse columns."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "events": out / "events.csv",
        "deployments": out / "deployments.csv",
        "incidents": out / "incidents.csv",
    }
    events.to_csv(paths["events"], index=False, lineterminator="\n")
    dep = plan.deployments.copy()
    dep["ts"] = _ts_str(dep["ts"])
    dep.to_csv(paths["deployments"], index=False, lineterminator="\n")
    incs = plan.incidents_frame()
    incs["start_ts"] = _ts_str(incs["start_ts"])
    incs["end_ts"] = _ts_str(incs["end_ts"])
    incs.to_csv(paths["incidents"], index=False, lineterminator="\n")
    return paths
