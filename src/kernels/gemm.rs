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
//! Complexity: `m·n·k` fused multiply-adds, `O((m + n)·k)` packing, buffers of
//! `O((MC + NC)·KC)` elements kept in a reusable [`Gemm`].

use ndarray::{ArrayView2, ArrayViewMut2};

use super::Isa;
use crate::error::{Error, Result};

mod sealed {
    use super::Isa;

    /// A micro-kernel: `C[0..MR, 0..NR] (+)= Apanel · Bpanelᵀ` over `kc` steps.
    ///
    /// Arguments: `kc`, the packed `A` panel (`kc × MR`, step-major), the packed `B` panel
    /// (`kc × NR`), the `C` tile (`MR` rows of `NR` contiguous entries, `ldc` apart), and whether
    /// to continue the chains from the values in `C` (`true`) or start them from zero.
    pub type KernelFn<T> = unsafe fn(usize, *const T, *const T, *mut T, isize, bool);

    /// A micro-kernel and its tile.
    #[derive(Clone, Copy)]
    pub struct Kernel<T> {
        /// Rows of the micro-tile.
        pub mr: usize,
        /// Columns of the micro-tile.
        pub nr: usize,
        /// The kernel.
        pub run: KernelFn<T>,
    }

    /// What [`super::GemmScalar`] needs internally (not nameable outside this module).
    pub trait Sealed: Copy + Send + Sync + Default + 'static {
        /// Steps of `k` per packed block.
        const KC: usize;
        /// Rows of `A` per packed block.
        const MC: usize;
        /// Rows of `B` per packed block.
        const NC: usize;
        /// Exact fused multiply-add `a·b + acc`, one rounding.
        fn fma(a: Self, b: Self, acc: Self) -> Self;
        /// The micro-kernel for an instruction set (never one the CPU lacks: callers pass at
        /// most [`super::Isa::detect`]).
        fn kernel(isa: Isa) -> Kernel<Self>;
    }
}

use sealed::Kernel;

/// Element type of the GEMM: `f32` or `f64` (sealed).
pub trait GemmScalar: sealed::Sealed {}

impl GemmScalar for f32 {}
impl GemmScalar for f64 {}

impl sealed::Sealed for f64 {
    const KC: usize = 128;
    const MC: usize = 144;
    const NC: usize = 1536;

    fn fma(a: Self, b: Self, acc: Self) -> Self {
        a.mul_add(b, acc)
    }

    fn kernel(isa: Isa) -> Kernel<Self> {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Kernel {
                mr: 8,
                nr: 24,
                run: x86::f64_avx512,
            },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Kernel {
                mr: 6,
                nr: 8,
                run: x86::f64_avx2,
            },
            _ => Kernel {
                mr: 4,
                nr: 8,
                run: portable_kernel::<f64, 4, 8>,
            },
        }
    }
}

impl sealed::Sealed for f32 {
    const KC: usize = 128;
    const MC: usize = 144;
    const NC: usize = 1536;

    fn fma(a: Self, b: Self, acc: Self) -> Self {
        a.mul_add(b, acc)
    }

    fn kernel(isa: Isa) -> Kernel<Self> {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Kernel {
                mr: 8,
                nr: 48,
                run: x86::f32_avx512,
            },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Kernel {
                mr: 6,
                nr: 16,
                run: x86::f32_avx2,
            },
            _ => Kernel {
                mr: 4,
                nr: 8,
                run: portable_kernel::<f32, 4, 8>,
            },
        }
    }
}

