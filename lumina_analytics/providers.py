"""AI provider / model comparison: statistics with bootstrap intervals, significance, ranking
and a Kayenta-style switch verdict.

Input is any frame with ``llm_calls`` column names; optional columns may be missing
(``ttft_ms``, ``cost_usd``, token counts, ``error_type``) and the extras ``itl_ms`` and
``output_tps`` are used when a loader measured them (see :mod:`lumina_analytics.datasets`).

Definitions (per group of ``by``):

* latency / TTFT / inter-token latency / output tokens per second are quantiles over
  *successful* requests (as llmperf publishes them), linear interpolation (``quantile_cont``).
  Inter-token latency falls back to ``(latency - ttft) / (output_tokens - 1)``; output tokens
  per second to ``output_tokens / latency``.
* ``error_rate`` = failed / all requests; ``<type>_rate`` per error bucket
  (:data:`ERROR_BUCKETS`; unknown types go to ``other``).
* ``availability`` = 1 - (rate_limit + server_error + timeout) / all requests: failures the
  provider caused; client-side validation failures (``other``) do not count against it.
* ``cost_per_1k_tokens`` = sum(cost) / sum(input + output tokens) * 1000 over priced calls;
  ``cost_per_success`` = sum(cost) / successful requests.

Intervals are percentile bootstrap intervals, seeded by ``seed``, built to scale:

* quantiles: replicates drawn from the exact bootstrap distribution of the order statistics
  (a binomial identity; no row resampling, O(n log n) per group);
* error rates and availability: the equivalent multinomial draw from the counts;
* cost ratios: rows resampled (one index matrix per group), on a uniform sample of at most
  ``max_boot_rows`` priced calls for larger groups, rescaled as an m-out-of-n bootstrap.

:func:`compare` works on a pandas frame; :func:`compare_duckdb` computes the same table in
DuckDB (exact SQL aggregates, intervals from a per-group sample) for warehouses too large
for pandas; :func:`compare_warehouse` is its one-row-per-group form.
"""

from __future__ import annotations

import contextlib
import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from lumina_analytics.errors import SchemaError

ERROR_BUCKETS: tuple[str, ...] = ("rate_limit", "server_error", "timeout", "other")

#: metric -> True when higher is better.
HIGHER_IS_BETTER: dict[str, bool] = {
    "latency_p50": False,
    "latency_p95": False,
    "latency_p99": False,
    "ttft_p50": False,
    "ttft_p95": False,
    "itl_p50": False,
    "output_tps_p50": True,
    "error_rate": False,
    "rate_limit_rate": False,
    "server_error_rate": False,
    "timeout_rate": False,
    "other_error_rate": False,
    "availability": True,
    "cost_per_1k_tokens": False,
    "cost_per_success": False,
}

_QUANTILE_METRICS: dict[str, tuple[str, tuple[tuple[str, float], ...]]] = {
    "latency": ("latency_ms", (("latency_p50", 0.5), ("latency_p95", 0.95), ("latency_p99", 0.99))),
    "ttft": ("ttft_ms", (("ttft_p50", 0.5), ("ttft_p95", 0.95))),
    "itl": ("itl_ms", (("itl_p50", 0.5),)),
    "tps": ("output_tps", (("output_tps_p50", 0.5),)),
}

#: ``llm_calls`` columns a comparison, a verdict and the cost frontier read (load only these).
CALL_COLUMNS: tuple[str, ...] = (
    "ts",
    "provider",
    "model",
    "operation",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "latency_ms",
    "ttft_ms",
    "status",
    "error_type",
    "cost_usd",
)

Correction = Literal["holm", "bh"]


# ----------------------------------------------------------------------------- preparation
def _bucket_one(raw: object) -> str | None:
    if raw is None or raw is pd.NA or (isinstance(raw, float) and math.isnan(raw)):
        return None
    v = str(raw).strip().lower()
    if v in ERROR_BUCKETS:
        return v
    if "429" in v or "rate" in v or "quota" in v or "too_many" in v or "throttl" in v:
        return "rate_limit"
    if "timeout" in v or "timed_out" in v or "deadline" in v or v in {"408", "504"}:
        return "timeout"
    if (
        v.startswith("5")
        or "server" in v
        or "unavailable" in v
        or "overload" in v
        or "internal" in v
    ):
        return "server_error"
    return "other"


def bucket_error(error_type: pd.Series) -> pd.Series:
    """Map free ``error_type`` values onto :data:`ERROR_BUCKETS` (NULL stays NULL)."""
    codes, uniques = pd.factorize(error_type.astype("object"), use_na_sentinel=True)
    mapped = np.array([_bucket_one(u) for u in uniques] + [None], dtype=object)
    return pd.Series(mapped[codes], index=error_type.index, dtype=object)


def prepare_calls(calls: pd.DataFrame) -> pd.DataFrame:
    """Normalise a calls frame for comparison: numeric latencies, ``ok`` flag, error bucket,
    derived inter-token latency / throughput, total tokens. Missing optional columns become NaN."""
    if "latency_ms" not in calls.columns:
        raise SchemaError(f"calls frame needs a latency_ms column; it has {list(calls.columns)}")
    out = pd.DataFrame(index=calls.index)
    for c in (
        "latency_ms",
        "ttft_ms",
        "itl_ms",
        "output_tps",
        "cost_usd",
        "input_tokens",
        "output_tokens",
    ):
        out[c] = (
            pd.to_numeric(calls[c], errors="coerce").astype("float64")
            if c in calls.columns
            else np.nan
        )
    if "status" in calls.columns:
        codes, uniq = pd.factorize(calls["status"].to_numpy(dtype=object), use_na_sentinel=True)
        bad = np.array(
            [isinstance(v, str) and v.lower() in ("error", "failed", "failure") for v in uniq]
            + [False]
        )
        failed = pd.Series(bad[codes], index=calls.index)
    else:
        failed = pd.Series(False, index=calls.index)
    et = (
        bucket_error(calls["error_type"])
        if "error_type" in calls.columns
        else pd.Series(None, index=calls.index, dtype="object")
    )
    failed = failed | et.notna()
    et = et.where(~(failed & et.isna()), "other")
    out["ok"] = ~failed.to_numpy(dtype=bool)
    out["err"] = et
    derived_itl = (out["latency_ms"] - out["ttft_ms"]) / (out["output_tokens"] - 1).where(
        out["output_tokens"] > 1
    )
    out["itl_ms"] = out["itl_ms"].fillna(derived_itl)
    derived_tps = out["output_tokens"] / (out["latency_ms"] / 1000.0).where(out["latency_ms"] > 0)
    out["output_tps"] = out["output_tps"].fillna(derived_tps)
    out["tokens"] = out["input_tokens"].fillna(0) + out["output_tokens"].fillna(0)
    return out


