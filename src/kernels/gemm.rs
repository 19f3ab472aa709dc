//! A deterministic dense matrix product, `C = A·Bᵀ`, for `f32` and `f64`.
//!
//! `A` is `m × k`, `B` is `n × k` (both with the reduction dimension `k` along the rows, as the
//! samples `(S, C)` of the pairwise fill are stored), `C` is `m × n`. This is the one GEMM of
//! semrsm: the affinities `A = x_i y_jᵀ` of the matchers (per pair or for a block of pairs at
//! once) and the spatio-semantic baseline `G = X Xᵀ` go through it.
//!
//! # Determinism by construction
//! Every entry of `C` is the strict `k`-order fused accumulation
//! `acc = fma(a[p], b[p], acc)` for `p = 0, 1, …, k − 1`, starting from `acc = 0`, with one
//! rounding per step (IEEE fused multiply-add). Blocking over `k` continues the same chain (the
//! partial sum is stored in `C` and loaded again), blocking over `m` and `n` only decides which
//! entries are computed together, and the padding of partial micro-tiles never enters a real
//! entry's chain. So the result is **bit-identical for every instruction set** (AVX-512, AVX2+FMA
//! and the portable body, which uses [`f64::mul_add`], an exact FMA), every shape of the blocks
//! it is part of (an `S × S` affinity computed alone or inside a block of pairs has the same
//! bits), any number of threads and any machine.
//!
//! # Algorithm
//! The usual packed-panel scheme (Goto & van de Geijn, "Anatomy of high-performance matrix
//! multiplication", ACM TOMS 34(3), 2008): `B` is packed in panels of `NR` rows for a block of
//! `KC` steps of `k`, `A` in panels of `MR` rows, and a register-blocked micro-kernel keeps an
//! `MR × NR` tile of `C` in vector registers (`MR` broadcasts of `A` times `NR / lanes` vectors
//! of `B` per step). Micro-tiles: AVX-512 `8 × 24` (`f64`) and `8 × 48` (`f32`), AVX2
//! `6 × 8` and `6 × 16`, portable `4 × 8`. The instruction set is [`super::isa`], chosen once
//! per process.
//!
//! Measured against OpenBLAS 0.3.31's SkylakeX kernels in the same process (see
//! `docs/benchmarks.md`, "GEMM engine"), what mattered beyond the micro-kernel, which was already
//! as dense as OpenBLAS's (24 accumulators, one FMA per 0.45 loads):
//! - **edge tiles**: a tile of `r ≤ MR` rows and `v` vectors runs its own kernel (a table of
//!   `MR × NR/lanes` kernels) instead of padding to the full tile, and panels are zero-padded
//!   only to whole vectors. A `49 × 49` pair computed 4032 entries' chains before, 2744 now;
//! - **packing**: groups of 8 rows are moved with 8 × 8 in-register transposes (AVX-512), not
//!   element by element (packing was ~40 % of a `49 × 49 × 320` product);
//! - **prefetch**: the A panel (streamed from L2) 8 steps ahead, and the next C tile row by row
//!   during the first steps of each kernel (its loads and stores would otherwise miss);
//! - **blocking**: `KC = 192` (the `24 × 192` f64 B panel is 36 KiB of the 48 KiB L1; 128 and
//!   256 were no better, a B-streaming loop order with `KC = k` was worse above `n ≈ 700`),
//!   `k` split into equal blocks; `MC = 144`, `NC = 1536` (72 and 288 no better).
//!
//! Complexity: `m·n·k` fused multiply-adds, `O((m + n)·k)` packing, buffers of
//! `O((MC + NC)·KC)` elements kept in a reusable [`Gemm`].

use ndarray::{ArrayView2, ArrayViewMut2};

use super::centre::{centre_pack, Narrow, Panels, RawElement};
use super::Isa;
use crate::error::{Error, Result};

mod sealed {
    use super::Isa;

    /// A micro-kernel: `C[0..rows, 0..vecs·lanes] (+)= Apanel · Bpanelᵀ` over `kc` steps.
    ///
    /// Arguments: `kc`; the packed `A` panel (`kc` steps of the full tile height `MR`, of which
    /// the kernel reads its `rows`); the packed `B` panel (`kc` steps of the full tile width `NR`,
    /// of which it reads `vecs` vectors); the `C` tile (rows `ldc` apart, `vecs·lanes` contiguous
    /// entries each); whether to continue the chains from the values in `C` (`true`) or start
    /// them from zero; and the corner of the `C` tile computed next (only prefetched, never
    /// dereferenced, so any address will do).
    pub type KernelFn<T> = unsafe fn(usize, *const T, *const T, *mut T, isize, bool, *const T);

    /// The micro-kernels of one instruction set and type.
    #[derive(Clone, Copy)]
    pub struct Kernel<T: 'static> {
        /// Rows of the full micro-tile (`MR`, the packed `A` panel's width).
        pub mr: usize,
        /// Columns of the full micro-tile (`NR`, the packed `B` panel's width).
        pub nr: usize,
        /// Lanes of a vector (`NR` is a multiple).
        pub lanes: usize,
        /// `table[rows - 1][vecs - 1]`: the kernel of a `rows × vecs·lanes` tile (edge tiles run
        /// the smallest kernel that covers them instead of padding to the full tile).
        pub table: &'static [&'static [KernelFn<T>]],
    }

    /// What [`super::GemmScalar`] needs internally (not nameable outside this module).
    pub trait Sealed: Copy + Send + Sync + Default + 'static {
        /// Steps of `k` per packed block (at most; see [`super::blocking`]).
        const KC: usize;
        /// Rows of `A` per packed block.
        const MC: usize;
        /// Rows of `B` per packed block.
        const NC: usize;
        /// Exact fused multiply-add `a·b + acc`, one rounding.
        fn fma(a: Self, b: Self, acc: Self) -> Self;
        /// The micro-kernels for an instruction set (never one the CPU lacks: callers pass at
        /// most [`super::Isa::detect`]).
        fn kernel(isa: Isa) -> Kernel<Self>;
        /// A vector transpose for packing, when the instruction set has one: `f(src, dst, w,
        /// blocks)` moves `blocks` blocks of 8 steps of the 8 rows `src` (unit stride) to
        /// `dst[p·w .. p·w + 8]` for each step `p` (see [`super::pack`]).
        fn transpose8(isa: Isa) -> Option<Transpose8<Self>>;
    }

    /// See [`Sealed::transpose8`].
    pub type Transpose8<T> = unsafe fn(&[*const T; 8], *mut T, usize, usize);
}

use sealed::{Kernel, KernelFn, Transpose8};

/// Element type of the GEMM: `f32` or `f64` (sealed).
pub trait GemmScalar: sealed::Sealed {}

impl GemmScalar for f32 {}
impl GemmScalar for f64 {}

/// `[[f::<1, 1>, f::<1, 2>, …], [f::<2, 1>, …], …]`: a kernel table of `rows × vecs` entries.
macro_rules! table {
    ($t:ty, $m:ident::$f:ident, [$($mr:literal),*], $nv:tt) => {
        &[$(table!(@row $t, $m::$f, $mr, $nv)),*]
    };
    (@row $t:ty, $m:ident::$f:ident, $mr:literal, [$($nv:literal),*]) => {
        &[$($m::$f::<$mr, $nv> as KernelFn<$t>),*]
    };
}

/// Portable kernels: tile `4 × 8`, one "vector" of 8 lanes.
static PORTABLE_F64: &[&[KernelFn<f64>]] =
    table!(f64, self::portable_kernel_f64, [1, 2, 3, 4], [1]);
static PORTABLE_F32: &[&[KernelFn<f32>]] =
    table!(f32, self::portable_kernel_f32, [1, 2, 3, 4], [1]);

#[cfg(target_arch = "x86_64")]
static AVX512_F64: &[&[KernelFn<f64>]] =
    table!(f64, x86::f64_avx512, [1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3]);
#[cfg(target_arch = "x86_64")]
static AVX512_F32: &[&[KernelFn<f32>]] =
    table!(f32, x86::f32_avx512, [1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3]);
