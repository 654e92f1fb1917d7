"""The project's declarative files, loaded once: contracts, mappings and SQL models."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from cx_pipeline.contracts import Contract, load_contracts
from cx_pipeline.mappings import SourceMapping, canonical_mapping, load_mappings
from cx_pipeline.models import SqlModel, load_models
from cx_pipeline.python_models import PythonModel, registered_models
from cx_pipeline.settings import KpiConfig

# Parameters set per run rather than by CX_CONFIG.
RUN_PARAMETERS = {"observation_end"}


def raw_table(source: str) -> str:
    """Return the name of a source's raw table."""
    return f"raw_{source}"


def validated_table(source: str) -> str:
    """Return the name of a source's table of typed rows that passed the contract."""
    return f"validated_{source}"


def quarantine_table(source: str) -> str:
    """Return the name of a source's quarantine table."""
    return f"quarantine_{source}"


def rejected_files_table(source: str) -> str:
    """Return the name of a source's table of files that could not be read."""
    return f"rejected_files_{source}"


def python_tables(sources: list[str]) -> set[str]:
    """Return the tables written by Python assets for the given sources."""
    return {
        name
        for source in sources
        for name in (raw_table(source), validated_table(source), quarantine_table(source), rejected_files_table(source))
    }


@dataclass(frozen=True)
class Project:
    """Contracts, SQL models and bundled mappings of the project."""

    contracts: dict[str, Contract]
    models: list[SqlModel]
    python_models: list[PythonModel]

    def mappings(self, kpi: KpiConfig) -> dict[str, list[SourceMapping]]:
        """Return the mappings per source: the config's files first, then the bundled ones."""
        return load_mappings(self.contracts, kpi.mapping_files)

    def mappings_by_name(self, source: str, kpi: KpiConfig) -> dict[str, SourceMapping]:
        """Return a source's mappings keyed by name, including the canonical mapping."""
        by_name = {m.name: m for m in self.mappings(kpi)[source]}
        canonical = canonical_mapping(self.contracts[source])
        by_name[canonical.name] = canonical
        return by_name


@cache
def load_project() -> Project:
    """Load and check every contract and model; errors name the file and line."""
    contracts = load_contracts()
    known_parameters = set(KpiConfig().sql_parameters()) | RUN_PARAMETERS
    python_models = registered_models()
    python_outputs = {output.name for model in python_models for output in model.outputs}
    models = load_models(python_tables(list(contracts)) | python_outputs, known_parameters)
    # Bundled mappings are checked here too, so a broken one fails at definition time.
    load_mappings(contracts)
    return Project(contracts=contracts, models=models, python_models=python_models)
