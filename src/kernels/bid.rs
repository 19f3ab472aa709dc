//! Bid scans of the two auctions: one pass over a row for its two best reduced values.
//!
//! - [`two_min`]: the exact solver's warm start ([`crate::lap`]'s private auction), minimisation on
//!   an `f32` copy of the costs (or a 16- or 8-bit quantised one, [`ScanValue`]) with `f32`
//!   prices; also writes the row's candidate list (the two smallest of each of the [`LANES`]
//!   lanes; with AVX-512 the smallest of each of 16 lanes) and a lower bound on every other
//!   column. [`list_two_min`] bids from such a list. [`quantise_rows`] and [`coarsen`] make the
//!   quantised copies.
//! - [`top_two`]: the certified auction ([`crate::matching::auction`]), maximisation on the
//!   affinity (or its `f32` copy) with `f64` prices.
//! - [`row_max_reduced`]: `max_j (row_j − v_j)`, the row dual of a price vector (the certified
//!   auction's stopping rule and [`crate::matching::bound`]).
//! - [`column_max`]: the column pass of a dual, `v_j = max_i (row_ij − u_i)`, one row at a time
//!   (on the affinity, its `f32` copy or its 16-bit copy).
//! - [`min_max`], [`signed_min_max`]: the range of a row or of a whole cost matrix.
//!
//! Every kernel takes the [`Isa`] that [`super::isa`] chose once per solve and has a portable
//! reference body (`*_portable`); the x86 bodies compute exactly what the reference does (the unit
//! tests below check each against it on every level the CPU runs).

use super::{signed, Isa};
use crate::lap::Cost;

/// Lanes of the reference bodies: each keeps its own running best values over the columns
/// `l, l + LANES, …`, so that the loops vectorise and the results do not depend on the ISA.
/// (The wider bodies of [`top_two`], [`row_max_reduced`] and [`min_max`] keep 2 or 4 times as many, for
/// independent chains of `max`: maxima are exact, so the results are the same.)
pub const LANES: usize = 8;

/// Candidate columns [`two_min`] writes per row: the two smallest of each lane.
pub const CANDIDATES: usize = 2 * LANES;

/// An entry of a row that [`two_min`] scans: the `f32` copy of the costs, or their 16-bit
/// quantisation ([`quantise_rows`]) for half the bytes per scan. Either widens exactly to `f32`,
/// and the scan computes on the widened values, so both give the same bits on every level.
pub trait ScanValue: Copy + Send + Sync + 'static {
    /// Zero (pads a partial vector).
    const ZERO: Self;
    /// The value as `f32` (exact).
    fn widen(self) -> f32;
    /// Sixteen values from `p`, widened.
    ///
    /// # Safety
    /// AVX-512F; `p` valid for 16 reads.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load16(p: *const Self) -> std::arch::x86_64::__m512;
    /// The fewer than 16 values of `tail`, widened, in the lanes of `live` (its lowest
    /// `tail.len()` bits; the other lanes are zero).
    ///
    /// # Safety
    /// AVX-512F.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load16_tail(tail: &[Self], live: u16) -> std::arch::x86_64::__m512 {
        let _ = live;
        let mut padded = [Self::ZERO; 16];
        padded[..tail.len()].copy_from_slice(tail);
        Self::load16(padded.as_ptr())
    }
    /// Eight values from `p`, widened.
    ///
    /// # Safety
    /// AVX2; `p` valid for 8 reads.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m256;
}

impl ScanValue for f32 {
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const Self) -> std::arch::x86_64::__m512 {
        std::arch::x86_64::_mm512_loadu_ps(p)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16_tail(tail: &[Self], live: u16) -> std::arch::x86_64::__m512 {
        std::arch::x86_64::_mm512_maskz_loadu_ps(live, tail.as_ptr())
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m256 {
        std::arch::x86_64::_mm256_loadu_ps(p)
    }
}

impl ScanValue for u16 {
    const ZERO: Self = 0;
    #[inline(always)]
    fn widen(self) -> f32 {
        f32::from(self)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const Self) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::{_mm256_loadu_si256, _mm512_cvtepi32_ps, _mm512_cvtepu16_epi32};
        _mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(_mm256_loadu_si256(p.cast())))
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::{_mm256_cvtepi32_ps, _mm256_cvtepu16_epi32, _mm_loadu_si128};
        _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm_loadu_si128(p.cast())))
    }
}

impl ScanValue for u8 {
    const ZERO: Self = 0;
    #[inline(always)]
    fn widen(self) -> f32 {
        f32::from(self)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const Self) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::{_mm512_cvtepi32_ps, _mm512_cvtepu8_epi32, _mm_loadu_si128};
        _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(p.cast())))
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::{_mm256_cvtepi32_ps, _mm256_cvtepu8_epi32, _mm_loadl_epi64};
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(p.cast())))
    }
}

/// Largest value of the 16-bit copy ([`quantise_rows`]).
const Q_MAX: f64 = 65535.0;

/// What [`quantise_rows`] found: the smallest and largest `signed(c)` of the whole matrix and the
/// step of the copy (a power of two).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantised {
    /// Smallest `signed(c)`.
    pub lo: f64,
    /// Largest `signed(c)`.
    pub hi: f64,
    /// One unit of the copy, in cost units.
    pub step: f64,
    /// The sum over rows of each row's smallest `signed(c)` (its offset), in row order; with it
    /// a dual on the copy converts back to cost units (the certified auction's bound).
    pub low_sum: f64,
}

/// `2^e` for `e` in the normal range.
fn pow2(e: i32) -> f64 {
    let e = e.clamp(-1022, 1023);
    f64::from_bits(((1023 + e) as u64) << 52)
}

/// The smallest `e ≥ −1022` with `range · 2^−e ≤ 65535` (`−1022` for a zero range).
fn step_exponent(range: f64) -> i32 {
    if range <= 0.0 {
        return -1022;
    }
    #[allow(clippy::cast_possible_truncation)]
    let mut e = ((range / Q_MAX).log2().ceil() as i32).clamp(-1022, 1023);
    while e < 1023 && range * pow2(-e) > Q_MAX {
        e += 1;
    }
    while e > -1022 && range * pow2(-(e - 1)) <= Q_MAX {
        e -= 1;
    }
    e
}

/// The warm start's 16-bit copy of the `n × n` minimisation costs `signed(cost)`: row by row,
/// `out[i·n + j] = round((signed(c_ij) − min_j signed(c_ij)) / step)` (ties to even). Offsets per
/// row change no bid (a bid compares the columns of one row); the step is shared, the smallest
/// power of two that fits every row's range in 16 bits. It is chosen from a sample of rows
/// first and, when a later row needs a larger one, doubled with the rows already written
/// re-rounded (`(u + half) >> k`); deterministic, and the same bits on every level. Every value
/// is within one step of its cost less the row's minimum (half a step from the rounding, at
/// most half of one more from all re-roundings together). One read of
/// `cost` (each row's second read, for the values, hits the cache) and half the bytes of an
/// `f32` copy written. Needs `cost.len() == n²`, NaN-free.
#[must_use]
pub fn quantise_rows<T: Cost, const MAX: bool>(
    isa: Isa,
    cost: &[T],
    n: usize,
    out: &mut Vec<u16>,
) -> Quantised {
    // Every entry is written below: a buffer of the right length is not cleared first.
    if out.len() != n * n {
        out.clear();
        out.resize(n * n, 0);
    }
    let row_range =
        |i: usize| -> (f64, f64) { signed_min_max::<T, MAX>(isa, &cost[i * n..(i + 1) * n]) };
    // The first step from a sample of rows, so that doubling is rare.
    const SAMPLE: usize = 32;
    let mut e = (0..SAMPLE.min(n))
        .map(|k| {
            let (l, h) = row_range(k * n / SAMPLE.min(n));
            step_exponent(h - l)
        })
        .max()
        .unwrap_or(-1022);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut low_sum = 0.0;
    for i in 0..n {
        let (l, h) = row_range(i);
        low_sum += l;
        lo = min(lo, l);
        hi = max(hi, h);
        let need = step_exponent(h - l);
        if need > e {
            let k = need - e;
            if k > 16 {
                out[..i * n].fill(0); // (u + 2^(k−1)) >> k = 0 for every u < 2^16
            } else {
                let half = 1_u32 << (k - 1);
                for u in &mut out[..i * n] {
                    #[allow(clippy::cast_possible_truncation)]
                    {
                        *u = ((u32::from(*u) + half) >> k).min(0xFFFF) as u16;
                    }
                }
            }
            e = need;
        }
        let row = &cost[i * n..(i + 1) * n];
        let dst = &mut out[i * n..(i + 1) * n];
        quantise_row::<T, MAX>(isa, row, l, pow2(-e), dst);
    }
    Quantised {
        lo,
        hi,
        step: pow2(e),
        low_sum,
    }
}

