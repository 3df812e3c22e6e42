"""What the run configuration's sections share, importable without torch: the strict section base, the
configuration error, and parsing a section from its JSON pipeline parameter.

Kept apart from `matta_core.config` (which imports the model families' configs, and so torch) so that the
pipeline's light tasks, the first and the exit task, start in well under a second.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError


class ConfigError(ValueError):
    """A run configuration that cannot run; the message lists every bad field and what is allowed."""


class Section(BaseModel):
    """A config section: unknown keys refused, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


SectionT = TypeVar("SectionT", bound=BaseModel)


def load_section(section: type[SectionT], text: str, name: str) -> SectionT:
    """Parse one config section from its JSON (a pipeline parameter); bad values raise `ConfigError` by field."""
    try:
        return section.model_validate_json(text)
    except ValidationError as error:
        lines = [
            f"  {'.'.join([name, *(str(p) for p in problem['loc'])])}: {problem['msg']}"
            for problem in error.errors()
        ]
        raise ConfigError(f"pipeline parameter {name}_json is invalid:\n" + "\n".join(lines)) from None
