//! Criterion benchmarks of the deterministic GEMM (`semrsm::kernels::gemm`), `C = A·Bᵀ`.
//!
//! Affinity shapes of the pairwise fill: one pair `S × C` times `C × S` (S = 49, 257, 1024;
//! C = 24, 320, 2048), a block of 14 × 14 pairs at S = 49 as `rsm` computes them, in `f64` and
//! `f32`, on the process's instruction set (`SEMRSM_ISA` lowers it). Run with
//! `cargo bench --bench gemm`; numpy/OpenBLAS comparisons are in `benches/bench_gemm.py`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::Array2;
use rand::{rngs::StdRng, Rng, SeedableRng};
use semrsm::kernels::gemm::{Gemm, GemmScalar};

fn matrix<T: GemmScalar>(rows: usize, cols: usize, rng: &mut StdRng, f: fn(f64) -> T) -> Array2<T> {
    Array2::from_shape_fn((rows, cols), |_| f(rng.random::<f64>() - 0.5))
}

fn bench_type<T: GemmScalar>(c: &mut Criterion, name: &str, f: fn(f64) -> T) {
    let mut rng = StdRng::seed_from_u64(5);
    let shapes = [
        (49, 49, 320),
        (49, 49, 2048),
        (686, 686, 320),
        (257, 257, 384),
        (1024, 1024, 24),
        (1024, 1024, 320),
    ];
    let mut group = c.benchmark_group(format!("gemm_abt_{name}"));
    group.sample_size(10);
    for (m, n, k) in shapes {
        let a = matrix(m, k, &mut rng, f);
        let b = matrix(n, k, &mut rng, f);
        let mut out = Array2::from_elem((m, n), f(0.0));
        let mut gemm = Gemm::new();
        group.throughput(Throughput::Elements((m * n * k) as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{m}x{n}x{k}")),
            &(m, n, k),
            |bench, _| {
                bench.iter(|| {
                    if let Err(e) = gemm.abt(a.view(), b.view(), out.view_mut()) {
                        panic!("gemm: {e}");
                    }
                });
            },
        );
    }
    group.finish();
}

fn bench_gemm(c: &mut Criterion) {
    bench_type::<f64>(c, "f64", |v| v);
    #[allow(clippy::cast_possible_truncation)]
    bench_type::<f32>(c, "f32", |v| v as f32);
}

criterion_group!(benches, bench_gemm);
criterion_main!(benches);
