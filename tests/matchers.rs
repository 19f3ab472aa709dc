//! Properties of the matchers: valid permutations, never above the exact value, certified bounds
//! (valid for all, tight for the exact matcher), the limiting cases of the paper's
//! approximations, self-matching, permutation invariance, determinism, and option validation.

use std::sync::atomic::AtomicBool;

use ndarray::{s, Array2, Array3, Axis};
use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use semrsm::lap::{linear_sum_assignment, Sense};
use semrsm::matching::{match_affinity, matched_sum, Affinity, Matcher, Workspace};
use semrsm::rsm::{gram, GramOptions};
use semrsm::Error;

mod common;

/// All matchers, with options that make the approximations non-trivial for S around 10–40.
fn matchers() -> Vec<Matcher> {
    vec![
        Matcher::None,
        Matcher::Exact,
        Matcher::Greedy,
        Matcher::TopkGreedy { k: 3 },
        Matcher::BatchOptimal { b: 4 },
        Matcher::BatchOptimal { b: 7 },
        Matcher::Auction { gap_ppm: 30_000 },
        Matcher::Auction { gap_ppm: 0 },
    ]
}

/// `x` and `y` of `s` positions and `c` channels; `kind` 0: signed, 1: ReLU-like, 2: heavy ties.
fn sample_pair(s: usize, c: usize, kind: u8, seed: u64) -> (Array2<f64>, Array2<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut draw = |_| match kind {
        0 => rng.random::<f64>() * 2.0 - 1.0,
        1 => (rng.random::<f64>() - 0.4).max(0.0),
        _ => f64::from(rng.random_range(-1_i32..=1)),
    };
    (
        Array2::from_shape_fn((s, c), &mut draw),
        Array2::from_shape_fn((s, c), &mut draw),
    )
}

fn norms(a: &Array2<f64>) -> Vec<f64> {
    a.outer_iter()
        .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect()
}

fn affinity_of(x: &Array2<f64>, y: &Array2<f64>) -> Array2<f64> {
    x.dot(&y.t())
}

fn exact_value(a: &Array2<f64>) -> f64 {
    linear_sum_assignment(a.view(), Sense::Maximize)
        .unwrap()
        .objective
}

/// max over all permutations, by enumeration (S ≤ 7).
fn brute_force(a: &Array2<f64>) -> f64 {
    common::brute_force(a, Sense::Maximize)
}

fn assert_permutation(perm: &[usize], what: &str) {
    let mut seen = vec![false; perm.len()];
    for &j in perm {
        assert!(
            j < perm.len() && !seen[j],
            "{what}: not a permutation: {perm:?}"
        );
        seen[j] = true;
    }
}

fn tol(reference: f64) -> f64 {
    1e-9 * reference.abs().max(1.0)
}

#[test]
fn every_matcher_gives_a_permutation_below_exact_and_a_bound_above() {
    for (case, (s, kind)) in [
        (1, 0),
        (2, 0),
        (3, 2),
        (5, 1),
        (7, 0),
        (11, 2),
        (13, 1),
        (20, 0),
        (33, 1),
        (40, 2),
    ]
    .into_iter()
    .enumerate()
    {
        let (x, y) = sample_pair(s, 3, kind, case as u64);
        let a = affinity_of(&x, &y);
        let exact = if s <= 7 {
            brute_force(&a)
        } else {
            exact_value(&a)
        };
        let (nx, ny) = (norms(&x), norms(&y));
        for matcher in matchers() {
            let what = format!("S={s} kind={kind} {matcher:?}");
            let m = match_affinity(a.view(), &nx, &ny, matcher, true).unwrap();
            assert_permutation(&m.perm, &what);
            let value = matched_sum(a.as_slice().unwrap(), s, &m.perm);
            assert_eq!(value, m.value, "{what}");
            assert!(
                value <= exact + tol(exact),
                "{what}: {value} above exact {exact}"
            );
            let bound = m.bound.unwrap();
            assert!(
                bound >= exact - tol(exact),
                "{what}: bound {bound} below exact {exact}"
            );
            assert!(bound >= value, "{what}: bound {bound} below value {value}");
            if matcher == Matcher::Exact {
                assert!(
                    (bound - exact).abs() <= tol(exact),
                    "{what}: exact bound {bound} not tight ({exact})"
                );
                assert!((value - exact).abs() <= tol(exact), "{what}");
            }
            // Without the bound: the same permutation.
            let plain = match_affinity(a.view(), &nx, &ny, matcher, false).unwrap();
            assert_eq!(plain.perm, m.perm, "{what}");
            assert_eq!(plain.bound, None);
        }
    }
}

