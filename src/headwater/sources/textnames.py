"""Column names from the keys logs carry (`key=value` pairs, JSON objects): snake case.

`TicketID` -> `ticket_id`, `userAgent` -> `user_agent`, `HTTPStatus` ->
`http_status`, `http.status` -> `http_status`, `CPU` -> `cpu`. A name that
would be empty or start with a digit gets `f_` in front (`2xx` -> `f_2xx`).
"""

from __future__ import annotations

import re

_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_OTHER = re.compile(r"[^0-9a-zA-Z]+")


def snake_name(key: str) -> str:
    name = _CAMEL.sub(r"\1_\2", _ACRONYM.sub(r"\1_\2", key))
    name = _OTHER.sub("_", name).strip("_").lower()
    if not name or name[0].isdigit():
        name = f"f_{name}".rstrip("_")
    return name
