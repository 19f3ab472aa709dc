//! Translation-invariant baseline: the best circular 2-D shift of the grid (Williams et al., 2021,
//! "Generalized Shape Metrics on Neural Representations", NeurIPS, Sec. 3: convolutional layers
//! compared up to translations).
//!
//! The `S = H·W` positions form a row-major `H × W` grid (`s = r·W + c`, the order of
//! `(C, H, W).reshape(C, S)`). Shift `(dy, dx)` matches position `(r, c)` of `x` with position
//! `((r + dy) mod H, (c + dx) mod W)` of `y`; the matcher returns the shift with the largest summed
//! affinity. It sits between the spatio-semantic comparison (the zero shift, [`super::Matcher::None`])
//! and the semantic one (any permutation, [`super::Matcher::Exact`]):
//! `G_none ≤ G_shift ≤ G_exact`, because the zero shift is one of the candidates and every shift is
//! a permutation.
//!
//! Complexity: `O(S²)` per pair, every affinity entry read once, row by row: entry `A[s, t]` is
//! added to the score of the one shift that takes `s` to `t`. Each score is summed in order of `s`,
//! exactly as [`super::matched_sum`] sums the chosen permutation, so the returned matching has the
//! maximal score bit for bit. Ties go to the first shift in the order `(dy, dx) = (0, 0), (0, 1),
//! …` (so the zero shift wins any tie with it).
//!
//! **Without the affinity.** The scores of all shifts are one circular cross-correlation of the
//! two maps, summed over channels, so `gram` (from [`FEATURES_FROM`] grid positions on, when no
//! bound is asked for) skips the `O(C·S²)` GEMM and finds the shift from the samples by FFT
//! ([`best_shift_features`], `O(C·S·log S)`), re-scoring in `f64` the shifts whose FFT estimate
//! could be the best: the same shift and the same value to the last bit as through the affinity.
//! Each sample's spectra are computed once per block of pairs ([`spectra`]), each pair then costs
//! a cross-spectrum, one inverse FFT and the re-score ([`best_shift_spectra`]). Measured on real
//! EfficientNet maps (one thread, per pair): S = 3136–4096 30–120× faster than through the
//! affinities, S = 1024 25×, S = 256 6× (docs/benchmarks.md, "The shift matcher by FFT").

use super::Affinity;
use crate::error::{Error, Result};
use crate::lap::Cost;

/// The grid `(H, W)` of `s` positions for the option `w` (`0`: a square grid).
///
/// # Errors
/// [`Error::InvalidOption`] if `w = 0` and `s` is not a perfect square, or `w` does not divide `s`.
pub fn grid(s: usize, w: usize) -> Result<(usize, usize)> {
    if w == 0 {
        let side = s.isqrt();
        if side * side != s {
            return Err(Error::InvalidOption(format!(
                "matcher \"shift\" needs the grid width: S = {s} positions are not a square grid; \
                 pass w=W (S = H*W; semrsm.build does so for (N, C, H, W) input)"
            )));
        }
        return Ok((side, side));
    }
    if !s.is_multiple_of(w) {
        return Err(Error::InvalidOption(format!(
            "matcher \"shift\": grid width w={w} does not divide S = {s} positions (S = H*W)"
        )));
    }
    Ok((s / w, w))
}

/// Write the best circular shift of the `H × W` grid (`w = 0`: square) into `perm`; `scores` is
/// scratch space (grown to `S`).
pub(crate) fn best_shift<T: Cost>(
    affinity: &Affinity<'_, T>,
    w: usize,
    scores: &mut Vec<f64>,
    perm: &mut [usize],
) -> Result<()> {
    let s = affinity.size();
    let (h, w) = grid(s, w)?;
    scores.clear();
    scores.resize(s, 0.0);
    for r in 0..h {
        for c in 0..w {
            let row = affinity.row(r * w + c);
            for tr in 0..h {
                let dy = if tr >= r { tr - r } else { tr + h - r };
                let targets = &row[tr * w..(tr + 1) * w];
                let shifted = &mut scores[dy * w..(dy + 1) * w];
                // Column tc is reached by dx = tc - c (mod w): tc ≥ c gives dx = tc - c, tc < c
                // gives dx = tc + w - c.
                for (dx, &a) in shifted[..w - c].iter_mut().zip(&targets[c..]) {
                    *dx += a.to_f64();
                }
                for (dx, &a) in shifted[w - c..].iter_mut().zip(&targets[..c]) {
                    *dx += a.to_f64();
                }
            }
        }
    }
    let mut best = 0;
    for (k, &v) in scores.iter().enumerate() {
        if v > scores[best] {
            best = k;
        }
    }
    let (dy, dx) = (best / w, best % w);
    for r in 0..h {
        for c in 0..w {
            perm[r * w + c] = ((r + dy) % h) * w + (c + dx) % w;
        }
    }
    Ok(())
}

