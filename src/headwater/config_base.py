"""What every config section shares: strict models (unknown keys are errors) and names."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

NAME_PATTERN = r"^[a-z_][a-z0-9_]*$"


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors, so typos are caught."""

    model_config = ConfigDict(extra="forbid", frozen=True)
