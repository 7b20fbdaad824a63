"""Product events whose outcomes truly depend on each session's latency and errors.

The true effects are recorded in :data:`EFFECTS` (written to ``effects.json``), so analyses
can be checked against ground truth:

* ``P(conversion)``: ``logit = CONV_INTERCEPT + tenant bias + CONV_PER_LATENCY_S * (L - 3)
  + CONV_ERROR * E`` where ``L`` is the mean latency (seconds) of the session's successful
  LLM calls and ``E`` is 1 when any of its LLM calls failed.
* ``P(abandonment | no conversion)``: ``logit = ABANDON_INTERCEPT + ABANDON_PER_LATENCY_S *
  (L - 3) + ABANDON_ERROR * E``.
* feedback score (1-5, given by ~35% of sessions): ``round(4.3 + FEEDBACK_PER_LATENCY_S *
  (L - 3) + FEEDBACK_ERROR * E + N(0, 0.8))`` clipped to 1..5.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lumina_analytics.simulate.model import AGENTS, REGIONS, TENANTS
from lumina_analytics.simulate.traces import NS, World

LATENCY_REF_S = 3.0
CONV_INTERCEPT = -0.6
CONV_PER_LATENCY_S = -0.45
CONV_ERROR = -1.0
ABANDON_INTERCEPT = -1.4
ABANDON_PER_LATENCY_S = 0.30
ABANDON_ERROR = 1.3
FEEDBACK_P = 0.35
FEEDBACK_BASE = 4.3
FEEDBACK_PER_LATENCY_S = -0.35
FEEDBACK_ERROR = -1.4

EFFECTS: dict[str, Any] = {
    "session_latency_definition": "mean latency in seconds of the session's successful LLM calls",
    "session_error_definition": "1 if any LLM call of the session failed, else 0",
    "latency_reference_s": LATENCY_REF_S,
    "conversion": {
        "model": "logit P(conversion) = intercept + tenant_bias + per_latency_s*(L-ref) + error*E",
        "intercept": CONV_INTERCEPT,
        "per_latency_s_logit": CONV_PER_LATENCY_S,
        "error_logit": CONV_ERROR,
        "tenant_bias": {t.id: t.conversion_bias for t in TENANTS},
    },
    "abandonment": {
        "model": "logit P(abandonment | no conversion) = intercept + per_latency_s*(L-ref) + error*E",
        "intercept": ABANDON_INTERCEPT,
        "per_latency_s_logit": ABANDON_PER_LATENCY_S,
        "error_logit": ABANDON_ERROR,
    },
    "feedback": {
        "model": "score = clip(round(base + per_latency_s*(L-ref) + error*E + N(0,0.8)), 1, 5)",
        "probability": FEEDBACK_P,
        "base": FEEDBACK_BASE,
        "per_latency_s": FEEDBACK_PER_LATENCY_S,
        "error": FEEDBACK_ERROR,
    },
}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _ts(ns: np.ndarray) -> np.ndarray:
    """Naive UTC timestamps with millisecond precision as strings."""
    return np.datetime_as_string(ns.astype("datetime64[ns]").astype("datetime64[ms]"), unit="ms")


def session_outcomes(world: World, rng: np.random.Generator) -> pd.DataFrame:
    """Per session: latency, error flag, and the drawn conversion, abandonment and feedback."""
    n_s = len(world.s_start)
    sess_of_call = world.t_session[world.c_trace]
    ok = world.c_error == 0
    lat_sum = np.bincount(sess_of_call[ok], weights=world.c_latency_ms[ok] / 1000.0, minlength=n_s)
    lat_n = np.bincount(sess_of_call[ok], minlength=n_s)
    fallback = float(np.mean(world.c_latency_ms[ok])) / 1000.0 if ok.any() else LATENCY_REF_S
    latency_s = np.where(lat_n > 0, lat_sum / np.maximum(lat_n, 1), fallback)
    errors = np.bincount(sess_of_call[~ok], minlength=n_s) > 0
    err = errors.astype(float)
    bias = np.asarray([t.conversion_bias for t in TENANTS])[world.s_tenant]
    dl = latency_s - LATENCY_REF_S
    p_conv = _sigmoid(CONV_INTERCEPT + bias + CONV_PER_LATENCY_S * dl + CONV_ERROR * err)
    converted = rng.random(n_s) < p_conv
    p_ab = _sigmoid(ABANDON_INTERCEPT + ABANDON_PER_LATENCY_S * dl + ABANDON_ERROR * err)
    abandoned = (~converted) & (rng.random(n_s) < p_ab)
    gives_feedback = rng.random(n_s) < FEEDBACK_P
    raw = (
        FEEDBACK_BASE + FEEDBACK_PER_LATENCY_S * dl + FEEDBACK_ERROR * err + rng.normal(0, 0.8, n_s)
    )
    score = np.clip(np.round(raw), 1, 5).astype(int)
    return pd.DataFrame(
        {
            "latency_s": latency_s,
            "error": errors,
            "converted": converted,
            "abandoned": abandoned,
            "feedback": gives_feedback,
            "score": score,
        }
    )


def events_frame(world: World, outcomes: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The ``events`` rows: session_start, message, feedback, conversion and abandonment."""
    n_s = len(world.s_start)
    tenants = np.asarray([t.id for t in TENANTS], dtype=object)[world.s_tenant]
    agents = np.asarray([a.name for a in AGENTS], dtype=object)[world.s_agent]
    regions = np.asarray(REGIONS, dtype=object)[world.s_region]
    users = np.asarray(world.s_user, dtype=object)
    sids = np.asarray(world.s_id, dtype=object)
    last_end = world.s_start.astype(np.int64).copy()  # sessions whose turns all fell past the end
    np.maximum.at(last_end, world.t_session, world.t_end)
    parts: list[pd.DataFrame] = []

    def part(idx: np.ndarray, ts: np.ndarray, kind: str, props: list[str]) -> None:
        parts.append(
            pd.DataFrame(
                {
                    "ts_ns": ts,
                    "tenant": tenants[idx],
                    "user_id": users[idx],
                    "session_id": sids[idx],
                    "event_type": kind,
                    "properties": props,
                }
            )
        )

    all_s = np.arange(n_s)
    part(
        all_s,
        world.s_start,
        "session_start",
        [f'{{"agent":"{a}","region":"{r}"}}' for a, r in zip(agents, regions, strict=True)],
    )
    turn = np.arange(len(world.t_session)) - np.repeat(
        np.cumsum(world.s_turns) - world.s_turns, world.s_turns
    )
    part(
        world.t_session,
        world.t_start,
        "message",
        [
            f'{{"agent":"{agents[s]}","turn":{k + 1},"trace_id":"{world.t_id[i]}"}}'
            for i, (s, k) in enumerate(zip(world.t_session.tolist(), turn.tolist(), strict=True))
        ],
    )
    fb = np.flatnonzero(outcomes["feedback"].to_numpy())
    part(
        fb,
        last_end[fb] + ((3 + rng.exponential(20.0, len(fb))) * NS).astype(np.int64),
        "feedback",
        [f'{{"score":{s}}}' for s in outcomes["score"].to_numpy()[fb].tolist()],
    )
    cv = np.flatnonzero(outcomes["converted"].to_numpy())
    part(
        cv,
        last_end[cv] + ((40 + rng.exponential(120.0, len(cv))) * NS).astype(np.int64),
        "conversion",
        [f'{{"agent":"{a}"}}' for a in agents[cv]],
    )
    ab = np.flatnonzero(outcomes["abandoned"].to_numpy())
    part(
        ab,
        last_end[ab] + ((30 + rng.exponential(90.0, len(ab))) * NS).astype(np.int64),
        "abandonment",
        [f'{{"agent":"{a}"}}' for a in agents[ab]],
    )
    ev = pd.concat(parts, ignore_index=True)
    ev = ev.sort_values(["ts_ns", "session_id", "event_type"], kind="stable").reset_index(drop=True)
    ev.insert(0, "ts", _ts(ev["ts_ns"].to_numpy()))
    return ev.drop(columns=["ts_ns"])
