"""Extraction: read the files landed for one source and day into raw rows.

Raw rows keep every value as landed (text), mapped onto the contract's column names,
with the file, the 1-based data row number and any unmapped columns as JSON, so a
quarantined row can always be traced back to the exact line a user exported.
"""

from __future__ import annotations

import datetime as dt
import csv
import fnmatch
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from cx_pipeline.contracts import Contract
from cx_pipeline.mappings import SourceMapping, is_lookup_file, mapping_for_file
from cx_pipeline.transforms import apply_transform

logger = logging.getLogger(__name__)

CSV_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": ","}
NDJSON_SUFFIXES = {".ndjson", ".jsonl", ".json"}
PARQUET_SUFFIXES = {".parquet"}
UTF8_BOM = b"\xef\xbb\xbf"

RAW_META_COLUMNS: dict[str, str] = {
    "_partition_date": "DATE",
    "_source_file": "VARCHAR",
    "_row_number": "BIGINT",
    "_mapping": "VARCHAR",
    "_missing_columns": "VARCHAR",
    "_extra_columns": "VARCHAR",
    # What the reader found wrong with the row itself (field count), for quarantine.
    "_row_problem": "VARCHAR",
}


@dataclass(frozen=True)
class FileError:
    """A landed file that could not be read at all."""

    source_file: str
    error: str


@dataclass(frozen=True)
class Extraction:
    """The raw rows of one source and partition, and the files that failed."""

    rows: pl.DataFrame
    files_read: list[str]
    file_errors: list[FileError]


def raw_schema(contract: Contract) -> dict[str, str]:
    """Return the raw table's columns and DuckDB types: metadata, then contract columns as text."""
    columns = dict(RAW_META_COLUMNS)
    columns.update({name: "VARCHAR" for name in contract.column_names})
    return columns


def partition_dir(landing_dir: Path, source: str, partition_date: dt.date) -> Path:
    """Return the landing folder of one source and arrival day."""
    return landing_dir / source / partition_date.isoformat()


def extract_partition(
    landing_dir: Path,
    contract: Contract,
    mappings: list[SourceMapping],
    partition_date: dt.date,
) -> Extraction:
    """Read every file landed for ``contract.source`` on ``partition_date``.

    A file that cannot be read is reported in ``file_errors`` and the other files still load.
    """
    folder = partition_dir(landing_dir, contract.source, partition_date)
    frames: list[pl.DataFrame] = []
    files_read: list[str] = []
    errors: list[FileError] = []
    if not folder.is_dir():
        return Extraction(_empty_raw(contract), files_read, errors)

    paths = sorted(folder.iterdir())
    names = [p.name for p in paths]
    for path in paths:
        relative = path.relative_to(landing_dir).as_posix()
        if path.name.startswith(".") or path.is_dir():
            logger.warning("skipped %s: only regular files directly in the day folder are read", relative)
            continue
        reader = is_lookup_file(path.name, names, mappings)
        if reader:
            logger.info("%s is read as the lookup file of mapping %s, not as rows of its own", relative, reader)
            continue
        mapping = mapping_for_file(path.name, mappings, contract)
        try:
            table = read_file(path, mapping)
            if mapping.transform:
                lookup = _read_lookup(folder, mapping) if mapping.lookup_file else None
                table = apply_transform(mapping.transform, mapping.transform_options, table, lookup)
        except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'unreadable'}"
            logger.error("could not read %s: %s", relative, reason)
            errors.append(FileError(relative, reason))
            continue
        frames.append(to_raw_rows(table, contract, mapping, relative, partition_date))
        files_read.append(relative)

    rows = pl.concat(frames, how="vertical") if frames else _empty_raw(contract)
    return Extraction(rows, files_read, errors)


