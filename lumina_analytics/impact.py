"""Business impact: how latency, errors and cost per session relate to outcomes.

:func:`session_outcomes` joins product events (conversion, abandonment, feedback) with the
LLM calls of each session (mean latency, errors, cost). :func:`estimate_effects` fits, for
every outcome, one regression on all the treatments together plus fixed effects for the
confounders (tenant, hour of day, agent by default):

* binary outcomes (conversion, abandonment): logistic regression by maximum likelihood
  (Newton-Raphson / IRLS in numpy); the effect is the change in log-odds per unit of the
  treatment, reported with its odds ratio and average marginal effect in percentage points;
* numeric outcomes (feedback score): ordinary least squares with heteroskedasticity-robust
  (HC1) standard errors; the effect is the change in the outcome per unit.

Intervals are 95% Wald intervals from the model's standard errors, or percentile bootstrap
intervals over sessions when ``n_boot > 0``. Each row of the result carries a plain-words
``method`` and ``sentence``. These are associations adjusted for the listed confounders, not
proof of causation: anything that drives both latency and outcomes and is not listed still
biases them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from lumina_analytics.errors import SchemaError
from lumina_analytics.schema import require_columns

__all__ = [
    "DEFAULT_CONDITIONS",
    "DEFAULT_TREATMENTS",
    "TREATMENT_UNITS",
    "EffectResult",
    "estimate_effects",
    "fit_interval",
    "fit_logit",
    "fit_ols",
    "session_outcomes",
]

#: treatment column -> (unit the effect is reported per, phrase naming one unit of change)
TREATMENT_UNITS: dict[str, tuple[float, str]] = {
    "latency_s": (1.0, "each extra second of mean LLM latency in a session"),
    "latency_ok_s": (1.0, "each extra second of mean latency of a session's successful LLM calls"),
    "errors": (1.0, "each extra failed LLM call in a session"),
    "error_any": (1.0, "at least one failed LLM call in a session (vs none)"),
    "error_share": (0.1, "10 more points of failed LLM calls in a session"),
    "cost_usd": (0.01, "each extra cent of LLM cost per session"),
}
#: what the simulator's ground truth is defined on (see lumina_analytics.simulate.outcomes)
DEFAULT_TREATMENTS: tuple[str, ...] = ("latency_ok_s", "error_any", "cost_usd")
#: outcome -> column that must be 0 for a session to be in that outcome's model
DEFAULT_CONDITIONS: dict[str, str] = {"abandonment": "conversion"}
DEFAULT_OUTCOMES: tuple[str, ...] = ("conversion", "abandonment", "feedback")
DEFAULT_CONFOUNDERS: tuple[str, ...] = ("tenant", "hour", "agent")
_BINARY = {"conversion", "abandonment"}


# -- session table ----------------------------------------------------------------------------
def session_outcomes(
    events: pd.DataFrame,
    calls: pd.DataFrame,
    outcome_events: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row per session with outcomes and LLM experience.

    Outcomes from ``events``: ``conversion`` / ``abandonment`` (1 if the session has such an
    event), ``feedback`` (mean ``score`` of its feedback events, NaN without feedback).
    Experience from ``calls`` (joined on ``session_id``): ``calls``, ``latency_s`` (mean LLM
    latency in seconds), ``latency_ok_s`` (mean over successful calls only), ``errors``
    (failed calls), ``error_any`` (1 if any call failed), ``error_share``, ``cost_usd``. Confounders:
    ``tenant``, ``agent`` (the session's most frequent agent), ``hour`` (UTC hour of the
    session's first event). Sessions without any LLM call are dropped.
    """
    names = {"conversion": "conversion", "abandonment": "abandonment", "feedback": "feedback"}
    names.update(outcome_events or {})
    require_columns(events, ["ts", "session_id", "event_type"], "events frame")
    require_columns(calls, ["session_id", "latency_ms", "status"], "llm_calls frame")
    ev = events.loc[events["session_id"].notna()].copy()
    ev["ts"] = pd.to_datetime(ev["ts"])
    g = ev.groupby("session_id", sort=False)
    out = pd.DataFrame({"start": g["ts"].min()})
    if "tenant" in ev:
        out["tenant"] = g["tenant"].first()
    if "user_id" in ev:
        out["user_id"] = g["user_id"].first()
    for outcome in ("conversion", "abandonment"):
        hit = ev.loc[ev["event_type"] == names[outcome], "session_id"].unique()
        out[outcome] = out.index.isin(hit).astype(float)
    fb = ev.loc[ev["event_type"] == names["feedback"]]
    if not fb.empty:
        from lumina_analytics.usage import event_property

        score = pd.to_numeric(event_property(fb, "score"), errors="coerce")
        out["feedback"] = score.groupby(fb["session_id"]).mean().reindex(out.index)
    else:
        out["feedback"] = np.nan
    out["hour"] = out["start"].dt.hour
    c = calls.loc[calls["session_id"].notna()].copy()
    c["_err"] = (c["status"] == "error").astype(float)
    c["_lat_ok"] = c["latency_ms"].where(c["_err"] == 0)
    c["_cost"] = pd.to_numeric(c["cost_usd"], errors="coerce") if "cost_usd" in c else np.nan
    cg = c.groupby("session_id", sort=False)
    exp = pd.DataFrame(
        {
            "calls": cg.size(),
            "latency_s": cg["latency_ms"].mean() / 1000.0,
            "latency_ok_s": cg["_lat_ok"].mean() / 1000.0,
            "errors": cg["_err"].sum(),
            "error_any": (cg["_err"].sum() > 0).astype(float),
            "error_share": cg["_err"].mean(),
            "cost_usd": cg["_cost"].sum(min_count=1),
        }
    )
    if "agent" in c:
        exp["agent"] = cg["agent"].agg(_mode)
    if "tenant" in c and "tenant" not in out:
        exp["tenant"] = cg["tenant"].first()
    res = out.join(exp, how="inner")
    res.index.name = "session_id"
    return res.reset_index()


