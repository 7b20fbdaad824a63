"""The ``lumina-analytics`` command.

Each module in this package owns one group of subcommands and exposes
``register(subparsers)``; it adds its parsers and sets ``func(args) -> int`` on each.
Modules are discovered automatically, so adding a command never edits this file.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from typing import Any

from lumina_analytics import __version__
from lumina_analytics.errors import LuminaError


class LazyModule:
    """A module imported on first attribute access, so ``--help`` never loads scipy or Prophet."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="lumina-analytics",
        description=(
            "Analytics workbench for LLM agent platforms: ingest telemetry into a DuckDB "
            "warehouse, then forecast, detect anomalies, compare providers and run reports."
        ),
        epilog="Run `lumina-analytics COMMAND --help` for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--warehouse",
        metavar="PATH",
        help="DuckDB warehouse file (default: $LUMINA_WAREHOUSE or data/lumina.duckdb)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "warehouse", None):
        os.environ["LUMINA_WAREHOUSE"] = os.path.abspath(args.warehouse)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except LuminaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # e.g. an unparseable date or number given as an option
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head/less that closed early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
