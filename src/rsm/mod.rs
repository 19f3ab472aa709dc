//! The pairwise fill: matched inner products `G[i, j] = max_P ⟨x_i, P y_j⟩` for all pairs.
//!
//! Inputs are `(N, S, C)` arrays (samples, positions, channels). Without `y` the result is the
//! symmetric `N × N` matrix of `x` against itself, computed for `i < j` only and mirrored (the
//! diagonal is `‖x_i‖²`, the identity being an optimal self-matching); with `y`
//! of shape `(M, S, C)` it is the `N × M` matrix of every `x_i` against every `y_j`.
//!
//! The affinities `A = x_i y_jᵀ` (`S × S`) of a block of `b × b` pairs are one GEMM,
//! `(b·S × C)·(C × b·S)`, with semrsm's deterministic GEMM ([`crate::kernels::gemm`], every entry
//! a strict-order FMA chain, so a pair's affinity has the same bits inside any block); each pair's
//! `S × S` block is then copied out, the matcher picks a permutation and `G = Σ_s A[s, perm[s]]`.
//! `b` is the largest with the block's affinities within 4 MiB per thread (`b = 14` at `S = 49`
//! in `f64`, one pair per GEMM from `S ≈ 360`), lowered so every thread gets several blocks. The per-position norms `‖x_i[s]‖` that the
//! norm-based matchers need are computed once per sample (while validating the input), not per
//! pair. Pairs are distributed over a rayon pool; each pair's value depends on that pair's data
//! alone, so results are bit-identical for any number of threads. The spatio-semantic baseline
//! ([`Matcher::None`]) needs no affinity: it is one GEMM of the flattened samples, in output
//! blocks (the upper triangle only in the square case; again independent of the thread count);
//! [`none::gram_none`] computes it from the raw input, widening and centring chunk by chunk.
//!
//! In the square case the diagonal is not matched: `max_P ⟨x, P x⟩ = ‖x‖²` (Cauchy–Schwarz, the
//! identity attains it), which is also the value every matcher would reach at best, so
//! approximate matchers are exact on the diagonal, and its bound is `‖x_i‖²` too.
//!
//! With [`GramOptions::return_bound`] every pair also gets a certified upper bound on its exact
//! matched inner product ([`Matcher::assign_with_bound`]).
//!
//! # Tiles
//! [`gram_tile`] is the unit of work of large runs: it computes one tile of `G` (rows `I`,
//! columns `J`) from the rows `x[I]` and `y[J]` alone (a *diagonal* tile, `I = J` of the square
//! case, from `x[I]` only). Every entry depends only on the two samples it compares (every GEMM
//! entry is the same FMA chain whatever block it is computed in, and matching is per pair),
//! so a tile is bit-identical whatever the tile size, thread count or machine run order; the
//! Python layer (`semrsm._tiles`) plans the tiles, reads and centres the row blocks and writes
//! the results to memory or to a file. [`gram`] is the one-tile case. Memory: the tile's output
//! (and permutations), plus [`scratch_bytes`] per thread; every large buffer is allocated
//! fallibly, so running out of memory is [`Error::TooLarge`], never an abort.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::kernels::centre::row_stats;
use crate::kernels::gemm::{workspace_bytes, Gemm, GemmScalar, Operand, Packed};
use crate::lap::Cost;
use crate::matching::mixed::{self, PairFactors};
use crate::matching::shift::{self, spectra_block, ShiftWorkspace, FEATURES_FROM};
use crate::matching::{matched_sum, Affinity, Matcher, Workspace};

pub mod none;
pub mod pool;
pub mod scan;

/// Floating-point type of the representations and affinities: `f64` (default) or `f32`.
pub trait Real:
    Cost + GemmScalar + ndarray::LinalgScalar + Send + Sync + none::Work + none::RawElement
{
    /// Largest product of two concept-vector norms for which affinities stay safely finite.
    const MAX_PRODUCT: f64;

    /// `out = a·bᵀ` widened to `f64`: written in place for `f64`, through a buffer of
    /// `out`'s size for `f32`.
    ///
    /// # Errors
    /// As [`Gemm::abt`].
    fn abt_into_f64(
        gemm: &mut Gemm<Self>,
        a: ArrayView2<'_, Self>,
        b: ArrayView2<'_, Self>,
        out: ArrayViewMut2<'_, f64>,
    ) -> Result<()>;
}

impl Real for f64 {
    const MAX_PRODUCT: f64 = 1e300;

    fn abt_into_f64(
        gemm: &mut Gemm<Self>,
        a: ArrayView2<'_, Self>,
        b: ArrayView2<'_, Self>,
        out: ArrayViewMut2<'_, f64>,
    ) -> Result<()> {
        gemm.abt(a, b, out)
    }
}

impl Real for f32 {
    const MAX_PRODUCT: f64 = 1e37;

    fn abt_into_f64(
        gemm: &mut Gemm<Self>,
        a: ArrayView2<'_, Self>,
        b: ArrayView2<'_, Self>,
        mut out: ArrayViewMut2<'_, f64>,
    ) -> Result<()> {
        let (rows, cols) = out.dim();
        let mut buffer = try_array2(rows, cols, 0.0_f32, "a block of the output")?;
        gemm.abt(a, b, buffer.view_mut())?;
        out.zip_mut_with(&buffer, |v, &e| *v = f64::from(e));
        Ok(())
    }
}

/// Largest number of permutation entries (`N · M · S`) returned (2³⁰: 8 GiB as `i64`).
pub const MAX_PERMUTATION_ENTRIES: usize = 1 << 30;
/// Largest affinity matrix per thread, in bytes (4 GiB: `S ≈ 23 000` in `f64`).
pub const MAX_AFFINITY_BYTES: usize = 1 << 32;
/// Largest output matrix, in entries (2³¹: 16 GiB of `f64`).
pub const MAX_OUTPUT_ENTRIES: usize = 1 << 31;

/// Bytes of the affinities of one block of pairs, computed by one GEMM per task (per thread):
/// `(b·S) × (b·S)` entries for a block of `b × b` pairs. Large enough that the GEMM runs at its
/// speed on long panels even at `S = 49`, small enough to stay in a core's L2/L3 share.
const PAIR_BLOCK_BYTES: usize = 4 << 20;

/// Pairs per side of the blocks whose affinities one GEMM computes: the largest `b` with
/// `(b·S)²` affinities of `elem_bytes` bytes within [`PAIR_BLOCK_BYTES`], at least 1 (one pair
/// per GEMM when a single `S × S` affinity is larger).
fn pair_block(s: usize, elem_bytes: usize) -> usize {
    let per_pair = s.saturating_mul(s).saturating_mul(elem_bytes).max(1);
    (PAIR_BLOCK_BYTES / per_pair).isqrt().max(1)
}

/// Bytes of scratch one thread of the pairwise fill needs for samples of `s` positions and `c`
/// channels whose affinities are stored in `elem_bytes`-byte floats: the `S × S` affinity plus
/// the matchers' largest workspace (an `S × S` `f64` block copy, or the exact solver's and the
/// auction's `f32` copies), `O(S)` vectors, the affinities of a block of pairs (at most
/// `PAIR_BLOCK_BYTES`, 4 MiB, when several pairs share one GEMM) and the GEMM's packing buffers
/// (the shift matcher by FFT: [`shift_scratch_bytes`]).
/// Without affinities ([`Matcher::None`] without bounds): the baseline's buffers for any tile
/// ([`none::scratch_bytes`]; shared by the threads, so also a bound per thread). An upper bound,
/// used for the memory estimate before a run.
#[must_use]
pub fn scratch_bytes(s: usize, c: usize, elem_bytes: usize, needs_affinity: bool) -> usize {
    if !needs_affinity {
        return none::scratch_bytes(s, c, elem_bytes, usize::MAX);
    }
    affinity_scratch_bytes(s, c, elem_bytes)
}

/// [`scratch_bytes`] of [`Matcher::Shift`] without bounds: from [`FEATURES_FROM`] positions on
/// it keeps its samples' spectra instead of affinities (at most what the affinities would take,
/// or [`shift::SPECTRA_BYTES`], or one sample per side), a sample channel by channel and `O(S)`
/// buffers; the larger of that and the affinity path (an upper bound either way).
#[must_use]
pub fn shift_scratch_bytes(s: usize, c: usize, elem_bytes: usize) -> usize {
    let affinities = affinity_scratch_bytes(s, c, elem_bytes);
    if s < FEATURES_FROM {
        return affinities;
    }
    let sc = s.saturating_mul(c);
    let spectra = spectra_budget(affinities)
        .max(sc.saturating_mul(32))
        .saturating_add(sc.saturating_mul(8))
        .saturating_add(s.saturating_mul(128));
    affinities.max(spectra)
}

/// [`scratch_bytes`] of the matchers that read affinities.
fn affinity_scratch_bytes(s: usize, c: usize, elem_bytes: usize) -> usize {
    let b = pair_block(s, elem_bytes);
    let block = if b > 1 {
        (b * s).saturating_mul(b * s).saturating_mul(elem_bytes)
    } else {
        0
    };
    s.saturating_mul(s)
        .saturating_mul(elem_bytes.saturating_add(8))
        .saturating_add(s.saturating_mul(256))
        .saturating_add(block)
        .saturating_add(workspace_bytes(elem_bytes, b * s, b * s, c))
}

/// Bytes one thread keeps for the spectra of a block of pairs when the shift matcher runs by
/// FFT: what the affinity path's scratch takes (`affinities`, which it replaces), and at least
/// [`shift::SPECTRA_BYTES`].
fn spectra_budget(affinities: usize) -> usize {
    affinities.max(shift::SPECTRA_BYTES)
}

/// A `rows × cols` array filled with `value`, allocated fallibly: [`Error::TooLarge`] instead of
/// an abort when the memory is not there.
fn try_array2<A: Clone>(rows: usize, cols: usize, value: A, what: &str) -> Result<Array2<A>> {
    let v = try_filled(rows.checked_mul(cols), value, what)?;
    Array2::from_shape_vec((rows, cols), v).map_err(|e| Error::Shape(e.to_string()))
}

/// The error for an allocation of `len` values of `A` (`None`: more than `usize` counts) for
/// `what` that failed.
fn alloc_error<A>(len: Option<usize>, what: &str) -> Error {
    Error::TooLarge(format!(
        "could not allocate {what} ({} bytes): not enough memory; lower `threads`, use `out=` (a \
         file) or smaller tiles, or precision=\"float32\"",
        len.map_or_else(
            || "too many".to_string(),
            |l| l.saturating_mul(std::mem::size_of::<A>()).to_string()
        )
    ))
}

