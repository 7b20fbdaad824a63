"""Self-contained HTML from an executed notebook: no code cells, charts inline, no CDN."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat
from nbconvert.filters import markdown2html

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_REMOTE = re.compile(
    r"""<(script|link)\b[^>]*(src|href)\s*=\s*["']https?://[^>]*>(\s*</script>)?""", re.I
)

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1f2933;background:#f7f8fa}
main{max-width:1100px;margin:0 auto;padding:24px 32px;background:#fff;min-height:100vh}
header.meta{border-bottom:1px solid #e4e7eb;margin-bottom:16px;padding-bottom:8px;color:#52606d;font-size:13px}
header.meta code{background:#f0f2f5;padding:1px 4px;border-radius:3px}
.status-ok{color:#2f9e44;font-weight:600}.status-failed{color:#e03131;font-weight:600}
h1{font-size:26px}h2{font-size:20px;margin-top:28px}h3{font-size:16px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border-bottom:1px solid #e4e7eb;padding:4px 8px;text-align:right}
th{background:#f0f2f5}td:first-child,th:first-child{text-align:left}
pre{background:#f7f8fa;padding:8px;overflow-x:auto;font-size:12px}
.output{margin:8px 0;overflow-x:auto}.error{border-left:4px solid #e03131;padding-left:8px}
img,svg{max-width:100%;height:auto}
"""


def _output_html(out: Mapping[str, Any]) -> str:
    kind = out.get("output_type")
    if kind == "stream":
        if out.get("name") == "stderr":
            return ""  # warnings and progress bars are noise for readers
        return f"<pre>{html.escape(_ANSI.sub('', str(out.get('text', ''))))}</pre>"
    if kind == "error":
        return (
            f"<div class='error'><b>{html.escape(str(out.get('ename')))}</b>: "
            f"{html.escape(str(out.get('evalue')))}</div>"
        )
    data = out.get("data", {})
    if "image/svg+xml" in data:
        svg = data["image/svg+xml"]
        return svg if isinstance(svg, str) else "".join(svg)
    if "image/png" in data:
        return f"<img src='data:image/png;base64,{data['image/png'].strip()}'/>"
    if "text/html" in data:
        text = data["text/html"]
        text = text if isinstance(text, str) else "".join(text)
        return _REMOTE.sub("", text)
    if "text/markdown" in data:
        return str(markdown2html(data["text/markdown"]))
    if "text/plain" in data:
        return f"<pre>{html.escape(str(data['text/plain']))}</pre>"
    return ""


def notebook_to_html(
    nb_path: Path,
    html_path: Path,
    title: str,
    meta: Mapping[str, Any],
) -> Path:
    """Write ``html_path``: markdown and outputs of ``nb_path``, with a header of ``meta``."""
    nb = nbformat.read(str(nb_path), as_version=4)
    parts: list[str] = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "parameters" in tags or "injected-parameters" in tags or "remove" in tags:
            continue
        if cell.cell_type == "markdown":
            parts.append(str(markdown2html(cell.source)))
        elif cell.cell_type == "code":
            for out in cell.get("outputs", []):
                rendered = _output_html(out)
                if rendered:
                    parts.append(f"<div class='output'>{rendered}</div>")
    status = str(meta.get("status", "ok"))
    meta_rows = " · ".join(
        f"{html.escape(str(k))}: <code>{html.escape(str(v))}</code>"
        for k, v in meta.items()
        if k not in {"status", "params"}
    )
    params = meta.get("params") or {}
    param_text = ", ".join(f"{k}={v!r}" for k, v in dict(params).items()) or "defaults"
    doc = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body><main>"
        f"<header class='meta'>Lumina Analytics report · <span class='status-{html.escape(status)}'>"
        f"{html.escape(status)}</span> · {meta_rows}<br>parameters: <code>{html.escape(param_text)}</code>"
        "</header>" + "\n".join(parts) + "</main></body></html>"
    )
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(doc, encoding="utf-8")
    return html_path


def data_uri(path: Path, mime: str) -> str:
    """A file as a ``data:`` URI (for images embedded in index pages)."""
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"
