//! ε-scaling auction with a certified stopping rule: semrsm's own matcher.
//!
//! **Why there are two auctions.** The exact solver has its own, private auction
//! (`src/lap/auction.rs`) that only warms up its column duals: it runs on an `f32` copy of the
//! costs (16- and 8-bit quantised ones from S = 2048), keeps nothing but the prices, and needs no certificate or valid permutation, because the
//! exact searches that follow are correct from any prices. This one is a matcher: its permutation
//! is the result, so it must be valid however the run stops, and its quality must be certified by
//! a feasible dual (`bound::complete_dual`), which is also what decides when to stop.
//! Hence the different scans (no candidate lists here, see below), schedules and stopping rules;
//! the vector kernels of the bids are shared ([`crate::kernels::bid`]).
//!
//! # Algorithm
//! The forward auction of Bertsekas (1988; *Linear Network Optimization*, 1991, ch. 4) for the
//! maximisation problem, Gauss–Seidel form. Every position `j` of `y` has a price `p_j ≥ 0`; a free
//! position `i` of `x` *bids* for the column of largest value `A_ij − p_j`, raising its price by
//! (best − second best value) `+ ε`, and takes it from its previous owner, who becomes free. When
//! nobody is free, the assignment is ε-complementary (every row holds a column within `ε` of its
//! best) and so within `S·ε` of the optimum. A phase runs bids until nobody is free; ε-scaling
//! runs phases with `ε` shrinking by the factor [`EPS_SHRINK`] from `range / `[`FIRST_EPS_DIVISOR`] (range =
//! max − min of `A`), keeping the prices, and the assignments still ε-complementary, between
//! phases. A bid is one contiguous, branch-free (vectorised) scan of a row.
//!
//! # Stopping rule
//! After each phase the prices give a feasible dual: `u_i = max_j (A_ij − p_j)` makes
//! `u_i + p_j ≥ A_ij`, so `Σu + Σp` bounds the optimum from above (weak duality; see
//! [`super::bound`]), and `v'_j = max_i (A_ij − u_i) ≤ p_j` is feasible with `u` too, giving the
//! tighter `D = Σu + Σv'` (two row-major passes; on the real fixtures this cuts the dual's excess
//! over the optimum by 2–3×). The run stops as soon as the *certified* relative gap
//! `(D − P) / |P|` of its current assignment `P` is at most the target (`gap_ppm · 10⁻⁶`), instead of running ε down to
//! an exactness threshold that real-valued affinities never reach. `D` is returned as the bound,
//! so the certificate costs nothing extra.
//!
//! # Why it wins
//! The quality of an auction is set by how many bids it can afford, and on real affinities few
//! suffice: a first phase at `ε = range/128` costs about 5–7 bids per row and ends within ~1 % of
//! the optimum (certified ≤ 3 %, the default target); a 0.1 % certificate takes 10–20 bids per
//! row. Each bid is `O(S)`, so a run costs the equivalent of 5–20 passes over `A`, against `O(S³)`
//! for the exact solver and `(S/b)·O(b³)` for Batch-Optimal, whose quality on these data is far
//! below 99 % at large `S`. Measured (`benches/table5.py`, EfficientNet-Lite0, one thread): 99.2–99.6 %
//! of the optimum at 0.50 ms / 6.2 ms / 175 ms for S = 256 / 1024 / 4096, against Batch-Optimal
//! `b = 512` 95.6 % at 11.9 ms (S = 1024) and `b = 1024` 94.5 % at 107 ms (S = 4096), and the exact
//! solver at 1.41 / 17.1 / 324 ms (`docs/benchmarks.md`, "Table 5").
//!
//! Above [`COMPACT_FROM_BYTES`] an `f64` affinity is first copied to `f32` (one pass) and the bids
//! scan the copy: half the memory traffic once `A` no longer fits the caches. Decisions then use
//! values within `2⁻²⁴·max|A|` of the true ones; the certificate adds that slack to every row
//! maximum, so the bound stays valid for `A` itself, and the value is always summed from `A`.
//! From [`QUANTISED_FROM`] positions on (target gap at least [`QUANTISED_MIN_GAP`]) the bids scan
//! the exact solver's 16-bit copy instead ([`quantise_rows`] of `−A`: an offset per row, one
//! power-of-two step; bids by [`two_min`] with `f32` prices in units of the step, down to
//! `ε` = one step), a quarter of `A`'s bytes; the certificate adds one step per row (see
//! `run_quantised`). On real block2 maps (`benches/frontier.py`) this took the default run from
//! 0.77 / 0.96 to 0.48 / 0.61 of the exact solver's time at S = 3136 / 4096, the same
//! permutations' quality (99.1 / 99.3 % of the optimum) and certificates 0.02–0.04 points looser.
//!
//! Tried and dropped (slower on the fixtures, all exact variants): per-row candidate lists with a
//! `τ` bound on off-list columns (rows are rescanned 4–7 times anyway, and each rescan costs more
//! than a bid), rescans of a 16-bit quantised copy, and bounds per chunk of columns (the minimum
//! price of a chunk is too loose a bound: half the chunks had to be read).
//!
//! # Budget, determinism, invariance
//! At most [`MAX_BIDS_PER_ROW`]` · S` bids in all; should that run out (only seen with massively
//! tied affinities), the still-free rows take their best free column and the run stops, with `D`
//! still a valid bound. The permutation is always valid. Rows first bid in descending norm order
//! (ties: index), free rows are kept on a stack, ties between columns go to the lower index:
//! results are deterministic, and the vectorised scans give the same results on every CPU and
//! instruction set (they take maxima, which are exact whatever the lanes). Permuting the positions of either sample
//! permutes the run along (so `G` is unchanged up to rounding) when the norms of `x` are distinct
//! and no bid meets two equally valued best columns. But a bid leaves the bidder nearly indifferent
//! between two columns, so later comparisons can turn on the last bit of an affinity: when `A` is
//! computed by a GEMM that rounds permuted rows differently, the run may end at a different,
//! equally certified permutation. Invariance then holds up to the certified gap.

