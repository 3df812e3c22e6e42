"""Image build step: drop all bytecode in site-packages, then compile it again for the listed modules only.

Run by docker/Dockerfile with the venv's python: ``python compile_imported.py SITE_PACKAGES MODULE_LIST``.
Nothing is imported: a module name maps to ``<site>/a/b/c.py`` or ``<site>/a/b/c/__init__.py``.
"""

import py_compile
import sys
from pathlib import Path

site, listing = Path(sys.argv[1]), Path(sys.argv[2])
removed = 0
for pyc in site.rglob("*.pyc"):
    pyc.unlink()
    removed += 1
compiled = 0
for name in listing.read_text().split():
    base = site.joinpath(*name.split("."))
    for source in (base.with_suffix(".py"), base / "__init__.py"):
        if source.is_file():
            py_compile.compile(str(source), doraise=False, quiet=2)
            compiled += 1
            break
print(f"bytecode: {removed} files removed, {compiled} modules compiled")
