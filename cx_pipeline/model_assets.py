"""Dagster assets for the SQL models, and asset checks that keep KPI values in range.

Staging and mart tables are rebuilt from all staged rows on every run, so a late answer
that arrives days after it was given still lands in the right day's KPI, and a rerun
gives the same tables.
"""


import datetime as dt
import logging
import time
import zoneinfo
from collections.abc import Iterator
from typing import Any

import dagster as dg
import duckdb
from dagster import AssetExecutionContext

from cx_pipeline.metadata import asset_owners, column_schema, kpi_metadata, preview_markdown
from cx_pipeline.dictionary import TableDoc
from cx_pipeline.models import SqlModel, run_model
from cx_pipeline.project import raw_table
from cx_pipeline.python_models import ModelContext, PythonModel, compute_and_write
from cx_pipeline.settings import KpiConfig, Settings
from cx_pipeline.warehouse import Warehouse, quote_identifier

logger = logging.getLogger(__name__)

# Timestamp columns that mark events in staging tables; the observation window ends at
# the latest of them (but never after the latest arrival day).
EVENT_TIMESTAMPS: dict[str, list[str]] = {
    "stg_feedback": ["submitted_at"],
    "stg_orders": ["ordered_at"],
    "stg_subscriptions": ["started_at", "trial_ends_at", "ended_at"],
    "stg_sessions": ["started_at"],
}

# Rows that break these conditions are counted by the KPI range checks.
KPI_RANGE_RULES: dict[str, str] = {
    "kpi_csat_daily": "csat_pct BETWEEN 0 AND 100 AND count_satisfied <= count_responses",
    "kpi_nps_daily": (
        "nps BETWEEN -100 AND 100 "
        "AND count_promoters + count_passives + count_detractors = count_responses"
    ),
    "kpi_ces_daily": "ces_mean BETWEEN scale_min AND scale_max AND easy_pct BETWEEN 0 AND 100",
    "kpi_support_daily": (
        "tickets_solved <= tickets_created "
        "AND count_fcr <= count_fcr_eligible AND count_fcr_eligible <= tickets_solved "
        "AND count_fcr_strict <= count_fcr_strict_eligible "
        "AND count_fcr_strict_eligible <= count_fcr_eligible "
        "AND count_one_touch + count_two_touch + count_multi_touch = count_fcr_eligible "
        "AND count_one_touch = count_fcr "
        "AND count_first_reply <= tickets_created "
        "AND sum_first_reply_minutes >= 0 AND sum_first_reply_business_minutes >= 0 "
        "AND sum_first_reply_business_minutes <= sum_first_reply_minutes + 0.001"
    ),
    # Days without scored text have null rates, which must not hide broken counts.
    "kpi_sentiment_daily": (
        "count_positive + count_neutral + count_negative = count_scored "
        "AND count_scored <= count_items "
        "AND coalesce(net_sentiment BETWEEN -100 AND 100, count_scored = 0) "
        "AND coalesce(mean_compound BETWEEN -1 AND 1, count_scored = 0)"
    ),
}


def _existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    from cx_pipeline.warehouse import warehouse_tables

    return warehouse_tables(con)


