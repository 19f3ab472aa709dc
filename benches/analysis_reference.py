"""Reference numbers of the paper's analyses on the real data, as Markdown tables (docs/analysis.md).

For each data set and layer, three RSMs (cosine kernel): spatio-semantic (``matcher="none"``), the
translation-invariant baseline (``"shift"``) and semantic (``"exact"``):

- retrieval (paper Sec. 4.2): mAP and precision@1 of ``semrsm.analysis.retrieval`` (labels = which
  photo; square leave-one-out);
- class-probability agreement (Sec. 4.3, Tables 1/4): Pearson and Spearman correlation of the RSM
  with the JSD of the model's class probabilities (where the file has ``probs``);
- translation (Sec. 4.1, Fig. 2; shifted-pair files only): mean standardised gap z, AUROC partner
  vs unrelated pairs, and how many photos have their shifted crop as nearest neighbour.

    python benches/analysis_reference.py            # ~2 min on 2 cores; needs the shared data

The numbers are deterministic (exact matching; ties by index). tests/python/test_analysis.py checks
the same functions against slow numpy/scipy re-implementations on these files.
"""

from __future__ import annotations

import time

import numpy as np
from _fixtures import data_dir

import semrsm
from semrsm import analysis

KINDS = (("spatio-semantic", "none"), ("shift", "shift"), ("semantic", "exact"))
FILES = (
    ("bundled example (EffNet-Lite0)", None, ("block10", "block15")),
    ("effnet_lite0_shifted_pairs.npz", "effnet_lite0_shifted_pairs.npz", ("block2", "block4", "block10", "block15")),
    ("vit_s14_shifted_pairs.npz", "vit_s14_shifted_pairs.npz", ("layer5", "layer11")),
    ("effnet_lite0_retrieval.npz", "effnet_lite0_retrieval.npz", ("block10", "head")),
)


def rows_for(data, layers):
    n = len(data[layers[0]])
    labels = data["labels"] if "labels" in data else np.r_[np.arange(n // 2), np.arange(n // 2)]
    shifted = "labels" not in data
    D = analysis.jsd(data["probs"]) if "probs" in data else None
    rows = []
    for layer in layers:
        for kind, matcher in KINDS:
            z = data[layer]
            if matcher == "shift" and z.ndim == 3:
                z = z[:, 1:, :]  # ViT: drop the CLS token; the 256 patch tokens form a 16 x 16 grid
            start = time.perf_counter()
            K = semrsm.build(z, kernel="cosine", matcher=matcher)
            seconds = time.perf_counter() - start
            r = analysis.retrieval(K, labels)
            cells = [layer, kind, f"{r['map']:.4f}", f"{r['precision_at_1']:.3f}"]
            if D is not None:
                cells += [f"{analysis.rsm_correlation(K, D):+.4f}", f"{analysis.rsm_correlation(K, D, 'spearman'):+.4f}"]
            else:
                cells += ["", ""]
            if shifted:
                g = analysis.pair_gap(K, analysis.partner_pairs(n // 2))
                cells += [f"{g['mean_z']:.2f}", f"{g['auroc']:.4f}", f"{int(g['nearest'].sum())}/{n // 2}"]
            else:
                cells += ["", "", ""]
            cells.append(f"{seconds:.2f} s")
            rows.append(cells)
    return rows


def main() -> None:
    print("| data | layer | RSM | mAP | P@1 | Pearson vs JSD | Spearman vs JSD | z | AUROC | nearest | build |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for title, name, layers in FILES:
        if name is None:
            data = semrsm.load_example()
        else:
            with np.load(data_dir(name) / name) as archive:
                data = {k: archive[k] for k in archive.files}
        for cells in rows_for(data, layers):
            print(f"| {title} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
