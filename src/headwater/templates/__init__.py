"""Project templates: each a folder `project/` copied by `headwater init`, plus a data generator."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from headwater.errors import ConfigError


@dataclass(frozen=True)
class Template:
    name: str
    description: str


TEMPLATES: dict[str, Template] = {
    "cafe": Template("cafe", "café branch CSV files -> PII-free 3NF warehouse -> sales dashboards"),
    "totesys": Template(
        "totesys", "an operational PostgreSQL database -> star schemas (sales, purchases, payments)"
    ),
    "careplus": Template(
        "careplus",
        "support tickets (MySQL) + multi-line system logs -> cleaned tables, 2 dashboards",
    ),
}


def template_dir(name: str) -> Path:
    if name not in TEMPLATES:
        raise ConfigError(
            f"unknown template {name!r} (expected one of: {', '.join(sorted(TEMPLATES))})"
        )
    return Path(str(resources.files("headwater.templates") / name / "project"))


def init_project(target: Path, template: str, *, force: bool = False) -> list[Path]:
    """Copy a template's project folder to `target`; returns the files written."""
    source = template_dir(template)
    if target.exists() and any(target.iterdir()) and not force:
        raise ConfigError(
            f"{target}: folder exists and is not empty (use --force to write into it)"
        )
    written: list[Path] = []
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if "__pycache__" in rel.parts:
            continue
        dest = target / rel
        if path.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        written.append(dest)
    (target / "inbox").mkdir(parents=True, exist_ok=True)
    return written
