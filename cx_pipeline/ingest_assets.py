"""Partitioned Python assets per source: raw landing rows, then validation into typed rows
and quarantine.

Both assets use a single-run backfill policy, so a range of days is one run and one
transaction per table group, and rerunning a day replaces exactly that day's rows.
"""


import datetime as dt
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import dagster as dg
import duckdb
import polars as pl
import pyarrow as pa
from dagster import AssetExecutionContext

from cx_pipeline.contracts import Contract
from cx_pipeline.extract import extract_partition, raw_schema
from cx_pipeline.dictionary import (
    REJECTED_FILES_COLUMNS,
    contract_tables,
    quarantine_description,
    raw_description,
    validated_description,
)
from cx_pipeline.metadata import asset_owners, column_schema, preview_markdown
from cx_pipeline.partitions import days_between, parse_partition_key
from cx_pipeline.project import (
    load_project,
    quarantine_table,
    raw_table,
    rejected_files_table,
    validated_table,
)
from cx_pipeline.settings import Settings
from cx_pipeline.validate import QUARANTINE_COLUMNS, valid_schema, validate_rows
from cx_pipeline.warehouse import (
    Warehouse,
    quote_identifier,
    replace_partitions,
    rerun_on_conflict,
    rollback_quietly,
)

logger = logging.getLogger(__name__)

# Days per chunk of a run's partition range. Extract and validate hold one chunk's rows in
# memory at a time, so peak memory follows the busiest month rather than the whole range.
CHUNK_DAYS = 31
# Rows kept for the metadata previews shown in Dagster.
PREVIEW_ROWS = 5


@dataclass
class RawLoad:
    """Counts, timings, rejected files and a preview of one raw step's write."""

    files_read: int = 0
    row_count: int = 0
    rejected: list[dict[str, object]] = field(default_factory=list)
    rejected_rows: pl.DataFrame = field(default_factory=pl.DataFrame)
    preview: pl.DataFrame | None = None
    extract_seconds: float = 0.0
    write_seconds: float = 0.0


@dataclass
class ValidationRun:
    """Row counts, timings and previews of one validate step's write."""

    landed: int = 0
    valid: int = 0
    quarantined: int = 0
    valid_preview: pl.DataFrame | None = None
    quarantine_preview: pl.DataFrame | None = None
    read_seconds: float = 0.0
    validate_seconds: float = 0.0
    write_seconds: float = 0.0


