//! Criterion benchmarks of the exact LAP solver.
//!
//! Two families of square problems, seeded: uniform random costs (the textbook case), and real-like
//! affinities `A = X Yᵀ` of non-negative random feature vectors with C = 32 channels (every column
//! shares the same favourite rows, the hard case for assignment solvers; see the paper's Sec. 4.4).
//! Run with `cargo bench --bench lap`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ndarray::{Array2, ArrayView2};
use rand::{rngs::StdRng, Rng, SeedableRng};
use semrsm::lap::{linear_sum_assignment, Sense};

fn uniform(n: usize, seed: u64) -> Array2<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    Array2::from_shape_fn((n, n), |_| rng.random::<f64>())
}

fn relu_affinity(n: usize, channels: usize, seed: u64) -> Array2<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut feature =
        || Array2::from_shape_fn((n, channels), |_| rng.random::<f64>().max(0.3) - 0.3);
    let x = feature();
    let y = feature();
    x.dot(&y.t())
}

fn solve(cost: ArrayView2<'_, f64>) -> f64 {
    linear_sum_assignment(cost, Sense::Maximize)
        .map(|a| a.objective)
        .unwrap_or(f64::NAN)
}

fn bench_exact(c: &mut Criterion) {
    let mut group = c.benchmark_group("lap_uniform");
    group.sample_size(10);
    for n in [49_usize, 64, 100, 256, 1024] {
        let cost = uniform(n, 7);
        group.bench_with_input(BenchmarkId::from_parameter(n), &cost, |b, cost| {
            b.iter(|| solve(cost.view()))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("lap_relu_affinity");
    group.sample_size(10);
    for n in [49_usize, 64, 100, 256, 1024] {
        let cost = relu_affinity(n, 32, 11);
        group.bench_with_input(BenchmarkId::from_parameter(n), &cost, |b, cost| {
            b.iter(|| solve(cost.view()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_exact);
criterion_main!(benches);
