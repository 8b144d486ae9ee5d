"""Runs: one pass down extract -> stage -> transform -> check -> load -> record."""
