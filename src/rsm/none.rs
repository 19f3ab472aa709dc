//! The spatio-semantic baseline ([`Matcher::None`](crate::matching::Matcher::None)) straight
//! from the raw input: `G = (X − μ)(Y − μ)ᵀ` on the flattened samples, without a widened,
//! centred copy of the input.
//!
//! Each task computes one square block of `G` (`none_block` in the parent module; the upper
//! triangle only in the square case, then mirrored). It walks the `S·C` products of a sample in
//! `k`-chunks of one GEMM `k`-block ([`Gemm::block_steps`], 192): the chunk of each row of the
//! block is widened from its own dtype (`f32` or `f64`) and centred (`f64(x) − μ`, then rounded
//! to the working precision) straight into the micro-kernels' packed layout, in one pass over
//! the raw values ([`Gemm::pack_centred`], [`crate::kernels::centre::centre_pack`]; [`Packed`]; a
//! diagonal block's rows as both operands at once, used by all its strips) and the
//! deterministic GEMM continues every entry's FMA chain from the previous chunk
//! ([`Gemm::packed_abt_acc`]). So each entry is the strict `k`-order chain over the
//! `(S, C)`-ordered products of the centred values — the bits of [`super::gram`] on an input
//! centred beforehand, whatever the input's memory layout (`(N, S, C)` or a transposed view of
//! `(N, C, H, W)`), the chunk, the block or the thread count. The input is read once per block of
//! rows it meets and never widened whole: memory is the output, for `(N, C, H, W)` input one
//! `(S, C)`-ordered copy in its own dtype ([`gram_none`]), plus, per thread, the block's packed
//! chunk and in `f32` one output block ([`scratch_bytes`]).
//!
//! Issue 8.1 measured where the time went (`docs/benchmarks.md`, "GEMM engine" (c)): widening
//! into `240 × 256` buffers element by element (scalar, with a finiteness test per value) and
//! packing each chunk again inside every GEMM call (a diagonal block's rows once per strip)
//! took ~40 % of the micro-kernels' time. Now the values are tested once, after the block (a
//! non-finite input makes the products it enters non-finite: `first_bad` then names it), the
//! centring loop is vectorised, each chunk is packed once, and blocks of 480 read the rows half
//! as often. Then centring into a buffer and packing it (8 % and 9 % of the time at N = 2000)
//! became one pass: on AVX-512, 8 rows × 8 steps widened, centred and transposed in registers.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut2, Axis, CowArray, Ix3};
use rayon::prelude::*;

use super::{
    check_nonempty, check_second, mirror_upper, none_block, pool, try_array2, try_filled, Real,
    NONE_BLOCK,
};
use crate::error::{Error, Result};
use crate::kernels::gemm::{Gemm, Operand, Packed};

/// Rows per strip of a diagonal block (a multiple of every micro-kernel's rows): only the
/// strips' part on and above the diagonal is computed, the rest is mirrored.
const STRIP: usize = 48;

pub use crate::kernels::centre::{Narrow, RawElement};

