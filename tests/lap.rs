//! Exactness of the LAP solver against brute force (n ≤ 8) and against an independent solver
//! (pathfinding's Kuhn–Munkres on integer weights, up to n = 200, rectangular too).

use ndarray::{array, Array2};
use pathfinding::kuhn_munkres::kuhn_munkres;
use pathfinding::matrix::Matrix;
use rand::{rngs::StdRng, Rng, SeedableRng};
use semrsm::lap::{linear_sum_assignment, Assignment, SapSolver, Sense, MAX_ABS_COST};
use semrsm::Error;

mod common;
use common::brute_force;

/// The assignment is a valid injective map in scipy's format and its objective is its sum.
fn assert_valid(cost: &Array2<f64>, a: &Assignment) {
    let (n, m) = cost.dim();
    assert_eq!(a.rows.len(), n.min(m));
    assert_eq!(a.cols.len(), n.min(m));
    assert!(a.rows.windows(2).all(|w| w[0] < w[1]), "rows must increase");
    let mut seen = vec![false; m];
    for &c in &a.cols {
        assert!(c < m && !seen[c], "column {c} out of range or repeated");
        seen[c] = true;
    }
    let sum: f64 = a
        .rows
        .iter()
        .zip(&a.cols)
        .map(|(&r, &c)| cost[[r, c]])
        .sum();
    assert_eq!(sum, a.objective);
}

fn random_matrix(rng: &mut StdRng, n: usize, m: usize, lo: i64, hi: i64) -> Array2<f64> {
    Array2::from_shape_fn((n, m), |_| rng.random_range(lo..=hi) as f64)
}

#[test]
fn known_answer_3x3() {
    // Textbook example (also scipy's linear_sum_assignment docstring): optimum 5 via (0,1),(1,0),(2,2).
    let cost = array![[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]];
    let a = linear_sum_assignment(cost.view(), Sense::Minimize).unwrap();
    assert_eq!(a.cols, vec![1, 0, 2]);
    assert_eq!(a.objective, 5.0);
}

#[test]
fn matches_brute_force_small() {
    let mut rng = StdRng::seed_from_u64(1);
    for trial in 0..400 {
        let n = rng.random_range(1..=8);
        let m = rng.random_range(1..=8);
        // Few distinct values: many ties, the case where wrong tie handling shows.
        let cost = if trial % 2 == 0 {
            random_matrix(&mut rng, n, m, -3, 3)
        } else {
            Array2::from_shape_fn((n, m), |_| rng.random::<f64>() * 10.0 - 5.0)
        };
        for sense in [Sense::Minimize, Sense::Maximize] {
            let a = linear_sum_assignment(cost.view(), sense).unwrap();
            assert_valid(&cost, &a);
            let best = brute_force(&cost, sense);
            assert!(
                (a.objective - best).abs() <= 1e-12 * best.abs().max(1.0),
                "{n}x{m} {sense:?}: {} vs {best}",
                a.objective
            );
        }
    }
}

#[test]
fn matches_kuhn_munkres_oracle() {
    let mut rng = StdRng::seed_from_u64(2);
    let sizes = [
        (1, 1),
        (5, 5),
        (17, 23),
        (40, 40),
        (64, 100),
        (100, 64),
        (128, 128),
        (150, 199),
        (200, 200),
    ];
    for &(n, m) in &sizes {
        for range in [5_i64, 1000, 1_000_000] {
            let cost = random_matrix(&mut rng, n, m, -range, range);
            // pathfinding maximises and needs rows <= columns.
            let weights = if n <= m {
                cost.clone()
            } else {
                cost.t().to_owned()
            };
            let matrix = Matrix::from_vec(
                weights.nrows(),
                weights.ncols(),
                weights.iter().map(|&w| w as i64).collect(),
            )
            .unwrap();
            let (oracle, _) = kuhn_munkres(&matrix);
            let a = linear_sum_assignment(cost.view(), Sense::Maximize).unwrap();
            assert_valid(&cost, &a);
            assert_eq!(a.objective, oracle as f64, "{n}x{m}, range {range}");
            // Minimising is maximising the negation.
            let neg = cost.mapv(|c| -c);
            let b = linear_sum_assignment(neg.view(), Sense::Minimize).unwrap();
            assert_eq!(b.objective, -a.objective);
        }
    }
}

