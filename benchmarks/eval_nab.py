"""NAB-style evaluation table of one or more detectors on a NAB folder.

    .venv/bin/python benchmarks/eval_nab.py [--data ../shared/data/nab] [--detector ensemble zscore]
    .venv/bin/python benchmarks/eval_nab.py --detector ensemble --halves

The same table as ``lumina-analytics anomaly nab``; prints wall time per detector too.
``--halves`` also scores the even- and odd-indexed files (sorted by name) on their own, each
with its own corpus threshold: a change that is real should help both halves. ``--folds K``
scores K random disjoint parts of the files, ``--repeats`` times, each part with its own
threshold, and prints the spread of the standard score (a leave-files-out check: compare two
detectors, or two versions of one, by these per-part scores rather than by the total).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from lumina_analytics.anomaly import DETECTORS, score_values
from lumina_analytics.nab import default_data_dir, load_corpus, score_corpus

DEFAULT = default_data_dir() or Path("../shared/data/nab")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=str(DEFAULT))
    ap.add_argument(
        "--detector", nargs="+", default=["ensemble", "zscore"], choices=sorted(DETECTORS)
    )
    ap.add_argument("--halves", action="store_true", help="also score even/odd files apart")
    ap.add_argument("--folds", type=int, default=0, help="also score K random parts of the files")
    ap.add_argument("--repeats", type=int, default=20, help="random splits for --folds")
    args = ap.parse_args()
    frames, windows, profiles = load_corpus(args.data)
    names = sorted(frames)
    for name in args.detector:
        t0 = time.perf_counter()
        files = {
            n: (frames[n]["timestamp"], score_values(frames[n]["value"].to_numpy(), name))
            for n in names
        }
        res = score_corpus(files, windows, profiles)
        print(f"== {name} ({time.perf_counter() - t0:.1f} s incl. scoring)")
        print(res.table.round(1).to_string())
        print("thresholds:", {k: round(v, 4) for k, v in res.thresholds.items()})
        if args.halves:
            for label, part in (("even", names[0::2]), ("odd", names[1::2])):
                sub = score_corpus({n: files[n] for n in part}, windows, profiles)
                row = np.round(sub.table.loc["ALL"].to_numpy(dtype=float), 1).tolist()
                scores = dict(zip(sub.table.columns, row, strict=True))
                print(f"{label} half ({len(part)} files) ALL {scores}")
        if args.folds > 1:
            rng = np.random.default_rng(0)  # the same splits for every detector
            parts = []
            for _ in range(args.repeats):
                for part in np.array_split(rng.permutation(names), args.folds):
                    sub = score_corpus({str(n): files[str(n)] for n in part}, windows, profiles)
                    parts.append(float(sub.table.loc["ALL", "standard"]))
            q = np.percentile(parts, [0, 25, 50, 75, 100]).round(1).tolist()
            print(
                f"{args.repeats} x {args.folds} random parts, standard score: mean "
                f"{np.mean(parts):.1f}, min/q1/median/q3/max {q}"
            )


if __name__ == "__main__":
    main()
