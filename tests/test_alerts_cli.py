"""``lumina-analytics alerts`` end to end on a small warehouse (real series loader)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lumina_analytics.cli import alerts as alerts_cli
from lumina_analytics.cli import main
from lumina_analytics.errors import LuminaError
from lumina_analytics.warehouse import Warehouse, append_frame

START = pd.Timestamp("2026-03-02 00:00")
END = START + pd.Timedelta(hours=8)
INCIDENT = END - pd.Timedelta(hours=1)


def _calls() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 9600
    ts = START + pd.to_timedelta(np.sort(rng.uniform(0, 8 * 3600 - 1, n)), unit="s")
    provider = np.array(["openai", "anthropic"])[rng.integers(0, 2, n)]
    region = np.array(["us-east-1", "eu-west-1"])[rng.integers(0, 2, n)]
    bad = (ts >= INCIDENT) & (provider == "anthropic")
    status = np.where(rng.uniform(size=n) < np.where(bad, 0.5, 0.005), "error", "ok")
    return pd.DataFrame(
        {
            "ts": ts,
            "trace_id": [f"{i:032x}" for i in range(n)],
            "span_id": [f"{i:016x}" for i in range(n)],
            "provider": provider,
            "model": np.where(provider == "openai", "gpt-4o", "claude-sonnet"),
            "region": region,
            "tenant": np.array(["acme", "globex", "initech"])[rng.integers(0, 3, n)],
            "status": status,
            "latency_ms": rng.gamma(2.0, 300.0, n),
            "input_tokens": 100,
            "output_tokens": 50,
            "cost_usd": 0.001,
        }
    )


def run(argv: list[str]) -> int:
    """``lumina-analytics --warehouse W alerts ...`` through this module's parser only.

    (Building the full CLI imports every command module; one test goes through ``main``.)
    """
    import argparse
    import os

    parser = argparse.ArgumentParser()
    parser.add_argument("--warehouse")
    alerts_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    if args.warehouse:
        os.environ["LUMINA_WAREHOUSE"] = os.path.abspath(args.warehouse)
    try:
        return int(args.func(args))
    except LuminaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


RULES = """
route: {group_by: [alertname, provider]}
sinks:
  - {type: jsonl, path: %(out)s}
rules:
  - name: error_rate_high
    kind: threshold
    metric: error_rate
    by: [provider]
    freq: 5m
    window: 10m
    value: 0.1
    for: 10m
    severity: page
    runbook: https://rb/error-rate
    summary: "{provider}: error rate {value}"
  - name: availability_slo
    kind: burn_rate
    objective: 0.99
    by: [provider]
    runbook: https://rb/slo
"""


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    wh_path = tmp_path / "wh.duckdb"
    with Warehouse(wh_path).writer() as con:
        append_frame(con, "llm_calls", _calls())
    out = tmp_path / "notifications.jsonl"
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES % {"out": out})
    return wh_path, rules, out


def test_evaluate_list_replay(
    setup: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    wh, rules, out = setup
    base = ["--warehouse", str(wh), "alerts"]
    t1 = INCIDENT + pd.Timedelta(minutes=10)
    assert main([*base, "evaluate", "--rules", str(rules), "--at", str(t1)]) == 0  # the real CLI
    text = capsys.readouterr().out
    assert "pending   error_rate_high provider=anthropic" in text
    # the SLO burns 50x: the page fires at once, with a root-cause hint
    assert "firing    availability_slo provider=anthropic" in text
    t2 = t1 + pd.Timedelta(minutes=10)
    assert run([*base, "evaluate", "--rules", str(rules), "--at", str(t2)]) == 0
    text = capsys.readouterr().out
    assert "firing    error_rate_high provider=anthropic" in text
    assert "openai" not in text
    # default --at: end of the latest data; still firing, nothing new
    assert run([*base, "evaluate", "--rules", str(rules)]) == 0
    text = capsys.readouterr().out
    assert f"evaluated at {END}" in text and "0 transition(s)" in text

    assert run([*base, "list", "--state", "firing"]) == 0
    text = capsys.readouterr().out
    assert "error_rate_high provider=anthropic" in text and "availability_slo" in text
    assert run([*base, "list", "--state", "pending"]) == 0
    assert "no pending alerts" in capsys.readouterr().out
    assert run([*base, "list", "--state", "all"]) == 0
    assert "pending" in capsys.readouterr().out

    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert {x["status"] for x in lines} == {"firing"}
    fired = {a["rule"]: a for x in lines for a in x["alerts"]}
    hint = fired["availability_slo"]["root_cause"]
    # the alert is per provider, so the hint looks at the other dimensions: nothing stands out
    assert all(h["dimension"] != "provider" for h in hint)

    csv = wh.parent / "replay.csv"
    rc = run(
        [
            *base,
            "replay",
            "--rules",
            str(rules),
            "--start",
            str(INCIDENT - pd.Timedelta(minutes=30)),
            "--step",
            "5min",
            "--output",
            str(csv),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "nothing sent" in text
    hist = pd.read_csv(csv)
    fire = hist[(hist["rule"] == "error_rate_high") & (hist["state"] == "firing")]
    assert len(fire) == 1 and pd.Timestamp(fire["eval_ts"].iloc[0]) <= t2


def test_validate_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["alerts", "validate"]) == 0
    assert "rule(s) OK" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "rules:\n  - {name: x, kind: threshold, metric: error_rate, value: high, runbook: r}\n"
    )
    assert run(["alerts", "validate", "--rules", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "rule 'x'" in err and "'value'" in err
    # evaluate on a missing warehouse is an actionable error, not a traceback
    assert run(["--warehouse", str(tmp_path / "none.duckdb"), "alerts", "evaluate"]) == 2
    assert "no warehouse" in capsys.readouterr().err
    assert run(["--warehouse", str(tmp_path / "none.duckdb"), "alerts", "list"]) == 0