use rustfft::num_complex::Complex64;

use crate::kernels::spectrum::conj_mul_add;

/// Relative margin, against `‖x‖_F·‖y‖_F`, within which a shift's score from the FFT is treated
/// as possibly the best and re-scored exactly (see [`best_shift_features`]). A score differs from
/// its FFT estimate by `O(log S · ε)` of that product and from its exact sum by `O(S·ε)` (with
/// `ε = 2⁻⁵³`), many orders of magnitude below `1e-8` for every `S` a grid can have in memory.
pub const FFT_MARGIN: f64 = 1e-8;
/// From this many grid positions on, `gram` matches shifts from the samples by FFT
/// ([`best_shift_spectra`]) instead of through their affinities; the results are the same either
/// way. Measured (one thread): from 256 positions the FFT path is at least as fast even for a
/// single pair (both samples' spectra then cost one FFT per channel), and 4–6× faster with many
/// pairs (each sample's spectra computed once per block). Below, calls of many pairs would still
/// gain 2–3× (random maps, 10 × 10 to 14 × 14, C = 24–320) but a single pair with many channels
/// loses (7 × 7 to 14 × 14 at C = 1280–2048: 1.2–1.5× slower), where the affinities' GEMM is cheap.
pub const FEATURES_FROM: usize = 256;
/// Below this product of the maps' largest magnitudes, subnormal products could move the exact
/// scores by more than [`FFT_MARGIN`]: every shift is re-scored instead.
const SMALLEST_SCALE: f64 = 1e-280;
/// The least bytes of [`Spectra`] one thread of `gram` keeps for a block of pairs (the spectra
/// of its samples, each computed once per block); at least one sample per side.
pub const SPECTRA_BYTES: usize = 32 << 20;

/// Samples per side of `gram`'s blocks of pairs when the shift is matched by FFT on the `h × w`
/// grid: as many as `budget` bytes hold for both sides (at least one).
#[must_use]
pub fn spectra_block(grid: (usize, usize), c: usize, budget: usize) -> usize {
    (budget / Spectra::bytes_per_sample(grid, c).max(1) / 2).max(1)
}

/// The 2-D spectra of some samples' channels, for [`best_shift_spectra`]: per sample, each
/// channel's DFT on the `H × W` grid (stored transposed, `W × H`), of the sample scaled to a
/// largest magnitude of 1, with that magnitude and the scaled sample's Frobenius norm.
#[derive(Debug, Default, Clone)]
pub struct Spectra {
    /// Per sample, per channel: the stored spectrum's real parts, then its imaginary parts.
    values: Vec<f64>,
    largest: Vec<f64>,
    norms: Vec<f64>,
    per_sample: usize,
}

impl Spectra {
    /// Bytes of the spectra of one sample of `c` channels on the `h × w` grid.
    #[must_use]
    pub fn bytes_per_sample((h, w): (usize, usize), c: usize) -> usize {
        half_len(h, w)
            .saturating_mul(c)
            .saturating_mul(std::mem::size_of::<Complex64>())
    }

    fn sample(&self, k: usize) -> SampleSpectrum<'_> {
        SampleSpectrum {
            values: &self.values[k * self.per_sample..(k + 1) * self.per_sample],
            largest: self.largest[k],
            norm: self.norms[k],
        }
    }
}

/// One sample's part of [`Spectra`].
#[derive(Clone, Copy)]
struct SampleSpectrum<'a> {
    values: &'a [f64],
    largest: f64,
    norm: f64,
}

