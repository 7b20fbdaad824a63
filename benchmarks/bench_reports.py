"""Time the full report suite and the first paint of every dashboard on the demo warehouse.

    .venv/bin/python benchmarks/bench_reports.py [--warehouse data/lumina.duckdb] [--no-dashboards]

Reports: every notebook through `lumina_analytics.reports.run_all` (papermill + self-contained
HTML + index), against the baseline of plain `papermill.execute_notebook` on the same notebooks
in the same run, one at a time; the runner overlaps notebooks (one kernel per core), so the
ratio is its speed-up net of the HTML export. Goal: the suite under 2 minutes on 2 cores.
Dashboards: Voila on a free 127.0.0.1 port and headless Debian chromium; first paint is the time
from navigation to the KPI cards, and an update is a widget change until the status line
re-renders (goal: under 2 s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import papermill

from lumina_analytics.reports import catalog, run_all
from lumina_analytics.reports.runner import default_jobs, kernel_name
from lumina_analytics.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[1]


def bench_reports(out: Path, jobs: int | None) -> None:
    specs = catalog()
    t0 = time.perf_counter()
    runs = run_all(names=sorted(specs), out_root=out / "reports", progress=False, jobs=jobs)
    ours = time.perf_counter() - t0
    os.environ["LUMINA_CHART_RENDERER"] = "svg"
    t0 = time.perf_counter()
    for name, spec in sorted(specs.items()):
        papermill.execute_notebook(
            str(spec.path),
            str(out / f"{name}.plain.ipynb"),
            kernel_name=kernel_name(),
            cwd=str(spec.path.parent),
            progress_bar=False,
        )
    plain = time.perf_counter() - t0
    print(f"{'report':<14} {'status':<7} {'seconds':>8}")
    for r in runs:
        print(f"{r.name:<14} {r.status:<7} {r.seconds:>8.1f}")
    workers = jobs or default_jobs()
    print(
        f"full suite (runner, {workers} at a time, + HTML + index): {ours:6.1f} s  (goal < 120 s)"
    )
    print(
        f"baseline (plain papermill, one at a time):          {plain:6.1f} s  "
        f"ratio {ours / plain:.2f}"
    )


def bench_dashboards(warehouse: Path) -> None:
    from playwright.sync_api import sync_playwright

    from lumina_analytics.cli.dashboards import voila_command, voila_env

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = voila_env()
    env["LUMINA_WAREHOUSE"] = str(warehouse)
    proc = subprocess.Popen(
        voila_command("127.0.0.1", port),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium"),
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--disable-background-networking",
                ],
            )
            print(f"{'dashboard':<22} {'first paint s':>14} {'widget update s':>16}")
            for nb in sorted((ROOT / "dashboards").glob("*.ipynb")):
                page = browser.new_page()
                t0 = time.perf_counter()
                page.goto(f"{url}/voila/render/{nb.name}", wait_until="commit", timeout=300_000)
                page.wait_for_selector(".lumina-status", timeout=300_000)
                first = time.perf_counter() - t0
                stamp = page.locator(".lumina-status").first.get_attribute("data-render-id")
                select = page.locator(".widget-dropdown select").first
                t0 = time.perf_counter()
                select.select_option(index=1)
                page.wait_for_function(
                    "s => document.querySelector('.lumina-status')?.getAttribute('data-render-id') !== s",
                    arg=stamp,
                    timeout=120_000,
                )
                update = time.perf_counter() - t0
                print(f"{nb.stem:<22} {first:>14.1f} {update:>16.2f}")
                page.close()
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--warehouse", help="warehouse to report on (default: the configured one)")
    ap.add_argument("--no-dashboards", action="store_true", help="skip the browser timings")
    ap.add_argument("--no-reports", action="store_true", help="skip the report suite")
    ap.add_argument("--jobs", type=int, help="notebooks at once (default: one per core)")
    args = ap.parse_args()
    if args.warehouse:
        os.environ["LUMINA_WAREHOUSE"] = str(Path(args.warehouse).resolve())
    wh = Warehouse()
    print(f"warehouse {wh.path}: {wh.table_counts().get('llm_calls', 0):,} LLM calls")
    if not args.no_reports:
        with tempfile.TemporaryDirectory() as tmp:
            bench_reports(Path(tmp), args.jobs)
    if not args.no_dashboards:
        bench_dashboards(wh.path)


if __name__ == "__main__":
    main()
