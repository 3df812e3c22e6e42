"""Where the tests find the offline mirror of the public data sets (never needed by the project at run time)."""

from __future__ import annotations

import os
from pathlib import Path

MIRROR_DIR = Path(os.environ.get("MATTA_DATA_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "data")
BANKING77_DIR = MIRROR_DIR / "banking77"
