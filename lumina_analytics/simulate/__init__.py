"""Deterministic simulator of Lumina platform telemetry with ground-truth incidents.

``simulate(days, scale, seed, out)`` writes OTLP/JSON traces, metrics and logs, Prometheus
text, product events, deployments, the injected incidents and the true outcome effects.
"""

from __future__ import annotations

from lumina_analytics.simulate.core import SimulationResult, default_out_dir, simulate
from lumina_analytics.simulate.incidents import INCIDENT_KINDS
from lumina_analytics.simulate.model import DEFAULT_START

__all__ = ["DEFAULT_START", "INCIDENT_KINDS", "SimulationResult", "default_out_dir", "simulate"]
