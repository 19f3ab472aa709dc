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

use std::sync::atomic::AtomicBool;

use super::auction::{self, Auction};
use super::{check_cancel, Cost, Sense, NEVER_CANCELLED};
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
    auction: Auction,
}

impl SapSolver {
    /// Reserve, fallibly, the `f32` cost copy of the warm start for an `n × n` problem (the one
    /// buffer of the solver that grows with `n²`).
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
            Sense::Minimize => self.solve_impl::<T, false>(cost, n, m, cancel),
            Sense::Maximize => self.solve_impl::<T, true>(cost, n, m, cancel),
        }
    }

    fn solve_impl<T: Cost, const MAX: bool>(
        &mut self,
        cost: &[T],
        n: usize,
        m: usize,
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
        if self.try_distinct_row_minima::<T, MAX>(cost, n, m) {
            return Ok(&self.col4row);
        }
        if n == m && n >= auction::MIN_SIZE {
            self.auction
                .prices::<T, MAX>(cost, n, &mut self.v[..n], cancel);
        }
        for row in 0..n {
            check_cancel(cancel)?;
            if self.assign_to_best_if_free::<T, MAX>(cost, m, row) {
                continue;
            }
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
            // `v` is all zeros here (fresh from `reset`).
            let (lowest, best) = min_reduced::<T, MAX>(row, &self.v[..m]);
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

    /// Fast path of a search: when the smallest reduced cost of the free row `root` lies in a free
    /// column, the shortest augmenting path is that single edge. Assign it, with the same dual
    /// update as [`Self::augment_from`] (`u[root]` makes the edge tight), and return `true`; else
    /// change nothing and return `false`. With good prices most rows end here, and this costs one
    /// contiguous, vectorised pass instead of a search's set-up.
    fn assign_to_best_if_free<T: Cost, const MAX: bool>(
        &mut self,
        cost: &[T],
        m: usize,
        root: usize,
    ) -> bool {
        let row = &cost[root * m..(root + 1) * m];
        let (lowest, j) = min_reduced::<T, MAX>(row, &self.v[..m]);
        if !lowest.is_finite() || j >= m || self.row4col[j] != NONE {
            // An assigned column at the minimum (or a tie the full search settles): search.
            return false;
        }
        self.u[root] = lowest;
        self.row4col[j] = root;
        self.col4row[root] = j;
        true
    }

    /// One Dijkstra search from the free row `root`, dual update, and augmentation.
    ///
    /// The unscanned columns are kept in compact parallel arrays (`t*`): their `v` and
    /// free/assigned status cannot change during a search, so the relaxation loop reads one
    /// gathered cost and otherwise contiguous memory; the arg-min is a separate cheap pass.
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
            let (lowest, best) =
                relax_and_pick::<T, MAX>(row, base, i, t_col, t_v, t_short, t_pred, t_free);
            if best == NONE || !lowest.is_finite() {
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
pub(super) fn signed<T: Cost, const MAX: bool>(c: T) -> f64 {
    if MAX {
        -c.to_f64()
    } else {
        c.to_f64()
    }
}

/// One Dijkstra step over the unscanned columns: relax their labels through row `i` (reduced
/// cost `base + signed(row[j]) − v_j`, `base = min_val − u_i`), then pick the first column at the
/// smallest label, preferring a free one. Returns `(smallest label, position)`, position `NONE`
/// when no label is finite-comparable. On x86-64 with AVX-512 or AVX2, `f64` and `f32` costs take
/// a gather-based vector path; all paths compute exactly the same values.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn relax_and_pick<T: Cost, const MAX: bool>(
    row: &[T],
    base: f64,
    i: usize,
    t_col: &[usize],
    t_v: &[f64],
    t_short: &mut [f64],
    t_pred: &mut [usize],
    t_free: &[bool],
) -> (f64, usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(row) = as_cost::<T, f64>(row) {
            if let Some(found) =
                simd::relax_and_pick::<f64, MAX>(row, base, i, t_col, t_v, t_short, t_pred, t_free)
            {
                return found;
            }
        }
        if let Some(row) = as_cost::<T, f32>(row) {
            if let Some(found) =
                simd::relax_and_pick::<f32, MAX>(row, base, i, t_col, t_v, t_short, t_pred, t_free)
            {
                return found;
            }
        }
    }
    let mut lowest = f64::INFINITY;
    for (((&j, &vj), sk), pk) in t_col
        .iter()
        .zip(t_v)
        .zip(t_short.iter_mut())
        .zip(t_pred.iter_mut())
    {
        let r = base + signed::<T, MAX>(row[j]) - vj;
        if r < *sk {
            *sk = r;
            *pk = i;
        }
        if *sk < lowest {
            lowest = *sk;
        }
    }
    (lowest, first_at(lowest, t_short, t_free))
}

/// Position of the first label equal to `lowest` whose column is free, else of the first label
/// equal to `lowest`, else `NONE`.
#[inline(always)]
fn first_at(lowest: f64, t_short: &[f64], t_free: &[bool]) -> usize {
    let mut best = NONE;
    for (k, (&sk, &free)) in t_short.iter().zip(t_free).enumerate() {
        if sk == lowest {
            if free {
                return k;
            }
            if best == NONE {
                best = k;
            }
        }
    }
    best
}

/// `row` as a slice of `C` when `T` is `C` (the identity cast), else `None`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn as_cost<T: Cost, C: Cost>(row: &[T]) -> Option<&[C]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<C>())
        // SAFETY: T and C are the same type.
        .then(|| unsafe { std::slice::from_raw_parts(row.as_ptr().cast::<C>(), row.len()) })
}

