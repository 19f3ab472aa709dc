//! Greedy matching (the paper's App. F, algorithm 1).
//!
//! The positions of `x` are taken in descending order of their L2 norm `‖x_s‖`; each takes the
//! still-free position `t` of `y` with the largest affinity `A[s, t] = ⟨x_s, y_t⟩`. (The paper's
//! published code mis-indexes this step; this is what its text describes.)
//!
//! Complexity: `O(S log S)` for the sort and `O(S²)` for the scans (`S²/2` affinity reads).
//!
//! Properties:
//! - A sample matched against itself (`A = x xᵀ`, distinct positions) gets the identity and
//!   `G = ‖x‖²`: the row of largest norm has `⟨x_s, x_t⟩ ≤ ‖x_s‖‖x_t‖ ≤ ‖x_s‖²` for every `t`,
//!   with equality only for `t = s` (or a copy of `x_s`); by induction every row takes itself.
//! - Permuting the positions of `x` or `y` leaves `G` unchanged (up to the rounding of the sum)
//!   when the norms of `x` are distinct and no row has two equal best free affinities: ties are
//!   broken by the lower index, which a permutation changes.

use super::{descending_norm_order, Affinity, Workspace};
use crate::lap::Cost;

/// The greedy matching of the whole pair into `perm`.
pub(crate) fn greedy<T: Cost>(affinity: &Affinity<'_, T>, ws: &mut Workspace, perm: &mut [usize]) {
    descending_norm_order(affinity.norms_x(), &mut ws.order_x);
    ws.free.clear();
    ws.free.extend(0..affinity.size());
    fill(affinity, &ws.order_x, &mut ws.free, perm);
}

/// Assign each row of `rows`, in this order, the column of `free` with the largest affinity (ties:
/// the lower column index), removing it from `free`. Requires `free.len() ≥ rows.len()`.
pub(crate) fn fill<T: Cost>(
    affinity: &Affinity<'_, T>,
    rows: &[usize],
    free: &mut Vec<usize>,
    perm: &mut [usize],
) {
    for &r in rows {
        let row = affinity.row(r);
        let mut best_at = 0;
        let mut best_col = usize::MAX;
        let mut best = f64::NEG_INFINITY;
        for (k, &c) in free.iter().enumerate() {
            let w = row[c].to_f64();
            if w > best || (w == best && c < best_col) {
                best = w;
                best_col = c;
                best_at = k;
            }
        }
        if best_col == usize::MAX {
            // Only when `free` ran out, which callers rule out; leave the row to the caller.
            return;
        }
        perm[r] = best_col;
        free.swap_remove(best_at);
    }
}