#[test]
fn maximize_equals_minimize_of_negation_on_reals() {
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..50 {
        let (n, m) = (rng.random_range(1..60), rng.random_range(1..60));
        let cost = Array2::from_shape_fn((n, m), |_| rng.random::<f64>() * 2.0 - 1.0);
        let max = linear_sum_assignment(cost.view(), Sense::Maximize).unwrap();
        let min = linear_sum_assignment(cost.mapv(|c| -c).view(), Sense::Minimize).unwrap();
        assert!((max.objective + min.objective).abs() < 1e-12 * (n as f64));
    }
}

#[test]
fn f32_input_accumulates_in_f64() {
    let mut rng = StdRng::seed_from_u64(4);
    let cost32 = Array2::from_shape_fn((50, 70), |_| rng.random::<f32>());
    let cost64 = cost32.mapv(f64::from);
    let a = linear_sum_assignment(cost32.view(), Sense::Minimize).unwrap();
    let b = linear_sum_assignment(cost64.view(), Sense::Minimize).unwrap();
    // The f32 entries are exact in f64, so both solve the same problem.
    assert!((a.objective - b.objective).abs() < 1e-12);
    let direct: f64 = a
        .rows
        .iter()
        .zip(&a.cols)
        .map(|(&r, &c)| f64::from(cost32[[r, c]]))
        .sum();
    assert_eq!(direct, a.objective);
}

#[test]
fn adversarial_matrices() {
    let cases: Vec<(&str, Array2<f64>)> = vec![
        ("all equal", Array2::from_elem((30, 30), 7.0)),
        (
            "rank one",
            Array2::from_shape_fn((30, 30), |(i, j)| (i as f64 + 1.0) * (j as f64 + 1.0)),
        ),
        (
            "huge range",
            Array2::from_shape_fn((12, 12), |(i, j)| {
                if (i * 7 + j) % 5 == 0 {
                    1e300
                } else {
                    -1e300 * ((i + j) % 3) as f64 / 2.0
                }
            }),
        ),
        (
            "tiny",
            Array2::from_shape_fn((8, 8), |(i, j)| ((i * 3 + j) % 7) as f64 * 1e-300),
        ),
        (
            "one row",
            Array2::from_shape_fn((1, 9), |(_, j)| (j as f64 - 4.0).abs()),
        ),
        (
            "one column",
            Array2::from_shape_fn((9, 1), |(i, _)| (i as f64 - 4.0).abs()),
        ),
    ];
    for (name, cost) in cases {
        for sense in [Sense::Minimize, Sense::Maximize] {
            let a = linear_sum_assignment(cost.view(), sense).unwrap();
            assert_valid(&cost, &a);
            if cost.nrows().max(cost.ncols()) <= 8 || cost.nrows().min(cost.ncols()) == 1 {
                assert_eq!(a.objective, brute_force(&cost, sense), "{name}");
            }
        }
    }
    // Rank one maximum pairs i with i (rearrangement inequality): Σ (i+1)².
    let r1 = Array2::from_shape_fn((30, 30), |(i, j)| (i as f64 + 1.0) * (j as f64 + 1.0));
    let a = linear_sum_assignment(r1.view(), Sense::Maximize).unwrap();
    assert_eq!(a.objective, (1..=30).map(|k| (k * k) as f64).sum::<f64>());
}

#[test]
fn empty_matrix_gives_empty_assignment() {
    let cost = Array2::<f64>::zeros((0, 5));
    let a = linear_sum_assignment(cost.view(), Sense::Minimize).unwrap();
    assert!(a.rows.is_empty() && a.cols.is_empty());
    assert_eq!(a.objective, 0.0);
}

#[test]
fn invalid_entries_are_errors_not_hangs() {
    // NaN, and the infinity that cannot mean "forbidden" in this sense (scipy's rule).
    for (bad, sense) in [
        (f64::NAN, Sense::Minimize),
        (f64::NAN, Sense::Maximize),
        (f64::NEG_INFINITY, Sense::Minimize),
        (f64::INFINITY, Sense::Maximize),
    ] {
        let mut cost = Array2::from_shape_fn((6, 6), |(i, j)| (i * j) as f64);
        cost[[2, 3]] = bad;
        match linear_sum_assignment(cost.view(), sense) {
            Err(e @ Error::InvalidCost { .. }) => {
                let Error::InvalidCost { ref index, .. } = e else {
                    unreachable!()
                };
                assert_eq!(index, &vec![2, 3]);
                assert!(e
                    .to_string()
                    .starts_with("matrix contains invalid numeric entries"));
            }
            other => panic!("expected InvalidCost for {bad} ({sense:?}), got {other:?}"),
        }
    }
    let mut cost = Array2::<f64>::zeros((3, 3));
    cost[[1, 1]] = MAX_ABS_COST * 10.0;
    assert!(matches!(
        linear_sum_assignment(cost.view(), Sense::Minimize),
        Err(Error::Range { .. })
    ));
    // Finite entries too spread out to leave room for a stand-in of the forbidden ones.
    let cost = array![[-1e300, 1e300], [f64::INFINITY, 0.0]];
    assert!(matches!(
        linear_sum_assignment(cost.view(), Sense::Minimize),
        Err(Error::Range { .. })
    ));
}

