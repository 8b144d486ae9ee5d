"""The reference documentation in docs/ covers what the code defines.

Nothing here is a hand-written list: commands and options come from the Typer
app, configuration keys from the pydantic models, summary fields from a real
run, crash points from `headwater.runs.faults.POINTS`. The conventions the
docs follow, and these tests enforce:

- A *table row* for `X` is a Markdown table line whose first cell holds `X`
  in backticks (`` | `X` | ... ``, or `` | `--project`, `-p` | ... ``).
- docs/cli.md has one section `` ## `headwater <command>` `` per command,
  naming every option (long and short) and every argument (upper case, e.g.
  `SQL`) in backticks and stating the exit codes; global options are in
  `## Global options`. No section names an option its command lacks. Every
  synopsis line (`headwater <command> ...` in a fenced block) lists every
  long option of the command and no other.
- docs/config.md has a table row for every leaf key of `headwater.yaml`,
  written as its full dotted path with `<name>` for source and model names and
  `<column>` for PII columns (`` `sources.<name>.csv.header` ``). The row
  shows the default in backticks (`null`, `true`, `[]`, `2GB`, ...) or says
  `required`, and every allowed literal value in backticks. Dotted paths in
  backticks that are not keys are errors (stale docs).
- docs/models.md has a table row per header-block key (same default and
  literal rules); docs/quality.md has a table row per check kind naming its
  argument keys (`` `range.min` ``), per common check key, per PII policy and
  per quarantine column.
- docs/run-summary.md has a table row for every field of a real
  `headwater run --json` summary, as a dotted path with `<source>`, `<model>`,
  `<table>`, `<rule>` for map keys and `[]` for list items, and documents the
  error shapes printed by `run --json`.
- docs/lake.md has a table row per crash point.
- Examples: every `$ headwater ...` line in a fenced block uses a real
  command and only that command's options; every relative link resolves,
  anchors included; docs/index.md links every page.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import types
from collections.abc import Iterator
from inspect import isclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
import typer.main
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from typer.testing import CliRunner

from headwater import config as cfg
from headwater.cli import app
from headwater.lake.quarantine import COLUMNS as QUARANTINE_COLUMNS
from headwater.project import Project
from headwater.runs.faults import ENV as FAULT_ENV
from headwater.runs.faults import POINTS
from headwater.runs.pipeline import run
from headwater.templates import init_project
from headwater.templates.cafe.generator import generate

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = (
    "index.md",
    "cli.md",
    "config.md",
    "models.md",
    "sources/files.md",
    "sources/sql.md",
    "sources/logs.md",
    "warehouse/duckdb.md",
    "warehouse/postgres.md",
    "warehouse/redshift.md",
    "servers.md",
    "serve.md",
    "serve-tools.md",
    "schedule.md",
    "alerts.md",
    "dashboards.md",
    "lake.md",
    "run-summary.md",
    "quality.md",
    "templates/cafe.md",
    "templates/totesys.md",
    "templates/totesys-source.md",
    "templates/careplus.md",
)

# --------------------------------------------------------------------- markdown


def read(page: str) -> str:
    path = DOCS / page
    assert path.is_file(), f"docs/{page} is missing"
    return path.read_text(encoding="utf-8")


FENCE = re.compile(r"^```.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)


def prose(text: str) -> str:
    """The text without fenced code blocks."""
    return FENCE.sub("", text)


def fenced_lines(text: str) -> Iterator[str]:
    for block in FENCE.findall(text):
        yield from block.splitlines()[1:-1]


def spans(text: str) -> set[str]:
    """Inline code spans outside fenced blocks."""
    return set(re.findall(r"`([^`\n]+)`", prose(text)))


def sections(text: str, level: int = 2) -> dict[str, str]:
    """Heading text -> body, for headings of exactly this level (outside fences)."""
    marker = "#" * level + " "
    out: dict[str, str] = {}
    current: str | None = None
    for line in prose(text).splitlines():
        if line.startswith(marker):
            current = line[len(marker) :].strip()
            out[current] = ""
        elif current is not None:
            if re.match(f"#{{1,{level}}} ", line):
                current = None
            else:
                out[current] += line + "\n"
    return out


def cells(line: str) -> list[str]:
    """The cells of a table line (`\\|` inside a cell is not a separator)."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def table_cells(text: str) -> dict[str, dict[str, str]]:
    """Code span in a table row's first cell -> {column header: cell} of that row."""
    rows: dict[str, dict[str, str]] = {}
    header: list[str] = []
    for line in prose(text).splitlines():
        if not line.startswith("|"):
            header = []
            continue
        if line.startswith("|---"):
            continue
        if not header:
            header = cells(line)
            continue
        row = dict(zip(header, cells(line), strict=False))
        row[""] = line
        for span in re.findall(r"`([^`\n]+)`", cells(line)[0] if cells(line) else ""):
            rows.setdefault(span, row)
    return rows


