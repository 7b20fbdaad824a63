"""Report schedules: ``reports.yaml`` with cron expressions and run-date-relative parameters.

``{run_date}``, ``{run_date - 7d}``, ``{week_start - 1w}``, ``{month_start}`` in a parameter
value become ISO dates relative to the day the run fires. The scheduler is APScheduler's
``BlockingScheduler``; one job's failure is logged and never stops the others. Missed runs
(the machine was asleep or the previous run was still going) are coalesced into a single
catch-up run if they are less than ``misfire_grace_s`` late and skipped otherwise; runs
missed while the scheduler was not running are not replayed: backfill them with
``lumina-analytics report run --all --date YYYY-MM-DD``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from lumina_analytics.config import get_settings
from lumina_analytics.reports.catalog import ReportError, catalog, validate_params

log = logging.getLogger(__name__)

DEFAULT_SCHEDULE = Path(__file__).resolve().parent.parent / "defaults" / "reports.yaml"
_REL = re.compile(r"^\{\s*(run_date|week_start|month_start)\s*(?:([+-])\s*(\d+)\s*([dw]))?\s*\}$")


@dataclass(frozen=True)
class ScheduledReport:
    """One schedule entry: which notebook, when (cron), with which parameters."""

    name: str
    notebook: str
    cron: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def resolve(self, run_date: date) -> dict[str, Any]:
        """Parameters with relative dates turned into ISO dates for ``run_date``."""
        return {k: resolve_value(v, run_date) for k, v in self.params.items()}


def resolve_value(value: Any, run_date: date) -> Any:
    """``{run_date - 7d}`` style expressions to ISO dates; anything else unchanged."""
    if not isinstance(value, str):
        return value
    m = _REL.match(value.strip())
    if not m:
        return value
    anchor, sign, num, unit = m.groups()
    base = run_date
    if anchor == "week_start":
        base = run_date - timedelta(days=run_date.weekday())
    elif anchor == "month_start":
        base = run_date.replace(day=1)
    if num:
        delta = timedelta(days=int(num) * (7 if unit == "w" else 1))
        base = base + delta if sign == "+" else base - delta
    return base.isoformat()


def _read_schedule(path: Path | None) -> tuple[Path, dict[str, Any]]:
    """The schedule file's path (default: reports.yaml at the root, else the packaged one) and
    its parsed document."""
    settings_path = get_settings().root / "reports.yaml"
    p = Path(path or (settings_path if settings_path.exists() else DEFAULT_SCHEDULE))
    try:
        doc = yaml.safe_load(p.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ReportError(f"{p}: cannot read schedule: {exc}") from None
    if not isinstance(doc, dict):
        raise ReportError(f"{p}: expected a mapping with a 'reports:' list")
    return p, doc


def load_schedule(path: Path | None = None) -> list[ScheduledReport]:
    """Read and validate a schedule file (default: LUMINA_SCHEDULE or the packaged one)."""
    p, doc = _read_schedule(path)
    entries = doc.get("reports")
    if not isinstance(entries, list):
        raise ReportError(f"{p}: expected a top-level 'reports:' list")
    specs = catalog()
    out: list[ScheduledReport] = []
    for i, e in enumerate(entries):
        where = f"{p}: reports[{i}]"
        if not isinstance(e, dict) or not {"name", "cron"} <= set(e):
            raise ReportError(f"{where}: each entry needs 'name' and 'cron'")
        notebook = str(e.get("notebook", e["name"]))
        if notebook not in specs:
            raise ReportError(
                f"{where}: unknown notebook {notebook!r}; known: {', '.join(sorted(specs))}"
            )
        try:
            CronTrigger.from_crontab(str(e["cron"]), timezone="UTC")
        except ValueError as exc:
            raise ReportError(f"{where}: bad cron {e['cron']!r}: {exc}") from None
        unknown = set(e) - {"name", "notebook", "cron", "params"}
        if unknown:
            raise ReportError(f"{where}: unknown key(s) {sorted(unknown)}")
        entry = ScheduledReport(
            str(e["name"]), notebook, str(e["cron"]), dict(e.get("params") or {})
        )
        validate_params(specs[notebook], entry.resolve(date(2026, 1, 5)))
        out.append(entry)
    return out


def crontab_lines(entries: list[ScheduledReport], command: str | None = None) -> list[str]:
    """Equivalent crontab lines (the CLI resolves relative dates at run time).

    Paths are absolute, because cron runs jobs from the home directory with a bare PATH.
    """
    import sys

    if command is None:
        script = Path(sys.executable).parent / "lumina-analytics"
        command = str(script) if script.exists() else "lumina-analytics"
    log_file = get_settings().reports_dir / "cron.log"
    lines = [
        "# Lumina Analytics report schedule (UTC). Generated by `lumina-analytics schedule crontab`.",
        "CRON_TZ=UTC",
    ]
    for e in entries:
        lines.append(f"{e.cron} {command} schedule run-once {e.name} >> {log_file} 2>&1")
    return lines


def run_entry(entry: ScheduledReport, run_date: date | None = None) -> bool:
    """Run one scheduled report now; returns whether it succeeded (never raises)."""
    from lumina_analytics.reports.runner import run_report

    day = run_date or datetime.now().date()
    try:
        run = run_report(entry.notebook, entry.resolve(day), day)
    except Exception:
        log.exception("scheduled report %s failed to start", entry.name)
        return False
    if run.status != "ok":
        log.error("scheduled report %s failed: %s", entry.name, run.error)
    else:
        log.info("scheduled report %s ok: %s", entry.name, run.html)
    return run.status == "ok"


def build_scheduler(
    entries: list[ScheduledReport],
    runner: Callable[[ScheduledReport], object] = run_entry,
    misfire_grace_s: int = 3600,
) -> BlockingScheduler:
    """A blocking APScheduler with one cron job per entry, coalescing missed runs."""
    sched = BlockingScheduler(timezone="UTC")
    for e in entries:
        sched.add_job(
            runner,
            CronTrigger.from_crontab(e.cron, timezone="UTC"),
            args=[e],
            id=e.name,
            name=e.name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=misfire_grace_s,
        )
    return sched


# -- backups (added by operations; additive) ---------------------------------------------------


@dataclass(frozen=True)
class ScheduledBackup:
    """One ``backups:`` entry: when to snapshot the warehouse, where, and how many to keep."""

    name: str
    cron: str
    keep: int = 7
    to: str | None = None  # backup folder; None: settings' backup_dir or <data_dir>/backups


def load_backup_schedule(path: Path | None = None) -> list[ScheduledBackup]:
    """The optional ``backups:`` section of the schedule file (same file as ``reports:``)."""
    p, doc = _read_schedule(path)
    entries = doc.get("backups") or []
    if not isinstance(entries, list):
        raise ReportError(f"{p}: 'backups:' must be a list")
    out: list[ScheduledBackup] = []
    for i, e in enumerate(entries):
        where = f"{p}: backups[{i}]"
        if not isinstance(e, dict) or not {"name", "cron"} <= set(e):
            raise ReportError(f"{where}: each entry needs 'name' and 'cron'")
        unknown = set(e) - {"name", "cron", "keep", "to"}
        if unknown:
            raise ReportError(f"{where}: unknown key(s) {sorted(unknown)}")
        try:
            CronTrigger.from_crontab(str(e["cron"]), timezone="UTC")
        except ValueError as exc:
            raise ReportError(f"{where}: bad cron {e['cron']!r}: {exc}") from None
        keep = e.get("keep", 7)
        if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
            raise ReportError(f"{where}: 'keep' must be a whole number >= 1, got {keep!r}")
        to = e.get("to")
        out.append(ScheduledBackup(str(e["name"]), str(e["cron"]), keep, str(to) if to else None))
    return out


def run_backup_entry(entry: ScheduledBackup) -> bool:
    """Take one scheduled backup and prune to ``keep``; returns success (never raises)."""
    from lumina_analytics.ops.backup import backup

    try:
        result = backup(entry.to, keep=entry.keep)
    except Exception:
        log.exception("scheduled backup %s failed", entry.name)
        return False
    log.info("scheduled backup %s ok: %s (%d pruned)", entry.name, result.path, len(result.pruned))
    return True


def add_backup_jobs(
    sched: BlockingScheduler,
    entries: list[ScheduledBackup],
    runner: Callable[[ScheduledBackup], object] = run_backup_entry,
    misfire_grace_s: int = 3600,
) -> None:
    """Add one cron job per backup entry to a scheduler from :func:`build_scheduler`."""
    for e in entries:
        sched.add_job(
            runner,
            CronTrigger.from_crontab(e.cron, timezone="UTC"),
            args=[e],
            id=f"backup:{e.name}",
            name=f"backup:{e.name}",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=misfire_grace_s,
        )
