"""notebooks/performance.ipynb end to end under papermill on a hand-built warehouse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lumina_analytics.traces import synthetic_spans
from lumina_analytics.warehouse import Warehouse, append_frame

ROOT = Path(__file__).resolve().parents[1]
T0 = pd.Timestamp("2026-01-01")


def build_warehouse(path: Path) -> Path:
    """Two hours of agent traces; agent-runtime 1.1 deployed at 01:00 runs 40% slower."""
    before = synthetic_spans(400, seed=1, start=str(T0))
    after = synthetic_spans(400, seed=2, start=str(T0))
    after["trace_id"] = "b" + after["trace_id"]
    after["span_id"] = "b" + after["span_id"]
    after["parent_span_id"] = ("b" + after["parent_span_id"]).where(
        after["parent_span_id"].notna(), None
    )
    frames = []
    for df, hour, scale, version in ((before, 0, 1.0, "1.0"), (after, 1, 1.4, "1.1")):
        # squeeze each set of traces into its hour, stretch durations by `scale`
        root0 = df.groupby("trace_id")["start_ts"].transform("min")
        off = (root0 - T0) / 24 + pd.Timedelta(hours=hour)
        df["start_ts"] = T0 + off + (df["start_ts"] - root0) * scale
        df["end_ts"] = T0 + off + (df["end_ts"] - root0) * scale
        df["duration_ms"] = (df["end_ts"] - df["start_ts"]).dt.total_seconds() * 1000
        rng = np.random.default_rng(hour)
        region = np.where(rng.random(df["trace_id"].nunique()) < 0.7, "eu-west-1", "us-east-1")
        reg = pd.Series(region, index=df["trace_id"].unique()).reindex(df["trace_id"]).to_numpy()
        df["resource"] = [
            json.dumps(
                {
                    "service.name": s,
                    "service.version": version if s == "agent-runtime" else "1.0",
                    "cloud.region": r,
                    "service.instance.id": f"{s}-{r}-{i % 2}",
                }
            )
            for i, (s, r) in enumerate(zip(df["service"], reg, strict=True))
        ]
        frames.append(df)
    spans = pd.concat(frames, ignore_index=True)
    deps = pd.DataFrame(
        {
            "ts": [T0 + pd.Timedelta(hours=1)],
            "service": ["agent-runtime"],
            "version": ["1.1"],
            "region": ["global"],
            "strategy": ["rolling"],
        }
    )
    ts = pd.date_range(T0, periods=120, freq="1min")
    metrics = pd.DataFrame(
        {
            "ts": ts,
            "name": "process_cpu_utilization",
            "labels": json.dumps({"service": "agent-runtime"}),
            "value": 0.3,
        }
    )
    with Warehouse(path).writer() as con:
        append_frame(con, "spans", spans)
        append_frame(con, "deployments", deps)
        append_frame(con, "metrics", metrics)
    return path


@pytest.mark.slow
def test_performance_notebook_runs(tmp_path):
    wh = build_warehouse(tmp_path / "perf.duckdb")
    out = tmp_path / "out.ipynb"
    cmd = [
        str(Path(sys.executable).with_name("papermill")),
        str(ROOT / "notebooks" / "performance.ipynb"),
        str(out),
        "-k",
        "python3",
        "-p",
        "warehouse",
        str(wh),
        "-p",
        "start",
        "2026-01-01T01:00",
        "-p",
        "end",
        "2026-01-01T02:00",
        "-p",
        "baseline_start",
        "2026-01-01T00:00",
        "-p",
        "baseline_end",
        "2026-01-01T01:00",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    nb = json.loads(out.read_text())
    text = "\n".join(
        "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
    )
    assert "regression" in text  # the deployment verdict
    assert "agent-runtime" in text
