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
//! The inner loop relaxes a compact array of still-unscanned columns and tracks the minimum label;
//! ties at the minimum prefer a free column, which ends the search early.

use super::{Cost, Sense};
use crate::error::{Error, Result};

const NONE: usize = usize::MAX;

/// Reusable buffers for [`SapSolver::solve`]; keep one per thread to avoid reallocations.
#[derive(Debug, Default, Clone)]
pub struct SapSolver {
    u: Vec<f64>,
    v: Vec<f64>,
    col4row: Vec<usize>,
    row4col: Vec<usize>,
    shortest: Vec<f64>,
    pred: Vec<usize>,
    scanned: Vec<usize>,
    seen: Vec<bool>,
    // Unscanned columns of the current search, as parallel arrays.
    t_col: Vec<usize>,
    t_v: Vec<f64>,
    t_short: Vec<f64>,
    t_pred: Vec<usize>,
    t_free: Vec<bool>,
}

impl SapSolver {
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
        match sense {
            Sense::Minimize => self.solve_impl::<T, false>(cost, n, m),
            Sense::Maximize => self.solve_impl::<T, true>(cost, n, m),
        }
    }

    fn solve_impl<T: Cost, const MAX: bool>(
        &mut self,
        cost: &[T],
        n: usize,
        m: usize,
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
        if self.try_distinct_row_minima::<T, MAX>(cost, n, m) {
            return Ok(&self.col4row);
        }
        for row in 0..n {
            self.augment_from::<T, MAX>(cost, m, row)?;
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
        self.shortest.clear();
        self.shortest.resize(m, f64::INFINITY);
        self.pred.clear();
        self.pred.resize(m, NONE);
        self.seen.clear();
        self.seen.resize(m, false);
    }

    /// Quick exit: if the (first) minimum of every row lies in a distinct column, assigning each
    /// row its minimum is optimal, since no assignment can cost less than the sum of row minima.
    fn try_distinct_row_minima<T: Cost, const MAX: bool>(
        &mut self,
        cost: &[T],
        n: usize,
        m: usize,
    ) -> bool {
        for (i, row) in cost.chunks_exact(m).enumerate().take(n) {
            let mut best = 0;
            let mut best_val = signed::<T, MAX>(row[0]);
            for (j, &c) in row.iter().enumerate().skip(1) {
                let c = signed::<T, MAX>(c);
                if c < best_val {
                    best_val = c;
                    best = j;
                }
            }
            if self.seen[best] {
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

    /// One Dijkstra search from the free row `root`, dual update, and augmentation.
    ///
    /// The unscanned columns are kept in compact parallel arrays (`t*`): their `v` and
    /// free/assigned status cannot change during a search, so the relaxation loop reads one
    /// gathered cost and otherwise contiguous memory, and the arg-min is a separate cheap pass.
    fn augment_from<T: Cost, const MAX: bool>(
        &mut self,
        cost: &[T],
        m: usize,
        root: usize,
    ) -> Result<()> {
        let Self {
            u,
            v,
            row4col,
            shortest,
            pred,
            scanned,
            t_col,
            t_v,
            t_short,
            t_pred,
            t_free,
            ..
        } = self;
        t_col.clear();
        t_col.extend(0..m);
        t_v.clear();
        t_v.extend_from_slice(&v[..m]);
        t_short.clear();
        t_short.resize(m, f64::INFINITY);
        t_pred.clear();
        t_pred.resize(m, root);
        t_free.clear();
        t_free.extend(row4col[..m].iter().map(|&r| r == NONE));
        scanned.clear();

        let mut i = root;
        let mut min_val = 0.0_f64;
        let sink = loop {
            let row = &cost[i * m..(i + 1) * m];
            let base = min_val - u[i];
            // Pass 1: relax every unscanned column through row i and find the smallest label.
            let mut lowest = f64::INFINITY;
            for (((&j, &vj), sk), pk) in t_col
                .iter()
                .zip(t_v.iter())
                .zip(t_short.iter_mut())
                .zip(t_pred.iter_mut())
            {
                // SAFETY: every entry of `t_col` is a column index < m = row.len().
                let c = signed::<T, MAX>(unsafe { *row.get_unchecked(j) });
                let r = base + c - vj;
                if r < *sk {
                    *sk = r;
                    *pk = i;
                }
                if *sk < lowest {
                    lowest = *sk;
                }
            }
            if !lowest.is_finite() {
                return Err(Error::NonFinite {
                    what: "reduced cost matrix",
                    index: vec![i],
                    value: lowest,
                });
            }
            // Pass 2: the first column at the minimum, preferring a free one (ends the search).
            let mut best = NONE;
            for (k, (&sk, &free)) in t_short.iter().zip(t_free.iter()).enumerate() {
                if sk == lowest {
                    if free {
                        best = k;
                        break;
                    }
                    if best == NONE {
                        best = k;
                    }
                }
            }
            if best == NONE {
                return Err(Error::NonFinite {
                    what: "reduced cost matrix",
                    index: vec![i],
                    value: lowest,
                });
            }
            min_val = lowest;
            let j = t_col.swap_remove(best);
            t_v.swap_remove(best);
            shortest[j] = t_short.swap_remove(best);
            pred[j] = t_pred.swap_remove(best);
            t_free.swap_remove(best);
            scanned.push(j);
            if row4col[j] == NONE {
                break j;
            }
            i = row4col[j];
        };

        // Dual update: keeps reduced costs non-negative, zero on the (new) matching edges.
        self.u[root] += min_val;
        for &j in &self.scanned[..self.scanned.len() - 1] {
            let delta = min_val - self.shortest[j];
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

/// The entry as the minimisation sees it: negated when maximising.
#[inline(always)]
fn signed<T: Cost, const MAX: bool>(c: T) -> f64 {
    if MAX {
        -c.to_f64()
    } else {
        c.to_f64()
    }
}
