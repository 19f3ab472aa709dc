//! Dijkstra steps of the exact LAP solver over whole rows (the *dense* step).
//!
//! One step of a shortest-augmenting-path search relaxes the labels of the unscanned columns
//! through one row and picks the unscanned column with the smallest label, preferring a free one at
//! a tie. The dense step reads the cost row, the column duals and the labels contiguously, with no
//! index list: which columns are still unscanned is a bit set (`todo`, bit `j` of word `j / 64`),
//! applied as lane masks. A search keeps
//! - `lab[j]`: the label of column `j` (`+∞` before its first relaxation); once `j` is scanned it is
//!   no longer touched, so it keeps the final distance the dual update needs;
//! - `pred[j]`: the row that set `lab[j]`;
//! - `todo` and `free`: bit sets of the unscanned and of the unassigned columns.
//!
//! Every body computes the same labels with the same arithmetic (`(base + c) − v`, no fused
//! multiply-add) and picks by the same rule, so every instruction set gives the same search and the
//! same result.

#[cfg(target_arch = "x86_64")]
use super::same_type;
use super::{signed, Isa};
use crate::lap::Cost;

/// "No column": what [`dense_step`] returns when no label is finite.
pub const NO_COLUMN: usize = usize::MAX;

/// The labels and predecessors of a dense search have room for a multiple of this many columns.
pub const PAD: usize = 8;

/// `m` rounded up to a multiple of [`PAD`]: the length of `lab` and `pred` for `m` columns.
#[must_use]
pub const fn padded(m: usize) -> usize {
    m.div_ceil(PAD) * PAD
}

/// One dense Dijkstra step through row `i` (`base = d_min − u_i`).
///
/// For every column `j` whose `todo` bit is set: `r = (base + signed(row[j])) − v[j]`; if
/// `r < lab[j]`, then `lab[j] = r` and `pred[j] = i`. Then, among those columns, take the smallest
/// label and return `(label, column)`, the column being the first free one (bit set in `free`) at
/// that label, else the first one at it; [`NO_COLUMN`] when no label is finite (only possible with
/// non-finite costs, which validated input never has). Columns whose `todo` bit is clear are
/// neither read nor written.
///
/// `v` has an entry per column, `lab` and `pred` have [`padded`]`(row.len())`, the labels past
/// the last column being `+∞` (they are never written). Bits at positions `≥ row.len()` must be
/// clear in `todo`.
///
/// # Panics
/// If the lengths are not these or the bit sets have fewer than `row.len()` bits (a caller bug).
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn dense_step<T: Cost, const MAX: bool>(
    isa: Isa,
    row: &[T],
    base: f64,
    i: usize,
    v: &[f64],
    lab: &mut [f64],
    pred: &mut [usize],
    todo: &[u64],
    free: &[u64],
) -> (f64, usize) {
    let m = row.len();
    let words = m.div_ceil(64);
    assert!(v.len() == m && lab.len() == padded(m) && pred.len() == padded(m));
    assert!(todo.len() >= words && free.len() >= words);
    #[cfg(target_arch = "x86_64")]
    {
        if isa >= Isa::Avx2 {
            if let Some(row) = same_type::<T, f64>(row) {
                // SAFETY: the ISA is supported (`kernels::isa` never exceeds the CPU); lengths checked.
                return unsafe {
                    x86::dense_step::<f64, MAX>(isa, row, base, i, v, lab, pred, todo, free)
                };
            }
            if let Some(row) = same_type::<T, f32>(row) {
                // SAFETY: as above.
                return unsafe {
                    x86::dense_step::<f32, MAX>(isa, row, base, i, v, lab, pred, todo, free)
                };
            }
        }
    }
    let _ = isa;
    dense_step_portable::<T, MAX>(row, base, i, v, lab, pred, todo, free)
}

