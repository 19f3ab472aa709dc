"""Where the benchmark scripts find the shared fixtures (imported by the scripts beside it)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

FIXTURE = "effnet_lite0_s64_to_s4096.npz"


def data_dir(fixture: str = FIXTURE) -> Path:
    """``$SEMRSM_DATA``, else ``../shared/data`` beside the repository; exit with a clear message
    when ``fixture`` is not there."""
    env = os.environ.get("SEMRSM_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not (path / fixture).is_file():
        sys.exit(
            f"{fixture} not found in {path}. Set SEMRSM_DATA to the folder that holds it "
            "(the project's shared data folder, ../shared/data beside the repository)."
        )
    return path
