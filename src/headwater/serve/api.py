"""Routes of `headwater serve`: api (see app.py)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
