"""semrsm.plots renders (Agg): a PNG with more than one colour and the documented number of axes."""

from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import semrsm  # noqa: E402
from semrsm import ShapeError, analysis, plots  # noqa: E402


def render(fig) -> np.ndarray:
    assert isinstance(fig, Figure)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=60)
    assert buffer.getvalue().startswith(b"\x89PNG\r\n\x1a\n")
    buffer.seek(0)
    pixels = matplotlib.image.imread(buffer, format="png")
    assert pixels.shape[0] > 50 and pixels.shape[1] > 50
    # Something is drawn: many distinct colours, not a blank canvas.
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 20
    return pixels


@pytest.fixture(scope="module")
def example_rsms(shifted_pairs):
    z = shifted_pairs["block15"]
    return {m: semrsm.build(z, kernel="cosine", matcher=m) for m in ("none", "exact")}


def test_heatmaps(example_rsms):
    labels = np.r_[np.arange(10), np.arange(10)]
    fig = plots.rsm_heatmaps(example_rsms, labels=labels)
    assert len(fig.axes) == 3  # two panels and the shared colour bar
    images = [ax.get_images()[0] for ax in fig.axes[:2]]
    assert images[0].get_clim() == images[1].get_clim()  # shared scale
    # Ordered by label: partners (i, i + 10) are adjacent, so the top-left 2x2 block is a pair.
    shown = np.asarray(images[1].get_array())
    assert shown[0, 1] == pytest.approx(example_rsms["exact"][0, 10])
    render(fig)
    assert len(plots.rsm_heatmaps(example_rsms["none"]).axes) == 2
    with pytest.raises(ShapeError):
        plots.rsm_heatmaps(example_rsms, labels=[0, 1])
    with pytest.raises(ShapeError):
        plots.rsm_heatmaps({})


def test_pair_distributions(example_rsms):
    fig = plots.pair_distributions(example_rsms, analysis.partner_pairs(10))
    assert len(fig.axes) == 2
    assert "AUROC" in fig.axes[0].get_title()
    render(fig)


@pytest.mark.parametrize("with_images", [False, True])
def test_retrieval_examples(example_rsms, shifted_pairs, with_images):
    labels = np.r_[np.arange(10), np.arange(10)]
    images = np.random.default_rng(0).random((20, 8, 8, 3)) if with_images else None
    fig = plots.retrieval_examples(
        example_rsms, labels, queries=[0, 3], k=3, names=list(shifted_pairs["photos"]), images=images
    )
    assert len(fig.axes) == 2 * 2 * 4
    # The first neighbour of photo 0 under the semantic RSM is its shifted crop, framed green.
    first = fig.axes[1 * 4 + 1]
    assert first.spines["left"].get_edgecolor() == matplotlib.colors.to_rgba("tab:green")
    render(fig)


def test_layer_comparison(shifted_pairs):
    res = analysis.layer_comparison({"block10": shifted_pairs["block10"], "block15": shifted_pairs["block15"]})
    fig = plots.layer_comparison(res, debiased=True)
    assert len(fig.axes) == 3
    render(fig)


def test_quality_time_frontier():
    rows = {
        s: [
            {"label": "semrsm exact", "time": 2e-3 * s / 256, "quality": {"a": 100.0, "b": 100.0}},
            {"label": "auction (default, 3 %)", "time": 4e-4 * s / 256, "quality": {"a": 99.2, "b": 99.5}},
            {"label": "batch_optimal b=128", "time": 1e-3 * s / 256, "quality": {"a": 90.0, "b": 85.0}},
            {"label": "no match", "time": 1e-6, "quality": {"a": 60.0, "b": 50.0}},
        ]
        for s in (256, 1024)
    }
    fig = plots.quality_time_frontier(rows)
    assert len(fig.axes) == 2
    assert len(fig.axes[0].collections) == 3  # "no match" left out
    render(fig)
    with pytest.raises(ShapeError):
        plots.quality_time_frontier({})
