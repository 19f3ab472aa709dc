"""Named RBF bandwidths (issue 12, point 4): each rule against its formula, written here from the
published description, never from semrsm's code."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import semrsm
from conftest import SEEDS as seeds, make, ref_gram
from semrsm import OptionError, SemrsmError
from semrsm.__main__ import main as cli_main


def gram_rbf_oracle(x: np.ndarray, threshold: float) -> np.ndarray:
    """Kornblith et al. (2019), ``gram_rbf(x, threshold)`` as the paper's demo describes it: squared
    distances from the Gram matrix of the flattened features, ``σ² = threshold² · median`` of
    all ``n²`` of them (diagonal included), ``K = exp(-d² / (2σ²))``."""
    flat = x.reshape(x.shape[0], -1).astype(np.float64)
    dot = flat @ flat.T
    sq = np.diag(dot)
    d2 = sq[:, None] + sq[None, :] - 2.0 * dot
    return np.exp(-d2 / (2.0 * threshold**2 * np.median(d2)))


def lower_median(values: np.ndarray) -> float:
    """``torch.median``: the lower of the two middle values for an even count."""
    ordered = np.sort(values.ravel())
    return float(ordered[(ordered.size - 1) // 2])


def matched_d2(x: np.ndarray, matcher: str) -> np.ndarray:
    """Squared matched distances of (N, S, C) data from scipy's reference ``G``."""
    G = ref_gram(x, matcher=matcher)
    sq = np.einsum("nsc,nsc->n", x, x)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * G, 0.0)
    np.fill_diagonal(d2, 0.0)
    return d2


