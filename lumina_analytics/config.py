"""Paths and settings, resolved from the project root (never the current directory).

Precedence, lowest to highest:

1. built-in defaults (the dataclass below);
2. the environment file ``lumina_analytics/defaults/settings/<env>.yaml`` where ``<env>`` is
   ``LUMINA_ENV`` (``dev`` when unset; ``dev``, ``staging`` or ``prod``);
3. the file named by ``LUMINA_SETTINGS`` (a YAML mapping with the same keys);
4. ``LUMINA_*`` environment variables (``LUMINA_WAREHOUSE``, ``LUMINA_RETENTION_DAYS``...);
5. explicit arguments (CLI flags pass their values here, see :func:`resolve_settings`).

Files are validated with pydantic when loaded: an unknown key or a value of the wrong type
raises :class:`ConfigError` naming the file and the key. Relative paths in files and
variables are resolved from the project root. :func:`resolve_settings` also tells where each
value came from (``lumina-analytics config show``); secrets are masked by :func:`masked`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, StrictBool, ValidationError

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
    # -- added for operations (environment files, retention, backups) -----------------
    env: str = "dev"  # dev|staging|prod: which defaults/settings/<env>.yaml applied
    retention_days: int = 90  # raw spans/llm_calls older than this are deleted by `maintain`
    rollup_retention_days: int = 1825  # hourly/daily rollups are kept this long
    backup_dir: Path | None = None  # default target of `backup` (None: <data_dir>/backups)
    backup_keep: int = 7  # how many backups `backup --keep` / scheduled backups retain
    alert_webhook_url: str = field(default="", repr=False)  # secret: never printed unmasked
    # -- added for scale-out (Parquet lake, Spark engine) --------------------------------
    engine: str = "duckdb"  # duckdb|spark: which engine runs lake ingestion, rollups, fan-out
    lake: str = ""  # Parquet lake root: a folder or object-store URI ("": <data_dir>/lake)

    def with_overrides(self, **kwargs: object) -> Settings:
        """Return a copy with the given (non-None) values replaced."""
        clean = {k: v for k, v in kwargs.items() if v is not None}
        for key in ("warehouse", "data_dir", "reports_dir", "price_overrides", "backup_dir"):
            if key in clean:
                p = Path(str(clean[key])).expanduser()
                clean[key] = p if p.is_absolute() else (Path.cwd() / p)
        return replace(self, **clean)  # type: ignore[arg-type]


ENVIRONMENTS = ("dev", "staging", "prod")
SETTINGS_DIR = _PACKAGE_DIR / "defaults" / "settings"
#: Settings whose values are secrets: masked by ``config show`` and never written to backups.
SECRET_KEYS = frozenset({"user_id_salt", "alert_webhook_url"})
_PATH_KEYS = ("warehouse", "data_dir", "reports_dir", "price_overrides", "backup_dir")
#: Setting -> environment variable (every one read by :func:`get_settings`).
ENV_VARS: dict[str, str] = {
    "warehouse": "LUMINA_WAREHOUSE",
    "data_dir": "LUMINA_DATA_DIR",
    "reports_dir": "LUMINA_REPORTS_DIR",
    "price_overrides": "LUMINA_PRICE_OVERRIDES",
    "store_content": "LUMINA_STORE_CONTENT",
    "hash_user_ids": "LUMINA_HASH_USER_IDS",
    "user_id_salt": "LUMINA_USER_ID_SALT",
    "lock_timeout_s": "LUMINA_LOCK_TIMEOUT_S",
    "retention_days": "LUMINA_RETENTION_DAYS",
    "rollup_retention_days": "LUMINA_ROLLUP_RETENTION_DAYS",
    "backup_dir": "LUMINA_BACKUP_DIR",
    "backup_keep": "LUMINA_BACKUP_KEEP",
    "alert_webhook_url": "LUMINA_ALERT_WEBHOOK_URL",
    "engine": "LUMINA_ENGINE",
    "lake": "LUMINA_LAKE",
}
ENGINES = ("duckdb", "spark")


class SettingsFile(BaseModel):
    """Schema of a settings file (every key optional; unknown keys are an error)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    warehouse: str | None = None
    data_dir: str | None = None
    reports_dir: str | None = None
    price_overrides: str | None = None
    store_content: StrictBool | None = None
    hash_user_ids: StrictBool | None = None
    user_id_salt: str | None = None
    lock_timeout_s: float | None = None
    retention_days: int | None = None
    rollup_retention_days: int | None = None
    backup_dir: str | None = None
    backup_keep: int | None = None
    engine: Literal["duckdb", "spark"] | None = None
    lake: str | None = None


@dataclass(frozen=True)
class ResolvedSettings:
    """Effective settings plus, for each field, where its value came from."""

    settings: Settings
    sources: dict[str, str]
    files: tuple[Path, ...]


_FILE_CACHE: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}


