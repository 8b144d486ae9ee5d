"""A project: a folder with `headwater.yaml`, `models/*.sql` and `dashboards/*.yaml`.

Relative paths in the project file are relative to the project folder. The
embedded defaults put the lake, the warehouse and the state database under
`<project>/.headwater/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from headwater.config import PROJECT_FILE, ProjectConfig, load_project_config
from headwater.errors import ConfigError


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

    @property
    def state_url(self) -> str:
        """SQLAlchemy URL of the state database, relative SQLite paths resolved."""
        url = self.config.state.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            return prefix + str(self.path(url.removeprefix(prefix)))
        return url

    @property
    def warehouse_path(self) -> Path:
        return self.path(self.config.warehouse.path)

    @property
    def tmp_dir(self) -> Path:
        return self.home / "tmp"
