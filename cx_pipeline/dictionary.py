"""Column documentation of every table, and the data dictionary page built from it.

Docs come from the project's own files, so nothing is written twice:

- raw, validated, quarantine and rejected-file tables: the source contracts in
  ``schemas/<source>.yaml`` plus the pipeline's metadata columns below;
- SQL models: the ``-- `` header of the ``.sql`` file (description and grain) and the
  sidecar ``assets/<layer>/<table>.yml`` beside it;
- Python model outputs: the model's ``OutputTable`` and ``assets/python/<table>.yml``.

A sidecar has the form ``columns: {name: {description: ..., unit: ...}}`` (``unit`` is
optional). With ``inherit: <source>`` a column it does not list takes its description from
that source's contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from cx_pipeline.contracts import Contract
from cx_pipeline.extract import raw_schema
from cx_pipeline.models import ASSETS_DIR
from cx_pipeline.project import (
    Project,
    quarantine_table,
    raw_table,
    rejected_files_table,
    validated_table,
)
from cx_pipeline.settings import ConfigError
from cx_pipeline.validate import QUARANTINE_COLUMNS, valid_schema
from cx_pipeline.warehouse import quote_identifier
from cx_pipeline.yamlfile import load_yaml_mapping

PYTHON_DOCS_DIR = ASSETS_DIR / "python"
MANIFEST_TABLE = "publish_manifest"
SIDECAR_KEYS = {"columns", "inherit"}
COLUMN_KEYS = {"description", "unit"}

REJECTED_FILES_COLUMNS = {"_partition_date": "DATE", "_source_file": "VARCHAR", "error": "VARCHAR"}

# Columns the pipeline adds to raw, validated, quarantine and rejected-file tables.
PIPELINE_COLUMNS: dict[str, str] = {
    "_partition_date": "Arrival day of the file: the date folder it landed in and the partition key.",
    "_source_file": "Path of the landed file, relative to the source's landing folder.",
    "_row_number": "Row number in the file (1 is the first data row).",
    "_mapping": "Name of the source mapping that read the file.",
    "_missing_columns": "Contract columns the file did not have, as JSON.",
    "_extra_columns": "Columns of the file that the mapping does not name, as JSON.",
    "_row_problem": "What the reader found wrong with the row itself, such as too many fields.",
    "_loaded_at": "When the row was written to the raw table (UTC).",
    "failed_checks": "Names of every check the row failed.",
    "failure_reasons": "Every failed check with the offending value, shortened, and free text masked.",
    "raw_values": "The row's landed values as JSON, with free-text columns masked.",
    "error": "Why the file could not be read.",
}

MANIFEST_DOC = {
    "table_name": "Published table.",
    "row_count": "Rows of the table in this file.",
    "published_at": "When this file was written (UTC).",
}


@dataclass(frozen=True)
class ColumnDoc:
    """Meaning, unit and type of one column; ``type`` is empty until a table was described."""

    name: str
    description: str
    unit: str = ""
    type: str = ""


@dataclass(frozen=True)
class TableDoc:
    """Description, grain, layer and column docs of one table."""

    name: str
    layer: str
    description: str
    grain: str
    columns: dict[str, ColumnDoc] = field(default_factory=dict)
    inherit: str | None = None


def raw_description(source: str) -> str:
    """Return the description of a source's raw table."""
    return f"Every {source} row as landed, with its file and row number, per arrival day."


def validated_description(source: str) -> str:
    """Return the description of a source's validated table."""
    return f"Typed {source} rows that passed the contract, all versions, per arrival day."


def quarantine_description(source: str) -> str:
    """Return the description of a source's quarantine table."""
    return f"{source.capitalize()} rows that failed parsing or the contract, with every reason."


def rejected_files_description(source: str) -> str:
    """Return the description of a source's rejected-file table."""
    return f"{source.capitalize()} files that could not be read at all, with the error."


def _contract_column(contract: Contract, name: str, duckdb_type: str) -> ColumnDoc:
    by_name = {column.name: column for column in contract.columns}
    if name in by_name:
        text = by_name[name].description
        if by_name[name].mask_pii:
            text += " Masked (e-mail addresses, phone and card numbers) from validation on."
        return ColumnDoc(name, text, type=duckdb_type)
    return ColumnDoc(name, PIPELINE_COLUMNS.get(name, ""), type=duckdb_type)


