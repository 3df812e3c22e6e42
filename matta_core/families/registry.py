"""The one map from a run config's ``task`` to its model family: `family_for`.

Adding a family: one folder under ``matta_core/families/`` with the same file names as the others, a `FAMILY`
object in its ``family.py`` (a `ModelFamily`), and one line in `FAMILIES` below (see docs/ARCHITECTURE.md, "Adding a
model family"). Nothing else in matta names a family.
"""

from __future__ import annotations

from matta_core.config_base import ConfigError
from matta_core.families.base import ModelFamily
from matta_core.families.classifier.family import FAMILY as CLASSIFIER
from matta_core.families.classifier.section import ModelSection
from matta_core.families.decoder.family import FAMILY as DECODER
from matta_core.families.decoder.section import DecoderSection

#: Every family, by the ``task`` that selects it (the first is the run config's default).
FAMILIES: dict[str, ModelFamily] = {family.task: family for family in (CLASSIFIER, DECODER)}
TASKS: tuple[str, ...] = tuple(FAMILIES)
#: The run config's ``model:`` section, of whichever family.
AnyModelSection = ModelSection | DecoderSection


def family_for(task: str) -> ModelFamily:
    """The family of `task` (a pipeline parameter a cluster user may have edited), else `ConfigError`."""
    family = FAMILIES.get(task)
    if family is None:
        raise ConfigError(f"pipeline parameter task {task!r} is unknown; allowed: {list(TASKS)}")
    return family
