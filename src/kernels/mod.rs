//! Vector kernels: one home for the code that depends on the instruction set.
//!
//! The instruction set is chosen **once per process** by [`isa`]: the best the CPU offers among
//! [`Isa::Avx512`], [`Isa::Avx2`] and [`Isa::Portable`], lowered (never raised) by the
//! environment variable `SEMRSM_ISA` (`portable`, `avx2` or `avx512`), read at the first call. CI
//! (`.ci/run`) runs `cargo test` and the Python test files of the LAP, the matchers and `gram`
//! once with `SEMRSM_ISA=portable` and once with `SEMRSM_ISA=avx2`, so that every path is
//! exercised end to end on one machine. The solvers take the level once per solve and pass it
//! down. Every kernel has a portable reference body,
//! and the unit tests check that each vector body computes exactly what the reference does.

pub mod screen;

use std::sync::OnceLock;

use crate::lap::Cost;

pub mod bid;
pub mod centre;
pub mod gemm;
pub mod relax;
pub mod scan;
pub mod spectrum;

/// An instruction-set level, ordered from the most portable to the widest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Plain Rust, any CPU.
    Portable,
    /// x86-64 with AVX2 and FMA.
    Avx2,
    /// x86-64 with AVX-512 F and DQ (and AVX2/FMA).
    Avx512,
}

impl Isa {
    /// The name used by `SEMRSM_ISA`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Parse a `SEMRSM_ISA` value (case-insensitive); `None` when it names no level.
    pub fn parse(value: &str) -> Option<Isa> {
        match value.trim().to_ascii_lowercase().as_str() {
            "portable" => Some(Isa::Portable),
            "avx2" => Some(Isa::Avx2),
            "avx512" => Some(Isa::Avx512),
            _ => None,
        }
    }

    /// The widest level this CPU supports.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma");
            if avx2
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq")
            {
                return Isa::Avx512;
            }
            if avx2 {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }
}

/// The instruction-set level every kernel uses in this process: [`Isa::detect`], lowered to
/// `SEMRSM_ISA` when that is set to a lower level (a higher or unknown value is ignored).
pub fn isa() -> Isa {
    static CHOSEN: OnceLock<Isa> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let best = Isa::detect();
        match std::env::var("SEMRSM_ISA")
            .ok()
            .as_deref()
            .and_then(Isa::parse)
        {
            Some(forced) => forced.min(best),
            None => best,
        }
    })
}

/// Hint the CPU to bring the cache lines of `data` into L2 (a no-op off x86-64): for data a
/// loop will read soon in an order the hardware prefetcher does not follow (e.g. the next chunk
/// of each of many rows).
#[inline]
pub fn prefetch_l2<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        let bytes = std::mem::size_of_val(data);
        let base = data.as_ptr().cast::<i8>();
        for off in (0..bytes).step_by(64) {
            // SAFETY: a prefetch never faults; the address is inside `data`.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(base.add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// The 8 × 8 transpose of eight `f64` vectors in registers: `r[l]` holds 8 consecutive steps of
/// lane `l`, result `q` holds step `q` of the 8 lanes (24 shuffles, three rounds). The one
/// transpose of the packing (`gemm`), the fused centring (`centre`) and the certificate's dots
/// (`screen`); a pure permutation, so it moves bits and changes none.
///
/// # Safety
/// The CPU must have AVX-512F (callers are `#[target_feature]` functions that include it, so
/// this inlines into them).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn transpose8x8(
    r: [std::arch::x86_64::__m512d; 8],
) -> [std::arch::x86_64::__m512d; 8] {
    use std::arch::x86_64::{_mm512_shuffle_f64x2, _mm512_unpackhi_pd, _mm512_unpacklo_pd};
    // t: rows 2m and 2m + 1 interleaved, even steps in t_{2m}, odd in t_{2m+1}.
    let t0 = _mm512_unpacklo_pd(r[0], r[1]);
    let t1 = _mm512_unpackhi_pd(r[0], r[1]);
    let t2 = _mm512_unpacklo_pd(r[2], r[3]);
    let t3 = _mm512_unpackhi_pd(r[2], r[3]);
    let t4 = _mm512_unpacklo_pd(r[4], r[5]);
    let t5 = _mm512_unpackhi_pd(r[4], r[5]);
    let t6 = _mm512_unpacklo_pd(r[6], r[7]);
    let t7 = _mm512_unpackhi_pd(r[6], r[7]);
    // s: steps {0, 4}, {2, 6}, {1, 5}, {3, 7} of rows 0-3 (s0..s3) and 4-7 (s4..s7).
    let s0 = _mm512_shuffle_f64x2::<0b10_00_10_00>(t0, t2);
    let s1 = _mm512_shuffle_f64x2::<0b11_01_11_01>(t0, t2);
    let s2 = _mm512_shuffle_f64x2::<0b10_00_10_00>(t1, t3);
    let s3 = _mm512_shuffle_f64x2::<0b11_01_11_01>(t1, t3);
    let s4 = _mm512_shuffle_f64x2::<0b10_00_10_00>(t4, t6);
    let s5 = _mm512_shuffle_f64x2::<0b11_01_11_01>(t4, t6);
    let s6 = _mm512_shuffle_f64x2::<0b10_00_10_00>(t5, t7);
    let s7 = _mm512_shuffle_f64x2::<0b11_01_11_01>(t5, t7);
    [
        _mm512_shuffle_f64x2::<0b10_00_10_00>(s0, s4),
        _mm512_shuffle_f64x2::<0b10_00_10_00>(s2, s6),
        _mm512_shuffle_f64x2::<0b10_00_10_00>(s1, s5),
        _mm512_shuffle_f64x2::<0b10_00_10_00>(s3, s7),
        _mm512_shuffle_f64x2::<0b11_01_11_01>(s0, s4),
        _mm512_shuffle_f64x2::<0b11_01_11_01>(s2, s6),
        _mm512_shuffle_f64x2::<0b11_01_11_01>(s1, s5),
        _mm512_shuffle_f64x2::<0b11_01_11_01>(s3, s7),
    ]
}

