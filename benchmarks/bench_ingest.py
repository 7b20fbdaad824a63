"""Ingest throughput and peak memory: lumina ingest vs a plain json + pandas loader.

    .venv/bin/python benchmarks/bench_ingest.py [--sizes 20000 200000] [--spans-per-line 50]

Generates OTLP/JSON JSON Lines span files (about 40% GenAI chat spans, the rest plain server
and client spans, ~10 attributes each), then loads each file in a fresh subprocess:

* ``lumina``: ``ingest_paths`` into a new warehouse (parse, validate, llm_calls, pricing,
  dedupe, one transaction);
* ``baseline``: ``json.loads`` per line, attributes flattened in Python, one pandas DataFrame
  (it does not even write a database, so the comparison flatters it);
* ``ceiling``: the parse alone, no loader can do less: DuckDB's JSON reader (yyjson, every
  core) turns the lines into span rows (ids, name, kind, times, the raw attribute list) and
  counts them, with no validation, attribute flattening, GenAI extraction, pricing or storing.
  Its ratio to the baseline bounds the speed-up any loader built on it can reach here;
* ``store``: the write alone: span rows already parsed and flattened (by lumina, untimed) are
  inserted from memory into a new DuckDB file (no key index, one transaction) and checkpointed.
  Parse and store together bound a loader that parses and stores: ``1 / (1/parse + 1/store)``.

Each loader runs in its own subprocess, which imports its libraries (pandas; the lumina
package) before the clock starts, so the figures compare loading work, not interpreter start-up.
Peak memory is the subprocess's ``ru_maxrss``. Prints spans/s (wall clock and per CPU-second of
all threads), peak RSS and the speed ratio; on a shared machine read the CPU-second column too.
Lumina's memory is bounded by ``LUMINA_STAGE_MEMORY_LIMIT`` + ``LUMINA_COMMIT_MEMORY_LIMIT`` and
the chunk sizes, so its RSS levels off once a file fills them; the baseline holds every row.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _kv(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def generate(path: Path, n_spans: int, per_line: int, seed: int = 7) -> None:
    """Write ``n_spans`` spans as OTLP/JSON lines of ``per_line`` spans each."""
    rnd = random.Random(seed)
    t0 = 1_764_000_000_000_000_000
    models = [
        ("openai", "gpt-4o"),
        ("anthropic", "claude-3-5-sonnet-20241022"),
        ("gcp.gemini", "gemini-1.5-flash"),
        ("openai", "gpt-4o-mini"),
    ]
    with open(path, "w") as f:
        i = 0
        while i < n_spans:
            spans = []
            trace = f"{rnd.getrandbits(128):032x}"
            root = f"{rnd.getrandbits(64):016x}"
            for j in range(min(per_line, n_spans - i)):
                start = t0 + i * 3_000_000
                sid = root if j == 0 else f"{rnd.getrandbits(64):016x}"
                attrs = [
                    _kv("http.route", "/v1/agents/run"),
                    _kv("lumina.tenant.id", f"t{i % 13}"),
                    _kv("enduser.id", f"u{i % 997}"),
                ]
                name = "POST /v1/agents/run"
                if j % 5 in (1, 3):
                    prov, model = models[i % len(models)]
                    name = f"chat {model}"
                    attrs += [
                        _kv("gen_ai.operation.name", "chat"),
                        _kv("gen_ai.provider.name", prov),
                        _kv("gen_ai.request.model", model),
                        _kv("gen_ai.usage.input_tokens", rnd.randint(100, 8000)),
                        _kv("gen_ai.usage.output_tokens", rnd.randint(10, 800)),
                        _kv("gen_ai.usage.cache_read.input_tokens", rnd.randint(0, 50)),
                        _kv("lumina.time_to_first_token_ms", rnd.uniform(80, 900)),
                        _kv("gen_ai.agent.name", "planner"),
                    ]
                spans.append(
                    {
                        "traceId": trace,
                        "spanId": sid,
                        "parentSpanId": "" if j == 0 else root,
                        "name": name,
                        "kind": 2 if j == 0 else 3,
                        "startTimeUnixNano": str(start),
                        "endTimeUnixNano": str(start + rnd.randint(10**6, 10**9)),
                        "attributes": attrs,
                        "status": {"code": 1},
                    }
                )
                i += 1
            doc = {
                "resourceSpans": [
                    {
                        "resource": {
                            "attributes": [
                                _kv("service.name", "agent-api"),
                                _kv("service.version", "1.2.3"),
                                _kv("cloud.region", "eu-west-1"),
                            ]
                        },
                        "scopeSpans": [{"scope": {"name": "lumina"}, "spans": spans}],
                    }
                ]
            }
            f.write(json.dumps(doc, separators=(",", ":")) + "\n")


def _any(v: dict[str, Any]) -> Any:
    for k in ("stringValue", "boolValue", "doubleValue", "bytesValue"):
        if k in v:
            return v[k]
    if "intValue" in v:
        return int(v["intValue"])
    if "arrayValue" in v:
        return [_any(x) for x in v["arrayValue"].get("values", [])]
    if "kvlistValue" in v:
        return {x["key"]: _any(x["value"]) for x in v["kvlistValue"].get("values", [])}
    return None


def baseline(path: Path) -> int:
    """Plain-Python json + pandas loader."""
    import pandas as pd

    rows = []
    with open(path) as f:
        for line in f:
            doc = json.loads(line)
            for rs in doc.get("resourceSpans", []):
                res = {
                    a["key"]: _any(a["value"]) for a in rs.get("resource", {}).get("attributes", [])
                }
                for ss in rs.get("scopeSpans", []):
                    for s in ss.get("spans", []):
                        st, et = int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"])
                        attrs = {a["key"]: _any(a["value"]) for a in s.get("attributes", [])}
                        rows.append(
                            {
                                "trace_id": s["traceId"].lower(),
                                "span_id": s["spanId"].lower(),
                                "parent_span_id": s.get("parentSpanId") or None,
                                "name": s.get("name"),
                                "kind": s.get("kind"),
                                "service": res.get("service.name"),
                                "start_ts": st,
                                "end_ts": et,
                                "duration_ms": (et - st) / 1e6,
                                "attributes": json.dumps(attrs),
                                "resource": json.dumps(res),
                            }
                        )
    frame = pd.DataFrame(rows)
    frame["start_ts"] = pd.to_datetime(frame["start_ts"], unit="ns")
    frame["end_ts"] = pd.to_datetime(frame["end_ts"], unit="ns")
    return len(frame)


def lumina(path: Path, workdir: Path) -> int:
    """lumina ingest into a fresh warehouse."""
    from lumina_analytics.ingest import ingest_paths

    report = ingest_paths([path], str(workdir / f"bench-{os.getpid()}.duckdb"), progress=False)
    if not report.ok:
        raise SystemExit(str(report))
    return report.files[0].rows_loaded.get("spans", 0)


def ceiling(path: Path) -> int:
    """Parse-only ceiling: OTLP lines to span rows in DuckDB, nothing else."""
    import duckdb

    from lumina_analytics.ingest.otlp import _TRACES_DOC

    con = duckdb.connect()
    sql = f"""
        SELECT count(*) FROM (
          SELECT sp.traceId, sp.spanId, sp.parentSpanId, sp.name, sp.kind,
                 sp.startTimeUnixNano, sp.endTimeUnixNano, sp.attributes
          FROM (SELECT unnest(ss.spans) AS sp
                FROM (SELECT unnest(rs.scopeSpans) AS ss
                      FROM (SELECT unnest(from_json(json, '{_TRACES_DOC}').resourceSpans) AS rs
                            FROM read_ndjson_objects(?)))))
    """
    return int(con.execute(sql, [str(path)]).fetchall()[0][0])


def prepare_store(path: Path, workdir: Path) -> Callable[[], int]:
    """Store-only ceiling: parse the spans untimed; the returned call times the DuckDB write."""
    import duckdb

    from lumina_analytics.config import get_settings
    from lumina_analytics.ingest.loader import parse_file
    from lumina_analytics.ingest.stage import Stage
    from lumina_analytics.schema import SPANS

    stage = Stage(str(path), "")
    parse_file(path, stage, get_settings(), None)
    cols = ", ".join(f'"{c}"' for c in SPANS.column_names)
    rows = stage.con.sql(f"SELECT {cols} FROM stage_spans").to_arrow_table()
    stage.close()
    ddl = SPANS.ddl(keyed=False)

    def store() -> int:
        con = duckdb.connect(str(workdir / f"store-{os.getpid()}.duckdb"))
        con.execute(ddl)
        con.register("_rows", rows)
        con.execute(f"INSERT INTO spans SELECT {cols} FROM _rows")
        con.execute("CHECKPOINT")
        con.close()
        return int(rows.num_rows)

    return store


def _worker(kind: str, path: str, workdir: str) -> None:
    # imports are not part of a loader's throughput: both load their libraries first
    import pandas  # noqa: F401

    if kind != "baseline":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        import duckdb  # noqa: F401

        import lumina_analytics.ingest  # noqa: F401
    loaders = {
        "baseline": lambda: baseline(Path(path)),
        "ceiling": lambda: ceiling(Path(path)),
        "lumina": lambda: lumina(Path(path), Path(workdir)),
    }
    load = prepare_store(Path(path), Path(workdir)) if kind == "store" else loaders[kind]
    t = time.perf_counter()
    c = time.process_time()
    n = load()
    secs = time.perf_counter() - t
    cpu = time.process_time() - c
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"spans": n, "seconds": secs, "cpu": cpu, "rss_mb": rss_mb}))


def _run(kind: str, path: Path, workdir: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", kind, str(path), str(workdir)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    ap.add_argument("--spans-per-line", type=int, default=50)
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(*args.worker)
        return
    with tempfile.TemporaryDirectory(prefix="lumina-bench-") as tmp:
        work = Path(tmp)
        rows = []
        for n in args.sizes:
            f = work / f"spans_{n}.jsonl"
            generate(f, n, args.spans_per_line)
            mb = f.stat().st_size / 1e6
            base = _run("baseline", f, work)
            ours = _run("lumina", f, work)
            top = _run("ceiling", f, work)
            write = _run("store", f, work)
            rows.append((n, mb, base, ours, top, write))
        print(
            f"{'spans':>9} {'file MB':>8} {'baseline sp/s':>14} {'lumina sp/s':>12} "
            f"{'speedup':>8} {'parse sp/s':>11} {'store sp/s':>11} {'ceiling':>8} "
            f"{'base sp/cpu-s':>14} {'lumina sp/cpu-s':>16} {'base RSS MB':>12} "
            f"{'lumina RSS MB':>14}"
        )
        for n, mb, base, ours, top, write in rows:
            b_rate = base["spans"] / base["seconds"]
            o_rate = ours["spans"] / ours["seconds"]
            p_rate = top["spans"] / top["seconds"]
            s_rate = write["spans"] / write["seconds"]
            both = 1.0 / (1.0 / p_rate + 1.0 / s_rate)
            print(
                f"{n:>9,} {mb:>8.1f} {b_rate:>14,.0f} {o_rate:>12,.0f} {o_rate / b_rate:>7.1f}x "
                f"{p_rate:>11,.0f} {s_rate:>11,.0f} {both / b_rate:>7.1f}x "
                f"{base['spans'] / base['cpu']:>14,.0f} {ours['spans'] / ours['cpu']:>16,.0f} "
                f"{base['rss_mb']:>12.0f} {ours['rss_mb']:>14.0f}"
            )
        print("speedup: lumina / baseline. ceiling: 1 / (1/parse + 1/store) over the baseline, the")
        print(
            "most a loader that parses with DuckDB's JSON reader and stores in DuckDB reaches here"
        )
        print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
