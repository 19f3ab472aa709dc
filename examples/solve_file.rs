//! Solve LAPs stored as raw little-endian `f64` square matrices (profiling aid).
//!
//! `cargo run --release --example solve_file -- A.bin [A2.bin ...]` prints each objective (maximised)
//! and the time taken. Dump matrices from Python with `np.ascontiguousarray(A).tofile("A.bin")`.
//! Useful under `valgrind --tool=callgrind`, whose instruction counts do not depend on machine load.

#[path = "common/raw.rs"]
mod raw;

use std::time::Instant;

use ndarray::ArrayView2;
use semrsm::lap::{linear_sum_assignment, Sense};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for path in std::env::args().skip(1) {
        let (n, values) = raw::read_square(&path)?;
        let view = ArrayView2::from_shape((n, n), &values)?;
        let start = Instant::now();
        let a = linear_sum_assignment(view, Sense::Maximize)?;
        println!(
            "{path}: n={n} objective={} in {:.1} ms",
            a.objective,
            start.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(())
}
