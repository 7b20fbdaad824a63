"""Data and widgets behind the Voila dashboards.

Every query here is a fast, parameter-bound warehouse query (or a read of precomputed
``forecasts``/``anomalies`` rows written by the scheduled reports); nothing heavy is fitted
on page load. :class:`Dashboard` wires a filter bar (date range, tenant, provider, model) to
KPI cards and chart panes, shows a clear message for an empty selection and never shows a
traceback to a viewer.
"""

from __future__ import annotations

import functools
import html
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from lumina_analytics.errors import LuminaError
from lumina_analytics.warehouse import Warehouse

log = logging.getLogger(__name__)

ALL = "(all)"


class EmptySelection(LuminaError):
    """The chosen filters match no data."""


@dataclass(frozen=True)
class Filters:
    """The viewer's selection. Empty tuples mean "all"."""

    start: datetime
    end: datetime  # exclusive
    tenants: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    def where(self, ts: str = "ts", dims: bool = True) -> tuple[str, list[Any]]:
        """A WHERE clause with bound parameters for llm_calls-shaped tables."""
        clauses = [f"{ts} >= ?", f"{ts} < ?"]
        params: list[Any] = [self.start, self.end]
        if dims:
            for col, values in (
                ("tenant", self.tenants),
                ("provider", self.providers),
                ("model", self.models),
            ):
                if values:
                    clauses.append(f"{col} IN ({', '.join('?' for _ in values)})")
                    params.extend(values)
        return " AND ".join(clauses), params


def _wh(warehouse: Warehouse | str | None) -> Warehouse:
    return warehouse if isinstance(warehouse, Warehouse) else Warehouse(warehouse)


def filter_options(warehouse: Warehouse | str | None = None) -> dict[str, Any]:
    """Date bounds and the distinct tenants, providers and models present."""
    wh = _wh(warehouse)
    bounds = wh.query("SELECT min(ts) AS lo, max(ts) AS hi, count(*) AS n FROM llm_calls")
    out: dict[str, Any] = {
        "start": bounds["lo"][0],
        "end": bounds["hi"][0],
        "rows": int(bounds["n"][0]),
    }
    for col in ("tenant", "provider", "model"):
        vals = wh.query(
            f"SELECT DISTINCT {col} AS v FROM llm_calls WHERE {col} IS NOT NULL ORDER BY 1"
        )
        out[col + "s"] = vals["v"].tolist()
    return out


def kpis(filters: Filters, warehouse: Warehouse | str | None = None) -> dict[str, float]:
    """Headline numbers for the selection: requests, error rate, p95 latency, spend, users."""
    where, params = filters.where()
    df = _wh(warehouse).query(
        f"""SELECT count(*) AS requests,
                   avg(CASE WHEN status = 'error' THEN 1.0 ELSE 0.0 END) AS error_rate,
                   quantile_cont(latency_ms, 0.95) AS latency_p95_ms,
                   coalesce(sum(cost_usd), 0) AS spend_usd,
                   count(DISTINCT user_id) AS active_users
            FROM llm_calls WHERE {where}""",
        params,
    )
    row = df.iloc[0]
    return {k: (float(row[k]) if pd.notna(row[k]) else float("nan")) for k in df.columns}


def calls_over_time(
    filters: Filters,
    by: str = "provider",
    grain: str = "1 hour",
    warehouse: Warehouse | str | None = None,
) -> pd.DataFrame:
    """Requests, errors, p95 latency and spend per time bucket and ``by`` value (long)."""
    if by not in {"provider", "model", "tenant", "agent", "region", "service"}:
        raise LuminaError(f"cannot group by {by!r}")
    rolled = _calls_over_time_from_rollups(filters, by, grain, warehouse)
    if rolled is not None:
        return rolled
    where, params = filters.where()
    return _wh(warehouse).query(
        f"""SELECT time_bucket(CAST(? AS INTERVAL), ts) AS ds, coalesce({by}, 'unknown') AS unique_id,
                   count(*) AS requests, sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,
                   quantile_cont(latency_ms, 0.95) AS latency_p95_ms, coalesce(sum(cost_usd), 0) AS spend_usd
            FROM llm_calls WHERE {where} GROUP BY ALL ORDER BY ds, unique_id""",
        [grain, *params],
    )