/// FFT plans and buffers of the shift matcher on samples, reused between calls (the plans are
/// cached by size).
#[derive(Default)]
pub struct ShiftWorkspace {
    planner: Option<rustfft::FftPlanner<f64>>,
    /// A scaled sample, channel by channel (`C × S`).
    channels: Vec<f64>,
    /// Two channels of a sample, `x_c + i·x_{c+1}`, then their spectrum.
    packed: Vec<Complex64>,
    transposed: Vec<Complex64>,
    /// `Σ_c conj(X_c)·Y_c` (transposed), then the scores of every shift.
    cross: Vec<Complex64>,
    /// Its stored part while it is summed: real parts, then imaginary parts.
    acc: Vec<f64>,
    fft_scratch: Vec<Complex64>,
    candidates: Vec<usize>,
    candidate_perm: Vec<usize>,
    /// The spectra of the two samples of a [`best_shift_features`] call.
    pair: [Spectra; 2],
}

impl std::fmt::Debug for ShiftWorkspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShiftWorkspace")
            .field("positions", &self.cross.len())
            .finish_non_exhaustive()
    }
}

impl Clone for ShiftWorkspace {
    /// A fresh workspace (buffers and plans are rebuilt on first use).
    fn clone(&self) -> Self {
        Self::default()
    }
}

/// The 2-D FFTs of the `H × W` grid, both ways.
struct Plans {
    rows: [std::sync::Arc<dyn rustfft::Fft<f64>>; 2],
    columns: [std::sync::Arc<dyn rustfft::Fft<f64>>; 2],
}

impl ShiftWorkspace {
    fn plans(&mut self, (h, w): (usize, usize)) -> Plans {
        let planner = self.planner.get_or_insert_with(rustfft::FftPlanner::new);
        let plans = Plans {
            rows: [planner.plan_fft_forward(w), planner.plan_fft_inverse(w)],
            columns: [planner.plan_fft_forward(h), planner.plan_fft_inverse(h)],
        };
        let scratch = plans
            .rows
            .iter()
            .chain(&plans.columns)
            .map(|p| p.get_inplace_scratch_len())
            .max()
            .unwrap_or(0);
        self.fft_scratch.resize(scratch, Complex64::new(0.0, 0.0));
        plans
    }
}