def observation_end(con: duckdb.DuckDBPyConnection, kpi: KpiConfig, sources: list[str]) -> dt.datetime:
    """Return the end of the observed period: the latest staged event, capped at the end of
    the latest arrival day in the reporting time zone.

    A history loaded today ends at its own last event, and a future cancellation date does
    not stretch the window past the data that has arrived.
    """
    tables = _existing_tables(con)
    zone = zoneinfo.ZoneInfo(kpi.reporting_timezone)

    # One statement for every maximum: on DuckLake each statement reads the catalog again.
    arrival_columns = [
        f"(SELECT max(_partition_date) FROM {quote_identifier(raw_table(s))})"
        for s in sources
        if raw_table(s) in tables
    ]
    event_columns = [
        f"(SELECT max({quote_identifier(c)}) FROM {quote_identifier(table)})"
        for table, columns in EVENT_TIMESTAMPS.items()
        if table in tables
        for c in columns
    ]
    if not arrival_columns:
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    maxima = con.execute(f"SELECT {', '.join(arrival_columns + event_columns)}").fetchone() or ()
    arrival_days = [day for day in maxima[: len(arrival_columns)] if day is not None]
    events: list[dt.datetime] = [v for v in maxima[len(arrival_columns) :] if v is not None]
    if not arrival_days:
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    last_arrival = max(arrival_days) + dt.timedelta(days=1)
    arrival_end = dt.datetime.combine(last_arrival, dt.time(), tzinfo=zone).astimezone(dt.UTC)

    if not events:
        return arrival_end
    latest_event = max(e.astimezone(zone) for e in events)
    event_end = dt.datetime.combine(latest_event.date() + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return min(event_end.astimezone(dt.UTC), arrival_end)


def model_parameters(
    con: duckdb.DuckDBPyConnection, kpi: KpiConfig, sources: list[str], with_observation_end: bool = True
) -> dict[str, Any]:
    """Return every named parameter a model may use; ``observation_end`` only when asked for."""
    parameters = kpi.sql_parameters()
    if with_observation_end:
        parameters["observation_end"] = observation_end(con, kpi, sources)
    return parameters


def build_model_asset(model: SqlModel, sources: list[str], docs: TableDoc) -> dg.AssetsDefinition:
    """Build the asset that rebuilds one SQL model's table."""

    @dg.asset(
        name=model.name,
        deps=list(model.deps),
        group_name=model.layer,
        kinds={"duckdb", "sql"},
        owners=asset_owners(),
        description=f"{model.description} Grain: {model.grain}.",
        metadata={
            "sql_file": dg.MetadataValue.path(str(model.path)),
            "grain": model.grain,
            "dagster/column_schema": column_schema(docs),
        },
    )
    def model_asset(context: AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        settings = Settings.from_env()
        started = time.perf_counter()
        logger.info("event=model_started model=%s layer=%s", model.name, model.layer)
        with warehouse.connect() as con:
            parameters = model_parameters(
                con, settings.kpi, sources, with_observation_end="observation_end" in model.parameters
            )
            row_count = run_model(con, model, parameters)
            preview = con.execute(f"SELECT * FROM {quote_identifier(model.name)} LIMIT 5").pl()
            metadata = kpi_metadata(con, model.name, docs, settings.warehouse_path)
        logger.info(
            "event=model_finished model=%s layer=%s rows=%d seconds=%.3f",
            model.name, model.layer, row_count, time.perf_counter() - started,
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": row_count,
                "preview": dg.MetadataValue.md(preview_markdown(preview)),
                **metadata,
            }
        )

    return model_asset


def build_python_model_asset(
    model: PythonModel, sources: list[str], docs: dict[str, TableDoc]
) -> dg.AssetsDefinition:
    """Build the multi-asset that computes a Python model's output tables."""

    @dg.multi_asset(
        name=model.name,
        group_name=model.layer,
        specs=[
            dg.AssetSpec(
                output.name,
                deps=list(model.deps),
                kinds={"duckdb", "python"},
                owners=asset_owners(),
                description=f"{output.description} Grain: {output.grain}.",
                metadata={"grain": output.grain, "dagster/column_schema": column_schema(docs[output.name])},
            )
            for output in model.outputs
        ],
    )
    def python_model_asset(context: AssetExecutionContext, warehouse: Warehouse) -> Iterator[dg.MaterializeResult]:
        settings = Settings.from_env()
        started = time.perf_counter()
        logger.info("event=model_started model=%s layer=%s outputs=%d", model.name, model.layer, len(model.outputs))
        with warehouse.connect() as con:
            counts = compute_and_write(
                con,
                model,
                lambda: ModelContext(
                    con=con, parameters=model_parameters(con, settings.kpi, sources), kpi=settings.kpi
                ),
            )
            # Read back from the tables, so no output frame outlives the model's transaction.
            previews = {
                output.name: con.execute(f"SELECT * FROM {quote_identifier(output.name)} LIMIT 5").pl()
                for output in model.outputs
            }
            extra = {
                output.name: kpi_metadata(con, output.name, docs[output.name], settings.warehouse_path)
                for output in model.outputs
            }
        logger.info(
            "event=model_finished model=%s layer=%s rows=%d seconds=%.3f",
            model.name, model.layer, sum(counts.values()), time.perf_counter() - started,
        )
        for output in model.outputs:
            logger.info("event=table_written model=%s table=%s rows=%d", model.name, output.name, counts[output.name])
            yield dg.MaterializeResult(
                asset_key=output.name,
                metadata={
                    "dagster/row_count": counts[output.name],
                    "preview": dg.MetadataValue.md(preview_markdown(previews[output.name])),
                    **extra[output.name],
                },
            )

    return python_model_asset


def build_kpi_range_check(table: str, rule: str) -> dg.AssetChecksDefinition:
    """Build an asset check that fails when any row of ``table`` breaks ``rule``."""

    @dg.asset_check(
        asset=table,
        name="kpi_values_in_range",
        description=f"Fails when any row breaks: {rule}",
    )
    def kpi_range_check(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.connect() as con:
            row = con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE NOT ({rule})) FROM {quote_identifier(table)}"
            ).fetchone()
        total, broken = (int(row[0]), int(row[1])) if row else (0, 0)
        return dg.AssetCheckResult(passed=broken == 0, metadata={"rows": total, "rows_out_of_range": broken})

    return kpi_range_check


