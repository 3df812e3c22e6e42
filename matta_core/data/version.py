"""The version of a run's input data, read where the data is: what the ``prepare`` step's cache key rests on.

A scheduled run's parameters never change (the same ``gs://`` URI every night), so a cache keyed on them would
reuse yesterday's split after the file was refreshed. The pipeline's first task computes `data_version` instead and
hands it to ``prepare`` as an input: refreshed data re-runs prepare, unchanged data hits the cache.

- ``gs://`` objects: the object's generation (GCS gives each write of an object a new one) and size; reading
  the metadata costs one request, however big the object.
- Local files: size and sha256 of the content (a touched but unchanged file keeps its version).
- Registered data sets: their pinned files' sha256s (the download is verified against them).
"""

from __future__ import annotations

import hashlib
import json
import os

from matta_core import storage
from matta_core.data.section import DataSection
from matta_core.storage.uri import split_gcs


class DataVersionError(ValueError):
    """An input whose version cannot be read; the message names the field and the URI."""


def data_version(data: DataSection) -> str:
    """A string that changes exactly when the data `data` names changes (see the module docstring)."""
    parts = {"source": _version(data.source, "data.source")}
    if data.test_source is not None:
        parts["test_source"] = _version(data.test_source, "data.test_source")
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
    return f"{digest} {json.dumps(parts, sort_keys=True)}"


def _version(uri: str, field: str) -> str:
    from matta_core.data import DATASETS

    if uri in DATASETS:
        spec = DATASETS[uri]
        return f"registered:{uri}:" + ",".join(f"{f.name}={f.sha256[:16]}" for f in spec.files)
    try:
        if uri.startswith("gs://"):
            return _gcs_generation(uri)
        if not storage.exists(uri):
            raise FileNotFoundError(uri)
        path = storage.to_local_path(uri)
        return f"file:size={os.path.getsize(path)},sha256={storage.sha256(uri)[:32]}"
    except FileNotFoundError:
        raise DataVersionError(f"{field}: no file at {uri!r}") from None
    except storage.StorageError as error:
        raise DataVersionError(f"{field}: cannot read the version of {uri!r}: {error}") from None


def _gcs_generation(uri: str) -> str:
    from matta_core.storage.gcs_client import get_client

    bucket, key = split_gcs(uri)
    blob = get_client().bucket(bucket).get_blob(key)
    if blob is None:
        raise FileNotFoundError(uri)
    return f"gcs:generation={blob.generation},size={blob.size}"