/// The [`Spectra`] of the samples `samples` (each `S × C` row-major, `S = h·w`) into `out`.
///
/// # Errors
/// [`Error::TooLarge`] if the spectra cannot be allocated.
pub fn spectra<T: Cost>(
    samples: &[&[T]],
    c: usize,
    (h, w): (usize, usize),
    ws: &mut ShiftWorkspace,
    out: &mut Spectra,
) -> Result<()> {
    let s = h * w;
    let n = samples.len();
    debug_assert!(samples.iter().all(|x| x.len() == s * c));
    let zero = Complex64::new(0.0, 0.0);
    // The spectrum of a real channel is conjugate-symmetric: its first W/2 + 1 transposed rows
    // (kx ≤ W/2) determine it.
    let half = half_len(h, w);
    let per_sample = 2 * half * c;
    out.per_sample = per_sample;
    out.values.clear();
    out.values
        .try_reserve_exact(n.saturating_mul(per_sample))
        .map_err(|_| {
            Error::TooLarge(format!(
                "could not allocate the spectra of {n} samples for the shift matcher ({} bytes)",
                n.saturating_mul(Spectra::bytes_per_sample((h, w), c))
            ))
        })?;
    out.values.resize(n * per_sample, 0.0);
    out.largest.clear();
    out.norms.clear();
    let plans = ws.plans((h, w));
    ws.packed.resize(s, zero);
    ws.transposed.resize(s, zero);
    ws.channels.resize(s * c, 0.0);
    for (k, &sample) in samples.iter().enumerate() {
        let largest = sample.iter().fold(0.0_f64, |m, a| m.max(a.to_f64().abs()));
        let inv = if largest > 0.0 { 1.0 / largest } else { 0.0 };
        let norm = sample
            .iter()
            .map(|a| (a.to_f64() * inv).powi(2))
            .sum::<f64>()
            .sqrt();
        out.largest.push(largest);
        out.norms.push(norm);
        // The scaled sample channel by channel (C × S), in blocks of 16 positions so that
        // both sides stay in the cache.
        for t0 in (0..s).step_by(16) {
            let t1 = s.min(t0 + 16);
            for ch in 0..c {
                let column = &mut ws.channels[ch * s + t0..ch * s + t1];
                for (v, t) in column.iter_mut().zip(t0..t1) {
                    *v = sample[t * c + ch].to_f64() * inv;
                }
            }
        }
        let spectra = &mut out.values[k * per_sample..(k + 1) * per_sample];
        // Two channels per complex FFT, x_c + i·x_{c+1}, split by symmetry:
        // X_c = (Z_k + conj(Z_−k)) / 2, X_{c+1} = (Z_k − conj(Z_−k)) / 2i.
        for ch in (0..c).step_by(2) {
            let re = &ws.channels[ch * s..(ch + 1) * s];
            if ch + 1 < c {
                let im = &ws.channels[(ch + 1) * s..(ch + 2) * s];
                for ((z, &a), &b) in ws.packed.iter_mut().zip(re).zip(im) {
                    *z = Complex64::new(a, b);
                }
            } else {
                for (z, &a) in ws.packed.iter_mut().zip(re) {
                    *z = Complex64::new(a, 0.0);
                }
            }
            plans.rows[0].process_with_scratch(&mut ws.packed, &mut ws.fft_scratch);
            transpose(&ws.packed, &mut ws.transposed, h, w);
            plans.columns[0].process_with_scratch(&mut ws.transposed, &mut ws.fft_scratch);
            let z = &ws.transposed;
            let channel = &mut spectra[2 * ch * half..];
            if ch + 1 == c {
                let (re, im) = channel[..2 * half].split_at_mut(half);
                for ((r, i), zk) in re.iter_mut().zip(im).zip(&z[..half]) {
                    (*r, *i) = (zk.re, zk.im);
                }
                continue;
            }
            let (first, second) = channel[..4 * half].split_at_mut(2 * half);
            let (first_re, first_im) = first.split_at_mut(half);
            let (second_re, second_im) = second.split_at_mut(half);
            for kx in 0..half / h {
                let mx = if kx == 0 { 0 } else { w - kx };
                let ml = &z[mx * h..(mx + 1) * h];
                for ky in 0..h {
                    let k = kx * h + ky;
                    let zk = z[k];
                    // −k along H: ky = 0 to itself, ky to h − ky otherwise.
                    let zm = ml[if ky == 0 { 0 } else { h - ky }].conj();
                    let a = (zk + zm) * 0.5;
                    // (Z_k − conj(Z_−k)) / 2i = (d.im − i·d.re) / 2 for d = Z_k − conj(Z_−k).
                    let d = zk - zm;
                    (first_re[k], first_im[k]) = (a.re, a.im);
                    (second_re[k], second_im[k]) = (d.im * 0.5, -d.re * 0.5);
                }
            }
        }
    }
    Ok(())
}

/// Entries of a channel's stored spectrum: the transposed rows `kx ≤ W/2`, `H` each.
const fn half_len(h: usize, w: usize) -> usize {
    (w / 2 + 1) * h
}

/// The best shift ([`super::Matcher::Shift`]) from the samples themselves (`x`, `y`: `S × C`
/// row-major, `c = C`, `S = perm.len()`), without their `S × S` affinity: `O(C·S·log S)` instead
/// of `O(C·S²)`. Returns the matched inner product; the shift is written into `perm`.
///
/// The score of shift `(dy, dx)` is the circular cross-correlation of the two maps summed over
/// channels: the inverse 2-D DFT of `Σ_c conj(X_c)·Y_c` ([`spectra`]: one complex FFT per two
/// channels, split by symmetry), computed on the maps scaled to a largest magnitude of 1. That
/// estimate is within [`FFT_MARGIN`]`·‖x‖_F·‖y‖_F` (in those units) of the exact score, so every
/// shift within twice that of the best estimate is re-scored exactly
/// ([`super::mixed::rescore`]: the `f64` affinity entries' bits, summed in row order, as the
/// affinity path sums them), and the best of those wins, ties to the first shift. The result is
/// the affinity path's bit for bit: the same shift, the same value. Where many shifts tie
/// (constant maps), or the maps' scale is near the subnormal range, more or all shifts are
/// re-scored, up to the affinity path's `O(C·S²)`. `gram` computes each sample's spectra once per
/// block of pairs and calls [`best_shift_spectra`].
///
/// # Errors
/// As [`grid`]; [`Error::TooLarge`] if the spectra cannot be allocated.
pub fn best_shift_features<T: Cost>(
    x: &[T],
    y: &[T],
    c: usize,
    w: usize,
    ws: &mut ShiftWorkspace,
    perm: &mut [usize],
) -> Result<f64> {
    let (h, w) = grid(perm.len(), w)?;
    let mut pair = std::mem::take(&mut ws.pair);
    let result = spectra(&[x], c, (h, w), ws, &mut pair[0])
        .and_then(|()| spectra(&[y], c, (h, w), ws, &mut pair[1]))
        .and_then(|()| best_shift_spectra((x, &pair[0], 0), (y, &pair[1], 0), c, w, ws, perm));
    ws.pair = pair;
    result
}

