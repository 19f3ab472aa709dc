//! Certified upper bounds on the exact matched inner product, from feasible LAP duals.
//!
//! # Construction
//! The exact matched inner product of a pair is the optimum of the assignment LP
//! `max Σ_ij A_ij z_ij` over doubly stochastic `z`, whose dual is
//! `min Σ_i u_i + Σ_j v_j` subject to `u_i + v_j ≥ A_ij` for all `i, j`.
//! **Weak duality**: for any feasible `(u, v)` and any permutation `σ`,
//! `Σ_i A_{iσ(i)} ≤ Σ_i (u_i + v_{σ(i)}) = Σu + Σv`, so `Σu + Σv` bounds the optimum from above.
//!
//! Every bound here completes a vector of column duals `v` into a feasible pair in `O(S²)`:
//! `u_i = max_j (A_ij − v_j)` (the smallest feasible `u` for this `v`), then
//! `v'_j = max_i (A_ij − u_i)`, again feasible and `v' ≤ v` (because `A_ij − u_i ≤ v_j`), so the
//! second step can only lower the bound (`tighten`). What differs is where `v` comes from:
//!
//! - **Auction** ([`super::Matcher::Auction`], and the bound of the matchers without a dual of
//!   their own): `v` = the auction's prices. An ε-complementary assignment is within `S·ε` of the
//!   dual, and the auction stops once the dual certifies its gap, so the bound is within the
//!   target gap of the optimum.
//! - **Exact, from the solver**: the column duals of [`crate::lap::SapSolver`]'s optimal solution
//!   (`v` of its minimisation on `−A`, so `p = −v`); two passes, tight up to rounding. Only when
//!   that is not tight to rounding is the dual rebuilt from the permutation alone:
//! - **Exact** (`from_optimal_permutation`): given an optimal `σ`, optimal duals satisfy
//!   `u_i = A_{iσ(i)} − v_{σ(i)}` and `v_j ≥ A_ij − u_i = v_{σ(i)} + (A_ij − A_{iσ(i)})`, i.e. `v`
//!   is a longest-path potential on the graph with an edge `σ(i) → j` of weight
//!   `A_ij − A_{iσ(i)}`. Optimality of `σ` means this graph has no positive cycle, so the
//!   Bellman–Ford iteration `v_j ← max(v_j, v_{σ(i)} + A_ij − A_{iσ(i)})` (label-correcting, with a
//!   queue of rows to relax) reaches a fixed point within `S·(S+1)` row relaxations; there every
//!   inequality holds
//!   and every `σ`-edge is tight, so `Σu + Σv = Σ_i A_{iσ(i)}`: **the bound equals the optimum**,
//!   and it certifies the solver's result independently of the solver. Updates smaller than
//!   `4·S·ε_mach·max|A|` are ignored so that rounding cannot create an endless positive cycle;
//!   the final `tighten` restores exact feasibility, so the bound stays valid and is tight to
//!   `S` times that tolerance.
//!
//! Rounding: the bound is computed in `f64` with `O(S)`-term sums, so "≥ optimum" holds up to a
//! relative `~S·1e-16`; callers additionally clamp it to at least the matcher's own value.

use std::sync::atomic::{AtomicBool, Ordering};

use super::Affinity;
use crate::kernels::bid::{column_max, row_max_reduced};
use crate::kernels::{isa, Isa};
use crate::lap::Cost;

/// Dual vectors of a bound, kept in the per-thread [`super::Workspace`].
#[derive(Debug, Default, Clone)]
pub(crate) struct DualBuffers {
    u: Vec<f64>,
    v: Vec<f64>,
    d: Vec<f64>,
    owner_of: Vec<usize>,
    queue: std::collections::VecDeque<usize>,
    queued: Vec<bool>,
}

/// Feasible dual from column values `v`: `u = rowmax(A − v)`, `v' = colmax(A − u)`; returns
/// `Σu + Σv' ≤ Σu + Σv`, an upper bound on the optimum for any `v`. `O(S²)`, row-major passes.
pub(crate) fn tighten<T: Cost>(
    affinity: &Affinity<'_, T>,
    v: &[f64],
    buffers: &mut DualBuffers,
) -> f64 {
    let DualBuffers { u, d: v_new, .. } = buffers;
    complete_dual(isa(), affinity.values(), affinity.size(), v, 0.0, u, v_new)
}

