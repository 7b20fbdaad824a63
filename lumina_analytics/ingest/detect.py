"""Recognise a telemetry file's format from its content (gzip is unwrapped first).

Formats: ``otlp_traces``, ``otlp_metrics``, ``otlp_logs`` (one JSON document or JSON Lines),
``zipkin`` (Zipkin v2 JSON array), ``prometheus`` (text exposition), ``csv``, ``parquet``.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import IO, cast

from lumina_analytics.errors import IngestError, UnknownFormatError

HEAD_BYTES = 256 * 1024
_PROM_LINE = re.compile(
    r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?\s+[-+]?([0-9.eE+-]+|NaN|Inf|\+Inf|-Inf)(\s+-?\d+)?\s*$"
)


def is_gzip(path: Path) -> bool:
    """Whether the file starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def open_binary(path: Path) -> IO[bytes]:
    """Open a file for binary reading, transparently decompressing gzip."""
    if is_gzip(path):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return open(path, "rb")


def read_head(path: Path, n: int = HEAD_BYTES) -> bytes:
    """The first ``n`` (decompressed) bytes."""
    try:
        with open_binary(path) as f:
            return f.read(n)
    except (OSError, EOFError) as exc:
        raise IngestError(str(path), None, f"cannot read file: {exc}") from exc


def decode_text(path: Path, data: bytes, offset: int = 0, final: bool = True) -> str:
    """Decode UTF-8 (BOM tolerated) or raise :class:`IngestError` naming line and byte."""
    try:
        return data.decode("utf-8-sig" if offset == 0 else "utf-8")
    except UnicodeDecodeError as exc:
        if not final and exc.start >= len(data) - 4:
            # a multi-byte character cut by the read boundary
            return data[: exc.start].decode("utf-8-sig" if offset == 0 else "utf-8")
        line = data.count(b"\n", 0, exc.start) + 1
        raise IngestError(
            str(path),
            f"byte {offset + exc.start}",
            f"not UTF-8 text (invalid byte 0x{data[exc.start]:02x} in line {line}); "
            "re-encode the file as UTF-8",
        ) from exc


def detect_format(path: str | Path) -> str:
    """Return the format name of ``path`` or raise :class:`UnknownFormatError`."""
    p = Path(path)
    head = read_head(p)
    if head[:4] == b"PAR1":
        return "parquet"
    if not head.strip():
        raise UnknownFormatError(str(p), None, "file is empty")
    text = decode_text(p, head, final=len(head) < HEAD_BYTES)
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("{"):
        for key, fmt in (
            ('"resourceSpans"', "otlp_traces"),
            ('"resourceMetrics"', "otlp_metrics"),
            ('"resourceLogs"', "otlp_logs"),
        ):
            if key in stripped:
                return fmt
        raise UnknownFormatError(
            str(p),
            "line 1",
            "JSON object without resourceSpans/resourceMetrics/resourceLogs: not OTLP/JSON",
        )
    if stripped.startswith("["):
        if '"traceId"' in stripped and ('"id"' in stripped or stripped.strip() in ("[]",)):
            return "zipkin"
        if stripped.rstrip() == "[]":
            return "zipkin"
        raise UnknownFormatError(str(p), "line 1", "JSON array that is not a Zipkin v2 span list")
    lines = [ln for ln in stripped.splitlines()[:50] if ln.strip()]
    if lines and (
        lines[0].startswith("# HELP")
        or lines[0].startswith("# TYPE")
        or (
            all(ln.startswith("#") or _PROM_LINE.match(ln) for ln in lines[:-1] or lines)
            and any(_PROM_LINE.match(ln) for ln in lines)
        )
    ):
        return "prometheus"
    if lines and "," in lines[0]:
        return "csv"
    raise UnknownFormatError(
        str(p),
        None,
        "unknown format: expected OTLP/JSON, Zipkin v2 JSON, Prometheus text, CSV or Parquet",
    )
