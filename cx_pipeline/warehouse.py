"""The warehouse: one Dagster resource with two backends, and atomic partition writes.

The default backend is a local DuckDB file. DuckDB lets only one process open a database
file for writing, so every writer here first takes an exclusive ``flock`` on
``<database>.lock``, and a second run (a schedule tick during a backfill, or a parallel
step) waits for the first instead of failing with "could not set lock on file".

With CX_WAREHOUSE_URL set to a ``ducklake:`` catalog, tables live in DuckLake instead
(``cx_pipeline.ducklake``): runs write concurrently without a file lock, and DuckLake
conflicts are retried. Both backends select their catalog with ``USE``, so SQL models
and assets use unqualified table names either way.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import duckdb
import polars as pl
from pydantic import Field

from cx_pipeline import ducklake
from cx_pipeline.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def quote_identifier(name: str) -> str:
    """Quote a table or column name from the project's own files, rejecting anything else."""
    if not IDENTIFIER.match(name):
        raise ValueError(f"invalid identifier {name!r}: use lower-case letters, digits and _")
    return f'"{name}"'


@contextmanager
def writer_lock(database: Path, timeout_seconds: float) -> Iterator[None]:
    """Hold the exclusive writer lock of ``database``, waiting up to ``timeout_seconds``."""
    lock_path = database.with_name(database.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        deadline = time.monotonic() + timeout_seconds
        waited = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    logger.info("waiting for the writer lock on %s held by another run", database)
                    waited = True
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"timed out after {timeout_seconds:.0f} s waiting for the writer lock "
                        f"{lock_path}; another run is still writing"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# The connection's current catalog and schema: the warehouse file, or DuckLake after USE.
_CURRENT_SCHEMA = "table_catalog = current_database() AND table_schema = current_schema()"


def warehouse_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Return the names of the tables in the warehouse's current catalog and schema."""
    rows = con.execute(f"SELECT table_name FROM information_schema.tables WHERE {_CURRENT_SCHEMA}").fetchall()
    return {row[0] for row in rows}


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """Return the column names of a table in the current catalog and schema (empty when it
    does not exist)."""
    rows = con.execute(
        f"SELECT column_name FROM information_schema.columns WHERE {_CURRENT_SCHEMA} AND table_name = ?",
        [table],
    ).fetchall()
    return {row[0] for row in rows}


def rollback_quietly(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction, if any: a failed COMMIT has already ended it."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


def rerun_on_conflict(con: duckdb.DuckDBPyConnection, work: Callable[[], T]) -> T:
    """Run ``work``, a transaction that writes what Python computed from what it read.

    On DuckLake a conflicting COMMIT runs ``work`` again from the start; the local file
    has one writer at a time, so there ``work`` runs once.
    """
    if isinstance(con, ducklake.RetryingConnection):
        return con.rerun_on_conflict(work)
    return work()


def ensure_table(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str]) -> None:
    """Create ``table`` if absent and add any column it lacks, so sources can gain columns."""
    quoted = quote_identifier(table)
    definition = ", ".join(f"{quote_identifier(name)} {sql_type}" for name, sql_type in columns.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS {quoted} ({definition})")
    existing = {
        row[0]
        for row in con.execute(
            f"SELECT column_name FROM information_schema.columns WHERE {_CURRENT_SCHEMA} AND table_name = ?",
            [table],
        ).fetchall()
    }
    for name, sql_type in columns.items():
        if name not in existing:
            con.execute(f"ALTER TABLE {quoted} ADD COLUMN {quote_identifier(name)} {sql_type}")


def replace_partitions(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: dict[str, str],
    rows: pl.DataFrame,
    first_day: dt.date,
    last_day: dt.date,
) -> None:
    """Replace the rows of ``table`` whose ``_partition_date`` lies in [first_day, last_day].

    Must run inside a transaction that the caller commits, so the delete and the insert
    become visible together. Rows are inserted by column name, so a table that gained
    columns keeps the old partitions' values and new columns stay null for them.
    """
    ensure_table(con, table, columns)
    quoted = quote_identifier(table)
    con.execute(f"DELETE FROM {quoted} WHERE _partition_date BETWEEN ? AND ?", [first_day, last_day])
    if rows.height:
        con.register("incoming_rows", rows.to_arrow())
        try:
            con.execute(f"INSERT INTO {quoted} BY NAME SELECT * FROM incoming_rows")
        finally:
            con.unregister("incoming_rows")


def _connect_with_retry(database: Path, timeout_seconds: float) -> duckdb.DuckDBPyConnection:
    """Open ``database`` for writing, waiting while a process outside the project holds it.

    The project's own writers are serialized by the writer lock; this covers a tool that
    opened the warehouse file directly (BI tools should read the published copy instead).
    """
    deadline = time.monotonic() + timeout_seconds
    delay = 0.1
    while True:
        try:
            return duckdb.connect(str(database))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            logger.warning("%s is held by another process (%s); retrying in %.1f s", database, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def apply_memory_limit(con: duckdb.DuckDBPyConnection, memory_limit: str) -> None:
    """Set DuckDB's memory_limit, so operators above it spill to the temporary directory.

    The setting belongs to the database instance: on a DuckLake cursor it applies to every
    cursor of the shared session. A local warehouse file spills to ``<database>.tmp``.
    """
    con.execute(f"SET memory_limit = '{memory_limit}'")


class Warehouse(dg.ConfigurableResource):
    """The warehouse of raw, staging and mart tables: a local DuckDB file or DuckLake.

    ``url`` defaults to CX_WAREHOUSE_URL and ``data_path`` to CX_DUCKLAKE_DATA_PATH. When
    both ``url`` and CX_WAREHOUSE_URL are empty, ``path`` (default CX_WAREHOUSE_PATH or
    ./data/cx.duckdb) is the warehouse. Every connection gets DuckDB's memory_limit from
    CX_DUCKDB_MEMORY_LIMIT (default 2GB). Everything is read when a run starts.
    """

    path: str = Field(default="", description="DuckDB file; empty means CX_WAREHOUSE_PATH or ./data/cx.duckdb.")
    url: str = Field(
        default="",
        description="DuckLake catalog as 'ducklake:postgres:dbname=... host=...'; empty means CX_WAREHOUSE_URL.",
    )
    data_path: str = Field(
        default="", description="Folder or object-storage prefix of DuckLake's Parquet files; empty means "
        "CX_DUCKLAKE_DATA_PATH.",
    )
    lock_timeout_seconds: float = Field(
        default=6 * 3600, description="How long a run waits for another run's writer lock."
    )

    def database_path(self) -> Path:
        """Return the DuckDB file this resource writes when no DuckLake is configured."""
        return Path(self.path) if self.path else Settings.from_env().warehouse_path

    def ducklake_target(self) -> ducklake.DuckLakeTarget | None:
        """Return the configured DuckLake, or None for the local DuckDB file."""
        return ducklake.target_from_env(self.url, self.data_path)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open a writing connection: to DuckLake, or to the local file under the writer lock."""
        target = self.ducklake_target()
        memory_limit = Settings.from_env().duckdb_memory_limit
        if target is not None:
            # DuckLake orders concurrent commits in its catalog, so no file lock is taken.
            con = ducklake.RetryingConnection(ducklake.session(target))
            try:
                apply_memory_limit(con, memory_limit)
                yield con  # type: ignore[misc]
            finally:
                con.close()
            return

        database = self.database_path()
        database.parent.mkdir(parents=True, exist_ok=True)
        with writer_lock(database, self.lock_timeout_seconds):
            con = _connect_with_retry(database, self.lock_timeout_seconds)
            try:
                apply_memory_limit(con, memory_limit)
                yield con
            finally:
                con.close()

    def query(self, sql: str, parameters: list[Any] | None = None) -> pl.DataFrame:
        """Run a read query under the writer lock and return the result as a DataFrame."""
        with self.connect() as con:
            return con.execute(sql, parameters or []).pl()
