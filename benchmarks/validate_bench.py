"""Measure parsing, validation and the quarantine split per source, without Dagster.

Generates seeded landing data (``cx-pipeline generate``'s scales) or reads an existing
landing folder, extracts every day of every source with ``extract_partition``, and times
``validate_rows`` on the extracted rows in chunks of days, as the validate step runs it.
Prints rows per second for extraction, validation and both together. ``--profile SOURCE``
writes a cProfile of that source's validation and prints its top functions. Usage::

    .venv/bin/python benchmarks/validate_bench.py --scale S --workdir /tmp/cx-validate-bench
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import pstats
import sys
import time
from pathlib import Path

import polars as pl

from cx_pipeline.extract import extract_partition
from cx_pipeline.generate import DAYS, SCALES, START, generate_landing
from cx_pipeline.ingest_assets import CHUNK_DAYS, day_chunks
from cx_pipeline.partitions import days_between
from cx_pipeline.project import load_project
from cx_pipeline.settings import Settings
from cx_pipeline.validate import validate_rows

SOURCES = ["feedback", "orders", "sessions", "subscriptions", "ticket_comments", "tickets"]


def measure_source(
    landing: Path, source: str, first: dt.date, last: dt.date, profiler: cProfile.Profile | None
) -> tuple[int, int, float, float]:
    """Return (rows, quarantined rows, extract seconds, validate seconds) of one source."""
    settings = Settings.from_env()
    project = load_project()
    contract = project.contracts[source]
    mappings = project.mappings(settings.kpi)[source]
    by_name = project.mappings_by_name(source, settings.kpi)

    rows = quarantined = 0
    extract_seconds = validate_seconds = 0.0
    for chunk_first, chunk_last in day_chunks(first, last):
        started = time.perf_counter()
        frames = [extract_partition(landing, contract, mappings, day).rows for day in days_between(chunk_first, chunk_last)]
        raw = pl.concat(frames).sort("_partition_date", "_source_file", "_row_number")
        extract_seconds += time.perf_counter() - started

        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        result = validate_rows(raw.drop("_loaded_at", strict=False), contract, by_name, settings.kpi)
        if profiler is not None:
            profiler.disable()
        validate_seconds += time.perf_counter() - started
        rows += raw.height
        quarantined += result.quarantine.height
    return rows, quarantined, extract_seconds, validate_seconds


def main() -> int:
    """Run the measurement and print one table row per source."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scale", choices=sorted(SCALES), default="S", help="scale to generate; not used with --landing"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("/tmp/cx-validate-bench"),
        help="folder of the generated data (<workdir>/<scale>/landing) and of --profile output",
    )
    parser.add_argument("--landing", type=Path, help="read this landing folder instead of generating one")
    parser.add_argument("--days", type=int, default=DAYS, help="number of days from 2023-01-01 to read")
    parser.add_argument("--source", choices=SOURCES, action="append", help="measure only this source (repeatable)")
    parser.add_argument("--profile", choices=SOURCES, help="profile the validation of this source with cProfile")
    args = parser.parse_args()

    landing = args.landing
    if landing is None:
        landing = args.workdir / args.scale / "landing"
        if not landing.is_dir():
            started = time.perf_counter()
            generate_landing(landing, args.scale)
            print(f"generate: {time.perf_counter() - started:.1f} s")
    first, last = START, START + dt.timedelta(days=args.days - 1)
    print(f"landing {landing}, days {first}..{last}, chunks of {CHUNK_DAYS} days")

    print("\n| source | rows | quarantined | extract s | validate s | extract rows/s | validate rows/s | together rows/s |")
    print("|---|---|---|---|---|---|---|---|")
    for source in args.source or SOURCES:
        profiler = cProfile.Profile() if source == args.profile else None
        rows, quarantined, extract_seconds, validate_seconds = measure_source(landing, source, first, last, profiler)
        together = rows / (extract_seconds + validate_seconds)
        print(f"| {source} | {rows:,} | {quarantined:,} | {extract_seconds:.2f} | {validate_seconds:.2f} | "
              f"{rows / extract_seconds:,.0f} | {rows / validate_seconds:,.0f} | {together:,.0f} |", flush=True)
        if profiler is not None:
            profile_path = args.workdir / f"validate_{source}.prof"
            profile_path.parent.mkdir(parents=True, exist_ok=True)
            profiler.dump_stats(profile_path)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
            print(f"profile written to {profile_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
