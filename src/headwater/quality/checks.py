"""Per-model quality checks, compiled to SQL and run by DuckDB over a model's output.

Each check becomes a boolean expression that is true for a failing row.
Evaluation has two phases:

1. `quarantine` checks: failing rows are taken out of the output and written
   to the quarantine zone with the rule and a reason naming the bad value;
2. `warn` and `error` checks run on the rows that remain. A failing `warn`
   check is reported; a failing `error` check stops the model from being
   published (and what depends on it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from headwater.config import (
    AcceptedValuesCheck,
    CheckConfig,
    ExpressionCheck,
    NotNullCheck,
    RangeCheck,
    RelationshipsCheck,
    Severity,
    UniqueCheck,
)
from headwater.quality.pii import quote_ident


def sql_literal(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


@dataclass(frozen=True)
class CompiledCheck:
    name: str
    severity: Severity
    fails: str  # SQL: true when the row fails
    reason: str  # SQL: text explaining the failure of this row


@dataclass
class CheckResult:
    name: str
    severity: Severity
    failed: int

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "severity": self.severity, "failed": self.failed}


@dataclass
class Evaluation:
    kept_sql: str
    quarantined: int
    results: list[CheckResult] = field(default_factory=list)

    @property
    def errors(self) -> list[CheckResult]:
        return [r for r in self.results if r.severity == "error" and r.failed]


def _text(expr: str) -> str:
    return f"coalesce(CAST({expr} AS VARCHAR), 'NULL')"


def compile_check(check: CheckConfig, existing: str | None = None) -> list[CompiledCheck]:
    """SQL for one configured check, with its `message` (a SQL expression) if set."""
    compiled = _compile(check, existing)
    if check.message is None:
        return compiled
    return [CompiledCheck(c.name, c.severity, c.fails, f"({check.message})") for c in compiled]


def _compile(check: CheckConfig, existing: str | None) -> list[CompiledCheck]:
    """SQL for one configured check (a list: `not_null: [a, b]` gives one per column).

    `existing` is a relation holding rows already in the table (incremental
    append), so `unique` also catches keys loaded by earlier runs.
    """
    sev = check.severity
    if isinstance(check, NotNullCheck):
        cols = [check.not_null] if isinstance(check.not_null, str) else check.not_null
        return [
            CompiledCheck(
                check.name or f"not_null({c})",
                sev,
                f"{quote_ident(c)} IS NULL",
                f"'{c} is null'",
            )
            for c in cols
        ]
    if isinstance(check, UniqueCheck):
        cols = [check.unique] if isinstance(check.unique, str) else check.unique
        key = ", ".join(quote_ident(c) for c in cols)
        fails = f"count(*) OVER (PARTITION BY {key}) > 1"
        if existing is not None:
            fails += f" OR ({key}) IN (SELECT ({key}) FROM {existing})"
        shown = " || ', ' || ".join(_text(quote_ident(c)) for c in cols)
        return [
            CompiledCheck(
                check.name or f"unique({', '.join(cols)})",
                sev,
                fails,
                f"'{', '.join(cols)} ' || {shown} || ' is not unique'",
            )
        ]
    if isinstance(check, AcceptedValuesCheck):
        a = check.accepted_values
        col = quote_ident(a.column)
        values = ", ".join(sql_literal(v) for v in a.values)
        shown = ", ".join(str(v) for v in a.values).replace("'", "''")
        return [
            CompiledCheck(
                check.name or f"accepted_values({a.column})",
                sev,
                f"{col} IS NOT NULL AND {col} NOT IN ({values})",
                f"'{a.column} ' || {_text(col)} || ' is not one of [{shown}]'",
            )
        ]
    if isinstance(check, RangeCheck):
        r = check.range
        col = quote_ident(r.column)
        parts = []
        if r.min is not None:
            parts.append(f"{col} < {r.min!r}")
        if r.max is not None:
            parts.append(f"{col} > {r.max!r}")
        bounds = f"[{'' if r.min is None else r.min}, {'' if r.max is None else r.max}]"
        return [
            CompiledCheck(
                check.name or f"range({r.column})",
                sev,
                f"{col} IS NOT NULL AND ({' OR '.join(parts)})",
                f"'{r.column} ' || {_text(col)} || ' is outside {bounds}'",
            )
        ]
    if isinstance(check, ExpressionCheck):
        expr = check.expression
        return [
            CompiledCheck(
                check.name or f"expression({expr})",
                sev,
                f"NOT coalesce(({expr}), FALSE)",
                "'expression is false: " + expr.replace("'", "''") + "'",
            )
        ]
    assert isinstance(check, RelationshipsCheck)
    rel = check.relationships
    col = quote_ident(rel.column)
    target = f"{quote_ident(rel.to)}.{quote_ident(rel.field)}"
    return [
        CompiledCheck(
            check.name or f"relationships({rel.column} -> {rel.to}.{rel.field})",
            sev,
            f"{col} IS NOT NULL AND {col} NOT IN "
            f"(SELECT {quote_ident(rel.field)} FROM {quote_ident(rel.to)} "
            f"WHERE {quote_ident(rel.field)} IS NOT NULL)",
            f"'{rel.column} ' || {_text(col)} || ' has no match in {target}'",
        )
    ]


def evaluate(
    conn: duckdb.DuckDBPyConnection,
    relation: str,
    checks: list[CompiledCheck],
    write_quarantine: str | None,
    quarantine_columns: str,
    prefix: str = "__hw",
) -> Evaluation:
    """Run checks over `relation` (a table or view name) on `conn`.

    Rows failing quarantine checks are copied, as quarantine records built by
    the `quarantine_columns` select list, to the Parquet file
    `write_quarantine` (when given) and left out of `kept_sql`.
    """
    flagged, kept_name = f"{prefix}_flagged", f"{prefix}_kept"
    results: list[CheckResult] = []
    quarantine = [c for c in checks if c.severity == "quarantine"]
    others = [c for c in checks if c.severity != "quarantine"]
    kept = relation
    quarantined = 0
    if quarantine:
        flags = ", ".join(f"({c.fails}) AS __hw_f{i}" for i, c in enumerate(quarantine))
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE {flagged} AS SELECT *, {flags} FROM {relation}"
        ).fetchall()
        any_fail = " OR ".join(f"__hw_f{i}" for i in range(len(quarantine)))
        sums = ", ".join(f"count(*) FILTER (WHERE __hw_f{i})" for i in range(len(quarantine)))
        counts = conn.execute(
            f"SELECT count(*) FILTER (WHERE {any_fail}), {sums} FROM {flagged}"
        ).fetchall()[0]
        quarantined = int(counts[0])
        results += [
            CheckResult(c.name, c.severity, int(n))
            for c, n in zip(quarantine, counts[1:], strict=True)
        ]
        rule = (
            "CASE "
            + " ".join(
                f"WHEN __hw_f{i} THEN {sql_literal(c.name)}" for i, c in enumerate(quarantine)
            )
            + " END"
        )
        reason = (
            "CASE "
            + " ".join(f"WHEN __hw_f{i} THEN {c.reason}" for i, c in enumerate(quarantine))
            + " END"
        )
        if quarantined and write_quarantine is not None:
            columns = quarantine_columns.replace("{rule}", rule).replace("{reason}", reason)
            conn.execute(
                f"COPY (SELECT {columns} FROM {flagged} WHERE {any_fail}) "
                f"TO '{write_quarantine}' (FORMAT parquet, COMPRESSION zstd)"
            ).fetchall()
        drop = ", ".join(f"__hw_f{i}" for i in range(len(quarantine)))
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE {kept_name} AS SELECT * EXCLUDE ({drop}) "
            f"FROM {flagged} WHERE NOT ({any_fail})"
        ).fetchall()
        conn.execute(f"DROP TABLE {flagged}").fetchall()
        kept = kept_name
    if others:
        flags = ", ".join(f"({c.fails}) AS __hw_f{i}" for i, c in enumerate(others))
        sums = ", ".join(f"count(*) FILTER (WHERE __hw_f{i})" for i in range(len(others)))
        counts = conn.execute(f"SELECT {sums} FROM (SELECT {flags} FROM {kept})").fetchall()[0]
        results += [
            CheckResult(c.name, c.severity, int(n)) for c, n in zip(others, counts, strict=True)
        ]
    return Evaluation(kept_sql=kept, quarantined=quarantined, results=results)
