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


def write_section(path: Path, text: str, start: str, end: str, what: str) -> None:
    """Put ``text`` between the markers ``start`` and ``end`` of the Markdown file ``path``
    (replacing what was there; appended with the markers when they are absent)."""
    section = f"{start}\n{text}\n{end}"
    old = path.read_text() if path.exists() else ""
    if start in old and end in old:
        new = old[: old.index(start)] + section + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(new)
    print(f"wrote the {what} section of {path}", file=sys.stderr)


def emit(table: str, output: Path | None) -> None:
    """Print a Markdown table and append it to ``output`` when one is given."""
    print(table)
    if output:
        with output.open("a") as fh:
            fh.write("\n" + table + "\n")
