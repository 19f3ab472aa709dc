//! Widening and centring of raw input values, `dst[i] = T(f64(src[i]) − mean[i])`: the inner loop
//! of the spatio-semantic baseline's chunks ([`crate::rsm::none`]).
//!
//! One generic body, compiled once per instruction set (AVX-512, AVX2, baseline) so that the
//! compiler vectorises it at the full width. Every operation is element-wise IEEE (an exact
//! widening, one subtraction, one rounding to the working precision), so the bits do not depend
//! on the instruction set.

use super::Isa;

/// A raw input element: widened exactly to `f64`.
pub trait RawElement: Copy + Send + Sync + 'static {
    /// The value as `f64` (exact for `f32` and `f64`).
    fn widen(self) -> f64;
}

impl RawElement for f32 {
    #[inline(always)]
    fn widen(self) -> f64 {
        f64::from(self)
    }
}

impl RawElement for f64 {
    #[inline(always)]
    fn widen(self) -> f64 {
        self
    }
}

/// A working precision: an `f64` value rounded to it.
pub trait Narrow: Copy + Send + Sync + Sized + 'static {
    /// `v` rounded to the working precision (to nearest; may overflow to infinity in `f32`).
    fn narrow(v: f64) -> Self;
}

impl Narrow for f64 {
    #[inline(always)]
    fn narrow(v: f64) -> Self {
        v
    }
}

impl Narrow for f32 {
    #[allow(clippy::cast_possible_truncation)]
    #[inline(always)]
    fn narrow(v: f64) -> Self {
        v as f32
    }
}

/// `dst[i] = T(f64(src[i]) − mean[i])` (`mean` absent: `T(f64(src[i]))`) over the shortest of
/// the slices, on the vector width of `isa` (lowered to what the CPU has).
///
/// # Example
/// ```
/// use semrsm::kernels::{centre::centre, isa};
/// let mut dst = [0.0_f64; 3];
/// centre(isa(), &[1.5_f32, 2.0, -1.0], Some(&[0.5, 0.0, 1.0]), &mut dst);
/// assert_eq!(dst, [1.0, 2.0, -2.0]);
/// ```
pub fn centre<R: RawElement, T: Narrow>(isa: Isa, src: &[R], mean: Option<&[f64]>, dst: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    match isa.min(Isa::detect()) {
        // SAFETY: the CPU has the features (Isa::detect).
        Isa::Avx512 => return unsafe { x86::avx512(src, mean, dst) },
        // SAFETY: as above.
        Isa::Avx2 => return unsafe { x86::avx2(src, mean, dst) },
        Isa::Portable => {}
    }
    body(src, mean, dst);
}

/// Panels of a packed GEMM operand to fill ([`centre_pack`]): `data` holds the panels of `w`
/// rows, each stored step-major (`kc × w`), the rows of the last panel padded with zeros up to
/// a multiple of `pad` (the layout of [`crate::kernels::gemm::Packed`]).
#[derive(Debug)]
pub struct Panels<'a, T> {
    /// The panels, from the first row's.
    pub data: &'a mut [T],
    /// Rows per panel.
    pub w: usize,
    /// The last panel's rows are zero-padded up to a multiple of it.
    pub pad: usize,
}

/// Row `i`, step `p` of `rows` steps per panel row: its index in panels of `w` rows.
#[inline(always)]
fn at(i: usize, p: usize, w: usize, kc: usize) -> usize {
    (i / w) * w * kc + p * w + i % w
}

