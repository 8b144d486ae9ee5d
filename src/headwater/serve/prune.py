"""What a query reads, and which of its predicates let whole files be skipped.

`analyse(sql)` parses one query (DuckDB dialect) with sqlglot and finds:

- every relation it names (`transactions`, `main.transactions`, `raw.branch_files`),
  and for each place one is read, the *candidate predicates*: top-level `AND`
  terms of the `WHERE` of the `SELECT` that reads it, and of the `ON` of an
  inner join (or of the left, semi or anti join that joins it), of the simple
  form `column op constant` (`=`, `<`, `<=`, `>`, `>=`, `BETWEEN`, `IN (...)`,
  `LIKE`), the column possibly cast to `DATE`;
- the files it reads directly (`read_csv('s3://...')`, `FROM 'data/*.parquet'`).

Every such predicate is false for a NULL column, so a row of the relation
that fails it cannot reach the result, whatever the joins around it: a file
none of whose rows can pass may be left out of the relation. A relation named
more than once keeps the files any of its readings may need (the readings'
predicates are OR-ed); one reading without predicates keeps every file; a
relation read somewhere this module does not follow (a nested join, a
`DESCRIBE`) is not pruned at all.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import traverse_scope

DIALECT = "duckdb"

# Table functions that read files, by the first argument (a path, a glob, or a list).
FILE_FUNCTIONS = frozenset(
    {
        "read_csv",
        "read_csv_auto",
        "read_parquet",
        "parquet_scan",
        "read_json",
        "read_json_auto",
        "read_ndjson",
        "read_ndjson_auto",
        "read_json_objects",
        "read_ndjson_objects",
        "read_text",
        "read_blob",
    }
)
# `FROM 'data/x.csv'`: DuckDB reads a quoted name that looks like a file.
FILE_NAME = re.compile(r"(/|\.(csv|tsv|txt|parquet|json|jsonl|ndjson)(\.gz|\.zst)?$)", re.I)
VOLATILE = frozenset({"random", "rand", "uuid", "gen_random_uuid", "nextval", "setseed"})

Key = tuple[str, str]  # (schema, name), lower case; schema "main" for the processed tables


@dataclass(frozen=True)
class Pred:
    """`column op constant`: `low`/`high` bound the column (None: open), `values` for IN.

    `sql` is the predicate as written, without table qualifiers, to evaluate it
    exactly; the bounds are its inclusive relaxation (`>` as `>=`), to skip files.
    """

    qualifier: str  # the column's table qualifier as written ("" when unqualified)
    column: str
    as_date: bool  # the column is cast to DATE
    low: exp.Expression | None = None
    high: exp.Expression | None = None
    values: tuple[exp.Expression, ...] = ()
    prefix: str | None = None  # LIKE 'prefix%'
    sql: str = ""

    def constants(self) -> list[exp.Expression]:
        return [e for e in (self.low, self.high, *self.values) if e is not None]


@dataclass
class Ref:
    """One place the query reads a relation."""

    alias: str
    sole: bool  # the only source of its SELECT: unqualified columns are its own
    candidates: list[Pred] = field(default_factory=list)

    def predicates(self, columns: set[str]) -> list[Pred]:
        """The candidates about this relation's columns."""
        mine = self.alias.lower()
        return [
            p
            for p in self.candidates
            if p.column in columns and (p.qualifier == mine or (not p.qualifier and self.sole))
        ]


@dataclass(frozen=True)
class DirectRead:
    """A table function (or quoted file name) reading files; `patterns` None when not literal."""

    text: str
    patterns: tuple[str, ...] | None


