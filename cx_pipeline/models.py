"""SQL models: the ``.sql`` files in ``assets/staging`` and ``assets/marts``.

Each file is one DuckDB SELECT statement that becomes the table named after the file.
Its first line is a ``-- `` comment with the table's description and another header line
``-- grain: ...`` states what one row is. Values reach the SQL only as DuckDB named
parameters (``$reporting_timezone``), never as pasted text. A model depends on every
project table it reads with FROM or JOIN.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from cx_pipeline.settings import ConfigError
from cx_pipeline.warehouse import IDENTIFIER, quote_identifier

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
LAYERS = ("staging", "marts")

_LINE_COMMENT = re.compile(r"--[^\n]*")
_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")
_TABLE_REFERENCE = re.compile(r"\b(?:from|join)\s+([a-z_][a-z0-9_]*)", re.IGNORECASE)
_PARAMETER = re.compile(r"\$([a-z_][a-z0-9_]*)")


@dataclass(frozen=True)
class SqlModel:
    """One SQL model file and what it reads."""

    name: str
    layer: str
    description: str
    grain: str
    sql: str
    path: Path
    parameters: tuple[str, ...]
    deps: tuple[str, ...]

    def create_statement(self) -> str:
        """Return the statement that rebuilds the model's table."""
        return f"CREATE OR REPLACE TABLE {quote_identifier(self.name)} AS\n{self.sql}"


def _code_only(sql: str) -> str:
    return _STRING_LITERAL.sub("''", _LINE_COMMENT.sub("", sql))


def load_model(path: Path, layer: str, known_tables: set[str], known_parameters: set[str]) -> SqlModel:
    """Load one model file and check its header, parameters and references."""
    name = path.stem
    if not IDENTIFIER.match(name):
        raise ConfigError(f"{path}:1: file name must be a table name (lower-case letters, digits, _)")
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()

    if not lines or not lines[0].startswith("-- ") or lines[0].startswith("-- grain:"):
        raise ConfigError(f"{path}:1: first line must be '-- <description of the table>'")
    description = lines[0][3:].strip()
    grain_lines = [i for i, line in enumerate(lines) if line.startswith("-- grain:")]
    if not grain_lines:
        raise ConfigError(f"{path}:2: missing the header line '-- grain: one row per ...'")
    grain = lines[grain_lines[0]][len("-- grain:") :].strip()

    code = _code_only(text)
    if not code.strip():
        raise ConfigError(f"{path}: contains no SQL statement")
    if code.rstrip().endswith(";"):
        raise ConfigError(f"{path}: must hold one SELECT statement without a trailing semicolon")

    parameters = tuple(sorted(set(_PARAMETER.findall(code))))
    for parameter in parameters:
        if parameter not in known_parameters:
            line = next(i for i, text_line in enumerate(lines, 1) if f"${parameter}" in text_line)
            raise ConfigError(
                f"{path}:{line}: unknown parameter ${parameter}; known: {sorted(known_parameters)}"
            )

    deps = tuple(
        sorted({ref.lower() for ref in _TABLE_REFERENCE.findall(code) if ref.lower() in known_tables} - {name})
    )
    return SqlModel(
        name=name,
        layer=layer,
        description=description,
        grain=grain,
        sql=text.rstrip(),
        path=path,
        parameters=parameters,
        deps=deps,
    )


def load_models(
    base_tables: set[str], known_parameters: set[str], directory: Path = ASSETS_DIR
) -> list[SqlModel]:
    """Load all models under ``directory``; ``base_tables`` are the tables Python assets write."""
    paths = [(layer, path) for layer in LAYERS for path in sorted((directory / layer).glob("*.sql"))]
    names = [path.stem for _, path in paths]
    duplicates = sorted({n for n in names if names.count(n) > 1} | (set(names) & base_tables))
    if duplicates:
        raise ConfigError(f"{directory}: model name(s) {duplicates} are defined more than once")
    known_tables = base_tables | set(names)
    return [load_model(path, layer, known_tables, known_parameters) for layer, path in paths]


def run_model(con: duckdb.DuckDBPyConnection, model: SqlModel, parameters: dict[str, Any]) -> int:
    """Rebuild a model's table in one transaction and return its row count."""
    values = {name: parameters[name] for name in model.parameters}
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(model.create_statement(), values)
        con.execute("COMMIT")
    except duckdb.Error as exc:
        con.execute("ROLLBACK")
        raise RuntimeError(f"model {model.path} failed: {exc}") from exc
    row = con.execute(f"SELECT count(*) FROM {quote_identifier(model.name)}").fetchone()
    return int(row[0]) if row else 0
