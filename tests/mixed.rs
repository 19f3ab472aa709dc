//! Mixed precision (`GramOptions::mixed_precision`, `matching::mixed`): `f32` affinities whose
//! permutation is certified (or repaired) in `f64`. Oracles: brute force over all permutations
//! of the `f64` affinity (S ≤ 7), the `f64` exact path, and a cold solve for the warm start.

use std::sync::atomic::AtomicBool;

use ndarray::{Array2, Array3};
use rand::{rngs::StdRng, Rng, SeedableRng};
use semrsm::lap::{SapSolver, Sense};
use semrsm::matching::mixed::{self, repair, solve_certified, PairFactors};
use semrsm::matching::{Matcher, Workspace};
use semrsm::rsm::{gram, GramOptions};

mod common;

fn mixed_options(threads: Option<usize>) -> GramOptions {
    GramOptions {
        matcher: Matcher::Exact,
        threads,
        return_permutations: true,
        mixed_precision: true,
        ..GramOptions::default()
    }
}

fn no_cancel() -> AtomicBool {
    AtomicBool::new(false)
}

/// The float64 affinity of a pair, summed as `matching::mixed::dot` does.
fn affinity(x: ndarray::ArrayView2<f64>, y: ndarray::ArrayView2<f64>) -> Array2<f64> {
    Array2::from_shape_fn((x.nrows(), y.nrows()), |(i, j)| {
        mixed::dot(x.row(i).as_slice().unwrap(), y.row(j).as_slice().unwrap())
    })
}

/// Samples whose second half of positions repeats the first half scaled by `1 + rel·noise`:
/// identical in `f32` for `rel = 1e-9`, distinct in `f64`.
fn near_duplicates(rng: &mut StdRng, n: usize, s: usize, c: usize, rel: f64) -> Array3<f64> {
    let mut x = Array3::from_shape_fn((n, s, c), |_| rng.random::<f64>() * 2.0 - 1.0);
    let h = s / 2;
    for i in 0..n {
        for p in 0..h {
            let f = 1.0 + rel * (rng.random::<f64>() * 2.0 - 1.0);
            for k in 0..c {
                x[[i, h + p, k]] = x[[i, p, k]] * f;
            }
        }
    }
    x
}

#[test]
fn float32_tie_broken_in_float64_is_repaired() {
    // 1 + 2^-30 rounds to 1 in f32: both permutations tie in f32; in f64 the one pairing the
    // larger positions wins by 2^-30. One of the two orderings of x defeats the f32 solver.
    // With zero channels added (C ≥ 16·S: the certificate starts from centred duals) the same.
    let d = 2f64.powi(-30);
    for c in [1, 32, 64] {
        let mut x = Array3::zeros((2, 2, c));
        let mut y = Array3::zeros((1, 2, c));
        for (t, &v) in [1.0 + d, 1.0, 1.0, 1.0 + d].iter().enumerate() {
            x[[t / 2, t % 2, 0]] = v;
        }
        y[[0, 0, 0]] = 2.0;
        y[[0, 1, 0]] = 1.0;
        let out = gram(
            x.view(),
            Some(y.view()),
            &mixed_options(Some(1)),
            &no_cancel(),
        )
        .unwrap();
        assert_eq!(out.values[[0, 0]], 3.0 + 2.0 * d, "c={c}");
        assert_eq!(out.values[[1, 0]], 3.0 + 2.0 * d, "c={c}");
        let perm = out.permutations.unwrap();
        assert_eq!(perm.slice(ndarray::s![0, 0, ..]).to_vec(), vec![0, 1]);
        assert_eq!(perm.slice(ndarray::s![1, 0, ..]).to_vec(), vec![1, 0]);
    }
}

#[test]
fn matches_brute_force_on_adversarial_small_pairs() {
    let mut rng = StdRng::seed_from_u64(7);
    for case in 0..60 {
        let s = 2 + case % 6;
        let c = 1 + case % 4;
        let x = match case % 3 {
            0 => near_duplicates(&mut rng, 3, s, c, 1e-9),
            // small integers: many exact ties
            1 => Array3::from_shape_fn((3, s, c), |_| f64::from(rng.random_range(-2..3_i32))),
            _ => near_duplicates(&mut rng, 3, s, c, 1e-12) * 1e-20,
        };
        let y = Array3::from_shape_fn((2, s, c), |_| rng.random::<f64>() - 0.5);
        let out = gram(x.view(), Some(y.view()), &mixed_options(None), &no_cancel()).unwrap();
        for i in 0..3 {
            for j in 0..2 {
                let a = affinity(
                    x.slice(ndarray::s![i, .., ..]),
                    y.slice(ndarray::s![j, .., ..]),
                );
                let want = common::brute_force(&a, Sense::Maximize);
                let scale: f64 = a.iter().map(|v| v.abs()).sum::<f64>() + f64::MIN_POSITIVE;
                let got = out.values[[i, j]];
                assert!(
                    (got - want).abs() <= 1e-14 * scale,
                    "case {case} pair ({i}, {j}): {got} vs brute force {want}"
                );
            }
        }
    }
}