@dataclass
class Analysis:
    named: set[Key] = field(default_factory=set)  # every relation named
    refs: dict[Key, list[Ref]] = field(default_factory=dict)  # the readings followed
    nodes: dict[Key, int] = field(default_factory=dict)  # how many times each is named
    ctes: set[str] = field(default_factory=set)
    reads: list[DirectRead] = field(default_factory=list)
    file_names: dict[Key, str] = field(default_factory=dict)  # quoted names that look like files
    error: str | None = None  # sqlglot could not parse the query

    def prunable(self, key: Key) -> list[Ref] | None:
        """The readings of `key`, if every one of them was followed (else None)."""
        refs = self.refs.get(key, [])
        if key[1] in self.ctes or len(refs) != self.nodes.get(key, 0):
            return None
        return refs


def key_of(table: exp.Table) -> Key:
    return ((table.db or "main").lower(), table.name.lower())


EXPLAIN = re.compile(r"^\s*explain(\s+analyze)?\s+", re.IGNORECASE)


def analyse(sql: str) -> Analysis:
    """What `sql` reads; `EXPLAIN [ANALYZE] q` reads what `q` does."""
    parser_log = logging.getLogger("sqlglot")
    level = parser_log.level
    parser_log.setLevel(logging.ERROR)  # no "falling back to a Command" warnings
    try:
        tree = sqlglot.parse_one(EXPLAIN.sub("", sql, count=1), read=DIALECT)
    except SqlglotError as exc:
        return Analysis(error=str(exc).splitlines()[0])
    finally:
        parser_log.setLevel(level)
    if isinstance(tree, exp.Command):
        return Analysis(error=f"{tree.name} is not understood by sqlglot")
    found = Analysis()
    found.ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Func):
            found.reads.append(_direct(table.this))
        elif isinstance(table.this, exp.Identifier):
            key = key_of(table)
            found.named.add(key)
            found.nodes[key] = found.nodes.get(key, 0) + 1
            if table.this.quoted and not table.db and FILE_NAME.search(table.name):
                found.file_names[key] = table.name
    try:
        scopes = traverse_scope(tree)
    except SqlglotError:
        scopes = []
    for scope in scopes:
        select = scope.expression
        if not isinstance(select, exp.Select):
            continue
        sole = len(scope.sources) == 1
        where = select.args.get("where")
        common = _preds(where.this) if where is not None else []
        joined: dict[int, list[Pred]] = {}
        for join in select.args.get("joins") or []:
            on = join.args.get("on")
            if on is None or join.method or join.side not in ("", "LEFT"):
                continue
            if join.kind not in ("", "INNER", "SEMI", "ANTI"):
                continue
            if join.side == "" and join.kind in ("", "INNER"):
                common += _preds(on)  # an inner join's ON filters like WHERE
            elif isinstance(join.this, exp.Table):
                joined[id(join.this)] = _preds(on)  # filters the table it joins only
        for alias, source in scope.sources.items():
            if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
                preds = common + joined.get(id(source), [])
                ref = Ref(alias=alias or source.name, sole=sole, candidates=preds)
                found.refs.setdefault(key_of(source), []).append(ref)
    return found


def _direct(func: exp.Func) -> DirectRead:
    name = func.name.lower() if isinstance(func, exp.Anonymous) else func.sql_name().lower()
    text = func.sql(dialect=DIALECT)
    if text.lower().startswith(name):
        text = name + text[len(name) :]  # `read_csv(...)`, as written in DuckDB's docs
    if name not in FILE_FUNCTIONS:
        return DirectRead(text, ())  # reads no files (range, duckdb_tables(), ...)
    if isinstance(func, exp.Anonymous) or not isinstance(func.this, exp.Expression):
        first = func.expressions[0] if func.expressions else None
    else:
        first = func.this
    return DirectRead(text, _strings(first))


def _strings(node: exp.Expression | None) -> tuple[str, ...] | None:
    if isinstance(node, exp.Literal) and node.is_string:
        return (node.this,)
    if isinstance(node, exp.Array) and all(
        isinstance(e, exp.Literal) and e.is_string for e in node.expressions
    ):
        return tuple(e.this for e in node.expressions)
    return None


