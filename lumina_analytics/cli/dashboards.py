"""``lumina-analytics dashboards``: serve the Voila dashboards on one port."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
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


def voila_command(host: str, port: int) -> list[str]:
    """The Voila command line that serves every dashboard."""
    voila = shutil.which("voila", path=str(Path(sys.executable).parent)) or "voila"
    return [
        voila,
        str(dashboards_dir()),
        "--no-browser",
        f"--port={port}",
        f"--Voila.ip={host}",
        "--show_tracebacks=False",
        "--theme=light",
        "--VoilaConfiguration.file_allowlist=[]",
    ]


def _serve(args: argparse.Namespace) -> int:
    if not dashboards_dir().is_dir():
        raise LuminaError(f"no dashboards folder at {dashboards_dir()}")
    cmd = voila_command(args.host, args.port)
    if args.dry_run:
        print(" ".join(cmd))
        return 0
    print(f"serving dashboards on http://{args.host}:{args.port}/  (Ctrl-C stops)", flush=True)
    env = dict(os.environ)
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 0


def _list(args: argparse.Namespace) -> int:
    for p in sorted(dashboards_dir().glob("*.ipynb")):
        print(f"{p.stem:<22} /voila/render/{p.name}")
    return 0
