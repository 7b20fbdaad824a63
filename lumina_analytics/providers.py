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

Intervals are percentile bootstrap intervals (vectorised: one index matrix per group,
resampling rows; proportions via the equivalent multinomial draw), seeded by ``seed``.
"""

from __future__ import annotations

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
        status = (
            calls["status"]
            .astype("object")
            .map(lambda v: str(v).lower() if isinstance(v, str) else v)
        )
        failed = status.isin(["error", "failed", "failure"])
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
    codes, uniques = pd.factorize(pd.MultiIndex.from_frame(calls[list(by)].astype("object")))
    labels = [
        " / ".join(
            "(none)"
            if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
            else str(v)
            for v in u
        )
        for u in uniques
    ]
    return pd.Series(np.array(labels, dtype=object)[codes], index=calls.index, dtype=object)


# ----------------------------------------------------------------------------- statistics
def _quantile_boot(
    vals: np.ndarray, qs: Sequence[float], n_boot: int, rng: np.random.Generator, chunk_cells: int
) -> np.ndarray:
    """(len(qs), n_boot) bootstrap quantiles of ``vals`` (vectorised, chunked over replicates)."""
    m = len(vals)
    out = np.empty((len(qs), n_boot))
    step = max(1, chunk_cells // max(m, 1))
    for start in range(0, n_boot, step):
        b = min(step, n_boot - start)
        idx = rng.integers(0, m, size=(b, m))
        out[:, start : start + b] = np.quantile(vals[idx], qs, axis=1)
    return out


def _ratio_boot(
    num: np.ndarray, den: np.ndarray, n_boot: int, rng: np.random.Generator, chunk_cells: int
) -> np.ndarray:
    m = len(num)
    out = np.empty(n_boot)
    step = max(1, chunk_cells // max(m, 1))
    for start in range(0, n_boot, step):
        b = min(step, n_boot - start)
        idx = rng.integers(0, m, size=(b, m))
        d = den[idx].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[start : start + b] = np.where(d > 0, num[idx].sum(axis=1) / d, np.nan)
    return out


def _group_stats(
    g: pd.DataFrame, n_boot: int, alpha: float, rng: np.random.Generator, chunk_cells: int
) -> list[tuple[str, float, float, float, int]]:
    """Rows of (metric, value, lo, hi, n) for one group."""
    rows: list[tuple[str, float, float, float, int]] = []
    n = len(g)
    ok = g["ok"].to_numpy()
    rows.append(("count", float(n), float(n), float(n), n))

    def ci(samples: np.ndarray) -> tuple[float, float]:
        s = samples[np.isfinite(samples)]
        if n_boot == 0 or len(s) == 0:
            return (math.nan, math.nan)
        lo, hi = np.quantile(s, [alpha / 2, 1 - alpha / 2])
        return float(lo), float(hi)

    for col, specs in _QUANTILE_METRICS.values():
        vals = g[col].to_numpy()[ok]
        vals = vals[np.isfinite(vals)]
        qs = [q for _, q in specs]
        if len(vals) == 0:
            rows.extend((name, math.nan, math.nan, math.nan, 0) for name, _ in specs)
            continue
        point = np.quantile(vals, qs)
        boot = (
            _quantile_boot(vals, qs, n_boot, rng, chunk_cells) if n_boot else np.empty((len(qs), 0))
        )
        for i, (name, _) in enumerate(specs):
            lo, hi = ci(boot[i])
            rows.append((name, float(point[i]), lo, hi, len(vals)))

    # proportions: multinomial over (ok, rate_limit, server_error, timeout, other)
    counts = np.array([ok.sum()] + [int((g["err"] == b).sum()) for b in ERROR_BUCKETS], dtype=float)
    p = counts / n
    draws = rng.multinomial(n, p, size=n_boot) / n if n_boot else np.empty((0, 5))
    err_point = 1 - p[0]
    rows.append(("error_rate", float(err_point), *ci(1 - draws[:, 0]), n))
    for i, b in enumerate(ERROR_BUCKETS, start=1):
        name = "other_error_rate" if b == "other" else f"{b}_rate"
        rows.append((name, float(p[i]), *ci(draws[:, i]), n))
    avail = 1 - p[1:4].sum()
    rows.append(("availability", float(avail), *ci(1 - draws[:, 1:4].sum(axis=1)), n))

    # cost ratios over priced calls
    cost = g["cost_usd"].to_numpy()
    priced = np.isfinite(cost)
    if priced.any():
        c = cost[priced]
        tok = g["tokens"].to_numpy()[priced]
        oks = ok[priced].astype(float)
        np_ = int(priced.sum())
        v1 = c.sum() / tok.sum() * 1000 if tok.sum() > 0 else math.nan
        b1 = _ratio_boot(c * 1000, tok, n_boot, rng, chunk_cells) if n_boot else np.empty(0)
        rows.append(("cost_per_1k_tokens", float(v1), *ci(b1), np_))
        v2 = c.sum() / oks.sum() if oks.sum() > 0 else math.nan
        b2 = _ratio_boot(c, oks, n_boot, rng, chunk_cells) if n_boot else np.empty(0)
        rows.append(("cost_per_success", float(v2), *ci(b2), np_))
    else:
        rows.append(("cost_per_1k_tokens", math.nan, math.nan, math.nan, 0))
        rows.append(("cost_per_success", math.nan, math.nan, math.nan, 0))
    return rows


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
) -> Comparison:
    """Compare groups of calls (default by provider and model) on latency percentiles, TTFT,
    inter-token latency, output tokens/s, error rates by type, availability and cost, each
    with a percentile bootstrap interval; optionally pairwise tests and a weighted ranking.
    ``merge_versions`` applies :func:`merge_model_versions` first."""
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
    for name, ss in zip(names, seeds, strict=True):
        g = prep[prep["_g"] == name]
        keys = {c: g[c].iloc[0] for c in by}
        for metric, value, lo, hi, n in _group_stats(
            g, n_boot, alpha, np.random.default_rng(ss), chunk_cells
        ):
            rows.append(
                {
                    **keys,
                    "group": name,
                    "metric": metric,
                    "value": value,
                    "ci_low": lo,
                    "ci_high": hi,
                    "n": n,
                }
            )
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
        },
    )
    if pairwise and len(names) > 1:
        result.pairwise = pairwise_tests(
            calls, by, correction=correction, alpha=0.05, merge_versions=False
        )
    if weights:
        result.ranking = rank(result.wide(), weights)
    return result


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


def compare_sql_text(
    by: Sequence[str], source: str = "llm_calls", where: str = "", measured_extras: bool = False
) -> str:
    """The DuckDB SQL computing :func:`compare`'s point estimates (no intervals) over ``source``.

    ``where`` is an optional SQL condition with ``?`` placeholders (values bound by the caller).
    """
    keys = ", ".join(_sql_ident(c) for c in by)
    bucket = """CASE WHEN error_type IS NULL AND lower(coalesce(status,'ok')) NOT IN ('error','failed','failure') THEN NULL
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
         {bucket} AS err
  FROM {source} {cond}
)
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
  sum(cost_usd) / nullif(count(*) FILTER (WHERE err IS NULL AND cost_usd IS NOT NULL), 0) AS cost_per_success
