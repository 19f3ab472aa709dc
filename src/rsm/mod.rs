//! The pairwise fill: matched inner products `G[i, j] = max_P ⟨x_i, P y_j⟩` for all pairs.
//!
//! Inputs are `(N, S, C)` arrays (samples, positions, channels). Without `y` the result is the
//! symmetric `N × N` matrix of `x` against itself, computed for `i < j` only and mirrored (the
//! diagonal is `‖x_i‖²`, the identity being an optimal self-matching); with `y`
//! of shape `(M, S, C)` it is the `N × M` matrix of every `x_i` against every `y_j`.
//!
//! Per pair, the affinity `A = x_i y_jᵀ` (`S × S`) is one GEMM (ndarray's), after which the matcher
//! picks a permutation and `G = Σ_s A[s, perm[s]]`. The per-position norms `‖x_i[s]‖` that the
//! norm-based matchers need are computed once per sample (while validating the input), not per
//! pair. Pairs are distributed over a rayon pool; each pair's value depends on that pair's data
//! alone, so results are bit-identical for any number of threads. The spatio-semantic baseline
//! ([`Matcher::None`]) needs no affinity: it is one GEMM of the flattened samples, in fixed row
//! blocks (again independent of the thread count).
//!
//! In the square case the diagonal is not matched: `max_P ⟨x, P x⟩ = ‖x‖²` (Cauchy–Schwarz, the
//! identity attains it), which is also the value every matcher would reach at best, so
//! approximate matchers are exact on the diagonal, and its bound is `‖x_i‖²` too.
//!
//! With [`GramOptions::return_bound`] every pair also gets a certified upper bound on its exact
//! matched inner product ([`Matcher::assign_with_bound`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use ndarray::{linalg::general_mat_mul, Array2, Array3, ArrayView2, ArrayView3, Axis};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::lap::Cost;
use crate::matching::{matched_sum, Affinity, Matcher, Workspace};

pub mod pool;

/// Floating-point type of the representations and affinities: `f64` (default) or `f32`.
pub trait Real: Cost + ndarray::LinalgScalar + Send + Sync {
    /// Largest product of two concept-vector norms for which affinities stay safely finite.
    const MAX_PRODUCT: f64;
}

impl Real for f64 {
    const MAX_PRODUCT: f64 = 1e300;
}

impl Real for f32 {
    const MAX_PRODUCT: f64 = 1e37;
}

/// Largest number of permutation entries (`N · M · S`) returned (2³⁰: 8 GiB as `i64`).
pub const MAX_PERMUTATION_ENTRIES: usize = 1 << 30;
/// Largest affinity matrix per thread, in bytes (4 GiB: `S ≈ 23 000` in `f64`).
pub const MAX_AFFINITY_BYTES: usize = 1 << 32;
/// Largest output matrix, in entries (2³¹: 16 GiB of `f64`).
pub const MAX_OUTPUT_ENTRIES: usize = 1 << 31;

/// Rows of `x` per block in the GEMM of the spatio-semantic baseline.
const NONE_BLOCK_ROWS: usize = 32;

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
}

