//! Criterion benchmarks of the auctions' bid kernels (`semrsm::kernels::bid`).
//!
//! One row of S = 257, 1024 and 4096 columns (the rows of the warm start's `f32` copy and of the
//! certified auction's scans), seeded: `two_min` (the warm start's full scan), `list_two_min` (its
//! bid from a row's 16 candidates), `top_two` on `f32` and `f64` rows with `f64` prices,
//! `row_max_reduced`, `min_max` of an `f32` row (a row's range before the 16-bit copy), the dual's
//! column pass `column_max` (`f32` row, and negated on a 16-bit row), and
//! `narrow_min_max` over a 256 × S block of `f64` costs (the warm start's copy and range). Every kernel runs on the process's
//! instruction set (`SEMRSM_ISA` lowers it) and on the portable reference, in the same run, so
//! the two can be compared. Run with `cargo bench --bench bid`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{rngs::StdRng, Rng, SeedableRng};
use semrsm::kernels::bid::{self, CANDIDATES};
use semrsm::kernels::{isa, Isa};

fn bench_bid(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(3);
    for s in [257_usize, 1024, 4096] {
        let row: Vec<f64> = (0..s).map(|_| rng.random::<f64>()).collect();
        let narrow: Vec<f32> = row.iter().map(|&x| x as f32).collect();
        let prices: Vec<f64> = (0..s).map(|_| rng.random::<f64>() * 0.1).collect();
        let prices32: Vec<f32> = prices.iter().map(|&x| x as f32).collect();
        let block: Vec<f64> = (0..256 * s).map(|_| rng.random::<f64>()).collect();
        let mut copy = Vec::new();
        for level in [isa(), Isa::Portable] {
            let mut group = c.benchmark_group(format!("bid_{}", level.name()));
            group.sample_size(20);
            group.throughput(Throughput::Elements(s as u64));
            let mut candidates = [0_u32; CANDIDATES];
            group.bench_with_input(BenchmarkId::new("two_min_f32", s), &s, |b, _| {
                b.iter(|| bid::two_min(level, &narrow, &prices32, &mut candidates).j1);
            });
            let costs: [f32; CANDIDATES] = std::array::from_fn(|k| narrow[k]);
            let columns: [u32; CANDIDATES] = std::array::from_fn(|k| (k * s / CANDIDATES) as u32);
            group.bench_with_input(BenchmarkId::new("list_two_min_f32", s), &s, |b, _| {
                b.iter(|| bid::list_two_min(level, &costs, &columns, &prices32).2);
            });
            group.bench_with_input(BenchmarkId::new("top_two_f32", s), &s, |b, _| {
                b.iter(|| bid::top_two(level, &narrow, &prices).0);
            });
            group.bench_with_input(BenchmarkId::new("top_two_f64", s), &s, |b, _| {
                b.iter(|| bid::top_two(level, &row, &prices).0);
            });
            group.bench_with_input(BenchmarkId::new("row_max_reduced_f32", s), &s, |b, _| {
                b.iter(|| bid::row_max_reduced(level, &narrow, &prices));
            });
            group.bench_with_input(BenchmarkId::new("min_max_f32", s), &s, |b, _| {
                b.iter(|| bid::min_max(level, &narrow).1);
            });
            let mut columns = vec![f64::NEG_INFINITY; s];
            group.bench_with_input(BenchmarkId::new("column_max_f32", s), &s, |b, _| {
                b.iter(|| bid::column_max::<f32, false>(level, &narrow, 0.5, &mut columns));
            });
            let quantised: Vec<u16> = row.iter().map(|&x| (x * 65535.0) as u16).collect();
            group.bench_with_input(BenchmarkId::new("column_max_u16", s), &s, |b, _| {
                b.iter(|| bid::column_max::<u16, true>(level, &quantised, 1234.5, &mut columns));
            });
            group.throughput(Throughput::Elements(block.len() as u64));
            group.bench_with_input(
                BenchmarkId::new("narrow_min_max_256_rows", s),
                &s,
                |b, _| {
                    b.iter(|| bid::narrow_min_max::<f64, true>(level, &block, 0.5, &mut copy).0);
                },
            );
            group.finish();
        }
    }
}

criterion_group!(benches, bench_bid);
criterion_main!(benches);
