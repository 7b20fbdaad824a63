"""``lumina-analytics warehouse``: create and inspect the warehouse."""

from __future__ import annotations

import argparse
from typing import Any

from lumina_analytics.warehouse import SCHEMA_VERSION, Warehouse


def register(sub: Any) -> None:
    """Add the ``warehouse`` subcommands."""
    p = sub.add_parser("warehouse", help="create or inspect the DuckDB warehouse")
    wsub = p.add_subparsers(dest="warehouse_command", metavar="ACTION", required=True)
    init = wsub.add_parser("init", help="create the file and migrate it to the current schema")
    init.set_defaults(func=_init)
    info = wsub.add_parser("info", help="print the path, schema version and row counts")
    info.set_defaults(func=_info)


def _init(args: argparse.Namespace) -> int:
    wh = Warehouse()
    wh.init()
    print(f"warehouse {wh.path} at schema version {SCHEMA_VERSION}")
    return 0


def _info(args: argparse.Namespace) -> int:
    wh = Warehouse()
    print(f"warehouse: {wh.path}")
    print(f"schema version: {wh.schema_version()} (this workbench: {SCHEMA_VERSION})")
    for table, n in wh.table_counts().items():
        print(f"  {table:<14} {n:>12,}")
    return 0