use std::sync::atomic::{AtomicBool, Ordering};

use super::{bound, descending_norm_order, matched_sum, Affinity};
use crate::kernels::bid::{
    column_max, min_max, quantise_rows, top_two, two_min, Quantised, CANDIDATES,
};
use crate::kernels::{isa, Isa};
use crate::lap::Cost;

/// Budget of bids, per position, of one auction run (all phases together).
pub const MAX_BIDS_PER_ROW: usize = 64;
/// The first `ε` is the affinity range divided by this.
pub const FIRST_EPS_DIVISOR: f64 = 128.0;
/// `ε` is multiplied by this between phases.
pub const EPS_SHRINK: f64 = 0.125;
/// Smallest `ε`, relative to the affinity range (prices stay far from absorbing it).
const MIN_EPS: f64 = 1e-12;
/// Affinities above this many bytes are scanned through an `f32` copy (`f64` input only): from
/// `S ≈ 1450` on, where `A` leaves the caches and bids become memory-bound.
pub const COMPACT_FROM_BYTES: usize = 16 << 20;
/// From this many positions on (`f64` input, target gap at least [`QUANTISED_MIN_GAP`]) the bids
/// scan a 16-bit quantised copy instead of the `f32` one (the size from which the exact solver's
/// warm start does: a quarter of `A`'s bytes per scan, 32 MiB at S = 4096).
pub const QUANTISED_FROM: usize = 2048;
/// Smallest target gap run on the 16-bit copy: its certificate carries one step per row
/// (about `range / 2¹⁵`), which tighter targets could not absorb.
pub const QUANTISED_MIN_GAP: f64 = 1e-3;
/// An unassigned row (in `perm`) or column (in `owner`).
const UNASSIGNED: usize = usize::MAX;