/// `+inf` (minimising) / `-inf` (maximising) entries are forbidden assignments, as in scipy:
/// against brute force (which sums the infinities, so an infinite best means infeasible) on
/// every shape up to 7 × 7, sparse to dense, both senses, square problems included (they take
/// the padded route), and `f32` costs.
#[test]
fn forbidden_entries_match_brute_force() {
    let mut rng = StdRng::seed_from_u64(12);
    let (mut feasible, mut infeasible) = (0, 0);
    for n in 1..=7 {
        for m in 1..=7 {
            for &density in &[0.15, 0.4, 0.7, 0.95] {
                for sense in [Sense::Minimize, Sense::Maximize] {
                    let forbidden = match sense {
                        Sense::Minimize => f64::INFINITY,
                        Sense::Maximize => f64::NEG_INFINITY,
                    };
                    let cost = Array2::from_shape_fn((n, m), |_| {
                        if rng.random::<f64>() < density {
                            rng.random_range(-20_i32..=20).into()
                        } else {
                            forbidden
                        }
                    });
                    let best = brute_force(&cost, sense);
                    let got = linear_sum_assignment(cost.view(), sense);
                    let got32 = linear_sum_assignment(cost.mapv(|c| c as f32).view(), sense);
                    if best.is_finite() {
                        feasible += 1;
                        let a = got.unwrap();
                        assert_valid(&cost, &a);
                        assert_eq!(a.objective, best, "{n}x{m} {sense:?}\n{cost}");
                        assert_eq!(got32.unwrap().objective, best);
                    } else {
                        infeasible += 1;
                        for r in [got.map(|_| ()), got32.map(|_| ())] {
                            match r {
                                Err(e @ Error::Infeasible(_)) => {
                                    assert!(e.to_string().starts_with("cost matrix is infeasible"))
                                }
                                other => panic!("expected Infeasible, got {other:?}\n{cost}"),
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(feasible > 200 && infeasible > 80, "{feasible} {infeasible}");
}

/// Forbidden entries in problems large enough for the warm start, with costs far from zero
/// (the stand-in must leave their differences intact): against the same problem where the
/// forbidden entries are replaced by a cost so large that no optimum uses them (checked).
#[test]
fn forbidden_entries_at_scale_and_offset() {
    let mut rng = StdRng::seed_from_u64(3);
    for &(n, m, offset) in &[(40, 40, 0.0), (64, 64, 1e9), (50, 80, -1e6), (90, 60, 1e12)] {
        let mut cost = Array2::from_shape_fn((n, m), |_| {
            offset + f64::from(rng.random_range(0_i32..1000))
        });
        // Forbid ~60 % of the entries off the (always allowed) diagonal.
        for i in 0..n {
            for j in 0..m {
                if i != j && rng.random::<f64>() < 0.6 {
                    cost[[i, j]] = f64::INFINITY;
                }
            }
        }
        let a = linear_sum_assignment(cost.view(), Sense::Minimize).unwrap();
        assert_valid(&cost, &a);
        let huge = 1e15 + offset.abs() * 1e3;
        let finite = cost.mapv(|c| if c.is_finite() { c } else { huge });
        let b = linear_sum_assignment(finite.view(), Sense::Minimize).unwrap();
        assert!(b.objective < huge);
        assert_eq!(a.objective, b.objective, "{n}x{m} offset {offset}");
    }
}

#[test]
fn infeasible_problems_name_a_reason() {
    let inf = f64::INFINITY;
    // An all-forbidden row of a wide matrix, an all-forbidden column of a square one.
    let wide = array![[1.0, 2.0, 3.0], [inf, inf, inf]];
    let square = array![[inf, 1.0], [inf, 2.0]];
    let tall = array![[inf, inf], [1.0, inf], [2.0, inf]]; // both columns are needed
    for (cost, reason) in [
        (wide, "row 1 has no finite entry"),
        (square, "column 0 has no finite entry"),
        (tall, "column 1 has no finite entry"),
    ] {
        let e = linear_sum_assignment(cost.view(), Sense::Minimize).unwrap_err();
        assert!(matches!(e, Error::Infeasible(_)), "{e:?}");
        assert!(e.to_string().contains(reason), "{e}");
    }
    // Hall's condition fails although every line has a finite entry: found by the solver.
    let hall = array![[1.0, inf, inf], [2.0, inf, inf], [3.0, 4.0, 5.0]];
    let e = linear_sum_assignment(hall.view(), Sense::Minimize).unwrap_err();
    assert!(
        e.to_string().contains("every assignment uses at least one"),
        "{e}"
    );
}

#[test]
fn solver_rejects_bad_shapes_and_survives_unvalidated_nan() {
    let mut solver = SapSolver::new();
    assert!(matches!(
        solver.solve(&[1.0_f64; 6], 3, 2, Sense::Minimize),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        solver.solve(&[1.0_f64; 5], 2, 3, Sense::Minimize),
        Err(Error::Shape(_))
    ));
    // Straight to the solver, bypassing validation: an error, never a hang or panic.
    let nan = [f64::NAN; 9];
    assert!(solver.solve(&nan, 3, 3, Sense::Minimize).is_err());
    // The workspace is reusable after an error.
    let ok = solver
        .solve(&[3.0_f64, 1.0, 2.0, 0.5], 2, 2, Sense::Minimize)
        .unwrap();
    assert_eq!(ok, &[1, 0]);
}

/// Square problems of n >= 32 take the auction warm start; n x (n + 1) problems with a useless
/// extra column do not (rectangular), so they are an independent route to the same optimum.
fn padded_objective(cost: &Array2<f64>, sense: Sense) -> f64 {
    let n = cost.nrows();
    let worst = match sense {
        Sense::Minimize => 1e6 * (1.0 + cost.iter().fold(0.0_f64, |a, &c| a.max(c.abs()))),
        Sense::Maximize => -1e6 * (1.0 + cost.iter().fold(0.0_f64, |a, &c| a.max(c.abs()))),
    };
    let mut padded = Array2::from_elem((n, n + 1), worst);
    padded.slice_mut(ndarray::s![.., ..n]).assign(cost);
    linear_sum_assignment(padded.view(), sense)
        .unwrap()
        .objective
}

fn km_max(cost: &Array2<f64>) -> f64 {
    let m = Matrix::from_vec(
        cost.nrows(),
        cost.ncols(),
        cost.iter().map(|&w| w as i64).collect(),
    )
    .unwrap();
    kuhn_munkres(&m).0 as f64
}

#[test]
fn warm_started_square_problems_match_oracles() {
    let mut rng = StdRng::seed_from_u64(21);
    for &n in &[32_usize, 33, 64, 100, 257] {
        for range in [2_i64, 50, 100_000] {
            let cost = random_matrix(&mut rng, n, n, -range, range);
            let a = linear_sum_assignment(cost.view(), Sense::Maximize).unwrap();
            assert_valid(&cost, &a);
            assert_eq!(a.objective, km_max(&cost), "n={n} range={range}");
            let b = linear_sum_assignment(cost.view(), Sense::Minimize).unwrap();
            assert_eq!(
                b.objective,
                -km_max(&cost.mapv(|c| -c)),
                "n={n} range={range} (min)"
            );
        }
        // Real-valued affinities of non-negative features (every column prefers the same rows).
        let x = Array2::from_shape_fn((n, 16), |_| (rng.random::<f64>() - 0.4).max(0.0));
        let y = Array2::from_shape_fn((n, 16), |_| (rng.random::<f64>() - 0.4).max(0.0));
        let aff = x.dot(&y.t());
        for sense in [Sense::Maximize, Sense::Minimize] {
            let a = linear_sum_assignment(aff.view(), sense).unwrap();
            assert_valid(&aff, &a);
            let oracle = padded_objective(&aff, sense);
            assert!(
                (a.objective - oracle).abs() <= 1e-12 * oracle.abs().max(1.0),
                "n={n} {sense:?}"
            );
        }
    }
}

/// Both starts of square problems: the reductions (n < 128) and the auction prices (n >= 128),
/// each at and beside the threshold (the auction's candidate lists from n = 512 on with AVX-512:
/// `tests/python/test_lap_solver.py` at n = 520 on every instruction set).
#[test]
fn adversarial_matrices_at_warm_start_sizes() {
    for n in [64, 127, 128, 199, 256] {
        adversarial_at(n);
    }
}

fn adversarial_at(n: usize) {
    let mut rng = StdRng::seed_from_u64(22 + n as u64);
    // All equal: every assignment is optimal.
    let equal = Array2::from_elem((n, n), 3.5);
    let a = linear_sum_assignment(equal.view(), Sense::Maximize).unwrap();
    assert_valid(&equal, &a);
    assert_eq!(a.objective, 3.5 * n as f64, "n={n}");
    // Rank one: pair i with i (rearrangement inequality).
    let r1 = Array2::from_shape_fn((n, n), |(i, j)| (i as f64 + 1.0) * (j as f64 + 1.0));
    let a = linear_sum_assignment(r1.view(), Sense::Maximize).unwrap();
    assert_eq!(a.objective, (1..=n).map(|k| (k * k) as f64).sum::<f64>());
    // Many ties: entries in {0, 1}.
    let ties = random_matrix(&mut rng, n, n, 0, 1);
    assert_eq!(
        linear_sum_assignment(ties.view(), Sense::Maximize)
            .unwrap()
            .objective,
        km_max(&ties)
    );
    // ±1e300 (beyond f32: the warm start must step aside, not poison the prices).
    let pattern = random_matrix(&mut rng, n, n, -1, 1);
    let huge = pattern.mapv(|p| p * 1e300);
    for sense in [Sense::Maximize, Sense::Minimize] {
        let a = linear_sum_assignment(huge.view(), sense).unwrap();
        assert_valid(&huge, &a);
        let k = match sense {
            Sense::Maximize => km_max(&pattern),
            Sense::Minimize => -km_max(&pattern.mapv(|p| -p)),
        };
        assert!(
            (a.objective - k * 1e300).abs() <= 1e-12 * (k.abs() * 1e300).max(1e300),
            "{sense:?}"
        );
    }
    // Huge dynamic range within one matrix, and values that underflow f32.
    let wide = Array2::from_shape_fn((n, n), |_| {
        10f64.powi(rng.random_range(-12..12)) * rng.random::<f64>()
    });
    let a = linear_sum_assignment(wide.view(), Sense::Maximize).unwrap();
    let oracle = padded_objective(&wide, Sense::Maximize);
    assert!((a.objective - oracle).abs() <= 1e-12 * oracle, "n={n}");
    let tiny = Array2::from_shape_fn((n, n), |_| rng.random::<f64>() * 1e-300);
    let a = linear_sum_assignment(tiny.view(), Sense::Maximize).unwrap();
    let oracle = padded_objective(&tiny, Sense::Maximize);
    assert!((a.objective - oracle).abs() <= 1e-12 * oracle, "n={n}");
}

/// The shape of real late-layer affinities, exaggerated: every row's best columns are among a
/// few popular ones (here exact duplicates of each other), which makes the searches long and full
/// of ties between free and assigned columns. Integer entries, so the oracle is exact.
#[test]
fn few_popular_and_duplicate_columns_match_oracles() {
    let mut rng = StdRng::seed_from_u64(24);
    for n in [2_usize, 5, 8, 49, 64, 100, 199, 200, 256] {
        let popular = (n / 3).max(1);
        let base = random_matrix(&mut rng, n, popular, 500, 1000);
        let rest = random_matrix(&mut rng, n, n, -20, 20);
        // Columns 0..popular are strong; each of them appears twice (a duplicate column) where
        // there is room.
        let cost = Array2::from_shape_fn((n, n), |(i, j)| {
            if j < popular {
                base[[i, j]]
            } else if j < 2 * popular {
                base[[i, j - popular]]
            } else {
                rest[[i, j]]
            }
        });
        for sense in [Sense::Maximize, Sense::Minimize] {
            let a = linear_sum_assignment(cost.view(), sense).unwrap();
            assert_valid(&cost, &a);
            let oracle = if n <= 8 {
                brute_force(&cost, sense)
            } else {
                match sense {
                    Sense::Maximize => km_max(&cost),
                    Sense::Minimize => -km_max(&cost.mapv(|c| -c)),
                }
            };
            assert_eq!(a.objective, oracle, "n={n} {sense:?}");
        }
        // Real-valued: the same structure with noise, against the rectangular (start-free) path.
        let noisy = cost.mapv(|c| c + rng.random::<f64>() * 1e-3);
        let a = linear_sum_assignment(noisy.view(), Sense::Maximize).unwrap();
        let oracle = padded_objective(&noisy, Sense::Maximize);
        assert!(
            (a.objective - oracle).abs() <= 1e-12 * oracle.abs(),
            "n={n} noisy"
        );
    }
}

#[test]
fn square_f32_matches_f64() {
    let mut rng = StdRng::seed_from_u64(23);
    let cost32 = Array2::from_shape_fn((96, 96), |_| rng.random::<f32>());
    let cost64 = cost32.mapv(f64::from);
    for sense in [Sense::Maximize, Sense::Minimize] {
        let a = linear_sum_assignment(cost32.view(), sense).unwrap();
        let b = linear_sum_assignment(cost64.view(), sense).unwrap();
        assert!((a.objective - b.objective).abs() < 1e-12 * b.objective.abs());
    }
}

/// Tiny and subnormal costs (issue 9: `5e-324 ·` integers hung the warm start, whose ε underflowed
/// to 0). Integer multiples of the smallest subnormal are exact, so the optimum is the integer
/// optimum scaled. Each solve runs on a thread with a generous deadline: a hang fails the test.
#[test]
fn tiny_and_subnormal_costs_terminate_and_stay_exact() {
    let mut rng = StdRng::seed_from_u64(9);
    for n in [32, 33, 64, 100, 200, 257] {
        let ints = random_matrix(&mut rng, n, n, 0, 1000);
        let matrix = Matrix::from_vec(n, n, ints.iter().map(|&w| w as i64).collect()).unwrap();
        let (oracle, _) = kuhn_munkres(&matrix);
        for scale in [5e-324, 1e-320, 1e-310, 1e-300, 1e-200] {
            let cost = ints.mapv(|c| c * scale);
            let (send, receive) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = send.send(linear_sum_assignment(cost.view(), Sense::Maximize));
            });
            let a = receive
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("n = {n}, scale {scale:e}: no answer in 60 s"))
                .unwrap();
            assert_valid(&ints.mapv(|c| c * scale), &a);
            if scale == 5e-324 {
                assert_eq!(a.objective, oracle as f64 * scale, "n = {n}");
            } else {
                let objective: f64 = a
                    .rows
                    .iter()
                    .zip(&a.cols)
                    .map(|(&r, &c)| ints[[r, c]])
                    .sum();
                assert_eq!(objective, oracle as f64, "n = {n}, scale {scale:e}");
            }
        }
    }
}

/// `c[i, j] = i·j`: long augmenting paths (O(n³) for the search).
fn slow_square(n: usize) -> Array2<f64> {
    Array2::from_shape_fn((n, n), |(i, j)| (i * j) as f64)
}

#[test]
fn a_set_cancel_flag_interrupts_the_solver_and_a_clear_one_changes_nothing() {
    use semrsm::lap::linear_sum_assignment_cancellable;
    use std::sync::atomic::AtomicBool;
    for (n, m) in [(40, 40), (64, 64), (10, 30), (30, 10)] {
        let cost = slow_square(n.max(m))
            .slice(ndarray::s![..n, ..m])
            .to_owned();
        for sense in [Sense::Minimize, Sense::Maximize] {
            let set = AtomicBool::new(true);
            assert_eq!(
                linear_sum_assignment_cancellable(cost.view(), sense, &set),
                Err(Error::Interrupted)
            );
            let clear = AtomicBool::new(false);
            assert_eq!(
                linear_sum_assignment_cancellable(cost.view(), sense, &clear),
                linear_sum_assignment(cost.view(), sense)
            );
        }
    }
}

#[test]
fn cancelling_from_another_thread_stops_one_long_solve() {
    use semrsm::lap::linear_sum_assignment_cancellable;
    use std::sync::atomic::{AtomicBool, Ordering};
    // Uninterrupted this takes seconds (minutes in a debug build); the flag is set after 20 ms
    // and the solver polls it once per augmenting row.
    let cost = slow_square(1500);
    let flag = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            flag.store(true, Ordering::Relaxed);
        });
        linear_sum_assignment_cancellable(cost.view(), Sense::Maximize, &flag)
    });
    assert_eq!(result, Err(Error::Interrupted));
}
