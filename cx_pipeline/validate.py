"""Validation: parse raw text into typed columns, apply the Pandera contract, and split the
rows into valid rows and quarantined rows with every reason they failed.

Parsing is explicit (formats, time zones, numbers) and runs before Pandera, because a
Pandera check can only judge values that already have their type. Pandera runs with
``lazy=True`` on a collected DataFrame so that every failure of every row is reported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import pandera.errors
import polars as pl

from cx_pipeline.contracts import CUSTOM_CHECKS, ColumnSpec, Contract
from cx_pipeline.mappings import SourceMapping
from cx_pipeline.settings import KpiConfig
from cx_pipeline.text import mask_pii

logger = logging.getLogger(__name__)

META_COLUMNS = ["_partition_date", "_source_file", "_row_number", "_mapping"]
ROW_INDEX = "_row_index"
MAX_VALUE_CHARS = 80

# ISO 8601 forms accepted when a mapping gives no timestamp format.
ISO_WITH_OFFSET = ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"]
ISO_WITHOUT_OFFSET = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d"]
# Whole seconds in UTC with a final Z or +00:00, keyed by that suffix. The generated landing
# data writes Z in text files, and Parquet timestamps are extracted as text ending in +00:00.
ISO_UTC_SECONDS = {"Z": "%Y-%m-%dT%H:%M:%SZ", "+00:00": "%Y-%m-%dT%H:%M:%S+00:00"}

FORMULA_PATTERN = r"^\s*[=+\-@]\s*[A-Za-z_][A-Za-z0-9_.]*\s*\("

QUARANTINE_COLUMNS: dict[str, str] = {
    "_partition_date": "DATE",
    "_source_file": "VARCHAR",
    "_row_number": "BIGINT",
    "_mapping": "VARCHAR",
    "failed_checks": "VARCHAR[]",
    "failure_reasons": "VARCHAR",
    "raw_values": "VARCHAR",
}


@dataclass(frozen=True)
class ValidationResult:
    """Typed rows that passed the contract and quarantined rows with their reasons."""

    valid: pl.DataFrame
    quarantine: pl.DataFrame


def valid_schema(contract: Contract) -> dict[str, str]:
    """Return the validated table's columns and DuckDB types."""
    columns = {
        "_partition_date": "DATE",
        "_source_file": "VARCHAR",
        "_row_number": "BIGINT",
        "_mapping": "VARCHAR",
    }
    columns.update({column.name: column.duckdb_type for column in contract.columns})
    return columns


def _shown(expr: pl.Expr) -> pl.Expr:
    """Render a raw value for a reason text, shortened so a huge field cannot flood it."""
    return expr.str.slice(0, MAX_VALUE_CHARS)


def _to_utc(text: pl.Series | pl.Expr, fmt: str, zone: str) -> pl.Series | pl.Expr:
    """Parse ``text`` with ``fmt``: with its own offset when ``fmt`` has %z, else in ``zone``.

    The cache of parsed unique values is off, because landed timestamps are nearly all
    distinct, and with Polars 2.1 the cache made parsing them about 2.5 times slower. A
    mapping format whose values repeat, such as a day without a time, loses its gain.
    """
    if "%z" in fmt:
        return text.str.to_datetime(fmt, strict=False, time_zone="UTC", time_unit="us", cache=False)
    naive = text.str.to_datetime(fmt, strict=False, time_unit="us", cache=False)
    return naive.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")


def _iso_text(text: pl.Series) -> pl.Series:
    """Rewrite a space or lower-case t between date and time as T, and a final Z as +00:00.

    The regular expression runs only on the rows whose eleventh character is a space or t,
    because running it on every row cost more than parsing the timestamps.
    """
    separated = text.str.slice(10, 1).is_in([" ", "t"]).fill_null(False)
    if separated.any():
        rewritten = text.filter(separated).str.replace(r"^(\d{4}-\d{2}-\d{2})[ t]", "${1}T")
        text = text.scatter(separated.arg_true(), rewritten)
    value = pl.col(text.name)
    zulu = value.str.ends_with("Z") | value.str.ends_with("z")
    without_suffix = value.str.slice(0, value.str.len_chars() - 1)
    return text.to_frame().select(
        pl.when(zulu.fill_null(False)).then(without_suffix + "+00:00").otherwise(value)
    ).to_series()