#[cfg(target_arch = "x86_64")]
static AVX2_F64: &[&[KernelFn<f64>]] = table!(f64, x86::f64_avx2, [1, 2, 3, 4, 5, 6], [1, 2]);
#[cfg(target_arch = "x86_64")]
static AVX2_F32: &[&[KernelFn<f32>]] = table!(f32, x86::f32_avx2, [1, 2, 3, 4, 5, 6], [1, 2]);

impl sealed::Sealed for f64 {
    const KC: usize = 192;
    const MC: usize = 144;
    const NC: usize = 1536;

    fn fma(a: Self, b: Self, acc: Self) -> Self {
        a.mul_add(b, acc)
    }

    fn transpose8(isa: Isa) -> Option<Transpose8<Self>> {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Some(x86::transpose8_f64),
            _ => None,
        }
    }

    fn kernel(isa: Isa) -> Kernel<Self> {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Kernel {
                mr: 8,
                nr: 24,
                lanes: 8,
                table: AVX512_F64,
            },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Kernel {
                mr: 6,
                nr: 8,
                lanes: 4,
                table: AVX2_F64,
            },
            _ => Kernel {
                mr: 4,
                nr: 8,
                lanes: 8,
                table: PORTABLE_F64,
            },
        }
    }
}

impl sealed::Sealed for f32 {
    const KC: usize = 192;
    const MC: usize = 144;
    const NC: usize = 1536;

    fn fma(a: Self, b: Self, acc: Self) -> Self {
        a.mul_add(b, acc)
    }

    fn transpose8(isa: Isa) -> Option<Transpose8<Self>> {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Some(x86::transpose8_f32),
            _ => None,
        }
    }

    fn kernel(isa: Isa) -> Kernel<Self> {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Kernel {
                mr: 8,
                nr: 48,
                lanes: 16,
                table: AVX512_F32,
            },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Kernel {
                mr: 6,
                nr: 16,
                lanes: 8,
                table: AVX2_F32,
            },
            _ => Kernel {
                mr: 4,
                nr: 8,
                lanes: 8,
                table: PORTABLE_F32,
            },
        }
    }
}

/// The portable micro-kernel (full tile `4 × 8`): the same chains with [`f64::mul_add`] /
/// [`f32::mul_add`], `MR` rows of the packed panels' 4.
///
/// # Safety
/// `a` must hold `kc · 4` and `b` `kc · 8` readable elements; `c` must address `MR` rows of
/// 8 elements, `ldc` apart, readable (when `load`) and writable.
unsafe fn portable_kernel<T: sealed::Sealed, const MR: usize>(
    kc: usize,
    a: *const T,
    b: *const T,
    c: *mut T,
    ldc: isize,
    load: bool,
) {
    const NR: usize = 8;
    let mut acc = [[T::default(); NR]; MR];
    if load {
        for (r, row) in acc.iter_mut().enumerate() {
            let src = c.offset(r as isize * ldc);
            for (j, e) in row.iter_mut().enumerate() {
                *e = *src.add(j);
            }
        }
    }
    let a = std::slice::from_raw_parts(a, kc * 4);
    let b = std::slice::from_raw_parts(b, kc * NR);
    for (ap, bp) in a.chunks_exact(4).zip(b.chunks_exact(NR)) {
        for (row, &ar) in acc.iter_mut().zip(ap) {
            for (e, &bv) in row.iter_mut().zip(bp) {
                *e = T::fma(ar, bv, *e);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        let dst = c.offset(r as isize * ldc);
        for (j, &e) in row.iter().enumerate() {
            *dst.add(j) = e;
        }
    }
}

/// [`portable_kernel`] for `f64` in the [`KernelFn`] shape (`NV` is always 1).
///
/// # Safety
/// As [`portable_kernel`].
unsafe fn portable_kernel_f64<const MR: usize, const NV: usize>(
    kc: usize,
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    ldc: isize,
    load: bool,
    _next: *const f64,
) {
    portable_kernel::<f64, MR>(kc, a, b, c, ldc, load);
}

/// [`portable_kernel`] for `f32` in the [`KernelFn`] shape (`NV` is always 1).
///
/// # Safety
/// As [`portable_kernel`].
unsafe fn portable_kernel_f32<const MR: usize, const NV: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: isize,
    load: bool,
    _next: *const f32,
) {
    portable_kernel::<f32, MR>(kc, a, b, c, ldc, load);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The x86-64 micro-kernels, one macro instantiated per instruction set and type.
    #[allow(clippy::wildcard_imports)]
    use std::arch::x86_64::*;

    /// A register-blocked micro-kernel of `MR` rows × `NV` vectors of `$lanes` lanes, reading
    /// packed panels of `$mr` (A) and `$nr` (B) elements per step.
    macro_rules! kernel {
        ($name:ident, $feat:literal, $t:ty, $v:ty, $lanes:literal, $mr:literal, $nr:literal,
         $zero:ident, $load:ident, $set1:ident, $fma:ident, $store:ident) => {
            /// Micro-kernel (see `sealed::KernelFn`).
            ///
            /// # Safety
            /// The CPU must support the target features; `a` must hold `kc · $mr` and `b`
            /// `kc · $nr` readable elements, `c` address `MR` rows of `NV · $lanes` elements,
            /// `ldc` apart, readable (when `load`) and writable.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn $name<const MR: usize, const NV: usize>(
                kc: usize,
                a: *const $t,
                b: *const $t,
                c: *mut $t,
                ldc: isize,
                load: bool,
                next: *const $t,
            ) {
                let mut acc: [[$v; NV]; MR] = [[$zero(); NV]; MR];
                if load {
                    for r in 0..MR {
                        for v in 0..NV {
                            acc[r][v] = $load(c.offset(r as isize * ldc).add(v * $lanes));
                        }
                    }
                }
                let (mut a, mut b) = (a, b);
                // One step: NV vectors of B, MR broadcasts of A, MR·NV fused multiply-adds, and
                // a prefetch of the A panel 8 steps ahead (it streams from L2; the B panel
                // stays in L1 across the A panels of a block).
                macro_rules! step {
                    () => {
                        _mm_prefetch::<_MM_HINT_T0>(a.wrapping_add(8 * $mr).cast());
                        let mut bv: [$v; NV] = [$zero(); NV];
                        for v in 0..NV {
                            bv[v] = $load(b.add(v * $lanes));
                        }
                        for r in 0..MR {
                            let av = $set1(*a.add(r));
                            for v in 0..NV {
                                acc[r][v] = $fma(av, bv[v], acc[r][v]);
                            }
                        }
                        a = a.add($mr);
                        b = b.add($nr);
                    };
                }
                // The first MR steps also prefetch one row each of the next C tile (its
                // vectors and last entry), so that its loads and stores hit the cache.
                let head = MR.min(kc);
                for p in 0..head {
                    let row = next.wrapping_offset(p as isize * ldc);
                    for v in 0..NV {
                        _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(v * $lanes).cast());
                    }
                    _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(NV * $lanes - 1).cast());
                    step!();
                }
                for _ in head..kc {
                    step!();
                }
                for r in 0..MR {
                    for v in 0..NV {
                        $store(c.offset(r as isize * ldc).add(v * $lanes), acc[r][v]);
                    }
                }
            }
        };
    }

    /// Pack transpose for `f64` (see `sealed::Transpose8`): 8 rows × 8 steps per block, in
    /// three rounds of 128-bit lane shuffles.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; each `src[r]` must hold `8 · blocks` readable elements and
    /// `dst` must hold `(8 · blocks − 1) · w + 8` writable ones.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn transpose8_f64(
        src: &[*const f64; 8],
        dst: *mut f64,
        w: usize,
        blocks: usize,
    ) {
        for blk in 0..blocks {
            let o = blk * 8;
            let r: [__m512d; 8] = std::array::from_fn(|i| _mm512_loadu_pd(src[i].add(o)));
            let steps = crate::kernels::transpose8x8(r);
            for (q, v) in steps.into_iter().enumerate() {
                _mm512_storeu_pd(dst.add((o + q) * w), v);
            }
        }
    }

    /// Pack transpose for `f32` (see `sealed::Transpose8`): 8 rows × 8 steps per block in
    /// 256-bit registers.
    ///
    /// # Safety
    /// As [`transpose8_f64`].
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn transpose8_f32(
        src: &[*const f32; 8],
        dst: *mut f32,
        w: usize,
        blocks: usize,
    ) {
        for blk in 0..blocks {
            let o = blk * 8;
            let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src[i].add(o)));
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let steps = [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ];
            for (q, v) in steps.into_iter().enumerate() {
                _mm256_storeu_ps(dst.add((o + q) * w), v);
            }
        }
    }

    kernel!(
        f64_avx512,
        "avx512f",
        f64,
        __m512d,
        8,
        8,
        24,
        _mm512_setzero_pd,
        _mm512_loadu_pd,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_storeu_pd
    );
    kernel!(
        f32_avx512,
        "avx512f",
        f32,
        __m512,
        16,
        8,
        48,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_storeu_ps
    );
    kernel!(
        f64_avx2,
        "avx2,fma",
        f64,
        __m256d,
        4,
        6,
        8,
        _mm256_setzero_pd,
        _mm256_loadu_pd,
        _mm256_set1_pd,
        _mm256_fmadd_pd,
        _mm256_storeu_pd
    );
    kernel!(
        f32_avx2,
        "avx2,fma",
        f32,
        __m256,
        8,
        6,
        16,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_storeu_ps
    );
}

