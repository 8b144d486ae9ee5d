"""`headwater init --lake/--warehouse/--state` and the server settings of the project file."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.config import (
    PostgresWarehouseConfig,
    RedshiftWarehouseConfig,
    load_project_config,
)
from headwater.errors import ConfigError
from headwater.project import Project
from tests.fixtures.tiny import cli


def test_init_points_a_project_at_servers_without_writing_passwords(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    result = cli(
        "init", str(root), "--lake", "s3://lake/shop",
        "--state", "postgresql://hw:pa55word@db:5432/state",
        "--warehouse", "postgresql://loader:s3cret@db:5432/analytics",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "pa55word" not in result.output and "s3cret" not in result.output
    text = (root / "headwater.yaml").read_text()
    assert "pa55word" not in text and "s3cret" not in text
    env = (root / ".env").read_text()
    assert "HEADWATER_STATE_URL=postgresql://hw:pa55word@db:5432/state" in env
    assert "HEADWATER_WAREHOUSE_URL=postgresql://loader:s3cret@db:5432/analytics" in env
    assert "HEADWATER_PII_SECRET=" in env
    assert (root / ".env").stat().st_mode & 0o077 == 0
    config = Project.load(root).config
    assert config.lake.url == "s3://lake/shop"
    assert config.state.url == "postgresql://hw:pa55word@db:5432/state"
    assert isinstance(config.warehouse, PostgresWarehouseConfig)
    assert config.warehouse.url.get_secret_value().endswith("@db:5432/analytics")
    assert "s3cret" not in repr(config)
    assert Project.load(root).state_url.startswith("postgresql+psycopg://")


def test_init_redshift_leaves_role_and_staging_to_the_environment(tmp_path: Path) -> None:
    root = tmp_path / "aws"
    result = cli("init", str(root), "--warehouse", "redshift://u:p@cluster:5439/dev")
    assert result.exit_code == 0, result.output
    with pytest.raises(ConfigError, match="REDSHIFT_IAM_ROLE"):
        Project.load(root)
    env = {
        "REDSHIFT_IAM_ROLE": "arn:aws:iam::1:role/r",
        "REDSHIFT_STAGING_URL": "s3://b/stage",
        "HEADWATER_PII_SECRET": "x",
    }
    config = load_project_config(root / "headwater.yaml", env)
    assert isinstance(config.warehouse, RedshiftWarehouseConfig)
    assert config.warehouse.staging_url == "s3://b/stage"


def test_init_keeps_the_embedded_defaults_and_a_duckdb_path(tmp_path: Path) -> None:
    root = tmp_path / "local"
    assert cli("init", str(root), "--warehouse", "wh/sales.duckdb").exit_code == 0
    config = Project.load(root).config
    assert config.warehouse.type == "duckdb"
    assert Project.load(root).warehouse_path == root / "wh" / "sales.duckdb"
    assert config.lake.url == ".headwater/lake"


@pytest.mark.parametrize(
    ("option", "value"),
    [("--lake", "ftp://host/x"), ("--warehouse", "mysql://h/db"), ("--state", "mysql://h/db")],
)
def test_init_refuses_unknown_kinds_of_url(tmp_path: Path, option: str, value: str) -> None:
    result = cli("init", str(tmp_path / "p"), option, value)
    assert result.exit_code == 2
    assert option in result.output or "lake" in result.output


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("lake: {url: 'gs://b/x'}", "lake scheme 'gs' is not supported"),
        ("lake: {url: 's3://'}", "needs a bucket"),
        ("lake: {url: s3://b/x, s3: {kms_key_id: k}}", "needs sse: aws:kms"),
        ("state: {url: 'mysql://h/db'}", "expected sqlite:///path/state.db or postgresql://"),
        ("warehouse: {type: postgres}", "warehouse.url"),
        ("warehouse: {type: oracle}", "warehouse"),
        (
            "warehouse: {type: redshift, url: 'redshift://u:TOPSECRET@h/db', iam_role: r, "
            "staging_url: 'http://x'}",
            "staging_url",
        ),
    ],
)
def test_server_settings_are_validated(tmp_path: Path, yaml: str, message: str) -> None:
    (tmp_path / "headwater.yaml").write_text(f"name: t\n{yaml}\n")
    with pytest.raises(ConfigError, match=message) as info:
        load_project_config(tmp_path / "headwater.yaml", {})
    assert "TOPSECRET" not in str(info.value)
