"""Loading contracts, mappings, SQL models and config: malformed files name file and line."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from cx_pipeline.contracts import load_contract, load_contracts
from cx_pipeline.definitions import DAILY_JOB_NAME, defs
from cx_pipeline.mappings import load_mapping
from cx_pipeline.models import load_models
from cx_pipeline.settings import ConfigError, KpiConfig, Settings, load_kpi_config

VALID_CONTRACT = """\
source: widgets
primary_key: widget_id
columns:
  widget_id:
    type: string
    nullable: false
  weight:
    type: float
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_definitions_load_with_job_and_schedule() -> None:
    repository = defs.get_repository_def()
    assert repository.get_job(DAILY_JOB_NAME) is not None
    schedules = repository.schedule_defs
    assert len(schedules) == 1
    assert schedules[0].job_name == DAILY_JOB_NAME
    asset_keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw_feedback", "stg_feedback", "kpi_csat_daily", "kpi_nps_daily", "kpi_ces_daily"} <= asset_keys


def test_every_asset_has_description() -> None:
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        assert graph.get(key).description, f"{key.to_user_string()} has no description"


def test_daily_schedule_targets_previous_day() -> None:
    schedule = defs.get_repository_def().schedule_defs[0]
    assert isinstance(schedule, dg.ScheduleDefinition)
    assert schedule.cron_schedule == "0 2 * * *"


def test_bundled_contracts_load() -> None:
    contracts = load_contracts()
    assert {"feedback", "subscriptions", "orders", "sessions"} <= set(contracts)
    assert contracts["feedback"].primary_key == "response_id"


def test_contract_valid_file_loads(tmp_path: Path) -> None:
    contract = load_contract(write(tmp_path, "widgets.yaml", VALID_CONTRACT))
    assert contract.column_names == ["widget_id", "weight"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (VALID_CONTRACT.replace("type: float", "type: decimal128"), "widgets.yaml:8: column 'weight': type 'decimal128'"),
        (VALID_CONTRACT.replace("primary_key: widget_id", "primary_key: id"), "widgets.yaml:2: primary_key 'id'"),
        (VALID_CONTRACT + "checks: [no_such_check]\n", "widgets.yaml:9: unknown custom check 'no_such_check'"),
        (VALID_CONTRACT.replace("    nullable: false", "    nullable: false\n    colour: red"), "widgets.yaml:5: column 'widget_id': unknown key(s) ['colour']"),
        (VALID_CONTRACT.replace("columns:", "columns: [\n"), "widgets.yaml:"),
        (VALID_CONTRACT.replace("source: widgets", "source: gadgets"), "widgets.yaml:1: source 'gadgets' must match"),
    ],
    ids=["unknown-type", "bad-primary-key", "unknown-custom-check", "unknown-column-key", "invalid-yaml", "source-name"],
)
def test_contract_errors_name_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "widgets.yaml", text)
    with pytest.raises(ConfigError) as error:
        load_contract(path)
    assert expected in str(error.value)
    assert str(path) in str(error.value)


def test_mapping_unknown_column_names_line(tmp_path: Path) -> None:
    contracts = load_contracts()
    path = write(
        tmp_path,
        "export.yaml",
        "name: my_export\nsource: feedback\nfile_pattern: '*.csv'\ncolumns:\n  score: Rating\n  stars: Stars\n",
    )
    with pytest.raises(ConfigError, match=r"export.yaml:6: columns: 'stars' is not a column of the feedback contract"):
        load_mapping(path, contracts)


def test_mapping_unknown_source(tmp_path: Path) -> None:
    path = write(tmp_path, "export.yaml", "name: x\nsource: invoices\nfile_pattern: '*.csv'\n")
    with pytest.raises(ConfigError, match=r"export.yaml:2: source 'invoices' has no contract"):
        load_mapping(path, load_contracts())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("select 1 as x\n", "kpi_x.sql:1: first line must be"),
        ("-- A table.\nselect 1 as x\n", "kpi_x.sql:2: missing the header line"),
        ("-- A table.\n-- grain: one row\nselect $secret as x\n", "kpi_x.sql:3: unknown parameter $secret"),
        ("-- A table.\n-- grain: one row\nselect 1 as x;\n", "without a trailing semicolon"),
    ],
    ids=["no-description", "no-grain", "unknown-parameter", "semicolon"],
)
def test_model_errors_name_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    write(tmp_path, "marts/kpi_x.sql", text)
    with pytest.raises(ConfigError) as error:
        load_models(set(), {"reporting_timezone"}, directory=tmp_path)
    assert expected in str(error.value)


def test_model_dependencies_from_sql(tmp_path: Path) -> None:
    write(tmp_path, "staging/stg_a.sql", "-- A.\n-- grain: one row per a\nselect * from raw_a\n")
    write(tmp_path, "marts/kpi_b.sql", "-- B.\n-- grain: one row per b\nselect * from stg_a join raw_a using (id)\n")
    models = {m.name: m for m in load_models({"raw_a"}, set(), directory=tmp_path)}
    assert models["stg_a"].deps == ("raw_a",)
    assert models["kpi_b"].deps == ("raw_a", "stg_a")


def test_config_defaults_without_file() -> None:
    settings = Settings.from_env({})
    assert str(settings.landing_dir) == "data/landing"
    assert str(settings.warehouse_path) == "data/cx.duckdb"
    assert settings.kpi == KpiConfig()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("reporting_timezone: Mars/Olympus\n", "is not an IANA time zone"),
        ("csat_top_box: 0\n", "csat_top_box must be a positive integer"),
        ("colour: blue\n", "unknown setting(s) ['colour']"),
        ("scales:\n  csat: [5, 1]\n", "scales.csat must be [min, max]"),
        ("quarantine_rate_warn: 2\n", "quarantine_rate_warn must be between 0 and 1"),
    ],
    ids=["timezone", "top-box", "unknown-key", "scale", "threshold"],
)
def test_config_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "cx.yaml", text)
    with pytest.raises(ConfigError) as error:
        load_kpi_config(path)
    assert expected in str(error.value)
    assert str(path) in str(error.value)


def test_mapping_unknown_key_names_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, "export.yaml", "name: x\nsource: feedback\nfile_pattern: '*.csv'\ntimestamp_fromat: '%d'\n"
    )
    with pytest.raises(ConfigError, match=r"export.yaml:4: unknown key\(s\) \['timestamp_fromat'\]"):
        load_mapping(path, load_contracts())


def test_config_mapping_files_relative_to_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "conf/mappings/mine.yaml", "name: mine\nsource: feedback\nfile_pattern: 'mine*.csv'\n")
    config = write(tmp_path, "conf/cx.yaml", "mapping_files: [./mappings/mine.yaml]\n")
    monkeypatch.chdir(tmp_path)
    kpi = load_kpi_config(config)
    assert kpi.mapping_files == (str(tmp_path / "conf" / "mappings" / "mine.yaml"),)
