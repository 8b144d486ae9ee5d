"""The DAG: table references parsed from model SQL, validation, ordering."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.errors import ConfigError
from headwater.models.dag import build_dag
from headwater.models.spec import load_model, load_models, split_header, table_refs
from headwater.project import Project
from headwater.runs.plan import plan
from tests.fixtures.tiny import BASE_YAML, model, run_ok, tiny_project, warehouse

PATH = Path("models/m.sql")


def refs(sql: str) -> list[str]:
    return sorted(table_refs(sql, PATH)[1])


def write_models(tmp_path: Path, models: dict[str, str]) -> Path:
    folder = tmp_path / "models"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in models.items():
        (folder / f"{name}.sql").write_text(text, encoding="utf-8")
    return folder


# --------------------------------------------------------------- references


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select * from src", ["src"]),
        ("with x as (select * from src) select * from x join dim d on x.id = d.id", ["dim", "src"]),
        ("with a1 as (select * from a), a2 as (select * from a1) select * from a2", ["a"]),
        (
            "with recursive r as (select 1 as n union all select n + 1 from r where n < 3) "
            "select * from r cross join f",
            ["f"],
        ),
        (
            "select * from a left join b on a.id = b.id inner join c using (id) "
            "full outer join d using (id) cross join e",
            ["a", "b", "c", "d", "e"],
        ),
        (
            "select * from a where id in (select id from b) and exists (select 1 from c) "
            "and a.x > (select max(x) from d)",
            ["a", "b", "c", "d"],
        ),
        ("select * from (select * from (select * from deep) s1) s2", ["deep"]),
        ("select * from a union all select * from b except select * from c", ["a", "b", "c"]),
        ("select * from a, lateral (select * from b where b.id = a.id) l", ["a", "b"]),
        ('select * from "quoted"', ["quoted"]),
        ("select 1 as one", []),
        ("select * from read_csv('elsewhere.csv')", []),
        ("select * from range(10)", []),
        ("select * from other_db.main.t", []),
    ],
)
def test_refs_from_sql(sql: str, expected: list[str]) -> None:
    assert refs(sql) == expected


def test_cte_in_subquery_does_not_hide_outer_table() -> None:
    sql = "select * from a join (with a as (select 1 as x) select * from a) s on true"
    assert refs(sql) == ["a"]


def test_refs_are_case_insensitive_like_duckdb(tmp_path: Path) -> None:
    folder = write_models(tmp_path, {"a": "select * from SRC"})
    dag = build_dag({"src"}, load_models(folder, {}))
    assert dag.models["a"].refs == frozenset({"src"})


def test_sql_that_does_not_parse_names_file_and_line(tmp_path: Path) -> None:
    folder = write_models(tmp_path, {"m": "select *\nfro src"})
    with pytest.raises(ConfigError) as info:
        load_models(folder, {})
    message = str(info.value)
    assert message.startswith(f"{folder / 'm.sql'}: line 2")
    assert "SQL does not parse" in message


@pytest.mark.parametrize(
    "sql", ["select 1; select 2", "insert into t values (1)", "create table t (a int)"]
)
def test_a_model_is_exactly_one_select(tmp_path: Path, sql: str) -> None:
    folder = write_models(tmp_path, {"m": sql})
    with pytest.raises(ConfigError, match="a model holds exactly one SELECT query") as info:
        load_models(folder, {})
    assert str(folder / "m.sql") in str(info.value)


def test_header_is_split_from_sql() -> None:
    header, body = split_header("/* headwater\npublish: true\n*/\nselect 1\n")
    assert header is not None
    assert header.strip() == "publish: true"
    assert body.strip() == "select 1"
    assert split_header("/* other comment */ select 1") == (None, "/* other comment */ select 1")


def test_load_model_reads_header_and_overrides(tmp_path: Path) -> None:
    folder = write_models(
        tmp_path,
        {"m": model("select * from src;", materialized="incremental", publish=False)},
    )
    m = load_model(folder / "m.sql", {"publish": True})
    assert m.name == "m"
    assert m.sql == "select * from src"
    assert m.config.materialized == "incremental"
    assert m.config.publish is True
    assert m.refs == frozenset({"src"})


def test_override_for_a_model_without_file(tmp_path: Path) -> None:
    folder = write_models(tmp_path, {"m": "select 1"})
    with pytest.raises(ConfigError) as info:
        load_models(folder, {"ghost": {"publish": True}})
    assert str(info.value) == (
        "headwater.yaml: models.ghost: no file models/ghost.sql defines this model"
    )


def test_model_file_name_must_be_a_valid_name(tmp_path: Path) -> None:
    folder = write_models(tmp_path, {"Bad-Name": "select 1"})
    with pytest.raises(ConfigError, match="model name 'Bad-Name'") as info:
        load_models(folder, {})
    assert str(folder / "Bad-Name.sql") in str(info.value)


def test_header_with_invalid_yaml_names_file(tmp_path: Path) -> None:
    folder = write_models(tmp_path, {"m": "/* headwater\npublish: [\n*/\nselect 1"})
    with pytest.raises(ConfigError, match="header block is not valid YAML") as info:
        load_models(folder, {})
    assert str(folder / "m.sql") in str(info.value)


def test_same_model_name_in_two_folders(tmp_path: Path) -> None:
    folder = write_models(tmp_path, {"m": "select 1"})
    (folder / "sub").mkdir()
    (folder / "sub" / "m.sql").write_text("select 2")
    with pytest.raises(ConfigError, match="model 'm' is also defined in"):
        load_models(folder, {})


# ---------------------------------------------------------------- validation


def test_unknown_table_names_the_model_file(tmp_path: Path) -> None:
    folder = write_models(
        tmp_path, {"a": "select * from src", "b": "select * from a join missing_one using (id)"}
    )
    with pytest.raises(ConfigError) as info:
        build_dag({"src"}, load_models(folder, {}))
    assert str(info.value) == (
        f"{folder / 'b.sql'}: reads 'missing_one', which is neither a source nor a model "
        "(sources: src; models: a, b)"
    )


def test_cycle_is_detected(tmp_path: Path) -> None:
    folder = write_models(
        tmp_path,
        {
            "a": "select * from src join c using (id)",
            "b": "select * from a",
            "c": "select * from b",
        },
    )
    with pytest.raises(ConfigError, match="models form a cycle: ") as info:
        build_dag({"src"}, load_models(folder, {}))
    cycle = str(info.value).removeprefix("models form a cycle: ").split(" -> ")
    assert cycle[0] == cycle[-1]
    assert sorted(set(cycle)) == ["a", "b", "c"]


def test_model_reading_itself(tmp_path: Path) -> None:
    folder = write_models(tmp_path, {"a": "select * from a"})
    with pytest.raises(ConfigError) as info:
        build_dag({"src"}, load_models(folder, {}))
    assert str(info.value) == f"{folder / 'a.sql'}: model 'a' reads itself"


def test_model_named_like_a_source(tmp_path: Path) -> None:
    folder = write_models(tmp_path, {"src": "select 1 as x", "other": "select 1 as y"})
    with pytest.raises(ConfigError) as info:
        build_dag({"src"}, load_models(folder, {}))
    assert str(info.value) == f"{folder / 'src.sql'}: model 'src' has the same name as a source"


def test_model_named_like_a_source_stops_a_run(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p", {"src": "select 1 as x"})
    with pytest.raises(ConfigError, match="has the same name as a source"):
        plan(Project.load(root))
    assert not (root / ".headwater").exists()


def test_relationships_check_adds_a_dependency(tmp_path: Path) -> None:
    folder = write_models(
        tmp_path,
        {
            # File names sort the child first: only the check puts `parents` before it.
            "child": model(
                "select id, id as parent_id from src",
                checks=[{"relationships": {"column": "parent_id", "to": "parents", "field": "id"}}],
            ),
            "parents": model("select id from src"),
        },
    )
    dag = build_dag({"src"}, load_models(folder, {}))
    assert dag.models["child"].refs == frozenset({"src", "parents"})
    assert dag.order.index("parents") < dag.order.index("child")
    assert dag.downstream("parents") == {"child"}


def test_relationships_to_an_unknown_table(tmp_path: Path) -> None:
    folder = write_models(
        tmp_path,
        {
            "child": model(
                "select id from src",
                checks=[{"relationships": {"column": "id", "to": "nobody", "field": "id"}}],
            )
        },
    )
    with pytest.raises(ConfigError, match="reads 'nobody', which is neither a source nor a model"):
        build_dag({"src"}, load_models(folder, {}))


# ---------------------------------------------------------------------- order


def diamond() -> dict[str, str]:
    # Names chosen so that file (alphabetical) order is the reverse of run order.
    return {
        "a_report": "select * from b_join",
        "b_join": "select * from c_left join d_right using (id)",
        "c_left": "select * from e_base",
        "d_right": "with t as (select * from e_base) select * from t",
        "e_base": "select id from src",
        "f_alone": "select id from other",
    }


def test_dag_order_upstream_first(tmp_path: Path) -> None:
    folder = write_models(tmp_path, diamond())
    dag = build_dag({"src", "other"}, load_models(folder, {}))
    order = dag.order
    assert sorted(order) == ["a_report", "b_join", "c_left", "d_right", "e_base", "f_alone"]
    for name, m in dag.models.items():
        for ref in m.refs & set(dag.models):
            assert order.index(ref) < order.index(name), (ref, name, order)
    assert order.index("e_base") < order.index("c_left") < order.index("b_join")
    assert order.index("b_join") < order.index("a_report")


def test_downstream_and_sources_of(tmp_path: Path) -> None:
    folder = write_models(tmp_path, diamond())
    dag = build_dag({"src", "other"}, load_models(folder, {}))
    assert dag.downstream("e_base") == {"c_left", "d_right", "b_join", "a_report"}
    assert dag.downstream("a_report") == set()
    assert dag.downstream("src") == {"e_base", "c_left", "d_right", "b_join", "a_report"}
    assert dag.sources_of("a_report") == {"src"}
    assert dag.sources_of("f_alone") == {"other"}
    assert dag.upstream("b_join") == frozenset({"c_left", "d_right"})


def test_dag_lines(tmp_path: Path) -> None:
    folder = write_models(
        tmp_path,
        {
            "a": model("select * from src", materialized="incremental", publish=True),
            "b": model(
                "select * from a",
                materialized="incremental",
                strategy="merge",
                unique_key="id",
            ),
            "c": model("select 1 as x"),
        },
    )
    dag = build_dag({"src"}, load_models(folder, {}))
    lines = dag.lines()
    assert lines[0] == "source src"
    assert sorted(lines[1:]) == [
        "(nothing) -> c [table]",
        "a -> b [incremental/merge]",
        "src -> a [incremental/append, published]",
    ]
    assert lines.index("src -> a [incremental/append, published]") < lines.index(
        "a -> b [incremental/merge]"
    )


def test_models_run_in_dag_order(tmp_path: Path) -> None:
    # `a_total` reads `b_double`, which reads the source: the run must order them.
    root = tiny_project(
        tmp_path / "p",
        {
            "a_total": model("select sum(doubled) as total from b_double", publish=True),
            "b_double": model(
                "select cast(amount as integer) * 2 as doubled from src", publish=True
            ),
        },
        {"f.csv": "1,x,10\n2,y,5\n"},
        BASE_YAML,
    )
    summary = run_ok(root)
    assert list(summary.models) == ["b_double", "a_total"]
    assert warehouse(root, "select total from a_total") == [(30,)]