def _parse_iso_timestamps(text: pl.Series, zone: str) -> pl.Series:
    """Parse ISO 8601 text to UTC, trying ISO_WITH_OFFSET and then ISO_WITHOUT_OFFSET.

    Text such as ``2024-05-01T12:30:00Z`` is parsed first with the fixed formats of
    ISO_UTC_SECONDS, which Polars reads several times faster than the general formats. Only
    the rows they leave unparsed go through _parse_iso_general, and a row they parse gets
    the same instant from the general formats, so the shortcut does not change results.
    """
    parsed = pl.Series(text.name, dtype=pl.Datetime("us", "UTC")).extend_constant(None, text.len())
    for suffix, fmt in ISO_UTC_SECONDS.items():
        # A fixed format is tried only on text with its suffix, because with Polars 2.1
        # rejecting text took about four times as long as parsing it. The cache is off
        # for the reason given in _to_utc.
        candidates = text.str.ends_with(suffix).fill_null(False) & parsed.is_null()
        parsed = _parse_selected(
            parsed,
            text,
            candidates,
            lambda part, fmt=fmt: part.str.to_datetime(
                fmt, strict=False, time_zone="UTC", time_unit="us", cache=False
            ),
        )
    unparsed = parsed.is_null() & text.is_not_null()
    return _parse_selected(parsed, text, unparsed, lambda part: _parse_iso_general(part, zone))


def _parse_selected(
    parsed: pl.Series, text: pl.Series, selected: pl.Series, parse: Callable[[pl.Series], pl.Series]
) -> pl.Series:
    """Replace the ``selected`` rows of ``parsed`` with ``parse`` applied to those rows of ``text``."""
    if not selected.any():
        return parsed
    if selected.all():
        return parse(text)
    return parsed.scatter(selected.arg_true(), parse(text.filter(selected)))


def _parse_iso_general(text: pl.Series, zone: str) -> pl.Series:
    """Parse ISO 8601 text to UTC with _parse_iso_formats, skipping text that cannot parse.

    Every general format starts with %Y, which Polars 2.1 reads with chrono: leading whitespace,
    an optional sign and then ASCII digits. Other text, such as ``not a date``, stays null
    without a call to the formats, which cost about 1 ms per call even on a few rows.
    """
    startable = text.str.contains(r"^\s*[0-9+\-]").fill_null(False)
    parsed = pl.Series(text.name, dtype=pl.Datetime("us", "UTC")).extend_constant(None, text.len())
    return _parse_selected(parsed, text, startable, lambda part: _parse_iso_formats(part, zone))


def _parse_iso_formats(text: pl.Series, zone: str) -> pl.Series:
    """Parse ISO 8601 text to UTC, trying ISO_WITH_OFFSET and then ISO_WITHOUT_OFFSET.

    The first format is applied to every row and each later format only to the rows that
    are still unparsed, so the result equals taking the first format that parses a row.
    Text without an offset is read in ``zone``.
    """
    iso = _iso_text(text)
    formats = ISO_WITH_OFFSET + ISO_WITHOUT_OFFSET
    parsed = _to_utc(iso, formats[0], zone)
    for fmt in formats[1:]:
        unparsed = parsed.is_null() & iso.is_not_null()
        if not unparsed.any():
            break
        parsed = parsed.scatter(unparsed.arg_true(), _to_utc(iso.filter(unparsed), fmt, zone))
    return parsed


def _clean_text(name: str) -> pl.Expr:
    """Return a raw column with surrounding whitespace removed and empty text as null."""
    # One replace took about half the time of when/then/otherwise with Polars 2.1: 5.5 ms
    # against 11.5 ms for the 12 subscription columns of a 42k-row chunk.
    return pl.col(name).str.strip_chars().replace("", None)


def _parses_iso(column: ColumnSpec, mapping: SourceMapping) -> bool:
    """Return whether a column is parsed as ISO 8601 text by _parse_iso_timestamps."""
    return column.type == "timestamp" and not mapping.timestamp_format


