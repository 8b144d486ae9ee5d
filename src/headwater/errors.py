"""One exception root for headwater, split into transient and terminal errors.

The scheduler retries only `TransientError`s: a lock held by another run, a
server that did not answer. Everything else is terminal: retrying the same run
on the same data and code gives the same failure.

Adapters translate driver errors (DuckDB, SQLAlchemy, pyiceberg, OS errors)
into these classes at their boundary, with a message that names the source,
file, row or offset, column, the bad value and the rule broken.
"""

from __future__ import annotations


class HeadwaterError(Exception):
    """Root of every error headwater raises on purpose."""

    transient: bool = False
    exit_code: int = 1


class TransientError(HeadwaterError):
    """May succeed if the same operation is tried again later."""

    transient = True


class TerminalError(HeadwaterError):
    """Will fail again until the data, the code or the configuration changes."""


class ConfigError(TerminalError):
    """The project configuration or a model file is invalid; nothing was touched."""

    exit_code = 2


class ModelError(TerminalError):
    """A model failed to compile or to run."""


class CheckFailedError(TerminalError):
    """An error-severity quality check failed; the model was not published."""


class PiiLeakError(TerminalError):
    """A protected column or value appeared downstream of its PII policy."""


class SourceError(TerminalError):
    """A source could not be read (missing folder, unreadable file)."""


class LakeError(TerminalError):
    """The lake refused an operation."""


class ObjectExistsError(LakeError):
    """A put-once key already exists: raw data is never overwritten."""


class WarehouseError(TerminalError):
    """A warehouse load failed; the transaction was rolled back."""


class LockHeldError(TransientError):
    """Another run of the same project holds the run lock."""


class StateError(TerminalError):
    """The state database is unusable (wrong schema, unreachable path)."""


class SourceUnavailableError(TransientError):
    """A source did not answer: refused or dropped the connection, timed out, 5xx, deadlock."""


class WarehouseUnavailableError(TransientError):
    """The warehouse did not answer, dropped the connection, or a lock was not granted in time."""


class LakeUnavailableError(TransientError):
    """The lake's object store did not answer, timed out, or answered 5xx / slow down."""


# What drivers say (PostgreSQL, MySQL/MariaDB, DuckDB's scanners and httpfs, S3) when a
# condition may pass by itself; lower case, matched as substrings (whole phrases, so that
# a column named `timeout` in a quoted query does not count). A message that also says the
# login, the database or the object is wrong is terminal whatever else it says.
TRANSIENT_MESSAGES = (
    "connection refused",
    "could not connect",
    "unable to connect",
    "can't connect",
    "timeout expired",
    "timeout was reached",
    "timed out",
    "lock timeout",
    "statement timeout",
    "lock wait timeout",
    "server closed the connection",
    "connection reset",
    "broken pipe",
    "lost connection",
    "server has gone away",
    "no connection to the server",
    "could not send data to server",
    "could not receive data from server",
    "ssl syscall error",
    "ssl connection has been closed",
    "terminating connection",
    "deadlock detected",
    "deadlock found",
    "could not serialize access",
    "serialization failure",
    "too many connections",
    "remaining connection slots",
    "the database system is",
    "temporary failure in name resolution",
    "could not set lock on file",
    "returned http 500",
    "returned http 502",
    "returned http 503",
    "returned http 504",
    "(http 500)",
    "(http 502)",
    "(http 503)",
    "(http 504)",
    "internal server error",
    "bad gateway",
    "service unavailable",
    "gateway timeout",
    "slow down",
)
TERMINAL_MESSAGES = (
    "authentication failed",
    "access denied",
    "no pg_hba.conf entry",
    "permission denied",
    "does not exist",
    "unknown database",
    "certificate verify failed",
)


def transient_message(text: str) -> bool:
    """Whether a driver's message describes a condition that may pass if tried again."""
    lower = text.lower()
    if any(t in lower for t in TERMINAL_MESSAGES):
        return False
    return any(t in lower for t in TRANSIENT_MESSAGES)