/// A vector of `len` copies of `value`, allocated fallibly.
fn try_filled<A: Clone>(len: Option<usize>, value: A, what: &str) -> Result<Vec<A>> {
    let too_large = |len: Option<usize>| alloc_error::<A>(len, what);
    let len = len.ok_or_else(|| too_large(None))?;
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| too_large(Some(len)))?;
    v.resize(len, value);
    Ok(v)
}

/// Options of [`gram`].
#[derive(Debug, Clone)]
pub struct GramOptions {
    /// How positions are matched.
    pub matcher: Matcher,
    /// `None`: one thread per core; `Some(n)`: `n ≥ 1` threads. The pools are semrsm's own,
    /// kept per process ([`pool`]), so they survive `fork`; rayon's global pool is not used.
    pub threads: Option<usize>,
    /// Also return the permutation of every pair.
    pub return_permutations: bool,
    /// Also return, for every pair, a certified upper bound on the exact matched inner product
    /// ([`Matcher::assign_with_bound`]). Needs the affinity of every pair, also for
    /// [`Matcher::None`].
    pub return_bound: bool,
    /// Prefix tokens `k` (timm's `num_prefix_tokens`: a ViT's CLS and register tokens): the
    /// first `k` positions are compared position by position and not matched, the other
    /// `S − k` are matched, so `G[i, j] = Σ_{t<k} ⟨x_i[t], y_j[t]⟩ + max_P ⟨x_i[k..], P y_j[k..]⟩`.
    /// The matcher sees only the `S − k` matched positions (for [`Matcher::Shift`] they are the
    /// grid), permutations map `t ↦ t` for `t < k`, and the bound is the prefix part plus the
    /// bound of the matched part. Must be below `S`; `0` (default) matches every position.
    pub prefix_tokens: usize,
    /// Exact matching from `f32` affinities with an `f64` certificate
    /// ([`crate::matching::mixed`]): for `f64` input and the exact matchers (including
    /// `topk_greedy`/`batch_optimal` when they are exact), each pair's affinity is computed and
    /// solved in `f32`, the permutation is proved optimal for the `f64` affinities (or the pair is
    /// solved again in `f64` where it is not), and `G` is summed from `f64` dot products.
    /// The approximate matchers `greedy`, `auction` and `topk_greedy`/`batch_optimal` (when not
    /// exact) choose their permutation on the `f32` affinities ([`crate::matching::choose_f32`]):
    /// `G` is that permutation's `f64` value, the bound the `f32` dual plus the `f32` GEMM's
    /// rounding bound per row (still an upper bound on the `f64` optimum), and an auction that
    /// misses its target against it is solved exactly in `f64`.
    /// Ignored for `f32` input, for `none` and `shift`, and for a call whose norms could take
    /// the `f32` affinities near overflow ([`crate::matching::mixed::f32_is_safe`]): those run
    /// as without it.
    pub mixed_precision: bool,
}

impl Default for GramOptions {
    fn default() -> Self {
        Self {
            matcher: Matcher::Exact,
            threads: None,
            return_permutations: false,
            return_bound: false,
            prefix_tokens: 0,
            mixed_precision: false,
        }
    }
}

/// Result of [`gram`].
#[derive(Debug, Clone)]
pub struct Gram {
    /// `G`, `N × N` (symmetric) or `N × M`.
    pub values: Array2<f64>,
    /// With [`GramOptions::return_permutations`]: `perm[i, j, s]` is the position of `y_j`
    /// matched to position `s` of `x_i`. In the square case `perm[j, i]` is the inverse of
    /// `perm[i, j]`, and `perm[i, i]` is the identity.
    pub permutations: Option<Array3<i64>>,
    /// With [`GramOptions::return_bound`]: `bound[i, j] ≥ max_P ⟨x_i, P y_j⟩ ≥ values[i, j]`
    /// (up to rounding); equal to `values` for [`Matcher::Exact`] (and on the square diagonal).
    pub bounds: Option<Array2<f64>>,
}

/// Compute the matched inner products of all pairs of samples.
///
/// `x` is `(N, S, C)`; `y`, if given, `(M, S, C)` with the same `S` and `C`. `cancel` is polled
/// between pairs: once it is set the function returns [`Error::Interrupted`] promptly. This is
/// [`gram_tile`] on the whole input (one tile).
///
/// Complexity: `N(N+1)/2` (or `N·M`) pairs, each `O(S²·C)` for the affinity plus the matcher's
/// cost (`O(S³)` worst case for [`Matcher::Exact`]); [`Matcher::None`] is one `O(N·M·S·C)` GEMM.
///
/// # Errors
/// [`Error::Empty`] for a zero-sized dimension, [`Error::Shape`] for mismatched `S` or `C`,
/// [`Error::NonFinite`] for NaN/inf entries, [`Error::Range`] for values whose products would
/// overflow, [`Error::TooLarge`] when the output, permutations or per-thread affinity exceed the
/// limits above or cannot be allocated, [`Error::InvalidOption`] for `threads == Some(0)` or
/// `prefix_tokens ≥ S`, [`Error::ThreadPool`], [`Error::Interrupted`].
///
/// # Example
/// ```
/// use ndarray::Array3;
/// use std::sync::atomic::AtomicBool;
/// use semrsm::rsm::{gram, GramOptions};
/// // Two samples with 2 positions of 1 channel: y is x with its positions swapped.
/// let x = Array3::from_shape_vec((2, 2, 1), vec![1.0, 2.0, 2.0, 1.0]).unwrap();
/// let g = gram(x.view(), None, &GramOptions::default(), &AtomicBool::new(false)).unwrap();
/// assert_eq!(g.values[[0, 1]], 5.0); // matched: 1·1 + 2·2, not 1·2 + 2·1
/// ```
pub fn gram<T: Real>(
    x: ArrayView3<'_, T>,
    y: Option<ArrayView3<'_, T>>,
    options: &GramOptions,
    cancel: &AtomicBool,
) -> Result<Gram> {
    gram_tile(x, y, options, cancel, &AtomicU64::new(0))
}

/// Number of pairs a tile computes, as counted by the `progress` of [`gram_tile`]: `I·J`, or
/// `n(n+1)/2` for a diagonal tile of `n` rows (its upper triangle with the diagonal). The tiles
/// of a square `N × N` matrix add up to `N(N+1)/2`.
#[must_use]
pub fn tile_pairs(rows: usize, cols: Option<usize>) -> u64 {
    match cols {
        Some(m) => rows as u64 * m as u64,
        None => rows as u64 * (rows as u64 + 1) / 2,
    }
}

/// One tile of `G`: `x` holds the rows `I` (`(I, S, C)`), `y` the rows `J` (`(J, S, C)`), or is
/// `None` for a diagonal tile (`I = J` of a square matrix: the pairs `i < j` are computed and
/// mirrored, the diagonal is `‖x_i‖²`). The inputs are used as given (centre them first).
///
/// Each entry depends on its two samples only, so a matrix assembled from tiles of any size, in
/// any order, on any number of threads is bit-identical to [`gram`] on the whole input (for an
/// off-diagonal tile of the square case, `G[J, I]` is the transpose and `perm[j, i]` the inverse
/// permutation of `perm[i, j]`). `progress` is incremented (relaxed) as pairs finish, by
/// [`tile_pairs`] in total, so another thread can report progress without a callback per pair.
///
/// # Errors
/// As [`gram`].
pub fn gram_tile<T: Real>(
    x: ArrayView3<'_, T>,
    y: Option<ArrayView3<'_, T>>,
    options: &GramOptions,
    cancel: &AtomicBool,
    progress: &AtomicU64,
) -> Result<Gram> {
    let norms = validate(&x, y.as_ref(), options)?;
    pool::pool(options.threads)?.install(|| gram_in_pool(x, y, &norms, options, cancel, progress))
}

/// Whether the pairwise fill (one affinity per pair) is needed.
fn needs_pairs(options: &GramOptions) -> bool {
    options.matcher.needs_affinity() || options.return_bound
}

/// Per-position L2 norms of `x` (`N × S`) and `y` (`M × S`, absent in the square case); empty
/// when no matcher needs them. When the call may take the mixed-precision path, also the `f32`
/// copies of `x` and `y` (made in the same pass, while each row is in cache; [`mixed_applies`]
/// decides whether they are used).
struct Norms {
    x: Array2<f64>,
    y: Option<Array2<f64>>,
    x32: Option<Array3<f32>>,
    y32: Option<Array3<f32>>,
}

/// Check the inputs and options; return the per-position norms (computed in the same pass).
fn validate<T: Real>(
    x: &ArrayView3<'_, T>,
    y: Option<&ArrayView3<'_, T>>,
    options: &GramOptions,
) -> Result<Norms> {
    if options.threads == Some(0) {
        return Err(Error::InvalidOption(
            "threads must be at least 1 (or None for all cores)".into(),
        ));
    }
    let (n, s, _) = x.dim();
    check_nonempty(x, "x")?;
    if options.prefix_tokens >= s {
        return Err(Error::InvalidOption(format!(
            "prefix_tokens must be below the number of positions S = {s} (at least one token \
             is matched), got {}",
            options.prefix_tokens
        )));
    }
    let keep = needs_pairs(options);
    // The f32 copies of mixed precision are made in the same pass (whether they are used
    // depends on the norms: mixed_applies).
    let copy32 = keep && may_be_mixed::<T>(s, options);
    let ext_x = vector_norms(x, "x", keep, copy32)?;
    let mut norms_y = None;
    let (m, ext_y) = match y {
        Some(y) => {
            check_second(x, y)?;
            let m = y.dim().0;
            let ext_y = vector_norms(y, "y", keep, copy32)?;
            (m, ext_y)
        }
        None => (n, ext_x.clone_extremes()),
    };
    if let Some(ny) = ext_y.norms {
        norms_y = Some(ny);
    }
    let y32 = if y.is_some() { ext_y.copy32 } else { None };
    // The pairwise fill multiplies concept vectors (and sums the products in f64); the GEMM of
    // the baseline sums all S·C products in T, so there the whole samples' norms count.
    let (max_x, max_y, unit) = if keep {
        (ext_x.max_position, ext_y.max_position, "concept-vector")
    } else {
        (ext_x.max_sample, ext_y.max_sample, "whole-sample")
    };
    if max_x * max_y > T::MAX_PRODUCT {
        let hint = if std::mem::size_of::<T>() < 8 {
            " (beyond what precision=\"float32\" can sum; use precision=\"float64\")"
        } else {
            ""
        };
        return Err(Error::Range {
            what: if y.is_some() { "x and y" } else { "x" },
            detail: format!(
                "largest {unit} norms {max_x:.3e} and {max_y:.3e} (inf: beyond the float \
                 range); their products must stay below {:e}{hint}",
                T::MAX_PRODUCT
            ),
        });
    }
    if n.checked_mul(m).is_none_or(|e| e > MAX_OUTPUT_ENTRIES) {
        return Err(Error::TooLarge(format!(
            "the {n} x {m} output would exceed {MAX_OUTPUT_ENTRIES} entries; write it to a file \
             with out= (tiles of at most that size)"
        )));
    }
    if options.return_permutations
        && n.checked_mul(m)
            .and_then(|e| e.checked_mul(s))
            .is_none_or(|e| e > MAX_PERMUTATION_ENTRIES)
    {
        return Err(Error::TooLarge(format!(
            "permutations for {n} x {m} pairs of {s} positions would exceed \
             {MAX_PERMUTATION_ENTRIES} entries; compute them for fewer samples at a time"
        )));
    }
    if needs_pairs(options)
        && s.checked_mul(s)
            .and_then(|e| e.checked_mul(std::mem::size_of::<T>()))
            .is_none_or(|b| b > MAX_AFFINITY_BYTES)
    {
        return Err(Error::TooLarge(format!(
            "an affinity matrix of {s} x {s} positions would exceed {} GiB per thread",
            MAX_AFFINITY_BYTES >> 30
        )));
    }
    Ok(Norms {
        x: ext_x.norms.unwrap_or_default(),
        y: norms_y,
        x32: ext_x.copy32,
        y32,
    })
}

