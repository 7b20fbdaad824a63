"""Spark local[2] against the single-machine engine, in the same run, plus a cluster projection.

    .venv/bin/python benchmarks/bench_spark.py [--series 1000] [--spans 10000000] [--files 64]
        [--node-cores 16 --nodes 100 --efficiency 0.7] [--json out.json] [--from-json out.json]
        [--skip-forecast | --skip-ingest] [--work DIR]

1. Forecasting: ``--series`` synthetic hourly series (14 days, daily season, noise) forecast
   24 h ahead with the package's ``ProphetForecaster`` (members prophet + snaive_day, 2 inner
   folds) on (a) the forecaster's own process pool (``n_jobs`` = cores) and (b) Spark
   ``local[2]`` ``groupBy("unique_id").applyInPandas`` calling the same class; also a small
   run (``--small-series``) to show the small-batch end.
2. Ingestion: ``--spans`` OTLP/JSON spans (about 40 % GenAI chat spans over 13 tenants, the
   generator of ``bench_ingest.py``) in ``--files`` files under ``<lake>/_landing/``, loaded
   into the lake by the DuckDB engine (``ingest_to_lake``: one process, file after file) and
   by the Spark engine (``spark_ingest``: one task per file), each into a fresh lake (the
   current layout: ``llm_calls`` by date and tenant). The input is written file by file,
   line by line (bounded memory) under ``--work`` (default: the system temp folder), after
   checking that the disk has room for it and both lakes; everything is deleted at the end,
   also on failure or Ctrl-C. Progress goes to stderr.

With ``--json FILE`` each part's measurements are saved as soon as that part ends, merged
into FILE: running ``--skip-ingest`` and ``--skip-forecast`` as two invocations fills one
file (each part records when and how it was run).

Every measurement is wall time on THIS machine (``os.cpu_count()`` cores, shared). The
projection assumes a 100-node cluster of ``--node-cores`` cores each running at the measured
Spark per-core rate times ``--efficiency`` (shuffle, stragglers, object-store reads); it is a
model, not a measurement. Spark's fixed cost (session start, first Python workers) is
reported separately and not part of the rates.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

FORECAST = {"freq": "1h", "horizon": 24, "members": ("prophet", "snaive_day"), "n_folds": 2}


def make_series(n: int, days: int = 14, seed: int = 0) -> pd.DataFrame:
    """``n`` hourly series with a daily season, level differences and noise."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2026-10-01", periods=days * 24, freq="1h")
    t = np.arange(len(ds))
    parts = []
    for i in range(n):
        base = 20 + rng.random() * 200
        y = base * (1 + 0.5 * np.sin(2 * np.pi * t / 24 + rng.random() * 6)) + rng.normal(
            0, base * 0.05, len(ds)
        )
        parts.append(pd.DataFrame({"unique_id": f"s{i:05d}", "ds": ds, "y": np.maximum(y, 0)}))
    return pd.concat(parts, ignore_index=True)


def progress(message: str) -> None:
    """One timestamped progress line on stderr."""
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def bench_forecast(spark: Any, n: int) -> dict[str, float]:
    """Seconds for ``n`` series on the process pool and on Spark; checks equal answers."""
    from lumina_analytics.forecasting import ProphetForecaster
    from lumina_analytics.spark.jobs import spark_forecast
    from lumina_analytics.spark.session import pandas_interop

    frame = make_series(n)
    cores = os.cpu_count() or 1
    progress(f"forecast {n:,} series: process pool ({cores} workers)")
    t = time.perf_counter()
    pool = ProphetForecaster(**FORECAST, n_jobs=cores).fit_predict(frame)
    t_pool = time.perf_counter() - t
    progress(f"forecast {n:,} series: pool {t_pool:.1f}s; Spark local[2]")
    t = time.perf_counter()
    sdf = spark_forecast(frame, spark=spark, **FORECAST)
    with pandas_interop():
        fanned = sdf.toPandas()
    t_spark = time.perf_counter() - t
    a = pool.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    b = fanned.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    same = len(a) == len(b) and bool(np.allclose(a["yhat"], b["yhat"], rtol=1e-6, atol=1e-6))
    progress(f"forecast {n:,} series: Spark {t_spark:.1f}s, same answers: {same}")
    return {"series": n, "pool_s": t_pool, "spark_s": t_spark, "same_answers": same}


