"""The prepared text corpus folder: what the pipeline's prepare step writes for ``task: causal_lm``.

Layout under the folder URI (local path, file:// or gs://), beside the classifier's prepared layout
(`matta_core.data.prepared`) and named alike::

    train.jsonl, validation.jsonl, test.jsonl   one {"row_id", "text"} object a line, in row-id order
    quarantine.jsonl                            the lines set aside (non-UTF-8, empty, malformed, duplicates)
    manifest.json                               written last: a folder without it is an incomplete run

The manifest is `load_text_corpus`'s, plus ``format``; its ``content_hash`` is the data's identity downstream and
is recomputed from the split files when the folder is read, so an edited or truncated split cannot pass for the
original.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from matta_core import storage
from matta_core.data.errors import IncompletePreparedDataError
from matta_core.data.manifest import MANIFEST_FILE
from matta_core.data.quarantine import QUARANTINE_FILE
from matta_core.data.split import SPLITS, row_id
from matta_core.families.decoder.text_data import TextSplits, text_content_hash

FORMAT = "matta.prepared_text/v1"


def split_file(split: str) -> str:
    """File name of a split inside the prepared folder."""
    return f"{split}.jsonl"


@dataclass(frozen=True)
class PreparedText:
    """A finished prepared text corpus: the passages per split, and the manifest."""

    uri: str
    manifest: dict[str, Any]
    splits: dict[str, list[str]]

    @property
    def content_hash(self) -> str:
        return str(self.manifest["content_hash"])


def write_prepared_text(corpus: TextSplits, uri: str) -> dict[str, Any]:
    """Write `corpus` as a prepared folder at `uri`; returns the manifest written (last, so it marks completion)."""
    for split in SPLITS:
        lines = (json.dumps({"row_id": row_id(t), "text": t}, ensure_ascii=False) + "\n" for t in corpus.split(split))
        storage.write_text(storage.join(uri, split_file(split)), "".join(lines))
    storage.write_text(storage.join(uri, QUARANTINE_FILE), corpus.quarantine_jsonl())
    manifest = {"format": FORMAT, **corpus.manifest}
    storage.write_text(storage.join(uri, MANIFEST_FILE), json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def load_prepared_text(uri: str) -> PreparedText:
    """Read a folder written by `write_prepared_text`, checking its content hash against the manifest.

    Raises `IncompletePreparedDataError` when the manifest is missing or is not a text corpus's, or when the
    splits do not hash to the manifest's ``content_hash``.
    """
    manifest_uri = storage.join(uri, MANIFEST_FILE)
    if not storage.exists(manifest_uri):
        raise IncompletePreparedDataError(
            f"{uri} has no {MANIFEST_FILE}: the prepare step that writes it failed, or is still running"
        )
    manifest = json.loads(storage.read_text(manifest_uri))
    if manifest.get("format") != FORMAT:
        raise IncompletePreparedDataError(
            f"{manifest_uri} is not a prepared text corpus (format {manifest.get('format')!r}, expected {FORMAT!r}): "
            "was it prepared for another task?"
        )
    splits = {}
    for split in SPLITS:
        lines = storage.read_text(storage.join(uri, split_file(split))).splitlines()
        splits[split] = [json.loads(line)["text"] for line in lines]
    if text_content_hash(splits) != manifest["content_hash"]:
        raise IncompletePreparedDataError(
            f"{uri}: the split files do not hash to the manifest's content_hash; the folder was changed after it was "
            "written: prepare it again"
        )
    return PreparedText(uri, manifest, splits)