def table_rows(text: str) -> dict[str, str]:
    """Code span in a table row's first cell -> the whole row."""
    return {span: row[""] for span, row in table_cells(text).items()}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    found: set[str] = set()
    for line in prose(text).splitlines():
        match = re.match(r"#{1,6} (.+)", line)
        if match:
            base = slug(match.group(1))
            name, n = base, 0
            while name in found:
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


# --------------------------------------------------------------------- the CLI


def cli() -> tuple[Any, dict[str, Any]]:
    root = typer.main.get_command(app)
    commands = getattr(root, "commands", {})
    assert commands, "headwater.cli.app registers no commands"
    return root, dict(commands)


def subcommands(command: Any) -> dict[str, Any]:
    """A group's subcommands (`headwater state show`), empty for a plain command."""
    return dict(getattr(command, "commands", {}))


def options(command: Any) -> set[str]:
    own = {o for p in command.params for o in [*p.opts, *p.secondary_opts] if o.startswith("-")}
    return own.union(*(options(sub) for sub in subcommands(command).values()))


def arguments(command: Any) -> set[str]:
    own = {p.name.upper() for p in command.params if p.param_type_name == "argument"}
    return own.union(*(arguments(sub) for sub in subcommands(command).values()))


OPTION = re.compile(r"(?<![\w-])-{1,2}[a-z][a-z0-9-]*")


def test_cli_documents_every_command_option_and_exit_codes() -> None:
    text = read("cli.md")
    secs = sections(text)
    root, commands = cli()
    problems = []
    global_opts = {o for p in root.params for o in [*p.opts, *p.secondary_opts]} | {"--help"}
    glob = secs.get("Global options")
    if glob is None:
        problems.append("no '## Global options' section")
    else:
        problems += [f"Global options: `{o}` not documented" for o in global_opts - spans(glob)]
    for name, command in commands.items():
        heading = f"`headwater {name}`"
        body = secs.get(heading)
        if body is None:
            problems.append(f"no section '## {heading}'")
            continue
        found = spans(body)
        missing = (options(command) | arguments(command)) - found
        problems += [f"{heading}: `{w}` not documented" for w in sorted(missing)]
        if "exit code" not in body.lower():
            problems.append(f"{heading}: exit codes not stated")
        known = options(command) | global_opts
        stale = {s for s in found if re.fullmatch(OPTION, s)} - known
        problems += [f"{heading}: `{s}` is not an option of this command" for s in sorted(stale)]
    assert not problems, "\n".join(problems)


def test_cli_synopses_list_exactly_the_options() -> None:
    _, commands = cli()
    seen = set()
    problems = []
    listed_by: dict[str, tuple[Any, set[str]]] = {}
    for line in fenced_lines(read("cli.md")):
        words = line.split()
        if len(words) < 2 or words[0] != "headwater" or words[1] not in commands:
            continue
        name = words[1]
        command = commands[name]
        subs = subcommands(command)
        if subs:  # a group: one synopsis line per subcommand
            if len(words) < 3 or words[2] not in subs:
                continue
            name = f"{name} {words[2]}"
            command = subs[words[2]]
        seen.add(name)
        # A command may have several synopsis lines (one per template): together they list all.
        listed_by.setdefault(name, (command, set()))[1].update(OPTION.findall(line))
    for name, (command, listed) in listed_by.items():
        longs = {o for o in options(command) if o.startswith("--")}
        problems += [f"synopsis of {name}: {o} missing" for o in sorted(longs - listed)]
        problems += [f"synopsis of {name}: {o} unknown" for o in sorted(listed - options(command))]
    expected = {
        f"{n} {sub}" if sub else n
        for n, c in commands.items()
        for sub in (subcommands(c) or {"": None})
    }
    problems += [f"no synopsis line for {n}" for n in sorted(expected - seen)]
    assert not problems, "\n".join(problems)


