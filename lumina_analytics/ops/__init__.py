"""Operations: consistent backups and verified restores, retention, rollups, maintenance.

>>> from lumina_analytics.ops import backup, restore, maintain   # doctest: +SKIP
>>> result = backup("backups/", keep=7)                          # doctest: +SKIP
>>> restore(result.path)                                         # doctest: +SKIP
"""

from __future__ import annotations

from lumina_analytics.ops.backup import BackupResult, backup, list_backups, prune_backups
from lumina_analytics.ops.restore import RestoreResult, restore, verify_backup
from lumina_analytics.ops.retention import MaintainResult, apply_retention, maintain
from lumina_analytics.ops.rollups import (
    ROLLUP_DIMENSIONS,
    read_rollup,
    refresh_rollups,
    rollup_long,
)

__all__ = [
    "ROLLUP_DIMENSIONS",
    "BackupResult",
    "MaintainResult",
    "RestoreResult",
    "apply_retention",
    "backup",
    "list_backups",
    "maintain",
    "prune_backups",
    "read_rollup",
    "refresh_rollups",
    "restore",
    "rollup_long",
    "verify_backup",
]
