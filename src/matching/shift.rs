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