/// Cost types the vector kernels can load: `f64` directly, `f32` widened to `f64` (exact).
#[cfg(target_arch = "x86_64")]
pub(super) trait VecCost: Cost {
    /// Four entries at 64-bit indices, as `f64` (AVX2).
    unsafe fn gather4(
        base: *const Self,
        idx: std::arch::x86_64::__m256i,
    ) -> std::arch::x86_64::__m256d;
    /// Four consecutive entries, as `f64` (AVX2).
    unsafe fn load4(ptr: *const Self) -> std::arch::x86_64::__m256d;
    /// Eight entries at 64-bit indices, as `f64` (AVX-512F).
    unsafe fn gather8(
        base: *const Self,
        idx: std::arch::x86_64::__m512i,
    ) -> std::arch::x86_64::__m512d;
}

#[cfg(target_arch = "x86_64")]
impl VecCost for f64 {
    #[inline(always)]
    unsafe fn gather4(
        base: *const f64,
        idx: std::arch::x86_64::__m256i,
    ) -> std::arch::x86_64::__m256d {
        std::arch::x86_64::_mm256_i64gather_pd::<8>(base, idx)
    }
    #[inline(always)]
    unsafe fn load4(ptr: *const f64) -> std::arch::x86_64::__m256d {
        std::arch::x86_64::_mm256_loadu_pd(ptr)
    }
    #[inline(always)]
    unsafe fn gather8(
        base: *const f64,
        idx: std::arch::x86_64::__m512i,
    ) -> std::arch::x86_64::__m512d {
        std::arch::x86_64::_mm512_i64gather_pd::<8>(idx, base)
    }
}

#[cfg(target_arch = "x86_64")]
impl VecCost for f32 {
    #[inline(always)]
    unsafe fn gather4(
        base: *const f32,
        idx: std::arch::x86_64::__m256i,
    ) -> std::arch::x86_64::__m256d {
        std::arch::x86_64::_mm256_cvtps_pd(std::arch::x86_64::_mm256_i64gather_ps::<4>(base, idx))
    }
    #[inline(always)]
    unsafe fn load4(ptr: *const f32) -> std::arch::x86_64::__m256d {
        std::arch::x86_64::_mm256_cvtps_pd(std::arch::x86_64::_mm_loadu_ps(ptr))
    }
    #[inline(always)]
    unsafe fn gather8(
        base: *const f32,
        idx: std::arch::x86_64::__m512i,
    ) -> std::arch::x86_64::__m512d {
        std::arch::x86_64::_mm512_cvtps_pd(std::arch::x86_64::_mm512_i64gather_ps::<4>(idx, base))
    }
}

