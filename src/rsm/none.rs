//! The spatio-semantic baseline ([`Matcher::None`](crate::matching::Matcher::None)) straight
//! from the raw input: `G = (X − μ)(Y − μ)ᵀ` on the flattened samples, without a widened,
//! centred copy of the input.
//!
//! `G` is computed in super-blocks of up to 2880 × 2880 entries (one for `N` up to 2880; in the
//! square case those on and above the diagonal, then mirrored in parallel). Each walks the
//! `S·C` products of a sample in `k`-chunks of one GEMM `k`-block ([`Gemm::block_steps`],
//! 192): the chunk of **all** the super-block's rows (and columns) is widened from its own
//! dtype (`f32` or `f64`) and centred (`f64(x) − μ`, then rounded to the working precision)
//! straight into the micro-kernels' packed layout, once, by all threads
//! ([`Gemm::pack_centred_par`], [`crate::kernels::centre::centre_pack`]; the rows of a diagonal
//! super-block as both operands at once), then the threads share the chunk's product in tasks of
//! 144 rows × up to 1152 columns, largest first (on the diagonal, strips of 48 rows from their
//! own diagonal on), and the deterministic GEMM continues every entry's FMA chain from the
//! previous chunk ([`Gemm::packed_abt_acc`]). So each entry is the strict `k`-order chain over
//! the `(S, C)`-ordered products of the centred values — the bits of [`super::gram`] on an
//! input centred beforehand, whatever the input's memory layout (`(N, S, C)` or a transposed view
//! of `(N, C, H, W)`), the chunk, the cut into tasks or the thread count. Memory: the output,
//! for `(N, C, H, W)` input one `(S, C)`-ordered copy in its own dtype ([`gram_none`], made with
//! in-register 8 × 8 transposes), and per call the super-block's packed chunk and in `f32` its
//! sums ([`scratch_bytes`]).
//!
//! Issue 8.1 measured where the time went (`docs/benchmarks.md`, "GEMM engine" (c)). Widening
//! element by element and packing each chunk inside every GEMM call went first (values are now
//! tested once, after the product: a non-finite input makes the products it enters non-finite,
//! and only then does `first_bad` search for it), then centring and packing became one pass
//! (on AVX-512, 8 rows × 8 steps widened, centred and transposed in registers). With square
//! blocks of up to 480, one task each, every row was still read from memory, centred and packed
//! once per block it met (six times at `N = 2000`), with the next chunk prefetched row by row:
//! packing and prefetching took ~11 % of the time. As OpenBLAS packs a panel once for all the
//! blocks that use it, each chunk of each row is now read and packed once per super-block.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut2, Axis, CowArray, Ix3};
use rayon::prelude::*;

use super::{
    alloc_error, check_nonempty, check_second, mirror_upper, pool, try_array2, try_filled, Real,
};
use crate::error::{Error, Result};
use crate::kernels::gemm::{Gemm, Operand, Packed};
use crate::kernels::Isa;

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

/// Bytes of scratch of one call on a tile of at most `rows` rows and columns
/// ([`super::scratch_bytes`] without affinities, there for any tile), shared by its threads: a
/// super-block's rows and columns of one chunk packed and, in `f32`, its sums.
#[must_use]
pub fn scratch_bytes(s: usize, c: usize, elem_bytes: usize, rows: usize) -> usize {
    let chunk = if elem_bytes < 8 {
        chunk::<f32>()
    } else {
        chunk::<f64>()
    };
    let k = s.saturating_mul(c).min(chunk);
    let side = rows.min(SUPER);
    let sums = if elem_bytes < 8 { side * side } else { 0 };
    // Packed blocks are rounded up to the widest panel (48 rows).
    (2 * (side + 48) * k + sums).saturating_mul(elem_bytes)
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
    // Allocated without filling (each value is written once, in parallel, which also spreads
    // the page faults of a fresh allocation over the threads).
    let mut data: Vec<R> = Vec::new();
    let len = len.ok_or_else(|| alloc_error::<R>(None, "a copy of the input"))?;
    data.try_reserve_exact(len)
        .map_err(|_| alloc_error::<R>(Some(len), "a copy of the input"))?;
    let per = s * c;
    data.spare_capacity_mut()[..len]
        .par_chunks_mut(per)
        .zip(a.outer_iter().into_par_iter())
        .for_each(|(dst, src)| {
            let t = src.t();
            match t.as_slice() {
                Some(src) => crate::kernels::gemm::transpose(src, dst, c, s),
                None => {
                    for (d, &e) in dst.iter_mut().zip(src.iter()) {
                        d.write(e);
                    }
                }
            }
        });
    // SAFETY: the first `len` values were all written above (one sample of `s·c` values per
    // chunk, each written whole by `transpose` or the loop over its `(S, C)`-ordered values).
    unsafe { data.set_len(len) };
    let out = Array3::from_shape_vec((n, s, c), data).map_err(|e| Error::Shape(e.to_string()))?;
    Ok(CowArray::from(out))
}

