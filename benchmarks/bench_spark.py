"""Spark local[2] against the single-machine engine, in the same run, plus a cluster projection.

    .venv/bin/python benchmarks/bench_spark.py [--series 1000] [--spans 10000000] [--files 16]
        [--node-cores 16 --nodes 100 --efficiency 0.7] [--json out.json] [--from-json out.json]

1. Forecasting: ``--series`` synthetic hourly series (14 days, daily season, noise) forecast
   24 h ahead with the package's ``ProphetForecaster`` (members prophet + snaive_day, 2 inner
   folds) on (a) the forecaster's own process pool (``n_jobs`` = cores) and (b) Spark
   ``local[2]`` ``groupBy("unique_id").applyInPandas`` calling the same class; also a small
   run (``--small-series``) to show the small-batch end.
2. Ingestion: ``--spans`` OTLP/JSON spans (about 40 % GenAI chat spans, the generator of
   ``bench_ingest.py``) in ``--files`` files under ``<lake>/_landing/``, loaded into the lake
   by the DuckDB engine (``ingest_to_lake``: one process, file after file) and by the Spark
   engine (``spark_ingest``: one task per file), each into a fresh lake.

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


def bench_forecast(spark: Any, n: int) -> dict[str, float]:
    """Seconds for ``n`` series on the process pool and on Spark; checks equal answers."""
    from lumina_analytics.forecasting import ProphetForecaster
    from lumina_analytics.spark.jobs import spark_forecast
    from lumina_analytics.spark.session import pandas_interop

    frame = make_series(n)
    cores = os.cpu_count() or 1
    t = time.perf_counter()
    pool = ProphetForecaster(**FORECAST, n_jobs=cores).fit_predict(frame)
    t_pool = time.perf_counter() - t
    t = time.perf_counter()
    sdf = spark_forecast(frame, spark=spark, **FORECAST)
    with pandas_interop():
        fanned = sdf.toPandas()
    t_spark = time.perf_counter() - t
    a = pool.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    b = fanned.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    same = len(a) == len(b) and bool(np.allclose(a["yhat"], b["yhat"], rtol=1e-6, atol=1e-6))
    return {"series": n, "pool_s": t_pool, "spark_s": t_spark, "same_answers": same}


def write_spans(folder: Path, spans: int, files: int) -> int:
    """OTLP/JSON span files (bench_ingest's generator, distinct trace ids per file); bytes."""
    from bench_ingest import generate

    folder.mkdir(parents=True, exist_ok=True)
    per = spans // files
    total = 0
    for i in range(files):
        n = per if i < files - 1 else spans - per * (files - 1)
        path = folder / f"spans-{i:03d}.otlp.jsonl"
        generate(path, n, 50, seed=1000 + i)
        total += path.stat().st_size
    return total


def bench_ingest(spark: Any, landing: Path, work: Path) -> dict[str, float]:
    """Seconds to load the landing folder into a fresh lake with each engine."""
    from lumina_analytics.lake import ingest_to_lake, lake_counts
    from lumina_analytics.spark.ingest import spark_ingest

    out: dict[str, float] = {}
    for engine in ("duckdb", "spark"):
        lake = work / f"lake-{engine}"
        shutil.rmtree(lake, ignore_errors=True)
        t = time.perf_counter()
        if engine == "duckdb":
            report = ingest_to_lake([landing], lake)
        else:
            report = spark_ingest([landing], str(lake), spark=spark)
        out[f"{engine}_s"] = time.perf_counter() - t
        if not report.ok:
            raise SystemExit(str(report))
        out[f"{engine}_spans"] = lake_counts(lake)["spans"]
    return out


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the measurements; every figure the report prints comes from this dict."""
    from lumina_analytics.spark.session import spark_session

    t = time.perf_counter()
    spark = spark_session("local[2]", app_name="lumina-bench", shuffle_partitions=4)
    spark.range(4).repartition(2).count()
    results: dict[str, Any] = {
        "cores": os.cpu_count() or 1,
        "spark_startup_s": time.perf_counter() - t,
    }
    if not args.skip_forecast:
        t = time.perf_counter()
        bench_forecast(spark, 2)  # the first Python workers import Prophet: a one-off cost
        results["forecast_warmup_s"] = time.perf_counter() - t
        small = bench_forecast(spark, args.small_series)
        big = bench_forecast(spark, args.series)
        results["forecast"] = [small, big]
    if not args.skip_ingest:
        with tempfile.TemporaryDirectory(prefix="lumina-bench-spark-") as tmp:
            work = Path(tmp)
            landing = work / "lake-src" / "_landing"
            t = time.perf_counter()
            size = write_spans(landing, args.spans, args.files)
            gen = time.perf_counter() - t
            warm = work / "warm" / "_landing"
            write_spans(warm, 2_000, 2)
            t = time.perf_counter()
            bench_ingest(spark, warm, work / "warm")  # the first workers import the ingest code
            results["ingest_warmup_s"] = time.perf_counter() - t
            ing = bench_ingest(spark, landing, work)
        ing.update({"spans": args.spans, "files": args.files, "bytes": size, "generate_s": gen})
        results["ingest"] = ing
    spark.stop()
    return results


def report(results: dict[str, Any], nodes: int, node_cores: int, efficiency: float) -> None:
    """Print the tables, the payoff points and the cluster projection (markdown)."""
    cores = results["cores"]
    startup = results["spark_startup_s"]
    print(f"machine: {cores} cores (shared); Spark local[2] session start {startup:.1f}s")
    cluster = nodes * node_cores
    lines = []
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
        fixed = startup + results.get("ingest_warmup_s", 0.0)
        ten_m = 10_000_000
        ratio = ing["spark_s"] / ing["duckdb_s"]
        lines.append(
            f"- ingestion: Spark local[2] took {ratio:.2f}x the DuckDB engine's time on the same "
            "cores" + (", so it never pays off on this machine" if ratio >= 1 else "")
        )
        lines.append(
            f"- 10 million spans, scaled linearly from the {spans:,}-span run: DuckDB engine "
            f"{ten_m / duck / 60:.1f} min, Spark local[2] {(ten_m / (spark_core * cores) + fixed) / 60:.1f} "
            f"min, projected cluster {ten_m / rate + fixed:.0f}s"
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
    ap.add_argument("--files", type=int, default=16)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--node-cores", type=int, default=16)
    ap.add_argument("--efficiency", type=float, default=0.7)
    ap.add_argument("--skip-forecast", action="store_true")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--json", metavar="FILE", help="also write the measurements as JSON")
    ap.add_argument("--from-json", metavar="FILE", help="report saved measurements, run nothing")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
    else:
        results = measure(args)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    report(results, args.nodes, args.node_cores, args.efficiency)


if __name__ == "__main__":
    main()