/// Run-time choice of the vector Dijkstra step; `None` when the CPU has neither AVX-512 nor AVX2.
/// Common end of the vector search steps: merge the lanes' minima, relax the columns `full..` that
/// did not fill a vector with the portable arithmetic, and pick the column as [`first_at`] does.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn finish_step<C: Cost, const MAX: bool>(
    lanes: &[f64],
    full: usize,
    row: &[C],
    base: f64,
    i: usize,
    t_col: &[usize],
    t_v: &[f64],
    t_short: &mut [f64],
    t_pred: &mut [usize],
    t_free: &[bool],
) -> (f64, usize) {
    let len = t_col
        .len()
        .min(t_v.len())
        .min(t_short.len())
        .min(t_pred.len());
    let mut lowest = f64::INFINITY;
    for &l in lanes {
        if l < lowest {
            lowest = l;
        }
    }
    for k in full..len {
        let r = base + signed::<C, MAX>(row[t_col[k]]) - t_v[k];
        if r < t_short[k] {
            t_short[k] = r;
            t_pred[k] = i;
        }
        if t_short[k] < lowest {
            lowest = t_short[k];
        }
    }
    if !lowest.is_finite() {
        return (lowest, NONE);
    }
    (lowest, first_at(lowest, &t_short[..len], t_free))
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{avx2_search, avx512_search, VecCost};

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn relax_and_pick<C: VecCost, const MAX: bool>(
        row: &[C],
        base: f64,
        i: usize,
        t_col: &[usize],
        t_v: &[f64],
        t_short: &mut [f64],
        t_pred: &mut [usize],
        t_free: &[bool],
    ) -> Option<(f64, usize)> {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            // SAFETY: AVX-512F/DQ were detected.
            return Some(unsafe {
                avx512_search::relax_and_pick::<C, MAX>(
                    row, base, i, t_col, t_v, t_short, t_pred, t_free,
                )
            });
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was detected.
            return Some(unsafe {
                avx2_search::relax_and_pick::<C, MAX>(
                    row, base, i, t_col, t_v, t_short, t_pred, t_free,
                )
            });
        }
        None
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512_search {
    use super::VecCost;
    use std::arch::x86_64::{
        _mm512_add_pd, _mm512_cmp_pd_mask, _mm512_loadu_epi64, _mm512_loadu_pd,
        _mm512_mask_blend_epi64, _mm512_mask_blend_pd, _mm512_min_pd, _mm512_set1_epi64,
        _mm512_set1_pd, _mm512_storeu_epi64, _mm512_storeu_pd, _mm512_sub_pd, _mm512_xor_pd,
        _CMP_LT_OQ,
    };

    /// AVX-512 version of [`super::relax_and_pick`] for `f64` or `f32` costs: 8 columns per step. Same
    /// arithmetic, same order per column, same result as the portable and AVX2 versions.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) unsafe fn relax_and_pick<C: VecCost, const MAX: bool>(
        row: &[C],
        base: f64,
        i: usize,
        t_col: &[usize],
        t_v: &[f64],
        t_short: &mut [f64],
        t_pred: &mut [usize],
        t_free: &[bool],
    ) -> (f64, usize) {
        let len = t_col
            .len()
            .min(t_v.len())
            .min(t_short.len())
            .min(t_pred.len());
        let full = len / 8 * 8;
        let vbase = _mm512_set1_pd(base);
        let vi = _mm512_set1_epi64(i as i64);
        let sign = _mm512_set1_pd(if MAX { -0.0 } else { 0.0 });
        let mut vlow = _mm512_set1_pd(f64::INFINITY);
        let mut k = 0;
        while k < full {
            // SAFETY: k + 8 <= full <= len of every slice; t_col entries index `row` (< row.len()).
            let idx = _mm512_loadu_epi64(t_col.as_ptr().add(k).cast());
            let c = _mm512_xor_pd(C::gather8(row.as_ptr(), idx), sign);
            let r = _mm512_sub_pd(
                _mm512_add_pd(vbase, c),
                _mm512_loadu_pd(t_v.as_ptr().add(k)),
            );
            let old = _mm512_loadu_pd(t_short.as_ptr().add(k));
            let better = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(r, old);
            let short = _mm512_mask_blend_pd(better, old, r);
            _mm512_storeu_pd(t_short.as_mut_ptr().add(k), short);
            let pred = _mm512_loadu_epi64(t_pred.as_ptr().add(k).cast());
            _mm512_storeu_epi64(
                t_pred.as_mut_ptr().add(k).cast(),
                _mm512_mask_blend_epi64(better, pred, vi),
            );
            vlow = _mm512_min_pd(short, vlow);
            k += 8;
        }
        let mut lanes = [0.0_f64; 8];
        _mm512_storeu_pd(lanes.as_mut_ptr(), vlow);
        super::finish_step::<C, MAX>(
            &lanes, full, row, base, i, t_col, t_v, t_short, t_pred, t_free,
        )
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2_search {
    use super::{signed, VecCost, NONE};
    use std::arch::x86_64::{
        _mm256_add_epi64, _mm256_add_pd, _mm256_blendv_pd, _mm256_castpd_si256,
        _mm256_castsi256_pd, _mm256_cmp_pd, _mm256_loadu_pd, _mm256_loadu_si256, _mm256_min_pd,
        _mm256_set1_epi64x, _mm256_set1_pd, _mm256_setr_epi64x, _mm256_storeu_pd,
        _mm256_storeu_si256, _mm256_sub_pd, _mm256_xor_pd, _CMP_LT_OQ,
    };

    /// AVX2 version of [`super::min_reduced`] for `f64` or `f32` costs: two independent 4-lane
    /// accumulators of (value, index); the first index at the minimum wins.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn min_reduced<C: VecCost, const MAX: bool>(
        row: &[C],
        v: &[f64],
    ) -> (f64, usize) {
        let n = row.len().min(v.len());
        let full = n / 8 * 8;
        let sign = _mm256_set1_pd(if MAX { -0.0 } else { 0.0 });
        let (mut lo_a, mut lo_b) = (_mm256_set1_pd(f64::INFINITY), _mm256_set1_pd(f64::INFINITY));
        let (mut ix_a, mut ix_b) = (_mm256_set1_epi64x(-1), _mm256_set1_epi64x(-1));
        let mut idx_a = _mm256_setr_epi64x(0, 1, 2, 3);
        let mut idx_b = _mm256_setr_epi64x(4, 5, 6, 7);
        let step = _mm256_set1_epi64x(8);
        let mut k = 0;
        while k < full {
            // SAFETY: k + 8 <= full <= len of both slices.
            let da = _mm256_sub_pd(
                _mm256_xor_pd(C::load4(row.as_ptr().add(k)), sign),
                _mm256_loadu_pd(v.as_ptr().add(k)),
            );
            let db = _mm256_sub_pd(
                _mm256_xor_pd(C::load4(row.as_ptr().add(k + 4)), sign),
                _mm256_loadu_pd(v.as_ptr().add(k + 4)),
            );
            let ba = _mm256_cmp_pd::<_CMP_LT_OQ>(da, lo_a);
            let bb = _mm256_cmp_pd::<_CMP_LT_OQ>(db, lo_b);
            lo_a = _mm256_blendv_pd(lo_a, da, ba);
            lo_b = _mm256_blendv_pd(lo_b, db, bb);
            ix_a = _mm256_castpd_si256(_mm256_blendv_pd(
                _mm256_castsi256_pd(ix_a),
                _mm256_castsi256_pd(idx_a),
                ba,
            ));
            ix_b = _mm256_castpd_si256(_mm256_blendv_pd(
                _mm256_castsi256_pd(ix_b),
                _mm256_castsi256_pd(idx_b),
                bb,
            ));
            idx_a = _mm256_add_epi64(idx_a, step);
            idx_b = _mm256_add_epi64(idx_b, step);
            k += 8;
        }
        let (mut vals, mut idxs) = ([0.0_f64; 8], [0_i64; 8]);
        _mm256_storeu_pd(vals.as_mut_ptr(), lo_a);
        _mm256_storeu_pd(vals.as_mut_ptr().add(4), lo_b);
        _mm256_storeu_si256(idxs.as_mut_ptr().cast(), ix_a);
        _mm256_storeu_si256(idxs.as_mut_ptr().add(4).cast(), ix_b);
        let mut best = (f64::INFINITY, NONE);
        for (&d, &j) in vals.iter().zip(&idxs) {
            if j >= 0 && (d < best.0 || (d == best.0 && (j as usize) < best.1)) {
                best = (d, j as usize);
            }
        }
        for j in full..n {
            let d = signed::<C, MAX>(row[j]) - v[j];
            if d < best.0 {
                best = (d, j);
            }
        }
        best
    }

    /// AVX2 version of [`super::relax_and_pick`] for `f64` or `f32` costs: 4 columns per step, the
    /// costs fetched with a gather. Same arithmetic, same order per column, same result.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn relax_and_pick<C: VecCost, const MAX: bool>(
        row: &[C],
        base: f64,
        i: usize,
        t_col: &[usize],
        t_v: &[f64],
        t_short: &mut [f64],
        t_pred: &mut [usize],
        t_free: &[bool],
    ) -> (f64, usize) {
        let len = t_col
            .len()
            .min(t_v.len())
            .min(t_short.len())
            .min(t_pred.len());
        let full = len / 4 * 4;
        let vbase = _mm256_set1_pd(base);
        let vi = _mm256_set1_epi64x(i as i64);
        let sign = _mm256_set1_pd(if MAX { -0.0 } else { 0.0 });
        let mut vlow = _mm256_set1_pd(f64::INFINITY);
        let mut k = 0;
        while k < full {
            // SAFETY: k + 4 <= full <= len of every slice; t_col entries index `row` (< row.len()).
            let idx = _mm256_loadu_si256(t_col.as_ptr().add(k).cast());
            let c = _mm256_xor_pd(C::gather4(row.as_ptr(), idx), sign);
            let r = _mm256_sub_pd(
                _mm256_add_pd(vbase, c),
                _mm256_loadu_pd(t_v.as_ptr().add(k)),
            );
            let old = _mm256_loadu_pd(t_short.as_ptr().add(k));
            let better = _mm256_cmp_pd::<_CMP_LT_OQ>(r, old);
            let short = _mm256_blendv_pd(old, r, better);
            _mm256_storeu_pd(t_short.as_mut_ptr().add(k), short);
            let pred = _mm256_loadu_si256(t_pred.as_ptr().add(k).cast());
            let pred = _mm256_castpd_si256(_mm256_blendv_pd(
                _mm256_castsi256_pd(pred),
                _mm256_castsi256_pd(vi),
                better,
            ));
            _mm256_storeu_si256(t_pred.as_mut_ptr().add(k).cast(), pred);
            // `min_pd(a, b)` returns b when a is NaN: keep the running minimum as the second operand.
            vlow = _mm256_min_pd(short, vlow);
            k += 4;
        }
        let mut lanes = [0.0_f64; 4];
        _mm256_storeu_pd(lanes.as_mut_ptr(), vlow);
        super::finish_step::<C, MAX>(
            &lanes, full, row, base, i, t_col, t_v, t_short, t_pred, t_free,
        )
    }
}