/// Rows of `G` per task of a chunk's product (a multiple of every micro-kernel's rows and
/// panels and of [`STRIP`]): its rows of the packed chunk (`A`, 216 KiB in `f64`) stay in L2
/// while the columns' panels pass.
const PANEL: usize = 144;

/// Columns of `G` per task at most (a multiple of [`PANEL`]): enough tasks per chunk to keep
/// every thread busy until the chunk's end.
const TASK_COLS: usize = 8 * PANEL;

/// Rows (and columns) of `G` per super-block (a multiple of [`PANEL`]): a super-block's rows
/// are packed once per chunk and shared by all its tasks, so this bounds the packed chunk.
pub(super) const SUPER: usize = 20 * PANEL;

/// Rows per rayon task of the packing (a multiple of every panel width).
const PACK_GROUP: usize = 48;

/// How the product is cut into work: rows per task ([`PANEL`]), columns per task at most
/// ([`TASK_COLS`]), the side of a super-block ([`SUPER`]), and the instruction set (`None`: the
/// process's). No entry's bits depend on them (tests use small sizes to reach every case with
/// small inputs, and every instruction set).
#[derive(Clone, Copy, Debug)]
struct Sizes {
    panel: usize,
    task_cols: usize,
    side: usize,
    isa: Option<Isa>,
}

/// The sizes of every call.
const SIZES: Sizes = Sizes {
    panel: PANEL,
    task_cols: TASK_COLS,
    side: SUPER,
    isa: None,
};

/// `G` in super-blocks of up to [`SUPER`] × [`SUPER`] entries (in the square case those on
/// and above the diagonal, then mirrored), each computed chunk by chunk (as
/// [`super::spatio_semantic`]; [`super_block`]).
pub(super) fn fill_blocks<R: RawElement, T: Real>(
    x: ArrayView3<'_, R>,
    y: Option<ArrayView3<'_, R>>,
    mean: Option<&[f64]>,
    cancel: &AtomicBool,
    progress: &AtomicU64,
) -> Result<Array2<f64>> {
    fill_sized::<R, T>(x, y, mean, cancel, progress, SIZES)
}

/// [`fill_blocks`] with the work cut by `sizes`.
fn fill_sized<R: RawElement, T: Real>(
    x: ArrayView3<'_, R>,
    y: Option<ArrayView3<'_, R>>,
    mean: Option<&[f64]>,
    cancel: &AtomicBool,
    progress: &AtomicU64,
    sizes: Sizes,
) -> Result<Array2<f64>> {
    let n = x.dim().0;
    let square = y.is_none();
    let yv = y.unwrap_or(x);
    let m = yv.dim().0;
    let mut values = try_array2(n, m, 0.0_f64, "the output tile")?;
    let mut scratch = Scratch::<T>::default();
    let side = sizes.side;
    for (bi, mut stripe) in values.axis_chunks_iter_mut(Axis(0), side).enumerate() {
        let i0 = bi * side;
        let j_start = if square { i0 } else { 0 };
        let cols = stripe.ncols();
        let mut rest = stripe.slice_mut(s![.., j_start..]);
        for (bj, out) in rest.axis_chunks_iter_mut(Axis(1), side).enumerate() {
            let j0 = j_start + bj * side;
            let diagonal = square && i0 == j0;
            let mut out = out;
            super_block::<R, T>(
                &x,
                &yv,
                mean,
                (i0, j0, diagonal, square),
                &mut out,
                &mut scratch,
                sizes,
                cancel,
                progress,
            )?;
            debug_assert!(j0 + out.ncols() <= cols);
        }
    }
    if square {
        mirror_upper(&mut values);
    }
    Ok(values)
}