def partition_range(context: AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """Return the first and last day of the run's partition range."""
    key_range = context.partition_key_range
    return parse_partition_key(key_range.start), parse_partition_key(key_range.end)


def day_chunks(first: dt.date, last: dt.date, chunk_days: int = CHUNK_DAYS) -> list[tuple[dt.date, dt.date]]:
    """Split [first, last] into consecutive ranges of at most ``chunk_days`` days."""
    if chunk_days < 1:
        raise ValueError(f"invalid chunk_days {chunk_days}: must be at least 1")
    chunks = []
    start = first
    while start <= last:
        end = min(start + dt.timedelta(days=chunk_days - 1), last)
        chunks.append((start, end))
        start = end + dt.timedelta(days=1)
    return chunks


def _drain(batches: list[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Yield and drop each batch in turn, so the list keeps no batch that was read."""
    while batches:
        yield batches.pop(0)


def replace_chunk(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: dict[str, str],
    rows: pl.DataFrame,
    first_day: dt.date,
    last_day: dt.date,
) -> None:
    """Replace the partitions [first_day, last_day] of ``table`` with ``rows``.

    Runs inside the caller's transaction, like replace_partitions. DuckDB 1.5 keeps a
    registered Arrow table referenced until the transaction ends, which would keep every
    chunk of a range in memory until the commit. The rows are registered as a stream of
    record batches instead, and each batch is dropped once DuckDB has read it.
    """
    replace_partitions(con, table, columns, rows.clear(), first_day, last_day)
    if rows.height == 0:
        return
    arrow = rows.to_arrow()
    reader = pa.RecordBatchReader.from_batches(arrow.schema, _drain(arrow.to_batches()))
    del arrow
    con.register("incoming_chunk", reader)
    try:
        con.execute(f"INSERT INTO {quote_identifier(table)} BY NAME SELECT * FROM incoming_chunk")
    finally:
        con.unregister("incoming_chunk")


def masked_columns(contract: Contract) -> list[str]:
    """Return the free-text columns that are masked on validation and never previewed raw."""
    return [column.name for column in contract.columns if column.mask_pii]


def _keep_preview(preview: pl.DataFrame | None, rows: pl.DataFrame) -> pl.DataFrame | None:
    """Return the first PREVIEW_ROWS rows seen so far, adding rows from ``rows`` if needed."""
    if preview is not None and preview.height >= PREVIEW_ROWS:
        return preview
    head = rows.head(PREVIEW_ROWS)
    if preview is None:
        return head
    return pl.concat([preview, head], how="vertical_relaxed").head(PREVIEW_ROWS)


def _load_raw(
    context: AssetExecutionContext, warehouse: Warehouse, contract: Contract
) -> dg.MaterializeResult:
    settings = Settings.from_env()
    project = load_project()
    mappings = project.mappings(settings.kpi)[contract.source]
    first, last = partition_range(context)
    raw_columns = raw_schema(contract) | {"_loaded_at": "TIMESTAMPTZ"}

    logger.info("event=raw_started source=%s partitions=%s..%s", contract.source, first, last)
    loaded_at = dt.datetime.now(dt.UTC)

    def load_range() -> RawLoad:
        # Every chunk is written inside one transaction, so a failure in any chunk leaves the
        # whole range as it was before the run.
        load = RawLoad()
        con.execute("BEGIN TRANSACTION")
        try:
            for chunk_first, chunk_last in day_chunks(first, last):
                started = time.perf_counter()
                frames: list[pl.DataFrame] = []
                for day in days_between(chunk_first, chunk_last):
                    extraction = extract_partition(settings.landing_dir, contract, mappings, day)
                    frames.append(extraction.rows)
                    load.files_read += len(extraction.files_read)
                    load.rejected.extend(
                        {"_partition_date": day, "_source_file": e.source_file, "error": e.error}
                        for e in extraction.file_errors
                    )
                    if not extraction.files_read and not extraction.file_errors:
                        logger.info(
                            "event=partition_skipped source=%s partition=%s reason=no_files_landed",
                            contract.source, day,
                        )
                rows = pl.concat(frames).with_columns(pl.lit(loaded_at).alias("_loaded_at"))
                del frames
                load.extract_seconds += time.perf_counter() - started

                started = time.perf_counter()
                replace_chunk(con, raw_table(contract.source), raw_columns, rows, chunk_first, chunk_last)
                load.write_seconds += time.perf_counter() - started
                load.row_count += rows.height
                load.preview = _keep_preview(
                    load.preview, rows.drop("_extra_columns", "_loaded_at", *masked_columns(contract))
                )
                del rows

            started = time.perf_counter()
            load.rejected_rows = pl.DataFrame(
                load.rejected, schema={"_partition_date": pl.Date, "_source_file": pl.String, "error": pl.String}
            )
            replace_partitions(
                con, rejected_files_table(contract.source), REJECTED_FILES_COLUMNS, load.rejected_rows, first, last
            )
            con.execute("COMMIT")
            load.write_seconds += time.perf_counter() - started
        except BaseException:
            rollback_quietly(con)
            raise
        return load

    with warehouse.connect() as con:
        # The chunks are streamed from the files, so on DuckLake a conflicting commit reads
        # them again instead of replaying the consumed streams.
        load = rerun_on_conflict(con, load_range)

    logger.info(
        "event=raw_loaded source=%s partitions=%s..%s rows=%d files=%d files_rejected=%d "
        "extract_seconds=%.3f write_seconds=%.3f",
        contract.source, first, last, load.row_count, load.files_read, len(load.rejected),
        load.extract_seconds, load.write_seconds,
    )
    preview = load.preview if load.preview is not None else pl.DataFrame()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": load.row_count,
            "files_read": load.files_read,
            "files_rejected": len(load.rejected),
            "rejected_files": dg.MetadataValue.md(preview_markdown(load.rejected_rows)),
            # Free text stays out of Dagster's event log: only masked text is published.
            "preview": dg.MetadataValue.md(preview_markdown(preview)),
        }
    )


def _validate(
    context: AssetExecutionContext, warehouse: Warehouse, contract: Contract
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    settings = Settings.from_env()
    project = load_project()
    mappings = project.mappings_by_name(contract.source, settings.kpi)
    first, last = partition_range(context)
    source = contract.source
    raw = quote_identifier(raw_table(source))

    logger.info("event=validation_started source=%s partitions=%s..%s", source, first, last)

    def validate_range() -> ValidationRun:
        # Each chunk is read, validated and written before the next one is read. All chunks
        # share one transaction, so a failure leaves the range as it was.
        run = ValidationRun()
        con.execute("BEGIN TRANSACTION")
        try:
            for chunk_first, chunk_last in day_chunks(first, last):
                started = time.perf_counter()
                rows = con.execute(
                    f"SELECT * EXCLUDE (_loaded_at) FROM {raw} "
                    "WHERE _partition_date BETWEEN ? AND ? ORDER BY _partition_date, _source_file, _row_number",
                    [chunk_first, chunk_last],
                ).pl()
                run.read_seconds += time.perf_counter() - started

                started = time.perf_counter()
                result = validate_rows(rows, contract, mappings, settings.kpi)
                run.validate_seconds += time.perf_counter() - started

                started = time.perf_counter()
                replace_chunk(
                    con, validated_table(source), valid_schema(contract), result.valid, chunk_first, chunk_last
                )
                replace_chunk(
                    con, quarantine_table(source), QUARANTINE_COLUMNS, result.quarantine, chunk_first, chunk_last
                )
                run.write_seconds += time.perf_counter() - started

                run.landed += rows.height
                run.valid += result.valid.height
                run.quarantined += result.quarantine.height
                run.valid_preview = _keep_preview(run.valid_preview, result.valid)
                run.quarantine_preview = _keep_preview(
                    run.quarantine_preview,
                    result.quarantine.select("_source_file", "_row_number", "failure_reasons"),
                )
                del rows, result

            started = time.perf_counter()
            con.execute("COMMIT")
            run.write_seconds += time.perf_counter() - started
        except BaseException:
            rollback_quietly(con)
            raise
        return run

    with warehouse.connect() as con:
        used = con.execute(
            f"SELECT DISTINCT _mapping FROM {raw} WHERE _partition_date BETWEEN ? AND ?", [first, last]
        ).fetchall()
        unknown = {row[0] for row in used} - set(mappings)
        if unknown:
            raise ValueError(
                f"raw_{source} rows were loaded with mapping(s) {sorted(unknown)} that are no longer "
                f"configured; add the mapping files back to CX_CONFIG or rematerialize raw_{source}"
            )
        # On DuckLake a conflicting commit validates the range again from the raw rows
        # instead of replaying the consumed streams.
        run = rerun_on_conflict(con, validate_range)
    landed, valid_count, quarantined = run.landed, run.valid, run.quarantined
    valid_preview, quarantine_preview = run.valid_preview, run.quarantine_preview

    rate = quarantined / landed if landed else 0.0
    logger.info(
        "event=validated source=%s partitions=%s..%s landed=%d valid=%d quarantined=%d "
        "read_seconds=%.3f validate_seconds=%.3f write_seconds=%.3f",
        source, first, last, landed, valid_count, quarantined,
        run.read_seconds, run.validate_seconds, run.write_seconds,
    )
    empty = pl.DataFrame()
    yield dg.MaterializeResult(
        asset_key=validated_table(source),
        metadata={
            "dagster/row_count": valid_count,
            "landed_rows": landed,
            "quarantined_rows": quarantined,
            "preview": dg.MetadataValue.md(preview_markdown(valid_preview if valid_preview is not None else empty)),
        },
    )
    yield dg.MaterializeResult(
        asset_key=quarantine_table(source),
        metadata={
            "dagster/row_count": quarantined,
            "landed_rows": landed,
            "quarantine_rate": rate,
            "preview": dg.MetadataValue.md(
                preview_markdown(quarantine_preview if quarantine_preview is not None else empty)
            ),
        },
    )
    yield dg.AssetCheckResult(
        asset_key=quarantine_table(source),
        check_name="quarantine_rate_below_threshold",
        passed=rate <= settings.kpi.quarantine_rate_warn,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"quarantine_rate": rate, "threshold": settings.kpi.quarantine_rate_warn},
        description=f"{quarantined} of {landed} landed rows quarantined",
    )
    yield dg.AssetCheckResult(
        asset_key=validated_table(source),
        check_name="landed_rows_equal_valid_plus_quarantined",
        passed=landed == valid_count + quarantined,
        metadata={"landed": landed, "valid": valid_count, "quarantined": quarantined},
    )


def build_source_assets(contract: Contract, partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """Build the raw and validation assets of one source."""
    source = contract.source
    policy = dg.BackfillPolicy.single_run()
    owners = asset_owners()
    schemas = {table.name: column_schema(table) for table in contract_tables(contract)}

    @dg.asset(
        name=raw_table(source),
        partitions_def=partitions,
        backfill_policy=policy,
        group_name="raw",
        kinds={"duckdb", "polars"},
        owners=owners,
        description=raw_description(source)
        + f" Files that cannot be read go to {rejected_files_table(source)} with the error.",
        metadata={
            "contract": dg.MetadataValue.path(str(contract.path)),
            "dagster/column_schema": schemas[raw_table(source)],
        },
    )
    def raw_asset(context: AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        return _load_raw(context, warehouse, contract)

    @dg.multi_asset(
        name=f"validate_{source}",
        partitions_def=partitions,
        backfill_policy=policy,
        group_name="staging",
        specs=[
            dg.AssetSpec(
                validated_table(source),
                deps=[raw_asset],
                kinds={"duckdb", "pandera"},
                owners=owners,
                description=validated_description(source),
                metadata={"dagster/column_schema": schemas[validated_table(source)]},
            ),
            dg.AssetSpec(
                quarantine_table(source),
                deps=[raw_asset],
                kinds={"duckdb", "pandera"},
                owners=owners,
                description=quarantine_description(source),
                metadata={"dagster/column_schema": schemas[quarantine_table(source)]},
            ),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                "quarantine_rate_below_threshold",
                asset=quarantine_table(source),
                description="Warns when the share of landed rows in quarantine exceeds quarantine_rate_warn.",
            ),
            dg.AssetCheckSpec(
                "landed_rows_equal_valid_plus_quarantined",
                asset=validated_table(source),
                description="Fails when landed rows differ from validated plus quarantined rows.",
            ),
        ],
    )
    def validate_asset(
        context: AssetExecutionContext, warehouse: Warehouse
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        yield from _validate(context, warehouse, contract)

    return [raw_asset, validate_asset]
