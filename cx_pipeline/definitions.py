"""Dagster definitions of cx-pipeline: assets, checks, the daily job and its schedule."""

import os

import dagster as dg

from cx_pipeline.dictionary import published_tables, table_docs
from cx_pipeline.ingest_assets import build_source_assets
from cx_pipeline.model_assets import (
    KPI_RANGE_RULES,
    build_kpi_range_check,
    build_model_asset,
    build_python_model_asset,
)
from cx_pipeline.partitions import daily_partitions
from cx_pipeline.project import load_project, raw_table, rejected_files_table
from cx_pipeline.publish import build_publish_asset
from cx_pipeline.warehouse import Warehouse

DAILY_JOB_NAME = "cx_daily_job"
EXECUTOR_VARIABLE = "CX_EXECUTOR"
EXECUTORS = ("in_process", "multiprocess")


def executor_from_env() -> dg.ExecutorDefinition:
    """Return the executor that CX_EXECUTOR names: in_process (default) or multiprocess."""
    name = os.environ.get(EXECUTOR_VARIABLE) or "in_process"
    if name not in EXECUTORS:
        raise ValueError(f"invalid {EXECUTOR_VARIABLE} {name!r}: use one of {', '.join(EXECUTORS)}")
    # With the DuckDB file, steps share one writer, so the in-process executor loses no
    # parallelism and saves the seconds each step subprocess needs to start. DuckLake takes
    # concurrent writers, so there the multiprocess executor runs independent steps at once.
    return dg.multiprocess_executor if name == "multiprocess" else dg.in_process_executor


def build_definitions() -> dg.Definitions:
    """Assemble every asset, check, job and schedule from the project's files."""
    project = load_project()
    partitions = daily_partitions()
    sources = list(project.contracts)

    assets: list[dg.AssetsDefinition] = []
    for contract in project.contracts.values():
        assets.extend(build_source_assets(contract, partitions))
    docs = table_docs(project)
    assets.extend(build_model_asset(model, sources, docs[model.name]) for model in project.models)
    assets.extend(build_python_model_asset(model, sources, docs) for model in project.python_models)

    published = published_tables(project)
    # Rejected-file tables are written by the raw assets, so those are their dependencies.
    rejected = {rejected_files_table(source) for source in sources}
    deps = sorted((set(published) - rejected) | {raw_table(source) for source in sources})
    assets.append(build_publish_asset(published, deps))

    model_names = {model.name for model in project.models}
    checks = [build_kpi_range_check(table, rule) for table, rule in KPI_RANGE_RULES.items() if table in model_names]

    daily_job = dg.define_asset_job(DAILY_JOB_NAME, selection=dg.AssetSelection.all(), partitions_def=partitions)
    # Each tick materializes the previous day's partition, once that day is complete.
    schedule = dg.build_schedule_from_partitioned_job(
        daily_job, hour_of_day=2, default_status=dg.DefaultScheduleStatus.RUNNING
    )

    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[daily_job],
        schedules=[schedule],
        resources={"warehouse": Warehouse()},
        executor=executor_from_env(),
    )


defs = build_definitions()


def daily_job() -> dg.JobDefinition:
    """Return the daily job; executors that run each step in its own process rebuild it here."""
    return defs.resolve_job_def(DAILY_JOB_NAME)
