"""End-to-end runs of the survey slice: landing files to KPI tables, through Dagster."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from conftest import PipelineEnv

DAY = "2025-03-10"

# 10 NPS answers: 5 promoters (9-10), 2 passives (7-8), 3 detractors (0-6) -> NPS 20.
NPS_SCORES = [10, 9, 9, 10, 9, 8, 7, 6, 0, 3]
# CSAT on 1-5: 4 and 5 are satisfied -> 3 of 5 = 60 %.
CSAT_SCORES = [5, 4, 4, 2, 1]
# CES on 1-7: 5-7 agree ("easy") -> 2 of 4; mean (7 + 5 + 3 + 1) / 4 = 4.
CES_SCORES = [7, 5, 3, 1]


def survey_csv() -> str:
    lines = ["response_id,customer_id,submitted_at,survey_type,score,comment,channel,segment"]
    number = 0
    for survey_type, scores in (("nps", NPS_SCORES), ("csat", CSAT_SCORES), ("ces", CES_SCORES)):
        for score in scores:
            number += 1
            lines.append(f"r{number},c{number},{DAY}T12:00:00Z,{survey_type},{score},fine,email,smb")
    lines.append(f"bad1,c98,{DAY}T12:00:00Z,nps,11,too high,email,smb")
    lines.append("bad2,c99,10th of March,csat,4,bad date,email,smb")
    return "\n".join(lines) + "\n"


@pytest.fixture
def survey_day(pipeline_env: PipelineEnv) -> PipelineEnv:
    pipeline_env.land("feedback", DAY, "survey export.csv", survey_csv())
    pipeline_env.run(DAY)
    return pipeline_env


def test_nps_of_known_answers(survey_day: PipelineEnv) -> None:
    row = survey_day.query("SELECT * FROM kpi_nps_daily").to_dicts()
    assert len(row) == 1
    assert row[0]["count_responses"] == 10
    assert row[0]["count_promoters"] == 5
    assert row[0]["count_passives"] == 2
    assert row[0]["count_detractors"] == 3
    assert row[0]["nps"] == pytest.approx(20.0)
    expected_se = 100 * math.sqrt((0.5 + 0.3 - 0.2**2) / 10)
    assert row[0]["nps_standard_error"] == pytest.approx(expected_se)
    assert row[0]["nps_margin_of_error_95"] == pytest.approx(1.96 * expected_se)


def test_csat_and_ces_of_known_answers(survey_day: PipelineEnv) -> None:
    csat = survey_day.query("SELECT * FROM kpi_csat_daily").to_dicts()
    assert len(csat) == 1
    assert csat[0]["count_responses"] == 5
    assert csat[0]["count_satisfied"] == 3
    assert csat[0]["csat_pct"] == pytest.approx(60.0)
    assert (csat[0]["scale_min"], csat[0]["scale_max"]) == (1, 5)

    ces = survey_day.query("SELECT * FROM kpi_ces_daily").to_dicts()
    assert len(ces) == 1
    assert ces[0]["ces_mean"] == pytest.approx(4.0)
    assert ces[0]["count_easy"] == 2
    assert ces[0]["easy_pct"] == pytest.approx(50.0)
    assert (ces[0]["scale_min"], ces[0]["scale_max"]) == (1, 7)


def test_invalid_rows_quarantined_with_reasons(survey_day: PipelineEnv) -> None:
    quarantine = survey_day.query("SELECT * FROM quarantine_feedback ORDER BY _row_number").to_dicts()
    assert len(quarantine) == 2
    too_high, bad_date = quarantine
    assert too_high["_source_file"] == f"feedback/{DAY}/survey export.csv"
    assert too_high["_row_number"] == 20
    assert too_high["failed_checks"] == ["score:score_within_scale"]
    assert "outside the row's scale" in too_high["failure_reasons"]
    assert bad_date["failed_checks"] == ["submitted_at:parse"]
    assert bad_date["failure_reasons"] == "submitted_at: '10th of March' is not a timestamp (ISO 8601)"
    assert '"submitted_at":"10th of March"' in bad_date["raw_values"]


def test_landed_rows_equal_staged_plus_quarantined(survey_day: PipelineEnv) -> None:
    landed = survey_day.query("SELECT count(*) AS n FROM raw_feedback")["n"][0]
    valid = survey_day.query("SELECT count(*) AS n FROM validated_feedback")["n"][0]
    quarantined = survey_day.query("SELECT count(*) AS n FROM quarantine_feedback")["n"][0]
    assert landed == 21
    assert valid + quarantined == landed


def test_second_run_gives_identical_tables(survey_day: PipelineEnv) -> None:
    tables = ["stg_feedback", "kpi_csat_daily", "kpi_nps_daily", "kpi_ces_daily", "quarantine_feedback"]
    before = {table: survey_day.table_hash(table) for table in tables}
    survey_day.run(DAY)
    after = {table: survey_day.table_hash(table) for table in tables}
    assert after == before


def test_rerun_replaces_only_its_partition(pipeline_env: PipelineEnv) -> None:
    header = "response_id,submitted_at,survey_type,score\n"
    pipeline_env.land("feedback", "2025-03-01", "a.csv", header + "a1,2025-03-01T10:00:00,csat,5\n")
    pipeline_env.land("feedback", "2025-03-02", "b.csv", header + "b1,2025-03-02T10:00:00,csat,1\n")
    pipeline_env.run("2025-03-01", "2025-03-02")

    pipeline_env.land(
        "feedback", "2025-03-01", "a.csv", header + "a1,2025-03-01T10:00:00,csat,2\na2,2025-03-01T11:00:00,csat,4\n"
    )
    pipeline_env.run("2025-03-01")

    raw = pipeline_env.query("SELECT _partition_date::VARCHAR AS day, count(*) AS n FROM raw_feedback GROUP BY 1 ORDER BY 1")
    assert raw.to_dicts() == [{"day": "2025-03-01", "n": 2}, {"day": "2025-03-02", "n": 1}]
    scores = pipeline_env.query("SELECT response_id, score FROM stg_feedback ORDER BY 1").rows()
    assert scores == [("a1", 2.0), ("a2", 4.0), ("b1", 1.0)]


def test_later_arrival_replaces_earlier_version(pipeline_env: PipelineEnv) -> None:
    header = "response_id,submitted_at,survey_type,score\n"
    pipeline_env.land("feedback", "2025-03-01", "a.csv", header + "x1,2025-03-01T10:00:00+02:00,nps,3\n")
    pipeline_env.land("feedback", "2025-03-03", "a.csv", header + "x1,2025-03-01T10:00:00+02:00,nps,10\n")
    pipeline_env.run("2025-03-01", "2025-03-03")
    stg = pipeline_env.query("SELECT response_id, score, arrival_date::VARCHAR AS arrival FROM stg_feedback").rows()
    assert stg == [("x1", 10.0, "2025-03-03")]
    nps = pipeline_env.query("SELECT nps, count_responses FROM kpi_nps_daily").rows()
    assert nps == [(100.0, 1)]


def test_unreadable_file_does_not_stop_others(pipeline_env: PipelineEnv) -> None:
    header = "response_id,submitted_at,survey_type,score\n"
    pipeline_env.land("feedback", DAY, "good.csv", header + "g1,2025-03-10T10:00:00Z,csat,5\n")
    pipeline_env.land("feedback", DAY, "broken.parquet", b"PAR1 this is not parquet")
    pipeline_env.land("feedback", DAY, "notes.xlsx", b"binary")
    pipeline_env.run(DAY)
    rejected = pipeline_env.query("SELECT _source_file, error FROM rejected_files_feedback ORDER BY 1").to_dicts()
    assert [r["_source_file"] for r in rejected] == [f"feedback/{DAY}/broken.parquet", f"feedback/{DAY}/notes.xlsx"]
    assert "unsupported file type .xlsx" in rejected[1]["error"]
    assert pipeline_env.query("SELECT count(*) AS n FROM stg_feedback")["n"][0] == 1


def test_reporting_timezone_moves_submission_date(
    pipeline_env: PipelineEnv, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "cx.yaml"
    config.write_text("reporting_timezone: America/New_York\n", encoding="utf-8")
    pipeline_env.land(
        "feedback", DAY, "a.csv", "response_id,submitted_at,survey_type,score\nz1,2025-03-10T03:00:00Z,csat,5\n"
    )
    monkeypatch.setenv("CX_CONFIG", str(config))
    pipeline_env.run(DAY)
    dates = pipeline_env.query("SELECT submitted_date::VARCHAR AS d FROM kpi_csat_daily")["d"].to_list()
    assert dates == ["2025-03-09"]


def test_cli_run_command_exit_code(pipeline_env: PipelineEnv) -> None:
    pipeline_env.land("feedback", DAY, "survey.csv", survey_csv())
    result = subprocess.run(
        [sys.executable, "-m", "cx_pipeline.cli", "run", "--start", DAY, "--end", DAY],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "NPS    20.0" in result.stdout


def test_cli_rejects_bad_partition_key(pipeline_env: PipelineEnv) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cx_pipeline.cli", "run", "--start", "../2025-01-01", "--end", DAY],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "invalid partition key '../2025-01-01'" in result.stderr


def test_dagster_cli_materializes_one_partition(pipeline_env: PipelineEnv) -> None:
    pipeline_env.land("feedback", DAY, "survey.csv", survey_csv())
    result = subprocess.run(
        [
            sys.executable, "-m", "dagster", "asset", "materialize",
            "-m", "cx_pipeline.definitions", "--select", "*", "--partition", DAY,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert pipeline_env.query("SELECT nps FROM kpi_nps_daily")["nps"].to_list() == [pytest.approx(20.0)]


def test_free_text_masked_before_publishing(pipeline_env: PipelineEnv) -> None:
    comment = "Call me at +1 (415) 555-0142 or mail jane.doe+cx@mail.example.com"
    rows = (
        "response_id,submitted_at,survey_type,score,comment\n"
        f'm1,2025-03-10T10:00:00Z,csat,5,"{comment}"\n'
        f'm2,2025-03-10T10:00:00Z,csat,9,"{comment}"\n'
    )
    pipeline_env.land("feedback", DAY, "masked.csv", rows)
    pipeline_env.run(DAY)

    staged = pipeline_env.query("SELECT comment FROM stg_feedback")["comment"].to_list()
    assert staged == ["Call me at [phone] or mail [email]"]
    raw_values = pipeline_env.query("SELECT raw_values FROM quarantine_feedback")["raw_values"][0]
    assert "jane.doe" not in raw_values
    assert "[email]" in raw_values
    landed = pipeline_env.query("SELECT comment FROM raw_feedback WHERE response_id = 'm1'")["comment"][0]
    assert landed == comment