/// A reusable GEMM: its packing buffers, kept between calls (one per thread).
///
/// # Example
/// ```
/// use ndarray::{array, Array2};
/// use semrsm::kernels::gemm::Gemm;
/// let a = array![[1.0_f64, 2.0], [3.0, 4.0], [5.0, 6.0]]; // 3 × 2
/// let b = array![[1.0_f64, 0.0], [0.0, 1.0]]; // 2 × 2
/// let mut c = Array2::zeros((3, 2));
/// Gemm::new().abt(a.view(), b.view(), c.view_mut()).unwrap(); // C = A·Bᵀ
/// assert_eq!(c, a);
/// ```
#[derive(Debug, Default)]
pub struct Gemm<T> {
    packed_a: Vec<T>,
    packed_b: Vec<T>,
    isa: Option<Isa>,
}

/// Bytes of packing buffers a [`Gemm`] of `elem_bytes`-byte elements (4: `f32`, else `f64`)
/// holds at most after products with at most `rows_a` rows of `A`, `rows_b` rows of `B` and `k`
/// columns (an upper bound over every instruction set).
#[must_use]
pub fn workspace_bytes(elem_bytes: usize, rows_a: usize, rows_b: usize, k: usize) -> usize {
    fn bytes<T: sealed::Sealed>(rows_a: usize, rows_b: usize, k: usize) -> usize {
        // Each block rounded up to the widest micro-tile (48 columns).
        let a = rows_a.min(T::MC).saturating_add(48);
        let b = rows_b.min(T::NC).saturating_add(48);
        a.saturating_add(b)
            .saturating_mul(k.min(T::KC))
            .saturating_mul(std::mem::size_of::<T>())
    }
    if elem_bytes <= 4 {
        bytes::<f32>(rows_a, rows_b, k)
    } else {
        bytes::<f64>(rows_a, rows_b, k)
    }
}

impl<T: GemmScalar> Gemm<T> {
    /// A GEMM on the process's instruction set ([`super::isa`]); buffers grow on first use.
    #[must_use]
    pub fn new() -> Self {
        Self {
            packed_a: Vec::new(),
            packed_b: Vec::new(),
            isa: None,
        }
    }

    /// A GEMM forced onto `isa` (lowered to what the CPU has), for tests and benchmarks.
    #[must_use]
    pub fn with_isa(isa: Isa) -> Self {
        Self {
            packed_a: Vec::new(),
            packed_b: Vec::new(),
            isa: Some(isa.min(Isa::detect())),
        }
    }

    /// `C = A·Bᵀ` (`C` overwritten): `a` is `m × k`, `b` is `n × k`, `c` is `m × n`; any
    /// strides (unit stride along `k` and along the rows of `C` is fastest). Every entry is the
    /// strict `k`-order FMA chain of the module docs, so the bits do not depend on the
    /// instruction set, the blocking or the thread that runs it.
    ///
    /// # Errors
    /// [`Error::Shape`] when the shapes do not fit together, [`Error::TooLarge`] when the packing
    /// buffers cannot be allocated.
    pub fn abt(
        &mut self,
        a: ArrayView2<'_, T>,
        b: ArrayView2<'_, T>,
        c: ArrayViewMut2<'_, T>,
    ) -> Result<()> {
        self.abt_acc(a, b, c, false)
    }