/// The completion behind every bound here, on a stand-in `scan` for the affinity (row-major
/// `s × s`) whose entries are within `slack` of the affinity's (`scan = A`, `slack = 0`, or an
/// `f32` copy of `A`): `u_i = max_j (scan_ij − v_j)` (written to `u`, without the slack),
/// `v'_j = max_i (scan_ij − u_i)` (written to `v_new`), in one pass; returns `Σ_i (u_i + slack) + Σ_j v'_j`.
///
/// `(u + slack, v')` is feasible for `A`: `u_i + slack + v'_j ≥ scan_ij + slack ≥ A_ij`. One
/// row-major pass over `scan`; the sums run in index order (deterministic).
pub(crate) fn complete_dual<U: Cost>(
    isa: Isa,
    scan: &[U],
    s: usize,
    v: &[f64],
    slack: f64,
    u: &mut Vec<f64>,
    v_new: &mut Vec<f64>,
) -> f64 {
    let row = |i: usize| &scan[i * s..(i + 1) * s];
    u.clear();
    v_new.clear();
    v_new.resize(s, f64::NEG_INFINITY);
    // Row by row, both (the column pass finds the row in the cache).
    for i in 0..s {
        let ui = row_max_reduced(isa, row(i), v);
        u.push(ui);
        column_max::<U, false>(isa, row(i), ui, v_new);
    }
    #[allow(clippy::cast_precision_loss)]
    let slack_total = slack * s as f64;
    u.iter().sum::<f64>() + slack_total + v_new.iter().sum::<f64>()
}

/// The dual of an optimal permutation `perm`, rebuilt by longest-path relaxation (see the module
/// docs); returns its bound, equal to the optimum up to rounding when `perm` is optimal (a valid,
/// possibly loose, bound for any permutation).
///
/// Label-correcting form of Bellman–Ford: a FIFO queue of rows whose `v_{σ(i)}` changed since
/// they were last relaxed; relaxing row `i` is one `O(S)` pass over it, and every column it
/// raises re-queues that column's row. All rows start queued. At most `S·(S+1)` relaxations (the
/// Bellman–Ford bound), in practice a small multiple of `S`.
pub(crate) fn from_optimal_permutation<T: Cost>(
    affinity: &Affinity<'_, T>,
    perm: &[usize],
    buffers: &mut DualBuffers,
    cancel: &AtomicBool,
) -> f64 {
    let s = affinity.size();
    let max_abs = affinity
        .values()
        .iter()
        .fold(0.0_f64, |m, &a| m.max(a.to_f64().abs()));
    #[allow(clippy::cast_precision_loss)]
    let tol = 4.0 * s as f64 * f64::EPSILON * max_abs;
    let mut v = std::mem::take(&mut buffers.v);
    v.clear();
    v.resize(s, 0.0);
    let DualBuffers {
        d,
        owner_of,
        queue,
        queued,
        ..
    } = buffers;
    d.clear();
    d.extend(perm.iter().enumerate().map(|(i, &j)| affinity.get(i, j)));
    owner_of.clear();
    owner_of.resize(s, 0);
    for (i, &j) in perm.iter().enumerate() {
        owner_of[j] = i;
    }
    queue.clear();
    queue.extend(0..s);
    queued.clear();
    queued.resize(s, true);
    let mut budget = s.saturating_mul(s + 1);
    while let Some(i) = queue.pop_front() {
        queued[i] = false;
        // Out of budget, or cancelled (polled every S relaxations, O(S²) work): stop; the
        // `tighten` below keeps the dual feasible from any `v`.
        if budget == 0 || (budget.is_multiple_of(s) && cancel.load(Ordering::Relaxed)) {
            break;
        }
        budget -= 1;
        let base = v[perm[i]] - d[i];
        for (j, (vj, &a)) in v.iter_mut().zip(affinity.row(i)).enumerate() {
            let candidate = a.to_f64() + base;
            if candidate > *vj + tol {
                *vj = candidate;
                let r = owner_of[j];
                if !queued[r] {
                    queued[r] = true;
                    queue.push_back(r);
                }
            }
        }
    }
    let bound = tighten(affinity, &v, buffers);
    buffers.v = v;
    bound
}
