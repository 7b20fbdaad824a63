"""notebooks/forecasting.ipynb runs end to end under papermill on a small temp warehouse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lumina_analytics.warehouse import Warehouse, append_frame

ROOT = Path(__file__).resolve().parents[1]


def _calls(days: int = 8, per_hour: float = 40.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(days * 24)
    lam = per_hour * (1 + 0.5 * np.sin(2 * np.pi * (t - 8) / 24))
    counts = rng.poisson(lam)
    n = int(counts.sum())
    secs = np.repeat(t, counts) * 3600 + rng.uniform(0, 3600, n)
    pm = np.array(["openai/gpt-4o", "anthropic/claude-sonnet-4-20250514"])[rng.integers(0, 2, n)]
    return pd.DataFrame(
        {
            "ts": (pd.Timestamp("2026-10-01") + pd.to_timedelta(secs, unit="s")).astype(
                "datetime64[us]"
            ),
            "trace_id": [f"{i:032x}" for i in range(n)],
            "span_id": [f"{i:016x}" for i in range(n)],
            "provider": [p.split("/")[0] for p in pm],
            "model": [p.split("/")[1] for p in pm],
            "input_tokens": rng.integers(100, 2000, n),
            "output_tokens": rng.integers(10, 500, n),
            "latency_ms": rng.gamma(2.0, 300.0, n),
            "status": "ok",
            "tenant": rng.choice(["acme-corp", "globex"], n),
            "cost_usd": rng.uniform(0, 0.02, n),
        }
    )


@pytest.mark.slow
def test_notebook_runs_on_temp_warehouse(tmp_path: Path) -> None:
    papermill = pytest.importorskip("papermill")
    wh = Warehouse(tmp_path / "w.duckdb")
    with wh.writer() as con:
        append_frame(con, "llm_calls", _calls())
    out_dir = tmp_path / "out"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "forecasting.ipynb"),
        str(tmp_path / "executed.ipynb"),
        parameters={
            "warehouse": str(wh.path),
            "horizon": 24,
            "backtest_windows": 1,
            "capacity_horizon_hours": 24,
            "output_dir": str(out_dir),
            "persist": True,
        },
        kernel_name="python3",
        progress_bar=False,
    )
    for name in ("forecast", "backtest", "quotas", "replicas", "runway"):
        assert (out_dir / f"{name}.csv").exists(), name
    fc = pd.read_csv(out_dir / "forecast.csv")
    assert set(fc["unique_id"]) == {"openai", "anthropic"} and len(fc) == 48
    bt = pd.read_csv(out_dir / "backtest.csv")
    assert {"auto", "snaive_day", "snaive_week"} == set(bt["model"])
    assert wh.table_counts()["forecasts"] == 48
