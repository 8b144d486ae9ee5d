"""What every config section shares: strict models (unknown keys are errors) and names."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

NAME_PATTERN = r"^[a-z_][a-z0-9_]*$"


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors, so typos are caught."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def one_ascii_char(value: str) -> str:
    """Validator of a delimiter, quote or similar: one ASCII character, not a line break."""
    if len(value) != 1 or not value.isascii() or value in "\r\n":
        raise ValueError("expected a single ASCII character other than a line break")
    return value
