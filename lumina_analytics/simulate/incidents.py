"""Ground truth: the injected incidents and the deployment calendar.

Incidents are placed at fixed fractions of the simulated period (so they exist for any
``days``), after an incident-free first week when the period is long enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from lumina_analytics.simulate.model import INITIAL_VERSIONS, REGIONS, SERVICES

#: Every kind of incident the simulator injects.
INCIDENT_KINDS: tuple[str, ...] = (
    "provider_outage",
    "latency_regression",
    "runaway_agent",
    "rate_limit_storm",
    "traffic_surge",
    "cache_hit_drop",
)

#: Who is hit by each incident (fixed, so tests and notebooks can rely on them).
OUTAGE_PROVIDER = "gcp.gemini"  # OTel gen_ai.provider.name in the spans
#: The same provider as the warehouse stores it (genai-prices id, see pricing.PROVIDER_ALIASES);
#: incidents.csv uses this so incidents join to llm_calls.provider.
OUTAGE_PROVIDER_ID = "google"
OUTAGE_ERROR_RATE = 0.45
REGRESSION_SERVICE = "llm-proxy"
REGRESSION_EXTRA_MS = 900.0
RUNAWAY_TENANT = "stark-industries"
RUNAWAY_AGENT = "research-agent"
RUNAWAY_LOOP_MEAN = 40.0
STORM_MODEL = "gpt-4o"
STORM_PROVIDER = "openai"
STORM_RATE = 0.5
SURGE_TENANT = "soylent-retail"
SURGE_FACTOR = 5.0
CACHE_DROP_MODEL = "claude-sonnet-4-20250514"
CACHE_DROP_FACTOR = 0.05


@dataclass(frozen=True)
class Incident:
    """One injected incident (a row of the ``incidents`` table)."""

    incident_id: str
    kind: str
    start: datetime
    end: datetime
    dimension: str
    value: str
    magnitude: float
    description: str


@dataclass(frozen=True)
class Plan:
    """Incidents plus the deployment calendar for one simulated period."""

    start: datetime
    days: int
    incidents: tuple[Incident, ...]
    deployments: pd.DataFrame  # ts, service, version, region, strategy

    def incident(self, kind: str) -> Incident:
        """The incident of a kind."""
        return next(i for i in self.incidents if i.kind == kind)

    def incidents_frame(self) -> pd.DataFrame:
        """The incidents as a frame with the ``incidents`` table columns."""
        return pd.DataFrame(
            {
                "incident_id": [i.incident_id for i in self.incidents],
                "kind": [i.kind for i in self.incidents],
                "start_ts": pd.to_datetime([i.start for i in self.incidents]),
                "end_ts": pd.to_datetime([i.end for i in self.incidents]),
                "dimension": [i.dimension for i in self.incidents],
                "value": [i.value for i in self.incidents],
                "magnitude": [i.magnitude for i in self.incidents],
                "description": [i.description for i in self.incidents],
            }
        )


def _version(t: tuple[int, int, int]) -> str:
    return f"{t[0]}.{t[1]}.{t[2]}"


def plan_period(start: datetime, days: int, rng: np.random.Generator) -> Plan:
    """Place the incidents and deployments of a period of ``days`` days from ``start``."""
    total_h = days * 24.0
    # First week incident-free when the period allows it; otherwise the first 10%.
    quiet_h = 7 * 24.0 if days >= 14 else 0.1 * total_h
    span_h = total_h - quiet_h

    def at(frac: float, hour_of_day: float) -> datetime:
        """A time at fraction ``frac`` of the incident span, snapped to ``hour_of_day`` UTC."""
        h = quiet_h + frac * span_h
        day = int(h // 24)
        return start + timedelta(days=day, hours=hour_of_day)

    def dur(hours: float) -> timedelta:
        return timedelta(hours=hours)

    incidents: list[Incident] = []
    reg_start = at(0.05, 14.0)
    reg_end = reg_start + timedelta(hours=min(36.0, max(4.0, total_h * 0.08)))
    old = INITIAL_VERSIONS[REGRESSION_SERVICE]
    bad = (old[0], old[1] + 1, 0)
    fixed = (old[0], old[1] + 1, 1)
    specs = [
        (
            "latency_regression",
            reg_start,
            reg_end,
            "service_version",
            f"{REGRESSION_SERVICE}/{_version(bad)}",
            REGRESSION_EXTRA_MS,
            f"{REGRESSION_SERVICE} {_version(bad)} adds ~{REGRESSION_EXTRA_MS:.0f} ms to every "
            f"LLM call until {_version(fixed)} ships",
        ),
        (
            "provider_outage",
            at(0.22, 15.0),
            at(0.22, 15.0) + dur(3.0),
            "provider",
            OUTAGE_PROVIDER_ID,
            OUTAGE_ERROR_RATE,
            f"{OUTAGE_PROVIDER_ID} (gen_ai.provider.name {OUTAGE_PROVIDER}) returns 5xx/timeouts "
            f"on ~{OUTAGE_ERROR_RATE:.0%} of calls",
        ),
        (
            "runaway_agent",
            at(0.32, 14.0),
            at(0.32, 14.0) + dur(8.0),
            "agent",
            RUNAWAY_AGENT,
            RUNAWAY_LOOP_MEAN,
            f"{RUNAWAY_AGENT} of tenant {RUNAWAY_TENANT} loops ~{RUNAWAY_LOOP_MEAN:.0f} "
            "LLM calls per request (cost spike)",
        ),
        (
            "rate_limit_storm",
            at(0.58, 16.0),
            at(0.58, 16.0) + dur(2.0),
            "model",
            STORM_MODEL,
            STORM_RATE,
            f"{STORM_PROVIDER} answers HTTP 429 on ~{STORM_RATE:.0%} of {STORM_MODEL} calls",
        ),
        (
            "traffic_surge",
            at(0.66, 11.0),
            at(0.66, 11.0) + dur(8.0),
            "tenant",
            SURGE_TENANT,
            SURGE_FACTOR,
            f"tenant {SURGE_TENANT} sends {SURGE_FACTOR:.0f}x its usual sessions",
        ),
        (
            "cache_hit_drop",
            at(0.90, 6.0),
            at(0.90, 6.0) + dur(12.0),
            "model",
            CACHE_DROP_MODEL,
            CACHE_DROP_FACTOR,
            f"prompt-cache hit rate of {CACHE_DROP_MODEL} falls to "
            f"{CACHE_DROP_FACTOR:.0%} of normal (prompt prefix changed)",
        ),
    ]
    end_of_period = start + timedelta(days=days)
    for n, (kind, s, e, dim, val, mag, desc) in enumerate(specs, start=1):
        e = min(e, end_of_period)
        incidents.append(Incident(f"INC-{n:03d}", kind, s, e, dim, val, float(mag), desc))

    deployments = _deployments(start, days, rng, reg_start, reg_end, bad, fixed)
    return Plan(start, days, tuple(incidents), deployments)


def _deployments(
    start: datetime,
    days: int,
    rng: np.random.Generator,
    reg_start: datetime,
    reg_end: datetime,
    bad: tuple[int, int, int],
    fixed: tuple[int, int, int],
) -> pd.DataFrame:
    """Routine releases of several services (about weekly), plus the bad and fixed llm-proxy."""
    rows: list[tuple[datetime, str, str, str, str]] = []
    strategies = ("rolling", "canary", "blue_green")
    for s_i, service in enumerate(SERVICES):
        if service in ("postgres", REGRESSION_SERVICE):
            continue
        ver = INITIAL_VERSIONS[service]
        n = max(1, round(days / 7 * (1.0 if s_i % 2 == 0 else 0.6)))
        day_choices = np.sort(rng.choice(np.arange(days), size=min(n, days), replace=False))
        for d in day_choices:
            ver = (ver[0], ver[1], ver[2] + 1) if rng.random() < 0.7 else (ver[0], ver[1] + 1, 0)
            t0 = start + timedelta(days=int(d), hours=float(rng.integers(9, 17)))
            strategy = strategies[int(rng.integers(0, 3))]
            for r_i, region in enumerate(REGIONS):
                rows.append(
                    (t0 + timedelta(hours=r_i * 2), service, _version(ver), region, strategy)
                )
    for ver, t0 in ((bad, reg_start), (fixed, reg_end)):
        for r_i, region in enumerate(REGIONS):
            # canary in us-east-1 first, the others within the hour
            ts = t0 if r_i == 0 else t0 + timedelta(minutes=20 * r_i)
            rows.append((ts, REGRESSION_SERVICE, _version(ver), region, "canary"))
    frame = pd.DataFrame(rows, columns=["ts", "service", "version", "region", "strategy"])
    frame["ts"] = pd.to_datetime(frame["ts"])
    return frame.sort_values(["ts", "service", "region"], kind="stable").reset_index(drop=True)


def plan_bad_version(plan: Plan) -> str:
    """The version of the regressed service that carries the latency regression."""
    return plan.incident("latency_regression").value.split("/", 1)[1]


def version_lookup(
    deployments: pd.DataFrame, service: str, region: str, ts_ns: np.ndarray
) -> np.ndarray:
    """The version of ``service`` in ``region`` running at each time (int64 ns): object array."""
    d = deployments[(deployments["service"] == service) & (deployments["region"] == region)]
    versions = [_version(INITIAL_VERSIONS[service]), *d["version"].tolist()]
    times = d["ts"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    idx = np.searchsorted(times, ts_ns, side="right")
    return np.asarray(versions, dtype=object)[idx]
