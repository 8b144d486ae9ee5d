"""PII policies, applied before anything reaches the processed zone.

- `drop`: the column is removed.
- `hash`: keyed HMAC-SHA256 of the value (normalised first: trimmed, spaces
  collapsed, lower case, unless `normalize: false`), as 16 hex characters.
  The same person gets the same key in every file, so returning customers
  can be counted, but nobody without the secret can recompute it.
- `mask`: every character but the last `keep_last` replaced by `*`.

The HMAC runs inside DuckDB (two SHA-256 passes over the value), vectorised,
once per distinct value: `scrub_arrow` (staging on a local lake) hashes an
Arrow dictionary, remembering the hashes for the batch's next parts (`HashMemo`);
`scrub_query` (everywhere else) joins distinct values back.
The key pads live in a temporary table, bound as parameters, never spliced
into SQL text, so no query or error message can show the secret.

The leak check keeps a bounded sample of the protected values a batch read
and fails the run if any of them, or the name of a dropped column, shows up
in a table written downstream.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.config import PiiPolicy
from headwater.errors import PiiLeakError
from headwater.sql import quote_ident

HASH_HEX_CHARS = 16
SAMPLE_PER_COLUMN = 100_000
MIN_VALUE_LENGTH = 4
KEY_TABLE = "_hw_pii_key"
VALUES_TABLE = "_hw_pii_values"
MEMO_LIMIT = 100_000  # hashed values remembered per column and batch while staging (a set
# this size is looked up in ~5 ms a part; a column of mostly new values gains nothing past it)


def install_key(conn: duckdb.DuckDBPyConnection, secret: str) -> None:
    """Make `hw_hmac(text)` available on this connection."""
    key = secret.encode("utf-8")
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    ipad = bytes(b ^ 0x36 for b in key)
    opad = bytes(b ^ 0x5C for b in key)
    # Not TEMP: every cursor of an in-memory engine (one per worker thread) sees them.
    conn.execute(f"CREATE OR REPLACE TABLE {KEY_TABLE} (ipad BLOB, opad BLOB)").fetchall()
    conn.execute(f"INSERT INTO {KEY_TABLE} VALUES (?, ?)", [ipad, opad]).fetchall()
    conn.execute(
        "CREATE OR REPLACE MACRO hw_hmac(v) AS "
        f"substr(sha256((SELECT opad FROM {KEY_TABLE}) || unhex(sha256("
        f"(SELECT ipad FROM {KEY_TABLE}) || encode(v)))), 1, {HASH_HEX_CHARS})"
    ).fetchall()


def hmac_hex(secret: str, value: str) -> str:
    """The same keyed hash in Python, for tests and one-off lookups."""
    import hmac

    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()[:HASH_HEX_CHARS]


def normalise_sql(expr: str) -> str:
    return f"lower(trim(regexp_replace({expr}, '\\s+', ' ', 'g')))"


def policy_sql(column: str, policy: PiiPolicy) -> str | None:
    """The SQL expression replacing a protected column, or None to drop it."""
    col = quote_ident(column)
    if policy.policy == "drop":
        return None
    if policy.policy == "hash":
        value = normalise_sql(col) if policy.normalize else col
        return f"CASE WHEN nullif(trim({col}), '') IS NULL THEN NULL ELSE hw_hmac({value}) END"
    keep = policy.keep_last
    tail = f"right({col}, {keep})" if keep else "''"
    masked = f"repeat('*', greatest(length({col}) - {keep}, 0)) || {tail}"
    return f"CASE WHEN {col} IS NULL THEN NULL ELSE {masked} END"


def scrub_query(
    relation: str, keep: list[str], columns: list[str], policies: Mapping[str, PiiPolicy]
) -> str:
    """SELECT of `keep` columns plus `columns` with every policy applied, from `relation`.

    Hashing runs once per distinct value (names repeat: returning customers),
    joined back to the rows; masking is cheap and runs per row.
    """
    ctes = []
    joins = []
    out = [f"r.{quote_ident(c)}" for c in keep]
    for i, column in enumerate(columns):
        col = f"r.{quote_ident(column)}"
        policy = policies.get(column)
        if policy is None:
            out.append(col)
            continue
        if policy.policy == "drop":
            continue
        if policy.policy == "hash":
            alias = f"__hw_h{i}"
            expr = policy_sql(column, policy)
            ctes.append(
                f"{alias} AS (SELECT {quote_ident(column)} AS v, {expr} AS h "
                f"FROM (SELECT DISTINCT {quote_ident(column)} FROM {relation}))"
            )
            joins.append(f"LEFT JOIN {alias} ON {col} = {alias}.v")
            out.append(f"{alias}.h AS {quote_ident(column)}")
            continue
        out.append(f"{policy_sql(column, policy)} AS {quote_ident(column)}")
    with_clause = f"WITH {', '.join(ctes)} " if ctes else ""
    return f"{with_clause}SELECT {', '.join(out)} FROM {relation} r {' '.join(joins)}"


_NO_STRINGS = pa.array([], pa.string())


class HashMemo:
    """Hashes already computed, per column, for the parts of one batch.

    The same names come back in every part of a batch (returning customers), and the
    HMAC of a few thousand names costs tens of milliseconds a part; with the memo each
    distinct value is hashed once a batch. Thread-safe (parts are written on worker
    threads); at most `limit` values a column are kept, so memory does not grow with
    the input: past it, new values are hashed in every part that has them.
    """

    def __init__(self, limit: int = MEMO_LIMIT) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._known: dict[str, tuple[pa.Array, pa.Array]] = {}

    def known(self, column: str) -> tuple[pa.Array, pa.Array]:
        """The values of `column` hashed so far, and their hashes (in the same order)."""
        with self._lock:
            return self._known.get(column, (_NO_STRINGS, _NO_STRINGS))

    def add(self, column: str, values: pa.Array, hashes: pa.Array) -> None:
        with self._lock:
            old_values, old_hashes = self._known.get(column, (_NO_STRINGS, _NO_STRINGS))
            room = self.limit - len(old_values)
            if room <= 0 or not len(values):
                return
            self._known[column] = (
                pa.concat_arrays([old_values, values.slice(0, room)]),
                pa.concat_arrays([old_hashes, hashes.slice(0, room)]),
            )


def _hash_values(
    conn: duckdb.DuckDBPyConnection, column: str, policy: PiiPolicy, values: pa.Array
) -> pa.Array:
    """The policy's hash of each of `values` (distinct strings), in the same order."""
    order = np.arange(len(values), dtype=np.int64)
    conn.register("__hw_pii_distinct", pa.table({column: values, "__hw_i": order}))
    try:  # in the values' order: the engine does not keep insertion order by itself
        hashed = conn.execute(
            f"SELECT ({policy_sql(column, policy)})::VARCHAR FROM __hw_pii_distinct ORDER BY __hw_i"
        ).to_arrow_table()
    finally:
        conn.unregister("__hw_pii_distinct")
    return hashed.column(0).combine_chunks().cast(pa.string())


