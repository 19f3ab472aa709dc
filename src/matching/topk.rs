//! TopK-Greedy matching (the paper's App. F, algorithm 2).
//!
//! The `k` highest-norm positions of `x` and the `k` highest-norm positions of `y` are matched to
//! each other exactly (an exact `k × k` LAP, [`crate::lap::SapSolver`], on a contiguous copy);
//! the remaining positions of `x`, in descending norm order, are matched greedily to the remaining
//! positions of `y` ([`super::greedy`]).
//!
//! Complexity: `O(S log S + k³ + (S − k)²)`. `k = 0` is [`super::Matcher::Greedy`]; `k ≥ S` is
//! [`super::Matcher::Exact`] (the solver then runs on the affinity itself, so the result is the
//! exact matcher's, bit for bit).
//!
//! Permutation invariance: the exact block's value does not depend on the order of its positions
//! and it always uses the same `k` columns, so `G` is invariant (up to rounding) under permutations
//! of either sample when the norms on each side are distinct around the `k`-th largest and within
//! `x`, and the greedy part meets no tied best affinities (see [`super::greedy`]).

use super::{descending_norm_order, exact, greedy, solve_block, Affinity, Workspace};
use std::sync::atomic::AtomicBool;

use crate::error::Result;
use crate::lap::Cost;

/// The TopK-Greedy matching of the pair into `perm`.
pub(crate) fn topk_greedy<T: Cost>(
    affinity: &Affinity<'_, T>,
    k: usize,
    ws: &mut Workspace,
    perm: &mut [usize],
    cancel: &AtomicBool,
) -> Result<()> {
    let s = affinity.size();
    if k >= s {
        return exact(affinity, &mut ws.solver, perm, cancel);
    }
    descending_norm_order(affinity.norms_x(), &mut ws.order_x);
    descending_norm_order(affinity.norms_y(), &mut ws.order_y);
    if k > 0 {
        solve_block(
            affinity,
            &ws.order_x[..k],
            &ws.order_y[..k],
            &mut ws.solver,
            &mut ws.block,
            perm,
            cancel,
        )?;
    }
    ws.free.clear();
    ws.free.extend_from_slice(&ws.order_y[k..]);
    greedy::fill(affinity, &ws.order_x[k..], &mut ws.free, perm);
    Ok(())
}
