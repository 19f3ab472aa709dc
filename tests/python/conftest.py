"""Shared pytest configuration for the semrsm Python tests.

- Hypothesis profiles: ``ci`` (default; few, derandomised examples), ``dev`` (more examples) and
  ``fuzz`` (``SEMRSM_FUZZ_CASES`` examples, default 2000, for long runs of ``test_fuzz.py``).
  Select one with the environment variable ``HYPOTHESIS_PROFILE``.
- ``shifted_pairs``: the example data bundled with semrsm (real EfficientNet-Lite0 maps).
- Shared test data and oracles: ``SEEDS``, ``make`` (random arrays of several kinds) and
  ``ref_gram`` (scipy reference of the matched inner products).
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
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment as scipy_lsa

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
# Long fuzzing runs (tests/python/test_fuzz.py): HYPOTHESIS_PROFILE=fuzz, SEMRSM_FUZZ_CASES
# examples per test (default 2000).
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("SEMRSM_FUZZ_CASES", "2000")),
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


#: Seeds for ``np.random.default_rng`` drawn by hypothesis.
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


def make(rng: np.random.Generator, kind: str, shape: tuple[int, ...]) -> np.ndarray:
    """Random data of a kind: ``normal``; ``ties`` (small integers, many ties); ``offset`` (scaled
    and shifted Gaussian); ``relu`` (non-negative with zeros, like ReLU feature maps)."""
    if kind == "ties":
        return rng.integers(-2, 3, size=shape).astype(np.float64)
    if kind == "offset":
        return rng.normal(size=shape) * rng.uniform(0.1, 10.0) + rng.normal()
    if kind == "relu":
        return np.maximum(rng.normal(size=shape) - 0.3, 0.0)
    return rng.normal(size=shape)


def ref_gram(x: np.ndarray, y: Optional[np.ndarray] = None, matcher: str = "exact") -> np.ndarray:
    """Reference matched inner products of (N, S, C) arrays: scipy's LAP on each pair's affinity
    ``x_i y_jᵀ`` (maximised), or the flattened inner product for ``matcher="none"``."""
    yy = x if y is None else y
    if matcher == "none":
        return x.reshape(x.shape[0], -1) @ yy.reshape(yy.shape[0], -1).T
    G = np.empty((x.shape[0], yy.shape[0]))
    for i, xi in enumerate(x):
        for j, yj in enumerate(yy):
            A = xi @ yj.T
            r, c = scipy_lsa(A, maximize=True)
            G[i, j] = A[r, c].sum()
    return G


@pytest.fixture(scope="module")
def dask_client():
    """A two-process Dask ``LocalCluster`` (one thread each) for the module's tests; skips the
    test when ``distributed`` is not installed. The dashboard takes a free port (``":0"``): with
    the default, concurrent test runs clash on port 8787."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler for the test (restored after it). A process started in the
    background by a shell without job control inherits SIGINT ignored, and then
    ``_thread.interrupt_main`` (the simulated Ctrl-C of the interrupt tests) does nothing."""
    import signal

    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