def contract_tables(contract: Contract) -> list[TableDoc]:
    """Return the docs of a source's raw, validated, quarantine and rejected-file tables."""
    source = contract.source
    raw_columns = raw_schema(contract) | {"_loaded_at": "TIMESTAMPTZ"}

    def columns(schema: dict[str, str], as_text: bool = False) -> dict[str, ColumnDoc]:
        docs = {}
        for name, duckdb_type in schema.items():
            doc = _contract_column(contract, name, duckdb_type)
            if as_text and name in contract.column_names:
                doc = ColumnDoc(name, doc.description + " Text as landed.", type=duckdb_type)
            docs[name] = doc
        return docs

    return [
        TableDoc(
            raw_table(source), "raw", raw_description(source),
            "one row per landed row", columns(raw_columns, as_text=True),
        ),
        TableDoc(
            validated_table(source), "staging", validated_description(source),
            f"one row per landed row that passed, per arrival day; {contract.primary_key} repeats across versions",
            columns(valid_schema(contract)),
        ),
        TableDoc(
            quarantine_table(source), "staging", quarantine_description(source),
            "one row per landed row that failed parsing or a check", columns(QUARANTINE_COLUMNS),
        ),
        TableDoc(
            rejected_files_table(source), "raw", rejected_files_description(source),
            "one row per landed file that could not be read", columns(REJECTED_FILES_COLUMNS),
        ),
    ]


def load_sidecar(path: Path) -> tuple[dict[str, ColumnDoc], str | None]:
    """Read a sidecar file and return its column docs and the contract it inherits from."""
    data = load_yaml_mapping(path)
    unknown = set(data) - SIDECAR_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(SIDECAR_KEYS)}")
    raw_columns = data.get("columns") or {}
    if not isinstance(raw_columns, dict):
        raise ConfigError(f"{path}: 'columns' must map column names to {{description, unit}}")
    docs: dict[str, ColumnDoc] = {}
    for name, entry in raw_columns.items():
        if not isinstance(entry, dict) or not str(entry.get("description") or "").strip():
            raise ConfigError(f"{path}: column {name!r} needs a non-empty 'description'")
        extra = set(entry) - COLUMN_KEYS
        if extra:
            raise ConfigError(f"{path}: column {name!r} has unknown key(s) {sorted(extra)}")
        docs[str(name)] = ColumnDoc(str(name), str(entry["description"]).strip(), str(entry.get("unit") or ""))
    inherit = data.get("inherit")
    return docs, (str(inherit) if inherit else None)


def _sidecar_table(name: str, layer: str, description: str, grain: str, path: Path) -> TableDoc:
    if not path.is_file():
        return TableDoc(name, layer, description, grain)
    columns, inherit = load_sidecar(path)
    return TableDoc(name, layer, description, grain, columns, inherit)


def table_docs(project: Project) -> dict[str, TableDoc]:
    """Return the docs of every table the pipeline writes, keyed by table name."""
    docs: dict[str, TableDoc] = {}
    for contract in project.contracts.values():
        for table in contract_tables(contract):
            docs[table.name] = table
    for model in project.models:
        docs[model.name] = _sidecar_table(
            model.name, model.layer, model.description, model.grain, model.path.with_suffix(".yml")
        )
    for python_model in project.python_models:
        for output in python_model.outputs:
            docs[output.name] = _sidecar_table(
                output.name, python_model.layer, output.description, output.grain,
                PYTHON_DOCS_DIR / f"{output.name}.yml",
            )
    for table in docs.values():
        if table.inherit and table.inherit not in project.contracts:
            raise ConfigError(f"sidecar of {table.name}: inherit names unknown source {table.inherit!r}")
    return docs


def published_tables(project: Project) -> list[str]:
    """Return the tables copied to the published file: marts, Python outputs, quarantine
    and rejected-file tables."""
    sources = list(project.contracts)
    marts = {model.name for model in project.models if model.layer == "marts"}
    outputs = {output.name for model in project.python_models for output in model.outputs}
    quarantine = {quarantine_table(source) for source in sources}
    rejected = {rejected_files_table(source) for source in sources}
    return sorted(marts | outputs | quarantine | rejected)


