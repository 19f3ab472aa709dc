//! Reading the profiling examples' input: a raw little-endian `f64` square matrix, as written by
//! `np.ascontiguousarray(A).tofile("A.bin")`.

/// The matrix in `path`: its side `n` and its `n × n` values in row-major order.
pub fn read_square(path: &str) -> Result<(usize, Vec<f64>), Box<dyn std::error::Error>> {
    let bytes = std::fs::read(path)?;
    let values: Vec<f64> = bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    let n = (values.len() as f64).sqrt() as usize;
    if n * n != values.len() || bytes.len() % 8 != 0 {
        return Err(format!("{path}: {} bytes is not a square f64 matrix", bytes.len()).into());
    }
    Ok((n, values))
}
