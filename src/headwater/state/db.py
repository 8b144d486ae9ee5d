"""Connection and schema of the state database (SQLite by default).

The schema is plain SQLAlchemy Core so the same tables live in SQLite on a
laptop and in PostgreSQL when several processes share one state.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from headwater import urls
from headwater.errors import StateError, TransientError

SCHEMA_VERSION = 2  # 2: hw_alerts, hw_alerts.last_seen_at
SQLITE = "sqlite:///"

metadata = sa.MetaData()

meta = sa.Table(
    "hw_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

runs = sa.Table(
    "hw_runs",
    metadata,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("trigger", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("pid", sa.Integer),
    sa.Column("host", sa.String(255)),
    sa.Column("error", sa.Text),
    sa.Column("summary", sa.JSON),
)

steps = sa.Table(
    "hw_steps",
    metadata,
    sa.Column("step_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("hw_runs.run_id"), nullable=False, index=True),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("batch", sa.Integer),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("rows_in", sa.BigInteger),
    sa.Column("rows_out", sa.BigInteger),
    sa.Column("rows_quarantined", sa.BigInteger),
    sa.Column("detail", sa.JSON),
    sa.Column("error", sa.Text),
)

files = sa.Table(
    "hw_files",
    metadata,
    sa.Column("file_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(255), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("modified_at", sa.DateTime),
    sa.Column("raw_key", sa.Text, nullable=False),
    sa.Column("batch", sa.Integer, nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("landed_at", sa.DateTime, nullable=False),
    sa.Column("rows_read", sa.BigInteger),
    sa.Column("rows_quarantined", sa.BigInteger),
    sa.Column("header_lines", sa.Integer),
    sa.Column("blank_lines", sa.Integer),
    sa.UniqueConstraint("source", "content_hash", name="uq_hw_files_source_hash"),
)

watermarks = sa.Table(
    "hw_watermarks",
    metadata,
    sa.Column("source", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)


alerts = sa.Table(
    "hw_alerts",
    metadata,
    sa.Column("alert_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),  # failure | check | stale
    sa.Column("cause", sa.String(512), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),  # open | closed
    sa.Column("opened_at", sa.DateTime, nullable=False),
    sa.Column("last_sent_at", sa.DateTime),
    sa.Column("last_seen_at", sa.DateTime),  # when the cause last occurred (run, deadline)
    sa.Column("sent", sa.Integer, nullable=False, default=0),
    sa.Column("suppressed", sa.Integer, nullable=False, default=0),
    sa.Column("closed_at", sa.DateTime),
    sa.Column("run_id", sa.Integer),
    sa.Column("message", sa.Text),
)


def utcnow() -> dt.datetime:
    """Naive UTC, the one time zone the state database stores."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class StateUnavailableError(TransientError):
    """The state database server did not answer (down, restarting, network)."""


redact = urls.redact  # a database URL fit for a message: the password as ***


class StateDB:
    """One state database. Create with `StateDB.open(url)`."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url

    @staticmethod
    def exists(url: str) -> bool:
        """Whether a state database is there to read (a server database is assumed to be)."""
        return not url.startswith(SQLITE) or Path(url.removeprefix(SQLITE)).exists()

    @classmethod
    def open(cls, url: str, *, create: bool = True) -> StateDB:
        if url.startswith(SQLITE):
            path = Path(url.removeprefix(SQLITE))
            if not create and not path.exists():
                raise StateError(f"state database {path} does not exist (no run yet?)")
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            engine = sa.create_engine(url, future=True, pool_pre_ping=True)
        except (SQLAlchemyError, ImportError) as exc:
            raise StateError(f"cannot open state database {redact(url)}: {exc}") from None
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        db = cls(engine, url)
        if create:
            db.migrate()
        return db

    def migrate(self) -> None:
        try:
            metadata.create_all(self.engine)
            with self.engine.begin() as conn:
                row = conn.execute(
                    sa.select(meta.c.value).where(meta.c.key == "schema_version")
                ).first()
                if row is None:
                    conn.execute(
                        meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION))
                    )
                elif int(row[0]) > SCHEMA_VERSION:
                    raise StateError(
                        f"state database {self.url} has schema version {row[0]}, newer than this "
                        f"headwater ({SCHEMA_VERSION}); upgrade headwater"
                    )
            if row is not None and int(row[0]) < SCHEMA_VERSION:
                # An older database: its tables may lack columns added since. Only then.
                self._add_missing_columns()
                with self.engine.begin() as conn:
                    conn.execute(
                        meta.update()
                        .where(meta.c.key == "schema_version")
                        .values(value=str(SCHEMA_VERSION))
                    )
        except OperationalError as exc:
            raise StateUnavailableError(
                f"state database {redact(self.url)} is unreachable: {exc.orig or exc}"
            ) from None
        except SQLAlchemyError as exc:
            raise StateError(f"cannot prepare state database {redact(self.url)}: {exc}") from None

    def _add_missing_columns(self) -> None:
        """Columns added to a table after a database was created (always nullable ones)."""
        inspector = sa.inspect(self.engine)
        for table in metadata.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                if not column.nullable:
                    raise StateError(
                        f"state database {redact(self.url)}: table {table.name} lacks the "
                        f"required column {column.name}; upgrade by hand or start a new state"
                    )
                kind = column.type.compile(dialect=self.engine.dialect)
                with self.engine.begin() as conn:
                    conn.execute(
                        sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')
                    )

    def dispose(self) -> None:
        self.engine.dispose()