/// [`best_shift_features`] for `x` = sample `i` of `sx` (its [`Spectra`]) and `y` = sample `j` of
/// `sy`: `(x, spectra, i)`, `x` the sample's own `S × C` values.
///
/// # Errors
/// As [`grid`].
pub fn best_shift_spectra<T: Cost>(
    (x, sx, i): (&[T], &Spectra, usize),
    (y, sy, j): (&[T], &Spectra, usize),
    c: usize,
    w: usize,
    ws: &mut ShiftWorkspace,
    perm: &mut [usize],
) -> Result<f64> {
    let s = perm.len();
    let (h, w) = grid(s, w)?;
    debug_assert!(x.len() == s * c && y.len() == s * c);
    let candidates = shift_candidates(sx.sample(i), sy.sample(j), s, c, (h, w), ws);
    let mut best: Option<(f64, usize)> = None;
    let mut trial = std::mem::take(&mut ws.candidate_perm);
    trial.resize(s, 0);
    for &k in &candidates {
        shift_permutation(k, (h, w), &mut trial);
        let value = super::mixed::rescore(x, y, c, &trial);
        // Candidates come in increasing shift order: a tie keeps the first.
        if best.is_none_or(|(v, _)| value > v) {
            best = Some((value, k));
        }
    }
    ws.candidate_perm = trial;
    ws.candidates = candidates;
    let (value, k) = best.unwrap_or((0.0, 0));
    shift_permutation(k, (h, w), perm);
    if best.is_none() {
        return Ok(super::mixed::rescore(x, y, c, perm));
    }
    Ok(value)
}

/// The permutation of shift `k = dy·W + dx` of the `H × W` grid.
fn shift_permutation(k: usize, (h, w): (usize, usize), perm: &mut [usize]) {
    let (dy, dx) = (k / w, k % w);
    for r in 0..h {
        for c in 0..w {
            perm[r * w + c] = ((r + dy) % h) * w + (c + dx) % w;
        }
    }
}

