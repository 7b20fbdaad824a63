"""``lumina-analytics dashboards``: serve the Voila dashboards on one port."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from lumina_analytics.config import get_settings
from lumina_analytics.errors import LuminaError


def register(sub: Any) -> None:
    """Add the ``dashboards`` subcommands."""
    p = sub.add_parser("dashboards", help="serve or list the Voila dashboards")
    dsub = p.add_subparsers(dest="dashboards_command", metavar="ACTION", required=True)
    serve = dsub.add_parser(
        "serve",
        help="serve every dashboard on one port (landing page at /)",
        description="Starts Voila on dashboards/ bound to 127.0.0.1; Ctrl-C stops it.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8866, help="port (default 8866)")
    serve.add_argument("--dry-run", action="store_true", help="print the Voila command and exit")
    serve.set_defaults(func=_serve)
    ls = dsub.add_parser("list", help="list the dashboards")
    ls.set_defaults(func=_list)


def dashboards_dir() -> Path:
    """The folder of dashboard notebooks."""
    return get_settings().root / "dashboards"


_CDN_LINK = re.compile(r"^.*<link[^>]+href=\"https?://[^>]*>.*$\n?", re.M)


#: The landing page (Voila's classic tree, server-rendered with real links).
LANDING_PAGE = """{% extends "page.html" %}
{% block title %}Lumina Analytics dashboards{% endblock %}
{% block stylesheets %}
  {{ super() }}
  <style>
    body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; background: #f7f8fa; }
    .lumina-landing { max-width: 860px; margin: 48px auto; }
    .lumina-landing h1 { font-size: 28px; margin-bottom: 4px; }
    .lumina-landing p { color: #52606d; }
    .lumina-cards { list-style: none; padding: 0; }
    .lumina-cards li { margin: 12px 0; }
    .lumina-cards a { display: block; padding: 16px 20px; background: #fff; border: 1px solid #e4e7eb;
                      border-radius: 8px; color: #1f2933; text-decoration: none; font-size: 18px; }
    .lumina-cards a:hover { border-color: #3b5bdb; }
  </style>
{% endblock %}
{% block body %}
  <div class="lumina-landing">
    <h1>Lumina Analytics</h1>
    <p>Dashboards over the Lumina warehouse. Each opens with the last week selected; the
       widgets at the top change dates, tenant, provider and model.</p>
    <ul class="lumina-cards">
    {% for content in contents.content | sort(attribute='name') %}
      {% if content.type == 'notebook' %}
        <li><a class="lumina-dashboard-link" href="{{ base_url }}{{ frontend }}/render/{{ content.path }}">
          {{ content.name | replace('.ipynb', '') | replace('-', ' ') | title }}</a></li>
      {% endif %}
    {% endfor %}
    </ul>
  </div>
{% endblock %}
"""


def prepare_template(dest: Path) -> Path:
    """Write the ``lumina`` Voila template: Voila's lab template without CDN stylesheets.

    Voila's lab template links Font Awesome from a CDN, which fails (and leaves the machine)
    offline. The template is derived from the installed Voila at serve time, so it always
    matches the pinned version. Returns the root to put on ``JUPYTER_PATH``.
    """
    import voila

    lab = (
        Path(voila.__file__).resolve().parents[4]
        / "share"
        / "jupyter"
        / "voila"
        / "templates"
        / "lab"
    )
    if not (lab / "index.html.j2").exists():  # installed elsewhere: search the jupyter paths
        from jupyter_core.paths import jupyter_path

        found = [Path(p) / "voila" / "templates" / "lab" for p in jupyter_path()]
        lab = next((p for p in found if (p / "index.html.j2").exists()), lab)
    if not (lab / "index.html.j2").exists():
        raise LuminaError("cannot find Voila's lab template; reinstall voila (make venv)")
    out = dest / "voila" / "templates" / "lumina"
    out.mkdir(parents=True, exist_ok=True)
    (out / "conf.json").write_text(json.dumps({"base_template": "lab"}))
    for folder in (lab.parent / "base", lab):  # lab files override base files of the same name
        for page in folder.glob("*.htm*"):
            text = _CDN_LINK.sub("", page.read_text())
            text = text.replace("voila/templates/base/page.html", "lumina_base_page.html")
            (out / page.name).write_text(text)
    base_page = (lab.parent / "base" / "page.html").read_text()
    (out / "lumina_base_page.html").write_text(_CDN_LINK.sub("", base_page))
    (out / "tree.html").write_text(LANDING_PAGE)
    return dest


def voila_command(host: str, port: int) -> list[str]:
    """The Voila command line that serves every dashboard."""
    voila = shutil.which("voila", path=str(Path(sys.executable).parent)) or "voila"
    return [
        voila,
        str(dashboards_dir()),
        "--template=lumina",
        "--VoilaConfiguration.classic_tree=True",
        "--no-browser",
        f"--port={port}",
        f"--Voila.ip={host}",
        "--show_tracebacks=False",
        "--theme=light",
    ]


def _serve(args: argparse.Namespace) -> int:
    if not dashboards_dir().is_dir():
        raise LuminaError(f"no dashboards folder at {dashboards_dir()}")
    cmd = voila_command(args.host, args.port)
    if args.dry_run:
        print(" ".join(cmd))
        return 0
    print(f"serving dashboards on http://{args.host}:{args.port}/  (Ctrl-C stops)", flush=True)
    env = voila_env()
    os.execvpe(cmd[0], cmd, env)  # become Voila: signals reach it directly, no orphaned child
    return 0  # pragma: no cover


def voila_env() -> dict[str, str]:
    """Environment for Voila: the ``lumina`` template on ``JUPYTER_PATH``."""
    root = prepare_template(get_settings().data_dir / ".voila")
    env = dict(os.environ)
    env["LUMINA_CHART_RENDERER"] = "jupyter"  # interactive, Vega bundled: no CDN
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(root), env.get("JUPYTER_PATH", "")) if p)
    return env


def _list(args: argparse.Namespace) -> int:
    for p in sorted(dashboards_dir().glob("*.ipynb")):
        print(f"{p.stem:<22} /voila/render/{p.name}")
    return 0
