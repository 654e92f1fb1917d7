"""kpi_impact and ``cx-pipeline impact`` through real pipeline runs, on generated data and on
the Amazon Alexa reviews."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest
from conftest import PipelineEnv

from cx_pipeline.cli import main
from cx_pipeline.impact import bootstrap_median_difference, two_proportion_wald, welch

ARRIVAL_DAY = "2025-03-29"
GO_LIVE = dt.date(2025, 3, 15)
BEFORE_FIRST = dt.date(2025, 3, 1)
AFTER_FIRST = dt.date(2025, 3, 15)
CONFIG = """\
conversion_window_days: 3
impact_min_sample_size: 20
impact_bootstrap_resamples: 500
impact_bootstrap_seed: 11
impact_go_lives:
  - {name: checkout_redesign, date: 2025-03-15, window_days: 14}
  - {name: web_only, date: 2025-03-15, window_days: 14, channel: web}
"""
CES_BEFORE = [3, 4, 5, 4, 3, 2, 5, 4, 3, 4] * 3
CES_AFTER = [5, 6, 5, 4, 6, 7, 5, 6, 5, 6] * 3


def day_at(first: dt.date, index: int, hour: int = 10) -> str:
    return f"{first + dt.timedelta(days=index % 14)}T{hour:02d}:00:00Z"


def feedback_csv() -> str:
    rows = ["response_id,submitted_at,survey_type,score,comment,channel"]
    for side, first, satisfied in (("b", BEFORE_FIRST, 20), ("a", AFTER_FIRST, 34)):
        for i in range(40):
            score, comment = (
                (5, "Great, quick checkout")
                if i < satisfied
                else (2, "Slow and confusing checkout")
            )
            channel = "web" if i % 2 == 0 else "app"
            rows.append(f'csat-{side}{i},{day_at(first, i)},csat,{score},"{comment}",{channel}')
        nps_count = 10 if side == "b" else 12
        rows.extend(
            f"nps-{side}{i},{day_at(first, i, 11)},nps,{9 if i % 2 else 5},,web"
            for i in range(nps_count)
        )
        ces_scores = CES_BEFORE if side == "b" else CES_AFTER
        rows.extend(
            f"ces-{side}{i},{day_at(first, i, 12)},ces,{s},,web" for i, s in enumerate(ces_scores)
        )
    # Just outside both periods: the day before the before period and the day after the
    # after period.
    rows.append('csat-early,2025-02-28T23:30:00Z,csat,1,"Awful",web')
    rows.append('csat-late,2025-03-29T00:30:00Z,csat,5,"Lovely",web')
    return "\n".join(rows) + "\n"


def trial_rows() -> tuple[str, int, int, int, int]:
    """Return subscriptions with 2-day trials, and converted/eligible counts per period."""
    rows = [
        "subscription_id,customer_id,plan,started_at,trial_ends_at,ended_at,amount,billing_interval,interval_count,currency"
    ]
    counts = {"b": [0, 0], "a": [0, 0]}
    starts = [("b", BEFORE_FIRST + dt.timedelta(days=i % 14), i) for i in range(24)]
    # A trial counts once its window has closed: start day + 3 window days + 1 day, at
    # midnight, is no later than the observation end (Mar 30 00:00). That holds up to Mar 26.
    starts += [("a", AFTER_FIRST + dt.timedelta(days=i % 12), i) for i in range(24)]
    # Started Mar 27: the conversion window is still open at the observation end, so left out.
    starts += [("open", dt.date(2025, 3, 27), i) for i in range(2)]
    for side, start, i in starts:
        trial_end = start + dt.timedelta(days=2)
        converted = i % 4 != 0 if side == "a" else i % 2 == 0
        ended = "" if converted else f"{trial_end}T09:00:00Z"
        rows.append(
            f"s-{side}{i},cust-{side}{i},basic,{start}T09:00:00Z,{trial_end}T09:00:00Z,{ended},20,month,1,USD"
        )
        if side in counts:
            counts[side][0] += converted
            counts[side][1] += 1
    return "\n".join(rows) + "\n", counts["b"][0], counts["b"][1], counts["a"][0], counts["a"][1]


def tickets_csv() -> str:
    rows = [
        "ticket_id,customer_id,channel,status,created_at,solved_at,first_reply_at,agent_replies"
    ]
    for side, first, base, step in (("b", BEFORE_FIRST, 30, 7), ("a", AFTER_FIRST, 20, 5)):
        for i in range(24):
            created = dt.datetime.fromisoformat(day_at(first, i, 9))
            reply = created + dt.timedelta(minutes=base + (i * step) % 50)
            solved = created + dt.timedelta(hours=3)
            channel = "web" if i % 2 == 0 else "email"
            rows.append(
                f"t-{side}{i},cust{i},{channel},solved,{created.isoformat()},{solved.isoformat()},"
                f"{reply.isoformat()},{1 if i % 3 else 2}"
            )
    return "\n".join(rows) + "\n"


def impact_rows(env: PipelineEnv, name: str) -> dict[str, dict]:
    frame = env.query("SELECT * FROM kpi_impact WHERE go_live_name = ?", [name])
    return {
        row["kpi"] + (f"[{row['scale']}]" if row["scale"] else ""): row for row in frame.to_dicts()
    }


def assert_matches(row: dict, expected, scale: float = 1.0) -> None:
    assert row["status"] == "ok"
    assert row["value_before"] == pytest.approx(expected.value_before * scale)
    assert row["value_after"] == pytest.approx(expected.value_after * scale)
    assert row["difference"] == pytest.approx(expected.difference * scale)
    assert row["ci_low"] == pytest.approx(expected.ci_low * scale)
    assert row["ci_high"] == pytest.approx(expected.ci_high * scale)
    assert row["is_significant"] == expected.is_significant


@pytest.fixture
def impact_env(
    pipeline_env: PipelineEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> PipelineEnv:
    config = tmp_path / "cx.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("CX_CONFIG", str(config))
    pipeline_env.land("feedback", ARRIVAL_DAY, "answers.csv", feedback_csv())
    pipeline_env.land("subscriptions", ARRIVAL_DAY, "subscriptions.csv", trial_rows()[0])
    pipeline_env.land("tickets", ARRIVAL_DAY, "tickets.csv", tickets_csv())
    pipeline_env.run(ARRIVAL_DAY)
    return pipeline_env


def test_impact_survey_kpis(impact_env: PipelineEnv) -> None:
    rows = impact_rows(impact_env, "checkout_redesign")

    csat = rows["csat_pct"]
    assert (csat["n_before"], csat["n_after"]) == (40, 40)
    assert (csat["before_first_day"], csat["before_last_day"]) == (
        dt.date(2025, 3, 1),
        dt.date(2025, 3, 14),
    )
    assert (csat["after_first_day"], csat["after_last_day"]) == (
        dt.date(2025, 3, 15),
        dt.date(2025, 3, 28),
    )
    assert csat["after_window_complete"] is True
    assert csat["reason"] is None
    assert csat["value_before"] == pytest.approx(50.0)
    assert csat["value_after"] == pytest.approx(85.0)
    assert_matches(csat, two_proportion_wald(20, 40, 34, 40), scale=100)
    assert csat["is_significant"] is True

    nps = rows["nps"]
    assert nps["status"] == "insufficient_data"
    assert (nps["n_before"], nps["n_after"]) == (10, 12)
    assert nps["value_before"] is None
    assert nps["difference"] is None
    assert nps["is_significant"] is None
    assert "impact_min_sample_size = 20" in nps["reason"]

    ces = rows["ces_mean[1-7]"]
    assert (ces["n_before"], ces["n_after"]) == (30, 30)
    expected_ces = welch(CES_BEFORE, CES_AFTER)
    assert_matches(ces, expected_ces)
    assert ces["degrees_of_freedom"] == pytest.approx(expected_ces.degrees_of_freedom)

    sentiment = rows["sentiment_compound_mean"]
    compounds = impact_env.query(
        "SELECT submitted_date, compound FROM feedback_sentiment WHERE compound IS NOT NULL"
    )
    before = compounds.filter(
        pl.col("submitted_date").is_between(dt.date(2025, 3, 1), dt.date(2025, 3, 14))
    )
    after = compounds.filter(
        pl.col("submitted_date").is_between(dt.date(2025, 3, 15), dt.date(2025, 3, 28))
    )
    assert (
        (sentiment["n_before"], sentiment["n_after"]) == (40, 40) == (before.height, after.height)
    )
    assert_matches(sentiment, welch(before["compound"].to_list(), after["compound"].to_list()))


def test_impact_trials_and_tickets(impact_env: PipelineEnv) -> None:
    rows = impact_rows(impact_env, "checkout_redesign")

    _, converted_before, trials_before, converted_after, trials_after = trial_rows()
    trials = rows["trial_conversion_pct"]
    assert (trials["n_before"], trials["n_after"]) == (trials_before, trials_after) == (24, 24)
    assert_matches(
        trials, two_proportion_wald(converted_before, 24, converted_after, 24), scale=100
    )

    # No month lies wholly inside a 14-day period.
    assert rows["logo_churn_pct"]["status"] == "insufficient_data"
    assert rows["logo_churn_pct"]["n_before"] == 0

    if rows["fcr_pct"]["status"] == "not_available":
        pytest.skip(f"ticket KPIs are not available: {rows['fcr_pct']['reason']}")
    metrics = impact_env.query(
        "SELECT CAST(timezone('UTC', created_at) AS DATE) AS day, is_fcr, first_reply_minutes FROM ticket_metrics"
    )
    before = metrics.filter(pl.col("day") < GO_LIVE)
    after = metrics.filter(pl.col("day") >= GO_LIVE)
    fcr = rows["fcr_pct"]
    fcr_before = before.filter(pl.col("is_fcr").is_not_null())
    fcr_after = after.filter(pl.col("is_fcr").is_not_null())
    assert (fcr["n_before"], fcr["n_after"]) == (fcr_before.height, fcr_after.height)
    assert_matches(
        fcr,
        two_proportion_wald(
            fcr_before["is_fcr"].sum(),
            fcr_before.height,
            fcr_after["is_fcr"].sum(),
            fcr_after.height,
        ),
        scale=100,
    )

    reply = rows["first_reply_minutes_median"]
    minutes_before = before["first_reply_minutes"].drop_nulls().to_list()
    minutes_after = after["first_reply_minutes"].drop_nulls().to_list()
    assert (
        (reply["n_before"], reply["n_after"])
        == (len(minutes_before), len(minutes_after))
        == (24, 24)
    )
    assert_matches(
        reply, bootstrap_median_difference(minutes_before, minutes_after, resamples=500, seed=11)
    )


def test_impact_channel_filter(impact_env: PipelineEnv) -> None:
    rows = impact_rows(impact_env, "web_only")

    csat = rows["csat_pct"]
    assert csat["channel_filter"] == "web"
    assert (csat["n_before"], csat["n_after"]) == (20, 20)
    # Web answers are the even rows: 10 of the first 20 are satisfied before, 17 of the
    # first 34 after.
    assert_matches(csat, two_proportion_wald(10, 20, 17, 20), scale=100)
    for kpi in ("trial_conversion_pct", "logo_churn_pct"):
        assert rows[kpi]["status"] == "not_applicable"
        assert "has no channel to filter on" in rows[kpi]["reason"]
        assert rows[kpi]["n_before"] is None


def test_impact_rerun_is_identical(impact_env: PipelineEnv) -> None:
    first = impact_env.table_hash("kpi_impact")
    impact_env.run(ARRIVAL_DAY)
    assert impact_env.table_hash("kpi_impact") == first


def test_impact_command_prints_table(
    impact_env: PipelineEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["impact", "--name", "checkout_redesign"]) == 0
    output = capsys.readouterr().out
    lines = output.splitlines()
    assert lines[0].startswith(
        "Impact of checkout_redesign: go-live 2025-03-15, 14 days before and after"
    )
    header = next(line for line in lines if line.startswith("KPI"))
    for column in ("before", "after", "n before", "n after", "difference", "95% CI", "significant"):
        assert column in header
    csat = next(line for line in lines if line.startswith("csat_pct (%)"))
    assert csat.split()[2:6] == ["50.0", "85.0", "40", "40"]
    assert csat.split()[6] == "+35.0"
    assert csat.endswith("yes")
    nps = next(line for line in lines if line.startswith("nps (points)"))
    assert nps.endswith("insufficient_data")
    assert "Notes:" in output


def test_impact_command_unknown_name(
    impact_env: PipelineEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["impact", "--name", "no_such_release"]) == 2
    error = capsys.readouterr().err
    assert "go-live 'no_such_release' not found in kpi_impact" in error
    assert "checkout_redesign" in error


def count_alexa_sides(path: Path, go_live: dt.date, window_days: int) -> dict[str, dict[str, int]]:
    """Count reviews, 4-5 star reviews and reviews with text per period, with the csv module."""
    counts = {side: {"reviews": 0, "satisfied": 0, "with_text": 0} for side in ("before", "after")}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            day = dt.datetime.strptime(row["date"], "%d-%b-%y").date()
            if go_live - dt.timedelta(days=window_days) <= day < go_live:
                side = "before"
            elif go_live <= day < go_live + dt.timedelta(days=window_days):
                side = "after"
            else:
                continue
            counts[side]["reviews"] += 1
            counts[side]["satisfied"] += int(row["rating"]) >= 4
            counts[side]["with_text"] += bool((row["verified_reviews"] or "").strip())
    return counts


@pytest.mark.real_data
def test_alexa_go_live_splits_reviews(
    pipeline_env: PipelineEnv, real_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = real_data_dir / "amazon_alexa_reviews" / "amazon_alexa.tsv"
    if not source.is_file():
        pytest.skip(f"{source} is missing from CX_REAL_DATA_DIR")
    config = tmp_path / "cx.yaml"
    config.write_text(
        "impact_go_lives:\n  - {name: july, date: 2018-07-01, window_days: 60}\n", encoding="utf-8"
    )
    monkeypatch.setenv("CX_CONFIG", str(config))
    landed = pipeline_env.landing / "feedback" / "2018-08-01"
    landed.mkdir(parents=True)
    shutil.copy(source, landed / source.name)
    pipeline_env.run("2018-08-01")

    counts = count_alexa_sides(source, dt.date(2018, 7, 1), 60)
    assert counts["before"]["reviews"] + counts["after"]["reviews"] == 3150
    rows = impact_rows(pipeline_env, "july")

    csat = rows["csat_pct"]
    assert csat["status"] == "ok"
    assert (csat["n_before"], csat["n_after"]) == (
        counts["before"]["reviews"],
        counts["after"]["reviews"],
    )
    assert csat["value_before"] == pytest.approx(
        100 * counts["before"]["satisfied"] / counts["before"]["reviews"]
    )
    assert csat["value_after"] == pytest.approx(
        100 * counts["after"]["satisfied"] / counts["after"]["reviews"]
    )
    assert csat["ci_low"] < csat["difference"] < csat["ci_high"]
    # The reviews end on 2018-07-31, so the 60-day after period is still open.
    assert csat["after_window_complete"] is False

    sentiment = rows["sentiment_compound_mean"]
    assert sentiment["status"] == "ok"
    assert (sentiment["n_before"], sentiment["n_after"]) == (
        counts["before"]["with_text"],
        counts["after"]["with_text"],
    )
    assert sentiment["degrees_of_freedom"] > 1
    assert pipeline_env.query(
        "SELECT count(*) AS n FROM feedback_sentiment WHERE compound IS NULL"
    )["n"][0] == (3150 - counts["before"]["with_text"] - counts["after"]["with_text"])
