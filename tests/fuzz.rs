//! Property-based fuzzing of the exact LAP solver and of every matcher (proptest).
//!
//! Every case runs on its own thread under a per-case time limit, so a hang is a test failure
//! (not a stuck CI job). Invariants checked on every case:
//! - the call returns within the limit, with `Ok` on valid input;
//! - the result is a valid (injective, in-range) assignment / permutation whose reported value is
//!   its sum;
//! - the exact solver is optimal: equal to pathfinding's Kuhn–Munkres on integer costs (scaled by
//!   a power of two from 2⁻¹⁰⁷⁴ — subnormals — to 2⁹⁸⁰, so the float problem *is* the integer
//!   one), and to brute force for real-valued costs of any dynamic range with `min(n, m) ≤ 6`;
//! - matchers: approximation ≤ exact ≤ certified bound, and the auction within its target gap
//!   unless rounding at the scale of the largest affinity alone exceeds it.
//!
//! Inputs cover what broke before: ties, subnormals, huge dynamic range (per-position scales
//! 10^±60), square sizes ≥ 32 (the warm-start auction; up to 160) and Batch-Optimal blocks ≥ 32.
//!
//! The harness finds the hang fixed in 70ddad1 (subnormal costs, n ≥ 32) within a few hundred
//! cases when that fix is reverted.
//!
//! Scale: `SEMRSM_FUZZ_CASES` (or proptest's `PROPTEST_CASES`) cases per target, default 32 (CI);
//! `SEMRSM_FUZZ_CASE_SECONDS` per-case limit, default 30 (a case takes milliseconds). An hour locally:
//! `SEMRSM_FUZZ_CASES=5000000 cargo test --release --test fuzz` (about an hour on one loaded core;
//! stop it at any time).

use std::sync::mpsc;
use std::time::Duration;

use ndarray::Array2;
use pathfinding::kuhn_munkres::kuhn_munkres;
use pathfinding::matrix::Matrix;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use semrsm::lap::{linear_sum_assignment, Sense};
use semrsm::matching::{match_affinity, Matcher};

mod common;
use common::brute_force;

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn config() -> Config {
    let cases = env_usize("SEMRSM_FUZZ_CASES")
        .or_else(|| env_usize("PROPTEST_CASES"))
        .unwrap_or(32);
    Config {
        cases: u32::try_from(cases).unwrap_or(u32::MAX),
        // A hang costs a case limit per shrink step: keep shrinking short.
        max_shrink_iters: 32,
        max_shrink_time: 120_000,
        failure_persistence: None,
        ..Config::default()
    }
}

fn case_limit() -> Duration {
    Duration::from_secs(env_usize("SEMRSM_FUZZ_CASE_SECONDS").unwrap_or(30) as u64)
}

/// Run `work` on its own thread; a case that does not finish within the limit fails (hang).
fn within_limit<T: Send + 'static>(what: String, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(work());
    });
    match receive.recv_timeout(case_limit()) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("no result within {:?}: {what}", case_limit())
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("panicked: {what}"),
    }
}

/// Integer costs `k · 2^e` (exact in f64, including subnormals) with their integers.
#[derive(Debug, Clone)]
struct IntProblem {
    ints: Array2<i64>,
    exponent: i32,
}

impl IntProblem {
    fn costs(&self) -> Array2<f64> {
        let scale =
            2.0_f64.powi(self.exponent.max(-1022)) * 2.0_f64.powi((self.exponent + 1022).min(0));
        self.ints.mapv(|k| k as f64 * scale)
    }
}

/// Shapes up to 48 (square sizes ≥ 32 get the warm start), few distinct values (ties) or many.
fn int_problem() -> impl Strategy<Value = IntProblem> {
    let shape = prop_oneof![
        3 => (1_usize..=12, 1_usize..=12),
        3 => (1_usize..=40, 1_usize..=40),
        3 => (32_usize..=48).prop_map(|n| (n, n)),
        1 => (49_usize..=160).prop_map(|n| (n, n)),
    ];
    let exponent = prop_oneof![
        Just(-1074),
        Just(-1060),
        Just(-1022),
        Just(-520),
        Just(0),
        Just(500),
        Just(980),
    ];
    (
        shape,
        exponent,
        prop_oneof![Just(1_i64), Just(3), Just(1000)],
        any::<u64>(),
    )
        .prop_map(|((n, m), exponent, spread, seed)| {
            let mut x = seed | 1;
            let ints = Array2::from_shape_fn((n, m), |_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % (2 * spread as u64 + 1)) as i64 - spread
            });
            IntProblem { ints, exponent }
        })
}

