"""The DAG of sources and models, from the tables each model's SQL reads."""

from __future__ import annotations

from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter

from headwater.errors import ConfigError
from headwater.models.spec import Model


@dataclass(frozen=True)
class Dag:
    sources: frozenset[str]
    models: dict[str, Model]
    order: tuple[str, ...]  # models, upstream first

    def upstream(self, name: str) -> frozenset[str]:
        return self.models[name].refs

    def downstream(self, name: str) -> set[str]:
        """Every model that reads `name`, directly or not."""
        found: set[str] = set()
        frontier = [name]
        while frontier:
            current = frontier.pop()
            for other, model in self.models.items():
                if current in model.refs and other not in found:
                    found.add(other)
                    frontier.append(other)
        return found

    def sources_of(self, name: str) -> set[str]:
        """The sources a model reads, directly or through other models."""
        out: set[str] = set()
        stack = [name]
        seen: set[str] = set()
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            for ref in self.models[current].refs:
                if ref in self.sources:
                    out.add(ref)
                elif ref in self.models:
                    stack.append(ref)
        return out

    def lines(self) -> list[str]:
        """`upstream -> model` lines, in run order, for `headwater check`."""
        out = [f"source {s}" for s in sorted(self.sources)]
        for name in self.order:
            model = self.models[name]
            deps = ", ".join(sorted(model.refs)) or "(nothing)"
            flags: str = model.config.materialized
            if model.config.materialized == "incremental":
                flags += f"/{model.config.strategy}"
            if model.config.publish:
                flags += ", published"
            out.append(f"{deps} -> {name} [{flags}]")
        return out


def build_dag(sources: set[str], models: dict[str, Model], open_sources: bool = False) -> Dag:
    """The models in run order. With `open_sources` (a sql source that finds its tables in
    the database), a name that is neither a model nor a known source is taken as one of its
    tables; a model reading a table that does not exist fails when it runs."""
    clash = sorted(sources & set(models))
    if clash:
        raise ConfigError(
            f"{models[clash[0]].path}: model {clash[0]!r} has the same name as a source"
        )
    for model in models.values():
        if model.name in model.refs:
            raise ConfigError(f"{model.path}: model {model.name!r} reads itself")
        unknown = sorted(model.refs - sources - set(models))
        if unknown and open_sources:
            sources = sources | set(unknown)
        elif unknown:
            raise ConfigError(
                f"{model.path}: reads {unknown[0]!r}, which is neither a source nor a model "
                f"(sources: {', '.join(sorted(sources)) or 'none'}; "
                f"models: {', '.join(sorted(models))})"
            )
    graph = {name: set(m.refs) & set(models) for name, m in models.items()}
    try:
        order = tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise ConfigError(f"models form a cycle: {cycle}") from None
    return Dag(sources=frozenset(sources), models=models, order=order)