/// The working precision: a centred `f64` value rounded to it ([`Narrow`]).
pub trait Work: Narrow {
    /// The `f64` output block as a block of the working precision (`f64` only: there the
    /// products accumulate in the output itself).
    fn as_work(out: ArrayViewMut2<'_, f64>) -> Option<ArrayViewMut2<'_, Self>>;
}

impl Work for f64 {
    fn as_work(out: ArrayViewMut2<'_, f64>) -> Option<ArrayViewMut2<'_, Self>> {
        Some(out)
    }
}

impl Work for f32 {
    fn as_work(_: ArrayViewMut2<'_, f64>) -> Option<ArrayViewMut2<'_, Self>> {
        None
    }
}

/// Bytes of scratch one thread needs ([`super::scratch_bytes`] without affinities): the
/// block's rows of one chunk packed as both operands and, in `f32`, one output block.
#[must_use]
pub fn scratch_bytes(s: usize, c: usize, elem_bytes: usize) -> usize {
    let chunk = if elem_bytes < 8 {
        chunk::<f32>()
    } else {
        chunk::<f64>()
    };
    let k = s.saturating_mul(c).min(chunk);
    let block = if elem_bytes < 8 {
        NONE_BLOCK * NONE_BLOCK
    } else {
        0
    };
    // Packed blocks are rounded up to the widest panel (48 rows).
    (2 * (NONE_BLOCK + 48) * k + block).saturating_mul(elem_bytes)
}

/// `G = (x − μ)(y − μ)ᵀ` over the flattened `(S, C)` samples (`y = x` when `None`; `μ = 0`
/// when `mean` is `None`), each entry the strict `k`-order FMA chain in precision `T` of the
/// centred values `T(f64(x) − μ)`, returned as `f64`. `x` is `(N, S, C)` and `y` `(M, S, C)` in
/// any memory layout (strided views, e.g. `(N, C, H, W)` seen as `(N, S, C)`, are read as they
/// are); `mean` is `(S, C)`.
///
/// Complexity: `O(N·M·S·C)` (half in the square case); memory: the output plus
/// [`scratch_bytes`] per thread.
///
/// # Errors
/// [`Error::Empty`] and [`Error::Shape`] for empty or mismatched inputs, [`Error::NonFinite`]
/// for NaN/inf entries, [`Error::Range`] when centring or the working precision overflows, or
/// an inner product does, [`Error::TooLarge`] when the output cannot be allocated,
/// [`Error::InvalidOption`] for `threads == Some(0)`, [`Error::ThreadPool`],
/// [`Error::Interrupted`] once `cancel` is set. `progress` is incremented (relaxed) by the pairs
/// of each finished block, by [`super::tile_pairs`] in total.
///
/// # Example
/// ```
/// use ndarray::{array, Array3};
/// use std::sync::atomic::{AtomicBool, AtomicU64};
/// use semrsm::rsm::none::gram_none;
/// // Two samples of 2 positions × 1 channel, centred by their mean [[2], [1]].
/// let x = Array3::from_shape_vec((2, 2, 1), vec![1.0_f32, 2.0, 3.0, 0.0]).unwrap();
/// let mean = array![[2.0], [1.0]];
/// let g = gram_none::<f32, f64>(
///     x.view(), None, Some(mean.view()), Some(1), &AtomicBool::new(false), &AtomicU64::new(0),
/// ).unwrap();
/// assert_eq!(g, array![[2.0, -2.0], [-2.0, 2.0]]);
/// ```
pub fn gram_none<R: RawElement, T: Real>(
    x: ArrayView3<'_, R>,
    y: Option<ArrayView3<'_, R>>,
    mean: Option<ArrayView2<'_, f64>>,
    threads: Option<usize>,
    cancel: &AtomicBool,
    progress: &AtomicU64,
) -> Result<Array2<f64>> {
    let (_, s, c) = x.dim();
    check_nonempty(&x, "x")?;
    if let Some(y) = &y {
        check_second(&x, y)?;
    }
    let mean = match mean {
        Some(m) if m.dim() != (s, c) => {
            return Err(Error::Shape(format!(
                "the mean must have shape (S, C) = ({s}, {c}), got {:?}",
                m.dim()
            )))
        }
        Some(m) => Some(m.as_standard_layout().into_owned()),
        None => None,
    };
    if let Some(m) = &mean {
        if let Some(k) = m.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "mean",
                index: vec![k / c, k % c],
                value: m.iter().nth(k).copied().unwrap_or(f64::NAN),
            });
        }
    }
    let mean = mean.as_ref().and_then(|m| m.as_slice());
    pool::pool(threads)?.install(|| {
        let xs = by_sample(x)?;
        let ys = y.map(by_sample).transpose()?;
        fill_blocks::<R, T>(
            xs.view(),
            ys.as_ref().map(|y| y.view()),
            mean,
            cancel,
            progress,
        )
    })
}

/// `dst` (`cols × rows`, row-major) = the transpose of `src` (`rows × cols`), in 16 × 16 blocks
/// so that both sides are read and written a cache line at a time.
fn transpose<R: Copy>(src: &[R], dst: &mut [R], rows: usize, cols: usize) {
    const B: usize = 16;
    for r0 in (0..rows).step_by(B) {
        let r1 = rows.min(r0 + B);
        for c0 in (0..cols).step_by(B) {
            let c1 = cols.min(c0 + B);
            for r in r0..r1 {
                let line = &src[r * cols + c0..r * cols + c1];
                for (k, &e) in line.iter().enumerate() {
                    dst[(c0 + k) * rows + r] = e;
                }
            }
        }
    }
}

