"""``python -m semrsm report``: the paper's analyses on the bundled real data, as Markdown + PNGs.

:func:`compute` runs every analysis of :mod:`semrsm.analysis` on :func:`semrsm.load_example`
(EfficientNet-Lite0 maps of 10 photos and of the same photos shifted 64 px, with the model's class
probabilities) and returns the numbers; :func:`write_report` also renders the figures of
:mod:`semrsm.plots` and writes ``report.md`` beside them. Takes a few seconds.
"""

from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from . import __version__
from ._api import build, match_affinity
from ._example import load_example
from .analysis import jsd, layer_comparison, pair_gap, partner_pairs, retrieval, rsm_correlation

__all__ = ["compute", "write_report", "LAYERS", "RSM_KINDS"]

#: Layers of the bundled example used by the report.
LAYERS = ("block10", "block15")
#: The RSMs compared: (label, matcher).
RSM_KINDS = (("spatio-semantic", "none"), ("shift", "shift"), ("semantic", "exact"))
#: Matchers of the quality/time frontier, as (label, matcher, options).
_FRONTIER: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("semrsm exact", "exact", {}),
    ("auction (default, 3 %)", "auction", {}),
    ("auction gap 0.1 %", "auction", {"gap_ppm": 1000}),
    ("greedy", "greedy", {}),
    ("topk_greedy k=32", "topk_greedy", {"k": 32}),
    ("batch_optimal b=32", "batch_optimal", {"b": 32}),
    ("batch_optimal b=64", "batch_optimal", {"b": 64}),
    ("shift", "shift", {}),
)


def _frontier(z: np.ndarray, layer: str, pairs: int = 6, repeats: int = 3) -> list[dict[str, Any]]:
    """k/k_opt and median time per pair of each matcher on ``pairs`` affinities of ``z``."""
    n, c, h, w = z.shape
    v = z.reshape(n, c, h * w).transpose(0, 2, 1).astype(np.float64)
    v = v - v.mean(axis=0)
    rng = np.random.default_rng(0)
    chosen = [tuple(int(t) for t in rng.choice(n, size=2, replace=False)) for _ in range(pairs)]
    rows = []
    problems = []
    for i, j in chosen:
        A = np.ascontiguousarray(v[i] @ v[j].T)
        problems.append((A, np.linalg.norm(v[i], axis=1), np.linalg.norm(v[j], axis=1)))
    exact = [match_affinity(A, nx, ny, matcher="exact")[1] for A, nx, ny in problems]
    for label, matcher, options in _FRONTIER:
        if matcher == "shift":
            options = {"w": w}
        times, quality = [], []
        for (A, nx, ny), best in zip(problems, exact):
            runs = []
            for _ in range(repeats):
                start = time.perf_counter()
                _, value = match_affinity(A, nx, ny, matcher=matcher, **options)
                runs.append(time.perf_counter() - start)
            times.append(statistics.median(runs))
            quality.append(value / best)
        rows.append({"label": label, "time": statistics.median(times), "quality": {layer: 100 * float(np.mean(quality))}})
    rows.append({"label": "no match", "time": 0.0, "quality": {layer: 100 * float(np.mean([np.trace(A) / b for (A, _, _), b in zip(problems, exact)]))}})
    return rows


