"""Reading model files: `models/<name>.sql`, one SELECT each, with an optional header.

The header is a block comment at the top of the file holding YAML settings:

    /* headwater
    materialized: incremental
    strategy: merge
    unique_key: product_id
    publish: true
    checks:
      - not_null: product_name
    */
    select ...

Settings under `models.<name>` in `headwater.yaml` override the header, key by key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlglot
import yaml
from sqlglot import exp
from sqlglot.errors import ParseError
from sqlglot.optimizer.scope import traverse_scope

from headwater.config import NAME_PATTERN, ModelConfig, parse_model_config
from headwater.errors import ConfigError

HEADER = re.compile(r"\A\s*/\*\s*headwater\b(?P<body>.*?)\*/", re.DOTALL)


@dataclass(frozen=True)
class Model:
    name: str
    path: Path
    sql: str
    config: ModelConfig
    refs: frozenset[str]


def split_header(text: str) -> tuple[str | None, str]:
    """(YAML header or None, SQL body)."""
    match = HEADER.match(text)
    if match is None:
        return None, text
    return match.group("body"), text[match.end() :]


def table_refs(sql: str, path: Path) -> tuple[exp.Query, frozenset[str]]:
    """Parse one SELECT and return it with the names of the tables it reads."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" line {first.get('line')}, column {first.get('col')}" if first else ""
        raise ConfigError(
            f"{path}:{where}: SQL does not parse: {first.get('description', exc)}"
        ) from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise ConfigError(
            f"{path}: a model holds exactly one SELECT query (found {len(statements)} statements)"
        )
    tree = statements[0]
    refs = set()
    # Scopes resolve CTE names where they are visible, so a CTE inside a subquery
    # does not hide a table of the same name read elsewhere.
    for scope in traverse_scope(tree):
        for source in scope.sources.values():
            if not isinstance(source, exp.Table) or not isinstance(source.this, exp.Identifier):
                continue
            if source.args.get("db") or source.args.get("catalog"):
                continue  # qualified names point outside the project
            # Unquoted identifiers are case-insensitive in DuckDB, like project names.
            refs.add(source.name if source.this.quoted else source.name.lower())
    return tree, frozenset(refs)


def load_model(path: Path, overrides: dict[str, Any] | None) -> Model:
    name = path.stem
    if not re.match(NAME_PATTERN, name):
        raise ConfigError(
            f"{path}: model name {name!r} (from the file name) must match {NAME_PATTERN}"
        )
    text = path.read_text(encoding="utf-8")
    header, body = split_header(text)
    settings: dict[str, Any] = {}
    if header is not None:
        try:
            loaded = yaml.safe_load(header)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: header block is not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: header block must be a mapping of settings")
        settings.update(loaded or {})
    settings.update(overrides or {})
    config = parse_model_config(path, settings)
    _, refs = table_refs(body, path)
    for check in config.checks:
        rel = getattr(check, "relationships", None)
        if rel is not None:
            refs = refs | {rel.to}
    return Model(name=name, path=path, sql=body.strip().rstrip(";"), config=config, refs=refs)


def load_models(models_dir: Path, overrides: dict[str, dict[str, Any]]) -> dict[str, Model]:
    models: dict[str, Model] = {}
    if models_dir.is_dir():
        for path in sorted(models_dir.rglob("*.sql")):
            model = load_model(path, overrides.get(path.stem))
            if model.name in models:
                raise ConfigError(
                    f"{path}: model {model.name!r} is also defined in {models[model.name].path}"
                )
            models[model.name] = model
    unknown = sorted(set(overrides) - set(models))
    if unknown:
        raise ConfigError(
            f"headwater.yaml: models.{unknown[0]}: "
            f"no file models/{unknown[0]}.sql defines this model"
        )
    return models
