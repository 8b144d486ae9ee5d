"""Serving results: read-only SQL over the warehouse or the lake (the web app comes later)."""
