"""One exception hierarchy. Every message says what went wrong and what to do next."""

from __future__ import annotations


class LuminaError(Exception):
    """Root of every error the workbench raises on purpose."""


class ConfigError(LuminaError):
    """A setting is missing, of the wrong type or unknown."""


class WarehouseError(LuminaError):
    """The DuckDB warehouse cannot be opened, read or written."""


class WarehouseLockedError(WarehouseError):
    """Another process holds the warehouse's writer lock."""


class WarehouseMissingError(WarehouseError):
    """The warehouse file does not exist yet."""


class SchemaError(LuminaError):
    """A frame or table does not have the columns or types the data model needs."""


class IngestError(LuminaError):
    """A source file cannot be loaded; nothing from it was stored.

    Carries the file, the position (``line 12``, ``byte 345``, ``row 7``) and the problem,
    so the one-line message is enough to go and fix the file.
    """

    def __init__(self, path: str, position: str | None, problem: str) -> None:
        self.path = str(path)
        self.position = position
        self.problem = problem
        where = f"{self.path}:{position}" if position else self.path
        super().__init__(f"{where}: {problem}")


class UnknownFormatError(IngestError):
    """The file's format could not be recognised."""


class PricingError(LuminaError):
    """A price override file is malformed."""