#[test]
fn equals_the_float64_path_and_is_bit_identical_across_threads() {
    let mut rng = StdRng::seed_from_u64(3);
    let x = near_duplicates(&mut rng, 6, 48, 5, 1e-9);
    let f64_opts = GramOptions {
        matcher: Matcher::Exact,
        ..GramOptions::default()
    };
    let reference = gram(x.view(), None, &f64_opts, &no_cancel())
        .unwrap()
        .values;
    let one = gram(x.view(), None, &mixed_options(Some(1)), &no_cancel()).unwrap();
    for threads in [2, 3] {
        let many = gram(x.view(), None, &mixed_options(Some(threads)), &no_cancel()).unwrap();
        assert_eq!(one.permutations, many.permutations);
        let bits = |g: &Array2<f64>| g.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one.values), bits(&many.values));
    }
    // Near-duplicates on both sides leave second-order gaps (~1e-18) that f64 cannot resolve:
    // permutations may differ there, G only by rounding.
    for (a, b) in one.values.iter().zip(reference.iter()) {
        assert!((a - b).abs() <= 1e-14 * b.abs().max(1.0), "{a} vs {b}");
    }
    // Without ties the permutation is the same, and then so are the bits of G: both paths sum
    // the same FMA-chain entries (kernels::gemm, mixed::dot) in the same order.
    let z = Array3::from_shape_fn((6, 30, 7), |_| rng.random::<f64>() - 0.5);
    let mixed_g = gram(z.view(), None, &mixed_options(Some(2)), &no_cancel()).unwrap();
    let f64_g = gram(z.view(), None, &f64_opts, &no_cancel()).unwrap();
    let bits = |g: &Array2<f64>| g.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&mixed_g.values), bits(&f64_g.values));
}

#[test]
fn certify_and_repair_on_strided_views_with_bound() {
    // Views that are not in standard layout (transposes) take the copying path.
    let mut rng = StdRng::seed_from_u64(9);
    let s = 40;
    let c = 6;
    let xt = Array2::from_shape_fn((c, s), |_| rng.random::<f64>() - 0.5);
    let yt = Array2::from_shape_fn((c, s), |_| rng.random::<f64>() - 0.5);
    let (x, y) = (xt.t(), yt.t());
    let x32 = x.mapv(|v| v as f32);
    let y32 = y.mapv(|v| v as f32);
    let a32 = x32.dot(&y32.t());
    let a32 = a32.as_standard_layout();
    let nx: Vec<f64> = x.rows().into_iter().map(|r| r.dot(&r).sqrt()).collect();
    let ny: Vec<f64> = y.rows().into_iter().map(|r| r.dot(&r).sqrt()).collect();
    let factors = PairFactors {
        x,
        y,
        norms_x: &nx,
        norms_y: &ny,
    };
    let a = affinity(x.as_standard_layout().view(), y.as_standard_layout().view());
    let mut solver = SapSolver::new();
    let best = solver
        .solve(a.as_slice().unwrap(), s, s, Sense::Maximize)
        .unwrap();
    let want: f64 = best.iter().enumerate().map(|(i, &j)| a[[i, j]]).sum();
    let mut perm = vec![0; s];
    let mut workspace = Workspace::default();
    let certified = solve_certified(
        &factors,
        a32.as_slice().unwrap(),
        &mut workspace,
        &mut perm,
        &no_cancel(),
    )
    .unwrap()
    .expect("random data certify");
    assert!((certified.value - want).abs() <= 1e-13 * want.abs());
    assert!(certified.bound >= certified.value);
    // The repair path on the same pair gives the optimum too, with the exact dual's bound.
    let repaired = repair(
        &factors,
        a.as_slice().unwrap(),
        &mut workspace,
        &mut perm,
        true,
        &no_cancel(),
    )
    .unwrap();
    assert!(repaired.repaired);
    assert!((repaired.value - want).abs() <= 1e-13 * want.abs());
    assert!(repaired.bound >= repaired.value && repaired.bound - repaired.value <= 1e-12 * want);
    // Wrong shapes are an error, not a panic.
    let mut short = vec![0; s - 1];
    assert!(solve_certified(
        &factors,
        a32.as_slice().unwrap(),
        &mut workspace,
        &mut short,
        &no_cancel()
    )
    .is_err());
}