def read_file(path: Path, mapping: SourceMapping) -> pl.DataFrame:
    """Read a CSV, TSV, NDJSON or Parquet file into a frame of text columns."""
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES and suffix not in NDJSON_SUFFIXES and suffix not in PARQUET_SUFFIXES:
        raise ValueError(
            f"unsupported file type {suffix or '(none)'}; expected .csv, .tsv, .txt, .ndjson, .jsonl, .json or .parquet"
        )
    if path.stat().st_size == 0:
        raise ValueError("file is empty (0 bytes)")
    if suffix in CSV_SUFFIXES:
        separator = mapping.delimiter or CSV_SUFFIXES[suffix]
        if separator == "whitespace":
            return _read_whitespace(path, mapping.column_names)
        return _read_csv(path, separator, mapping.column_names)
    if suffix in NDJSON_SUFFIXES:
        text = _decode(path.read_bytes(), path)
        if not text.strip():
            return pl.DataFrame()
        return _all_text(pl.read_ndjson(io.BytesIO(text.encode("utf-8")), infer_schema_length=None))
    return _all_text(pl.read_parquet(path))


def _read_lookup(folder: Path, mapping: SourceMapping) -> pl.DataFrame | None:
    matches = sorted(p for p in folder.iterdir() if fnmatch.fnmatch(p.name, mapping.lookup_file or ""))
    if not matches:
        return None
    if len(matches) > 1:
        raise ValueError(f"mapping {mapping.name}: several files match lookup_file {mapping.lookup_file!r}")
    return read_file(matches[0], mapping_for_lookup(mapping))


def mapping_for_lookup(mapping: SourceMapping) -> SourceMapping:
    """Return the reading options of a lookup file: its own header and default delimiter."""
    return SourceMapping(name=f"{mapping.name}:lookup", source=mapping.source, file_pattern=mapping.lookup_file or "")


def _decode(data: bytes, path: Path) -> str:
    """Decode UTF-8 (with or without a byte order mark); lines that are not valid UTF-8 are
    decoded as Windows-1252, so a file that mixes both keeps every character readable.
    """
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lines = data.split(b"\n")
    decoded = []
    fallback = 0
    for line in lines:
        try:
            decoded.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            decoded.append(line.decode("cp1252", errors="replace"))
            fallback += 1
    logger.warning("%s: %d of %d lines are not valid UTF-8; decoded as Windows-1252", path.name, fallback, len(lines))
    return "\n".join(decoded)


def _read_csv(path: Path, separator: str, column_names: tuple[str, ...] | None) -> pl.DataFrame:
    text = _decode(path.read_bytes(), path)
    if not text.strip():
        return pl.DataFrame()
    if "\r" in text and "\n" not in text:
        # Old Mac line endings: Polars would read no rows at all.
        return _read_csv_row_by_row(text, separator, column_names)
    try:
        return pl.read_csv(
            io.BytesIO(text.encode("utf-8")),
            separator=separator,
            infer_schema=False,
            has_header=column_names is None,
            new_columns=list(column_names) if column_names else None,
        )
    except pl.exceptions.ComputeError as exc:
        logger.warning("%s: %s; reading it row by row", path.name, str(exc).splitlines()[0])
        return _read_csv_row_by_row(text, separator, column_names)


def _read_csv_row_by_row(text: str, separator: str, column_names: tuple[str, ...] | None) -> pl.DataFrame:
    """Read a CSV that the fast reader rejects, keeping rows with the wrong field count.

    Such rows get a ``_row_problem`` and are quarantined; the rest of the file still loads.
    """
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=separator, strict=False))
    rows = [row for row in rows if row]
    if column_names is None:
        if not rows:
            return pl.DataFrame()
        column_names, rows = tuple(rows[0]), rows[1:]
    width = len(column_names)
    records: dict[str, list[str | None]] = {name: [] for name in column_names}
    problems: list[str | None] = []
    for row in rows:
        if len(row) == width:
            problems.append(None)
        else:
            problems.append(f"row has {len(row)} fields, the header has {width}")
        padded = (row + [None] * width)[:width]
        for name, value in zip(column_names, padded, strict=True):
            records[name].append(value if value != "" else None)
    frame = pl.DataFrame(records, schema={name: pl.String for name in column_names})
    return frame.with_columns(pl.Series("_row_problem", problems, dtype=pl.String))


