"""The project file: validation messages, `${VAR}` interpolation, secrets, and the CLI's exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.config import ProjectConfig, load_project_config, parse_model_config, read_dotenv
from headwater.errors import ConfigError
from headwater.project import Project
from headwater.runs.plan import plan
from tests.fixtures.tiny import BASE_YAML, cli, model, tiny_project

SECRET = "sup3r-s3cret-pii-key-do-not-print"

SOURCE = """\
name: t
sources:
  src:
    kind: files
    path: inbox
{extra}
"""


def write(tmp_path: Path, text: str, env: str | None = None) -> Path:
    file = tmp_path / "headwater.yaml"
    file.write_text(text, encoding="utf-8")
    if env is not None:
        (tmp_path / ".env").write_text(env, encoding="utf-8")
    return file


def config_error(file: Path, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_project_config(file, {} if environ is None else environ)
    return str(info.value)


# ------------------------------------------------------------------ messages


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        pytest.param(
            "    csv: {columns: [id], delimiter: ';;'}",
            ["sources.src.csv.delimiter:", "(got ';;')", "character other than a line break"],
            id="delimiter",
        ),
        pytest.param(
            "    chunk_mb: lots",
            ["sources.src.chunk_mb:", "valid integer", "(got 'lots')"],
            id="wrong-type-in-source",
        ),
        pytest.param(
            '    globb: "*.csv"',
            ["sources.src.globb: unknown key"],
            id="unknown-key-in-source",
        ),
    ],
)
def test_source_errors_name_key_path_and_value(
    tmp_path: Path, extra: str, fragments: list[str]
) -> None:
    file = write(tmp_path, SOURCE.format(extra=extra))
    message = config_error(file)
    assert message.startswith(f"{file}: ")
    for fragment in fragments:
        assert fragment in message


def test_delimiter_error_names_file_and_expectation(tmp_path: Path) -> None:
    # What the message does say today, bug or not: the file, the key and the rule.
    file = write(tmp_path, SOURCE.format(extra="    csv: {columns: [id], delimiter: ';;'}"))
    message = config_error(file)
    assert message.startswith(f"{file}: ")
    assert "csv.delimiter" in message
    assert "expected a single" in message
    assert "character other than a line break" in message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    file = write(tmp_path, "name: t\nwarehous: {path: x.duckdb}\n")
    assert config_error(file) == f"{file}: warehous: unknown key"


def test_unknown_nested_key(tmp_path: Path) -> None:
    file = write(tmp_path, "name: t\nwarehouse: {type: duckdb, pth: x.duckdb}\n")
    assert config_error(file) == f"{file}: warehouse.pth: unknown key"


def test_wrong_type_names_key_value_and_expectation(tmp_path: Path) -> None:
    file = write(tmp_path, "name: t\nengine: {threads: many}\n")
    message = config_error(file)
    assert message.startswith(f"{file}: engine.threads: ")
    assert "valid integer" in message
    assert "(got 'many')" in message


def test_custom_rule_names_key_value_and_expectation(tmp_path: Path) -> None:
    file = write(tmp_path, "name: t\nengine: {memory_limit: lots}\n")
    assert config_error(file) == (
        f"{file}: engine.memory_limit: expected a size such as 512MB or 2GB (got 'lots')"
    )
    file = write(tmp_path, "name: t\nwarehouse: {type: duckdb, memory_limit: 1 GB of it}\n")
    assert config_error(file) == (
        f"{file}: warehouse.memory_limit: expected a size such as 512MB or 2GB (got '1 GB of it')"
    )


def test_bad_project_name(tmp_path: Path) -> None:
    file = write(tmp_path, "name: Bad-Name\n")
    message = config_error(file)
    assert "name: String should match pattern" in message
    assert "(got 'Bad-Name')" in message


def test_missing_required_key(tmp_path: Path) -> None:
    file = write(tmp_path, "lake: {url: somewhere}\n")
    assert config_error(file) == f"{file}: name: Field required"


def test_missing_required_key_in_source(tmp_path: Path) -> None:
    file = write(tmp_path, "name: t\nsources:\n  src:\n    kind: files\n")
    message = config_error(file)
    assert message.startswith(f"{file}: ")
    assert "path: Field required" in message


def test_unknown_source_kind(tmp_path: Path) -> None:
    file = write(tmp_path, "name: t\nsources:\n  src: {kind: ftp, path: x}\n")
    message = config_error(file)
    assert "sources.src:" in message
    assert "'ftp'" in message
    assert "'files'" in message


def test_several_errors_are_all_reported(tmp_path: Path) -> None:
    file = write(tmp_path, "name: t\nengine: {threads: -1, memory_limit: lots}\nbogus: 1\n")
    message = config_error(file)
    assert "engine.threads:" in message
    assert "(got -1)" in message
    assert "engine.memory_limit:" in message
    assert "bogus: unknown key" in message


def test_bad_yaml_names_line_and_column(tmp_path: Path) -> None:
    file = write(tmp_path, "name: t\nsources:\n  src: [a, b\n  x: 1\n")
    message = config_error(file)
    assert message.startswith(f"{file}: line 4, column 4: not valid YAML: ")
    assert "expected ',' or ']'" in message


def test_tab_in_yaml_names_line(tmp_path: Path) -> None:
    file = write(tmp_path, "name: t\nsources:\n\tsrc: 1\n")
    message = config_error(file)
    assert f"{file}: line 3, column 1: not valid YAML" in message


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    file = write(tmp_path, "- name: t\n")
    assert config_error(file) == f"{file}: expected a mapping of settings at the top level"


def test_missing_project_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_project_config(tmp_path / "headwater.yaml", {})


def test_pii_column_must_be_a_csv_column(tmp_path: Path) -> None:
    file = write(
        tmp_path, SOURCE.format(extra="    csv: {columns: [id, who]}\n    pii: {whom: drop}")
    )
    message = config_error(file)
    assert "pii names column(s) ['whom'] that are not in csv.columns ['id', 'who']" in message


def test_model_header_errors_name_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "models" / "m.sql"
    with pytest.raises(ConfigError) as info:
        parse_model_config(path, {"materialized": "tabel"})
    assert str(info.value) == (
        f"{path}: materialized: Input should be 'table', 'incremental', 'view' or 'ephemeral' (got 'tabel')"
    )
    with pytest.raises(ConfigError) as info:
        parse_model_config(path, {"checks": [{"not_null": "x", "severity": "fatal"}]})
    assert "checks[0].severity: Input should be 'warn', 'quarantine' or 'error' (got 'fatal')" in (
        str(info.value)
    )
    with pytest.raises(ConfigError) as info:
        parse_model_config(path, {"materialized": "incremental", "strategy": "merge"})
    assert "an incremental model with strategy 'merge' needs unique_key" in str(info.value)


# ------------------------------------------------------------- interpolation


def test_variables_and_defaults(tmp_path: Path) -> None:
    file = write(
        tmp_path,
        "name: ${PROJECT_NAME}\n"
        "lake: {url: '${LAKE_ROOT:-/data/lake}/zone'}\n"
        "warehouse: {path: '${WH_DIR:-wh}/${WH_FILE}'}\n"
        "engine: {threads: '${THREADS}'}\n",
    )
    config = load_project_config(
        file, {"PROJECT_NAME": "shop", "WH_FILE": "w.duckdb", "THREADS": "3"}
    )
    assert config.name == "shop"
    assert config.lake.url == "/data/lake/zone"
    assert config.warehouse.path == "wh/w.duckdb"
    assert config.engine.threads == 3


def test_default_may_be_empty_and_set_value_wins_over_default(tmp_path: Path) -> None:
    file = write(tmp_path, "name: t\nlake: {url: 'a${EMPTY:-}b${SET:-nope}'}\n")
    assert load_project_config(file, {"SET": "X"}).lake.url == "abX"


def test_dotenv_file_beside_the_project_file(tmp_path: Path) -> None:
    file = write(
        tmp_path,
        "name: ${NAME_FROM_ENV}\nlake: {url: '${LAKE_URL}'}\nwarehouse: {path: '${WH}'}\n",
        env="# a comment\n\nNAME_FROM_ENV=from_dotenv\nexport LAKE_URL='quoted/lake'\n"
        'WH="double.duckdb"\n',
    )
    config = load_project_config(file, {})
    assert config.name == "from_dotenv"
    assert config.lake.url == "quoted/lake"
    assert config.warehouse.path == "double.duckdb"


def test_process_environment_wins_over_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "name: ${HW_TEST_NAME}\n", env="HW_TEST_NAME=from_dotenv\n")
    monkeypatch.setenv("HW_TEST_NAME", "from_process")
    assert Project.load(tmp_path).config.name == "from_process"
    monkeypatch.delenv("HW_TEST_NAME")
    assert Project.load(tmp_path).config.name == "from_dotenv"


def test_undefined_variable_names_key_path_and_variable(tmp_path: Path) -> None:
    file = write(
        tmp_path,
        "name: t\nsources:\n  src:\n    kind: files\n    path: inbox\n"
        "    csv: {columns: [id, '${HW_UNSET_COLUMN}']}\n",
    )
    message = config_error(file)
    assert message.startswith(f"{file}: sources.src.csv.columns[1]: ")
    assert (
        "${HW_UNSET_COLUMN} refers to environment variable HW_UNSET_COLUMN, which is not set"
        in (message)
    )


def test_malformed_dotenv_line_is_named(tmp_path: Path) -> None:
    write(tmp_path, "name: t\n", env="GOOD=1\nthis is not an assignment\n")
    with pytest.raises(ConfigError) as info:
        read_dotenv(tmp_path / ".env")
    assert str(info.value) == f"{tmp_path / '.env'}:2: expected KEY=VALUE"


# ------------------------------------------------------------------- secrets

HASHING = """\
name: t
pii:
  secret: {secret}
