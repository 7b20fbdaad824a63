"""notebooks/usage.ipynb and notebooks/overview.ipynb end to end under papermill (offline charts)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from lumina_analytics.schema import columns_of
from lumina_analytics.warehouse import Warehouse, append_frame

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from test_insights import OUTAGE, T0, _calls  # noqa: E402

pytestmark = pytest.mark.slow


def _warehouse(path: Path) -> Warehouse:
    """Three weeks of calls with a provider outage, plus sessions with outcomes as events."""
    rng = np.random.default_rng(4)
    calls = _calls(seed=4).head(20000).copy()
    n = len(calls)
    users = rng.integers(0, 400, n)
    calls["user_id"] = [f"u{u}" for u in users]
    calls["session_id"] = [
        f"s{u}-{d}"
        for u, d in zip(users, pd.to_datetime(calls["ts"]).dt.strftime("%Y%m%d%H"), strict=True)
    ]
    calls["trace_id"] = [f"{i:032x}" for i in range(n)]
    calls["span_id"] = [f"{i:016x}" for i in range(n)]
    g = calls.groupby("session_id")
    sess = pd.DataFrame(
        {
            "ts": g["ts"].min(),
            "end": g["ts"].max(),
            "tenant": g["tenant"].first(),
            "user_id": g["user_id"].first(),
            "lat": g["latency_ms"].mean() / 1000,
            "err": g["status"].apply(lambda s: float((s == "error").any())),
        }
    ).reset_index()
    p = 1 / (1 + np.exp(-(-0.5 - 0.5 * (sess["lat"] - 1.2) - 1.0 * sess["err"])))
    conv = rng.random(len(sess)) < p
    base = sess[["session_id", "tenant", "user_id"]]
    parts = [
        base.assign(ts=sess["ts"], event_type="session_start", properties="{}"),
        base.assign(ts=sess["ts"] + pd.Timedelta(seconds=1), event_type="message", properties="{}"),
        base[conv].assign(
            ts=sess["end"][conv] + pd.Timedelta(seconds=30),
            event_type="conversion",
            properties="{}",
        ),
        base[~conv].assign(
            ts=sess["end"][~conv] + pd.Timedelta(seconds=30),
            event_type="abandonment",
            properties="{}",
        ),
        base.assign(
            ts=sess["end"] + pd.Timedelta(seconds=5),
            event_type="feedback",
            properties=[
                f'{{"score": {s}}}'
                for s in np.clip(
                    np.round(4 - sess["err"] * 1.5 + rng.normal(0, 0.8, len(sess))), 1, 5
                ).astype(int)
            ],
        ),
    ]
    events = pd.concat(parts, ignore_index=True)
    wh = Warehouse(path)
    with wh.writer() as con:
        append_frame(
            con,
            "llm_calls",
            calls.drop(columns=[c for c in calls.columns if c not in columns_of("llm_calls")]),
        )
        append_frame(
            con,
            "events",
            events[["ts", "tenant", "user_id", "session_id", "event_type", "properties"]],
        )
    return wh


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nb") / "demo.duckdb"
    _warehouse(path)
    return path


def _run(name: str, out: Path, **params: object) -> nbformat.NotebookNode:
    papermill = pytest.importorskip("papermill")
    os.environ["LUMINA_CHART_RENDERER"] = "svg"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / name),
        str(out),
        parameters=params,
        kernel_name="python3",
        progress_bar=False,
    )
    return nbformat.read(str(out), as_version=4)


def _text(nb: nbformat.NotebookNode) -> str:
    chunks = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            chunks.append(
                str(data.get("text/markdown", ""))
                + str(data.get("text/plain", ""))
                + str(o.get("text", ""))
            )
    return "\n".join(chunks)


def test_usage_notebook_runs(demo: Path, tmp_path: Path) -> None:
    nb = _run("usage.ipynb", tmp_path / "usage.ipynb", warehouse=str(demo))
    text = _text(nb)
    assert "odds of conversion" in text and "fixed effects" in text
    assert (
        sum("image/svg+xml" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
        >= 5
    )


def test_overview_notebook_lists_the_incident(demo: Path, tmp_path: Path) -> None:
    nb = _run(
        "overview.ipynb",
        tmp_path / "overview.ipynb",
        warehouse=str(demo),
        start=str(T0.date()),
        end=str((T0 + pd.Timedelta(days=7)).date()),
    )
    text = _text(nb)
    assert "Error rate for provider anthropic" in text
    assert f"{OUTAGE[0]:%a %Y-%m-%d %H:%M}" in text
    assert "No spans in this period" in text


def test_committed_notebooks_have_no_outputs() -> None:
    for name in ("usage.ipynb", "overview.ipynb"):
        nb = nbformat.read(str(ROOT / "notebooks" / name), as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), name
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1
