//! Exact solvers for the dense linear sum assignment problem (LAP).
//!
//! Given a cost matrix `C` of shape `n × m`, find an injective map from the rows of the smaller
//! side to the columns of the larger side that minimises (or maximises) the summed cost. This is
//! the problem scipy's `linear_sum_assignment` solves, with the same conventions: the result lists
//! `min(n, m)` (row, column) pairs in increasing row order.
//!
//! The solver is a shortest-augmenting-path method of the Jonker–Volgenant family (see
//! [`SapSolver`]): `min(n, m)` Dijkstra searches on reduced costs, `O(min(n, m)² · max(n, m))` time in the
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
    if is_clean(cost) {
        return Ok(());
    }
    // The slow, index-reporting pass only runs on a problem.
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
    Err(range_error(what, max_abs))
}

fn range_error(what: &'static str, max_abs: f64) -> Error {
    Error::Range {
        what,
        detail: format!("largest magnitude {max_abs:e} exceeds {MAX_ABS_COST:e}"),
    }
}

/// Every entry finite and of magnitude at most [`MAX_ABS_COST`]: one fast pass over contiguous rows.
fn is_clean<T: Cost>(cost: &ArrayView2<'_, T>) -> bool {
    cost.rows().into_iter().all(|row| match row.as_slice() {
        Some(slice) => row_is_clean(slice),
        None => row.iter().all(|&c| c.to_f64().abs() <= MAX_ABS_COST),
    })
}

/// Every entry finite and of magnitude at most [`MAX_ABS_COST`] (NaN fails the comparison).
fn row_is_clean<T: Cost>(row: &[T]) -> bool {
    const LANES: usize = 8;
    // Per lane, 1 once an entry failed (a select on integers, so that the loop vectorises).
    let mut bad = [0_u64; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for l in 0..LANES {
            // `<=` is false for NaN, so NaN counts as bad.
            bad[l] |= u64::from(chunk[l].to_f64().abs() <= MAX_ABS_COST) ^ 1;
        }
    }
    bad.iter().all(|&b| b == 0) && tail.iter().all(|&c| c.to_f64().abs() <= MAX_ABS_COST)
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
/// Forbidden assignments are written as scipy writes them: `+∞` when minimising, `−∞` when
/// maximising. The result then avoids every forbidden entry; if no assignment of `min(n, m)`
/// pairs can, the problem is infeasible (see `forbidden_stand_in` in the source for how this is solved).
///
/// # Errors
/// [`Error::InvalidCost`] for NaN or the other infinity (`−∞` when minimising, `+∞` when
/// maximising); [`Error::Infeasible`] if every assignment uses a forbidden entry;
/// [`Error::Range`] if a finite entry's magnitude exceeds [`MAX_ABS_COST`] (or, with forbidden
/// entries, if the finite entries span too wide a range to stand in for them).
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
    let (n, m) = cost.dim();
    let forbidden = match sense {
        Sense::Minimize => f64::INFINITY,
        Sense::Maximize => f64::NEG_INFINITY,
    };
    // Dense finite input (the common case) is checked by one fast pass and solved in place.
    let stand_in = if is_clean(&cost) {
        None
    } else {
        scan_forbidden(&cost, sense, n.min(m))?
    };
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
    // One solver per thread, reused between calls: a small solve then allocates nothing and finds
    // its buffers in the cache (at S = 49 this is a tenth of the call). Kept only after problems
    // whose buffers are small.
    let mut solver = CACHED_SOLVER
        .with(|cached| cached.borrow_mut().take())
        .unwrap_or_default();
    let col4row = if let Some(big) = stand_in {
        let work = with_stand_in(&oriented, transposed, forbidden, big)?;
        solver.solve_cancellable(&work, k, work.len() / k, sense, cancel)?
    } else {
        // The solver works on a row-major k × l slice with k <= l.
        let work: Cow<'_, [T]> = match oriented.as_slice() {
            Some(slice) => Cow::Borrowed(slice),
            None => Cow::Owned(oriented.iter().copied().collect()),
        };
        solver.solve_cancellable(&work, k, l, sense, cancel)?
    };
    // With a padding column (see `with_stand_in`), `col4row` may name column `l`: forbidden.
    if col4row.iter().any(|&c| c >= l) {
        return Err(infeasible(
            k,
            forbidden,
            "every assignment uses at least one",
        ));
    }

    let pairs: Vec<(usize, usize)> = if transposed {
        let mut pairs: Vec<(usize, usize)> =
            col4row.iter().enumerate().map(|(c, &r)| (r, c)).collect();
        pairs.sort_unstable();
        pairs
    } else {
        col4row.iter().enumerate().map(|(r, &c)| (r, c)).collect()
    };
    if k <= KEEP_SOLVER_MAX {
        CACHED_SOLVER.with(|cached| *cached.borrow_mut() = Some(solver));
    }
    if stand_in.is_some() {
        if let Some(&(r, c)) = pairs
            .iter()
            .find(|&&(r, c)| cost[[r, c]].to_f64() == forbidden)
        {
            return Err(infeasible(
                k,
                forbidden,
                &format!("every assignment uses at least one (the best found uses ({r}, {c}))"),
            ));
        }
    }
    let objective = pairs.iter().map(|&(r, c)| cost[[r, c]].to_f64()).sum();
    Ok(Assignment {
        rows: pairs.iter().map(|p| p.0).collect(),
        cols: pairs.iter().map(|p| p.1).collect(),
        objective,
    })
}

