"""The bundled public data sets: where each file comes from, its sha256, licence and citation, and how to fetch it.

`fetch_dataset` returns a local folder of verified files, from (in this order):

1. a mirror folder (`mirror_dir=` or env `MATTA_DATA_MIRROR`): `<mirror>/<name>/<file>`, a local path or any
   storage URI. Tests and CI point it at the checked-in copy; an air-gapped cluster at a bucket.
2. the cache: `<cache_dir>/<name>/` (default `$MATTA_CACHE_DIR/datasets`, else `$XDG_CACHE_HOME/matta/datasets`,
   else `~/.cache/matta/datasets`).
3. a download from the pinned public URL (or `<base_url>/<name>/<file>` when `base_url=` or env
   `MATTA_DATASET_BASE_URL` names a mirror server), streamed to a temporary file, verified, then renamed into place.

Every file is checked against the sha256 recorded here whatever its origin; a mismatch is an error and a bad
download is never kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

from matta_core import storage
from matta_core.data.errors import DatasetIntegrityError, DatasetNotFoundError
from matta_core.data.schema import DataSchema
from matta_core.storage.atomic import usual_mode

MIRROR_ENV = "MATTA_DATA_MIRROR"
CACHE_ENV = "MATTA_CACHE_DIR"
BASE_URL_ENV = "MATTA_DATASET_BASE_URL"
DEFAULT_TIMEOUT_S = 60.0

_POLYAI = (
    "https://raw.githubusercontent.com/PolyAI-LDN/task-specific-datasets/"
    "57ec275d8078af65b7731c2a98be812d844a6d6b/banking_data"
)
_CLINC = "https://raw.githubusercontent.com/clinc/oos-eval/828f8093932c8fe6ca7936c3d2e52903b1c523de/data"


@dataclass(frozen=True)
class DatasetFile:
    """One file of a registered data set, pinned by URL (at a commit) and sha256."""

    name: str
    url: str
    sha256: str
    size: int


@dataclass(frozen=True)
class DatasetSpec:
    """A registered public data set.

    `kind` is "classification" (text + label columns; usable by `prepare_dataset`) or "text_corpus" (one text a
    line, for language-model work). `train_file`/`test_file` name the source's own splits.
    """

    name: str
    kind: Literal["classification", "text_corpus"]
    description: str
    source: str
    files: tuple[DatasetFile, ...]
    license: str
    license_url: str
    citation: str
    train_file: str
    test_file: str | None = None
    labels_file: str | None = None
    text_column: str | None = None
    label_column: str | None = None

    def file(self, name: str) -> DatasetFile:
        """The registered file called `name`."""
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(f"dataset {self.name!r} has no file {name!r}; files: {[f.name for f in self.files]}")

    def schema(self, folder: Path) -> DataSchema:
        """The schema of a fetched classification data set, labels read from its labels file."""
        if self.kind != "classification" or self.text_column is None or self.label_column is None:
            raise ValueError(f"dataset {self.name!r} is a {self.kind}, not a labelled classification data set.")
        labels = None
        if self.labels_file is not None:
            labels = tuple(json.loads((folder / self.labels_file).read_text(encoding="utf-8")))
        return DataSchema(text_column=self.text_column, label_column=self.label_column, labels=labels)


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="banking77",
            kind="classification",
            description="Online-banking customer queries labelled with 77 intents; own train (10,003) and test "
            "(3,080) splits.",
            source="https://github.com/PolyAI-LDN/task-specific-datasets/tree/"
            "57ec275d8078af65b7731c2a98be812d844a6d6b/banking_data",
            files=(
                DatasetFile(
                    "train.csv",
                    f"{_POLYAI}/train.csv",
                    "b06e26ac675513959a63135f11b94ea7786ed02da65db93a5650d8838cbc664b",
                    839073,
                ),
                DatasetFile(
                    "test.csv",
                    f"{_POLYAI}/test.csv",
                    "d12d6e3bc4c3103966ae786dc435913c0c563dfa328f5a3646d0e62cfeeb474d",
                    239961,
                ),
                DatasetFile(
                    "categories.json",
                    f"{_POLYAI}/categories.json",
                    "53261da888122daf2d120d925458631d9619e15d82e56052e7a42e535ce32b63",
                    2036,
                ),
            ),
            license="CC-BY-4.0",
            license_url="https://creativecommons.org/licenses/by/4.0/",
            citation="Casanueva, I., Temčinas, T., Gerz, D., Henderson, M., Vulić, I. (2020). Efficient Intent "
            "Detection with Dual Sentence Encoders. Proceedings of the 2nd Workshop on NLP for ConvAI, ACL 2020. "
            "arXiv:2003.04807.",
            train_file="train.csv",
            test_file="test.csv",
            labels_file="categories.json",
            text_column="text",
            label_column="category",
        ),
        DatasetSpec(
            name="wiki_sents",
            kind="text_corpus",
            description="14,750 lower-cased English Wikipedia sentences, one a line (language-model development).",
            source="https://github.com/clinc/oos-eval/tree/828f8093932c8fe6ca7936c3d2e52903b1c523de/data",
            files=(
                DatasetFile(
                    "all_wiki_sents.txt",
                    f"{_CLINC}/all_wiki_sents.txt",
                    "570704f8120d13d27dda90d116a0b2365e121139f72c2967b65f55465ebfad44",
                    750542,
                ),
            ),
            license="CC-BY-3.0",
            license_url="https://creativecommons.org/licenses/by/3.0/",
            citation="Larson, S., Mahendran, A., Peper, J. J., Clarke, C., Lee, A., Hill, P., Kummerfeld, J. K., "
            "Leach, K., Laurenzano, M. A., Tang, L., Mars, J. (2019). An Evaluation Dataset for Intent "
            "Classification and Out-of-Scope Prediction. EMNLP-IJCNLP 2019.",
            train_file="all_wiki_sents.txt",
        ),
    )
}


def get_dataset(name: str) -> DatasetSpec:
    """The registry entry for `name`; a clear error listing the known names otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetNotFoundError(
            f"Unknown dataset {name!r}; registered datasets: {', '.join(sorted(DATASETS))}. "
            "For your own data pass a file URI (CSV, Parquet or JSONL) instead."
        ) from None