/// Buffers of the auction, kept in the per-thread [`super::Workspace`].
#[derive(Debug, Default, Clone)]
pub(crate) struct AuctionState {
    prices: Vec<f64>,
    owner: Vec<usize>,
    free: Vec<usize>,
    order: Vec<usize>,
    row_max: Vec<f64>,
    col_max: Vec<f64>,
    spare: Vec<usize>,
    /// `f32` copy of a large `f64` affinity (half the memory traffic per bid).
    compact: Vec<f32>,
    /// 16-bit copy of `−A` from [`QUANTISED_FROM`] positions on ([`quantise_rows`]).
    quantised: Vec<u16>,
    /// Prices of the 16-bit run: `−p_j` in units of the copy's step.
    unit_prices: Vec<f32>,
}

impl AuctionState {
    /// Reserve the `f32` copy of an `s × s` affinity fallibly.
    pub(crate) fn try_reserve(
        &mut self,
        s: usize,
    ) -> Result<(), std::collections::TryReserveError> {
        if s >= QUANTISED_FROM {
            self.quantised.try_reserve_exact(s.saturating_mul(s))?;
        }
        self.compact.try_reserve_exact(s.saturating_mul(s))
    }
}

/// Run the auction into `perm` and return its dual bound `D ≥ optimum`. `gap` is the relative
/// target (`1e-3` = 0.1 %).
/// Once `cancel` is set (polled every [`CANCEL_POLL`] bids) it stops as if out of budget: the
/// permutation and the bound stay valid, and the caller reports the interruption.
pub(crate) fn auction<T: Cost>(
    affinity: &Affinity<'_, T>,
    gap: f64,
    state: &mut AuctionState,
    perm: &mut [usize],
    cancel: &AtomicBool,
) -> f64 {
    auction_with(
        affinity,
        gap,
        state,
        perm,
        COMPACT_FROM_BYTES,
        QUANTISED_FROM,
        cancel,
    )
}

/// [`auction`] that also bids on the 16-bit copy when the affinity is `f32` (from
/// [`QUANTISED_FROM`] positions, target gap at least [`QUANTISED_MIN_GAP`]): for the `f32`
/// affinities that mixed precision gives the approximate matchers inside `gram`
/// ([`super::choose_f32`]), where the alternative is the `f64` run's 16-bit copy. (Plain `f32`
/// input keeps its direct `f32` bids, so `precision="float32"` results do not change.)
pub(crate) fn auction_quantised_f32(
    affinity: &Affinity<'_, f32>,
    gap: f64,
    state: &mut AuctionState,
    perm: &mut [usize],
    cancel: &AtomicBool,
) -> f64 {
    auction_inner(
        affinity,
        gap,
        state,
        perm,
        (COMPACT_FROM_BYTES, QUANTISED_FROM, true),
        cancel,
    )
}

/// The cancellation flag is read every this many bids.
const CANCEL_POLL: usize = 256;

/// [`auction`] with the sizes from which an `f64` affinity is scanned through an `f32` copy
/// (bytes) and through a 16-bit one (positions).
fn auction_with<T: Cost>(
    affinity: &Affinity<'_, T>,
    gap: f64,
    state: &mut AuctionState,
    perm: &mut [usize],
    compact_from_bytes: usize,
    quantised_from: usize,
    cancel: &AtomicBool,
) -> f64 {
    auction_inner(
        affinity,
        gap,
        state,
        perm,
        (compact_from_bytes, quantised_from, false),
        cancel,
    )
}

