"""Critical paths per second on a million synthetic spans, vs a naive per-trace recursion.

Run: .venv/bin/python benchmarks/bench_traces.py [--spans 1000000] [--naive-traces 2000]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np
import pandas as pd

from lumina_analytics.traces import analyze_traces, synthetic_spans


def naive_critical_paths(spans: pd.DataFrame) -> dict[str, list[str]]:
    """Baseline: a Python dict-of-children tree per trace and Jaeger's recursive walk."""
    out: dict[str, list[str]] = {}
    start = spans["start_ts"].astype("int64").to_numpy() / 1e6
    end = spans["end_ts"].astype("int64").to_numpy() / 1e6
    ids = spans["span_id"].to_numpy(dtype=object)
    pids = spans["parent_span_id"].to_numpy(dtype=object)
    for tid, idx in spans.groupby("trace_id", sort=False).indices.items():
        sid, pid = ids[idx], pids[idx]
        pos = {s: i for i, s in zip(idx, sid, strict=True)}
        kids: dict[object, list[int]] = defaultdict(list)
        roots = []
        for i, p in zip(idx, pid, strict=True):
            if p in pos:
                kids[pos[p]].append(i)
            else:
                roots.append(i)
        root = max(roots, key=lambda i: end[i] - start[i])
        path: list[str] = []

        def walk(
            i: int,
            lo: float,
            hi: float,
            path: list[str] = path,
            kids: dict[object, list[int]] = kids,
        ) -> None:
            path.append(ids[i])
            cursor = min(end[i], hi)
            for c in sorted(kids[i], key=lambda c: end[c], reverse=True):
                ce = min(end[c], cursor)
                if end[c] <= cursor and ce > max(start[c], lo):
                    walk(c, max(start[c], start[i]), ce)
                    cursor = max(start[c], start[i])

        walk(root, start[root], end[root])
        out[tid] = path
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--spans", type=int, default=1_000_000)
    ap.add_argument("--naive-traces", type=int, default=2000)
    args = ap.parse_args()
    n_traces = max(1, args.spans // 19)
    t = time.perf_counter()
    spans = synthetic_spans(n_traces, seed=1, with_attributes=False)
    gen_s = time.perf_counter() - t
    t = time.perf_counter()
    a = analyze_traces(spans)
    vec_s = time.perf_counter() - t
    traces = spans["trace_id"].nunique()
    print(f"spans: {len(spans):,}  traces: {traces:,}  (generated in {gen_s:.1f}s)")
    print(
        f"vectorised analyze_traces: {vec_s:.2f}s -> {traces / vec_s:,.0f} critical paths/s, {len(spans) / vec_s:,.0f} spans/s"
    )

    sub_ids = spans["trace_id"].drop_duplicates().iloc[: args.naive_traces]
    sub = spans[spans["trace_id"].isin(sub_ids)].reset_index(drop=True)
    t = time.perf_counter()
    naive = naive_critical_paths(sub)
    naive_s = time.perf_counter() - t
    naive_rate = len(naive) / naive_s
    print(
        f"naive per-trace recursion on {len(naive):,} traces: {naive_s:.2f}s -> {naive_rate:,.0f} critical paths/s"
    )
    print(f"speed-up: x{(traces / vec_s) / naive_rate:,.1f}")
    # agreement on the subset (same critical span sets)
    asub = a[a["trace_id"].isin(sub_ids)]
    vec_sets = asub[asub["on_critical_path"]].groupby("trace_id")["span_id"].apply(set)
    agree = np.mean([vec_sets.get(k, set()) == set(v) for k, v in naive.items()])
    print(f"agreement with the naive critical path on the subset: {agree:.1%}")


if __name__ == "__main__":
    main()