/// Real costs with per-row and per-column scales 10^±`decades`, small `min(n, m)` (brute force).
fn real_problem() -> impl Strategy<Value = Array2<f64>> {
    (1_usize..=6, 1_usize..=9, 0_i32..=120, any::<u64>()).prop_map(|(n, m, decades, seed)| {
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1_u64 << 53) as f64
        };
        let half = f64::from(decades) / 2.0;
        let rows: Vec<f64> = (0..n)
            .map(|_| 10f64.powf((next() * 2.0 - 1.0) * half))
            .collect();
        let cols: Vec<f64> = (0..m)
            .map(|_| 10f64.powf((next() * 2.0 - 1.0) * half))
            .collect();
        Array2::from_shape_fn((n, m), |(i, j)| (next() * 2.0 - 1.0) * rows[i] * cols[j])
    })
}

fn assert_assignment(cost: &Array2<f64>, rows: &[usize], cols: &[usize], objective: f64) {
    let (n, m) = cost.dim();
    assert_eq!(rows.len(), n.min(m));
    assert!(rows.windows(2).all(|w| w[0] < w[1]));
    let mut seen = vec![false; m];
    for &c in cols {
        assert!(c < m && !seen[c], "column {c} repeated or out of range");
        seen[c] = true;
    }
    let sum: f64 = rows.iter().zip(cols).map(|(&r, &c)| cost[[r, c]]).sum();
    assert_eq!(sum, objective);
}

#[test]
fn fuzz_exact_solver_integer_costs_vs_kuhn_munkres() {
    TestRunner::new(config())
        .run(&(int_problem(), any::<bool>()), |(problem, maximize)| {
            let cost = problem.costs();
            let sense = if maximize {
                Sense::Maximize
            } else {
                Sense::Minimize
            };
            let what = format!(
                "linear_sum_assignment {:?} 2^{}",
                cost.dim(),
                problem.exponent
            );
            let c = cost.clone();
            let a = within_limit(what, move || linear_sum_assignment(c.view(), sense))
                .expect("valid input must solve");
            assert_assignment(&cost, &a.rows, &a.cols, a.objective);
            // Oracle on the integers: maximise weights (rows <= columns for pathfinding).
            let sign = if maximize { 1 } else { -1 };
            let ints = if problem.ints.nrows() <= problem.ints.ncols() {
                problem.ints.mapv(|k| sign * k)
            } else {
                problem.ints.t().mapv(|k| sign * k)
            };
            let matrix =
                Matrix::from_vec(ints.nrows(), ints.ncols(), ints.iter().copied().collect())
                    .unwrap();
            let (best, _) = kuhn_munkres(&matrix);
            let ours: i64 = a
                .rows
                .iter()
                .zip(&a.cols)
                .map(|(&r, &c)| problem.ints[[r, c]])
                .sum();
            prop_assert_eq!(sign * ours, best);
            Ok(())
        })
        .unwrap();
}

#[test]
fn fuzz_exact_solver_real_costs_of_any_range_vs_brute_force() {
    TestRunner::new(config())
        .run(&(real_problem(), any::<bool>()), |(cost, maximize)| {
            let sense = if maximize {
                Sense::Maximize
            } else {
                Sense::Minimize
            };
            let c = cost.clone();
            let a = within_limit(format!("real {:?}", cost.dim()), move || {
                linear_sum_assignment(c.view(), sense)
            })
            .expect("valid input must solve");
            assert_assignment(&cost, &a.rows, &a.cols, a.objective);
            let best = brute_force(&cost, sense);
            // Sums of a handful of terms: rounding at most a few ulps of the largest entry.
            let tol = 8.0 * f64::EPSILON * cost.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            match sense {
                Sense::Minimize => {
                    prop_assert!(a.objective <= best + tol, "{} > {best}", a.objective)
                }
                Sense::Maximize => {
                    prop_assert!(a.objective >= best - tol, "{} < {best}", a.objective)
                }
            }
            Ok(())
        })
        .unwrap();
}

