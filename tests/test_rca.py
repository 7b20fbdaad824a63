"""Root-cause ranking on constructed incidents and on the real TrainTicket faults."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lumina_analytics.cli import main
from lumina_analytics.rca import (
    default_trainticket_dir,
    evaluate_trainticket,
    pod_to_service,
    rank_root_causes,
)
from lumina_analytics.warehouse import Warehouse, append_frame

T0 = pd.Timestamp("2026-01-01")
TT = default_trainticket_dir()


def chain_traces(n: int, start: pd.Timestamp, slow: str | None, seed: int) -> pd.DataFrame:
    """gw -> api -> (auth, store -> db); ``slow`` adds 80 ms of own work to one service."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        t = start + pd.Timedelta(seconds=i)
        tid = f"{seed}-{i}"

        def own(svc: str, base: float) -> float:
            return base * rng.lognormal(0, 0.1) + (80.0 if svc == slow else 0.0)

        def add(sid, parent, svc, s, e, tid=tid, t=t):
            rows.append(
                {
                    "trace_id": tid,
                    "span_id": f"{tid}-{sid}",
                    "parent_span_id": None if parent is None else f"{tid}-{parent}",
                    "name": f"{svc} op",
                    "service": svc,
                    "start_ts": t + pd.Timedelta(milliseconds=s),
                    "end_ts": t + pd.Timedelta(milliseconds=e),
                    "status_code": "ok",
                }
            )

        a_s = 1.0
        auth_e = a_s + 1 + own("auth", 5)
        st_s = auth_e + 0.5
        db_e = st_s + 1 + own("db", 10)
        st_e = db_e + own("store", 3)
        api_e = st_e + own("api", 4)
        add("gw", None, "gw", 0, api_e + 1)
        add("api", "gw", "api", a_s - 0.5, api_e)
        add("auth", "api", "auth", a_s + 1, auth_e)
        add("store", "api", "store", st_s, st_e)
        add("db", "store", "db", st_s + 1, db_e)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("culprit", ["store", "auth", "db", "api"])
def test_origin_not_victim(culprit):
    base = chain_traces(200, T0, None, 1)
    win = chain_traces(200, T0 + pd.Timedelta(minutes=10), culprit, 2)
    r = rank_root_causes(
        pd.concat([base, win]),
        T0 + pd.Timedelta(minutes=10),
        T0 + pd.Timedelta(minutes=20),
        T0,
        T0 + pd.Timedelta(minutes=10),
    )
    assert r.iloc[0]["service"] == culprit
    assert r.iloc[0]["score"] > 0 and r.iloc[0]["evidence"] != "no change"


def test_metrics_break_ties():
    base = chain_traces(100, T0, None, 3)
    win = chain_traces(100, T0 + pd.Timedelta(minutes=10), None, 4)
    ts = pd.date_range(T0, periods=20, freq="1min")
    m = pd.concat(
        [
            pd.DataFrame(
                {
                    "ts": ts,
                    "name": "cpu_usage",
                    "service": s,
                    "value": np.r_[
                        np.full(10, 10.0) + np.arange(10) % 2,
                        np.full(10, 95.0 if s == "auth" else 10.0),
                    ],
                }
            )
            for s in ["gw", "api", "auth", "store", "db"]
        ]
    )
    r = rank_root_causes(
        pd.concat([base, win]),
        T0 + pd.Timedelta(minutes=10),
        T0 + pd.Timedelta(minutes=20),
        metrics=m,
    )
    assert r.iloc[0]["service"] == "auth" and r.iloc[0]["metric_score"] > 0


def test_pod_to_service():
    assert pod_to_service("ts-basic-service-5dc8d4f9fd-llznp") == "ts-basic-service"
    assert pod_to_service("ts-ui-dashboard-5477b965f-lwprp") == "ts-ui-dashboard"


def test_cli_rank(tmp_path, capsys, monkeypatch):
    path = tmp_path / "w.duckdb"
    monkeypatch.setenv("LUMINA_WAREHOUSE", str(path))
    spans = pd.concat(
        [chain_traces(100, T0, None, 5), chain_traces(100, T0 + pd.Timedelta(minutes=10), "db", 6)]
    )
    with Warehouse(path).writer() as con:
        append_frame(con, "spans", spans)
    rc = main(
        [
            "--warehouse",
            str(path),
            "rca",
            "rank",
            "--start",
            "2026-01-01T00:10",
            "--end",
            "2026-01-01T00:20",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    first = next(ln for ln in out.splitlines() if ln.strip().startswith("1 "))
    assert "db" in first.split()


@pytest.mark.shared_data
@pytest.mark.skipif(
    not (TT / "fault_list.json").exists(), reason=f"TrainTicket data not found at {TT}"
)
def test_trainticket_accuracy():
    ev = evaluate_trainticket(TT)
    assert len(ev.cases) == 8
    # measured: 8/8 top-1 with traces + metrics (Nezha reports 86.7% top-1, 97.8% top-3)
    assert ev.top1 >= 1.0 and ev.top3 >= 1.0
    traces_only = evaluate_trainticket(TT, use_metrics=False)
    assert traces_only.top1 >= 0.875 and traces_only.top3 >= 1.0
