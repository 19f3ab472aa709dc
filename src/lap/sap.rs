//! Shortest augmenting path solver (Jonker–Volgenant family) for dense minimisation problems.
//!
//! For each free row in turn, a Dijkstra search on the reduced costs
//! `c[i][j] − u[i] − v[j] ≥ 0` finds the shortest alternating path to a free column; the duals are
//! updated so that reduced costs stay non-negative and vanish on assigned edges, and the path is
//! augmented. This is the scheme of Jonker & Volgenant (1987, *Computing* 38:325–340) without their
//! initialisation heuristics, in the rectangular form analysed by Crouse (2016, *IEEE TAES*
//! 52(4):1679–1696), so it is exact for `n ≤ m` without padding. Each search scans every column at
//! most once, so there is no iteration that can fail to terminate: on a non-finite reduced cost
//! (which validated inputs never produce) it returns an error instead of looping.
//!
//! Each step of a search relaxes a whole cost row at once
//! ([`dense_step`](crate::kernels::relax::dense_step): contiguous reads, the
//! scanned columns masked out by a bit set) and picks the smallest label; ties at the minimum
//! prefer a free column, which ends the search early.
//!
//! **Start.** Square problems start from column duals that make most searches short: from
//! [`WARM_START_MIN`] positions on, the prices of a few ε-scaling auction rounds
//! ([`super::auction`]); below it, where the auction costs more than it saves (on real 7×7
//! affinities it took four times the instructions of the searches it shortened), the row-then-
//! column reduction of Jonker & Volgenant ([`reduce_columns`]). For a square problem any column
//! duals are a valid start, so exactness never depends on either. Rectangular problems start from
//! `v = 0`, which their correctness needs.

use std::sync::atomic::AtomicBool;

use super::auction::{self, Auction};
use super::{check_cancel, Cost, Sense, NEVER_CANCELLED};
use crate::error::{Error, Result};
use crate::kernels::relax::{dense_search, padded, Columns, Searched};
use crate::kernels::scan::min_reduced;
use crate::kernels::{isa, signed, Isa};

const NONE: usize = usize::MAX;

/// Square problems from this size on start from auction prices, smaller ones from the
/// reductions (see the module documentation). Measured on real EfficientNet affinities once the
/// auction's scans were reduced in registers (issue 13): the reductions 13 % faster at S = 100,
/// the auction 20 % faster at S = 144 and 24 % at S = 196 (AVX-512; with AVX2 15 % at S = 144),
/// up to 4× at S = 256 (ViT tokens). It was 200 before, when the auction's scans cost more.
pub(crate) const WARM_START_MIN: usize = 128;
const _: () = assert!(WARM_START_MIN >= auction::MIN_SIZE);

/// Reusable buffers for [`SapSolver::solve`]; keep one per thread to avoid reallocations.
#[derive(Debug, Default, Clone)]
pub struct SapSolver {
    u: Vec<f64>,
    v: Vec<f64>,
    col4row: Vec<usize>,
    row4col: Vec<usize>,
    /// Columns in the order the current search scanned them.
    scanned: Vec<usize>,
    seen: Vec<bool>,
    /// Labels and predecessors of the current search, per column (padded, see [`padded`]).
    lab: Vec<f64>,
    pred: Vec<usize>,
    /// Bit `j`: column `j` is free.
    free_bits: Vec<u64>,
    /// Bit `j`: column `j` is not yet scanned in the current search.
    todo_bits: Vec<u64>,
    /// Bits `0..m` set.
    all_bits: Vec<u64>,
    auction: Auction,
}

impl SapSolver {
    /// Reserve, fallibly, the cost copies of the warm start for an `n × n` problem (the
    /// solver's buffers that grow with `n²`: an `f32` copy, or from 2048 positions on a 16-bit
    /// and an 8-bit one).
    ///
    /// # Errors
    /// When the allocation fails.
    pub fn try_reserve(&mut self, n: usize) -> Result<(), std::collections::TryReserveError> {
        self.auction.try_reserve(n)
    }

    /// An empty workspace; buffers grow on first use.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Minimise (or maximise) `Σ_i cost[i·m + col(i)]` over injective `col: 0..n → 0..m`, for
    /// `n ≤ m`.
    ///
    /// `cost` is row-major `n × m`. Maximisation runs the same search on the negated entries
    /// (negation is exact), without copying the matrix. Returns `col4row` (length `n`), valid until the next call.
    /// The caller guarantees finite entries of moderate magnitude (see
    /// [`super::validate_costs`]); the result is then an optimal assignment.
    ///
    /// # Errors
    /// [`Error::Shape`] if `n > m` or `cost.len() != n·m`; [`Error::NonFinite`] if a reduced cost
    /// became non-finite (only possible with unvalidated input).
    pub fn solve<T: Cost>(
        &mut self,
        cost: &[T],
        n: usize,
        m: usize,
        sense: Sense,
    ) -> Result<&[usize]> {
        self.solve_cancellable(cost, n, m, sense, &NEVER_CANCELLED)
    }