/// [`auction_with`], the 16-bit copy also for an `f32` affinity when `sizes.2`.
fn auction_inner<T: Cost>(
    affinity: &Affinity<'_, T>,
    gap: f64,
    state: &mut AuctionState,
    perm: &mut [usize],
    sizes: (usize, usize, bool),
    cancel: &AtomicBool,
) -> f64 {
    let (compact_from_bytes, quantised_from, quantise_narrow) = sizes;
    let s = affinity.size();
    let wide = std::mem::size_of::<T>() > std::mem::size_of::<f32>();
    if (wide || quantise_narrow) && s >= quantised_from.max(2) && gap >= QUANTISED_MIN_GAP {
        let isa = isa();
        let mut copy = std::mem::take(&mut state.quantised);
        let q = quantise_rows::<T, true>(isa, affinity.values(), s, &mut copy);
        let range = q.hi - q.lo;
        let value = if range > 0.0 && range.is_finite() {
            Some(run_quantised(
                isa, &copy, q, affinity, range, gap, state, perm, cancel,
            ))
        } else {
            None
        };
        state.quantised = copy;
        if let Some(value) = value {
            return value;
        }
    }
    let compact = wide && s * s * std::mem::size_of::<T>() > compact_from_bytes;
    // One pass over A: its range and largest magnitude, and the compact copy if used.
    let mut compact_rows = std::mem::take(&mut state.compact);
    compact_rows.clear();
    let isa = isa();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for i in 0..s {
        let row = affinity.row(i);
        let (l, h) = min_max(isa, row);
        lo = lo.min(l);
        hi = hi.max(h);
        if compact {
            #[allow(clippy::cast_possible_truncation)]
            compact_rows.extend(row.iter().map(|&a| a.to_f64() as f32));
        }
    }
    let range = hi - lo;
    let magnitude = lo.abs().max(hi.abs());
    let value = if s == 1 || range.is_nan() || range <= 0.0 {
        // Every permutation has the same value (or there is only one): it is optimal, and the
        // dual u_i = max_j A_ij, v = 0 equals it.
        for (j, p) in perm.iter_mut().enumerate() {
            *p = j;
        }
        matched_sum(affinity.values(), s, perm)
    } else if compact && magnitude < f64::from(f32::MAX) / 2.0 {
        // Rounding to f32 moves an entry by at most 2⁻²⁴ of the largest magnitude (plus the
        // smallest subnormal): decisions use the copy, the certificate adds that slack.
        let slack = magnitude * f64::from(f32::EPSILON) * 0.5 + f64::from(f32::MIN_POSITIVE);
        run(
            isa,
            &compact_rows,
            slack,
            affinity,
            range,
            gap,
            state,
            perm,
            cancel,
        )
    } else {
        run(
            isa,
            affinity.values(),
            0.0,
            affinity,
            range,
            gap,
            state,
            perm,
            cancel,
        )
    };
    state.compact = compact_rows;
    value
}

/// The auction proper. Bids and ε-complementarity use `scan` (`A` itself, or its compact copy,
/// whose entries are within `slack` of `A`'s); the value is summed from `A` and the bound
/// `Σ_i (max_j (scan_ij − p_j) + slack) + Σ_j p_j` is valid for `A`.
#[allow(clippy::too_many_arguments)]
fn run<U: Cost, T: Cost>(
    isa: Isa,
    scan: &[U],
    slack: f64,
    affinity: &Affinity<'_, T>,
    range: f64,
    gap: f64,
    state: &mut AuctionState,
    perm: &mut [usize],
    cancel: &AtomicBool,
) -> f64 {
    let s = affinity.size();
    let row = |i: usize| &scan[i * s..(i + 1) * s];
    let AuctionState {
        prices,
        owner,
        free,
        order,
        row_max,
        col_max,
        spare,
        ..
    } = state;
    start_run(affinity.norms_x(), prices, owner, perm, order, free);

    let floor = range * MIN_EPS;
    let mut eps = range / FIRST_EPS_DIVISOR;
    let mut budget = MAX_BIDS_PER_ROW.saturating_mul(s);
    loop {
        bid_while_free(free, owner, perm, &mut budget, cancel, |i| {
            let (j, best, second) = top_two(isa, row(i), prices);
            prices[j] += (best - second) + eps;
            j
        });
        let out_of_budget = !free.is_empty();
        if out_of_budget {
            assign_leftovers(owner, free, spare, perm, |i, j| {
                row(i)[j].to_f64() - prices[j]
            });
        }
        // The dual (u + slack, v'): u_i = max_j (scan_ij − p_j), v'_j = max_i (scan_ij − u_i)
        // ≤ p_j, feasible for A because A_ij ≤ scan_ij + slack (bound::complete_dual).
        let dual = bound::complete_dual(isa, scan, s, prices, slack, row_max, col_max);
        let primal = matched_sum(affinity.values(), s, perm);
        if out_of_budget || super::within_gap(primal, dual, gap) || eps <= floor {
            return dual;
        }
        eps = (eps * EPS_SHRINK).max(floor);
        // Keep the assignments that are ε-complementary for the new ε; free the others.
        for &i in order.iter().rev() {
            let j = perm[i];
            if row(i)[j].to_f64() - prices[j] < row_max[i] - eps {
                owner[j] = UNASSIGNED;
                perm[i] = UNASSIGNED;
                free.push(i);
            }
        }
    }
}

