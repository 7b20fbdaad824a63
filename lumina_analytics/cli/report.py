"""``lumina-analytics report`` and ``schedule``: the report catalog, runs and schedules."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
from datetime import date
from typing import Any

from lumina_analytics.errors import LuminaError as ReportError

# The report machinery (nbformat, papermill, APScheduler) loads only when a command runs,
# so `lumina-analytics --help` stays fast.


def register(sub: Any) -> None:
    """Add the ``report`` and ``schedule`` subcommands."""
    p = sub.add_parser("report", help="list and run the report notebooks (papermill -> HTML)")
    rsub = p.add_subparsers(dest="report_command", metavar="ACTION", required=True)

    ls = rsub.add_parser("list", help="every report with its typed parameters")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=_list)

    run = rsub.add_parser(
        "run",
        help="run one report (or --all) into reports/<date>/ and update reports/index.html",
        description="Parameters are validated against the notebook's declared types before anything runs.",
    )
    run.add_argument("name", nargs="?", help="report name (see `report list`)")
    run.add_argument(
        "--all", action="store_true", help="run every report; failures do not stop the others"
    )
    run.add_argument(
        "-p",
        "--param",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="set a parameter (repeatable); with --all, use NAME.KEY to target one report",
    )
    run.add_argument(
        "--date", help="run date YYYY-MM-DD (default: today, UTC); names the output folder"
    )
    run.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=None,
        help="with --all: notebooks run at once, each in its own kernel (default: one per core, at most 4)",
    )
    run.set_defaults(func=_run)

    s = sub.add_parser(
        "schedule", help="run the report schedule (reports.yaml) or print it as crontab"
    )
    ssub = s.add_subparsers(dest="schedule_command", metavar="ACTION", required=True)
    srun = ssub.add_parser(
        "run", help="run the schedule in the foreground (APScheduler); Ctrl-C stops"
    )
    srun.add_argument(
        "--file", help="schedule file (default: reports.yaml at the root, else the packaged one)"
    )
    srun.set_defaults(func=_schedule_run)
    once = ssub.add_parser("run-once", help="run one schedule entry now (what crontab lines call)")
    once.add_argument("entry")
    once.add_argument("--file")
    once.add_argument("--date", help="run date YYYY-MM-DD (default: today)")
    once.set_defaults(func=_schedule_once)
    cron = ssub.add_parser("crontab", help="print the equivalent crontab lines")
    cron.add_argument("--file")
    cron.add_argument(
        "--command", help="command path in the lines (default: this installation's script)"
    )
    cron.set_defaults(func=_schedule_crontab)
    show = ssub.add_parser(
        "list", help="show the schedule entries with resolved parameters for today"
    )
    show.add_argument("--file")
    show.set_defaults(func=_schedule_list)


def _list(args: argparse.Namespace) -> int:
    from lumina_analytics.reports import catalog

    specs = catalog()
    if args.json:
        print(json.dumps([s.to_dict() for s in specs.values()], indent=2, default=str))
        return 0
    for spec in specs.values():
        print(f"{spec.name}: {spec.title}")
        for prm in spec.params.values():
            helptext = f"  # {prm.help}" if prm.help else ""
            print(f"    {prm.name}: {prm.type_name} = {prm.default!r}{helptext}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from lumina_analytics.reports import catalog, run_all, run_report

    if bool(args.name) == bool(args.all):
        raise ReportError("give a report NAME or --all (see `lumina-analytics report list`)")
    if args.all:
        per: dict[str, dict[str, str]] = {}
        specs = catalog()
        for key, value in args.param:
            if "." in key:
                name, k = key.split(".", 1)
                per.setdefault(name, {})[k] = value
            else:  # a bare key applies to every report that declares it
                for name, spec in specs.items():
                    if key in spec.params:
                        per.setdefault(name, {})[key] = value
        runs = run_all(args.date, params=per, jobs=args.jobs)
    else:
        runs = [run_report(args.name, dict(args.param), args.date)]
        print(runs[0].summary())
    failed = [r for r in runs if r.status != "ok"]
    print(f"{len(runs) - len(failed)} ok, {len(failed)} failed; index: {_index_path()}")
    return 1 if failed else 0


def _index_path() -> str:
    from lumina_analytics.reports.runner import reports_root

    return str(reports_root() / "index.html")


def _schedule_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lumina_analytics.reports.schedule import build_scheduler, load_schedule

    entries = load_schedule(Path(args.file) if args.file else None)
    if not entries:
        print("the schedule is empty; add entries to reports.yaml")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    sched = build_scheduler(entries)
    from lumina_analytics.reports.schedule import add_backup_jobs, load_backup_schedule

    backups = load_backup_schedule(Path(args.file) if args.file else None)
    add_backup_jobs(sched, backups)  # `backups:` section (operations)
    for b in backups:
        print(f"scheduled backup {b.name}: {b.cron} (keep {b.keep})")
    signal.signal(signal.SIGTERM, lambda *_: sched.shutdown(wait=False))
    for e in entries:
        print(f"scheduled {e.name}: {e.cron} ({e.notebook})")
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        sched.start()
    return 0


def _schedule_once(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lumina_analytics.reports.schedule import load_schedule, run_entry

    entries = {e.name: e for e in load_schedule(Path(args.file) if args.file else None)}
    if args.entry not in entries:
        raise ReportError(f"no schedule entry {args.entry!r}; known: {', '.join(sorted(entries))}")
    day = date.fromisoformat(args.date) if args.date else None
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    return 0 if run_entry(entries[args.entry], day) else 1


def _schedule_crontab(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lumina_analytics.reports.schedule import crontab_lines, load_schedule

    print(
        "\n".join(
            crontab_lines(load_schedule(Path(args.file) if args.file else None), args.command)
        )
    )
    return 0


def _schedule_list(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lumina_analytics.reports.schedule import load_schedule

    today = date.today()
    for e in load_schedule(Path(args.file) if args.file else None):
        print(f"{e.name}: cron '{e.cron}' notebook {e.notebook} params {e.resolve(today)}")
    return 0
