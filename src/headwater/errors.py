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
