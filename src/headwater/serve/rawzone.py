"""The raw zone as relations: `raw.<source>`, read in place from what sources delivered.

One relation per `files` source (`raw.branch_files`) and one per table of a
`sql` source (`raw.<prefix><table>`, the name of the processed table it
feeds). The files are the ones the file ledger records as landed (a crash can
leave an object no ledger row names; it is never read). Every relation starts
with four columns that are the same for all rows of a file:

| column | type | value |
|---|---|---|
| `_file` | VARCHAR | the file's name relative to the source folder (`<table>.parquet` for sql) |
| `_run` | BIGINT | the run that landed it (`run=<id>` in its key) |
| `_landed_at` | TIMESTAMP | when it was landed (UTC, from the ledger) |
| `_file_date` | DATE | a date in its name (`2024-01-15`, `20240115`, `15-01-2024`), else NULL |

then the data, read by DuckDB: CSV with the source's `csv` options (every
column VARCHAR, as delivered), `jsonl` with `read_json` (nested objects stay
STRUCTs), sql extracts with `read_parquet`, and `log` files through the
source's own parser (in memory, then queried). Predicates on the four
columns select files before anything is read (see `headwater.serve.scan`).
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from dataclasses import dataclass, replace
from functools import partial
from typing import Literal

import duckdb
import pyarrow as pa
import sqlalchemy as sa

from headwater.config import FilesSource, SqlSource
from headwater.errors import LakeError
from headwater.lake.store import Store
from headwater.project import Project
from headwater.sql import literal, quote_ident
from headwater.state.db import StateDB, files

SCHEMA = "raw"
PER_FILE: dict[str, str] = {
    "_file": "VARCHAR",
    "_run": "BIGINT",
    "_landed_at": "TIMESTAMP",
    "_file_date": "DATE",
}
URI = "__hw_uri"  # the column DuckDB's readers name each row's file in
RUN = re.compile(r"/run=(\d+)/")
DATES = (  # (regex, order of year, month, day groups)
    (re.compile(r"(?<!\d)(\d{4})[-_.]?(\d{2})[-_.]?(\d{2})(?!\d)"), (1, 2, 3)),
    (re.compile(r"(?<!\d)(\d{4})/(\d{2})/(\d{2})(?!\d)"), (1, 2, 3)),
    (re.compile(r"(?<!\d)(\d{2})[-_.](\d{2})[-_.](\d{4})(?!\d)"), (3, 2, 1)),
)
Kind = Literal["csv", "jsonl", "log", "parquet"]
# Python codec name -> DuckDB's name, for the encodings DuckDB reads without an extension.
DUCKDB_ENCODINGS = {
    "utf-8": "utf-8",
    "utf-8-sig": "utf-8",
    "utf-16": "utf-16",
    "iso8859-1": "latin-1",
}


@dataclass(frozen=True)
class RawFile:
    key: str
    uri: str
    name: str
    content_hash: str
    size: int
    run: int
    landed_at: dt.datetime
    file_date: dt.date | None


@dataclass(frozen=True)
class RawRelation:
    name: str  # in schema `raw`
    source: str
    kind: Kind
    files: tuple[RawFile, ...]  # what the view reads (all landed files, or those kept)

    def keep(self, uris: set[str]) -> RawRelation:
        return replace(self, files=tuple(f for f in self.files if f.uri in uris))


def file_date(name: str) -> dt.date | None:
    """The first date written in a file name (years 1970 to 2100), if any."""
    for pattern, (y, m, d) in DATES:
        for match in pattern.finditer(name):
            try:
                day = dt.date(int(match.group(y)), int(match.group(m)), int(match.group(d)))
            except ValueError:
                continue
            if 1970 <= day.year <= 2100:
                return day
    return None


def relations(project: Project, store: Store) -> dict[str, RawRelation]:
    """Every raw relation of the project, by name, with its landed files."""
    landed: dict[str, list[RawFile]] = {}
    if StateDB.exists(project.state_url):
        db = StateDB.open(project.state_url, create=False)
        try:
            query = sa.select(
                files.c.source,
                files.c.name,
                files.c.content_hash,
                files.c.size,
                files.c.raw_key,
                files.c.landed_at,
            ).order_by(files.c.file_id)
            with db.engine.connect() as conn:
                rows = conn.execute(query).all()
        finally:
            db.engine.dispose()
        for source, name, sha, size, key, landed_at in rows:
            run = RUN.search("/" + key)
            landed.setdefault(source, []).append(
                RawFile(
                    key=key,
                    uri=store.uri(key),
                    name=name,
                    content_hash=sha,
                    size=int(size),
                    run=int(run.group(1)) if run else 0,
                    landed_at=landed_at,
                    file_date=file_date(name),
                )
            )
    found: dict[str, RawRelation] = {}
    for source, config in project.config.sources.items():
        mine = landed.get(source, [])
        if isinstance(config, FilesSource):
            kind: Kind = "csv" if config.format == "csv" else config.format
            found[source] = RawRelation(source, source, kind, tuple(mine))
        elif isinstance(config, SqlSource):
            tables: dict[str, list[RawFile]] = {}
            for f in mine:
                tables.setdefault(f.name.removesuffix(".parquet"), []).append(f)
            for table, members in tables.items():
                name = f"{config.prefix}{table}"
                found[name] = RawRelation(name, source, "parquet", tuple(members))
    return found


def _meta(rel: RawRelation) -> str:
    """The per-file columns of the files read, as an inline table keyed by URI and hash."""
    if not rel.files:
        cols = ", ".join(f"NULL::{t} AS {c}" for c, t in PER_FILE.items())
        return f"(SELECT NULL::VARCHAR AS uri, NULL::VARCHAR AS hash, {cols} WHERE false)"
    rows = ", ".join(
        "("
        + ", ".join(
            [
                literal(f.uri),
                literal(f.content_hash),
                literal(f.name),
                str(f.run),
                literal(f.landed_at.isoformat(sep=" ")),
                "NULL" if f.file_date is None else literal(f.file_date.isoformat()),
            ]
        )
        + ")"
        for f in rel.files
    )
    return (
        "(SELECT uri, hash, f::VARCHAR AS _file, r::BIGINT AS _run, "
        "l::TIMESTAMP AS _landed_at, d::DATE AS _file_date "
        f"FROM (VALUES {rows}) v(uri, hash, f, r, l, d))"
    )


def meta_sql(rel: RawRelation) -> str:
    """A query of the per-file columns plus `uri`, one row per file read (for pruning)."""
    return f"SELECT * FROM {_meta(rel)}"


def _uris(rel: RawRelation) -> str:
    return "[" + ", ".join(literal(f.uri) for f in rel.files) + "]"


def _encoding(rel: RawRelation, value: str, what: str) -> str:
    mapped = DUCKDB_ENCODINGS.get(codecs.lookup(value).name)
    if mapped is None:
        raise LakeError(
            f"raw.{rel.name}: DuckDB reads {what} in UTF-8, UTF-16 or Latin-1 only, not "
            f"{value!r}; query the processed table {rel.name!r} instead"
        )
    return mapped


def _csv_read(rel: RawRelation, config: FilesSource) -> tuple[str, str]:
    """read_csv over the files, and a WHERE for header lines (`header: auto`)."""
    csv = config.csv
    opts = [
        f"delim = {literal(csv.delimiter)}",
        f"quote = {literal(csv.quote)}",
        f"escape = {literal(csv.quote)}",
        f"encoding = {literal(_encoding(rel, csv.encoding, 'CSV'))}",
        f"filename = {literal(URI)}",
        "hive_partitioning = false",
        "null_padding = true",
        "strict_mode = false",
    ]
    where = ""
    if csv.columns is None:
        opts += ["header = true", "all_varchar = true", "union_by_name = true"]
        opts.append("normalize_names = true")
    else:
        types = ", ".join(f"{literal(c)}: 'VARCHAR'" for c in csv.columns)
        opts += [f"columns = {{{types}}}", "auto_detect = false"]
        opts.append(f"header = {'true' if csv.header is True else 'false'}")
        if csv.header == "auto":
            # The source's rule, simplified: a line with no digit in any field is a header.
            fields = ", ".join(f"coalesce(r.{quote_ident(c)}, '')" for c in csv.columns)
            where = f" WHERE regexp_matches(concat({fields}), '[0-9]')"
    return f"read_csv({_uris(rel)}, {', '.join(opts)})", where


def _columns(conn: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    rows = conn.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    return [str(r[0]) for r in rows]


def create_view(
    conn: duckdb.DuckDBPyConnection, project: Project, store: Store, rel: RawRelation
) -> None:
    """`raw.<name>` over the relation's files (those kept by pruning)."""
    config = project.config.sources[rel.source]
    per_file = ", ".join(f"m.{c}" for c in PER_FILE)
    view = f"{SCHEMA}.{quote_ident(rel.name)}"
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}").fetchall()
    if rel.kind == "log":
        assert isinstance(config, FilesSource)
        table = parse_logs(project, store, rel, config)
        hidden = f"__hw_raw_{rel.name}"
        conn.register(hidden, table)
        conn.execute(
            f"CREATE VIEW {view} AS SELECT {per_file}, r.* EXCLUDE (_file, _file_hash) "
            f"FROM {quote_ident(hidden)} r JOIN {_meta(rel)} m ON r._file_hash = m.hash"
        ).fetchall()
        return
    if not rel.files:
        empty = [f"NULL::{t} AS {c}" for c, t in PER_FILE.items()]
        if isinstance(config, FilesSource) and config.format == "csv" and config.csv.columns:
            empty += [f"NULL::VARCHAR AS {quote_ident(c)}" for c in config.csv.columns]
        conn.execute(f"CREATE VIEW {view} AS SELECT {', '.join(empty)} WHERE false").fetchall()
        return
    where = ""
    data = "r.* EXCLUDE (" + URI + ")"
    if rel.kind == "csv":
        assert isinstance(config, FilesSource)
        read, where = _csv_read(rel, config)
        if config.csv.trim:
            names = config.csv.columns or [c for c in _columns(conn, read) if c != URI]
            data = ", ".join(f"trim(r.{quote_ident(c)}) AS {quote_ident(c)}" for c in names)
    elif rel.kind == "jsonl":
        assert isinstance(config, FilesSource)
        options = config.text_options
        if options is not None:
            _encoding(rel, options.encoding, "JSON")
        read = (
            f"read_json({_uris(rel)}, format = 'newline_delimited', union_by_name = true, "
            f"ignore_errors = true, filename = {literal(URI)}, hive_partitioning = false)"
        )
    else:
        read = (
            f"read_parquet({_uris(rel)}, union_by_name = true, filename = {literal(URI)}, "
            "hive_partitioning = false)"
        )
    conn.execute(
        f"CREATE VIEW {view} AS SELECT {per_file}, {data} FROM {read} r "
        f"JOIN {_meta(rel)} m ON r.{URI} = m.uri{where}"
    ).fetchall()


def parse_logs(project: Project, store: Store, rel: RawRelation, config: FilesSource) -> pa.Table:
    """The relation's log files through the source's parser, personal fields included.

    Rows the parser rejects are left out (they are in the quarantine zone).
    """
    from headwater.sources.base import ParsedPart, RawInput
    from headwater.sources.files import FilesSourceReader

    reader = FilesSourceReader(
        rel.source, config.model_copy(update={"pii": {}}), project.root, project.config.lake.s3
    )
    inputs = [
        RawInput(
            f.name, f.content_hash, f.size, partial(_read, store, f.key), partial(store.open, f.key)
        )
        for f in rel.files
    ]

    def rows(part: ParsedPart) -> pa.Table:
        return part.rows

    tables = list(reader.parse(inputs, rows)) if inputs else []
    if not tables:
        return pa.table(
            {"_file": pa.array([], pa.string()), "_file_hash": pa.array([], pa.string())}
        )
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise LakeError(
            f"raw.{rel.name}: the parsed files disagree on a field's type: {exc}"
        ) from None


def _read(store: Store, key: str, limit: int = -1) -> bytes:
    with store.open(key) as handle:
        return handle.read(limit)