pub(super) fn check_nonempty<T>(a: &ArrayView3<'_, T>, what: &'static str) -> Result<()> {
    if a.is_empty() {
        let (n, s, c) = a.dim();
        return Err(Error::Empty {
            what,
            detail: format!(
                "shape (N, S, C) = ({n}, {s}, {c}); every dimension must be at least 1"
            ),
        });
    }
    Ok(())
}

/// Checks the second argument `y` of a cross RSM against `x`: non-empty, the same number of
/// positions S and of channels C.
pub(super) fn check_second<T, U>(x: &ArrayView3<'_, T>, y: &ArrayView3<'_, U>) -> Result<()> {
    check_nonempty(y, "y")?;
    let ((_, s, c), (_, sy, cy)) = (x.dim(), y.dim());
    if cy != c {
        return Err(Error::Shape(format!(
            "x and y must have the same number of channels C, got {c} and {cy}"
        )));
    }
    if sy != s {
        return Err(Error::Shape(format!(
            "x and y must have the same number of spatial positions S, got {s} and {sy}"
        )));
    }
    Ok(())
}

/// What [`vector_norms`] finds: the largest concept-vector and whole-sample norms, and the
/// per-position norms when asked for.
struct Extremes {
    max_position: f64,
    max_sample: f64,
    norms: Option<Array2<f64>>,
    copy32: Option<Array3<f32>>,
}

impl Extremes {
    fn clone_extremes(&self) -> Self {
        Self {
            max_position: self.max_position,
            max_sample: self.max_sample,
            norms: None,
            copy32: None,
        }
    }
}

/// Largest L2 norms of a concept vector and of a whole sample, after checking every entry is
/// finite; with `keep`, also the norm of every position (`N × S`); with `copy32`, also `a`
/// rounded to `f32` (as [`f32_copy`], each row while it is in cache). One serial pass
/// (deterministic). Squares are scaled by the largest magnitude so that they cannot overflow.
fn vector_norms<T: Real>(
    a: &ArrayView3<'_, T>,
    what: &'static str,
    keep: bool,
    copy32: bool,
) -> Result<Extremes> {
    let (n, s, _) = a.dim();
    let isa = crate::kernels::isa();
    let mut norms = if keep {
        Some(try_array2(n, s, 0.0_f64, "the per-position norms")?)
    } else {
        None
    };
    let mut copy = if copy32 {
        Some(f32_buffer(a.len())?)
    } else {
        None
    };
    // One pass in the common case: plain squares, checking finiteness and the largest
    // magnitude on the way. Only if squares could have overflowed (|e| > 1e150) a second pass
    // scales them by a power of two (exact, so the norms stay reproducible).
    let mut max_abs = 0.0_f64;
    let (mut max_pos_sq, mut max_sample_sq) = (0.0_f64, 0.0_f64);
    for (i, sample) in a.outer_iter().enumerate() {
        let mut sample_sq = 0.0_f64;
        for (p, v) in sample.outer_iter().enumerate() {
            let owned;
            let row = match v.as_slice() {
                Some(row) => row,
                None => {
                    owned = v.to_vec();
                    &owned
                }
            };
            let dst = copy.as_mut().map(|copy| {
                let at = copy.len();
                copy.resize(at + row.len(), 0.0);
                &mut copy[at..]
            });
            let (sq, row_max) = row_stats(isa, row, dst);
            if !(sq.is_finite() && row_max.is_finite()) {
                // NaN/inf entries make the sum non-finite; so do squares of huge finite
                // entries, which the scaled pass below handles.
                if let Some((k, &e)) = v.iter().enumerate().find(|(_, e)| !e.to_f64().is_finite()) {
                    return Err(Error::NonFinite {
                        what,
                        index: vec![i, p, k],
                        value: e.to_f64(),
                    });
                }
            }
            max_abs = max_abs.max(row_max);
            sample_sq += sq;
            max_pos_sq = max_pos_sq.max(sq);
            if let Some(norms) = norms.as_mut() {
                norms[[i, p]] = sq.sqrt();
            }
        }
        max_sample_sq = max_sample_sq.max(sample_sq);
    }
    let mut scale = 1.0;
    if max_abs > 1e150 {
        #[allow(clippy::cast_possible_truncation)]
        {
            scale = 2f64.powi(max_abs.log2().floor() as i32);
        }
        (max_pos_sq, max_sample_sq) = (0.0, 0.0);
        for (i, sample) in a.outer_iter().enumerate() {
            let mut sample_sq = 0.0_f64;
            for (p, v) in sample.outer_iter().enumerate() {
                let sq: f64 = v.iter().map(|&e| (e.to_f64() / scale).powi(2)).sum();
                sample_sq += sq;
                max_pos_sq = max_pos_sq.max(sq);
                if let Some(norms) = norms.as_mut() {
                    norms[[i, p]] = sq.sqrt() * scale;
                }
            }
            max_sample_sq = max_sample_sq.max(sample_sq);
        }
    }
    let copy32 = match copy {
        Some(v) => {
            Some(Array3::from_shape_vec(a.dim(), v).map_err(|e| Error::Shape(e.to_string()))?)
        }
        None => None,
    };
    Ok(Extremes {
        max_position: max_pos_sq.sqrt() * scale,
        max_sample: max_sample_sq.sqrt() * scale,
        norms,
        copy32,
    })
}

fn gram_in_pool<T: Real>(
    x: ArrayView3<'_, T>,
    y: Option<ArrayView3<'_, T>>,
    norms: &Norms,
    options: &GramOptions,
    cancel: &AtomicBool,
    progress: &AtomicU64,
) -> Result<Gram> {
    let (n, s, _) = x.dim();
    let m = y.map_or(n, |y| y.dim().0);
    if needs_pairs(options) {
        return pairwise(x, y, norms, options, cancel, progress);
    }
    let values = spatio_semantic(x, y, cancel, progress)?;
    let permutations = if options.return_permutations {
        let len = n.checked_mul(m).and_then(|e| e.checked_mul(s));
        let mut p = try_filled(len, 0_i64, "the permutations")?;
        for (k, e) in p.iter_mut().enumerate() {
            *e = (k % s) as i64;
        }
        Some(Array3::from_shape_vec((n, m, s), p).map_err(|e| Error::Shape(e.to_string()))?)
    } else {
        None
    };
    Ok(Gram {
        values,
        permutations,
        bounds: None,
    })
}

/// `G = X Yᵀ` on the flattened samples with the deterministic GEMM ([`Gemm`]): in the square
/// case only the entries on and above the diagonal, then mirrored; [`none::gram_none`]'s
/// super-blocks and chunks, without centring.
fn spatio_semantic<T: Real>(
    x: ArrayView3<'_, T>,
    y: Option<ArrayView3<'_, T>>,
    cancel: &AtomicBool,
    progress: &AtomicU64,
) -> Result<Array2<f64>> {
    none::fill_blocks::<T, T>(x, y, None, cancel, progress)
}

/// Copy the upper triangle onto the lower one, so the matrix is exactly symmetric: in
/// parallel (the caller's pool) over bands of 64 rows, each in 64 × 64 tiles, so that the
/// upper triangle's columns are read a cache line at a time.
fn mirror_upper(g: &mut Array2<f64>) {
    /// The matrix's values, shared by the tasks (each writes only its own entries).
    struct Shared(*mut f64);
    impl Shared {
        fn get(&self) -> *mut f64 {
            self.0
        }
    }
    // SAFETY: the tasks below write disjoint entries and read only entries no task writes.
    unsafe impl Sync for Shared {}
    const B: usize = 64;
    let n = g.nrows();
    let Some(data) = g.as_slice_mut().filter(|d| d.len() == n * n) else {
        for i in 0..n {
            for j in 0..i {
                g[[i, j]] = g[[j, i]];
            }
        }
        return;
    };
    let shared = Shared(data.as_mut_ptr());
    (0..n.div_ceil(B)).into_par_iter().for_each(|band| {
        let p = shared.get();
        let (i0, i1) = (band * B, n.min(band * B + B));
        for j0 in (0..i1).step_by(B) {
            for i in i0..i1 {
                for j in j0..i.min(j0 + B) {
                    // SAFETY: (i, j), j < i, is in the lower triangle and in this task's rows,
                    // written by this task only; (j, i) is in the upper triangle, which no task
                    // writes; both are inside the n × n values.
                    unsafe { *p.add(i * n + j) = *p.add(j * n + i) };
                }
            }
        }
    });
}

/// A block of a tile being filled: its first row and column, and its values, permutations and
/// bounds.
type TileBlock<'a> = (
    usize,
    usize,
    ArrayViewMut2<'a, f64>,
    Option<ArrayViewMut3<'a, i64>>,
    Option<ArrayViewMut2<'a, f64>>,
);

/// The affinity-based matchers: one task per block of `b × b` pairs of the tile (rows `I`,
/// columns `J`), whose affinities `(|I|·S × C)·(C × |J|·S)` are one GEMM, then each pair's
/// `S × S` block is copied out and matched; per-thread workspaces, results written in place (no
/// list of pairs or results). Every affinity entry is the same FMA chain whatever the block
/// (see [`crate::kernels::gemm`]), so the results do not depend on `b`, the tile or the threads.
fn pairwise<T: Real>(
    x: ArrayView3<'_, T>,
    y: Option<ArrayView3<'_, T>>,
    norms: &Norms,
    options: &GramOptions,
    cancel: &AtomicBool,
    progress: &AtomicU64,
) -> Result<Gram> {
    pairwise_blocked(x, y, norms, options, cancel, progress, None)
}

