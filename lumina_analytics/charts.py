"""Altair chart builders with one theme. Long data in, chart out; no computation beyond shaping.

Charts must render with no internet: :func:`enable_offline` switches Altair to the offline
Jupyter renderer (anywidget bundles Vega), and :func:`save_html` inlines Vega into files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd

PALETTE = [
    "#3b5bdb",
    "#f08c00",
    "#2f9e44",
    "#e03131",
    "#7048e8",
    "#0c8599",
    "#d6336c",
    "#5c940d",
    "#868e96",
    "#1c7ed6",
]


def _theme() -> dict[str, Any]:
    return {
        "config": {
            "view": {"continuousWidth": 640, "continuousHeight": 260, "stroke": None},
            "range": {"category": PALETTE},
            "axis": {"labelFontSize": 11, "titleFontSize": 12, "gridColor": "#eceff1"},
            "legend": {"labelFontSize": 11, "titleFontSize": 12},
            "title": {"fontSize": 14, "anchor": "start"},
        }
    }


def register_theme() -> None:
    """Register and enable the Lumina theme."""

    @alt.theme.register("lumina", enable=True)
    def _lumina() -> Any:
        return _theme()


def enable_offline(renderer: str | None = None) -> str:
    """Render charts without a CDN and return the renderer used.

    ``jupyter`` (default; interactive, Vega bundled by anywidget) suits JupyterLab and Voila;
    ``svg``/``png`` (vl-convert, static) suit scheduled reports exported to HTML. The
    ``LUMINA_CHART_RENDERER`` environment variable overrides the default, which is how the
    report runner asks its kernels for static charts.
    """
    register_theme()
    alt.data_transformers.disable_max_rows()
    chosen = renderer or os.environ.get("LUMINA_CHART_RENDERER") or "jupyter"
    if chosen == "jupyter":
        alt.renderers.enable("jupyter", offline=True)
    else:
        alt.renderers.enable(chosen)
    return chosen


def save_html(chart: alt.TopLevelMixin, path: str | Path) -> Path:
    """Save a chart as a standalone HTML file with Vega inlined (no CDN)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    chart.save(str(out), inline=True)
    return out


def line(
    frame: pd.DataFrame,
    x: str = "ds",
    y: str = "y",
    color: str | None = "unique_id",
    title: str = "",
    y_title: str | None = None,
) -> alt.Chart:
    """A line chart of a long frame, one line per ``color`` value."""
    enc: dict[str, Any] = {
        "x": alt.X(f"{x}:T", title=None),
        "y": alt.Y(f"{y}:Q", title=y_title or y),
        "tooltip": [c for c in (x, y, color) if c],
    }
    if color:
        enc["color"] = alt.Color(f"{color}:N", title=None)
    return alt.Chart(frame, title=title).mark_line().encode(**enc)


def bar(
    frame: pd.DataFrame,
    x: str,
    y: str,
    color: str | None = None,
    title: str = "",
    horizontal: bool = True,
) -> alt.Chart:
    """A sorted bar chart (horizontal by default) of one value per category."""
    if horizontal:
        enc: dict[str, Any] = {
            "y": alt.Y(f"{x}:N", sort="-x", title=None),
            "x": alt.X(f"{y}:Q", title=y),
        }
    else:
        enc = {"x": alt.X(f"{x}:N", sort="-y", title=None), "y": alt.Y(f"{y}:Q", title=y)}
    enc["tooltip"] = [x, y]
    if color:
        enc["color"] = alt.Color(f"{color}:N", title=None)
    return alt.Chart(frame, title=title).mark_bar().encode(**enc)


def band(
    frame: pd.DataFrame,
    x: str = "ds",
    lower: str = "yhat_lower",
    upper: str = "yhat_upper",
    color: str | None = None,
    opacity: float = 0.25,
) -> alt.Chart:
    """A shaded interval band (forecast intervals, anomaly bands)."""
    enc: dict[str, Any] = {"x": alt.X(f"{x}:T", title=None), "y": f"{lower}:Q", "y2": f"{upper}:Q"}
    if color:
        enc["color"] = alt.Color(f"{color}:N", title=None)
    return alt.Chart(frame).mark_area(opacity=opacity).encode(**enc)


def heatmap(
    frame: pd.DataFrame, x: str, y: str, value: str, title: str = "", fmt: str = ".0%"
) -> alt.LayerChart:
    """A heat map with value labels (cohort triangles, hour-by-day grids)."""
    base = alt.Chart(frame, title=title).encode(
        x=alt.X(f"{x}:O", title=x), y=alt.Y(f"{y}:O", title=y)
    )
    cells = base.mark_rect().encode(
        color=alt.Color(f"{value}:Q", title=value), tooltip=[x, y, value]
    )
    text = base.mark_text(fontSize=10).encode(text=alt.Text(f"{value}:Q", format=fmt))
    return cells + text
