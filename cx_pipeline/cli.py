"""Command line: ``cx-pipeline run``, ``demo``, ``summary``, ``impact``, ``docs`` and ``report``."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from cx_pipeline.partitions import parse_partition_key
from cx_pipeline.project import load_project
from cx_pipeline.settings import ConfigError, Settings

if TYPE_CHECKING:
    from dagster import DagsterInstance, ExecuteInProcessResult, JobExecutionResult

logger = logging.getLogger("cx_pipeline")

DEMO_CONFIG = Path(__file__).resolve().parent / "demo_config.yaml"


def run_range(first: dt.date, last: dt.date) -> bool:
    """Materialize every asset for the partitions ``first``..``last`` as one Dagster run."""
    import dagster as dg

    from cx_pipeline.definitions import DAILY_JOB_NAME, daily_job, defs

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

    # Check the settings and every mapping file before the run, so a mistake is one line
    # here instead of a failure in every step.
    settings = Settings.from_env()
    load_project().mappings(settings.kpi)
    if not settings.landing_dir.is_dir():
        raise ValueError(f"CX_LANDING_DIR {settings.landing_dir.resolve()} does not exist")

    tags = {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }
    run_config: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": log_level()}}}}
    if job.executor_def is dg.multiprocess_executor:
        # Step processes rebuild the job from its module and report to an instance on disk.
        with _run_instance(persistent=True) as instance:
            result = dg.execute_job(
                dg.reconstructable(daily_job), instance=instance, run_config=run_config, tags=tags
            )
            return _report_run(result)
    with _run_instance(persistent=False) as instance:
        result = job.execute_in_process(instance=instance, tags=tags, run_config=run_config, raise_on_error=False)
        return _report_run(result)


@contextmanager
def _run_instance(persistent: bool) -> Iterator[DagsterInstance]:
    """Yield DAGSTER_HOME's instance if set, else a throwaway one (on disk when ``persistent``)."""
    import dagster as dg

    if os.environ.get("DAGSTER_HOME"):
        with dg.DagsterInstance.get() as instance:
            yield instance
    elif persistent:
        with tempfile.TemporaryDirectory(prefix="cx-dagster-") as folder:
            with dg.DagsterInstance.local_temp(tempdir=folder) as instance:
                yield instance
    else:
        with dg.DagsterInstance.ephemeral() as instance:
            yield instance


def _report_run(result: ExecuteInProcessResult | JobExecutionResult) -> bool:
    """Log each failed step's cause and each failed check, and return whether the run succeeded."""
    for event in result.all_events:
        if event.is_step_failure and event.step_key:
            error = event.step_failure_data.error
            if error is None:
                cause = event.message
            elif error.cause is not None:
                cause = error.cause.message
            else:
                cause = error.message
            logger.error("event=step_failed step=%s error=%s", event.step_key, (cause or "").strip())
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if evaluation is not None and not evaluation.passed:
                logger.warning(
                    "event=check_failed asset=%s check=%s severity=%s",
                    evaluation.asset_key.to_user_string(), evaluation.check_name, evaluation.severity.value,
                )
    return result.success


def warehouse_label(settings: Settings) -> str:
    """Name the warehouse a run writes: the DuckLake catalog (password hidden) or the DuckDB file."""
    from cx_pipeline import ducklake

    target = ducklake.target_from_env()
    if target is None:
        return str(settings.warehouse_path)
    return f"DuckLake {target.redacted_url()} (data path {target.data_path})"


def log_level() -> str:
    """Return the log level of the command and of Dagster's console (CX_LOG_LEVEL, default INFO)."""
    level = (os.environ.get("CX_LOG_LEVEL") or "INFO").upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError(f"invalid CX_LOG_LEVEL {level!r}: use DEBUG, INFO, WARNING or ERROR")
    return level


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
        print(f"Published tables in {settings.publish_path} (warehouse: {warehouse_label(settings)})")
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


# Decimals shown per kpi_impact unit.
_IMPACT_DECIMALS = {"percent": 1, "nps_points": 1, "score": 2, "compound": 3, "minutes": 1}
_IMPACT_UNIT_LABELS = {
    "percent": "%", "nps_points": "points", "score": "score", "compound": "compound", "minutes": "min"
}
_IMPACT_HEADER = ("KPI", "before", "after", "n before", "n after", "difference", "95% CI", "significant")


