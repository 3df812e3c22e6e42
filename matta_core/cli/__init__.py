"""The `matta` command line. Each module below adds its commands to the one `app`."""

from matta_core.cli import demo_cmds  # noqa: F401  (registers its commands)
from matta_core.cli.app import app

__all__ = ["app"]