#[test]
fn the_auction_meets_its_certified_gap() {
    for (seed, s) in [(1_u64, 30_usize), (2, 64), (3, 100)] {
        let (x, y) = sample_pair(s, 8, 1, seed);
        let a = affinity_of(&x, &y);
        let exact = exact_value(&a);
        for gap_ppm in [100_000_u32, 10_000, 1_000] {
            let matcher = Matcher::Auction { gap_ppm };
            let m = match_affinity(a.view(), &norms(&x), &norms(&y), matcher, true).unwrap();
            let bound = m.bound.unwrap();
            let gap = f64::from(gap_ppm) * 1e-6;
            assert!(
                bound - m.value <= gap * m.value.abs() + tol(exact),
                "{matcher:?}"
            );
            assert!(m.value >= (1.0 - gap) * exact - tol(exact));
        }
    }
}

#[test]
fn limiting_cases_are_the_exact_and_greedy_matchers() {
    let (x, y) = sample_pair(23, 4, 0, 7);
    let a = affinity_of(&x, &y);
    let (nx, ny) = (norms(&x), norms(&y));
    let run = |m| match_affinity(a.view(), &nx, &ny, m, false).unwrap();
    let exact = run(Matcher::Exact);
    for m in [
        Matcher::BatchOptimal { b: 23 },
        Matcher::BatchOptimal { b: 1000 },
        Matcher::TopkGreedy { k: 23 },
        Matcher::TopkGreedy { k: usize::MAX },
    ] {
        assert_eq!(run(m), exact, "{m:?} must be the exact matcher");
    }
    assert_eq!(run(Matcher::TopkGreedy { k: 0 }), run(Matcher::Greedy));
    // b = 1 pairs the i-th largest norm of x with the i-th largest of y.
    let batch1 = run(Matcher::BatchOptimal { b: 1 });
    let mut ox: Vec<usize> = (0..23).collect();
    let mut oy = ox.clone();
    ox.sort_by(|&p, &q| nx[q].total_cmp(&nx[p]));
    oy.sort_by(|&p, &q| ny[q].total_cmp(&ny[p]));
    for (&i, &j) in ox.iter().zip(&oy) {
        assert_eq!(batch1.perm[i], j);
    }
}

#[test]
fn a_sample_matched_with_itself_gets_the_identity() {
    for (seed, kind) in [(1_u64, 0_u8), (2, 1), (3, 0)] {
        let (x, _) = sample_pair(30, 5, kind, seed);
        let a = affinity_of(&x, &x);
        let self_value: f64 = x.iter().map(|v| v * v).sum();
        let nx = norms(&x);
        for matcher in [
            Matcher::Greedy,
            Matcher::TopkGreedy { k: 4 },
            Matcher::BatchOptimal { b: 8 },
            Matcher::Exact,
        ] {
            let m = match_affinity(a.view(), &nx, &nx, matcher, false).unwrap();
            let identity: Vec<usize> = (0..30).collect();
            assert_eq!(m.perm, identity, "{matcher:?} kind {kind}");
            assert!((m.value - self_value).abs() <= tol(self_value));
        }
    }
}

