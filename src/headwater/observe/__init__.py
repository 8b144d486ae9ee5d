"""Observing runs: status, freshness, counts (metrics and alerts come later)."""
