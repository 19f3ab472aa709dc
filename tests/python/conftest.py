"""Shared pytest configuration for the semrsm Python tests.

- Hypothesis profiles: ``ci`` (default; few, derandomised examples) and ``dev`` (more examples).
  Select one with the environment variable ``HYPOTHESIS_PROFILE``.
- ``shifted_pairs``: the example data bundled with semrsm (real EfficientNet-Lite0 maps).
- ``shared_data_dir()``: the optional folder of larger real representations (``SEMRSM_DATA`` or
  ``../shared/data`` beside the repository root); tests that need it skip when it is absent.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=_SUPPRESSED,
    print_blob=True,
)
settings.register_profile(
    "dev",
    max_examples=60,
    deadline=None,
    suppress_health_check=_SUPPRESSED,
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def shared_data_dir() -> Optional[Path]:
    """The optional shared data folder, or ``None`` when it does not exist.

    ``$SEMRSM_DATA`` if set, else ``<repo root>/../shared/data``.
    """
    env = os.environ.get("SEMRSM_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"
    return path if path.is_dir() else None


def require_shared_file(name: str) -> Path:
    """Path of ``name`` in the shared data folder; skips the calling test when it is missing."""
    folder = shared_data_dir()
    if folder is None:
        pytest.skip(
            "shared data folder not found (set SEMRSM_DATA or provide ../shared/data "
            "beside the repository root)"
        )
    path = folder / name
    if not path.is_file():
        pytest.skip(f"{name} not found in the shared data folder {folder}")
    return path


@pytest.fixture(scope="session")
def shifted_pairs():
    """semrsm's bundled example data as a dict of arrays.

    ``block10`` (20, 112, 14, 14) and ``block15`` (20, 320, 7, 7) float32 maps and ``photos``:
    rows 0-9 are 10 photos, rows 10-19 the same photos shifted down.
    """
    path = importlib.resources.files("semrsm") / "data" / "shifted_pairs.npz"
    with importlib.resources.as_file(path) as real_path:
        with np.load(real_path) as archive:
            return {key: archive[key] for key in archive.files}
