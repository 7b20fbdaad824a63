"""Airflow DAGs for the Lumina report schedule: one DAG per entry of reports.yaml.

Drop this file into the Airflow ``dags/`` folder of a deployment where ``lumina-analytics``
is installed. Each DAG has the entry's cron schedule and one task that executes the report
notebook with papermill through :func:`lumina_analytics.reports.schedule.run_entry`, with the
DAG run's logical date as the run date (so ``{run_date - 7d}`` parameters resolve to the
period the run covers, and backfills work). A failed notebook fails the task; it never stops
the other DAGs.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from airflow import DAG
from airflow.operators.python import PythonOperator

from lumina_analytics.reports.schedule import ScheduledReport, load_schedule, run_entry

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "lumina-analytics",
    "retries": 1,
    "retry_delay": timedelta(minutes=10),
}


def run_report_task(entry_name: str, ds: str, **_: Any) -> None:
    """Run one schedule entry for the DAG run's date; raise so Airflow marks a failure."""
    entries = {e.name: e for e in load_schedule()}
    if not run_entry(entries[entry_name], date.fromisoformat(ds)):
        raise RuntimeError(f"report {entry_name} failed for {ds}; see reports/index.html")


def build_dag(entry: ScheduledReport) -> DAG:
    """One DAG for one schedule entry."""
    dag = DAG(
        dag_id=f"lumina_report_{entry.name.replace('-', '_')}",
        schedule=entry.cron,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["lumina", "reports", "papermill"],
    )
    PythonOperator(
        task_id=f"papermill_{entry.notebook}",
        python_callable=run_report_task,
        op_kwargs={"entry_name": entry.name},
        dag=dag,
    )
    return dag


for _entry in load_schedule():
    globals()[f"lumina_report_{_entry.name.replace('-', '_')}"] = build_dag(_entry)