def compute(kernel: str = "cosine", threads: Optional[int] = None, data: Optional[dict[str, np.ndarray]] = None) -> dict[str, Any]:
    """Every number of the report, on the bundled example (or ``data`` of the same form).

    Parameters
    ----------
    kernel : {"cosine", "linear", "rbf"}
        Kernel of the RSMs (the CKA comparison of layers uses it too).
    threads : int, optional
        Threads of :func:`semrsm.build`.
    data : dict, optional
        ``{"block10": (2n, C, H, W), "block15": ..., "probs": (2n, classes), "photos": (n,)}``,
        rows ``i`` and ``i + n`` partners; default :func:`semrsm.load_example`.

    Returns
    -------
    dict
        ``"rsms"`` ({layer: {kind: K}}), ``"translation"`` ({layer: {kind: pair_gap(...)}}),
        ``"retrieval"`` ({layer: {kind: retrieval(K, labels, k=3)}}), ``"jsd"`` (the (2n, 2n)
        JSD matrix), ``"correlation"`` ({layer: {kind: {"pearson", "spearman"}}}),
        ``"layers"`` (:func:`~semrsm.analysis.layer_comparison`), ``"frontier"`` (rows as
        ``benches/table5.py`` makes them, on block10 affinities), ``"labels"``, ``"photos"``,
        ``"seconds"`` ({layer: {kind: build time}}), ``"kernel"``.

    Examples
    --------
    >>> from semrsm import report
    >>> numbers = report.compute()
    >>> sorted(numbers["retrieval"]["block15"])
    ['semantic', 'shift', 'spatio-semantic']
    """
    data = load_example() if data is None else data
    n = len(data[LAYERS[0]]) // 2
    labels = np.r_[np.arange(n), np.arange(n)]
    pairs = partner_pairs(n)
    D = jsd(data["probs"])
    out: dict[str, Any] = {
        "kernel": kernel,
        "labels": labels,
        "photos": [str(p) for p in data["photos"]],
        "jsd": D,
        "rsms": {},
        "seconds": {},
        "translation": {},
        "retrieval": {},
        "correlation": {},
    }
    for layer in LAYERS:
        z = data[layer]
        for key in ("rsms", "seconds", "translation", "retrieval", "correlation"):
            out[key][layer] = {}
        for kind, matcher in RSM_KINDS:
            start = time.perf_counter()
            K = build(z, kernel=kernel, matcher=matcher, threads=threads)
            out["seconds"][layer][kind] = time.perf_counter() - start
            out["rsms"][layer][kind] = K
            out["translation"][layer][kind] = pair_gap(K, pairs)
            out["retrieval"][layer][kind] = retrieval(K, labels, k=3)
            out["correlation"][layer][kind] = {m: rsm_correlation(K, D, m) for m in ("pearson", "spearman")}
    out["layers"] = layer_comparison({layer: data[layer] for layer in LAYERS}, kernel=kernel, threads=threads)
    out["frontier"] = _frontier(data["block10"], "block10")
    return out


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.2f} s"