/// Buffers kept across the super-blocks of a call: the packed chunk of the rows (`A`) and the
/// columns (`B`), and in `f32` the super-block's sums.
#[derive(Default)]
struct Scratch<T> {
    a: Packed<T>,
    b: Packed<T>,
    sums: Vec<T>,
}

/// One task of a chunk's product: rows `r0..r1` of the super-block against its columns
/// `c0..c1`; in a diagonal super-block the columns start at `r0`, and its square on the
/// diagonal is computed in strips of [`STRIP`] rows from their own diagonal on.
#[derive(Clone, Copy)]
struct Task {
    r0: usize,
    r1: usize,
    c0: usize,
    c1: usize,
}

/// One super-block of `G` (rows `i0..` of `x`, columns `j0..` of `y`; `diagonal`: the rows of
/// `x` against themselves), chunk by chunk: each chunk of all its rows (and columns) is widened,
/// centred and packed once, in parallel ([`Gemm::pack_centred_par`]; as both operands on the
/// diagonal), then its product is split into tasks of [`PANEL`] rows × up to [`TASK_COLS`]
/// columns that the threads take largest first. Every entry continues its FMA chain from the
/// previous chunk, so the bits are those of one strict `k`-order chain per entry.
#[allow(clippy::too_many_arguments)]
fn super_block<R: RawElement, T: Real>(
    x: &ArrayView3<'_, R>,
    y: &ArrayView3<'_, R>,
    mean: Option<&[f64]>,
    (i0, j0, diagonal, square): (usize, usize, bool, bool),
    out: &mut ArrayViewMut2<'_, f64>,
    scratch: &mut Scratch<T>,
    sizes: Sizes,
    cancel: &AtomicBool,
    progress: &AtomicU64,
) -> Result<()> {
    let (rows, cols) = out.dim();
    let (_, s, c) = x.dim();
    let k = s * c;
    let width = k.min(chunk::<T>());
    let what = if square { "x" } else { "x and y" };
    // f64 products accumulate in the output itself; f32 ones in a buffer.
    let mut buffer: Option<ArrayViewMut2<'_, T>> = None;
    let mut target = match T::as_work(out.view_mut()) {
        Some(view) => view,
        None => {
            let len = rows * cols;
            if scratch.sums.len() < len {
                scratch.sums = try_filled(Some(len), T::default(), "an output block")?;
            }
            let view = ArrayViewMut2::from_shape((rows, cols), &mut scratch.sums[..len])
                .map_err(|e| Error::Shape(e.to_string()))?;
            buffer.insert(view).view_mut()
        }
    };
    let mut tasks = Vec::new();
    for r0 in (0..rows).step_by(sizes.panel) {
        let r1 = rows.min(r0 + sizes.panel);
        let first = if diagonal { r0 } else { 0 };
        for c0 in (first..cols).step_by(sizes.task_cols) {
            tasks.push(Task {
                r0,
                r1,
                c0,
                c1: cols.min(c0 + sizes.task_cols),
            });
        }
    }
    // Largest first, taken in that order by every thread (a shared counter): the last tasks
    // to finish are the small ones, so no thread waits long at a chunk's end.
    tasks.sort_by_key(|t| std::cmp::Reverse((t.r1 - t.r0) * (t.c1 - t.c0)));
    let pairs = if diagonal {
        (rows * (rows + 1) / 2) as u64
    } else {
        (rows * cols) as u64
    };
    let gemm = sizes.isa.map_or_else(Gemm::<T>::new, Gemm::<T>::with_isa);
    let xs = samples(*x, i0, rows)?;
    let ys = if diagonal {
        Vec::new()
    } else {
        samples(*y, j0, cols)?
    };
    let (mut xpart, mut ypart): (Vec<&[R]>, Vec<&[R]>) = (Vec::new(), Vec::new());
    let (pa, pb) = (&mut scratch.a, &mut scratch.b);
    let chunks = k.div_ceil(width) as u64;
    let mut reported = 0;
    for (index, k0) in (0..k).step_by(width).enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let w = width.min(k - k0);
        gemm.prepare(pa, Operand::A, rows, w)?;
        gemm.prepare(pb, Operand::B, if diagonal { rows } else { cols }, w)?;
        let mean = mean.map(|m| &m[k0..k0 + w]);
        chunk_of(&xs, k0, w, &mut xpart);
        if diagonal {
            gemm.pack_centred_par(&mut [&mut *pa, &mut *pb], &xpart, mean, PACK_GROUP)?;
        } else {
            gemm.pack_centred_par(&mut [&mut *pa], &xpart, mean, PACK_GROUP)?;
            chunk_of(&ys, k0, w, &mut ypart);
            gemm.pack_centred_par(&mut [&mut *pb], &ypart, mean, PACK_GROUP)?;
        }
        product(
            &gemm,
            (pa, pb),
            &tasks,
            sizes.panel,
            &mut target,
            diagonal,
            k0 > 0,
        )?;
        let done = pairs * (index as u64 + 1) / chunks;
        progress.fetch_add(done - reported, Ordering::Relaxed);
        reported = done;
    }
    if let Some(buffer) = &buffer {
        out.zip_mut_with(buffer, |o, &e| *o = e.to_f64());
    }
    let mut bad = None;
    for ((i, j), o) in out.indexed_iter() {
        if !o.is_finite() && (!diagonal || j >= i) {
            bad = Some((i, j));
            break;
        }
    }
    let Some((i, j)) = bad else {
        return Ok(());
    };
    // A non-finite entry, centred value or rounding to the working precision makes the
    // products it enters non-finite: name it if there is one, else an inner product overflowed.
    first_bad::<R, T>(x, i0, rows, mean, "x")?;
    if !diagonal {
        first_bad::<R, T>(y, j0, cols, mean, if square { "x" } else { "y" })?;
    }
    let hint = if std::mem::size_of::<T>() < 8 {
        " (beyond what precision=\"float32\" can sum; use precision=\"float64\")"
    } else {
        ""
    };
    Err(Error::Range {
        what,
        detail: format!(
            "the inner product of samples {} and {} overflows{hint}",
            i0 + i,
            j0 + j
        ),
    })
}