def test_examples_use_real_commands_and_options() -> None:
    root, commands = cli()
    global_opts = {o for p in root.params for o in [*p.opts, *p.secondary_opts]} | {"--help"}
    problems = []
    for page in PAGES:
        for line in fenced_lines(read(page)):
            if not line.startswith("$ "):
                continue
            words = shlex.split(line[2:])
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                words.pop(0)
            if not words or words[0] != "headwater":
                continue
            cut = next(
                (i for i, w in enumerate(words) if w in {"|", ">", ";", "&&", "2>"}), len(words)
            )
            words = words[1:cut]
            while words and words[0] in global_opts:
                words.pop(0)
            if not words:
                continue
            name, rest = words[0], words[1:]
            if name not in commands:
                problems.append(f"{page}: unknown command in `{line}`")
                continue
            allowed = options(commands[name]) | {"--help"}
            bad = [w for w in rest if w.startswith("-") and w.split("=")[0] not in allowed]
            problems += [f"{page}: {w} is not an option of {name}: `{line}`" for w in bad]
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------- config


def flatten(annotation: Any) -> list[Any]:
    """The types an annotation admits: Annotated unwrapped, unions split, None left out."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return flatten(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [t for a in get_args(annotation) for t in flatten(a)]
    if annotation is type(None):
        return []
    return [annotation]


def literals(annotation: Any) -> set[str]:
    """Every Literal value anywhere in an annotation, as text."""
    out: set[str] = set()
    for t in flatten(annotation):
        if get_origin(t) is Literal:
            out |= {str(v) for v in get_args(t) if not isinstance(v, bool)}
        else:
            for arg in get_args(t):
                out |= literals(arg)
    return out


def models_in(annotation: Any) -> list[type[BaseModel]]:
    return [t for t in flatten(annotation) if isclass(t) and issubclass(t, BaseModel)]


def dict_value_models(annotation: Any) -> list[type[BaseModel]]:
    return [
        m for t in flatten(annotation) if get_origin(t) is dict for m in models_in(get_args(t)[1])
    ]


# `models.<name>` holds a raw mapping in ProjectConfig, validated as a ModelConfig.
RAW_SECTIONS: dict[str, type[BaseModel]] = {"models": cfg.ModelConfig}


def placeholder(key: str) -> str:
    return "<column>" if key.endswith(".pii") else "<name>"


# Option groups documented key by key once; elsewhere their container row points there.
SHARED_GROUPS = {cfg.S3Options: "lake.s3"}


def config_keys(model: type[BaseModel], prefix: str = "") -> dict[str, FieldInfo | None]:
    """Dotted key -> field (None for containers), walking the pydantic models.

    In a union of models (the warehouse types) a key shared by several members
    is checked against its first member (the default one first).
    """
    out: dict[str, FieldInfo | None] = {}
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        nested = models_in(field.annotation)
        if nested and all(SHARED_GROUPS.get(m, key) != key for m in nested):
            out.setdefault(key, None)
            continue
        by_name = dict_value_models(field.annotation) or (
            [RAW_SECTIONS[key]] if key in RAW_SECTIONS else []
        )
        if nested:
            out[key] = None
            for sub in nested:
                for sub_key, sub_field in config_keys(sub, key + ".").items():
                    out.setdefault(sub_key, sub_field)
        elif by_name:
            out[key] = None
            for sub in by_name:
                out |= config_keys(sub, f"{key}.{placeholder(key)}.")
        else:
            out[key] = field
    return out


def rendered_default(field: FieldInfo) -> str | None:
    """How the default must appear in the key's row (None: not checked)."""
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.default
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == "":
        return '`""`'
    if isinstance(value, str | int | float):
        return f"`{value}`"
    if value == []:
        return "`[]`"
    if value == {}:
        return "`{}`"
    return None


def row_problems(
    rows: dict[str, dict[str, str]], key: str, field: FieldInfo, page: str
) -> list[str]:
    """The key's row names every literal value, and its `default` cell the default."""
    row = rows.get(key)
    if row is None:
        return [f"{page}: no table row for `{key}`"]
    problems = []
    default = rendered_default(field)
    cell = row.get("default")
    if cell is None:
        problems.append(f"{page}: the table holding `{key}` has no `default` column")
    elif default is not None and default not in cell:
        problems.append(f"{page}: default of `{key}` is {default}, the docs say {cell!r}")
    for value in sorted(literals(field.annotation)):
        if f"`{value}`" not in row[""]:
            problems.append(f"{page}: row of `{key}` does not name the value `{value}`")
    return problems


KEY_SPAN = re.compile(r"[a-z_]+(\.(<[a-z]+>|[a-z_]+))+")


