"""Vectorised generation of sessions, multi-step agent traces, LLM calls and spans.

Everything is drawn with one :class:`numpy.random.Generator` in a fixed order, so one seed
always gives the same world. Times are int64 nanoseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from lumina_analytics.simulate import incidents as inc
from lumina_analytics.simulate.model import (
    AGENTS,
    GROWTH_PER_30_DAYS,
    MODEL_INDEX,
    MODELS,
    N_PLUS_ONE_ITEM_SQL,
    PROVIDER_INDEX,
    PROVIDERS,
    REGION_UTC_OFFSET,
    REGIONS,
    SERVICE_INDEX,
    SERVICES,
    SESSIONS_PER_DAY,
    TENANT_INDEX,
    TENANTS,
    TOKENS_CODE_INPUT,
    TOKENS_CODE_OUTPUT,
    TOKENS_CONV_INPUT,
    TOKENS_CONV_OUTPUT,
    TOOL_INDEX,
    TOOLS,
    UNPRICED_MODEL,
    WEEKLY,
)

NS = 1_000_000_000
MS = 1_000_000
HOUR_NS = 3600 * NS

ERROR_TYPES: tuple[str, ...] = ("", "rate_limit", "server_error", "timeout")
ERROR_HTTP_STATUS = (0, 429, 500, 504)
#: Span kinds as OTLP enum integers.
KIND_INTERNAL, KIND_SERVER, KIND_CLIENT = 1, 2, 3
#: Share of LLM spans written with deprecated attribute names.
DEPRECATED_SHARE = 0.02
#: Probability that a call reuses a prompt from its agent's pool of templates.
PROMPT_REUSE_P = 0.35
PROMPT_POOL = 25
#: Share of LLM calls after the planner call that follow a tool call.
TOOL_STEP_P = 0.65


def _ns(dt: datetime) -> int:
    return int(np.datetime64(dt, "ns").astype(np.int64))


def hex_ids(rng: np.random.Generator, n: int, nbytes: int) -> list[str]:
    """``n`` random lower-case hex ids of ``nbytes`` bytes each."""
    if n == 0:
        return []
    raw = rng.bytes(n * nbytes).hex()
    w = 2 * nbytes
    return [raw[i : i + w] for i in range(0, n * w, w)]


def _group_exclusive_cumsum(values: np.ndarray, group_start: np.ndarray) -> np.ndarray:
    """Exclusive cumulative sum restarting at each group; ``group_start`` marks first rows."""
    cs = np.cumsum(values)
    excl = cs - values
    first_idx = np.flatnonzero(group_start)
    base = np.repeat(excl[first_idx], np.diff(np.r_[first_idx, len(values)]))
    return excl - base


def _categorical(rng: np.random.Generator, cum: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Draw one category per element of ``rows`` from per-row cumulative weights ``cum``."""
    u = rng.random(len(rows))
    return (u[:, None] > cum[rows]).sum(axis=1)


@dataclass
class Spans:
    """Column arrays of every span (one row per span)."""

    trace: list[np.ndarray] = field(default_factory=list)
    span_id: list[list[str]] = field(default_factory=list)
    parent: list[list[str]] = field(default_factory=list)
    name: list[list[str]] = field(default_factory=list)
    kind: list[np.ndarray] = field(default_factory=list)
    service: list[np.ndarray] = field(default_factory=list)
    start: list[np.ndarray] = field(default_factory=list)
    end: list[np.ndarray] = field(default_factory=list)
    status: list[np.ndarray] = field(default_factory=list)  # 0 unset, 1 ok, 2 error
    status_msg: list[list[str]] = field(default_factory=list)
    attrs: list[list[str]] = field(default_factory=list)

    def add(
        self,
        trace: np.ndarray,
        span_id: list[str],
        parent: list[str],
        name: list[str],
        kind: int | np.ndarray,
        service: int,
        start: np.ndarray,
        end: np.ndarray,
        status: np.ndarray,
        status_msg: list[str],
        attrs: list[str],
    ) -> None:
        """Append one category of spans (all lists/arrays of equal length)."""
        n = len(trace)
        self.trace.append(np.asarray(trace, dtype=np.int64))
        self.span_id.append(span_id)
        self.parent.append(parent)
        self.name.append(name)
        self.kind.append(np.broadcast_to(np.asarray(kind, dtype=np.int8), (n,)).copy())
        self.service.append(np.full(n, service, dtype=np.int16))
        self.start.append(np.asarray(start, dtype=np.int64))
        self.end.append(np.asarray(end, dtype=np.int64))
        self.status.append(np.asarray(status, dtype=np.int8))
        self.status_msg.append(status_msg)
        self.attrs.append(attrs)


