"""ISO 8601 timestamp parsing in validation: each accepted form, the time zone for text
without an offset, and the values that must stay unparsed.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from cx_pipeline.validate import _parse_iso_timestamps

UTC = dt.UTC


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


CASES = [
    ("2023-01-05T20:06:14Z", utc(2023, 1, 5, 20, 6, 14)),
    ("2023-01-05T20:06:14z", utc(2023, 1, 5, 20, 6, 14)),
    ("2023-01-05t20:06:14Z", utc(2023, 1, 5, 20, 6, 14)),
    ("2023-01-05 20:06:14+00:00", utc(2023, 1, 5, 20, 6, 14)),
    ("2023-01-05T20:06:14.250+02:00", utc(2023, 1, 5, 18, 6, 14, 250_000)),
    ("2023-01-05T20:06:14-05:30", utc(2023, 1, 6, 1, 36, 14)),
    ("2023-01-05T20:06+01:00", utc(2023, 1, 5, 19, 6)),
    ("2023-01-05T20:06Z", utc(2023, 1, 5, 20, 6)),
    ("2023-07-05 20:06:14", utc(2023, 7, 5, 18, 6, 14)),
    ("2023-07-05T20:06", utc(2023, 7, 5, 18, 6)),
    ("2023-07-05", utc(2023, 7, 4, 22, 0)),
    # The earlier of the two instants when a clock time repeats at the end of summer time.
    ("2023-10-29T02:30:00", utc(2023, 10, 29, 0, 30)),
    # A clock time skipped at the start of summer time does not exist.
    ("2023-03-26T02:30:00", None),
    ("2023-01-05T25:06:14Z", None),
    ("2023-02-30", None),
    ("05/01/2023", None),
    ("2023-01-05T20:06:14ZZ", None),
    ("2023-1-5 10:00", None),
    (None, None),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_iso_timestamp_in_berlin(text: str | None, expected: dt.datetime | None) -> None:
    parsed = _parse_iso_timestamps(pl.Series("submitted_at", [text], dtype=pl.String), "Europe/Berlin")
    assert parsed.dtype == pl.Datetime("us", "UTC")
    assert parsed[0] == expected


def test_iso_timestamps_keep_row_order() -> None:
    texts = [text for text, _ in CASES] * 3
    parsed = _parse_iso_timestamps(pl.Series("submitted_at", texts, dtype=pl.String), "Europe/Berlin")
    assert parsed.to_list() == [expected for _, expected in CASES] * 3


def test_iso_timestamps_empty_series() -> None:
    parsed = _parse_iso_timestamps(pl.Series("submitted_at", [], dtype=pl.String), "UTC")
    assert parsed.len() == 0
    assert parsed.dtype == pl.Datetime("us", "UTC")