def test_config_documents_every_key() -> None:
    text = read("config.md")
    rows = table_cells(text)
    keys = config_keys(cfg.ProjectConfig)
    assert "engine.memory_limit" in keys and "sources.<name>.csv.header" in keys
    assert "sources.<name>.pii.<column>.keep_last" in keys and "models.<name>.latest_by" in keys
    problems = []
    for key, field in sorted(keys.items()):
        if field is not None:
            problems += row_problems(rows, key, field, "config.md")
    top = {k.split(".")[0] for k in keys}
    problems += [
        f"config.md: `{span}` is not a configuration key"
        for span in sorted(spans(text))
        if KEY_SPAN.fullmatch(span)
        and span.split(".")[0] in top
        and not any(k == span or k.startswith(span + ".") for k in keys)
    ]
    assert not problems, "\n".join(problems)


def test_config_documents_interpolation_and_errors() -> None:
    found = spans(read("config.md"))
    for word in ("${VAR}", "${VAR:-default}", ".env", "HEADWATER_PII_SECRET"):
        assert word in found, f"config.md does not mention `{word}`"
    assert "exit code 2" in read("config.md")


# --------------------------------------------------------------------- models and checks


def check_classes() -> list[type[BaseModel]]:
    """The check classes a model's `checks` list accepts."""
    [item] = get_args(cfg.ModelConfig.model_fields["checks"].annotation)
    classes = models_in(item)
    assert classes and all(issubclass(c, cfg.CheckBase) for c in classes), classes
    return classes


def check_kind(cls: type[BaseModel]) -> str:
    [kind] = set(cls.model_fields) - set(cfg.CheckBase.model_fields)
    return kind


def test_models_documents_every_header_key() -> None:
    rows = table_cells(read("models.md"))
    problems = []
    for key, field in cfg.ModelConfig.model_fields.items():
        problems += row_problems(rows, key, field, "models.md")
    assert not problems, "\n".join(problems)
    found = spans(read("models.md"))
    for word in ("_batch", "/* headwater", "*/"):
        assert word in found, f"models.md does not mention `{word}`"


def test_quality_documents_every_check_kind_and_key() -> None:
    text = read("quality.md")
    rows = table_rows(text)
    problems = []
    for cls in check_classes():
        kind = check_kind(cls)
        row = rows.get(kind)
        if row is None:
            problems.append(f"quality.md: no table row for check `{kind}`")
            continue
        for sub in models_in(cls.model_fields[kind].annotation):
            for arg in sub.model_fields:
                if f"`{kind}.{arg}`" not in row:
                    problems.append(f"quality.md: row of `{kind}` does not name `{kind}.{arg}`")
    for key, field in cfg.CheckBase.model_fields.items():
        problems += row_problems(table_cells(text), key, field, "quality.md")
    policy = cfg.PiiPolicy.model_fields["policy"]
    problems += [
        f"quality.md: no table row for PII policy `{p}`"
        for p in sorted(literals(policy.annotation))
        if p not in rows
    ]
    problems += [
        f"quality.md: PII key `{k}` not mentioned"
        for k in cfg.PiiPolicy.model_fields
        if k != "policy" and k not in spans(text)
    ]
    problems += [
        f"quality.md: no table row for quarantine column `{c}`"
        for c in QUARANTINE_COLUMNS
        if c not in rows
    ]
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------- run summary

DAMAGED = (
    b"Timestamp,Branch,Customer,Basket,Total,Payment,Card\r\n"
    b"25/08/2021 09:00,Leeds,Ann Smith,Regular Latte - 2.15,2.15,CARD,4929123412341234\r\n"
    b"\r\n"
    b"25/08/2021 09:05,Leeds,Bob Jones,Regular Latte - 2.15,2.15\r\n"
    b"25/08/2021 09:06,Leeds,Cy Doe,Regular Latte - 2.15,2.15,CHEQUE,\r\n"
)

# Objects keyed by names from the data, and how the docs write their keys.
MAPS = {
    "sources": "<source>",
    "models": "<model>",
    "warehouse.tables": "<table>",
    "sources.<source>.quarantined_by_reason": "<rule>",
}


