"""HTML report and materialization charts on a real run of the demo input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from cx_pipeline.cli import main
from cx_pipeline.demo import DEMO_START, generate_demo_landing
from cx_pipeline.report import CHARTS, latest_kpi_values, render_report
from cx_pipeline.settings import Settings

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DAYS = 35


@pytest.fixture
def published(pipeline_env) -> Path:
    generate_demo_landing(pipeline_env.landing, days=DAYS)
    pipeline_env.run(DEMO_START.isoformat(), (DEMO_START + dt.timedelta(days=DAYS - 1)).isoformat())
    return Settings.from_env().publish_path


def test_report_writes_charts(published: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["report", "--out", str(out)]) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    for name in ("nps", "csat", "ces", "retention", "mrr", "first_reply", "sentiment"):
        png = out / f"{name}.png"
        assert png.is_file(), f"chart {name} was not written"
        assert png.read_bytes().startswith(PNG_SIGNATURE), f"{png} is not a PNG"
        assert png.stat().st_size > 5000, f"{png} is nearly empty"
        assert f'src="{name}.png"' in page, f"index.html does not show {name}.png"
    assert "http://" not in page and "https://" not in page, "the report must not load anything from the network"
    assert "Impact table" in page


def test_report_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no published file"):
        render_report(tmp_path / "missing.duckdb", tmp_path / "out")


def test_latest_kpi_values_reaggregate(published: Path) -> None:
    con = duckdb.connect(str(published), read_only=True)
    try:
        values = latest_kpi_values(con, "kpi_csat_daily")
        satisfied, responses = con.execute(
            "SELECT sum(count_satisfied), sum(count_responses) FROM kpi_csat_daily "
            "WHERE submitted_date = (SELECT max(submitted_date) FROM kpi_csat_daily)"
        ).fetchone()
        nps = latest_kpi_values(con, "kpi_nps_daily")
        unknown = latest_kpi_values(con, "mrr_monthly")
    finally:
        con.close()
    assert values["csat_pct"] == pytest.approx(100 * satisfied / responses, abs=0.001)
    assert values["responses"] == responses
    assert -100 <= nps["nps"] <= 100
    assert unknown == {}


def test_materialization_charts_written(published: Path, pipeline_env) -> None:
    chart_dir = pipeline_env.warehouse.parent / "charts"
    tables = {table for _, _, table in CHARTS.values()} - {"kpi_impact"}
    for table in sorted(tables):
        png = chart_dir / f"{table}.png"
        assert png.is_file(), f"no chart for the materialization of {table}"
        assert png.read_bytes().startswith(PNG_SIGNATURE)
