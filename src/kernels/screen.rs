//! Kernels of the mixed-precision certificate ([`crate::matching::mixed`]): the `f64` dot
//! product that defines the affinities `Â_ij`, and the screen of one row of the `f32` affinity.
//!
//! Each has one portable body, compiled again with AVX2/AVX-512 enabled (the same IEEE
//! operations: explicit FMA in the dot product, none in the screen, no reassociation), so every
//! instruction set computes bit-identical results; the tests check it.

use super::{isa, Isa};

/// `Σ_k a_k b_k` in `f64` as the strict `k`-order FMA chain `acc = fma(a_k, b_k, acc)` from
/// `acc = 0`: bit for bit the entry that [`super::gemm`] computes for the same rows (on every
/// instruction set), so a sum of these entries equals the `f64` path's sum of its affinities.
#[must_use]
pub fn dot<T: crate::lap::Cost>(a: &[T], b: &[T]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        match isa() {
            // SAFETY: `isa()` reports only levels the CPU supports.
            Isa::Avx512 => return unsafe { dot_avx512(a, b) },
            Isa::Avx2 => return unsafe { dot_avx2(a, b) },
            Isa::Portable => {}
        }
    }
    dot_body(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
unsafe fn dot_avx512<T: crate::lap::Cost>(a: &[T], b: &[T]) -> f64 {
    dot_body(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2<T: crate::lap::Cost>(a: &[T], b: &[T]) -> f64 {
    dot_body(a, b)
}

#[inline(always)]
fn dot_body<T: crate::lap::Cost>(a: &[T], b: &[T]) -> f64 {
    let mut acc = 0.0_f64;
    for (&p, &q) in a.iter().zip(b) {
        acc = p.to_f64().mul_add(q.to_f64(), acc);
    }
    acc
}

/// [`dot`] of many pairs of rows: `out` gets `dot(x_i, y_j)` for every `(i, j)` of `pairs`, in
/// order (`x`, `y` row-major with rows of `c` entries). Eight chains advance together (each still
/// the strict FMA chain of [`dot`], so the bits are [`dot`]'s), which hides the FMA latency that
/// bounds one chain.
///
/// # Errors
/// [`crate::Error::Shape`] when a row index is out of range.
pub fn dots<T: crate::lap::Cost>(
    x: &[T],
    y: &[T],
    c: usize,
    pairs: &[(usize, usize)],
    out: &mut Vec<f64>,
) -> crate::Result<()> {
    for group in pairs.chunks(8) {
        let mut ra: [&[T]; 8] = [&[]; 8];
        let mut rb: [&[T]; 8] = [&[]; 8];
        for (l, &(i, j)) in group.iter().enumerate() {
            ra[l] = row_of(x, i, c)?;
            rb[l] = row_of(y, j, c)?;
        }
        let acc = dots8(ra, rb, c);
        out.extend_from_slice(&acc[..group.len()]);
    }
    Ok(())
}

/// Row `i` (of `c` entries) of the row-major `a`.
fn row_of<T>(a: &[T], i: usize, c: usize) -> crate::Result<&[T]> {
    a.get(i * c..(i + 1) * c)
        .ok_or_else(|| crate::Error::Shape("internal: row out of range".into()))
}

/// Eight chains (rows shorter than `c`, the unused slots, contribute nothing).
fn dots8<T: crate::lap::Cost>(ra: [&[T]; 8], rb: [&[T]; 8], c: usize) -> [f64; 8] {
    #[cfg(target_arch = "x86_64")]
    {
        match isa() {
            // SAFETY: `isa()` reports only levels the CPU supports.
            Isa::Avx512 | Isa::Avx2 => return unsafe { dots8_fma(ra, rb, c) },
            Isa::Portable => {}
        }
    }
    dots8_body(ra, rb, c)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dots8_fma<T: crate::lap::Cost>(ra: [&[T]; 8], rb: [&[T]; 8], c: usize) -> [f64; 8] {
    dots8_body(ra, rb, c)
}

#[inline(always)]
fn dots8_body<T: crate::lap::Cost>(ra: [&[T]; 8], rb: [&[T]; 8], c: usize) -> [f64; 8] {
    let mut acc = [0.0_f64; 8];
    if ra.iter().chain(rb.iter()).all(|r| r.len() >= c) {
        for k in 0..c {
            for l in 0..8 {
                // SAFETY: k < c ≤ the length of every row (checked above); without the bounds
                // checks the sixteen loads per step are plain loads.
                let (a, b) = unsafe { (*ra[l].get_unchecked(k), *rb[l].get_unchecked(k)) };
                acc[l] = a.to_f64().mul_add(b.to_f64(), acc[l]);
            }
        }
    } else {
        for l in 0..8 {
            acc[l] = dot_body(ra[l], rb[l]);
        }
    }
    acc
}

/// Screen one row of the certificate: with `r_j = (c0 + v_j) − row_j` (in `f64`), push every
/// `j` with `r_j ≤ tau` (or NaN) onto `candidates` (in
/// increasing order) and return the smallest `r_j` of the others (`+∞` when there are none).
/// Runs over `min(len)` of the slices. The inputs must be finite (so is every `r_j` then, for
/// values below `10³⁰⁰`).
pub fn screen_row(
    row: &[f32],
    v: &[f64],
    (c0, tau): (f64, f64),
    candidates: &mut Vec<usize>,
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        match isa() {
            // SAFETY: `isa()` reports only levels the CPU supports.
            Isa::Avx512 => return unsafe { screen_avx512(row, v, (c0, tau), candidates) },
            Isa::Avx2 => return unsafe { screen_avx2(row, v, (c0, tau), candidates) },
            Isa::Portable => {}
        }
    }
    screen_body(row, v, (c0, tau), candidates)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
unsafe fn screen_avx512(row: &[f32], v: &[f64], k: (f64, f64), candidates: &mut Vec<usize>) -> f64 {
    screen_body(row, v, k, candidates)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn screen_avx2(row: &[f32], v: &[f64], k: (f64, f64), candidates: &mut Vec<usize>) -> f64 {
    screen_body(row, v, k, candidates)
}

#[inline(always)]
fn screen_body(row: &[f32], v: &[f64], (c0, tau): (f64, f64), candidates: &mut Vec<usize>) -> f64 {
    // 32 entries per step: their labels, the running minima of the screened ones per lane,
    // and one test of the step's minimum for candidates (rare: a few per row). The last,
    // partial step runs the same code on a padded copy (at S = 49 the scalar tail used to cost
    // more than the 32 vector lanes).
    const W: usize = 32;
    let n = row.len().min(v.len());
    let (row, v) = (&row[..n], &v[..n]);
    let mut low = [f64::INFINITY; W];
    let full = n / W * W;
    for (k, (rc, vc)) in row[..full]
        .chunks_exact(W)
        .zip(v[..full].chunks_exact(W))
        .enumerate()
    {
        let (rc, vc): (&[f32; W], &[f64; W]) = match (rc.try_into(), vc.try_into()) {
            (Ok(rc), Ok(vc)) => (rc, vc),
            _ => continue, // (chunks_exact: never)
        };
        screen_step(rc, vc, (c0, tau), &mut low, k * W, W, candidates);
    }
    if full < n {
        // Padding: row −∞ and v 0 give r = +∞ (above tau, not below any minimum); the padded
        // lanes are never pushed either way.
        let mut rc = [f32::NEG_INFINITY; W];
        let mut vc = [0.0_f64; W];
        rc[..n - full].copy_from_slice(&row[full..]);
        vc[..n - full].copy_from_slice(&v[full..]);
        screen_step(&rc, &vc, (c0, tau), &mut low, full, n - full, candidates);
    }
    let mut lowest = f64::INFINITY;
    for &l in &low {
        if l < lowest {
            lowest = l;
        }
    }
    lowest
}

/// One step of [`screen_body`] over `W` entries starting at column `first`, of which the first
/// `live` are real.
#[inline(always)]
fn screen_step<const W: usize>(
    rc: &[f32; W],
    vc: &[f64; W],
    (c0, tau): (f64, f64),
    low: &mut [f64; W],
    first: usize,
    live: usize,
    candidates: &mut Vec<usize>,
) {
    // Lane-wise only (a flag per lane, no running minimum across lanes), so that the loop
    // compiles to vector instructions.
    let mut hit = [false; W];
    for l in 0..W {
        let x = (c0 + vc[l]) - f64::from(rc[l]);
        let above = x > tau; // false for `x ≤ tau` or NaN: a candidate
        let kept = if above { x } else { f64::INFINITY };
        low[l] = if kept < low[l] { kept } else { low[l] };
        hit[l] = !above;
    }
    if hit.iter().fold(false, |a, &h| a | h) {
        for (l, &h) in hit.iter().enumerate().take(live) {
            if h {
                candidates.push(first + l);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut state = seed | 1;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                #[allow(clippy::cast_precision_loss)]
                let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                u * 2.0 - 1.0
            })
            .collect()
    }

    /// Every instruction set computes what the portable body does, bit for bit.
    #[test]
    fn vector_bodies_match_the_portable_one() {
        for n in [0_usize, 1, 5, 8, 9, 31, 32, 33, 49, 64, 100] {
            let a = values(n, 3 + n as u64);
            let b = values(n, 7 + n as u64);
            let want = dot_body(&a, &b);
            let row: Vec<f32> = values(n, 11).iter().map(|&x| x as f32).collect();
            let (mut c_want, mut c_got) = (Vec::new(), Vec::new());
            let low_want = screen_body(&row, &a, (0.1, 0.05), &mut c_want);
            #[cfg(target_arch = "x86_64")]
            {
                if Isa::detect() >= Isa::Avx2 {
                    // SAFETY: the CPU has AVX2.
                    assert_eq!(unsafe { dot_avx2(&a, &b) }.to_bits(), want.to_bits());
                    let low = unsafe { screen_avx2(&row, &a, (0.1, 0.05), &mut c_got) };
                    assert_eq!((low.to_bits(), &c_got), (low_want.to_bits(), &c_want));
                    c_got.clear();
                }
                if Isa::detect() >= Isa::Avx512 {
                    // SAFETY: the CPU has AVX-512.
                    assert_eq!(unsafe { dot_avx512(&a, &b) }.to_bits(), want.to_bits());
                    let low = unsafe { screen_avx512(&row, &a, (0.1, 0.05), &mut c_got) };
                    assert_eq!((low.to_bits(), &c_got), (low_want.to_bits(), &c_want));
                    c_got.clear();
                }
            }
            // The screen against its definition.
            let mut c_def = Vec::new();
            let mut low_def = f64::INFINITY;
            for j in 0..n {
                let x = (0.1 + a[j]) - f64::from(row[j]);
                if x > 0.05 {
                    low_def = low_def.min(x);
                } else {
                    c_def.push(j);
                }
            }
            assert_eq!((low_want, &c_want), (low_def, &c_def));
            assert_eq!(dot(&a, &b).to_bits(), want.to_bits());
            // Batched chains: the same bits.
            if n > 0 {
                let x: Vec<f64> = [&a[..], &b[..], &a[..]].concat();
                let y: Vec<f64> = [&b[..], &a[..]].concat();
                let pairs: Vec<(usize, usize)> = (0..11).map(|t| (t % 3, (t / 3) % 2)).collect();
                let mut out = Vec::new();
                dots(&x, &y, n, &pairs, &mut out).unwrap();
                for (&(i, j), v) in pairs.iter().zip(&out) {
                    let d = dot_body(&x[i * n..(i + 1) * n], &y[j * n..(j + 1) * n]);
                    assert_eq!(v.to_bits(), d.to_bits());
                }
                assert!(dots(&x, &y, n, &[(3, 0)], &mut out).is_err());
            }
            // The same bits as the GEMM's entry for these rows.
            if n > 0 {
                let (ra, rb) = (
                    ndarray::ArrayView2::from_shape((1, n), &a[..]).unwrap(),
                    ndarray::ArrayView2::from_shape((1, n), &b[..]).unwrap(),
                );
                let mut c = ndarray::Array2::zeros((1, 1));
                crate::kernels::gemm::Gemm::new()
                    .abt(ra, rb, c.view_mut())
                    .unwrap();
                assert_eq!(c[[0, 0]].to_bits(), want.to_bits(), "gemm n={n}");
            }
        }
    }
}