def _parse_column(
    column: ColumnSpec, mapping: SourceMapping, text: pl.Expr | None = None
) -> tuple[pl.Expr | None, str]:
    """Return the parsing expression of a column and the problem text for a failed parse.

    ``text`` is the column's text as _clean_text returns it, by default computed here. The
    expression is None for ISO 8601 timestamps, which parse_rows parses as a Series.
    """
    if text is None:
        text = _clean_text(column.name)
    if column.type == "string":
        if column.normalize == "lower":
            text = text.str.to_lowercase()
        elif column.normalize == "upper":
            text = text.str.to_uppercase()
        return text, "invalid text"
    if column.type == "float":
        # No separator guessing: "12,50" and "1,250" are both rejected rather than misread.
        number = text.cast(pl.Float64, strict=False)
        return pl.when(number.is_finite()).then(number), "is not a number"
    if column.type == "integer":
        number = text.cast(pl.Float64, strict=False)
        whole = number.is_finite() & (number.round(0) == number) & (number.abs() < 2**53)
        return pl.when(whole).then(number).cast(pl.Int64), "is not a whole number"
    if column.type == "boolean":
        lowered = text.str.to_lowercase()
        return (
            pl.when(lowered.is_in(["true", "t", "yes", "y", "1"]))
            .then(True)
            .when(lowered.is_in(["false", "f", "no", "n", "0"]))
            .then(False)
        ), "is not a boolean (true/false, yes/no, 1/0)"
    if column.type == "date":
        fmt = mapping.timestamp_format or "%Y-%m-%d"
        return text.str.to_date(fmt, strict=False), f"is not a date in the format {fmt}"
    if column.type == "timestamp":
        if _parses_iso(column, mapping):
            return None, "is not a timestamp (ISO 8601)"
        fmt = mapping.timestamp_format or ""
        return _to_utc(text, fmt, mapping.timestamp_timezone), f"is not a timestamp ({fmt})"
    raise AssertionError(f"unhandled column type {column.type}")


FAILURE_SCHEMA = {ROW_INDEX: pl.UInt32, "check": pl.String, "reason": pl.String}


@dataclass(frozen=True)
class _RowRule:
    """A row-level problem found before the contract runs: a flag and its reason text."""

    check: str
    flag: pl.Expr
    reason: pl.Expr


def _typed_name(column: str) -> str:
    return f"__typed_{column}"


def _clean_name(column: str) -> str:
    return f"__clean_{column}"


def _parse_rejects_markers(column: ColumnSpec, mapping: SourceMapping) -> bool:
    """Return whether the column's parser fails on any text with a NUL byte or a ``(``.

    Numbers, booleans and the built-in ISO 8601 and date formats accept neither, so a
    NUL byte or a formula in such a column always fails ``<column>:parse`` as well. A
    mapping's own timestamp format is not inspected and counts as accepting them.
    """
    if column.type in ("integer", "float", "boolean"):
        return True
    return column.type in ("date", "timestamp") and not mapping.timestamp_format


def _screen_flags(
    contract: Contract, mapping: SourceMapping, missing_values: list[str]
) -> list[pl.Expr]:
    """Return cheap flags that are True on every row that any of _row_rules fails.

    A row that fails a text rule in a column whose parser rejects that text is already
    caught by the column's parse flag, so those text rules are left to the detailed pass.
    """
    flags = [pl.col("_row_problem").is_not_null()]
    for column in contract.columns:
        name = column.name
        if column.type != "string":
            # A string column has no parse flag, because its value is the cleaned text itself.
            flags.append(pl.col(_clean_name(name)).is_not_null() & pl.col(_typed_name(name)).is_null())
        if not _parse_rejects_markers(column, mapping):
            # One pattern for both rules, a NUL byte anywhere or a formula, reads each text once.
            flags.append(pl.col(name).str.contains(rf"\x00|{FORMULA_PATTERN}"))
        if any(name in value.split(",") for value in missing_values):
            flags.append(_missing_column_flag(name, missing_values))
    return [flag.fill_null(False) for flag in flags]


