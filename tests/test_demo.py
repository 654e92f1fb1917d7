"""`cx-pipeline demo` on an empty machine state fills every table."""

from __future__ import annotations

import subprocess
import sys

import duckdb

from conftest import PipelineEnv

# Tables that may legitimately be empty after the demo: no demo file is unreadable.
MAY_BE_EMPTY_PREFIXES = ("rejected_files_", "quarantine_")


def test_demo_fills_every_table(pipeline_env: PipelineEnv) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cx_pipeline.cli", "demo"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "CSAT" in result.stdout
    assert "NPS" in result.stdout

    con = duckdb.connect(str(pipeline_env.warehouse), read_only=True)
    try:
        tables = [row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()

    for table in ("kpi_csat_daily", "kpi_nps_daily", "kpi_ces_daily", "mrr_monthly", "kpi_churn_monthly",
                  "cohort_retention_monthly", "kpi_conversion", "clv_customers", "clv_segments", "clv_model_params"):
        assert counts.get(table, 0) > 0, f"{table} is empty or missing"
    empty = sorted(t for t, n in counts.items() if n == 0 and not t.startswith(MAY_BE_EMPTY_PREFIXES))
    assert empty == []
    assert counts["quarantine_feedback"] > 0
