"""The hand-written stub of the compiled module matches it (mypy's stubtest)."""

import subprocess
import sys

import pytest


def test_core_stub_matches_runtime() -> None:
    pytest.importorskip("mypy.stubtest")
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "semrsm._core"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