/// Largest `min(n, m)` after which [`linear_sum_assignment`] keeps its solver for the next call on
/// the same thread (its buffers then hold at most ~4 MB).
const KEEP_SOLVER_MAX: usize = 1024;

thread_local! {
    static CACHED_SOLVER: std::cell::RefCell<Option<SapSolver>> =
        const { std::cell::RefCell::new(None) };
}

fn infeasible(pairs: usize, forbidden: f64, detail: &str) -> Error {
    Error::Infeasible(format!(
        "no assignment of {pairs} pairs avoids the forbidden ({forbidden:+}) entries; {detail}"
    ))
}

/// The oriented `k × l` matrix (`k <= l`) in f64, row-major, with each forbidden entry replaced
/// by `big` (see [`forbidden_stand_in`]).
///
/// A square matrix gets one more column, all `big`: a column that is forbidden everywhere changes
/// neither which assignments avoid the forbidden entries nor the bound behind `big` (still `k`
/// pairs), and it makes the problem rectangular, so the solver skips its auction warm start. That
/// warm start scales its `ε` to the cost range, which the stand-ins stretch ~`2k`-fold: its prices
/// then cost more than they save (measured at 1000 × 1000 with half the entries forbidden: 0.29 s
/// with it, 0.07 s without). A result that uses the padding column is infeasible.
///
/// # Errors
/// [`Error::Infeasible`] at once if a row, or for a square matrix a column, has no finite entry.
fn with_stand_in<T: Cost>(
    oriented: &ArrayView2<'_, T>,
    transposed: bool,
    forbidden: f64,
    big: f64,
) -> Result<Vec<f64>> {
    let (k, l) = oriented.dim();
    let (row_name, col_name) = if transposed {
        ("column", "row")
    } else {
        ("row", "column")
    };
    let pad = usize::from(k == l);
    let mut work = Vec::with_capacity(k * (l + pad));
    let mut col_allowed = vec![false; l];
    for (i, row) in oriented.rows().into_iter().enumerate() {
        let mut row_allowed = false;
        for (j, &c) in row.iter().enumerate() {
            let c = c.to_f64();
            if c == forbidden {
                work.push(big);
            } else {
                work.push(c);
                row_allowed = true;
                col_allowed[j] = true;
            }
        }
        if !row_allowed {
            let detail = format!("{row_name} {i} has no finite entry");
            return Err(infeasible(k, forbidden, &detail));
        }
        work.extend(std::iter::repeat_n(big, pad));
    }
    if k == l {
        if let Some(j) = col_allowed.iter().position(|&a| !a) {
            let detail = format!("{col_name} {j} has no finite entry");
            return Err(infeasible(k, forbidden, &detail));
        }
    }
    Ok(work)
}

