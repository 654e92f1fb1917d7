"""Shortcuts in validation that skip work for clean rows must give the same results as
the general code they bypass.
"""

from __future__ import annotations

import polars as pl
import pytest

from cx_pipeline.validate import _parse_iso_general, _parse_iso_timestamps

# Values near the ISO_UTC_SECONDS forms: some it parses, others it must leave to the
# general formats, which may parse or reject them.
ISO_EDGE_TEXTS = [
    "2023-01-05T20:06:14Z",
    "2024-02-29T00:00:00Z",
    "2023-02-29T00:00:00Z",
    "2016-12-31T23:59:60Z",
    "2023-01-05T24:00:00Z",
    "2023-01-05T20:60:00Z",
    "2023-1-5T1:2:3Z",
    "+2023-01-05T20:06:14Z",
    "0000-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "2023-01-05T20:06:14.5Z",
    "2023-01-05T20:06:14.Z",
    "2023-01-05T20:06Z",
    "2023-01-05T20:06:14z",
    "2023-01-05t20:06:14Z",
    "2023-01-05 20:06:14Z",
    "2023-01-05T20:06:14 Z",
    "2023-01-05T20:06:14ZZ",
    "2023-01-05T20:06:14+00:00",
    "2023-01-05T20:06:14.5+00:00",
    "2023-01-05 20:06:14+00:00",
    "2023-01-05T20:06:14+00:00Z",
    "2023-01-05T20:06:14Z+00:00",
    "2023-01-05T24:00:00+00:00",
    "2023-01-05T20:06:14-05:30",
    "2023-01-05T20:06:14",
    "2023-10-29T02:30:00",
    "2023-03-26T02:30:00",
    "2023-01-05",
    "Z",
    "",
    None,
]


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York"])
def test_iso_shortcut_matches_general_formats(zone: str) -> None:
    texts = pl.Series("created_at", ISO_EDGE_TEXTS, dtype=pl.String)
    shortcut = _parse_iso_timestamps(texts, zone)
    general = _parse_iso_general(texts, zone)
    assert shortcut.dtype == general.dtype
    # Compared in Polars because years 0 and 10000 have no Python datetime.
    mismatched = texts.filter(~shortcut.eq_missing(general))
    assert mismatched.to_list() == []


def test_iso_shortcut_parses_some_rows() -> None:
    values = ["2023-01-05T20:06:14Z", "2023-01-05T20:06:14+00:00", "2023-01-05T20:06:14.5Z"]
    texts = pl.Series("created_at", values, dtype=pl.String)
    parsed = _parse_iso_timestamps(texts, "UTC")
    assert parsed.null_count() == 0
