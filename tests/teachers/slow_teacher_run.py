"""Subprocess side of the SIGKILL resume test: a deliberately slow, real Teacher filling a cache.

Usage: python -m tests.teachers.slow_teacher_run TEACHER_DIR TEXTS_JSON CACHE_ROOT CALLS_LOG SLEEP_S SHARD_ROWS

Every predict call appends its first and last row text to CALLS_LOG (flushed) *before* sleeping, so the parent
knows what was asked even of a process it kills.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence

import numpy as np

from matta_core.teachers import SafetensorsTeacher
from matta_core.teachers.cache import cached_predict_with_report


class SlowTeacher(SafetensorsTeacher):
    """The real classifier, slowed down so a kill lands mid-run."""

    calls_log: str
    sleep_s: float

    def predict(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        with open(self.calls_log, "a") as f:
            f.write(json.dumps([texts[0], texts[-1]]) + "\n")
        time.sleep(self.sleep_s)
        return super().predict(texts)


def main(argv: list[str]) -> None:
    teacher_dir, texts_json, cache_root, calls_log, sleep_s, shard_rows = argv
    base = SafetensorsTeacher.load(teacher_dir)
    teacher = SlowTeacher(base.tensors, base.config)
    teacher.calls_log, teacher.sleep_s = calls_log, float(sleep_s)
    with open(texts_json) as f:
        texts = json.load(f)
    _, report = cached_predict_with_report(
        teacher,
        texts,
        data_hash="kill-test",
        split="train",
        cache_root=cache_root,
        shard_rows=int(shard_rows),
        progress=False,
    )
    print(json.dumps(report.to_dict()))


if __name__ == "__main__":
    main(sys.argv[1:])
