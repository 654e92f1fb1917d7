"""Source mappings: YAML files that map a real export's columns and formats onto a contract.

A mapping is chosen per landed file by its ``file_pattern`` (a glob on the file name).
Files that match no mapping are read with the canonical mapping: the export already uses
the contract's column names.
"""

from __future__ import annotations

import fnmatch
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cx_pipeline.contracts import Contract
from cx_pipeline.settings import ConfigError
from cx_pipeline.transforms import check_transform_options
from cx_pipeline.yamlfile import LineMap, file_error, load_yaml_mapping

BUNDLED_MAPPINGS_DIR = Path(__file__).resolve().parent.parent / "schemas" / "mappings"
CANONICAL = "canonical"
MAPPING_KEYS = {
    "name",
    "source",
    "description",
    "file_pattern",
    "delimiter",
    "columns",
    "constants",
    "row_id_column",
    "timestamp_format",
    "timestamp_timezone",
    "column_names",
    "transform",
    "lookup_file",
}


@dataclass(frozen=True)
class SourceMapping:
    """Column names and formats of one export, mapped onto a source contract."""

    name: str
    source: str
    file_pattern: str
    # canonical column -> export column
    columns: dict[str, str] = field(default_factory=dict)
    # canonical column -> value used for every row
    constants: dict[str, str] = field(default_factory=dict)
    # canonical column filled with "<file>:<row number>" for exports without an id
    row_id_column: str | None = None
    delimiter: str | None = None
    # strftime format of timestamp columns; None means ISO 8601
    timestamp_format: str | None = None
    # zone of timestamps written without an offset
    timestamp_timezone: str = "UTC"
    # names of the columns of a file without a header line; None means the file has one
    column_names: tuple[str, ...] | None = None
    # registered transform applied before the columns map, with its options
    transform: str | None = None
    transform_options: dict[str, Any] = field(default_factory=dict)
    # glob of a second file in the same day folder that the transform reads
    lookup_file: str | None = None
    path: Path | None = None

    def matches(self, file_name: str) -> bool:
        """Return whether this mapping applies to a landed file name."""
        return fnmatch.fnmatch(file_name, self.file_pattern)

    def export_column(self, canonical: str) -> str:
        """Return the export's column name that feeds a canonical column."""
        return self.columns.get(canonical, canonical)


def canonical_mapping(contract: Contract) -> SourceMapping:
    """Return the identity mapping, used for files already in the contract's shape."""
    return SourceMapping(name=CANONICAL, source=contract.source, file_pattern="*")