#: Selections at least this long read the hourly/daily rollups when those cover them.
LONG_RANGE = timedelta(days=35)


def _calls_over_time_from_rollups(
    filters: Filters, by: str, grain: str, warehouse: Warehouse | str | None
) -> pd.DataFrame | None:
    """Long, unfiltered selections from the rollups (a year stays fast); None otherwise."""
    from lumina_analytics.ops.rollups import ROLLUP_DIMENSIONS, read_rollup, rollup_covers

    grains = {"1 day": "day", "1 hour": "hour"}
    if (
        grain not in grains
        or by not in ROLLUP_DIMENSIONS
        or filters.tenants
        or filters.providers
        or filters.models
        or filters.end - filters.start < LONG_RANGE
    ):
        return None
    try:
        if rollup_covers(filters.start, filters.end, grains[grain], _wh(warehouse)) is None:
            return None
    except Exception:  # an older warehouse without rollup tables
        return None
    df = read_rollup(
        filters.start, filters.end, dimension=by, grain=grains[grain], warehouse=_wh(warehouse)
    )
    return pd.DataFrame(
        {
            "ds": df["bucket"],
            "unique_id": df["value"].fillna("unknown").astype(str).replace("(none)", "unknown"),
            "requests": df["requests"],
            "errors": df["errors"],
            "latency_p95_ms": df["latency_p95_ms"],
            "spend_usd": df["cost_usd"].fillna(0.0),
        }
    )


def spend_by(
    filters: Filters, by: str = "tenant", warehouse: Warehouse | str | None = None
) -> pd.DataFrame:
    """Spend, requests and cost per request per ``by`` value, largest first."""
    if by not in {"provider", "model", "tenant", "agent", "region", "service", "operation"}:
        raise LuminaError(f"cannot group by {by!r}")
    where, params = filters.where()
    return _wh(warehouse).query(
        f"""SELECT coalesce({by}, 'unknown') AS {by}, coalesce(sum(cost_usd), 0) AS spend_usd,
                   count(*) AS requests, coalesce(sum(cost_usd), 0) / count(*) AS cost_per_request_usd,
                   sum(input_tokens + output_tokens) AS tokens
            FROM llm_calls WHERE {where} GROUP BY 1 ORDER BY spend_usd DESC""",
        params,
    )


def service_health(filters: Filters, warehouse: Warehouse | str | None = None) -> pd.DataFrame:
    """Per service in the window: spans, requests (server/root spans), error rate, p50/p95 ms."""
    from lumina_analytics.insights import service_health as health

    return health(filters.start, filters.end, _wh(warehouse))


def spend_vs_budget(
    filters: Filters,
    budgets: dict[str, float] | None = None,
    warehouse: Warehouse | str | None = None,
) -> pd.DataFrame:
    """Month-to-date spend per tenant for the month containing ``filters.end`` against budget."""
    end = filters.end
    month_start = datetime(end.year, end.month, 1)
    sel = Filters(month_start, end, filters.tenants, filters.providers, filters.models)
    spend = spend_by(sel, "tenant", warehouse)[["tenant", "spend_usd"]]
    if budgets is None:
        from lumina_analytics.costs import load_budgets

        budgets = load_budgets()
    b = budgets
    spend["budget_usd"] = spend["tenant"].map(b)
    spend["used"] = spend["spend_usd"] / spend["budget_usd"]
    return spend