def write_spans(folder: Path, spans: int, files: int, quiet: bool = False) -> int:
    """OTLP/JSON span files (bench_ingest's generator, distinct trace ids per file); bytes.

    Each file is streamed line by line, so memory stays bounded whatever ``spans`` is.
    """
    from bench_ingest import generate

    folder.mkdir(parents=True, exist_ok=True)
    per = spans // files
    total = 0
    t = time.perf_counter()
    for i in range(files):
        n = per if i < files - 1 else spans - per * (files - 1)
        path = folder / f"spans-{i:04d}.otlp.jsonl"
        generate(path, n, 50, seed=1000 + i)
        total += path.stat().st_size
        if not quiet and (i + 1 == files or (i + 1) % max(1, files // 10) == 0):
            progress(
                f"generated {i + 1}/{files} files, {total / 1e9:.2f} GB, "
                f"{time.perf_counter() - t:.0f}s"
            )
    return total


#: Disk needed per byte of OTLP/JSON input: the input, two lakes (~0.15 each, measured),
#: Spark's shuffle and spill of the staged Arrow chunks (~0.8), plus a safety margin.
DISK_FACTOR = 2.5


def check_disk(work: Path, spans: int, bytes_per_span: float) -> int:
    """Raise SystemExit with a clear message when ``work`` lacks room; bytes needed."""
    need = int(spans * bytes_per_span * DISK_FACTOR)
    free = shutil.disk_usage(work).free
    if free < need:
        raise SystemExit(
            f"bench_spark: {spans:,} spans need about {need / 1e9:.1f} GB free in {work} "
            f"(input {spans * bytes_per_span / 1e9:.1f} GB x {DISK_FACTOR}), only "
            f"{free / 1e9:.1f} GB free; use --work on a bigger disk or fewer --spans"
        )
    progress(f"disk: need about {need / 1e9:.1f} GB in {work}, {free / 1e9:.1f} GB free")
    return need


def bench_ingest(spark: Any, landing: Path, work: Path) -> dict[str, float]:
    """Seconds to load the landing folder into a fresh lake with each engine."""
    from lumina_analytics.lake import ingest_to_lake, lake_counts
    from lumina_analytics.spark.ingest import spark_ingest

    out: dict[str, float] = {}
    for engine in ("duckdb", "spark"):
        lake = work / f"lake-{engine}"
        shutil.rmtree(lake, ignore_errors=True)
        progress(f"ingest {landing}: {engine} engine")
        t = time.perf_counter()
        if engine == "duckdb":
            report = ingest_to_lake([landing], lake)
        else:
            report = spark_ingest([landing], str(lake), spark=spark)
        out[f"{engine}_s"] = time.perf_counter() - t
        if not report.ok:
            raise SystemExit(str(report))
        counts = lake_counts(lake)
        out[f"{engine}_spans"] = counts["spans"]
        out[f"{engine}_llm_calls"] = counts.get("llm_calls", 0)
        out[f"{engine}_lake_bytes"] = sum(f.stat().st_size for f in lake.rglob("*.parquet"))
        out[f"{engine}_llm_calls_files"] = sum(1 for _ in (lake / "llm_calls").rglob("*.parquet"))
        progress(f"ingest: {engine} {out[f'{engine}_s']:.1f}s, {counts['spans']:,} spans")
        shutil.rmtree(lake, ignore_errors=True)  # keep the disk for the next engine
    return out


def _save(path: str | None, results: dict[str, Any]) -> None:
    """Merge ``results`` into the JSON file ``path`` (parts absent here are kept)."""
    if not path:
        return
    target = Path(path)
    merged: dict[str, Any] = json.loads(target.read_text()) if target.exists() else {}
    runs = {**merged.get("runs", {}), **results.get("runs", {})}
    merged.update(results)
    merged["runs"] = runs
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(merged, indent=2, default=str) + "\n")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the measurements; every figure the report prints comes from this dict."""
    from lumina_analytics.spark.session import spark_session

    command = " ".join(["benchmarks/bench_spark.py", *sys.argv[1:]])
    started = datetime.now(UTC).isoformat(timespec="seconds")
    progress("starting Spark local[2]")
    t = time.perf_counter()
    spark = spark_session("local[2]", app_name="lumina-bench", shuffle_partitions=4)
    spark.range(4).repartition(2).count()
    results: dict[str, Any] = {
        "cores": os.cpu_count() or 1,
        "spark_startup_s": time.perf_counter() - t,
        "spark_driver_memory": os.environ.get("LUMINA_SPARK_DRIVER_MEMORY", "2g"),
        "runs": {},
    }
    try:
        if not args.skip_forecast:
            t = time.perf_counter()
            bench_forecast(spark, 2)  # the first Python workers import Prophet: a one-off cost
            results["forecast_warmup_s"] = time.perf_counter() - t
            small = bench_forecast(spark, args.small_series)
            big = bench_forecast(spark, args.series)
            results["forecast"] = [small, big]
            results["runs"]["forecast"] = {"started": started, "command": command}
            _save(args.json, results)
        if not args.skip_ingest:
            results["ingest"] = measure_ingest(spark, args)
            results["runs"]["ingest"] = {
                "started": started,
                "command": command,
                "load_average_at_end": os.getloadavg(),
            }
            _save(args.json, results)
    finally:
        spark.stop()
    return results


def measure_ingest(spark: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Generate the spans (after a disk check), ingest them with both engines, clean up."""
    base = Path(args.work) if args.work else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lumina-bench-spark-", dir=base) as tmp:
        work = Path(tmp)
        warm = work / "warm" / "_landing"
        sample = write_spans(warm, 2_000, 2, quiet=True)
        check_disk(work, args.spans, sample / 2_000)
        landing = work / "lake-src" / "_landing"
        progress(f"generating {args.spans:,} spans in {args.files} files under {landing}")
        t = time.perf_counter()
        size = write_spans(landing, args.spans, args.files)
        gen = time.perf_counter() - t
        t = time.perf_counter()
        bench_ingest(spark, warm, work / "warm")  # the first workers import the ingest code
        warmup = time.perf_counter() - t
        ing: dict[str, Any] = bench_ingest(spark, landing, work)
        progress(f"removing {work}")
    ing.update(
        {
            "spans": args.spans,
            "files": args.files,
            "bytes": size,
            "generate_s": gen,
            "warmup_s": warmup,
        }
    )
    return ing


def report(results: dict[str, Any], nodes: int, node_cores: int, efficiency: float) -> None:
    """Print the tables, the payoff points and the cluster projection (markdown)."""
    cores = results["cores"]
    startup = results["spark_startup_s"]
    print(
        f"machine: {cores} cores (shared); Spark local[2] session start {startup:.1f}s, "
        f"driver memory {results.get('spark_driver_memory', '2g')}"
    )
    cluster = nodes * node_cores
    lines = []
    print("\n## Summary (wall seconds, same machine; ratio = Spark time / single-machine time)\n")
    print("| work | engine | size | seconds | rate | ratio |")
    print("|---|---|---:|---:|---:|---:|")
    for r in results.get("forecast", []):
        for engine, key in (("process pool", "pool_s"), ("Spark local[2]", "spark_s")):
            print(
                f"| forecast | {engine} | {r['series']:,} series | {r[key]:.1f} | "
                f"{r['series'] / r[key]:.2f} series/s | {r[key] / r['pool_s']:.2f} |"
            )
    if "ingest" in results:
        ing = results["ingest"]
        for engine, key in (("DuckDB engine", "duckdb_s"), ("Spark local[2]", "spark_s")):
            print(
                f"| ingest | {engine} | {ing['spans']:,} spans | {ing[key]:.1f} | "
                f"{ing['spans'] / ing[key]:,.0f} spans/s | {ing[key] / ing['duckdb_s']:.2f} |"
            )
    for part, run in results.get("runs", {}).items():
        print(f"\n{part} measured from {run['started']} UTC: `{run['command']}`")
    if "forecast" in results:
        small, big = results["forecast"]
        warm = results["forecast_warmup_s"]
        print(f"forecast warm-up (first Python workers import Prophet, both engines): {warm:.1f}s")
        print("\n## Forecasting (ProphetForecaster, 14 days hourly, horizon 24)\n")
        print("| series | process pool (s) | Spark local[2] (s) | Spark / pool | same answers |")
        print("|---:|---:|---:|---:|:---:|")
        for r in (small, big):
            print(
                f"| {r['series']:,} | {r['pool_s']:.1f} | {r['spark_s']:.1f} | "
                f"{r['spark_s'] / r['pool_s']:.2f} | {'yes' if r['same_answers'] else 'NO'} |"
            )
        pool_per = big["pool_s"] / big["series"]
        spark_per = big["spark_s"] / big["series"]
        per_core = 1 / (cores * spark_per)  # series per second per core under Spark
        rate = per_core * cluster * efficiency
        fixed = startup + warm  # session start + first workers: paid once per cluster job
        n = 100_000
        verdict = (
            "Spark local[2] never pays off on this machine (same cores, more overhead per series)"
            if spark_per >= pool_per
            else f"Spark local[2] pays off on this machine from about {warm / (pool_per - spark_per):,.0f} series"
        )
        lines.append(
            f"- forecasting: {1000 * pool_per:.0f} ms/series on the pool, {1000 * spark_per:.0f} "
            f"ms/series on Spark (wall, {cores} cores); {verdict}"
        )
        lines.append(
            f"- projected cluster: {per_core:.2f} series/s per core -> {rate:,.0f} series/s; "
            f"{n:,} series in {n / rate + fixed:,.0f}s against {n * pool_per / 60:,.0f} min on "
            f"this machine's pool; pays off from about {fixed / (pool_per - 1 / rate):,.0f} series "
            f"(one job's fixed cost {fixed:.0f}s)"
        )
    if "ingest" in results:
        ing = results["ingest"]
        spans = ing["spans"]
        print(
            f"\n## Ingestion from the lake's landing folder ({spans:,} spans, {ing['files']} "
            f"OTLP/JSON files, {ing['bytes'] / 1e6:,.0f} MB)\n"
        )
        print("| engine | seconds | spans/s | spans/s per core | spans in lake |")
        print("|---|---:|---:|---:|---:|")
        for engine, label in (
            ("duckdb", "DuckDB engine (one process, file after file)"),
            ("spark", "Spark local[2] (one task per file)"),
        ):
            secs = ing[f"{engine}_s"]
            print(
                f"| {label} | {secs:.1f} | {spans / secs:,.0f} | {spans / secs / cores:,.0f} | "
                f"{int(ing[f'{engine}_spans']):,} |"
            )
        duck = spans / ing["duckdb_s"]
        spark_core = spans / ing["spark_s"] / cores
        rate = spark_core * cluster * efficiency
        fixed = startup + ing.get("warmup_s", results.get("ingest_warmup_s", 0.0))
        ten_m = 10_000_000
        ratio = ing["spark_s"] / ing["duckdb_s"]
        local_spark = spans / ing["spark_s"]  # spans/s of the job, its fixed cost excluded
        if ratio >= 1:
            payoff = ", so it never pays off on this machine"
        else:
            crossover = fixed / (1 / duck - 1 / local_spark)
            payoff = (
                f"; with its fixed cost ({fixed:.0f}s: session start + first workers) it pays "
                f"off on this machine from about {crossover:,.0f} spans per job"
            )
        lines.append(
            f"- ingestion: Spark local[2] took {ratio:.2f}x the DuckDB engine's time on the same "
            "cores (Spark runs one task per file on both cores; the DuckDB engine loads one "
            "file at a time)" + payoff
        )
        how = "measured" if spans == ten_m else f"scaled linearly from the {spans:,}-span run"
        lines.append(
            f"- 10 million spans ({how}): DuckDB engine {ten_m / duck / 60:.1f} min, Spark "
            f"local[2] {ten_m / (spark_core * cores) / 60:.1f} min (+{fixed:.0f}s fixed), "
            f"projected cluster {ten_m / rate + fixed:.0f}s"
        )
        lines.append(
            f"- projected cluster: {spark_core:,.0f} spans/s per core -> {rate:,.0f} spans/s; "
            f"1 billion spans in {1e9 / rate / 60:.1f} min (DuckDB engine: "
            f"{1e9 / duck / 3600:.1f} h); pays off from about {fixed / (1 / duck - 1 / rate):,.0f} "
            f"spans (one job's fixed cost {fixed:.0f}s)"
        )
    print(
        f"\n## Where Spark pays off; projection to {nodes} nodes x {node_cores} cores = "
        f"{cluster:,} cores at {efficiency:.0%} of the measured per-core rate (a model)\n"
    )
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--small-series", type=int, default=50)
    ap.add_argument("--spans", type=int, default=10_000_000)
    ap.add_argument("--files", type=int, default=64)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--node-cores", type=int, default=16)
    ap.add_argument("--efficiency", type=float, default=0.7)
    ap.add_argument("--skip-forecast", action="store_true")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--work", metavar="DIR", help="folder for the generated input and lakes")
    ap.add_argument("--json", metavar="FILE", help="also write the measurements as JSON")
    ap.add_argument("--from-json", metavar="FILE", help="report saved measurements, run nothing")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
    else:
        results = measure(args)
        if args.json:  # the merged file: parts measured by earlier invocations too
            results = json.loads(Path(args.json).read_text())
    report(results, args.nodes, args.node_cores, args.efficiency)


if __name__ == "__main__":
    main()
