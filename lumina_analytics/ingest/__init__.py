"""Telemetry ingestion into the DuckDB warehouse, atomic and idempotent per file.

>>> from lumina_analytics.ingest import ingest_paths
>>> report = ingest_paths(["telemetry/"])   # doctest: +SKIP
>>> print(report)                           # doctest: +SKIP

Formats are detected from content (gzip unwrapped): OTLP/JSON traces, metrics and logs (one
document or JSON Lines) -> :mod:`.otlp`; Zipkin v2 JSON -> :mod:`.zipkin`; Prometheus text ->
:mod:`.prometheus`; CSV/Parquet named like a table, TrainTicket span CSVs or a YAML column
mapping -> :mod:`.tabular`. GenAI spans also become ``llm_calls`` rows (:mod:`.genai`), priced
with :mod:`lumina_analytics.pricing`.

Decisions (see each module for details):

* a file loads completely or not at all (one writer transaction; staging happens in a scratch
  DuckDB first, without the writer lock); identical content (sha256) is skipped; rows whose
  table key already exists are ignored, so overlapping files add no duplicates;
* record-level problems go to ``quarantine`` (file, position such as ``line 12`` /
  ``span 3 of line 2`` / ``row 7``, reason, raw text up to 64 KiB): invalid JSON lines, missing
  or invalid ids, bad or out-of-range timestamps, negative durations, unknown enum values
  (span kind, status code, log severity), duplicate keys within a file, CSV values that do not
  convert; the rest of the file loads;
* string attribute values over 64 KiB are truncated with a ``...[truncated N chars]`` marker
  (the record is kept);
* a file that cannot be parsed at all (truncated single document, non-UTF-8 text, unknown
  format, CSV header matching no table) fails with :class:`~lumina_analytics.errors.IngestError`
  ``path:position: problem``; it is logged as ``failed`` in ``ingest_log`` and nothing else of it
  is stored;
* privacy: with ``store_content`` off (default) prompt/completion content attributes are dropped
  before storing; with ``hash_user_ids`` on, ``llm_calls.user_id`` is ``sha256(salt + id)``.
"""

from __future__ import annotations

from lumina_analytics.ingest.detect import detect_format
from lumina_analytics.ingest.loader import FileResult, IngestReport, ingest_file, ingest_paths

__all__ = ["FileResult", "IngestReport", "detect_format", "ingest_file", "ingest_paths"]