    /// [`Self::solve`], polling `cancel` before every augmenting search and every 256 bids of
    /// the warm start.
    ///
    /// # Errors
    /// As [`Self::solve`], and [`Error::Interrupted`] once `cancel` is set.
    pub fn solve_cancellable<T: Cost>(
        &mut self,
        cost: &[T],
        n: usize,
        m: usize,
        sense: Sense,
        cancel: &AtomicBool,
    ) -> Result<&[usize]> {
        match sense {
            Sense::Minimize => self.solve_impl::<T, false>(cost, n, m, None, cancel),
            Sense::Maximize => self.solve_impl::<T, true>(cost, n, m, None, cancel),
        }
    }

    /// [`Self::solve_cancellable`] on a square `n × n` problem, warm-started from the column
    /// duals `prices` (in the minimisation's sign, as [`Self::column_duals`] returns them; e.g.
    /// the duals of a nearby problem) instead of the solver's own auction warm start.
    ///
    /// Any finite `prices` give the optimal assignment (they only decide how much searching is
    /// left); prices close to optimal duals of this problem leave little.
    ///
    /// # Errors
    /// As [`Self::solve`]; [`Error::Shape`] also when `prices.len() != n`.
    pub fn solve_from_prices_cancellable<T: Cost>(
        &mut self,
        cost: &[T],
        n: usize,
        sense: Sense,
        prices: &[f64],
        cancel: &AtomicBool,
    ) -> Result<&[usize]> {
        if prices.len() != n {
            return Err(Error::Shape(format!(
                "internal: {} prices for {n} columns",
                prices.len()
            )));
        }
        match sense {
            Sense::Minimize => self.solve_impl::<T, false>(cost, n, n, Some(prices), cancel),
            Sense::Maximize => self.solve_impl::<T, true>(cost, n, n, Some(prices), cancel),
        }
    }

    /// The column duals `v` of the last solve, in its minimisation form (costs negated when
    /// maximising): with row duals `u`, `cost'_ij − u_i − v_j ≥ 0` for every entry and `= 0` on the
    /// assignment, up to rounding, so `v` is an optimal dual (after a solve that returned `Ok`;
    /// all zeros after the quick exit on distinct row minima, which is optimal with them too).
    #[must_use]
    pub fn column_duals(&self) -> &[f64] {
        &self.v
    }

    fn solve_impl<T: Cost, const MAX: bool>(
        &mut self,
        cost: &[T],
        n: usize,
        m: usize,
        prices: Option<&[f64]>,
        cancel: &AtomicBool,
    ) -> Result<&[usize]> {
        if n > m || cost.len() != n * m {
            return Err(Error::Shape(format!(
                "internal: solver needs rows <= columns and {n}x{m} entries, got {} entries",
                cost.len()
            )));
        }
        self.reset(n, m);
        if n == 0 {
            return Ok(&self.col4row);
        }
        let isa = isa();
        if let Some(prices) = prices {
            self.v[..n].copy_from_slice(prices);
        } else if self.try_distinct_row_minima::<T, MAX>(isa, cost, n, m) {
            return Ok(&self.col4row);
        } else if n == m {
            if n >= WARM_START_MIN {
                self.auction
                    .prices::<T, MAX>(isa, cost, n, &mut self.v[..n], cancel);
            } else {
                reduce_columns::<T, MAX>(cost, n, &mut self.v[..n]);
            }
        }
        for row in 0..n {
            check_cancel(cancel)?;
            self.augment::<T, MAX>(isa, cost, m, row)?;
        }
        Ok(&self.col4row)
    }

    fn reset(&mut self, n: usize, m: usize) {
        self.u.clear();
        self.u.resize(n, 0.0);
        self.v.clear();
        self.v.resize(m, 0.0);
        self.col4row.clear();
        self.col4row.resize(n, NONE);
        self.row4col.clear();
        self.row4col.resize(m, NONE);
        self.seen.clear();
        self.seen.resize(m, false);
        self.all_bits.clear();
        self.all_bits.resize(m.div_ceil(64), u64::MAX);
        if !m.is_multiple_of(64) {
            self.all_bits[m / 64] = (1_u64 << (m % 64)) - 1;
        }
        self.free_bits.clear();
        self.free_bits.extend_from_slice(&self.all_bits);
    }

