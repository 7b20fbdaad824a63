"""The catalog of report notebooks and their typed parameters, read from each ``parameters`` cell."""

from __future__ import annotations

import ast
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import yaml

from lumina_analytics.config import get_settings
from lumina_analytics.errors import LuminaError


class ReportError(LuminaError):
    """A report name or parameter is wrong, or a report failed."""


_NONE_WORDS = {"none", "null", ""}


@dataclass(frozen=True)
class Param:
    """One notebook parameter: name, declared type (as written), default and help text."""

    name: str
    type_name: str
    default: Any
    help: str = ""

    @property
    def optional(self) -> bool:
        """Whether ``None`` is an allowed value."""
        t = self.type_name.replace(" ", "")
        return "None" in t.split("|") or t.startswith("Optional[") or self.default is None

    @property
    def base_type(self) -> str:
        """The declared type without ``| None``/``Optional``: int, float, bool, str, list, dict."""
        t = self.type_name.replace(" ", "")
        t = re.sub(r"^Optional\[(.*)\]$", r"\1", t)
        parts = [p for p in t.split("|") if p != "None"]
        base = (parts[0] if parts else "str").split("[")[0].lower()
        if base in {"int", "float", "bool", "str", "list", "dict", "tuple"}:
            return "list" if base == "tuple" else base
        if base in {"none", ""}:
            return _infer(self.default)
        return "str"

    def coerce(self, value: Any) -> Any:
        """Convert a CLI string (or YAML value) to the declared type, or raise :class:`ReportError`."""
        base = self.base_type
        if value is None or (
            isinstance(value, str) and value.strip().lower() in _NONE_WORDS and base != "str"
        ):
            if self.optional:
                return None
            raise ReportError(f"parameter {self.name!r} ({self.type_name}) may not be None")
        try:
            if base == "int":
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError
                return int(value)
            if base == "float":
                if isinstance(value, bool):
                    raise ValueError
                return float(value)
            if base == "bool":
                if isinstance(value, bool):
                    return value
                word = str(value).strip().lower()
                if word in {"true", "1", "yes", "on"}:
                    return True
                if word in {"false", "0", "no", "off"}:
                    return False
                raise ValueError
            if base == "list":
                if isinstance(value, list | tuple):
                    return list(value)
                text = str(value).strip()
                if text.startswith("["):
                    parsed = yaml.safe_load(text)
                    if not isinstance(parsed, list):
                        raise ValueError
                    return parsed
                return [v.strip() for v in text.split(",") if v.strip()]
            if base == "dict":
                if isinstance(value, dict):
                    return value
                parsed = yaml.safe_load(str(value))
                if not isinstance(parsed, dict):
                    raise ValueError
                return parsed
            if not isinstance(value, str | int | float):
                raise ValueError
            return str(value)
        except (ValueError, TypeError, yaml.YAMLError):
            raise ReportError(
                f"parameter {self.name!r} expects {self.type_name}, got {value!r}"
            ) from None


def _infer(default: Any) -> str:
    for typ, name in (
        (bool, "bool"),
        (int, "int"),
        (float, "float"),
        (list, "list"),
        (dict, "dict"),
    ):
        if isinstance(default, typ):
            return name
    return "str"


@dataclass(frozen=True)
class ReportSpec:
    """A report notebook: name (file stem), path, title, description and parameters."""

    name: str
    path: Path
    title: str
    description: str
    params: dict[str, Param] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description."""
        return {
            "name": self.name,
            "path": str(self.path),
            "title": self.title,
            "description": self.description,
            "params": {
                p.name: {"type": p.type_name, "default": p.default, "help": p.help}
                for p in self.params.values()
            },
        }


def notebooks_dir() -> Path:
    """Folder of the report notebooks (``notebooks/`` under the project root, or LUMINA_NOTEBOOKS_DIR)."""
    override = os.environ.get("LUMINA_NOTEBOOKS_DIR")
    return Path(override) if override else get_settings().root / "notebooks"


def parse_parameters(source: str, path: Path | str = "<cell>") -> dict[str, Param]:
    """Typed parameters of a ``parameters`` cell: ``name: type = literal  # help``."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ReportError(f"{path}: parameters cell line {exc.lineno}: {exc.msg}") from None
    lines = source.splitlines()
    params: dict[str, Param] = {}
    for node in tree.body:
        value: ast.expr | None
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name, type_name, value = node.target.id, ast.unparse(node.annotation), node.value
        elif (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            name, type_name, value = node.targets[0].id, "", node.value
        else:
            continue
        try:
            default = ast.literal_eval(value) if value is not None else None
        except ValueError:
            raise ReportError(
                f"{path}: parameters cell line {node.lineno}: default of {name!r} must be a literal"
            ) from None
        span = lines[node.lineno - 1 : (node.end_lineno or node.lineno)]
        helptext = next((ln.split("#", 1)[1].strip() for ln in span if "#" in ln), "")
        params[name] = Param(name, type_name or _infer(default), default, helptext)
    return params


def read_spec(path: Path) -> ReportSpec:
    """Read one notebook's title, description and typed parameters."""
    nb = nbformat.read(str(path), as_version=4)
    title, description = path.stem.replace("_", " ").title(), ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            lines = [ln.strip() for ln in cell.source.splitlines() if ln.strip()]
            if lines and lines[0].startswith("#"):
                title = lines[0].lstrip("#").strip()
                description = " ".join(ln for ln in lines[1:3] if not ln.startswith("#"))
            break
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        raise ReportError(f"{path}: no cell tagged 'parameters'; tag the parameters cell")
    source = next(
        c.source for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])
    )
    params = parse_parameters(source, path)
    return ReportSpec(
        name=path.stem, path=path, title=title, description=description, params=params
    )


def catalog(folder: Path | None = None) -> dict[str, ReportSpec]:
    """Every notebook in ``notebooks/`` with its parameters, by name."""
    base = folder or notebooks_dir()
    if not base.is_dir():
        raise ReportError(f"no notebooks folder at {base}")
    return {p.stem: read_spec(p) for p in sorted(base.glob("*.ipynb"))}


def validate_params(spec: ReportSpec, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check names and coerce values to their declared types before anything runs."""
    unknown = [k for k in raw if k not in spec.params]
    if unknown:
        known = ", ".join(sorted(spec.params)) or "(none)"
        raise ReportError(f"report {spec.name!r} has no parameter {unknown[0]!r}; known: {known}")
    return {k: spec.params[k].coerce(v) for k, v in raw.items()}


def params_json(params: Mapping[str, Any]) -> str:
    """Compact, stable JSON of parameters for manifests and the index."""
    return json.dumps(dict(params), sort_keys=True, default=str)
