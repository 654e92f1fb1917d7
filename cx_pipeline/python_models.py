"""Python models: tables computed in Polars or NumPy from staging tables, for work SQL does
badly (model fitting, business-hour arithmetic, text scoring).

A Python model reads its input tables through the DuckDB connection it is given and
returns one Polars DataFrame per output table; the framework writes every output in one
transaction, replacing the previous version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import polars as pl

from cx_pipeline.settings import KpiConfig
from cx_pipeline.warehouse import quote_identifier

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelContext:
    """What a Python model receives: a connection, the run's SQL parameters and the config."""

    con: duckdb.DuckDBPyConnection
    parameters: dict[str, Any]
    kpi: KpiConfig
    log: logging.Logger = field(default=logger)


@dataclass(frozen=True)
class OutputTable:
    """One table a Python model writes."""

    name: str
    description: str
    grain: str


@dataclass(frozen=True)
class PythonModel:
    """A named computation that reads ``deps`` and returns a frame per output table."""

    name: str
    outputs: tuple[OutputTable, ...]
    deps: tuple[str, ...]
    compute: Callable[[ModelContext], dict[str, pl.DataFrame]]
    layer: str = "marts"


def write_outputs(con: duckdb.DuckDBPyConnection, model: PythonModel, frames: dict[str, pl.DataFrame]) -> dict[str, int]:
    """Replace every output table of ``model`` in one transaction and return row counts."""
    expected = {output.name for output in model.outputs}
    if set(frames) != expected:
        raise RuntimeError(f"python model {model.name} returned {sorted(frames)}, expected {sorted(expected)}")
    con.execute("BEGIN TRANSACTION")
    try:
        for name, frame in frames.items():
            con.register("model_output", frame.to_arrow())
            con.execute(f"CREATE OR REPLACE TABLE {quote_identifier(name)} AS SELECT * FROM model_output")
            con.unregister("model_output")
        con.execute("COMMIT")
    except duckdb.Error:
        con.execute("ROLLBACK")
        raise
    return {name: frame.height for name, frame in frames.items()}


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Return whether ``table`` exists in the warehouse."""
    row = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()
    return bool(row and row[0])


def registered_models() -> list[PythonModel]:
    """Return every Python model of the project."""
    from cx_pipeline.clv_model import CLV_MODEL
    from cx_pipeline.impact_model import KPI_IMPACT_MODEL
    from cx_pipeline.sentiment_model import FEEDBACK_TEXT_MODEL
    from cx_pipeline.support import TICKET_METRICS_MODEL

    return [CLV_MODEL, TICKET_METRICS_MODEL, FEEDBACK_TEXT_MODEL, KPI_IMPACT_MODEL]