def latest_results(
    table: str, warehouse: Warehouse | str | None = None, limit_ids: int = 50
) -> pd.DataFrame:
    """The newest precomputed forecasts or anomalies written by scheduled reports."""
    if table not in {"forecasts", "anomalies"}:
        raise LuminaError(f"no precomputed results table {table!r}")
    wh = _wh(warehouse)
    if table == "forecasts":
        return wh.query(
            "SELECT * FROM forecasts WHERE cutoff = (SELECT max(cutoff) FROM forecasts) ORDER BY unique_id, ds"
        )
    return wh.query(
        "SELECT * FROM anomalies WHERE created_at = (SELECT max(created_at) FROM anomalies) ORDER BY unique_id, ds"
    )


def kpi_html(values: dict[str, float], labels: dict[str, str] | None = None) -> str:
    """KPI cards; each value carries ``data-kpi``/``data-value`` so tests can read it."""
    labels = labels or {}
    cards = []
    for key, value in values.items():
        shown = _fmt(key, value)
        cards.append(
            f"<div class='lumina-kpi' data-kpi='{html.escape(key)}' data-value='{value!r}' "
            "style='display:inline-block;min-width:150px;margin:4px 12px 4px 0;padding:8px 12px;"
            "border:1px solid #e4e7eb;border-radius:6px;background:#fff'>"
            f"<div style='font-size:12px;color:#52606d'>{html.escape(labels.get(key, key))}</div>"
            f"<div style='font-size:22px;font-weight:600'>{html.escape(shown)}</div></div>"
        )
    return "<div class='lumina-kpis'>" + "".join(cards) + "</div>"


def _fmt(key: str, value: float) -> str:
    if pd.isna(value):
        return "—"
    if "rate" in key or key == "used":
        return f"{value:.2%}"
    if key.endswith("usd"):
        return f"${value:,.2f}"
    if key.endswith("ms"):
        return f"{value:,.0f} ms"
    return f"{value:,.0f}"


def message_html(text: str, kind: str = "info") -> str:
    """A friendly message box (empty selections, missing precomputed results, errors)."""
    color = {"info": "#1c7ed6", "warn": "#f08c00", "error": "#e03131"}.get(kind, "#1c7ed6")
    return (
        f"<div class='lumina-message lumina-{kind}' style='border-left:4px solid {color};"
        f"padding:8px 12px;background:#f8f9fa;margin:8px 0'>{html.escape(text)}</div>"
    )


Pane = Callable[[Filters], Sequence[Any]]


