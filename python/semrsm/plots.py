"""Figures of the paper's analyses (optional: ``pip install 'semrsm[plot]'`` for matplotlib).

Every function returns a :class:`matplotlib.figure.Figure` made without pyplot, so nothing is drawn
or kept open behind your back: Jupyter shows a returned figure inline, a script saves it with
``fig.savefig("name.png")``.

- :func:`rsm_heatmaps`: RSMs side by side on one colour scale, optionally ordered by label.
- :func:`pair_distributions`: partner vs other similarities per RSM (the paper's Fig. 2, right).
- :func:`retrieval_examples`: queries and their top-k neighbours under each RSM (Fig. 4).
- :func:`layer_comparison`: the CKA matrix and its diagonal across layers (Fig. 15).
- :func:`quality_time_frontier`: matching quality vs time per pair (Table 5, ``benches/table5.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional, Sequence, Union

import numpy as np

from ._errors import SemrsmError, ShapeError

__all__ = [
    "rsm_heatmaps",
    "pair_distributions",
    "retrieval_examples",
    "layer_comparison",
    "quality_time_frontier",
    "require_matplotlib",
]

Rsms = Union[Mapping[str, Any], Sequence[Any], np.ndarray]


def require_matplotlib() -> None:
    """Raise :class:`SemrsmError` naming the extra to install when matplotlib is missing.

    Examples
    --------
    >>> from semrsm import plots
    >>> plots.require_matplotlib()  # silent when matplotlib is installed
    """
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError as exc:
        raise SemrsmError("semrsm.plots needs matplotlib: pip install 'semrsm[plot]'") from exc


def _figure(width: float, height: float) -> Any:
    require_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _named(rsms: Rsms) -> list[tuple[str, np.ndarray]]:
    if isinstance(rsms, Mapping):
        items = [(str(k), np.asarray(v)) for k, v in rsms.items()]
    elif isinstance(rsms, np.ndarray) and rsms.ndim == 2:
        items = [("RSM", rsms)]
    else:
        items = [(f"RSM {i}", np.asarray(v)) for i, v in enumerate(rsms)]
    if not items:
        raise ShapeError("no RSM to plot")
    for name, K in items:
        if K.ndim != 2:
            raise ShapeError(f"RSM {name!r} must be 2-D, got shape {K.shape}")
    return items


def rsm_heatmaps(
    rsms: Rsms,
    *,
    labels: Any = None,
    cmap: str = "viridis",
    vmin: Optional[float] = None,
    vmax: Optional[float] = None,
    size: float = 3.2,
) -> Any:
    """RSMs side by side with one shared colour scale (the paper's Fig. 2, middle).

    Parameters
    ----------
    rsms : mapping of title -> (N, N) array, a sequence of arrays, or one array
        E.g. ``{"spatio-semantic": K_none, "semantic": K_exact}``.
    labels : array_like, shape (N,), optional
        Rows and columns are reordered so equal labels are adjacent (stable: ties keep their
        order), with lines between groups; all RSMs get the same order.
    cmap : str
        Matplotlib colour map.
    vmin, vmax : float, optional
        Colour limits; default the min and max over all RSMs.
    size : float
        Inches per panel.

    Returns
    -------
    matplotlib.figure.Figure
        One heatmap axis per RSM and one colour bar.

    Examples
    --------
    >>> import numpy as np
    >>> from semrsm import plots
    >>> K = np.eye(4)
    >>> fig = plots.rsm_heatmaps({"a": K, "b": 0.5 * K}, labels=[1, 0, 1, 0])
    >>> len(fig.axes)  # two heatmaps + colour bar
    3
    """
    items = _named(rsms)
    order = None
    if labels is not None:
        labels = np.asarray(labels)
        order = np.argsort(labels, kind="stable")
    lo = min(float(np.min(K)) for _, K in items) if vmin is None else vmin
    hi = max(float(np.max(K)) for _, K in items) if vmax is None else vmax
    fig = _figure(size * len(items) + 0.8, size)
    axes = fig.subplots(1, len(items), squeeze=False)[0]
    image = None
    for ax, (title, K) in zip(axes, items):
        if order is not None:
            if K.shape != (len(order), len(order)):
                raise ShapeError(f"labels has {len(order)} entries but RSM {title!r} has shape {K.shape}")
            K = K[np.ix_(order, order)]
        image = ax.imshow(K, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(title)
        if order is not None:
            sorted_labels = labels[order]
            bounds = np.flatnonzero(sorted_labels[1:] != sorted_labels[:-1]) + 0.5
            for b in bounds:
                ax.axhline(b, color="white", lw=0.6)
                ax.axvline(b, color="white", lw=0.6)
            starts = np.r_[0, np.ceil(bounds).astype(int)]
            ends = np.r_[np.ceil(bounds).astype(int), len(order)]
            centres = (starts + ends - 1) / 2.0
            if len(centres) <= 30:
                ax.set_xticks(centres, [str(sorted_labels[s]) for s in starts], rotation=90, fontsize=7)
                ax.set_yticks(centres, [str(sorted_labels[s]) for s in starts], fontsize=7)
    fig.colorbar(image, ax=list(axes), shrink=0.85, label="similarity")
    return fig


def pair_distributions(rsms: Rsms, pairs: Any, *, bins: int = 30, size: float = 3.2) -> Any:
    """Similarity of partners vs of unrelated pairs, one panel per RSM (the paper's Fig. 2, right).

    Parameters
    ----------
    rsms : mapping of title -> (N, N) array, a sequence of arrays, or one array
    pairs : array_like of int, shape (P, 2)
        Partner pairs, e.g. :func:`semrsm.analysis.partner_pairs`; the unrelated pairs are all
        other entries above the diagonal (as in :func:`semrsm.analysis.pair_gap`).
    bins : int
        Histogram bins.
    size : float
        Inches per panel.

    Returns
    -------
    matplotlib.figure.Figure
        One axis per RSM, each titled with the AUROC and mean z of :func:`~semrsm.analysis.pair_gap`.

    Examples
    --------
    >>> import semrsm
    >>> from semrsm import analysis, plots
    >>> z = semrsm.load_example()["block15"]
    >>> rsms = {m: semrsm.build(z, kernel="cosine", matcher=m) for m in ("none", "exact")}
    >>> len(plots.pair_distributions(rsms, analysis.partner_pairs(10)).axes)
    2
    """
    from .analysis import pair_gap

    items = _named(rsms)
    fig = _figure(size * len(items), size * 0.85)
    axes = fig.subplots(1, len(items), squeeze=False)[0]
    for ax, (title, K) in zip(axes, items):
        g = pair_gap(K, pairs)
        both = np.concatenate([g["partner_values"], g["other_values"]])
        edges = np.linspace(both.min(), both.max(), bins + 1) if np.ptp(both) > 0 else bins
        ax.hist(g["other_values"], bins=edges, density=True, alpha=0.6, label="unrelated pairs")
        ax.hist(g["partner_values"], bins=edges, density=True, alpha=0.6, label="partners (shifted crop)")
        ax.set_title(f"{title}\nAUROC {g['auroc']:.3f}, mean z {g['mean_z']:.1f}", fontsize=9)
        ax.set_xlabel("similarity")
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize=7)
    return fig


def retrieval_examples(
    rsms: Rsms,
    labels: Any,
    *,
    queries: Any = None,
    k: int = 3,
    names: Any = None,
    images: Any = None,
    labels_db: Any = None,
    size: float = 1.3,
) -> Any:
    """Queries and their ``k`` most similar items under each RSM (the paper's Fig. 4).

    One row per (query, RSM): the query, then its neighbours by
    :func:`semrsm.analysis.retrieval`, framed green when relevant and red otherwise.

    Parameters
    ----------
    rsms : mapping of title -> (N, N) or (N, M) array, a sequence of arrays, or one array
    labels : array_like, shape (N,)
        Labels of the queries (and of the database when ``labels_db`` is None).
    queries : sequence of int, optional
        Rows to show; default the first three.
    k : int
        Neighbours per query.
    names : sequence of str, optional
        A caption per label value (``names[label]``), e.g. the photo names of
        :func:`semrsm.load_example`; default the label itself.
    images : array_like, shape (N + M or N, H, W[, 3]), optional
        A picture per item (queries first, then the database when rectangular), shown instead of
        the caption. The bundled example ships no pictures, only their names.
    labels_db : array_like, shape (M,), optional
        Labels of the database columns (rectangular RSMs).
    size : float
        Inches per cell.

    Returns
    -------
    matplotlib.figure.Figure
        ``len(queries) * len(rsms) * (k + 1)`` axes.

    Examples
    --------
    >>> import numpy as np
    >>> from semrsm import plots
    >>> K = np.array([[1.0, 0.9, 0.1], [0.9, 1.0, 0.2], [0.1, 0.2, 1.0]])
    >>> fig = plots.retrieval_examples({"RSM": K}, [0, 0, 1], queries=[0, 2], k=2)
    >>> len(fig.axes)
    6
    """
    from .analysis import retrieval

    items = _named(rsms)
    labels = np.asarray(labels)
    labels_d = labels if labels_db is None else np.asarray(labels_db)
    queries = list(range(min(3, len(labels)))) if queries is None else [int(q) for q in queries]
    tops = [retrieval(K, labels, labels_db, k=k)["top"] for _, K in items]
    n_rows = len(queries) * len(items)
    fig = _figure(size * (k + 1) + 1.2, size * n_rows)
    axes = fig.subplots(n_rows, k + 1, squeeze=False)
    offset = 0 if labels_db is None else len(labels)

    def caption(label: Any) -> str:
        return str(names[int(label)]) if names is not None else str(label)

    def draw(ax: Any, item: int, label: Any, colour: Optional[str]) -> None:
        if images is not None:
            ax.imshow(np.asarray(images[item]))
        else:
            ax.text(0.5, 0.5, caption(label), ha="center", va="center", fontsize=8, wrap=True)
        ax.set_xticks([])
        ax.set_yticks([])
        if colour is not None:
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(3)

    for qi, q in enumerate(queries):
        for ri, ((title, _), top) in enumerate(zip(items, tops)):
            row = axes[qi * len(items) + ri]
            draw(row[0], q, labels[q], None)
            row[0].set_ylabel(f"{title}\nquery {q}", fontsize=7)
            for c, item in enumerate(top[q], start=1):
                relevant = labels_d[item] == labels[q]
                draw(row[c], offset + int(item), labels_d[item], "tab:green" if relevant else "tab:red")
                if qi == 0 and ri == 0:
                    row[c].set_title(f"#{c}", fontsize=8)
    return fig


def layer_comparison(result: Mapping[str, Any], *, debiased: bool = False, size: float = 3.4) -> Any:
    """The CKA matrix of :func:`semrsm.analysis.layer_comparison` and its diagonal (Fig. 15).

    Parameters
    ----------
    result : dict
        What :func:`semrsm.analysis.layer_comparison` returns.
    debiased : bool
        Show the debiased CKA.
    size : float
        Inches per panel.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels (matrix with colour bar, diagonal): three axes.

    Examples
    --------
    >>> import numpy as np
    >>> from semrsm import plots
    >>> res = {"names": ["a", "b"], "spatial_size": [4, 1], "cka": np.eye(2),
    ...        "cka_debiased": np.eye(2), "diagonal": np.ones(2), "diagonal_debiased": np.ones(2)}
    >>> len(plots.layer_comparison(res).axes)
    3
    """
    key = "cka_debiased" if debiased else "cka"
    matrix = np.asarray(result[key])
    names = [f"{n}\n(S={s})" for n, s in zip(result["names"], result["spatial_size"])]
    fig = _figure(2 * size + 0.8, size)
    ax_m, ax_d = fig.subplots(1, 2)
    image = ax_m.imshow(matrix, vmin=0, vmax=1, cmap="magma")
    ax_m.set_xticks(range(len(names)), names, fontsize=7)
    ax_m.set_yticks(range(len(names)), names, fontsize=7)
    ax_m.set_xlabel("spatio-semantic RSM of layer")
    ax_m.set_ylabel("semantic RSM of layer")
    for (a, b), v in np.ndenumerate(matrix):
        ax_m.text(b, a, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
    fig.colorbar(image, ax=ax_m, shrink=0.85, label=("debiased " if debiased else "") + "CKA")
    ax_d.plot(range(len(names)), np.diag(matrix), marker="o")
    ax_d.set_xticks(range(len(names)), names, fontsize=7)
    ax_d.set_ylim(min(0.0, float(np.diag(matrix).min())), 1.05)
    ax_d.set_ylabel("CKA of the same layer")
    ax_d.set_title("semantic vs spatio-semantic", fontsize=9)
    ax_d.grid(True, alpha=0.3)
    return fig


def quality_time_frontier(rows_by_size: Mapping[int, Sequence[Mapping[str, Any]]], *, size: float = 4.5) -> Any:
    """Matching quality vs time per pair, one panel per ``s`` (the paper's Table 5 as a picture).

    Parameters
    ----------
    rows_by_size : mapping of s -> list of dict
        The rows of ``benches/table5.py`` (``run_size``): each with ``"label"`` (str), ``"time"``
        (median seconds per pair) and ``"quality"`` (dict layer -> mean k/k_opt in %; their mean
        is plotted). Rows labelled ``"no match"`` are left out (no time to speak of).
    size : float
        Inches per panel.

    Returns
    -------
    matplotlib.figure.Figure
        One axis per size.

    Examples
    --------
    >>> from semrsm import plots
    >>> rows = {256: [{"label": "exact", "time": 2e-3, "quality": {"block10": 100.0}},
    ...               {"label": "auction", "time": 4e-4, "quality": {"block10": 99.1}}]}
    >>> len(plots.quality_time_frontier(rows).axes)
    1
    """
    if not rows_by_size:
        raise ShapeError("no sizes to plot")
    from matplotlib.ticker import NullFormatter

    fig = _figure(size * len(rows_by_size), size)
    axes = fig.subplots(1, len(rows_by_size), squeeze=False)[0]
    for ax, (s, rows) in zip(axes, sorted(rows_by_size.items())):
        for r in rows:
            if r["label"] == "no match":
                continue
            quality = float(np.mean(list(r["quality"].values())))
            label = str(r["label"])
            exact = "exact" in label or label in ("scipy", "lapjv", "OR-Tools")
            marker = "*" if label.startswith("auction") else ("s" if exact else "o")
            ax.scatter(r["time"] * 1e3, quality, marker=marker, s=70 if marker == "*" else 35)
            short = label.replace("batch_optimal ", "batch ").replace(" (default, 3 %)", "")
            ax.annotate(short, (r["time"] * 1e3, quality), fontsize=7, xytext=(4, 2), textcoords="offset points")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels of a short log axis overlap
        ax.set_xlabel("median time per pair [ms], 1 thread")
        ax.set_ylabel("mean k / k_opt [%]")
        ax.set_title(f"s = {s}")
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle("Matching quality vs time per pair\n(up and left is better; ★ auction, ■ exact solvers)", fontsize=9)
    return fig