def scrub_arrow(
    conn: duckdb.DuckDBPyConnection,
    rows: pa.Table,
    policies: Mapping[str, PiiPolicy],
    memo: HashMemo | None = None,
) -> pa.Table | None:
    """`rows` with `drop` and `hash` policies applied in Arrow; None if a `mask` applies.

    The same values as `scrub_query`, without a join: each hashed column is
    dictionary-encoded, DuckDB hashes the dictionary values the `memo` does not
    already hold (each distinct value once), and the hashes are taken back by the
    dictionary's indices."""
    applied = {c: policies[c] for c in rows.column_names if c in policies}
    if any(p.policy == "mask" for p in applied.values()):
        return None
    memo = memo if memo is not None else HashMemo()
    for column, policy in applied.items():
        if policy.policy == "drop":
            rows = rows.drop_columns([column])
            continue
        values = rows.column(column)
        if values.type != pa.string():
            return None
        encoded = pc.dictionary_encode(values.combine_chunks())
        known_values, known_hashes = memo.known(column)
        at = pc.index_in(encoded.dictionary, value_set=known_values)  # null: not known
        digests = pc.take(known_hashes, at)
        missing = pc.is_null(at)
        if pc.any(missing).as_py():
            new = encoded.dictionary.filter(missing)
            new_hashes = _hash_values(conn, column, policy, new)
            memo.add(column, new, new_hashes)
            digests = pc.replace_with_mask(digests, missing, new_hashes)
        position = rows.column_names.index(column)
        rows = rows.set_column(position, column, pc.take(digests, encoded.indices))
    return rows