/// A cost as the minimisation sees it: negated when maximising (negation is exact).
#[inline(always)]
pub fn signed<T: Cost, const MAX: bool>(c: T) -> f64 {
    if MAX {
        -c.to_f64()
    } else {
        c.to_f64()
    }
}

/// `values` as a slice of `C` when `T` is `C` (the identity cast), else `None`: how a generic
/// entry point finds the vector body for its element type.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn same_type<T: Cost, C: Cost>(values: &[T]) -> Option<&[C]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<C>())
        // SAFETY: T and C are the same type.
        .then(|| unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<C>(), values.len()) })
}

/// Loads of `f64` costs, and of `f32` costs widened exactly to `f64`, for the x86 bodies.
#[cfg(target_arch = "x86_64")]
mod lanes {
    use crate::lap::Cost;
    use std::arch::x86_64::{
        __m128i, __m256d, __m256i, __m512d, _mm256_castsi256_si128, _mm256_cvtps_pd,
        _mm256_extracti128_si256, _mm256_loadu_pd, _mm256_maskload_pd, _mm512_castps512_ps256,
        _mm512_cvtps_pd, _mm512_maskz_loadu_pd, _mm512_maskz_loadu_ps, _mm_castps_si128,
        _mm_castsi128_ps, _mm_loadu_ps, _mm_maskload_ps, _mm_shuffle_ps,
    };

    /// Cost types the x86 bodies load.
    pub(super) trait Load: Cost {
        /// 4 consecutive entries (AVX).
        unsafe fn load4(ptr: *const Self) -> __m256d;
        /// The 4 entries at `ptr` whose 64-bit lane is set in `mask` (the others read as `0`;
        /// AVX2).
        unsafe fn mask_load4(ptr: *const Self, mask: __m256i) -> __m256d;
        /// The 8 entries at `ptr` whose bit is set in `mask` (the others read as `0`; AVX-512F).
        unsafe fn mask_load8(ptr: *const Self, mask: u8) -> __m512d;
    }

    impl Load for f64 {
        #[inline(always)]
        unsafe fn load4(ptr: *const f64) -> __m256d {
            _mm256_loadu_pd(ptr)
        }
        #[inline(always)]
        unsafe fn mask_load4(ptr: *const f64, mask: __m256i) -> __m256d {
            _mm256_maskload_pd(ptr, mask)
        }
        #[inline(always)]
        unsafe fn mask_load8(ptr: *const f64, mask: u8) -> __m512d {
            _mm512_maskz_loadu_pd(mask, ptr)
        }
    }

    impl Load for f32 {
        #[inline(always)]
        unsafe fn load4(ptr: *const f32) -> __m256d {
            _mm256_cvtps_pd(_mm_loadu_ps(ptr))
        }
        #[inline(always)]
        unsafe fn mask_load4(ptr: *const f32, mask: __m256i) -> __m256d {
            _mm256_cvtps_pd(_mm_maskload_ps(ptr, narrow(mask)))
        }
        #[inline(always)]
        unsafe fn mask_load8(ptr: *const f32, mask: u8) -> __m512d {
            _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_maskz_loadu_ps(
                u16::from(mask),
                ptr,
            )))
        }
    }

    /// The low 32 bits of each 64-bit lane (`vpmovqd` is AVX-512VL; this is AVX2).
    #[inline(always)]
    unsafe fn narrow(mask: __m256i) -> __m128i {
        let lo = _mm_castsi128_ps(_mm256_castsi256_si128(mask));
        let hi = _mm_castsi128_ps(_mm256_extracti128_si256::<1>(mask));
        _mm_castps_si128(_mm_shuffle_ps::<0b10_00_10_00>(lo, hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_parse_round_trips() {
        assert!(Isa::Portable < Isa::Avx2 && Isa::Avx2 < Isa::Avx512);
        for level in [Isa::Portable, Isa::Avx2, Isa::Avx512] {
            assert_eq!(Isa::parse(level.name()), Some(level));
            assert_eq!(Isa::parse(&level.name().to_uppercase()), Some(level));
        }
        assert_eq!(Isa::parse("sse9"), None);
    }

    #[test]
    fn chosen_level_never_exceeds_the_cpu() {
        assert!(isa() <= Isa::detect());
        if let Some(forced) = std::env::var("SEMRSM_ISA")
            .ok()
            .as_deref()
            .and_then(Isa::parse)
        {
            assert!(isa() <= forced);
        }
    }
}
