"""Shared fixtures: an isolated warehouse per test, the shared-data locator, a small demo warehouse."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LUMINA_SHARED_DATA", ROOT.parent / "shared" / "data"))

# Charts in executed notebooks: static SVG (no widget front-end in a headless kernel).
os.environ.setdefault("LUMINA_CHART_RENDERER", "svg")


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Never touch the developer's data/lumina.duckdb: each test gets its own default warehouse."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("LUMINA_")}
    monkeypatch.setenv("LUMINA_WAREHOUSE", str(tmp_path / "default.duckdb"))
    monkeypatch.setenv("LUMINA_REPORTS_DIR", str(tmp_path / "reports"))
    yield
    for k in [k for k in os.environ if k.startswith("LUMINA_")]:
        if k not in saved:
            del os.environ[k]
    os.environ.update(saved)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not present at {SHARED_DATA} (set LUMINA_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo warehouse built the real way: simulator files -> ingest_paths.

    Ten days (the first week incident-free, then the post-deployment latency regression and
    the provider outage) at a small scale, shared by the notebook and browser tests.
    """
    from lumina_analytics.ingest import ingest_paths
    from lumina_analytics.simulate import simulate

    root = tmp_path_factory.mktemp("demo")
    result = simulate(days=14, scale=0.04, seed=7, out=root / "telemetry")
    path = root / "demo.duckdb"
    report = ingest_paths(result.telemetry_paths(), str(path), progress=False)
    assert report.ok, str(report)
    return path