def load_mapping(path: Path, contracts: dict[str, Contract]) -> SourceMapping:
    """Load one mapping file and check it against its source's contract."""
    data = load_yaml_mapping(path)
    unknown = sorted(set(data) - MAPPING_KEYS)
    if unknown:
        raise file_error(path, data.line_of(unknown[0]), f"unknown key(s) {unknown}; known: {sorted(MAPPING_KEYS)}")
    for key in ("name", "source", "file_pattern"):
        if key not in data:
            raise file_error(path, data.line, f"missing required key {key!r}")

    source = str(data["source"])
    if source not in contracts:
        raise file_error(
            path, data.line_of("source"), f"source {source!r} has no contract; known: {sorted(contracts)}"
        )
    contract = contracts[source]
    known_columns = set(contract.column_names)

    columns = _string_map(data, "columns", path)
    constants = _string_map(data, "constants", path)
    for key, section in (("columns", columns), ("constants", constants)):
        for canonical in section:
            if canonical not in known_columns:
                raise file_error(
                    path,
                    data[key].line_of(canonical),
                    f"{key}: {canonical!r} is not a column of the {source} contract",
                )

    row_id_column = data.get("row_id_column")
    if row_id_column is not None and row_id_column not in known_columns:
        raise file_error(
            path, data.line_of("row_id_column"), f"row_id_column {row_id_column!r} is not a contract column"
        )

    timezone = str(data.get("timestamp_timezone", "UTC"))
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise file_error(
            path, data.line_of("timestamp_timezone"), f"{timezone!r} is not an IANA time zone"
        ) from exc

    column_names = data.get("column_names")
    if column_names is not None and (
        not isinstance(column_names, list) or not column_names or len(set(map(str, column_names))) != len(column_names)
    ):
        raise file_error(path, data.line_of("column_names"), "column_names must be a list of distinct names")

    transform_name, transform_options = None, {}
    if "transform" in data:
        raw_transform = data["transform"]
        if not isinstance(raw_transform, dict) or "name" not in raw_transform:
            raise file_error(path, data.line_of("transform"), "transform must be a mapping with a 'name' and options")
        transform_name = str(raw_transform["name"])
        transform_options = {str(k): v for k, v in raw_transform.items() if k != "name"}
        problem = check_transform_options(transform_name, transform_options, has_lookup="lookup_file" in data)
        if problem:
            raise file_error(path, data.line_of("transform"), problem)
    elif "lookup_file" in data:
        raise file_error(path, data.line_of("lookup_file"), "lookup_file is only read by a transform")

    name = str(data["name"])
    if name == CANONICAL:
        raise file_error(path, data.line_of("name"), f"the name {CANONICAL!r} is reserved")
    return SourceMapping(
        name=name,
        source=source,
        file_pattern=str(data["file_pattern"]),
        columns=columns,
        constants=constants,
        row_id_column=row_id_column,
        delimiter=data.get("delimiter"),
        timestamp_format=data.get("timestamp_format"),
        timestamp_timezone=timezone,
        column_names=tuple(str(c) for c in column_names) if column_names else None,
        transform=transform_name,
        transform_options=transform_options,
        lookup_file=data.get("lookup_file"),
        path=path,
    )


def _string_map(data: LineMap, key: str, path: Path) -> dict[str, str]:
    section: Any = data.get(key) or {}
    if not isinstance(section, dict):
        raise file_error(path, data.line_of(key), f"{key} must be a mapping")
    return {str(k): str(v) for k, v in section.items()}


def load_mappings(contracts: dict[str, Contract], extra_files: tuple[str, ...] = ()) -> dict[str, list[SourceMapping]]:
    """Load the bundled mappings and any extra files, grouped by source.

    Extra files come first in each list, so a user's mapping wins over a bundled one
    with an overlapping file pattern.
    """
    paths = [Path(p) for p in extra_files] + sorted(BUNDLED_MAPPINGS_DIR.glob("*.yaml"))
    by_source: dict[str, list[SourceMapping]] = {source: [] for source in contracts}
    seen: dict[str, Path] = {}
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"mapping file not found: {path.resolve()} (listed in mapping_files of CX_CONFIG)")
        mapping = load_mapping(path, contracts)
        if mapping.name in seen:
            raise ConfigError(f"{path}: mapping name {mapping.name!r} is already used by {seen[mapping.name]}")
        seen[mapping.name] = path
        by_source[mapping.source].append(mapping)
    return by_source


def is_lookup_file(file_name: str, folder_files: list[str], mappings: list[SourceMapping]) -> str | None:
    """Return the mapping that reads ``file_name`` as its lookup file, if any mapping in the
    folder does; such a file is joined by that mapping's transform, not loaded on its own.
    """
    for mapping in mappings:
        if mapping.lookup_file and fnmatch.fnmatch(file_name, mapping.lookup_file):
            if any(mapping.matches(other) for other in folder_files if other != file_name):
                return mapping.name
    return None


def mapping_for_file(file_name: str, mappings: list[SourceMapping], contract: Contract) -> SourceMapping:
    """Return the first mapping whose pattern matches, or the canonical mapping."""
    for mapping in mappings:
        if mapping.matches(file_name):
            return mapping
    return canonical_mapping(contract)