class LeakSample:
    """A bounded sample of the protected values seen, for the downstream leak check."""

    def __init__(self, policies: Mapping[str, PiiPolicy]) -> None:
        self.policies = dict(policies)
        self._lock = threading.Lock()
        self._values: dict[str, list[pa.Array]] = {c: [] for c in policies}
        self._count: dict[str, int] = dict.fromkeys(policies, 0)

    def add(self, rows: pa.Table) -> None:
        """Keep protected values of these rows (thread-safe: workers call it)."""
        with self._lock:
            self._add(rows)

    def _add(self, rows: pa.Table) -> None:
        for column in self.policies:
            if column not in rows.column_names or self._count[column] >= SAMPLE_PER_COLUMN:
                continue
            values = pc.unique(rows.column(column)).drop_null()
            values = values.filter(
                pc.greater_equal(pc.utf8_length(pc.utf8_trim_whitespace(values)), MIN_VALUE_LENGTH)
            )
            values = values.slice(0, SAMPLE_PER_COLUMN - self._count[column])
            self._values[column].append(values)
            self._count[column] += len(values)

    def dropped(self) -> set[str]:
        return {c for c, p in self.policies.items() if p.policy == "drop"}

    def register(self, conn: duckdb.DuckDBPyConnection) -> int:
        """Add the sample to this connection's protected values; returns its size."""
        arrays = [a for chunks in self._values.values() for a in chunks]
        values = (
            pa.concat_arrays([a.cast(pa.string()) for a in arrays])
            if arrays
            else pa.array([], pa.string())
        )
        conn.register("_hw_pii_sample", pa.table({"v": values}))
        conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {VALUES_TABLE} (v VARCHAR)").fetchall()
        conn.execute(
            f"INSERT INTO {VALUES_TABLE} SELECT DISTINCT trim(v) FROM _hw_pii_sample"
        ).fetchall()
        conn.unregister("_hw_pii_sample")
        return len(values)


def reset_sample(conn: duckdb.DuckDBPyConnection) -> None:
    """Forget the protected values of the previous batch."""
    conn.execute(f"DROP TABLE IF EXISTS {VALUES_TABLE}").fetchall()


def check_leaks(
    conn: duckdb.DuckDBPyConnection,
    table_sql: str,
    table_name: str,
    dropped: set[str],
    *,
    values: bool = True,
) -> None:
    """Fail if a dropped column name (or, with `values`, a sampled protected value) appears."""
    columns = conn.execute(f"DESCRIBE SELECT * FROM {table_sql}").fetchall()
    names = {c[0] for c in columns}
    leaked_names = sorted(names & dropped)
    if leaked_names:
        raise PiiLeakError(
            f"table {table_name!r} has column(s) {leaked_names}, "
            "which a PII policy drops at the source"
        )
    text_columns = [c[0] for c in columns if str(c[1]).upper() == "VARCHAR"]
    exists = conn.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND temporary", [VALUES_TABLE]
    ).fetchall()[0][0]
    if not values or not exists or not text_columns:
        return
    # One scan of the table for every text column.
    counts = ", ".join(
        f"count(*) FILTER (WHERE trim({quote_ident(c)}) IN (SELECT v FROM {VALUES_TABLE}))"
        for c in text_columns
    )
    hits = conn.execute(f"SELECT {counts} FROM {table_sql}").fetchall()[0]
    for column, hit in zip(text_columns, hits, strict=True):
        if hit:
            raise PiiLeakError(
                f"table {table_name!r}, column {column!r}: {hit} value(s) equal a protected source "
                "value (a name or card number the PII policy should have removed)"
            )
