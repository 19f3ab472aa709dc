//! Criterion benchmarks of the `f64` re-score of a permutation (mixed precision's approximate
//! matchers: the permutation is chosen on `f32` affinities, `G` is its `f64` value).
//!
//! Seeded maps of S = 49 (C = 2048) and S = 256 (C = 384), `f64` rows:
//! - `one_chain_per_row`: a [`dot`] per matched entry, one strict FMA chain at a time (what
//!   `mixed::rescore` did before `matched_dots`), the baseline;
//! - `rescore`: [`mixed::rescore`], eight rows' chains at a time (`kernels::screen::matched_dots`);
//! - `block_of_pairs/…`: the pairs of a block of 7 × 7 maps (as the cross-pair GEMM groups them),
//!   each re-scored alone by `rescore` (`each_alone`) or all together by
//!   [`mixed::rescore_pairs`] (`together`: each row read once per chunk of `k`).
//!
//! All give the same bits. Run with `cargo bench --bench rescore`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{rngs::StdRng, Rng, SeedableRng};
use semrsm::kernels::screen::dot;
use semrsm::matching::mixed::{self, RescoreScratch};

fn bench_rescore(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(7);
    let maps = 7_usize;
    for (s, ch) in [(49_usize, 2048_usize), (256, 384)] {
        let x: Vec<f64> = (0..maps * s * ch)
            .map(|_| rng.random::<f64>() - 0.3)
            .collect();
        let y: Vec<f64> = (0..maps * s * ch)
            .map(|_| rng.random::<f64>() - 0.3)
            .collect();
        // A permutation per pair: a rotation by the pair's index.
        let perm = |p: usize| -> Vec<usize> { (0..s).map(|r| (r + 3 * p + 1) % s).collect() };
        let mut group = c.benchmark_group(format!("rescore_s{s}_c{ch}"));
        group.sample_size(20);
        group.throughput(Throughput::Elements((s * ch) as u64));
        let (x0, y0, p0) = (&x[..s * ch], &y[..s * ch], perm(0));
        group.bench_function("one_chain_per_row", |b| {
            b.iter(|| -> f64 {
                p0.iter()
                    .enumerate()
                    .map(|(i, &j)| dot(&x0[i * ch..(i + 1) * ch], &y0[j * ch..(j + 1) * ch]))
                    .sum()
            });
        });
        group.bench_function("rescore", |b| b.iter(|| mixed::rescore(x0, y0, ch, &p0)));
        let starts: Vec<(usize, usize)> = (0..maps)
            .flat_map(|i| (0..maps).map(move |j| (i * s, j * s)))
            .collect();
        let perms: Vec<usize> = (0..starts.len()).flat_map(perm).collect();
        group.throughput(Throughput::Elements((starts.len() * s * ch) as u64));
        group.bench_with_input(
            BenchmarkId::new("block_of_pairs", "each_alone"),
            &(),
            |b, ()| {
                b.iter(|| -> f64 {
                    starts
                        .iter()
                        .enumerate()
                        .map(|(p, &(rx, ry))| {
                            let (xs, ys) = (&x[rx * ch..(rx + s) * ch], &y[ry * ch..(ry + s) * ch]);
                            mixed::rescore(xs, ys, ch, &perms[p * s..(p + 1) * s])
                        })
                        .sum()
                });
            },
        );
        let mut scratch = RescoreScratch::default();
        let mut out = Vec::new();
        group.bench_with_input(
            BenchmarkId::new("block_of_pairs", "together"),
            &(),
            |b, ()| {
                b.iter(|| {
                    mixed::rescore_pairs((&x, &y, ch), &starts, &perms, &mut scratch, &mut out)
                        .expect("rows in range");
                    out.iter().sum::<f64>()
                });
            },
        );
        group.finish();
    }
}

criterion_group!(benches, bench_rescore);
criterion_main!(benches);