def default_cache_dir() -> Path:
    """Where fetched data sets are cached: `$MATTA_CACHE_DIR/datasets`, else the XDG cache, else ~/.cache."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser() / "datasets"
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "matta" / "datasets"


def fetch_dataset(
    name: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    mirror_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """Return a local folder holding the verified files of the registered data set `name`.

    Args:
        name: a registered data set (see `DATASETS`).
        cache_dir: the folder that holds one folder per data set (default: see `default_cache_dir`).
        mirror_dir: a mirror laid out as `<mirror>/<name>/<file>` (local path or storage URI); default env
            `MATTA_DATA_MIRROR`. When set, nothing is downloaded from the public URLs.
        base_url: download from `<base_url>/<name>/<file>` instead of the pinned public URLs; default env
            `MATTA_DATASET_BASE_URL`. The sha256 checks are the same.
        timeout: seconds for each network connection/read.

    Raises:
        DatasetNotFoundError: unknown name.
        DatasetIntegrityError: a file is missing, cannot be downloaded, or fails its sha256 check.
    """
    spec = get_dataset(name)
    mirror = mirror_dir if mirror_dir is not None else os.environ.get(MIRROR_ENV) or None
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    folder = cache / spec.name
    if mirror is not None:
        mirror_uri = str(mirror)
        if storage.is_local(mirror_uri):
            return _verified_mirror_folder(spec, Path(storage.to_local_path(mirror_uri)) / spec.name)
        for f in spec.files:
            _fill_cache(folder, f, partial(storage.download_file, storage.join(mirror_uri, spec.name, f.name)))
        return folder
    base = base_url if base_url is not None else os.environ.get(BASE_URL_ENV) or None
    for f in spec.files:
        url = f.url if base is None else f"{base.rstrip('/')}/{spec.name}/{f.name}"
        _fill_cache(folder, f, partial(_download, url, timeout=timeout))
    return folder


def sha256_file(path: Path) -> str:
    """Hex sha256 of a local file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _verified_mirror_folder(spec: DatasetSpec, folder: Path) -> Path:
    """Check a local mirror in place (no copy: it is already local and verified)."""
    for f in spec.files:
        path = folder / f.name
        if not path.is_file():
            raise DatasetIntegrityError(
                f"Mirror {folder} has no {f.name!r} for dataset {spec.name!r}; a mirror must hold "
                f"<mirror>/{spec.name}/{{{', '.join(x.name for x in spec.files)}}} (public source: {f.url})."
            )
        _check_sha256(path, f, origin=f"mirror file {path}", advice="Replace it with the pinned version of the file.")
    return folder


def _fill_cache(folder: Path, f: DatasetFile, fetch: Callable[[Path], None]) -> None:
    """Make `folder/f.name` a verified copy, calling `fetch(tmp_path)` only when the cache lacks a good one."""
    dest = folder / f.name
    if dest.is_file():
        if sha256_file(dest) == f.sha256:
            return
        # A cached file that no longer matches (disk damage, a hand edit) is replaced, never trusted.
        dest.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    # The temporary file lives next to its destination so the final rename is atomic; its unique name lets
    # two processes fill the same cache at once.
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{f.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        fetch(tmp)
        _check_sha256(tmp, f, origin=f"{f.name!r} fetched for {folder.name!r}", advice="The copy was discarded.")
        usual_mode(tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _download(url: str, dest: Path, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "matta-dataset-fetch"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, dest.open("wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except urllib.error.HTTPError as exc:
        raise DatasetIntegrityError(f"Download of {url} failed: HTTP {exc.code} {exc.reason}.") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DatasetIntegrityError(
            f"Download of {url} failed: {exc}. Without network access, point mirror_dir= (or "
            f"{MIRROR_ENV}) at a folder holding <name>/<file> copies."
        ) from exc


def _check_sha256(path: Path, f: DatasetFile, *, origin: str, advice: str) -> None:
    actual = sha256_file(path)
    if actual != f.sha256:
        raise DatasetIntegrityError(
            f"sha256 mismatch for {origin}: expected {f.sha256} (registry, pinned at {f.url}), got {actual} "
            f"({path.stat().st_size} bytes; the pinned file has {f.size}). {advice}"
        )
