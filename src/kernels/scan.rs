//! Row scans: the smallest reduced cost of a row, and its column.

#[cfg(target_arch = "x86_64")]
use super::same_type;
use super::{signed, Isa};
use crate::lap::Cost;

/// "No column": what [`min_reduced`] returns as the column when nothing compares below `+∞`.
pub const NO_COLUMN: usize = usize::MAX;

/// `(min_j (signed(row[j]) − v[j]), the first j at that minimum)`, the column [`NO_COLUMN`] when
/// no value is below `+∞`. One vectorised pass; every body gives the same answer.
///
/// # Panics
/// If `v` is shorter than `row`.
#[inline]
#[must_use]
pub fn min_reduced<T: Cost, const MAX: bool>(isa: Isa, row: &[T], v: &[f64]) -> (f64, usize) {
    let v = &v[..row.len()];
    #[cfg(target_arch = "x86_64")]
    {
        if isa >= Isa::Avx2 {
            // SAFETY (both calls): AVX2 is supported (`kernels::isa` never exceeds the CPU).
            if let Some(row) = same_type::<T, f64>(row) {
                return unsafe { x86::min_reduced_avx2::<f64, MAX>(row, v) };
            }
            if let Some(row) = same_type::<T, f32>(row) {
                return unsafe { x86::min_reduced_avx2::<f32, MAX>(row, v) };
            }
        }
    }
    let _ = isa;
    min_reduced_portable::<T, MAX>(row, v)
}

/// The portable reference body of [`min_reduced`].
#[must_use]
pub fn min_reduced_portable<T: Cost, const MAX: bool>(row: &[T], v: &[f64]) -> (f64, usize) {
    let mut best = (f64::INFINITY, NO_COLUMN);
    for (j, (&c, &vj)) in row.iter().zip(v).enumerate() {
        let d = signed::<T, MAX>(c) - vj;
        if d < best.0 {
            best = (d, j);
        }
    }
    best
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::lanes::Load;
    use super::{signed, NO_COLUMN};
    use std::arch::x86_64::{
        _mm256_add_epi64, _mm256_blendv_pd, _mm256_castpd_si256, _mm256_castsi256_pd,
        _mm256_cmp_pd, _mm256_loadu_pd, _mm256_set1_epi64x, _mm256_set1_pd, _mm256_setr_epi64x,
        _mm256_storeu_pd, _mm256_storeu_si256, _mm256_sub_pd, _mm256_xor_pd, _CMP_LT_OQ,
    };

    /// AVX2 body of [`super::min_reduced`]: two independent 4-lane accumulators of
    /// (value, index); the first index at the minimum wins.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn min_reduced_avx2<C: Load, const MAX: bool>(
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
        let mut best = (f64::INFINITY, NO_COLUMN);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<C: Cost + From<i16>, const MAX: bool>() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2000) as i16 - 1000
        };
        for n in [0_usize, 1, 3, 4, 5, 8, 9, 13, 16, 49, 64, 101] {
            // Few distinct values: ties at the minimum, across lanes and within one.
            let row: Vec<C> = (0..n).map(|_| C::from(next() / 300)).collect();
            let v: Vec<f64> = (0..n).map(|_| f64::from(next() / 400)).collect();
            let want = min_reduced_portable::<C, MAX>(&row, &v);
            let d: Vec<f64> = (0..n).map(|j| signed::<C, MAX>(row[j]) - v[j]).collect();
            let low = d.iter().copied().fold(f64::INFINITY, f64::min);
            let first = d.iter().position(|&x| x == low).unwrap_or(NO_COLUMN);
            assert_eq!(want, (low, first), "n={n}");
            for isa in [Isa::Portable, Isa::Avx2, Isa::Avx512] {
                if isa <= Isa::detect() {
                    assert_eq!(min_reduced::<C, MAX>(isa, &row, &v), want, "{isa:?} n={n}");
                }
            }
        }
    }

    /// Every body of the row scan (f64 and f32 costs; minimise and maximise) returns exactly the
    /// portable answer, and that is the first column at the minimum.
    #[test]
    fn min_reduced_bodies_agree() {
        check::<f64, false>();
        check::<f64, true>();
        check::<f32, false>();
        check::<f32, true>();
    }
}
