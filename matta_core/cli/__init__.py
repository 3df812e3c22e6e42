"""The `matta` command line. Each module below adds its commands to the one `app`."""

from matta_core.cli import (
    benchmark_cmds,  # noqa: F401  (registers its commands)
    component_cmds,  # noqa: F401  (registers its commands)
    demo_cmds,  # noqa: F401  (registers its commands)
    image_cmds,  # noqa: F401  (registers its commands)
    pipeline_cmds,  # noqa: F401  (registers its commands)
    release_cmds,  # noqa: F401  (registers its commands)
    runs_cmds,  # noqa: F401  (registers its commands)
    stack_cmds,  # noqa: F401  (registers its commands)
)
from matta_core.cli.app import app

__all__ = ["app"]