/// [`run`] on the 16-bit copy `q` of `−A` ([`quantise_rows`] with `MAX`: row `i` holds
/// `round((M_i − A_ij) / step)`, `M_i = max_j A_ij`), in the minimisation form of the warm start:
/// prices `v_j = −p_j / step` (`f32`), bids by [`two_min`] (the two smallest `q_ij − v_j`), the
/// same ε schedule in units of the step down to one step. Every `A_ij` is within one step of
/// `M_i − step·q_ij`, so with `d_i = min_j (q_ij − v_j)` (as scanned) and
/// `w_j = max_i (d_i − q_ij)` (exact in `f64`), `u_i = M_i − step·d_i + step` and
/// `v'_j = step·w_j` are feasible for `A` whatever the rounding of `d_i`:
/// `u_i + v'_j ≥ M_i − step·q_ij + step ≥ A_ij`. The value is summed from `A`.
#[allow(clippy::too_many_arguments)]
fn run_quantised<T: Cost>(
    isa: Isa,
    q: &[u16],
    quant: Quantised,
    affinity: &Affinity<'_, T>,
    range: f64,
    gap: f64,
    state: &mut AuctionState,
    perm: &mut [usize],
    cancel: &AtomicBool,
) -> f64 {
    let s = affinity.size();
    let step = quant.step;
    let row = |i: usize| &q[i * s..(i + 1) * s];
    let AuctionState {
        unit_prices: prices,
        owner,
        free,
        order,
        row_max: row_min,
        col_max,
        spare,
        ..
    } = state;
    start_run(affinity.norms_x(), prices, owner, perm, order, free);
    let mut candidates = [0_u32; CANDIDATES];
    let scan = |i: usize, prices: &[f32], candidates: &mut [u32; CANDIDATES]| {
        two_min(isa, row(i), prices, candidates)
    };

    // ε in units of the step: powers of two apart, down to one step.
    let floor = 1.0_f32;
    #[allow(clippy::cast_possible_truncation)]
    let mut eps = ((range / FIRST_EPS_DIVISOR / step) as f32).max(floor);
    let mut budget = MAX_BIDS_PER_ROW.saturating_mul(s);
    loop {
        bid_while_free(free, owner, perm, &mut budget, cancel, |i| {
            let bid = scan(i, prices, &mut candidates);
            prices[bid.j1] -= (bid.d2 - bid.d1) + eps;
            bid.j1
        });
        let out_of_budget = !free.is_empty();
        if out_of_budget {
            // The smallest q_ij − v_j (in f32, as the bids), negated: the same order.
            assign_leftovers(owner, free, spare, perm, |i, j| {
                -f64::from(f32::from(row(i)[j]) - prices[j])
            });
        }
        // The dual (see above): d_i by the bid scan, w_j = max_i (d_i − q_ij) in f64.
        // One read of each row for both (the column pass finds it in the cache).
        row_min.clear();
        col_max.clear();
        col_max.resize(s, f64::NEG_INFINITY);
        for i in 0..s {
            let d = f64::from(scan(i, prices, &mut candidates).d1);
            row_min.push(d);
            column_max::<u16, true>(isa, row(i), d, col_max);
        }
        #[allow(clippy::cast_precision_loss)]
        let rows = s as f64;
        let dual = -quant.low_sum
            + step * (rows - row_min.iter().sum::<f64>() + col_max.iter().sum::<f64>());
        let primal = matched_sum(affinity.values(), s, perm);
        if out_of_budget || super::within_gap(primal, dual, gap) || eps <= floor {
            return dual;
        }
        #[allow(clippy::cast_possible_truncation)]
        let shrink = EPS_SHRINK as f32;
        eps = (eps * shrink).max(floor);
        // Keep the assignments that are ε-complementary for the new ε; free the others.
        for &i in order.iter().rev() {
            let j = perm[i];
            #[allow(clippy::cast_possible_truncation)]
            let d = row_min[i] as f32;
            if f32::from(row(i)[j]) - prices[j] > d + eps {
                owner[j] = UNASSIGNED;
                perm[i] = UNASSIGNED;
                free.push(i);
            }
        }
    }
}

