"""Run report notebooks with papermill into ``reports/<date>/`` and keep ``reports/index.html``."""

from __future__ import annotations

import contextlib
import html
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import papermill
from jupyter_client.kernelspec import KernelSpecManager
from tqdm.auto import tqdm

from lumina_analytics.config import get_settings
from lumina_analytics.reports.catalog import ReportError, ReportSpec, catalog, validate_params
from lumina_analytics.reports.html import notebook_to_html

KERNEL_NAME = "lumina"


@dataclass
class ReportRun:
    """The outcome of one report run."""

    name: str
    run_date: str
    params: dict[str, Any]
    status: str  # ok | failed
    notebook: str
    html: str | None
    started_at: str
    seconds: float
    error: str | None = None
    cell: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for terminals."""
        where = f" (cell {self.cell})" if self.cell is not None else ""
        tail = f": {self.error}{where}" if self.error else f" -> {self.html}"
        return f"{self.status.upper():6} {self.name:<14} {self.seconds:6.1f}s{tail}"


def kernel_name() -> str:
    """The project's registered kernel if present (``make venv`` registers it), else ``python3``."""
    with contextlib.suppress(Exception):
        if KERNEL_NAME in KernelSpecManager().find_kernel_specs():
            return KERNEL_NAME
    return "python3"


