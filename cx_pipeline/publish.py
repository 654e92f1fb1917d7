"""Publishing for BI: copy the published tables into a separate DuckDB file and swap it in
atomically.

BI tools open the published file read-only. The pipeline never writes to it in place: it
builds a new file next to it and renames it over the old one (``os.replace``, atomic on
POSIX file systems). A reader that holds a connection keeps reading the file it opened,
so it neither blocks the run nor sees a half-written table; its next connection sees the
new tables.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa

from cx_pipeline.metadata import asset_owners
from cx_pipeline.settings import Settings
from cx_pipeline.warehouse import Warehouse, quote_identifier

logger = logging.getLogger(__name__)

MANIFEST_TABLE = "publish_manifest"


# Name under which the new published file is attached to the warehouse connection.
TARGET_ALIAS = "publish_target"


def _sql_text(value: str) -> str:
    """Quote ``value`` as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _copy_table(source: duckdb.DuckDBPyConnection, table: str) -> int:
    """Copy ``table`` into the attached target file inside DuckDB and return its row count.

    The rows never pass through Python, and the copy keeps every column type as it is.
    """
    quoted = quote_identifier(table)
    source.execute(f"CREATE TABLE {TARGET_ALIAS}.{quoted} AS SELECT * FROM main.{quoted}")
    row = source.execute(f"SELECT count(*) FROM {TARGET_ALIAS}.{quoted}").fetchone()
    return int(row[0]) if row else 0


def publish_tables(source: duckdb.DuckDBPyConnection, tables: list[str], target: Path) -> dict[str, int]:
    """Write ``tables`` from ``source`` into a new file and atomically replace ``target``.

    Tables missing from the warehouse are skipped with a log line. Returns the row count of
    each published table.
    """
    existing = {
        row[0]
        for row in source.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()").fetchall()
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    staging_file = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    staging_file.unlink(missing_ok=True)

    counts: dict[str, int] = {}
    published_at = dt.datetime.now(dt.UTC)
    source.execute(f"ATTACH {_sql_text(str(staging_file))} AS {TARGET_ALIAS}")
    try:
        for table in tables:
            if table not in existing:
                logger.info("event=publish_table_skipped table=%s reason=not_in_warehouse", table)
                continue
            counts[table] = _copy_table(source, table)
        manifest = pa.table(
            {
                "table_name": list(counts),
                "row_count": list(counts.values()),
                "published_at": [published_at] * len(counts),
            }
        )
        source.register("manifest_rows", manifest)
        source.execute(f"CREATE TABLE {TARGET_ALIAS}.{MANIFEST_TABLE} AS SELECT * FROM manifest_rows")
        source.unregister("manifest_rows")
        source.execute(f"CHECKPOINT {TARGET_ALIAS}")
    except BaseException:
        source.execute(f"DETACH {TARGET_ALIAS}")
        staging_file.unlink(missing_ok=True)
        raise
    source.execute(f"DETACH {TARGET_ALIAS}")

    os.replace(staging_file, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    logger.info("event=publish_finished tables=%d rows=%d path=%s", len(counts), sum(counts.values()), target)
    return counts


def build_publish_asset(tables: list[str], deps: list[str]) -> dg.AssetsDefinition:
    """Build the asset that publishes ``tables`` to the BI file once ``deps`` are rebuilt."""

    @dg.asset(
        name="published_warehouse",
        deps=deps,
        group_name="published",
        kinds={"duckdb"},
        owners=asset_owners(),
        description=(
            "Read-only DuckDB file for BI tools (CX_PUBLISH_PATH), holding the mart, quarantine "
            "and rejected-file tables plus publish_manifest; replaced atomically on every run."
        ),
    )
    def published_warehouse(warehouse: Warehouse) -> dg.MaterializeResult:
        target = Settings.from_env().publish_path
        logger.info("event=publish_started tables=%d path=%s", len(tables), target)
        with warehouse.connect() as con:
            counts = publish_tables(con, tables, target)
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(target)),
                "tables": len(counts),
                "row_counts": dg.MetadataValue.md(
                    "| table | rows |\n| --- | ---: |\n"
                    + "\n".join(f"| {table} | {count} |" for table, count in counts.items())
                ),
                "dagster/row_count": sum(counts.values()),
            }
        )

    return published_warehouse