/// `out[k] = min((fine[k] + 128) >> 8, 255)`: the [`quantise_rows`] copy rounded to 8 bits (a
/// step 256 times larger, the same offsets per row), for the warm start's first, coarse rounds.
/// Portable integer code (the compiler vectorises it): the same bits everywhere.
pub fn coarsen(fine: &[u16], out: &mut Vec<u8>) {
    out.clear();
    out.extend(fine.iter().map(|&u| {
        #[allow(clippy::cast_possible_truncation)]
        {
            ((u32::from(u) + 128) >> 8).min(255) as u8
        }
    }));
}

/// One row of [`quantise_rows`]: `dst[j] = round_ties_even(min((signed(row[j]) − low)·scale, 65535))`.
#[inline]
fn quantise_row<T: Cost, const MAX: bool>(
    isa: Isa,
    row: &[T],
    low: f64,
    scale: f64,
    dst: &mut [u16],
) {
    let sign = if MAX { -1.0 } else { 1.0 };
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY (all four): AVX2 (and for the wide bodies AVX-512F) is supported;
        // `dst.len() == row.len()`.
        if let (true, Some(values)) = (isa >= Isa::Avx2, super::same_type::<T, f64>(row)) {
            unsafe {
                if isa >= Isa::Avx512 {
                    x86::quantise_row_avx512(values, sign, low, scale, dst);
                } else {
                    x86::quantise_row_avx2(values, sign, low, scale, dst);
                }
            }
            return;
        }
        if let (true, Some(values)) = (isa >= Isa::Avx2, super::same_type::<T, f32>(row)) {
            unsafe {
                if isa >= Isa::Avx512 {
                    x86::quantise_row_avx512(values, sign, low, scale, dst);
                } else {
                    x86::quantise_row_avx2(values, sign, low, scale, dst);
                }
            }
            return;
        }
    }
    let _ = isa;
    quantise_row_portable(row, sign, low, scale, dst);
}

/// The portable reference body of one row of [`quantise_rows`] (also the tails of the vector
/// bodies).
#[inline(always)]
fn quantise_row_portable<T: Cost>(row: &[T], sign: f64, low: f64, scale: f64, dst: &mut [u16]) {
    for (d, &c) in dst.iter_mut().zip(row) {
        let q = ((c.to_f64() * sign - low) * scale).min(Q_MAX);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        {
            *d = q.round_ties_even() as u16;
        }
    }
}

/// Result of [`two_min`] on one row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TwoMin {
    /// Smallest `row_j − prices_j`.
    pub d1: f32,
    /// Second smallest (`+∞` for a row of one column).
    pub d2: f32,
    /// First column at `d1` (`0` when nothing compares below `+∞`).
    pub j1: usize,
    /// Every column not written to the candidate list has a reduced value at least this.
    pub threshold: f32,
}

/// `(smallest, second smallest, arg-min)` of `row_j − prices_j`, ties to the lower column, and
/// the row's [`CANDIDATES`] candidate columns (the two smallest of each lane; the tail of the row
/// goes to lane 0) with a lower bound on every other column. `O(row.len())`, one pass.
#[inline]
#[must_use]
pub fn two_min<E: ScanValue>(
    isa: Isa,
    row: &[E],
    prices: &[f32],
    candidates: &mut [u32; CANDIDATES],
) -> TwoMin {
    #[cfg(target_arch = "x86_64")]
    {
        if isa >= Isa::Avx512 {
            // SAFETY: AVX-512F is supported (`kernels::isa` never exceeds the CPU).
            return unsafe { x86::two_min_avx512(row, prices, candidates) };
        }
        if isa >= Isa::Avx2 {
            // SAFETY: AVX2 is supported.
            return unsafe { x86::two_min_avx2(row, prices, candidates) };
        }
    }
    let _ = isa;
    two_min_portable(row, prices, candidates)
}

/// The portable reference body of [`two_min`].
#[must_use]
pub fn two_min_portable<E: ScanValue>(
    row: &[E],
    prices: &[f32],
    candidates: &mut [u32; CANDIDATES],
) -> TwoMin {
    let n = row.len().min(prices.len());
    let mut m1 = [f32::INFINITY; LANES];
    let mut m2 = [f32::INFINITY; LANES];
    let mut i1 = [0_u32; LANES];
    let mut i2 = [0_u32; LANES];
    let full = n / LANES * LANES;
    for (k, (c, p)) in row[..full]
        .chunks_exact(LANES)
        .zip(prices[..full].chunks_exact(LANES))
        .enumerate()
    {
        let base = (k * LANES) as u32;
        for l in 0..LANES {
            let d = c[l].widen() - p[l];
            let j = base + l as u32;
            if d < m1[l] {
                (m2[l], i2[l], m1[l], i1[l]) = (m1[l], i1[l], d, j);
            } else if d < m2[l] {
                (m2[l], i2[l]) = (d, j);
            }
        }
    }
    merge_lanes(row, prices, full, (m1, m2, i1, i2), candidates)
}

/// Lane results of a two-minimum scan: per lane the smallest and second smallest value and their
/// columns.
type Lanes = ([f32; LANES], [f32; LANES], [u32; LANES], [u32; LANES]);

/// Fold the tail `full..n` into lane 0, merge the lanes' two smallest values into the row's,
/// write the lane winners as candidates, and bound every other column by the smallest runner-up.
/// Ties go to the smaller column index, so the result does not depend on the lane layout.
/// Adds the value `d` of column `j` to a running `(d1, d2, j1)`: the smallest value, the second
/// smallest and the smallest's column, ties going to the lower column.
#[inline(always)]
pub fn push_two_min(d1: &mut f32, d2: &mut f32, j1: &mut usize, d: f32, j: usize) {
    if d < *d1 || (d == *d1 && j < *j1) {
        *d2 = d2.min(*d1);
        *d1 = d;
        *j1 = j;
    } else {
        *d2 = d2.min(d);
    }
}

/// `(smallest, second smallest, its column)` of `costs[k] − prices[columns[k]]` over a candidate
/// list (the warm start's bid from a row's list, see [`two_min`]), ties to the lower column,
/// exactly as [`push_two_min`] over the list in order. `O(CANDIDATES)`.
#[inline]
#[must_use]
pub fn list_two_min(
    isa: Isa,
    costs: &[f32; CANDIDATES],
    columns: &[u32; CANDIDATES],
    prices: &[f32],
) -> (f32, f32, usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if isa >= Isa::Avx512 {
            // SAFETY: AVX-512F is supported (`kernels::isa` never exceeds the CPU).
            return unsafe { x86::list_two_min_avx512(costs, columns, prices) };
        }
    }
    let _ = isa;
    list_two_min_portable(costs, columns, prices)
}

/// The portable reference body of [`list_two_min`].
///
/// # Panics
/// If a column is out of bounds of `prices`.
#[must_use]
pub fn list_two_min_portable(
    costs: &[f32; CANDIDATES],
    columns: &[u32; CANDIDATES],
    prices: &[f32],
) -> (f32, f32, usize) {
    let (mut d1, mut d2, mut j1) = (f32::INFINITY, f32::INFINITY, usize::MAX);
    for (&j, &c) in columns.iter().zip(costs) {
        let j = j as usize;
        push_two_min(&mut d1, &mut d2, &mut j1, c - prices[j], j);
    }
    (d1, d2, j1)
}

#[inline(always)]
fn merge_lanes<E: ScanValue>(
    row: &[E],
    prices: &[f32],
    full: usize,
    lanes: Lanes,
    candidates: &mut [u32; CANDIDATES],
) -> TwoMin {
    let (mut m1, mut m2, mut i1, mut i2) = lanes;
    for j in full..row.len().min(prices.len()) {
        let d = row[j].widen() - prices[j];
        if d < m1[0] {
            (m2[0], i2[0], m1[0], i1[0]) = (m1[0], i1[0], d, j as u32);
        } else if d < m2[0] {
            (m2[0], i2[0]) = (d, j as u32);
        }
    }
    let (mut d1, mut d2, mut j1) = (f32::INFINITY, f32::INFINITY, usize::MAX);
    let mut threshold = f32::INFINITY;
    for l in 0..LANES {
        for (d, j) in [(m1[l], i1[l]), (m2[l], i2[l])] {
            push_two_min(&mut d1, &mut d2, &mut j1, d, j as usize);
        }
        threshold = threshold.min(m2[l]);
        candidates[2 * l] = i1[l];
        candidates[2 * l + 1] = i2[l];
    }
    TwoMin {
        d1,
        d2,
        j1: if j1 == usize::MAX { 0 } else { j1 },
        threshold,
    }
}

