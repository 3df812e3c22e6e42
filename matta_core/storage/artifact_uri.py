"""The storage URI of a KFP artifact's local path, for records that outlive the task that wrote them.

A KFP task sees each artifact at a local path that only exists inside its pod: ``gs://bucket/x`` is mounted at
``/gcs/bucket/x`` (KFP's convention, ``kfp.dsl.types.artifact_types``; likewise ``/minio/`` and ``/s3/``). A gate
decision or an A/B handoff that named ``/gcs/...`` would point nowhere once the pod is gone: `artifact_uri` turns
such a path back into the URI in the pipeline root. A local run's paths are real and stay as they are.
"""

from __future__ import annotations

#: KFP's local mount prefixes and the URI scheme each stands for.
KFP_MOUNTS: tuple[tuple[str, str], ...] = (("/gcs/", "gs://"), ("/minio/", "minio://"), ("/s3/", "s3://"))


def artifact_uri(path: str | None) -> str | None:
    """`path` as a URI in the pipeline root where it is a KFP artifact mount, else `path` unchanged."""
    if path is None:
        return None
    for prefix, scheme in KFP_MOUNTS:
        if path.startswith(prefix):
            return scheme + path[len(prefix):]
    return path