def _mode(values: pd.Series) -> Any:
    m = values.mode()
    return m.iloc[0] if len(m) else None


# -- estimators -------------------------------------------------------------------------------
@dataclass
class _Fit:
    coef: np.ndarray
    cov: np.ndarray
    converged: bool


def fit_logit(x: np.ndarray, y: np.ndarray, max_iter: int = 50, tol: float = 1e-9) -> _Fit:
    """Logistic regression by Newton-Raphson; covariance = inverse observed information.

    ``x`` must include the intercept / fixed-effect columns. A tiny ridge (1e-8) keeps the
    Hessian invertible when a fixed-effect level separates the outcome.
    """
    beta = np.zeros(x.shape[1])
    ridge = 1e-8 * np.eye(x.shape[1])
    converged = False
    for _ in range(max_iter):
        eta = np.clip(x @ beta, -30, 30)
        p = 1.0 / (1.0 + np.exp(-eta))
        w = p * (1 - p)
        grad = x.T @ (y - p)
        hess = (x * w[:, None]).T @ x + ridge
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            converged = True
            break
    eta = np.clip(x @ beta, -30, 30)
    p = 1.0 / (1.0 + np.exp(-eta))
    hess = (x * (p * (1 - p))[:, None]).T @ x + ridge
    return _Fit(beta, np.linalg.pinv(hess), converged)


def fit_ols(x: np.ndarray, y: np.ndarray) -> _Fit:
    """Least squares with HC1 heteroskedasticity-robust covariance."""
    xtx_inv = np.linalg.pinv(x.T @ x)
    beta = xtx_inv @ x.T @ y
    resid = y - x @ beta
    n, k = x.shape
    meat = (x * (resid**2)[:, None]).T @ x
    cov = xtx_inv @ meat @ xtx_inv * (n / max(n - k, 1))
    return _Fit(beta, cov, True)


