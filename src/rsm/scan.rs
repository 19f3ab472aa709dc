//! One step of the tile engine's streaming pass over an input (`semrsm._tiles.scan`), in
//! parallel: the largest magnitude, whether every value is finite, and the running mean
//! `Σ_i x_i / N` with each row added in order.
//!
//! Every entry of the mean is its own chain `acc += f64(x_i) / N` over the rows in order (one
//! correctly rounded division and addition per row, as numpy's `np.divide(..., dtype=float64)`
//! then `+=` computes it), so the bits do not depend on how the columns are split between
//! threads, nor on how the rows are split into blocks.

use ndarray::{ArrayView2, Axis};
use rayon::prelude::*;

use super::pool;
use crate::error::Result;
use crate::kernels::centre::{scan_row, RawElement};
use crate::kernels::isa;

/// Columns per task: enough work per task, disjoint parts of `acc` (no reduction order).
const COLUMNS: usize = 4096;

/// What one step of the scan found: the largest `|x|` (meaningful when every value is
/// finite), and whether every value was finite (`false`: the caller locates the first one that
/// is not).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScanStep {
    /// `max |x|` over the block (0 for an empty block; infinite or unspecified when a value is
    /// not finite).
    pub max_abs: f64,
    /// Whether every value of the block is finite.
    pub finite: bool,
}

/// Scan the rows of `rows` (`r × d`, one flattened sample per row): with `acc` (`d` entries),
/// add `f64(x) / n` of every row to it, row by row in order. Columns are split between the
/// threads of `threads` (see [`pool::pool`]).
///
/// Complexity: `O(r·d)`, no allocation beyond the thread pool.
///
/// # Errors
/// [`crate::Error::Shape`] when `acc` does not have `d` entries,
/// [`crate::Error::InvalidOption`] for `threads == Some(0)`, [`crate::Error::ThreadPool`].
///
/// # Example
/// ```
/// use ndarray::array;
/// use semrsm::rsm::scan::scan_rows;
/// let x = array![[1.0_f32, -4.0], [3.0, 2.0]];
/// let mut acc = vec![0.0; 2];
/// let step = scan_rows(x.view(), Some(&mut acc), 2.0, Some(1)).unwrap();
/// assert_eq!((step.max_abs, step.finite), (4.0, true));
/// assert_eq!(acc, vec![2.0, -1.0]);
/// ```
pub fn scan_rows<R: RawElement>(
    rows: ArrayView2<'_, R>,
    acc: Option<&mut [f64]>,
    n: f64,
    threads: Option<usize>,
) -> Result<ScanStep> {
    let d = rows.ncols();
    if let Some(acc) = &acc {
        if acc.len() != d {
            return Err(crate::Error::Shape(format!(
                "scan: the accumulator has {} entries for rows of {d}",
                acc.len()
            )));
        }
    }
    let part = |c0: usize, acc: Option<&mut [f64]>| -> ScanStep {
        let width = acc.as_ref().map_or(COLUMNS.min(d - c0), |a| a.len());
        let cols = rows.slice(ndarray::s![.., c0..c0 + width]);
        let (mut top, mut bad) = (0.0_f64, false);
        let mut acc = acc;
        for row in cols.axis_iter(Axis(0)) {
            let step = match (&mut acc, row.as_slice()) {
                (Some(acc), Some(row)) => add_row(row, acc, n),
                (None, Some(row)) => max_row(row),
                (acc, None) => {
                    let row = row.to_vec();
                    match acc {
                        Some(acc) => add_row(&row, acc, n),
                        None => max_row(&row),
                    }
                }
            };
            top = top.max(step.max_abs);
            bad |= !step.finite;
        }
        ScanStep {
            max_abs: top,
            finite: !bad,
        }
    };
    let merge = |a: ScanStep, b: ScanStep| ScanStep {
        max_abs: a.max_abs.max(b.max_abs),
        finite: a.finite && b.finite,
    };
    let empty = ScanStep {
        max_abs: 0.0,
        finite: true,
    };
    pool::pool(threads)?.install(|| {
        Ok(match acc {
            Some(acc) => acc
                .par_chunks_mut(COLUMNS)
                .enumerate()
                .map(|(i, a)| part(i * COLUMNS, Some(a)))
                .reduce(|| empty, merge),
            None => (0..d.div_ceil(COLUMNS))
                .into_par_iter()
                .map(|i| part(i * COLUMNS, None))
                .reduce(|| empty, merge),
        })
    })
}