def _missing_column_flag(name: str, missing_values: list[str]) -> pl.Expr:
    """Flag the rows whose ``_missing_columns`` list contains ``name``.

    ``missing_values`` are the distinct ``_missing_columns`` values of the rows, one per
    file at most, so the list is split here once instead of on every row.
    """
    matching = [value for value in missing_values if name in value.split(",")]
    if not matching:
        return pl.lit(False)
    return pl.col("_missing_columns").is_in(matching)


def _row_rules(contract: Contract, mapping: SourceMapping, missing_values: list[str]) -> list[_RowRule]:
    rules = []
    for column in contract.columns:
        name = column.name
        _, problem = _parse_column(column, mapping)
        text = pl.col(name)
        rules.append(
            _RowRule(
                f"{name}:parse",
                text.str.strip_chars().ne("") & pl.col(_typed_name(name)).is_null(),
                pl.format("{}: '{}' {}", pl.lit(name), _shown(text), pl.lit(problem)),
            )
        )
        rules.append(
            _RowRule(
                f"{name}:missing_column",
                _missing_column_flag(name, missing_values),
                pl.lit(
                    f"{name}: the file has no column {mapping.export_column(name)!r} "
                    f"(mapping {mapping.name}, file_pattern {mapping.file_pattern!r})"
                ),
            )
        )
        rules.append(
            _RowRule(f"{name}:nul_byte", text.str.contains("\x00", literal=True), pl.lit(f"{name}: contains a NUL byte"))
        )
        # A cell such as =HYPERLINK(...) runs as a formula when a BI export opens in a spreadsheet.
        rules.append(
            _RowRule(
                f"{name}:formula_like",
                text.str.contains(FORMULA_PATTERN),
                pl.format("{}: '{}' looks like a spreadsheet formula", pl.lit(name), _shown(text)),
            )
        )
    rules.append(
        _RowRule("row:field_count", pl.col("_row_problem").is_not_null(), pl.format("row: {}", pl.col("_row_problem")))
    )
    return rules


def _rule_failures(rows: pl.DataFrame, rules: list[_RowRule]) -> pl.DataFrame:
    """Return one failure row per (row, rule) whose flag is True, ordered by rule and then row.

    All rules run in one select with a reason column per rule, null where the rule passes,
    because a filter per rule cost about 6 ms per 31-day feedback chunk in fixed costs. A
    rule's reason is never null on a row it flags, so dropping the nulls keeps exactly the
    flagged rows.
    """
    reasons = rows.select(
        pl.col(ROW_INDEX),
        *[pl.when(rule.flag.fill_null(False)).then(rule.reason).alias(rule.check) for rule in rules],
    )
    return reasons.unpivot(index=ROW_INDEX, variable_name="check", value_name="reason").drop_nulls("reason")


def parse_rows(raw: pl.DataFrame, contract: Contract, mapping: SourceMapping) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Parse the raw text of one mapping's rows into typed columns.

    Returns the typed rows and a frame of failures (row index, check, reason). A value that
    is present but cannot be parsed becomes null and fails ``<column>:parse`` with the value
    in its reason. A required column missing from the file, NUL bytes, formula-like text
    and a wrong field count fail too. The rules and their reasons run only on the rows
    that _screen_flags marks, so a clean load pays for the screen alone.
    """
    cleaned = raw.with_columns(
        _clean_text(column.name).alias(_clean_name(column.name)) for column in contract.columns
    )
    expressions = []
    for column in contract.columns:
        expression, _ = _parse_column(column, mapping, pl.col(_clean_name(column.name)))
        if expression is not None:
            expressions.append(expression.alias(_typed_name(column.name)))
    with_typed = cleaned.with_columns(expressions)
    iso_columns = [column.name for column in contract.columns if _parses_iso(column, mapping)]
    if iso_columns:
        with_typed = with_typed.with_columns(
            _parse_iso_timestamps(with_typed[_clean_name(name)], mapping.timestamp_timezone).alias(
                _typed_name(name)
            )
            for name in iso_columns
        )
    missing_values = raw["_missing_columns"].drop_nulls().unique().to_list()

    # A cheap screen finds the rows that may fail, and every rule runs on those rows only.
    screened = with_typed.filter(pl.any_horizontal(_screen_flags(contract, mapping, missing_values)))
    failures = [pl.DataFrame(schema=FAILURE_SCHEMA)]
    if screened.height:
        failures.append(_rule_failures(screened, _row_rules(contract, mapping, missing_values)))

    typed = with_typed.select(
        pl.col(ROW_INDEX),
        *[pl.col(name) for name in META_COLUMNS],
        *[pl.col(_typed_name(column.name)).alias(column.name) for column in contract.columns],
    )
    return typed, pl.concat(failures)


def fill_feedback_defaults(rows: pl.DataFrame, kpi: KpiConfig) -> pl.DataFrame:
    """Fill a feedback row's scale and direction from its survey type when the export has none."""
    scale_min = pl.col("survey_type").replace_strict(
        {k: v[0] for k, v in kpi.scales.items()}, default=None, return_dtype=pl.Int64
    )
    scale_max = pl.col("survey_type").replace_strict(
        {k: v[1] for k, v in kpi.scales.items()}, default=None, return_dtype=pl.Int64
    )
    return rows.with_columns(
        pl.coalesce("scale_min", scale_min).alias("scale_min"),
        pl.coalesce("scale_max", scale_max).alias("scale_max"),
        pl.col("scale_direction").fill_null("higher_is_better"),
    )


