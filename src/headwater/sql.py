"""Writing SQL text safely: quoted identifiers and literals, one definition for every layer."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """A double-quoted SQL identifier: `a"b` becomes `"a""b"`."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    """A SQL literal for a string, number or boolean."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"
