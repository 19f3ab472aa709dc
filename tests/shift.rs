//! The translation-invariant baseline `Matcher::Shift`: the best circular 2-D shift, against a
//! brute-force oracle that rolls `y`'s grid by every shift; the order none ≤ shift ≤ exact; ties;
//! grid validation; the generic certified bound; the pairwise fill.

use std::sync::atomic::AtomicBool;

use ndarray::{Array2, Array3};
use rand::{rngs::StdRng, Rng, SeedableRng};
use semrsm::lap::{linear_sum_assignment, Sense};
use semrsm::matching::{match_affinity, matched_sum, shift::grid, Matcher};
use semrsm::rsm::{gram, GramOptions};
use semrsm::Error;

/// `x` (S × C) matched against `y` rolled by `(dy, dx)` on the `h × w` grid, summed in order of s.
fn rolled_value(a: &Array2<f64>, h: usize, w: usize, dy: usize, dx: usize) -> f64 {
    let mut total = 0.0;
    for r in 0..h {
        for c in 0..w {
            total += a[[r * w + c, ((r + dy) % h) * w + (c + dx) % w]];
        }
    }
    total
}

fn random_affinity(s: usize, seed: u64, ties: bool) -> Array2<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    Array2::from_shape_fn((s, s), |_| {
        if ties {
            f64::from(rng.random_range(-1_i32..=1))
        } else {
            rng.random::<f64>() * 2.0 - 1.0
        }
    })
}

fn unit_norms(s: usize) -> Vec<f64> {
    vec![1.0; s]
}

#[test]
fn shift_is_the_best_roll_and_lies_between_none_and_exact() {
    for (seed, (h, w)) in [(1, 1), (1, 5), (4, 1), (3, 3), (2, 7), (5, 4), (6, 6)]
        .into_iter()
        .enumerate()
    {
        for ties in [false, true] {
            let s = h * w;
            let a = random_affinity(s, seed as u64 + 100 * u64::from(ties), ties);
            let m = match_affinity(
                a.view(),
                &unit_norms(s),
                &unit_norms(s),
                Matcher::Shift { w },
                false,
            )
            .unwrap();
            // Oracle: every shift, first maximum in (dy, dx) order.
            let mut best = (f64::NEG_INFINITY, 0, 0);
            for dy in 0..h {
                for dx in 0..w {
                    let v = rolled_value(&a, h, w, dy, dx);
                    if v > best.0 {
                        best = (v, dy, dx);
                    }
                }
            }
            let (value, dy, dx) = best;
            assert_eq!(m.value.to_bits(), value.to_bits(), "{h}x{w} ties={ties}");
            let expected: Vec<usize> = (0..s)
                .map(|p| ((p / w + dy) % h) * w + (p % w + dx) % w)
                .collect();
            assert_eq!(m.perm, expected, "{h}x{w} ties={ties}: first best shift");
            // none ≤ shift exactly (same summation order), shift ≤ exact.
            let identity: Vec<usize> = (0..s).collect();
            let none = matched_sum(a.as_slice().unwrap(), s, &identity);
            assert!(m.value >= none);
            let exact = linear_sum_assignment(a.view(), Sense::Maximize)
                .unwrap()
                .objective;
            assert!(m.value <= exact + 1e-9 * exact.abs().max(1.0));
        }
    }
}

#[test]
fn ties_keep_the_zero_shift_and_a_shifted_copy_is_found() {
    let s = 12;
    let zero = Array2::<f64>::zeros((s, s));
    let m = match_affinity(
        zero.view(),
        &unit_norms(s),
        &unit_norms(s),
        Matcher::Shift { w: 4 },
        false,
    )
    .unwrap();
    assert_eq!(m.perm, (0..s).collect::<Vec<_>>());

    // y = x rolled by (1, 2) on a 3 × 4 grid: the matcher undoes the roll.
    let (h, w, c) = (3, 4, 5);
    let mut rng = StdRng::seed_from_u64(7);
    let x = Array2::from_shape_fn((h * w, c), |_| rng.random::<f64>() - 0.5);
    let mut y = Array2::<f64>::zeros((h * w, c));
    for r in 0..h {
        for col in 0..w {
            y.row_mut(((r + 1) % h) * w + (col + 2) % w)
                .assign(&x.row(r * w + col));
        }
    }
    let a = x.dot(&y.t());
    let m = match_affinity(
        a.view(),
        &unit_norms(s),
        &unit_norms(s),
        Matcher::Shift { w },
        true,
    )
    .unwrap();
    let expected: Vec<usize> = (0..s)
        .map(|p| ((p / w + 1) % h) * w + (p % w + 2) % w)
        .collect();
    assert_eq!(m.perm, expected);
    let norm2: f64 = x.iter().map(|v| v * v).sum();
    assert!((m.value - norm2).abs() <= 1e-12 * norm2);
    // The generic bound (an auction's dual) is above the value.
    assert!(m.bound.unwrap() >= m.value);
}

#[test]
fn the_grid_is_validated() {
    assert_eq!(grid(49, 0).unwrap(), (7, 7));
    assert_eq!(grid(12, 4).unwrap(), (3, 4));
    for (s, w) in [(12, 0), (12, 5), (7, 2)] {
        match grid(s, w) {
            Err(Error::InvalidOption(msg)) => {
                assert!(msg.contains("shift") && msg.contains('w'), "{msg}")
            }
            other => panic!("expected InvalidOption for S={s} w={w}, got {other:?}"),
        }
    }
    let a = Array2::<f64>::eye(12);
    let err = match_affinity(
        a.view(),
        &unit_norms(12),
        &unit_norms(12),
        Matcher::Shift { w: 0 },
        false,
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidOption(_)));
    assert_eq!(
        Matcher::from_name("shift", &[("w".to_string(), 14)]).unwrap(),
        Matcher::Shift { w: 14 }
    );
    assert_eq!(
        Matcher::from_name("shift", &[]).unwrap(),
        Matcher::Shift { w: 0 }
    );
    assert!(Matcher::from_name("shift", &[("w".to_string(), -1)]).is_err());
    assert!(Matcher::from_name("shift", &[("b".to_string(), 2)]).is_err());
    assert_eq!(Matcher::Shift { w: 3 }.name(), "shift");
    assert!(Matcher::NAMES.contains(&"shift"));
}

#[test]
fn gram_with_shift_is_between_none_and_exact_and_errors_cleanly() {
    let (n, s, c) = (5, 12, 3);
    let mut rng = StdRng::seed_from_u64(11);
    let x = Array3::from_shape_fn((n, s, c), |_| rng.random::<f64>() - 0.5);
    let run = |matcher| {
        let options = GramOptions {
            matcher,
            ..GramOptions::default()
        };
        gram(x.view(), None, &options, &AtomicBool::new(false))
    };
    let none = run(Matcher::None).unwrap().values;
    let shift = run(Matcher::Shift { w: 4 }).unwrap().values;
    let exact = run(Matcher::Exact).unwrap().values;
    for ((&a, &b), &e) in none.iter().zip(&shift).zip(&exact) {
        let tol = 1e-12 * e.abs().max(1.0);
        assert!(a <= b + tol && b <= e + tol, "{a} {b} {e}");
    }
    assert!(matches!(
        run(Matcher::Shift { w: 0 }),
        Err(Error::InvalidOption(_))
    ));
}
