"""``python -m semrsm build``: every bad path or file is one line on stderr and exit code 2,
checked before any computation; the output is written under exactly the given name, atomically."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import semrsm
import semrsm.__main__ as cli
from semrsm.__main__ import main


@pytest.fixture
def x_file(tmp_path: Path) -> Path:
    x = np.random.default_rng(2).normal(size=(4, 3, 2, 2))
    np.save(tmp_path / "x.npy", x)
    return tmp_path / "x.npy"


@pytest.fixture
def no_compute(monkeypatch):
    """Fail the test if the CLI starts computing (errors must be found before)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the CLI computed before finding the error")

    monkeypatch.setattr(cli, "_compute", refuse)


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    good = np.random.default_rng(0).normal(size=(3, 2, 2, 2))
    files = {}
    files["missing"] = tmp_path / "missing.npy"
    files["empty"] = tmp_path / "empty.npy"
    files["empty"].write_bytes(b"")
    files["corrupt"] = tmp_path / "corrupt.npy"
    files["corrupt"].write_bytes(b"this is not numpy data at all" * 10)
    np.save(tmp_path / "full.npy", good)
    files["truncated"] = tmp_path / "truncated.npy"
    files["truncated"].write_bytes((tmp_path / "full.npy").read_bytes()[:-40])
    files["object"] = tmp_path / "object.npy"
    np.save(files["object"], np.array([[1, "a"], [None, 2.0]], dtype=object), allow_pickle=True)
    files["strings"] = tmp_path / "strings.npy"
    np.save(files["strings"], np.array([["a", "b"], ["c", "d"]]))
    files["directory"] = tmp_path / "adir.npy"
    files["directory"].mkdir()
    files["corrupt_npz"] = tmp_path / "corrupt.npz"
    files["corrupt_npz"].write_bytes(b"PK\x03\x04 broken zip")
    files["truncated_npz"] = tmp_path / "truncated.npz"
    np.savez(tmp_path / "full.npz", x=good)
    files["truncated_npz"].write_bytes((tmp_path / "full.npz").read_bytes()[:-60])
    files["object_npz"] = tmp_path / "object.npz"
    np.savez(files["object_npz"], x=np.array([1, None], dtype=object))
    files["wrong_suffix"] = tmp_path / "x.txt"
    files["wrong_suffix"].write_text("1 2 3")
    return files


BAD_INPUTS = [
    ("missing", "does not exist"),
    ("empty", "is empty"),
    ("corrupt", "not a .npy file"),
    ("truncated", "is truncated"),
    ("object", "Python objects"),
    ("strings", "real numbers"),
    ("directory", "is a directory"),
    ("corrupt_npz", "cannot read"),
    ("truncated_npz", "cannot read"),
    ("object_npz", "cannot read"),
    ("wrong_suffix", ".npy or .npz"),
]


@pytest.mark.parametrize("kind,message", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_file_is_one_line_and_exit_2(tmp_path, capsys, no_compute, kind, message):
    path = _bad_files(tmp_path)[kind]
    out = tmp_path / "out.npy"
    rc, stdout, err = _run(["build", path, "-o", out], capsys)
    assert rc == 2
    assert err.startswith("semrsm: error: ") and err.count("\n") == 1, err
    assert message in err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("kind,message", BAD_INPUTS[:5], ids=[b[0] for b in BAD_INPUTS[:5]])
def test_bad_second_input_file_is_reported_too(tmp_path, capsys, x_file, no_compute, kind, message):
    path = _bad_files(tmp_path)[kind]
    rc, _, err = _run(["build", x_file, "--y", path, "-o", tmp_path / "o.npy"], capsys)
    assert rc == 2 and message in err and "--y" in err


def test_missing_output_directory_is_found_before_computing(tmp_path, capsys, x_file, no_compute):
    rc, _, err = _run(["build", x_file, "-o", tmp_path / "nope" / "out.npy"], capsys)
    assert rc == 2 and "does not exist" in err and err.count("\n") == 1


def test_existing_directory_as_output_is_an_error(tmp_path, capsys, x_file, no_compute):
    target = tmp_path / "results"
    target.mkdir()
    rc, _, err = _run(["build", x_file, "-o", target], capsys)
    assert rc == 2 and "is a directory" in err
    assert not (tmp_path / "results.npy").exists()


def test_key_with_npy_is_an_error(tmp_path, capsys, x_file, no_compute):
    rc, _, err = _run(["build", x_file, "--key", "x", "-o", tmp_path / "o.npy"], capsys)
    assert rc == 2 and "--key" in err


def test_npz_key_selection(tmp_path, capsys):
    x = np.random.default_rng(3).normal(size=(4, 3, 2, 2))
    np.savez(tmp_path / "two.npz", a=x, b=2 * x)
    rc, _, err = _run(["build", tmp_path / "two.npz", "-o", tmp_path / "o.npy"], capsys)
    assert rc == 2 and "--key" in err
    rc, _, err = _run(["build", tmp_path / "two.npz", "--key", "c", "-o", tmp_path / "o.npy"], capsys)
    assert rc == 2 and "no array 'c'" in err
    rc, _, _ = _run(["build", tmp_path / "two.npz", "--key", "b", "-o", tmp_path / "o.npy"], capsys)
    assert rc == 0
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), semrsm.build(2 * x))


def test_output_name_is_used_exactly(tmp_path, capsys, x_file):
    out = tmp_path / "out.bin"
    rc, stdout, _ = _run(["build", x_file, "-o", out], capsys)
    assert rc == 0 and str(out) in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin", "x.npy"]
    with open(out, "rb") as f:
        np.testing.assert_array_equal(np.load(f), semrsm.build(np.load(x_file)))


