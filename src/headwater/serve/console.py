"""Routes of `headwater serve`: console (see app.py)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
