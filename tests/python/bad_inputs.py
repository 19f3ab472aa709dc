"""The bad-input table: the single source of ``docs/errors.md`` and of ``test_bad_inputs.py``.

Each row is a call (Python code, run as written) on a bad input and the exception it must raise
(or, for the command line, its exit code). ``render()`` runs every row and writes the Markdown
table with what the user actually gets; ``test_bad_inputs.py`` checks each row and that
``docs/errors.md`` equals ``render()``. After changing a message or adding a row, regenerate:

    python tests/python/bad_inputs.py > docs/errors.md
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import semrsm
from semrsm import NonFiniteError, OptionError, SemrsmError, ShapeError
from semrsm.__main__ import main as cli_main


@dataclass(frozen=True)
class Row:
    """One bad input: ``code`` evaluated with :func:`namespace`, and what it must give."""

    what: str
    code: str
    expected: Any  # an exception class, or an int exit code for ``cli(...)`` rows


X = "np.random.default_rng(0).normal(size=(4, 3, 2, 2))"

ROWS = [
    # --- linear_sum_assignment
    Row("NaN entry", "semrsm.linear_sum_assignment([[0.0, np.nan], [1.0, 2.0]])", NonFiniteError),
    Row("no assignment avoids the +inf entries", "semrsm.linear_sum_assignment([[np.inf, np.inf], [1.0, 2.0]])", SemrsmError),
    Row("-inf when minimising", "semrsm.linear_sum_assignment([[0.0, -np.inf], [1.0, 2.0]])", SemrsmError),
    Row("entry beyond 1e300", "semrsm.linear_sum_assignment([[0.0, 1e301], [1.0, 2.0]])", NonFiniteError),
    Row("3-D costs", "semrsm.linear_sum_assignment(np.zeros((2, 2, 2)))", ShapeError),
    Row("complex costs", "semrsm.linear_sum_assignment(np.zeros((2, 2), complex))", SemrsmError),
    # --- match_affinity
    Row("non-square affinity", "semrsm.match_affinity(np.ones((2, 3)))", ShapeError),
    Row("empty affinity", "semrsm.match_affinity(np.ones((0, 0)))", ShapeError),
    Row("NaN affinity", "semrsm.match_affinity(np.full((2, 2), np.nan))", NonFiniteError),
    Row("norm-based matcher without norms", "semrsm.match_affinity(np.eye(2), matcher='greedy')", OptionError),
    Row("negative norm", "semrsm.match_affinity(np.eye(2), [1.0, -1.0], [1.0, 1.0], matcher='greedy')", SemrsmError),
    Row("misspelt keyword", "semrsm.match_affinity(np.eye(2), return_bounds=True)", OptionError),
    Row("prefix_tokens = S (no position left to match)", "semrsm.match_affinity(np.eye(2), prefix_tokens=2)", OptionError),
    # --- gram / build
    Row("NaN in x", "semrsm.build(np.full((3, 2, 2, 2), np.nan))", NonFiniteError),
    Row("1-D x", "semrsm.build(np.ones(3))", ShapeError),
    Row("empty x", "semrsm.build(np.ones((0, 3, 2, 2)))", ShapeError),
    Row("x and y with different C", f"semrsm.build({X}, np.ones((2, 4, 2, 2)))", ShapeError),
    Row("one sample with center=True", "semrsm.build(np.ones((1, 3, 2, 2)))", ShapeError),
    Row("string data", "semrsm.build(np.array([[['a']]]))", SemrsmError),
    Row("values whose products overflow", f"semrsm.build(1e200 * {X})", NonFiniteError),
    Row("unknown matcher", f"semrsm.build({X}, matcher='hungarian')", OptionError),
    Row("option of another matcher", f"semrsm.build({X}, matcher='exact', b=4)", OptionError),
    Row("option out of range", f"semrsm.build({X}, matcher='batch_optimal', b=0)", OptionError),
    Row("misspelt keyword", f"semrsm.build({X}, kernal='rbf')", OptionError),
    Row("unknown kernel", f"semrsm.build({X}, kernel='gaussian')", OptionError),
    Row("sigma with a non-RBF kernel", f"semrsm.build({X}, kernel='cosine', sigma=1.0)", OptionError),
    Row("non-positive sigma", f"semrsm.build({X}, kernel='rbf', sigma=0)", OptionError),
    Row("unknown layout", f"semrsm.build({X}, layout='nwhc')", OptionError),
    Row("layout of the wrong rank", f"semrsm.build({X}, layout='nsc')", ShapeError),
    Row("threads = 0", f"semrsm.gram({X}, threads=0)", OptionError),
    Row("flag that is not a bool", f"semrsm.gram({X}, return_permutations='no')", OptionError),
    Row("unknown precision", f"semrsm.gram({X}, precision='float16')", OptionError),
    Row("negative prefix_tokens", f"semrsm.gram({X}, prefix_tokens=-1)", OptionError),
    Row("prefix_tokens = S (no token left to match)", f"semrsm.gram({X}, prefix_tokens=4)", OptionError),
    Row("zero-norm sample, cosine", "semrsm.build(np.zeros((3, 2, 2, 2)), kernel='cosine', center=False)", SemrsmError),
    # --- certified_gap
    Row("shapes that would broadcast", "semrsm.certified_gap(np.ones((3, 1)), np.ones(3))", ShapeError),
    Row("NaN value", "semrsm.certified_gap(np.nan, 1.0)", NonFiniteError),
    # --- CKA
    Row("NaN in K", "semrsm.cka(np.full((4, 4), np.nan), np.eye(4))", NonFiniteError),
    Row("non-square K", "semrsm.cka(np.ones((4, 3)), np.ones((4, 3)))", ShapeError),
    Row("3-D K", "semrsm.hsic(np.ones((2, 2, 2)), np.ones((2, 2, 2)))", ShapeError),
    Row("K and L of different n", "semrsm.cka(np.eye(4), np.eye(5))", ShapeError),
    Row("debiased with n < 4", "semrsm.cka(np.eye(3), np.eye(3), debiased=True)", ShapeError),
    Row("non-symmetric K", "semrsm.cka(np.triu(np.ones((4, 4))), np.eye(4))", ShapeError),
    Row("constant K (no variance)", "semrsm.cka(np.ones((4, 4)), np.eye(4))", SemrsmError),
    Row("unknown estimator", "semrsm.hsic(np.eye(4), np.eye(4), estimator='unbiased')", OptionError),
    Row("HSIC beyond float64", "semrsm.hsic(1e200 * np.eye(4), 1e200 * np.eye(4))", NonFiniteError),
    Row("unbiased centring, n < 4", "semrsm.center_gram(np.eye(3), unbiased=True)", ShapeError),
    Row("layer_cka: resume=True (it needs a path)", f"semrsm.layer_cka({X}, {X}, resume=True)", OptionError),
    Row("layer_cka: prefix_tokens not an int or a pair", f"semrsm.layer_cka({X}, {X}, prefix_tokens=(1, 0, 0))", OptionError),
    Row("minibatch_cka: prefix_tokens = S of y", f"semrsm.minibatch_cka({X}, {X}, 4, prefix_tokens=(0, 4))", OptionError),
    # --- command line (run in a folder holding x.npy, bad files, and a folder out/)
    Row("missing input", "cli('build', 'missing.npy', '-o', 'k.npy')", 2),
    Row("a folder as input", "cli('build', 'out', '-o', 'k.npy')", 2),
    Row("empty file", "cli('build', 'empty.npy', '-o', 'k.npy')", 2),
    Row("not a .npy file", "cli('build', 'text.npy', '-o', 'k.npy')", 2),
    Row("truncated .npy", "cli('build', 'truncated.npy', '-o', 'k.npy')", 2),
    Row("object array", "cli('build', 'objects.npy', '-o', 'k.npy')", 2),
    Row("corrupt .npz", "cli('build', 'corrupt.npz', '-o', 'k.npy')", 2),
    Row("--key with a .npy", "cli('build', 'x.npy', '--key', 'x', '-o', 'k.npy')", 2),
    Row("output is a folder", "cli('build', 'x.npy', '-o', 'out')", 2),
    Row("output folder missing", "cli('build', 'x.npy', '-o', 'nowhere/k.npy')", 2),
    Row("malformed matcher option", "cli('build', 'x.npy', '-o', 'k.npy', '-O', 'b')", 2),
    Row("NaN in the input file", "cli('build', 'nan.npy', '-o', 'k.npy')", 2),
]


def _cli_folder(folder: Path) -> None:
    x = np.random.default_rng(0).normal(size=(4, 3, 2, 2))
    np.save(folder / "x.npy", x)
    np.save(folder / "nan.npy", np.full((3, 2, 2, 2), np.nan))
    (folder / "empty.npy").write_bytes(b"")
    (folder / "text.npy").write_text("1,2,3\n")
    (folder / "truncated.npy").write_bytes((folder / "x.npy").read_bytes()[:-8])
    np.save(folder / "objects.npy", np.array([1, None], dtype=object), allow_pickle=True)
    (folder / "corrupt.npz").write_bytes(b"PK\x03\x04 not a zip")
    (folder / "out").mkdir()


def outcome(row: Row) -> tuple[Any, str]:
    """Run ``row``: ``(exception class or exit code, message or stderr)``; ``(None, "")`` when
    nothing was raised."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _cli_folder(folder)

        def cli(*argv: str) -> None:
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                rc = cli_main(list(argv))
            raise _Exit(rc, err.getvalue())

        cwd = os.getcwd()
        os.chdir(folder)
        try:
            eval(row.code, {"np": np, "semrsm": semrsm, "cli": cli})  # noqa: S307 - our own table
        except _Exit as done:
            return done.rc, done.stderr.strip()
        except SemrsmError as exc:
            return type(exc), str(exc)
        finally:
            os.chdir(cwd)
    return None, ""


class _Exit(Exception):
    def __init__(self, rc: int, stderr: str):
        super().__init__(rc)
        self.rc, self.stderr = rc, stderr


def render() -> str:
    """The Markdown of ``docs/errors.md``."""
    lines = [
        "# What semrsm does with bad input",
        "",
        "Every row is run by the test suite (`tests/python/test_bad_inputs.py`), which also checks",
        "that this file is current; it is generated from `tests/python/bad_inputs.py`",
        "(`python tests/python/bad_inputs.py > docs/errors.md`). All exceptions subclass",
        "`semrsm.SemrsmError`, itself a `ValueError`. Command-line errors are one line on stderr",
        "and exit code 2, found before any computation; `X` is a valid `(4, 3, 2, 2)` array.",
        "",
        "| input | call | what the user gets |",
        "|---|---|---|",
    ]
    for row in ROWS:
        got, message = outcome(row)
        result = f"exit {got}: `{message}`" if isinstance(got, int) else f"`{got.__name__}`: {message}"
        code = row.code.replace(X, "X")
        cell = result.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {row.what} | `{code}` | {cell} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