#[test]
fn permuting_positions_preserves_g_for_distinct_norms() {
    let (x, y) = sample_pair(26, 4, 0, 11);
    let mut rng = StdRng::seed_from_u64(12);
    let mut order: Vec<usize> = (0..26).collect();
    order.shuffle(&mut rng);
    let xp = x.select(Axis(0), &order);
    let mut order_y: Vec<usize> = (0..26).collect();
    order_y.shuffle(&mut rng);
    let yp = y.select(Axis(0), &order_y);
    for matcher in matchers() {
        if matcher == Matcher::None {
            continue; // the spatio-semantic baseline is not invariant, by design
        }
        let g = |x: &Array2<f64>, y: &Array2<f64>| {
            match_affinity(
                affinity_of(x, y).view(),
                &norms(x),
                &norms(y),
                matcher,
                false,
            )
            .unwrap()
            .value
        };
        let (before, after) = (g(&x, &y), g(&xp, &yp));
        assert!(
            (before - after).abs() <= 1e-12 * before.abs().max(1.0),
            "{matcher:?}: {before} vs {after}"
        );
    }
}

#[test]
fn gram_with_bounds_is_bit_identical_across_thread_counts() {
    let mut rng = StdRng::seed_from_u64(21);
    let x = Array3::from_shape_fn((7, 19, 3), |_| rng.random::<f64>() - 0.5);
    let y = Array3::from_shape_fn((4, 19, 3), |_| rng.random::<f64>() - 0.5);
    for matcher in matchers() {
        let run = |threads, y: Option<&Array3<f64>>| {
            let options = GramOptions {
                matcher,
                threads,
                return_permutations: true,
                return_bound: true,
                prefix_tokens: 0,
                mixed_precision: false,
            };
            gram(
                x.view(),
                y.map(|y| y.view()),
                &options,
                &AtomicBool::new(false),
            )
            .unwrap()
        };
        for y in [None, Some(&y)] {
            let one = run(Some(1), y);
            for threads in [Some(2), Some(3), None] {
                let other = run(threads, y);
                assert_eq!(one.values, other.values, "{matcher:?}");
                assert_eq!(one.bounds, other.bounds, "{matcher:?}");
                assert_eq!(one.permutations, other.permutations, "{matcher:?}");
            }
        }
    }
}