_VERSION_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|-v\d+(:\d+)?|@\d{8}|-\d{3})$")


def merge_model_versions(calls: pd.DataFrame) -> pd.DataFrame:
    """Map dated/versioned response-model names onto the request-model name present in the
    same frame for the same provider (``gpt-4o-2024-08-06`` -> ``gpt-4o``,
    ``mistral-large-2411`` -> ``mistral-large-latest``). Failed calls usually carry only the
    request model, so without this their errors land in a separate group. Names with no
    such counterpart are kept."""
    if "model" not in calls.columns:
        return calls
    prov = (
        calls["provider"].astype("object")
        if "provider" in calls.columns
        else pd.Series("", index=calls.index)
    )
    pairs = (
        pd.DataFrame({"p": prov.fillna(""), "m": calls["model"].astype("object")})
        .dropna()
        .drop_duplicates()
    )
    mapping: dict[tuple[str, str], str] = {}
    for p, grp in pairs.groupby("p"):
        names = set(map(str, grp["m"]))
        for m in names:
            base = _VERSION_SUFFIX.sub("", m)
            if base == m:
                continue
            for cand in (base, f"{base}-latest"):
                if cand in names and cand != m:
                    mapping[(str(p), m)] = cand
                    break
    if not mapping:
        return calls
    out = calls.copy()
    keys = list(zip(prov.fillna("").astype(str), calls["model"].astype("object"), strict=True))
    out["model"] = [mapping.get((p, m), m) if isinstance(m, str) else m for p, m in keys]
    return out


def _group_keys(calls: pd.DataFrame, by: Sequence[str]) -> pd.Series:
    missing = [c for c in by if c not in calls.columns]
    if missing:
        raise SchemaError(
            f"cannot group by {missing}: not in the calls frame ({list(calls.columns)})"
        )

    def text(v: object) -> str:
        missing = v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
        return "(none)" if missing else str(v)

    labels = np.full(len(calls), "", dtype=object)
    for i, c in enumerate(by):  # per column: factorize once, label the distinct values
        codes, uniq = pd.factorize(calls[c].to_numpy(dtype=object), use_na_sentinel=True)
        names = np.array([text(v) for v in uniq] + ["(none)"], dtype=object)
        labels = names[codes] if i == 0 else labels + " / " + names[codes]
    return pd.Series(labels, index=calls.index, dtype=object)


# ----------------------------------------------------------------------------- statistics
def _quantile_boot(
    vals: np.ndarray, qs: Sequence[float], n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """(len(qs), n_boot) bootstrap replicates of the ``qs`` quantiles of ``vals``, drawn from
    their exact bootstrap distribution instead of by resampling rows.

    The r-th order statistic of a resample of the m values is at most ``x_(j)`` exactly when
    at least r of its m draws are at most ``x_(j)``: P = P(Binomial(m, j/m) >= r). One
    uniform per replicate picks the order statistics r and r+1 either side of the linear
    interpolation point ``(m-1)q`` (comonotone, so the upper one is never below the lower)
    and interpolates them as ``quantile_cont`` does. Cost O(m log m) per group instead of
    O(m * n_boot), with the same distribution as resampling for the order statistics.
    """
    x = np.sort(vals)
    m = len(x)
    out = np.empty((len(qs), n_boot))
    u = rng.random(n_boot)
    for i, q in enumerate(qs):
        h = (m - 1) * q
        lo_r = math.floor(h) + 1  # 1-based rank of the lower order statistic
        frac = h - (lo_r - 1)
        # ranks j outside +-12 sd of the binomial have probability below 1e-30: skip them
        half = 12 * math.sqrt(m * q * (1 - q)) + 3
        j = np.arange(max(1, math.floor(m * q - half)), min(m, math.ceil(m * q + half)) + 1)
        draws = []
        for r in (lo_r, min(lo_r + 1, m)):
            cdf = stats.binom.sf(r - 1, m, j / m)  # P(X*_(r) <= x_(j)), increasing in j
            cdf[-1] = 1.0
            pick = j[np.minimum(np.searchsorted(cdf, u, side="left"), len(j) - 1)]
            draws.append(x[pick - 1])
        out[i] = draws[0] + frac * (draws[1] - draws[0])
    return out


def _ratio_boot(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    n_boot: int,
    rng: np.random.Generator,
    chunk_cells: int,
) -> np.ndarray:
    """(len(pairs), n_boot) bootstrap replicates of sum(num) / sum(den) for each (num, den)
    pair over the same rows, all from one resampling of the rows (chunked)."""
    m = len(pairs[0][0])
    out = np.empty((len(pairs), n_boot))
    step = max(1, chunk_cells // max(m, 1))
    for start in range(0, n_boot, step):
        b = min(step, n_boot - start)
        idx = rng.integers(0, m, size=(b, m))
        for i, (num, den) in enumerate(pairs):
            d = den[idx].sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[i, start : start + b] = np.where(d > 0, num[idx].sum(axis=1) / d, np.nan)
    return out


@dataclass
class _Summary:
    """Full-data quantities of one group: point estimates, how many values each rests on,
    and the counts of (ok, rate_limit, server_error, timeout, other)."""

    n: int
    points: dict[str, float]
    ns: dict[str, int]
    counts: np.ndarray


def _ratio_points(c: np.ndarray, tok: np.ndarray, ok: np.ndarray) -> tuple[float, float]:
    v1 = c.sum() / tok.sum() * 1000 if tok.sum() > 0 else math.nan
    v2 = c.sum() / ok.sum() if ok.sum() > 0 else math.nan
    return float(v1), float(v2)


def _summarise(g: pd.DataFrame) -> _Summary:
    """Point estimates of every statistic over all rows of a prepared group ``g``."""
    ok = g["ok"].to_numpy()
    points: dict[str, float] = {}
    ns: dict[str, int] = {}
    for col, specs in _QUANTILE_METRICS.values():
        vals = g[col].to_numpy()[ok]
        vals = vals[np.isfinite(vals)]
        ns[col] = len(vals)
        pts = np.quantile(vals, [q for _, q in specs]) if len(vals) else [math.nan] * len(specs)
        points.update({name: float(v) for (name, _), v in zip(specs, pts, strict=True)})
    cost = g["cost_usd"].to_numpy()
    priced = np.isfinite(cost)
    ns["cost_usd"] = int(priced.sum())
    points["cost_per_1k_tokens"], points["cost_per_success"] = _ratio_points(
        cost[priced], g["tokens"].to_numpy()[priced], ok[priced].astype(float)
    )
    counts = np.array([ok.sum()] + [int((g["err"] == b).sum()) for b in ERROR_BUCKETS], dtype=float)
    return _Summary(n=len(g), points=points, ns=ns, counts=counts)


def _rescaled(boot: np.ndarray, full: float, sample_point: float, m: int, n: int) -> np.ndarray:
    """m-out-of-n bootstrap: replicates computed on a sample of m of the n values are
    re-centred on the full estimate and shrunk by sqrt(m/n) (identity when m == n)."""
    if m >= n:
        return boot
    return full + math.sqrt(m / n) * (boot - sample_point)


def _group_stats(
    full: _Summary,
    sample: pd.DataFrame,
    n_boot: int,
    alpha: float,
    rng: np.random.Generator,
    chunk_cells: int,
    quantile_sample: pd.DataFrame | None = None,
) -> list[tuple[str, float, float, float, int]]:
    """Rows of (metric, value, lo, hi, n) for one group: values from ``full``; intervals from
    the bootstrap of ``sample`` (all rows of the group, or a uniform sample of them, then
    rescaled as an m-out-of-n bootstrap) for the ratios, of ``quantile_sample`` (default
    ``sample``) for the quantiles, and of the full error counts (multinomial) for the rates."""
    n = full.n
    rows: list[tuple[str, float, float, float, int]] = [("count", float(n), float(n), float(n), n)]
    qsample = sample if quantile_sample is None else quantile_sample

    def ci(samples: np.ndarray) -> tuple[float, float]:
        s = samples[np.isfinite(samples)]
        if n_boot == 0 or len(s) == 0:
            return (math.nan, math.nan)
        lo, hi = np.quantile(s, [alpha / 2, 1 - alpha / 2])
        return float(lo), float(hi)

    ok_q = qsample["ok"].to_numpy(dtype=bool)
    for col, specs in _QUANTILE_METRICS.values():
        n_full = full.ns[col]
        vals = qsample[col].to_numpy()[ok_q]
        vals = vals[np.isfinite(vals)]
        qs = [q for _, q in specs]
        if n_boot and len(vals):
            boot = _quantile_boot(vals, qs, n_boot, rng)
            at = np.quantile(vals, qs)
        for i, (name, _) in enumerate(specs):
            lo = hi = math.nan
            if n_boot and len(vals):
                lo, hi = ci(_rescaled(boot[i], full.points[name], at[i], len(vals), n_full))
            rows.append((name, full.points[name], lo, hi, n_full))

    # proportions: multinomial over (ok, rate_limit, server_error, timeout, other), full counts
    p = full.counts / n
    draws = rng.multinomial(n, p, size=n_boot) / n if n_boot else np.empty((0, 5))
    rows.append(("error_rate", float(1 - p[0]), *ci(1 - draws[:, 0]), n))
    for i, b in enumerate(ERROR_BUCKETS, start=1):
        name = "other_error_rate" if b == "other" else f"{b}_rate"
        rows.append((name, float(p[i]), *ci(draws[:, i]), n))
    rows.append(("availability", float(1 - p[1:4].sum()), *ci(1 - draws[:, 1:4].sum(axis=1)), n))

    # cost ratios over priced calls
    n_priced = full.ns["cost_usd"]
    cost = sample["cost_usd"].to_numpy()
    priced = np.isfinite(cost)
    c, tok = cost[priced], sample["tokens"].to_numpy()[priced]
    oks = sample["ok"].to_numpy(dtype=float)[priced]
    at = _ratio_points(c, tok, oks)
    names = ("cost_per_1k_tokens", "cost_per_success")
    rboot = (
        _ratio_boot([(c * 1000, tok), (c, oks)], n_boot, rng, chunk_cells)
        if n_boot and len(c)
        else None
    )
    for i, name in enumerate(names):
        lo = hi = math.nan
        if rboot is not None and np.isfinite(full.points[name]):
            lo, hi = ci(_rescaled(rboot[i], full.points[name], at[i], len(c), n_priced))
        rows.append((name, full.points[name], lo, hi, n_priced))
    return rows


def _long_rows(
    keys: Mapping[str, Any], group: str, rows: Sequence[tuple[str, float, float, float, int]]
) -> list[dict[str, Any]]:
    """Rows of a :class:`Comparison` table from :func:`_group_stats` tuples."""
    cols = ("metric", "value", "ci_low", "ci_high", "n")
    return [{**keys, "group": group, **dict(zip(cols, r, strict=True))} for r in rows]


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN stays NaN)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    idx = np.where(np.isfinite(p))[0]
    if len(idx) == 0:
        return out
    order = idx[np.argsort(p[idx])]
    m = len(order)
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adj, 1.0)
    return out


