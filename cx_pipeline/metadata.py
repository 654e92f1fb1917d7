"""Small helpers for Dagster materialization metadata."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from cx_pipeline.dictionary import ColumnDoc, TableDoc

logger = logging.getLogger(__name__)

MAX_CELL_CHARS = 40
DEFAULT_OWNER = "team:cx-analytics"
# Folder next to the warehouse file that contains the PNG charts of the latest materializations.
CHART_DIR_NAME = "charts"


def preview_markdown(frame: pl.DataFrame, rows: int = 5) -> str:
    """Render the first ``rows`` rows as a Markdown table, with long cells shortened."""
    if frame.height == 0:
        return "_no rows_"
    head = frame.head(rows)
    lines = [
        "| " + " | ".join(head.columns) + " |",
        "| " + " | ".join("---" for _ in head.columns) + " |",
    ]
    for row in head.iter_rows():
        cells = []
        for value in row:
            text = "" if value is None else str(value)
            if len(text) > MAX_CELL_CHARS:
                text = text[: MAX_CELL_CHARS - 1] + "…"
            cells.append(text.replace("|", "\\|").replace("\n", " "))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def asset_owners() -> list[str]:
    """Return the owners of every asset: CX_ASSET_OWNERS, comma-separated, default team:cx-analytics.

    Dagster accepts an e-mail address or ``team:<name>`` per owner.
    """
    value = os.environ.get("CX_ASSET_OWNERS") or DEFAULT_OWNER
    return [owner.strip() for owner in value.split(",") if owner.strip()]


def column_schema(table: TableDoc, described: dict[str, str] | None = None) -> dg.TableSchema:
    """Build the ``dagster/column_schema`` of a table from its docs and, when given, its DESCRIBE."""
    if described is None:
        columns = list(table.columns.values())
    else:
        columns = [
            table.columns.get(name) or ColumnDoc(name, "", type=duckdb_type) for name, duckdb_type in described.items()
        ]
        columns = [
            ColumnDoc(doc.name, doc.description, doc.unit, described.get(doc.name, doc.type)) for doc in columns
        ]
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=doc.name,
                type=doc.type or "unknown until materialized",
                description=f"{doc.description} Unit: {doc.unit}." if doc.unit else doc.description,
            )
            for doc in columns
        ]
    )


def kpi_metadata(
    con: duckdb.DuckDBPyConnection, table: str, docs: TableDoc, warehouse_path: Path
) -> dict[str, object]:
    """Return a model table's materialization metadata beyond row count and preview: its
    column schema with the table's own types, the latest day's KPI values and its chart.

    A chart that fails to render is logged and left out, so it never fails the model.
    """
    from cx_pipeline.dictionary import column_doc, describe_table
    from cx_pipeline.project import load_project
    from cx_pipeline.report import chart_for_table, latest_kpi_values, png_data_uri, render_png

    project = load_project()
    described = describe_table(con, table)
    documented = {}
    for name, duckdb_type in described.items():
        doc = column_doc(project, docs, name, duckdb_type)
        documented[name] = doc or ColumnDoc(name, "", type=duckdb_type)
    metadata: dict[str, object] = {
        "dagster/column_schema": column_schema(
            TableDoc(docs.name, docs.layer, docs.description, docs.grain, documented), described
        )
    }
    for name, value in latest_kpi_values(con, table).items():
        metadata[f"latest_{name}" if name != "latest_day" else name] = value

    try:
        chart = chart_for_table(con, table)
        if chart is not None:
            png = render_png(chart)
            chart_dir = warehouse_path.parent / CHART_DIR_NAME
            chart_dir.mkdir(parents=True, exist_ok=True)
            path = chart_dir / f"{table}.png"
            path.write_bytes(png)
            metadata["chart"] = dg.MetadataValue.path(str(path))
            metadata["chart_image"] = dg.MetadataValue.md(f"![{table} chart]({png_data_uri(png)})")
    except Exception as exc:  # noqa: BLE001 - a chart is an extra and must not fail the table
        logger.warning("event=chart_failed table=%s error=%s", table, type(exc).__name__ + ": " + str(exc)[:200])
    return metadata