/// The portable micro-kernel: the same chains with [`f64::mul_add`] / [`f32::mul_add`].
///
/// # Safety
/// `a` must hold `kc · MR` and `b` `kc · NR` readable elements; `c` must address `MR` rows of
/// `NR` elements, `ldc` apart, readable (when `load`) and writable.
unsafe fn portable_kernel<T: sealed::Sealed, const MR: usize, const NR: usize>(
    kc: usize,
    a: *const T,
    b: *const T,
    c: *mut T,
    ldc: isize,
    load: bool,
) {
    let mut acc = [[T::default(); NR]; MR];
    if load {
        for (r, row) in acc.iter_mut().enumerate() {
            let src = c.offset(r as isize * ldc);
            for (j, e) in row.iter_mut().enumerate() {
                *e = *src.add(j);
            }
        }
    }
    let a = std::slice::from_raw_parts(a, kc * MR);
    let b = std::slice::from_raw_parts(b, kc * NR);
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
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

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The x86-64 micro-kernels, one macro instantiated per instruction set and type.
    #[allow(clippy::wildcard_imports)]
    use std::arch::x86_64::*;

    /// A register-blocked micro-kernel: `$mr` rows × `$nv` vectors of `$lanes` lanes.
    macro_rules! kernel {
        ($name:ident, $feat:literal, $t:ty, $v:ty, $lanes:literal, $mr:literal, $nv:literal,
         $zero:ident, $load:ident, $set1:ident, $fma:ident, $store:ident) => {
            /// Micro-kernel (see `sealed::KernelFn`).
            ///
            /// # Safety
            /// The CPU must support the target features; pointers as for the portable kernel.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn $name(
                kc: usize,
                a: *const $t,
                b: *const $t,
                c: *mut $t,
                ldc: isize,
                load: bool,
            ) {
                let mut acc: [[$v; $nv]; $mr] = [[$zero(); $nv]; $mr];
                if load {
                    for r in 0..$mr {
                        for v in 0..$nv {
                            acc[r][v] = $load(c.offset(r as isize * ldc).add(v * $lanes));
                        }
                    }
                }
                let (mut a, mut b) = (a, b);
                for _ in 0..kc {
                    let mut bv: [$v; $nv] = [$zero(); $nv];
                    for v in 0..$nv {
                        bv[v] = $load(b.add(v * $lanes));
                    }
                    for r in 0..$mr {
                        let av = $set1(*a.add(r));
                        for v in 0..$nv {
                            acc[r][v] = $fma(av, bv[v], acc[r][v]);
                        }
                    }
                    a = a.add($mr);
                    b = b.add($nv * $lanes);
                }
                for r in 0..$mr {
                    for v in 0..$nv {
                        $store(c.offset(r as isize * ldc).add(v * $lanes), acc[r][v]);
                    }
                }
            }
        };
    }

    kernel!(
        f64_avx512,
        "avx512f",
        f64,
        __m512d,
        8,
        8,
        3,
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
        3,
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
        2,
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
        2,
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
        mut c: ArrayViewMut2<'_, T>,
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
            c.fill(T::default());
            return Ok(());
        }
        let isa = self.isa.unwrap_or_else(super::isa);
        let kernel = T::kernel(isa);
        let (mr, nr) = (kernel.mr, kernel.nr);
        let kc_max = T::KC.min(k);
        let mc_max = T::MC.min(m.next_multiple_of(mr));
        let nc_max = T::NC.min(n.next_multiple_of(nr));
        grow(&mut self.packed_a, mc_max.next_multiple_of(mr) * kc_max)?;
        grow(&mut self.packed_b, nc_max.next_multiple_of(nr) * kc_max)?;
        let (ars, acs) = strides(&a);
        let (brs, bcs) = strides(&b);
        let (crs, ccs) = strides2(&c);
        let (pa, pb, pc) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
        let mut tile = [T::default(); 8 * 48];
        for jc in (0..n).step_by(T::NC) {
            let nc = T::NC.min(n - jc);
            for p0 in (0..k).step_by(T::KC) {
                let kc = T::KC.min(k - p0);
                // SAFETY: rows jc..jc+nc and columns p0..p0+kc are inside `b` (n × k), and
                // the buffer holds ceil(nc / nr)·nr·kc elements.
                unsafe { pack(pb, brs, bcs, jc, nc, p0, kc, nr, &mut self.packed_b) };
                for ic in (0..m).step_by(T::MC) {
                    let mc = T::MC.min(m - ic);
                    // SAFETY: as above, for `a`.
                    unsafe { pack(pa, ars, acs, ic, mc, p0, kc, mr, &mut self.packed_a) };
                    for jr in (0..nc).step_by(nr) {
                        let nn = nr.min(nc - jr);
                        let bpanel = self.packed_b[jr * kc..].as_ptr();
                        for ir in (0..mc).step_by(mr) {
                            let mm = mr.min(mc - ir);
                            let apanel = self.packed_a[ir * kc..].as_ptr();
                            let (row, col) = (ic + ir, jc + jr);
                            // SAFETY: (row, col) is inside C; a full tile with unit column
                            // stride is written in place (mm·nn entries, rows crs apart),
                            // anything else through the local tile of mr·nr ≤ 8·48 entries.
                            unsafe {
                                let corner = pc.offset(row as isize * crs + col as isize * ccs);
                                if mm == mr && nn == nr && ccs == 1 {
                                    (kernel.run)(kc, apanel, bpanel, corner, crs, p0 > 0);
                                } else {
                                    if p0 > 0 {
                                        for r in 0..mm {
                                            for j in 0..nn {
                                                tile[r * nr + j] = *corner
                                                    .offset(r as isize * crs + j as isize * ccs);
                                            }
                                        }
                                    }
                                    (kernel.run)(
                                        kc,
                                        apanel,
                                        bpanel,
                                        tile.as_mut_ptr(),
                                        nr as isize,
                                        p0 > 0,
                                    );
                                    for r in 0..mm {
                                        for j in 0..nn {
                                            *corner.offset(r as isize * crs + j as isize * ccs) =
                                                tile[r * nr + j];
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(())
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
/// into panels of `w` rows, each stored step-major (`kc × w`), the last panel padded with zeros.
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
    out: &mut [T],
) {
    for (panel, dst) in out
        .chunks_exact_mut(w * kc)
        .take(rows.div_ceil(w))
        .enumerate()
    {
        for r in 0..w {
            let row = panel * w + r;
            if row < rows {
                let src = base.offset((r0 + row) as isize * rs + p0 as isize * cs);
                if cs == 1 {
                    let src = std::slice::from_raw_parts(src, kc);
                    for (p, &e) in src.iter().enumerate() {
                        *dst.get_unchecked_mut(p * w + r) = e;
                    }
                } else {
                    for p in 0..kc {
                        *dst.get_unchecked_mut(p * w + r) = *src.offset(p as isize * cs);
                    }
                }
            } else {
                for p in 0..kc {
                    *dst.get_unchecked_mut(p * w + r) = T::default();
                }
            }
        }
    }
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