def json_paths(node: Any, path: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(node, dict):
        name = MAPS.get(path)
        for key, value in node.items():
            child = name or key
            child = f"{path}.{child}" if path else child
            out.add(child)
            out |= json_paths(value, child)
    elif isinstance(node, list):
        for item in node:
            out |= json_paths(item, path + "[]")
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small cafe project: generated files, a renamed copy and a damaged file."""
    root = tmp_path_factory.mktemp("docs") / "project"
    init_project(root, "cafe")
    (root / ".env").write_text("HEADWATER_PII_SECRET=x\n", encoding="utf-8")
    generate(root / "inbox", branches=2, days=1, seed=1, per_day=20)
    first = sorted((root / "inbox").glob("*.csv"))[0]
    shutil.copyfile(first, root / "inbox" / "copy.csv")
    (root / "inbox" / "damaged.csv").write_bytes(DAMAGED)
    return root


@pytest.fixture(scope="module")
def summary(project: Path) -> dict[str, Any]:
    result = run(Project.load(project))
    assert result.ok, result.error
    return result.to_json()


def test_run_summary_documents_every_field(summary: dict[str, Any]) -> None:
    paths = json_paths(summary)
    # The fixture must exercise every kind of entry, or fields would go unchecked.
    for path in (
        "sources.<source>.duplicates[].same_content_as",
        "sources.<source>.quarantined_by_reason.<rule>",
        "models.<model>.checks[].severity",
        "warehouse.tables.<table>.columns_added",
    ):
        assert path in paths, f"the test run produced no {path}"
    rows = table_rows(read("run-summary.md"))
    missing = sorted(paths - set(rows))
    assert not missing, "run-summary.md has no table row for: " + ", ".join(missing)
    stale = sorted(r for r in rows if KEY_SPAN.fullmatch(r) or r in summary)
    stale = [r for r in stale if r not in paths and r not in {"status", "error"}]
    assert not stale, "run-summary.md documents fields a run does not produce: " + ", ".join(stale)


def run_json(args: list[str]) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, args)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines, f"no JSON on stdout; stderr: {result.stderr}"
    return result.exit_code, json.loads(lines[0])


def test_run_summary_documents_error_shapes(
    project: Path, summary: dict[str, Any], tmp_path: Path
) -> None:
    text = read("run-summary.md")
    rows, found = table_rows(text), spans(text)

    broken = tmp_path / "broken"
    shutil.copytree(project, broken, ignore=shutil.ignore_patterns(".headwater"))
    yaml_file = broken / "headwater.yaml"
    yaml_file.write_text(
        yaml_file.read_text(encoding="utf-8").replace("name: cafe", "name: Not A Name"),
        encoding="utf-8",
    )
    code, config_error = run_json(["run", "-p", str(broken), "--json"])
    assert code == 2
    assert not (broken / ".headwater").exists(), "a configuration error touched the project"

    fd = os.open(project / ".headwater" / "run.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, failed = run_json(["run", "-p", str(project), "--json"])
    finally:
        os.close(fd)
    assert code == 1

    for shape in (config_error, failed):
        for key in shape:
            assert key in rows, f"run-summary.md: no table row for error field `{key}`"
        assert shape["status"] in found, f"run-summary.md does not name `{shape['status']}`"


# --------------------------------------------------------------------- lake


def test_lake_documents_every_crash_point() -> None:
    text = read("lake.md")
    rows = table_rows(text)
    missing = [p for p in POINTS if p not in rows]
    assert not missing, "lake.md has no table row for crash point(s): " + ", ".join(missing)
    stages = {p.split(".")[0] for p in POINTS}
    stale = sorted(
        s
        for s in spans(text)
        if re.fullmatch(r"[a-z]+\.[a-z_]+", s) and s.split(".")[0] in stages and s not in POINTS
    )
    assert not stale, "lake.md names crash points that do not exist: " + ", ".join(stale)
    assert FAULT_ENV in spans(text)
    for column in QUARANTINE_COLUMNS:
        assert column in spans(text), f"lake.md does not name quarantine column `{column}`"


# --------------------------------------------------------------------- links


def test_links_resolve_and_index_covers_every_page() -> None:
    problems = []
    for page in PAGES:
        here = DOCS / page
        for target in re.findall(r"\]\(([^)\s]+)\)", prose(read(page))):
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            dest = (here.parent / file_part).resolve() if file_part else here
            if not dest.is_file():
                problems.append(f"{page}: link to missing {target}")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text()):
                problems.append(f"{page}: link to missing anchor {target}")
    linked = set(re.findall(r"\]\(([^)#\s]+)", read("index.md")))
    problems += [
        f"index.md does not link {p}" for p in PAGES if p != "index.md" and p not in linked
    ]
    assert not problems, "\n".join(problems)