/// The portable reference body of [`dense_step`].
#[allow(clippy::too_many_arguments)]
pub fn dense_step_portable<T: Cost, const MAX: bool>(
    row: &[T],
    base: f64,
    i: usize,
    v: &[f64],
    lab: &mut [f64],
    pred: &mut [usize],
    todo: &[u64],
    free: &[u64],
) -> (f64, usize) {
    let mut lowest = f64::INFINITY;
    for (j, (((&c, &vj), l), p)) in row
        .iter()
        .zip(v)
        .zip(lab.iter_mut())
        .zip(pred.iter_mut())
        .enumerate()
    {
        if todo[j / 64] >> (j % 64) & 1 == 0 {
            continue;
        }
        let r = (base + signed::<T, MAX>(c)) - vj;
        if r < *l {
            *l = r;
            *p = i;
        }
        if *l < lowest {
            lowest = *l;
        }
    }
    if !lowest.is_finite() {
        return (lowest, NO_COLUMN);
    }
    let mut first = NO_COLUMN;
    for (w, chunk) in lab.chunks(64).enumerate() {
        let mut equal = 0_u64;
        for (b, &l) in chunk.iter().enumerate() {
            equal |= u64::from(l == lowest) << b;
        }
        if let Some(j) = pick_in_word(w, equal & todo[w], free[w], &mut first) {
            return (lowest, j);
        }
    }
    (lowest, first)
}

/// The per-column state of one dense search: what [`dense_step`] reads and writes besides the
/// cost row and the duals.
#[derive(Debug)]
pub struct Columns<'a> {
    /// Labels, [`padded`]`(m)` of them, `+∞` at the start of a search and past the last column.
    pub lab: &'a mut [f64],
    /// The row that set each label, [`padded`]`(m)` of them.
    pub pred: &'a mut [usize],
    /// Bit `j`: column `j` is not yet scanned (all `m` bits set at the start of a search).
    pub todo: &'a mut [u64],
    /// Bit `j`: column `j` is not assigned to a row.
    pub free: &'a [u64],
}

/// How a [`dense_search`] ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Searched {
    /// It reached the free column `sink` at distance `distance` (the largest label scanned).
    Sink {
        /// The free column the augmenting path ends at.
        sink: usize,
        /// Its label.
        distance: f64,
    },
    /// Relaxing `row` left no finite label (non-finite costs; never with validated input).
    NonFinite {
        /// The row being relaxed.
        row: usize,
        /// The smallest label found.
        value: f64,
    },
}

/// One Dijkstra search of the shortest augmenting path from the free row `root`: dense steps
/// through the root, then through the row assigned to each scanned column, until a free column
/// is scanned. `cost` is row-major with `m` columns; `u`, `v` are the duals (`u` per row, `v` per
/// column); `row4col[j]` is the row assigned to column `j` (read only where `j` is not free). The
/// scanned columns are appended to `scanned` in order. At most `m` steps: each scans one column.
///
/// # Panics
/// If the lengths do not fit `m` (see [`dense_step`]) or `row4col` names a row outside `cost`.
#[allow(clippy::too_many_arguments)]
pub fn dense_search<T: Cost, const MAX: bool>(
    isa: Isa,
    cost: &[T],
    m: usize,
    root: usize,
    u: &[f64],
    v: &[f64],
    row4col: &[usize],
    columns: &mut Columns<'_>,
    scanned: &mut Vec<usize>,
) -> Searched {
    let words = m.div_ceil(64);
    assert!(v.len() == m && row4col.len() == m);
    assert!(columns.lab.len() == padded(m) && columns.pred.len() == padded(m));
    assert!(columns.todo.len() >= words && columns.free.len() >= words);
    #[cfg(target_arch = "x86_64")]
    {
        if isa >= Isa::Avx2 {
            if let Some(cost) = same_type::<T, f64>(cost) {
                // SAFETY: the ISA is supported (`kernels::isa` never exceeds the CPU); lengths checked.
                return unsafe {
                    x86::dense_search::<f64, MAX>(
                        isa, cost, m, root, u, v, row4col, columns, scanned,
                    )
                };
            }
            if let Some(cost) = same_type::<T, f32>(cost) {
                // SAFETY: as above.
                return unsafe {
                    x86::dense_search::<f32, MAX>(
                        isa, cost, m, root, u, v, row4col, columns, scanned,
                    )
                };
            }
        }
    }
    let _ = isa;
    search_with(
        cost,
        m,
        root,
        u,
        columns,
        scanned,
        row4col,
        |row, base, i, columns| {
            dense_step_portable::<T, MAX>(
                row,
                base,
                i,
                v,
                columns.lab,
                columns.pred,
                columns.todo,
                columns.free,
            )
        },
    )
}

