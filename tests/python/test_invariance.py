"""Each sentence of the README's "Which invariance holds" section, checked on the bundled real
maps (and the centring options behind them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import semrsm

ROOT = Path(__file__).resolve().parents[2]
KERNELS = {"linear": {}, "cosine": {}, "rbf": {}}  # rbf: the median rule


def _z(shifted_pairs) -> np.ndarray:
    z = shifted_pairs["block15"].astype(np.float64)  # (20, 320, 7, 7)
    return z.reshape(20, 320, 49).transpose(0, 2, 1)  # (N, S, C)


def _per_sample(z: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([zi[rng.permutation(zi.shape[0])] for zi in z])


def _global(z: np.ndarray, seed: int = 1) -> np.ndarray:
    return z[:, np.random.default_rng(seed).permutation(z.shape[1])]


def _rsm(z, kernel, center, matcher="exact"):
    return semrsm.build(z, layout="nsc", kernel=kernel, center=center, matcher=matcher, **KERNELS[kernel])


def _close(a, b) -> bool:
    return bool(np.allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(a).max()))


def test_readme_states_the_three_sentences():
    text = " ".join((ROOT / "README.md").read_text().split())
    for sentence in (
        "With `center=False` or `center=\"channel\"`, the semantic RSM is invariant to any rearrangement of the positions of any sample",
        "With `center=True` (the default, the paper's per-position mean), it is invariant to one rearrangement applied to the positions of all samples, but not to rearranging one sample's positions alone",
        "With `matcher=\"none\"` (spatio-semantic), the RSM is invariant only to one rearrangement applied to all samples, whatever the centring",
    ):
        assert sentence in text, sentence


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("center", [False, "channel"])
def test_sentence_1_any_rearrangement_of_any_sample(shifted_pairs, kernel, center):
    z = _z(shifted_pairs)
    assert _close(_rsm(z, kernel, center), _rsm(_per_sample(z), kernel, center))


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_sentence_2_per_position_mean(shifted_pairs, kernel):
    z = _z(shifted_pairs)
    K = _rsm(z, kernel, True)
    assert _close(K, _rsm(_global(z), kernel, True))
    assert np.abs(K - _rsm(_per_sample(z), kernel, True)).max() > 1e-3 * np.abs(K).max()


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("center", [False, "channel", True])
def test_sentence_3_spatio_semantic(shifted_pairs, kernel, center):
    z = _z(shifted_pairs)
    K = _rsm(z, kernel, center, "none")
    assert _close(K, _rsm(_global(z), kernel, center, "none"))
    assert np.abs(K - _rsm(_per_sample(z), kernel, center, "none")).max() > 1e-3 * np.abs(K).max()


def test_channel_centring_subtracts_the_mean_over_samples_and_positions():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(6, 5, 3)) + rng.normal(size=3)
    centred = z - z.mean(axis=(0, 1))
    G = semrsm.gram(z, layout="nsc", center="channel", matcher="none")
    flat = centred.reshape(6, -1)
    np.testing.assert_allclose(G, flat @ flat.T, rtol=1e-12, atol=1e-12)
    # 4-D input: channel axis 1
    z4 = rng.normal(size=(5, 3, 2, 4)) + 2.0
    c4 = z4 - z4.mean(axis=(0, 2, 3), keepdims=True)
    G4 = semrsm.gram(z4, center="channel", matcher="none")
    np.testing.assert_allclose(G4, c4.reshape(5, -1) @ c4.reshape(5, -1).T, rtol=1e-12, atol=1e-12)


def test_channel_centring_in_minibatch_and_layer_cka(shifted_pairs):
    x, y = shifted_pairs["block10"], shifted_pairs["block15"]
    full = semrsm.cka(semrsm.build(x, center="channel"), semrsm.build(y, center="channel"), debiased=True)
    assert semrsm.minibatch_cka(x, y, 20, center="channel") == pytest.approx(full, rel=1e-10)
    assert semrsm.layer_cka(x, y, center="channel", debiased=True) == pytest.approx(full, rel=1e-10)
    with pytest.raises(semrsm.OptionError, match="center must be True, False or 'channel'"):
        semrsm.gram(x, center="position")
