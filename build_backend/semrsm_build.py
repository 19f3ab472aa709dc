"""semrsm's PEP 517 build backend: maturin's, after a check for a Rust toolchain.

Without ``cargo`` on PATH, maturin's backend downloads and installs a Rust toolchain (~850 MB,
through ``puccinialin``) into a temporary directory, silently and for every build. semrsm's source
build instead stops at its first hook with one line saying how to get a prebuilt wheel or Rust.
The check runs in every hook, so it holds whichever hook a frontend calls first.

Set ``SEMRSM_ALLOW_RUST_DOWNLOAD=1`` to let maturin download Rust after all.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any, Mapping, Optional

import maturin

#: The crate's ``rust-version`` (Cargo.toml); an older cargo would fail only after minutes.
MIN_RUST = (1, 89)

_HOW = (
    "install a prebuilt wheel (pip install --only-binary semrsm semrsm) or Rust >= {min} from "
    "https://rustup.rs, then retry"
)


def _require_rust() -> None:
    """Stop at once, with one line, unless a recent enough cargo is on PATH."""
    if os.environ.get("SEMRSM_ALLOW_RUST_DOWNLOAD") == "1":
        return
    os.environ["MATURIN_NO_INSTALL_RUST"] = "1"  # never a silent download from maturin either
    need = ".".join(map(str, MIN_RUST))
    cargo = shutil.which("cargo")
    if cargo is None:
        raise SystemExit(
            "semrsm: building from source needs Rust (cargo), which is not on PATH: " + _HOW.format(min=need)
        )
    try:
        text = subprocess.run([cargo, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return  # let the build report it
    found = re.search(r"cargo (\d+)\.(\d+)", text)
    if found and (int(found.group(1)), int(found.group(2))) < MIN_RUST:
        raise SystemExit(
            f"semrsm: building from source needs Rust >= {need}, found {found.group(0)}: "
            + _HOW.format(min=need)
        )


def get_requires_for_build_wheel(config_settings: Optional[Mapping[str, Any]] = None) -> list[str]:
    _require_rust()
    return maturin.get_requires_for_build_wheel(config_settings)


def get_requires_for_build_editable(config_settings: Optional[Mapping[str, Any]] = None) -> list[str]:
    _require_rust()
    return maturin.get_requires_for_build_editable(config_settings)


def get_requires_for_build_sdist(config_settings: Optional[Mapping[str, Any]] = None) -> list[str]:
    _require_rust()
    return maturin.get_requires_for_build_sdist(config_settings)


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Optional[Mapping[str, Any]] = None) -> str:
    _require_rust()
    return maturin.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def prepare_metadata_for_build_editable(
    metadata_directory: str, config_settings: Optional[Mapping[str, Any]] = None
) -> str:
    _require_rust()
    return maturin.prepare_metadata_for_build_editable(metadata_directory, config_settings)


def build_wheel(
    wheel_directory: str,
    config_settings: Optional[Mapping[str, Any]] = None,
    metadata_directory: Optional[str] = None,
) -> str:
    _require_rust()
    return maturin.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(
    wheel_directory: str,
    config_settings: Optional[Mapping[str, Any]] = None,
    metadata_directory: Optional[str] = None,
) -> str:
    _require_rust()
    return maturin.build_editable(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory: str, config_settings: Optional[Mapping[str, Any]] = None) -> str:
    _require_rust()
    return maturin.build_sdist(sdist_directory, config_settings)
