"""Benchmark the pipeline on generated data, side by side with a pandas baseline.

Runs, in one invocation on one machine:

1. ``generate``: seeded landing data of the chosen scale (two years of daily folders);
2. ``full load``: every day but the last, as one single-run backfill into a new warehouse;
3. ``one-day run``: the last day, on top of the full load;
4. ``empty run``: a day with no files (the fixed cost of a run);
5. ``365-day backfill``: the last 365 days again on the loaded warehouse, as one run,
   and ``365-day load`` of the same days into a new warehouse for comparison;
6. ``pandas``: the baseline of benchmarks/pandas_baseline.py on the same files, in a
   process of its own, and a check that its KPI values equal the pipeline's published
   tables. The check needs a run that loads the last day (one-day or backfill), because
   the full load leaves it out while pandas reads every day.

Every pipeline run is a separate ``cx-pipeline run`` process; wall time and peak resident
memory come from ``os.wait4`` on that process, and per-stage times from Dagster's
step-finished events. ``--runs`` measures a subset of steps 2 to 5, for example only the
full load of scale L. ``<workdir>/<scale>`` is deleted and written again. Usage::

    .venv/bin/python benchmarks/pipeline_bench.py --scale S --workdir /tmp/cx-bench
    .venv/bin/python benchmarks/pipeline_bench.py --scale L --runs full --skip-pandas
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pandas_baseline import measured_kpis  # noqa: E402

from cx_pipeline.generate import DAYS, SCALES, START, generate_landing  # noqa: E402

LOG_FIELDS = re.compile(r"(\w+)=(\S+)")
STEP_FINISHED = re.compile(r' - (\S+) - STEP_SUCCESS - Finished execution of step "\S+" in (.+)\.$')
DURATION_PART = re.compile(r"([\d.]+)(ms|h|m|s)")
UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
RUNS = ["full", "one-day", "empty", "backfill", "load365"]
STAGES = [
    ("extract", re.compile(r"^raw_")),
    ("validate", re.compile(r"^validate_")),
    ("staging", re.compile(r"^stg_")),
    ("sentiment", re.compile(r"^feedback_text$|sentiment")),
    ("clv fit", re.compile(r"^clv$")),
    ("publish", re.compile(r"^published_warehouse$")),
    ("checks", re.compile(r"_kpi_values_in_range$")),
    ("marts", re.compile(r".*")),
]


@dataclass
class RunResult:
    """Measured cost of one pipeline run."""

    label: str
    seconds: float
    peak_mb: float
    stages: dict[str, float] = field(default_factory=dict)


def _seconds(duration: str) -> float:
    """Parse a Dagster duration such as ``850ms``, ``3.99s`` or ``1m 3s``."""
    return sum(float(value) * UNIT_SECONDS[unit] for value, unit in DURATION_PART.findall(duration))


def _stage_of(step: str) -> str:
    return next(name for name, pattern in STAGES if pattern.search(step))


def run_pipeline(label: str, first: dt.date, last: dt.date, env: dict[str, str], log_dir: Path) -> RunResult:
    """Run ``cx-pipeline run`` for a range in a new process and measure it."""
    log_path = log_dir / f"{label.replace(' ', '_')}.log"
    command = [sys.executable, "-m", "cx_pipeline.cli", "run", "--start", first.isoformat(), "--end", last.isoformat()]
    started = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{label} failed; see {log_path}")

    stages: dict[str, float] = {}
    for line in log_path.read_text().splitlines():
        match = STEP_FINISHED.search(line)
        if match:
            stage = _stage_of(match.group(1))
            stages[stage] = stages.get(stage, 0.0) + _seconds(match.group(2))
    stages["run overhead"] = max(seconds - sum(stages.values()), 0.0)
    # ru_maxrss is in kilobytes on Linux.
    return RunResult(label, seconds, usage.ru_maxrss / 1024, stages)


def ingest_throughput(log_path: Path) -> list[tuple[str, int, float, float]]:
    """Return (source, rows, extract seconds, validate seconds) from a run's log lines."""
    extract: dict[str, tuple[int, float]] = {}
    validate: dict[str, float] = {}
    for line in log_path.read_text().splitlines():
        if "event=raw_loaded" in line or "event=validated" in line:
            fields = dict(LOG_FIELDS.findall(line))
            if fields["event"] == "raw_loaded":
                extract[fields["source"]] = (int(fields["rows"]), float(fields["extract_seconds"]))
            else:
                validate[fields["source"]] = float(fields["validate_seconds"])
    return [(source, rows, seconds, validate.get(source, 0.0)) for source, (rows, seconds) in sorted(extract.items())]


