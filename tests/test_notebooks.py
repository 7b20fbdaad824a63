"""Every notebook in notebooks/ and dashboards/ executes under nbval on the small demo warehouse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_every_notebook_and_dashboard_runs_under_nbval(
    demo_warehouse: Path, tmp_path: Path
) -> None:
    notebooks = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("*.ipynb"))
    dashboards = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "dashboards").glob("*.ipynb"))
    assert len(notebooks) >= 7 and len(dashboards) == 4
    env = dict(os.environ)
    env.update(
        LUMINA_WAREHOUSE=str(demo_warehouse),
        LUMINA_REPORTS_DIR=str(tmp_path / "reports"),
        LUMINA_CHART_RENDERER="svg",
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "--nbval-current-env",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "-o",
            "filterwarnings=",
            "-q",
            *notebooks,
            *dashboards,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    tail = "\n".join(proc.stdout.splitlines()[-40:])
    assert proc.returncode == 0, f"nbval failed:\n{tail}\n{proc.stderr[-2000:]}"
