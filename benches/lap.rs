//! Criterion benchmarks of the exact LAP solver.
//!
//! Two families of square problems, seeded: uniform random costs (the textbook case), and real-like
//! affinities `A = X Yᵀ` of non-negative random feature vectors with C = 32 channels (every column
//! shares the same favourite rows, the hard case for assignment solvers; see the paper's Sec. 4.4).
//! A third family stands in for ViT tokens (S = 197 and 257 positions, C = 384 channels, the sizes
//! where the solver warm-starts from auction prices): tokens drawn around a few shared "concepts"
//! with per-token norms, in `f64` and in `f32` (the cost type of `precision="mixed"`). A fourth,
//! `lap_large`, is the second family at S = 2048 and 4096 with C = 24 (real block2 sizes).
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

/// Affinities `X Yᵀ` of two sets of `n` token-like vectors of `channels` channels: each token is
/// one of 12 shared concept vectors plus as much noise, scaled to a norm factor in 0.5–1.7 (real
/// ViT-S/14 layer-11 tokens, centred, have norms from 12 to 53 around a median of 28).
fn token_affinity(n: usize, channels: usize, seed: u64) -> Array2<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut normal = move || {
        // Sum of 4 uniforms: a cheap, seeded, roughly normal draw.
        (0..4).map(|_| rng.random::<f64>()).sum::<f64>() - 2.0
    };
    let concepts = Array2::from_shape_fn((12, channels), |_| normal());
    let mut tokens = || {
        let mut x = Array2::from_shape_fn((n, channels), |_| normal());
        for mut row in x.rows_mut() {
            let k = (normal().abs() * 1e6) as usize % 12;
            let scale = 1.1 + 0.6 * normal().clamp(-1.0, 1.0);
            row.zip_mut_with(&concepts.row(k), |a, &c| *a = (*a + c) * scale);
        }
        x
    };
    let x = tokens();
    let y = tokens();
    x.dot(&y.t())
}

fn solve<T: semrsm::lap::Cost>(cost: ArrayView2<'_, T>) -> f64 {
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

    let mut group = c.benchmark_group("lap_token_affinity");
    group.sample_size(20);
    for n in [197_usize, 257] {
        let cost = token_affinity(n, 384, 13);
        let narrow = cost.mapv(|a| a as f32);
        group.bench_with_input(BenchmarkId::new("f64", n), &cost, |b, cost| {
            b.iter(|| solve(cost.view()))
        });
        group.bench_with_input(BenchmarkId::new("f32", n), &narrow, |b, cost| {
            b.iter(|| solve(cost.view()))
        });
    }
    group.finish();

    // Sizes whose warm start no longer fits the caches (EfficientNet block2 maps: S = 3136 and
    // 4096, C = 24), where it bids on quantised copies of the costs.
    let mut group = c.benchmark_group("lap_large");
    group.sample_size(10);
    for n in [2048_usize, 4096] {
        let cost = relu_affinity(n, 24, 17);
        group.bench_with_input(BenchmarkId::from_parameter(n), &cost, |b, cost| {
            b.iter(|| solve(cost.view()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_exact);
criterion_main!(benches);
