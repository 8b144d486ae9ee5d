"""Routes of `headwater serve`: dashboards_web (see app.py)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
