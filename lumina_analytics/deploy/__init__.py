"""Deployment templates shipped with the package (Kubernetes, Airflow). Checked by tests."""

from __future__ import annotations

from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent


def template_path(*parts: str) -> Path:
    """Path of a packaged template, e.g. ``template_path("kubernetes", "reports-cronjob.yaml")``."""
    return TEMPLATES.joinpath(*parts)
