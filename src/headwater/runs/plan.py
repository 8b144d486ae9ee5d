"""Validate a project without touching anything: project file, models, DAG, source folders.

A `ConfigError` from `plan()` means nothing was written anywhere; `run`
calls it first, and `headwater check` calls only this.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from headwater.config import FilesSource, SqlSource
from headwater.errors import ConfigError
from headwater.models.dag import Dag, build_dag
from headwater.models.spec import load_models
from headwater.project import Project
from headwater.sources import Source, open_source
from headwater.sources.sql import SqlSourceReader


@dataclass(frozen=True)
class Plan:
    project: Project
    dag: Dag
    sources: dict[str, Source]  # files sources
    sql_sources: dict[str, SqlSourceReader]


def plan(project: Project) -> Plan:
    """Everything a run will do, validated; raises ConfigError, touches nothing."""
    config = project.config
    models = load_models(project.models_dir, config.models)
    files = {n: c for n, c in config.sources.items() if isinstance(c, FilesSource)}
    sqls = {n: c for n, c in config.sources.items() if isinstance(c, SqlSource)}
    # A sql source feeds one processed table per database table: <prefix><table>.
    tables = {f"{c.prefix}{t}" for c in sqls.values() for t in c.tables}
    discovering = any(c.discovers for c in sqls.values())
    dag = build_dag(set(files) | tables, models, open_sources=discovering)
    sources = {
        name: open_source(name, cfg, project.root, config.lake.s3) for name, cfg in files.items()
    }
    sql_sources = {name: SqlSourceReader(name, cfg, project.root) for name, cfg in sqls.items()}
    for name, cfg in files.items():
        if cfg.path.startswith("s3://"):
            continue  # listed when the run extracts; a missing prefix is simply empty
        folder = project.path(cfg.path)
        if not folder.is_dir():
            raise ConfigError(
                f"{project.file}: sources.{name}.path: folder {folder} does not exist "
                f"(got {cfg.path!r}; expected a folder of files to load)"
            )
    if not models:
        raise ConfigError(f"{project.models_dir}: no models (*.sql files) found")
    reserved = _reserved_words()
    for name, model in models.items():
        if name in reserved:
            raise ConfigError(
                f"{model.path}: model name {name!r} is a reserved word in SQL; rename the file"
            )
    for name in config.sources:
        if name in reserved:
            raise ConfigError(f"{project.file}: sources.{name}: {name!r} is a reserved word in SQL")
    return Plan(project=project, dag=dag, sources=sources, sql_sources=sql_sources)


@functools.cache
def _reserved_words() -> frozenset[str]:
    """Words DuckDB cannot read as a bare table name (`select * from full` fails).

    Asked once per process (a new DuckDB database costs ~15 ms; the list is DuckDB's own)."""
    import duckdb

    conn = duckdb.connect()
    try:
        rows = conn.execute(
            "SELECT keyword_name FROM duckdb_keywords() "
            "WHERE keyword_category IN ('reserved', 'type_function')"
        ).fetchall()
    finally:
        conn.close()
    return frozenset(str(r[0]).lower() for r in rows)
