"""Dashboard data functions and the offline Voila template (no browser)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lumina_analytics import dashboards as d
from lumina_analytics.cli import main
from lumina_analytics.cli.dashboards import prepare_template
from lumina_analytics.warehouse import Warehouse, append_frame


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    rng = np.random.default_rng(3)
    n = 2000
    ts = pd.Timestamp("2026-10-01") + pd.to_timedelta(rng.uniform(0, 10 * 86400, n), unit="s")
    prov = rng.choice(["openai", "anthropic"], n)
    calls = pd.DataFrame(
        {
            "ts": ts,
            "trace_id": [f"{i:032x}" for i in range(n)],
            "span_id": [f"{i:016x}" for i in range(n)],
            "provider": prov,
            "model": np.where(prov == "openai", "gpt-4o", "claude-sonnet-4"),
            "input_tokens": rng.integers(100, 2000, n),
            "output_tokens": rng.integers(10, 400, n),
            "latency_ms": rng.lognormal(7, 0.4, n),
            "status": np.where(rng.random(n) < 0.05, "error", "ok"),
            "tenant": rng.choice(["acme", "globex"], n),
            "user_id": rng.integers(0, 50, n).astype(str),
            "cost_usd": rng.uniform(0.001, 0.01, n),
        }
    )
    spans = pd.DataFrame(
        {
            "trace_id": calls["trace_id"],
            "span_id": calls["span_id"],
            "name": "POST /chat",
            "kind": "server",
            "service": rng.choice(["gateway", "agent-runtime"], n),
            "start_ts": ts,
            "end_ts": ts,
            "duration_ms": calls["latency_ms"],
            "status_code": np.where(calls["status"] == "error", "error", "ok"),
        }
    )
    w = Warehouse(tmp_path / "w.duckdb")
    with w.writer() as con:
        append_frame(con, "llm_calls", calls)
        append_frame(con, "spans", spans)
    w.calls = calls  # type: ignore[attr-defined]
    return w


def test_kpis_match_pandas(wh: Warehouse) -> None:
    calls: pd.DataFrame = wh.calls  # type: ignore[attr-defined]
    f = d.Filters(datetime(2026, 10, 3), datetime(2026, 10, 6), providers=("openai",))
    got = d.kpis(f, wh)
    sel = calls[(calls.ts >= f.start) & (calls.ts < f.end) & (calls.provider == "openai")]
    assert got["requests"] == len(sel)
    assert got["spend_usd"] == pytest.approx(sel.cost_usd.sum())
    assert got["error_rate"] == pytest.approx((sel.status == "error").mean())
    assert got["active_users"] == sel.user_id.nunique()


def test_hostile_filter_values_are_bound_not_formatted(wh: Warehouse) -> None:
    f = d.Filters(datetime(2026, 10, 1), datetime(2026, 10, 11), tenants=("x' OR '1'='1",))
    assert d.kpis(f, wh)["requests"] == 0
    assert wh.table_counts()["llm_calls"] == 2000  # nothing was dropped or changed
    with pytest.raises(d.LuminaError, match="cannot group by"):
        d.spend_by(f, "tenant; DROP TABLE llm_calls", wh)


def test_service_health_slo_and_budget(wh: Warehouse, tmp_path: Path) -> None:
    f = d.Filters(datetime(2026, 10, 1), datetime(2026, 10, 11))
    health = d.service_health(f, wh)
    assert set(health["service"]) == {"gateway", "agent-runtime"}
    assert health["requests"].sum() == 2000
    slo = d.slo_status(health, target=0.99)
    assert set(slo["status"]) <= {"healthy", "at risk", "breached"}
    budgets = tmp_path / "b.yaml"
    budgets.write_text("budgets:\n  acme: 100\n  globex: 5\n")
    from lumina_analytics.costs import load_budgets

    got = d.spend_vs_budget(f, load_budgets(budgets), wh)
    assert dict(zip(got["tenant"], got["budget_usd"], strict=True)) == {
        "acme": 100.0,
        "globex": 5.0,
    }


def test_empty_selection_is_a_message_not_an_error(wh: Warehouse) -> None:
    f = d.Filters(datetime(2030, 1, 1), datetime(2030, 1, 2))
    with pytest.raises(d.EmptySelection):
        d.require_rows(d.spend_by(f, "tenant", wh))
    html = d.message_html("No data <here>")
    assert "&lt;here&gt;" in html


def test_kpi_html_carries_exact_values() -> None:
    html = d.kpi_html({"requests": 1234.0, "spend_usd": 12.3456, "error_rate": 0.0123})
    assert "data-kpi='requests' data-value='1234.0'" in html
    assert "$12.35" in html and "1.23%" in html


def test_voila_template_has_no_cdn_links(tmp_path: Path) -> None:
    root = prepare_template(tmp_path)
    files = list((root / "voila" / "templates" / "lumina").glob("*"))
    assert any(f.name == "index.html.j2" for f in files)
    for f in files:
        assert not re.search(r"<link[^>]+href=\"https?://", f.read_text()), f


def test_serve_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboards", "serve", "--dry-run", "--port", "9999"]) == 0
    out = capsys.readouterr().out
    assert "--port=9999" in out and "--Voila.ip=127.0.0.1" in out and "--template=lumina" in out


def test_open_alerts_shows_only_firing(wh: Warehouse) -> None:
    with pytest.raises(d.EmptySelection, match="none are firing"):
        d.open_alerts(wh)  # migrated warehouse, alert_state empty
    rows = pd.DataFrame(
        {
            "fingerprint": ["a", "b"],
            "rule": ["error-rate", "latency"],
            "labels": ['{"provider":"openai"}', "{}"],
            "state": ["firing", "pending"],
        }
    )
    with wh.writer() as con:
        append_frame(con, "alert_state", rows)
    got = d.open_alerts(wh)
    assert got["rule"].tolist() == ["error-rate"]


def test_deferred_pane_paints_later_and_drops_stale_results(wh: Warehouse) -> None:
    import threading

    gate = threading.Event()
    seen: list[str] = []

    def slow(f: d.Filters) -> list[object]:
        from IPython.display import HTML

        gate.wait(10)
        seen.append(f.tenants[0] if f.tenants else "all")
        return [HTML(f"<p class='slow'>{seen[-1]}</p>")]

    db = d.Dashboard(
        title="t",
        panes={"Slow pane": slow, "Fast": lambda f: [d.kpis(f, wh)["requests"]]},
        warehouse=wh,
        show_dims=("tenant",),
        deferred=("Slow pane",),
    )
    db.build()
    out = db.outputs["Slow pane"]
    assert "Computing slow pane" in str(out.outputs)  # the page did not wait for it
    assert db.renders == 1 and not gate.is_set()  # the render finished while it computed
    db.dims["tenant"].value = "acme"  # a newer selection while the first is still computing
    gate.set()
    db._pool.shutdown(wait=True)
    assert seen == ["all", "acme"]
    shown = str(out.outputs)
    assert "acme" in shown and ">all<" not in shown  # the stale result was dropped