/// `acc += f64(x) / n` element by element; the row's largest `|x|` and finiteness.
fn add_row<R: RawElement>(row: &[R], acc: &mut [f64], n: f64) -> ScanStep {
    let (top, nan) = scan_row(isa(), row, Some(acc), n);
    ScanStep {
        max_abs: top,
        finite: !nan && top.is_finite(),
    }
}

/// The row's largest `|x|` and whether every value is finite.
fn max_row<R: RawElement>(row: &[R]) -> ScanStep {
    let (top, nan) = scan_row(isa(), row, None, 1.0);
    ScanStep {
        max_abs: top,
        finite: !nan && top.is_finite(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn the_mean_has_the_bits_of_the_row_by_row_sum_for_any_split() {
        let (r, d) = (37, 9000); // three column tasks, the last partial
        let x = Array2::from_shape_fn((r, d), |(i, j)| {
            ((i * 7919 + j * 104_729) % 1000) as f32 * 0.013 - 5.1 + (j as f32).sin()
        });
        let n = 101.0;
        let mut want = vec![0.0_f64; d];
        for row in x.rows() {
            for (a, &e) in want.iter_mut().zip(row) {
                *a += f64::from(e) / n;
            }
        }
        let top = x.iter().fold(0.0_f64, |t, &e| t.max(f64::from(e).abs()));
        for threads in [1, 3] {
            // in one block, and in blocks of rows continuing the same sums
            let mut acc = vec![0.0_f64; d];
            let step = scan_rows(x.view(), Some(&mut acc), n, Some(threads)).unwrap();
            assert_eq!(
                step,
                ScanStep {
                    max_abs: top,
                    finite: true
                }
            );
            assert!(acc
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
            let mut acc = vec![0.0_f64; d];
            for (r0, r1) in [(0, 5), (5, 6), (6, 37)] {
                let part = x.slice(ndarray::s![r0..r1, ..]);
                scan_rows(part, Some(&mut acc), n, Some(threads)).unwrap();
            }
            assert!(acc
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
            let step = scan_rows(x.view(), None, n, Some(threads)).unwrap();
            assert_eq!(step.max_abs, top);
            // a strided view (every other column) is read as it is
            let strided = x.slice(ndarray::s![.., ..;2]);
            let mut acc = vec![0.0_f64; strided.ncols()];
            scan_rows(strided, Some(&mut acc), n, Some(threads)).unwrap();
            assert!(acc
                .iter()
                .zip(want.iter().step_by(2))
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    #[test]
    fn non_finite_values_are_reported() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            // in the last column task, after a larger finite value elsewhere
            let mut x = Array2::from_elem((3, 5000), 1.5_f64);
            x[[2, 4500]] = bad;
            x[[0, 3]] = -7.0;
            let mut acc = vec![0.0; 5000];
            let step = scan_rows(x.view(), Some(&mut acc), 3.0, Some(2)).unwrap();
            assert!(!step.finite);
            let step = scan_rows(x.view(), None, 3.0, Some(2)).unwrap();
            assert!(!step.finite);
            x[[2, 4500]] = 2.0;
            let step = scan_rows(x.view(), None, 3.0, Some(2)).unwrap();
            assert_eq!(
                step,
                ScanStep {
                    max_abs: 7.0,
                    finite: true
                }
            );
        }
        let x = Array2::<f64>::zeros((2, 3));
        let mut acc = vec![0.0; 4];
        assert!(scan_rows(x.view(), Some(&mut acc), 2.0, None).is_err());
    }
}