def _format_number(value: float | None, decimals: int, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def format_impact_table(rows: list[dict[str, Any]]) -> str:
    """Format kpi_impact rows of one go-live as an aligned text table with notes below it."""
    lines: list[list[str]] = [list(_IMPACT_HEADER)]
    notes: list[str] = []
    for row in rows:
        decimals = _IMPACT_DECIMALS.get(row["unit"], 3)
        label = f"{row['kpi']}" + (f" [{row['scale']}]" if row["scale"] else "")
        label += f" ({_IMPACT_UNIT_LABELS.get(row['unit'], row['unit'])})"
        if row["status"] == "ok":
            low = _format_number(row["ci_low"], decimals, signed=True)
            high = _format_number(row["ci_high"], decimals, signed=True)
            interval = f"[{low}, {high}]"
            significant = "yes" if row["is_significant"] else "no"
        else:
            interval = "-"
            significant = row["status"]
            notes.append(f"  {label}: {row['reason']}")
        lines.append(
            [
                label,
                _format_number(row["value_before"], decimals),
                _format_number(row["value_after"], decimals),
                "-" if row["n_before"] is None else f"{row['n_before']:,}",
                "-" if row["n_after"] is None else f"{row['n_after']:,}",
                _format_number(row["difference"], decimals, signed=True),
                interval,
                significant,
            ]
        )
    widths = [max(len(line[column]) for line in lines) for column in range(len(_IMPACT_HEADER))]
    text = []
    for line in lines:
        # The KPI name is left-aligned and every other column right-aligned.
        cells = [line[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)]
        text.append("  ".join(cells).rstrip())
    text.insert(1, "  ".join("-" * width for width in widths))
    if notes:
        text.extend(["", "Notes:", *notes])
    return "\n".join(text)


def print_impact(settings: Settings, name: str) -> None:
    """Print the before/after comparison of one go-live from the published kpi_impact table.

    Reads the published file, like ``summary``, so a run writing the warehouse does not block it.
    """
    path = settings.publish_path
    if not path.is_file():
        raise ValueError(f"no published tables at {path}; run the pipeline first (cx-pipeline run)")
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if "kpi_impact" not in tables:
            raise ValueError(f"kpi_impact not found in {path}; run the pipeline with impact_go_lives in CX_CONFIG")
        frame = con.execute("SELECT * FROM kpi_impact WHERE go_live_name = ? ORDER BY rowid", [name]).pl()
        if frame.is_empty():
            known = con.execute("SELECT DISTINCT go_live_name FROM kpi_impact ORDER BY 1").fetchall()
            names = [row[0] for row in known]
            raise ValueError(f"go-live {name!r} not found in kpi_impact; known: {names}")
    finally:
        con.close()

    rows = frame.to_dicts()
    first = rows[0]
    filters = ", ".join(
        f"{key} {first[f'{key}_filter']!r}" for key in ("channel", "segment") if first[f"{key}_filter"]
    )
    print(
        f"Impact of {name}: go-live {first['go_live_date']}, {first['window_days']} days before and after"
        f" ({filters or 'all channels and segments'})"
    )
    after_note = "" if first["after_window_complete"] else " (not complete: it ends after the observation end)"
    print(
        f"Before: {first['before_first_day']} to {first['before_last_day']}    "
        f"After: {first['after_first_day']} to {first['after_last_day']}{after_note}"
    )
    print()
    print(format_impact_table(rows))


def _command_run(args: argparse.Namespace) -> int:
    first, last = parse_partition_key(args.start), parse_partition_key(args.end)
    ok = run_range(first, last)
    if ok:
        print_summary(Settings.from_env())
    return 0 if ok else 1


def _command_demo(args: argparse.Namespace) -> int:
    from cx_pipeline.demo import DEMO_DAYS, DEMO_START, generate_demo_landing

    if not os.environ.get("CX_CONFIG"):
        os.environ["CX_CONFIG"] = str(DEMO_CONFIG)
        print(f"Using the demo settings in {DEMO_CONFIG} (set CX_CONFIG to use your own)")
    settings = Settings.from_env()
    print(f"Writing demo input to {settings.landing_dir}")
    generate_demo_landing(settings.landing_dir)
    last = DEMO_START + dt.timedelta(days=DEMO_DAYS - 1)
    print(f"Materializing every asset for {DEMO_START}..{last} into {warehouse_label(settings)}")
    ok = run_range(DEMO_START, last)
    if ok:
        print_summary(settings)
    return 0 if ok else 1


def _command_generate(args: argparse.Namespace) -> int:
    from cx_pipeline.generate import DAYS, START, generate_landing

    rows = generate_landing(Path(args.out), args.scale, seed=args.seed)
    last = START + dt.timedelta(days=DAYS - 1)
    print(f"Wrote scale {args.scale} to {args.out} for arrival days {START}..{last}:")
    for source, count in rows.items():
        print(f"  {source:<16} {count:>12,} rows")
    return 0


def _command_summary(args: argparse.Namespace) -> int:
    print_summary(Settings.from_env())
    return 0


def _command_impact(args: argparse.Namespace) -> int:
    print_impact(Settings.from_env(), args.name)
    return 0


# Days of demo input that ``docs`` runs when no published file is given. The committed
# dictionary is generated this way, and tests/test_dictionary.py repeats it.
DICTIONARY_DEMO_DAYS = 60


def published_demo_file(workdir: Path) -> Path:
    """Run the pipeline on DICTIONARY_DEMO_DAYS days of demo input in ``workdir`` and return
    the published file. Sets CX_LANDING_DIR, CX_WAREHOUSE_PATH and CX_CONFIG for this process."""
    from cx_pipeline.demo import DEMO_START, generate_demo_landing

    os.environ["CX_LANDING_DIR"] = str(workdir / "landing")
    os.environ["CX_WAREHOUSE_PATH"] = str(workdir / "cx.duckdb")
    os.environ["CX_CONFIG"] = str(DEMO_CONFIG)
    os.environ.pop("CX_PUBLISH_PATH", None)
    generate_demo_landing(workdir / "landing", days=DICTIONARY_DEMO_DAYS)
    if not run_range(DEMO_START, DEMO_START + dt.timedelta(days=DICTIONARY_DEMO_DAYS - 1)):
        raise ValueError("the demo run for the data dictionary failed; see the log above")
    return Settings.from_env().publish_path


def write_dictionary(published: Path, out: Path) -> None:
    """Write the data dictionary of the published file ``published`` to ``out``."""
    from cx_pipeline.dictionary import render_dictionary

    con = duckdb.connect(str(published), read_only=True)
    try:
        text = render_dictionary(load_project(), con)
    finally:
        con.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")


def _command_docs(args: argparse.Namespace) -> int:
    import tempfile

    if args.published:
        published = Path(args.published)
        if not published.is_file():
            raise ValueError(f"--published {published} is not a file; give a published DuckDB file")
        write_dictionary(published, Path(args.out))
    else:
        with tempfile.TemporaryDirectory(prefix="cx-docs-") as workdir:
            print(f"Running {DICTIONARY_DEMO_DAYS} days of demo input in {workdir} to read the column types")
            write_dictionary(published_demo_file(Path(workdir)), Path(args.out))
    print(f"Wrote {args.out}")
    return 0


def _command_report(args: argparse.Namespace) -> int:
    from cx_pipeline.report import render_report

    published = Path(args.published) if args.published else Settings.from_env().publish_path
    index = render_report(published, Path(args.out))
    print(f"Wrote {index}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``cx-pipeline`` command."""
    parser = argparse.ArgumentParser(
        prog="cx-pipeline",
        description="Customer-experience KPI pipeline. Paths come from CX_LANDING_DIR, "
        "CX_WAREHOUSE_PATH, CX_PUBLISH_PATH and CX_CONFIG; CX_WAREHOUSE_URL and "
        "CX_DUCKLAKE_DATA_PATH select a DuckLake warehouse instead of the DuckDB file.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="materialize every asset for a range of arrival days as one run")
    run.add_argument("--start", required=True, help="first arrival day, YYYY-MM-DD")
    run.add_argument("--end", required=True, help="last arrival day, YYYY-MM-DD (inclusive)")
    run.set_defaults(handler=_command_run)

    demo = commands.add_parser("demo", help="write the seeded demo input and run the pipeline on it")
    demo.set_defaults(handler=_command_demo)

    generate = commands.add_parser(
        "generate", help="write seeded synthetic landing folders of every source for benchmarks"
    )
    generate.add_argument("--scale", required=True, choices=["S", "M", "L"],
                          help="S: about 100k rows per source, M: about 1M, L: 10M feedback and 5M tickets")
    generate.add_argument("--out", required=True, help="landing folder to write (source/YYYY-MM-DD/file)")
    generate.add_argument("--seed", type=int, default=42, help="random seed; the same seed gives the same files")
    generate.set_defaults(handler=_command_generate)

    summary = commands.add_parser("summary", help="print table row counts and overall survey KPIs")
    summary.set_defaults(handler=_command_summary)

    impact = commands.add_parser(
        "impact", help="print each KPI before and after a go-live from the kpi_impact table"
    )
    impact.add_argument("--name", required=True, help="name of the go-live, as in impact_go_lives of CX_CONFIG")
    impact.set_defaults(handler=_command_impact)

    docs = commands.add_parser(
        "docs", help="write the data dictionary (Markdown) of every published table"
    )
    docs.add_argument("--out", required=True, help="Markdown file to write, e.g. docs/data_dictionary.md")
    docs.add_argument(
        "--published",
        help="published DuckDB file to read column types from; default: a fresh demo run in a temporary folder",
    )
    docs.set_defaults(handler=_command_docs)

    report = commands.add_parser("report", help="write a static HTML report with KPI charts")
    report.add_argument("--out", required=True, help="folder to write index.html and the chart PNGs to")
    report.add_argument("--published", help="published DuckDB file to read; default: CX_PUBLISH_PATH")
    report.set_defaults(handler=_command_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        logging.basicConfig(level=log_level(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
        return int(args.handler(args))
    except (ValueError, ConfigError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