def test_interrupted_run_keeps_previous_output_and_resumes(tmp_path, capsys, monkeypatch):
    x = np.random.default_rng(5).normal(size=(12, 3, 2, 2))
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "k.npy"
    out.write_bytes(b"previous result")
    from semrsm import _tiles

    real = _tiles.Engine.compute
    calls = []

    def compute_then_die(self, *args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C after two tiles
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(_tiles.Engine, "compute", compute_then_die)
    rc, _, err = _run(["build", tmp_path / "x.npy", "-o", out, "--tile", "3", "--no-progress"], capsys)
    assert rc == 130 and "interrupted" in err and "--resume" in err
    assert out.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.npy", "k.npy.partial", "k.npy.partial.tiles", "x.npy"]
    monkeypatch.undo()
    rc, stdout, _ = _run(["build", tmp_path / "x.npy", "-o", out, "--tile", "3", "--resume"], capsys)
    assert rc == 0 and str(out) in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.npy", "x.npy"]
    np.testing.assert_array_equal(np.load(out), semrsm.build(x))


def test_build_streams_a_npy_input_through_out(tmp_path, capsys, x_file, monkeypatch):
    """A .npy input is handed to semrsm.build as a path (read in row blocks) with out=OUTPUT."""
    seen = {}
    real = cli.build

    def spy(x, y=None, **kwargs):
        seen.update(x=x, out=kwargs.get("out"), progress=kwargs.get("progress"), resume=kwargs.get("resume"))
        return real(x, y, **kwargs)

    monkeypatch.setattr(cli, "build", spy)
    out = tmp_path / "o.npy"
    assert _run(["build", x_file, "-o", out, "--progress"], capsys)[0] == 0
    assert seen == {"x": str(x_file), "out": out, "progress": True, "resume": False}


def test_resume_with_other_options_is_one_line(tmp_path, capsys, monkeypatch):
    x = np.random.default_rng(5).normal(size=(12, 3, 2, 2))
    np.save(tmp_path / "x.npy", x)
    from semrsm import _tiles

    def die(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_tiles.Engine, "compute", die)
    _run(["build", tmp_path / "x.npy", "-o", tmp_path / "k.npy", "--tile", "3"], capsys)
    monkeypatch.undo()
    rc, _, err = _run(["build", tmp_path / "x.npy", "-o", tmp_path / "k.npy", "--tile", "3", "--resume", "--matcher", "none"], capsys)
    assert rc == 2 and "cannot resume" in err and err.count("\n") == 1


def test_scheduler_errors_are_one_line(tmp_path, capsys, x_file, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(cli, "CONNECT_TIMEOUT", 1)
    rc, _, err = _run(["build", x_file, "-o", tmp_path / "o.npy", "--scheduler", "tcp://127.0.0.1:1"], capsys)
    assert rc == 2 and "cannot connect to the Dask scheduler" in err and err.count("\n") == 1


def test_replaces_previous_output(tmp_path, capsys, x_file):
    out = tmp_path / "k.npy"
    out.write_bytes(b"old")
    assert _run(["build", x_file, "-o", out], capsys)[0] == 0
    np.testing.assert_array_equal(np.load(out), semrsm.build(np.load(x_file)))


def test_data_errors_are_one_line(tmp_path, capsys):
    np.save(tmp_path / "nan.npy", np.full((3, 2, 2, 2), np.nan))
    rc, _, err = _run(["build", tmp_path / "nan.npy", "-o", tmp_path / "o.npy"], capsys)
    assert rc == 2 and "non-finite" in err and err.count("\n") == 1


def test_module_entry_point_in_a_subprocess(tmp_path, x_file):
    """The real process: exit status 2, one stderr line, no traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "semrsm", "build", str(tmp_path / "missing.npy"), "-o", str(tmp_path / "o.npy")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("semrsm: error:") and proc.stderr.count("\n") == 1


def test_precision_option_reaches_build(tmp_path, capsys, monkeypatch):
    """``--precision`` (default auto) is passed to ``build``; a name outside the list is an
    argparse error (exit 2) before any computation."""
    # (N, C, H, W) with C = 256 and S = 130: a size where auto takes the mixed path.
    np.save(tmp_path / "x.npy", np.random.default_rng(7).normal(size=(3, 256, 13, 10)))
    seen = []
    original = cli.build

    def spy(*args, **kwargs):
        seen.append(kwargs["precision"])
        return original(*args, **kwargs)

    monkeypatch.setattr(cli, "build", spy)
    for argv, want in (([], "auto"), (["--precision", "float64"], "float64"), (["--precision", "mixed"], "mixed")):
        out = tmp_path / f"K_{want}.npy"
        rc, _, _ = _run(["build", tmp_path / "x.npy", "-o", out, *argv], capsys)
        assert rc == 0 and seen[-1] == want
    # G is the float64 optimum whichever precision: the kernels agree to rounding.
    ks = [np.load(tmp_path / f"K_{p}.npy") for p in ("auto", "float64", "mixed")]
    assert np.allclose(ks[0], ks[1], rtol=1e-12, atol=0) and np.allclose(ks[2], ks[1], rtol=1e-12, atol=0)
    with pytest.raises(SystemExit) as e:
        main(["build", str(tmp_path / "x.npy"), "-o", str(tmp_path / "bad.npy"), "--precision", "float16"])
    assert e.value.code == 2
