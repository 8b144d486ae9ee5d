"""A project: a folder with `headwater.yaml`, `models/*.sql` and `dashboards/*.yaml`.

Relative paths in the project file are relative to the project folder. The
embedded defaults put the lake, the warehouse and the state database under
`<project>/.headwater/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from headwater.config import (
    PROJECT_FILE,
    DuckDBWarehouseConfig,
    ProjectConfig,
    load_project_config,
)
from headwater.errors import ConfigError
from headwater.lake.store import Store, open_store


@dataclass(frozen=True)
class Project:
    root: Path
    config: ProjectConfig

    @classmethod
    def load(cls, root: Path | str) -> Project:
        root = Path(root).resolve()
        if root.is_file() and root.name == PROJECT_FILE:
            root = root.parent
        if not root.is_dir():
            raise ConfigError(f"{root}: project folder not found")
        return cls(root=root, config=load_project_config(root / PROJECT_FILE))

    @property
    def file(self) -> Path:
        return self.root / PROJECT_FILE

    @property
    def home(self) -> Path:
        """Where headwater keeps its own files for this project."""
        return self.root / ".headwater"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def dashboards_dir(self) -> Path:
        return self.root / "dashboards"

    def path(self, value: str) -> Path:
        """A path from the project file, made absolute against the project folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.root / p

    @property
    def lake_url(self) -> str:
        """The lake as a URL: `file:///abs/path` for local folders."""
        url = self.config.lake.url
        scheme = urlsplit(url).scheme
        if scheme in ("", "file"):
            local = url.removeprefix("file://") if scheme else url
            return self.path(local).as_uri()
        return url

    def open_store(self) -> Store:
        """The lake's object store (local folder or S3), with the lake's S3 settings."""
        return open_store(self.lake_url, self.config.lake.s3)

    @property
    def state_url(self) -> str:
        """SQLAlchemy URL of the state database: relative SQLite paths resolved,
        `postgresql://` given the psycopg (3) driver."""
        return sqlalchemy_url(self.config.state.url, self.root)

    @property
    def is_server_state(self) -> bool:
        return not self.config.state.url.startswith("sqlite")

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB warehouse file (the embedded default; other targets have a URL)."""
        config = self.config.warehouse
        path = config.path if config.type == "duckdb" else DuckDBWarehouseConfig().path
        return self.path(path)

    @property
    def tmp_dir(self) -> Path:
        return self.home / "tmp"


def sqlalchemy_url(url: str, base: Path) -> str:
    """A state or database URL as SQLAlchemy takes it (relative SQLite paths against `base`)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        path = Path(url.removeprefix(prefix)).expanduser()
        return prefix + str(path if path.is_absolute() else base / path)
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url
