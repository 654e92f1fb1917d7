"""Small helpers for Dagster materialization metadata."""

from __future__ import annotations

import polars as pl

MAX_CELL_CHARS = 40


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
