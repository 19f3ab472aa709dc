//! Time the exact solver and the certified auction on raw little-endian `f64` square matrices,
//! one reused workspace, interleaved (profiling aid; `SEMRSM_STATS=1` adds per-phase counters).
//!
//! `cargo run --release --example profile_pair -- REPS A.bin [A2.bin ...]`: for every file,
//! `REPS` alternating runs of the exact solver and of the auction's first phase; prints the median
//! of each. Dump matrices from Python with `np.ascontiguousarray(A).tofile("A.bin")`.

#[path = "common/raw.rs"]
mod raw;

use std::time::Instant;

use ndarray::ArrayView2;
use semrsm::matching::{match_affinity, Matcher};

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`, Linux), else the
/// wall clock: on a loaded machine the CPU time does not count the time other processes ran.
fn cpu_ns(wall: Instant) -> u128 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| wall.elapsed().as_nanos())
}

fn median(mut t: Vec<f64>) -> f64 {
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let reps: usize = args.next().ok_or("REPS")?.parse()?;
    let origin = Instant::now();
    for path in args {
        let (n, values) = raw::read_square(&path)?;
        let view = ArrayView2::from_shape((n, n), &values)?;
        let norms: Vec<f64> = (0..n)
            .map(|i| {
                values[i * n..(i + 1) * n]
                    .iter()
                    .map(|a| a * a)
                    .sum::<f64>()
                    .sqrt()
            })
            .collect();
        let (mut te, mut ta) = (Vec::new(), Vec::new());
        let (mut ve, mut va, mut ba) = (0.0, 0.0, 0.0);
        // One untimed run of each first: the workspace's buffers grow (page faults) only there.
        for _ in 0..=reps {
            let t = cpu_ns(origin);
            ve = match_affinity(view, &norms, &norms, Matcher::Exact, false)?.value;
            te.push((cpu_ns(origin) - t) as f64 * 1e-6);
            let t = cpu_ns(origin);
            let m = match_affinity(
                view,
                &norms,
                &norms,
                Matcher::Auction { gap_ppm: 1_000_000 },
                true,
            )?;
            ta.push((cpu_ns(origin) - t) as f64 * 1e-6);
            (va, ba) = (m.value, m.bound.unwrap_or(f64::NAN));
        }
        te.remove(0);
        ta.remove(0);
        println!(
            "{path}: n={n} exact {:.1} ms  auction {:.1} ms  k/k_opt {:.4}  value/bound {:.4}",
            median(te),
            median(ta),
            va / ve,
            va / ba
        );
    }
    Ok(())
}
