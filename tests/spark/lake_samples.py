"""Sample rows and lake surgery shared by the lake tests of both engines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from lumina_analytics.lake import LAKE_TABLES, MANIFEST

#: tenants whose folder names DuckDB and Spark would spell differently without canonicalising
ODD_TENANTS = ["acme", None, "", "a/b", "ü", "sp ace", "x=y", "_x", "123"]
#: the folder each gets: Hive/Spark escaping; NULL and '' share Hive's NULL folder
ODD_FOLDERS = {
    "tenant=acme",
    "tenant=__HIVE_DEFAULT_PARTITION__",
    "tenant=a%2Fb",
    "tenant=ü",
    "tenant=sp ace",
    "tenant=x%3Dy",
    "tenant=_x",
    "tenant=123",
}


def odd_calls() -> pd.DataFrame:
    """One priced call per odd tenant on 2026-10-02."""
    n = len(ODD_TENANTS)
    return pd.DataFrame(
        {
            "ts": pd.date_range("2026-10-02 01:00", periods=n, freq="1min"),
            "trace_id": [f"{i:032x}" for i in range(n)],
            "span_id": [f"{i:016x}" for i in range(n)],
            "provider": "openai",
            "tenant": ODD_TENANTS,
            "cost_usd": [0.5 * (i + 1) for i in range(n)],
        }
    )


def tenant_folders(lake: Path, table: str = "llm_calls") -> set[str]:
    """Names of the folders holding ``table``'s Parquet files (``tenant=...`` when by tenant)."""
    return {p.parent.name for p in (lake / table).rglob("*.parquet")}


def make_old_layout(lake: Path) -> None:
    """Rewrite the lake's llm_calls the way the date-only layout did (tenant in the files)."""
    import duckdb

    old = lake / "llm_calls.old"
    cols = ", ".join(LAKE_TABLES["llm_calls"].column_names)  # tenant in its warehouse place
    duckdb.sql(
        f"COPY (SELECT {cols}, date FROM read_parquet('{lake}/llm_calls/**/*.parquet', hive_partitioning = "
        f"true, hive_types = {{'date': DATE, 'tenant': VARCHAR}})) TO '{old}' "
        "(FORMAT PARQUET, PARTITION_BY (date), FILENAME_PATTERN 'part-{uuid}')"
    )
    shutil.rmtree(lake / "llm_calls")
    old.rename(lake / "llm_calls")
    doc = json.loads((lake / MANIFEST).read_text())
    doc["tables"]["llm_calls"]["partition_by"] = ["date"]
    (lake / MANIFEST).write_text(json.dumps(doc))
