"""Paths and settings, resolved from the project root (never the current directory).

Precedence, lowest to highest: built-in defaults, ``LUMINA_*`` environment variables,
explicit arguments (CLI flags pass their values here).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from lumina_analytics.errors import ConfigError

_PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The project root: ``LUMINA_HOME`` if set, else the checkout that holds this package."""
    home = os.environ.get("LUMINA_HOME")
    if home:
        return Path(home).expanduser().resolve()
    candidate = _PACKAGE_DIR.parent
    if (candidate / "pyproject.toml").exists():
        return candidate
    return Path.home() / ".lumina"


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    val = raw.strip().lower()
    if val in {"1", "true", "yes", "on"}:
        return True
    if val in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"environment variable {name}={raw!r} is not a boolean; use true or false")


def _env_path(name: str, default: Path | None, root: Path) -> Path | None:
    raw = os.environ.get(name)
    if not raw:
        return default
    p = Path(raw).expanduser()
    return p if p.is_absolute() else (root / p)


@dataclass(frozen=True)
class Settings:
    """Effective settings of the workbench."""

    root: Path
    warehouse: Path
    data_dir: Path
    reports_dir: Path
    price_overrides: Path | None = None
    store_content: bool = False  # keep prompt/completion text (off: privacy by default)
    hash_user_ids: bool = False  # replace user ids with salted hashes at ingest
    user_id_salt: str = field(default="", repr=False)
    lock_timeout_s: float = 30.0  # how long readers wait for a writer to finish

    def with_overrides(self, **kwargs: object) -> Settings:
        """Return a copy with the given (non-None) values replaced."""
        clean = {k: v for k, v in kwargs.items() if v is not None}
        for key in ("warehouse", "data_dir", "reports_dir", "price_overrides"):
            if key in clean:
                p = Path(str(clean[key])).expanduser()
                clean[key] = p if p.is_absolute() else (Path.cwd() / p)
        return replace(self, **clean)  # type: ignore[arg-type]


def get_settings() -> Settings:
    """Settings from defaults and ``LUMINA_*`` environment variables."""
    root = project_root()
    data_dir = _env_path("LUMINA_DATA_DIR", root / "data", root)
    assert data_dir is not None
    warehouse = _env_path("LUMINA_WAREHOUSE", data_dir / "lumina.duckdb", root)
    assert warehouse is not None
    reports = _env_path("LUMINA_REPORTS_DIR", root / "reports", root)
    assert reports is not None
    overrides = _env_path("LUMINA_PRICE_OVERRIDES", None, root)
    try:
        lock_timeout = float(os.environ.get("LUMINA_LOCK_TIMEOUT_S", "30"))
    except ValueError as exc:
        raise ConfigError("LUMINA_LOCK_TIMEOUT_S must be a number of seconds") from exc
    return Settings(
        root=root,
        warehouse=warehouse,
        data_dir=data_dir,
        reports_dir=reports,
        price_overrides=overrides,
        store_content=_env_bool("LUMINA_STORE_CONTENT", False),
        hash_user_ids=_env_bool("LUMINA_HASH_USER_IDS", False),
        user_id_salt=os.environ.get("LUMINA_USER_ID_SALT", ""),
        lock_timeout_s=lock_timeout,
    )