def _load_file(path: Path) -> dict[str, Any]:
    """Read and validate one settings file (cached by mtime and size); errors name file and key."""
    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror or exc}") from None
    stamp = (st.st_mtime_ns, st.st_size)
    cached = _FILE_CACHE.get(path)
    if cached and cached[0] == stamp:
        return dict(cached[1])
    values = _parse_file(path)
    _FILE_CACHE[path] = (stamp, values)
    return dict(values)


def _parse_file(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"settings file {path} is not valid YAML: {exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"settings file {path} must be a mapping of key: value")
    if "alert_webhook_url" in doc:
        raise ConfigError(
            f"settings file {path}: key 'alert_webhook_url' is a secret and is read only from "
            "the LUMINA_ALERT_WEBHOOK_URL environment variable (a Kubernetes Secret); remove it"
        )
    try:
        model = SettingsFile.model_validate(doc)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "?"
            if err["type"] == "extra_forbidden":
                problems.append(
                    f"unknown key {key!r} (known keys: {', '.join(SettingsFile.model_fields)})"
                )
            else:
                problems.append(f"key {key!r}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError(f"settings file {path}: " + "; ".join(problems)) from None
    return model.model_dump(exclude_none=True)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not a whole number") from None


def _as_path(value: object, root: Path) -> Path:
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else (root / p)


def resolve_settings(
    env: str | None = None,
    settings_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> ResolvedSettings:
    """Layer defaults < env file < ``LUMINA_SETTINGS`` file < env vars < ``overrides``.

    ``env`` defaults to ``LUMINA_ENV`` (else ``dev``); ``settings_file`` to ``LUMINA_SETTINGS``.
    ``overrides`` are CLI flag values (None values are ignored).
    """
    root = project_root()
    env_name = env or os.environ.get("LUMINA_ENV") or "dev"
    if env_name not in ENVIRONMENTS:
        raise ConfigError(
            f"LUMINA_ENV={env_name!r} is not an environment; use one of {', '.join(ENVIRONMENTS)}"
        )
    values: dict[str, Any] = {}
    sources: dict[str, str] = {f.name: "default" for f in fields(Settings)}
    sources["env"] = "LUMINA_ENV" if (env is None and os.environ.get("LUMINA_ENV")) else "default"
    if env is not None:
        sources["env"] = "cli"
    files: list[Path] = []
    layer_files = [SETTINGS_DIR / f"{env_name}.yaml"]
    user_file = settings_file or os.environ.get("LUMINA_SETTINGS")
    if user_file:
        up = _as_path(user_file, root)
        if not up.is_file():
            raise ConfigError(f"settings file {up} (LUMINA_SETTINGS) does not exist")
        layer_files.append(up)
    for path in layer_files:
        if not path.is_file():
            continue
        files.append(path)
        for key, val in _load_file(path).items():
            values[key] = _as_path(val, root) if key in _PATH_KEYS else val
            sources[key] = f"file {path}"
    # environment variables (same parsing and messages as before files existed)
    for key, var in ENV_VARS.items():
        raw = os.environ.get(var)
        if raw is None or raw == "":
            continue
        if key in _PATH_KEYS:
            values[key] = _env_path(var, None, root)
        elif key in ("store_content", "hash_user_ids"):
            values[key] = _env_bool(var, False)
        elif key == "lock_timeout_s":
            try:
                values[key] = float(raw)
            except ValueError as exc:
                raise ConfigError("LUMINA_LOCK_TIMEOUT_S must be a number of seconds") from exc
        elif key in ("retention_days", "rollup_retention_days", "backup_keep"):
            values[key] = _env_int(var, 0)
        else:
            values[key] = raw
        sources[key] = f"env {var}"
    for key, val in (overrides or {}).items():
        if val is None:
            continue
        if key not in sources:
            raise ConfigError(f"unknown setting {key!r}")
        values[key] = _as_path(val, Path.cwd()) if key in _PATH_KEYS else val
        sources[key] = "cli"
    data_dir = values.get("data_dir", root / "data")
    if "warehouse" not in values:
        values["warehouse"] = data_dir / "lumina.duckdb"
        if sources["data_dir"] != "default":
            sources["warehouse"] = f"derived from data_dir ({sources['data_dir']})"
    values["data_dir"] = data_dir
    values.setdefault("reports_dir", root / "reports")
    if values.get("engine", "duckdb") not in ENGINES:
        raise ConfigError(
            f"engine must be one of {', '.join(ENGINES)}, got {values['engine']!r} "
            f"(from {sources['engine']})"
        )
    for key in ("retention_days", "rollup_retention_days", "backup_keep"):
        if key in values and int(values[key]) < 1:
            raise ConfigError(f"{key} must be at least 1 (from {sources[key]})")
    settings = Settings(root=root, env=env_name, **values)
    return ResolvedSettings(settings, sources, tuple(files))


def masked(key: str, value: object) -> str:
    """A printable value: secrets show only whether they are set."""
    if key in SECRET_KEYS:
        return "***" if value else "(unset)"
    return "(unset)" if value is None else str(value)


def get_settings() -> Settings:
    """Effective settings: defaults, environment file, ``LUMINA_SETTINGS``, ``LUMINA_*`` vars."""
    return resolve_settings().settings
