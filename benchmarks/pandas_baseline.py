"""A plain pandas implementation of the survey and support KPI tables, written the way a
data analyst would: read every landed file, coerce types, drop what does not parse, and
group by day. The benchmark runs it on the same landing folder as the pipeline and
compares the values.

It covers kpi_csat_daily, kpi_nps_daily, kpi_ces_daily (answers at their latest version,
with the scale defaults of the pipeline) and the ticket counts of kpi_support_daily.
"""

from __future__ import annotations

import glob
import os
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

SCALES = {"csat": (1, 5), "review": (1, 5), "nps": (0, 10), "ces": (1, 7)}


def _read_folder(landing: Path, source: str) -> pd.DataFrame:
    frames = []
    for path in sorted(glob.glob(str(landing / source / "*" / "*.csv"))):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        frame["arrival_day"] = os.path.basename(os.path.dirname(path))
        frame["source_file"] = path
        frame["row_number"] = np.arange(1, len(frame) + 1)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def survey_kpis(landing: Path) -> dict[str, pd.DataFrame]:
    """Return the three daily survey KPI tables."""
    answers = _read_folder(landing, "feedback")
    answers["submitted_at"] = pd.to_datetime(answers["submitted_at"], utc=True, errors="coerce", format="ISO8601")
    answers["score"] = pd.to_numeric(answers["score"], errors="coerce")
    answers["survey_type"] = answers["survey_type"].str.strip().str.lower()
    answers["scale_min"] = answers["survey_type"].map(lambda t: SCALES.get(t, (np.nan, np.nan))[0])
    answers["scale_max"] = answers["survey_type"].map(lambda t: SCALES.get(t, (np.nan, np.nan))[1])
    valid = answers.dropna(subset=["response_id", "submitted_at", "score", "scale_min"])
    valid = valid[(valid["score"] >= valid["scale_min"]) & (valid["score"] <= valid["scale_max"])]
    valid = valid[valid["score"] == valid["score"].round()]
    valid = valid[valid["submitted_at"] < pd.to_datetime(valid["arrival_day"], utc=True) + pd.Timedelta(days=2)]
    # Latest version per answer: the later arrival day, file and row win.
    valid = valid.sort_values(["arrival_day", "source_file", "row_number"]).drop_duplicates("response_id", keep="last")
    valid["submitted_date"] = valid["submitted_at"].dt.date
    for column in ("channel", "segment"):
        valid[column] = valid[column].fillna("unspecified")
    keys = ["submitted_date", "channel", "segment"]

    csat = valid[valid["survey_type"].isin(["csat", "review"])].copy()
    csat["satisfied"] = csat["score"] > csat["scale_max"] - 2
    csat_daily = (
        csat.groupby([*keys, "survey_type"])
        .agg(count_responses=("score", "size"), count_satisfied=("satisfied", "sum"))
        .reset_index()
    )
    csat_daily["csat_pct"] = 100 * csat_daily["count_satisfied"] / csat_daily["count_responses"]

    nps = valid[valid["survey_type"] == "nps"].copy()
    nps["promoter"] = nps["score"] >= 9
    nps["detractor"] = nps["score"] <= 6
    nps_daily = (
        nps.groupby(keys)
        .agg(count_responses=("score", "size"), count_promoters=("promoter", "sum"),
             count_detractors=("detractor", "sum"))
        .reset_index()
    )
    nps_daily["nps"] = 100 * (nps_daily["count_promoters"] - nps_daily["count_detractors"]) / nps_daily["count_responses"]

    ces = valid[valid["survey_type"] == "ces"].copy()
    ces["easy"] = ces["score"] >= 5
    ces_daily = (
        ces.groupby(keys).agg(count_responses=("score", "size"), ces_mean=("score", "mean"),
                              count_easy=("easy", "sum")).reset_index()
    )
    return {"kpi_csat_daily": csat_daily, "kpi_nps_daily": nps_daily, "kpi_ces_daily": ces_daily}


def support_counts(landing: Path) -> pd.DataFrame:
    """Return tickets created and solved per created day, channel and priority."""
    tickets = _read_folder(landing, "tickets")
    tickets["created_at"] = pd.to_datetime(tickets["created_at"], utc=True, errors="coerce", format="ISO8601")
    tickets = tickets.dropna(subset=["ticket_id", "created_at"])
    tickets = tickets.sort_values(["arrival_day", "source_file", "row_number"]).drop_duplicates("ticket_id", keep="last")
    tickets["created_date"] = tickets["created_at"].dt.date
    tickets["solved"] = tickets["status"].str.lower().isin(["solved", "closed"])
    return (
        tickets.groupby(["created_date", "channel", "priority"])
        .agg(tickets_created=("ticket_id", "size"), tickets_solved=("solved", "sum"))
        .reset_index()
    )


def all_kpis(landing: Path) -> dict[str, pd.DataFrame]:
    """Compute every table of the baseline."""
    tables = survey_kpis(landing)
    tables["kpi_support_daily"] = support_counts(landing)
    return tables


def measured_kpis(landing: Path) -> tuple[dict[str, pd.DataFrame], float, float]:
    """Compute every table of the baseline and return them with the seconds taken and the
    peak resident memory in MB of the calling process.

    Run it in a new process (a ``spawn`` pool) so that the peak is the baseline's own.
    """
    started = time.perf_counter()
    tables = all_kpis(landing)
    seconds = time.perf_counter() - started
    # ru_maxrss is in kilobytes on Linux.
    return tables, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