def benjamini_hochberg(pvalues: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN stays NaN)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok], method="bh")
    return out


def two_proportion_test(x1: int, n1: int, x2: int, n2: int) -> tuple[float, str]:
    """Two-sided p-value for equal proportions: pooled z-test, Fisher's exact test when an
    expected cell count is below 5. Returns (p, test name)."""
    if n1 == 0 or n2 == 0:
        return math.nan, "none"
    pooled = (x1 + x2) / (n1 + n2)
    expected = min(n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled))
    if expected < 5:
        res = stats.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]])
        return float(res.pvalue), "fisher"
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (x1 / n1 - x2 / n2) / se
    return float(2 * stats.norm.sf(abs(z))), "two-proportion z"


def _mwu(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) == 0 or len(b) == 0:
        return math.nan
    if np.ptp(np.concatenate([a, b])) == 0:
        return 1.0
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def pairwise_tests(
    calls: pd.DataFrame,
    by: Sequence[str] = ("provider", "model"),
    correction: Correction = "holm",
    alpha: float = 0.05,
    merge_versions: bool = True,
) -> pd.DataFrame:
    """Every pair of groups: Mann-Whitney U on latency and TTFT of successful requests, and a
    two-proportion test on the error rate; p-values adjusted within each metric (Holm or BH).

    Columns: a, b, metric, a_value, b_value, effect (b/a ratio of medians, or b-a rate
    difference), test, p_value, p_adjusted, significant, correction.
    """
    if merge_versions and "model" in by:
        calls = merge_model_versions(calls)
    prep = prepare_calls(calls)
    prep["_g"] = _group_keys(calls, by).to_numpy()
    groups: dict[str, pd.DataFrame] = {str(k): v for k, v in prep.groupby("_g", sort=True)}
    names = sorted(groups)
    rows: list[dict[str, Any]] = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            ga, gb = groups[a], groups[b]
            for metric, col in (("latency_ms", "latency_ms"), ("ttft_ms", "ttft_ms")):
                va = ga.loc[ga["ok"], col].to_numpy()
                vb = gb.loc[gb["ok"], col].to_numpy()
                va, vb = va[np.isfinite(va)], vb[np.isfinite(vb)]
                if len(va) == 0 or len(vb) == 0:
                    continue
                ma, mb = float(np.median(va)), float(np.median(vb))
                rows.append(
                    dict(
                        a=a,
                        b=b,
                        metric=metric,
                        a_value=ma,
                        b_value=mb,
                        effect=mb / ma if ma else math.nan,
                        test="mann-whitney u",
                        p_value=_mwu(va, vb),
                    )
                )
            xa, na = int((~ga["ok"]).sum()), len(ga)
            xb, nb = int((~gb["ok"]).sum()), len(gb)
            pv, test = two_proportion_test(xa, na, xb, nb)
            rows.append(
                dict(
                    a=a,
                    b=b,
                    metric="error_rate",
                    a_value=xa / na,
                    b_value=xb / nb,
                    effect=xb / nb - xa / na,
                    test=test,
                    p_value=pv,
                )
            )
    out = pd.DataFrame(
        rows, columns=["a", "b", "metric", "a_value", "b_value", "effect", "test", "p_value"]
    )
    adjust = holm if correction == "holm" else benjamini_hochberg
    out["p_adjusted"] = np.nan
    for _, idx in out.groupby("metric").groups.items():
        out.loc[idx, "p_adjusted"] = adjust(out.loc[idx, "p_value"].to_numpy())
    out["significant"] = out["p_adjusted"] < alpha
    out["correction"] = "holm" if correction == "holm" else "benjamini-hochberg"
    return out


