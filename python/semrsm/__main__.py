"""Command line: ``python -m semrsm demo`` and ``python -m semrsm build``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from . import __version__, build
from ._example import load_example
from ._errors import OptionError, SemrsmError
from ._tiles import PRECISIONS
from ._validation import LAYOUTS
from .analysis import translation
from .kernels import KERNELS, SIGMA_RULES

EXAMPLE_LAYERS = ("block10", "block15")


def demo(kernel: str, threads: Optional[int]) -> None:
    data = load_example()
    photos = [str(p) for p in data["photos"]]
    print(f"semrsm {__version__} demo: EfficientNet-Lite0 maps of 10 photos and of the same photos shifted 64 px")
    print(f"kernel={kernel}. spatio-semantic: matcher='none'; semantic: matcher='exact'.")
    print("own = similarity of a photo to its own shifted crop; others = mean similarity to the 18 other")
    print("inputs; z = (own - others) / std(others): how far the shifted crop stands out (paper, Fig. 2).\n")
    for layer in EXAMPLE_LAYERS:
        z = data[layer]
        n, c, h, w = z.shape
        print(f"## {layer}: {n} inputs, C={c}, S={h}x{w}={h * w}")
        results = [
            (label, r["partner"], r["others_mean"], r["others_std"], r["nearest"], r["seconds"])
            for label, r in translation(z, kernel=kernel, threads=threads).items()
        ]
        header = "".join(f"{label + ': own  others     z':>36}" for label, *_ in results)
        print(f"{'photo':<12}{header}")
        for i, photo in enumerate(photos):
            cells = "".join(
                f"{own[i]:>24.3f} {mean[i]:>7.3f} {(own[i] - mean[i]) / std[i]:>5.1f}"
                for _, own, mean, std, _, _ in results
            )
            print(f"{photo:<12}{cells}")
        for label, own, mean, std, nearest, elapsed in results:
            print(
                f"  {label:<16} own {own.mean():.3f} vs others {mean.mean():.3f}: the shifted crop is "
                f"{((own - mean) / std).mean():.1f} std above the other photos on average and the "
                f"nearest neighbour for {int(nearest.sum())}/{len(nearest)} photos ({elapsed:.2f} s)"
            )
        print()


class CliError(SemrsmError):
    """A problem with the command line itself (files, paths, flags): reported as one line, exit 2."""


def build_command(args: argparse.Namespace) -> None:
    """``semrsm build``: check every path first, then compute tile by tile straight into the output.

    The phases are separate functions so flags can hook into each: :func:`_check_output` and
    :func:`_load` run before any computation, :func:`_compute` does the work. The output is
    written by :func:`semrsm.build` with ``out=``: a ``.npy`` input is read in row blocks, the
    result goes to ``<output>.partial`` (with a sidecar of finished tiles, so ``--resume``
    continues a killed run) and replaces the output atomically only once complete.
    """
    output = _check_output(args.output)
    x = _load(args.input, args.key, "input")
    y = None if args.y is None else _load(args.y, args.key, "--y")
    options = _matcher_options(args.matcher_option)
    client = _connect(args.scheduler)
    start = time.perf_counter()
    try:
        K = _compute(args, x, y, options, output, client)
    finally:
        if client is not None:
            client.close()
    described = args.matcher + "".join(f" {k}={v}" for k, v in options.items())
    print(f"wrote {output}: {K.shape} {args.kernel} RSM ({described}) in {time.perf_counter() - start:.2f} s")


def _compute(
    args: argparse.Namespace,
    x: Union[np.ndarray, str],
    y: Union[np.ndarray, str, None],
    options: dict[str, int],
    output: Path,
    client: Any = None,
) -> np.ndarray:
    """The RSM the ``build`` arguments ask for, written to ``output``."""
    matcher_options: dict[str, Any] = dict(options)
    return build(  # type: ignore[no-any-return]
        x,
        y,
        kernel=args.kernel,
        matcher=args.matcher,
        layout=args.layout,
        center=not args.no_center,
        sigma=args.sigma,
        sigma_scale=args.sigma_scale,
        threads=args.threads,
        precision=args.precision,
        out=output,
        resume=args.resume,
        progress=args.progress,
        client=client,
        tile=args.tile,
        prefix_tokens=args.prefix_tokens,
        **matcher_options,
    )


#: Seconds to wait for the Dask scheduler of ``--scheduler``.
CONNECT_TIMEOUT = 30


def _connect(address: Optional[str]) -> Any:
    """A ``dask.distributed.Client`` for ``--scheduler ADDRESS`` (None without it)."""
    if address is None:
        return None
    try:
        from distributed import Client
    except ImportError:
        raise CliError("--scheduler needs dask.distributed: pip install 'semrsm[dask]'") from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT)
    except Exception as exc:  # OSError, TimeoutError, ValueError for a malformed address
        raise CliError(f"cannot connect to the Dask scheduler {address!r}: {_one_line(exc)}") from None


def _sigma_arg(text: str) -> Union[float, str]:
    """``--sigma``: a rule's name or a number (argparse reports anything else)."""
    if text in SIGMA_RULES:
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number or one of {', '.join(SIGMA_RULES)}, got {text!r}"
        ) from None


