"""Source contracts: the YAML files in ``schemas/`` turned into typed column lists and
Pandera (polars backend) schemas.

A contract file names the source, its primary key, each canonical column with a type,
nullability and checks, and optional named custom checks registered in this module for
rules that YAML cannot express (for example a score that must lie within its row's scale).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandera.polars as pa
import polars as pl

from cx_pipeline.settings import KpiConfig
from cx_pipeline.yamlfile import LineMap, file_error, load_yaml_mapping

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"

POLARS_TYPES: dict[str, pl.DataType] = {
    "string": pl.String(),
    "integer": pl.Int64(),
    "float": pl.Float64(),
    "boolean": pl.Boolean(),
    "timestamp": pl.Datetime("us", "UTC"),
    "date": pl.Date(),
}

DUCKDB_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "float": "DOUBLE",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMPTZ",
    "date": "DATE",
}

COLUMN_KEYS = {"type", "nullable", "required", "description", "checks", "normalize", "mask_pii"}
CONTRACT_KEYS = {"source", "description", "primary_key", "columns", "checks"}


@dataclass(frozen=True)
class CustomCheck:
    """A named row-level rule that needs more than one column or a KPI setting.

    ``expression`` returns an expression that is True for valid rows; rows where it is null
    are not failed here, because missing inputs are reported by the columns' own checks.
    """

    column: str
    expression: Callable[[KpiConfig], pl.Expr]
    error: str


def _not_after_arrival(column: str) -> CustomCheck:
    # An event cannot happen after the day its file arrived; one day of slack covers
    # time zones ahead of UTC.
    return CustomCheck(
        column=column,
        expression=lambda kpi: pl.col(column)
        < pl.col("_partition_date").cast(pl.Datetime("us", "UTC")) + pl.duration(days=2),
        error="timestamp is later than the day the file arrived",
    )


def _not_before(column: str, earlier: str) -> CustomCheck:
    return CustomCheck(
        column=column,
        expression=lambda kpi: pl.col(column) >= pl.col(earlier),
        error=f"{column} is before {earlier}",
    )


CUSTOM_CHECKS: dict[str, CustomCheck] = {
    "score_within_scale": CustomCheck(
        column="score",
        expression=lambda kpi: pl.col("score").is_between(pl.col("scale_min"), pl.col("scale_max")),
        error="score is outside the row's scale [scale_min, scale_max]",
    ),
    "scale_min_below_max": CustomCheck(
        column="scale_max",
        expression=lambda kpi: pl.col("scale_min") < pl.col("scale_max"),
        error="scale_min must be below scale_max",
    ),
    "nps_scale_is_0_to_10": CustomCheck(
        column="scale_max",
        expression=lambda kpi: (pl.col("survey_type") != "nps")
        | ((pl.col("scale_min") == 0) & (pl.col("scale_max") == 10)),
        error="NPS answers must use the 0-10 scale",
    ),
    "score_is_whole_number": CustomCheck(
        column="score",
        expression=lambda kpi: pl.col("score").round(0) == pl.col("score"),
        error="scores must be whole numbers",
    ),
    "submitted_not_after_arrival": _not_after_arrival("submitted_at"),
    "ordered_not_after_arrival": _not_after_arrival("ordered_at"),
    "session_not_after_arrival": _not_after_arrival("started_at"),
    "started_not_after_arrival": _not_after_arrival("started_at"),
    "ended_not_before_started": _not_before("ended_at", "started_at"),
    "trial_end_not_before_start": _not_before("trial_ends_at", "started_at"),
    "currency_is_reporting_currency": CustomCheck(
        column="currency",
        expression=lambda kpi: pl.col("currency") == kpi.currency,
        error="currency differs from the reporting currency set in CX_CONFIG; convert amounts before landing",
    ),
}


@dataclass(frozen=True)
class ColumnSpec:
    """One canonical column of a source contract."""

    name: str
    type: str
    nullable: bool
    required: bool
    description: str
    checks: dict[str, Any]
    normalize: str | None
    # Free text whose e-mail addresses, phone and card numbers are masked on validation.
    mask_pii: bool = False

    @property
    def polars_type(self) -> pl.DataType:
        """Return the Polars type the column is parsed into."""
        return POLARS_TYPES[self.type]

    @property
    def duckdb_type(self) -> str:
        """Return the DuckDB type the column is stored as."""
        return DUCKDB_TYPES[self.type]


@dataclass(frozen=True)
class Contract:
    """The canonical shape of one raw source, loaded from ``schemas/<source>.yaml``."""

    source: str
    description: str
    primary_key: str
    columns: tuple[ColumnSpec, ...]
    custom_checks: tuple[str, ...]
    path: Path

    @property
    def column_names(self) -> list[str]:
        """Return the canonical column names in contract order."""
        return [column.name for column in self.columns]

    def column(self, name: str) -> ColumnSpec:
        """Return the column called ``name``."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.path}: no column {name!r}")

    def pandera_schema(self, kpi: KpiConfig) -> pa.DataFrameSchema:
        """Build the Pandera schema that validates parsed rows of this source."""
        columns = {column.name: _pandera_column(column, self.path) for column in self.columns}
        for check_name in self.custom_checks:
            custom = CUSTOM_CHECKS[check_name]
            columns[custom.column].checks.append(_pandera_custom_check(check_name, custom, kpi))
        return pa.DataFrameSchema(columns, strict=False, coerce=False, name=self.source)


