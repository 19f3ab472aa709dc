//! Criterion benchmarks of every matcher, on seeded synthetic affinities.
//!
//! Real-like problems: `A = X Yᵀ` of non-negative random feature vectors (ReLU-like, C = 32
//! channels; the hard case where every column shares the same favourite rows, see
//! `benches/lap.rs`), with the per-position norms the norm-based matchers need. One group per
//! matcher, `S` = 256 and 1024. The affinity itself is built outside the timed loop. Run with
//! `cargo bench --bench matchers`; the real-data comparison is `benches/table5.py`. Group `shift`
//! compares the shift matcher through the affinity with the FFT path `gram` takes at large `S`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ndarray::Array2;
use rand::{rngs::StdRng, Rng, SeedableRng};
use semrsm::matching::shift::{best_shift_features, ShiftWorkspace};
use semrsm::matching::{Affinity, Matcher, Workspace};

struct Problem {
    affinity: Array2<f64>,
    norms_x: Vec<f64>,
    norms_y: Vec<f64>,
}

fn relu_problem(n: usize, channels: usize, seed: u64) -> Problem {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut feature =
        || Array2::from_shape_fn((n, channels), |_| rng.random::<f64>().max(0.3) - 0.3);
    let x = feature();
    let y = feature();
    let norms = |a: &Array2<f64>| -> Vec<f64> {
        a.outer_iter()
            .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt())
            .collect()
    };
    Problem {
        affinity: x.dot(&y.t()),
        norms_x: norms(&x),
        norms_y: norms(&y),
    }
}

fn bench_matchers(c: &mut Criterion) {
    let sizes = [256_usize, 1024];
    let problems: Vec<(usize, Problem)> = sizes
        .iter()
        .map(|&n| (n, relu_problem(n, 32, 11)))
        .collect();
    let matchers = [
        ("greedy", Matcher::Greedy),
        ("topk_greedy_k128", Matcher::TopkGreedy { k: 128 }),
        ("batch_optimal_b128", Matcher::BatchOptimal { b: 128 }),
        ("batch_optimal_b512", Matcher::BatchOptimal { b: 512 }),
        ("auction_gap3pct", Matcher::Auction { gap_ppm: 30_000 }),
        ("auction_gap0.1pct", Matcher::Auction { gap_ppm: 1_000 }),
        ("exact", Matcher::Exact),
    ];
    for (name, matcher) in matchers {
        let mut group = c.benchmark_group(format!("matcher_{name}"));
        group.sample_size(10);
        for (n, p) in &problems {
            let a = p.affinity.as_slice().unwrap_or(&[]);
            let problem = match Affinity::new(a, *n, &p.norms_x, &p.norms_y) {
                Ok(problem) => problem,
                Err(e) => panic!("benchmark set-up: {e}"),
            };
            let mut workspace = Workspace::default();
            let mut perm = vec![0; *n];
            group.bench_with_input(BenchmarkId::from_parameter(n), &problem, |b, problem| {
                b.iter(|| matcher.assign(problem, &mut workspace, &mut perm).is_ok());
            });
        }
        group.finish();
    }
}

/// The shift matcher both ways, per pair of `H × W × C` maps: through the affinity (its GEMM
/// included, as `gram` pays it) and from the samples by FFT ([`best_shift_features`], what `gram`
/// runs from 256 grid positions on). Same shift, same value.
fn bench_shift(c: &mut Criterion) {
    let mut group = c.benchmark_group("shift");
    group.sample_size(10);
    for (h, w, channels) in [(16, 16, 112), (32, 32, 40), (56, 56, 24), (64, 64, 24)] {
        let s = h * w;
        let mut rng = StdRng::seed_from_u64(5);
        let mut sample = || Array2::from_shape_fn((s, channels), |_| rng.random::<f64>() - 0.5);
        let (x, y) = (sample(), sample());
        let (xs, ys) = (x.as_slice().unwrap_or(&[]), y.as_slice().unwrap_or(&[]));
        let zeros = vec![0.0; s];
        let mut perm = vec![0; s];
        let mut workspace = Workspace::default();
        let label = format!("{h}x{w}_c{channels}");
        group.bench_function(BenchmarkId::new("affinity", &label), |b| {
            b.iter(|| {
                let a = x.dot(&y.t());
                let problem = Affinity::new(a.as_slice().unwrap_or(&[]), s, &zeros, &zeros);
                problem.and_then(|p| Matcher::Shift { w }.assign(&p, &mut workspace, &mut perm))
            });
        });
        let mut fft = ShiftWorkspace::default();
        group.bench_function(BenchmarkId::new("fft", &label), |b| {
            b.iter(|| best_shift_features(xs, ys, channels, w, &mut fft, &mut perm));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_matchers, bench_shift);
criterion_main!(benches);