/// The slow pass over a matrix that failed [`is_clean`]: reject NaN, the wrong infinity and
/// huge entries; return the finite stand-in for the forbidden entries, or `None` if there are none.
fn scan_forbidden<T: Cost>(
    cost: &ArrayView2<'_, T>,
    sense: Sense,
    pairs: usize,
) -> Result<Option<f64>> {
    const WHAT: &str = "cost matrix";
    let (forbidden, sign) = match sense {
        Sense::Minimize => (f64::INFINITY, 1.0),
        Sense::Maximize => (f64::NEG_INFINITY, -1.0),
    };
    let mut any_forbidden = false;
    // Range of the sign-adjusted finite entries (those the solver minimises).
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for ((i, j), &c) in cost.indexed_iter() {
        let c = c.to_f64();
        if c == forbidden {
            any_forbidden = true;
        } else if c.is_finite() {
            let s = sign * c;
            lo = lo.min(s);
            hi = hi.max(s);
        } else {
            return Err(Error::InvalidCost {
                what: WHAT,
                index: vec![i, j],
                value: c,
                forbidden,
            });
        }
    }
    let max_abs = lo.abs().max(hi.abs());
    if hi >= lo && max_abs > MAX_ABS_COST {
        return Err(range_error(WHAT, max_abs));
    }
    if !any_forbidden {
        return Ok(None); // unreachable after a failed `is_clean`, but harmless
    }
    let big = forbidden_stand_in(lo, hi, pairs);
    if !big.is_finite() || big.abs() > MAX_ABS_COST {
        return Err(Error::Range {
            what: WHAT,
            detail: format!(
                "finite entries from {lo:e} to {hi:e} span too wide a range to combine with \
                 forbidden (infinite) entries"
            ),
        });
    }
    Ok(Some(sign * big))
}

/// The finite cost that stands in for a forbidden entry in a problem of `k = min(n, m)` pairs
/// whose finite (sign-adjusted, i.e. minimised) entries lie in `[lo, hi]` (`lo > hi`: none).
///
/// `M = hi + 2k·D + A` with `D = hi − lo` and `A = max(|lo|, |hi|)` (`M = 1` if `A = 0`).
///
/// *Why the optimum with `M` in place of `+∞` is the optimum of the original problem.* Every
/// assignment has exactly `k` entries. One that avoids the forbidden entries costs at most `k·hi`;
/// one that uses at least one costs at least `M + (k − 1)·lo`. The difference is
/// `M − hi − (k − 1)·D = (k + 1)·D + A > 0` (it is `1` when `A = 0`), so when some assignment
/// avoids the forbidden entries, every optimum avoids them too, and it is then an optimum of the
/// original problem (both problems agree on such assignments). When none avoids them, the
/// optimum found uses one, which [`linear_sum_assignment`] reports as infeasible — this direction
/// needs no arithmetic at all.
///
/// *Rounding.* The margin is at least `max(A, (k + 1)·D)` while every entry, `M` included, has
/// magnitude at most `2A + 2k·D < 4·margin`; the solver's rounding errors are of order
/// `k²·ε·max|entry|` (`ε = 2⁻⁵²`), far below the margin for any matrix that fits in memory. And
/// `M` is no larger than `k` times the finite range, so the finite entries keep the precision a
/// finite problem of that range has.
fn forbidden_stand_in(lo: f64, hi: f64, k: usize) -> f64 {
    if lo > hi {
        return 1.0; // every entry forbidden: any value works, the result is infeasible
    }
    let a = lo.abs().max(hi.abs());
    if a == 0.0 {
        return 1.0;
    }
    #[allow(clippy::cast_precision_loss)]
    let k = k as f64;
    hi + 2.0 * k * (hi - lo) + a
}