/// Centre the rows `src` (`kc` steps each: `T(f64(src[i][p]) − mean[p])`, as [`centre`]) straight
/// into the packed panels of every `outs` entry (the same values in each), reading each raw
/// value once. On AVX-512, `f32` input centred to `f64` goes 8 rows × 8 steps at a time through
/// registers (widen, subtract, transpose); the values and so the bits are those of [`centre`]
/// on every instruction set.
///
/// # Panics
/// When a row is shorter than `kc`, `mean` is, or an `outs` entry cannot hold
/// `ceil(src.len() / w)·w·kc` values.
///
/// # Example
/// ```
/// use semrsm::kernels::{centre::{centre_pack, Panels}, isa};
/// let (a, b) = ([1.0_f32, 2.0, 3.0], [4.0_f32, 5.0, 6.0]);
/// let mut data = [9.0_f64; 12]; // one panel of 4 rows (2 padded) × 3 steps
/// let mut outs = [Panels { data: &mut data, w: 4, pad: 4 }];
/// centre_pack(isa(), &[&a, &b], Some(&[1.0, 1.0, 1.0]), 3, &mut outs);
/// assert_eq!(data, [0.0, 3.0, 0.0, 0.0, 1.0, 4.0, 0.0, 0.0, 2.0, 5.0, 0.0, 0.0]);
/// ```
pub fn centre_pack<R: RawElement, T: Narrow>(
    isa: Isa,
    src: &[&[R]],
    mean: Option<&[f64]>,
    kc: usize,
    outs: &mut [Panels<'_, T>],
) {
    let n = src.len();
    assert!(src.iter().all(|r| r.len() >= kc) && mean.is_none_or(|m| m.len() >= kc));
    assert!(outs
        .iter()
        .all(|o| o.w > 0 && o.data.len() >= n.div_ceil(o.w) * o.w * kc));
    // Groups of 8 rows × 8 steps through registers where every panel holds whole groups.
    let mut done = (0, 0);
    #[cfg(target_arch = "x86_64")]
    if isa.min(Isa::detect()) == Isa::Avx512 && outs.iter().all(|o| o.w.is_multiple_of(8)) {
        // SAFETY: the CPU has AVX-512; the sizes were checked above.
        done = unsafe { x86::pack8(src, mean, kc, outs) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = isa;
    let (rows8, steps8) = done;
    pack_body(src, mean, 0..rows8, steps8..kc, kc, outs);
    pack_body(src, mean, rows8..n, 0..kc, kc, outs);
    for o in outs.iter_mut() {
        let live = n % o.w;
        if live == 0 {
            continue;
        }
        let padded = o.w.min(live.next_multiple_of(o.pad.max(1)));
        let base = (n / o.w) * o.w * kc;
        for p in 0..kc {
            o.data[base + p * o.w + live..base + p * o.w + padded].fill(narrow_zero());
        }
    }
}

/// Zero in the working precision.
#[inline(always)]
fn narrow_zero<T: Narrow>() -> T {
    T::narrow(0.0)
}

/// Rows `rows`, steps `steps` of [`centre_pack`], value by value.
fn pack_body<R: RawElement, T: Narrow>(
    src: &[&[R]],
    mean: Option<&[f64]>,
    rows: std::ops::Range<usize>,
    steps: std::ops::Range<usize>,
    kc: usize,
    outs: &mut [Panels<'_, T>],
) {
    for i in rows {
        let row = &src[i][..kc];
        for p in steps.clone() {
            let v = T::narrow(row[p].widen() - mean.map_or(0.0, |m| m[p]));
            for o in outs.iter_mut() {
                o.data[at(i, p, o.w, kc)] = v;
            }
        }
    }
}

/// One row of a scan ([`crate::rsm::scan`]): with `acc`, `acc[i] += f64(row[i]) / n` (one
/// correctly rounded division and addition each, in any vector width the same); returns the
/// largest `|x|` (infinite when a value is infinite or NaN) and whether a value is NaN.
pub fn scan_row<R: RawElement>(
    isa: Isa,
    row: &[R],
    acc: Option<&mut [f64]>,
    n: f64,
) -> (f64, bool) {
    #[cfg(target_arch = "x86_64")]
    match isa.min(Isa::detect()) {
        // SAFETY: the CPU has the features (Isa::detect).
        Isa::Avx512 => return unsafe { x86::scan_avx512(row, acc, n) },
        // SAFETY: as above.
        Isa::Avx2 => return unsafe { x86::scan_avx2(row, acc, n) },
        Isa::Portable => {}
    }
    scan_body(row, acc, n)
}

/// `(Σ e², max |e|)` of a row in `f64`, in eight fixed lanes (the same order on every machine
/// and vector width); with `copy32` (as long as `row`), also each value rounded to `f32`
/// ([`centre`] without a mean) while the row is in cache. A NaN makes the sum NaN; the maximum
/// skips it.
pub fn row_stats<R: RawElement>(isa: Isa, row: &[R], copy32: Option<&mut [f32]>) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    match isa.min(Isa::detect()) {
        // SAFETY: the CPU has the features (Isa::detect).
        Isa::Avx512 => return unsafe { x86::stats_avx512(row, copy32) },
        // SAFETY: as above.
        Isa::Avx2 => return unsafe { x86::stats_avx2(row, copy32) },
        Isa::Portable => {}
    }
    stats_body(row, copy32)
}

/// The loop of [`row_stats`] every instruction set compiles.
#[inline(always)]
fn stats_body<R: RawElement>(row: &[R], copy32: Option<&mut [f32]>) -> (f64, f64) {
    let (mut acc, mut top) = ([0.0_f64; 8], [0.0_f64; 8]);
    let mut chunks = row.chunks_exact(8);
    for chunk in &mut chunks {
        for ((a, t), &e) in acc.iter_mut().zip(top.iter_mut()).zip(chunk) {
            let e = e.widen();
            *a += e * e;
            let m = e.abs();
            if m > *t {
                *t = m;
            }
        }
    }
    let (mut sq, mut max) = (0.0_f64, 0.0_f64);
    for &e in chunks.remainder() {
        let e = e.widen();
        sq += e * e;
        max = max.max(e.abs());
    }
    if let Some(dst) = copy32 {
        body(row, None, dst);
    }
    let lanes = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    (lanes + sq, top.iter().fold(max, |m, &t| m.max(t)))
}

/// The scan loop every instruction set compiles.
#[inline(always)]
fn scan_body<R: RawElement>(row: &[R], acc: Option<&mut [f64]>, n: f64) -> (f64, bool) {
    // The largest |x| as an integer maximum of the bits (ordered as the values for |x| ≥ 0,
    // NaN above +∞): a reduction the compiler vectorises, unlike a float maximum.
    let mut top = 0_u64;
    match acc {
        Some(acc) => {
            for (a, &e) in acc.iter_mut().zip(row) {
                let v = e.widen();
                *a += v / n;
                top = top.max(v.abs().to_bits());
            }
        }
        None => {
            for &e in row {
                top = top.max(e.widen().abs().to_bits());
            }
        }
    }
    let top = f64::from_bits(top);
    (if top.is_nan() { f64::INFINITY } else { top }, top.is_nan())
}

/// The loop every instruction set compiles.
#[inline(always)]
fn body<R: RawElement, T: Narrow>(src: &[R], mean: Option<&[f64]>, dst: &mut [T]) {
    match mean {
        Some(mean) => {
            for ((d, &e), &mu) in dst.iter_mut().zip(src).zip(mean) {
                *d = T::narrow(e.widen() - mu);
            }
        }
        None => {
            for (d, &e) in dst.iter_mut().zip(src) {
                *d = T::narrow(e.widen());
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{body, scan_body, stats_body, Narrow, Panels, RawElement};

    /// [`stats_body`] for AVX-512.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F and DQ.
    #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
    pub(super) unsafe fn stats_avx512<R: RawElement>(
        row: &[R],
        copy32: Option<&mut [f32]>,
    ) -> (f64, f64) {
        stats_body(row, copy32)
    }

    /// [`stats_body`] for AVX2.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn stats_avx2<R: RawElement>(
        row: &[R],
        copy32: Option<&mut [f32]>,
    ) -> (f64, f64) {
        stats_body(row, copy32)
    }

    /// [`scan_body`] for AVX-512.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F and DQ.
    #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
    pub(super) unsafe fn scan_avx512<R: RawElement>(
        row: &[R],
        acc: Option<&mut [f64]>,
        n: f64,
    ) -> (f64, bool) {
        scan_body(row, acc, n)
    }

    /// [`scan_body`] for AVX2.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn scan_avx2<R: RawElement>(
        row: &[R],
        acc: Option<&mut [f64]>,
        n: f64,
    ) -> (f64, bool) {
        scan_body(row, acc, n)
    }

    /// [`super::centre_pack`] for whole groups of 8 rows and 8 steps, `f32` input centred to
    /// `f64` only (else nothing): returns the rows and steps done.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; the sizes must be as [`super::centre_pack`] checks, every
    /// `outs` width a multiple of 8.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn pack8<R: RawElement, T: Narrow>(
        src: &[&[R]],
        mean: Option<&[f64]>,
        kc: usize,
        outs: &mut [Panels<'_, T>],
    ) -> (usize, usize) {
        use std::any::TypeId;
        use std::arch::x86_64::*;
        if TypeId::of::<R>() != TypeId::of::<f32>() || TypeId::of::<T>() != TypeId::of::<f64>() {
            return (0, 0);
        }
        let (groups, blocks) = (src.len() / 8, kc / 8);
        for g in 0..groups {
            let rows: [*const f32; 8] = std::array::from_fn(|r| src[g * 8 + r].as_ptr().cast());
            for blk in 0..blocks {
                let o = blk * 8;
                let mu = mean.map_or(_mm512_setzero_pd(), |m| _mm512_loadu_pd(m.as_ptr().add(o)));
                // Exact widening, one subtraction: the bits of `body`.
                let r: [__m512d; 8] = std::array::from_fn(|i| {
                    _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(rows[i].add(o))), mu)
                });
                let steps = crate::kernels::transpose8x8(r);
                for out in outs.iter_mut() {
                    let dst: *mut f64 = out.data.as_mut_ptr().cast();
                    let base = dst.add(super::at(g * 8, o, out.w, kc));
                    for (q, v) in steps.into_iter().enumerate() {
                        _mm512_storeu_pd(base.add(q * out.w), v);
                    }
                }
            }
        }
        (groups * 8, blocks * 8)
    }

    /// [`body`] for AVX-512.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F and DQ.
    #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
    pub(super) unsafe fn avx512<R: RawElement, T: Narrow>(
        src: &[R],
        mean: Option<&[f64]>,
        dst: &mut [T],
    ) {
        body(src, mean, dst);
    }

    /// [`body`] for AVX2.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2<R: RawElement, T: Narrow>(
        src: &[R],
        mean: Option<&[f64]>,
        dst: &mut [T],
    ) {
        body(src, mean, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `row_stats`: the same bits on every instruction set, equal to the eight-lane definition
    /// (lane `l` sums the squares of entries `l, l + 8, …` in order; the tail after them), the
    /// largest magnitude, and the `f32` copy `e as f32`; `f32` and `f64` rows with and without
    /// a tail of 8, a NaN (the sum NaN, the maximum skipping it).
    #[test]
    fn row_stats_are_the_eight_lane_sums_on_every_isa() {
        fn check<R: RawElement>(row: &[R]) {
            let n = row.len();
            let full = n / 8 * 8;
            let mut lanes = [0.0_f64; 8];
            for (k, e) in row[..full].iter().enumerate() {
                lanes[k % 8] += e.widen() * e.widen();
            }
            let mut sq = 0.0;
            for e in &row[full..] {
                sq += e.widen() * e.widen();
            }
            let l = &lanes;
            let want_sq = (((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))) + sq;
            let want_max = row.iter().fold(0.0_f64, |m, e| m.max(e.widen().abs()));
            #[allow(clippy::cast_possible_truncation)]
            let want_copy: Vec<f32> = row.iter().map(|e| e.widen() as f32).collect();
            for isa in [Isa::Portable, Isa::Avx2, Isa::Avx512] {
                let mut copy = vec![0.0_f32; n];
                let (got_sq, got_max) = row_stats(isa, row, Some(&mut copy));
                assert_eq!(got_sq.to_bits(), want_sq.to_bits(), "{isa:?} n={n}");
                assert_eq!(got_max.to_bits(), want_max.to_bits(), "{isa:?} n={n}");
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&copy), bits(&want_copy), "{isa:?} n={n}");
                assert_eq!(row_stats(isa, row, None).0.to_bits(), want_sq.to_bits());
            }
        }
        let mut state = 0x2545_f491_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            #[allow(clippy::cast_precision_loss)]
            let u = (state >> 11) as f64 / (1_u64 << 53) as f64;
            (u - 0.5) * 1e3
        };
        for n in [0_usize, 1, 7, 8, 9, 16, 49, 100, 2051] {
            let row: Vec<f64> = (0..n).map(|_| next()).collect();
            check(&row);
            #[allow(clippy::cast_possible_truncation)]
            let row32: Vec<f32> = row.iter().map(|&x| x as f32).collect();
            check(&row32);
        }
        let mut row: Vec<f64> = (0..20).map(|_| next()).collect();
        row[11] = f64::NAN;
        for isa in [Isa::Portable, Isa::Avx2, Isa::Avx512] {
            let (sq, max) = row_stats(isa, &row, None);
            assert!(sq.is_nan());
            assert_eq!(
                max,
                row.iter()
                    .filter(|x| !x.is_nan())
                    .fold(0.0_f64, |m, x| m.max(x.abs()))
            );
        }
    }

    /// `centre_pack` against the definition (each value centred by `body`, placed at its
    /// panel position, the last panel's padding zero, nothing past it written) on every
    /// instruction set, for one and two layouts at once, with whole and partial groups of 8
    /// rows and steps.
    fn packs_as_centred<R: RawElement, T: Narrow + PartialEq + std::fmt::Debug>(
        f: fn(f64) -> R,
        bits: fn(T) -> u64,
    ) {
        let sentinel = T::narrow(7.5);
        for &(n, kc) in &[(1_usize, 1_usize), (8, 8), (17, 21), (48, 192), (53, 67)] {
            let rows: Vec<Vec<R>> = (0..n)
                .map(|i| {
                    (0..kc + 3)
                        .map(|p| f(((i * 31 + p * 7) as f64 * 0.37).sin() * 1.0e3 + 0.1))
                        .collect()
                })
                .collect();
            let mean: Vec<f64> = (0..kc).map(|p| (p as f64 * 0.77).cos() * 1.0e-7).collect();
            let src: Vec<&[R]> = rows.iter().map(|r| &r[..]).collect();
            for &(wa, wb, pad) in &[
                (8_usize, 24_usize, 8_usize),
                (8, 48, 16),
                (6, 8, 4),
                (4, 8, 8),
            ] {
                for m in [Some(&mean[..]), None] {
                    let mut want: Vec<Vec<T>> = Vec::new();
                    for &(w, pd) in &[(wa, 1), (wb, pad)] {
                        let mut v = vec![sentinel; n.div_ceil(w) * w * kc + 5];
                        for (i, row) in src.iter().enumerate() {
                            let mut c = vec![sentinel; kc];
                            body(&row[..kc], m, &mut c);
                            for (p, &e) in c.iter().enumerate() {
                                v[at(i, p, w, kc)] = e;
                            }
                        }
                        let live = n % w;
                        if live > 0 {
                            let padded = w.min(live.next_multiple_of(pd));
                            for i in n..n - live + padded {
                                for p in 0..kc {
                                    v[at(i, p, w, kc)] = T::narrow(0.0);
                                }
                            }
                        }
                        want.push(v);
                    }
                    for isa in [Isa::Portable, Isa::Avx2, Isa::Avx512] {
                        let mut a = vec![sentinel; want[0].len()];
                        let mut b = vec![sentinel; want[1].len()];
                        let mut outs = [
                            Panels {
                                data: &mut a,
                                w: wa,
                                pad: 1,
                            },
                            Panels {
                                data: &mut b,
                                w: wb,
                                pad,
                            },
                        ];
                        centre_pack(isa, &src, m, kc, &mut outs);
                        let same =
                            |x: &[T], y: &[T]| x.iter().zip(y).all(|(&p, &q)| bits(p) == bits(q));
                        assert!(same(&a, &want[0]) && same(&b, &want[1]), "{isa:?} {n} {kc}");
                        let mut one = vec![sentinel; want[1].len()];
                        let mut outs = [Panels {
                            data: &mut one,
                            w: wb,
                            pad,
                        }];
                        centre_pack(isa, &src, m, kc, &mut outs);
                        assert!(same(&one, &want[1]), "{isa:?} {n} {kc}");
                    }
                }
            }
        }
    }

    #[test]
    #[allow(clippy::cast_possible_truncation)]
    fn centre_pack_is_centre_in_the_panel_layout_on_every_isa() {
        packs_as_centred::<f32, f64>(|v| v as f32, f64::to_bits);
        packs_as_centred::<f32, f32>(|v| v as f32, |v| u64::from(v.to_bits()));
        packs_as_centred::<f64, f64>(|v| v, f64::to_bits);
        packs_as_centred::<f64, f32>(|v| v, |v| u64::from(v.to_bits()));
    }

    #[test]
    fn every_isa_rounds_as_the_portable_body() {
        // Values whose centred difference is inexact in f64 and overflows f32 at the end.
        let src: Vec<f32> = (0..203)
            .map(|i| (i as f32 * 0.731).sin() * 3.0e4 + f32::EPSILON * i as f32)
            .chain([f32::MAX, -f32::MAX])
            .collect();
        let mean: Vec<f64> = (0..src.len())
            .map(|i| (i as f64 * 0.377).cos() * 1.0e-9 + if i >= 203 { -1e38 } else { 0.1 })
            .collect();
        for isa in [Isa::Portable, Isa::Avx2, Isa::Avx512] {
            for m in [Some(&mean[..]), None] {
                let (mut want, mut got) = (vec![0.0_f64; src.len()], vec![0.0_f64; src.len()]);
                body(&src, m, &mut want);
                centre(isa, &src, m, &mut got);
                assert!(want
                    .iter()
                    .zip(&got)
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
                let (mut want, mut got) = (vec![0.0_f32; src.len()], vec![0.0_f32; src.len()]);
                body(&src, m, &mut want);
                centre(isa, &src, m, &mut got);
                assert!(want
                    .iter()
                    .zip(&got)
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
                assert!(m.is_none() || got[203].is_infinite());
                let wide: Vec<f64> = src.iter().map(|&v| f64::from(v) * 1.5).collect();
                let (mut want, mut got) = (vec![0.0_f64; src.len()], vec![0.0_f64; src.len()]);
                body(&wide, m, &mut want);
                centre(isa, &wide, m, &mut got);
                assert!(want
                    .iter()
                    .zip(&got)
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
            }
        }
        // The scan: the same sums, range and NaN flag on every instruction set.
        let mut with_nan = src.clone();
        with_nan[17] = f32::NAN;
        for row in [&src, &with_nan] {
            let mut want = vec![0.25_f64; row.len()];
            let w = scan_body(row, Some(&mut want), 7.0);
            let top = if row[17].is_nan() {
                f64::INFINITY
            } else {
                f64::from(f32::MAX)
            };
            assert_eq!(w, (top, row[17].is_nan()));
            for isa in [Isa::Portable, Isa::Avx2, Isa::Avx512] {
                let mut got = vec![0.25_f64; row.len()];
                assert_eq!(scan_row(isa, row, Some(&mut got), 7.0), w);
                assert!(want
                    .iter()
                    .zip(&got)
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
                assert_eq!(scan_row(isa, row, None, 7.0), w);
            }
        }
        // The definition, element by element.
        let mut one = [0.0_f64];
        centre(
            crate::kernels::isa(),
            &[0.1_f32],
            Some(&[0.1_f64]),
            &mut one,
        );
        assert_eq!(one[0], f64::from(0.1_f32) - 0.1);
    }
}
