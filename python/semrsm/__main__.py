"""Command line: ``python -m semrsm demo`` and ``python -m semrsm build``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from . import __version__, build
from ._example import load_example
from ._errors import OptionError, SemrsmError
from ._validation import LAYOUTS
from .kernels import KERNELS

EXAMPLE_LAYERS = ("block10", "block15")


def shift_margins(K: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per photo i (rows 0..n-1, shifted crops n..2n-1): similarity to its own shifted crop, mean
    and standard deviation of its similarities to the other 2n-2 inputs, and whether the shifted
    crop is its nearest neighbour."""
    n = K.shape[0] // 2
    own = np.array([K[i, i + n] for i in range(n)])
    rest = [np.array([K[i, j] for j in range(2 * n) if j not in (i, i + n)]) for i in range(n)]
    mean = np.array([r.mean() for r in rest])
    std = np.array([r.std() for r in rest])
    nearest = own > np.array([r.max() for r in rest])
    return own, mean, std, nearest


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
        results = []
        for label, matcher in (("spatio-semantic", "none"), ("semantic", "exact")):
            start = time.perf_counter()
            K = build(z, kernel=kernel, matcher=matcher, threads=threads)
            results.append((label, *shift_margins(K), time.perf_counter() - start))
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


def build_command(args: argparse.Namespace) -> None:
    x = _load(args.input, args.key)
    y = None if args.y is None else _load(args.y, args.key)
    options = _matcher_options(args.matcher_option)
    start = time.perf_counter()
    K = build(
        x,
        y,
        kernel=args.kernel,
        matcher=args.matcher,
        layout=args.layout,
        center=not args.no_center,
        sigma=args.sigma,
        threads=args.threads,
        **options,
    )
    np.save(args.output, K)
    described = args.matcher + "".join(f" {k}={v}" for k, v in options.items())
    print(f"wrote {args.output}: {K.shape} {args.kernel} RSM ({described}) in {time.perf_counter() - start:.2f} s")


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


def _load(path: str, key: Optional[str]) -> np.ndarray:
    p = Path(path)
    if p.suffix == ".npz":
        with np.load(p) as data:
            if key is None:
                if len(data.files) != 1:
                    raise SemrsmError(f"{p} holds {data.files}; choose one with --key")
                key = data.files[0]
            if key not in data.files:
                raise SemrsmError(f"{p} has no array {key!r}; it holds {data.files}")
            return data[key]
    return np.load(p, mmap_mode="r")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="semrsm", description="Semantic representational similarity matrices.")
    parser.add_argument("--version", action="version", version=f"semrsm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p_demo = sub.add_parser("demo", help="semantic vs spatio-semantic RSMs on the bundled example")
    p_demo.add_argument("--kernel", choices=KERNELS, default="cosine")
    p_demo.add_argument("--threads", type=int, default=None)

    p_build = sub.add_parser("build", help="compute an RSM from a .npy/.npz file and save it as .npy")
    p_build.add_argument("input", help=".npy or .npz file of representations")
    p_build.add_argument("-o", "--output", required=True, help="output .npy file")
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
    p_build.add_argument("--sigma", type=float, default=None, help="RBF bandwidth (default: median distance)")
    p_build.add_argument("--threads", type=int, default=None)

    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            demo(args.kernel, args.threads)
        else:
            build_command(args)
    except SemrsmError as exc:
        print(f"semrsm: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