def _matcher_options(pairs: Sequence[str]) -> dict[str, int]:
    """``["b=512"]`` -> ``{"b": 512}``; a malformed pair raises :class:`OptionError`."""
    options = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            options[name.strip()] = int(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise OptionError(f"matcher options are NAME=INTEGER (e.g. -O b=512), got {pair!r}")
    return options


def _check_output(path: str) -> Path:
    """The output path, exactly as given, once it is known to be writable (before any work).

    Errors: an existing directory, a missing or non-directory parent, a parent without write
    permission.
    """
    out = Path(path)
    if out.is_dir():
        raise CliError(f"output {path!r} is a directory; give a file name such as {str(out / 'rsm.npy')!r}")
    parent = out.parent
    if not parent.is_dir():
        raise CliError(f"cannot write {path!r}: the directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CliError(f"cannot write {path!r}: no write permission in {str(parent)!r}")
    return out


def _load(path: str, key: Optional[str], what: str) -> Union[np.ndarray, str]:
    """A checked ``.npy`` path (streamed by :func:`semrsm.build`) or the numeric array of a
    ``.npz`` file; :class:`CliError` for anything that is not one (missing, a directory, empty,
    truncated, corrupt, object arrays)."""
    p = Path(path)
    if not p.exists():
        raise CliError(f"{what} file {path!r} does not exist")
    if p.is_dir():
        raise CliError(f"{what} {path!r} is a directory, not a .npy or .npz file")
    if p.suffix not in (".npy", ".npz"):
        raise CliError(f"{what} {path!r} must be a .npy or .npz file")
    if p.suffix == ".npy" and key is not None:
        raise CliError(f"--key selects an array inside a .npz file; {path!r} is a .npy file")
    try:
        if p.suffix == ".npz":
            # Open the file ourselves: np.load leaks the handle of a corrupt archive.
            with open(p, "rb") as f, np.load(f, allow_pickle=False) as data:
                if key is None:
                    if len(data.files) != 1:
                        raise CliError(f"{path!r} holds {data.files}; choose one with --key")
                    key = data.files[0]
                if key not in data.files:
                    raise CliError(f"{path!r} has no array {key!r}; it holds {data.files}")
                arr = data[key]
        else:
            _check_npy_header(p, what)
            arr = np.load(p, mmap_mode="r", allow_pickle=False)  # header and size checked here
            if isinstance(arr, np.ndarray) and arr.dtype.kind in "fiu":
                return str(p)  # read in row blocks by semrsm.build, never loaded whole
    except CliError:
        raise
    except Exception as exc:  # numpy raises ValueError, OSError, EOFError, BadZipFile, ...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CliError(f"cannot read {what} {path!r}: {reason}") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise CliError(f"{what} {path!r} must hold real numbers, got dtype {getattr(arr, 'dtype', type(arr))}")
    return arr


def _check_npy_header(p: Path, what: str) -> None:
    """Read the header of a ``.npy`` file: empty, foreign, object-dtype or truncated files are
    reported in plain words (numpy's own messages name pickles and mmap lengths)."""
    size = p.stat().st_size
    if size == 0:
        raise CliError(f"{what} {str(p)!r} is empty (0 bytes)")
    with open(p, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise CliError(f"{what} {str(p)!r} is not a .npy file (no NumPy header)")
        f.seek(0)
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        except Exception as exc:
            raise CliError(f"{what} {str(p)!r} has a corrupt .npy header: {exc}") from None
        if dtype.hasobject:
            raise CliError(f"{what} {str(p)!r} holds Python objects (dtype {dtype}), not numbers")
        expected = f.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size < expected:
        raise CliError(f"{what} {str(p)!r} is truncated: {size} bytes, the header promises {expected}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m semrsm`` (subcommands ``demo`` and ``build``)."""
    parser = argparse.ArgumentParser(prog="semrsm", description="Semantic representational similarity matrices.")
    parser.add_argument("--version", action="version", version=f"semrsm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p_demo = sub.add_parser("demo", help="semantic vs spatio-semantic RSMs on the bundled example")
    p_demo.add_argument("--kernel", choices=KERNELS, default="cosine")
    p_demo.add_argument("--threads", type=int, default=None)

    p_report = sub.add_parser("report", help="the paper's analyses on the bundled example: Markdown + PNG plots")
    p_report.add_argument("-o", "--output", default="semrsm-report", help="output folder (default semrsm-report)")
    p_report.add_argument("--kernel", choices=KERNELS, default="cosine")
    p_report.add_argument("--threads", type=int, default=None)

    p_build = sub.add_parser("build", help="compute an RSM from a .npy/.npz file and save it as .npy")
    p_build.add_argument("input", help=".npy or .npz file of representations")
    p_build.add_argument(
        "-o", "--output", required=True, help="output file, written as .npy under exactly this name (replaced atomically)"
    )
    p_build.add_argument("--y", default=None, help="second set of representations (rectangular RSM)")
    p_build.add_argument("--key", default=None, help="array name inside .npz inputs")
    p_build.add_argument("--kernel", choices=KERNELS, default="linear")
    p_build.add_argument("--matcher", default="exact", help="exact (default), none, greedy, topk_greedy, batch_optimal, auction")
    p_build.add_argument(
        "-O",
        "--matcher-option",
        action="append",
        default=[],
        metavar="NAME=INT",
        help="matcher option, repeatable: -O b=512 (batch_optimal), -O k=128 (topk_greedy), -O gap_ppm=1000 (auction)",
    )
    p_build.add_argument("--layout", choices=LAYOUTS, default="auto")
    p_build.add_argument("--no-center", action="store_true", help="do not subtract the mean representation")
    p_build.add_argument(
        "--sigma",
        type=_sigma_arg,
        default=None,
        help="RBF bandwidth: a number, 'median' (default: median non-zero distance) or 'kornblith' (sqrt of the "
        "median squared distance, diagonal included)",
    )
    p_build.add_argument("--sigma-scale", type=float, default=1.0, help="multiplies the RBF bandwidth (Kornblith's threshold)")
    p_build.add_argument("--threads", type=int, default=None)
    p_build.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="affinity arithmetic (default auto: float32 affinities with a float64 certificate where "
        "that is faster, else float64; G is the float64 optimum either way)",
    )
    p_build.add_argument(
        "--resume",
        action="store_true",
        help="continue a killed run of the same command (finished tiles are kept in OUTPUT.partial)",
    )
    p_build.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: on a terminal, for runs longer than 2 s)",
    )
    p_build.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="compute the tiles on a Dask cluster, e.g. tcp://10.0.0.1:8786 (pip install 'semrsm[dask]')",
    )
    p_build.add_argument("--tile", type=int, default=None, metavar="ROWS", help="rows per tile (default: automatic)")
    p_build.add_argument(
        "--prefix-tokens",
        type=int,
        default=0,
        metavar="K",
        help="the first K tokens (ViT CLS/register tokens, timm's num_prefix_tokens) are compared "
        "position by position, not matched (default 0)",
    )
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m semrsm`` and the ``semrsm`` script; returns the exit code
    (0 success, 2 bad input or usage, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            demo(args.kernel, args.threads)
        elif args.command == "report":
            from .report import write_report

            print(f"wrote {write_report(args.output, kernel=args.kernel, threads=args.threads)[0]}")
        else:
            build_command(args)
    except SemrsmError as exc:
        print(f"semrsm: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the disk filled up while writing
        print(f"semrsm: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        resumable = args.command == "build" and Path(str(args.output) + ".partial").exists()
        hint = "; run the same command with --resume to continue" if resumable else ""
        print(f"semrsm: interrupted{hint}", file=sys.stderr)
        return 130
    return 0


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