/// The shifts whose FFT score is within `2·FFT_MARGIN·‖x‖_F·‖y‖_F` of the best one (in the units
/// of the scaled samples), in increasing order: the exact best is among them (see
/// [`best_shift_features`]).
fn shift_candidates(
    x: SampleSpectrum<'_>,
    y: SampleSpectrum<'_>,
    s: usize,
    c: usize,
    (h, w): (usize, usize),
    ws: &mut ShiftWorkspace,
) -> Vec<usize> {
    let mut candidates = std::mem::take(&mut ws.candidates);
    candidates.clear();
    if x.largest == 0.0 || y.largest == 0.0 {
        // A zero map: every product, so every score, is zero; the first shift wins.
        candidates.push(0);
        return candidates;
    }
    let margin = 2.0 * FFT_MARGIN * x.norm * y.norm;
    // The exact scores' own rounding must stay far inside the margin: relative (S + C)·ε of
    // ‖x‖·‖y‖, plus an absolute 2⁻¹⁰⁷⁴ per operation once products are subnormal, which is
    // negligible unless the maps' scale is itself near the subnormal range. Otherwise (and for
    // non-finite scales) every shift is a candidate: the affinity path's cost, the same result.
    #[allow(clippy::cast_precision_loss)]
    let operations = (s + c) as f64;
    let scale = x.largest * y.largest;
    if !(scale.is_finite()
        && scale >= SMALLEST_SCALE
        && operations * f64::EPSILON * 16.0 < FFT_MARGIN)
    {
        candidates.extend(0..s);
        return candidates;
    }
    let plans = ws.plans((h, w));
    let zero = Complex64::new(0.0, 0.0);
    ws.cross.clear();
    ws.cross.resize(s, zero);
    // Σ_c conj(X_c)·Y_c on the stored rows kx ≤ W/2; the others by conjugate symmetry.
    let half = half_len(h, w);
    let isa = crate::kernels::isa();
    ws.acc.clear();
    ws.acc.resize(2 * half, 0.0);
    let (acc_re, acc_im) = ws.acc.split_at_mut(half);
    for (xs, ys) in x
        .values
        .chunks_exact(2 * half)
        .zip(y.values.chunks_exact(2 * half))
    {
        conj_mul_add(
            isa,
            (&mut *acc_re, &mut *acc_im),
            xs.split_at(half),
            ys.split_at(half),
        );
    }
    for ((z, &re), &im) in ws.cross.iter_mut().zip(&*acc_re).zip(&*acc_im) {
        *z = Complex64::new(re, im);
    }
    for kx in half / h..w {
        let mx = w - kx;
        for ky in 0..h {
            let my = if ky == 0 { 0 } else { h - ky };
            ws.cross[kx * h + ky] = ws.cross[mx * h + my].conj();
        }
    }
    // Back to the grid: inverse along H (transposed rows), transpose, inverse along W.
    plans.columns[1].process_with_scratch(&mut ws.cross, &mut ws.fft_scratch);
    ws.packed.resize(s, zero);
    let scores = &mut ws.packed[..s];
    transpose(&ws.cross, scores, w, h);
    plans.rows[1].process_with_scratch(scores, &mut ws.fft_scratch);
    #[allow(clippy::cast_precision_loss)]
    let per_position = 1.0 / s as f64;
    let best = scores
        .iter()
        .map(|z| z.re * per_position)
        .fold(f64::NEG_INFINITY, f64::max);
    candidates.extend(
        scores
            .iter()
            .enumerate()
            .filter(|(_, z)| z.re * per_position >= best - margin)
            .map(|(k, _)| k),
    );
    debug_assert!(candidates.iter().all(|&k| k < s));
    if candidates.is_empty() {
        // NaN estimates (cannot happen for finite input): re-score every shift.
        candidates.extend(0..s);
    }
    candidates
}