/// Every matcher, with options that make the approximations non-trivial, Batch-Optimal blocks
/// of 32 and more included.
fn matcher() -> impl Strategy<Value = Matcher> {
    prop_oneof![
        Just(Matcher::None),
        Just(Matcher::Exact),
        Just(Matcher::Greedy),
        Just(Matcher::Shift { w: 1 }),
        (0_usize..=48).prop_map(|k| Matcher::TopkGreedy { k }),
        (1_usize..=48).prop_map(|b| Matcher::BatchOptimal { b }),
        (32_usize..=40).prop_map(|b| Matcher::BatchOptimal { b }),
        prop_oneof![Just(0_u32), Just(1000), Just(30_000), Just(1_000_000)]
            .prop_map(|gap_ppm| Matcher::Auction { gap_ppm }),
    ]
}

/// An affinity `x yᵀ` of `s` positions with per-position scales 10^±`decades`/2, or integer
/// affinities `k · 2^e` (ties, subnormals).
fn affinity_problem() -> impl Strategy<Value = (Array2<f64>, Vec<f64>, Vec<f64>)> {
    let scaled =
        (1_usize..=48, 1_usize..=4, 0_i32..=120, any::<u64>()).prop_map(|(s, c, decades, seed)| {
            let mut x = seed | 1;
            let mut next = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 11) as f64 / (1_u64 << 53) as f64
            };
            let half = f64::from(decades) / 2.0;
            let mut side = || {
                let scales: Vec<f64> = (0..s)
                    .map(|_| 10f64.powf((next() * 2.0 - 1.0) * half))
                    .collect();
                Array2::from_shape_fn((s, c), |(i, _)| (next() * 2.0 - 1.0) * scales[i])
            };
            let (xs, ys) = (side(), side());
            let norms = |a: &Array2<f64>| -> Vec<f64> {
                a.outer_iter()
                    .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt())
                    .collect()
            };
            (xs.dot(&ys.t()), norms(&xs), norms(&ys))
        });
    let integer = int_problem().prop_map(|p| {
        let s = p.ints.nrows().min(p.ints.ncols());
        let a = p.costs().slice(ndarray::s![..s, ..s]).to_owned();
        let norms: Vec<f64> = (0..s).map(|i| ((i * 7919) % 13) as f64).collect();
        (a, norms.clone(), norms.into_iter().rev().collect())
    });
    prop_oneof![scaled, integer]
}

#[test]
fn fuzz_every_matcher_is_valid_below_exact_below_bound() {
    TestRunner::new(config())
        .run(
            &(affinity_problem(), matcher()),
            |((a, nx, ny), matcher)| {
                if a.iter()
                    .any(|v| !v.is_finite() || v.abs() > semrsm::lap::MAX_ABS_COST)
                {
                    return Ok(()); // outside the documented input range (rejected with an error)
                }
                let s = a.nrows();
                let what = format!("{matcher:?} S={s}");
                let (a2, nx2, ny2) = (a.clone(), nx.clone(), ny.clone());
                let (got, exact) = within_limit(what, move || {
                    (
                        match_affinity(a2.view(), &nx2, &ny2, matcher, true),
                        match_affinity(a2.view(), &nx2, &ny2, Matcher::Exact, false),
                    )
                });
                let (got, exact) = (got.expect("valid input"), exact.expect("valid input"));
                let mut seen = vec![false; s];
                for &j in &got.perm {
                    prop_assert!(j < s && !seen[j], "invalid permutation {:?}", got.perm);
                    seen[j] = true;
                }
                let bound = got.bound.unwrap();
                let max_abs = a.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
                #[allow(clippy::cast_precision_loss)]
                let tol = 4.0 * (s * s) as f64 * f64::EPSILON * max_abs;
                prop_assert!(
                    got.value <= exact.value + tol,
                    "{} above exact {}",
                    got.value,
                    exact.value
                );
                prop_assert!(
                    exact.value <= bound + tol,
                    "exact {} above bound {bound}",
                    exact.value
                );
                prop_assert!(got.value <= bound);
                if s <= 7 {
                    let best = brute_force(&a, Sense::Maximize);
                    prop_assert!(
                        (exact.value - best).abs() <= tol,
                        "exact {} vs brute {best}",
                        exact.value
                    );
                }
                if let Matcher::Auction { gap_ppm } = matcher {
                    let target = f64::from(gap_ppm) * 1e-6;
                    let scale = got.value.abs().min(bound.abs());
                    let reachable = tol < 0.1 * target * scale;
                    prop_assert!(
                        !reachable || bound - got.value <= target * scale,
                        "auction gap {} above target {target}",
                        (bound - got.value) / scale
                    );
                }
                Ok(())
            },
        )
        .unwrap();
}