@dataclass
class Dashboard:
    """A filter bar wired to KPI cards and panes, re-rendered on every change.

    ``panes`` maps a title to a function ``Filters -> list of displayable objects``; a pane
    that raises :class:`EmptySelection` shows a message, any other error shows a generic
    message (details go to the server log, never to the viewer).
    """

    title: str
    panes: dict[str, Pane]
    kpi_fn: Callable[[Filters], dict[str, float]] | None = None
    kpi_labels: dict[str, str] = field(default_factory=dict)
    warehouse: Warehouse | str | None = None
    show_dims: tuple[str, ...] = ("tenant", "provider", "model")
    default_days: int = 7
    #: panes computed in a background thread: the page paints without waiting for them and
    #: they fill in when ready (a newer selection discards an older result)
    deferred: tuple[str, ...] = ()
    last_render_s: float = 0.0
    renders: int = 0

    def build(self) -> Any:
        """Create the widgets and render once; returns the top-level widget to display."""
        import ipywidgets as w

        self._w = w
        try:
            opts = filter_options(self.warehouse)
        except LuminaError as exc:
            return w.HTML(message_html(str(exc), "warn"))
        if not opts["rows"]:
            return w.HTML(
                message_html(
                    "The warehouse has no LLM calls yet: run `lumina-analytics demo` or ingest telemetry.",
                    "warn",
                )
            )
        lo = pd.Timestamp(opts["start"]).normalize()
        hi = pd.Timestamp(opts["end"]).normalize() + pd.Timedelta(days=1)
        days = list(pd.date_range(lo, hi, freq="D"))
        labels = [(d.strftime("%b %d"), d) for d in days]
        start_idx = max(0, len(days) - 1 - self.default_days)
        self.date_range = w.SelectionRangeSlider(
            options=labels,
            index=(start_idx, len(days) - 1),
            description="Dates",
            layout=w.Layout(width="520px"),
            continuous_update=False,
        )
        self.dims: dict[str, Any] = {}
        for dim in self.show_dims:
            self.dims[dim] = w.Dropdown(
                options=[ALL, *opts[dim + "s"]],
                value=ALL,
                description=dim.title(),
                layout=w.Layout(width="260px"),
            )
        self.kpi_box = w.HTML()
        self.outputs = {name: w.Output() for name in self.panes}
        self.status = w.HTML()
        for control in (self.date_range, *self.dims.values()):
            control.observe(lambda _change: self.render(), names="value")
        sections = []
        for name, out in self.outputs.items():
            sections.append(w.HTML(f"<h3 style='margin:16px 0 4px'>{html.escape(name)}</h3>"))
            sections.append(out)
        bar = w.HBox([self.date_range, *self.dims.values()], layout=w.Layout(flex_flow="row wrap"))
        self.render()
        return w.VBox([bar, self.kpi_box, *sections, self.status])

    def filters(self) -> Filters:
        """The current selection as :class:`Filters`."""
        lo, hi = self.date_range.value
        pick = {d: (() if wd.value == ALL else (wd.value,)) for d, wd in self.dims.items()}
        return Filters(
            start=pd.Timestamp(lo).to_pydatetime(),
            end=(pd.Timestamp(hi) + timedelta(days=1)).to_pydatetime(),
            tenants=pick.get("tenant", ()),
            providers=pick.get("provider", ()),
            models=pick.get("model", ()),
        )

    def render(self) -> None:
        """Re-run every pane for the current filters."""
        from IPython.display import display

        t0 = time.perf_counter()
        f = self.filters()
        if self.kpi_fn is not None:
            try:
                values = self.kpi_fn(f)
                empty = values.get("requests", 1) == 0
                self.kpi_box.value = (
                    message_html(
                        "No data for this selection: widen the dates or choose (all).", "info"
                    )
                    if empty
                    else kpi_html(values, self.kpi_labels)
                )
            except Exception:
                _server_log("KPI computation failed")
                self.kpi_box.value = message_html("KPIs are unavailable right now.", "error")
        for name, pane in self.panes.items():
            out = self.outputs[name]
            if name in self.deferred:
                self._defer(name, pane, f)
                continue
            out.clear_output(wait=True)
            with out:
                for item in _pane_items(name, pane, f):
                    display(item)
        self.last_render_s = time.perf_counter() - t0
        self.renders += 1
        self.status.value = (
            f"<div class='lumina-status' data-render-id='{self.renders}' "
            f"data-render-s='{self.last_render_s:.3f}' data-start='{f.start.isoformat()}' "
            f"data-end='{f.end.isoformat()}' style='color:#868e96;font-size:11px'>"
            f"{html.escape(f.start.strftime('%Y-%m-%d'))} to "
            f"{html.escape((f.end - timedelta(days=1)).strftime('%Y-%m-%d'))} · "
            f"updated in {self.last_render_s:.2f}s</div>"
        )

    def _defer(self, name: str, pane: Pane, f: Filters) -> None:
        """Show a placeholder now and fill ``name`` from a worker thread when it is computed."""
        from concurrent.futures import ThreadPoolExecutor

        from IPython.display import HTML

        out = self.outputs[name]
        if not hasattr(self, "_pool"):
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lumina-pane")
            self._generation: dict[str, int] = {}
        gen = self._generation.get(name, 0) + 1
        self._generation[name] = gen
        out.outputs = ()
        out.append_display_data(HTML(message_html(f"Computing {name.lower()}…", "info")))

        def work() -> None:
            items = _pane_items(name, pane, f)
            if self._generation.get(name) != gen:  # the viewer moved on: drop a stale result
                return
            out.outputs = ()  # Output's context manager is not thread-safe; append instead
            for item in items:
                out.append_display_data(item)

        self._pool.submit(work)