def fit_interval(
    x: np.ndarray, y: np.ndarray, cuts: Sequence[float] = (1.5, 2.5, 3.5, 4.5)
) -> _Fit:
    """Interval (censored normal) regression of an ordinal score with known cut points.

    The score is taken as the rounded, clipped value of a latent ``x @ beta + N(0, sigma)``:
    score k means the latent value fell between the cut points around k (the lowest and
    highest scores are open-ended). Returns ``beta`` followed by ``log(sigma)``; covariance
    from the finite-difference Hessian of the log-likelihood.
    """
    edges = np.concatenate([[-np.inf], np.asarray(cuts, dtype=float), [np.inf]])
    levels = np.arange(1, len(edges))
    k = np.clip(np.searchsorted(levels, np.round(y)), 0, len(levels) - 1)
    lo_c, hi_c = edges[k], edges[k + 1]

    def grad_nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        beta, log_s = theta[:-1], theta[-1]
        sd = float(np.exp(log_s))
        mu = x @ beta
        a = (lo_c - mu) / sd
        b = (hi_c - mu) / sd
        prob = np.clip(stats.norm.cdf(b) - stats.norm.cdf(a), 1e-300, None)
        pa = np.where(np.isfinite(a), stats.norm.pdf(a), 0.0)
        pb = np.where(np.isfinite(b), stats.norm.pdf(b), 0.0)
        a0 = np.where(np.isfinite(a), a, 0.0)
        b0 = np.where(np.isfinite(b), b, 0.0)
        d_mu = (pa - pb) / (sd * prob)
        d_ls = (a0 * pa - b0 * pb) / prob
        nll = -float(np.sum(np.log(prob)))
        return nll, -np.concatenate([x.T @ d_mu, [d_ls.sum()]])

    start = np.concatenate(
        [np.linalg.lstsq(x, y, rcond=None)[0], [np.log(max(float(np.std(y)), 0.1))]]
    )
    res = optimize.minimize(grad_nll, start, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    theta = res.x
    eps = 1e-5
    p = len(theta)
    hess = np.empty((p, p))
    for i in range(p):
        step = np.zeros(p)
        step[i] = eps
        hess[:, i] = (grad_nll(theta + step)[1] - grad_nll(theta - step)[1]) / (2 * eps)
    hess = (hess + hess.T) / 2
    return _Fit(theta, np.linalg.pinv(hess), bool(res.success))


def _design(
    frame: pd.DataFrame, treatments: Sequence[str], confounders: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    parts = [pd.DataFrame({"intercept": np.ones(len(frame))}, index=frame.index)]
    parts.append(frame[list(treatments)].astype(float))
    for c in confounders:
        d = pd.get_dummies(frame[c].astype(str), prefix=c, drop_first=True, dtype=float)
        parts.append(d)
    x = pd.concat(parts, axis=1)
    return x.to_numpy(dtype=float), list(x.columns)


@dataclass
class EffectResult:
    """Effect estimates: a tidy table plus how they were obtained."""

    table: pd.DataFrame
    method: str
    confounders: tuple[str, ...]
    n_sessions: int
    notes: list[str] = field(default_factory=list)

    def _repr_html_(self) -> str:
        cols = ["outcome", "treatment", "effect", "ci_low", "ci_high", "scale", "sentence"]
        return f"<p><b>Method:</b> {self.method}</p>" + self.table[
            [c for c in cols if c in self.table]
        ].to_html(index=False)

    def sentences(self) -> list[str]:
        """One plain sentence per (outcome, treatment)."""
        return list(self.table["sentence"])


def _fit(kind: str, x: np.ndarray, y: np.ndarray) -> _Fit:
    if kind == "logit":
        return fit_logit(x, y)
    if kind == "interval":
        return fit_interval(x, y)
    return fit_ols(x, y)


_MODEL_WORDS = {
    "logit": "logistic regression",
    "ols": "least squares (HC1 robust errors)",
    "interval": "interval regression on the 1-5 score (a rounded, clipped normal latent score)",
}


def _kind(outcome: str, values: pd.Series, score_model: str) -> str:
    uniq = set(values.unique())
    if outcome in _BINARY or uniq <= {0, 1}:
        return "logit"
    if score_model == "interval" and uniq <= {1, 2, 3, 4, 5}:
        return "interval"
    return "ols"


def estimate_effects(
    sessions: pd.DataFrame,
    outcomes: Sequence[str] = DEFAULT_OUTCOMES,
    treatments: Mapping[str, tuple[float, str]] | Sequence[str] = DEFAULT_TREATMENTS,
    confounders: Sequence[str] = DEFAULT_CONFOUNDERS,
    conditions: Mapping[str, str] | None = None,
    score_model: str = "interval",
    n_boot: int = 0,
    level: float = 0.95,
    seed: int = 0,
    min_sessions: int = 50,
) -> EffectResult:
    """Adjusted effects of each treatment on each outcome, with confidence intervals.

    ``treatments`` are columns of ``sessions`` (see :data:`TREATMENT_UNITS` for the units the
    effects are reported in) or a mapping ``column -> (unit, phrase)``. All treatments enter
    one model per outcome, with fixed effects for ``confounders``. Binary outcomes get a
    logistic regression (``effect`` = change in log-odds per unit, plus ``odds_ratio`` and
    ``ame_pp``, the average marginal effect in percentage points). Integer 1-5 scores get an
    interval regression (``score_model="interval"``; effect in score points on the latent
    scale, undoing the rounding and clipping at 1 and 5) or OLS (``"ols"``). ``conditions``
    (default :data:`DEFAULT_CONDITIONS`: abandonment among sessions that did not convert)
    restricts an outcome's model to sessions where the named column is 0. Rows missing the
    outcome (sessions without feedback) are left out of that outcome's model only.
    """
    if not isinstance(treatments, Mapping):
        treatments = {
            t: TREATMENT_UNITS.get(t, (1.0, f"each extra unit of {t}")) for t in treatments
        }
    conditions = DEFAULT_CONDITIONS if conditions is None else conditions
    tcols = list(treatments)
    _require_unique(sessions)
    require_columns(sessions, tcols, "sessions frame")
    conf = [c for c in confounders if c in sessions.columns]
    notes = [
        f"confounder {c!r} not in the session table; not adjusted"
        for c in confounders
        if c not in conf
    ]
    z = stats.norm.ppf(0.5 + level / 2)
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for outcome in outcomes:
        if outcome not in sessions.columns:
            notes.append(f"outcome {outcome!r} not in the session table; skipped")
            continue
        df = sessions.dropna(subset=[outcome, *tcols]).copy()
        cond = conditions.get(outcome)
        if cond and cond in df.columns:
            df = df[df[cond] == 0]
        for c in conf:
            df[c] = df[c].astype(object).where(df[c].notna(), "unknown")
        kind = _kind(outcome, df[outcome], score_model)
        if len(df) < min_sessions or (kind == "logit" and df[outcome].nunique() < 2):
            notes.append(f"outcome {outcome!r}: too few usable sessions ({len(df)}); skipped")
            continue
        x, _ = _design(df, tcols, conf)
        y = df[outcome].to_numpy(dtype=float)
        fit = _fit(kind, x, y)
        if not fit.converged:
            notes.append(f"outcome {outcome!r}: the {kind} fit did not fully converge")
        boot: np.ndarray | None = None
        if n_boot > 0:
            draws = []
            for _ in range(n_boot):
                idx = rng.integers(0, len(df), len(df))
                draws.append(_fit(kind, x[idx], y[idx]).coef[1 : 1 + len(tcols)])
            boot = np.asarray(draws)
        slope = base = float("nan")
        if kind == "logit":
            p = 1 / (1 + np.exp(-np.clip(x @ fit.coef, -30, 30)))
            slope = float(np.mean(p * (1 - p)))
            base = float(y.mean())
        method = _method(kind, conf, n_boot, level, cond if cond in df.columns else None)
        for j, t in enumerate(tcols, start=1):
            unit, phrase = treatments[t]
            b = float(fit.coef[j]) * unit
            se = float(np.sqrt(max(fit.cov[j, j], 0.0))) * unit
            if boot is not None:
                q = np.quantile(boot[:, j - 1], [(1 - level) / 2, (1 + level) / 2]) * unit
                lo, hi = float(q[0]), float(q[1])
            else:
                lo, hi = b - z * se, b + z * se
            pval = float(2 * stats.norm.sf(abs(b / se))) if se > 0 else float("nan")
            row: dict[str, Any] = {
                "outcome": outcome,
                "treatment": t,
                "unit": unit,
                "phrase": phrase,
                "effect": b,
                "se": se,
                "ci_low": lo,
                "ci_high": hi,
                "p_value": pval,
                "n": len(df),
                "model": kind,
                "scale": "log-odds" if kind == "logit" else f"{outcome} points",
            }
            if kind == "logit":
                row["odds_ratio"] = float(np.exp(b))
                row["or_low"], row["or_high"] = float(np.exp(lo)), float(np.exp(hi))
                row["ame_pp"] = 100 * slope * b
                row["baseline_rate"] = base
            row["method"] = method
            row["sentence"] = _sentence(row, level)
            rows.append(row)
    table = pd.DataFrame(rows)
    summary = (
        "one model per outcome with all treatments together and fixed effects for "
        f"{', '.join(conf) or 'nothing'}: logistic regression for yes/no outcomes, interval "
        "regression (or least squares) for 1-5 scores; "
        + (f"{n_boot}-draw bootstrap percentile intervals" if n_boot else "Wald intervals")
        + ". These are associations adjusted for those confounders, not proof of causation."
    )
    return EffectResult(table, summary, tuple(conf), len(sessions), notes)


def _method(kind: str, conf: Sequence[str], n_boot: int, level: float, cond: str | None) -> str:
    fe = ", ".join(conf) or "no"
    ci = f"{n_boot}-draw bootstrap" if n_boot else "Wald"
    among = f" among sessions without {cond}" if cond else ""
    return f"{_MODEL_WORDS[kind]} with {fe} fixed effects{among}; {level:.0%} {ci} interval"


def _sentence(row: Mapping[str, Any], level: float) -> str:
    phrase = str(row["phrase"])
    sig = "" if row["p_value"] < 1 - level else " (not significant)"
    verb = "raises" if row["effect"] > 0 else "lowers"
    tail = f"{row['method']}, n={row['n']:,} sessions."
    if row["model"] == "logit":
        return (
            f"{phrase[0].upper()}{phrase[1:]} {verb} the odds of {row['outcome']} by a factor of "
            f"{row['odds_ratio']:.2f} ({level:.0%} CI {row['or_low']:.2f}-{row['or_high']:.2f}; "
            f"log-odds {row['effect']:+.3f}, about {row['ame_pp']:+.1f} percentage points){sig}; "
            + tail
        )
    return (
        f"{phrase[0].upper()}{phrase[1:]} {verb} the {row['outcome']} score by "
        f"{abs(row['effect']):.2f} points ({level:.0%} CI {row['ci_low']:+.2f} to "
        f"{row['ci_high']:+.2f}){sig}; " + tail
    )


def _require_unique(sessions: pd.DataFrame) -> None:
    if "session_id" in sessions and sessions["session_id"].duplicated().any():
        raise SchemaError("sessions frame has duplicate session_id rows")