def _conjuncts(node: exp.Expr) -> list[exp.Expr]:
    out: list[exp.Expr] = []
    parts: list[exp.Expr] = list(node.flatten()) if isinstance(node, exp.And) else [node]
    for part in parts:
        inner = part.unnest() if isinstance(part, exp.Paren) else part
        if isinstance(inner, exp.And):
            out += _conjuncts(inner)
        else:
            out.append(inner)
    return out


def _preds(node: exp.Expr) -> list[Pred]:
    return [p for c in _conjuncts(node) if (p := _pred(c)) is not None]


FLIP: dict[type[exp.Expr], type[exp.Expr]] = {
    exp.GT: exp.LT,
    exp.GTE: exp.LTE,
    exp.LT: exp.GT,
    exp.LTE: exp.GTE,
    exp.EQ: exp.EQ,
}


def _pred(node: exp.Expr) -> Pred | None:
    """The conjunct as a `Pred`, if it is `column op constant` (either way round)."""
    if type(node) in FLIP:
        left, right = node.this, node.expression
        kind: type[exp.Expr] = type(node)
        if _column(left) is None and _column(right) is not None:
            left, right, kind = right, left, FLIP[kind]
        col = _column(left)
        if col is None or not constant(right):
            return None
        low = right if kind in (exp.GT, exp.GTE, exp.EQ) else None
        high = right if kind in (exp.LT, exp.LTE, exp.EQ) else None
        return _make(node, col, low=low, high=high)
    if isinstance(node, exp.Between) and not node.args.get("symmetric"):
        col = _column(node.this)
        low, high = node.args.get("low"), node.args.get("high")
        if col is None or not (constant(low) and constant(high)):
            return None
        return _make(node, col, low=low, high=high)
    if isinstance(node, exp.In) and not node.args.get("query") and not node.args.get("unnest"):
        col = _column(node.this)
        values = tuple(node.expressions)
        if col is None or not values or not all(constant(v) for v in values):
            return None
        return _make(node, col, values=values)
    if isinstance(node, exp.Like) and not node.args.get("escape"):
        col = _column(node.this)
        pattern = node.expression
        if col is None or not (isinstance(pattern, exp.Literal) and pattern.is_string):
            return None
        head = re.match(r"[^%_\\]*", str(pattern.this))
        # The text before the first wildcard (or escape) starts every match.
        prefix = head.group(0) if head is not None and head.group(0) else None
        return _make(node, col, prefix=prefix)
    return None


def _column(node: exp.Expression | None) -> tuple[exp.Column, bool] | None:
    """A plain column, or one cast to DATE."""
    if isinstance(node, exp.Column) and isinstance(node.this, exp.Identifier):
        return node, False
    if (
        isinstance(node, exp.Cast | exp.TryCast)
        and isinstance(node.this, exp.Column)
        and isinstance(node.this.this, exp.Identifier)
        and node.to.is_type(exp.DataType.Type.DATE)
    ):
        return node.this, True
    return None


def _make(node: exp.Expr, col: tuple[exp.Column, bool], **parts: object) -> Pred:
    column, as_date = col
    bare = node.copy()
    for c in bare.find_all(exp.Column):
        c.set("table", None)
        c.set("db", None)
        c.set("catalog", None)
    return Pred(
        qualifier=column.table.lower(),
        column=column.name.lower(),
        as_date=as_date,
        sql=bare.sql(dialect=DIALECT),
        **parts,  # type: ignore[arg-type]
    )


def constant(node: exp.Expression | None) -> bool:
    """Whether an expression has one value before the query runs (no columns, no rows)."""
    if node is None:
        return False
    for sub in node.walk():
        if isinstance(sub, exp.Column | exp.Query | exp.Subquery | exp.Star | exp.Placeholder):
            return False
        if isinstance(sub, exp.AggFunc | exp.Window | exp.Parameter):
            return False
        if isinstance(sub, exp.Func) and (
            (sub.name if isinstance(sub, exp.Anonymous) else sub.sql_name()).lower() in VOLATILE
        ):
            return False
    return True
