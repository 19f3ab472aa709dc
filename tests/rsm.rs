//! Properties of the pairwise fill: exactness against brute force, symmetry, the baseline,
//! rectangular = block of square, determinism across thread counts, validation, cancellation.

use std::sync::atomic::AtomicBool;

use ndarray::{s, Array3, Axis};
use rand::{rngs::StdRng, Rng, SeedableRng};
use semrsm::matching::Matcher;
use semrsm::rsm::{gram, GramOptions};
use semrsm::Error;

mod common;

fn random(n: usize, s: usize, c: usize, seed: u64) -> Array3<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    Array3::from_shape_fn((n, s, c), |_| rng.random::<f64>() * 2.0 - 1.0)
}

fn opts(matcher: Matcher, threads: Option<usize>) -> GramOptions {
    GramOptions {
        matcher,
        threads,
        return_permutations: false,
        return_bound: false,
        prefix_tokens: 0,
        mixed_precision: false,
    }
}

fn no_cancel() -> AtomicBool {
    AtomicBool::new(false)
}

/// max over all permutations of Σ_s <x_s, y_perm(s)>, by enumeration (S ≤ 7).
fn brute_force(x: &ndarray::ArrayView2<f64>, y: &ndarray::ArrayView2<f64>) -> f64 {
    common::brute_force(&x.dot(&y.t()), semrsm::lap::Sense::Maximize)
}

#[test]
fn exact_matches_brute_force() {
    for (seed, s) in (1..=7).enumerate() {
        let x = random(4, s, 3, seed as u64);
        let g = gram(x.view(), None, &opts(Matcher::Exact, None), &no_cancel())
            .unwrap()
            .values;
        for i in 0..4 {
            for j in 0..4 {
                let b = brute_force(&x.index_axis(Axis(0), i), &x.index_axis(Axis(0), j));
                assert!(
                    (g[[i, j]] - b).abs() <= 1e-12 * b.abs().max(1.0),
                    "S={s} ({i},{j}): {} vs {b}",
                    g[[i, j]]
                );
            }
        }
    }
}

#[test]
fn none_is_the_flattened_inner_product_and_a_lower_bound() {
    let x = random(9, 20, 5, 3);
    let none = gram(x.view(), None, &opts(Matcher::None, None), &no_cancel())
        .unwrap()
        .values;
    let exact = gram(x.view(), None, &opts(Matcher::Exact, None), &no_cancel())
        .unwrap()
        .values;
    for i in 0..9 {
        for j in 0..9 {
            let flat: f64 = x
                .index_axis(Axis(0), i)
                .iter()
                .zip(x.index_axis(Axis(0), j).iter())
                .map(|(a, b)| a * b)
                .sum();
            assert!((none[[i, j]] - flat).abs() <= 1e-12 * flat.abs().max(1.0));
            assert!(exact[[i, j]] >= none[[i, j]] - 1e-12 * exact[[i, j]].abs().max(1.0));
        }
    }
}