/// `a` with every sample stored `(S, C)` row-major (as is when it already is; otherwise a copy
/// in its own dtype, made in parallel one sample at a time: a transposed view of `(N, C, H, W)`
/// data is transposed once here, not once per block that reads it).
fn by_sample<R: RawElement>(a: ArrayView3<'_, R>) -> Result<CowArray<'_, R, Ix3>> {
    let (n, s, c) = a.dim();
    let st = a.strides();
    if (c == 1 || st[2] == 1) && (s == 1 || st[1] == c as isize) {
        return Ok(CowArray::from(a));
    }
    let len = n.checked_mul(s).and_then(|e| e.checked_mul(c));
    let zero = a[[0, 0, 0]];
    let mut out = Array3::from_shape_vec((n, s, c), try_filled(len, zero, "a copy of the input")?)
        .map_err(|e| Error::Shape(e.to_string()))?;
    out.outer_iter_mut()
        .into_par_iter()
        .zip(a.outer_iter().into_par_iter())
        .for_each(|(mut dst, src)| {
            let t = src.t();
            match (dst.as_slice_mut(), t.as_slice()) {
                (Some(dst), Some(src)) => transpose(src, dst, c, s),
                (_, _) => dst.assign(&src),
            }
        });
    Ok(CowArray::from(out))
}

/// The blocks of `G`, one task each (as [`super::spatio_semantic`]).
pub(super) fn fill_blocks<R: RawElement, T: Real>(
    x: ArrayView3<'_, R>,
    y: Option<ArrayView3<'_, R>>,
    mean: Option<&[f64]>,
    cancel: &AtomicBool,
    progress: &AtomicU64,
) -> Result<Array2<f64>> {
    let n = x.dim().0;
    let square = y.is_none();
    let yv = y.unwrap_or(x);
    let m = yv.dim().0;
    let mut values = try_array2(n, m, 0.0_f64, "the output tile")?;
    let side = none_block(n, m, square, rayon::current_num_threads().max(1));
    let mut blocks: Vec<(usize, usize, ArrayViewMut2<'_, f64>)> = Vec::new();
    for (bi, stripe) in values.axis_chunks_iter_mut(Axis(0), side).enumerate() {
        for (bj, block) in stripe.into_axis_chunks_iter_mut(Axis(1), side).enumerate() {
            if !square || bj >= bi {
                blocks.push((bi * side, bj * side, block));
            }
        }
    }
    let what = if square { "x" } else { "x and y" };
    // Largest first, taken in that order by every thread (a shared counter): the last blocks
    // to finish are the small ones (edges, diagonal strips), so no thread waits on a big one.
    let cost = |(i0, j0, out): &(usize, usize, ArrayViewMut2<'_, f64>)| {
        let (rows, cols) = out.dim();
        if square && i0 == j0 {
            rows * (rows + 1) / 2
        } else {
            rows * cols
        }
    };
    blocks.sort_by_key(|b| std::cmp::Reverse(cost(b)));
    let tasks: Vec<Mutex<(usize, usize, ArrayViewMut2<'_, f64>)>> =
        blocks.into_iter().map(Mutex::new).collect();
    let next = AtomicUsize::new(0);
    let workers = rayon::current_num_threads().clamp(1, tasks.len().max(1));
    (0..workers)
        .into_par_iter()
        .try_for_each(|_| -> Result<()> {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(task) = tasks.get(k) else {
                    return Ok(());
                };
                let mut guard = task.lock().unwrap_or_else(PoisonError::into_inner);
                let (i0, j0, out) = &mut *guard;
                let (i0, j0) = (*i0, *j0);
                let diagonal = square && i0 == j0;
                if let Err(e) = block::<R, T>(&x, &yv, mean, i0, j0, diagonal, out, cancel, what) {
                    next.store(tasks.len(), Ordering::Relaxed); // the other threads stop too
                    return Err(e);
                }
                let (rows, cols) = out.dim();
                let done = if diagonal {
                    (rows * (rows + 1) / 2) as u64
                } else {
                    (rows * cols) as u64
                };
                progress.fetch_add(done, Ordering::Relaxed);
            }
        })?;
    drop(tasks);
    if square {
        mirror_upper(&mut values);
    }
    Ok(values)
}

/// One block of `G` (rows `i0..`, columns `j0..`; `diagonal`: the rows of `x` against
/// themselves), chunk by chunk: each chunk's rows are widened, centred and packed in one pass
/// (as both operands on the diagonal) and used by every product of the block.
#[allow(clippy::too_many_arguments)]
fn block<R: RawElement, T: Real>(
    x: &ArrayView3<'_, R>,
    y: &ArrayView3<'_, R>,
    mean: Option<&[f64]>,
    i0: usize,
    j0: usize,
    diagonal: bool,
    out: &mut ArrayViewMut2<'_, f64>,
    cancel: &AtomicBool,
    what: &'static str,
) -> Result<()> {
    let (rows, cols) = out.dim();
    let (_, s, c) = x.dim();
    let k = s * c;
    let width = k.min(chunk::<T>());
    // f64 products accumulate in the output itself; f32 ones in a block buffer.
    let mut buffer: Option<Array2<T>> = None;
    let mut target = match T::as_work(out.view_mut()) {
        Some(view) => view,
        None => buffer
            .insert(try_array2(rows, cols, T::default(), "an output block")?)
            .view_mut(),
    };
    let gemm = Gemm::<T>::new();
    let (mut pa, mut pb) = (Packed::new(), Packed::new());
    let xs = samples(*x, i0, rows)?;
    let ys = if diagonal {
        Vec::new()
    } else {
        samples(*y, j0, cols)?
    };
    let (mut xpart, mut ypart): (Vec<&[R]>, Vec<&[R]>) = (Vec::new(), Vec::new());
    for k0 in (0..k).step_by(width) {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let w = width.min(k - k0);
        gemm.prepare(&mut pa, Operand::A, rows, w)?;
        gemm.prepare(&mut pb, Operand::B, if diagonal { rows } else { cols }, w)?;
        let mean = mean.map(|m| &m[k0..k0 + w]);
        chunk_of(&xs, k0, w, &mut xpart);
        if diagonal {
            // The rows centred once into both operands.
            gemm.pack_centred(&mut [&mut pa, &mut pb], &xpart, mean)?;
            // Strips of rows against the columns from their first row on: the block's upper
            // triangle (and the strips' own squares), not its full square.
            for r in (0..rows).step_by(STRIP) {
                let h = STRIP.min(rows - r);
                let part = target.slice_mut(s![r..r + h, r..]);
                gemm.packed_abt_acc(&pa, r..r + h, &pb, r..rows, part, k0 > 0)?;
            }
        } else {
            gemm.pack_centred(&mut [&mut pa], &xpart, mean)?;
            chunk_of(&ys, k0, w, &mut ypart);
            gemm.pack_centred(&mut [&mut pb], &ypart, mean)?;
            gemm.packed_abt_acc(&pa, 0..rows, &pb, 0..cols, target.view_mut(), k0 > 0)?;
        }
    }
    if let Some(buffer) = &buffer {
        out.zip_mut_with(buffer, |o, &e| *o = e.to_f64());
    }
    let mut finite = true;
    out.for_each(|o| finite &= o.is_finite());
    if finite {
        return Ok(());
    }
    // A non-finite entry, centred value or rounding to the working precision makes the
    // products it enters non-finite: name it if there is one, else an inner product overflowed.
    let name = if what == "x" { "x" } else { "y" };
    first_bad::<R, T>(x, i0, rows, mean, "x")?;
    if !diagonal {
        first_bad::<R, T>(y, j0, cols, mean, name)?;
    }
    let hint = if std::mem::size_of::<T>() < 8 {
        " (beyond what precision=\"float32\" can sum; use precision=\"float64\")"
    } else {
        ""
    };
    Err(Error::Range {
        what,
        detail: format!("an inner product of samples {i0}.. and {j0}.. overflows{hint}"),
    })
}

/// Products per chunk: one `k`-block of the GEMM ([`Gemm::block_steps`]), so that each chunk
/// is packed once and every micro-kernel runs over all of its steps.
fn chunk<T: Real>() -> usize {
    Gemm::<T>::block_steps()
}

/// Rows `r0..r0 + rows` of `a` (samples stored `(S, C)` row-major: [`by_sample`]), each as one
/// flat run of its products.
fn samples<'a, R: RawElement>(
    a: ArrayView3<'a, R>,
    r0: usize,
    rows: usize,
) -> Result<Vec<&'a [R]>> {
    (r0..r0 + rows)
        .map(|r| {
            a.index_axis_move(Axis(0), r)
                .to_slice()
                .ok_or_else(|| Error::Shape("a sample is not stored (S, C) row-major".into()))
        })
        .collect()
}

