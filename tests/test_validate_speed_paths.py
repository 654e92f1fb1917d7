"""Shortcuts in validation that skip work for clean rows must give the same results as
the general code they bypass.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from cx_pipeline.contracts import ColumnSpec, Contract
from cx_pipeline.mappings import SourceMapping
from cx_pipeline.validate import ROW_INDEX, _parse_iso_formats, _parse_iso_general, _parse_iso_timestamps, parse_rows

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


def _contract(*columns: tuple[str, str]) -> Contract:
    specs = tuple(
        ColumnSpec(name=name, type=kind, nullable=True, required=False, description="", checks={}, normalize=None)
        for name, kind in columns
    )
    return Contract(
        source="sample",
        description="",
        primary_key=specs[0].name,
        columns=specs,
        custom_checks=(),
        path=Path("sample.yaml"),
    )


def _raw(values: dict[str, list[str | None]]) -> pl.DataFrame:
    height = len(next(iter(values.values())))
    meta = {
        "_partition_date": [dt.date(2023, 1, 5)] * height,
        "_source_file": ["sample.csv"] * height,
        "_row_number": list(range(1, height + 1)),
        "_mapping": ["canonical"] * height,
        "_missing_columns": [None] * height,
        "_extra_columns": [None] * height,
        "_row_problem": [None] * height,
    }
    frame = pl.DataFrame({**meta, **values}, schema_overrides={name: pl.String for name in values})
    return frame.with_row_index(ROW_INDEX)


def _checks_by_row(failures: pl.DataFrame) -> dict[int, set[str]]:
    checks: dict[int, set[str]] = {}
    for index, check in failures.select(ROW_INDEX, "check").iter_rows():
        checks.setdefault(index, set()).add(check)
    return checks


MARKED_TEXTS = ["1\x00", "=SUM(A1)", " +HYPERLINK(x)", "@now()", "-inf(", "2023-01-05T20:06:14Z\x00"]
PARSED_TYPES = ["integer", "float", "boolean", "date", "timestamp"]


@pytest.mark.parametrize("kind", PARSED_TYPES)
def test_marked_text_fails_parse(kind: str) -> None:
    contract = _contract(("id", "string"), ("value", kind))
    raw = _raw({"id": [f"r{i}" for i in range(len(MARKED_TEXTS))], "value": MARKED_TEXTS})
    typed, failures = parse_rows(raw, contract, SourceMapping(name="canonical", source="sample", file_pattern="*"))
    checks = _checks_by_row(failures)

    assert typed["value"].null_count() == len(MARKED_TEXTS)
    for index, text in enumerate(MARKED_TEXTS):
        assert "value:parse" in checks[index], text
        if "\x00" in text:
            assert "value:nul_byte" in checks[index], text
        else:
            assert "value:formula_like" in checks[index], text


def test_marked_text_in_string_column() -> None:
    contract = _contract(("id", "string"), ("comment", "string"))
    raw = _raw({"id": ["r0", "r1", "r2"], "comment": ["fine", "a\x00b", "=HYPERLINK(x)"]})
    _, failures = parse_rows(raw, contract, SourceMapping(name="canonical", source="sample", file_pattern="*"))
    checks = _checks_by_row(failures)

    assert 0 not in checks
    assert checks[1] == {"comment:nul_byte"}
    assert checks[2] == {"comment:formula_like"}


def test_formula_parsed_by_mapping_format() -> None:
    # A mapping's own format may accept text that also looks like a formula.
    mapping = SourceMapping(name="custom", source="sample", file_pattern="*", timestamp_format="=x(%Y-%m-%d)")
    contract = _contract(("id", "string"), ("day", "date"))
    raw = _raw({"id": ["r0", "r1"], "day": ["=x(2023-01-05)", "2023-01-05"]})
    typed, failures = parse_rows(raw, contract, mapping)
    checks = _checks_by_row(failures)

    assert typed["day"][0] == dt.date(2023, 1, 5)
    assert checks[0] == {"day:formula_like"}
    assert checks[1] == {"day:parse"}


# Texts that the general formats reject or accept by their first characters.
GENERAL_EDGE_TEXTS = [
    "not a date",
    "=NOW()",
    "T20:06:14",
    "\x002023-01-05",
    "\ufeff2023-01-05",
    "２０２３-01-05",
    " 2023-01-05",
    "\t2023-01-05T20:06",
    "\u30002023-01-05",
    "+2023-01-05T20:06:14+00:00",
    "-0001-01-01",
    "2023-1-5",
    "2023-01-05 20:06:14",
    "2023-01-05t20:06z",
    "",
    None,
]


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
def test_general_skip_matches_formats(zone: str) -> None:
    texts = pl.Series("created_at", GENERAL_EDGE_TEXTS, dtype=pl.String)
    skipping = _parse_iso_general(texts, zone)
    every_row = _parse_iso_formats(texts, zone)

    assert skipping.dtype == every_row.dtype
    mismatched = texts.filter(~skipping.eq_missing(every_row))
    assert mismatched.to_list() == []
    assert skipping.null_count() < texts.len()


def test_rule_failures_ordered_by_rule() -> None:
    contract = _contract(("id", "string"), ("value", "integer"), ("comment", "string"))
    raw = _raw(
        {
            "id": ["r0", "r1", "=A(1)", "r3"],
            "value": ["1", "x", "2", "=B(2)"],
            "comment": ["a\x00b", "ok", "=C(3)", "a\x00"],
        }
    )
    _, failures = parse_rows(raw, contract, SourceMapping(name="canonical", source="sample", file_pattern="*"))

    assert failures.schema == pl.Schema({ROW_INDEX: pl.UInt32, "check": pl.String, "reason": pl.String})
    assert failures.select(ROW_INDEX, "check").rows() == [
        (2, "id:formula_like"),
        (1, "value:parse"),
        (3, "value:parse"),
        (3, "value:formula_like"),
        (0, "comment:nul_byte"),
        (3, "comment:nul_byte"),
        (2, "comment:formula_like"),
    ]
    reasons = dict(zip(failures["check"] + "@" + failures[ROW_INDEX].cast(pl.String), failures["reason"]))
    assert reasons["value:parse@1"] == "value: 'x' is not a whole number"
    assert reasons["comment:nul_byte@0"] == "comment: contains a NUL byte"
    assert reasons["id:formula_like@2"] == "id: '=A(1)' looks like a spreadsheet formula"


def test_clean_text_blank_is_null() -> None:
    contract = _contract(("id", "string"), ("comment", "string"))
    raw = _raw({"id": ["r0", "r1", "r2", "r3", "r4"], "comment": ["  padded\t", "", " \t ", None, "\u3000x\u3000"]})
    typed, failures = parse_rows(raw, contract, SourceMapping(name="canonical", source="sample", file_pattern="*"))

    assert typed["comment"].to_list() == ["padded", None, None, None, "x"]
    assert typed["comment"].dtype == pl.String
    assert failures.height == 0