sources:
  src:
    kind: files
    path: inbox
    csv: {{columns: [id, who]}}
    pii: {{who: hash}}
"""


@pytest.mark.parametrize(
    "text",
    [
        # A bad value beside the secret.
        f"name: t\npii:\n  secret: {SECRET}\n  salt: nope\n",
        f"name: t\npii:\n  secret: {SECRET}\nengine: {{threads: many}}\n",
        HASHING.format(secret=SECRET) + "engine: {memory_limit: lots}\n",
        HASHING.format(secret=SECRET) + "bogus: 1\n",
        # The secret itself has the wrong type.
        f"name: t\npii:\n  secret: [{SECRET}]\n",
    ],
)
def test_secret_never_in_error_messages(tmp_path: Path, text: str) -> None:
    message = config_error(write(tmp_path, text))
    assert SECRET not in message


def test_secret_from_environment_never_in_error_messages(tmp_path: Path) -> None:
    file = write(tmp_path, "name: t\npii:\n  secret: ${HW_SECRET}\nengine: {threads: x}\n")
    message = config_error(file, {"HW_SECRET": SECRET})
    assert "engine.threads" in message
    assert SECRET not in message


def test_secret_not_printed_when_pii_section_has_wrong_shape(tmp_path: Path) -> None:
    file = write(tmp_path, "name: t\npii: ${HW_SECRET}\n")
    message = config_error(file, {"HW_SECRET": SECRET})
    assert message.startswith(f"{file}: pii: ")
    assert SECRET not in message


def test_secret_never_in_repr(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    file = write(tmp_path, HASHING.format(secret="${HW_SECRET}"), env=f"HW_SECRET={SECRET}\n")
    config = load_project_config(file, {})
    assert config.pii.secret is not None
    assert config.pii.secret.get_secret_value() == SECRET
    project = Project.load(tmp_path)
    for text in (
        repr(config),
        str(config),
        repr(project),
        repr(config.pii),
        config.model_dump_json(),
    ):
        assert SECRET not in text


def test_hash_policy_needs_a_secret(tmp_path: Path) -> None:
    file = write(tmp_path, HASHING.format(secret="x").replace("pii:\n  secret: x\n", ""))
    message = config_error(file)
    assert message.startswith(f"{file}: ")
    assert "sources.src.pii.who uses policy 'hash', which needs pii.secret" in message


def test_hash_policy_with_empty_secret_is_an_error(tmp_path: Path) -> None:
    file = write(tmp_path, HASHING.format(secret="'${HW_EMPTY:-}'"))
    assert "which needs pii.secret" in config_error(file)


def test_hash_policy_with_secret_is_valid(tmp_path: Path) -> None:
    file = write(tmp_path, HASHING.format(secret="${HW_SECRET}"))
    config = load_project_config(file, {"HW_SECRET": SECRET})
    assert isinstance(config, ProjectConfig)
    assert config.sources["src"].pii["who"].policy == "hash"


# ---------------------------------------------------------------------- CLI

BAD_PROJECTS = {
    "bad-yaml": (BASE_YAML + "engine: {threads: [\n", {"a": "select * from src"}),
    "unknown-key": (BASE_YAML + "bogus: 1\n", {"a": "select * from src"}),
    "bad-sql": (BASE_YAML, {"a": "select * fro src"}),
    "unknown-table": (BASE_YAML, {"a": "select * from nowhere"}),
    "missing-folder": (BASE_YAML.replace("path: inbox", "path: missing"), {"a": "select 1"}),
    "view-published": (
        BASE_YAML,
        {"a": model("select * from src", materialized="view", publish=True)},
    ),
    "cycle": (BASE_YAML, {"a": "select * from b", "b": "select * from a"}),
}


@pytest.mark.parametrize("case", sorted(BAD_PROJECTS))
def test_run_on_bad_project_exits_2_and_writes_nothing(tmp_path: Path, case: str) -> None:
    yaml_text, models = BAD_PROJECTS[case]
    root = tiny_project(tmp_path / "p", models, {"f.csv": "1,a,1\n"}, yaml_text)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    result = cli("run", "-p", str(root), "-q")
    assert result.exit_code == 2, result.output
    assert "configuration error:" in result.stderr
    assert not (root / ".headwater").exists()
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_run_json_on_bad_project_prints_config_error(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p", {"a": "select * from nowhere"})
    result = cli("run", "-p", str(root), "-q", "--json")
    assert result.exit_code == 2
    assert '"status": "config_error"' in result.stdout
    assert "a.sql" in result.stdout
    assert not (root / ".headwater").exists()


def test_run_on_missing_folder_exits_2(tmp_path: Path) -> None:
    result = cli("run", "-p", str(tmp_path / "nope"), "-q")
    assert result.exit_code == 2
    assert "project folder not found" in result.stderr
    assert not (tmp_path / "nope").exists()


def test_check_prints_the_dag(tmp_path: Path) -> None:
    root = tiny_project(
        tmp_path / "p",
        {
            "clean": model("select id, name from src"),
            "facts": model(
                "select s.id, c.name from src s join clean c using (id)",
                materialized="incremental",
                publish=True,
            ),
            "latest": model(
                "select * from src",
                materialized="incremental",
                strategy="merge",
                unique_key="id",
            ),
        },
    )
    result = cli("check", "-p", str(root))
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert lines[0] == "project t: configuration, models and dashboards are valid"
    assert lines[1] == "source src"
    body = lines[2:]
    assert sorted(body) == sorted(
        [
            "src -> clean [table]",
            "clean, src -> facts [incremental/append, published]",
            "src -> latest [incremental/merge]",
        ]
    )
    assert body.index("src -> clean [table]") < body.index(
        "clean, src -> facts [incremental/append, published]"
    )
    assert not (root / ".headwater").exists()


def test_check_on_bad_project_exits_2(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p", {"a": "select * from nowhere"})
    result = cli("check", "-p", str(root))
    assert result.exit_code == 2
    assert f"{root / 'models' / 'a.sql'}: reads 'nowhere'" in result.stderr.replace("\n", "")


def test_plan_touches_nothing(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p", {"a": model("select * from src", publish=True)})
    the_plan = plan(Project.load(root))
    assert the_plan.dag.order == ("a",)
    assert not (root / ".headwater").exists()
