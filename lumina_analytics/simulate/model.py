"""The simulated Lumina world: tenants, agents, services, providers, models and calibrated constants.

Everything here is a constant (no randomness), so the world is the same for every seed;
the seed only drives the traffic drawn from it.

Calibration (fitted offline, hard-coded so the simulator never needs ``/work/shared``):

* Token lengths: log-normal fits (mean and sd of ``log(tokens)``) of the Azure LLM inference
  traces ``AzureLLMInferenceTrace_{code,conv}_2023.csv`` (Microsoft Azure, Splitwise, CC-BY-4.0):
  code: context 6.999/1.360, generated 2.788/0.847; conversation: context 6.633/0.985,
  generated 5.019/0.859.
* Latency: log-normal fits of time to first token and inter-token latency (milliseconds) of the
  successful requests in ray-project/llmperf-leaderboard ``llmperf_leaderboard_requests.csv``
  (Apache-2.0), one measured provider mapped onto each simulated provider (see ``PROVIDERS``).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Default first simulated day: fixed so the data are reproducible whatever today is.
DEFAULT_START = "2026-10-01"

REGIONS: tuple[str, ...] = ("us-east-1", "eu-west-1", "ap-southeast-1")
#: UTC offset (hours) of the users' working day in each region, for the daily cycle.
REGION_UTC_OFFSET: dict[str, int] = {"us-east-1": -5, "eu-west-1": 0, "ap-southeast-1": 8}

ENVIRONMENT = "production"

# -- token lengths (Azure traces, see module docstring) --------------------------------------
TOKENS_CONV_INPUT = (6.633, 0.985)
TOKENS_CONV_OUTPUT = (5.019, 0.859)
TOKENS_CODE_INPUT = (6.999, 1.360)
TOKENS_CODE_OUTPUT = (2.788, 0.847)


@dataclass(frozen=True)
class Provider:
    """An LLM provider with latency (llmperf fit) and baseline error rates."""

    name: str  # OTel gen_ai.provider.name
    calibrated_from: str  # llmperf-leaderboard provider whose fit is used
    ttft_mu: float  # mean of log(ttft_ms)
    ttft_sd: float
    itl_mu: float  # mean of log(inter-token latency ms)
    itl_sd: float
    p_rate_limit: float
    p_server_error: float
    p_timeout: float


PROVIDERS: tuple[Provider, ...] = (
    Provider("openai", "fireworks", 6.039, 0.293, 2.959, 0.306, 0.004, 0.002, 0.001),
    Provider("anthropic", "together", 6.375, 0.401, 2.559, 0.348, 0.003, 0.003, 0.001),
    Provider("gcp.gemini", "anyscale", 5.416, 0.223, 2.575, 0.406, 0.002, 0.002, 0.001),
    Provider("mistral_ai", "perplexity", 6.007, 0.242, 3.510, 0.137, 0.005, 0.002, 0.002),
    Provider("aws.bedrock", "bedrock", 5.902, 0.290, 3.658, 0.270, 0.006, 0.002, 0.002),
)
PROVIDER_INDEX = {p.name: i for i, p in enumerate(PROVIDERS)}


@dataclass(frozen=True)
class Model:
    """A model: request name, the name the API answers with, and its features.

    The response name equals the request name on purpose: the warehouse keys calls by the
    response model when present and by the request model on errors (no response), and
    dated aliases would split one model into two series with opposite error rates.
    """

    name: str
    provider: str
    response_name: str
    reasoning: bool = False  # emits gen_ai.usage.reasoning.output_tokens
    cache_hit_p: float = 0.0  # share of calls that read the prompt cache
    cache_write_p: float = 0.0  # share of cache misses that write the cache
    speed: float = 1.0  # multiplier on inter-token latency (small models are faster)
    priced: bool = True  # genai-prices knows it (checked in the tests)


MODELS: tuple[Model, ...] = (
    Model("gpt-4o", "openai", "gpt-4o", cache_hit_p=0.45),
    Model("gpt-4o-mini", "openai", "gpt-4o-mini", cache_hit_p=0.40, speed=0.6),
    Model("o3-mini", "openai", "o3-mini", reasoning=True, cache_hit_p=0.30),
    Model(
        "claude-sonnet-4-20250514",
        "anthropic",
        "claude-sonnet-4-20250514",
        cache_hit_p=0.60,
        cache_write_p=0.5,
    ),
    Model(
        "claude-3-5-haiku-20241022",
        "anthropic",
        "claude-3-5-haiku-20241022",
        cache_hit_p=0.50,
        cache_write_p=0.4,
        speed=0.6,
    ),
    Model("gemini-2.5-flash", "gcp.gemini", "gemini-2.5-flash", reasoning=True, cache_hit_p=0.25),
    Model("mistral-large-latest", "mistral_ai", "mistral-large-latest"),
    Model("mistral-small-latest", "mistral_ai", "mistral-small-latest", speed=0.6),
    Model("amazon.nova-pro-v1:0", "aws.bedrock", "amazon.nova-pro-v1:0"),
    Model("meta.llama3-70b-instruct-v1:0", "aws.bedrock", "meta.llama3-70b-instruct-v1:0"),
    # A private fine-tune genai-prices cannot know: feeds the "unpriced calls" report.
    Model(
        "lumina.support-distill-v1:0",
        "aws.bedrock",
        "lumina.support-distill-v1:0",
        speed=0.5,
        priced=False,
    ),
)
MODEL_INDEX = {m.name: i for i, m in enumerate(MODELS)}
UNPRICED_MODEL = "lumina.support-distill-v1:0"


@dataclass(frozen=True)
class Tool:
    """A tool an agent calls; ``kind`` is http, db or n_plus_one (the N+1 query pattern)."""

    name: str
    kind: str
    method: str  # HTTP method, or SQL verb for DB tools
    host: str  # URL host, or DB name
    route: str  # HTTP route template, or SQL template with one ``{}`` literal slot
    mu: float  # mean of log(duration ms)
    sd: float
    p_error: float


TOOLS: tuple[Tool, ...] = (
    Tool(
        "crm_lookup",
        "n_plus_one",
        "SELECT",
        "crm",
        "SELECT id, status, total FROM orders WHERE customer_id = {} ORDER BY created_at DESC LIMIT 20",
        1.5,
        0.4,
        0.002,
    ),
    Tool(
        "kb_search", "http", "GET", "kb.lumina.internal", "/api/v2/articles/{id}", 4.0, 0.5, 0.004
    ),
    Tool(
        "create_ticket",
        "http",
        "POST",
        "helpdesk.lumina.internal",
        "/api/v1/tickets",
        4.6,
        0.4,
        0.006,
    ),
    Tool("web_search", "http", "GET", "search.lumina.internal", "/v1/search/{id}", 5.6, 0.6, 0.01),
    Tool("fetch_url", "http", "GET", "fetcher.lumina.internal", "/v1/pages/{id}", 5.9, 0.7, 0.02),
    Tool(
        "run_tests", "http", "POST", "sandbox.lumina.internal", "/v1/jobs/{id}/run", 7.2, 0.6, 0.03
    ),
    Tool(
        "repo_search",
        "http",
        "GET",
        "code.lumina.internal",
        "/api/v3/repos/{id}/search",
        4.8,
        0.5,
        0.005,
    ),
    Tool(
        "pricing_api", "http", "GET", "pricing.lumina.internal", "/v2/quotes/{id}", 4.2, 0.4, 0.004
    ),
    Tool(
        "sql_query",
        "db",
        "SELECT",
        "analytics",
        "SELECT date_trunc('day', ts) AS day, sum(amount) FROM payments WHERE account_id = {} GROUP BY 1",
        5.8,
        0.8,
        0.008,
    ),
    Tool("chart_render", "http", "POST", "charts.lumina.internal", "/v1/render", 5.0, 0.4, 0.005),
)
TOOL_INDEX = {t.name: i for i, t in enumerate(TOOLS)}
#: The per-item query of the N+1 tool (repeated once per order inside one tool span).
N_PLUS_ONE_ITEM_SQL = "SELECT sku, qty, unit_price FROM order_items WHERE order_id = {}"


@dataclass(frozen=True)
class Agent:
    """An agent: its model mix, tool set, loop length and token-length family."""

    name: str
    models: tuple[tuple[str, float], ...]  # (model, weight)
    tools: tuple[str, ...]
    loop_mean: float  # mean number of tool+LLM rounds after the planner call
    code: bool  # token lengths follow the Azure code trace instead of conversation
    p_retrieval: float
    version_base: str


AGENTS: tuple[Agent, ...] = (
    Agent(
        "support-agent",
        (
            ("claude-3-5-haiku-20241022", 0.35),
            ("gpt-4o-mini", 0.30),
            ("claude-sonnet-4-20250514", 0.15),
            ("mistral-small-latest", 0.10),
            ("amazon.nova-pro-v1:0", 0.10),
        ),
        ("crm_lookup", "kb_search", "create_ticket"),
        4.0,
        False,
        0.8,
        "support",
    ),
    Agent(
        "research-agent",
        (
            ("claude-sonnet-4-20250514", 0.35),
            ("gemini-2.5-flash", 0.30),
            ("gpt-4o", 0.20),
            ("o3-mini", 0.15),
        ),
        ("web_search", "fetch_url"),
        5.5,
        False,
        0.9,
        "research",
    ),
    Agent(
        "coding-agent",
        (
            ("claude-sonnet-4-20250514", 0.45),
            ("gpt-4o", 0.25),
            ("o3-mini", 0.20),
            ("mistral-large-latest", 0.10),
        ),
        ("run_tests", "repo_search"),
        5.0,
        True,
        0.4,
        "coding",
    ),
    Agent(
        "sales-agent",
        (
            ("gpt-4o-mini", 0.45),
            ("gemini-2.5-flash", 0.30),
            ("meta.llama3-70b-instruct-v1:0", 0.25),
        ),
        ("crm_lookup", "pricing_api"),
        3.4,
        False,
        0.5,
        "sales",
    ),
    Agent(
        "data-agent",
        (("gpt-4o", 0.40), ("gemini-2.5-flash", 0.35), ("mistral-large-latest", 0.25)),
        ("sql_query", "chart_render"),
        4.4,
        True,
        0.3,
        "data",
    ),
)
AGENT_INDEX = {a.name: i for i, a in enumerate(AGENTS)}


@dataclass(frozen=True)
class Tenant:
    """A customer organisation."""

    id: str
    region: str
    weight: float  # relative traffic
    users: int
    agents: tuple[float, ...]  # weight of each agent in AGENTS order
    conversion_bias: float  # tenant's baseline logit shift of P(conversion)


TENANTS: tuple[Tenant, ...] = (
    Tenant("acme-corp", "us-east-1", 5.0, 900, (0.5, 0.1, 0.1, 0.2, 0.1), 0.2),
    Tenant("globex", "us-east-1", 3.0, 600, (0.2, 0.2, 0.3, 0.1, 0.2), 0.0),
    Tenant("initech", "us-east-1", 1.5, 250, (0.1, 0.1, 0.6, 0.0, 0.2), -0.2),
    Tenant("umbrella-health", "eu-west-1", 2.5, 500, (0.6, 0.2, 0.0, 0.0, 0.2), 0.1),
    Tenant("stark-industries", "us-east-1", 4.0, 700, (0.1, 0.3, 0.4, 0.0, 0.2), 0.3),
    Tenant("wayne-finance", "us-east-1", 2.0, 300, (0.3, 0.1, 0.0, 0.3, 0.3), -0.1),
    Tenant("tyrell-labs", "ap-southeast-1", 1.2, 200, (0.0, 0.5, 0.3, 0.0, 0.2), 0.0),
    Tenant("soylent-retail", "eu-west-1", 2.2, 450, (0.4, 0.0, 0.0, 0.5, 0.1), 0.15),
    Tenant("hooli", "ap-southeast-1", 1.8, 350, (0.2, 0.2, 0.4, 0.1, 0.1), -0.05),
    Tenant("cyberdyne", "eu-west-1", 0.8, 120, (0.0, 0.4, 0.4, 0.0, 0.2), -0.3),
)
TENANT_INDEX = {t.id: i for i, t in enumerate(TENANTS)}

#: Services: name -> (initial version, share of spans it emits is implied by the trace shape).
SERVICES: tuple[str, ...] = (
    "gateway",
    "agent-runtime",
    "planner",
    "retriever",
    "tool-executor",
    "llm-proxy",
    "postgres",
)
SERVICE_INDEX = {s: i for i, s in enumerate(SERVICES)}
INITIAL_VERSIONS: dict[str, tuple[int, int, int]] = {
    "gateway": (1, 8, 2),
    "agent-runtime": (4, 2, 0),
    "planner": (2, 5, 1),
    "retriever": (1, 12, 0),
    "tool-executor": (3, 1, 4),
    "llm-proxy": (3, 4, 2),
    "postgres": (16, 4, 0),
}

#: Weekly traffic multipliers, Monday first.
WEEKLY = (1.0, 1.05, 1.07, 1.04, 0.95, 0.45, 0.38)
#: Fractional traffic growth over 30 days.
GROWTH_PER_30_DAYS = 0.25
#: Expected sessions per day at scale 1.0 across all tenants, before seasonality.
#: Tuned so the 30-day demo at scale 1.0 yields a little over 300,000 LLM calls.
SESSIONS_PER_DAY = 800.0