#[test]
fn huge_values_run_in_float64_and_tiny_ones_are_repaired() {
    let mut rng = StdRng::seed_from_u64(5);
    for scale in [1e-30, 1e-22, 1e22, 1e30] {
        let x = near_duplicates(&mut rng, 3, 6, 3, 1e-9) * scale;
        let out = gram(x.view(), None, &mixed_options(None), &no_cancel()).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let a = affinity(
                    x.slice(ndarray::s![i, .., ..]),
                    x.slice(ndarray::s![j, .., ..]),
                );
                let want = common::brute_force(&a, Sense::Maximize);
                let tol = 1e-14 * a.iter().map(|v| v.abs()).sum::<f64>();
                assert!(
                    (out.values[[i, j]] - want).abs() <= tol,
                    "scale {scale:e} ({i}, {j}): {} vs {want}",
                    out.values[[i, j]]
                );
            }
        }
    }
}

#[test]
fn warm_start_from_any_prices_is_optimal() {
    let mut rng = StdRng::seed_from_u64(11);
    let mut solver = SapSolver::new();
    for case in 0..40 {
        let n = 1 + case % 7;
        let a = Array2::from_shape_fn((n, n), |_| f64::from(rng.random_range(-5..6_i32)));
        let prices: Vec<f64> = (0..n).map(|_| rng.random::<f64>() * 20.0 - 10.0).collect();
        for sense in [Sense::Minimize, Sense::Maximize] {
            let want = common::brute_force(&a, sense);
            let col4row = solver
                .solve_from_prices_cancellable(
                    a.as_slice().unwrap(),
                    n,
                    sense,
                    &prices,
                    &no_cancel(),
                )
                .unwrap()
                .to_vec();
            let got: f64 = col4row.iter().enumerate().map(|(i, &j)| a[[i, j]]).sum();
            assert_eq!(got, want, "case {case} {sense:?}");
            assert_eq!(solver.column_duals().len(), n);
        }
    }
    // Wrong number of prices: an error.
    assert!(solver
        .solve_from_prices_cancellable(&[1.0_f64; 4], 2, Sense::Minimize, &[0.0], &no_cancel())
        .is_err());
}

#[test]
fn exact_ties_at_large_c_are_certified_without_the_repair() {
    // Two identical positions in y: every permutation that swaps their columns ties exactly.
    // The certificate's first check uses upper bounds of the candidates (any-order dot products
    // plus their rounding bound, ~C·2⁻⁵³ relative, which breaks the ties the wrong way); it must
    // then take the exact chains, which certify, rather than give up.
    let mut rng = StdRng::seed_from_u64(21);
    let (s, c) = (6, 2048);
    let x = Array2::from_shape_fn((s, c), |_| rng.random::<f64>() - 0.5);
    let mut y = Array2::from_shape_fn((s, c), |_| rng.random::<f64>() - 0.5);
    let row = y.row(2).to_owned();
    y.row_mut(3).assign(&row);
    let x32 = x.mapv(|v| v as f32);
    let y32 = y.mapv(|v| v as f32);
    let a32 = x32.dot(&y32.t());
    let nx: Vec<f64> = x.rows().into_iter().map(|r| r.dot(&r).sqrt()).collect();
    let ny: Vec<f64> = y.rows().into_iter().map(|r| r.dot(&r).sqrt()).collect();
    let factors = PairFactors {
        x: x.view(),
        y: y.view(),
        norms_x: &nx,
        norms_y: &ny,
    };
    let mut perm = vec![0; s];
    let got = solve_certified(
        &factors,
        a32.as_slice().unwrap(),
        &mut Workspace::default(),
        &mut perm,
        &no_cancel(),
    )
    .unwrap()
    .expect("exact ties certify");
    let a = affinity(x.view(), y.view());
    let want = SapSolver::new()
        .solve(a.as_slice().unwrap(), s, s, Sense::Maximize)
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, &j)| a[[i, j]])
        .sum::<f64>();
    assert!((got.value - want).abs() <= 1e-13 * want.abs());
}
