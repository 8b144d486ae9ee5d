"""Access control of `headwater serve`: open on 127.0.0.1, a token anywhere else."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI, token: str | None) -> None:
    """Require `token` on every route but /health, /login and /static (to be written)."""
    return