    /// Quick exit: if the (first) minimum of every row lies in a distinct column, assigning each
    /// row its minimum is optimal, since no assignment can cost less than the sum of row minima.
    fn try_distinct_row_minima<T: Cost, const MAX: bool>(
        &mut self,
        isa: Isa,
        cost: &[T],
        n: usize,
        m: usize,
    ) -> bool {
        for (i, row) in cost.chunks_exact(m).enumerate().take(n) {
            // `v` is all zeros here (fresh from `reset`).
            let (lowest, best) = min_reduced::<T, MAX>(isa, row, &self.v[..m]);
            if !lowest.is_finite() || best >= m || self.seen[best] {
                for &j in &self.col4row[..i] {
                    self.seen[j] = false;
                }
                self.col4row[..i].fill(NONE);
                return false;
            }
            self.seen[best] = true;
            self.col4row[i] = best;
        }
        for (i, &j) in self.col4row.iter().enumerate() {
            self.row4col[j] = i;
        }
        true
    }

    /// One Dijkstra search from the free row `root` ([`dense_step`] per scanned row), dual update,
    /// and augmentation. At most `m` steps: each scans one more column.
    fn augment<T: Cost, const MAX: bool>(
        &mut self,
        isa: Isa,
        cost: &[T],
        m: usize,
        root: usize,
    ) -> Result<()> {
        let Self {
            u,
            v,
            row4col,
            scanned,
            lab,
            pred,
            todo_bits,
            free_bits,
            ..
        } = self;
        lab.clear();
        lab.resize(padded(m), f64::INFINITY);
        pred.resize(padded(m), root);
        todo_bits.clear();
        todo_bits.extend_from_slice(&self.all_bits);
        scanned.clear();

        let mut columns = Columns {
            lab,
            pred,
            todo: todo_bits,
            free: free_bits,
        };
        let (sink, min_val) = match dense_search::<T, MAX>(
            isa,
            cost,
            m,
            root,
            u,
            &v[..m],
            row4col,
            &mut columns,
            scanned,
        ) {
            Searched::Sink { sink, distance } => (sink, distance),
            Searched::NonFinite { row, value } => {
                return Err(Error::NonFinite {
                    what: "reduced cost matrix",
                    index: vec![row],
                    value,
                })
            }
        };
        free_bits[sink / 64] &= !(1_u64 << (sink % 64));

        // Dual update: keeps reduced costs non-negative, zero on the (new) matching edges.
        self.u[root] += min_val;
        for &j in &self.scanned[..self.scanned.len() - 1] {
            let delta = min_val - self.lab[j];
            self.u[self.row4col[j]] += delta;
            self.v[j] -= delta;
        }

        // Augment along the predecessor chain back to the root.
        let mut j = sink;
        loop {
            let i = self.pred[j];
            self.row4col[j] = i;
            let previous = std::mem::replace(&mut self.col4row[i], j);
            if i == root {
                break;
            }
            j = previous;
        }
        Ok(())
    }
}

/// Column duals of the square minimisation of `signed(cost)` by row, then column reduction:
/// `u_i = min_j c_ij`, `v_j = min_i (c_ij − u_i)` (the start of Jonker & Volgenant's method, the
/// reductions in the opposite order). Every column then has a zero reduced cost in some row,
/// which spreads the searches over more columns: on real 7×7 affinities it saves ~30% of the steps
/// of searches from `v = 0`. Any `v` is a valid start for a square problem.
fn reduce_columns<T: Cost, const MAX: bool>(cost: &[T], n: usize, v: &mut [f64]) {
    v.fill(f64::INFINITY);
    for row in cost.chunks_exact(n) {
        let u = row_min::<T, MAX>(row);
        for (vj, &c) in v.iter_mut().zip(row) {
            let r = signed::<T, MAX>(c) - u;
            // A select rather than a branch, so that the loop vectorises.
            *vj = if r < *vj { r } else { *vj };
        }
    }
}

/// `min_j signed(row[j])` with 8 independent lanes (so that it vectorises).
fn row_min<T: Cost, const MAX: bool>(row: &[T]) -> f64 {
    const LANES: usize = 8;
    let mut low = [f64::INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for l in 0..LANES {
            let c = signed::<T, MAX>(chunk[l]);
            low[l] = if c < low[l] { c } else { low[l] };
        }
    }
    for &c in tail {
        let c = signed::<T, MAX>(c);
        if c < low[0] {
            low[0] = c;
        }
    }
    low.iter()
        .fold(f64::INFINITY, |a, &b| if b < a { b } else { a })
}
