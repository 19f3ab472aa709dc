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
    use super::{body, scan_body, Narrow, RawElement};

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
