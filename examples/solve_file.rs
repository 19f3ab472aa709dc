//! Solve LAPs stored as raw little-endian `f64` square matrices (profiling aid).
//!
//! `cargo run --release --example solve_file -- A.bin [A2.bin ...]` prints each objective (maximised)
//! and the time taken. Dump matrices from Python with `np.ascontiguousarray(A).tofile("A.bin")`.
//! Useful under `valgrind --tool=callgrind`, whose instruction counts do not depend on machine load.

use std::time::Instant;

use ndarray::ArrayView2;
use semrsm::lap::{linear_sum_assignment, Sense};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path)?;
        let values: Vec<f64> = bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
        let n = (values.len() as f64).sqrt() as usize;
        if n * n != values.len() {
            return Err(format!("{path}: {} values is not a square matrix", values.len()).into());
        }
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
