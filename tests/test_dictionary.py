"""Data dictionary and BI guide: every published column is documented, the committed page is
current, and every SQL example of the BI guide runs on a real published file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from cx_pipeline.cli import published_demo_file
from cx_pipeline.dictionary import load_sidecar, render_dictionary, undocumented_columns
from cx_pipeline.project import load_project
from cx_pipeline.settings import ConfigError

REPO = Path(__file__).resolve().parent.parent
SQL_BLOCK = re.compile(r"```sql\n(.*?)```", re.DOTALL)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A published file from the same demo run that `cx-pipeline docs` uses."""
    workdir = tmp_path_factory.mktemp("dictionary")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("CX_LANDING_DIR", "CX_WAREHOUSE_PATH", "CX_CONFIG", "CX_PUBLISH_PATH"):
            patch.setenv(name, "")
        patch.delenv("DAGSTER_HOME", raising=False)
        yield published_demo_file(workdir)


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), read_only=True)


def test_published_columns_documented(published: Path) -> None:
    con = _connect(published)
    try:
        problems = undocumented_columns(load_project(), con)
    finally:
        con.close()
    assert problems == [], f"document these in the table's .yml sidecar or contract: {problems}"


def test_dictionary_page_current(published: Path) -> None:
    con = _connect(published)
    try:
        expected = render_dictionary(load_project(), con)
    finally:
        con.close()
    committed = (REPO / "docs" / "data_dictionary.md").read_text(encoding="utf-8")
    assert committed == expected, "docs/data_dictionary.md is out of date: run cx-pipeline docs --out docs/data_dictionary.md"


def test_bi_guide_queries_run(published: Path) -> None:
    guide = (REPO / "docs" / "bi_guide.md").read_text(encoding="utf-8")
    queries = SQL_BLOCK.findall(guide)
    assert len(queries) >= 5, "the BI guide should hold its example queries in ```sql blocks"
    con = _connect(published)
    try:
        for query in queries:
            rows = con.execute(query).fetchall()
            assert rows, f"BI guide query returned no rows:\n{query}"
    finally:
        con.close()


def test_bi_guide_csat_matches_counts(published: Path) -> None:
    guide = (REPO / "docs" / "bi_guide.md").read_text(encoding="utf-8")
    csat_query = next(query for query in SQL_BLOCK.findall(guide) if "csat_pct" in query and "month" in query)
    con = _connect(published)
    try:
        monthly = {row[0]: row[1] for row in con.execute(csat_query).fetchall()}
        satisfied, responses = con.execute(
            "SELECT sum(count_satisfied), sum(count_responses) FROM kpi_csat_daily "
            "WHERE date_trunc('month', submitted_date) = DATE '2025-01-01'"
        ).fetchone()
        averaged = con.execute(
            "SELECT avg(csat_pct) FROM kpi_csat_daily WHERE date_trunc('month', submitted_date) = DATE '2025-01-01'"
        ).fetchone()[0]
    finally:
        con.close()
    january = next(value for month, value in monthly.items() if str(month).startswith("2025-01"))
    assert january == pytest.approx(100 * satisfied / responses)
    # The demo data has rows of very different sizes, so the wrong average differs.
    assert january != pytest.approx(averaged, abs=0.01)


def test_sidecar_rejects_unknown_key(tmp_path: Path) -> None:
    path = tmp_path / "table.yml"
    path.write_text("columns:\n  a:\n    description: A column.\n    units: count\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown key"):
        load_sidecar(path)


def test_sidecar_requires_description(tmp_path: Path) -> None:
    path = tmp_path / "table.yml"
    path.write_text("columns:\n  a:\n    unit: count\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="description"):
        load_sidecar(path)