/// One chunk's product over all `tasks` of a super-block (`a`, `b`: its rows and columns
/// packed), the threads taking the tasks in order from a shared counter.
fn product<T: Real>(
    gemm: &Gemm<T>,
    (a, b): (&Packed<T>, &Packed<T>),
    tasks: &[Task],
    panel: usize,
    target: &mut ArrayViewMut2<'_, T>,
    diagonal: bool,
    accumulate: bool,
) -> Result<()> {
    // Each task writes its own rectangle of the target; the bands of PANEL rows are disjoint,
    // and the tasks of one band (column ranges) take it in turn.
    let bands: Vec<Mutex<ArrayViewMut2<'_, T>>> = target
        .axis_chunks_iter_mut(Axis(0), panel)
        .map(Mutex::new)
        .collect();
    let next = AtomicUsize::new(0);
    let workers = rayon::current_num_threads().clamp(1, tasks.len().max(1));
    (0..workers)
        .into_par_iter()
        .try_for_each(|_| -> Result<()> {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&Task { r0, r1, c0, c1 }) = tasks.get(i) else {
                    return Ok(());
                };
                let mut band = bands[r0 / panel]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let mut from = c0;
                if diagonal && c0 == r0 {
                    // The square on the diagonal: strips from their own diagonal on.
                    let end = r1.min(c1);
                    for r in (r0..r1).step_by(STRIP) {
                        let h = STRIP.min(r1 - r);
                        let part = band.slice_mut(s![r - r0..r - r0 + h, r..end]);
                        gemm.packed_abt_acc(a, r..r + h, b, r..end, part, accumulate)?;
                    }
                    from = end;
                }
                if from < c1 {
                    let part = band.slice_mut(s![.., from..c1]);
                    gemm.packed_abt_acc(a, r0..r1, b, from..c1, part, accumulate)?;
                }
            }
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

/// Products `k0..k0 + w` of each of `rows`, into `part`.
fn chunk_of<'a, R>(rows: &[&'a [R]], k0: usize, w: usize, part: &mut Vec<&'a [R]>) {
    part.clear();
    part.extend(rows.iter().map(|row| &row[k0..k0 + w]));
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

    /// The work cut small (tasks of 48 rows × 48 or 96 columns, super-blocks of 48 or 144:
    /// strips, split columns, several super-blocks on and off the diagonal, partial ones) and
    /// as in every call, on every instruction set and 1 and 3 threads, against the naive strict
    /// chains; edge shapes: N = 1, N and M multiples of nothing, S·C = 1 and 2. The progress
    /// counter ends at the tile's pairs.
    fn cut_small<T: Real>(fma: fn(T, T, T) -> T) {
        for &(n, m, s, c) in &[
            (1, 1, 1, 1),
            (1, 4, 2, 1),
            (151, 100, 3, 40),
            (97, 50, 1, 2),
        ] {
            let (ncs, mean, centred) = inputs::<T>(n, s, c);
            let ys = Array3::from_shape_vec((m, s, c), values(m * s * c, 11))
                .unwrap()
                .mapv(|v| v as f32);
            let flat = centred.to_shape((n, s * c)).unwrap();
            let ycentred = Array3::from_shape_fn((m, s, c), |(i, p, k)| {
                T::narrow(f64::from(ys[[i, p, k]]) - mean[[p, k]])
            });
            let yflat_c = ycentred.to_shape((m, s * c)).unwrap();
            let chain = |a: ndarray::ArrayView1<'_, T>, b: ndarray::ArrayView1<'_, T>| {
                let mut acc = T::default();
                for (&p, &q) in a.iter().zip(b) {
                    acc = fma(p, q, acc);
                }
                acc.to_f64().to_bits()
            };
            let want = Array2::from_shape_fn((n, n), |(i, j)| {
                let (i, j) = (i.min(j), i.max(j)); // the upper triangle's chains, mirrored
                chain(flat.row(i), flat.row(j))
            });
            let want_r = Array2::from_shape_fn((n, m), |(i, j)| chain(flat.row(i), yflat_c.row(j)));
            let x = by_sample(ncs.view().permuted_axes([0, 2, 1])).unwrap();
            let mean = mean.as_standard_layout().into_owned();
            let mean = mean.as_slice();
            let cancel = AtomicBool::new(false);
            for isa in [Isa::Portable, Isa::Avx2, Isa::Avx512] {
                for (panel, task_cols, side) in
                    [(48, 96, 144), (48, 48, 48), (PANEL, TASK_COLS, SUPER)]
                {
                    let sizes = Sizes {
                        panel,
                        task_cols,
                        side,
                        isa: Some(isa),
                    };
                    for threads in [1, 3] {
                        let progress = AtomicU64::new(0);
                        let (g, r) = pool::pool(Some(threads))
                            .unwrap()
                            .install(|| {
                                let g = fill_sized::<f32, T>(
                                    x.view(),
                                    None,
                                    mean,
                                    &cancel,
                                    &progress,
                                    sizes,
                                )?;
                                let r = fill_sized::<f32, T>(
                                    x.view(),
                                    Some(ys.view()),
                                    mean,
                                    &cancel,
                                    &progress,
                                    sizes,
                                )?;
                                Ok::<_, Error>((g, r))
                            })
                            .unwrap();
                        let at = format!("{isa:?} {sizes:?} {threads} threads, {n} x {m}");
                        assert!(g.iter().zip(&want).all(|(a, &b)| a.to_bits() == b), "{at}");
                        assert!(
                            r.iter().zip(&want_r).all(|(a, &b)| a.to_bits() == b),
                            "{at}"
                        );
                        let pairs = (n * (n + 1) / 2 + n * m) as u64;
                        assert_eq!(progress.load(Ordering::Relaxed), pairs, "{at}");
                    }
                }
            }
        }
    }

    #[test]
    fn small_cuts_are_the_strict_fma_chains_on_every_isa_f64() {
        cut_small::<f64>(f64::mul_add);
    }

    #[test]
    fn small_cuts_are_the_strict_fma_chains_on_every_isa_f32() {
        cut_small::<f32>(f32::mul_add);
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
