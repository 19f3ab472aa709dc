//! Batch-Optimal matching (the paper's App. F, algorithm 3).
//!
//! The positions of `x` and of `y` are sorted by descending L2 norm, each side independently, and
//! cut into consecutive batches of `b`; batch `t` of `x` is matched exactly to batch `t` of `y`
//! (an exact `b × b` LAP, [`crate::lap::SapSolver`], on a contiguous copy). Both sides have `S`
//! positions, so when `b` does not divide `S` the last batches of the two sides have the same
//! size `S mod b`: they are matched exactly to each other as one smaller `(S mod b)²` problem
//! (never padded, never merged into the previous batch, so no batch exceeds `b`).
//!
//! Complexity: `O(S log S)` plus `⌈S/b⌉` exact problems of at most `b²` entries:
//! `(S/b)·O(b³) = O(S·b²)`, linear in `S` for a fixed `b`. `b ≥ S` is
//! [`super::Matcher::Exact`] (the solver runs on the affinity itself).
//!
//! Permutation invariance: each batch's optimal value does not depend on the order of its
//! positions, and batches are independent, so `G` is invariant (up to rounding) under permutations
//! of either sample whenever no two positions on the same side that fall into different batches
//! have equal norms. With norm ties at a batch boundary the tie is broken by index, which a
//! permutation changes.
//!
//! A sample matched against itself gets `G = ‖x‖²`: both sides are cut into the same batches, and
//! within a batch the identity is optimal (Cauchy–Schwarz).

use super::{descending_norm_order, exact, solve_block, Affinity, Workspace};
use std::sync::atomic::AtomicBool;

use crate::error::Result;
use crate::lap::Cost;

/// The Batch-Optimal matching of the pair into `perm`.
pub(crate) fn batch_optimal<T: Cost>(
    affinity: &Affinity<'_, T>,
    b: usize,
    ws: &mut Workspace,
    perm: &mut [usize],
    cancel: &AtomicBool,
) -> Result<()> {
    let s = affinity.size();
    if b >= s {
        return exact(affinity, &mut ws.solver, perm, cancel);
    }
    descending_norm_order(affinity.norms_x(), &mut ws.order_x);
    descending_norm_order(affinity.norms_y(), &mut ws.order_y);
    for (rows, cols) in ws.order_x.chunks(b).zip(ws.order_y.chunks(b)) {
        solve_block(
            affinity,
            rows,
            cols,
            &mut ws.solver,
            &mut ws.block,
            perm,
            cancel,
        )?;
    }
    Ok(())
}