def write_report(
    output: Union[str, Path] = "semrsm-report",
    *,
    kernel: str = "cosine",
    threads: Optional[int] = None,
    data: Optional[dict[str, np.ndarray]] = None,
) -> tuple[Path, dict[str, Any]]:
    """Run :func:`compute`, render the figures and write ``report.md`` into ``output``.

    Parameters
    ----------
    output : str or Path
        Folder (created if needed) for ``report.md`` and the PNG figures.
    kernel, threads, data
        As for :func:`compute`.

    Returns
    -------
    (Path, dict)
        The path of ``report.md`` and the numbers of :func:`compute` (with ``"figures"``: the
        PNG file names).

    Examples
    --------
    >>> import tempfile
    >>> from semrsm import report
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path, numbers = report.write_report(folder)
    ...     print(path.name, len(numbers["figures"]))
    report.md 7
    """
    from . import plots

    plots.require_matplotlib()  # before minutes of work, not after
    start = time.perf_counter()
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    numbers = compute(kernel=kernel, threads=threads, data=data)
    labels, photos = numbers["labels"], numbers["photos"]
    n = len(photos)

    figures: dict[str, Any] = {}
    for layer in LAYERS:
        rsms = numbers["rsms"][layer]
        figures[f"heatmaps_{layer}.png"] = plots.rsm_heatmaps(rsms, labels=labels)
        figures[f"pairs_{layer}.png"] = plots.pair_distributions(rsms, partner_pairs(n))
    block10 = numbers["rsms"]["block10"]
    figures["retrieval_block10.png"] = plots.retrieval_examples(
        {k: block10[k] for k in ("spatio-semantic", "semantic")}, labels, queries=[0, 5, 13], k=3, names=photos
    )
    figures["layers.png"] = plots.layer_comparison(numbers["layers"])
    figures["frontier.png"] = plots.quality_time_frontier({196: numbers["frontier"]})
    for name, fig in figures.items():
        fig.savefig(folder / name, dpi=100)
    numbers["figures"] = list(figures)

    md = [
        "# semrsm report: semantic vs spatio-semantic RSMs on real data",
        "",
        f"semrsm {__version__}, Python {platform.python_version()}, kernel `{kernel}`. Data: the bundled "
        f"example (`semrsm.load_example()`): EfficientNet-Lite0 maps of {n} photos (rows 0–{n - 1}) and "
        f"of the same photos shifted 64 px down (rows {n}–{2 * n - 1}), with the model's class "
        "probabilities. RSMs: **spatio-semantic** (`matcher=\"none\"`), **shift** (best circular "
        "2-D shift, a translation-invariant baseline) and **semantic** (`matcher=\"exact\"`). All numbers "
        "come from `semrsm.analysis` (see `docs/analysis.md`).",
        "",
        "## Translation (paper Sec. 4.1, Fig. 2)",
        "",
        "A shifted crop should stand out from unrelated photos. *partner*: mean similarity of a photo to "
        "its shifted crop; *others*: mean similarity to the other inputs; *z*: mean standardised gap "
        "(partner − others mean) / others std; *AUROC*: partner vs unrelated-pair similarities; "
        "*nearest*: photos whose nearest neighbour is their shifted crop.",
        "",
    ]
    rows = []
    for layer in LAYERS:
        for kind, _ in RSM_KINDS:
            g = numbers["translation"][layer][kind]
            rows.append(
                [layer, kind, f"{g['partner'].mean():.4f}", f"{g['others_mean'].mean():.4f}", f"{g['mean_z']:.2f}",
                 f"{g['auroc']:.4f}", f"{int(g['nearest'].sum())}/{n}", _ms(numbers["seconds"][layer][kind])]
            )
    md += [_table(["layer", "RSM", "partner", "others", "z", "AUROC", "nearest", "build time"], rows), ""]
    for layer in LAYERS:
        md += [f"![RSMs of {layer}](heatmaps_{layer}.png)", "", f"![partner vs unrelated similarities, {layer}](pairs_{layer}.png)", ""]

    md += [
        "## Retrieval (paper Sec. 4.2, Table 2)",
        "",
        "Each of the 20 inputs is a query; the other 19 are ranked by similarity (ties by index); the "
        "relevant item is the same photo (its shifted partner). mAP, precision@1 and the paper's F1@1 "
        "(= precision@1 with one label per image), and precision@3.",
        "",
    ]
    rows = []
    for layer in LAYERS:
        for kind, _ in RSM_KINDS:
            r = numbers["retrieval"][layer][kind]
            rows.append([layer, kind, f"{r['map']:.4f}", f"{r['precision_at_1']:.4f}", f"{r['f1_at_1']:.4f}", f"{r['precision_at_k']:.4f}"])
    md += [_table(["layer", "RSM", "mAP", "P@1", "F1@1", "P@3"], rows), "", "![retrieval examples](retrieval_block10.png)", ""]

    md += [
        "## Output agreement (paper Sec. 4.3, Tables 1 and 4)",
        "",
        "Correlation between the RSM and the Jensen–Shannon divergence (natural log) of the model's class "
        "probabilities, over the 190 pairs above the diagonal: more negative = the representational "
        "similarity tracks what the classifier deems similar.",
        "",
    ]
    rows = []
    for layer in LAYERS:
        for kind, _ in RSM_KINDS:
            c = numbers["correlation"][layer][kind]
            rows.append([layer, kind, f"{c['pearson']:+.4f}", f"{c['spearman']:+.4f}"])
    md += [_table(["layer", "RSM", "Pearson", "Spearman"], rows), ""]

    lc = numbers["layers"]
    md += [
        "## Layer by layer (paper Fig. 15)",
        "",
        f"CKA ({kernel} kernel) between the semantic RSM of one layer (rows) and the spatio-semantic RSM of "
        "another (columns), from the same representations; biased / debiased.",
        "",
    ]
    rows = [[f"{a} (S={s})"] + [f"{lc['cka'][i, j]:.4f} / {lc['cka_debiased'][i, j]:.4f}" for j in range(len(lc["names"]))]
            for i, (a, s) in enumerate(zip(lc["names"], lc["spatial_size"]))]
    md += [_table(["semantic \\ spatio-semantic"] + list(lc["names"]), rows), "", "![CKA across layers](layers.png)", ""]

    md += [
        "## Matching quality vs time (paper Table 5)",
        "",
        "k/k_opt (matched inner product relative to the exact one) and median time per pair of each matcher "
        "on 6 block10 affinities (S = 196), `semrsm.match_affinity`, one thread. The full table on "
        "S = 256…4096 is `benches/table5.py` (docs/benchmarks.md).",
        "",
        _table(["matcher", "k/k_opt [%]", "time per pair"],
               [[r["label"], f"{r['quality']['block10']:.2f}", _ms(r["time"]) if r["time"] else "—"] for r in numbers["frontier"]]),
        "",
        "![quality vs time](frontier.png)",
        "",
        f"Written in {time.perf_counter() - start:.1f} s.",
        "",
    ]
    path = folder / "report.md"
    path.write_text("\n".join(md), encoding="utf-8")
    return path, numbers