@pytest.mark.parametrize("threshold", [0.25, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("layer", ["block10", "block15"])
def test_kornblith_rule_reproduces_gram_rbf(shifted_pairs, layer, threshold):
    """``sigma="kornblith", sigma_scale=t`` is ``gram_rbf(x, t)`` (spatio-semantic: matcher none)."""
    z = shifted_pairs[layer].astype(np.float64)
    K = semrsm.build(z, kernel="rbf", matcher="none", center=False, sigma="kornblith", sigma_scale=threshold)
    np.testing.assert_allclose(K, gram_rbf_oracle(z, threshold), rtol=0, atol=1e-12)
    # Distances do not change under centring, so neither does the rule's value.
    Kc = semrsm.build(z, kernel="rbf", matcher="none", sigma="kornblith", sigma_scale=threshold)
    np.testing.assert_allclose(Kc, gram_rbf_oracle(z, threshold), rtol=0, atol=1e-12)


@given(seeds, st.sampled_from(["normal", "ties", "offset", "relu"]), st.integers(4, 7), st.sampled_from(["exact", "none"]))
def test_every_rule_against_its_formula(seed, kind, n, matcher):
    rng = np.random.default_rng(seed)
    x = make(rng, kind, (n, 5, 3))
    d2 = matched_d2(x, matcher)
    off = d2[np.triu_indices(n, 1)]
    nonzero = d2[d2 > 0]
    rules = {
        # semrsm's default: the median of the non-zero distances, each pair once
        "median": float(np.median(np.sqrt(off[off > 0]))) if (off > 0).any() else 1.0,
        # Kornblith et al.: sqrt of the median of all n² squared distances
        "kornblith": float(np.sqrt(np.median(d2))) if np.median(d2) > 0 else None,
        # thingsvision's CKA with sigma=None: sqrt of the median of the non-zero squared distances
        (lambda m: float(np.sqrt(np.median(m[m > 0])))): float(np.sqrt(np.median(nonzero))) if nonzero.size else None,
        # the paper's code (own_rbf): sqrt of torch's lower median of the non-zero ones, + 1e-3
        (lambda m: float(np.sqrt(lower_median(m[m > 0])) + 1e-3)): np.sqrt(lower_median(nonzero)) + 1e-3 if nonzero.size else None,
        0.7: 0.7,
    }
    for rule, sigma in rules.items():
        for scale in (1.0, 0.3):
            call = lambda: semrsm.build(  # noqa: E731
                x, kernel="rbf", matcher=matcher, center=False, layout="nsc", sigma=rule, sigma_scale=scale, return_sigma=True
            )
            if sigma is None:
                with pytest.raises(SemrsmError):
                    call()
                continue
            K, used = call()
            assert used == pytest.approx(sigma * scale, rel=1e-9), rule
            np.testing.assert_allclose(K, np.exp(-d2 / (2.0 * (sigma * scale) ** 2)), rtol=1e-9, atol=1e-12)


def test_default_is_median_and_none_is_the_same(shifted_pairs):
    z = shifted_pairs["block15"]
    K0, s0 = semrsm.build(z, kernel="rbf", return_sigma=True)
    K1, s1 = semrsm.build(z, kernel="rbf", sigma="median", return_sigma=True)
    assert s0 == s1 and np.array_equal(K0, K1)
    K2 = semrsm.build(z, kernel="rbf", sigma=s0)
    assert np.array_equal(K0, K2)


def test_callable_sees_the_whole_read_only_matrix():
    x = np.random.default_rng(1).normal(size=(5, 4, 3))
    seen = {}

    def rule(d2):
        seen["shape"], seen["diag"], seen["writeable"] = d2.shape, d2.diagonal().copy(), d2.flags.writeable
        seen["symmetric"] = np.array_equal(d2, d2.T)
        return 2.0

    K, used = semrsm.build(x, kernel="rbf", layout="nsc", sigma=rule, return_sigma=True)
    assert used == 2.0
    assert seen["shape"] == (5, 5) and not seen["writeable"] and seen["symmetric"]
    assert np.array_equal(seen["diag"], np.zeros(5))
    # rectangular: all N x M entries
    K, used = semrsm.build(x, x[:3] * 2, kernel="rbf", layout="nsc", sigma=rule, return_sigma=True)
    assert seen["shape"] == (5, 3) and K.shape == (5, 3)


def test_return_sigma_comes_last_and_bound_uses_the_same_sigma():
    x = np.random.default_rng(2).normal(size=(6, 16, 3))
    K, K_bound, used = semrsm.build(
        x, kernel="rbf", layout="nsc", matcher="greedy", sigma="kornblith", return_bound=True, return_sigma=True
    )
    G, bound = semrsm.gram(x, layout="nsc", matcher="greedy", return_bound=True)
    xc = x - x.mean(axis=0)
    sq = np.einsum("nsc,nsc->n", xc, xc)
    d2b = np.maximum(sq[:, None] + sq[None, :] - 2.0 * bound, 0.0)
    np.fill_diagonal(d2b, 0.0)
    np.testing.assert_allclose(K_bound, np.exp(-d2b / (2.0 * used**2)), rtol=1e-12, atol=1e-14)
    assert np.all(K <= K_bound + 1e-12)


def test_sigma_scale_multiplies_any_sigma():
    x = np.random.default_rng(3).normal(size=(6, 4, 2))
    for rule in ("median", "kornblith", 1.3):
        _, base = semrsm.build(x, kernel="rbf", layout="nsc", sigma=rule, return_sigma=True)
        K, scaled = semrsm.build(x, kernel="rbf", layout="nsc", sigma=rule, sigma_scale=2.5, return_sigma=True)
        assert scaled == pytest.approx(2.5 * base, rel=1e-15)
        np.testing.assert_array_equal(K, semrsm.build(x, kernel="rbf", layout="nsc", sigma=scaled))


def test_kernels_rbf_takes_rules_too():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, 6))
    G = x @ x.T
    sq = np.diag(G).copy()
    K = semrsm.kernels.rbf(G, sq, sq, "kornblith", square=True, sigma_scale=0.5)
    np.testing.assert_allclose(K, gram_rbf_oracle(x, 0.5), rtol=0, atol=1e-12)