def rank(wide: pd.DataFrame, weights: Mapping[str, float]) -> pd.DataFrame:
    """Weighted ranking of groups: each weighted metric is min-max scaled across groups to
    [0, 1] with 1 the best (direction from :data:`HIGHER_IS_BETTER`), score = weighted mean.
    A group missing a metric gets that metric's worst score."""
    unknown = [m for m in weights if m not in wide.columns]
    if unknown:
        raise SchemaError(f"cannot rank on {unknown}: known metrics are {sorted(HIGHER_IS_BETTER)}")
    total = sum(abs(w) for w in weights.values())
    if total == 0:
        raise SchemaError("ranking weights are all zero; give at least one metric a weight")
    score = pd.Series(0.0, index=wide.index)
    parts = {}
    for m, w in weights.items():
        v = wide[m].astype(float)
        lo, hi = v.min(), v.max()
        s = (
            pd.Series(1.0, index=wide.index)
            if not np.isfinite(hi - lo) or hi == lo
            else (v - lo) / (hi - lo)
        )
        if not HIGHER_IS_BETTER.get(m, False):
            s = 1 - s
        s = s.fillna(0.0)
        parts[f"score_{m}"] = s
        score += abs(w) * s
    out = wide.copy()
    for k, v in parts.items():
        out[k] = v
    out["score"] = score / total
    out = out.sort_values("score", ascending=False)
    out["rank"] = np.arange(1, len(out) + 1)
    return out


# ----------------------------------------------------------------------------- result objects
def _df_html(frame: pd.DataFrame, float_format: str = "{:,.4g}") -> str:
    return frame.to_html(
        index=False, float_format=lambda v: float_format.format(v), na_rep="–", border=0
    )