/// `(min_j (signed(row[j]) − v[j]), first j at the minimum)`; `j = usize::MAX` if nothing
/// compares below infinity. One vectorised pass (AVX2 for `f64`/`f32` costs on x86-64, chosen at
/// run time; both paths compute the same values and break ties by the smaller index).
fn min_reduced<T: Cost, const MAX: bool>(row: &[T], v: &[f64]) -> (f64, usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY (both calls): AVX2 was detected.
            if let Some(row) = as_cost::<T, f64>(row) {
                return unsafe { avx2_search::min_reduced::<f64, MAX>(row, v) };
            }
            if let Some(row) = as_cost::<T, f32>(row) {
                return unsafe { avx2_search::min_reduced::<f32, MAX>(row, v) };
            }
        }
    }
    let mut best = (f64::INFINITY, NONE);
    for (j, (&c, &vj)) in row.iter().zip(v).enumerate() {
        let d = signed::<T, MAX>(c) - vj;
        if d < best.0 {
            best = (d, j);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    type Step<C> = unsafe fn(
        &[C],
        f64,
        usize,
        &[usize],
        &[f64],
        &mut [f64],
        &mut [usize],
        &[bool],
    ) -> (f64, usize);

    /// The vector search steps this CPU can run, for costs of type `C`.
    #[cfg(target_arch = "x86_64")]
    fn vector_steps<C: VecCost, const MAX: bool>() -> Vec<(&'static str, Step<C>)> {
        let mut steps: Vec<(&'static str, Step<C>)> = Vec::new();
        if std::arch::is_x86_feature_detected!("avx2") {
            steps.push(("avx2", avx2_search::relax_and_pick::<C, MAX>));
        }
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            steps.push(("avx512", avx512_search::relax_and_pick::<C, MAX>));
        }
        steps
    }

    #[allow(clippy::too_many_arguments)]
    fn scalar_step<C: Cost, const MAX: bool>(
        row: &[C],
        base: f64,
        i: usize,
        t_col: &[usize],
        t_v: &[f64],
        short: &mut [f64],
        pred: &mut [usize],
        t_free: &[bool],
    ) -> (f64, usize) {
        let mut lowest = f64::INFINITY;
        for k in 0..t_col.len() {
            let r = base + signed::<C, MAX>(row[t_col[k]]) - t_v[k];
            if r < short[k] {
                short[k] = r;
                pred[k] = i;
            }
            if short[k] < lowest {
                lowest = short[k];
            }
        }
        if !lowest.is_finite() {
            return (lowest, NONE);
        }
        (lowest, first_at(lowest, short, t_free))
    }

    #[cfg(target_arch = "x86_64")]
    fn check_steps<C: VecCost + From<i16>, const MAX: bool>() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 20_000) as i16 - 10_000
        };
        for len in [1_usize, 3, 4, 5, 8, 9, 13, 16, 64, 101] {
            let m = len + 7;
            let row: Vec<C> = (0..m).map(|_| C::from(next())).collect();
            let t_col: Vec<usize> = (0..len).map(|k| (k * 5 + 3) % m).collect();
            let t_v: Vec<f64> = (0..len).map(|_| f64::from(next()) / 7.0).collect();
            let t_free: Vec<bool> = (0..len).map(|k| k % 3 == 0).collect();
            let mut short: Vec<f64> = (0..len)
                .map(|k| {
                    if k % 4 == 0 {
                        f64::INFINITY
                    } else {
                        f64::from(next()) / 3.0
                    }
                })
                .collect();
            // A tie at the minimum between an assigned and a free column.
            if len > 2 {
                short[1] = -1e9;
                short[len - 1] = -1e9;
            }
            let pred = vec![7_usize; len];
            let base = f64::from(next()) / 11.0;
            let (mut s0, mut p0) = (short.clone(), pred.clone());
            let want =
                scalar_step::<C, MAX>(&row, base, 42, &t_col, &t_v, &mut s0, &mut p0, &t_free);
            for (name, step) in vector_steps::<C, MAX>() {
                let (mut s, mut p) = (short.clone(), pred.clone());
                // SAFETY: `vector_steps` lists only kernels whose features were detected.
                let got = unsafe { step(&row, base, 42, &t_col, &t_v, &mut s, &mut p, &t_free) };
                assert_eq!(got, want, "{name} len={len} max={MAX}");
                assert_eq!(s, s0, "{name} len={len}");
                assert_eq!(p, p0, "{name} len={len}");
            }
            // And the dispatched entry points.
            let (mut s, mut p) = (short.clone(), pred.clone());
            assert_eq!(
                relax_and_pick::<C, MAX>(&row, base, 42, &t_col, &t_v, &mut s, &mut p, &t_free),
                want
            );
            let v: Vec<f64> = (0..m).map(|_| f64::from(next()) / 5.0).collect();
            let mut best = (f64::INFINITY, NONE);
            for j in 0..m {
                let d = signed::<C, MAX>(row[j]) - v[j];
                if d < best.0 {
                    best = (d, j);
                }
            }
            assert_eq!(
                min_reduced::<C, MAX>(&row, &v),
                best,
                "min_reduced len={len}"
            );
        }
    }

    /// Every vector search step (AVX2, AVX-512; f64 and f32 costs) computes exactly what the
    /// portable one does.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_and_scalar_search_steps_agree() {
        check_steps::<f64, false>();
        check_steps::<f64, true>();
        check_steps::<f32, false>();
        check_steps::<f32, true>();
    }
}
