"""Metrics and logs derived from the simulated traffic (so incidents show up in them too)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lumina_analytics.simulate import incidents as inc
from lumina_analytics.simulate.model import AGENTS, MODELS, PROVIDERS, REGIONS, SERVICES
from lumina_analytics.simulate.traces import ERROR_HTTP_STATUS, ERROR_TYPES, MS, NS, World, _ns

STEP_NS = 300 * NS  # OTLP metrics every 5 minutes
PROM_STEP_NS = 1800 * NS  # Prometheus samples every 30 minutes

MEMORY_BASE_MB = {
    "gateway": 600,
    "agent-runtime": 2400,
    "planner": 900,
    "retriever": 3000,
    "tool-executor": 1200,
    "llm-proxy": 800,
    "postgres": 6000,
}


@dataclass
class MetricSeries:
    """Per (service, region): OTLP gauge/sum values on a 5-minute grid."""

    ts: np.ndarray  # int64 ns grid
    values: dict[tuple[str, str], dict[str, np.ndarray]]  # (service, region) -> name -> values


def span_regions(world: World) -> np.ndarray:
    """Region index of every span (the region of its trace's session)."""
    t_region = world.s_region[world.t_session]
    return t_region[np.concatenate(world.spans.trace)]


def service_metrics(world: World, plan: inc.Plan, rng: np.random.Generator) -> MetricSeries:
    """CPU, memory, request counters and queue depth per service instance (one per region)."""
    start = _ns(plan.start)
    n_bins = plan.days * 24 * 12
    grid = start + np.arange(n_bins, dtype=np.int64) * STEP_NS
    sp = world.spans
    svc = np.concatenate(sp.service)
    st = np.concatenate(sp.start)
    dur_ms = (np.concatenate(sp.end) - st) / MS
    reg = span_regions(world)
    names = [n for part in sp.name for n in part]
    is_sql = np.fromiter((n.startswith("SELECT") for n in names), dtype=bool, count=len(names))
    b = np.clip((st - start) // STEP_NS, 0, n_bins - 1)
    bad = inc.plan_bad_version(plan)
    values: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for s_i, service in enumerate(SERVICES):
        for r_i, region in enumerate(REGIONS):
            own = is_sql if service == "postgres" else svc == s_i
            m = own & (reg == r_i)
            count = np.bincount(b[m], minlength=n_bins).astype(float)
            busy_ms = np.bincount(b[m], weights=dur_ms[m], minlength=n_bins)
            peak = max(float(np.quantile(count, 0.99)), 1.0)
            load = count / peak
            cpu = 0.06 + 0.62 * load + rng.normal(0, 0.015, n_bins)
            if service == inc.REGRESSION_SERVICE:
                ver = inc.version_lookup(plan.deployments, service, region, grid)
                cpu = cpu + np.where(ver == bad, 0.15, 0.0)
            smooth = pd.Series(load).rolling(12, min_periods=1).mean().to_numpy()
            sawtooth = (np.arange(n_bins) % 36) / 36.0
            mem = MEMORY_BASE_MB[service] * (1.0 + 0.2 * smooth + 0.1 * sawtooth) * 1024 * 1024
            series = {
                "process.cpu.utilization": np.clip(cpu, 0.01, 1.0),
                "process.memory.usage": np.round(mem + rng.normal(0, 2e6, n_bins)),
                "lumina.service.requests": np.cumsum(count),
            }
            if service in ("agent-runtime", "llm-proxy"):
                in_flight = busy_ms / (STEP_NS / MS)
                series["lumina.queue.depth"] = np.round(
                    np.maximum(0.0, in_flight * 0.3 + rng.normal(0, 0.3, n_bins)), 1
                )
            values[(service, region)] = series
    return MetricSeries(grid, values)


def prometheus_samples(world: World, plan: inc.Plan) -> pd.DataFrame:
    """llm-proxy counters per provider/region/outcome and quota gauges on a 15-minute grid.

    Columns: ``ts_ns, metric, provider, region, outcome, value`` (outcome empty for gauges).
    """
    start = _ns(plan.start)
    n_bins = plan.days * 24 * 3600 * NS // PROM_STEP_NS
    grid = start + (np.arange(n_bins, dtype=np.int64) + 1) * PROM_STEP_NS  # scrape at bin end
    c_region = world.s_region[world.t_session[world.c_trace]]
    b = np.clip((world.c_start - start) // PROM_STEP_NS, 0, n_bins - 1)
    rows = []
    outcomes = ("ok", *ERROR_TYPES[1:])
    for p_i, p in enumerate(PROVIDERS):
        for r_i, region in enumerate(REGIONS):
            m = (world.c_provider == p_i) & (c_region == r_i)
            for e_i, outcome in enumerate(outcomes):
                mm = m & (world.c_error == e_i)
                cum = np.cumsum(np.bincount(b[mm], minlength=n_bins))
                rows.append(
                    pd.DataFrame(
                        {
                            "ts_ns": grid,
                            "metric": "lumina_llm_requests_total",
                            "provider": p.name,
                            "region": region,
                            "outcome": outcome,
                            "value": cum.astype(float),
                        }
                    )
                )
            tokens = np.bincount(
                b[m], weights=world.c_input[m] + world.c_output[m], minlength=n_bins
            )
            quota = max(float(tokens.max()) * 1.6, 1.0)
            rows.append(
                pd.DataFrame(
                    {
                        "ts_ns": grid,
                        "metric": "lumina_llm_quota_remaining_ratio",
                        "provider": p.name,
                        "region": region,
                        "outcome": "",
                        "value": np.round(1.0 - tokens / quota, 4),
                    }
                )
            )
    return pd.concat(rows, ignore_index=True).sort_values(["ts_ns"], kind="stable")


# severity numbers per OTLP: INFO 9, WARN 13, ERROR 17
_SEV = {"DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17}

BACKGROUND_TEMPLATES: dict[str, tuple[tuple[str, str], ...]] = {
    "gateway": (
        ("INFO", "health check ok (upstreams={n})"),
        ("INFO", "TLS certificate valid for {n} more days"),
        ("WARN", "client sent oversized request body ({n} KiB), rejected"),
        ("INFO", "rate limiter config reloaded ({n} tenants)"),
    ),
    "agent-runtime": (
        ("INFO", "worker pool resized to {n} workers"),
        ("INFO", "agent registry refreshed ({n} agents)"),
        ("WARN", "conversation state cache eviction: {n} entries"),
    ),
    "planner": (
        ("INFO", "plan cache hit ratio {n}%"),
        ("INFO", "loaded {n} planning policies"),
    ),
    "retriever": (
        ("INFO", "vector index segment merged ({n} segments left)"),
        ("WARN", "slow vector search: {n} ms"),
        ("INFO", "embedding cache warm ({n}k entries)"),
    ),
    "tool-executor": (
        ("INFO", "sandbox pool ready ({n} sandboxes)"),
        ("WARN", "tool call retried after connection reset (attempt {n})"),
    ),
    "llm-proxy": (
        ("INFO", "provider health probe ok ({n} providers)"),
        ("INFO", "token bucket refilled for {n} tenants"),
    ),
    "postgres": (
        ("INFO", "checkpoint complete: wrote {n} buffers"),
        ("WARN", "connection pool near limit: {n} active"),
        ("INFO", "autovacuum: processed {n} tables"),
    ),
}


def logs_frame(world: World, plan: inc.Plan, rng: np.random.Generator) -> pd.DataFrame:
    """Log records: request logs linked to traces, error logs per failure, incident and
    deployment messages, background chatter. Columns: ``ts_ns, severity, service, region,
    body, trace_id, span_id``."""
    parts: list[pd.DataFrame] = []
    t_region = world.s_region[world.t_session]
    regions = np.asarray(REGIONS, dtype=object)
    agent_names = [a.name for a in AGENTS]
    t_agent = world.s_agent[world.t_session]
    gw_ids = world.spans.span_id[0]

    def add(
        ts: np.ndarray,
        sev: list[str] | str,
        service: list[str] | str,
        region: np.ndarray,
        body: list[str],
        trace: list[str] | str = "",
        span: list[str] | str = "",
    ) -> None:
        parts.append(
            pd.DataFrame(
                {
                    "ts_ns": np.asarray(ts, dtype=np.int64),
                    "severity": sev,
                    "service": service,
                    "region": region,
                    "body": body,
                    "trace_id": trace,
                    "span_id": span,
                }
            )
        )

    # 1. access logs for a sample of requests (plus every failed request)
    pick = np.flatnonzero((rng.random(len(world.t_start)) < 0.25) | world.t_error)
    dur = (world.t_end - world.t_start) / MS
    add(
        world.t_end[pick],
        ["ERROR" if e else "INFO" for e in world.t_error[pick].tolist()],
        "gateway",
        regions[t_region[pick]],
        [
            f"POST /v1/agents/{agent_names[a]}/messages -> {502 if e else 200} in {d:.0f} ms"
            for a, e, d in zip(
                t_agent[pick].tolist(),
                world.t_error[pick].tolist(),
                dur[pick].tolist(),
                strict=True,
            )
        ],
        [world.t_id[i] for i in pick.tolist()],
        [gw_ids[i] for i in pick.tolist()],
    )
    # 2. one log per failed LLM call
    llm_ids = world.spans.span_id[3]
    f = np.flatnonzero(world.c_error > 0)
    prov = [p.name for p in PROVIDERS]
    mdl = [m.name for m in MODELS]
    bodies = []
    sevs = []
    for e, p, m in zip(
        world.c_error[f].tolist(),
        world.c_provider[f].tolist(),
        world.c_model[f].tolist(),
        strict=True,
    ):
        if ERROR_TYPES[e] == "rate_limit":
            sevs.append("WARN")
            bodies.append(
                f"provider {prov[p]} rate limited request for model {mdl[m]} (HTTP 429), retry-after 2s"
            )
        elif ERROR_TYPES[e] == "timeout":
            sevs.append("ERROR")
            bodies.append(f"request to {prov[p]} timed out after 30000 ms (model {mdl[m]})")
        else:
            sevs.append("ERROR")
            bodies.append(
                f"provider {prov[p]} returned HTTP {ERROR_HTTP_STATUS[e]} for model {mdl[m]}"
            )
    ct = world.c_trace[f]
    add(
        world.c_start[f] + (world.c_latency_ms[f] * MS).astype(np.int64),
        sevs,
        "llm-proxy",
        regions[t_region[ct]],
        bodies,
        [world.t_id[i] for i in ct.tolist()],
        [llm_ids[i] for i in f.tolist()],
    )
    # 3. failed tool calls and slow LLM calls
    tf = np.flatnonzero(world.tool_error)
    tool_ids = world.spans.span_id[5]
    add(
        world.tool_end[tf],
        "ERROR",
        "tool-executor",
        regions[t_region[world.tool_trace[tf]]],
        ["tool call failed: upstream returned an error status" for _ in tf.tolist()],
        [world.t_id[i] for i in world.tool_trace[tf].tolist()],
        [tool_ids[i] for i in tf.tolist()],
    )
    slow = np.flatnonzero((world.c_error == 0) & (world.c_latency_ms > 15_000))
    add(
        world.c_start[slow] + (world.c_latency_ms[slow] * MS).astype(np.int64),
        "WARN",
        "llm-proxy",
        regions[t_region[world.c_trace[slow]]],
        [
            f"slow completion from {prov[p]}: {lat:.0f} ms"
            for p, lat in zip(
                world.c_provider[slow].tolist(), world.c_latency_ms[slow].tolist(), strict=True
            )
        ],
        [world.t_id[i] for i in world.c_trace[slow].tolist()],
        [llm_ids[i] for i in slow.tolist()],
    )
    # 4. runaway loops
    rn = np.flatnonzero(world.t_k > 15)
    rt_ids = world.spans.span_id[1]
    add(
        world.t_end[rn],
        "WARN",
        "agent-runtime",
        regions[t_region[rn]],
        [
            f"agent {agent_names[a]} exceeded step budget: {k} LLM calls in one request"
            for a, k in zip(t_agent[rn].tolist(), world.t_k[rn].tolist(), strict=True)
        ],
        [world.t_id[i] for i in rn.tolist()],
        [rt_ids[i] for i in rn.tolist()],
    )
    # 5. incident chatter: circuit breaker during the outage, throttling during the storm
    chatter = (  # incident, seconds between lines, level, regions, message
        (
            "provider_outage",
            60,
            "ERROR",
            REGIONS,
            f"circuit breaker opened for provider {inc.OUTAGE_PROVIDER}: error rate above threshold",
        ),
        (
            "rate_limit_storm",
            120,
            "WARN",
            REGIONS,
            f"throttling tenant traffic to {inc.STORM_PROVIDER}/{inc.STORM_MODEL}: quota exhausted",
        ),
        (
            "cache_hit_drop",
            1800,
            "WARN",
            REGIONS[:1],
            f"prompt cache prefix mismatch for {inc.CACHE_DROP_MODEL}: system prompt version changed",
        ),
    )
    for kind, every_s, level, where, message in chatter:
        window = plan.incident(kind)
        ticks = np.arange(_ns(window.start), _ns(window.end), every_s * NS, dtype=np.int64)
        for r in where:
            add(
                ticks,
                level,
                "llm-proxy",
                np.full(len(ticks), r, dtype=object),
                [message] * len(ticks),
            )
    # 6. deployments
    d = plan.deployments
    dts = d["ts"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    add(
        dts,
        "INFO",
        d["service"].tolist(),
        d["region"].to_numpy(dtype=object),
        [
            f"deployment of {s} {v} started ({st})"
            for s, v, st in zip(d["service"], d["version"], d["strategy"], strict=True)
        ],
    )
    add(
        dts + 240 * NS,
        "INFO",
        d["service"].tolist(),
        d["region"].to_numpy(dtype=object),
        [
            f"deployment of {s} {v} completed"
            for s, v in zip(d["service"], d["version"], strict=True)
        ],
    )
    # 7. background chatter, about three lines per service, region and hour
    hours = plan.days * 24
    for service, templates in BACKGROUND_TEMPLATES.items():
        n = rng.poisson(3.0 * hours * len(REGIONS))
        ts = _ns(plan.start) + (rng.random(n) * hours * 3600 * NS).astype(np.int64)
        which = rng.integers(0, len(templates), n)
        nums = rng.integers(2, 99, n)
        add(
            ts,
            [templates[w][0] for w in which.tolist()],
            service,
            regions[rng.integers(0, len(REGIONS), n)],
            [
                templates[w][1].format(n=x)
                for w, x in zip(which.tolist(), nums.tolist(), strict=True)
            ],
        )
    logs = pd.concat(parts, ignore_index=True)
    logs = logs.sort_values("ts_ns", kind="stable").reset_index(drop=True)
    end = _ns(plan.start) + plan.days * 24 * 3600 * NS
    return logs[logs["ts_ns"] < end].reset_index(drop=True)


SEVERITY_NUMBER = _SEV
