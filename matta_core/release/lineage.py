"""Where a registered version came from, as model-version tags (the tracking tag names, one spelling everywhere)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from matta_core.release import tags as RT
from matta_core.tracking import tags as T


@dataclass(frozen=True)
class Lineage:
    """The inputs of the pipeline run that trained a candidate."""

    data_content_hash: str | None = None
    teacher_cache_key: str | None = None
    teacher_fingerprint: str | None = None
    code_version: str | None = None

    @classmethod
    def parse(cls, value: Lineage | Mapping[str, Any] | None) -> Lineage:
        if isinstance(value, Lineage):
            return value
        data = dict(value or {})
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"lineage keys {unknown} unknown; allowed: {sorted(allowed)}")
        return cls(**{k: None if v is None else str(v) for k, v in data.items()})

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)

    def tags(self) -> dict[str, str]:
        values = {T.DATA_CONTENT_HASH: self.data_content_hash, T.TEACHER_CACHE_KEY: self.teacher_cache_key,
                  T.TEACHER_FINGERPRINT: self.teacher_fingerprint, T.CODE_VERSION: self.code_version}
        return {k: v for k, v in values.items() if v is not None}


def version_tags(
    lineage: Lineage,
    *,
    size_class: str,
    record: Mapping[str, Any],
    release_run_id: str | None,
    gate: Mapping[str, str],
) -> dict[str, str]:
    """Tags of a new model version: lineage, size class, width name and widths, metrics, gate evidence."""
    tags = {**lineage.tags(), RT.SIZE_CLASS: size_class, RT.MODEL_NAME: str(record.get("name")),
            T.MODEL_WIDTHS: T.widths_value(list(record.get("widths") or [])), **gate}
    for key in RT.VERSION_METRICS:
        value = record.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            tags[RT.metric_tag(key)] = repr(float(value)) if isinstance(value, float) else str(value)
    if release_run_id:
        tags[RT.RELEASE_RUN_ID] = release_run_id
    return tags