/// `out = [(signed(c) − reference) as f32 for c in cost]` (replacing `out`'s contents) and the
/// smallest and largest `signed(c)`, in one pass over `cost` (NaN-free): the warm start's `f32`
/// copy and its range without a second read of the `f64` costs.
#[must_use]
pub fn narrow_min_max<T: Cost, const MAX: bool>(
    isa: Isa,
    cost: &[T],
    reference: f64,
    out: &mut Vec<f32>,
) -> (f64, f64) {
    out.clear();
    #[cfg(target_arch = "x86_64")]
    {
        if let (true, Some(values)) = (isa >= Isa::Avx2, super::same_type::<T, f64>(cost)) {
            out.reserve_exact(values.len());
            let sign = if MAX { -1.0 } else { 1.0 };
            // SAFETY: AVX2 (and for the wide body AVX-512F) is supported; the bodies write
            // exactly `values.len()` entries into the reserved capacity, which `set_len` then
            // exposes.
            unsafe {
                let ptr = out.as_mut_ptr();
                let range = if isa >= Isa::Avx512 {
                    x86::narrow_min_max_avx512(values, sign, reference, ptr)
                } else {
                    x86::narrow_min_max_avx2(values, sign, reference, ptr)
                };
                out.set_len(values.len());
                return range;
            }
        }
    }
    out.resize(cost.len(), 0.0);
    let _ = isa;
    narrow_min_max_portable::<T, MAX>(cost, reference, out)
}

/// The portable reference body of [`narrow_min_max`] (`out.len() == cost.len()`); branch-free
/// lanes, so that the compiler vectorises it.
#[inline(always)]
#[must_use]
pub fn narrow_min_max_portable<T: Cost, const MAX: bool>(
    cost: &[T],
    reference: f64,
    out: &mut [f32],
) -> (f64, f64) {
    let mut low = [f64::INFINITY; LANES];
    let mut high = [f64::NEG_INFINITY; LANES];
    let mut chunks = cost.chunks_exact(LANES);
    let mut outs = out.chunks_exact_mut(LANES);
    for (c, o) in chunks.by_ref().zip(outs.by_ref()) {
        for l in 0..LANES {
            let x = signed::<T, MAX>(c[l]);
            low[l] = min(low[l], x);
            high[l] = max(high[l], x);
            #[allow(clippy::cast_possible_truncation)]
            {
                o[l] = (x - reference) as f32;
            }
        }
    }
    for (&c, o) in chunks.remainder().iter().zip(outs.into_remainder()) {
        let x = signed::<T, MAX>(c);
        low[0] = min(low[0], x);
        high[0] = max(high[0], x);
        #[allow(clippy::cast_possible_truncation)]
        {
            *o = (x - reference) as f32;
        }
    }
    (
        low.iter().fold(f64::INFINITY, |m, &l| min(m, l)),
        high.iter().fold(f64::NEG_INFINITY, |m, &h| max(m, h)),
    )
}

/// Smallest and largest `signed(c)` over `cost` (NaN-free), in one pass.
#[must_use]
pub fn signed_min_max<T: Cost, const MAX: bool>(isa: Isa, cost: &[T]) -> (f64, f64) {
    let (lo, hi) = min_max(isa, cost);
    if MAX {
        (-hi, -lo)
    } else {
        (lo, hi)
    }
}

/// Smallest and largest entry of `values` (NaN-free), in one pass.
#[inline]
#[must_use]
pub fn min_max<T: Cost>(isa: Isa, values: &[T]) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    {
        if isa >= Isa::Avx2 {
            if let Some(values) = super::same_type::<T, f64>(values) {
                // SAFETY: AVX2 is supported.
                return unsafe { x86::min_max_f64_avx2(values) };
            }
            if let Some(values) = super::same_type::<T, f32>(values) {
                // min and max commute with the exact widening to f64: the same answer in f32.
                // SAFETY (both): AVX2, and for the wide body AVX-512F, is supported.
                let (lo, hi) = unsafe {
                    if isa >= Isa::Avx512 {
                        x86::min_max_f32_avx512(values)
                    } else {
                        x86::min_max_f32_avx2(values)
                    }
                };
                return (f64::from(lo), f64::from(hi));
            }
            // SAFETY: AVX2 is supported.
            return unsafe { x86::min_max_avx2(values) };
        }
    }
    let _ = isa;
    min_max_portable(values)
}

/// [`min_max`] of `f32` values in `f32`, for the vector bodies: 32 lanes of running bounds (a
/// few independent vectors per bound), then the tail. Min and max commute with the exact widening
/// to `f64`, so this is [`min_max_portable`]'s answer.
#[inline(always)]
fn min_max_f32_lanes(values: &[f32]) -> (f32, f32) {
    const W: usize = 4 * LANES;
    let mut low = [f32::INFINITY; W];
    let mut high = [f32::NEG_INFINITY; W];
    let mut full = values.chunks_exact(W);
    for r in full.by_ref() {
        for l in 0..W {
            low[l] = if r[l] < low[l] { r[l] } else { low[l] };
            high[l] = if r[l] > high[l] { r[l] } else { high[l] };
        }
    }
    let fold = |(l, h): (f32, f32), (&a, &b): (&f32, &f32)| (l.min(a), h.max(b));
    let lanes = low
        .iter()
        .zip(&high)
        .fold((f32::INFINITY, f32::NEG_INFINITY), fold);
    full.remainder()
        .iter()
        .zip(full.remainder())
        .fold(lanes, fold)
}

/// The portable reference body of [`min_max`].
#[inline(always)]
#[must_use]
pub fn min_max_portable<T: Cost>(values: &[T]) -> (f64, f64) {
    let mut low = [f64::INFINITY; LANES];
    let mut high = [f64::NEG_INFINITY; LANES];
    let mut full = values.chunks_exact(LANES);
    for r in full.by_ref() {
        for l in 0..LANES {
            low[l] = min(low[l], r[l].to_f64());
            high[l] = max(high[l], r[l].to_f64());
        }
    }
    for &a in full.remainder() {
        low[0] = min(low[0], a.to_f64());
        high[0] = max(high[0], a.to_f64());
    }
    (
        low.iter().fold(f64::INFINITY, |m, &l| min(m, l)),
        high.iter().fold(f64::NEG_INFINITY, |m, &h| max(m, h)),
    )
}

#[inline(always)]
fn max(a: f64, b: f64) -> f64 {
    if a > b {
        a
    } else {
        b
    }
}

#[inline(always)]
fn min(a: f64, b: f64) -> f64 {
    if a < b {
        a
    } else {
        b
    }
}

/// Best column of `row_j − p_j` (ties: the lower column), its value and the second-best value
/// (equal to the best on a tie). Needs `row.len() ≥ 2` and `prices.len() ≥ row.len()`.
#[inline]
#[must_use]
pub fn top_two<T: Cost>(isa: Isa, row: &[T], prices: &[f64]) -> (usize, f64, f64) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY (both): the level's features are supported (`kernels::isa` never exceeds the
        // CPU).
        if isa >= Isa::Avx512 {
            return unsafe { x86::top_two_avx512(row, prices) };
        }
        if isa >= Isa::Avx2 {
            return unsafe { x86::top_two_avx2(row, prices) };
        }
    }
    let _ = isa;
    top_two_portable(row, prices)
}

/// The portable reference body of [`top_two`].
///
/// Branch-free per lane: every lane keeps its best value and column and its second-best value
/// (`second = max(second, min(best, w))`, then `best = max(best, w)`), which vectorises; the
/// lanes are merged at the end.
#[inline(always)]
#[must_use]
pub fn top_two_portable<T: Cost>(row: &[T], prices: &[f64]) -> (usize, f64, f64) {
    top_two_lanes::<T, LANES>(row, prices)
}

