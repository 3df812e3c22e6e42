"""Package-level names imported on first use (PEP 562), so that importing one light submodule of a package does
not pull in its heavy siblings (torch, pandas, mlflow): the pipeline's light tasks start in ~0.15 s instead of ~2 s.

In a package ``__init__``::

    _EXPORTS = {"load_table": "matta_core.data.tables", ...}
    __getattr__ = lazy_exports(__name__, _EXPORTS)

An exported name must differ from every submodule's name: importing a submodule sets the package attribute of
that name, which would then hide the export.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for `package` that imports ``exports[name]`` (a module path) on first access."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # the next access is a plain attribute
        return value

    return __getattr__