#[test]
fn gram_bounds_hold_pairwise_and_are_exact_on_the_diagonal() {
    let mut rng = StdRng::seed_from_u64(31);
    let x = Array3::from_shape_fn((6, 15, 4), |_| rng.random::<f64>() - 0.3);
    let exact = gram(
        x.view(),
        None,
        &GramOptions::default(),
        &AtomicBool::new(false),
    )
    .unwrap()
    .values;
    for matcher in matchers() {
        let options = GramOptions {
            matcher,
            return_bound: true,
            ..GramOptions::default()
        };
        let out = gram(x.view(), None, &options, &AtomicBool::new(false)).unwrap();
        let bounds = out.bounds.unwrap();
        assert_eq!(bounds, bounds.t(), "{matcher:?}: bounds not symmetric");
        for i in 0..6 {
            let self_value: f64 = x.slice(s![i, .., ..]).iter().map(|v| v * v).sum();
            assert_eq!(out.values[[i, i]], self_value);
            assert_eq!(bounds[[i, i]], self_value, "diagonal bound");
            for j in 0..6 {
                let e = exact[[i, j]];
                assert!(out.values[[i, j]] <= e + tol(e), "{matcher:?}");
                assert!(bounds[[i, j]] >= e - tol(e), "{matcher:?} ({i}, {j})");
                if matcher == Matcher::Exact {
                    assert!((bounds[[i, j]] - e).abs() <= tol(e));
                }
            }
        }
    }
    // Without return_bound there are no bounds.
    let plain = gram(
        x.view(),
        None,
        &GramOptions::default(),
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(plain.bounds.is_none());
}

#[test]
fn matchers_accept_f32_affinities() {
    let (x, y) = sample_pair(17, 3, 1, 41);
    let a = affinity_of(&x, &y);
    let a32 = a.mapv(|v| v as f32);
    let exact = exact_value(&a);
    for matcher in matchers() {
        let m = match_affinity(a32.view(), &norms(&x), &norms(&y), matcher, true).unwrap();
        assert_permutation(&m.perm, "f32");
        assert!(m.value <= exact + 1e-4 * exact.abs().max(1.0));
        assert!(m.bound.unwrap() >= exact - 1e-4 * exact.abs().max(1.0));
    }
}

#[test]
fn the_workspace_is_reusable_across_sizes() {
    let mut workspace = Workspace::default();
    for (seed, s) in [(1_u64, 30_usize), (2, 5), (3, 17), (4, 30)] {
        let (x, y) = sample_pair(s, 3, 0, seed);
        let a = affinity_of(&x, &y);
        let (nx, ny) = (norms(&x), norms(&y));
        let problem = Affinity::new(a.as_slice().unwrap(), s, &nx, &ny).unwrap();
        for matcher in matchers() {
            let mut perm = vec![0; s];
            matcher.assign(&problem, &mut workspace, &mut perm).unwrap();
            let fresh = match_affinity(a.view(), &nx, &ny, matcher, false).unwrap();
            assert_eq!(perm, fresh.perm, "{matcher:?} S={s}");
        }
    }
}

#[test]
fn options_are_validated_with_helpful_messages() {
    let opt = |name: &str, v: i64| vec![(name.to_string(), v)];
    assert_eq!(
        Matcher::from_name("batch_optimal", &[]).unwrap(),
        Matcher::BatchOptimal { b: 512 }
    );
    assert_eq!(
        Matcher::from_name("topk_greedy", &[]).unwrap(),
        Matcher::TopkGreedy { k: 128 }
    );
    assert_eq!(
        Matcher::from_name("auction", &opt("gap_ppm", 5)).unwrap(),
        Matcher::Auction { gap_ppm: 5 }
    );
    assert_eq!(
        Matcher::from_name("topk_greedy", &opt("k", 0)).unwrap(),
        Matcher::TopkGreedy { k: 0 }
    );
    for name in Matcher::NAMES {
        let m = Matcher::from_name(name, &[]).unwrap();
        assert_eq!(m.name(), *name);
    }
    let message = |r: Result<Matcher, Error>| match r {
        Err(Error::InvalidOption(m)) => m,
        other => panic!("expected InvalidOption, got {other:?}"),
    };
    let m = message(Matcher::from_name("batch_optimal", &opt("b", 0)));
    assert!(
        m.contains("b=0") && m.contains(">= 1") && m.contains("batch size"),
        "{m}"
    );
    let m = message(Matcher::from_name("batch_optimal", &opt("k", 3)));
    assert!(m.contains("\"k\"") && m.contains("b (batch size"), "{m}");
    let m = message(Matcher::from_name("topk_greedy", &opt("k", -1)));
    assert!(m.contains("k=-1") && m.contains(">= 0"), "{m}");
    let m = message(Matcher::from_name("auction", &opt("gap_ppm", 1_000_001)));
    assert!(m.contains("0..=1000000"), "{m}");
    let m = message(Matcher::from_name("greedy", &opt("b", 3)));
    assert!(m.contains("takes no options"), "{m}");
    let m = message(Matcher::from_name(
        "batch_optimal",
        &[("b".into(), 4), ("b".into(), 8)],
    ));
    assert!(m.contains("twice"), "{m}");
    let m = message(Matcher::from_name("hungarian", &[]));
    assert!(m.contains("batch_optimal") && m.contains("auction"), "{m}");
}

#[test]
fn match_affinity_validates_its_input() {
    let a = Array2::<f64>::zeros((3, 4));
    let n3 = [1.0; 3];
    assert!(matches!(
        match_affinity(a.view(), &n3, &n3, Matcher::Exact, false),
        Err(Error::Shape(m)) if m.contains("square")
    ));
    let empty = Array2::<f64>::zeros((0, 0));
    assert!(matches!(
        match_affinity(empty.view(), &[], &[], Matcher::Exact, false),
        Err(Error::Empty { .. })
    ));
    let mut bad = Array2::<f64>::zeros((3, 3));
    bad[[1, 2]] = f64::NAN;
    assert!(matches!(
        match_affinity(bad.view(), &n3, &n3, Matcher::Greedy, false),
        Err(Error::NonFinite { index, .. }) if index == vec![1, 2]
    ));
    let ok = Array2::<f64>::eye(3);
    assert!(matches!(
        match_affinity(ok.view(), &[1.0; 2], &n3, Matcher::Greedy, false),
        Err(Error::Shape(m)) if m.contains("norms_x")
    ));
    assert!(matches!(
        match_affinity(
            ok.view(),
            &n3,
            &[1.0, f64::INFINITY, 1.0],
            Matcher::Greedy,
            false
        ),
        Err(Error::NonFinite {
            what: "norms_y",
            ..
        })
    ));
    // A transposed (non-standard layout) view is accepted and gives the transposed problem.
    let (x, y) = sample_pair(9, 2, 0, 51);
    let at = affinity_of(&y, &x);
    let transposed = at.t();
    let direct = match_affinity(
        affinity_of(&x, &y).view(),
        &norms(&x),
        &norms(&y),
        Matcher::Exact,
        false,
    )
    .unwrap();
    let via_view =
        match_affinity(transposed, &norms(&x), &norms(&y), Matcher::Exact, false).unwrap();
    assert!((direct.value - via_view.value).abs() <= 1e-12 * direct.value.abs().max(1.0));
}

#[test]
fn a_set_cancel_flag_interrupts_every_matcher_and_a_clear_one_changes_nothing() {
    use semrsm::matching::match_affinity_cancellable;
    let (x, y) = sample_pair(48, 6, 0, 77);
    let a = affinity_of(&x, &y);
    let (nx, ny) = (norms(&x), norms(&y));
    for matcher in matchers().into_iter().chain([
        Matcher::BatchOptimal { b: 40 },
        Matcher::TopkGreedy { k: 40 },
    ]) {
        for with_bound in [false, true] {
            let set = AtomicBool::new(true);
            assert_eq!(
                match_affinity_cancellable(a.view(), &nx, &ny, matcher, with_bound, &set),
                Err(Error::Interrupted),
                "{matcher:?}"
            );
            let clear = AtomicBool::new(false);
            assert_eq!(
                match_affinity_cancellable(a.view(), &nx, &ny, matcher, with_bound, &clear),
                match_affinity(a.view(), &nx, &ny, matcher, with_bound),
                "{matcher:?}"
            );
        }
    }
}

/// The exact matchers' bound (from the solver's column duals, or rebuilt from the permutation) is
/// the optimum up to rounding also where the solver's auction warm start and its searches run
/// (S in the hundreds), on signed, non-negative and heavily tied affinities.
#[test]
fn exact_bounds_are_tight_at_larger_sizes() {
    for (seed, kind) in [(41_u64, 0_u8), (42, 1), (43, 2)] {
        let s = 300;
        let (x, y) = sample_pair(s, 6, kind, seed);
        let a = affinity_of(&x, &y);
        let (nx, ny) = (norms(&x), norms(&y));
        let exact = exact_value(&a);
        for matcher in [
            Matcher::Exact,
            Matcher::BatchOptimal { b: s },
            Matcher::Auction { gap_ppm: 0 },
        ] {
            let m = match_affinity(a.view(), &nx, &ny, matcher, true).unwrap();
            let bound = m.bound.unwrap();
            assert!(bound >= exact - tol(exact), "{matcher:?} kind {kind}");
            if matcher != (Matcher::Auction { gap_ppm: 0 }) {
                assert!(
                    (m.value - exact).abs() <= tol(exact),
                    "{matcher:?} kind {kind}"
                );
                assert!(
                    (bound - exact).abs() <= tol(exact),
                    "{matcher:?} kind {kind}: bound {bound} vs {exact}"
                );
            }
        }
    }
}
