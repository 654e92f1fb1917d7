"""Partitioned Python assets per source: raw landing rows, then validation into typed rows
and quarantine.

Both assets use a single-run backfill policy, so a range of days is one run and one
transaction per table group, and rerunning a day replaces exactly that day's rows.
"""


import datetime as dt
import logging
import time
from collections.abc import Iterator

import dagster as dg
from dagster import AssetExecutionContext
import polars as pl

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
from cx_pipeline.warehouse import Warehouse, quote_identifier, replace_partitions

logger = logging.getLogger(__name__)

def partition_range(context: AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """Return the first and last day of the run's partition range."""
    key_range = context.partition_key_range
    return parse_partition_key(key_range.start), parse_partition_key(key_range.end)


def masked_columns(contract: Contract) -> list[str]:
    """Return the free-text columns that are masked on validation and never previewed raw."""
    return [column.name for column in contract.columns if column.mask_pii]


def _load_raw(
    context: AssetExecutionContext, warehouse: Warehouse, contract: Contract
) -> dg.MaterializeResult:
    settings = Settings.from_env()
    project = load_project()
    mappings = project.mappings(settings.kpi)[contract.source]
    first, last = partition_range(context)

    frames: list[pl.DataFrame] = []
    rejected: list[dict[str, object]] = []
    files_read = 0
    started = time.perf_counter()
    logger.info("event=raw_started source=%s partitions=%s..%s", contract.source, first, last)
    for day in days_between(first, last):
        extraction = extract_partition(settings.landing_dir, contract, mappings, day)
        frames.append(extraction.rows)
        files_read += len(extraction.files_read)
        rejected.extend(
            {"_partition_date": day, "_source_file": e.source_file, "error": e.error}
            for e in extraction.file_errors
        )
        if not extraction.files_read and not extraction.file_errors:
            logger.info("event=partition_skipped source=%s partition=%s reason=no_files_landed", contract.source, day)

    loaded_at = dt.datetime.now(dt.UTC)
    rows = pl.concat(frames).with_columns(pl.lit(loaded_at).alias("_loaded_at"))
    rejected_rows = pl.DataFrame(
        rejected, schema={"_partition_date": pl.Date, "_source_file": pl.String, "error": pl.String}
    )
    raw_columns = raw_schema(contract) | {"_loaded_at": "TIMESTAMPTZ"}
    extract_seconds = time.perf_counter() - started

    started = time.perf_counter()
    with warehouse.connect() as con:
        con.execute("BEGIN TRANSACTION")
        replace_partitions(con, raw_table(contract.source), raw_columns, rows, first, last)
        replace_partitions(
            con, rejected_files_table(contract.source), REJECTED_FILES_COLUMNS, rejected_rows, first, last
        )
        con.execute("COMMIT")

    logger.info(
        "event=raw_loaded source=%s partitions=%s..%s rows=%d files=%d files_rejected=%d "
        "extract_seconds=%.3f write_seconds=%.3f",
        contract.source, first, last, rows.height, files_read, len(rejected),
        extract_seconds, time.perf_counter() - started,
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows.height,
            "files_read": files_read,
            "files_rejected": len(rejected),
            "rejected_files": dg.MetadataValue.md(preview_markdown(rejected_rows)),
            # Free text stays out of Dagster's event log: only masked text is published.
            "preview": dg.MetadataValue.md(
                preview_markdown(rows.drop("_extra_columns", "_loaded_at", *masked_columns(contract)))
            ),
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

    logger.info("event=validation_started source=%s partitions=%s..%s", source, first, last)
    with warehouse.connect() as con:
        started = time.perf_counter()
        raw = con.execute(
            f"SELECT * EXCLUDE (_loaded_at) FROM {quote_identifier(raw_table(source))} "
            "WHERE _partition_date BETWEEN ? AND ? ORDER BY _partition_date, _source_file, _row_number",
            [first, last],
        ).pl()
        unknown = set(raw["_mapping"].unique().to_list()) - set(mappings)
        if unknown:
            raise ValueError(
                f"raw_{source} rows were loaded with mapping(s) {sorted(unknown)} that are no longer "
                f"configured; add the mapping files back to CX_CONFIG or rematerialize raw_{source}"
            )
        read_seconds = time.perf_counter() - started
        started = time.perf_counter()
        result = validate_rows(raw, contract, mappings, settings.kpi)
        validate_seconds = time.perf_counter() - started
        started = time.perf_counter()

        con.execute("BEGIN TRANSACTION")
        replace_partitions(con, validated_table(source), valid_schema(contract), result.valid, first, last)
        replace_partitions(con, quarantine_table(source), QUARANTINE_COLUMNS, result.quarantine, first, last)
        con.execute("COMMIT")

    landed = raw.height
    quarantined = result.quarantine.height
    rate = quarantined / landed if landed else 0.0
    logger.info(
        "event=validated source=%s partitions=%s..%s landed=%d valid=%d quarantined=%d "
        "read_seconds=%.3f validate_seconds=%.3f write_seconds=%.3f",
        source, first, last, landed, result.valid.height, quarantined,
        read_seconds, validate_seconds, time.perf_counter() - started,
    )
    yield dg.MaterializeResult(
        asset_key=validated_table(source),
        metadata={
            "dagster/row_count": result.valid.height,
            "landed_rows": landed,
            "quarantined_rows": quarantined,
            "preview": dg.MetadataValue.md(preview_markdown(result.valid)),
        },
    )
    yield dg.MaterializeResult(
        asset_key=quarantine_table(source),
        metadata={
            "dagster/row_count": quarantined,
            "landed_rows": landed,
            "quarantine_rate": rate,
            "preview": dg.MetadataValue.md(
                preview_markdown(result.quarantine.select("_source_file", "_row_number", "failure_reasons"))
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
        passed=landed == result.valid.height + quarantined,
        metadata={"landed": landed, "valid": result.valid.height, "quarantined": quarantined},
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