def column_doc(project: Project, table: TableDoc, column: str, duckdb_type: str = "") -> ColumnDoc | None:
    """Return the doc of ``column`` in ``table``, or None when nothing documents it."""
    doc = table.columns.get(column)
    if doc is None and table.inherit:
        contract = project.contracts[table.inherit]
        if column in contract.column_names:
            doc = _contract_column(contract, column, duckdb_type)
    if doc is None:
        return None
    return ColumnDoc(doc.name, doc.description, doc.unit, duckdb_type or doc.type)


def describe_table(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """Return the columns and DuckDB types of ``table``, in table order."""
    rows = con.execute(f"DESCRIBE {quote_identifier(table)}").fetchall()
    return {str(row[0]): str(row[1]) for row in rows}


def documented_columns(
    project: Project, table: TableDoc, described: dict[str, str] | None = None
) -> tuple[list[ColumnDoc], list[str]]:
    """Return the docs of a table's columns and the names of columns without a doc.

    With ``described`` (a DESCRIBE result) the columns and types are the table's own;
    without it they are the documented columns, with a type only where a contract gives one.
    """
    if described is None:
        return list(table.columns.values()), []
    docs: list[ColumnDoc] = []
    missing: list[str] = []
    for name, duckdb_type in described.items():
        doc = column_doc(project, table, name, duckdb_type)
        if doc is None:
            missing.append(name)
            doc = ColumnDoc(name, "", type=duckdb_type)
        docs.append(doc)
    return docs, missing


def undocumented_columns(project: Project, con: duckdb.DuckDBPyConnection) -> list[str]:
    """Return ``table.column`` for every column of a published table that nothing documents,
    and ``table`` for every published table without docs."""
    docs = table_docs(project)
    problems: list[str] = []
    existing = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    for table in sorted(existing - {MANIFEST_TABLE}):
        if table not in docs:
            problems.append(table)
            continue
        _, missing = documented_columns(project, docs[table], describe_table(con, table))
        problems.extend(f"{table}.{column}" for column in missing)
    return problems


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_dictionary(project: Project, con: duckdb.DuckDBPyConnection) -> str:
    """Render the data dictionary page of every table in the published file ``con``."""
    docs = table_docs(project)
    existing = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    published = [table for table in published_tables(project) if table in existing]
    lines = [
        "# Data dictionary",
        "",
        "Every table of the published DuckDB file (`CX_PUBLISH_PATH`) that BI tools read, with its",
        "grain and each column's meaning, unit and DuckDB type. This page is generated by",
        "`cx-pipeline docs --out docs/data_dictionary.md` from the contracts in `schemas/`, the",
        "headers of the SQL models in `assets/` and the column files (`.yml`) beside them, and",
        "`tests/test_dictionary.py` fails when it is out of date. Edit those files, not this page.",
        "",
        "Rates are stored next to their numerators and denominators. To combine days, channels",
        "or segments, sum the counts and divide again; see `docs/bi_guide.md`.",
        "",
        "| table | layer | grain |",
        "| --- | --- | --- |",
    ]
    for table in published:
        lines.append(f"| [`{table}`](#{table}) | {docs[table].layer} | {_cell(docs[table].grain)} |")
    lines.append(f"| [`{MANIFEST_TABLE}`](#{MANIFEST_TABLE}) | published | one row per published table |")

    for table in published:
        doc = docs[table]
        columns, _ = documented_columns(project, doc, describe_table(con, table))
        lines += ["", f"## {table}", "", doc.description, "", f"Grain: {doc.grain}.", ""]
        lines += ["| column | type | unit | meaning |", "| --- | --- | --- | --- |"]
        for column in columns:
            lines.append(
                f"| `{column.name}` | {column.type} | {_cell(column.unit)} | "
                f"{_cell(column.description) or '**undocumented**'} |"
            )

    lines += [
        "", f"## {MANIFEST_TABLE}", "",
        "Row counts of the published tables and the time the file was written.", "",
        "Grain: one row per published table.", "",
        "| column | type | unit | meaning |", "| --- | --- | --- | --- |",
    ]
    if MANIFEST_TABLE in existing:
        for name, duckdb_type in describe_table(con, MANIFEST_TABLE).items():
            lines.append(f"| `{name}` | {duckdb_type} |  | {MANIFEST_DOC.get(name, '**undocumented**')} |")
    return "\n".join(lines) + "\n"
