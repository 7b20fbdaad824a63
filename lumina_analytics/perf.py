"""Performance regression verdicts: baseline vs candidate spans, per operation and overall.

Per operation (``service, name`` by default) the candidate's latency distribution is
compared with the baseline's by a one-sided Mann-Whitney U test, Cliff's delta and the
ratio of medians and of p95s; error rates by a two-proportion z-test; throughput as calls
per minute. An operation *regressed* when its latency is significantly higher (p below
``alpha`` after Bonferroni over the operations tested) with at least a small effect
(Cliff's delta >= ``min_delta``) and a material slowdown (median or p95 ratio >=
``min_ratio``), or when its error rate rose significantly by at least
``min_error_increase``. The overall verdict is ``regression`` when any operation regressed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from lumina_analytics.errors import LuminaError
from lumina_analytics.traces import span_attributes
from lumina_analytics.warehouse import Warehouse

__all__ = [
    "Verdict",
    "cliffs_delta",
    "compare",
    "deployment_impact",
    "load_deployments",
    "load_version_spans",
    "load_window_spans",
    "region_comparison",
    "split_by_version",
]


def cliffs_delta(candidate: np.ndarray, baseline: np.ndarray) -> float:
    """P(candidate > baseline) - P(candidate < baseline), in [-1, 1] (positive = slower)."""
    c = np.sort(np.asarray(candidate, dtype="float64"))
    b = np.sort(np.asarray(baseline, dtype="float64"))
    if len(c) == 0 or len(b) == 0:
        return float("nan")
    less = np.searchsorted(c, b, side="left").sum()  # pairs with c < b
    greater = (len(c) - np.searchsorted(c, b, side="right")).sum()  # pairs with c > b
    return float((greater - less) / (len(c) * len(b)))


@dataclass
class Verdict:
    """The outcome of :func:`compare`: overall verdict, reasons and the per-operation table."""

    verdict: str  # regression | improvement | no_change | insufficient_data
    reasons: list[str] = field(default_factory=list)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    baseline_label: str = "baseline"
    candidate_label: str = "candidate"

    @property
    def is_regression(self) -> bool:
        """Whether a pipeline gate should fail."""
        return self.verdict == "regression"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        t = self.table.replace({np.nan: None})
        return {
            "verdict": self.verdict,
            "baseline": self.baseline_label,
            "candidate": self.candidate_label,
            "reasons": self.reasons,
            "operations": json.loads(t.to_json(orient="records", double_precision=6)),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text."""
        return json.dumps(self.to_dict(), indent=indent, default=str)

    def to_text(self, max_rows: int = 20) -> str:
        """A terminal-friendly summary."""
        lines = [
            f"verdict: {self.verdict.upper()}  ({self.baseline_label} -> {self.candidate_label})"
        ]
        lines += [f"  - {r}" for r in self.reasons]
        if len(self.table):
            cols = [
                "service",
                "name",
                "n_baseline",
                "n_candidate",
                "p50_baseline_ms",
                "p50_candidate_ms",
                "median_ratio",
                "cliffs_delta",
                "p_value",
                "error_rate_baseline",
                "error_rate_candidate",
                "verdict",
            ]
            cols = [c for c in cols if c in self.table.columns]
            lines.append("")
            lines.append(
                self.table[cols]
                .head(max_rows)
                .to_string(index=False, float_format=lambda v: f"{v:.3g}")
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        color = {"regression": "#e03131", "improvement": "#2f9e44"}.get(self.verdict, "#495057")
        items = "".join(f"<li>{r}</li>" for r in self.reasons)
        return (
            f"<h4 style='color:{color}'>verdict: {self.verdict}</h4><ul>{items}</ul>"
            + self.table.to_html(index=False, max_rows=30)
        )


def _prop_test(e1: int, n1: int, e2: int, n2: int) -> float:
    """One-sided p-value that proportion 2 > proportion 1 (pooled two-proportion z-test)."""
    if n1 == 0 or n2 == 0:
        return float("nan")
    p = (e1 + e2) / (n1 + n2)
    if p in (0.0, 1.0):
        return 1.0
    se = np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    z = (e2 / n2 - e1 / n1) / se
    return float(stats.norm.sf(z))


def _durations(spans: pd.DataFrame) -> pd.Series:
    if "duration_ms" in spans.columns and spans["duration_ms"].notna().any():
        return pd.to_numeric(spans["duration_ms"], errors="coerce")
    return (
        pd.to_datetime(spans["end_ts"]) - pd.to_datetime(spans["start_ts"])
    ).dt.total_seconds() * 1000.0


def _minutes(spans: pd.DataFrame) -> float:
    if spans.empty:
        return float("nan")
    ts = pd.to_datetime(spans["start_ts"])
    return max((ts.max() - ts.min()).total_seconds() / 60.0, 1.0 / 60.0)


def compare(
    baseline: pd.DataFrame,
    candidate: pd.DataFrame,
    by: Sequence[str] = ("service", "name"),
    alpha: float = 0.01,
    min_delta: float = 0.147,
    min_ratio: float = 1.1,
    min_error_increase: float = 0.01,
    min_samples: int = 20,
    baseline_label: str = "baseline",
    candidate_label: str = "candidate",
) -> Verdict:
    """Compare two sets of spans per operation and return a :class:`Verdict`.

    ``min_delta`` 0.147 is the conventional "small" Cliff's delta; operations with fewer
    than ``min_samples`` spans on either side are reported as ``insufficient_data``. A
    pooled ``(all, normalised)`` row compares every span's latency divided by its
    operation's baseline median, which catches service-wide slowdowns on sparse data.
    """
    by = list(by)
    b = baseline.assign(_d=_durations(baseline).to_numpy())
    c = candidate.assign(_d=_durations(candidate).to_numpy())
    for f in (b, c):
        f["_e"] = (
            f.get("status_code", pd.Series("", index=f.index))
            .fillna("")
            .astype(str)
            .str.lower()
            .eq("error")
        )
    bm, cm = _minutes(b), _minutes(c)
    gb = dict(tuple(b.groupby(by, dropna=False)))
    gc = dict(tuple(c.groupby(by, dropna=False)))
    keys = sorted(set(gb) | set(gc), key=str)
    # Pooled row: every span's latency relative to its operation's baseline median, so a
    # service-wide slowdown is visible even when each operation alone has few spans.
    shared = [k for k in keys if k in gb and k in gc and len(gb[k]) >= 3]
    if len(shared) > 1:
        pooled_key: Any = (
            tuple(["(all, normalised)"] * len(by)) if len(by) > 1 else "(all, normalised)"
        )
        scale = float(b["_d"].median())
        pb, pc = [], []
        for k in shared:
            med = float(gb[k]["_d"].median()) or 1e-9
            pb.append(gb[k].assign(_d=gb[k]["_d"] / med * scale))
            pc.append(gc[k].assign(_d=gc[k]["_d"] / med * scale))
        gb[pooled_key], gc[pooled_key] = pd.concat(pb), pd.concat(pc)
        keys.append(pooled_key)
    tested = sum(
        1
        for k in keys
        if k in gb and k in gc and len(gb[k]) >= min_samples and len(gc[k]) >= min_samples
    )
    a_corr = alpha / max(tested, 1)
    rows = []
    for k in keys:
        kb = gb.get(k, b.iloc[:0])
        kc = gc.get(k, c.iloc[:0])
        xb, xc = kb["_d"].dropna().to_numpy(), kc["_d"].dropna().to_numpy()
        row: dict[str, Any] = dict(zip(by, k if isinstance(k, tuple) else (k,), strict=True))
        row.update(n_baseline=len(xb), n_candidate=len(xc))
        row["throughput_baseline_pm"] = len(kb) / bm if bm == bm else np.nan
        row["throughput_candidate_pm"] = len(kc) / cm if cm == cm else np.nan
        eb, ec = int(kb["_e"].sum()), int(kc["_e"].sum())
        row["error_rate_baseline"] = eb / len(kb) if len(kb) else np.nan
        row["error_rate_candidate"] = ec / len(kc) if len(kc) else np.nan
        reasons: list[str] = []
        if len(xb) < min_samples or len(xc) < min_samples:
            row.update(
                p50_baseline_ms=np.median(xb) if len(xb) else np.nan,
                p50_candidate_ms=np.median(xc) if len(xc) else np.nan,
            )
            row.update(
                verdict="insufficient_data", reason=f"fewer than {min_samples} spans on one side"
            )
            rows.append(row)
            continue
        p50b, p50c = float(np.median(xb)), float(np.median(xc))
        p95b, p95c = float(np.percentile(xb, 95)), float(np.percentile(xc, 95))
        ratio = (p50c + 1e-9) / (p50b + 1e-9)
        ratio95 = (p95c + 1e-9) / (p95b + 1e-9)
        delta = cliffs_delta(xc, xb)
        p_slow = float(stats.mannwhitneyu(xc, xb, alternative="greater").pvalue)
        p_fast = float(stats.mannwhitneyu(xc, xb, alternative="less").pvalue)
        p_err = _prop_test(eb, len(kb), ec, len(kc))
        row.update(
            p50_baseline_ms=p50b,
            p50_candidate_ms=p50c,
            p95_baseline_ms=p95b,
            p95_candidate_ms=p95c,
            median_ratio=ratio,
            p95_ratio=ratio95,
            cliffs_delta=delta,
            p_value=p_slow,
            error_p_value=p_err,
        )
        verdict = "no_change"
        if p_slow < a_corr and delta >= min_delta and max(ratio, ratio95) >= min_ratio:
            verdict = "regression"
            reasons.append(
                f"latency p50 {p50b:.1f} -> {p50c:.1f} ms (x{ratio:.2f}), p95 x{ratio95:.2f}, Cliff's delta {delta:.2f}, p={p_slow:.1e}"
            )
        err_up = row["error_rate_candidate"] - row["error_rate_baseline"]
        if p_err == p_err and p_err < a_corr and err_up >= min_error_increase:
            verdict = "regression"
            reasons.append(
                f"error rate {row['error_rate_baseline']:.2%} -> {row['error_rate_candidate']:.2%} (p={p_err:.1e})"
            )
        if (
            verdict == "no_change"
            and p_fast < a_corr
            and delta <= -min_delta
            and min(ratio, ratio95) <= 1 / min_ratio
        ):
            verdict = "improvement"
            reasons.append(
                f"latency p50 {p50b:.1f} -> {p50c:.1f} ms (x{ratio:.2f}), Cliff's delta {delta:.2f}"
            )
        row.update(verdict=verdict, reason="; ".join(reasons))
        rows.append(row)
    table = pd.DataFrame(rows)
    overall_reasons: list[str] = []
    if table.empty:
        return Verdict(
            "insufficient_data", ["no spans to compare"], table, baseline_label, candidate_label
        )
    order = {"regression": 0, "improvement": 1, "no_change": 2, "insufficient_data": 3}
    table = table.assign(
        _o=table["verdict"].map(order),
        _r=table.get("cliffs_delta", pd.Series(0.0, index=table.index)).fillna(0.0),
    )
    table = (
        table.sort_values(["_o", "_r"], ascending=[True, False])
        .drop(columns=["_o", "_r"])
        .reset_index(drop=True)
    )
    reg = table[table["verdict"] == "regression"]
    name = lambda r: " / ".join(str(r[x]) for x in by)  # noqa: E731
    if len(reg):
        verdict = "regression"
        overall_reasons = [f"{name(r)}: {r['reason']}" for _, r in reg.iterrows()]
    elif (table["verdict"] == "improvement").any():
        verdict = "improvement"
        overall_reasons = [
            f"{name(r)}: {r['reason']}"
            for _, r in table[table["verdict"] == "improvement"].iterrows()
        ]
    elif tested == 0:
        verdict = "insufficient_data"
        overall_reasons = [f"no operation has {min_samples}+ spans on both sides"]
    else:
        verdict = "no_change"
        overall_reasons = [
            f"{tested} operation(s) compared, none slower or more error-prone beyond the thresholds"
        ]
    tb, tc = len(b) / bm if bm == bm else np.nan, len(c) / cm if cm == cm else np.nan
    if tb == tb and tc == tc and tb > 0 and tc < 0.5 * tb:
        overall_reasons.append(
            f"throughput fell from {tb:.1f} to {tc:.1f} spans/min (informational)"
        )
    return Verdict(verdict, overall_reasons, table, baseline_label, candidate_label)


# -- splitting and loading -----------------------------------------------------------
def split_by_version(
    spans: pd.DataFrame, baseline_version: str, candidate_version: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split spans by their resource ``service.version``."""
    ver = span_attributes(spans, ["service.version"], column="resource")["service.version"].astype(
        str
    )
    return spans[ver == baseline_version], spans[ver == candidate_version]


def _service_clause(service: str | None, params: list[Any]) -> str:
    if service:
        params.append(service)
        return " AND service = ?"
    return ""


_COLS = (
    "trace_id, span_id, parent_span_id, name, kind, service, start_ts, end_ts, duration_ms, "
    "status_code, CAST(attributes AS VARCHAR) AS attributes, CAST(resource AS VARCHAR) AS resource"
)


def load_window_spans(
    warehouse: Warehouse | str | None,
    start: Any,
    end: Any,
    service: str | None = None,
    region: str | None = None,
) -> pd.DataFrame:
    """Spans with ``start_ts`` in ``[start, end)``, optionally one service / ``cloud.region``."""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    params: list[Any] = [pd.Timestamp(start).to_pydatetime(), pd.Timestamp(end).to_pydatetime()]
    sql = f"SELECT {_COLS} FROM spans WHERE start_ts >= ? AND start_ts < ?" + _service_clause(
        service, params
    )
    if region:
        sql += " AND json_extract_string(resource, '$.\"cloud.region\"') = ?"
        params.append(region)
    return wh.query(sql, params)


def load_version_spans(
    warehouse: Warehouse | str | None, version: str, service: str | None = None
) -> pd.DataFrame:
    """Spans whose resource ``service.version`` equals ``version``."""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    params: list[Any] = [version]
    sql = (
        f"SELECT {_COLS} FROM spans WHERE json_extract_string(resource, '$.\"service.version\"') = ?"
        + _service_clause(service, params)
    )
    return wh.query(sql, params)


def load_deployments(warehouse: Warehouse | str | None) -> pd.DataFrame:
    """The deployments table, oldest first."""
    wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)
    return wh.query("SELECT ts, service, version, region, strategy FROM deployments ORDER BY ts")


# -- deployments and regions ---------------------------------------------------------
def deployment_impact(
    spans: pd.DataFrame,
    deployments: pd.DataFrame,
    before: str = "30min",
    after: str = "30min",
    **compare_kwargs: Any,
) -> pd.DataFrame:
    """Per deployment row, the verdict for the deployed service: ``before`` vs ``after`` it.

    Spans are restricted to the deployed service and, when the row's region appears as a
    span ``cloud.region``, to that region (``global`` or unknown regions mean all). Columns: deployment columns plus ``verdict,
    regressed_operations, worst_operation, worst_median_ratio, reasons``.
    """
    if deployments.empty:
        return pd.DataFrame(
            columns=[
                "ts",
                "service",
                "version",
                "region",
                "verdict",
                "regressed_operations",
                "worst_operation",
                "worst_median_ratio",
                "reasons",
            ]
        )
    ts = pd.to_datetime(spans["start_ts"])
    region = span_attributes(spans, ["cloud.region"], column="resource")["cloud.region"]
    rows = []
    for _, d in deployments.iterrows():
        t = pd.Timestamp(d["ts"])
        m = spans["service"] == d["service"]
        # a region the spans do not know (e.g. "global") means the whole fleet
        if isinstance(d.get("region"), str) and (region == d["region"]).any():
            m &= region == d["region"]
        pre = spans[m & (ts >= t - pd.Timedelta(before)) & (ts < t)]
        post = spans[m & (ts >= t) & (ts < t + pd.Timedelta(after))]
        v = compare(
            pre,
            post,
            baseline_label=f"before {t}",
            candidate_label=f"{d['version']}",
            **compare_kwargs,
        )
        reg = v.table[v.table["verdict"] == "regression"] if len(v.table) else v.table
        worst = (
            v.table.sort_values("median_ratio", ascending=False).iloc[0]
            if "median_ratio" in v.table.columns and v.table["median_ratio"].notna().any()
            else None
        )
        rows.append(
            {
                **{k: d.get(k) for k in ("ts", "service", "version", "region", "strategy")},
                "verdict": v.verdict,
                "regressed_operations": len(reg),
                "worst_operation": None if worst is None else str(worst["name"]),
                "worst_median_ratio": None if worst is None else float(worst["median_ratio"]),
                "reasons": "; ".join(v.reasons),
            }
        )
    return pd.DataFrame(rows)


def region_comparison(spans: pd.DataFrame, service: str, **compare_kwargs: Any) -> pd.DataFrame:
    """One service across regions: each region's spans compared with all other regions'."""
    s = spans[spans["service"] == service]
    region = span_attributes(s, ["cloud.region"], column="resource")["cloud.region"]
    if region.isna().all():
        raise LuminaError(
            f"spans of {service!r} carry no resource cloud.region; cannot compare regions"
        )
    rows = []
    for r in sorted(region.dropna().unique()):
        v = compare(
            s[region != r],
            s[region == r],
            baseline_label="other regions",
            candidate_label=str(r),
            **compare_kwargs,
        )
        t = v.table
        rows.append(
            {
                "region": r,
                "spans": int((region == r).sum()),
                "verdict": v.verdict,
                "p50_ms": float(np.median(_durations(s[region == r]).dropna()))
                if (region == r).any()
                else np.nan,
                "max_median_ratio": float(t["median_ratio"].max())
                if "median_ratio" in t.columns and t["median_ratio"].notna().any()
                else np.nan,
                "error_rate": float(
                    s.loc[region == r]
                    .get("status_code", pd.Series(dtype=object))
                    .fillna("")
                    .astype(str)
                    .str.lower()
                    .eq("error")
                    .mean()
                ),
                "reasons": "; ".join(v.reasons),
            }
        )
    return pd.DataFrame(rows)
