"""Zipkin v2 JSON (an array of spans) -> spans.

* Fragments of one span reported separately (same trace, id and ``shared`` flag) are merged.
* A ``shared`` (server-side) span that reuses its client's id gets a derived id
  (``sha256(trace/id/shared)[:16]``) and the client span as parent; children whose service
  is the server's are re-parented to it. So client and server halves both survive the
  ``(trace_id, span_id)`` key and the tree stays resolvable. ``zipkin.id`` keeps the original.
* 64-bit trace ids are left-padded to 32 hex chars; timestamps (microseconds) are kept as
  recorded, including clock skew. A span with neither timestamp nor annotations keeps a NULL
  start.
* The file is parsed whole with :func:`json.load` (Zipkin exports are single traces).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from lumina_analytics.errors import IngestError
from lumina_analytics.ingest.detect import decode_text, open_binary
from lumina_analytics.ingest.stage import Stage


def _hex(v: Any, width: int) -> str | None:
    if not isinstance(v, str) or not v:
        return None
    s = v.lower()
    try:
        int(s, 16)
    except ValueError:
        return None
    if len(s) > width:
        return None
    return s.rjust(width, "0")


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        if k == "tags":
            out["tags"] = {**(a.get("tags") or {}), **(v or {})}
        elif k == "annotations":
            out["annotations"] = list(a.get("annotations") or []) + list(v or [])
        elif out.get(k) is None:
            out[k] = v
    return out


def read_zipkin(
    path: Path,
    stage: Stage,
    drop_content: Callable[[dict[str, Any]], dict[str, Any]],
    on_bytes: Callable[[int], None] | None = None,
) -> None:
    """Stage spans from a Zipkin v2 JSON file."""
    with open_binary(path) as f:
        data = f.read()
    if on_bytes is not None:
        on_bytes(len(data))
    text = decode_text(path, data)
    try:
        doc = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise IngestError(
            str(path), f"line {line}" if line else None, f"not valid JSON: {exc}"
        ) from exc
    if not isinstance(doc, list):
        raise IngestError(str(path), None, "a Zipkin v2 file must be a JSON array of spans")

    merged: dict[tuple[str, str, bool], dict[str, Any]] = {}
    positions: dict[tuple[str, str, bool], str] = {}
    for i, sp in enumerate(doc, start=1):
        pos = f"span {i}"
        if not isinstance(sp, dict):
            stage.quarantine(pos, "span is not a JSON object", sp)
            continue
        tid, sid = _hex(sp.get("traceId"), 32), _hex(sp.get("id"), 16)
        if tid is None or sid is None:
            reason = "missing or invalid traceId" if tid is None else "missing or invalid id"
            stage.quarantine(pos, reason, sp)
            continue
        ts, dur = sp.get("timestamp"), sp.get("duration")
        if (ts is not None and not isinstance(ts, int | float)) or (
            dur is not None and not isinstance(dur, int | float)
        ):
            stage.quarantine(pos, "timestamp/duration must be numbers (microseconds)", sp)
            continue
        if isinstance(dur, int | float) and dur < 0:
            stage.quarantine(pos, f"negative duration {dur}", sp)
            continue
        key = (tid, sid, bool(sp.get("shared")))
        if key in merged:
            merged[key] = _merge(merged[key], sp)
        else:
            merged[key] = sp
            positions[key] = pos

    def service(sp: dict[str, Any]) -> str | None:
        return (sp.get("localEndpoint") or {}).get("serviceName")

    # derive ids for shared server halves that collide with their client half
    new_ids: dict[tuple[str, str], tuple[str, str | None]] = {}
    for tid, sid, shared in list(merged):
        if shared and (tid, sid, False) in merged:
            derived = hashlib.sha256(f"{tid}/{sid}/shared".encode()).hexdigest()[:16]
            new_ids[(tid, sid)] = (derived, service(merged[(tid, sid, True)]))

    rows: list[dict[str, Any]] = []
    for (tid, sid, shared), sp in merged.items():
        span_id = sid
        parent = _hex(sp.get("parentId"), 16)
        if shared and (tid, sid) in new_ids:
            span_id, parent = new_ids[(tid, sid)][0], sid
        elif parent is not None and (tid, parent) in new_ids:
            derived, server_service = new_ids[(tid, parent)]
            if service(sp) is not None and service(sp) == server_service:
                parent = derived
        ts = sp.get("timestamp")
        if ts is None and sp.get("annotations"):
            stamps: list[float] = [
                a["timestamp"]
                for a in sp["annotations"]
                if isinstance(a, dict) and isinstance(a.get("timestamp"), int | float)
            ]
            ts = min(stamps) if stamps else None
        dur = sp.get("duration")
        tags = {str(k): v for k, v in (sp.get("tags") or {}).items()}
        attrs: dict[str, Any] = dict(tags)
        remote = sp.get("remoteEndpoint") or {}
        if remote.get("serviceName"):
            attrs["peer.service"] = remote["serviceName"]
        if remote.get("ipv4") or remote.get("ipv6"):
            attrs["network.peer.address"] = remote.get("ipv4") or remote.get("ipv6")
        if sp.get("annotations"):
            attrs["zipkin.annotations"] = sp["annotations"]
        if span_id != sid:
            attrs["zipkin.id"] = sid
        if shared:
            attrs["zipkin.shared"] = True
        local = sp.get("localEndpoint") or {}
        resource = {
            k: v
            for k, v in {
                "service.name": local.get("serviceName"),
                "host.ip": local.get("ipv4") or local.get("ipv6"),
                "host.port": local.get("port"),
            }.items()
            if v is not None
        }
        is_error = "error" in tags
        start = pd.Timestamp(int(ts), unit="us") if ts is not None else None
        end = (
            start + pd.Timedelta(microseconds=int(dur))
            if start is not None and dur is not None
            else None
        )
        rows.append(
            {
                "trace_id": tid,
                "span_id": span_id,
                "parent_span_id": parent,
                "name": sp.get("name"),
                "kind": str(sp.get("kind") or "unspecified").lower(),
                "service": local.get("serviceName"),
                "start_ts": start,
                "end_ts": end,
                "duration_ms": float(dur) / 1000.0 if dur is not None else None,
                "status_code": "error" if is_error else "unset",
                "status_message": str(tags.get("error"))
                if is_error and tags.get("error")
                else None,
                "attributes": json.dumps(drop_content(attrs), default=str),
                "resource": json.dumps(resource, default=str),
                "_pos": positions[(tid, sid, shared)],
            }
        )
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["start_ts"] = pd.to_datetime(frame["start_ts"])
        frame["end_ts"] = pd.to_datetime(frame["end_ts"])
    stage.append("spans", frame)