def compare_with_baseline(published: Path, baseline: dict[str, pd.DataFrame]) -> list[str]:
    """Return the differences between the pipeline's tables and the baseline's."""
    checks = {
        "kpi_csat_daily": (["submitted_date", "channel", "segment", "survey_type"], ["count_responses", "count_satisfied"]),
        "kpi_nps_daily": (["submitted_date", "channel", "segment"], ["count_responses", "count_promoters", "count_detractors"]),
        "kpi_ces_daily": (["submitted_date", "channel", "segment"], ["count_responses", "count_easy", "ces_mean"]),
        "kpi_support_daily": (["created_date", "channel", "priority"], ["tickets_created", "tickets_solved"]),
    }
    problems = []
    con = duckdb.connect(str(published), read_only=True)
    try:
        for table, (keys, values) in checks.items():
            ours = con.execute(f"SELECT {', '.join(keys + values)} FROM {table}").df()
            if table == "kpi_support_daily":
                ours = ours.groupby(keys, as_index=False)[values].sum()
            theirs = baseline[table][keys + values].copy()
            for frame in (ours, theirs):
                frame[keys[0]] = pd.to_datetime(frame[keys[0]]).dt.strftime("%Y-%m-%d")
            merged = ours.merge(theirs, on=keys, how="outer", suffixes=("_pipeline", "_pandas"), indicator=True)
            unmatched = int((merged["_merge"] != "both").sum())
            if unmatched:
                problems.append(f"{table}: {unmatched} rows in only one of the two results")
            for value in values:
                left, right = merged[f"{value}_pipeline"].astype(float), merged[f"{value}_pandas"].astype(float)
                differing = int(((left - right).abs() > 1e-9 * right.abs().clip(lower=1)).sum())
                if differing:
                    problems.append(f"{table}.{value}: {differing} rows differ")
    finally:
        con.close()
    return problems


