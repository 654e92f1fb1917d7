"""Python models: tables computed in Polars or NumPy from staging tables, for work SQL does
badly (model fitting, business-hour arithmetic, text scoring).

A Python model reads its input tables through the DuckDB connection it is given and
either returns one Polars DataFrame per output table (``compute``), or writes its output
tables itself batch by batch (``write``) when whole frames would not fit in memory. Either
way every output is replaced in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import polars as pl

from cx_pipeline.settings import KpiConfig
from cx_pipeline.warehouse import quote_identifier, rerun_on_conflict, rollback_quietly, warehouse_tables

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
    """A named computation that reads ``deps`` and builds its output tables.

    Exactly one of ``compute`` and ``write`` is set. ``compute`` returns a frame per output
    table. ``write`` replaces every output table in the caller's open transaction and
    returns their row counts.
    """

    name: str
    outputs: tuple[OutputTable, ...]
    deps: tuple[str, ...]
    compute: Callable[[ModelContext], dict[str, pl.DataFrame]] | None = None
    layer: str = "marts"
    write: Callable[[ModelContext], dict[str, int]] | None = None

    def __post_init__(self) -> None:
        if (self.compute is None) == (self.write is None):
            raise ValueError(f"python model {self.name} must set exactly one of compute and write")


def write_outputs(con: duckdb.DuckDBPyConnection, model: PythonModel, frames: dict[str, pl.DataFrame]) -> dict[str, int]:
    """Replace every output table of ``model`` in the caller's transaction and return row counts."""
    expected = {output.name for output in model.outputs}
    if set(frames) != expected:
        raise RuntimeError(f"python model {model.name} returned {sorted(frames)}, expected {sorted(expected)}")
    for name, frame in frames.items():
        con.register("model_output", frame.to_arrow())
        con.execute(f"CREATE OR REPLACE TABLE {quote_identifier(name)} AS SELECT * FROM model_output")
        con.unregister("model_output")
    return {name: frame.height for name, frame in frames.items()}


def compute_and_write(
    con: duckdb.DuckDBPyConnection, model: PythonModel, make_context: Callable[[], ModelContext]
) -> dict[str, int]:
    """Compute ``model`` and replace its outputs in one transaction; return row counts.

    The model reads and writes on one snapshot. On DuckLake, when another run commits the
    same tables first, the whole transaction runs again on the newer snapshot.
    """

    def attempt() -> dict[str, int]:
        con.execute("BEGIN TRANSACTION")
        try:
            if model.write is not None:
                counts = model.write(make_context())
                missing = {output.name for output in model.outputs} - set(counts)
                if missing:
                    raise RuntimeError(f"python model {model.name} did not write {sorted(missing)}")
            else:
                assert model.compute is not None
                counts = write_outputs(con, model, model.compute(make_context()))
            con.execute("COMMIT")
        except BaseException:
            rollback_quietly(con)
            raise
        return counts

    return rerun_on_conflict(con, attempt)


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Return whether ``table`` exists in the warehouse."""
    return table in warehouse_tables(con)


def registered_models() -> list[PythonModel]:
    """Return every Python model of the project."""
    from cx_pipeline.clv_model import CLV_MODEL
    from cx_pipeline.impact_model import KPI_IMPACT_MODEL
    from cx_pipeline.sentiment_model import FEEDBACK_TEXT_MODEL
    from cx_pipeline.support import TICKET_METRICS_MODEL

    return [CLV_MODEL, TICKET_METRICS_MODEL, FEEDBACK_TEXT_MODEL, KPI_IMPACT_MODEL]
