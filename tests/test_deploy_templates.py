"""Kubernetes CronJob and Airflow DAG templates run the same reports as the schedule."""

from __future__ import annotations

import re
import shlex
import sys
import types
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from apscheduler.triggers.cron import CronTrigger

from lumina_analytics.cli import build_parser
from lumina_analytics.deploy import template_path
from lumina_analytics.reports import schedule as sched

SECRETISH = re.compile(
    r"(hooks\.slack\.com|xox[bap]-|sk-[A-Za-z0-9]{10,}|Bearer\s+\S+|password\s*[:=])", re.I
)


def _cronjobs() -> list[dict[str, Any]]:
    docs = list(yaml.safe_load_all(template_path("kubernetes", "reports-cronjob.yaml").read_text()))
    return [d for d in docs if d]


def test_kubernetes_cronjobs_run_real_cli_commands() -> None:
    parser = build_parser()
    entries = {e.name for e in sched.load_schedule(sched.DEFAULT_SCHEDULE)}
    jobs = _cronjobs()
    assert len(jobs) >= 2
    for job in jobs:
        assert job["apiVersion"] == "batch/v1" and job["kind"] == "CronJob"
        CronTrigger.from_crontab(job["spec"]["schedule"], timezone="UTC")
        assert job["spec"]["concurrencyPolicy"] == "Forbid"
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        for c in pod["containers"]:
            image = c["image"]
            assert ":" in image and not image.endswith(":latest"), image
            cmd = c["command"]
            assert cmd[0] == "lumina-analytics"
            args = parser.parse_args(cmd[1:])  # exits on an unknown command or option
            assert callable(args.func)
            if cmd[1:3] == ["schedule", "run-once"]:
                assert cmd[3] in entries, f"{cmd[3]} is not in the default reports.yaml"


def test_no_secrets_inline() -> None:
    text = template_path("kubernetes", "reports-cronjob.yaml").read_text()
    assert not SECRETISH.search(text)
    for job in _cronjobs():
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        for c in pod["containers"]:
            for env in c.get("env", []):
                assert "value" not in env or not SECRETISH.search(str(env["value"]))
                assert "WEBHOOK" not in env["name"] or "valueFrom" in env


class _FakeDAG:
    instances: ClassVar[list[_FakeDAG]] = []

    def __init__(self, dag_id: str, schedule: str, **kwargs: Any) -> None:
        self.dag_id, self.schedule, self.kwargs, self.tasks = dag_id, schedule, kwargs, []
        _FakeDAG.instances.append(self)


class _FakeOperator:
    def __init__(
        self, task_id: str, python_callable: Any, op_kwargs: dict[str, Any], dag: _FakeDAG
    ) -> None:
        self.task_id, self.python_callable, self.op_kwargs = task_id, python_callable, op_kwargs
        dag.tasks.append(self)


def test_airflow_dag_one_per_schedule_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    airflow = types.ModuleType("airflow")
    airflow.DAG = _FakeDAG  # type: ignore[attr-defined]
    ops = types.ModuleType("airflow.operators")
    py = types.ModuleType("airflow.operators.python")
    py.PythonOperator = _FakeOperator  # type: ignore[attr-defined]
    for name, mod in (
        ("airflow", airflow),
        ("airflow.operators", ops),
        ("airflow.operators.python", py),
    ):
        monkeypatch.setitem(sys.modules, name, mod)
    _FakeDAG.instances.clear()
    path = template_path("airflow", "lumina_reports_dag.py")
    namespace: dict[str, Any] = {"__name__": "lumina_reports_dag"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    entries = sched.load_schedule(sched.DEFAULT_SCHEDULE)
    assert [d.schedule for d in _FakeDAG.instances] == [e.cron for e in entries]
    assert all(
        d.kwargs["catchup"] is False and d.kwargs["max_active_runs"] == 1
        for d in _FakeDAG.instances
    )
    calls: list[tuple[str, date]] = []
    monkeypatch.setitem(namespace, "run_entry", lambda e, d: calls.append((e.name, d)) or True)
    task = _FakeDAG.instances[0].tasks[0]
    assert task.task_id == f"papermill_{entries[0].notebook}"
    task.python_callable(ds="2026-11-02", **task.op_kwargs)
    assert calls == [(entries[0].name, date(2026, 11, 2))]
    monkeypatch.setitem(namespace, "run_entry", lambda e, d: False)
    with pytest.raises(RuntimeError, match="failed"):
        task.python_callable(ds="2026-11-02", **task.op_kwargs)


def test_crontab_lines_use_absolute_paths() -> None:
    lines = sched.crontab_lines(sched.load_schedule(sched.DEFAULT_SCHEDULE))
    for line in lines[2:]:
        fields = shlex.split(line)
        assert Path(fields[5]).is_absolute() or fields[5] == "lumina-analytics"
        assert Path(fields[-2]).is_absolute()