/// Products `k0..k0 + w` of each of `rows`, into `part`. The same products of the next chunk
/// are prefetched: read after this chunk's products, from rows the hardware prefetcher does not
/// follow (one short run per row).
fn chunk_of<'a, R>(rows: &[&'a [R]], k0: usize, w: usize, part: &mut Vec<&'a [R]>) {
    part.clear();
    for &row in rows {
        let len = row.len();
        crate::kernels::prefetch_l2(&row[(k0 + w).min(len)..(k0 + 2 * w).min(len)]);
        part.push(&row[k0..k0 + w]);
    }
}

/// The error for the first entry (row-major) of rows `r0..r0 + rows` of `a` that is not finite
/// or not once centred and rounded to the working precision; `Ok` when there is none.
fn first_bad<R: RawElement, T: Real>(
    a: &ArrayView3<'_, R>,
    r0: usize,
    rows: usize,
    mean: Option<&[f64]>,
    name: &'static str,
) -> Result<()> {
    let c = a.dim().2;
    for r in r0..r0 + rows {
        for (kk, &e) in a.index_axis(Axis(0), r).iter().enumerate() {
            let (p, ch) = (kk / c, kk % c);
            let e = e.widen();
            if !e.is_finite() {
                return Err(Error::NonFinite {
                    what: name,
                    index: vec![r, p, ch],
                    value: e,
                });
            }
            let mu = mean.map_or(0.0, |m| m[kk]);
            if !T::narrow(e - mu).to_f64().is_finite() {
                let hint = if std::mem::size_of::<T>() < 8 {
                    "exceeds the float32 range (use precision=\"float64\")"
                } else {
                    "overflows float64"
                };
                return Err(Error::Range {
                    what: name,
                    detail: format!(
                        "entry [{r}, {p}, {ch}] = {e:.6e} minus the mean {mu:.6e} {hint}"
                    ),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::Matcher;
    use crate::rsm::{gram, GramOptions};
    use ndarray::{Array2, Array3};

    fn values(len: usize, seed: u64) -> Vec<f64> {
        let mut state = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 1.3
            })
            .collect()
    }

    /// `x` stored `(N, C, S)` and seen as `(N, S, C)`, its mean, and the centred `(N, S, C)`
    /// copy in precision `T` (what the tile engine hands to `gram`).
    fn inputs<T: Real>(n: usize, s: usize, c: usize) -> (Array3<f32>, Array2<f64>, Array3<T>) {
        let ncs = Array3::from_shape_vec((n, c, s), values(n * c * s, 7))
            .unwrap()
            .mapv(|v| v as f32);
        let nsc = ncs.view().permuted_axes([0, 2, 1]);
        let mean = nsc.mapv(f64::from).mean_axis(Axis(0)).unwrap();
        let centred = Array3::from_shape_fn((n, s, c), |(i, p, k)| {
            T::narrow(f64::from(nsc[[i, p, k]]) - mean[[p, k]])
        });
        (ncs, mean, centred)
    }

    fn same_bits<T: Real>() {
        let (n, s, c) = (29, 13, 90); // S·C = 1170: three chunks, the last partial
        let (ncs, mean, centred) = inputs::<T>(n, s, c);
        let nsc = ncs.view().permuted_axes([0, 2, 1]);
        let (cancel, progress) = (AtomicBool::new(false), AtomicU64::new(0));
        let options = GramOptions {
            matcher: Matcher::None,
            threads: Some(2),
            ..GramOptions::default()
        };
        let want = gram(centred.view(), None, &options, &cancel)
            .unwrap()
            .values;
        let want_r = gram(
            centred.view(),
            Some(centred.slice(s![3..11, .., ..])),
            &options,
            &cancel,
        )
        .unwrap()
        .values;
        let standard = nsc.as_standard_layout().into_owned();
        for threads in [1, 3] {
            for x in [nsc, standard.view()] {
                for (y, want) in [(None, &want), (Some(x.slice(s![3..11, .., ..])), &want_r)] {
                    let got = gram_none::<f32, T>(
                        x,
                        y,
                        Some(mean.view()),
                        Some(threads),
                        &cancel,
                        &progress,
                    )
                    .unwrap();
                    assert!(got
                        .iter()
                        .zip(want)
                        .all(|(a, b)| a.to_bits() == b.to_bits()));
                }
            }
        }
    }

    /// Many blocks (diagonal strips, off-diagonal blocks, edges) in one call, for 1 and 3
    /// threads (blocks of 96 and 48), against the definition: each entry the strict `k`-order
    /// FMA chain of the centred values in precision `T`, computed naively.
    fn strict_chains<T: Real>(fma: fn(T, T, T) -> T) {
        let (n, s, c) = (130, 3, 70); // S·C = 210: two chunks, the last partial
        let (ncs, mean, centred) = inputs::<T>(n, s, c);
        let flat = centred.to_shape((n, s * c)).unwrap();
        let want = Array2::from_shape_fn((n, n), |(i, j)| {
            let mut acc = T::default();
            for p in 0..s * c {
                acc = fma(flat[[i, p]], flat[[j, p]], acc);
            }
            acc.to_f64()
        });
        let (cancel, progress) = (AtomicBool::new(false), AtomicU64::new(0));
        let nsc = ncs.view().permuted_axes([0, 2, 1]);
        for threads in [1, 3] {
            let got = gram_none::<f32, T>(
                nsc,
                None,
                Some(mean.view()),
                Some(threads),
                &cancel,
                &progress,
            )
            .unwrap();
            assert!(got
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
            let y = nsc.slice(s![60.., .., ..]);
            let got = gram_none::<f32, T>(
                nsc,
                Some(y),
                Some(mean.view()),
                Some(threads),
                &cancel,
                &progress,
            )
            .unwrap();
            let want_r = want.slice(s![.., 60..]);
            assert!(got
                .iter()
                .zip(want_r)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    #[test]
    fn many_blocks_are_the_strict_fma_chains_f64() {
        strict_chains::<f64>(f64::mul_add);
    }

    #[test]
    fn many_blocks_are_the_strict_fma_chains_f32() {
        strict_chains::<f32>(f32::mul_add);
    }

    #[test]
    fn raw_strided_input_has_the_bits_of_the_centred_copy_f64() {
        same_bits::<f64>();
    }

    #[test]
    fn raw_strided_input_has_the_bits_of_the_centred_copy_f32() {
        same_bits::<f32>();
    }

    #[test]
    fn accumulating_chunks_gives_the_bits_of_one_product() {
        let a = Array2::from_shape_vec((37, 700), values(37 * 700, 1)).unwrap();
        let b = Array2::from_shape_vec((45, 700), values(45 * 700, 2)).unwrap();
        let mut whole = Array2::zeros((37, 45));
        Gemm::new()
            .abt(a.view(), b.view(), whole.view_mut())
            .unwrap();
        let mut split = Array2::zeros((37, 45));
        let mut gemm = Gemm::new();
        for (k0, k1) in [(0, 3), (3, 300), (300, 301), (301, 700)] {
            let (pa, pb) = (a.slice(s![.., k0..k1]), b.slice(s![.., k0..k1]));
            gemm.abt_acc(pa, pb, split.view_mut(), k0 > 0).unwrap();
        }
        assert!(split
            .iter()
            .zip(&whole)
            .all(|(x, y)| x.to_bits() == y.to_bits()));
    }

    #[test]
    fn bad_input_is_an_error() {
        let (cancel, progress) = (AtomicBool::new(false), AtomicU64::new(0));
        let mut x = Array3::<f64>::zeros((3, 2, 2));
        x[[1, 0, 1]] = f64::NAN;
        let err = gram_none::<f64, f64>(x.view(), None, None, Some(1), &cancel, &progress);
        assert!(matches!(err, Err(Error::NonFinite { ref index, .. }) if *index == vec![1, 0, 1]));
        let mean = Array2::<f64>::zeros((2, 3));
        let err = gram_none::<f64, f64>(
            x.view(),
            None,
            Some(mean.view()),
            Some(1),
            &cancel,
            &progress,
        );
        assert!(matches!(err, Err(Error::Shape(_))));
        let big = Array3::<f64>::from_elem((2, 2, 2), 1e200);
        let err = gram_none::<f64, f64>(big.view(), None, None, Some(1), &cancel, &progress);
        assert!(matches!(err, Err(Error::Range { .. })));
        cancel.store(true, Ordering::Relaxed);
        let ok = Array3::<f64>::zeros((2, 2, 2));
        let err = gram_none::<f64, f64>(ok.view(), None, None, Some(1), &cancel, &progress);
        assert!(matches!(err, Err(Error::Interrupted)));
    }
}