def _pane_items(name: str, pane: Pane, f: Filters) -> list[Any]:
    """A pane's displayable items, or a message in place of an empty selection or an error."""
    from IPython.display import HTML

    try:
        return list(pane(f))
    except EmptySelection as exc:
        return [HTML(message_html(str(exc) or "No data for this selection.", "info"))]
    except LuminaError as exc:
        return [HTML(message_html(str(exc), "warn"))]
    except Exception:
        _server_log(f"dashboard pane {name!r} failed")
        return [HTML(message_html(f"{name} is unavailable right now.", "error"))]


def _server_log(what: str) -> None:
    """Write the traceback to the server's stderr, never into the viewer's page."""
    import traceback

    stream = sys.__stderr__
    if stream is not None:
        stream.write(f"{what}\n{traceback.format_exc()}\n")
        stream.flush()


def require_rows(frame: pd.DataFrame, what: str = "this selection") -> pd.DataFrame:
    """Raise :class:`EmptySelection` when ``frame`` is empty."""
    if frame.empty:
        raise EmptySelection(f"No data for {what}: widen the dates or choose (all).")
    return frame


# -- the four dashboards ------------------------------------------------------------------

KPI_LABELS = {
    "requests": "LLM requests",
    "error_rate": "Error rate",
    "latency_p95_ms": "p95 latency",
    "spend_usd": "Spend",
    "active_users": "Active users",
}

#: Availability objective per service used for the SLO status on the overview.
DEFAULT_SLO_TARGET = 0.995


def slo_status(health: pd.DataFrame, target: float = DEFAULT_SLO_TARGET) -> pd.DataFrame:
    """Per service: availability against the target and the share of the error budget used."""
    out = health[["service", "requests", "error_rate"]].copy()
    out["availability"] = 1.0 - out["error_rate"]
    out["objective"] = target
    out["error_budget_used"] = out["error_rate"] / (1.0 - target)
    out["status"] = pd.cut(
        out["error_budget_used"],
        [-1, 0.5, 1.0, float("inf")],
        labels=["healthy", "at risk", "breached"],
    ).astype(str)
    return out.sort_values("error_budget_used", ascending=False).reset_index(drop=True)


def open_alerts(warehouse: Warehouse | str | None = None) -> pd.DataFrame:
    """Firing alerts from the alert state (a message when alerting has not run or none fire)."""
    from lumina_analytics.insights import open_alerts as current

    df = current(_wh(warehouse))
    if df is None:
        raise EmptySelection(
            "Alerting has not run yet: `lumina-analytics alerts evaluate` fills this."
        )
    return require_rows(df[df["state"] == "firing"], "open alerts (none are firing)")


