"""Command line: ``cx-pipeline run``, ``demo`` and ``summary``."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
from collections.abc import Sequence

import duckdb

from cx_pipeline.partitions import parse_partition_key
from cx_pipeline.settings import ConfigError, Settings

logger = logging.getLogger("cx_pipeline")


def run_range(first: dt.date, last: dt.date) -> bool:
    """Materialize every asset for the partitions ``first``..``last`` as one Dagster run."""
    import dagster as dg

    from cx_pipeline.definitions import DAILY_JOB_NAME, defs

    job = defs.resolve_job_def(DAILY_JOB_NAME)
    partitions = job.partitions_def
    assert isinstance(partitions, dg.TimeWindowPartitionsDefinition)
    earliest = partitions.start.date()
    if last < first:
        raise ValueError(f"--end {last} is before --start {first}")
    if first < earliest:
        raise ValueError(f"--start {first} is before the first partition {earliest} (set CX_PARTITION_START)")
    if last >= dt.date.today():
        raise ValueError(f"--end {last} is not a complete day yet; the last partition is yesterday")

    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    result = job.execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
        raise_on_error=False,
    )
    if not result.success:
        for event in result.all_events:
            if event.is_failure and event.step_key:
                logger.error("step %s failed: %s", event.step_key, event.message)
    return result.success


def print_summary(settings: Settings) -> None:
    """Print the overall survey KPIs and the row counts of the published tables.

    Reads the published file, so a run writing the warehouse at the same time never blocks it.
    """
    if not settings.publish_path.is_file():
        print(f"No published tables yet at {settings.publish_path}; run the pipeline first.")
        return
    con = duckdb.connect(str(settings.publish_path), read_only=True)
    try:
        tables = [row[0] for row in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        print(f"Published tables in {settings.publish_path} (warehouse: {settings.warehouse_path})")
        for table in tables:
            count = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            print(f"  {table:<32} {count:>10,} rows")

        print("\nSurvey KPIs over all days (re-aggregated from numerators and denominators)")
        if "kpi_csat_daily" in tables:
            n, satisfied = con.execute(
                "SELECT sum(count_responses), sum(count_satisfied) FROM kpi_csat_daily"
            ).fetchone()
            if n:
                print(f"  CSAT {100 * satisfied / n:6.1f} %   ({satisfied:,} satisfied of {n:,})")
        if "kpi_nps_daily" in tables:
            n, p, d = con.execute(
                "SELECT sum(count_responses), sum(count_promoters), sum(count_detractors) FROM kpi_nps_daily"
            ).fetchone()
            if n:
                share_p, share_d = p / n, d / n
                margin = 196 * ((share_p + share_d - (share_p - share_d) ** 2) / n) ** 0.5
                print(f"  NPS  {100 * (share_p - share_d):6.1f}     (+/- {margin:.1f} at 95 %, n = {n:,})")
        if "kpi_ces_daily" in tables:
            for scale_min, scale_max, n, total, easy in con.execute(
                "SELECT scale_min, scale_max, sum(count_responses), sum(sum_score), sum(count_easy) "
                "FROM kpi_ces_daily GROUP BY ALL ORDER BY ALL"
            ).fetchall():
                print(f"  CES  {total / n:6.2f}     on {scale_min}-{scale_max}, {100 * easy / n:.1f} % easy (n = {n:,})")
    finally:
        con.close()


def _command_run(args: argparse.Namespace) -> int:
    first, last = parse_partition_key(args.start), parse_partition_key(args.end)
    ok = run_range(first, last)
    if ok:
        print_summary(Settings.from_env())
    return 0 if ok else 1


def _command_demo(args: argparse.Namespace) -> int:
    from cx_pipeline.demo import DEMO_DAYS, DEMO_START, generate_demo_landing

    settings = Settings.from_env()
    print(f"Writing demo input to {settings.landing_dir}")
    generate_demo_landing(settings.landing_dir)
    last = DEMO_START + dt.timedelta(days=DEMO_DAYS - 1)
    print(f"Materializing every asset for {DEMO_START}..{last} into {settings.warehouse_path}")
    ok = run_range(DEMO_START, last)
    if ok:
        print_summary(settings)
    return 0 if ok else 1


def _command_summary(args: argparse.Namespace) -> int:
    print_summary(Settings.from_env())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``cx-pipeline`` command."""
    parser = argparse.ArgumentParser(
        prog="cx-pipeline",
        description="Customer-experience KPI pipeline. Paths come from CX_LANDING_DIR, "
        "CX_WAREHOUSE_PATH and CX_CONFIG.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="materialize every asset for a range of arrival days as one run")
    run.add_argument("--start", required=True, help="first arrival day, YYYY-MM-DD")
    run.add_argument("--end", required=True, help="last arrival day, YYYY-MM-DD (inclusive)")
    run.set_defaults(handler=_command_run)

    demo = commands.add_parser("demo", help="write the seeded demo input and run the pipeline on it")
    demo.set_defaults(handler=_command_demo)

    summary = commands.add_parser("summary", help="print table row counts and overall survey KPIs")
    summary.set_defaults(handler=_command_summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (ValueError, ConfigError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
