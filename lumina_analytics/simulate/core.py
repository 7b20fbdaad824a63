"""``simulate()``: draw one period of Lumina telemetry and write it as files."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from lumina_analytics.config import get_settings
from lumina_analytics.errors import ConfigError
from lumina_analytics.simulate import incidents as inc
from lumina_analytics.simulate import outcomes, signals, traces, writers
from lumina_analytics.simulate.model import DEFAULT_START, MODELS, PROVIDERS

SIMULATOR_VERSION = "1.0.0"


@dataclass
class SimulationResult:
    """What one simulation wrote: paths, counts, the incidents and the true effects."""

    out_dir: Path
    paths: dict[
        str, list[Path]
    ]  # traces|metrics|prometheus|logs|events|deployments|incidents|effects|manifest
    counts: dict[str, int]
    incidents: pd.DataFrame
    effects: dict[str, Any]
    seed: int
    start: date
    days: int
    scale: float
    deployments: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    def telemetry_paths(self) -> list[Path]:
        """What to ingest: the data folders and CSVs (not ``effects.json``/``manifest.json``)."""
        folders = [self.out_dir / d for d in ("traces", "metrics", "logs")]
        csvs = [p for k in ("events", "deployments", "incidents") for p in self.paths[k]]
        return [p for p in folders if p.is_dir()] + csvs

    def summary(self) -> str:
        """A few printable lines."""
        c = self.counts
        return (
            f"simulated {self.days} days from {self.start} (seed {self.seed}, scale {self.scale}) "
            f"into {self.out_dir}\n"
            f"  sessions {c['sessions']:,}  traces {c['traces']:,}  spans {c['spans']:,}  "
            f"LLM calls {c['llm_calls']:,}\n"
            f"  events {c['events']:,}  log records {c['logs']:,}  metric points "
            f"{c['metric_points']:,}  prometheus samples {c['prometheus_samples']:,}\n"
            f"  incidents {c['incidents']}  deployments {c['deployments']}"
        )


def default_out_dir() -> Path:
    """``<data dir>/demo-telemetry``."""
    return get_settings().data_dir / "demo-telemetry"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def simulate(
    days: int = 30,
    scale: float = 1.0,
    seed: int = 7,
    out: str | os.PathLike[str] | None = None,
    start: date | None = None,
    *,
    gzip: bool = False,
    progress: bool = False,
) -> SimulationResult:
    """Simulate ``days`` days of Lumina telemetry and write it under ``out``.

    ``start`` defaults to 2026-10-01 (fixed, so the data never depend on today). The same
    ``seed`` gives byte-identical files. ``scale`` multiplies traffic: the 30-day run at
    scale 1.0 has a little over 300,000 LLM calls. Writes ``traces/``, ``metrics/``
    (OTLP JSON Lines and Prometheus text), ``logs/``, ``events.csv``, ``deployments.csv``,
    ``incidents.csv``, ``effects.json`` and ``manifest.json``.
    """
    if days < 1:
        raise ConfigError(f"days must be at least 1, got {days}")
    if not scale > 0:
        raise ConfigError(f"scale must be positive, got {scale}")
    out_dir = Path(out).expanduser().resolve() if out is not None else default_out_dir()
    start_d = start or date.fromisoformat(DEFAULT_START)
    start_dt = datetime(start_d.year, start_d.month, start_d.day)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Remove files a previous run with more days may have left behind.
    for sub, pattern in (
        ("traces", "traces-*.otlp.jsonl*"),
        ("metrics", "metrics-*.otlp.jsonl*"),
        ("metrics", "llm-proxy-*.prom"),
        ("logs", "logs-*.otlp.jsonl*"),
    ):
        d = out_dir / sub
        if d.is_dir():
            for old in d.glob(pattern):
                if old.is_file():
                    old.unlink()

    rng = np.random.default_rng(seed)
    # one step per stage plus one per daily traces file
    bar = tqdm(total=days + 6, desc="simulate: plan", unit="step", disable=not progress)

    def stage(name: str) -> None:
        bar.set_description(f"simulate: {name}")

    plan = inc.plan_period(start_dt, days, rng)
    stage("traffic and traces")
    bar.update(1)
    world = traces.generate(plan, scale, rng)
    stage("outcomes, metrics, logs")
    bar.update(1)
    outc = outcomes.session_outcomes(world, rng)
    events = outcomes.events_frame(world, outc, rng)
    series = signals.service_metrics(world, plan, rng)
    prom = signals.prometheus_samples(world, plan)
    logs = signals.logs_frame(world, plan, rng)
    stage("write traces")
    bar.update(1)
    trace_paths = writers.write_traces(world, start_dt, days, out_dir, gzip, bar.update)
    stage("write metrics")
    metric_paths = writers.write_metrics(series, start_dt, days, out_dir, gzip)
    prom_paths = writers.write_prometheus(prom, start_dt, days, out_dir)
    bar.update(1)
    stage("write logs and CSVs")
    log_paths = writers.write_logs(logs, start_dt, days, out_dir, gzip)
    csv_paths = writers.write_csvs(events, plan, out_dir)
    bar.update(1)
    stage("manifest")

    effects = {
        **outcomes.EFFECTS,
        "incidents": {
            i.kind: {"dimension": i.dimension, "value": i.value, "magnitude": i.magnitude}
            for i in plan.incidents
        },
        "observed": {
            "conversion_rate": round(float(outc["converted"].mean()), 4) if len(outc) else 0.0,
            "abandonment_rate": round(float(outc["abandoned"].mean()), 4) if len(outc) else 0.0,
            "sessions_with_error": round(float(outc["error"].mean()), 4) if len(outc) else 0.0,
        },
    }
    effects_path = out_dir / "effects.json"
    effects_path.write_text(json.dumps(effects, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    n_points = sum(len(v) for vals in series.values.values() for v in vals.values())
    counts = {
        "sessions": len(world.s_start),
        "traces": len(world.t_start),
        "spans": world.span_count,
        "llm_calls": len(world.c_trace),
        "llm_errors": int((world.c_error > 0).sum()),
        "deprecated_attr_llm_calls": int(
            sum(a.count('"gen_ai.system"') for a in world.spans.attrs[3])
        ),
        "unpriced_llm_calls": int(
            np.isin(world.c_model, [i for i, m in enumerate(MODELS) if not m.priced]).sum()
        ),
        "events": len(events),
        "logs": len(logs),
        "metric_points": n_points,
        "prometheus_samples": len(prom),
        "incidents": len(plan.incidents),
        "deployments": len(plan.deployments),
    }
    paths: dict[str, list[Path]] = {
        "traces": trace_paths,
        "metrics": metric_paths,
        "prometheus": prom_paths,
        "logs": log_paths,
        "events": [csv_paths["events"]],
        "deployments": [csv_paths["deployments"]],
        "incidents": [csv_paths["incidents"]],
        "effects": [effects_path],
    }
    manifest = {
        "generator": f"lumina_analytics.simulate {SIMULATOR_VERSION}",
        "seed": seed,
        "start": start_d.isoformat(),
        "days": days,
        "scale": scale,
        "gzip": gzip,
        "providers": [p.name for p in PROVIDERS],
        "models": [m.name for m in MODELS],
        "counts": counts,
        "files": [
            {
                "path": p.relative_to(out_dir).as_posix(),
                "kind": kind,
                "bytes": p.stat().st_size,
                "sha256": _sha256(p),
            }
            for kind, ps in paths.items()
            for p in ps
        ],
    }
    manifest_path = out_dir / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    paths["manifest"] = [manifest_path]
    bar.update(1)
    bar.close()
    return SimulationResult(
        out_dir=out_dir,
        paths=paths,
        counts=counts,
        incidents=plan.incidents_frame(),
        effects=effects,
        seed=seed,
        start=start_d,
        days=days,
        scale=scale,
        deployments=plan.deployments,
    )