def _jsonable(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records", date_format="iso"))


@dataclass
class Comparison:
    """Result of :func:`compare`: long statistics with intervals, pairwise tests, ranking."""

    by: tuple[str, ...]
    table: pd.DataFrame  # by..., group, metric, value, ci_low, ci_high, n
    pairwise: pd.DataFrame | None = None
    ranking: pd.DataFrame | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def wide(self, intervals: bool = False) -> pd.DataFrame:
        """One row per group, one column per metric (plus ``_lo``/``_hi`` with ``intervals``)."""
        idx = [*self.by, "group"]
        order = list(dict.fromkeys(self.table["metric"]))
        w = self.table.pivot(index=idx, columns="metric", values="value")[order]
        if intervals:
            lo = self.table.pivot(index=idx, columns="metric", values="ci_low")[order].add_suffix(
                "_lo"
            )
            hi = self.table.pivot(index=idx, columns="metric", values="ci_high")[order].add_suffix(
                "_hi"
            )
            w = pd.concat([w, lo, hi], axis=1)
        w.columns.name = None
        return w.reset_index()

    def metric(self, name: str) -> pd.DataFrame:
        """Rows of one metric."""
        return self.table[self.table["metric"] == name].reset_index(drop=True)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "by": list(self.by),
            "settings": self.settings,
            "table": _jsonable(self.table),
            "pairwise": None if self.pairwise is None else _jsonable(self.pairwise),
            "ranking": None if self.ranking is None else _jsonable(self.ranking),
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """Serialise to JSON; also write it to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, default=str)
        if path is not None:
            Path(path).write_text(text)
        return text

    def summary(self) -> pd.DataFrame:
        """Display table: ``value [lo, hi]`` strings per group and metric."""
        t = self.table.copy()

        def fmt(r: pd.Series) -> str:
            if not np.isfinite(r["value"]):
                return "–"
            if np.isfinite(r["ci_low"]):
                return f"{r['value']:.4g} [{r['ci_low']:.3g}, {r['ci_high']:.3g}]"
            return f"{r['value']:.4g}"

        t["cell"] = t.apply(fmt, axis=1)
        w = t.pivot_table(
            index="group", columns="metric", values="cell", aggfunc="first", sort=False
        )
        order = [m for m in ["count", *HIGHER_IS_BETTER] if m in w.columns]
        return w[order].reset_index()

    def _repr_html_(self) -> str:
        s = self.settings
        head = (
            f"<h4>Provider comparison by {html.escape(', '.join(self.by))}</h4>"
            f"<p>{s.get('ci', 0.95):.0%} percentile bootstrap intervals, {s.get('n_boot')} replicates, "
            f"seed {s.get('seed')}. Latency/TTFT/ITL in ms over successful requests.</p>"
        )
        body = _df_html(self.summary())
        if self.ranking is not None:
            cols = [c for c in ["rank", "group", "score"] if c in self.ranking.columns]
            body += f"<h5>Ranking (weights {html.escape(str(s.get('weights')))})</h5>" + _df_html(
                self.ranking[cols]
            )
        if self.pairwise is not None and len(self.pairwise):
            sig = self.pairwise[self.pairwise["significant"]]
            body += (
                f"<h5>Significant pairwise differences ({html.escape(str(s.get('correction')))}-corrected, "
                f"{len(sig)} of {len(self.pairwise)} tests)</h5>" + _df_html(sig.head(30))
            )
        return f"<div class='lumina-comparison'>{head}{body}</div>"


def compare(
    calls: pd.DataFrame,
    by: Sequence[str] = ("provider", "model"),
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int | None = 0,
    pairwise: bool = True,
    correction: Correction = "holm",
    weights: Mapping[str, float] | None = None,
    chunk_cells: int = 4_000_000,
    merge_versions: bool = True,
    max_boot_rows: int | None = 5_000,
) -> Comparison:
    """Compare groups of calls (default by provider and model) on latency percentiles, TTFT,
    inter-token latency, output tokens/s, error rates by type, availability and cost, each
    with a percentile bootstrap interval; optionally pairwise tests and a weighted ranking.
    ``merge_versions`` applies :func:`merge_model_versions` first.

    Quantile intervals use the exact bootstrap distribution of order statistics (all rows,
    any size); rate intervals a multinomial draw from the full counts; the cost ratios of a
    group with more than ``max_boot_rows`` priced calls are bootstrapped on a uniform sample
    of that many and rescaled (m-out-of-n bootstrap, see :func:`compare_duckdb`)."""
    by = tuple(by)
    if merge_versions and "model" in by:
        calls = merge_model_versions(calls)
    if len(calls) == 0:
        raise SchemaError(
            "no calls to compare (the frame is empty); widen the date range or filters"
        )
    if n_boot < 0:
        raise ValueError("n_boot must be >= 0")
    prep = prepare_calls(calls)
    prep["_g"] = _group_keys(calls, by).to_numpy()
    for c in by:
        prep[c] = calls[c].to_numpy()
    alpha = 1 - ci
    names = sorted(prep["_g"].unique())
    seeds = np.random.SeedSequence(seed).spawn(len(names))
    rows = []
    parts: dict[Any, Any] = prep.groupby("_g", sort=False).indices
    for name, ss in zip(names, seeds, strict=True):
        g = prep.iloc[parts[name]]
        keys = {c: g[c].iloc[0] for c in by}
        rng = np.random.default_rng(ss)
        sample = g
        if n_boot and max_boot_rows is not None and len(g) > max_boot_rows:
            sample = g.iloc[np.sort(rng.choice(len(g), size=max_boot_rows, replace=False))]
        stats_ = _group_stats(
            _summarise(g), sample, n_boot, alpha, rng, chunk_cells, quantile_sample=g
        )
        rows.extend(_long_rows(keys, name, stats_))
    table = pd.DataFrame(rows)
    result = Comparison(
        by=by,
        table=table,
        settings={
            "n_boot": n_boot,
            "ci": ci,
            "seed": seed,
            "correction": correction,
            "weights": dict(weights) if weights else None,
            "interval": "percentile bootstrap",
            "max_boot_rows": max_boot_rows,
        },
    )
    if pairwise and len(names) > 1:
        result.pairwise = pairwise_tests(
            calls, by, correction=correction, alpha=0.05, merge_versions=False
        )
    if weights:
        result.ranking = rank(result.wide(), weights)
    return result


def latency_sample(
    calls: pd.DataFrame,
    by: Sequence[str] = ("provider", "model"),
    max_points: int = 3000,
    seed: int | None = 0,
) -> pd.DataFrame:
    """Up to ``max_points`` successful calls per group (uniform, seeded) with their ``group``
    label, ``latency_ms`` and ``ttft_ms``: the data of a latency distribution chart."""
    prep = prepare_calls(calls)
    labels = _group_keys(calls, by)
    ok = prep["ok"].to_numpy()
    rng = np.random.default_rng(seed)
    groups: dict[Any, Any] = labels[ok].groupby(labels[ok], sort=True).indices
    okpos = np.flatnonzero(ok)
    keep = [
        okpos[idx if len(idx) <= max_points else rng.choice(idx, max_points, replace=False)]
        for idx in groups.values()
    ]
    rows = np.sort(np.concatenate(keep)) if keep else np.array([], dtype=np.int64)
    out = calls.iloc[rows][list(by)].copy()
    out["group"] = labels.iloc[rows].to_numpy()
    out["latency_ms"] = prep["latency_ms"].iloc[rows].to_numpy()
    out["ttft_ms"] = prep["ttft_ms"].iloc[rows].to_numpy()
    return out.reset_index(drop=True)


def suggest_switch(result: Comparison) -> tuple[str, str]:
    """A default (baseline, candidate) pair: the group with the most requests, and the best
    ranked other group (by ``result.ranking`` when present, else the next busiest)."""
    counts = result.metric("count").sort_values(["value", "group"], ascending=[False, True])
    if len(counts) < 2:
        raise SchemaError("need at least two groups to suggest a switch")
    baseline = str(counts["group"].iloc[0])
    if result.ranking is not None:
        others = [g for g in result.ranking["group"] if g != baseline]
    else:
        others = [g for g in counts["group"] if g != baseline]
    return baseline, str(others[0])


# ----------------------------------------------------------------------------- SQL path
def _sql_ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise SchemaError(f"invalid column name {name!r}")
    return f'"{name}"'


def _prepared_cte(by: Sequence[str], source: str, where: str, measured_extras: bool) -> str:
    """``WITH c AS (...)``: the group keys and the per-call columns of :func:`prepare_calls`."""
    keys = ", ".join(_sql_ident(c) for c in by)
    bucket = """CASE WHEN error_type IS NULL AND lower(coalesce(status,'ok')) NOT IN ('error','failed','failure') THEN NULL
        WHEN error_type IS NULL THEN 'other'
        WHEN lower(error_type) IN ('rate_limit','server_error','timeout','other') THEN lower(error_type)
        WHEN regexp_matches(lower(error_type), '429|rate|quota|too_many|throttl') THEN 'rate_limit'
        WHEN regexp_matches(lower(error_type), 'timeout|timed_out|deadline') OR error_type IN ('408','504') THEN 'timeout'
        WHEN regexp_matches(lower(error_type), '^5|server|unavailable|overload|internal') THEN 'server_error'
        ELSE 'other' END"""
    cond = f"WHERE {where}" if where else ""
    itl = "CASE WHEN output_tokens > 1 THEN (latency_ms - ttft_ms) / (output_tokens - 1) END"
    tps = "CASE WHEN latency_ms > 0 THEN output_tokens / (latency_ms / 1000.0) END"
    if measured_extras:
        itl, tps = f"coalesce(itl_ms, {itl})", f"coalesce(output_tps, {tps})"
    return f"""
WITH c AS (
  SELECT {keys}, latency_ms, ttft_ms, cost_usd,
         coalesce(input_tokens, 0) + coalesce(output_tokens, 0) AS tokens,
         {itl} AS itl_ms,
         {tps} AS output_tps,
         {bucket} AS err,
         hash(trace_id, span_id, ts, latency_ms, ttft_ms, cost_usd, input_tokens, output_tokens) AS _h
  FROM {source} {cond}
)"""


def compare_sql_text(
    by: Sequence[str],
    source: str = "llm_calls",
    where: str = "",
    measured_extras: bool = False,
    with_counts: bool = False,
) -> str:
    """The DuckDB SQL computing :func:`compare`'s point estimates over ``source``.

    ``where`` is an optional SQL condition with ``?`` placeholders (values bound by the caller).
    ``with_counts`` adds the counts the intervals need (``_n_<column>`` values behind each
    quantile, ``_n_cost_usd`` priced calls, ``_n_<bucket>`` calls per error bucket).
    """
    keys = ", ".join(_sql_ident(c) for c in by)
    counts = ""
    if with_counts:
        cols = [col for col, _ in _QUANTILE_METRICS.values()]
        counts = "".join(
            f",\n  count({c}) FILTER (WHERE err IS NULL AND isfinite({c})) AS _n_{c}" for c in cols
        )
        counts += ",\n  count(cost_usd) FILTER (WHERE isfinite(cost_usd)) AS _n_cost_usd"
        counts += "".join(
            f",\n  count(*) FILTER (WHERE err = '{b}') AS _n_{b}" for b in ERROR_BUCKETS
        )
    return f"""{_prepared_cte(by, source, where, measured_extras)}
SELECT {keys}, count(*) AS count,
  quantile_cont(latency_ms, 0.5) FILTER (WHERE err IS NULL) AS latency_p50,
  quantile_cont(latency_ms, 0.95) FILTER (WHERE err IS NULL) AS latency_p95,
  quantile_cont(latency_ms, 0.99) FILTER (WHERE err IS NULL) AS latency_p99,
  quantile_cont(ttft_ms, 0.5) FILTER (WHERE err IS NULL) AS ttft_p50,
  quantile_cont(ttft_ms, 0.95) FILTER (WHERE err IS NULL) AS ttft_p95,
  quantile_cont(itl_ms, 0.5) FILTER (WHERE err IS NULL) AS itl_p50,
  quantile_cont(output_tps, 0.5) FILTER (WHERE err IS NULL) AS output_tps_p50,
  avg(CASE WHEN err IS NOT NULL THEN 1.0 ELSE 0.0 END) AS error_rate,
  avg(CASE WHEN err = 'rate_limit' THEN 1.0 ELSE 0.0 END) AS rate_limit_rate,
  avg(CASE WHEN err = 'server_error' THEN 1.0 ELSE 0.0 END) AS server_error_rate,
  avg(CASE WHEN err = 'timeout' THEN 1.0 ELSE 0.0 END) AS timeout_rate,
  avg(CASE WHEN err = 'other' THEN 1.0 ELSE 0.0 END) AS other_error_rate,
  1 - avg(CASE WHEN err IN ('rate_limit','server_error','timeout') THEN 1.0 ELSE 0.0 END) AS availability,
  sum(cost_usd) * 1000.0 / nullif(sum(tokens) FILTER (WHERE cost_usd IS NOT NULL), 0) AS cost_per_1k_tokens,
  sum(cost_usd) / nullif(count(*) FILTER (WHERE err IS NULL AND cost_usd IS NOT NULL), 0) AS cost_per_success{counts}
FROM c GROUP BY {keys} ORDER BY {keys}
"""


def _sample_sql_text(
    by: Sequence[str], source: str, where: str, measured_extras: bool, seed: int
) -> str:
    """Uniform per-group sample of the prepared calls: a row is kept when its content hash
    (salted with ``seed``) falls below the group's rate in the registered ``_boot_rates``
    frame (keys as text, ``_rate``). A hash, not ``random()``, so the sample is reproducible
    under DuckDB's parallel scans."""
    keys = ", ".join(f"c.{_sql_ident(k)}" for k in by)
    join = " AND ".join(
        f"CAST(c.{_sql_ident(k)} AS VARCHAR) IS NOT DISTINCT FROM r.{_sql_ident(k)}" for k in by
    )
    return f"""{_prepared_cte(by, source, where, measured_extras)}
SELECT {keys}, c.latency_ms, c.ttft_ms, c.itl_ms, c.output_tps, c.cost_usd, c.tokens, c.err
FROM c JOIN _boot_rates r ON {join}
WHERE r._rate >= 1.0 OR (hash(c._h, {int(seed)}) % 4294967296) < r._rate * 4294967296
"""


def _from_sql_row(row: Mapping[Any, Any]) -> _Summary:
    """A :class:`_Summary` from one row of :func:`compare_sql_text` ``with_counts``."""
    points = {m: float(row[m]) if row[m] is not None else math.nan for m in HIGHER_IS_BETTER}
    points = {k: (math.nan if pd.isna(v) else v) for k, v in points.items()}
    ns = {col: int(row[f"_n_{col}"]) for col, _ in _QUANTILE_METRICS.values()}
    ns["cost_usd"] = int(row["_n_cost_usd"])
    bad = [int(row[f"_n_{b}"]) for b in ERROR_BUCKETS]
    n = int(row["count"])
    return _Summary(n=n, points=points, ns=ns, counts=np.array([n - sum(bad), *bad], dtype=float))


def compare_duckdb(
    warehouse: Any = None,
    by: Sequence[str] = ("provider", "model"),
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    frame: pd.DataFrame | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int | None = 0,
    max_boot_rows: int = 5_000,
    weights: Mapping[str, float] | None = None,
    chunk_cells: int = 4_000_000,
) -> Comparison:
    """:func:`compare` computed by DuckDB, for data too large for pandas: over a warehouse's
    ``llm_calls`` (``start`` inclusive, ``end`` exclusive, bound parameters) or over
    ``frame`` in an in-memory scratch connection. No pairwise tests (they need every row).

    Point estimates and counts are exact SQL aggregates over all rows. Intervals: error
    rates and availability from a multinomial draw of the exact counts; quantiles and cost
    ratios by an m-out-of-n bootstrap: DuckDB returns a uniform sample of at most
    ``max_boot_rows`` calls per group (reproducible: a seeded hash of each row), each
    statistic is bootstrapped on the m sample values (quantiles from the exact bootstrap
    distribution of order statistics) and the replicates are re-centred on the full estimate
    and scaled by sqrt(m/n) (Bickel, Götze and van Zwet 1997). A group of at most
    ``max_boot_rows`` calls is bootstrapped in full, as in :func:`compare`. Cost: one scan
    for the statistics and one for the sample, then O(groups * max_boot_rows) in numpy.
    """
    from lumina_analytics.warehouse import Warehouse, scratch

    by = tuple(by)
    if n_boot < 0:
        raise ValueError("n_boot must be >= 0")
    if max_boot_rows < 1:
        raise ValueError("max_boot_rows must be >= 1")
    conds, params = [], []
    if start is not None:
        conds.append("ts >= ?")
        params.append(pd.Timestamp(start).to_pydatetime())
    if end is not None:
        conds.append("ts < ?")
        params.append(pd.Timestamp(end).to_pydatetime())
    where = " AND ".join(conds)
    if frame is not None:
        need = [
            "latency_ms",
            "ttft_ms",
            "cost_usd",
            "input_tokens",
            "output_tokens",
            "error_type",
            "status",
            "ts",
            "trace_id",
            "span_id",
            "itl_ms",
            "output_tps",
        ]
        _group_keys(frame.head(0), by)  # clear error for unknown grouping columns
        missing = [c for c in need if c not in frame.columns]
        src = frame.assign(**{c: None for c in missing}) if missing else frame
        source, extras = "_calls", True
    else:
        wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
        source, extras = "llm_calls", False
    with contextlib.ExitStack() as stack:
        if frame is not None:
            con = stack.enter_context(contextlib.closing(scratch()))
            con.register("_calls", src)
        else:
            con = stack.enter_context(wh.reader())
        points = con.execute(
            compare_sql_text(by, source, where, extras, with_counts=True), params
        ).df()
        if points.empty:
            raise SchemaError(
                "no calls to compare in the selected range; widen the date range or filters"
            )
        sample = None
        if n_boot:
            rates = points[list(by)].astype("object").where(points[list(by)].notna(), None)
            rates = rates.map(lambda v: None if v is None else str(v))
            rates["_rate"] = max_boot_rows / points["count"].astype(float)
            con.register("_boot_rates", rates)
            salt = np.random.SeedSequence(seed).generate_state(1)[0]
            sample = con.execute(
                _sample_sql_text(by, source, where, extras, int(salt)), params
            ).df()
    alpha = 1 - ci
    labels = _group_keys(points, by)
    seeds = np.random.SeedSequence(seed).spawn(len(points))
    groups: dict[Any, Any] = {}
    if sample is not None:
        sample["ok"] = sample["err"].isna()
        for c in ("latency_ms", "ttft_ms", "itl_ms", "output_tps", "cost_usd", "tokens"):
            sample[c] = pd.to_numeric(sample[c], errors="coerce").astype("float64")
        groups = _group_keys(sample, by).groupby(_group_keys(sample, by), sort=False).indices
    empty = pd.DataFrame(
        {c: pd.Series(dtype="float64") for c in ("latency_ms", "cost_usd", "tokens")}
        | {"ok": pd.Series(dtype=bool)}
        | {c: pd.Series(dtype="float64") for c in ("ttft_ms", "itl_ms", "output_tps")}
    )
    rows = []
    records = points.to_dict("records")
    for rec, label, ss in zip(records, labels, seeds, strict=True):
        full = _from_sql_row(rec)
        part = sample.iloc[groups[label]] if sample is not None and label in groups else empty
        keys = {c: rec[c] for c in by}
        stats_ = _group_stats(full, part, n_boot, alpha, np.random.default_rng(ss), chunk_cells)
        rows.extend(_long_rows(keys, label, stats_))
    result = Comparison(
        by=by,
        table=pd.DataFrame(rows),
        settings={
            "n_boot": n_boot,
            "ci": ci,
            "seed": seed,
            "correction": None,
            "weights": dict(weights) if weights else None,
            "interval": "percentile bootstrap (m-out-of-n on a per-group sample, DuckDB)",
            "max_boot_rows": max_boot_rows,
        },
    )
    if weights:
        result.ranking = rank(result.wide(), weights)
    return result


def compare_points(calls: pd.DataFrame, by: Sequence[str] = ("provider", "model")) -> pd.DataFrame:
    """Point estimates of :func:`compare` in pandas (no intervals): one row per group."""
    return compare(calls, by, n_boot=0, pairwise=False).wide().drop(columns="group")


def compare_warehouse(
    warehouse: Any = None,
    by: Sequence[str] = ("provider", "model"),
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    frame: pd.DataFrame | None = None,
    n_boot: int = 0,
    ci: float = 0.95,
    seed: int | None = 0,
    max_boot_rows: int = 5_000,
) -> pd.DataFrame:
    """:func:`compare_duckdb` as one row per group: the point estimates, plus ``<metric>_lo``
    and ``<metric>_hi`` interval columns when ``n_boot`` > 0."""
    res = compare_duckdb(
        warehouse,
        by,
        start,
        end,
        frame,
        n_boot=n_boot,
        ci=ci,
        seed=seed,
        max_boot_rows=max_boot_rows,
    )
    return res.wide(intervals=n_boot > 0).drop(columns="group")


# ----------------------------------------------------------------------------- verdict
@dataclass(frozen=True)
class MetricSpec:
    """One metric of a switch verdict (Kayenta-style).

    ``kind='distribution'`` compares per-request values of ``column`` over successful
    requests with a Mann-Whitney test; effect = candidate median / baseline median, and
    ``allowed_increase`` / ``allowed_decrease`` are ratios (1.10 = up to 10% higher allowed).
    ``kind='proportion'`` compares the share of requests with an error (``column`` = 'error'
    or an error bucket) with a two-proportion test; effect = candidate rate - baseline rate,
    allowed changes are absolute (0.01 = one percentage point).
    ``fail_on``: which direction is a regression. A failing ``critical`` metric fails the verdict.
    """

    name: str
    kind: Literal["distribution", "proportion"]
    column: str
    fail_on: Literal["increase", "decrease", "both"] = "increase"
    allowed_increase: float = 1.10
    allowed_decrease: float = 0.90
    critical: bool = False
    weight: float = 1.0


DEFAULT_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("latency_ms", "distribution", "latency_ms", "increase", 1.10),
    MetricSpec("ttft_ms", "distribution", "ttft_ms", "increase", 1.15),
    MetricSpec("output_tps", "distribution", "output_tps", "decrease", allowed_decrease=0.90),
    MetricSpec("error_rate", "proportion", "error", "increase", 0.01, critical=True),
    MetricSpec("rate_limit_rate", "proportion", "rate_limit", "increase", 0.01),
    MetricSpec("cost_per_request", "distribution", "cost_usd", "increase", 1.05),
)