@contextlib.contextmanager
def _kernel_env(extra: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def reports_root() -> Path:
    """Where reports are written (``reports/`` under the project root, or LUMINA_REPORTS_DIR)."""
    return get_settings().reports_dir


def run_report(
    name: str,
    params: Mapping[str, Any] | None = None,
    run_date: date | str | None = None,
    out_root: Path | None = None,
    specs: Mapping[str, ReportSpec] | None = None,
    timeout_s: int = 1800,
    write_idx: bool = True,
) -> ReportRun:
    """Validate parameters, execute one notebook and export it; never raises for a failing cell."""
    specs = specs if specs is not None else catalog()
    if name not in specs:
        raise ReportError(
            f"no report named {name!r}; known: {', '.join(sorted(specs)) or '(none)'}"
        )
    spec = specs[name]
    values = validate_params(spec, params or {})
    day = _as_date(run_date)
    if "run_date" in spec.params and "run_date" not in values:
        values["run_date"] = day.isoformat()
    root = out_root or reports_root()
    out_dir = root / day.isoformat()
    out_dir.mkdir(parents=True, exist_ok=True)
    nb_out = out_dir / f"{name}.ipynb"
    html_out = out_dir / f"{name}.html"
    started = datetime.now(UTC).replace(tzinfo=None)
    t0 = time.perf_counter()
    error: str | None = None
    cell: int | None = None
    with _kernel_env({"LUMINA_CHART_RENDERER": "svg"}):
        try:
            papermill.execute_notebook(
                str(spec.path),
                str(nb_out),
                parameters=values,
                kernel_name=kernel_name(),
                cwd=str(spec.path.parent),
                progress_bar=False,
                execution_timeout=timeout_s,
            )
        except papermill.PapermillExecutionError as exc:
            error = f"{exc.ename}: {exc.evalue}"
            cell = exc.exec_count
        except Exception as exc:  # kernel died, timeout, bad notebook: report, don't stop others
            error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - t0
    status = "ok" if error is None else "failed"
    run = ReportRun(
        name=name,
        run_date=day.isoformat(),
        params=values,
        status=status,
        notebook=str(nb_out),
        html=None,
        started_at=started.isoformat(timespec="seconds"),
        seconds=round(seconds, 2),
        error=error,
        cell=cell,
    )
    if nb_out.exists():
        meta = {"report": spec.title, "date": run.run_date, "status": status, "params": values}
        if error:
            meta["error"] = error
        notebook_to_html(nb_out, html_out, spec.title, meta)
        run.html = str(html_out)
    (out_dir / f"{name}.json").write_text(json.dumps(asdict(run), indent=2, default=str))
    if write_idx:
        write_index(root)
    return run


def default_jobs() -> int:
    """How many notebooks run at once by default: one per core, at most four."""
    return max(1, min(4, os.cpu_count() or 1))


def run_all(
    run_date: date | str | None = None,
    names: Sequence[str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    out_root: Path | None = None,
    progress: bool = True,
    jobs: int | None = None,
) -> list[ReportRun]:
    """Run every report (or ``names``), ``jobs`` notebooks at a time (default: one per core).

    Each notebook runs in its own kernel process, so they overlap on separate cores. A failing
    notebook does not stop the others. Runs come back in the order of ``names`` (or by name).
    """
    specs = catalog()
    chosen = list(names) if names else sorted(specs)
    for n in chosen:  # validate everything before running anything
        if n not in specs:
            raise ReportError(f"no report named {n!r}; known: {', '.join(sorted(specs))}")
        validate_params(specs[n], (params or {}).get(n, {}))
    workers = jobs if jobs is not None else default_jobs()
    if workers < 1:
        raise ReportError(f"jobs must be at least 1, got {workers}")
    # Longest reports first (by their last recorded run) so the pool drains evenly.
    last = {r.get("name"): float(r.get("seconds") or 0) for r in reversed(load_runs(out_root))}
    order = sorted(chosen, key=lambda n: -last.get(n, 0.0))
    results: dict[str, ReportRun] = {}
    bar = tqdm(total=len(order), desc="reports", unit="report", disable=not progress)

    def one(n: str) -> ReportRun:
        return run_report(n, (params or {}).get(n), run_date, out_root, specs, write_idx=False)

    with _kernel_env({"LUMINA_CHART_RENDERER": "svg"}), ThreadPoolExecutor(workers) as pool:
        futures = {pool.submit(one, n): n for n in order}
        for fut in as_completed(futures):
            run = fut.result()
            results[run.name] = run
            bar.update(1)
            if progress:
                bar.write("  " + run.summary())
    bar.close()
    write_index(out_root or reports_root())
    return [results[n] for n in chosen]


def _as_date(value: date | str | None) -> date:
    if value is None:
        return datetime.now(UTC).date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ReportError(f"run date {value!r} is not YYYY-MM-DD") from None


def load_runs(root: Path | None = None) -> list[dict[str, Any]]:
    """Every run manifest under the reports folder, newest first."""
    base = root or reports_root()
    runs = []
    for p in base.glob("*/*.json"):
        with contextlib.suppress(ValueError, OSError):
            runs.append(json.loads(p.read_text()))
    runs.sort(key=lambda r: (r.get("run_date", ""), r.get("name", "")), reverse=True)
    return runs


def write_index(root: Path | None = None) -> Path:
    """Write ``reports/index.html`` listing every report with its parameters and status."""
    base = root or reports_root()
    base.mkdir(parents=True, exist_ok=True)
    rows = []
    for r in load_runs(base):
        link = ""
        if r.get("html"):
            rel = Path(r["html"]).resolve().relative_to(base.resolve())
            link = f"<a href='{html.escape(str(rel))}'>{html.escape(r['name'])}</a>"
        else:
            link = html.escape(r["name"])
        params = ", ".join(f"{k}={v!r}" for k, v in (r.get("params") or {}).items())
        err = html.escape(str(r.get("error") or ""))
        if r.get("cell") is not None:
            err += f" (cell {r['cell']})"
        rows.append(
            f"<tr><td>{html.escape(r.get('run_date', ''))}</td><td>{link}</td>"
            f"<td class='status-{html.escape(r.get('status', ''))}'>{html.escape(r.get('status', ''))}</td>"
            f"<td>{r.get('seconds', '')}</td><td><code>{html.escape(params)}</code></td><td>{err}</td></tr>"
        )
    from lumina_analytics.reports.html import CSS

    doc = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Lumina reports</title>"
        f"<style>{CSS}</style></head><body><main><h1>Lumina Analytics reports</h1>"
        f"<p>{len(rows)} report run(s). Every page here is self-contained and readable offline.</p>"
        "<table><tr><th>date</th><th>report</th><th>status</th><th>seconds</th><th>parameters</th>"
        "<th>error</th></tr>" + "\n".join(rows) + "</table></main></body></html>"
    )
    out = base / "index.html"
    out.write_text(doc, encoding="utf-8")
    return out