def _pandera_column(column: ColumnSpec, path: Path) -> pa.Column:
    checks = []
    for check_name, argument in column.checks.items():
        if check_name == "isin":
            checks.append(pa.Check.isin(list(argument)))
        elif check_name == "min":
            checks.append(pa.Check.ge(argument))
        elif check_name == "max":
            checks.append(pa.Check.le(argument))
        elif check_name == "max_length":
            checks.append(pa.Check.str_length(max_value=int(argument)))
        elif check_name == "min_length":
            checks.append(pa.Check.str_length(min_value=int(argument)))
        elif check_name == "matches":
            checks.append(pa.Check.str_matches(str(argument)))
        else:  # rejected when the file was loaded
            raise AssertionError(f"{path}: unhandled check {check_name}")
    return pa.Column(column.polars_type, checks=checks, nullable=column.nullable)


def _pandera_custom_check(name: str, custom: CustomCheck, kpi: KpiConfig) -> pa.Check:
    def check(data: Any) -> pl.LazyFrame:
        return data.lazyframe.select(custom.expression(kpi).fill_null(True).alias(data.key))

    # No error text is set, so Pandera reports the failure under the check's unique name.
    return pa.Check(check, name=name)


COLUMN_CHECKS = {"isin", "min", "max", "max_length", "min_length", "matches"}
NORMALIZERS = {"lower", "upper"}


def _parse_column(name: str, spec: Any, path: Path, line: int) -> ColumnSpec:
    if not isinstance(spec, LineMap):
        raise file_error(path, line, f"column {name!r} must be a mapping with at least 'type'")
    unknown = sorted(set(spec) - COLUMN_KEYS)
    if unknown:
        raise file_error(path, spec.line, f"column {name!r}: unknown key(s) {unknown}")
    column_type = spec.get("type")
    if column_type not in POLARS_TYPES:
        raise file_error(
            path,
            spec.line_of("type"),
            f"column {name!r}: type {column_type!r} is not one of {sorted(POLARS_TYPES)}",
        )
    checks = spec.get("checks") or {}
    if not isinstance(checks, dict):
        raise file_error(path, spec.line_of("checks"), f"column {name!r}: checks must be a mapping")
    for check_name in checks:
        if check_name not in COLUMN_CHECKS:
            raise file_error(
                path,
                spec.line_of("checks"),
                f"column {name!r}: unknown check {check_name!r}; known: {sorted(COLUMN_CHECKS)}",
            )
    normalize = spec.get("normalize")
    if normalize is not None and normalize not in NORMALIZERS:
        raise file_error(
            path, spec.line_of("normalize"), f"column {name!r}: normalize must be one of {sorted(NORMALIZERS)}"
        )
    return ColumnSpec(
        name=name,
        type=column_type,
        nullable=bool(spec.get("nullable", True)),
        required=bool(spec.get("required", False)),
        description=str(spec.get("description", "")),
        checks=dict(checks),
        normalize=normalize,
        mask_pii=bool(spec.get("mask_pii", False)),
    )


def load_contract(path: Path) -> Contract:
    """Load and check one contract file, raising ConfigError with file and line on errors."""
    data = load_yaml_mapping(path)
    unknown = sorted(set(data) - CONTRACT_KEYS)
    if unknown:
        raise file_error(path, data.line_of(unknown[0]), f"unknown key(s) {unknown}; known: {sorted(CONTRACT_KEYS)}")
    for key in ("source", "primary_key", "columns"):
        if key not in data:
            raise file_error(path, data.line, f"missing required key {key!r}")

    raw_columns = data["columns"]
    if not isinstance(raw_columns, LineMap) or not raw_columns:
        raise file_error(path, data.line_of("columns"), "columns must be a non-empty mapping")
    columns = tuple(
        _parse_column(str(name), spec, path, raw_columns.line_of(str(name)))
        for name, spec in raw_columns.items()
    )

    names = {column.name for column in columns}
    primary_key = str(data["primary_key"])
    if primary_key not in names:
        raise file_error(path, data.line_of("primary_key"), f"primary_key {primary_key!r} is not a column")

    custom_checks = tuple(str(name) for name in data.get("checks") or [])
    for check_name in custom_checks:
        if check_name not in CUSTOM_CHECKS:
            raise file_error(
                path,
                data.line_of("checks"),
                f"unknown custom check {check_name!r}; registered: {sorted(CUSTOM_CHECKS)}",
            )
        if CUSTOM_CHECKS[check_name].column not in names:
            raise file_error(
                path,
                data.line_of("checks"),
                f"custom check {check_name!r} needs column {CUSTOM_CHECKS[check_name].column!r}",
            )

    source = str(data["source"])
    if source != path.stem:
        raise file_error(path, data.line_of("source"), f"source {source!r} must match the file name")
    return Contract(
        source=source,
        description=str(data.get("description", "")),
        primary_key=primary_key,
        columns=columns,
        custom_checks=custom_checks,
        path=path,
    )


def load_contracts(directory: Path = SCHEMAS_DIR) -> dict[str, Contract]:
    """Load every ``<source>.yaml`` contract in ``directory``, keyed by source name."""
    return {path.stem: load_contract(path) for path in sorted(directory.glob("*.yaml"))}