@dataclass
class Verdict:
    """Outcome of :func:`judge`: per-metric classification, score and overall decision."""

    baseline: str
    candidate: str
    decision: Literal["pass", "marginal", "fail"]
    score: float
    reasons: list[str]
    metrics: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "baseline": self.baseline,
            "candidate": self.candidate,
            "decision": self.decision,
            "score": self.score,
            "reasons": self.reasons,
            "metrics": _jsonable(self.metrics),
            "settings": self.settings,
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """Serialise to JSON; also write it to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, default=str)
        if path is not None:
            Path(path).write_text(text)
        return text

    def _repr_html_(self) -> str:
        colour = {"pass": "#2f9e44", "marginal": "#f08c00", "fail": "#e03131"}[self.decision]
        reasons = (
            "".join(f"<li>{html.escape(r)}</li>" for r in self.reasons)
            or "<li>no metric regressed</li>"
        )
        return (
            f"<div class='lumina-verdict'><h4>Switch {html.escape(self.baseline)} → "
            f"{html.escape(self.candidate)}: <span style='color:{colour}'>{self.decision.upper()}</span> "
            f"(score {self.score:.0f}/100; pass ≥ {self.settings.get('pass_threshold')}, "
            f"marginal ≥ {self.settings.get('marginal_threshold')})</h4><ul>{reasons}</ul>"
            f"{_df_html(self.metrics)}</div>"
        )


def _select(calls: pd.DataFrame, by: Sequence[str], who: Any) -> tuple[pd.Series, str]:
    labels = _group_keys(calls, by)
    if isinstance(who, Mapping):
        mask = pd.Series(True, index=calls.index)
        for k, v in who.items():
            if k not in calls.columns:
                raise SchemaError(f"unknown column {k!r} in selector {dict(who)}")
            mask &= calls[k].astype("object") == v
        label = " / ".join(str(who.get(c, "*")) for c in by)
    elif isinstance(who, tuple | list):
        label = " / ".join(map(str, who))
        mask = labels == label
    else:
        label = str(who)
        mask = labels == label
        if not mask.any():
            mask = calls[by[0]].astype("object") == label
    if not mask.any():
        raise SchemaError(f"no calls match {who!r}; groups are {sorted(labels.unique())[:20]}")
    return mask, label


def judge(
    calls: pd.DataFrame,
    baseline: Any,
    candidate: Any,
    by: Sequence[str] = ("provider", "model"),
    metrics: Sequence[MetricSpec] = DEFAULT_METRICS,
    alpha: float = 0.05,
    pass_threshold: float = 95.0,
    marginal_threshold: float = 75.0,
    merge_versions: bool = True,
) -> Verdict:
    """Kayenta-style judgement of moving traffic from ``baseline`` to ``candidate``.

    Selectors are a label (``"openai / gpt-4o"``, or a value of the first ``by`` column),
    a tuple of ``by`` values, or a ``{column: value}`` mapping. Each metric is classified
    pass / high / low / nodata: it fails only when the difference is significant (p < alpha)
    *and* the effect exceeds the allowed change in the ``fail_on`` direction. The score is
    the weighted share of metrics with data that pass; a failing critical metric fails the
    verdict, otherwise score ≥ ``pass_threshold`` passes and ≥ ``marginal_threshold`` is marginal.
    """
    if merge_versions and "model" in by:
        calls = merge_model_versions(calls)
    bmask, blabel = _select(calls, by, baseline)
    cmask, clabel = _select(calls, by, candidate)
    prep = prepare_calls(calls)
    b, c = prep[bmask.to_numpy()], prep[cmask.to_numpy()]
    rows: list[dict[str, Any]] = []
    for m in metrics:
        row: dict[str, Any] = {
            "metric": m.name,
            "kind": m.kind,
            "critical": m.critical,
            "weight": m.weight,
            "fail_on": m.fail_on,
        }
        if m.kind == "distribution":
            col = m.column
            vb = b.loc[b["ok"], col].to_numpy() if col in b.columns else np.array([])
            vc = c.loc[c["ok"], col].to_numpy() if col in c.columns else np.array([])
            vb, vc = vb[np.isfinite(vb)], vc[np.isfinite(vc)]
            row.update(n_baseline=len(vb), n_candidate=len(vc))
            if len(vb) < 3 or len(vc) < 3:
                row.update(
                    baseline=math.nan,
                    candidate=math.nan,
                    effect=math.nan,
                    p_value=math.nan,
                    allowed=f"×{m.allowed_decrease:g}–×{m.allowed_increase:g}",
                    result="nodata",
                )
                rows.append(row)
                continue
            mb, mc = float(np.median(vb)), float(np.median(vc))
            effect = mc / mb if mb else math.inf
            p = _mwu(vb, vc)
            too_high = effect > m.allowed_increase and m.fail_on in ("increase", "both")
            too_low = effect < m.allowed_decrease and m.fail_on in ("decrease", "both")
            allowed = f"×{m.allowed_decrease:g}–×{m.allowed_increase:g}"
        else:

            def failures(frame: pd.DataFrame, bucket: str) -> int:
                return (
                    int((~frame["ok"]).sum())
                    if bucket == "error"
                    else int((frame["err"] == bucket).sum())
                )

            xb, xc = failures(b, m.column), failures(c, m.column)
            nb, nc = len(b), len(c)
            row.update(n_baseline=nb, n_candidate=nc)
            mb, mc = xb / nb, xc / nc
            effect = mc - mb
            p, _ = two_proportion_test(xb, nb, xc, nc)
            too_high = effect > m.allowed_increase and m.fail_on in ("increase", "both")
            too_low = effect < -abs(1 - m.allowed_decrease) and m.fail_on in ("decrease", "both")
            allowed = f"+{m.allowed_increase:g} abs"
        significant = bool(np.isfinite(p) and p < alpha)
        result = (
            "high" if (significant and too_high) else "low" if (significant and too_low) else "pass"
        )
        row.update(
            baseline=mb, candidate=mc, effect=effect, p_value=p, allowed=allowed, result=result
        )
        rows.append(row)
    table = pd.DataFrame(rows)
    has = table[table["result"] != "nodata"]
    wsum = float(has["weight"].sum())
    score = 100.0 * float(has.loc[has["result"] == "pass", "weight"].sum()) / wsum if wsum else 0.0
    reasons: list[str] = []
    for r in table.itertuples():
        if r.result in ("high", "low"):
            how = f"×{r.effect:.3g}" if r.kind == "distribution" else f"{r.effect:+.3%}"
            reasons.append(
                f"{r.metric} {'increased' if r.result == 'high' else 'decreased'} {how} "
                f"(baseline {r.baseline:.4g}, candidate {r.candidate:.4g}, p={r.p_value:.2g}, allowed {r.allowed})"
                + (" [critical]" if r.critical else "")
            )
        elif r.result == "nodata" and r.critical:
            reasons.append(f"critical metric {r.metric} has no data")
    critical_fail = bool(
        ((table["result"].isin(["high", "low", "nodata"])) & table["critical"]).any()
    )
    if wsum == 0:
        decision: Literal["pass", "marginal", "fail"] = "fail"
        reasons.append("no metric had data for both baseline and candidate")
    elif critical_fail:
        decision = "fail"
    elif score >= pass_threshold:
        decision = "pass"
    elif score >= marginal_threshold:
        decision = "marginal"
    else:
        decision = "fail"
    return Verdict(
        baseline=blabel,
        candidate=clabel,
        decision=decision,
        score=score,
        reasons=reasons,
        metrics=table,
        settings={
            "alpha": alpha,
            "pass_threshold": pass_threshold,
            "marginal_threshold": marginal_threshold,
            "by": list(by),
            "metrics": [asdict(m) for m in metrics],
        },
    )
