"""Operations commands: ``backup``, ``restore``, ``maintain`` and ``config show``."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import fields
from typing import Any

from lumina_analytics.config import ENV_VARS, ENVIRONMENTS, Settings, masked, resolve_settings


def register(sub: Any) -> None:
    """Add the operations subcommands."""
    b = sub.add_parser(
        "backup",
        help="snapshot the warehouse (Parquet per table + manifest.json with sha256)",
        description="Reads through a read-only connection: dashboards keep working meanwhile.",
    )
    b.add_argument(
        "--to", metavar="DIR", help="backup folder (default: backup_dir setting or data/backups)"
    )
    b.add_argument("--keep", type=int, metavar="N", help="then delete all but the N newest backups")
    b.set_defaults(func=_backup)

    r = sub.add_parser(
        "restore",
        help="verify a backup's checksums, rebuild it into a new file and swap it in",
        description=(
            "Nothing is touched unless every checksum matches and the rebuilt file has the "
            "manifest's row counts; the previous file is kept as <warehouse>.pre-restore-<time>."
        ),
    )
    r.add_argument(
        "dir", metavar="DIR", help="one backup folder (lumina-<time>/ with manifest.json)"
    )
    r.add_argument(
        "--into", metavar="PATH", help="warehouse file to replace (default: the configured one)"
    )
    r.add_argument("--verify-only", action="store_true", help="check the backup and stop")
    r.set_defaults(func=_restore)

    m = sub.add_parser(
        "maintain",
        help="refresh hourly/daily rollups, apply raw-data retention, compact",
        description="Idempotent: re-running never double counts; rollups of deleted days are kept.",
    )
    m.add_argument(
        "--retention-days", type=int, metavar="N", help="keep raw spans/llm_calls N days"
    )
    m.add_argument("--rollup-retention-days", type=int, metavar="N", help="keep rollups N days")
    m.add_argument("--no-compact", action="store_true", help="skip VACUUM ANALYZE / CHECKPOINT")
    m.set_defaults(func=_maintain)

    c = sub.add_parser("config", help="show the effective settings and where each came from")
    csub = c.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = csub.add_parser(
        "show", help="print effective settings (secrets masked) and their sources"
    )
    show.add_argument(
        "--env",
        choices=ENVIRONMENTS,
        help="environment file to apply (default: $LUMINA_ENV or dev)",
    )
    show.add_argument(
        "--settings", metavar="FILE", help="settings file (default: $LUMINA_SETTINGS)"
    )
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.set_defaults(func=_config_show)


def _backup(args: argparse.Namespace) -> int:
    from lumina_analytics.ops.backup import backup

    result = backup(args.to, keep=args.keep)
    print(
        f"backup {result.path}: {result.total_rows:,} rows in {len(result.counts)} tables "
        f"(schema version {result.schema_version})"
    )
    for p in result.pruned:
        print(f"pruned {p}")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from lumina_analytics.ops.restore import restore, verify_backup

    if args.verify_only:
        manifest = verify_backup(args.dir)
        print(f"backup {args.dir} is complete: {len(manifest['tables'])} tables, checksums match")
        return 0
    result = restore(args.dir, into=args.into)
    print(f"restored {args.dir} into {result.path}: {sum(result.counts.values()):,} rows verified")
    if result.previous:
        print(f"previous warehouse kept as {result.previous} (delete it when satisfied)")
    return 0


def _maintain(args: argparse.Namespace) -> int:
    from lumina_analytics.ops.retention import maintain

    res = maintain(
        retention_days=args.retention_days,
        rollup_retention_days=args.rollup_retention_days,
        compact=not args.no_compact,
    )
    print(f"raw horizon {res.horizon:%Y-%m-%d} (older raw rows deleted)")
    for t, n in res.rollup_rows.items():
        print(f"  rollup {t:<18} {n:>10,} rows refreshed")
    for t, n in {**res.deleted_raw, **res.deleted_rollups}.items():
        print(f"  deleted {t:<17} {n:>10,} rows")
    print(f"file size {res.bytes_before:,} -> {res.bytes_after:,} bytes")
    return 0


def _config_show(args: argparse.Namespace) -> int:
    overrides: dict[str, object] = {}
    resolved = resolve_settings(env=args.env, settings_file=args.settings, overrides=overrides)
    sources = dict(resolved.sources)
    global_warehouse = getattr(args, "warehouse", None)
    if global_warehouse and os.environ.get("LUMINA_WAREHOUSE") == os.path.abspath(global_warehouse):
        sources["warehouse"] = "cli --warehouse"
    rows = []
    for f in fields(Settings):
        value = getattr(resolved.settings, f.name)
        rows.append((f.name, masked(f.name, value), sources.get(f.name, "default")))
    if args.json:
        print(json.dumps({k: {"value": v, "source": s} for k, v, s in rows}, indent=2))
        return 0
    width = max(len(k) for k, _, _ in rows)
    print(
        f"# environment: {resolved.settings.env}; files: "
        f"{', '.join(str(p) for p in resolved.files) or 'none'}"
    )
    for k, v, s in rows:
        var = ENV_VARS.get(k, "")
        print(f"{k:<{width}}  {v}  [{s}]" + (f"  (env var {var})" if var else ""))
    return 0