def fill_subscription_defaults(rows: pl.DataFrame, kpi: KpiConfig) -> pl.DataFrame:
    """Default a subscription to a monthly interval of 1, the reporting currency and no plan name."""
    return rows.with_columns(
        pl.col("billing_interval").fill_null("month"),
        pl.col("interval_count").fill_null(1),
        pl.col("currency").fill_null(kpi.currency),
        pl.col("plan").fill_null("unspecified"),
    )


def fill_order_defaults(rows: pl.DataFrame, kpi: KpiConfig) -> pl.DataFrame:
    """Default an order's currency to the reporting currency."""
    return rows.with_columns(pl.col("currency").fill_null(kpi.currency))


# Source-specific steps between parsing and the contract checks.
PREPARE_STEPS: dict[str, Callable[[pl.DataFrame, KpiConfig], pl.DataFrame]] = {
    "feedback": fill_feedback_defaults,
    "subscriptions": fill_subscription_defaults,
    "orders": fill_order_defaults,
}


def _reason_for(check: str, column: str, value: str | None) -> str:
    shown = "null" if value is None else f"'{value[:MAX_VALUE_CHARS]}'"
    if check == "not_nullable":
        return f"{column}: missing value"
    if check in CUSTOM_CHECKS:
        return f"{column}: {CUSTOM_CHECKS[check].error} (value {shown})"
    return f"{column}: {shown} failed {check}"