impl Default for GramOptions {
    fn default() -> Self {
        Self {
            matcher: Matcher::Exact,
            threads: None,
            return_permutations: false,
            return_bound: false,
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
/// between pairs: once it is set the function returns [`Error::Interrupted`] promptly.
///
/// Complexity: `N(N+1)/2` (or `N·M`) pairs, each `O(S²·C)` for the affinity plus the matcher's
/// cost (`O(S³)` worst case for [`Matcher::Exact`]); [`Matcher::None`] is one `O(N·M·S·C)` GEMM.
///
/// # Errors
/// [`Error::Empty`] for a zero-sized dimension, [`Error::Shape`] for mismatched `S` or `C`,
/// [`Error::NonFinite`] for NaN/inf entries, [`Error::Range`] for values whose products would
/// overflow, [`Error::TooLarge`] when the output, permutations or per-thread affinity exceed the
/// limits above, [`Error::InvalidOption`] for `threads == Some(0)`, [`Error::ThreadPool`],
/// [`Error::Interrupted`].
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
    let norms = validate(&x, y.as_ref(), options)?;
    pool::pool(options.threads)?.install(|| gram_in_pool(x, y, &norms, options, cancel))
}

/// Whether the pairwise fill (one affinity per pair) is needed.
fn needs_pairs(options: &GramOptions) -> bool {
    options.matcher.needs_affinity() || options.return_bound
}

/// Per-position L2 norms of `x` (`N × S`) and `y` (`M × S`, absent in the square case); empty
/// when no matcher needs them.
struct Norms {
    x: Array2<f64>,
    y: Option<Array2<f64>>,
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
    let (n, s, c) = x.dim();
    check_nonempty(x, "x")?;
    let keep = needs_pairs(options);
    let (max_x, norms_x) = vector_norms(x, "x", keep)?;
    let mut norms_y = None;
    let (m, max_y) = match y {
        Some(y) => {
            check_nonempty(y, "y")?;
            let (m, sy, cy) = y.dim();
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
            let (max_y, ny) = vector_norms(y, "y", keep)?;
            norms_y = Some(ny);
            (m, max_y)
        }
        None => (n, max_x),
    };
    if max_x * max_y > T::MAX_PRODUCT {
        return Err(Error::Range {
            what: if y.is_some() { "x and y" } else { "x" },
            detail: format!(
                "largest concept-vector norms {max_x:.3e} and {max_y:.3e} (inf: beyond the float \
                 range); affinities need their product below {:e}",
                T::MAX_PRODUCT
            ),
        });
    }
    if n.checked_mul(m).is_none_or(|e| e > MAX_OUTPUT_ENTRIES) {
        return Err(Error::TooLarge(format!(
            "the {n} x {m} output would exceed {MAX_OUTPUT_ENTRIES} entries"
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
        x: norms_x,
        y: norms_y,
    })
}

fn check_nonempty<T>(a: &ArrayView3<'_, T>, what: &'static str) -> Result<()> {
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

/// Largest L2 norm of a concept vector, after checking every entry is finite; with `keep`, also
/// the norm of every position (`N × S`, else an empty array). One serial pass (deterministic).
fn vector_norms<T: Real>(
    a: &ArrayView3<'_, T>,
    what: &'static str,
    keep: bool,
) -> Result<(f64, Array2<f64>)> {
    let (n, s, _) = a.dim();
    let mut norms = Array2::<f64>::zeros(if keep { (n, s) } else { (0, 0) });
    let mut max_sq = 0.0_f64;
    for (i, sample) in a.outer_iter().enumerate() {
        for (p, v) in sample.outer_iter().enumerate() {
            let mut sq = 0.0_f64;
            for (k, &e) in v.iter().enumerate() {
                let e = e.to_f64();
                if !e.is_finite() {
                    return Err(Error::NonFinite {
                        what,
                        index: vec![i, p, k],
                        value: e,
                    });
                }
                sq += e * e;
            }
            max_sq = max_sq.max(sq);
            if keep {
                norms[[i, p]] = sq.sqrt();
            }
        }
    }
    Ok((max_sq.sqrt(), norms))
}

fn gram_in_pool<T: Real>(
    x: ArrayView3<'_, T>,
    y: Option<ArrayView3<'_, T>>,
    norms: &Norms,
    options: &GramOptions,
    cancel: &AtomicBool,
) -> Result<Gram> {
    let (n, s, _) = x.dim();
    let m = y.map_or(n, |y| y.dim().0);
    if needs_pairs(options) {
        return pairwise(x, y, norms, options, cancel);
    }
    let values = spatio_semantic(x, y, cancel)?;
    let permutations = options.return_permutations.then(|| {
        let identity = ndarray::Array1::from_iter(0..s as i64);
        identity
            .broadcast((n, m, s))
            .map(|b| b.to_owned())
            .unwrap_or_default()
    });
    Ok(Gram {
        values,
        permutations,
        bounds: None,
    })
}

/// `G = X Yᵀ` on the flattened samples, in fixed blocks of rows; mirrored when square.
fn spatio_semantic<T: Real>(
    x: ArrayView3<'_, T>,
    y: Option<ArrayView3<'_, T>>,
    cancel: &AtomicBool,
) -> Result<Array2<f64>> {
    let x = x.as_standard_layout();
    let (n, s, c) = x.dim();
    let xf = x
        .view()
        .into_shape_with_order((n, s * c))
        .map_err(|e| Error::Shape(e.to_string()))?;
    let y_std = y.as_ref().map(|y| y.as_standard_layout());
    let yf: ArrayView2<'_, T> = match &y_std {
        Some(y) => {
            let m = y.dim().0;
            y.view()
                .into_shape_with_order((m, s * c))
                .map_err(|e| Error::Shape(e.to_string()))?
        }
        None => xf,
    };
    let m = yf.nrows();
    let mut g = Array2::<T>::zeros((n, m));
    g.axis_chunks_iter_mut(Axis(0), NONE_BLOCK_ROWS)
        .into_par_iter()
        .zip(
            xf.axis_chunks_iter(Axis(0), NONE_BLOCK_ROWS)
                .into_par_iter(),
        )
        .try_for_each(|(mut block, xs)| {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            general_mat_mul(T::one(), &xs, &yf.t(), T::zero(), &mut block);
            Ok(())
        })?;
    let mut values = g.mapv(Cost::to_f64);
    if y.is_none() {
        mirror_upper(&mut values);
    }
    Ok(values)
}

/// Copy the upper triangle onto the lower one, so the matrix is exactly symmetric.
fn mirror_upper(g: &mut Array2<f64>) {
    let n = g.nrows();
    for i in 0..n {
        for j in 0..i {
            g[[i, j]] = g[[j, i]];
        }
    }
}

/// The affinity-based matchers: one task per pair, per-thread workspaces.
fn pairwise<T: Real>(
    x: ArrayView3<'_, T>,
    y: Option<ArrayView3<'_, T>>,
    norms: &Norms,
    options: &GramOptions,
    cancel: &AtomicBool,
) -> Result<Gram> {
    let (n, s, _) = x.dim();
    let square = y.is_none();
    let yv = y.unwrap_or(x);
    let norms_y = norms.y.as_ref().unwrap_or(&norms.x);
    let m = yv.dim().0;
    // Square case: the diagonal needs no matching. max_P <x, P x> = ||x||² (Cauchy–Schwarz),
    // attained by the identity, so G[i, i] = ||x_i||² and perm[i, i] = identity, for any matcher
    // (the approximations are exact there: none can exceed the optimum, and the identity reaches
    // it). The bound is ||x_i||² as well.
    let pairs: Vec<(usize, usize)> = if square {
        (0..n)
            .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
            .collect()
    } else {
        (0..n).flat_map(|i| (0..m).map(move |j| (i, j))).collect()
    };
    let slots: Vec<Mutex<PairScratch<T>>> = (0..rayon::current_num_threads().max(1))
        .map(|_| Mutex::new(PairScratch::default()))
        .collect();
    let matcher = options.matcher;
    let keep = options.return_permutations;
    let with_bound = options.return_bound;
    let uses_norms = !norms.x.is_empty();

    let results: Vec<(f64, Vec<usize>, f64)> = pairs
        .par_iter()
        .map(|&(i, j)| {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            let slot = rayon::current_thread_index().unwrap_or(0) % slots.len();
            let mut scratch = slots[slot]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (nx, ny) = if uses_norms {
                (
                    norms.x.row(i).to_slice().unwrap_or(&[]),
                    norms_y.row(j).to_slice().unwrap_or(&[]),
                )
            } else {
                (&[][..], &[][..])
            };
            scratch.match_pair(
                matcher,
                x.index_axis(Axis(0), i),
                yv.index_axis(Axis(0), j),
                (nx, ny),
                keep,
                with_bound,
            )
        })
        .collect::<Result<_>>()?;

    let mut values = Array2::<f64>::zeros((n, m));
    let mut permutations = keep.then(|| Array3::<i64>::zeros((n, m, s)));
    let mut bounds = with_bound.then(|| Array2::<f64>::zeros((n, m)));
    if square {
        for (i, sample) in x.outer_iter().enumerate() {
            values[[i, i]] = sample.iter().map(|&e| e.to_f64() * e.to_f64()).sum();
            if let Some(b) = bounds.as_mut() {
                b[[i, i]] = values[[i, i]];
            }
            if let Some(p) = permutations.as_mut() {
                for k in 0..s {
                    p[[i, i, k]] = k as i64;
                }
            }
        }
    }
    for (&(i, j), (g, perm, bound)) in pairs.iter().zip(results) {
        values[[i, j]] = g;
        if square {
            values[[j, i]] = g;
        }
        if let Some(b) = bounds.as_mut() {
            // The bound holds for (j, i) too: A_ji = A_ijᵀ has the same optimum.
            b[[i, j]] = bound;
            if square {
                b[[j, i]] = bound;
            }
        }
        if let Some(p) = permutations.as_mut() {
            for (k, &t) in perm.iter().enumerate() {
                p[[i, j, k]] = t as i64;
                if square {
                    p[[j, i, t]] = k as i64;
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

/// Buffers for one pair: the affinity, the permutation and the matcher's workspace.
struct PairScratch<T> {
    affinity: Array2<T>,
    perm: Vec<usize>,
    workspace: Workspace,
    /// Stand-in norms for matchers that do not read them.
    zero_norms: Vec<f64>,
}

impl<T: Real> Default for PairScratch<T> {
    fn default() -> Self {
        Self {
            affinity: Array2::zeros((0, 0)),
            perm: Vec::new(),
            workspace: Workspace::default(),
            zero_norms: Vec::new(),
        }
    }
}

impl<T: Real> PairScratch<T> {
    /// Matched inner product of one pair, its permutation when `keep` (else empty) and its
    /// bound when `with_bound` (else NaN). `norms` are the pair's per-position norms, or empty
    /// slices when the matcher does not use them.
    fn match_pair(
        &mut self,
        matcher: Matcher,
        xi: ArrayView2<'_, T>,
        yj: ArrayView2<'_, T>,
        norms: (&[f64], &[f64]),
        keep: bool,
        with_bound: bool,
    ) -> Result<(f64, Vec<usize>, f64)> {
        let s = xi.nrows();
        if self.affinity.dim() != (s, s) {
            self.affinity = Array2::zeros((s, s));
        }
        general_mat_mul(T::one(), &xi, &yj.t(), T::zero(), &mut self.affinity);
        self.perm.resize(s, 0);
        let a = self
            .affinity
            .as_slice()
            .ok_or_else(|| Error::Shape("internal: affinity layout".into()))?;
        let (nx, ny) = if norms.0.is_empty() {
            self.zero_norms.resize(s, 0.0);
            (&self.zero_norms[..], &self.zero_norms[..])
        } else {
            norms
        };
        let problem = Affinity::new(a, s, nx, ny)?;
        let bound = if with_bound {
            matcher.assign_with_bound(&problem, &mut self.workspace, &mut self.perm)?
        } else {
            matcher.assign(&problem, &mut self.workspace, &mut self.perm)?;
            f64::NAN
        };
        let g = matched_sum(a, s, &self.perm);
        Ok((g, if keep { self.perm.clone() } else { Vec::new() }, bound))
    }
}
