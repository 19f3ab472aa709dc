//! Time the exact solver and the certified auction on raw little-endian `f64` square matrices,
//! one reused workspace, interleaved (profiling aid; `SEMRSM_STATS=1` adds per-phase counters).
//!
//! `cargo run --release --example profile_pair -- REPS A.bin [A2.bin ...]`: for every file,
//! `REPS` alternating runs of the exact solver and of the auction's first phase; prints the median
//! of each. Dump matrices from Python with `np.ascontiguousarray(A).tofile("A.bin")`.
//!
//! `cargo run --release --example profile_pair -- --cross REF.bin A.bin [A2.bin ...]`: the
//! cross-pair warm start (affinities of pairs that share their column sample, e.g. `x_0 y_7ᵀ`,
//! `x_1 y_7ᵀ`): every file solved exactly from cold (the solver's own auction warm start) and from
//! the optimal column duals of `REF` scaled by the ratio of the cost ranges (searches only), CPU
//! times of both; the objectives must agree.

#[path = "common/raw.rs"]
mod raw;

use std::time::Instant;

use ndarray::ArrayView2;
use semrsm::lap::{SapSolver, Sense};
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

/// `max − min` of the values.
fn range(values: &[f64]) -> f64 {
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &a| {
            (l.min(a), h.max(a))
        });
    hi - lo
}

/// The `--cross` mode (see the module documentation).
fn cross(reference: &str, paths: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let origin = Instant::now();
    let no_cancel = std::sync::atomic::AtomicBool::new(false);
    let mut solver = SapSolver::new();
    let (n, values) = raw::read_square(reference)?;
    solver.solve(&values, n, n, Sense::Maximize)?;
    // Duals per unit of the cost range.
    let unit = range(&values);
    let duals: Vec<f64> = solver.column_duals().iter().map(|&v| v / unit).collect();
    for path in paths {
        let (m, values) = raw::read_square(path)?;
        if m != n {
            return Err(format!("{path}: {m} positions, {reference}: {n}").into());
        }
        let objective = |perm: &[usize]| -> f64 {
            perm.iter()
                .enumerate()
                .map(|(i, &j)| values[i * n + j])
                .sum()
        };
        let t = cpu_ns(origin);
        let cold = objective(solver.solve(&values, n, n, Sense::Maximize)?);
        let t_cold = (cpu_ns(origin) - t) as f64 * 1e-6;
        let t = cpu_ns(origin);
        let scale = range(&values);
        let prices: Vec<f64> = duals.iter().map(|&v| v * scale).collect();
        let warm = objective(solver.solve_from_prices_cancellable(
            &values,
            n,
            Sense::Maximize,
            &prices,
            &no_cancel,
        )?);
        let t_warm = (cpu_ns(origin) - t) as f64 * 1e-6;
        if (warm - cold).abs() > 1e-9 * cold.abs() {
            return Err(format!("{path}: objectives differ ({cold} cold, {warm} warm)").into());
        }
        println!("{path}: n={n} cold {t_cold:.1} ms  from {reference}'s duals {t_warm:.1} ms");
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    if all.first().map(String::as_str) == Some("--cross") {
        let reference = all.get(1).ok_or("--cross REF.bin A.bin ...")?;
        return cross(reference, &all[2..]);
    }
    let mut args = all.into_iter();
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