def _read_whitespace(path: Path, column_names: tuple[str, ...] | None) -> pl.DataFrame:
    """Read a file whose fields are separated by runs of spaces or tabs."""
    lines = [line for line in _decode(path.read_bytes(), path).splitlines() if line.strip()]
    if not lines:
        return pl.DataFrame()
    if column_names is None:
        column_names, lines = tuple(lines[0].split()), lines[1:]
    fields = pl.Series("line", lines, dtype=pl.String).str.extract_all(r"\S+")
    counts = fields.list.len()
    if (counts != len(column_names)).any():
        bad = int((counts != len(column_names)).arg_true()[0])
        raise ValueError(
            f"row {bad + 1} has {counts[bad]} fields, expected {len(column_names)} ({', '.join(column_names)})"
        )
    return pl.DataFrame({name: fields.list.get(i) for i, name in enumerate(column_names)})


def _all_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Turn typed columns (Parquet, NDJSON) into the text they stand for."""
    expressions = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            pattern = "%Y-%m-%dT%H:%M:%S%.f%:z" if dtype.time_zone else "%Y-%m-%dT%H:%M:%S%.f"
            expressions.append(column.dt.strftime(pattern).alias(name))
        elif isinstance(dtype, pl.Struct | pl.List | pl.Array):
            expressions.append(
                column.map_elements(lambda value: json.dumps(value, default=str), return_dtype=pl.String)
            )
        else:
            expressions.append(column.cast(pl.String).alias(name))
    return frame.select(expressions)


def to_raw_rows(
    table: pl.DataFrame,
    contract: Contract,
    mapping: SourceMapping,
    source_file: str,
    partition_date: dt.date,
) -> pl.DataFrame:
    """Map an export's text columns onto the raw table's columns."""
    table = table.with_row_index("_row_number", offset=1).with_columns(pl.col("_row_number").cast(pl.Int64))
    used: set[str] = set()
    missing: list[str] = []
    selections: list[pl.Expr] = []
    for column in contract.columns:
        name = column.name
        if name in mapping.constants:
            selections.append(pl.lit(mapping.constants[name], pl.String).alias(name))
        elif name == mapping.row_id_column:
            selections.append(
                (pl.lit(f"{source_file}:") + pl.col("_row_number").cast(pl.String)).alias(name)
            )
        elif mapping.export_column(name) in table.columns:
            used.add(mapping.export_column(name))
            selections.append(pl.col(mapping.export_column(name)).alias(name))
        else:
            if column.required:
                missing.append(name)
            selections.append(pl.lit(None, pl.String).alias(name))

    row_problem = pl.col("_row_problem") if "_row_problem" in table.columns else pl.lit(None, pl.String)
    extra = [c for c in table.columns if c not in used and c not in ("_row_number", "_row_problem")]
    extra_json = pl.struct(extra).struct.json_encode() if extra else pl.lit(None, pl.String)
    return table.select(
        pl.lit(partition_date, pl.Date).alias("_partition_date"),
        pl.lit(source_file, pl.String).alias("_source_file"),
        pl.col("_row_number"),
        pl.lit(mapping.name, pl.String).alias("_mapping"),
        pl.lit(",".join(missing) or None, pl.String).alias("_missing_columns"),
        extra_json.alias("_extra_columns"),
        row_problem.alias("_row_problem"),
        *selections,
    )


def _empty_raw(contract: Contract) -> pl.DataFrame:
    polars_types = {"DATE": pl.Date, "VARCHAR": pl.String, "BIGINT": pl.Int64}
    return pl.DataFrame(schema={name: polars_types[t] for name, t in raw_schema(contract).items()})
