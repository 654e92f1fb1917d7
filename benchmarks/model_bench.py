"""Measure one Python model on an existing warehouse: wall time and peak memory.

Opens the DuckDB warehouse file with CX_DUCKDB_MEMORY_LIMIT applied, as a run does,
computes the model and writes its output tables in a transaction, then rolls the
transaction back, so the warehouse is left unchanged. It holds the warehouse's writer lock
meanwhile, as a pipeline run does. Prints the output row counts, the seconds taken and the
process's peak resident memory (``ru_maxrss``), which includes the interpreter and the
project's imports (263 MB on the benchmark machine). Run it on a warehouse that a full
load has filled, for example the one ``benchmarks/pipeline_bench.py`` leaves behind.
Usage::

    .venv/bin/python benchmarks/model_bench.py --warehouse /tmp/cx-bench/L/cx.duckdb \\
        --model ticket_metrics
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import duckdb

from cx_pipeline.model_assets import model_parameters
from cx_pipeline.project import load_project
from cx_pipeline.python_models import ModelContext, write_outputs
from cx_pipeline.settings import Settings
from cx_pipeline.warehouse import apply_memory_limit, writer_lock


def main() -> int:
    """Run the model once and print its figures."""
    project = load_project()
    models = {model.name: model for model in project.python_models}
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warehouse", type=Path, required=True, help="DuckDB warehouse file")
    parser.add_argument("--model", choices=sorted(models), required=True)
    parser.add_argument(
        "--lock-timeout", type=float, default=600.0, help="seconds to wait for a running pipeline's writer lock"
    )
    args = parser.parse_args()
    if not args.warehouse.is_file():
        parser.error(f"warehouse file not found: {args.warehouse}")

    settings = Settings.from_env()
    model = models[args.model]
    # The writer lock keeps a pipeline run from writing the warehouse at the same time.
    with writer_lock(args.warehouse, args.lock_timeout):
        con = duckdb.connect(str(args.warehouse))
        try:
            apply_memory_limit(con, settings.duckdb_memory_limit)
            started = time.perf_counter()
            con.execute("BEGIN TRANSACTION")
            context = ModelContext(
                con=con,
                parameters=model_parameters(con, settings.kpi, list(project.contracts)),
                kpi=settings.kpi,
            )
            if model.write is not None:
                counts = model.write(context)
            else:
                assert model.compute is not None
                counts = write_outputs(con, model, model.compute(context))
            seconds = time.perf_counter() - started
            con.execute("ROLLBACK")
        finally:
            con.close()

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"model {model.name} on {args.warehouse} (memory_limit {settings.duckdb_memory_limit})")
    for table, rows in counts.items():
        print(f"  {table}: {rows:,} rows")
    print(f"  {seconds:.1f} s, peak {peak_mb:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