@dataclass
class World:
    """Everything drawn for one period: sessions, traces, LLM calls and spans."""

    # sessions
    s_tenant: np.ndarray
    s_user: list[str]
    s_agent: np.ndarray
    s_region: np.ndarray
    s_start: np.ndarray
    s_id: list[str]
    s_turns: np.ndarray
    # traces
    t_session: np.ndarray
    t_start: np.ndarray
    t_end: np.ndarray
    t_id: list[str]
    t_k: np.ndarray
    t_error: np.ndarray
    t_versions: dict[str, np.ndarray]
    # LLM calls
    c_trace: np.ndarray
    c_model: np.ndarray
    c_provider: np.ndarray
    c_start: np.ndarray
    c_latency_ms: np.ndarray
    c_ttft_ms: np.ndarray
    c_error: np.ndarray  # index into ERROR_TYPES
    c_input: np.ndarray
    c_output: np.ndarray
    c_cache_read: np.ndarray
    c_cache_write: np.ndarray
    c_reasoning: np.ndarray
    # tool calls
    tool_trace: np.ndarray
    tool_kind: np.ndarray
    tool_error: np.ndarray
    tool_start: np.ndarray
    tool_end: np.ndarray
    spans: Spans
    span_count: int = 0


def _hourly_rates(plan: inc.Plan, scale: float) -> np.ndarray:
    """Expected sessions per (tenant, hour) with daily and weekly cycles, growth and the surge."""
    hours = plan.days * 24
    h = np.arange(hours)
    start_ns = _ns(plan.start)
    hour_ns = start_ns + h.astype(np.int64) * HOUR_NS
    dow = ((hour_ns // (24 * HOUR_NS)) + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    weekly = np.asarray(WEEKLY)[dow]
    growth = 1.0 + GROWTH_PER_30_DAYS * h / (30 * 24)
    weights = np.asarray([t.weight for t in TENANTS])
    weights = weights / weights.sum()
    rates = np.empty((len(TENANTS), hours))
    utc_hour = (hour_ns // HOUR_NS) % 24
    for i, t in enumerate(TENANTS):
        local = (utc_hour + REGION_UTC_OFFSET[t.region]) % 24
        daily = 1.0 + 0.75 * np.cos(2 * np.pi * (local - 14) / 24)
        rates[i] = SESSIONS_PER_DAY / 24 * scale * weights[i] * weekly * growth * daily
    surge = plan.incident("traffic_surge")
    s0, s1 = _ns(surge.start), _ns(surge.end)
    in_surge = (hour_ns >= s0) & (hour_ns < s1)
    rates[TENANT_INDEX[inc.SURGE_TENANT], in_surge] *= inc.SURGE_FACTOR
    return rates


def generate(plan: inc.Plan, scale: float, rng: np.random.Generator) -> World:
    """Draw sessions, traces, LLM calls, tool calls and spans for a planned period."""
    start_ns = _ns(plan.start)
    # ---------------------------------------------------------------- sessions
    rates = _hourly_rates(plan, scale)
    counts = rng.poisson(rates)
    tenant_of = np.repeat(np.repeat(np.arange(len(TENANTS)), rates.shape[1]), counts.ravel())
    hour_of = np.repeat(np.tile(np.arange(rates.shape[1]), len(TENANTS)), counts.ravel())
    n_s = len(tenant_of)
    s_start = start_ns + hour_of * HOUR_NS + (rng.random(n_s) * HOUR_NS).astype(np.int64)
    order = np.argsort(s_start, kind="stable")
    s_tenant = tenant_of[order]
    s_start = s_start[order]
    users = np.asarray([t.users for t in TENANTS])
    s_user_idx = np.floor(users[s_tenant] * rng.random(n_s) ** 2).astype(np.int64)
    tenant_names = [t.id for t in TENANTS]
    s_user = [
        f"{tenant_names[t]}-u{u:05d}"
        for t, u in zip(s_tenant.tolist(), s_user_idx.tolist(), strict=True)
    ]
    agent_cum = np.cumsum(np.asarray([t.agents for t in TENANTS]), axis=1)
    agent_cum = agent_cum / agent_cum[:, -1:]
    s_agent = _categorical(rng, agent_cum, s_tenant)
    region_idx = np.asarray([REGIONS.index(t.region) for t in TENANTS])
    s_region = region_idx[s_tenant]
    s_turns = 1 + rng.poisson(1.5, n_s)
    s_id = hex_ids(rng, n_s, 8)

    # ---------------------------------------------------------------- traces
    t_session = np.repeat(np.arange(n_s), s_turns)
    n_t = len(t_session)
    first_turn = np.r_[True, t_session[1:] != t_session[:-1]] if n_t else np.zeros(0, bool)
    gaps = ((15.0 + rng.exponential(60.0, n_t)) * NS).astype(np.int64)
    gaps[first_turn] = NS  # the first message arrives a second after the session starts
    t_start = (
        s_start[t_session]
        + np.cumsum(gaps)
        - np.repeat((np.cumsum(gaps) - gaps)[first_turn], s_turns)
    )
    # turns that would start after the period ends are never sent
    in_period = t_start < start_ns + plan.days * 24 * HOUR_NS
    t_session, t_start = t_session[in_period], t_start[in_period]
    s_turns = np.bincount(t_session, minlength=n_s)
    n_t = len(t_session)
    t_agent = s_agent[t_session]
    t_tenant = s_tenant[t_session]
    t_region = s_region[t_session]
    loop_mean = np.asarray([a.loop_mean for a in AGENTS])[t_agent]
    run = plan.incident("runaway_agent")
    runaway = (
        (t_tenant == TENANT_INDEX[inc.RUNAWAY_TENANT])
        & (t_agent == [a.name for a in AGENTS].index(inc.RUNAWAY_AGENT))
        & (t_start >= _ns(run.start))
        & (t_start < _ns(run.end))
    )
    loop_mean = np.where(runaway, inc.RUNAWAY_LOOP_MEAN, loop_mean)
    t_k = 1 + rng.poisson(loop_mean)
    t_id = hex_ids(rng, n_t, 16)
    t_versions: dict[str, np.ndarray] = {}
    for service in SERVICES:
        v = np.empty(n_t, dtype=object)
        for r_i, region in enumerate(REGIONS):
            m = t_region == r_i
            v[m] = inc.version_lookup(plan.deployments, service, region, t_start[m])
        t_versions[service] = v

    # ---------------------------------------------------------------- LLM calls
    n_c = int(t_k.sum())
    c_trace = np.repeat(np.arange(n_t), t_k)
    c_j = np.arange(n_c) - np.repeat(np.cumsum(t_k) - t_k, t_k)
    c_agent = t_agent[c_trace]
    model_w = np.zeros((len(AGENTS), len(MODELS)))
    for a_i, a in enumerate(AGENTS):
        for name, w in a.models:
            model_w[a_i, MODEL_INDEX[name]] = w
    model_cum = np.cumsum(model_w, axis=1) / model_w.sum(axis=1, keepdims=True)
    c_model = _categorical(rng, model_cum, c_agent)
    # A handful of calls to a private model genai-prices cannot price (at least three).
    support = AGENTS.index(next(a for a in AGENTS if a.name == "support-agent"))
    unpriced = (c_agent == support) & (rng.random(n_c) < 0.001)
    cand = np.flatnonzero(c_agent == support)
    if len(cand):
        unpriced[cand[np.linspace(0, len(cand) - 1, min(3, len(cand))).astype(int)]] = True
    c_model[unpriced] = MODEL_INDEX[UNPRICED_MODEL]
    prov_of_model = np.asarray([PROVIDER_INDEX[m.provider] for m in MODELS])
    c_provider = prov_of_model[c_model]
    code = np.asarray([a.code for a in AGENTS])[c_agent]
    mu_in = np.where(code, TOKENS_CODE_INPUT[0], TOKENS_CONV_INPUT[0])
    sd_in = np.where(code, TOKENS_CODE_INPUT[1], TOKENS_CONV_INPUT[1])
    mu_out = np.where(code, TOKENS_CODE_OUTPUT[0], TOKENS_CONV_OUTPUT[0])
    sd_out = np.where(code, TOKENS_CODE_OUTPUT[1], TOKENS_CONV_OUTPUT[1])
    c_input = rng.lognormal(mu_in, sd_in) * (1.0 + 0.35 * c_j)  # context grows each step
    c_input = np.clip(np.round(c_input), 16, 120_000).astype(np.int64)
    visible = np.clip(np.round(rng.lognormal(mu_out, sd_out)), 1, 8192).astype(np.int64)
    reasoning_model = np.asarray([m.reasoning for m in MODELS])[c_model]
    c_reasoning = np.where(
        reasoning_model, np.round(visible * rng.uniform(0.5, 3.0, n_c)), 0
    ).astype(np.int64)
    c_output = visible + c_reasoning
    # prompt cache
    c_start_guess = t_start[c_trace]
    hit_p = np.asarray([m.cache_hit_p for m in MODELS])[c_model]
    drop = plan.incident("cache_hit_drop")
    in_drop = (
        (c_model == MODEL_INDEX[inc.CACHE_DROP_MODEL])
        & (c_start_guess >= _ns(drop.start))
        & (c_start_guess < _ns(drop.end))
    )
    hit_p = np.where(in_drop, hit_p * inc.CACHE_DROP_FACTOR, hit_p)
    hit = rng.random(n_c) < hit_p
    c_cache_read = np.where(hit, np.round(c_input * rng.uniform(0.4, 0.9, n_c)), 0).astype(np.int64)
    write_p = np.asarray([m.cache_write_p for m in MODELS])[c_model]
    write = (~hit) & (rng.random(n_c) < write_p)
    c_cache_write = np.where(write, np.round(c_input * rng.uniform(0.3, 0.7, n_c)), 0).astype(
        np.int64
    )
    # errors
    p_rl = np.asarray([p.p_rate_limit for p in PROVIDERS])[c_provider]
    p_se = np.asarray([p.p_server_error for p in PROVIDERS])[c_provider]
    p_to = np.asarray([p.p_timeout for p in PROVIDERS])[c_provider]
    out_i = plan.incident("provider_outage")
    in_out = (
        (c_provider == PROVIDER_INDEX[inc.OUTAGE_PROVIDER])
        & (c_start_guess >= _ns(out_i.start))
        & (c_start_guess < _ns(out_i.end))
    )
    p_se = np.where(in_out, inc.OUTAGE_ERROR_RATE * 2 / 3, p_se)
    p_to = np.where(in_out, inc.OUTAGE_ERROR_RATE / 3, p_to)
    storm = plan.incident("rate_limit_storm")
    in_storm = (
        (c_model == MODEL_INDEX[inc.STORM_MODEL])
        & (c_start_guess >= _ns(storm.start))
        & (c_start_guess < _ns(storm.end))
    )
    p_rl = np.where(in_storm, inc.STORM_RATE, p_rl)
    u = rng.random(n_c)
    c_error = np.where(
        u < p_rl, 1, np.where(u < p_rl + p_se, 2, np.where(u < p_rl + p_se + p_to, 3, 0))
    ).astype(np.int8)
    # latency: TTFT + output tokens x inter-token latency (llmperf fits), plus proxy overhead
    ttft_mu = np.asarray([p.ttft_mu for p in PROVIDERS])[c_provider]
    ttft_sd = np.asarray([p.ttft_sd for p in PROVIDERS])[c_provider]
    itl_mu = np.asarray([p.itl_mu for p in PROVIDERS])[c_provider]
    itl_sd = np.asarray([p.itl_sd for p in PROVIDERS])[c_provider]
    speed = np.asarray([m.speed for m in MODELS])[c_model]
    itl = rng.lognormal(itl_mu, itl_sd) * speed
    ttft = rng.lognormal(ttft_mu, ttft_sd) * (1.0 + c_input / 20_000.0) + c_reasoning * itl
    proxy_ms = rng.lognormal(np.log(15.0), 0.3, n_c)
    bad_version = inc.plan_bad_version(plan)
    slow = t_versions["llm-proxy"][c_trace] == bad_version
    proxy_ms = np.where(
        slow, proxy_ms + inc.REGRESSION_EXTRA_MS * rng.uniform(0.8, 1.2, n_c), proxy_ms
    )
    ttft = ttft + proxy_ms
    latency = ttft + (visible - 1) * itl
    err_latency = np.select(
        [c_error == 1, c_error == 2, c_error == 3],
        [
            rng.lognormal(np.log(120.0), 0.3, n_c),
            rng.lognormal(np.log(900.0), 0.5, n_c),
            30_000.0 + rng.exponential(40.0, n_c),
        ],
        0.0,
    )
    failed = c_error > 0
    latency = np.where(failed, err_latency + proxy_ms, latency)
    ttft = np.where(failed, np.nan, ttft)
    c_output = np.where(failed, 0, c_output)
    c_reasoning = np.where(failed, 0, c_reasoning)
    c_cache_read = np.where(failed, 0, c_cache_read)
    c_cache_write = np.where(failed, 0, c_cache_write)

    # ---------------------------------------------------------------- steps and timing
    retr = rng.random(n_t) < np.asarray([a.p_retrieval for a in AGENTS])[t_agent]
    # most later LLM calls follow a tool call; the rest are reflection steps without one
    has_tool = (c_j >= 1) & (rng.random(n_c) < TOOL_STEP_P)
    tool_trace = c_trace[has_tool]
    tool_j = c_j[has_tool]
    n_tool = len(tool_trace)
    agent_tools = [np.asarray([TOOL_INDEX[x] for x in a.tools]) for a in AGENTS]
    tool_agent = t_agent[tool_trace]
    n_tools_of_agent = np.asarray([len(x) for x in agent_tools])
    pick = np.floor(rng.random(n_tool) * n_tools_of_agent[tool_agent]).astype(np.int64)
    tool_table = np.full((len(AGENTS), max(n_tools_of_agent)), -1)
    for a_i, tl in enumerate(agent_tools):
        tool_table[a_i, : len(tl)] = tl
    tool_idx = tool_table[tool_agent, pick]
    tool_kind = np.asarray([t.kind for t in TOOLS], dtype=object)[tool_idx]
    t_mu = np.asarray([t.mu for t in TOOLS])[tool_idx]
    t_sd = np.asarray([t.sd for t in TOOLS])[tool_idx]
    tool_error = rng.random(n_tool) < np.asarray([t.p_error for t in TOOLS])[tool_idx]
    base_dur = rng.lognormal(t_mu, t_sd)
    # N+1: one orders query then one query per order, sequential inside the tool span
    np1 = tool_kind == "n_plus_one"
    n_items = np.where(np1, 3 + rng.poisson(2.0, n_tool), 0)
    item_tool = np.repeat(np.arange(n_tool), n_items)
    item_dur = rng.lognormal(np.log(1.4), 0.3, len(item_tool))
    item_sum = np.bincount(item_tool, weights=item_dur + 0.3, minlength=n_tool)
    # the first child of an N+1 tool is its orders query, timed by base_dur below
    tool_dur = np.where(np1, base_dur + item_sum + 2.0, base_dur + 2.0)
    retr_dur = rng.lognormal(np.log(35.0), 0.4, n_t)

    # step table: planner (order 0), retrieval (1), tool j (2j), llm j (2j+1)
    c_first = c_j == 0
    st_trace = np.concatenate([c_trace, tool_trace, np.flatnonzero(retr)])
    st_order = np.concatenate(
        [np.where(c_first, 0, 2 * c_j + 1), 2 * tool_j, np.ones(int(retr.sum()), np.int64)]
    )
    st_dur = np.concatenate([np.where(c_first, latency + 12.0, latency), tool_dur, retr_dur[retr]])
    n_st = len(st_trace)
    st_order_idx = np.lexsort((st_order, st_trace))
    gap_ms = 2.0
    d_sorted = st_dur[st_order_idx] + gap_ms
    tr_sorted = st_trace[st_order_idx]
    first = np.r_[True, tr_sorted[1:] != tr_sorted[:-1]] if n_st else np.zeros(0, bool)
    off_sorted = _group_exclusive_cumsum(d_sorted, first)
    st_off = np.empty(n_st)
    st_off[st_order_idx] = off_sorted
    total_ms = np.bincount(st_trace, weights=st_dur + gap_ms, minlength=n_t)
    base_off_ms = 6.0
    st_start = t_start[st_trace] + ((base_off_ms + st_off) * MS).astype(np.int64)
    c_step_start = st_start[:n_c]
    c_start = np.where(c_first, c_step_start + 6 * MS, c_step_start)
    c_end = c_start + (latency * MS).astype(np.int64)
    tool_start = st_start[n_c : n_c + n_tool]
    tool_end = tool_start + (tool_dur * MS).astype(np.int64)
    retr_start = st_start[n_c + n_tool :]
    runtime_end = t_start + ((base_off_ms + total_ms + 3.0) * MS).astype(np.int64)
    t_end = runtime_end + 4 * MS
    t_error = np.bincount(c_trace, weights=failed.astype(float), minlength=n_t) > 0

    # ---------------------------------------------------------------- spans
    spans = Spans()
    gw_id = hex_ids(rng, n_t, 8)
    rt_id = hex_ids(rng, n_t, 8)
    pl_id = hex_ids(rng, n_t, 8)
    agent_names = [a.name for a in AGENTS]
    t_agent_l = t_agent.tolist()
    t_sess_l = t_session.tolist()
    s_tenant_l = s_tenant.tolist()
    tenant_of_t = [tenant_names[s_tenant_l[s]] for s in t_sess_l]
    user_of_t = [s_user[s] for s in t_sess_l]
    conv_of_t = [s_id[s] for s in t_sess_l]
    code_of_t = np.where(t_error, 502, 200).tolist()
    empty = [""] * n_t
    spans.add(
        np.arange(n_t),
        gw_id,
        empty,
        ["POST /v1/agents/{agent}/messages"] * n_t,
        KIND_SERVER,
        SERVICE_INDEX["gateway"],
        t_start,
        t_end,
        np.where(t_error, 2, 0),
        ["upstream LLM call failed" if e else "" for e in t_error.tolist()],
        [
            _S("http.request.method", "POST")
            + ","
            + _S("http.route", "/v1/agents/{agent}/messages")
            + ","
            + _I("http.response.status_code", c)
            + ","
            + _S("lumina.tenant.id", tn)
            + ","
            + _S("enduser.id", us)
            for a, c, tn, us in zip(t_agent_l, code_of_t, tenant_of_t, user_of_t, strict=True)
        ],
    )
    spans.add(
        np.arange(n_t),
        rt_id,
        gw_id,
        [f"invoke_agent {agent_names[a]}" for a in t_agent_l],
        KIND_INTERNAL,
        SERVICE_INDEX["agent-runtime"],
        t_start + 2 * MS,
        runtime_end,
        np.where(t_error, 2, 0),
        ["agent step failed" if e else "" for e in t_error.tolist()],
        [
            _S("gen_ai.operation.name", "invoke_agent")
            + ","
            + _S("gen_ai.agent.name", agent_names[a])
            + ","
            + _S("gen_ai.conversation.id", cv)
            + ","
            + _S("lumina.tenant.id", tn)
            + ","
            + _I("lumina.agent.steps", int(k))
            for a, cv, tn, k in zip(t_agent_l, conv_of_t, tenant_of_t, t_k.tolist(), strict=True)
        ],
    )
    planner_start = c_step_start[c_first]
    planner_end = planner_start + ((latency[c_first] + 12.0) * MS).astype(np.int64)
    spans.add(
        np.arange(n_t),
        pl_id,
        rt_id,
        ["plan"] * n_t,
        KIND_INTERNAL,
        SERVICE_INDEX["planner"],
        planner_start,
        planner_end,
        np.zeros(n_t),
        empty,
        [_S("gen_ai.agent.name", agent_names[a]) for a in t_agent_l],
    )
    # LLM spans
    c_id = hex_ids(rng, n_c, 8)
    c_trace_l = c_trace.tolist()
    c_parent = [
        pl_id[t] if f else rt_id[t] for t, f in zip(c_trace_l, c_first.tolist(), strict=True)
    ]
    deprecated = rng.random(n_c) < DEPRECATED_SHARE
    pool = rng.random(n_c) < PROMPT_REUSE_P
    pool_idx = np.floor(PROMPT_POOL * rng.random(n_c) ** 2).astype(np.int64)
    pool_hashes = [
        [
            hashlib.blake2b(f"{a.name}/prompt/{i}".encode(), digest_size=8).hexdigest()
            for i in range(PROMPT_POOL)
        ]
        for a in AGENTS
    ]
    fresh = hex_ids(rng, n_c, 8)
    c_agent_l = c_agent.tolist()
    phash = [
        pool_hashes[a][p] if r else f
        for a, p, r, f in zip(c_agent_l, pool_idx.tolist(), pool.tolist(), fresh, strict=True)
    ]
    model_names = [m.name for m in MODELS]
    resp_names = [m.response_name for m in MODELS]
    prov_names = [p.name for p in PROVIDERS]
    # Pre-built attribute pieces: per (model, deprecated?), per error type, per trace.
    head = {
        (m_i, dep): _S("gen_ai.operation.name", "chat")
        + ","
        + _S("gen_ai.system" if dep else "gen_ai.provider.name", m.provider)
        + ","
        + _S("gen_ai.request.model", m.name)
        + ","
        for m_i, m in enumerate(MODELS)
        for dep in (False, True)
    }
    resp = [_S("gen_ai.response.model", r) + "," for r in resp_names]
    err_piece = [
        "",
        *(
            _S("error.type", e) + "," + _I("http.response.status_code", c) + ","
            for e, c in zip(ERROR_TYPES[1:], ERROR_HTTP_STATUS[1:], strict=True)
        ),
    ]
    tail_t = [
        _S("gen_ai.agent.name", agent_names[a])
        + ","
        + _S("gen_ai.conversation.id", cv)
        + ","
        + _S("lumina.tenant.id", tn)
        + ","
        + _S("enduser.id", us)
        + ","
        for a, cv, tn, us in zip(t_agent_l, conv_of_t, tenant_of_t, user_of_t, strict=True)
    ]
    k_in = '{"key":"gen_ai.usage.input_tokens","value":{"intValue":"'
    k_out = '"}},{"key":"gen_ai.usage.output_tokens","value":{"intValue":"'
    k_in_old = '{"key":"gen_ai.usage.prompt_tokens","value":{"intValue":"'
    k_out_old = '"}},{"key":"gen_ai.usage.completion_tokens","value":{"intValue":"'
    k_cr = ',{"key":"gen_ai.usage.cache_read.input_tokens","value":{"intValue":"'
    k_cw = ',{"key":"gen_ai.usage.cache_creation.input_tokens","value":{"intValue":"'
    k_rs = ',{"key":"gen_ai.usage.reasoning.output_tokens","value":{"intValue":"'
    k_tt = ',{"key":"lumina.time_to_first_token_ms","value":{"doubleValue":'
    k_ph = '{"key":"lumina.prompt.hash","value":{"stringValue":"'
    end_i = '"}}'
    llm_names = [f"chat {model_names[m]}" for m in c_model.tolist()]
    llm_msgs = [
        f"{ERROR_TYPES[e]}: HTTP {ERROR_HTTP_STATUS[e]} from {prov_names[p]}" if e else ""
        for e, p in zip(c_error.tolist(), c_provider.tolist(), strict=True)
    ]
    llm_attrs = [
        head[m, dep]
        + (err_piece[er] if er else resp[m])
        + (k_in_old if dep else k_in)
        + str(inp)
        + (k_out_old if dep else k_out)
        + str(out)
        + end_i
        + (k_cr + str(cr) + end_i if cr else "")
        + (k_cw + str(cw) + end_i if cw else "")
        + (k_rs + str(rs) + end_i if rs else "")
        + ("" if er else f"{k_tt}{tt:.3f}}}}}")
        + ","
        + tail_t[t]
        + k_ph
        + ph
        + '"}}'
        for m, t, dep, inp, out, cr, cw, rs, tt, er, ph in zip(
            c_model.tolist(),
            c_trace_l,
            deprecated.tolist(),
            c_input.tolist(),
            c_output.tolist(),
            c_cache_read.tolist(),
            c_cache_write.tolist(),
            c_reasoning.tolist(),
            ttft.tolist(),
            c_error.tolist(),
            phash,
            strict=True,
        )
    ]
    spans.add(
        c_trace,
        c_id,
        c_parent,
        llm_names,
        KIND_CLIENT,
        SERVICE_INDEX["llm-proxy"],
        c_start,
        c_end,
        np.where(failed, 2, 0),
        llm_msgs,
        llm_attrs,
    )
    # retrieval
    r_tr = np.flatnonzero(retr)
    spans.add(
        r_tr,
        hex_ids(rng, len(r_tr), 8),
        [rt_id[t] for t in r_tr.tolist()],
        [f"search kb_{agent_names[t_agent_l[t]].split('-')[0]}" for t in r_tr.tolist()],
        KIND_CLIENT,
        SERVICE_INDEX["retriever"],
        retr_start,
        retr_start + (retr_dur[retr] * MS).astype(np.int64),
        np.zeros(len(r_tr)),
        [""] * len(r_tr),
        [
            _S("db.system", "qdrant")
            + ","
            + _S("db.operation.name", "search")
            + ","
            + _S("db.collection.name", f"kb_{agent_names[t_agent_l[t]].split('-')[0]}")
            for t in r_tr.tolist()
        ],
    )
    # tool spans: HTTP and DB tools are one CLIENT span; the N+1 tool is an INTERNAL span
    # holding its orders query followed by one identical-shape query per order
    tool_ids = hex_ids(rng, n_tool, 8)
    tool_trace_l = tool_trace.tolist()
    tool_idx_l = tool_idx.tolist()
    literal = rng.integers(1000, 99999, n_tool).tolist()
    http_codes = np.where(tool_error, rng.choice([500, 502, 503, 404], n_tool), 200).tolist()
    t_names, t_attrs, t_msgs = [], [], []
    for i, lit, code_ in zip(tool_idx_l, literal, http_codes, strict=True):
        tl = TOOLS[i]
        tool_attr = _S("gen_ai.tool.name", tl.name)
        if tl.kind == "http":
            path = tl.route.replace("{id}", str(lit))
            t_names.append(f"{tl.method} {tl.route}")
            t_attrs.append(
                tool_attr
                + ","
                + _S("http.request.method", tl.method)
                + ","
                + _S("url.full", f"https://{tl.host}{path}")
                + ","
                + _S("http.route", tl.route)
                + ","
                + _S("server.address", tl.host)
                + ","
                + _I("http.response.status_code", code_)
            )
            t_msgs.append(f"HTTP {code_}" if code_ != 200 else "")
        elif tl.kind == "db":
            table = tl.route.split(" FROM ")[1].split(" ")[0]
            t_names.append(f"{tl.method} {table}")
            t_attrs.append(
                tool_attr
                + ","
                + _S("db.system", "postgresql")
                + ","
                + _S("db.namespace", tl.host)
                + ","
                + _S("db.operation.name", tl.method)
                + ","
                + _S("db.query.text", tl.route.format(lit))
                + ","
                + _S("server.address", "postgres.lumina.internal")
            )
            t_msgs.append("query canceled: statement timeout" if code_ != 200 else "")
        else:
            t_names.append(f"execute_tool {tl.name}")
            t_attrs.append(_S("gen_ai.operation.name", "execute_tool") + "," + tool_attr)
            t_msgs.append(f"tool {tl.name} failed" if code_ != 200 else "")
    spans.add(
        tool_trace,
        tool_ids,
        [rt_id[t] for t in tool_trace_l],
        t_names,
        np.where(np1, KIND_INTERNAL, KIND_CLIENT),
        SERVICE_INDEX["tool-executor"],
        tool_start,
        tool_end,
        np.where(tool_error, 2, 0),
        t_msgs,
        t_attrs,
    )
    # N+1 children: item 0 is the orders query, the others the per-order item query
    n_items_total = len(item_tool)
    item_first = (
        np.r_[True, item_tool[1:] != item_tool[:-1]] if n_items_total else np.zeros(0, bool)
    )
    item_dur = np.where(item_first, base_dur[item_tool], item_dur)
    item_off = _group_exclusive_cumsum(item_dur + 0.3, item_first)
    item_start = tool_start[item_tool] + ((1.0 + item_off) * MS).astype(np.int64)
    item_ids = rng.integers(100000, 999999, n_items_total).tolist()
    lit_arr = np.asarray(literal, dtype=np.int64)
    crm = TOOLS[TOOL_INDEX["crm_lookup"]]
    spans.add(
        tool_trace[item_tool],
        hex_ids(rng, n_items_total, 8),
        [tool_ids[i] for i in item_tool.tolist()],
        ["SELECT orders" if f else "SELECT order_items" for f in item_first.tolist()],
        KIND_CLIENT,
        SERVICE_INDEX["tool-executor"],
        item_start,
        item_start + (item_dur * MS).astype(np.int64),
        np.zeros(n_items_total),
        [""] * n_items_total,
        [
            _S("db.system", "postgresql")
            + ","
            + _S("db.namespace", "crm")
            + ","
            + _S("db.operation.name", "SELECT")
            + ","
            + _S(
                "db.query.text",
                crm.route.format(lit) if f else N_PLUS_ONE_ITEM_SQL.format(x),
            )
            + ","
            + _S("server.address", "postgres.lumina.internal")
            for x, f, lit in zip(
                item_ids, item_first.tolist(), lit_arr[item_tool].tolist(), strict=True
            )
        ],
    )
    world = World(
        s_tenant=s_tenant,
        s_user=s_user,
        s_agent=s_agent,
        s_region=s_region,
        s_start=s_start,
        s_id=s_id,
        s_turns=s_turns,
        t_session=t_session,
        t_start=t_start,
        t_end=t_end,
        t_id=t_id,
        t_k=t_k,
        t_error=t_error,
        t_versions=t_versions,
        c_trace=c_trace,
        c_model=c_model,
        c_provider=c_provider,
        c_start=c_start,
        c_latency_ms=latency,
        c_ttft_ms=ttft,
        c_error=c_error,
        c_input=c_input,
        c_output=c_output,
        c_cache_read=c_cache_read,
        c_cache_write=c_cache_write,
        c_reasoning=c_reasoning,
        tool_trace=tool_trace,
        tool_kind=tool_kind,
        tool_error=tool_error,
        tool_start=tool_start,
        tool_end=tool_end,
        spans=spans,
    )
    world.span_count = sum(len(x) for x in spans.trace)
    return world


def _S(key: str, value: str) -> str:
    return '{"key":"' + key + '","value":{"stringValue":"' + value + '"}}'


def _I(key: str, value: int) -> str:
    return '{"key":"' + key + '","value":{"intValue":"' + str(value) + '"}}'


def _D(key: str, value: float) -> str:
    return '{"key":"' + key + '","value":{"doubleValue":' + f"{value:.3f}" + "}}"
