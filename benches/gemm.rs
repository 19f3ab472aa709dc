//! Criterion benchmarks of the deterministic GEMM (`semrsm::kernels::gemm`), `C = A·Bᵀ`.
//!
//! Affinity shapes of the pairwise fill: one pair `S × C` times `C × S` (S = 49, 257, 1024;
//! C = 24, 320, 2048), a block of 14 × 14 pairs at S = 49 as `rsm` computes them, in `f64` and
//! `f32`, on the process's instruction set (`SEMRSM_ISA` lowers it). Also the mixed-precision
//! certificate's `f64` dot products of such a block (`semrsm::kernels::screen`): 13 × 13 pairs at
//! `S = 49`, `C = 2048`, their 49 assigned entries each as strict chains and ~42 candidates each
//! as any-order sums, in two passes or in one (`dots_blocked_both`). The spatio-semantic
//! baseline's own steps: one chunk (192 steps) of 2000 raw `f32` rows centred and packed as both
//! operands by all threads (`Gemm::pack_centred_par`), and the `(C, S)` → `(S, C)` transpose of
//! one `256 × 196` sample (`kernels::gemm::transpose`). Run with `cargo bench --bench gemm`;
//! numpy/OpenBLAS comparisons are in `benches/bench_gemm.py`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::Array2;
use rand::{rngs::StdRng, Rng, SeedableRng};
use semrsm::kernels::gemm::{transpose, Gemm, GemmScalar, Operand, Packed};
use semrsm::kernels::screen::{
    dots_blocked, dots_blocked_any_order, dots_blocked_both, DotsScratch,
};

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

/// The certificate's dot products of a block of 13 × 13 pairs (`S = 49`, `C = 2048`): per pair a
/// random permutation's 49 entries (strict) and 42 other entries of the same rows (any order).
#[allow(clippy::cast_possible_truncation)]
fn bench_certificate_dots(c: &mut Criterion) {
    let (b, s, k) = (13_usize, 49_usize, 2048_usize);
    let mut rng = StdRng::seed_from_u64(7);
    let x = matrix::<f64>(b * s, k, &mut rng, |v| v);
    let y = matrix::<f64>(b * s, k, &mut rng, |v| v);
    let (xs, ys) = (x.as_slice().unwrap_or(&[]), y.as_slice().unwrap_or(&[]));
    let (mut strict, mut any) = (Vec::new(), Vec::new());
    for ii in 0..b {
        for jj in 0..b {
            let mut perm: Vec<usize> = (0..s).collect();
            for t in (1..s).rev() {
                perm.swap(t, rng.random_range(0..=t));
            }
            for (i, &j) in perm.iter().enumerate() {
                strict.push(((ii * s + i) as u32, (jj * s + j) as u32));
            }
            for _ in 0..42 {
                let (i, j) = (rng.random_range(0..s), rng.random_range(0..s));
                any.push(((ii * s + i) as u32, (jj * s + j) as u32));
            }
        }
    }
    let mut group = c.benchmark_group("certificate_dots_13x13_pairs_s49_c2048");
    group.sample_size(10);
    group.throughput(Throughput::Elements(
        ((strict.len() + any.len()) * k) as u64,
    ));
    let (mut out_s, mut out_a, mut scratch) = (Vec::new(), Vec::new(), DotsScratch::default());
    group.bench_function(BenchmarkId::from_parameter("two_passes"), |bench| {
        bench.iter(|| {
            let ok = dots_blocked(xs, ys, k, &strict, &mut out_s, &mut scratch)
                .and_then(|()| dots_blocked_any_order(xs, ys, k, &any, &mut out_a, &mut scratch));
            if let Err(e) = ok {
                panic!("dots: {e}");
            }
        });
    });
    group.bench_function(BenchmarkId::from_parameter("one_pass"), |bench| {
        bench.iter(|| {
            let lists = ((&strict[..], &mut out_s), (&any[..], &mut out_a));
            if let Err(e) = dots_blocked_both(xs, ys, k, lists.0, lists.1, &mut scratch) {
                panic!("dots: {e}");
            }
        });
    });
    group.finish();
}

fn bench_none_steps(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(6);
    let mut group = c.benchmark_group("none_steps");
    group.sample_size(10);
    let (rows, kc) = (2000, 192);
    #[allow(clippy::cast_possible_truncation)]
    let raw = matrix::<f32>(rows, 256 * 196, &mut rng, |v| v as f32);
    let mean: Vec<f64> = (0..kc).map(|p| p as f64 * 1e-3).collect();
    let src: Vec<&[f32]> = raw
        .outer_iter()
        .map(|r| &r.to_slice().unwrap()[..kc])
        .collect();
    let gemm = Gemm::<f64>::new();
    let (mut a, mut b) = (Packed::new(), Packed::new());
    group.throughput(Throughput::Elements((rows * kc) as u64));
    group.bench_function(
        BenchmarkId::from_parameter("pack_centred_par_2000x192"),
        |bench| {
            bench.iter(|| {
                gemm.prepare(&mut a, Operand::A, rows, kc).unwrap();
                gemm.prepare(&mut b, Operand::B, rows, kc).unwrap();
                gemm.pack_centred_par(&mut [&mut a, &mut b], &src, Some(&mean), 48)
                    .unwrap();
            });
        },
    );
    let (ch, s) = (256, 196);
    let one = raw.row(0).to_vec();
    let mut dst = vec![std::mem::MaybeUninit::<f32>::uninit(); ch * s];
    let wide: Vec<f64> = one.iter().map(|&v| f64::from(v)).collect();
    let mut dst64 = vec![std::mem::MaybeUninit::<f64>::uninit(); ch * s];
    group.throughput(Throughput::Elements((ch * s) as u64));
    group.bench_function(
        BenchmarkId::from_parameter("transpose_f32_256x196"),
        |bench| {
            bench.iter(|| transpose(&one, &mut dst, ch, s));
        },
    );
    group.bench_function(
        BenchmarkId::from_parameter("transpose_f64_256x196"),
        |bench| {
            bench.iter(|| transpose(&wide, &mut dst64, ch, s));
        },
    );
    group.finish();
}

criterion_group!(
    benches,
    bench_gemm,
    bench_certificate_dots,
    bench_none_steps
);
criterion_main!(benches);