    /// [`Gemm::abt`], or with `accumulate` `C += A·Bᵀ`: each entry's FMA chain continues from
    /// the value in `C`, so a product split along `k` into consecutive calls has the bits of
    /// one call (the spatio-semantic baseline widens and centres its inputs in `k`-chunks).
    ///
    /// # Errors
    /// As [`Gemm::abt`].
    pub fn abt_acc(
        &mut self,
        a: ArrayView2<'_, T>,
        b: ArrayView2<'_, T>,
        mut c: ArrayViewMut2<'_, T>,
        accumulate: bool,
    ) -> Result<()> {
        let ((m, k), (n, kb)) = (a.dim(), b.dim());
        if k != kb || c.dim() != (m, n) {
            return Err(Error::Shape(format!(
                "gemm: A is {m} x {k} and B is {n} x {kb}, so C = A·Bᵀ must be {m} x {n}, got {} \
                 x {}",
                c.nrows(),
                c.ncols()
            )));
        }
        if m == 0 || n == 0 {
            return Ok(());
        }
        if k == 0 {
            if !accumulate {
                c.fill(T::default());
            }
            return Ok(());
        }
        let isa = self.isa.unwrap_or_else(super::isa);
        let kernel = T::kernel(isa);
        let tr = T::transpose8(isa);
        let (mr, nr) = (kernel.mr, kernel.nr);
        let (bmc, bnc) = (T::MC, T::NC);
        // Steps of k split into equal blocks of at most KC (each block reloads the C tiles).
        let bkc = k.div_ceil(k.div_ceil(T::KC));
        let kc_max = bkc;
        let mc_max = bmc.min(m.next_multiple_of(mr));
        let nc_max = bnc.min(n.next_multiple_of(nr));
        grow(&mut self.packed_a, mc_max.next_multiple_of(mr) * kc_max)?;
        grow(&mut self.packed_b, nc_max.next_multiple_of(nr) * kc_max)?;
        let (ars, acs) = strides(&a);
        let (brs, bcs) = strides(&b);
        let (crs, ccs) = strides2(&c);
        let (pa, pb, pc) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
        let mut tile = [T::default(); 8 * 48];
        for jc in (0..n).step_by(bnc) {
            let nc = bnc.min(n - jc);
            for p0 in (0..k).step_by(bkc) {
                let kc = bkc.min(k - p0);
                // SAFETY: rows jc..jc+nc and columns p0..p0+kc are inside `b` (n × k), and
                // the buffer holds ceil(nc / nr)·nr·kc elements.
                unsafe {
                    pack(
                        pb,
                        brs,
                        bcs,
                        jc,
                        nc,
                        p0,
                        kc,
                        nr,
                        kernel.lanes,
                        tr,
                        &mut self.packed_b,
                    )
                };
                for ic in (0..m).step_by(bmc) {
                    let mc = bmc.min(m - ic);
                    // SAFETY: as above, for `a`.
                    unsafe { pack(pa, ars, acs, ic, mc, p0, kc, mr, 1, tr, &mut self.packed_a) };
                    let block = Block {
                        kernel: &kernel,
                        kc,
                        load: p0 > 0 || accumulate,
                        a: &self.packed_a,
                        b: &self.packed_b,
                        c: pc,
                        crs,
                        ccs,
                        row0: ic,
                        col0: jc,
                    };
                    // The B panel (L1) stays while the A panels of the block (L2) pass;
                    // the tile after each is prefetched.
                    for jr in (0..nc).step_by(nr) {
                        for ir in (0..mc).step_by(mr) {
                            let (nir, njr) = if ir + mr < mc {
                                (ir + mr, jr)
                            } else {
                                (0, jr + nr)
                            };
                            // SAFETY: the tile is inside the block, the panels packed above.
                            unsafe { block.tile(ir, jr, mc, nc, nir, njr, &mut tile) };
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Which operand a [`Packed`] block is laid out for: `A` (panels of the micro-tile's rows) or
/// `B` (panels of its columns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// The left operand, `A` (rows of `C`).
    A,
    /// The right operand, `B` (columns of `C`).
    B,
}

/// Rows of one `k`-block packed once for the micro-kernels and used in several products
/// ([`Gemm::packed_abt_acc`]): a syrk-like caller packs each block of rows once per `k`-block,
/// as `A` and/or as `B`, instead of once per product it takes part in (the spatio-semantic
/// baseline packs a diagonal block's rows once for all its strips).
///
/// # Example
/// ```
/// use ndarray::{array, Array2};
/// use semrsm::kernels::gemm::{Gemm, Operand, Packed};
/// let x = array![[1.0_f64, 2.0], [3.0, 4.0], [5.0, 6.0]];
/// let gemm = Gemm::new();
/// let (mut a, mut b) = (Packed::new(), Packed::new());
/// gemm.prepare(&mut a, Operand::A, 3, 2).unwrap();
/// gemm.prepare(&mut b, Operand::B, 3, 2).unwrap();
/// gemm.pack_rows(&mut a, 0, x.view()).unwrap();
/// gemm.pack_rows(&mut b, 0, x.view()).unwrap();
/// let mut c = Array2::zeros((3, 3));
/// gemm.packed_abt_acc(&a, 0..3, &b, 0..3, c.view_mut(), false).unwrap(); // C = X·Xᵀ
/// assert_eq!(c, x.dot(&x.t()));
/// ```
#[derive(Debug, Default)]
pub struct Packed<T> {
    data: Vec<T>,
    rows: usize,
    kc: usize,
    /// Rows per panel (`MR` for `A`, `NR` for `B`) and the zero padding of the last panel.
    width: usize,
    pad: usize,
    operand: Option<(Operand, Isa)>,
}

impl<T: GemmScalar> Packed<T> {
    /// An empty block (its buffer grows on first use and is kept).
    #[must_use]
    pub fn new() -> Self {
        Self {
            data: Vec::new(),
            rows: 0,
            kc: 0,
            width: 0,
            pad: 1,
            operand: None,
        }
    }

    /// Rows per panel: a packed row range must start at a multiple of it.
    #[must_use]
    pub fn panel_rows(&self) -> usize {
        self.width
    }
}

impl<T: GemmScalar> Gemm<T> {
    /// Steps of `k` a [`Packed`] block should hold for the micro-kernels to run at their speed
    /// (the `KC` of the module docs: the `B` micro-panel stays in L1).
    #[must_use]
    pub fn block_steps() -> usize {
        T::KC
    }

    /// Size `out` for `rows` rows of `kc` steps laid out as `operand` on this GEMM's instruction
    /// set (its contents are then unspecified until [`Gemm::pack_rows`] fills them).
    ///
    /// # Errors
    /// [`Error::TooLarge`] when the buffer cannot be allocated.
    pub fn prepare(
        &self,
        out: &mut Packed<T>,
        operand: Operand,
        rows: usize,
        kc: usize,
    ) -> Result<()> {
        let isa = self.isa.unwrap_or_else(super::isa);
        let kernel = T::kernel(isa);
        let (width, pad) = match operand {
            Operand::A => (kernel.mr, 1),
            Operand::B => (kernel.nr, kernel.lanes),
        };
        let len = rows
            .div_ceil(width)
            .checked_mul(width)
            .and_then(|e| e.checked_mul(kc))
            .ok_or_else(|| Error::TooLarge("a GEMM packing buffer overflows usize".into()))?;
        grow(&mut out.data, len)?;
        out.rows = rows;
        out.kc = kc;
        out.width = width;
        out.pad = pad;
        out.operand = Some((operand, isa));
        Ok(())
    }

    /// Pack the rows of `src` (`rows × kc`, any strides; unit stride along `k` is fastest) as
    /// rows `r0..r0 + rows` of `out` (sized by [`Gemm::prepare`]); `r0` must be a multiple of
    /// [`Packed::panel_rows`] and the rows must end at a panel's end or at the block's last row.
    ///
    /// # Errors
    /// [`Error::Shape`] when the rows do not fit the block so.
    pub fn pack_rows(&self, out: &mut Packed<T>, r0: usize, src: ArrayView2<'_, T>) -> Result<()> {
        let (rows, kc) = src.dim();
        let (w, end) = (out.width, r0 + rows);
        let aligned = w > 0
            && r0.is_multiple_of(w)
            && (end.is_multiple_of(w) || end == out.rows)
            && end <= out.rows;
        if kc != out.kc || !aligned {
            return Err(Error::Shape(format!(
                "gemm: cannot pack rows {r0}..{end} of {kc} steps into a block of {} rows of {} \
                 steps in panels of {w}",
                out.rows, out.kc
            )));
        }
        if rows == 0 || kc == 0 {
            return Ok(());
        }
        let isa = out.operand.map_or(Isa::Portable, |(_, isa)| isa);
        let (rs, cs) = strides(&src);
        let start = r0 * kc;
        // SAFETY: the rows and columns are those of `src`; the buffer from `start` holds
        // ceil(rows / w)·w·kc elements (prepare sized it for ceil(out.rows / w) panels).
        unsafe {
            pack(
                src.as_ptr(),
                rs,
                cs,
                0,
                rows,
                0,
                kc,
                w,
                out.pad,
                T::transpose8(isa),
                &mut out.data[start..],
            );
        }
        Ok(())
    }

    /// Centre the rows `src` (`T(f64(x) − mean)`, as [`crate::kernels::centre::centre`]) and
    /// pack them as the whole of each block of `outs` (sized by [`Gemm::prepare`] for
    /// `src.len()` rows of the same steps) in one pass over the raw values
    /// ([`crate::kernels::centre::centre_pack`]): the blocks then hold what [`Gemm::pack_rows`]
    /// would have packed from the centred rows.
    ///
    /// # Errors
    /// [`Error::Shape`] when a block is not sized for these rows, a row or `mean` is shorter
    /// than its steps, or the blocks' steps differ.
    pub fn pack_centred<R: RawElement>(
        &self,
        outs: &mut [&mut Packed<T>],
        src: &[&[R]],
        mean: Option<&[f64]>,
    ) -> Result<()>
    where
        T: Narrow,
    {
        let kc = centred_steps(outs, src, mean, None)?;
        let isa = self.isa.unwrap_or_else(super::isa);
        let mut panels: Vec<Panels<'_, T>> = outs
            .iter_mut()
            .map(|o| Panels {
                data: &mut o.data[..],
                w: o.width,
                pad: o.pad,
            })
            .collect();
        centre_pack(isa, src, mean, kc, &mut panels);
        Ok(())
    }

    /// [`Gemm::pack_centred`] by rayon tasks of `group` rows each (a multiple of every block's
    /// [`Packed::panel_rows`]), each reading its rows once: the same packed values, written in
    /// parallel (a syrk-like caller packs each `k`-block of all its rows once and shares them).
    ///
    /// # Errors
    /// As [`Gemm::pack_centred`], and [`Error::Shape`] when `group` is not such a multiple.
    pub fn pack_centred_par<R: RawElement>(
        &self,
        outs: &mut [&mut Packed<T>],
        src: &[&[R]],
        mean: Option<&[f64]>,
        group: usize,
    ) -> Result<()>
    where
        T: Narrow,
    {
        use rayon::prelude::*;
        let kc = centred_steps(outs, src, mean, Some(group))?;
        let isa = self.isa.unwrap_or_else(super::isa);
        let n = src.len();
        // Group g of every block: rows g·group.. of the same panels (group is a multiple of
        // each panel width, so each group's panels are contiguous).
        let mut parts: Vec<Vec<Panels<'_, T>>> =
            (0..n.div_ceil(group)).map(|_| Vec::new()).collect();
        for o in outs.iter_mut() {
            let (w, pad) = (o.width, o.pad);
            let len = n.div_ceil(w) * w * kc;
            for (part, data) in parts.iter_mut().zip(o.data[..len].chunks_mut(group * kc)) {
                part.push(Panels { data, w, pad });
            }
        }
        parts
            .into_par_iter()
            .enumerate()
            .for_each(|(g, mut panels)| {
                let rows = &src[g * group..n.min((g + 1) * group)];
                for row in rows {
                    super::prefetch_l2(&row[..kc]);
                }
                centre_pack(isa, rows, mean, kc, &mut panels);
            });
        Ok(())
    }

    /// `C (+)= A·Bᵀ` for `A` = rows `rows_a` of the packed block `a` and `B` = rows `rows_b` of
    /// `b` (each range starting at a multiple of its block's [`Packed::panel_rows`]); with
    /// `accumulate` every entry's FMA chain continues from the value in `C`, as in
    /// [`Gemm::abt_acc`], so the bits are those of [`Gemm::abt_acc`] on the unpacked rows.
    ///
    /// # Errors
    /// [`Error::Shape`] when the blocks were not packed as `A` and `B` for this GEMM's
    /// instruction set with the same steps, a range leaves its block or starts off a panel, or
    /// `c` is not `len(rows_a) × len(rows_b)`.
    pub fn packed_abt_acc(
        &self,
        a: &Packed<T>,
        rows_a: std::ops::Range<usize>,
        b: &Packed<T>,
        rows_b: std::ops::Range<usize>,
        mut c: ArrayViewMut2<'_, T>,
        accumulate: bool,
    ) -> Result<()> {
        let isa = self.isa.unwrap_or_else(super::isa);
        let (m, n) = (rows_a.len(), rows_b.len());
        let fits = |p: &Packed<T>, r: &std::ops::Range<usize>| {
            p.width > 0 && r.start.is_multiple_of(p.width) && r.start <= r.end && r.end <= p.rows
        };
        if a.operand != Some((Operand::A, isa))
            || b.operand != Some((Operand::B, isa))
            || a.kc != b.kc
            || !fits(a, &rows_a)
            || !fits(b, &rows_b)
            || c.dim() != (m, n)
        {
            return Err(Error::Shape(format!(
                "gemm: packed rows {rows_a:?} of {} and {rows_b:?} of {} ({} and {} steps) do \
                 not make a {} x {} product",
                a.rows,
                b.rows,
                a.kc,
                b.kc,
                c.nrows(),
                c.ncols()
            )));
        }
        let kc = a.kc;
        if m == 0 || n == 0 {
            return Ok(());
        }
        if kc == 0 {
            if !accumulate {
                c.fill(T::default());
            }
            return Ok(());
        }
        let kernel = T::kernel(isa);
        let (mr, nr) = (kernel.mr, kernel.nr);
        let (crs, ccs) = strides2(&c);
        let pc = c.as_mut_ptr();
        let (pa, pb) = (&a.data[rows_a.start * kc..], &b.data[rows_b.start * kc..]);
        let mut tile = [T::default(); 8 * 48];
        // As in abt_acc: MC rows of A (L2) at a time, each B micro-panel (L1) against them.
        for ic in (0..m).step_by(T::MC) {
            let mc = T::MC.min(m - ic);
            let block = Block {
                kernel: &kernel,
                kc,
                load: accumulate,
                a: &pa[ic * kc..],
                b: pb,
                c: pc,
                crs,
                ccs,
                row0: ic,
                col0: 0,
            };
            for jr in (0..n).step_by(nr) {
                for ir in (0..mc).step_by(mr) {
                    let (nir, njr) = if ir + mr < mc {
                        (ir + mr, jr)
                    } else {
                        (0, jr + nr)
                    };
                    // SAFETY: the tile is inside `c` (m × n) and the panels were packed for
                    // this kernel: `a` from row `rows_a.start + ic` holds ceil(mc / mr) panels,
                    // `b` from `rows_b.start` ceil(n / nr), each of `kc` steps.
                    unsafe { block.tile(ir, jr, mc, n, nir, njr, &mut tile) };
                }
            }
        }
        Ok(())
    }
}

/// One packed block of the product: `kc` steps of the `A` rows `row0..` and `B` rows `col0..`.
struct Block<'a, T: 'static> {
    kernel: &'a Kernel<T>,
    kc: usize,
    load: bool,
    a: &'a [T],
    b: &'a [T],
    c: *mut T,
    crs: isize,
    ccs: isize,
    row0: usize,
    col0: usize,
}

impl<T: GemmScalar> Block<'_, T> {
    /// The micro-tile at `(ir, jr)` of a block of `mc × nc` entries; `(nir, njr)` is the tile
    /// computed next (prefetched).
    ///
    /// # Safety
    /// `(row0 + ir, col0 + jr)` and the block must be inside `C`, the packed panels as packed.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    unsafe fn tile(
        &self,
        ir: usize,
        jr: usize,
        mc: usize,
        nc: usize,
        nir: usize,
        njr: usize,
        tile: &mut [T; 8 * 48],
    ) {
        let Kernel {
            mr,
            nr,
            lanes,
            table,
        } = *self.kernel;
        let (kc, crs, ccs) = (self.kc, self.crs, self.ccs);
        let mm = mr.min(mc - ir);
        let nn = nr.min(nc - jr);
        let nv = nn.div_ceil(lanes);
        let run = table[mm - 1][nv - 1];
        let apanel = self.a.as_ptr().add(ir * kc);
        let bpanel = self.b.as_ptr().add(jr * kc);
        let at =
            |r: usize, j: usize| (r + self.row0) as isize * crs + (j + self.col0) as isize * ccs;
        let corner = self.c.offset(at(ir, jr));
        let next = self.c.cast_const().wrapping_offset(at(nir, njr));
        if nn == nv * lanes && ccs == 1 {
            run(kc, apanel, bpanel, corner, crs, self.load, next);
        } else {
            let w = nv * lanes;
            if self.load {
                for r in 0..mm {
                    for j in 0..nn {
                        tile[r * w + j] = *corner.offset(r as isize * crs + j as isize * ccs);
                    }
                }
            }
            run(
                kc,
                apanel,
                bpanel,
                tile.as_mut_ptr(),
                w as isize,
                self.load,
                next,
            );
            for r in 0..mm {
                for j in 0..nn {
                    *corner.offset(r as isize * crs + j as isize * ccs) = tile[r * w + j];
                }
            }
        }
    }
}

/// `C = A·Bᵀ` with a fresh [`Gemm`] (see [`Gemm::abt`]; keep a [`Gemm`] to reuse its buffers).
///
/// # Errors
/// As [`Gemm::abt`].
pub fn gemm<T: GemmScalar>(
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    c: ArrayViewMut2<'_, T>,
) -> Result<()> {
    Gemm::new().abt(a, b, c)
}

/// `dst` (`cols × rows`, row-major) = the transpose of `src` (`rows × cols`, row-major), every
/// value of `dst` written (it may start uninitialised, e.g. a fresh allocation's spare
/// capacity): for `f32` and `f64`, groups of 8 rows × 8 columns through the packing's
/// in-register transposes where the instruction set ([`super::isa`]) has them; the rest (other
/// types, the edges) in 16 × 16 blocks value by value. A pure permutation: it moves bits and
/// changes none.
///
/// # Panics
/// When `src` or `dst` holds fewer than `rows · cols` values.
///
/// # Example
/// ```
/// use std::mem::MaybeUninit;
/// use semrsm::kernels::gemm::transpose;
/// let mut t = [MaybeUninit::<f32>::uninit(); 6];
/// transpose(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &mut t, 2, 3);
/// let t = t.map(|v| unsafe { v.assume_init() }); // all written
/// assert_eq!(t, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
/// ```
pub fn transpose<T: Copy + 'static>(
    src: &[T],
    dst: &mut [std::mem::MaybeUninit<T>],
    rows: usize,
    cols: usize,
) {
    use std::any::TypeId;
    let len = rows * cols;
    assert!(src.len() >= len && dst.len() >= len);
    let isa = super::isa();
    let (r8, c8) = (rows / 8 * 8, cols / 8 * 8);
    let mut done = false;
    if r8 > 0 && c8 > 0 {
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
        if TypeId::of::<T>() == TypeId::of::<f64>() {
            if let Some(tr) = <f64 as sealed::Sealed>::transpose8(isa) {
                // SAFETY: T is f64; both hold `len` values (checked above).
                unsafe { transpose_groups(tr, s.cast(), d.cast(), rows, cols) };
                done = true;
            }
        } else if TypeId::of::<T>() == TypeId::of::<f32>() {
            if let Some(tr) = <f32 as sealed::Sealed>::transpose8(isa) {
                // SAFETY: T is f32; both hold `len` values (checked above).
                unsafe { transpose_groups(tr, s.cast(), d.cast(), rows, cols) };
                done = true;
            }
        }
    }
    let (r8, c8) = if done { (r8, c8) } else { (0, 0) };
    // What the groups left: the columns from c8 of rows ..r8, and the rows from r8.
    transpose_scalar(src, dst, rows, cols, 0..r8, c8..cols);
    transpose_scalar(src, dst, rows, cols, r8..rows, 0..cols);
}

/// The whole groups of 8 rows × 8 columns of [`transpose`] with `tr`.
///
/// # Safety
/// `src` and `dst` must hold `rows · cols` values; the CPU must have the instruction set `tr`
/// was returned for.
unsafe fn transpose_groups<T>(
    tr: Transpose8<T>,
    src: *const T,
    dst: *mut T,
    rows: usize,
    cols: usize,
) {
    for r0 in (0..rows / 8 * 8).step_by(8) {
        let ptrs: [*const T; 8] = std::array::from_fn(|i| src.add((r0 + i) * cols));
        // Each of the 8 rows holds `cols` ≥ 8·(cols / 8) values; `dst` from `r0` holds
        // (8·(cols / 8) − 1)·rows + 8 values (r0 + 8 ≤ rows).
        tr(&ptrs, dst.add(r0), rows, cols / 8);
    }
}

/// Rows `rs` × columns `cs` of [`transpose`], value by value in 16 × 16 blocks (both sides a
/// cache line at a time).
fn transpose_scalar<T: Copy>(
    src: &[T],
    dst: &mut [std::mem::MaybeUninit<T>],
    rows: usize,
    cols: usize,
    rs: std::ops::Range<usize>,
    cs: std::ops::Range<usize>,
) {
    const B: usize = 16;
    for r0 in rs.clone().step_by(B) {
        let r1 = rs.end.min(r0 + B);
        for c0 in cs.clone().step_by(B) {
            let c1 = cs.end.min(c0 + B);
            for r in r0..r1 {
                for (k, &e) in src[r * cols + c0..r * cols + c1].iter().enumerate() {
                    dst[(c0 + k) * rows + r].write(e);
                }
            }
        }
    }
}

/// Grow a packing buffer to `len` elements, fallibly.
fn grow<T: Copy + Default>(buf: &mut Vec<T>, len: usize) -> Result<()> {
    if buf.len() < len {
        buf.try_reserve_exact(len - buf.len()).map_err(|_| {
            Error::TooLarge(format!(
                "could not allocate a GEMM packing buffer of {} bytes: not enough memory",
                len.saturating_mul(std::mem::size_of::<T>())
            ))
        })?;
        buf.resize(len, T::default());
    }
    Ok(())
}

fn strides<T>(a: &ArrayView2<'_, T>) -> (isize, isize) {
    let s = a.strides();
    (s[0], s[1])
}

fn strides2<T>(a: &ArrayViewMut2<'_, T>) -> (isize, isize) {
    let s = a.strides();
    (s[0], s[1])
}

/// Pack rows `r0..r0 + rows` and columns `p0..p0 + kc` of a matrix (`base`, strides `rs`, `cs`)
/// into panels of `w ≤ 48` rows, each stored step-major (`kc × w`), the rows of the last panel
/// padded with zeros up to a multiple of `pad` (the edge kernels read no further). Groups of 8
/// full rows with unit stride go through the vector transpose `tr` when there is one.
///
/// # Safety
/// The rows and columns must be inside the matrix; `out` must hold `ceil(rows / w)·w·kc`.
#[allow(clippy::too_many_arguments)]
unsafe fn pack<T: Copy + Default>(
    base: *const T,
    rs: isize,
    cs: isize,
    r0: usize,
    rows: usize,
    p0: usize,
    kc: usize,
    w: usize,
    pad: usize,
    tr: Option<Transpose8<T>>,
    out: &mut [T],
) {
    let mut src = [std::ptr::null::<T>(); 48];
    let tr = if cs == 1 && w.is_multiple_of(8) {
        tr
    } else {
        None
    };
    for (panel, dst) in out
        .chunks_exact_mut(w * kc)
        .take(rows.div_ceil(w))
        .enumerate()
    {
        let live = w.min(rows - panel * w);
        let padded = w.min(live.next_multiple_of(pad));
        for (r, s) in src.iter_mut().enumerate().take(live) {
            *s = base.offset((r0 + panel * w + r) as isize * rs + p0 as isize * cs);
        }
        if cs == 1 {
            // The next panel's rows (far apart when `k` is long: the hardware prefetcher does
            // not follow them), while this one is moved.
            let next = (panel + 1) * w;
            for r in next..rows.min(next + w) {
                let row = base.offset((r0 + r) as isize * rs + p0 as isize);
                // SAFETY: rows r0..r0 + rows, steps p0..p0 + kc are inside the matrix.
                super::prefetch_l2(std::slice::from_raw_parts(row, kc));
            }
        }
        // Steps `0..done` of rows `0..vec_rows` are moved by the vector transpose.
        let (vec_rows, done) = match tr {
            Some(f) if live >= 8 && kc >= 8 => {
                let groups = live / 8;
                for g in 0..groups {
                    let rows8: &[*const T; 8] = src[g * 8..g * 8 + 8]
                        .try_into()
                        .unwrap_or(&[std::ptr::null(); 8]);
                    f(rows8, dst.as_mut_ptr().add(g * 8), w, kc / 8);
                }
                (groups * 8, kc / 8 * 8)
            }
            _ => (0, 0),
        };
        for (p, step) in dst.chunks_exact_mut(w).enumerate() {
            let off = p as isize * cs;
            let first = if p < done { vec_rows } else { 0 };
            for (d, s) in step[first..live].iter_mut().zip(&src[first..live]) {
                *d = *s.offset(off);
            }
            for d in &mut step[live..padded] {
                *d = T::default();
            }
        }
    }
}

/// The steps of the blocks [`Gemm::pack_centred`] (`group` `None`) or
/// [`Gemm::pack_centred_par`] (`Some(rows per task)`) fills, after checking that `src`, `mean`
/// and every block fit them (and that `group` is a positive multiple of each block's panel
/// width).
fn centred_steps<T, R>(
    outs: &[&mut Packed<T>],
    src: &[&[R]],
    mean: Option<&[f64]>,
    group: Option<usize>,
) -> Result<usize> {
    let kc = outs.first().map_or(0, |o| o.kc);
    let short = src.iter().any(|r| r.len() < kc) || mean.is_some_and(|m| m.len() < kc);
    let bad_group = |w: usize| group.is_some_and(|g| !g.is_multiple_of(w));
    if short
        || group == Some(0)
        || outs
            .iter()
            .any(|o| o.kc != kc || o.rows != src.len() || o.width == 0 || bad_group(o.width))
    {
        let groups = group.map_or(String::new(), |g| format!(" in groups of {g}"));
        return Err(Error::Shape(format!(
            "gemm: cannot pack {} centred rows of {kc} steps into these blocks{groups}",
            src.len()
        )));
    }
    Ok(kc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array2};

    /// The definition: strict k-order FMA chains from zero.
    fn reference<T: GemmScalar>(a: &Array2<T>, b: &Array2<T>) -> Array2<T> {
        let (m, k) = a.dim();
        let n = b.nrows();
        Array2::from_shape_fn((m, n), |(i, j)| {
            let mut acc = T::default();
            for p in 0..k {
                acc = T::fma(a[[i, p]], b[[j, p]], acc);
            }
            acc
        })
    }

    /// Values with full mantissas and mixed signs and magnitudes (a fixed LCG, no dependency).
    fn matrix<T: GemmScalar>(rows: usize, cols: usize, seed: u64, f: fn(f64) -> T) -> Array2<T> {
        let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        Array2::from_shape_fn((rows, cols), |_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            f((u - 0.4) * 2f64.powi(((state >> 3) % 9) as i32 - 4))
        })
    }

    fn isas() -> Vec<Isa> {
        [Isa::Portable, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|&i| i <= Isa::detect())
            .collect()
    }

    fn check<T: GemmScalar + std::fmt::Debug, B: PartialEq + std::fmt::Debug>(
        f: fn(f64) -> T,
        bits: fn(T) -> B,
    ) {
        for &k in &[1, 3, 24, 320, 1281] {
            // m > MC (96) and n > NC (1536) exercise every blocking loop.
            for &(m, n) in &[(1, 1), (5, 7), (13, 50), (49, 49), (97, 61), (2, 1601)] {
                if (k >= 320 && m * n > 2500) || (k == 1281 && m * n > 100) {
                    continue;
                }
                let a = matrix(m, k, (m * 31 + k) as u64, f);
                let b = matrix(n, k, (n * 17 + k + 1) as u64, f);
                let want = reference(&a, &b);
                for isa in isas() {
                    let mut c = Array2::from_elem((m, n), f(7.0));
                    Gemm::with_isa(isa)
                        .abt(a.view(), b.view(), c.view_mut())
                        .unwrap();
                    for (got, exp) in c.iter().zip(want.iter()) {
                        assert_eq!(bits(*got), bits(*exp), "{isa:?} m={m} n={n} k={k}");
                    }
                }
            }
        }
    }

    #[test]
    fn gemm_f64_is_the_strict_fma_chain_on_every_isa() {
        check::<f64, u64>(|v| v, f64::to_bits);
    }

    #[test]
    fn gemm_f32_is_the_strict_fma_chain_on_every_isa() {
        #[allow(clippy::cast_possible_truncation)]
        check::<f32, u32>(|v| v as f32, f32::to_bits);
    }

    #[test]
    #[allow(clippy::cast_possible_truncation)]
    fn transpose_moves_every_value_to_its_place() {
        use std::mem::MaybeUninit;
        /// `transpose` into a buffer initialised to `sentinel` (so reading it back is sound),
        /// 3 values longer than the matrix.
        fn run<T: Copy + 'static>(src: &[T], rows: usize, cols: usize, sentinel: T) -> Vec<T> {
            let mut d = vec![MaybeUninit::new(sentinel); rows * cols + 3];
            transpose(src, &mut d, rows, cols);
            // SAFETY: every entry was initialised (the sentinel or a moved value).
            d.into_iter().map(|v| unsafe { v.assume_init() }).collect()
        }
        // Whole groups of 8 × 8 and every kind of edge, f64 and f32 (register transposes on
        // AVX-512) and another type (value by value); nothing past the matrix is written.
        for &(rows, cols) in &[(1, 1), (1, 9), (9, 1), (8, 8), (7, 9), (17, 33), (256, 196)] {
            let len = rows * cols;
            let f: Vec<f64> = (0..len).map(|i| i as f64 + 0.5).collect();
            let want: Vec<f64> = (0..cols)
                .flat_map(|c| (0..rows).map(move |r| (r, c)))
                .map(|(r, c)| f[r * cols + c])
                .collect();
            let d = run(&f, rows, cols, -1.0);
            assert_eq!(&d[..len], &want[..], "{rows} x {cols}");
            assert!(d[len..].iter().all(|&e| e == -1.0));
            let g: Vec<f32> = f.iter().map(|&v| v as f32).collect();
            let d = run(&g, rows, cols, -1.0);
            assert!(d[..len].iter().zip(&want).all(|(&a, &b)| f64::from(a) == b));
            assert!(d[len..].iter().all(|&e| e == -1.0));
            let h: Vec<u32> = (0..len as u32).collect();
            let d = run(&h, rows, cols, u32::MAX);
            assert!(d[..len]
                .iter()
                .zip(&want)
                .all(|(&a, &b)| f64::from(a) + 0.5 == b));
            assert!(d[len..].iter().all(|&e| e == u32::MAX));
        }
    }

    #[test]
    fn gemm_every_edge_tile_is_the_strict_fma_chain() {
        // Every edge kernel (rows 1..=8 × vectors 1..=3 of each instruction set), partial
        // vectors, and packs with and without full groups of 8 rows and 8 steps.
        for k in [5, 17] {
            let a = matrix::<f64>(17, k, 3, |v| v);
            let b = matrix::<f64>(97, k, 4, |v| v);
            let a32 = a.mapv(|v| v as f32);
            let b32 = b.mapv(|v| v as f32);
            for m in 1..=17 {
                for n in (1..=97).step_by(3) {
                    let (a, b) = (a.slice(s![..m, ..]), b.slice(s![..n, ..]));
                    let want = reference(&a.to_owned(), &b.to_owned());
                    let (a32, b32) = (a32.slice(s![..m, ..]), b32.slice(s![..n, ..]));
                    let want32 = reference(&a32.to_owned(), &b32.to_owned());
                    for isa in isas() {
                        let mut c = Array2::from_elem((m, n), 7.0);
                        Gemm::with_isa(isa).abt(a, b, c.view_mut()).unwrap();
                        assert!(
                            c.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits()),
                            "{isa:?} m={m} n={n} k={k}"
                        );
                        let mut c = Array2::from_elem((m, n), 7.0_f32);
                        Gemm::with_isa(isa).abt(a32, b32, c.view_mut()).unwrap();
                        assert!(
                            c.iter()
                                .zip(&want32)
                                .all(|(x, y)| x.to_bits() == y.to_bits()),
                            "f32 {isa:?} m={m} n={n} k={k}"
                        );
                    }
                }
            }
        }
    }

    /// `x·yᵀ` through packed blocks: each of `x` (as `A`) and `y` (as `B`) packed per k-chunk
    /// in two row groups, the chunks accumulated, rows `a0..` against columns `b0..`.
    fn packed_product<T: GemmScalar>(
        isa: Isa,
        x: &Array2<T>,
        y: &Array2<T>,
        a0: usize,
        b0: usize,
        chunks: &[(usize, usize)],
    ) -> Array2<T> {
        let g = Gemm::<T>::with_isa(isa);
        let (m, n) = (x.nrows(), y.nrows());
        let mut c = Array2::from_elem((m - a0, n - b0), T::default());
        let (mut pa, mut pb) = (Packed::new(), Packed::new());
        for &(k0, k1) in chunks {
            g.prepare(&mut pa, Operand::A, m, k1 - k0).unwrap();
            g.prepare(&mut pb, Operand::B, n, k1 - k0).unwrap();
            // groups of 48 rows: a multiple of every panel width
            for (p, z) in [(&mut pa, x), (&mut pb, y)] {
                for r0 in (0..z.nrows()).step_by(48) {
                    let r1 = z.nrows().min(r0 + 48);
                    g.pack_rows(p, r0, z.slice(s![r0..r1, k0..k1])).unwrap();
                }
            }
            g.packed_abt_acc(&pa, a0..m, &pb, b0..n, c.view_mut(), k0 > 0)
                .unwrap();
        }
        c
    }

    #[test]
    fn packed_products_are_the_strict_fma_chain_on_every_isa() {
        let (x, y) = (
            matrix::<f64>(61, 37, 5, |v| v),
            matrix::<f64>(101, 37, 6, |v| v),
        );
        #[allow(clippy::cast_possible_truncation)]
        let (x32, y32) = (x.mapv(|v| v as f32), y.mapv(|v| v as f32));
        for isa in isas() {
            for (a0, b0) in [(0, 0), (48, 48), (0, 96)] {
                for chunks in [&[(0, 37)][..], &[(0, 9), (9, 30), (30, 37)][..]] {
                    let want = reference(
                        &x.slice(s![a0.., ..]).to_owned(),
                        &y.slice(s![b0.., ..]).to_owned(),
                    );
                    let got = packed_product(isa, &x, &y, a0, b0, chunks);
                    assert!(
                        got.iter()
                            .zip(&want)
                            .all(|(p, q)| p.to_bits() == q.to_bits()),
                        "{isa:?} {a0} {b0} {chunks:?}"
                    );
                    let want = reference(
                        &x32.slice(s![a0.., ..]).to_owned(),
                        &y32.slice(s![b0.., ..]).to_owned(),
                    );
                    let got = packed_product(isa, &x32, &y32, a0, b0, chunks);
                    assert!(
                        got.iter()
                            .zip(&want)
                            .all(|(p, q)| p.to_bits() == q.to_bits()),
                        "f32 {isa:?} {a0} {b0} {chunks:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn packed_products_reject_blocks_that_do_not_fit() {
        let g = Gemm::<f64>::new();
        let x = matrix::<f64>(30, 10, 1, |v| v);
        let (mut pa, mut pb) = (Packed::new(), Packed::new());
        g.prepare(&mut pa, Operand::A, 30, 10).unwrap();
        g.prepare(&mut pb, Operand::B, 30, 10).unwrap();
        let w = pb.panel_rows();
        // off a panel, past the block, a different k
        assert!(g.pack_rows(&mut pb, 1, x.slice(s![..5, ..])).is_err());
        assert!(g.pack_rows(&mut pb, 0, x.slice(s![.., ..9])).is_err());
        assert!(g.pack_rows(&mut pb, w, x.view()).is_err());
        g.pack_rows(&mut pa, 0, x.view()).unwrap();
        g.pack_rows(&mut pb, 0, x.view()).unwrap();
        let mut c = Array2::zeros((30, 30));
        // operands swapped, a range off its panels, a C of the wrong shape
        assert!(g
            .packed_abt_acc(&pb, 0..30, &pa, 0..30, c.view_mut(), false)
            .is_err());
        assert!(g
            .packed_abt_acc(&pa, 1..30, &pb, 0..30, c.slice_mut(s![1.., ..]), false)
            .is_err());
        assert!(g
            .packed_abt_acc(&pa, 0..30, &pb, 0..29, c.view_mut(), false)
            .is_err());
        assert!(g
            .packed_abt_acc(&pa, 0..30, &pb, 0..31, c.view_mut(), false)
            .is_err());
        g.packed_abt_acc(&pa, 0..30, &pb, 0..30, c.view_mut(), false)
            .unwrap();
        assert_eq!(c, reference(&x, &x));
    }

    #[test]
    fn centred_packing_rejects_rows_means_and_groups_that_do_not_fit() {
        let g = Gemm::<f64>::new();
        let x = matrix::<f32>(30, 10, 2, |v| v as f32);
        let rows: Vec<&[f32]> = x.outer_iter().map(|r| r.to_slice().unwrap()).collect();
        let (mut pa, mut pb) = (Packed::new(), Packed::new());
        g.prepare(&mut pa, Operand::A, 30, 10).unwrap();
        g.prepare(&mut pb, Operand::B, 30, 10).unwrap();
        let group = pa.panel_rows() * pb.panel_rows();
        let mean = vec![0.5; 10];
        // a row short of the steps, a short mean, rows the blocks were not sized for
        let short: Vec<&[f32]> = rows.iter().map(|r| &r[..9]).collect();
        assert!(g.pack_centred(&mut [&mut pa], &short, None).is_err());
        assert!(g
            .pack_centred(&mut [&mut pa], &rows, Some(&mean[..9]))
            .is_err());
        assert!(g.pack_centred(&mut [&mut pa], &rows[..29], None).is_err());
        assert!(g
            .pack_centred_par(&mut [&mut pa, &mut pb], &short, None, group)
            .is_err());
        // groups: zero (with and without blocks) or not a multiple of a panel width
        for bad in [0, group + 1] {
            let err = g
                .pack_centred_par(&mut [&mut pa, &mut pb], &rows, Some(&mean), bad)
                .unwrap_err();
            assert!(
                err.to_string().contains(&format!("in groups of {bad}")),
                "{err}"
            );
        }
        assert!(g.pack_centred_par(&mut [], &rows, None, 0).is_err());
        // what fits packs the same values both ways
        g.pack_centred_par(&mut [&mut pa, &mut pb], &rows, Some(&mean), group)
            .unwrap();
        let (mut qa, mut qb) = (Packed::new(), Packed::new());
        g.prepare(&mut qa, Operand::A, 30, 10).unwrap();
        g.prepare(&mut qb, Operand::B, 30, 10).unwrap();
        g.pack_centred(&mut [&mut qa, &mut qb], &rows, Some(&mean))
            .unwrap();
        let (mut c, mut d) = (Array2::zeros((30, 30)), Array2::zeros((30, 30)));
        g.packed_abt_acc(&pa, 0..30, &pb, 0..30, c.view_mut(), false)
            .unwrap();
        g.packed_abt_acc(&qa, 0..30, &qb, 0..30, d.view_mut(), false)
            .unwrap();
        assert_eq!(c, d);
    }

    #[test]
    fn gemm_blocks_and_strides_do_not_change_bits() {
        // A block of C computed alone (from row/column slices, a transposed C, a strided A)
        // equals the same entries of the whole product.
        let a = matrix::<f64>(70, 300, 1, |v| v);
        let b = matrix::<f64>(90, 300, 2, |v| v);
        let mut whole = Array2::zeros((70, 90));
        gemm(a.view(), b.view(), whole.view_mut()).unwrap();
        let mut part = Array2::zeros((20, 31));
        gemm(
            a.slice(s![10..30, ..]),
            b.slice(s![40..71, ..]),
            part.view_mut(),
        )
        .unwrap();
        assert_eq!(part, whole.slice(s![10..30, 40..71]));
        let mut ct = Array2::zeros((90, 70));
        gemm(a.view(), b.view(), ct.view_mut().reversed_axes()).unwrap();
        assert_eq!(ct.t(), whole);
        let at = a.t().to_owned(); // column-major view of A through its transpose
        let mut c2 = Array2::zeros((70, 90));
        gemm(at.t(), b.view(), c2.view_mut()).unwrap();
        assert_eq!(c2, whole);
    }

    #[test]
    fn gemm_rejects_mismatched_shapes_and_handles_empty() {
        let a = Array2::<f64>::zeros((3, 4));
        let b = Array2::<f64>::zeros((2, 5));
        let mut c = Array2::<f64>::zeros((3, 2));
        assert!(matches!(
            gemm(a.view(), b.view(), c.view_mut()),
            Err(Error::Shape(_))
        ));
        let b = Array2::<f64>::zeros((2, 4));
        let mut c = Array2::<f64>::zeros((3, 3));
        assert!(gemm(a.view(), b.view(), c.view_mut()).is_err());
        let a0 = Array2::<f64>::zeros((3, 0));
        let b0 = Array2::<f64>::zeros((2, 0));
        let mut c = Array2::<f64>::from_elem((3, 2), 5.0);
        gemm(a0.view(), b0.view(), c.view_mut()).unwrap();
        assert!(c.iter().all(|&e| e.to_bits() == 0));
        let mut empty = Array2::<f64>::zeros((0, 2));
        gemm(
            Array2::<f64>::zeros((0, 4)).view(),
            b.view(),
            empty.view_mut(),
        )
        .unwrap();
    }
}