X = np.random.default_rng(0).normal(size=(5, 4, 3))


@pytest.mark.parametrize(
    "kwargs, exc, pattern",
    [
        ({"sigma": "wide"}, OptionError, r"sigma must be a positive number, one of 'median', 'kornblith' or a callable"),
        ({"sigma": True}, OptionError, r"sigma must be a positive number"),
        ({"sigma": [1.0]}, OptionError, r"sigma must be a positive number"),
        ({"sigma": lambda d2: 0.0}, OptionError, r"sigma callable must return a positive finite number, got 0.0"),
        ({"sigma": lambda d2: float("nan")}, OptionError, r"sigma callable must return"),
        ({"sigma": lambda d2: "x"}, OptionError, r"sigma callable must return"),
        ({"sigma_scale": 0}, OptionError, r"sigma_scale must be a positive finite number"),
        ({"sigma_scale": -2.0}, OptionError, r"sigma_scale must be a positive"),
        ({"sigma_scale": float("inf")}, OptionError, r"sigma_scale must be a positive finite"),
        ({"sigma_scale": "2"}, OptionError, r"sigma_scale must be a positive number"),
        ({"sigma_scale": True}, OptionError, r"sigma_scale must be a positive number"),
        ({"kernel": "linear", "sigma_scale": 2.0}, OptionError, r"sigma_scale only applies to kernel='rbf'"),
        ({"kernel": "cosine", "sigma": "kornblith"}, OptionError, r"sigma only applies to kernel='rbf'"),
        ({"kernel": "linear", "return_sigma": True}, OptionError, r"return_sigma only applies to kernel='rbf'"),
        ({"return_sigma": "yes"}, OptionError, r"return_sigma"),
    ],
)
def test_bad_sigma_options(kwargs, exc, pattern):
    kwargs = {"kernel": "rbf", **kwargs}
    with pytest.raises(exc, match=pattern):
        semrsm.build(X, layout="nsc", **kwargs)


def test_kornblith_rule_on_mostly_duplicate_samples_names_the_problem():
    x = np.zeros((5, 2, 2))
    x[0, 0, 0] = 1.0  # 8 of 25 squared distances non-zero: the median of all of them is 0
    with pytest.raises(SemrsmError, match=r"sigma='kornblith' is 0"):
        semrsm.build(x, kernel="rbf", layout="nsc", center=False, sigma="kornblith")


def test_cli_sigma_rule_and_scale(tmp_path, shifted_pairs):
    z = shifted_pairs["block15"][:6]
    np.save(tmp_path / "z.npy", z)
    out = tmp_path / "K.npy"
    code = cli_main(
        ["build", str(tmp_path / "z.npy"), "-o", str(out), "--kernel", "rbf", "--matcher", "none",
         "--sigma", "kornblith", "--sigma-scale", "0.5"]
    )
    assert code == 0
    np.testing.assert_allclose(np.load(out), gram_rbf_oracle(z, 0.5), rtol=0, atol=1e-12)


def test_readme_recipes_reproduce_the_published_rules():
    """The callables in the README's "RBF bandwidth" table, evaluated as written, give the rules
    they claim (thingsvision's and the paper's, with torch's lower median)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    recipes = re.findall(r"`sigma=(lambda d2: [^`]+)`", readme)
    assert len(recipes) == 2, recipes
    thingsvision, paper = (eval(text, {"np": np}) for text in recipes)  # noqa: S307 - our own README
    rng = np.random.default_rng(5)
    for n in (5, 6, 9):  # odd and even numbers of pairs
        x = rng.normal(size=(n, 7))
        d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
        nonzero = d2[d2 != 0]
        assert thingsvision(d2) == pytest.approx(np.sqrt(np.median(nonzero)), rel=1e-15)
        assert paper(d2) == pytest.approx(np.sqrt(lower_median(nonzero)) + 1e-3, rel=1e-15)
