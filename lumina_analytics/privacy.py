"""Redaction of obvious secrets and personal data (emails, API keys, bearer tokens, ...).

Ingestion applies it to log bodies, log and span attributes and span status messages before
anything is stored, both in Python (:func:`redact`) and inside DuckDB (:func:`redact_sql`, the
same patterns as RE2 expressions), so the warehouse and its backups never hold them.
"""

from __future__ import annotations

import re
from typing import Any

#: (label, pattern): each match is replaced by ``[REDACTED:label]``. Patterns work in Python's
#: ``re`` and in DuckDB's RE2 alike. Order matters: specific tokens before generic ones.
PATTERNS: tuple[tuple[str, str], ...] = (
    ("jwt", r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ("bearer_token", r"(?i)bearer\s+[A-Za-z0-9._~+/=-]{8,}"),
    ("openai_key", r"sk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{16,}"),
    ("aws_access_key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("github_token", r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
    ("slack_token", r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    ("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}"),
    ("password", r"(?i)(?:password|passwd|pwd|secret|api[_-]?key)\s*[=:]\s*[^\s&\"',;]{4,}"),
    ("email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
)

_COMPILED = tuple((label, re.compile(p)) for label, p in PATTERNS)


def redact(text: str | None) -> str | None:
    """Replace every secret or personal datum in ``text`` with ``[REDACTED:kind]``."""
    if not text:
        return text
    for label, rx in _COMPILED:
        text = rx.sub(f"[REDACTED:{label}]", text)
    return text


def redact_values(value: Any) -> Any:
    """Redact every string inside a JSON-like value (dicts, lists, strings)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_values(v) for v in value]
    return value


def redact_sql(expr: str) -> str:
    """A DuckDB expression that redacts the VARCHAR expression ``expr`` with the same patterns."""
    out = expr
    for label, pattern in PATTERNS:
        quoted = pattern.replace("'", "''")
        out = f"regexp_replace({out}, '{quoted}', '[REDACTED:{label}]', 'g')"
    return out
