//! The cross-spectrum of the shift matcher by FFT ([`crate::matching::shift`]):
//! `acc += conj(x)·y` element by element, on split real and imaginary parts.
//!
//! One portable body, compiled again for AVX2 and AVX-512: the same multiplications and
//! additions in the same order (no FMA contraction), so every level computes the same bits.

use super::Isa;

/// `acc += conj(x)·y` for every element: `acc.0 += x.0·y.0 + x.1·y.1`,
/// `acc.1 += x.0·y.1 − x.1·y.0` (real parts first, imaginary second).
///
/// # Panics
/// If the six slices differ in length.
pub fn conj_mul_add(
    isa: Isa,
    acc: (&mut [f64], &mut [f64]),
    x: (&[f64], &[f64]),
    y: (&[f64], &[f64]),
) {
    let n = acc.0.len();
    assert!(
        [acc.1.len(), x.0.len(), x.1.len(), y.0.len(), y.1.len()]
            .iter()
            .all(|&l| l == n),
        "conj_mul_add: slices of different lengths"
    );
    #[cfg(target_arch = "x86_64")]
    {
        match isa {
            // SAFETY: `kernels::isa` never reports a level the CPU lacks.
            Isa::Avx512 => return unsafe { conj_mul_add_avx512(acc, x, y) },
            // SAFETY: as above.
            Isa::Avx2 => return unsafe { conj_mul_add_avx2(acc, x, y) },
            Isa::Portable => {}
        }
    }
    let _ = isa;
    conj_mul_add_portable(acc, x, y);
}

/// The portable reference body of [`conj_mul_add`].
#[inline(always)]
pub fn conj_mul_add_portable(
    (ar, ai): (&mut [f64], &mut [f64]),
    (xr, xi): (&[f64], &[f64]),
    (yr, yi): (&[f64], &[f64]),
) {
    for k in 0..ar
        .len()
        .min(ai.len())
        .min(xr.len())
        .min(xi.len())
        .min(yr.len())
        .min(yi.len())
    {
        ar[k] += xr[k] * yr[k] + xi[k] * yi[k];
        ai[k] += xr[k] * yi[k] - xi[k] * yr[k];
    }
}

/// [`conj_mul_add_portable`] compiled for AVX2 (the same operations: the same bits).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn conj_mul_add_avx2(
    acc: (&mut [f64], &mut [f64]),
    x: (&[f64], &[f64]),
    y: (&[f64], &[f64]),
) {
    conj_mul_add_portable(acc, x, y);
}

/// [`conj_mul_add_portable`] compiled for AVX-512 (the same operations: the same bits).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn conj_mul_add_avx512(
    acc: (&mut [f64], &mut [f64]),
    x: (&[f64], &[f64]),
    y: (&[f64], &[f64]),
) {
    conj_mul_add_portable(acc, x, y);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_computes_the_reference_bits() {
        for n in [0, 1, 7, 8, 9, 33, 100] {
            let v = |seed: usize| -> Vec<f64> {
                (0..n)
                    .map(|k| ((k * 7919 + seed * 104_729) % 1000) as f64 / 37.0 - 13.0)
                    .collect()
            };
            let (xr, xi, yr, yi) = (v(1), v(2), v(3), v(4));
            let (mut want_r, mut want_i) = (v(5), v(6));
            conj_mul_add_portable((&mut want_r, &mut want_i), (&xr, &xi), (&yr, &yi));
            for k in 0..n {
                let r0 = v(5)[k] + (xr[k] * yr[k] + xi[k] * yi[k]);
                assert_eq!(want_r[k].to_bits(), r0.to_bits());
            }
            for level in [Isa::Portable, Isa::Avx2, Isa::Avx512] {
                if level > Isa::detect() {
                    continue;
                }
                let (mut r, mut i) = (v(5), v(6));
                conj_mul_add(level, (&mut r, &mut i), (&xr, &xi), (&yr, &yi));
                assert_eq!(r, want_r, "{level:?}");
                assert_eq!(i, want_i, "{level:?}");
            }
        }
    }
}
