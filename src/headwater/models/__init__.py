"""Models: SQL files in DuckDB's dialect, their settings, and the DAG between them."""