def contract_failures(parsed: pl.DataFrame, contract: Contract, kpi: KpiConfig) -> pl.DataFrame:
    """Run the Pandera schema and return one row per (row index, failed check, reason)."""
    empty = pl.DataFrame(schema={ROW_INDEX: pl.UInt32, "check": pl.String, "reason": pl.String})
    try:
        contract.pandera_schema(kpi).validate(parsed, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return empty

    schema_level = cases.filter(pl.col("index").is_null())
    if schema_level.height:
        raise RuntimeError(f"{contract.path}: contract does not fit the parsed rows: {schema_level.to_dicts()}")

    # Pandera's index is the row position; parsed rows are sorted by ROW_INDEX from 0.
    records = [
        {
            ROW_INDEX: index,
            "check": f"{column}:{check}",
            "reason": _reason_for(check, column, failure),
        }
        for index, column, check, failure in cases.select(
            "index", "column", "check", pl.col("failure_case").cast(pl.String)
        ).iter_rows()
    ]
    return pl.DataFrame(records, schema=empty.schema)


def duplicate_failures(parsed: pl.DataFrame, key: str) -> pl.DataFrame:
    """Fail every row whose primary key appears again later in the same file.

    The last row of a file is its newest version; the earlier ones are quarantined with
    the row that replaced them, rather than silently dropped. Repeats across files and
    days are versions and are resolved in staging.
    """
    file_key = ["_partition_date", "_source_file", key]
    in_file = pl.col(key).is_duplicated().over("_partition_date", "_source_file")
    repeated = parsed.filter(pl.col(key).is_not_null() & in_file)
    if repeated.height == 0:
        return pl.DataFrame(schema=FAILURE_SCHEMA)
    next_row = pl.col("_row_number").shift(-1).over(file_key, order_by="_row_number")
    return (
        repeated.with_columns(next_row.alias("_next_row"))
        .filter(pl.col("_next_row").is_not_null())
        .select(
            pl.col(ROW_INDEX),
            pl.lit(f"{key}:duplicate_in_file").alias("check"),
            pl.format(
                "{}: '{}' appears again at row {} of the same file, which is kept",
                pl.lit(key),
                _shown(pl.col(key)),
                pl.col("_next_row"),
            ).alias("reason"),
        )
    )


def mask_pii_columns(rows: pl.DataFrame, contract: Contract) -> pl.DataFrame:
    """Mask e-mail addresses, phone and card numbers in the contract's ``mask_pii`` columns.

    Only texts with an ``@`` or a digit can hold any of them, so only those are passed to
    the per-text masking function.
    """
    for column in contract.columns:
        if not column.mask_pii or column.name not in rows.columns:
            continue
        values = rows[column.name]
        candidates = values.str.contains(r"[@0-9]").fill_null(False)
        if candidates.any():
            masked = values.filter(candidates).map_elements(mask_pii, return_dtype=pl.String, skip_nulls=True)
            rows = rows.with_columns(values.scatter(candidates.arg_true(), masked))
    return rows


def validate_rows(
    raw: pl.DataFrame,
    contract: Contract,
    mappings: dict[str, SourceMapping],
    kpi: KpiConfig,
) -> ValidationResult:
    """Split raw rows into typed valid rows and quarantined rows.

    ``mappings`` maps each ``_mapping`` name found in ``raw`` to its mapping, so timestamp
    formats are applied per export. Every input row ends up in exactly one of the outputs.
    """
    raw = raw.with_row_index(ROW_INDEX)
    groups = raw.group_by("_mapping", maintain_order=True) if raw.height else [(("canonical",), raw)]
    typed_parts, failure_parts = [], []
    for (name,), group in groups:
        typed, failures = parse_rows(group, contract, mappings[str(name)])
        typed_parts.append(typed)
        failure_parts.append(failures)
    parsed = pl.concat(typed_parts).sort(ROW_INDEX)
    parse_failures = pl.concat(failure_parts)

    prepare = PREPARE_STEPS.get(contract.source)
    if prepare is not None:
        parsed = prepare(parsed, kpi)

    # A value that failed to parse is null; a contract failure on the same column would
    # only repeat the reason.
    failed_columns = parse_failures.select(ROW_INDEX, pl.col("check").str.split(":").list.first().alias("_column"))
    contract_found = (
        contract_failures(parsed, contract, kpi)
        .with_columns(pl.col("check").str.split(":").list.first().alias("_column"))
        .join(failed_columns, on=[ROW_INDEX, "_column"], how="anti")
        .drop("_column")
    )
    failures = pl.concat(
        [parse_failures, duplicate_failures(parsed, contract.primary_key), contract_found]
    )
    grouped = failures.group_by(ROW_INDEX).agg(
        pl.col("check").alias("failed_checks"), pl.col("reason").str.join("; ").alias("failure_reasons")
    )

    valid = parsed.join(grouped, on=ROW_INDEX, how="anti").sort(ROW_INDEX).select(*META_COLUMNS, *contract.column_names)
    valid = mask_pii_columns(valid, contract)
    quarantine = (
        mask_pii_columns(raw.join(grouped, on=ROW_INDEX, how="inner"), contract)
        .sort(ROW_INDEX)
        .select(
            *META_COLUMNS,
            pl.col("failed_checks"),
            pl.col("failure_reasons"),
            pl.struct(*contract.column_names, "_extra_columns").struct.json_encode().alias("raw_values"),
        )
    )
    if valid.height + quarantine.height != raw.height:
        raise RuntimeError(
            f"row accounting failed for {contract.source}: {raw.height} landed, "
            f"{valid.height} valid, {quarantine.height} quarantined"
        )
    return ValidationResult(valid=valid, quarantine=quarantine)