#[test]
fn square_is_symmetric_and_rectangular_is_its_block() {
    let x = random(7, 15, 4, 5);
    let y = random(5, 15, 4, 6);
    let both = ndarray::concatenate(Axis(0), &[x.view(), y.view()]).unwrap();
    for matcher in [Matcher::None, Matcher::Exact] {
        let sq = gram(both.view(), None, &opts(matcher, None), &no_cancel())
            .unwrap()
            .values;
        assert_eq!(sq, sq.t(), "{matcher:?} not exactly symmetric");
        let rect = gram(x.view(), Some(y.view()), &opts(matcher, None), &no_cancel())
            .unwrap()
            .values;
        let block = sq.slice(s![..7, 7..]);
        for (a, b) in rect.iter().zip(block.iter()) {
            assert!(
                (a - b).abs() <= 1e-12 * a.abs().max(1.0),
                "{matcher:?}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn bit_identical_for_any_thread_count() {
    let x = random(12, 30, 6, 8);
    let y = random(5, 30, 6, 9);
    for matcher in [Matcher::None, Matcher::Exact] {
        let one = gram(x.view(), None, &opts(matcher, Some(1)), &no_cancel())
            .unwrap()
            .values;
        for threads in [Some(2), Some(3), None] {
            let other = gram(x.view(), None, &opts(matcher, threads), &no_cancel())
                .unwrap()
                .values;
            assert_eq!(one, other, "{matcher:?} threads={threads:?}");
        }
        let r1 = gram(
            x.view(),
            Some(y.view()),
            &opts(matcher, Some(1)),
            &no_cancel(),
        )
        .unwrap()
        .values;
        let r3 = gram(
            x.view(),
            Some(y.view()),
            &opts(matcher, Some(3)),
            &no_cancel(),
        )
        .unwrap()
        .values;
        assert_eq!(r1, r3);
    }
}

#[test]
fn permutations_reproduce_g_and_are_inverse_across_the_diagonal() {
    let x = random(5, 11, 3, 10);
    let options = GramOptions {
        matcher: Matcher::Exact,
        threads: None,
        return_permutations: true,
        return_bound: false,
        prefix_tokens: 0,
        mixed_precision: false,
    };
    let out = gram(x.view(), None, &options, &no_cancel()).unwrap();
    let perm = out.permutations.unwrap();
    for i in 0..5 {
        for j in 0..5 {
            let p = perm.slice(s![i, j, ..]);
            let mut seen = [false; 11];
            let mut sum = 0.0;
            for (k, &t) in p.iter().enumerate() {
                let t = t as usize;
                assert!(!seen[t]);
                seen[t] = true;
                sum += x
                    .slice(s![i, k, ..])
                    .iter()
                    .zip(x.slice(s![j, t, ..]).iter())
                    .map(|(a, b)| a * b)
                    .sum::<f64>();
                assert_eq!(
                    perm[[j, i, t]] as usize,
                    k,
                    "perm[j,i] must invert perm[i,j]"
                );
            }
            assert!((sum - out.values[[i, j]]).abs() <= 1e-12 * sum.abs().max(1.0));
        }
    }
}

#[test]
fn permuting_positions_of_a_sample_leaves_exact_g_unchanged() {
    let mut x = random(6, 13, 4, 12);
    let before = gram(x.view(), None, &opts(Matcher::Exact, None), &no_cancel())
        .unwrap()
        .values;
    let original = x.slice(s![2, .., ..]).to_owned();
    for k in 0..13 {
        let from = (k * 5 + 3) % 13; // a permutation of 0..13 (5 is coprime with 13)
        x.slice_mut(s![2, k, ..])
            .assign(&original.slice(s![from, ..]));
    }
    let after = gram(x.view(), None, &opts(Matcher::Exact, None), &no_cancel())
        .unwrap()
        .values;
    for (a, b) in before.iter().zip(after.iter()) {
        assert!((a - b).abs() <= 1e-12 * a.abs().max(1.0));
    }
}

#[test]
fn f32_precision_is_close_to_f64() {
    let x = random(6, 25, 8, 13);
    let x32 = x.mapv(|v| v as f32);
    let g64 = gram(x.view(), None, &opts(Matcher::Exact, None), &no_cancel())
        .unwrap()
        .values;
    let g32 = gram(x32.view(), None, &opts(Matcher::Exact, None), &no_cancel())
        .unwrap()
        .values;
    for (a, b) in g64.iter().zip(g32.iter()) {
        assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0));
    }
}

#[test]
fn invalid_inputs_are_errors() {
    let x = random(3, 4, 2, 14);
    let o = opts(Matcher::Exact, None);
    let c = no_cancel();
    assert!(matches!(
        gram(Array3::<f64>::zeros((0, 4, 2)).view(), None, &o, &c),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        gram(Array3::<f64>::zeros((3, 4, 0)).view(), None, &o, &c),
        Err(Error::Empty { .. })
    ));
    let y_c = random(3, 4, 3, 15);
    assert!(
        matches!(gram(x.view(), Some(y_c.view()), &o, &c), Err(Error::Shape(m)) if m.contains("channels"))
    );
    let y_s = random(3, 5, 2, 16);
    assert!(
        matches!(gram(x.view(), Some(y_s.view()), &o, &c), Err(Error::Shape(m)) if m.contains("spatial"))
    );
    let mut bad = x.clone();
    bad[[1, 2, 0]] = f64::NAN;
    assert!(
        matches!(gram(bad.view(), None, &o, &c), Err(Error::NonFinite { index, .. }) if index == vec![1, 2, 0])
    );
    let huge = x.mapv(|v| v * 1e200);
    assert!(matches!(
        gram(huge.view(), None, &o, &c),
        Err(Error::Range { .. })
    ));
    assert!(matches!(
        gram(x.view(), None, &opts(Matcher::Exact, Some(0)), &c),
        Err(Error::InvalidOption(_))
    ));
    let many = GramOptions {
        matcher: Matcher::Exact,
        threads: None,
        return_permutations: true,
        return_bound: false,
        prefix_tokens: 0,
        mixed_precision: false,
    };
    let big = Array3::<f32>::zeros((2000, 300, 1));
    assert!(matches!(
        gram(big.view(), None, &many, &c),
        Err(Error::TooLarge(_))
    ));
    assert!(
        matches!(Matcher::from_name("hungarian", &[]), Err(Error::InvalidOption(m)) if m.contains("exact"))
    );
    assert!(matches!(
        Matcher::from_name("exact", &[("b".into(), 512)]),
        Err(Error::InvalidOption(_))
    ));
}

#[test]
fn a_set_cancel_flag_interrupts() {
    let x = random(10, 8, 2, 17);
    let cancel = AtomicBool::new(true);
    for matcher in [Matcher::None, Matcher::Exact] {
        assert!(matches!(
            gram(x.view(), None, &opts(matcher, None), &cancel),
            Err(Error::Interrupted)
        ));
    }
}

/// `G` (and permutations, bounds) assembled from tiles of `t` rows, as the Python tile engine
/// does: diagonal tiles from `x[I]` alone, upper tiles from `x[I]`, `x[J]`, mirrored.
fn assembled<T: semrsm::rsm::Real>(x: &Array3<T>, t: usize, o: &GramOptions) -> semrsm::rsm::Gram {
    use semrsm::rsm::{gram_tile, tile_pairs};
    use std::sync::atomic::{AtomicU64, Ordering};
    let (n, s, _) = x.dim();
    let mut values = ndarray::Array2::<f64>::zeros((n, n));
    let mut perms = ndarray::Array3::<i64>::zeros((n, n, s));
    let mut bounds = ndarray::Array2::<f64>::zeros((n, n));
    for r0 in (0..n).step_by(t) {
        let r1 = (r0 + t).min(n);
        for c0 in (r0..n).step_by(t) {
            let c1 = (c0 + t).min(n);
            let diagonal = c0 == r0;
            let xi = x.slice(s![r0..r1, .., ..]);
            let yj = (!diagonal).then(|| x.slice(s![c0..c1, .., ..]));
            let progress = AtomicU64::new(0);
            let g = gram_tile(xi, yj, o, &no_cancel(), &progress).unwrap();
            let expected = tile_pairs(r1 - r0, (!diagonal).then_some(c1 - c0));
            assert_eq!(progress.load(Ordering::Relaxed), expected);
            values.slice_mut(s![r0..r1, c0..c1]).assign(&g.values);
            values.slice_mut(s![c0..c1, r0..r1]).assign(&g.values.t());
            if let Some(b) = &g.bounds {
                bounds.slice_mut(s![r0..r1, c0..c1]).assign(b);
                bounds.slice_mut(s![c0..c1, r0..r1]).assign(&b.t());
            }
            if let Some(p) = &g.permutations {
                for (a, i) in (r0..r1).enumerate() {
                    for (b, j) in (c0..c1).enumerate() {
                        for k in 0..s {
                            let target = p[[a, b, k]];
                            perms[[i, j, k]] = target;
                            perms[[j, i, target as usize]] = k as i64;
                        }
                    }
                }
            }
        }
    }
    semrsm::rsm::Gram {
        values,
        permutations: o.return_permutations.then_some(perms),
        bounds: o.return_bound.then_some(bounds),
    }
}

#[test]
fn tiles_of_any_size_assemble_to_bit_identical_gram() {
    let x = random(23, 9, 70, 11);
    let x32 = x.mapv(|v| v as f32);
    for matcher in [Matcher::None, Matcher::Exact, Matcher::Greedy] {
        for (perm, bound) in [(false, false), (true, true)] {
            let o = GramOptions {
                matcher,
                threads: Some(3),
                return_permutations: perm,
                return_bound: bound,
                prefix_tokens: 0,
                mixed_precision: false,
            };
            let whole = gram(x.view(), None, &o, &no_cancel()).unwrap();
            let whole32 = gram(x32.view(), None, &o, &no_cancel()).unwrap();
            for t in [1, 2, 5, 16, 17, 23] {
                let tiled = assembled(&x, t, &o);
                let bits = |a: &ndarray::Array2<f64>| a.mapv(f64::to_bits);
                assert_eq!(
                    bits(&tiled.values),
                    bits(&whole.values),
                    "{matcher:?} t={t}"
                );
                assert_eq!(tiled.permutations, whole.permutations, "{matcher:?} t={t}");
                assert_eq!(
                    tiled.bounds.as_ref().map(bits),
                    whole.bounds.as_ref().map(bits)
                );
                let tiled32 = assembled(&x32, t, &o);
                assert_eq!(
                    bits(&tiled32.values),
                    bits(&whole32.values),
                    "f32 {matcher:?} t={t}"
                );
            }
        }
    }
}

#[test]
fn none_in_f32_checks_whole_sample_norms() {
    // Issue 9.2: every position is below the per-position limit, the sums over S·C are not.
    let x = Array3::from_shape_fn((2, 4, 8), |(i, _, _)| if i == 0 { 3e18_f32 } else { -3e18 });
    let o = opts(Matcher::None, None);
    assert!(matches!(
        gram(x.view(), None, &o, &no_cancel()),
        Err(Error::Range { .. })
    ));
    let x64 = x.mapv(f64::from);
    let g = gram(x64.view(), None, &o, &no_cancel()).unwrap().values;
    assert!(g.iter().all(|v| v.is_finite()));
    assert_eq!(g[[0, 1]], -(3e18_f32 as f64).powi(2) * 32.0);
}

/// `prefix_tokens = k`: the first k positions pair position by position, the rest are matched:
/// G = Σ_{t<k} <x_i[t], y_j[t]> + (the k = 0 result on positions k..), for every matcher, with
/// the prefix mapped to itself in the permutations; k ≥ S is an option error.
#[test]
fn prefix_tokens_fix_the_prefix_and_match_the_rest() {
    let mut rng = StdRng::seed_from_u64(12);
    let x = Array3::from_shape_fn((5, 6, 3), |_| rng.random_range(-1.0..1.0_f64));
    let k = 2;
    for matcher in [Matcher::Exact, Matcher::Greedy, Matcher::None] {
        let with = GramOptions {
            matcher,
            return_permutations: true,
            return_bound: true,
            prefix_tokens: k,
            ..GramOptions::default()
        };
        let rest = GramOptions {
            prefix_tokens: 0,
            ..with.clone()
        };
        let a = gram(x.view(), None, &with, &no_cancel()).unwrap();
        let b = gram(x.slice(s![.., k.., ..]), None, &rest, &no_cancel()).unwrap();
        let (pa, pb) = (a.permutations.unwrap(), b.permutations.unwrap());
        for i in 0..5 {
            for j in 0..5 {
                let fixed: f64 = (0..k)
                    .map(|t| {
                        let (a, b) = (x.slice(s![i, t, ..]), x.slice(s![j, t, ..]));
                        a.iter().zip(b.iter()).map(|(p, q)| p * q).sum::<f64>()
                    })
                    .sum();
                let expected = if i == j {
                    a.values[[i, i]]
                } else {
                    fixed + b.values[[i, j]]
                };
                assert!((a.values[[i, j]] - expected).abs() < 1e-12);
                for t in 0..6 {
                    let want = if t < k {
                        t as i64
                    } else {
                        pb[[i, j, t - k]] + k as i64
                    };
                    assert_eq!(pa[[i, j, t]], want);
                }
            }
            let norm: f64 = x.slice(s![i, .., ..]).iter().map(|e| e * e).sum();
            assert!((a.values[[i, i]] - norm).abs() < 1e-12);
        }
    }
    let bad = GramOptions {
        prefix_tokens: 6,
        ..GramOptions::default()
    };
    let err = gram(x.view(), None, &bad, &no_cancel()).unwrap_err();
    assert!(
        matches!(err, Error::InvalidOption(ref m) if m.contains("S = 6")),
        "{err}"
    );
}

#[test]
fn cancel_interrupts_inside_one_long_pair() {
    use semrsm::rsm::gram_tile;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;
    // One pair (N = 2) of 3000 positions: a single exact matching of about a second. The flag is
    // set while that pair is being matched (the diagonal entry (0, 0), counted first, tells that
    // the pair has started); without polling inside the matcher, the pair would be finished and
    // the call would return Ok.
    let x = random(2, 3000, 4, 5);
    for return_bound in [false, true] {
        let cancel = AtomicBool::new(false);
        let progress = AtomicU64::new(0);
        let finished = AtomicBool::new(false);
        let options = GramOptions {
            return_bound,
            ..opts(Matcher::Exact, Some(1))
        };
        let outcome = std::thread::scope(|scope| {
            scope.spawn(|| {
                while progress.load(Ordering::Relaxed) == 0 && !finished.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                std::thread::sleep(Duration::from_millis(20));
                cancel.store(true, Ordering::Relaxed);
            });
            let outcome = gram_tile(x.view(), None, &options, &cancel, &progress);
            finished.store(true, Ordering::Relaxed);
            outcome
        });
        assert!(matches!(outcome, Err(Error::Interrupted)), "{outcome:?}");
        // Only the diagonal entry was counted: the pair itself never finished.
        assert_eq!(progress.load(Ordering::Relaxed), 1);
    }
}