def _chart_or_empty(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    return require_rows(frame, what)


def overview(warehouse: Warehouse | str | None = None) -> Dashboard:
    """Service health, SLO status, open alerts, spend against budget, top insights."""
    from lumina_analytics import charts

    @functools.lru_cache(maxsize=4)  # the health and SLO panes share one query per selection
    def health_of(f: Filters) -> pd.DataFrame:
        return service_health(f, warehouse)

    def health(f: Filters) -> list[Any]:
        h = _chart_or_empty(health_of(f), "service health in these dates")
        chart = charts.bar(h, "service", "p95_ms", title="p95 duration by service (ms)")
        return [h.round(4), chart]

    def slo(f: Filters) -> list[Any]:
        h = _chart_or_empty(health_of(f), "service health in these dates")
        return [slo_status(h).round(4)]

    def budget(f: Filters) -> list[Any]:
        b = _chart_or_empty(spend_vs_budget(f, warehouse=warehouse), "spend this month")
        return [b.round(2), charts.bar(b, "tenant", "spend_usd", title="Month-to-date spend (USD)")]

    def alerts(f: Filters) -> list[Any]:
        return [open_alerts(warehouse)]

    def insights(f: Filters) -> list[Any]:
        return top_insights(f, warehouse)

    return Dashboard(
        title="Overview",
        panes={
            "Top insights": insights,
            "Service health": health,
            "SLO status": slo,
            "Open alerts": alerts,
            "Spend against budget": budget,
        },
        kpi_fn=lambda f: kpis(f, warehouse),
        kpi_labels=KPI_LABELS,
        warehouse=warehouse,
        show_dims=("tenant",),
        deferred=("Top insights",),  # a scan of every series: seconds on a month of data
    )


_INSIGHTS_CACHE: dict[tuple[Any, ...], list[Any]] = {}


def _cached_insights(
    generate: Callable[..., list[Any]], start: datetime, end: datetime, warehouse: Any, top: int
) -> list[Any]:
    """Insights depend on the period only: compute once per period and kernel."""
    key = (start, end, str(warehouse), top)
    if key not in _INSIGHTS_CACHE:
        _INSIGHTS_CACHE[key] = generate(start=start, end=end, warehouse=warehouse, top=top)
    return _INSIGHTS_CACHE[key]


def top_insights(f: Filters, warehouse: Warehouse | str | None = None, top: int = 5) -> list[Any]:
    """The ranked insights for the selection, as sentences (from :mod:`lumina_analytics.insights`)."""
    try:
        from lumina_analytics import insights as ins
    except ImportError:
        raise EmptySelection("Insights are not available in this installation.") from None
    found = _cached_insights(ins.generate, f.start, f.end, warehouse, top)
    if not found:
        raise EmptySelection("No notable changes in this period.")
    items = "".join(f"<li>{html.escape(i.sentence)}</li>" for i in found)
    from IPython.display import HTML

    return [HTML(f"<ol class='lumina-insights'>{items}</ol>")]


def cost(warehouse: Warehouse | str | None = None) -> Dashboard:
    """Spend over time and by tenant, agent and model, with unit economics."""
    from lumina_analytics import charts

    def trend(f: Filters) -> list[Any]:
        df = _chart_or_empty(
            calls_over_time(f, "provider", "1 day", warehouse), "spend in these dates"
        )
        import altair as alt

        chart = (
            alt.Chart(df, title="Daily spend by provider (USD)")
            .mark_area()
            .encode(
                x=alt.X("ds:T", title=None),
                y=alt.Y("spend_usd:Q", stack=True, title="USD"),
                color=alt.Color("unique_id:N", title="provider"),
                tooltip=["ds:T", "unique_id:N", alt.Tooltip("spend_usd:Q", format=",.2f")],
            )
        )
        return [chart]

    def by_dim(dim: str) -> Pane:
        def pane(f: Filters) -> list[Any]:
            df = _chart_or_empty(spend_by(f, dim, warehouse), f"spend by {dim}")
            return [
                charts.bar(df.head(12), dim, "spend_usd", title=f"Spend by {dim} (USD)"),
                df.head(12).round(4),
            ]

        return pane

    return Dashboard(
        title="Cost",
        panes={
            "Spend trend": trend,
            "By tenant": by_dim("tenant"),
            "By agent": by_dim("agent"),
            "By model": by_dim("model"),
        },
        kpi_fn=lambda f: kpis(f, warehouse),
        kpi_labels=KPI_LABELS,
        warehouse=warehouse,
    )


def provider_table(f: Filters, warehouse: Warehouse | str | None = None) -> pd.DataFrame:
    """Latency percentiles, TTFT, error rates by type and cost per 1k tokens per provider/model."""
    where, params = f.where()
    return _wh(warehouse).query(
        f"""SELECT provider, model, count(*) AS requests,
                   quantile_cont(latency_ms, 0.5) AS p50_ms, quantile_cont(latency_ms, 0.95) AS p95_ms,
                   quantile_cont(latency_ms, 0.99) AS p99_ms, quantile_cont(ttft_ms, 0.5) AS ttft_p50_ms,
                   avg(CASE WHEN status = 'error' THEN 1.0 ELSE 0.0 END) AS error_rate,
                   avg(CASE WHEN error_type = 'rate_limit' THEN 1.0 ELSE 0.0 END) AS rate_limit_rate,
                   1000 * sum(cost_usd) / nullif(sum(input_tokens + output_tokens), 0) AS usd_per_1k_tokens
            FROM llm_calls WHERE {where} GROUP BY ALL ORDER BY requests DESC""",
        params,
    )


def providers(warehouse: Warehouse | str | None = None) -> Dashboard:
    """Provider and model comparison: latency, errors and price."""
    from lumina_analytics import charts

    def table(f: Filters) -> list[Any]:
        return [_chart_or_empty(provider_table(f, warehouse), "provider calls").round(4)]

    @functools.lru_cache(maxsize=4)  # the latency and error panes share one query
    def hourly(f: Filters) -> pd.DataFrame:
        return calls_over_time(f, "provider", "1 hour", warehouse)

    def latency(f: Filters) -> list[Any]:
        df = _chart_or_empty(hourly(f), "provider calls")
        return [
            charts.line(df, y="latency_p95_ms", title="p95 latency by provider (ms)", y_title="ms")
        ]

    def errors(f: Filters) -> list[Any]:
        df = _chart_or_empty(hourly(f), "provider calls").copy()
        df["error_rate"] = df["errors"] / df["requests"]
        return [charts.line(df, y="error_rate", title="Error rate by provider", y_title="share")]

    return Dashboard(
        title="Providers",
        panes={"Comparison": table, "Latency": latency, "Errors": errors},
        kpi_fn=lambda f: kpis(f, warehouse),
        kpi_labels=KPI_LABELS,
        warehouse=warehouse,
    )


def anomalies_forecasts(warehouse: Warehouse | str | None = None) -> Dashboard:
    """Precomputed forecasts (with intervals) and anomaly markers from the scheduled reports."""
    from lumina_analytics import charts

    def forecasts(f: Filters) -> list[Any]:
        fc = latest_results("forecasts", warehouse)
        if fc.empty:
            raise EmptySelection("No forecasts yet: the scheduled forecasting report writes them.")
        metric = str(fc["metric"].dropna().iloc[0]) if fc["metric"].notna().any() else "forecast"
        chart = charts.band(fc, color="unique_id") + charts.line(
            fc, y="yhat", title=f"Forecast: {metric}"
        )
        return [chart]

    def anomalies(f: Filters) -> list[Any]:
        an = latest_results("anomalies", warehouse)
        if an.empty:
            raise EmptySelection("No anomaly scores yet: the scheduled anomaly report writes them.")
        an = an[(an["ds"] >= f.start) & (an["ds"] < f.end)]
        an = require_rows(an, "anomaly scores in these dates")
        import altair as alt

        base = charts.line(
            an, y="score", title="Anomaly score (1 = most anomalous)", y_title="score"
        )
        marks = (
            alt.Chart(an[an["is_anomaly"]])
            .mark_point(color="#e03131", filled=True, size=60)
            .encode(x="ds:T", y="score:Q", tooltip=["unique_id", "ds:T", "score"])
        )
        flagged = an[an["is_anomaly"]].sort_values("score", ascending=False).head(20)
        return [base + marks, flagged]

    return Dashboard(
        title="Anomalies and forecasts",
        panes={"Forecasts": forecasts, "Anomalies": anomalies},
        kpi_fn=lambda f: kpis(f, warehouse),
        kpi_labels=KPI_LABELS,
        warehouse=warehouse,
        show_dims=("tenant",),
        deferred=("Top insights",),  # a scan of every series: seconds on a month of data
    )
