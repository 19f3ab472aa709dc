"""A package an institute can adopt (issue 12, point 7): licence text shipped, one version
everywhere, and a source build without Rust that stops at once with one line."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import semrsm

ROOT = Path(__file__).resolve().parents[2]
BACKEND = ROOT / "build_backend"
HOOKS = (
    "get_requires_for_build_wheel",
    "get_requires_for_build_sdist",
    "get_requires_for_build_editable",
    "prepare_metadata_for_build_wheel",
    "build_wheel",
    "build_sdist",
)


def _cargo_version() -> str:
    text = (ROOT / "Cargo.toml").read_text()
    package = text.split("[package]", 1)[1].split("\n[", 1)[0]
    found = re.search(r'^version\s*=\s*"([^"]+)"', package, re.M)
    assert found, "no version in Cargo.toml's [package]"
    return found.group(1)


def test_one_version_everywhere():
    version = _cargo_version()
    assert semrsm.__version__ == version
    assert importlib.metadata.version("semrsm") == version
    done = subprocess.run([sys.executable, "-m", "semrsm", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"semrsm {version}"
    assert f"## [{version}]" in (ROOT / "CHANGELOG.md").read_text()


def test_licence_text_in_repository_and_metadata():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "semrsm developers" in text
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^license = "MIT"$', pyproject, re.M)
    assert re.search(r'^license-files = \["LICENSE"\]$', pyproject, re.M)
    assert re.search(r'^license = "MIT"$', (ROOT / "Cargo.toml").read_text(), re.M)
    meta = importlib.metadata.metadata("semrsm")
    if meta.get("License-Expression") is None:
        pytest.skip("installed metadata predates the licence fields (rebuild the package)")
    assert meta["License-Expression"] == "MIT"
    assert "LICENSE" in meta.get_all("License-File")
    assert "CKA" in meta["Keywords"]


def _maturin() -> list[str]:
    """The maturin command line (the test extra installs it); skips when it is missing."""
    pytest.importorskip("maturin", reason="the build backend wraps maturin (in the test extra)")
    beside = Path(sys.executable).parent / "maturin"
    cli = str(beside) if beside.exists() else shutil.which("maturin")
    if cli is None:
        pytest.skip("the maturin command is not installed")
    return [cli]


def test_sdist_ships_licence_changelog_and_backend(tmp_path):
    if shutil.which("cargo") is None:
        pytest.skip("building an sdist needs cargo")
    done = subprocess.run(
        [*_maturin(), "sdist", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (sdist,) = tmp_path.glob("semrsm-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    for needed in ("LICENSE", "CHANGELOG.md", "build_backend/semrsm_build.py", "pyproject.toml", "Cargo.lock"):
        assert needed in names, needed


def _without_cargo(extra_bin: Path | None = None) -> dict[str, str]:
    """The environment minus every PATH entry that holds a cargo (and rustup's variables)."""
    keep = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "cargo").exists()]
    env = {k: v for k, v in os.environ.items() if k not in ("CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN")}
    env["PATH"] = os.pathsep.join(([str(extra_bin)] if extra_bin else []) + keep)
    env.pop("SEMRSM_ALLOW_RUST_DOWNLOAD", None)
    env.pop("MATURIN_NO_INSTALL_RUST", None)
    # maturin is imported by the backend; make it importable wherever it is installed
    import maturin

    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(maturin.__file__).parents[1]), env.get("PYTHONPATH")]))
    return env


def _run_hooks(env: dict[str, str]) -> subprocess.CompletedProcess:
    script = f"""
import sys
sys.path.insert(0, {str(BACKEND)!r})
import semrsm_build
for hook in {HOOKS!r}:
    args = ("/nonexistent",) if hook.startswith(("prepare", "build")) else ()
    try:
        getattr(semrsm_build, hook)(*args)
    except SystemExit as stop:
        print(hook, "|", stop)
    else:
        print(hook, "| no stop")
"""
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)


def test_every_backend_hook_stops_without_cargo():
    _maturin()
    done = _run_hooks(_without_cargo())
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == len(HOOKS)
    for line in lines:
        hook, message = line.split(" | ")
        assert message.startswith("semrsm: building from source needs Rust (cargo), which is not on PATH:"), line
        assert "prebuilt wheel" in message and "https://rustup.rs" in message and "\n" not in message


def test_backend_rejects_a_cargo_older_than_the_msrv(tmp_path):
    _maturin()
    fake = tmp_path / "bin"
    fake.mkdir()
    cargo = fake / "cargo"
    cargo.write_text("#!/bin/sh\necho 'cargo 1.70.0 (ec8a8a0ca 2023-04-25)'\n")
    cargo.chmod(cargo.stat().st_mode | stat.S_IEXEC)
    done = _run_hooks(_without_cargo(extra_bin=fake))
    first = done.stdout.splitlines()[0]
    assert "needs Rust >= 1.89, found cargo 1.70" in first, done.stdout + done.stderr


def test_backend_delegates_to_maturin_when_allowed():
    _maturin()
    env = _without_cargo()
    env["SEMRSM_ALLOW_RUST_DOWNLOAD"] = "1"
    script = f"import sys; sys.path.insert(0, {str(BACKEND)!r}); import semrsm_build; print(semrsm_build.get_requires_for_build_wheel())"
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "puccinialin" in done.stdout  # maturin's own answer: it would now fetch Rust


def test_source_install_without_rust_stops_at_once_with_one_line(tmp_path):
    """pip installing the sdist into a fresh venv, PATH stripped of cargo: one line, no download."""
    if shutil.which("cargo") is None:
        pytest.skip("building the sdist needs cargo")
    done = subprocess.run(
        [*_maturin(), "sdist", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (sdist,) = tmp_path.glob("semrsm-*.tar.gz")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    env = _without_cargo()
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-build-isolation", "--no-deps",
         "--no-index", str(sdist)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    output = install.stdout + install.stderr
    assert install.returncode != 0, output
    assert "semrsm: building from source needs Rust (cargo), which is not on PATH" in output, output
    for sign_of_a_download_or_build in ("Rust not found", "puccinialin", "rustup-init", "Compiling", "Running `maturin"):
        assert sign_of_a_download_or_build not in output, output