/// [`pairwise`] with the pairs per block side forced (`Some(b)`, for tests) or chosen from
/// [`PAIR_BLOCK_BYTES`] (`None`).
fn pairwise_blocked<T: Real>(
    x: ArrayView3<'_, T>,
    y: Option<ArrayView3<'_, T>>,
    norms: &Norms,
    options: &GramOptions,
    cancel: &AtomicBool,
    progress: &AtomicU64,
    block: Option<usize>,
) -> Result<Gram> {
    let (n, s, c) = x.dim();
    let square = y.is_none();
    let x = x.as_standard_layout();
    let y = y.as_ref().map(|y| y.as_standard_layout());
    let xs = x
        .as_slice()
        .ok_or_else(|| Error::Shape("internal: x layout".into()))?;
    let ys = match &y {
        Some(y) => y
            .as_slice()
            .ok_or_else(|| Error::Shape("internal: y layout".into()))?,
        None => xs,
    };
    let norms_y = norms.y.as_ref().unwrap_or(&norms.x);
    let m = ys.len() / (s * c);
    let keep = options.return_permutations;
    let with_bound = options.return_bound;
    let threads = rayon::current_num_threads().max(1);
    let prefix = options.prefix_tokens;
    // The shift matcher without bounds needs no affinities: from FEATURES_FROM grid positions
    // on, each pair is matched from its samples' spectra, computed once per block
    // (best_shift_spectra), with the same result.
    let by_features = matches!(options.matcher, Matcher::Shift { .. })
        && !with_bound
        && s - prefix >= FEATURES_FROM;
    // Pairs per block side: from the cache budget, with several threads lowered so that every
    // thread gets several blocks (not with one: N = 40 at S = 49 would be cut 13 + 13 + 13 + 1,
    // whose blocks of one sample run the GEMM and the certificate on few pairs, rather than
    // 14 + 14 + 12). Speed only: the values do not depend on it.
    let pairs = tile_pairs(n, if square { None } else { Some(m) });
    let b = block.unwrap_or_else(|| {
        let b = if let (true, Matcher::Shift { w }) = (by_features, options.matcher) {
            let budget = spectra_budget(affinity_scratch_bytes(s, c, std::mem::size_of::<T>()));
            shift::grid(s - prefix, w).map_or(1, |grid| spectra_block(grid, c, budget))
        } else {
            pair_block(s, std::mem::size_of::<T>())
        };
        if threads > 1 {
            let spread = usize::try_from(pairs / (4 * threads as u64)).unwrap_or(usize::MAX);
            b.min(spread.isqrt().max(1))
        } else {
            b
        }
    });
    let b = b.clamp(1, n.max(m));
    // Allocate everything big before the first pair, fallibly.
    let mut values = try_array2(n, m, 0.0_f64, "the output tile")?;
    let mut bounds = if with_bound {
        Some(try_array2(n, m, 0.0_f64, "the bounds")?)
    } else {
        None
    };
    let mut permutations = if keep {
        let len = n.checked_mul(m).and_then(|e| e.checked_mul(s));
        let p = try_filled(len, 0_i64, "the permutations")?;
        Some(Array3::from_shape_vec((n, m, s), p).map_err(|e| Error::Shape(e.to_string()))?)
    } else {
        None
    };
    // Mixed precision: f32 copies of the samples, whose block GEMMs give the f32 affinities.
    let mixed = mixed_applies(
        &x.view(),
        y.as_ref().map(|y| y.view()).as_ref(),
        norms,
        options,
    );
    // (Made in validate's pass; copied here only if it did not make them.)
    let (mut x32_own, mut y32_own) = (None, None);
    let x32 = match (&norms.x32, mixed) {
        (_, false) => None,
        (Some(a), true) => Some(a),
        (None, true) => Some(&*x32_own.insert(f32_copy(&x.view())?)),
    };
    let y32 = match (&norms.y32, &y, mixed) {
        (_, None, _) | (_, _, false) => None,
        (Some(a), Some(_), true) => Some(a),
        (None, Some(y), true) => Some(&*y32_own.insert(f32_copy(&y.view())?)),
    };
    let xs32: &[f32] = x32.and_then(|a| a.as_slice()).unwrap_or(&[]);
    let ys32: &[f32] = match y32 {
        Some(a) => a.as_slice().unwrap_or(&[]),
        None => xs32,
    };
    // Mixed precision: the exact matchers are solved in f32 and certified for f64
    // (`exact_mixed`); the approximate ones choose their permutation on the f32 affinities and
    // are re-scored in f64 (`approx32`, crate::matching::choose_f32).
    let exact_mixed = mixed && options.matcher.is_exact_for(s - prefix);
    let approx32 = mixed && !exact_mixed;
    let tile_len = if b > 1 && !by_features {
        (b * s) * (b * s)
    } else {
        0
    };
    let slots = (0..threads)
        .map(|_| {
            PairScratch::<T>::try_new(
                s - prefix,
                tile_len,
                options.matcher,
                (mixed, exact_mixed, by_features),
            )
            .map(Mutex::new)
        })
        .collect::<Result<Vec<_>>>()?;
    let matcher = options.matcher;
    let uses_norms = !norms.x.is_empty();

    // Square case: the diagonal needs no matching. max_P <x, P x> = ||x||² (Cauchy–Schwarz),
    // attained by the identity, so G[i, i] = ||x_i||² and perm[i, i] = identity, for any matcher
    // (the approximations are exact there: none can exceed the optimum, and the identity reaches
    // it). The bound is ||x_i||² as well.
    let mut perm_stripes = permutations
        .as_mut()
        .map(|p| p.axis_chunks_iter_mut(Axis(0), b));
    let mut bound_stripes = bounds.as_mut().map(|p| p.axis_chunks_iter_mut(Axis(0), b));
    let mut blocks: Vec<TileBlock<'_>> = Vec::new();
    for (bi, vstripe) in values.axis_chunks_iter_mut(Axis(0), b).enumerate() {
        let pstripe = perm_stripes.as_mut().and_then(Iterator::next);
        let bstripe = bound_stripes.as_mut().and_then(Iterator::next);
        let mut pchunks = pstripe.map(|p| p.into_axis_chunks_iter_mut(Axis(1), b));
        let mut bchunks = bstripe.map(|p| p.into_axis_chunks_iter_mut(Axis(1), b));
        for (bj, v) in vstripe.into_axis_chunks_iter_mut(Axis(1), b).enumerate() {
            let p = pchunks.as_mut().and_then(Iterator::next);
            let bo = bchunks.as_mut().and_then(Iterator::next);
            if square && bj < bi {
                continue; // strictly below the diagonal: mirrored afterwards
            }
            blocks.push((bi * b, bj * b, v, p, bo));
        }
    }
    let sc = s * c;
    blocks.par_iter_mut().with_max_len(1).try_for_each(
        |(i0, j0, vals, perms, bnds)| -> Result<()> {
            let (i0, j0) = (*i0, *j0);
            let (rows, cols) = vals.dim();
            let slot = rayon::current_thread_index().unwrap_or(0) % slots.len();
            let mut guard = slots[slot]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let scratch = &mut *guard;
            let single = rows == 1 && cols == 1;
            // A diagonal block of one row holds only the diagonal pair: no affinity needed.
            let only_diagonal = square && i0 == j0 && rows == 1;
            if !(single || only_diagonal || by_features) {
                // One GEMM for the whole block: (rows·S × C)·(C × cols·S), in f32 for mixed
                // precision; a block on the diagonal of a square tile in strips of samples,
                // each from the sample after its first on (the pairs on and below the diagonal
                // are not needed).
                let strip = (square && i0 == j0).then(|| DIAGONAL_STRIP_ROWS.div_ceil(s));
                (scratch.positions, scratch.strip) = (s, strip);
                if mixed {
                    let xb =
                        ArrayView2::from_shape((rows * s, c), &xs32[i0 * sc..(i0 + rows) * sc])
                            .map_err(|e| Error::Shape(e.to_string()))?;
                    let yb =
                        ArrayView2::from_shape((cols * s, c), &ys32[j0 * sc..(j0 + cols) * sc])
                            .map_err(|e| Error::Shape(e.to_string()))?;
                    scratch.block_affinities32(xb, yb)?;
                } else {
                    let xb = ArrayView2::from_shape((rows * s, c), &xs[i0 * sc..(i0 + rows) * sc])
                        .map_err(|e| Error::Shape(e.to_string()))?;
                    let yb = ArrayView2::from_shape((cols * s, c), &ys[j0 * sc..(j0 + cols) * sc])
                        .map_err(|e| Error::Shape(e.to_string()))?;
                    scratch.block_affinities(xb, yb)?;
                }
            }
            if by_features {
                // Each sample's spectra once for the block (a diagonal block's rows are its
                // columns).
                let Matcher::Shift { w } = matcher else {
                    unreachable!("by_features is the shift matcher's")
                };
                let grid = shift::grid(s - prefix, w)?;
                let xb: Vec<&[T]> = (i0..i0 + rows)
                    .map(|i| &xs[i * sc + prefix * c..(i + 1) * sc])
                    .collect();
                shift::spectra(&xb, c, grid, &mut scratch.shift, &mut scratch.spectra[0])?;
                if !(square && i0 == j0) {
                    let yb: Vec<&[T]> = (j0..j0 + cols)
                        .map(|j| &ys[j * sc + prefix * c..(j + 1) * sc])
                        .collect();
                    shift::spectra(&yb, c, grid, &mut scratch.shift, &mut scratch.spectra[1])?;
                }
            }
            if exact_mixed {
                // Solve every pair of the block in f32, then certify them together (their f64
                // dot products read each row once per batch, not once per entry).
                let sm = s - prefix;
                mixed::begin_block(&mut scratch.workspace, sm, c);
                let width = cols * s;
                for ii in 0..rows {
                    for jj in 0..cols {
                        let (i, j) = (i0 + ii, j0 + jj);
                        if square && j <= i {
                            continue;
                        }
                        if cancel.load(Ordering::Relaxed) {
                            return Err(Error::Interrupted);
                        }
                        let a0 = if single {
                            scratch.pair_affinity32(
                                sample(xs32, i, s, c)?.slice(s![prefix.., ..]),
                                sample(ys32, j, s, c)?.slice(s![prefix.., ..]),
                            )?;
                            0
                        } else {
                            scratch.copy_affinity32(ii, jj, s, width, prefix);
                            // The next pair's rows (far apart in the block, not followed by
                            // the hardware prefetcher) while this one is solved.
                            let (ni, nj) = if jj + 1 < cols {
                                (ii, jj + 1)
                            } else {
                                (ii + 1, if square && i0 == j0 { ii + 2 } else { 0 })
                            };
                            if ni < rows && nj < cols {
                                prefetch_pair(&scratch.block32, (ni, nj), s, width, prefix);
                            }
                            (ii * s + prefix) * width + jj * s + prefix
                        };
                        mixed::solve_pair(
                            &mut scratch.workspace,
                            &scratch.affinity32,
                            (ii * s + prefix, jj * s + prefix, a0),
                            cancel,
                        )?;
                    }
                }
                let (a32, a32_stride) = if single {
                    (&scratch.affinity32[..], sm)
                } else {
                    (&scratch.block32[..rows * s * width], width)
                };
                let factors = mixed::BlockFactors {
                    x: &xs[i0 * sc..(i0 + rows) * sc],
                    y: &ys[j0 * sc..(j0 + cols) * sc],
                    c,
                    norms_x: norm_rows(&norms.x, i0, rows, s)?,
                    norms_y: norm_rows(norms_y, j0, cols, s)?,
                    a32,
                    a32_stride,
                };
                mixed::certify_block(&factors, &mut scratch.workspace, cancel)?;
            } else if approx32 && !single {
                // Choose every pair's permutation in f32, then re-score them together (each
                // row read once, not once per pair).
                scratch.choose_block32(
                    matcher,
                    (rows, cols, square && i0 == j0),
                    (
                        &xs[i0 * sc..(i0 + rows) * sc],
                        &ys[j0 * sc..(j0 + cols) * sc],
                        c,
                    ),
                    (
                        norm_rows(&norms.x, i0, rows, s)?,
                        norm_rows(norms_y, j0, cols, s)?,
                    ),
                    (s, prefix),
                    with_bound,
                    cancel,
                )?;
            }
            // The diagonal pairs' ‖x_i‖² (a block on the diagonal of a square tile), their
            // sequential sums advancing together.
            let mut diagonal = Vec::new();
            if square && i0 == j0 {
                let own: Vec<&[T]> = (0..rows.min(cols))
                    .map(|ii| &xs[(i0 + ii) * sc..(i0 + ii + 1) * sc])
                    .collect();
                diagonal.resize(own.len(), 0.0);
                crate::kernels::screen::sq_sums(&own, &mut diagonal);
            }
            let mut pair = 0;
            for ii in 0..rows {
                let i = i0 + ii;
                let xi = sample(xs, i, s, c)?;
                for jj in 0..cols {
                    let j = j0 + jj;
                    if square && j < i {
                        continue;
                    }
                    if cancel.load(Ordering::Relaxed) {
                        return Err(Error::Interrupted);
                    }
                    if square && i == j {
                        let d = diagonal[ii];
                        vals[[ii, jj]] = d;
                        if let Some(bo) = bnds.as_mut() {
                            bo[[ii, jj]] = d;
                        }
                        if let Some(p) = perms.as_mut() {
                            for k in 0..s {
                                p[[ii, jj, k]] = k as i64;
                            }
                        }
                        progress.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let yj = sample(ys, j, s, c)?;
                    if exact_mixed || by_features {
                        // Solved and certified above.
                    } else if approx32 {
                        if single {
                            scratch.pair_affinity32(
                                sample(xs32, i, s, c)?.slice(s![prefix.., ..]),
                                sample(ys32, j, s, c)?.slice(s![prefix.., ..]),
                            )?;
                        }
                        // (Otherwise chosen and re-scored above.)
                    } else if single {
                        // One pair: its matched positions' affinity directly.
                        scratch.pair_affinity(
                            xi.slice(s![prefix.., ..]),
                            yj.slice(s![prefix.., ..]),
                        )?;
                    } else {
                        scratch.copy_affinity(ii, jj, s, cols * s, prefix);
                    }
                    let (nx, ny) = if uses_norms {
                        (
                            norms
                                .x
                                .row(i)
                                .to_slice()
                                .unwrap_or(&[])
                                .get(prefix..)
                                .unwrap_or(&[]),
                            norms_y
                                .row(j)
                                .to_slice()
                                .unwrap_or(&[])
                                .get(prefix..)
                                .unwrap_or(&[]),
                        )
                    } else {
                        (&[][..], &[][..])
                    };
                    let (g, bound) = if by_features {
                        let Matcher::Shift { w } = matcher else {
                            unreachable!("by_features is the shift matcher's")
                        };
                        let (xm, ym) = (
                            &xs[i * sc + prefix * c..(i + 1) * sc],
                            &ys[j * sc + prefix * c..(j + 1) * sc],
                        );
                        let side = usize::from(!(square && i0 == j0));
                        let g = shift::best_shift_spectra(
                            (xm, &scratch.spectra[0], ii),
                            (ym, &scratch.spectra[side], jj),
                            c,
                            w,
                            &mut scratch.shift,
                            &mut scratch.perm,
                        )?;
                        (g, f64::NAN)
                    } else if approx32 {
                        let factors = PairFactors {
                            x: xi.slice(s![prefix.., ..]),
                            y: yj.slice(s![prefix.., ..]),
                            norms_x: nx,
                            norms_y: ny,
                        };
                        if single {
                            scratch.solve32(matcher, &factors, with_bound, cancel)?
                        } else {
                            scratch.take_approx(matcher, &factors, with_bound, cancel)?
                        }
                    } else if mixed {
                        let factors = PairFactors {
                            x: xi.slice(s![prefix.., ..]),
                            y: yj.slice(s![prefix.., ..]),
                            norms_x: nx,
                            norms_y: ny,
                        };
                        pair += 1;
                        scratch.finish_mixed(pair - 1, &factors, with_bound, cancel)?
                    } else {
                        scratch.solve(matcher, (nx, ny), with_bound, cancel)?
                    };
                    let (g, bound) = if prefix == 0 {
                        (g, bound)
                    } else {
                        // The prefix tokens position by position, the rest matched.
                        let fixed = prefix_dot(xi, yj, prefix);
                        (fixed + g, fixed + bound)
                    };
                    vals[[ii, jj]] = g;
                    if let Some(bo) = bnds.as_mut() {
                        bo[[ii, jj]] = bound;
                    }
                    if let Some(p) = perms.as_mut() {
                        for k in 0..prefix {
                            p[[ii, jj, k]] = k as i64;
                        }
                        for (k, &t) in scratch.perm.iter().enumerate() {
                            p[[ii, jj, prefix + k]] = (prefix + t) as i64;
                        }
                    }
                    progress.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        },
    )?;
    drop(blocks);
    if square {
        mirror_upper(&mut values);
        if let Some(b) = bounds.as_mut() {
            // The bound holds for (j, i) too: A_ji = A_ijᵀ has the same optimum.
            mirror_upper(b);
        }
        if let Some(p) = permutations.as_mut() {
            for i in 0..n {
                for j in i + 1..n {
                    for k in 0..s {
                        let t = p[[i, j, k]] as usize;
                        p[[j, i, t]] = k as i64;
                    }
                }
            }
        }
    }
    Ok(Gram {
        values,
        permutations,
        bounds,
    })
}

/// Whether a call with these options may take the mixed-precision path (before the norms are
/// known): asked for, `f64` input, a matcher that is exact or one of the approximate matchers
/// that take `f32` affinities ([`takes_f32_affinities`]).
fn may_be_mixed<T: Real>(s: usize, options: &GramOptions) -> bool {
    options.mixed_precision
        && std::mem::size_of::<T>() == 8
        && (options.matcher.is_exact_for(s - options.prefix_tokens)
            || takes_f32_affinities(options.matcher))
}

/// The approximate matchers that, under mixed precision, choose their permutation on the `f32`
/// affinities ([`crate::matching::choose_f32`]; `G` re-scored in `f64`).
fn takes_f32_affinities(matcher: Matcher) -> bool {
    matches!(
        matcher,
        Matcher::Greedy
            | Matcher::TopkGreedy { .. }
            | Matcher::BatchOptimal { .. }
            | Matcher::Auction { .. }
    )
}

/// Whether the call takes the mixed-precision path ([`GramOptions::mixed_precision`]): not when
/// it is not asked for, the input is `f32`, the matcher is neither exact nor one of
/// [`takes_f32_affinities`], or norms could take `f32` affinities near overflow.
fn mixed_applies<T: Real>(
    x: &ArrayView3<'_, T>,
    y: Option<&ArrayView3<'_, T>>,
    norms: &Norms,
    options: &GramOptions,
) -> bool {
    let (_, s, c) = x.dim();
    let norms_y = norms.y.as_ref().unwrap_or(&norms.x);
    let max = |a: &Array2<f64>| a.iter().fold(0.0_f64, |m, &v| m.max(v));
    may_be_mixed::<T>(s, options)
        && !norms.x.is_empty()
        && (y.is_none() || !norms_y.is_empty())
        && mixed::f32_is_safe(max(&norms.x), max(norms_y), c)
}

/// Sample `i` of a C-ordered `(N, S, C)` buffer as an `S × C` view.
fn sample<T>(data: &[T], i: usize, s: usize, c: usize) -> Result<ArrayView2<'_, T>> {
    let sc = s * c;
    ArrayView2::from_shape((s, c), &data[i * sc..(i + 1) * sc])
        .map_err(|e| Error::Shape(e.to_string()))
}

/// Rows `r0..r0 + r` of the per-position norms (`S` each), as one slice.
fn norm_rows(a: &Array2<f64>, r0: usize, r: usize, s: usize) -> Result<&[f64]> {
    a.as_slice()
        .and_then(|v| v.get(r0 * s..(r0 + r) * s))
        .ok_or_else(|| Error::Shape("internal: norms layout".into()))
}

/// An empty vector with room for an `f32` copy of `len` values, allocated fallibly.
fn f32_buffer(len: usize) -> Result<Vec<f32>> {
    let mut v = try_filled(Some(0), 0.0_f32, "an f32 copy of the input")?;
    v.try_reserve_exact(len).map_err(|_| {
        Error::TooLarge(format!(
            "could not allocate an f32 copy of the input ({} bytes): not enough memory",
            len.saturating_mul(4)
        ))
    })?;
    Ok(v)
}

/// `a` rounded to `f32` (to nearest), allocated fallibly.
fn f32_copy<T: Real>(a: &ArrayView3<'_, T>) -> Result<Array3<f32>> {
    let mut v = f32_buffer(a.len())?;
    #[allow(clippy::cast_possible_truncation)]
    match a.as_slice() {
        // (A contiguous input, the usual case: a plain loop over the slice, several times
        // faster than the strided iterator.)
        Some(flat) => v.extend(flat.iter().map(|&e| e.to_f64() as f32)),
        None => v.extend(a.iter().map(|&e| e.to_f64() as f32)),
    }
    Array3::from_shape_vec(a.dim(), v).map_err(|e| Error::Shape(e.to_string()))
}

/// `Σ_{t<k} ⟨x[t], y[t]⟩` in `f64`, in a fixed order (the prefix tokens' part of a pair).
fn prefix_dot<T: Real>(x: ArrayView2<'_, T>, y: ArrayView2<'_, T>, k: usize) -> f64 {
    let mut sum = 0.0_f64;
    for t in 0..k {
        for (&a, &b) in x.row(t).iter().zip(y.row(t).iter()) {
            sum += a.to_f64() * b.to_f64();
        }
    }
    sum
}

/// Positions per strip of a diagonal block's GEMM (at least one sample): at `S = 49` strips of 2
/// samples, so a diagonal block of 14 × 14 pairs computes ~109 pairs' affinities, not 196 (~123
/// when each strip started at its own first sample's columns).
const DIAGONAL_STRIP_ROWS: usize = 96;

/// The affinities of a block of pairs in `E`'s precision, `xb · ybᵀ` (`xb`: the block's rows
/// of `x`, stacked positions, `(rows·S) × C`; `yb` likewise), row-major into the front of
/// `block`, by `gemm`. With `strip = Some(g)` (a block on the diagonal of a square tile, `xb`
/// and `yb` the same samples of `s` positions) only the strips of `g` samples, each from the
/// sample after its first one on: the pairs `(ii, jj)` with `jj > ii` (and a few more inside
/// each strip; the diagonal pairs' affinities are not computed). Every entry is the same FMA
/// chain either way.
fn block_affinities<E: GemmScalar>(
    gemm: &mut Gemm<E>,
    (block, packed): (&mut [E], &mut [Packed<E>; 2]),
    xb: ArrayView2<'_, E>,
    yb: ArrayView2<'_, E>,
    (s, strip): (usize, Option<usize>),
) -> Result<()> {
    let (m, n) = (xb.nrows(), yb.nrows());
    let out = block
        .get_mut(..m * n)
        .ok_or_else(|| Error::Shape("internal: block of affinities too small".into()))?;
    let mut out =
        ArrayViewMut2::from_shape((m, n), out).map_err(|e| Error::Shape(e.to_string()))?;
    match strip {
        Some(g) if m == n && s > 0 && m % s == 0 && xb.ncols() > 0 => {
            // Both operands packed once per block of `k` for all the strips (not once per
            // strip). The strips' rows start at panels of `A` (near the samples' starts: rows do
            // not overlap, every entry is advanced once per block of `k`), their columns at the
            // panel of `B` holding the first position of the sample after their first row's:
            // a few entries on and below the block's diagonal of samples are computed too,
            // never read.
            let k = xb.ncols();
            let kc = k
                .div_ceil(k.div_ceil(Gemm::<E>::block_steps()).max(1))
                .max(1);
            let [pa, pb] = packed;
            for k0 in (0..k).step_by(kc) {
                let w = kc.min(k - k0);
                gemm.prepare(pa, Operand::A, m, w)?;
                gemm.prepare(pb, Operand::B, n, w)?;
                gemm.pack_rows(pa, 0, xb.slice(s![.., k0..k0 + w]))?;
                gemm.pack_rows(pb, 0, yb.slice(s![.., k0..k0 + w]))?;
                let (wa, wb) = (pa.panel_rows().max(1), pb.panel_rows().max(1));
                let step = g.max(1) * s;
                let start = |t: usize| (t * step / wa * wa).min(m);
                let mut t = 0;
                while start(t) < m {
                    let (r0, r1) = (start(t), start(t + 1).max(start(t) + 1).min(m));
                    // The strip's first row's sample needs the samples after it; so do the
                    // strip's later rows (of later samples).
                    let b0 = ((r0 / s + 1) * s).min(n) / wb * wb;
                    if b0 == n {
                        t += 1;
                        continue; // (rows of the block's last sample: no pair after it)
                    }
                    gemm.packed_abt_acc(
                        pa,
                        r0..r1,
                        pb,
                        b0..n,
                        out.slice_mut(s![r0..r1, b0..]),
                        k0 > 0,
                    )?;
                    t += 1;
                }
            }
            Ok(())
        }
        _ => gemm.abt(xb, yb, out),
    }
}

/// Copy the matched part (positions `prefix..S` of both) of pair `(ii, jj)` of a block of
/// affinities from [`block_affinities`] (`width` = the block's row length, `cols·S`) into `dst`,
/// row-major `(S − prefix)²`.
fn copy_pair<E: Copy>(
    block: &[E],
    dst: &mut [E],
    (ii, jj): (usize, usize),
    s: usize,
    width: usize,
    prefix: usize,
) {
    let sm = s - prefix;
    for (r, row) in dst.chunks_exact_mut(sm).enumerate() {
        let start = (ii * s + prefix + r) * width + jj * s + prefix;
        if let Some(src) = block.get(start..start + sm) {
            row.copy_from_slice(src);
        }
    }
}

/// Prefetch (into L2) the rows of pair `(ii, jj)` that [`copy_pair`] reads.
fn prefetch_pair<E>(block: &[E], (ii, jj): (usize, usize), s: usize, width: usize, prefix: usize) {
    let sm = s - prefix;
    for r in 0..sm {
        let start = (ii * s + prefix + r) * width + jj * s + prefix;
        if let Some(src) = block.get(start..start + sm) {
            crate::kernels::prefetch_l2(src);
        }
    }
}

/// Buffers of one thread: the affinities of a block of pairs, one pair's (matched) affinity, the
/// GEMM's packing buffers, the permutation and the matcher's workspace.
struct PairScratch<T> {
    /// The affinities of a block of pairs, row-major `(rows·S) × (cols·S)` (empty when every
    /// GEMM is one pair's).
    block: Vec<T>,
    affinity: Array2<T>,
    gemm: Gemm<T>,
    /// Mixed precision: the `f32` affinities of a block of pairs, one pair's, and their GEMM
    /// (empty otherwise; `affinity` is then allocated only when a pair needs the `f64` repair).
    block32: Vec<f32>,
    affinity32: Vec<f32>,
    gemm32: Gemm<f32>,
    /// Mixed precision, an approximate matcher: the pairs of a block chosen on `f32` and
    /// re-scored together ([`Self::choose_block32`]).
    approx: ApproxBlock,
    /// A diagonal block's rows packed once for all its strips (as `A` and as `B`), in `T` and
    /// in `f32`.
    packed: [Packed<T>; 2],
    packed32: [Packed<f32>; 2],
    perm: Vec<usize>,
    workspace: Workspace,
    /// The shift matcher's FFT buffers and the spectra of a block's row and column samples
    /// (its pairs matched from their samples).
    shift: ShiftWorkspace,
    spectra: [shift::Spectra; 2],
    /// Stand-in norms for matchers that do not read them.
    zero_norms: Vec<f64>,
    /// Positions per sample (all, prefix included) and, for a block on the diagonal of a square
    /// tile, the samples per strip of its GEMM ([`block_affinities`]).
    positions: usize,
    strip: Option<usize>,
}

/// The pairs of a block that an approximate matcher chose on `f32` affinities
/// ([`PairScratch::choose_block32`]), waiting for [`PairScratch::take_approx`].
#[derive(Default)]
struct ApproxBlock {
    /// Each pair's first rows in the block's `x` and `y` (its matched positions).
    starts: Vec<(usize, usize)>,
    /// Each pair's permutation (its matched positions), one after the other.
    perms: Vec<usize>,
    /// Each pair's `f32` dual (NaN where none ran) and `f64` value.
    duals: Vec<f64>,
    values: Vec<f64>,
    rescore: mixed::RescoreScratch,
    /// The next pair to take.
    next: usize,
}

impl<T: Real> PairScratch<T> {
    /// Scratch for pairs of `s` matched positions and blocks of `block_len` affinities, its
    /// large buffers reserved fallibly ([`Error::TooLarge`] when the memory is not there).
    fn try_new(
        s: usize,
        block_len: usize,
        matcher: Matcher,
        (mixed, exact_mixed, by_features): (bool, bool, bool),
    ) -> Result<Self> {
        let mut workspace = Workspace::default();
        let reserved = if exact_mixed {
            workspace.try_reserve_mixed(s)
        } else {
            workspace.try_reserve(s, matcher)
        };
        reserved.map_err(|_| {
            Error::TooLarge(format!(
                "could not allocate a matcher workspace for {s} positions ({} bytes per \
                 thread): not enough memory; lower `threads`",
                scratch_bytes(s, 0, std::mem::size_of::<T>(), true)
            ))
        })?;
        // Mixed precision keeps its affinities in f32 and needs an f64 one only for a repair
        // (allocated then; for the approximate matchers, a pair whose auction misses its target
        // on the f64 bound).
        let (len64, len32, side) = if mixed {
            (0, block_len, 0)
        } else if by_features {
            (0, 0, 0)
        } else {
            (block_len, 0, s)
        };
        Ok(Self {
            block: try_filled(Some(len64), T::zero(), "the affinities of a block of pairs")?,
            affinity: try_array2(side, side, T::zero(), "an affinity matrix")?,
            gemm: Gemm::new(),
            block32: try_filled(Some(len32), 0.0, "the affinities of a block of pairs")?,
            affinity32: try_filled(
                Some(if mixed { s * s } else { 0 }),
                0.0,
                "an f32 affinity matrix",
            )?,
            gemm32: Gemm::new(),
            approx: ApproxBlock::default(),
            packed: [Packed::new(), Packed::new()],
            packed32: [Packed::new(), Packed::new()],
            perm: try_filled(Some(s), 0, "a permutation")?,
            workspace,
            shift: ShiftWorkspace::default(),
            spectra: Default::default(),
            zero_norms: try_filled(Some(s), 0.0, "the norms")?,
            positions: 0,
            strip: None,
        })
    }

    /// The affinities of a block of pairs, `xb · ybᵀ` (`xb`: the block's rows of `x`, stacked
    /// positions, `(rows·S) × C`; `yb` likewise), into `self.block` ([`block_affinities`]).
    fn block_affinities(&mut self, xb: ArrayView2<'_, T>, yb: ArrayView2<'_, T>) -> Result<()> {
        let layout = (self.positions, self.strip);
        block_affinities(
            &mut self.gemm,
            (&mut self.block, &mut self.packed),
            xb,
            yb,
            layout,
        )
    }

    /// Copy the matched part (positions `prefix..S` of both) of pair `(ii, jj)` of the block
    /// (`width` = the block's row length, `cols·S`) into `self.affinity`.
    fn copy_affinity(&mut self, ii: usize, jj: usize, s: usize, width: usize, prefix: usize) {
        if let Some(dst) = self.affinity.as_slice_mut() {
            copy_pair(&self.block, dst, (ii, jj), s, width, prefix);
        }
    }

    /// [`Self::block_affinities`] in `f32`, into `self.block32`.
    fn block_affinities32(
        &mut self,
        xb: ArrayView2<'_, f32>,
        yb: ArrayView2<'_, f32>,
    ) -> Result<()> {
        let layout = (self.positions, self.strip);
        block_affinities(
            &mut self.gemm32,
            (&mut self.block32, &mut self.packed32),
            xb,
            yb,
            layout,
        )
    }

    /// [`Self::copy_affinity`] from `self.block32` into `self.affinity32`.
    fn copy_affinity32(&mut self, ii: usize, jj: usize, s: usize, width: usize, prefix: usize) {
        copy_pair(
            &self.block32,
            &mut self.affinity32,
            (ii, jj),
            s,
            width,
            prefix,
        );
    }

    /// One pair's `f32` affinity into `self.affinity32` (the pair's matched positions).
    fn pair_affinity32(&mut self, xi: ArrayView2<'_, f32>, yj: ArrayView2<'_, f32>) -> Result<()> {
        let out =
            ndarray::ArrayViewMut2::from_shape((xi.nrows(), yj.nrows()), &mut self.affinity32)
                .map_err(|e| Error::Shape(e.to_string()))?;
        self.gemm32.abt(xi, yj, out)
    }

    /// Mixed precision, after [`mixed::certify_block`]: the result of pair `pair` of the block
    /// (`factors`: its matched positions); where it was not certified, compute its `f64`
    /// affinity and repair ([`mixed::repair_pair`]). Returns `G` and the bound (or `G` without
    /// `with_bound`); the permutation is left in `self.perm`.
    fn finish_mixed(
        &mut self,
        pair: usize,
        factors: &PairFactors<'_, T>,
        with_bound: bool,
        cancel: &AtomicBool,
    ) -> Result<(f64, f64)> {
        let certified = mixed::pair_outcome(&self.workspace, pair, &mut self.perm)?;
        let r = if let Some(r) = certified {
            r
        } else {
            let sm = factors.x.nrows();
            if self.affinity.dim() != (sm, sm) {
                self.affinity = try_array2(sm, sm, T::zero(), "an affinity matrix")?;
            }
            self.gemm
                .abt(factors.x, factors.y, self.affinity.view_mut())?;
            let a64 = self
                .affinity
                .as_slice()
                .ok_or_else(|| Error::Shape("internal: affinity layout".into()))?;
            mixed::repair_pair(
                factors,
                a64,
                &mut self.workspace,
                pair,
                &mut self.perm,
                with_bound,
                cancel,
            )?
        };
        Ok((r.value, if with_bound { r.bound } else { f64::NAN }))
    }

    /// Mixed precision, an approximate matcher ([`crate::matching::choose_f32`]) on the `f32`
    /// affinity in `self.affinity32` of the pair `factors` (its matched positions): the
    /// permutation (left in `self.perm`) chosen on it, `G` its `f64` re-score
    /// ([`mixed::rescore`]), and with `with_bound` (else NaN) the `f32` dual plus the rows'
    /// rounding bounds ([`Self::finish32`]).
    fn solve32(
        &mut self,
        matcher: Matcher,
        factors: &PairFactors<'_, T>,
        with_bound: bool,
        cancel: &AtomicBool,
    ) -> Result<(f64, f64)> {
        let c = factors.x.ncols();
        let norms = (factors.norms_x, factors.norms_y);
        let dual = self.choose32(matcher, norms, with_bound, cancel)?;
        let layout = || Error::Shape("internal: factor layout".into());
        let xs = factors.x.to_slice().ok_or_else(layout)?;
        let ys = factors.y.to_slice().ok_or_else(layout)?;
        let value = mixed::rescore(xs, ys, c, &self.perm);
        self.finish32(matcher, factors, (value, dual), with_bound, cancel)
    }

    /// [`crate::matching::choose_f32`] on the `f32` affinity in `self.affinity32` (its matched
    /// positions, `norms` theirs): the permutation into `self.perm`, the `f32` dual (or NaN).
    fn choose32(
        &mut self,
        matcher: Matcher,
        (nx, ny): (&[f64], &[f64]),
        with_bound: bool,
        cancel: &AtomicBool,
    ) -> Result<f64> {
        let problem = Affinity::new(&self.affinity32, nx.len(), nx, ny)?;
        crate::matching::choose_f32(
            matcher,
            &problem,
            with_bound,
            &mut self.workspace,
            &mut self.perm,
            cancel,
        )
    }

    /// Mixed precision, an approximate matcher, for every pair of a block (`rows × cols`
    /// pairs, their `f32` affinities in `self.block32`; `diagonal`: a block on the diagonal of
    /// a square tile, whose pairs on and below the diagonal are not needed): each pair's
    /// permutation chosen on its `f32` affinity ([`crate::matching::choose_f32`]), then all their
    /// `f64` values at once ([`mixed::rescore_pairs`], the rows of `xb`, `yb` read once), left in
    /// `self.approx` for [`Self::take_approx`], pair by pair in the order of the block's loop.
    /// `nxb`, `nyb`: the norms of the rows of `xb`, `yb`.
    #[allow(clippy::too_many_arguments)]
    fn choose_block32(
        &mut self,
        matcher: Matcher,
        (rows, cols, diagonal): (usize, usize, bool),
        (xb, yb, c): (&[T], &[T], usize),
        (nxb, nyb): (&[f64], &[f64]),
        (s, prefix): (usize, usize),
        with_bound: bool,
        cancel: &AtomicBool,
    ) -> Result<()> {
        let sm = s - prefix;
        let width = cols * s;
        self.approx.starts.clear();
        self.approx.duals.clear();
        self.approx.perms.clear();
        self.approx.next = 0;
        for ii in 0..rows {
            for jj in 0..cols {
                if diagonal && jj <= ii {
                    continue;
                }
                self.copy_affinity32(ii, jj, s, width, prefix);
                let (nx, ny) = (
                    nxb.get(ii * s + prefix..(ii + 1) * s),
                    nyb.get(jj * s + prefix..(jj + 1) * s),
                );
                let (Some(nx), Some(ny)) = (nx, ny) else {
                    return Err(Error::Shape("internal: norms layout".into()));
                };
                let dual = self.choose32(matcher, (nx, ny), with_bound, cancel)?;
                let approx = &mut self.approx;
                approx.starts.push((ii * s + prefix, jj * s + prefix));
                approx.duals.push(dual);
                approx
                    .perms
                    .try_reserve(sm)
                    .map_err(|_| Error::TooLarge("the permutations of a block of pairs".into()))?;
                approx.perms.extend_from_slice(&self.perm);
            }
        }
        let approx = &mut self.approx;
        mixed::rescore_pairs(
            (xb, yb, c),
            &approx.starts,
            &approx.perms,
            &mut approx.rescore,
            &mut approx.values,
        )
    }

    /// The next pair of [`Self::choose_block32`]'s block: its permutation into `self.perm` and
    /// its result ([`Self::finish32`]).
    fn take_approx(
        &mut self,
        matcher: Matcher,
        factors: &PairFactors<'_, T>,
        with_bound: bool,
        cancel: &AtomicBool,
    ) -> Result<(f64, f64)> {
        let k = self.approx.next;
        let sm = factors.x.nrows();
        let (Some(&value), Some(&dual), Some(perm)) = (
            self.approx.values.get(k),
            self.approx.duals.get(k),
            self.approx.perms.get(k * sm..(k + 1) * sm),
        ) else {
            return Err(Error::Shape(
                "internal: the block's approximate pairs".into(),
            ));
        };
        self.perm.copy_from_slice(perm);
        self.approx.next += 1;
        self.finish32(matcher, factors, (value, dual), with_bound, cancel)
    }

    /// The result of an approximate matcher's permutation (in `self.perm`) of the pair
    /// `factors` from its `f64` value and `f32` dual ([`crate::matching::finish_f32`], the slack
    /// [`mixed::row_error_sum`]): `G` and with `with_bound` (else NaN) the bound. An auction that
    /// misses its target against that bound is replaced, as [`Matcher::Auction`] documents, by
    /// the exact solver on the pair's `f64` affinity (computed then), with its bound.
    fn finish32(
        &mut self,
        matcher: Matcher,
        factors: &PairFactors<'_, T>,
        (value, dual): (f64, f64),
        with_bound: bool,
        cancel: &AtomicBool,
    ) -> Result<(f64, f64)> {
        let c = factors.x.ncols();
        let slack = mixed::row_error_sum(c, factors.norms_x, factors.norms_y);
        let solved = crate::matching::finish_f32(matcher, value, dual, slack, with_bound);
        mixed::count_approximate(solved.is_none());
        if let Some(r) = solved {
            return Ok(r);
        }
        let sm = factors.x.nrows();
        if self.affinity.dim() != (sm, sm) {
            self.affinity = try_array2(sm, sm, T::zero(), "an affinity matrix")?;
        }
        self.gemm
            .abt(factors.x, factors.y, self.affinity.view_mut())?;
        let (nx, ny) = (factors.norms_x, factors.norms_y);
        self.solve(Matcher::Exact, (nx, ny), with_bound, cancel)
    }

    /// One pair's affinity `xi · yjᵀ` into `self.affinity` (the pair's matched positions).
    fn pair_affinity(&mut self, xi: ArrayView2<'_, T>, yj: ArrayView2<'_, T>) -> Result<()> {
        self.gemm.abt(xi, yj, self.affinity.view_mut())
    }

    /// Match the affinity in `self.affinity`: the matched inner product (its permutation is left
    /// in `self.perm`) and its bound when `with_bound` (else NaN). `norms` are the pair's
    /// per-position norms, or empty slices when the matcher does not use them. `cancel` is
    /// polled inside the matcher too (once per augmenting search of the exact solver, every 256
    /// auction bids), so one long pair (`S` in the thousands) does not delay an interrupt.
    fn solve(
        &mut self,
        matcher: Matcher,
        norms: (&[f64], &[f64]),
        with_bound: bool,
        cancel: &AtomicBool,
    ) -> Result<(f64, f64)> {
        let s = self.affinity.nrows();
        let a = self
            .affinity
            .as_slice()
            .ok_or_else(|| Error::Shape("internal: affinity layout".into()))?;
        let (nx, ny) = if norms.0.is_empty() {
            (&self.zero_norms[..], &self.zero_norms[..])
        } else {
            norms
        };
        let problem = Affinity::new(a, s, nx, ny)?;
        let bound = if with_bound {
            matcher.assign_with_bound_cancellable(
                &problem,
                &mut self.workspace,
                &mut self.perm,
                cancel,
            )?
        } else {
            matcher.assign_cancellable(&problem, &mut self.workspace, &mut self.perm, cancel)?;
            f64::NAN
        };
        Ok((matched_sum(a, s, &self.perm), bound))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<T: Real>(n: usize, s: usize, c: usize, seed: u64, f: fn(f64) -> T) -> Array3<T> {
        let mut state = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        Array3::from_shape_fn((n, s, c), |_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            f((state >> 11) as f64 / (1u64 << 53) as f64 - 0.3)
        })
    }

    fn run<T: Real>(
        x: &Array3<T>,
        y: Option<&Array3<T>>,
        options: &GramOptions,
        block: Option<usize>,
    ) -> Gram {
        let (x, y) = (x.view(), y.map(|y| y.view()));
        let norms = validate(&x, y.as_ref(), options).unwrap();
        pool::pool(options.threads)
            .unwrap()
            .install(|| {
                pairwise_blocked(
                    x,
                    y,
                    &norms,
                    options,
                    &AtomicBool::new(false),
                    &AtomicU64::new(0),
                    block,
                )
            })
            .unwrap()
    }

    fn bits(g: &Gram) -> (Vec<u64>, Option<Array3<i64>>, Option<Vec<u64>>) {
        (
            g.values.iter().map(|v| v.to_bits()).collect(),
            g.permutations.clone(),
            g.bounds
                .as_ref()
                .map(|b| b.iter().map(|v| v.to_bits()).collect()),
        )
    }

    /// Every matcher: the affinities of blocks of pairs (one GEMM each, any block size, 1 or 2
    /// threads) give the bits of one GEMM per pair, and those are the bits of a pair computed
    /// independently (strict FMA-chain affinity, then the matcher).
    fn blocks_equal_pairs<T: Real + FmaRef>(f: fn(f64) -> T) {
        let matchers = [
            Matcher::Exact,
            Matcher::Greedy,
            Matcher::TopkGreedy { k: 3 },
            Matcher::BatchOptimal { b: 4 },
            Matcher::Auction { gap_ppm: 1000 },
            Matcher::Shift { w: 1 },
        ];
        // (S = 40: diagonal blocks of 7 samples in strips of 3, 3 and 1; S = 49: strips of 2
        // samples, 98 positions, whose rows start off the GEMM's panels of 8 (and 6, 4).)
        for (s, prefix) in [(9, 0), (11, 2), (40, 0), (49, 0)] {
            let c = 5;
            let x = sample(7, s, c, 1, f);
            let y = sample(5, s, c, 2, f);
            for matcher in matchers {
                for square in [true, false] {
                    let yy = if square { None } else { Some(&y) };
                    let mut o = GramOptions {
                        matcher,
                        threads: Some(1),
                        return_permutations: true,
                        return_bound: true,
                        prefix_tokens: prefix,
                        mixed_precision: false,
                    };
                    let per_pair = run(&x, yy, &o, Some(1));
                    for (block, threads) in [(None, 1), (Some(2), 2), (Some(3), 1), (Some(7), 2)] {
                        o.threads = Some(threads);
                        let blocked = run(&x, yy, &o, block);
                        assert_eq!(
                            bits(&blocked),
                            bits(&per_pair),
                            "{matcher:?} S={s} square={square} block={block:?} threads={threads}"
                        );
                    }
                    if prefix > 0 {
                        continue;
                    }
                    // Independent: pair (1, 3) from its own strict-order affinity.
                    let yv = if square { &x } else { &y };
                    let a: Vec<T> = (0..s * s)
                        .map(|e| {
                            let (p, q) = (e / s, e % s);
                            (0..c).fold(T::zero(), |acc, k| {
                                T::fma_ref(x[[1, p, k]], yv[[3, q, k]], acc)
                            })
                        })
                        .collect();
                    let norm = |v: &Array3<T>, i: usize| -> Vec<f64> {
                        (0..s)
                            .map(|p| {
                                (0..c)
                                    .map(|k| v[[i, p, k]].to_f64().powi(2))
                                    .sum::<f64>()
                                    .sqrt()
                            })
                            .collect()
                    };
                    let (nx, ny) = (norm(&x, 1), norm(yv, 3));
                    let problem = Affinity::new(&a, s, &nx, &ny).unwrap();
                    let mut perm = vec![0; s];
                    matcher
                        .assign(&problem, &mut Workspace::default(), &mut perm)
                        .unwrap();
                    assert_eq!(
                        matched_sum(&a, s, &perm).to_bits(),
                        per_pair.values[[1, 3]].to_bits(),
                        "{matcher:?} square={square}"
                    );
                }
            }
        }
    }

    /// Mixed precision: pairs certified together in blocks (their `f64` dot products batched,
    /// `k` in several chunks at C = 300) give the bits of one pair per block, for any block size
    /// and thread count, with prefix tokens and rectangular tiles; and, with no ties, `G`, the
    /// bounds' pairs and the permutations of the `f64` path bit for bit.
    #[test]
    fn mixed_blocks_equal_pairs_and_the_float64_path() {
        let f = |v: f64| v;
        for (s, prefix, c) in [(13, 0, 300), (11, 2, 37), (6, 0, 1), (49, 0, 400)] {
            let x = sample(9, s, c, 3, f);
            let y = sample(6, s, c, 4, f);
            for square in [true, false] {
                let yy = if square { None } else { Some(&y) };
                let mut o = GramOptions {
                    matcher: Matcher::Exact,
                    threads: Some(1),
                    return_permutations: true,
                    return_bound: false,
                    prefix_tokens: prefix,
                    mixed_precision: true,
                };
                let before = mixed::counters().certified;
                let per_pair = run(&x, yy, &o, Some(1));
                assert!(mixed::counters().certified > before, "the f32 path ran");
                for (block, threads) in [(None, 1), (Some(2), 2), (Some(4), 1), (Some(9), 3)] {
                    o.threads = Some(threads);
                    let blocked = run(&x, yy, &o, block);
                    assert_eq!(
                        bits(&blocked),
                        bits(&per_pair),
                        "S={s} C={c} square={square} block={block:?} threads={threads}"
                    );
                }
                o.mixed_precision = false;
                let float64 = run(&x, yy, &o, Some(3));
                assert_eq!(
                    bits(&float64),
                    bits(&per_pair),
                    "S={s} C={c} square={square}"
                );
            }
        }
    }

    /// The strict FMA step, for the independent reference.
    trait FmaRef {
        fn fma_ref(a: Self, b: Self, acc: Self) -> Self;
    }
    impl FmaRef for f64 {
        fn fma_ref(a: Self, b: Self, acc: Self) -> Self {
            a.mul_add(b, acc)
        }
    }
    impl FmaRef for f32 {
        fn fma_ref(a: Self, b: Self, acc: Self) -> Self {
            a.mul_add(b, acc)
        }
    }

    #[test]
    fn block_affinities_equal_per_pair_affinities_f64() {
        blocks_equal_pairs::<f64>(|v| v);
    }

    #[test]
    fn block_affinities_equal_per_pair_affinities_f32() {
        #[allow(clippy::cast_possible_truncation)]
        blocks_equal_pairs::<f32>(|v| v as f32);
    }

    #[test]
    fn spatio_semantic_is_the_strict_fma_chain_for_any_block_and_threads() {
        // 100 samples: several output blocks (and a block side chosen by the thread count).
        let x = sample::<f64>(100, 3, 7, 5, |v| v);
        let y = sample::<f64>(60, 3, 7, 6, |v| v);
        let dot = |a: &Array3<f64>, i: usize, b: &Array3<f64>, j: usize| -> u64 {
            a.index_axis(Axis(0), i)
                .iter()
                .zip(b.index_axis(Axis(0), j).iter())
                .fold(0.0_f64, |acc, (&p, &q)| p.mul_add(q, acc))
                .to_bits()
        };
        for threads in [1, 2, 5] {
            let o = GramOptions {
                matcher: Matcher::None,
                threads: Some(threads),
                ..GramOptions::default()
            };
            let g = gram(x.view(), None, &o, &AtomicBool::new(false)).unwrap();
            let r = gram(x.view(), Some(y.view()), &o, &AtomicBool::new(false)).unwrap();
            for i in 0..100 {
                for j in 0..100 {
                    let (a, b) = (i.min(j), i.max(j));
                    assert_eq!(g.values[[i, j]].to_bits(), dot(&x, a, &x, b), "{i} {j}");
                }
                for j in 0..60 {
                    assert_eq!(r.values[[i, j]].to_bits(), dot(&x, i, &y, j));
                }
            }
        }
    }

    #[test]
    fn pair_block_fits_the_budget() {
        for s in [1, 7, 49, 257, 1024, 4096] {
            for elem in [4, 8] {
                let b = pair_block(s, elem);
                assert!(b >= 1);
                assert!(b == 1 || (b * s) * (b * s) * elem <= PAIR_BLOCK_BYTES);
                assert!(scratch_bytes(s, 24, elem, true) >= s * s * elem);
            }
        }
        assert!(pair_block(49, 8) >= 8);
    }

    #[test]
    fn shift_scratch_bounds_the_spectra_of_a_block() {
        for (h, w) in [
            (7, 7),
            (16, 16),
            (32, 32),
            (56, 56),
            (64, 64),
            (1, 300),
            (300, 1),
        ] {
            for c in [1, 24, 144, 2048] {
                for elem in [4, 8] {
                    let s = h * w;
                    let total = shift_scratch_bytes(s, c, elem);
                    // Never below the affinity path's estimate, which it replaces only from
                    // FEATURES_FROM positions on.
                    assert!(total >= scratch_bytes(s, c, elem, true));
                    if s < FEATURES_FROM {
                        assert_eq!(total, scratch_bytes(s, c, elem, true));
                        continue;
                    }
                    // The spectra of a whole block (both sides) fit the estimate.
                    let budget = spectra_budget(affinity_scratch_bytes(s, c, elem));
                    let b = spectra_block((h, w), c, budget);
                    let per_sample = shift::Spectra::bytes_per_sample((h, w), c);
                    assert!(2 * b * per_sample <= total, "{h}x{w} c={c}");
                }
            }
        }
    }
}
