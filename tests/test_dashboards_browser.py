"""The four Voila dashboards in a real browser (Debian chromium driven by Playwright).

Each test loads a dashboard served by Voila on a free 127.0.0.1 port against the small demo
warehouse, checks the KPI cards against the warehouse's own numbers, changes a widget and
checks the charts and KPIs follow, and checks that no request failed or left the machine.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from lumina_analytics.warehouse import Warehouse

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
DASHBOARDS = ["overview", "cost", "providers", "anomalies-forecasts"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def voila(demo_warehouse: Path) -> Iterator[str]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    from lumina_analytics.cli.dashboards import voila_command, voila_env

    for cmd in (  # what the scheduled reports precompute for the anomalies-forecasts dashboard
        ["anomaly", "detect", "--metric", "requests", "--by", "provider"],
        [
            "forecast",
            "--metric",
            "requests",
            "--by",
            "provider",
            "--horizon",
            "24",
            "--persist",
            "-o",
            str(demo_warehouse.parent / "fc.csv"),
        ],
    ):
        subprocess.run(
            [sys.executable, "-m", "lumina_analytics", "--warehouse", str(demo_warehouse), *cmd],
            check=True,
            capture_output=True,
            timeout=900,
        )
    port = _free_port()
    env = voila_env()
    env["LUMINA_WAREHOUSE"] = str(demo_warehouse)
    log = open(ARTIFACTS.mkdir(exist_ok=True) or ARTIFACTS / "voila.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        voila_command("127.0.0.1", port), env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"voila exited with {proc.returncode}; see {ARTIFACTS / 'voila.log'}")
            time.sleep(0.5)
    else:
        proc.terminate()
        pytest.fail("voila did not start within 180 s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    time.sleep(1)  # let kernels exit


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


class _Page:
    """A page with request bookkeeping."""

    def __init__(self, browser: Any, url: str) -> None:
        self.page = browser.new_page(viewport={"width": 1300, "height": 1500})
        self.failed: list[str] = []
        self.external: list[str] = []
        self.reloaded = 0
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        self.page.on("request", self._on_request)
        self.page.goto(url, timeout=300_000, wait_until="commit")

    def _on_request(self, r: Any) -> None:
        if not r.url.startswith(("http://127.0.0.1", "blob:", "data:", "ws://127.0.0.1")):
            self.external.append(r.url)

    def kpis(self) -> dict[str, float]:
        cards = self.page.locator(".lumina-kpi")
        return {
            str(cards.nth(i).get_attribute("data-kpi")): float(
                str(cards.nth(i).get_attribute("data-value"))
            )
            for i in range(cards.count())
        }

    def window(self) -> tuple[datetime, datetime]:
        status = self.page.locator(".lumina-status").first
        return (
            datetime.fromisoformat(str(status.get_attribute("data-start"))),
            datetime.fromisoformat(str(status.get_attribute("data-end"))),
        )

    def render_stamp(self) -> str:
        return str(self.page.locator(".lumina-status").first.get_attribute("data-render-id"))


def _charts_html(pg: _Page) -> str:
    charts = pg.page.locator(".vega-embed")
    return "".join(charts.nth(i).inner_html() for i in range(charts.count()))


def _wait_rendered(pg: _Page, selector: str = ".lumina-status") -> None:
    """Wait for the dashboard; a page whose kernel connection stalled is reloaded once."""
    try:
        pg.page.wait_for_selector(selector, timeout=150_000)
    except Exception:
        pg.reloaded += 1
        print(f"{pg.page.url} stalled on its kernel connection; reloaded", file=sys.stderr)
        pg.page.reload(timeout=300_000, wait_until="commit")
        pg.failed.clear()  # the reload itself aborts the stalled request
        pg.page.wait_for_selector(selector, timeout=300_000)


def _select(pg: _Page, picks: list[tuple[int, dict[str, str]]]) -> None:
    """Pick dropdown options one by one, each time waiting for the dashboard to re-render.

    A page whose widgets lost their kernel connection never re-renders: it is reloaded once
    and the picks are made again.
    """
    for attempt in (0, 1):
        try:
            for idx, how in picks:
                before = pg.render_stamp()
                pg.page.locator(".widget-dropdown select").nth(idx).select_option(**how)
                pg.page.wait_for_function(
                    "s => document.querySelector('.lumina-status')"
                    "?.getAttribute('data-render-id') !== s",
                    arg=before,
                    timeout=45_000 if attempt == 0 else 120_000,
                )
            return
        except Exception:
            if attempt:
                raise
            print(f"{pg.page.url}: a widget change did not re-render; reloaded", file=sys.stderr)
            pg.page.reload(timeout=300_000, wait_until="commit")
            pg.failed.clear()
            pg.page.wait_for_selector(".lumina-kpi", timeout=300_000)


def _open(browser: Any, voila: str, name: str) -> _Page:
    pg = _Page(browser, f"{voila}/voila/render/{name}.ipynb")
    _wait_rendered(pg)
    return pg


def _sql_kpis(
    wh: Warehouse, start: datetime, end: datetime, provider: str | None = None
) -> dict[str, float]:
    where = "ts >= ? AND ts < ?" + (" AND provider = ?" if provider else "")
    params: list[Any] = [start, end] + ([provider] if provider else [])
    row = wh.query(
        f"SELECT count(*) AS requests, coalesce(sum(cost_usd), 0) AS spend FROM llm_calls WHERE {where}",
        params,
    ).iloc[0]
    return {"requests": float(row["requests"]), "spend_usd": float(row["spend"])}


def test_landing_page_links_every_dashboard(voila: str, browser: Any) -> None:
    pg = _Page(browser, voila + "/")
    links = pg.page.locator("a.lumina-dashboard-link")
    hrefs = sorted(str(links.nth(i).get_attribute("href")) for i in range(links.count()))
    assert hrefs == sorted(f"/voila/render/{n}.ipynb" for n in DASHBOARDS)
    ARTIFACTS.mkdir(exist_ok=True)
    pg.page.screenshot(path=str(ARTIFACTS / "landing.png"))
    pg.page.click("a.lumina-dashboard-link[href$='cost.ipynb']")
    _wait_rendered(pg, ".lumina-kpi")
    assert not pg.external, pg.external
    pg.page.close()


@pytest.mark.parametrize("name", DASHBOARDS)
def test_dashboard_kpis_widgets_and_network(
    voila: str, browser: Any, demo_warehouse: Path, name: str
) -> None:
    pg = _open(browser, voila, name)
    try:
        pg.page.wait_for_selector(".lumina-kpi", timeout=120_000)
        pg.page.wait_for_selector(".vega-embed", state="attached", timeout=120_000)
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        pg.page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}-timeout.png"), full_page=True)
        raise
    wh = Warehouse(demo_warehouse)
    start, end = pg.window()
    shown = pg.kpis()
    truth = _sql_kpis(wh, start, end)
    assert shown["requests"] == truth["requests"]
    assert shown["spend_usd"] == pytest.approx(truth["spend_usd"], rel=1e-9)
    ARTIFACTS.mkdir(exist_ok=True)
    pg.page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)

    # Change a widget: the first dimension dropdown picks its second option.
    charts_before = _charts_html(pg)
    select = pg.page.locator(".widget-dropdown select").first
    option = select.locator("option").nth(1)
    value = str(option.get_attribute("value") or option.inner_text())
    label = option.inner_text()
    _select(pg, [(0, {"value": value})])
    pg.page.wait_for_timeout(1500)  # let the charts re-embed
    after = pg.kpis()
    assert after["requests"] < shown["requests"]  # a narrower selection
    dim = pg.page.locator(".widget-dropdown label").first.inner_text().strip().lower()
    if dim == "provider":
        assert after["requests"] == _sql_kpis(wh, start, end, label)["requests"]
    if name != "anomalies-forecasts":
        assert _charts_html(pg) != charts_before
    pg.page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}-filtered.png"), full_page=True)

    body = pg.page.inner_text("body")
    assert "Traceback" not in body and "unavailable right now" not in body
    assert not pg.failed, pg.failed
    assert not pg.external, pg.external
    pg.page.close()


def test_empty_selection_shows_a_message(voila: str, browser: Any, demo_warehouse: Path) -> None:
    pairs = Warehouse(demo_warehouse).query(
        """SELECT p.provider, m.model FROM (SELECT DISTINCT provider FROM llm_calls) p,
                  (SELECT DISTINCT model FROM llm_calls) m
           WHERE NOT EXISTS (SELECT 1 FROM llm_calls c WHERE c.provider = p.provider AND c.model = m.model)
           LIMIT 1"""
    )
    if pairs.empty:
        pytest.skip("every provider serves every model in the demo data")
    provider, model = str(pairs["provider"][0]), str(pairs["model"][0])
    pg = _open(browser, voila, "cost")
    pg.page.wait_for_selector(".lumina-kpi", timeout=120_000)
    _select(pg, [(1, {"label": provider}), (2, {"label": model})])
    text = pg.page.inner_text("body")
    assert "No data" in text and "Traceback" not in text
    pg.page.screenshot(path=str(ARTIFACTS / "dashboard-empty-selection.png"), full_page=True)
    pg.page.close()
