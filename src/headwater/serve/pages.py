"""Routes of `headwater serve`: pages (see app.py)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
