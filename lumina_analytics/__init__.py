"""Lumina Analytics: a notebook-driven analytics workbench for LLM agent platforms."""

from __future__ import annotations

from lumina_analytics.config import Settings, get_settings
from lumina_analytics.errors import (
    ConfigError,
    IngestError,
    LuminaError,
    SchemaError,
    WarehouseError,
    WarehouseLockedError,
    WarehouseMissingError,
)
from lumina_analytics.warehouse import Warehouse, query

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "IngestError",
    "LuminaError",
    "SchemaError",
    "Settings",
    "Warehouse",
    "WarehouseError",
    "WarehouseLockedError",
    "WarehouseMissingError",
    "__version__",
    "get_settings",
    "query",
]
