"""Validate a project without touching anything: project file, models, DAG, source folders.

A `ConfigError` from `plan()` means nothing was written anywhere; `run`
calls it first, and `headwater check` calls only this.
"""

from __future__ import annotations

from dataclasses import dataclass

from headwater.errors import ConfigError
from headwater.models.dag import Dag, build_dag
from headwater.models.spec import load_models
from headwater.project import Project
from headwater.sources import Source, open_source


@dataclass(frozen=True)
class Plan:
    project: Project
    dag: Dag
    sources: dict[str, Source]


def plan(project: Project) -> Plan:
    """Everything a run will do, validated; raises ConfigError, touches nothing."""
    config = project.config
    models = load_models(project.models_dir, config.models)
    dag = build_dag(set(config.sources), models)
    sources = {name: open_source(name, cfg, project.root) for name, cfg in config.sources.items()}
    for name, cfg in config.sources.items():
        folder = project.path(cfg.path)
        if not folder.is_dir():
            raise ConfigError(
                f"{project.file}: sources.{name}.path: folder {folder} does not exist "
                f"(got {cfg.path!r}; expected a folder of files to load)"
            )
    if not models:
        raise ConfigError(f"{project.models_dir}: no models (*.sql files) found")
    return Plan(project=project, dag=dag, sources=sources)