/// [`top_two_portable`] with `W` lanes (a multiple of [`LANES`]) for the wider vector bodies:
/// `W / LANES` independent chains of `max` per vector lane instead of one (the same values: the
/// best, its lowest column and the runner-up do not depend on how columns are split into lanes).
/// The tail runs in [`LANES`]-wide steps, then one column at a time, on the first lanes.
#[inline(always)]
#[must_use]
fn top_two_lanes<T: Cost, const W: usize>(row: &[T], prices: &[f64]) -> (usize, f64, f64) {
    let mut best = [f64::NEG_INFINITY; W];
    let mut second = [f64::NEG_INFINITY; W];
    // Column indices as f64 (exact below 2^53), so that the selects stay in vector registers.
    let mut at = [0.0_f64; W];
    let mut column = [0.0_f64; W];
    for (l, c) in column.iter_mut().enumerate() {
        *c = l as f64;
    }
    #[inline(always)]
    fn step(best: &mut f64, second: &mut f64, at: &mut f64, column: f64, w: f64) {
        *second = max(*second, min(*best, w));
        *at = if w > *best { column } else { *at };
        *best = max(*best, w);
    }
    let mut rows = row.chunks_exact(W);
    let mut ps = prices.chunks_exact(W);
    for (r, p) in rows.by_ref().zip(ps.by_ref()) {
        for l in 0..W {
            step(
                &mut best[l],
                &mut second[l],
                &mut at[l],
                column[l],
                r[l].to_f64() - p[l],
            );
            column[l] += W as f64;
        }
    }
    // Here column[l] = (columns done) + l, as the narrower steps need.
    let mut rows = rows.remainder().chunks_exact(LANES);
    let mut ps = ps.remainder().chunks_exact(LANES);
    for (r, p) in rows.by_ref().zip(ps.by_ref()) {
        for l in 0..LANES {
            step(
                &mut best[l],
                &mut second[l],
                &mut at[l],
                column[l],
                r[l].to_f64() - p[l],
            );
            column[l] += LANES as f64;
        }
    }
    for (&a, &p) in rows.remainder().iter().zip(ps.remainder()) {
        step(
            &mut best[0],
            &mut second[0],
            &mut at[0],
            column[0],
            a.to_f64() - p,
        );
        column[0] += 1.0;
    }
    // Merge: the best lane (ties: lower column), then the second best over everything else.
    let mut lane = 0;
    for l in 1..W {
        if best[l] > best[lane] || (best[l] == best[lane] && at[l] < at[lane]) {
            lane = l;
        }
    }
    let mut runner_up = second[lane];
    for (l, &b) in best.iter().enumerate() {
        if l != lane {
            runner_up = max(runner_up, b);
        }
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (at[lane] as usize, best[lane], runner_up)
}

/// `max_j (row_j − v_j)` (`−∞` for an empty row). Needs `v.len() ≥ row.len()`.
#[inline]
#[must_use]
pub fn row_max_reduced<T: Cost>(isa: Isa, row: &[T], v: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY (both): the level's features are supported (`kernels::isa` never exceeds the
        // CPU).
        if isa >= Isa::Avx512 {
            return unsafe { x86::row_max_reduced_avx512(row, v) };
        }
        if isa >= Isa::Avx2 {
            return unsafe { x86::row_max_reduced_avx2(row, v) };
        }
    }
    let _ = isa;
    row_max_reduced_portable(row, v)
}

/// The portable reference body of [`row_max_reduced`].
#[inline(always)]
#[must_use]
pub fn row_max_reduced_portable<T: Cost>(row: &[T], v: &[f64]) -> f64 {
    // Four independent maxima per lane, so that a vector body is not one chain of `max`
    // latencies (a maximum is exact: any grouping gives the same result).
    const WIDE: usize = 4 * LANES;
    let mut high = [f64::NEG_INFINITY; WIDE];
    let mut rows = row.chunks_exact(WIDE);
    let mut vs = v.chunks_exact(WIDE);
    for (r, v) in rows.by_ref().zip(vs.by_ref()) {
        for l in 0..WIDE {
            high[l] = max(high[l], r[l].to_f64() - v[l]);
        }
    }
    let (mut rows, mut vs) = (
        rows.remainder().chunks_exact(LANES),
        vs.remainder().chunks_exact(LANES),
    );
    for (r, v) in rows.by_ref().zip(vs.by_ref()) {
        for l in 0..LANES {
            high[l] = max(high[l], r[l].to_f64() - v[l]);
        }
    }
    for (&a, &vj) in rows.remainder().iter().zip(vs.remainder()) {
        high[0] = max(high[0], a.to_f64() - vj);
    }
    high.iter().fold(f64::NEG_INFINITY, |m, &h| max(m, h))
}

/// An entry that a dual's column pass reads, widened exactly to `f64`: an affinity (`f64`,
/// `f32`) or the auction's 16-bit copy (`u16`).
pub trait ColumnEntry: Copy {
    /// The entry as `f64` (exact).
    fn widen(self) -> f64;
}

impl<T: Cost> ColumnEntry for T {
    #[inline(always)]
    fn widen(self) -> f64 {
        self.to_f64()
    }
}

impl ColumnEntry for u16 {
    #[inline(always)]
    fn widen(self) -> f64 {
        f64::from(self)
    }
}

/// The column pass of a dual, one row at a time: `v_j = max(v_j, row_j − offset)`, or with `NEG`
/// `v_j = max(v_j, offset − row_j)` (the 16-bit copy holds `−A` in units of its step). The
/// compiler vectorises the body for the level's vectors; an element-wise maximum of exact
/// differences has the same bits on every level.
#[inline]
pub fn column_max<E: ColumnEntry, const NEG: bool>(
    isa: Isa,
    row: &[E],
    offset: f64,
    v: &mut [f64],
) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY (both): the level's features are supported.
        if isa >= Isa::Avx512 {
            return unsafe { x86::column_max_avx512::<E, NEG>(row, offset, v) };
        }
        if isa >= Isa::Avx2 {
            return unsafe { x86::column_max_avx2::<E, NEG>(row, offset, v) };
        }
    }
    let _ = isa;
    column_max_portable::<E, NEG>(row, offset, v);
}