/// The start of a run: every column unowned at price zero, every row free, stacked so that
/// the rows first bid in descending norm order (ties: index).
fn start_run<P: Copy + Default>(
    norms_x: &[f64],
    prices: &mut Vec<P>,
    owner: &mut Vec<usize>,
    perm: &mut [usize],
    order: &mut Vec<usize>,
    free: &mut Vec<usize>,
) {
    let s = perm.len();
    prices.clear();
    prices.resize(s, P::default());
    owner.clear();
    owner.resize(s, UNASSIGNED);
    perm.fill(UNASSIGNED);
    descending_norm_order(norms_x, order);
    free.clear();
    free.extend(order.iter().rev());
}

/// Lets the free rows bid, the last freed first, until none is free, `budget` bids have been
/// made, or `cancel` is set (checked every [`CANCEL_POLL`] bids; `budget` is then zeroed).
/// `bid(i)` raises the price of the column row `i` wins and returns it; the column's previous
/// owner, if any, is freed.
fn bid_while_free(
    free: &mut Vec<usize>,
    owner: &mut [usize],
    perm: &mut [usize],
    budget: &mut usize,
    cancel: &AtomicBool,
    mut bid: impl FnMut(usize) -> usize,
) {
    while let Some(&i) = free.last() {
        if *budget == 0 {
            break;
        }
        if budget.is_multiple_of(CANCEL_POLL) && cancel.load(Ordering::Relaxed) {
            *budget = 0;
            break;
        }
        *budget -= 1;
        free.pop();
        let j = bid(i);
        let previous = owner[j];
        owner[j] = i;
        perm[i] = j;
        if previous != UNASSIGNED {
            perm[previous] = UNASSIGNED;
            free.push(previous);
        }
    }
}

