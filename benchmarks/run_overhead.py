"""Profile the fixed cost of a single-run backfill: a range of days with no landed files.

With nothing to load, what remains is Dagster's bookkeeping: one planned and one
materialization event per asset and partition, each stored in the instance's event log.
The script runs the daily job in process under cProfile and prints the event count and
the functions that took the most time. Usage::

    .venv/bin/python benchmarks/run_overhead.py --start 2023-01-01 --end 2024-12-31
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time


def main() -> int:
    """Run the profile and print its summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--start", default="2024-12-31")
    parser.add_argument("--end", default="2024-12-31")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="cx-overhead-")
    os.makedirs(os.path.join(work, "landing"))
    os.environ.update(
        CX_LANDING_DIR=os.path.join(work, "landing"),
        CX_WAREHOUSE_PATH=os.path.join(work, "cx.duckdb"),
        CX_PARTITION_START="2015-01-01",
    )
    import dagster as dg

    from cx_pipeline.definitions import DAILY_JOB_NAME, defs

    job = defs.resolve_job_def(DAILY_JOB_NAME)
    instance = dg.DagsterInstance.ephemeral()
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    result = job.execute_in_process(
        instance=instance,
        tags={"dagster/asset_partition_range_start": args.start, "dagster/asset_partition_range_end": args.end},
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        raise_on_error=False,
    )
    profile.disable()
    seconds = time.perf_counter() - started
    events = len(instance.all_logs(result.run_id))
    print(f"range {args.start}..{args.end}: success={result.success}, {seconds:.1f} s, {events:,} events stored")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(15)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