/// The portable reference body of [`column_max`].
#[inline(always)]
pub fn column_max_portable<E: ColumnEntry, const NEG: bool>(row: &[E], offset: f64, v: &mut [f64]) {
    for (vj, &a) in v.iter_mut().zip(row) {
        let x = if NEG {
            offset - a.widen()
        } else {
            a.widen() - offset
        };
        *vj = max(*vj, x);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{merge_lanes, ColumnEntry, ScanValue, TwoMin, CANDIDATES, LANES};
    use crate::lap::Cost;
    use std::arch::x86_64::{
        __m256, __m256i, _mm256_add_epi32, _mm256_blendv_ps, _mm256_castps_si256,
        _mm256_castsi256_ps, _mm256_cmp_ps, _mm256_cvtpd_ps, _mm256_loadu_pd, _mm256_loadu_ps,
        _mm256_max_pd, _mm256_min_pd, _mm256_mul_pd, _mm256_set1_epi32, _mm256_set1_pd,
        _mm256_set1_ps, _mm256_setr_epi32, _mm256_storeu_pd, _mm256_storeu_ps, _mm256_storeu_si256,
        _mm256_sub_pd, _mm256_sub_ps, _mm512_add_epi32, _mm512_cmp_ps_mask, _mm512_cvtpd_ps,
        _mm512_loadu_pd, _mm512_loadu_ps, _mm512_mask_blend_epi32, _mm512_mask_blend_ps,
        _mm512_max_pd, _mm512_min_pd, _mm512_mul_pd, _mm512_set1_epi32, _mm512_set1_pd,
        _mm512_set1_ps, _mm512_setr_epi32, _mm512_storeu_pd, _mm512_storeu_si512, _mm512_sub_pd,
        _mm512_sub_ps, _mm_storeu_ps, _CMP_LT_OQ,
    };
    use std::arch::x86_64::{
        __mmask16, _mm512_cmpeq_epi32_mask, _mm512_cmplt_epu32_mask, _mm512_i32gather_ps,
        _mm512_loadu_si512, _mm512_mask_reduce_min_epu32, _mm512_mask_sub_ps,
        _mm512_maskz_loadu_ps, _mm512_max_ps, _mm512_min_ps, _mm512_reduce_max_epu32,
        _mm512_reduce_min_ps, _CMP_EQ_OQ,
    };

    /// [`super::two_min`] with 16-wide AVX-512 vectors, reduced in registers. The last
    /// `n mod 16` columns go through one masked step (the masked-off lanes read `+∞`), so every
    /// lane `l` holds the two lexicographically smallest `(value, column)` of the columns
    /// `≡ l (mod 16)`. `d1`, `j1` and `d2` are the reference's (the two smallest values of the
    /// row, ties to the lower column); the candidates are the 16 lanes' smallest and the
    /// threshold the smallest lane runner-up: a column off the list is at least its lane's
    /// runner-up. Rows of fewer than 16 columns (a lane would be empty) take the portable body.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn two_min_avx512<E: ScanValue>(
        row: &[E],
        prices: &[f32],
        candidates: &mut [u32; CANDIDATES],
    ) -> TwoMin {
        const W: usize = 2 * LANES;
        let n = row.len().min(prices.len());
        if n < W {
            return super::two_min_portable(row, prices, candidates);
        }
        let wide = n / W * W;
        let inf = _mm512_set1_ps(f32::INFINITY);
        let zero = _mm512_set1_epi32(0);
        // Two accumulator sets (blocks of 16 columns alternately), so that two compare-blend
        // chains run at once; merged lane by lane below.
        // Per lane: the smallest value and its first column, and the second smallest value
        // (its column is never needed: the list holds the lanes' smallest).
        let (mut a1, mut a2, mut ai1) = (inf, inf, zero);
        let (mut b1, mut b2, mut bi1) = (inf, inf, zero);
        macro_rules! update {
            ($m1:ident, $m2:ident, $i1:ident, $d:expr, $index:expr) => {{
                let d = $d;
                let below1 = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(d, $m1);
                let below2 = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(d, $m2);
                $m2 = _mm512_mask_blend_ps(below1, _mm512_mask_blend_ps(below2, $m2, d), $m1);
                $m1 = _mm512_mask_blend_ps(below1, $m1, d);
                $i1 = _mm512_mask_blend_epi32(below1, $i1, $index);
            }};
        }
        let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        // SAFETY (all loads below): k + 16 <= wide <= len of both slices.
        let load = |k: usize| {
            _mm512_sub_ps(
                E::load16(row.as_ptr().add(k)),
                _mm512_loadu_ps(prices.as_ptr().add(k)),
            )
        };
        let mut k = 0;
        while k + 2 * W <= wide {
            let index = _mm512_add_epi32(lanes, _mm512_set1_epi32(k as i32));
            update!(a1, a2, ai1, load(k), index);
            let index = _mm512_add_epi32(index, _mm512_set1_epi32(W as i32));
            update!(b1, b2, bi1, load(k + W), index);
            k += 2 * W;
        }
        if k < wide {
            let index = _mm512_add_epi32(lanes, _mm512_set1_epi32(k as i32));
            update!(b1, b2, bi1, load(k), index);
        }
        // Lane-wise merge: the lexicographically smallest (value, column) of both sets (their
        // columns differ, so the order is total) and the second smallest value.
        let a_first = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a1, b1)
            | (_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a1, b1) & _mm512_cmplt_epu32_mask(ai1, bi1));
        let mut m1 = _mm512_mask_blend_ps(a_first, b1, a1);
        let mut i1 = _mm512_mask_blend_epi32(a_first, bi1, ai1);
        let mut m2 = _mm512_min_ps(_mm512_max_ps(a1, b1), _mm512_min_ps(a2, b2));
        if wide < n {
            let live: __mmask16 = (1 << (n - wide)) - 1;
            // SAFETY: the masked loads touch only the `n - wide` entries left in both slices
            // (the masked-off lanes become `+∞`).
            let d = _mm512_mask_sub_ps(
                inf,
                live,
                E::load16_tail(&row[wide..n], live),
                _mm512_maskz_loadu_ps(live, prices.as_ptr().add(wide)),
            );
            let index = _mm512_add_epi32(lanes, _mm512_set1_epi32(wide as i32));
            update!(m1, m2, i1, d, index);
        }
        let d1 = _mm512_reduce_min_ps(m1);
        let at_min = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(m1, _mm512_set1_ps(d1));
        let j1 = _mm512_mask_reduce_min_epu32(at_min, i1);
        // The lane of (d1, j1) contributes its runner-up, every other lane its smallest.
        let first = at_min & _mm512_cmpeq_epi32_mask(i1, _mm512_set1_epi32(j1 as i32));
        let first = first & first.wrapping_neg();
        let d2 = _mm512_reduce_min_ps(_mm512_mask_blend_ps(first, m1, m2));
        let threshold = _mm512_reduce_min_ps(m2);
        _mm512_storeu_si512(candidates.as_mut_ptr().cast(), i1);
        TwoMin {
            d1,
            d2,
            j1: j1 as usize,
            threshold,
        }
    }

    /// [`super::list_two_min`] with one gather of the 16 prices; the same values (minima are
    /// exact; the tie rules are the reference's).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn list_two_min_avx512(
        costs: &[f32; CANDIDATES],
        columns: &[u32; CANDIDATES],
        prices: &[f32],
    ) -> (f32, f32, usize) {
        let j = _mm512_loadu_si512(columns.as_ptr().cast());
        // Every column must index `prices` (the gather does not check).
        if (_mm512_reduce_max_epu32(j) as usize) >= prices.len() {
            return super::list_two_min_portable(costs, columns, prices);
        }
        // SAFETY: every index is below `prices.len()` (checked above).
        let p = _mm512_i32gather_ps::<4>(j, prices.as_ptr());
        let d = _mm512_sub_ps(_mm512_loadu_ps(costs.as_ptr()), p);
        let d1 = _mm512_reduce_min_ps(d);
        let at_min = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(d, _mm512_set1_ps(d1));
        let j1 = _mm512_mask_reduce_min_epu32(at_min, j);
        let first = at_min & _mm512_cmpeq_epi32_mask(j, _mm512_set1_epi32(j1 as i32));
        let first = first & first.wrapping_neg();
        let d2 = _mm512_reduce_min_ps(_mm512_mask_blend_ps(
            first,
            d,
            _mm512_set1_ps(f32::INFINITY),
        ));
        (d1, d2, j1 as usize)
    }

    #[inline(always)]
    unsafe fn select_i(a: __m256i, b: __m256i, mask: __m256) -> __m256i {
        _mm256_castps_si256(_mm256_blendv_ps(
            _mm256_castsi256_ps(a),
            _mm256_castsi256_ps(b),
            mask,
        ))
    }

    /// [`super::two_min`] with explicit 8-wide AVX2 vectors (the reference's lanes).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn two_min_avx2<E: ScanValue>(
        row: &[E],
        prices: &[f32],
        candidates: &mut [u32; CANDIDATES],
    ) -> TwoMin {
        let n = row.len().min(prices.len());
        let full = n / LANES * LANES;
        let mut m1 = _mm256_set1_ps(f32::INFINITY);
        let mut m2 = m1;
        let mut i1 = _mm256_set1_epi32(0);
        let mut i2 = i1;
        let mut index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let step = _mm256_set1_epi32(LANES as i32);
        let mut k = 0;
        while k < full {
            // SAFETY: k + 8 <= full <= len of both slices.
            let d = _mm256_sub_ps(
                E::load8(row.as_ptr().add(k)),
                _mm256_loadu_ps(prices.as_ptr().add(k)),
            );
            let below1 = _mm256_cmp_ps::<_CMP_LT_OQ>(d, m1);
            let below2 = _mm256_cmp_ps::<_CMP_LT_OQ>(d, m2);
            m2 = _mm256_blendv_ps(_mm256_blendv_ps(m2, d, below2), m1, below1);
            i2 = select_i(select_i(i2, index, below2), i1, below1);
            m1 = _mm256_blendv_ps(m1, d, below1);
            i1 = select_i(i1, index, below1);
            index = _mm256_add_epi32(index, step);
            k += LANES;
        }
        let mut lanes = (
            [0.0_f32; LANES],
            [0.0_f32; LANES],
            [0_u32; LANES],
            [0_u32; LANES],
        );
        _mm256_storeu_ps(lanes.0.as_mut_ptr(), m1);
        _mm256_storeu_ps(lanes.1.as_mut_ptr(), m2);
        _mm256_storeu_si256(lanes.2.as_mut_ptr().cast(), i1);
        _mm256_storeu_si256(lanes.3.as_mut_ptr().cast(), i2);
        merge_lanes(row, prices, full, lanes, candidates)
    }

    /// [`super::min_max`] of `f64` values with two 4-lane accumulators (min and max are exact,
    /// so any order gives the reference's answer).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn min_max_f64_avx2(values: &[f64]) -> (f64, f64) {
        let full = values.len() / 8 * 8;
        let (mut lo_a, mut lo_b) = (_mm256_set1_pd(f64::INFINITY), _mm256_set1_pd(f64::INFINITY));
        let (mut hi_a, mut hi_b) = (
            _mm256_set1_pd(f64::NEG_INFINITY),
            _mm256_set1_pd(f64::NEG_INFINITY),
        );
        let mut k = 0;
        while k < full {
            // SAFETY: k + 8 <= full <= values.len().
            let a = _mm256_loadu_pd(values.as_ptr().add(k));
            let b = _mm256_loadu_pd(values.as_ptr().add(k + 4));
            lo_a = _mm256_min_pd(a, lo_a);
            lo_b = _mm256_min_pd(b, lo_b);
            hi_a = _mm256_max_pd(a, hi_a);
            hi_b = _mm256_max_pd(b, hi_b);
            k += 8;
        }
        let (mut lo, mut hi) = ([0.0_f64; 4], [0.0_f64; 4]);
        _mm256_storeu_pd(lo.as_mut_ptr(), _mm256_min_pd(lo_a, lo_b));
        _mm256_storeu_pd(hi.as_mut_ptr(), _mm256_max_pd(hi_a, hi_b));
        let low = lo.iter().fold(f64::INFINITY, |l, &x| l.min(x));
        let high = hi.iter().fold(f64::NEG_INFINITY, |h, &x| h.max(x));
        values[full..]
            .iter()
            .fold((low, high), |(l, h), &x| (l.min(x), h.max(x)))
    }

    /// [`super::min_max_f32_lanes`] compiled for AVX2 (min and max are exact: the reference's
    /// answer).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn min_max_f32_avx2(values: &[f32]) -> (f32, f32) {
        super::min_max_f32_lanes(values)
    }

    /// [`super::min_max_f32_lanes`] compiled for AVX-512 (the reference's answer).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn min_max_f32_avx512(values: &[f32]) -> (f32, f32) {
        super::min_max_f32_lanes(values)
    }

    /// [`super::column_max_portable`] compiled for AVX2 (element-wise: same results).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn column_max_avx2<E: ColumnEntry, const NEG: bool>(
        row: &[E],
        offset: f64,
        v: &mut [f64],
    ) {
        super::column_max_portable::<E, NEG>(row, offset, v);
    }

    /// [`super::column_max_portable`] compiled for AVX-512 (element-wise: same results).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn column_max_avx512<E: ColumnEntry, const NEG: bool>(
        row: &[E],
        offset: f64,
        v: &mut [f64],
    ) {
        super::column_max_portable::<E, NEG>(row, offset, v);
    }

    /// [`super::min_max_portable`] compiled for AVX2 (same operations: same results).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn min_max_avx2<T: Cost>(values: &[T]) -> (f64, f64) {
        super::min_max_portable(values)
    }

    /// [`super::narrow_min_max`] of `f64` costs (`sign` = `±1`, the minimisation's sign),
    /// 4 lanes: `out[k] = (sign·values[k] − reference) as f32`, and the range of `sign·values`.
    /// Min, max, the exact negation and the rounded subtraction and narrowing are the reference's
    /// operations, so the results are the same.
    ///
    /// # Safety
    /// AVX2; `out` valid for `values.len()` writes.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn narrow_min_max_avx2(
        values: &[f64],
        sign: f64,
        reference: f64,
        out: *mut f32,
    ) -> (f64, f64) {
        let full = values.len() / 4 * 4;
        let (s, r) = (_mm256_set1_pd(sign), _mm256_set1_pd(reference));
        let mut lo = _mm256_set1_pd(f64::INFINITY);
        let mut hi = _mm256_set1_pd(f64::NEG_INFINITY);
        let mut k = 0;
        while k < full {
            // SAFETY: k + 4 <= full <= values.len(); out has room for values.len().
            let x = _mm256_mul_pd(_mm256_loadu_pd(values.as_ptr().add(k)), s);
            lo = _mm256_min_pd(x, lo);
            hi = _mm256_max_pd(x, hi);
            _mm_storeu_ps(out.add(k), _mm256_cvtpd_ps(_mm256_sub_pd(x, r)));
            k += 4;
        }
        let (mut l, mut h) = ([0.0_f64; 4], [0.0_f64; 4]);
        _mm256_storeu_pd(l.as_mut_ptr(), lo);
        _mm256_storeu_pd(h.as_mut_ptr(), hi);
        finish(values, full, sign, reference, out, l, h)
    }

    /// [`narrow_min_max_avx2`] with 8-lane AVX-512 vectors (same results).
    ///
    /// # Safety
    /// AVX-512F; `out` valid for `values.len()` writes.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn narrow_min_max_avx512(
        values: &[f64],
        sign: f64,
        reference: f64,
        out: *mut f32,
    ) -> (f64, f64) {
        let full = values.len() / 8 * 8;
        let (s, r) = (_mm512_set1_pd(sign), _mm512_set1_pd(reference));
        let mut lo = _mm512_set1_pd(f64::INFINITY);
        let mut hi = _mm512_set1_pd(f64::NEG_INFINITY);
        let mut k = 0;
        while k < full {
            // SAFETY: k + 8 <= full <= values.len(); out has room for values.len().
            let x = _mm512_mul_pd(_mm512_loadu_pd(values.as_ptr().add(k)), s);
            lo = _mm512_min_pd(x, lo);
            hi = _mm512_max_pd(x, hi);
            _mm256_storeu_ps(out.add(k), _mm512_cvtpd_ps(_mm512_sub_pd(x, r)));
            k += 8;
        }
        let (mut l, mut h) = ([0.0_f64; 8], [0.0_f64; 8]);
        _mm512_storeu_pd(l.as_mut_ptr(), lo);
        _mm512_storeu_pd(h.as_mut_ptr(), hi);
        finish(values, full, sign, reference, out, l, h)
    }

    /// The scalar tail `full..` of the narrowing bodies and the fold of their lanes.
    #[inline(always)]
    unsafe fn finish<const W: usize>(
        values: &[f64],
        full: usize,
        sign: f64,
        reference: f64,
        out: *mut f32,
        l: [f64; W],
        h: [f64; W],
    ) -> (f64, f64) {
        let mut low = l.iter().fold(f64::INFINITY, |m, &x| m.min(x));
        let mut high = h.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
        for (k, &v) in values.iter().enumerate().skip(full) {
            let x = v * sign;
            low = low.min(x);
            high = high.max(x);
            #[allow(clippy::cast_possible_truncation)]
            // SAFETY: k < values.len(); out has room for values.len().
            out.add(k).write((x - reference) as f32);
        }
        (low, high)
    }

    /// Costs read as `f64` vectors (`f32` widened exactly) by the quantising bodies.
    pub(super) trait Widened: Cost {
        /// Eight values from `p` (AVX-512F).
        unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m512d;
        /// Four values from `p` (AVX).
        unsafe fn load4(p: *const Self) -> std::arch::x86_64::__m256d;
    }

    impl Widened for f64 {
        #[inline(always)]
        unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m512d {
            _mm512_loadu_pd(p)
        }
        #[inline(always)]
        unsafe fn load4(p: *const Self) -> std::arch::x86_64::__m256d {
            _mm256_loadu_pd(p)
        }
    }

    impl Widened for f32 {
        #[inline(always)]
        unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m512d {
            std::arch::x86_64::_mm512_cvtps_pd(_mm256_loadu_ps(p))
        }
        #[inline(always)]
        unsafe fn load4(p: *const Self) -> std::arch::x86_64::__m256d {
            std::arch::x86_64::_mm256_cvtps_pd(std::arch::x86_64::_mm_loadu_ps(p))
        }
    }

    /// [`super::quantise_row_portable`] of `f64` (or exactly widened `f32`) costs, 16 entries per step: the same
    /// operations (exact sign, rounded subtraction, exact power-of-two scale, clamp, conversion
    /// to the nearest integer, ties to even, under the default rounding mode), the same bits.
    ///
    /// # Safety
    /// AVX-512F; `dst.len() == row.len()`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn quantise_row_avx512<T: Widened>(
        row: &[T],
        sign: f64,
        low: f64,
        scale: f64,
        dst: &mut [u16],
    ) {
        use std::arch::x86_64::{
            _mm256_storeu_si256, _mm512_castsi256_si512, _mm512_cvtepi32_epi16, _mm512_cvtpd_epi32,
            _mm512_inserti64x4,
        };
        let n = row.len().min(dst.len());
        let full = n / 16 * 16;
        let (s, l, f, top) = (
            _mm512_set1_pd(sign),
            _mm512_set1_pd(low),
            _mm512_set1_pd(scale),
            _mm512_set1_pd(super::Q_MAX),
        );
        let q = |k: usize| {
            let x = _mm512_mul_pd(T::load8(row.as_ptr().add(k)), s);
            _mm512_cvtpd_epi32(_mm512_min_pd(_mm512_mul_pd(_mm512_sub_pd(x, l), f), top))
        };
        let mut k = 0;
        while k < full {
            // SAFETY: k + 16 <= full <= both lengths.
            let both = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(q(k)), q(k + 8));
            _mm256_storeu_si256(dst.as_mut_ptr().add(k).cast(), _mm512_cvtepi32_epi16(both));
            k += 16;
        }
        super::quantise_row_portable(&row[full..n], sign, low, scale, &mut dst[full..n]);
    }

    /// [`quantise_row_avx512`] with 4-lane AVX2 vectors (same bits).
    ///
    /// # Safety
    /// AVX2; `dst.len() == row.len()`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn quantise_row_avx2<T: Widened>(
        row: &[T],
        sign: f64,
        low: f64,
        scale: f64,
        dst: &mut [u16],
    ) {
        use std::arch::x86_64::{_mm256_cvtpd_epi32, _mm_packus_epi32, _mm_storeu_si128};
        let n = row.len().min(dst.len());
        let full = n / 8 * 8;
        let (s, l, f, top) = (
            _mm256_set1_pd(sign),
            _mm256_set1_pd(low),
            _mm256_set1_pd(scale),
            _mm256_set1_pd(super::Q_MAX),
        );
        let q = |k: usize| {
            let x = _mm256_mul_pd(T::load4(row.as_ptr().add(k)), s);
            _mm256_cvtpd_epi32(_mm256_min_pd(_mm256_mul_pd(_mm256_sub_pd(x, l), f), top))
        };
        let mut k = 0;
        while k < full {
            // SAFETY: k + 8 <= full <= both lengths; the values are in 0..=65535, which the
            // unsigned saturating pack keeps.
            _mm_storeu_si128(
                dst.as_mut_ptr().add(k).cast(),
                _mm_packus_epi32(q(k), q(k + 4)),
            );
            k += 8;
        }
        super::quantise_row_portable(&row[full..n], sign, low, scale, &mut dst[full..n]);
    }

    /// [`super::top_two_lanes`] compiled for AVX2, 16 lanes (same results).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn top_two_avx2<T: Cost>(row: &[T], prices: &[f64]) -> (usize, f64, f64) {
        super::top_two_lanes::<T, 16>(row, prices)
    }

    /// [`super::top_two_lanes`] compiled for AVX-512, 32 lanes (same results).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn top_two_avx512<T: Cost>(row: &[T], prices: &[f64]) -> (usize, f64, f64) {
        super::top_two_lanes::<T, 32>(row, prices)
    }

    /// [`super::row_max_reduced_portable`] compiled for AVX2 (same results).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn row_max_reduced_avx2<T: Cost>(row: &[T], v: &[f64]) -> f64 {
        super::row_max_reduced_portable(row, v)
    }

    /// [`super::row_max_reduced_portable`] compiled for AVX-512 (its 8 lanes in one vector; a
    /// maximum is exact: same results).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn row_max_reduced_avx512<T: Cost>(row: &[T], v: &[f64]) -> f64 {
        super::row_max_reduced_portable(row, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The levels this CPU runs.
    fn levels() -> impl Iterator<Item = Isa> {
        [Isa::Portable, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|&isa| isa <= Isa::detect())
    }

    /// xorshift values in `0..modulus`, divided by `scale` (coarse values make ties).
    fn values(n: usize, seed: u64, modulus: u64, scale: f64) -> Vec<f64> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % modulus) as f64 / scale
            })
            .collect()
    }

    const LENGTHS: [usize; 14] = [2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 1000];

    /// `two_min` on every level: the two smallest values and the first arg-min of a sort, the
    /// threshold a lower bound on every column left off the candidate list.
    #[test]
    fn two_min_bodies_match_a_sort() {
        for (seed, n) in LENGTHS.into_iter().enumerate() {
            for modulus in [1000, 7] {
                let row: Vec<f32> = values(n, seed as u64, modulus, 10.0)
                    .iter()
                    .map(|&v| v as f32)
                    .collect();
                let prices: Vec<f32> = values(n, seed as u64 + 50, modulus, 10.0)
                    .iter()
                    .map(|&v| v as f32)
                    .collect();
                let d: Vec<f32> = row.iter().zip(&prices).map(|(c, p)| c - p).collect();
                let mut sorted: Vec<(f32, usize)> = d.iter().copied().zip(0..).collect();
                sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                let mut reference = [0_u32; CANDIDATES];
                let want = two_min_portable(&row, &prices, &mut reference);
                assert_eq!(
                    (want.d1, want.j1, want.d2),
                    (sorted[0].0, sorted[0].1, sorted[1].0)
                );
                for isa in levels() {
                    let mut cand = [0_u32; CANDIDATES];
                    let got = two_min(isa, &row, &prices, &mut cand);
                    assert_eq!(
                        (got.d1, got.d2, got.j1),
                        (want.d1, want.d2, want.j1),
                        "{isa:?} n={n}"
                    );
                    // Lane layouts differ (AVX-512 keeps the smallest of 16 lanes), so the lists
                    // and thresholds may too; each must be a valid bound.
                    for (j, &dj) in d.iter().enumerate() {
                        if !cand.contains(&(j as u32)) {
                            assert!(dj >= got.threshold, "{isa:?} n={n} column {j}");
                        }
                    }
                    if isa <= Isa::Avx2 {
                        assert_eq!((got, cand), (want, reference), "{isa:?} n={n}");
                    }
                }
            }
        }
    }

    /// `list_two_min` on every level equals the reference (a `push_two_min` loop) and a sort,
    /// with ties, repeated columns (ties then go to the lower column, the second value is the
    /// repeated one) and lists drawn from rows of any length.
    #[test]
    fn list_two_min_bodies_match_the_reference_and_a_sort() {
        for (seed, n) in LENGTHS.into_iter().enumerate() {
            for modulus in [1000, 3] {
                let prices: Vec<f32> = values(n, seed as u64 + 7, modulus, 10.0)
                    .iter()
                    .map(|&v| v as f32)
                    .collect();
                let draws = values(2 * CANDIDATES, seed as u64 + 11, 1 << 20, 1.0);
                let costs: [f32; CANDIDATES] =
                    std::array::from_fn(|k| (draws[k] as u64 % modulus) as f32 / 10.0);
                // Columns drawn with repetition (lists of short rows repeat columns).
                let columns: [u32; CANDIDATES] =
                    std::array::from_fn(|k| (draws[CANDIDATES + k] as u64 % n as u64) as u32);
                let mut sorted: Vec<(f32, u32)> = costs
                    .iter()
                    .zip(&columns)
                    .map(|(&c, &j)| (c - prices[j as usize], j))
                    .collect();
                sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                let want = list_two_min_portable(&costs, &columns, &prices);
                assert_eq!(want, (sorted[0].0, sorted[1].0, sorted[0].1 as usize));
                for isa in levels() {
                    assert_eq!(
                        list_two_min(isa, &costs, &columns, &prices),
                        want,
                        "{isa:?} n={n} modulus={modulus}"
                    );
                }
            }
        }
    }

    /// `top_two` and `row_max_reduced` on every level equal a naive scan (ties, tails, `f32`).
    #[test]
    fn top_two_and_row_max_bodies_match_a_naive_scan() {
        fn naive(row: &[f64], prices: &[f64]) -> (usize, f64, f64) {
            let w: Vec<f64> = row.iter().zip(prices).map(|(a, p)| a - p).collect();
            let mut best = 0;
            for j in 1..w.len() {
                if w[j] > w[best] {
                    best = j;
                }
            }
            let second = w
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != best)
                .fold(f64::NEG_INFINITY, |m, (_, &v)| m.max(v));
            (best, w[best], second)
        }
        for (seed, n) in LENGTHS.into_iter().enumerate() {
            // Coarse values: ties, and repeated maxima.
            let row = values(n, seed as u64, 9, 4.0);
            let prices = values(n, seed as u64 + 100, 1000, 1000.0);
            let narrow: Vec<f32> = row.iter().map(|&v| v as f32).collect();
            let want = naive(&row, &prices);
            for isa in levels() {
                assert_eq!(top_two(isa, &row, &prices), want, "{isa:?} n={n}");
                assert_eq!(top_two(isa, &narrow, &prices), want, "{isa:?} n={n} f32");
                assert_eq!(row_max_reduced(isa, &row, &prices), want.1, "{isa:?} n={n}");
                assert_eq!(
                    row_max_reduced(isa, &narrow, &prices),
                    want.1,
                    "{isa:?} n={n}"
                );
                let flat = vec![1.0; n];
                assert_eq!(top_two(isa, &flat, &vec![0.0; n]), (0, 1.0, 1.0));
            }
        }
    }

    /// `min_max` and `signed_min_max` on every level equal a fold, for `f64` and `f32`.
    #[test]
    fn min_max_bodies_match_a_fold() {
        for (seed, n) in LENGTHS.into_iter().chain([0, 1]).enumerate() {
            let v: Vec<f64> = values(n, seed as u64, 2001, 1.0)
                .iter()
                .map(|x| x - 1000.0)
                .collect();
            let narrow: Vec<f32> = v.iter().map(|&x| x as f32).collect();
            let want = v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
                    (l.min(x), h.max(x))
                });
            for isa in levels() {
                assert_eq!(min_max(isa, &v), want, "{isa:?} n={n}");
                assert_eq!(min_max(isa, &narrow), want, "{isa:?} n={n} f32");
                assert_eq!(signed_min_max::<f64, false>(isa, &v), want);
                assert_eq!(signed_min_max::<f64, true>(isa, &v), (-want.1, -want.0));
            }
        }
    }

    /// `narrow_min_max` on every level: the copy and the range of a plain loop, both senses.
    #[test]
    fn narrow_min_max_bodies_match_a_loop() {
        for (seed, n) in LENGTHS.into_iter().chain([0, 1]).enumerate() {
            let v: Vec<f64> = values(n, seed as u64, 2001, 7.0)
                .iter()
                .map(|x| x - 100.0)
                .collect();
            for isa in levels() {
                let mut out = vec![9.0; 3];
                let got = narrow_min_max::<f64, false>(isa, &v, 2.5, &mut out);
                let want: Vec<f32> = v.iter().map(|&x| (x - 2.5) as f32).collect();
                assert_eq!((got, &out), (min_max_portable(&v), &want), "{isa:?} n={n}");
                let got = narrow_min_max::<f64, true>(isa, &v, 2.5, &mut out);
                let want: Vec<f32> = v.iter().map(|&x| (-x - 2.5) as f32).collect();
                let (lo, hi) = min_max_portable(&v);
                assert_eq!((got, &out), ((-hi, -lo), &want), "{isa:?} n={n} max");
            }
        }
    }

    /// `two_min` on 16- and 8-bit rows: on every level the bits of the scan of the same row
    /// widened to `f32` (the reference), including the candidates up to AVX2.
    #[test]
    fn two_min_on_quantised_rows_is_the_scan_of_the_widened_row() {
        for (seed, n) in LENGTHS.into_iter().enumerate() {
            for modulus in [65536, 256, 5] {
                let raw = values(n, seed as u64 + 3, modulus, 1.0);
                let fine: Vec<u16> = raw.iter().map(|&v| v as u16).collect();
                let coarse: Vec<u8> = raw.iter().map(|&v| (v as u64 % 256) as u8).collect();
                let prices: Vec<f32> = values(n, seed as u64 + 9, 4000, 0.37)
                    .iter()
                    .map(|&v| v as f32 - 3000.0)
                    .collect();
                let wide_fine: Vec<f32> = fine.iter().map(|&u| f32::from(u)).collect();
                let wide_coarse: Vec<f32> = coarse.iter().map(|&u| f32::from(u)).collect();
                for isa in levels() {
                    for (want_row, got) in [
                        (&wide_fine, {
                            let mut c = [0; CANDIDATES];
                            (two_min(isa, &fine, &prices, &mut c), c)
                        }),
                        (&wide_coarse, {
                            let mut c = [0; CANDIDATES];
                            (two_min(isa, &coarse, &prices, &mut c), c)
                        }),
                    ] {
                        let mut cand = [0; CANDIDATES];
                        let want = two_min(isa, want_row.as_slice(), &prices, &mut cand);
                        assert_eq!(got, (want, cand), "{isa:?} n={n} modulus={modulus}");
                        let mut reference = [0; CANDIDATES];
                        let portable = two_min_portable(want_row, &prices, &mut reference);
                        assert_eq!(
                            (got.0.d1, got.0.d2, got.0.j1),
                            (portable.d1, portable.d2, portable.j1),
                            "{isa:?} n={n}"
                        );
                    }
                }
            }
        }
    }

    /// `quantise_rows` on every level: the portable body's bits, for `f64` and `f32` costs, both
    /// senses, rows whose ranges grow (the step doubles, earlier rows re-rounded), constant rows
    /// and tails; every row's minimum at 0, every value within a step of its cost (half a step,
    /// plus at most half a step for all doublings together), the step the smallest power of two
    /// that fits the widest row, and the matrix's range.
    #[test]
    fn quantise_rows_bodies_match_and_bound_the_costs() {
        fn check<T: Cost, const MAX: bool>(cost: &[T], n: usize, what: &str) {
            let mut want = Vec::new();
            let q = quantise_rows::<T, MAX>(Isa::Portable, cost, n, &mut want);
            for isa in levels() {
                let mut got = vec![7; 3];
                let r = quantise_rows::<T, MAX>(isa, cost, n, &mut got);
                assert_eq!((r, &got), (q, &want), "{isa:?} {what}");
            }
            let sign = if MAX { -1.0 } else { 1.0 };
            let (mut lo, mut hi, mut widest) = (f64::INFINITY, f64::NEG_INFINITY, 0.0_f64);
            let mut low_sum = 0.0;
            assert_eq!(q.step, 2.0_f64.powi(q.step.log2().round() as i32), "{what}");
            for i in 0..n {
                let row: Vec<f64> = cost[i * n..(i + 1) * n]
                    .iter()
                    .map(|c| c.to_f64() * sign)
                    .collect();
                let low = row.iter().copied().fold(f64::INFINITY, f64::min);
                let high = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                (lo, hi, widest) = (lo.min(low), hi.max(high), widest.max(high - low));
                low_sum += low;
                let us = &want[i * n..(i + 1) * n];
                assert_eq!(us.iter().min(), Some(&0), "{what} row {i}");
                for (&x, &u) in row.iter().zip(us) {
                    let err = (x - low - q.step * f64::from(u)).abs();
                    assert!(err <= q.step * (1.0 + 1e-12), "{what} row {i}: {err}");
                }
            }
            assert_eq!((q.lo, q.hi, q.low_sum), (lo, hi, low_sum), "{what}");
            if widest > 0.0 {
                assert!(
                    widest <= 65535.0 * q.step && widest > 65535.0 * q.step / 2.0,
                    "{what}"
                );
            }
        }
        for (seed, n) in [1_usize, 2, 7, 16, 17, 33, 40, 100].into_iter().enumerate() {
            let base = values(n * n, seed as u64 + 21, 1 << 30, 1e3);
            // Ranges that grow with the row (doubling), shrink, or vanish (constant rows).
            let grow: Vec<f64> = base
                .iter()
                .enumerate()
                .map(|(k, &v)| v * 1.7_f64.powi((k / n) as i32) - 5e5)
                .collect();
            let shrink: Vec<f64> = base
                .iter()
                .enumerate()
                .map(|(k, &v)| v / (1.0 + (k / n) as f64))
                .collect();
            let constant: Vec<f64> = base
                .iter()
                .enumerate()
                .map(|(k, &v)| if (k / n) % 3 == 1 { 4.25 } else { v })
                .collect();
            for (name, c) in [("grow", grow), ("shrink", shrink), ("constant", constant)] {
                let what = format!("{name} n={n}");
                check::<f64, false>(&c, n, &what);
                check::<f64, true>(&c, n, &what);
                let c32: Vec<f32> = c.iter().map(|&v| v as f32).collect();
                check::<f32, false>(&c32, n, &what);
                check::<f32, true>(&c32, n, &what);
            }
        }
    }

    #[test]
    fn coarsen_rounds_to_eight_bits() {
        let fine = [0_u16, 127, 128, 383, 384, 65407, 65408, 65535];
        let mut out = vec![1; 2];
        coarsen(&fine, &mut out);
        assert_eq!(out, [0, 0, 1, 1, 2, 255, 255, 255]);
    }

    #[test]
    fn column_max_is_elementwise() {
        let row = [1.0, 5.0, -2.0];
        let mut v = [0.0, 0.0, f64::NEG_INFINITY];
        column_max::<f64, false>(Isa::Portable, &row, 2.0, &mut v);
        assert_eq!(v, [0.0, 3.0, -4.0]);
    }

    /// `column_max` on `f64` and `f32` rows and, negated, on 16-bit rows, on every level: the
    /// element-wise maximum of a plain loop, bit for bit, at every length's vector tail.
    #[test]
    fn column_max_bodies_match_a_loop() {
        for (seed, n) in LENGTHS.into_iter().chain([0, 1]).enumerate() {
            let row: Vec<f64> = values(n, seed as u64, 2001, 3.0)
                .iter()
                .map(|x| x - 30.0)
                .collect();
            let narrow: Vec<f32> = row.iter().map(|&x| x as f32).collect();
            let q: Vec<u16> = row.iter().map(|&x| (x.abs() * 997.0) as u16).collect();
            // Half the columns start above what the row gives them, half below.
            let start: Vec<f64> = (0..n)
                .map(|j| if j % 2 == 0 { f64::NEG_INFINITY } else { 1.5 })
                .collect();
            let (u, d) = (0.25, 1234.5_f32);
            let fold = |f: &dyn Fn(usize) -> f64| -> Vec<f64> {
                start
                    .iter()
                    .enumerate()
                    .map(|(j, &s)| s.max(f(j)))
                    .collect()
            };
            let want_wide = fold(&|j| row[j] - u);
            let want_narrow = fold(&|j| f64::from(narrow[j]) - u);
            let want_q = fold(&|j| f64::from(d) - f64::from(q[j]));
            for isa in levels() {
                let mut got = start.clone();
                column_max::<f64, false>(isa, &row, u, &mut got);
                assert_eq!(got, want_wide, "{isa:?} n={n} f64");
                let mut got = start.clone();
                column_max::<f32, false>(isa, &narrow, u, &mut got);
                assert_eq!(got, want_narrow, "{isa:?} n={n} f32");
                let mut got = start.clone();
                column_max::<u16, true>(isa, &q, f64::from(d), &mut got);
                assert_eq!(got, want_q, "{isa:?} n={n} u16");
            }
        }
    }
}
