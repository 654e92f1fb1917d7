"""The survey slice on real Amazon Alexa reviews, checked against an independent count."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from conftest import PipelineEnv

pytestmark = pytest.mark.real_data

ARRIVAL_DAY = "2018-08-01"


def count_ratings(path: Path) -> tuple[int, int]:
    """Count all rows and 4-5 star rows with the csv module, independently of the pipeline."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        ratings = [int(row["rating"]) for row in csv.DictReader(handle, delimiter="\t")]
    return len(ratings), sum(1 for rating in ratings if rating >= 4)


def test_alexa_reviews_csat_equals_top_two_box_share(pipeline_env: PipelineEnv, real_data_dir: Path) -> None:
    source = real_data_dir / "amazon_alexa_reviews" / "amazon_alexa.tsv"
    if not source.is_file():
        pytest.skip(f"{source} is missing from CX_REAL_DATA_DIR")
    landed = pipeline_env.landing / "feedback" / ARRIVAL_DAY
    landed.mkdir(parents=True)
    shutil.copy(source, landed / source.name)

    pipeline_env.run(ARRIVAL_DAY)

    total, satisfied = count_ratings(source)
    assert total == 3150
    assert pipeline_env.query("SELECT count(*) AS n FROM quarantine_feedback")["n"][0] == 0
    csat = pipeline_env.query(
        "SELECT sum(count_responses)::BIGINT AS n, sum(count_satisfied)::BIGINT AS satisfied, "
        "min(submitted_date)::VARCHAR AS first_day, max(submitted_date)::VARCHAR AS last_day "
        "FROM kpi_csat_daily WHERE survey_type = 'review'"
    ).to_dicts()[0]
    assert csat["n"] == total
    assert csat["satisfied"] == satisfied
    assert 100 * csat["satisfied"] / csat["n"] == pytest.approx(87.0, abs=0.05)
    assert (csat["first_day"], csat["last_day"]) == ("2018-05-16", "2018-07-31")

    # Identical short reviews on one day are separate answers, not versions of one.
    assert pipeline_env.query("SELECT count(*) AS n FROM stg_feedback")["n"][0] == total
