//! Exact solvers for the dense linear sum assignment problem (LAP).
//!
//! Given a cost matrix `C` of shape `n × m`, find an injective map from the rows of the smaller
//! side to the columns of the larger side that minimises (or maximises) the summed cost. This is
//! the problem scipy's `linear_sum_assignment` solves, with the same conventions: the result lists
//! `min(n, m)` (row, column) pairs in increasing row order.
//!
//! The solver is a shortest-augmenting-path method of the Jonker–Volgenant family (see
//! [`sap`]): `min(n, m)` Dijkstra searches on reduced costs, `O(min(n, m)² · max(n, m))` time in the
//! worst case and `O(n + m)` extra memory beyond the cost matrix (copied only when it must be transposed).
//!
//! Costs may be `f64` or `f32` ([`Cost`]); potentials and sums are always accumulated in `f64`.

mod auction;
mod sap;

pub use sap::SapSolver;

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::ArrayView2;

use crate::error::{Error, Result};

/// A cancellation flag that is never set, for the entry points without one.
pub(crate) static NEVER_CANCELLED: AtomicBool = AtomicBool::new(false);

/// `Err(Interrupted)` once `cancel` is set.
#[inline]
pub(crate) fn check_cancel(cancel: &AtomicBool) -> Result<()> {
    if cancel.load(Ordering::Relaxed) {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}

/// Largest magnitude accepted in a cost matrix. Beyond it, sums of a few potentials could overflow
/// `f64`; rescaling the costs (which does not change the optimal assignment) is the user's fix.
pub const MAX_ABS_COST: f64 = 1e300;

/// Element type of a cost matrix: `f64`, or `f32` for half the memory traffic.
///
/// All arithmetic on potentials, path lengths and objectives is done in `f64` whatever `T` is.
pub trait Cost: Copy + Send + Sync + std::fmt::Debug + 'static {
    /// Widen to `f64` (exact for both implementors).
    fn to_f64(self) -> f64;
}

impl Cost for f64 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

impl Cost for f32 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

/// Whether the summed cost is to be minimised or maximised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sense {
    /// Find the assignment of least total cost.
    Minimize,
    /// Find the assignment of greatest total weight.
    Maximize,
}

/// An optimal assignment, in scipy's convention.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// Row indices, increasing; `min(n, m)` of them.
    pub rows: Vec<usize>,
    /// `cols[k]` is the column assigned to `rows[k]`; all distinct.
    pub cols: Vec<usize>,
    /// Sum of the assigned entries of the original matrix, accumulated in `f64` in row order.
    pub objective: f64,
}

/// Check that every entry is finite and of magnitude at most [`MAX_ABS_COST`].
///
/// # Errors
/// [`Error::NonFinite`] naming the first offending entry, or [`Error::Range`].
pub fn validate_costs<T: Cost>(cost: &ArrayView2<'_, T>, what: &'static str) -> Result<()> {
    // Fast pass over contiguous rows; the slow, index-reporting pass only runs on a problem.
    let clean = cost.rows().into_iter().all(|row| match row.as_slice() {
        Some(slice) => row_is_clean(slice),
        None => row.iter().all(|&c| c.to_f64().abs() <= MAX_ABS_COST),
    });
    if clean {
        return Ok(());
    }
    let mut max_abs = 0.0_f64;
    for ((i, j), &c) in cost.indexed_iter() {
        let c = c.to_f64();
        if !c.is_finite() {
            return Err(Error::NonFinite {
                what,
                index: vec![i, j],
                value: c,
            });
        }
        max_abs = max_abs.max(c.abs());
    }
    Err(Error::Range {
        what,
        detail: format!("largest magnitude {max_abs:e} exceeds {MAX_ABS_COST:e}"),
    })
}

/// Every entry finite and of magnitude at most [`MAX_ABS_COST`] (NaN fails the comparison).
fn row_is_clean<T: Cost>(row: &[T]) -> bool {
    const LANES: usize = 8;
    let mut ok = [true; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for l in 0..LANES {
            ok[l] &= chunk[l].to_f64().abs() <= MAX_ABS_COST;
        }
    }
    ok.iter().all(|&o| o) && tail.iter().all(|&c| c.to_f64().abs() <= MAX_ABS_COST)
}

/// Solve the linear sum assignment problem exactly.
///
/// Mirrors `scipy.optimize.linear_sum_assignment`: for an `n × m` matrix the result has
/// `min(n, m)` pairs sorted by row. An empty matrix (`n == 0` or `m == 0`) gives an empty
/// assignment with objective `0`.
///
/// Complexity: `O(k² · l)` time with `k = min(n, m)`, `l = max(n, m)`; one copy of the matrix when
/// it must be transposed (`n > m`) or is not in standard layout.
///
/// # Errors
/// [`Error::NonFinite`] if an entry is NaN or infinite (scipy's "forbidden" `inf` entries are not
/// supported: use a large finite cost instead), [`Error::Range`] if an entry's magnitude exceeds
/// [`MAX_ABS_COST`].
///
/// # Example
/// ```
/// use ndarray::array;
/// use semrsm::lap::{linear_sum_assignment, Sense};
/// let cost = array![[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]];
/// let a = linear_sum_assignment(cost.view(), Sense::Minimize).unwrap();
/// assert_eq!(a.cols, vec![1, 0, 2]);
/// assert_eq!(a.objective, 5.0);
/// ```
pub fn linear_sum_assignment<T: Cost>(cost: ArrayView2<'_, T>, sense: Sense) -> Result<Assignment> {
    linear_sum_assignment_cancellable(cost, sense, &NEVER_CANCELLED)
}

/// [`linear_sum_assignment`] that stops with [`Error::Interrupted`] soon after `cancel` is set
/// (another thread sets it, e.g. on Ctrl-C).
///
/// The flag is polled before every augmenting search (one per row, each `O(k·l)` at most) and
/// every 256 bids of the auction warm start, so the delay after it is set is bounded by one
/// search, whatever the input.
///
/// # Errors
/// As [`linear_sum_assignment`], and [`Error::Interrupted`] once `cancel` is set.
pub fn linear_sum_assignment_cancellable<T: Cost>(
    cost: ArrayView2<'_, T>,
    sense: Sense,
    cancel: &AtomicBool,
) -> Result<Assignment> {
    validate_costs(&cost, "cost matrix")?;
    let (n, m) = cost.dim();
    if n == 0 || m == 0 {
        return Ok(Assignment {
            rows: Vec::new(),
            cols: Vec::new(),
            objective: 0.0,
        });
    }
    let transposed = n > m;
    let oriented = if transposed {
        cost.reversed_axes()
    } else {
        cost
    };
    let (k, l) = oriented.dim();
    // The solver works on a row-major k × l slice with k <= l.
    let work: Cow<'_, [T]> = match oriented.as_slice() {
        Some(slice) => Cow::Borrowed(slice),
        None => Cow::Owned(oriented.iter().copied().collect()),
    };
    let mut solver = SapSolver::new();
    let col4row = solver.solve_cancellable(&work, k, l, sense, cancel)?;

    let mut pairs: Vec<(usize, usize)> = if transposed {
        col4row.iter().enumerate().map(|(c, &r)| (r, c)).collect()
    } else {
        col4row.iter().enumerate().map(|(r, &c)| (r, c)).collect()
    };
    pairs.sort_unstable();
    let objective = pairs.iter().map(|&(r, c)| cost[[r, c]].to_f64()).sum();
    Ok(Assignment {
        rows: pairs.iter().map(|p| p.0).collect(),
        cols: pairs.iter().map(|p| p.1).collect(),
        objective,
    })
}
