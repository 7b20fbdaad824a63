"""Report catalog, papermill runs, self-contained HTML export, index page and schedules."""

from __future__ import annotations

from lumina_analytics.reports.catalog import Param, ReportSpec, catalog, validate_params
from lumina_analytics.reports.runner import ReportRun, run_all, run_report, write_index

__all__ = [
    "Param",
    "ReportRun",
    "ReportSpec",
    "catalog",
    "run_all",
    "run_report",
    "validate_params",
    "write_index",
]
