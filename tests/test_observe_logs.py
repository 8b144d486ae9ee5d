"""Logs: JSON lines with the run id, readable terminal lines, secrets never written."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from headwater.config import ProjectConfig
from headwater.observe import logs


def test_json_lines_carry_the_run_id_and_never_a_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ProjectConfig.model_validate(
        {
            "name": "shop",
            "warehouse": {"type": "postgres", "url": "postgresql://loader:s3cr%40t@db/x"},
            "alerts": {"webhooks": [{"url": "https://hooks.example.com/T000/B000/XYZSECRET"}]},
        }
    )
    secrets = logs.secrets_of(config)
    assert "s3cr@t" in secrets and "https://hooks.example.com/T000/B000/XYZSECRET" in secrets
    log_file = tmp_path / "logs" / "hw.jsonl"
    logs.configure(log_file, secrets=secrets, terminal=True)
    log = logging.getLogger("headwater.test")
    log.info("before any run")
    with logs.bind_run(42, "shop"):
        log.warning("cannot reach postgresql://loader:s3cr%40t@db/x (password s3cr@t)")
        log.info("posting to https://hooks.example.com/T000/B000/XYZSECRET")
        log.info("other url mysql://root:hunter22@h/db?password=abc&x=1")
    logs.reset()
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [r["run_id"] for r in records] == [None, 42, 42, 42]
    assert [r["project"] for r in records] == [None, "shop", "shop", "shop"]
    assert records[1]["level"] == "WARNING" and records[1]["logger"] == "headwater.test"
    text = log_file.read_text() + capsys.readouterr().err
    for secret in ("s3cr%40t", "s3cr@t", "XYZSECRET", "hunter22", "password=abc"):
        assert secret not in text
    assert "cannot reach *** (password ***)" in text and "[shop run 42]" in text
    assert "mysql://root:***@h/db?password=***&x=1" in text


def test_reset_restores_propagation() -> None:
    logs.configure(None, terminal=False)
    assert not logging.getLogger("headwater").propagate
    logs.reset()
    assert logging.getLogger("headwater").propagate
    assert not logging.getLogger("headwater").handlers