/// `out = aᵀ` for `a`: `rows × cols` row-major; in tiles of 8 × 8, so that the writes of a tile
/// fill whole cache lines (one entry per line at a time, they cost ~3× as much).
fn transpose(a: &[Complex64], out: &mut [Complex64], rows: usize, cols: usize) {
    const TILE: usize = 8;
    for r0 in (0..rows).step_by(TILE) {
        let r1 = rows.min(r0 + TILE);
        for c0 in (0..cols).step_by(TILE) {
            for col in c0..cols.min(c0 + TILE) {
                for r in r0..r1 {
                    out[col * rows + r] = a[r * cols + col];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::screen::dot;
    use crate::matching::{matched_sum, Affinity};

    /// Deterministic values in [-1, 1).
    fn values(len: usize, seed: u64) -> Vec<f64> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                #[allow(clippy::cast_precision_loss)]
                let u = (state >> 11) as f64 / (1_u64 << 53) as f64;
                2.0 * u - 1.0
            })
            .collect()
    }

    /// The affinity path: every entry the GEMM's bits ([`dot`]), then [`best_shift`].
    fn by_affinity<T: Cost>(x: &[T], y: &[T], c: usize, w: usize) -> (Vec<usize>, f64) {
        let s = x.len() / c;
        let a: Vec<f64> = (0..s * s)
            .map(|e| {
                dot(
                    &x[e / s * c..(e / s + 1) * c],
                    &y[e % s * c..(e % s + 1) * c],
                )
            })
            .collect();
        let zeros = vec![0.0; s];
        let affinity = Affinity::new(&a, s, &zeros, &zeros).unwrap();
        let mut perm = vec![0; s];
        best_shift(&affinity, w, &mut Vec::new(), &mut perm).unwrap();
        let value = matched_sum(&a, s, &perm);
        (perm, value)
    }

    fn check<T: Cost>(x: &[T], y: &[T], c: usize, w: usize, ws: &mut ShiftWorkspace) {
        let s = x.len() / c;
        let (want_perm, want) = by_affinity(x, y, c, w);
        let mut perm = vec![0; s];
        let got = best_shift_features(x, y, c, w, ws, &mut perm).unwrap();
        assert_eq!(perm, want_perm, "S = {s}, C = {c}, w = {w}");
        assert_eq!(got.to_bits(), want.to_bits(), "S = {s}, C = {c}, w = {w}");
    }

    #[test]
    fn features_give_the_affinity_paths_shift_and_value_bit_for_bit() {
        let mut ws = ShiftWorkspace::default();
        let grids = [
            (1, 1),
            (1, 5),
            (5, 1),
            (2, 3),
            (3, 4),
            (7, 7),
            (5, 8),
            (6, 10),
            (9, 9),
        ];
        for (seed, &(h, w)) in grids.iter().enumerate() {
            for c in [1, 3, 8, 9, 17] {
                let s = h * w;
                let seed = seed as u64 * 100 + c as u64;
                let x = values(s * c, seed);
                let y = values(s * c, seed + 7);
                check(&x, &y, c, w, &mut ws);
                // A shifted copy: the best shift is found exactly, its value is ‖x‖².
                let mut shifted = vec![0.0; s * c];
                for r in 0..h {
                    for col in 0..w {
                        let to = ((r + 1) % h) * w + (col + 2) % w;
                        shifted[to * c..(to + 1) * c]
                            .copy_from_slice(&x[(r * w + col) * c..(r * w + col + 1) * c]);
                    }
                }
                check(&x, &shifted, c, w, &mut ws);
                // f32 samples, and the square grid when there is one (w = 0).
                let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                let y32: Vec<f32> = y.iter().map(|&v| v as f32).collect();
                check(&x32, &y32, c, if h == w { 0 } else { w }, &mut ws);
            }
        }
    }

    #[test]
    fn ties_go_to_the_first_shift_as_with_the_affinity() {
        let mut ws = ShiftWorkspace::default();
        for (h, w, c) in [(4, 4, 3), (6, 6, 2), (3, 8, 5)] {
            let s = h * w;
            // Constant maps (every shift ties), zero maps, maps periodic along each axis, and
            // integer maps (exact scores, many ties).
            let constant = vec![0.5; s * c];
            check(&constant, &constant, c, w, &mut ws);
            let zero = vec![0.0; s * c];
            check(&zero, &values(s * c, 3), c, w, &mut ws);
            let periodic: Vec<f64> = (0..s * c)
                .map(|e| f64::from(u8::from((e / c) % 2 == 0)) - 0.25)
                .collect();
            check(&periodic, &periodic, c, w, &mut ws);
            let ints: Vec<f64> = values(s * c, 11)
                .iter()
                .map(|v| (v * 3.0).round())
                .collect();
            let ints2: Vec<f64> = values(s * c, 12)
                .iter()
                .map(|v| (v * 3.0).round())
                .collect();
            check(&ints, &ints2, c, w, &mut ws);
        }
    }

    #[test]
    fn a_workspace_reused_across_sizes_scales_and_channels() {
        // Buffers of a previous pair (more channels, larger values, another grid) must not
        // leak into the next one's scores.
        let mut ws = ShiftWorkspace::default();
        for (h, w, c, scale) in [
            (16, 16, 17, 1e6),
            (16, 16, 3, 1e-3),
            (8, 32, 9, 1e3),
            (16, 16, 1, 1.0),
        ] {
            let s = h * w;
            let x: Vec<f64> = values(s * c, s as u64 + c as u64)
                .iter()
                .map(|v| v * scale)
                .collect();
            let y: Vec<f64> = values(s * c, 5 + c as u64)
                .iter()
                .map(|v| v * scale)
                .collect();
            check(&x, &y, c, w, &mut ws);
            // Anti-correlated maps: every score is small or negative, so anything left over
            // from the previous pair would stand out.
            let minus: Vec<f64> = x.iter().map(|v| -v).collect();
            check(&x, &minus, c, w, &mut ws);
        }
    }

    #[test]
    fn tiny_and_huge_maps() {
        let mut ws = ShiftWorkspace::default();
        for scale in [1e-160, 1e-130, 1e-100, 1e100, 1e140] {
            let x: Vec<f64> = values(64 * 3, 1).iter().map(|v| v * scale).collect();
            let y: Vec<f64> = values(64 * 3, 2).iter().map(|v| v * scale).collect();
            check(&x, &y, 3, 8, &mut ws);
        }
    }
}