def main() -> int:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="S")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cx-bench"))
    parser.add_argument("--skip-pandas", action="store_true", help="leave out the pandas baseline")
    parser.add_argument(
        "--runs",
        default=",".join(RUNS),
        help=f"comma-separated runs to measure, in this order: {','.join(RUNS)} "
        "(one-day, empty and backfill run on the full load's warehouse, so they need full)",
    )
    args = parser.parse_args()
    runs = [name.strip() for name in args.runs.split(",") if name.strip()]
    unknown = sorted(set(runs) - set(RUNS))
    if unknown:
        parser.error(f"invalid --runs {unknown}: expected names from {','.join(RUNS)}")
    if "full" not in runs and set(runs) & {"one-day", "empty", "backfill"}:
        parser.error("--runs one-day, empty and backfill need full, because they run on its warehouse")

    work = args.workdir / args.scale
    shutil.rmtree(work, ignore_errors=True)
    landing, logs = work / "landing", work / "logs"
    logs.mkdir(parents=True)
    last_day = START + dt.timedelta(days=DAYS - 1)

    print(f"cx-pipeline benchmark, scale {args.scale}, {dt.date.today()}, {platform.node()}: "
          f"{os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB memory")
    started = time.perf_counter()
    rows = generate_landing(landing, args.scale)
    print(f"generate: {time.perf_counter() - started:.1f} s; rows per source: {rows}")

    def env_for(warehouse: Path) -> dict[str, str]:
        # DEBUG makes Dagster print its step-finished events, which give the stage times.
        return dict(os.environ, CX_LANDING_DIR=str(landing), CX_WAREHOUSE_PATH=str(warehouse),
                    CX_PARTITION_START=START.isoformat(), CX_LOG_LEVEL="DEBUG")

    main_env = env_for(work / "cx.duckdb")
    year_start = last_day - dt.timedelta(days=364)
    empty_day = last_day + dt.timedelta(days=1)
    plan = {
        "full": ("full load", START, last_day - dt.timedelta(days=1), main_env),
        "one-day": ("one-day run", last_day, last_day, main_env),
        "empty": ("empty run", empty_day, empty_day, main_env),
        "backfill": ("365-day backfill", year_start, last_day, main_env),
        "load365": ("365-day load", year_start, last_day, env_for(work / "fresh.duckdb")),
    }
    stage_names = [name for name, _ in STAGES] + ["run overhead"]
    results: dict[str, RunResult] = {}
    for name in RUNS:
        if name not in runs:
            continue
        label, first, last, env = plan[name]
        load_before = os.getloadavg()[0]
        results[name] = run_pipeline(label, first, last, env, logs)
        print(f"{label}: {results[name].seconds:.1f} s, peak {results[name].peak_mb:.0f} MB, "
              f"load average {load_before:.2f} before and {os.getloadavg()[0]:.2f} after", flush=True)

    print("\n| run | wall s | peak MB | " + " | ".join(stage_names) + " |")
    print("|---" * (3 + len(stage_names)) + "|")
    for result in results.values():
        cells = [f"{result.stages.get(name, 0.0):.1f}" for name in stage_names]
        print(f"| {result.label} | {result.seconds:.1f} | {result.peak_mb:.0f} | " + " | ".join(cells) + " |")

    if "full" not in results:
        return 0
    full = results["full"]
    throughput = ingest_throughput(logs / "full_load.log")
    landed = sum(count for _, count, _, _ in throughput)
    print(f"\nfull load: {landed:,} landed rows, {landed / full.seconds:,.0f} rows/s overall")
    print("\n| source | rows | extract s | validate s | extract rows/s | validate rows/s | together rows/s |")
    print("|---|---|---|---|---|---|---|")
    for source, count, extract_seconds, validate_seconds in throughput:
        together = count / (extract_seconds + validate_seconds) if count else 0.0
        print(f"| {source} | {count:,} | {extract_seconds:.2f} | {validate_seconds:.2f} | "
              f"{count / extract_seconds:,.0f} | {count / max(validate_seconds, 1e-9):,.0f} | {together:,.0f} |")
    if "one-day" in results and "empty" in results:
        print(f"one-day run / empty run: {results['one-day'].seconds / results['empty'].seconds:.2f}")
    if "backfill" in results and "load365" in results:
        print(f"365-day backfill / 365-day load: {results['backfill'].seconds / results['load365'].seconds:.2f}")

    if not args.skip_pandas:
        # A spawned process starts without the generated data in memory, so its peak is
        # the baseline's own.
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            baseline, pandas_seconds, pandas_peak_mb = pool.apply(measured_kpis, (landing,))
        print(f"\npandas baseline (survey KPIs and ticket counts, all {DAYS} days): "
              f"{pandas_seconds:.1f} s, peak {pandas_peak_mb:.0f} MB")
        comparable = full.seconds - full.stages.get("sentiment", 0.0)
        print(f"pipeline full load without sentiment: {comparable:.1f} s; pandas / pipeline = "
              f"{pandas_seconds / comparable:.2f} (10 or more would be 10x faster than pandas)")
        if results.keys() & {"one-day", "backfill"}:
            problems = compare_with_baseline(work / "cx_published.duckdb", baseline)
            print("KPI values: " + ("identical" if not problems else "DIFFERENT: " + "; ".join(problems)))
        else:
            print("KPI values: not compared, because the full load leaves out the last day that "
                  "pandas reads; add one-day or backfill to --runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