/// Out of bids: each row still free (last freed first) takes the unassigned column of largest
/// `worth(i, j)` (ties: the lowest column), so that the result is a permutation.
fn assign_leftovers(
    owner: &mut [usize],
    free: &mut Vec<usize>,
    spare: &mut Vec<usize>,
    perm: &mut [usize],
    mut worth: impl FnMut(usize, usize) -> f64,
) {
    spare.clear();
    spare.extend((0..owner.len()).filter(|&j| owner[j] == UNASSIGNED));
    while let Some(i) = free.pop() {
        let mut best_at = 0;
        let mut best = f64::NEG_INFINITY;
        for (at, &j) in spare.iter().enumerate() {
            let w = worth(i, j);
            if w > best || (w == best && j < spare[best_at]) {
                best = w;
                best_at = at;
            }
        }
        let j = spare.swap_remove(best_at);
        owner[j] = i;
        perm[i] = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lap::{linear_sum_assignment, Sense};

    #[test]
    fn bids_free_the_previous_owner_and_stop_on_the_budget_or_a_cancel() {
        // Rows 0 and 1 both want column 1; row 0 (on top of the stack) bids first, row 1 takes
        // the column from it, row 0 bids again and (wanting it less now) takes column 2.
        let (mut owner, mut perm) = (vec![UNASSIGNED; 3], vec![UNASSIGNED; 3]);
        let mut free = vec![2, 1, 0];
        let mut bids = Vec::new();
        let mut budget = 10;
        let no = AtomicBool::new(false);
        bid_while_free(&mut free, &mut owner, &mut perm, &mut budget, &no, |i| {
            bids.push(i);
            match (i, bids.iter().filter(|&&r| r == i).count()) {
                (0, 1) | (1, _) => 1,
                (0, _) => 2,
                _ => 0,
            }
        });
        assert_eq!(bids, [0, 1, 0, 2]);
        assert_eq!(perm, [2, 1, 0]);
        assert_eq!(owner, [2, 1, 0]);
        assert!(free.is_empty());
        assert_eq!(budget, 6);

        // Out of budget: nothing more is bid, the rows stay free.
        let (mut owner, mut perm, mut free) =
            (vec![UNASSIGNED; 2], vec![UNASSIGNED; 2], vec![1, 0]);
        let mut budget = 1;
        bid_while_free(&mut free, &mut owner, &mut perm, &mut budget, &no, |_| 0);
        assert_eq!(
            (free.as_slice(), budget, perm.as_slice()),
            (&[1][..], 0, &[0, UNASSIGNED][..])
        );

        // A set cancel flag is seen at the next poll: the budget is zeroed, no bid is made.
        let yes = AtomicBool::new(true);
        let mut budget = CANCEL_POLL * 3;
        let mut free = vec![1, 0];
        let (mut owner, mut perm) = (vec![UNASSIGNED; 2], vec![UNASSIGNED; 2]);
        bid_while_free(
            &mut free,
            &mut owner,
            &mut perm,
            &mut budget,
            &yes,
            |_| unreachable!(),
        );
        assert_eq!((free.len(), budget), (2, 0));
    }

    #[test]
    fn leftovers_take_the_best_free_column_last_freed_first_ties_to_the_lower_column() {
        // Column 1 is taken; rows 2 then 0 (stack order) pick among columns 0, 2 and 3.
        let mut owner = vec![UNASSIGNED, 1, UNASSIGNED, UNASSIGNED];
        let mut perm = vec![UNASSIGNED, 1, UNASSIGNED, UNASSIGNED];
        let mut free = vec![0, 2];
        let mut spare = Vec::new();
        let worth = [
            [5.0, 9.0, 5.0, 1.0], // row 0: columns 0 and 2 tie
            [0.0; 4],
            [1.0, 9.0, 7.0, 7.0], // row 2: columns 2 and 3 tie -> 2
            [0.0; 4],
        ];
        assign_leftovers(&mut owner, &mut free, &mut spare, &mut perm, |i, j| {
            worth[i][j]
        });
        assert_eq!(perm[2], 2);
        assert_eq!(perm[0], 0);
        assert_eq!(owner, [0, 1, 2, UNASSIGNED]);
        assert!(free.is_empty());
    }

    /// A small deterministic generator (xorshift), so the unit tests need no dev-dependency.
    fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                #[allow(clippy::cast_precision_loss)]
                let u = (x >> 11) as f64 / (1_u64 << 53) as f64;
                u * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn compact_copy_keeps_the_bound_valid() {
        // Entries that differ far below f32 resolution around a large offset: the copy cannot
        // tell them apart, the bound must still hold for the exact values.
        for (seed, s) in [(1_u64, 5_usize), (2, 12), (3, 33)] {
            let a: Vec<f64> = values(s * s, seed)
                .iter()
                .map(|v| 1.0e3 + v * 1e-5)
                .collect();
            let norms = vec![1.0; s];
            let affinity = Affinity::new(&a, s, &norms, &norms).unwrap();
            let mut perm = vec![0; s];
            let mut state = AuctionState::default();
            let bound = auction_with(
                &affinity,
                0.0,
                &mut state,
                &mut perm,
                0,
                usize::MAX,
                &AtomicBool::new(false),
            );
            let mut seen = vec![false; s];
            for &j in &perm {
                assert!(!seen[j]);
                seen[j] = true;
            }
            let view = ndarray::ArrayView2::from_shape((s, s), &a).unwrap();
            let exact = linear_sum_assignment(view, Sense::Maximize)
                .unwrap()
                .objective;
            let value = matched_sum(&a, s, &perm);
            assert!(value <= exact + 1e-9, "value {value} above exact {exact}");
            assert!(bound >= exact - 1e-9, "bound {bound} below exact {exact}");
            // The slack is 2^-24 of 1e3 per row: the bound is loose by about that, no more.
            assert!(
                bound - exact <= 1e-3 * s as f64,
                "bound {bound} too loose for {exact}"
            );
        }
    }

    #[test]
    fn quantised_copy_keeps_the_bound_valid() {
        // The 16-bit copy from any size: rows on a large offset, rows of ranges 10^±3 apart and
        // plain values, with a tail; the bound holds for the exact values and the gap is met.
        for (seed, s, kind) in [(4_u64, 5_usize, 0), (5, 19, 1), (6, 40, 2), (7, 67, 1)] {
            let a: Vec<f64> = values(s * s, seed)
                .iter()
                .enumerate()
                .map(|(k, v)| match kind {
                    0 => 1.0e3 + v * 1e-5,
                    #[allow(clippy::cast_precision_loss)]
                    1 => v * 10f64.powf(((k / s) % 7) as f64 - 3.0),
                    _ => *v,
                })
                .collect();
            let norms: Vec<f64> = values(s, seed + 100).iter().map(|v| v.abs()).collect();
            let affinity = Affinity::new(&a, s, &norms, &norms).unwrap();
            let mut perm = vec![0; s];
            let mut state = AuctionState::default();
            let never = AtomicBool::new(false);
            let gap = QUANTISED_MIN_GAP;
            let bound = auction_with(&affinity, gap, &mut state, &mut perm, 0, 2, &never);
            assert_eq!(state.quantised.len(), s * s, "the 16-bit copy was used");
            let mut seen = vec![false; s];
            for &j in &perm {
                assert!(!seen[j]);
                seen[j] = true;
            }
            let view = ndarray::ArrayView2::from_shape((s, s), &a).unwrap();
            let exact = linear_sum_assignment(view, Sense::Maximize)
                .unwrap()
                .objective;
            let value = matched_sum(&a, s, &perm);
            assert!(value <= exact + 1e-9, "value {value} above exact {exact}");
            assert!(bound >= exact - 1e-9, "bound {bound} below exact {exact}");
        }
    }

    #[test]
    fn compact_and_direct_runs_agree_closely() {
        let s = 40;
        let a = values(s * s, 9);
        let norms: Vec<f64> = values(s, 10).iter().map(|v| v.abs() + 0.1).collect();
        let affinity = Affinity::new(&a, s, &norms, &norms).unwrap();
        let mut state = AuctionState::default();
        let (mut p1, mut p2) = (vec![0; s], vec![0; s]);
        let never = AtomicBool::new(false);
        let b1 = auction_with(
            &affinity,
            1e-4,
            &mut state,
            &mut p1,
            usize::MAX,
            usize::MAX,
            &never,
        );
        let b2 = auction_with(&affinity, 1e-4, &mut state, &mut p2, 0, usize::MAX, &never);
        let view = ndarray::ArrayView2::from_shape((s, s), &a).unwrap();
        let exact = linear_sum_assignment(view, Sense::Maximize)
            .unwrap()
            .objective;
        for (p, b) in [(&p1, b1), (&p2, b2)] {
            let v = matched_sum(&a, s, p);
            assert!(v <= exact + 1e-12 && b >= exact - 1e-12);
            assert!(
                b - v <= 1e-4 * v.abs() + 1e-6,
                "gap {} over target",
                (b - v) / v
            );
        }
    }
}
