"""The example data shipped with semrsm."""

from __future__ import annotations

from importlib import resources

import numpy as np

__all__ = ["load_example"]


def load_example() -> dict[str, np.ndarray]:
    """EfficientNet-Lite0 feature maps of 10 photos and of their shifted crops (real data).

    Rows 0–9 are 224×224 crops at the top-left of 10 photos (scikit-image / scikit-learn /
    matplotlib sample images), rows 10–19 the same photos shifted 64 px down (160 of 224 rows
    overlap). The model is EfficientNet-Lite0 with ImageNet weights.

    Returns
    -------
    dict
        ``"block10"``: float32 (20, 112, 14, 14), output of MBConv block 10;
        ``"block15"``: float32 (20, 320, 7, 7), output of block 15;
        ``"probs"``: float32 (20, 1000), the model's ImageNet class probabilities (softmax);
        ``"photos"``: the 10 photo names (str; the photos themselves are not included).
    """
    with resources.as_file(resources.files("semrsm") / "data" / "shifted_pairs.npz") as path:
        with np.load(path) as data:
            return {key: data[key] for key in data.files}