FROM c GROUP BY {keys} ORDER BY {keys}
"""


def compare_points(calls: pd.DataFrame, by: Sequence[str] = ("provider", "model")) -> pd.DataFrame:
    """Point estimates of :func:`compare` in pandas (no intervals): one row per group."""
    return compare(calls, by, n_boot=0, pairwise=False).wide().drop(columns="group")


def compare_warehouse(
    warehouse: Any = None,
    by: Sequence[str] = ("provider", "model"),
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    frame: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Point estimates of :func:`compare` computed by DuckDB: over a warehouse's ``llm_calls``
    (``start`` inclusive, ``end`` exclusive, bound parameters) or over ``frame`` in an
    in-memory scratch connection. For data too large for the pandas path."""
    from lumina_analytics.warehouse import Warehouse, scratch

    conds, params = [], []
    if start is not None:
        conds.append("ts >= ?")
        params.append(pd.Timestamp(start).to_pydatetime())
    if end is not None:
        conds.append("ts < ?")
        params.append(pd.Timestamp(end).to_pydatetime())
    where = " AND ".join(conds)
    if frame is not None:
        cols = set(frame.columns)
        need = [
            "latency_ms",
            "ttft_ms",
            "cost_usd",
            "input_tokens",
            "output_tokens",
            "error_type",
            "status",
            "ts",
            "itl_ms",
            "output_tps",
        ]
        src = frame
        missing = [c for c in need if c not in cols]
        if missing:
            src = frame.assign(**{c: None for c in missing})
        con = scratch()
        try:
            con.register("_calls", src)
            sql = compare_sql_text(by, "_calls", where, measured_extras=True)
            return con.execute(sql, params).df()
        finally:
            con.close()
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    return wh.query(compare_sql_text(by, "llm_calls", where), params)


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
