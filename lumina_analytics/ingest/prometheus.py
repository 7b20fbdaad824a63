"""Prometheus text exposition -> metrics, via ``prometheus_client.parser``.

Samples without a timestamp get the file's modification time (UTC): a scrape saved to a file
is stamped when it was written. Label sets become canonical JSON (keys sorted). NaN values are
kept as NULL-free doubles (DuckDB stores NaN). The file is parsed whole (exposition files are
small).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from lumina_analytics.errors import IngestError
from lumina_analytics.ingest.detect import decode_text, open_binary
from lumina_analytics.ingest.stage import Stage


def read_prometheus(
    path: Path, stage: Stage, on_bytes: Callable[[int], None] | None = None
) -> None:
    """Stage the samples of a Prometheus text file."""
    from prometheus_client.parser import text_string_to_metric_families

    with open_binary(path) as f:
        data = f.read()
    if on_bytes is not None:
        on_bytes(len(data))
    text = decode_text(path, data)
    mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)
    rows: list[dict[str, Any]] = []
    try:
        for fam in text_string_to_metric_families(text):
            for i, s in enumerate(fam.samples, start=1):
                ts = mtime
                if s.timestamp is not None:
                    ts = datetime.fromtimestamp(float(s.timestamp), UTC).replace(tzinfo=None)
                rows.append(
                    {
                        "ts": ts,
                        "name": s.name,
                        "labels": json.dumps(dict(s.labels), sort_keys=True, separators=(",", ":")),
                        "value": float(s.value),
                        "_pos": f"sample {i} of {fam.name}",
                    }
                )
    except (ValueError, TypeError, IndexError) as exc:
        raise IngestError(str(path), None, f"not valid Prometheus text exposition: {exc}") from exc
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["ts"] = pd.to_datetime(frame["ts"])
    stage.append("metrics", frame)
