"""Point a new project at servers: `headwater init --lake/--warehouse/--state URL`.

The template's project file ends with the embedded defaults (`lake:`,
`state:`, `warehouse:` blocks); each option replaces its block. A URL that
carries a password is not written into the project file: it goes to `.env`
(git-ignored, mode 600) and the project file refers to it as `${VAR}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from headwater.errors import ConfigError

ENV_NAMES = {"lake": "HEADWATER_LAKE_URL", "state": "HEADWATER_STATE_URL"}
ENV_NAMES["warehouse"] = "HEADWATER_WAREHOUSE_URL"


@dataclass(frozen=True)
class Servers:
    lake: str | None = None
    warehouse: str | None = None
    state: str | None = None


def _secret_free(url: str, key: str, env: dict[str, str]) -> str:
    """The URL, or a `${VAR}` reference when it holds a password (the URL goes to .env)."""
    if urlsplit(url).password:
        env[ENV_NAMES[key]] = url
        return "${" + ENV_NAMES[key] + "}"
    return url


def _warehouse_block(url: str, env: dict[str, str]) -> str:
    scheme = urlsplit(url).scheme
    if scheme in ("", "duckdb", "file"):
        path = url.split("://", 1)[1] if "://" in url else url
        return f"warehouse:\n  type: duckdb\n  path: {path}\n"
    if scheme in ("postgres", "postgresql") or scheme.startswith("postgresql+"):
        value = _secret_free(url, "warehouse", env)
        return f"warehouse:\n  type: postgres\n  url: {value}\n  schema_name: public\n"
    if scheme == "redshift":
        value = _secret_free(url, "warehouse", env)
        return (
            "warehouse:\n  type: redshift\n"
            f"  url: {value}\n"
            "  schema_name: public\n"
            "  iam_role: ${REDSHIFT_IAM_ROLE}       # the role Redshift assumes to read staging\n"
            "  staging_url: ${REDSHIFT_STAGING_URL} # s3://bucket/prefix for COPY\n"
        )
    raise ConfigError(
        f"--warehouse {scheme}://...: expected a DuckDB file path, postgresql://... "
        "or redshift://..."
    )


def _replace_block(text: str, key: str, block: str) -> str:
    pattern = re.compile(rf"^{key}:\n(?:[ \t]+.*\n?)*", re.MULTILINE)
    if not pattern.search(text):
        return text.rstrip("\n") + "\n" + block
    return pattern.sub(lambda _: block, text, count=1)


def apply_servers(root: Path, servers: Servers) -> list[str]:
    """Rewrite the project's lake/state/warehouse blocks; returns what changed, for the user."""
    project_file = root / "headwater.yaml"
    text = project_file.read_text(encoding="utf-8")
    env: dict[str, str] = {}
    changed = []
    if servers.lake:
        scheme = urlsplit(servers.lake).scheme
        if scheme not in ("", "file", "s3"):
            raise ConfigError(
                f"--lake {servers.lake!r}: expected a local path or s3://bucket/prefix"
            )
        text = _replace_block(text, "lake", f"lake:\n  url: {servers.lake}\n")
        changed.append(f"lake {servers.lake}")
    if servers.state:
        scheme = urlsplit(servers.state).scheme
        if not (scheme.startswith("sqlite") or scheme.startswith("postgres")):
            raise ConfigError(
                f"--state: expected sqlite:///path or postgresql://..., got {scheme!r}"
            )
        value = _secret_free(servers.state, "state", env)
        text = _replace_block(text, "state", f"state:\n  url: {value}\n")
        changed.append(f"state {value}")
    if servers.warehouse:
        text = _replace_block(text, "warehouse", _warehouse_block(servers.warehouse, env))
        changed.append(f"warehouse {servers.warehouse.split('://')[0]}")
    project_file.write_text(text, encoding="utf-8")
    if env:
        dotenv = root / ".env"
        lines = dotenv.read_text(encoding="utf-8").splitlines() if dotenv.exists() else []
        kept = [ln for ln in lines if ln.split("=", 1)[0] not in env]
        kept += [f"{k}={v}" for k, v in env.items()]
        dotenv.write_text("\n".join(kept) + "\n", encoding="utf-8")
        dotenv.chmod(0o600)
        changed.append(f"passwords kept in {dotenv} as {', '.join(sorted(env))}")
    return changed