/// The loop of [`dense_search`] around a step body (inlined into each instruction set's body).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn search_with<T, F>(
    cost: &[T],
    m: usize,
    root: usize,
    u: &[f64],
    columns: &mut Columns<'_>,
    scanned: &mut Vec<usize>,
    row4col: &[usize],
    mut step: F,
) -> Searched
where
    F: FnMut(&[T], f64, usize, &mut Columns<'_>) -> (f64, usize),
{
    let mut i = root;
    let mut distance = 0.0_f64;
    loop {
        let row = &cost[i * m..(i + 1) * m];
        let (lowest, j) = step(row, distance - u[i], i, columns);
        if j >= m {
            return Searched::NonFinite {
                row: i,
                value: lowest,
            };
        }
        distance = lowest;
        columns.todo[j / 64] &= !(1_u64 << (j % 64));
        scanned.push(j);
        if columns.free[j / 64] >> (j % 64) & 1 == 1 {
            return Searched::Sink { sink: j, distance };
        }
        i = row4col[j];
    }
}

/// One 64-column word of the pick: `Some(column)` when a free column is at the minimum, else
/// remember the first column at the minimum in `first`.
#[inline(always)]
fn pick_in_word(w: usize, equal: u64, free: u64, first: &mut usize) -> Option<usize> {
    let equal_free = equal & free;
    if equal_free != 0 {
        return Some(w * 64 + equal_free.trailing_zeros() as usize);
    }
    if *first == NO_COLUMN && equal != 0 {
        *first = w * 64 + equal.trailing_zeros() as usize;
    }
    None
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::lanes::Load;
    use super::{pick_in_word, search_with, Columns, Isa, Searched, NO_COLUMN};
    use std::arch::x86_64::{
        __m256i, _mm256_add_pd, _mm256_and_si256, _mm256_blendv_pd, _mm256_castpd_si256,
        _mm256_castsi256_pd, _mm256_cmp_pd, _mm256_cmpeq_epi64, _mm256_loadu_pd,
        _mm256_maskload_pd, _mm256_maskstore_epi64, _mm256_maskstore_pd, _mm256_min_pd,
        _mm256_movemask_pd, _mm256_set1_epi64x, _mm256_set1_pd, _mm256_setr_epi64x,
        _mm256_storeu_pd, _mm256_sub_pd, _mm256_xor_pd, _mm512_add_pd, _mm512_cmp_pd_mask,
        _mm512_loadu_pd, _mm512_mask_blend_pd, _mm512_mask_cmp_pd_mask, _mm512_mask_loadu_pd,
        _mm512_mask_storeu_epi64, _mm512_mask_storeu_pd, _mm512_maskz_loadu_pd, _mm512_min_pd,
        _mm512_reduce_min_pd, _mm512_set1_epi64, _mm512_set1_pd, _mm512_sub_pd, _mm512_xor_pd,
        _CMP_EQ_OQ, _CMP_LT_OQ,
    };

    /// [`super::dense_step`] on AVX-512 (8 columns a vector) or AVX2 (4).
    ///
    /// # Safety
    /// `isa` is supported by the CPU; the lengths are as [`super::dense_step`] checks.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn dense_step<C: Load, const MAX: bool>(
        isa: Isa,
        row: &[C],
        base: f64,
        i: usize,
        v: &[f64],
        lab: &mut [f64],
        pred: &mut [usize],
        todo: &[u64],
        free: &[u64],
    ) -> (f64, usize) {
        if isa >= Isa::Avx512 {
            step_avx512::<C, MAX>(row, base, i, v, lab, pred, todo, free)
        } else {
            step_avx2::<C, MAX>(row, base, i, v, lab, pred, todo, free)
        }
    }

    #[target_feature(enable = "avx512f,avx512dq")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn step_avx512<C: Load, const MAX: bool>(
        row: &[C],
        base: f64,
        i: usize,
        v: &[f64],
        lab: &mut [f64],
        pred: &mut [usize],
        todo: &[u64],
        free: &[u64],
    ) -> (f64, usize) {
        let m = row.len();
        let vbase = _mm512_set1_pd(base);
        let sign = _mm512_set1_pd(if MAX { -0.0 } else { 0.0 });
        let inf = _mm512_set1_pd(f64::INFINITY);
        let vi = _mm512_set1_epi64(i as i64);
        let mut vlow = inf;
        let (mut k, mut w) = (0, 0);
        while k < m {
            let word = todo[w];
            let vectors = (m - k).min(64).div_ceil(8);
            for q in 0..vectors {
                // Lanes ≥ m have clear bits, so the masked loads and stores of the cost row and
                // `v` stay below m; `lab` and `pred` have `padded(m)` entries.
                let live = (word >> (8 * q)) as u8;
                let at = k + 8 * q;
                // SAFETY: as just said.
                let c = _mm512_xor_pd(C::mask_load8(row.as_ptr().add(at), live), sign);
                let r = _mm512_sub_pd(
                    _mm512_add_pd(vbase, c),
                    _mm512_maskz_loadu_pd(live, v.as_ptr().add(at)),
                );
                let old = _mm512_mask_loadu_pd(inf, live, lab.as_ptr().add(at));
                let better = _mm512_mask_cmp_pd_mask::<_CMP_LT_OQ>(live, r, old);
                _mm512_mask_storeu_pd(lab.as_mut_ptr().add(at), better, r);
                _mm512_mask_storeu_epi64(pred.as_mut_ptr().add(at).cast(), better, vi);
                vlow = _mm512_min_pd(_mm512_mask_blend_pd(better, old, r), vlow);
            }
            k += 64;
            w += 1;
        }
        let lowest = _mm512_reduce_min_pd(vlow);
        if !lowest.is_finite() {
            return (lowest, NO_COLUMN);
        }
        let target = _mm512_set1_pd(lowest);
        let mut first = NO_COLUMN;
        let (mut k, mut w) = (0, 0);
        while k < m {
            let vectors = (m - k).min(64).div_ceil(8);
            let mut equal = 0_u64;
            for q in 0..vectors {
                // SAFETY: `lab` has `padded(m)` entries.
                let at = _mm512_cmp_pd_mask::<_CMP_EQ_OQ>(
                    _mm512_loadu_pd(lab.as_ptr().add(k + 8 * q)),
                    target,
                );
                equal |= u64::from(at) << (8 * q);
            }
            if let Some(j) = pick_in_word(w, equal & todo[w], free[w], &mut first) {
                return (lowest, j);
            }
            k += 64;
            w += 1;
        }
        (lowest, first)
    }

    /// [`super::dense_search`] on AVX-512 or AVX2: the whole search in one function, so that
    /// the step is inlined into its loop.
    ///
    /// # Safety
    /// As [`dense_step`].
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn dense_search<C: Load, const MAX: bool>(
        isa: Isa,
        cost: &[C],
        m: usize,
        root: usize,
        u: &[f64],
        v: &[f64],
        row4col: &[usize],
        columns: &mut Columns<'_>,
        scanned: &mut Vec<usize>,
    ) -> Searched {
        if isa >= Isa::Avx512 {
            search_avx512::<C, MAX>(cost, m, root, u, v, row4col, columns, scanned)
        } else {
            search_avx2::<C, MAX>(cost, m, root, u, v, row4col, columns, scanned)
        }
    }

    #[target_feature(enable = "avx512f,avx512dq")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn search_avx512<C: Load, const MAX: bool>(
        cost: &[C],
        m: usize,
        root: usize,
        u: &[f64],
        v: &[f64],
        row4col: &[usize],
        columns: &mut Columns<'_>,
        scanned: &mut Vec<usize>,
    ) -> Searched {
        search_with(
            cost,
            m,
            root,
            u,
            columns,
            scanned,
            row4col,
            |row, base, i, c| {
                // SAFETY: this function runs only with AVX-512F/DQ; lengths checked by the caller.
                unsafe { step_avx512::<C, MAX>(row, base, i, v, c.lab, c.pred, c.todo, c.free) }
            },
        )
    }

    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn search_avx2<C: Load, const MAX: bool>(
        cost: &[C],
        m: usize,
        root: usize,
        u: &[f64],
        v: &[f64],
        row4col: &[usize],
        columns: &mut Columns<'_>,
        scanned: &mut Vec<usize>,
    ) -> Searched {
        search_with(
            cost,
            m,
            root,
            u,
            columns,
            scanned,
            row4col,
            |row, base, i, c| {
                // SAFETY: this function runs only with AVX2; lengths checked by the caller.
                unsafe { step_avx2::<C, MAX>(row, base, i, v, c.lab, c.pred, c.todo, c.free) }
            },
        )
    }

    /// The lanes of bits `k..k + 4` of a bit set as an AVX2 lane mask.
    #[inline(always)]
    unsafe fn lanes4(set: &[u64], k: usize) -> __m256i {
        let bits = _mm256_set1_epi64x((set[k / 64] >> (k % 64)) as i64);
        let one = _mm256_setr_epi64x(1, 2, 4, 8);
        _mm256_cmpeq_epi64(_mm256_and_si256(bits, one), one)
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn step_avx2<C: Load, const MAX: bool>(
        row: &[C],
        base: f64,
        i: usize,
        v: &[f64],
        lab: &mut [f64],
        pred: &mut [usize],
        todo: &[u64],
        free: &[u64],
    ) -> (f64, usize) {
        let m = row.len();
        let vbase = _mm256_set1_pd(base);
        let sign = _mm256_set1_pd(if MAX { -0.0 } else { 0.0 });
        let inf = _mm256_set1_pd(f64::INFINITY);
        let vi = _mm256_set1_epi64x(i as i64);
        let mut vlow = inf;
        let mut k = 0;
        while k < m {
            let live = lanes4(todo, k);
            // SAFETY: masked loads and stores touch only lanes of `live`, all below m.
            let c = _mm256_xor_pd(C::mask_load4(row.as_ptr().add(k), live), sign);
            let r = _mm256_sub_pd(
                _mm256_add_pd(vbase, c),
                _mm256_maskload_pd(v.as_ptr().add(k), live),
            );
            let old = _mm256_blendv_pd(
                inf,
                _mm256_maskload_pd(lab.as_ptr().add(k), live),
                _mm256_castsi256_pd(live),
            );
            let better = _mm256_cmp_pd::<_CMP_LT_OQ>(r, old);
            let better_i = _mm256_and_si256(_mm256_castpd_si256(better), live);
            _mm256_maskstore_pd(lab.as_mut_ptr().add(k), better_i, r);
            _mm256_maskstore_epi64(pred.as_mut_ptr().add(k).cast(), better_i, vi);
            // `min_pd(a, b)` is `a < b ? a : b`: the running minimum stays the second operand.
            let new = _mm256_blendv_pd(old, r, _mm256_castsi256_pd(better_i));
            vlow = _mm256_min_pd(new, vlow);
            k += 4;
        }
        let mut lanes = [0.0_f64; 4];
        _mm256_storeu_pd(lanes.as_mut_ptr(), vlow);
        let mut lowest = f64::INFINITY;
        for l in lanes {
            if l < lowest {
                lowest = l;
            }
        }
        if !lowest.is_finite() {
            return (lowest, NO_COLUMN);
        }
        let target = _mm256_set1_pd(lowest);
        let mut first = NO_COLUMN;
        let mut k = 0;
        while k < m {
            let mut equal = 0_u64;
            let end = (k + 64).min(m);
            let mut q = k;
            while q < end {
                // SAFETY: `lab` has `padded(m)` entries.
                let at = _mm256_cmp_pd::<_CMP_EQ_OQ>(_mm256_loadu_pd(lab.as_ptr().add(q)), target);
                equal |= u64::from(_mm256_movemask_pd(at) as u32) << (q - k);
                q += 4;
            }
            if let Some(j) = pick_in_word(k / 64, equal & todo[k / 64], free[k / 64], &mut first) {
                return (lowest, j);
            }
            k += 64;
        }
        (lowest, first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The instruction sets this CPU can run, the portable one included.
    fn levels() -> Vec<Isa> {
        [Isa::Portable, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|&l| l <= Isa::detect())
            .collect()
    }

    fn xorshift(seed: u64) -> impl FnMut() -> i16 {
        let mut state = seed;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2000) as i16 - 1000
        }
    }

    fn bits(m: usize, mut keep: impl FnMut(usize) -> bool) -> Vec<u64> {
        let mut set = vec![0_u64; m.div_ceil(64) + 1];
        for j in 0..m {
            if keep(j) {
                set[j / 64] |= 1 << (j % 64);
            }
        }
        set
    }

    fn check_steps<C: Cost + From<i16>, const MAX: bool>() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        for m in [
            1_usize, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 49, 63, 64, 65, 100, 129, 200,
        ] {
            for trial in 0..6 {
                // Few distinct values, so that ties at the minimum are common.
                let row: Vec<C> = (0..m).map(|_| C::from(next() / 200)).collect();
                let v: Vec<f64> = (0..m).map(|_| f64::from(next() / 250)).collect();
                let lab: Vec<f64> = (0..padded(m))
                    .map(|j| {
                        if j % 3 == 0 || j >= m {
                            f64::INFINITY
                        } else {
                            f64::from(next() / 100)
                        }
                    })
                    .collect();
                let todo = bits(m, |j| trial == 5 || j % 5 != 2);
                let free = bits(m, |j| (j * 7 + trial) % 4 == 0);
                let pred = vec![7_usize; padded(m)];
                let base = f64::from(next() / 300);
                let (mut l0, mut p0) = (lab.clone(), pred.clone());
                let want = dense_step_portable::<C, MAX>(
                    &row, base, 42, &v, &mut l0, &mut p0, &todo, &free,
                );
                for isa in levels() {
                    let (mut l, mut p) = (lab.clone(), pred.clone());
                    let got =
                        dense_step::<C, MAX>(isa, &row, base, 42, &v, &mut l, &mut p, &todo, &free);
                    assert_eq!(got, want, "{isa:?} m={m} trial={trial} max={MAX}");
                    assert_eq!(l, l0, "{isa:?} m={m} trial={trial}");
                    assert_eq!(p, p0, "{isa:?} m={m} trial={trial}");
                }
                // The reference against its definition.
                let live = |j: usize| todo[j / 64] >> (j % 64) & 1 == 1;
                let is_free = |j: usize| free[j / 64] >> (j % 64) & 1 == 1;
                for j in 0..m {
                    if live(j) {
                        let r = (base + signed::<C, MAX>(row[j])) - v[j];
                        assert_eq!(l0[j], r.min(lab[j]));
                        assert_eq!(p0[j], if r < lab[j] { 42 } else { 7 });
                    } else {
                        assert_eq!((l0[j], p0[j]), (lab[j], 7), "scanned column {j} changed");
                    }
                }
                let lowest = (0..m)
                    .filter(|&j| live(j))
                    .map(|j| l0[j])
                    .fold(f64::INFINITY, f64::min);
                let at = |j: usize| live(j) && l0[j] == lowest;
                let expect = (0..m)
                    .find(|&j| at(j) && is_free(j))
                    .or_else(|| (0..m).find(|&j| at(j)))
                    .unwrap_or(NO_COLUMN);
                assert_eq!(want, (lowest, expect), "m={m} trial={trial}");
            }
        }
    }

    /// Every vector body of the dense step (AVX-512, AVX2; f64 and f32 costs; minimise and
    /// maximise) computes exactly what the portable reference does, and that is its definition.
    #[test]
    fn dense_step_bodies_agree() {
        check_steps::<f64, false>();
        check_steps::<f64, true>();
        check_steps::<f32, false>();
        check_steps::<f32, true>();
    }
}
