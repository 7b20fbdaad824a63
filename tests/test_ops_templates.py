"""Deployment templates (Dockerfile, compose, Kubernetes) parse and run real CLI commands."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml
from apscheduler.triggers.cron import CronTrigger

from lumina_analytics.cli import build_parser
from lumina_analytics.deploy import template_path

SECRETISH = re.compile(
    r"(hooks\.slack\.com|xox[bap]-|sk-[A-Za-z0-9]{10,}|Bearer\s+\S+|password\s*[:=]|https://hooks)",
    re.I,
)
OPS_FILES = ("dashboards.yaml", "cronjobs-ops.yaml", "configmap.yaml")


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(template_path("kubernetes", name).read_text()) if d]


def _assert_cli(command: list[str]) -> None:
    assert command[0] == "lumina-analytics", command
    build_parser().parse_args(command[1:])  # SystemExit on an unknown command or flag


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return list(spec["template"]["spec"]["containers"])


def test_dockerfile() -> None:
    text = template_path("Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    lock = text.index("requirements.lock")
    assert lock < text.index("--no-deps .")  # pinned deps first, then the package
    assert re.search(r"^USER (?!root|0\b)\S+", text, re.M)
    assert "HEALTHCHECK" in text
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert cmd
    _assert_cli(yaml.safe_load(cmd.group(1)))
    for src in re.findall(r"^COPY (\S+)", text, re.M):
        assert (Path(__file__).resolve().parents[1] / src).exists(), src
    assert not SECRETISH.search(text)


def test_compose_runs_dashboards_and_scheduler() -> None:
    text = template_path("docker-compose.yaml").read_text()
    doc = yaml.safe_load(text)
    services = doc["services"]
    assert services["dashboards"]["command"][:3] == ["lumina-analytics", "dashboards", "serve"]
    assert "0.0.0.0" in services["dashboards"]["command"]
    assert services["scheduler"]["command"] == ["lumina-analytics", "schedule", "run"]
    for svc in services.values():
        _assert_cli(svc["command"])
        assert svc["image"].startswith("lumina-analytics:")
    assert "healthcheck" in services["dashboards"]
    assert not SECRETISH.search(text)
    assert "${LUMINA_ALERT_WEBHOOK_URL" in text  # from the environment, not inline


def test_dashboards_deployment_zero_downtime() -> None:
    (dep,) = [d for d in _docs("dashboards.yaml") if d["kind"] == "Deployment"]
    roll = dep["spec"]["strategy"]
    assert roll["type"] == "RollingUpdate" and roll["rollingUpdate"]["maxUnavailable"] == 0
    (c,) = _containers(dep)
    _assert_cli(c["command"])
    assert "0.0.0.0" in c["command"]
    port = c["ports"][0]["containerPort"]
    assert str(port) in c["command"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["path"] == "/"
    svc = next(d for d in _docs("dashboards.yaml") if d["kind"] == "Service")
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]


def test_ops_cronjobs_run_backup_and_maintain() -> None:
    jobs = [d for d in _docs("cronjobs-ops.yaml") if d["kind"] == "CronJob"]
    commands = {tuple(_containers(j)[0]["command"][:2]) for j in jobs}
    assert ("lumina-analytics", "backup") in commands and (
        "lumina-analytics",
        "maintain",
    ) in commands
    for j in jobs:
        CronTrigger.from_crontab(j["spec"]["schedule"], timezone="UTC")
        assert j["spec"]["concurrencyPolicy"] == "Forbid"
        for c in _containers(j):
            _assert_cli(c["command"])


def test_configmap_and_secret_references() -> None:
    (cm,) = _docs("configmap.yaml")
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "lumina-settings"
    assert all(isinstance(v, str) for v in cm["data"].values())
    assert "LUMINA_ALERT_WEBHOOK_URL" not in cm["data"] and "LUMINA_USER_ID_SALT" not in cm["data"]
    refs = []
    for name in OPS_FILES:
        for doc in _docs(name):
            if doc["kind"] in ("Deployment", "CronJob"):
                for c in _containers(doc):
                    assert c["image"].startswith("registry.example.com/lumina-analytics:")
                    for e in c.get("env", []):
                        if e["name"] in ("LUMINA_ALERT_WEBHOOK_URL", "LUMINA_USER_ID_SALT"):
                            assert "value" not in e
                            refs.append(e["valueFrom"]["secretKeyRef"]["name"])
        assert not SECRETISH.search(template_path("kubernetes", name).read_text()), name
    assert refs and set(refs) == {"lumina-secrets"}


def test_every_command_is_shell_safe() -> None:
    for name in OPS_FILES:
        for doc in _docs(name):
            if doc["kind"] in ("Deployment", "CronJob"):
                for c in _containers(doc):
                    assert shlex.join(c["command"])  # plain argv, no shell wrapper
                    assert c["command"][0] != "sh"
