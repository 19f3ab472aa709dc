//! ε-scaling auction rounds that warm-start the column duals of the exact solver.
//!
//! **Why there are two auctions.** This one only warms up the exact solver ([`super::sap`]): it
//! works on an `f32` copy of the minimisation costs, keeps nothing but the prices, runs a fixed ε
//! schedule under a bid budget, and needs no certificate, because the exact searches that follow
//! make any prices correct. [`crate::matching::auction`] is a matcher in its own right: it bids on
//! the affinity itself (maximisation), must hand back a valid permutation however it stops, and
//! must certify how far that permutation is from the optimum with a feasible dual, on which its
//! stopping rule rests. Their bids share the vector kernels of [`crate::kernels::bid`] but not
//! their row scans: the candidate lists here pay off over six ε rounds on one problem, while the
//! matcher rescans a row too rarely for them (measured there).
//!
//! Auction (Bertsekas 1988) in the minimisation form of Guthe & Thuerck's ε-pricing (ACM TOMS
//! 47(2), 2021, Algorithm 1015): a free row `i` takes the column `j₁` minimising `c_ij − v_j` and
//! lowers `v_j₁` until its second-best column is only `ε` worse; the column's previous row becomes
//! free. `ε` shrinks geometrically over rounds. Only the prices `v` are kept: the exact searches of
//! [`super::sap`] that follow start with every row free, and for square problems any `v` is a valid
//! start, so exactness never depends on the auction — it only makes most searches end at their
//! first column. Every round has a bid budget, so the rounds always terminate.
//!
//! The bids run on an `f32` copy of the (sign-adjusted) costs: prices only need to be good, not
//! exact, and half the memory traffic and twice the SIMD lanes make a bid (one pass over a row for
//! its two smallest reduced costs, [`two_min`]) about twice as fast. From [`QUANTISED_MIN`]
//! positions on, where the copy no longer fits the caches and a bid waits on its row, the copy is
//! 16-bit integers instead ([`quantise_rows`]: one power-of-two step for all rows, an offset per
//! row; prices in units of the step), and the first [`COARSE_ROUNDS`] rounds bid on an 8-bit
//! copy of that ([`coarsen`]): a half and a quarter of the bytes per scan. The scans widen the
//! integers to `f32` exactly, so every instruction set bids alike.

use std::sync::atomic::{AtomicBool, Ordering};

use super::Cost;
use crate::kernels::bid::{
    coarsen, list_two_min, narrow_min_max, quantise_rows, two_min, ScanValue, CANDIDATES,
};
use crate::kernels::{signed, Isa};

/// The smallest problem the rounds accept (each row keeps up to 16 candidate columns); the
/// solver uses them from [`super::sap::WARM_START_MIN`] on.
pub(super) const MIN_SIZE: usize = 32;
/// First `ε`, relative to the cost range.
const FIRST_EPS: f64 = 1.0 / 64.0;
/// Last `ε`, relative to the cost range divided by `n`.
const LAST_EPS: f64 = 0.01;
/// `ε` shrinks by this factor between rounds.
const EPS_SHRINK: f64 = 0.2;
/// Upper limit on the number of rounds (`n = 2³²` needs 14).
const MAX_ROUNDS: usize = 32;
/// Bids per row allowed in one round before it is cut short.
const BID_BUDGET: usize = 32;
/// With AVX-512, rows keep candidate lists from this size on; smaller rows are rescanned at
/// every bid. Its full scan then costs about what a bid from the list costs (a gather and three
/// reductions) and the list rarely suffices: on real ViT-S/14 tokens (n = 256–257) ~90 % of the
/// list bids fell through to a scan, and the lists cost 6–13 % of the solve; at n = 1024 (real
/// EfficientNet maps) they save 10 %. With narrower vectors the scan costs more and lists pay
/// at every size the rounds run (measured with AVX2 at n = 196).
const LIST_MIN_AVX512: usize = 512;
/// From this size on the rounds bid on a 16-bit quantised copy of the costs
/// ([`quantise_rows`]) instead of an `f32` one: half the bytes per row scan, where the copy no
/// longer fits the caches and the scans wait on memory (S = 4096: 32 MiB against 64 MiB).
const QUANTISED_MIN: usize = 2048;
/// With the 16-bit copy, the first this many rounds (the largest `ε`, range/64 and range/320;
/// the most bids) bid on an 8-bit copy ([`coarsen`]), a quarter of the `f32` copy's bytes. Its
/// step is up to ~range/255, coarse next to those `ε`, but the later rounds start from its prices
/// at no visible loss (measured on real S = 3136 and 4096 affinities: 1, 2 or 3 coarse rounds
/// took 0.90, 0.85 and 0.86 of the time of the 16-bit copy alone).
const COARSE_ROUNDS: usize = 2;
/// Step of the 8-bit copy in units of the 16-bit one's.
const COARSE_FACTOR: f32 = 256.0;
/// The cancellation flag is read every this many bids.
const CANCEL_POLL: usize = 256;

/// Largest cost magnitude the f32 rounds accept (prices may drift by a few hundred `n · range`).
const MAX_MAGNITUDE: f64 = 1e30;

/// An unassigned column (or row).
const UNASSIGNED: u32 = u32::MAX;

/// Buffers of the auction rounds, reused across solves.
#[derive(Debug, Default, Clone)]
pub(super) struct Auction {
    cost: Vec<f32>,
    /// The 16-bit copy, from [`QUANTISED_MIN`] positions on (then `cost` stays empty).
    quantised: Vec<u16>,
    /// The 8-bit copy of the first [`COARSE_ROUNDS`] rounds (with `quantised`).
    coarse: Vec<u8>,
    prices: Vec<f32>,
    owner: Vec<u32>,
    free: Vec<u32>,
    /// Per row: the candidate columns of its last full scan ([`two_min`]; unset before the first).
    candidates: Vec<[u32; CANDIDATES]>,
    /// Per row: the costs of its candidates (read once at the scan, so that a bid from the list
    /// reads 64 contiguous bytes instead of 16 entries scattered over the row).
    candidate_costs: Vec<[f32; CANDIDATES]>,
    /// Per row: a lower bound, valid until its next full scan, on `c_ij − v_j` of every column
    /// not among its candidates (prices only fall, so reduced costs only grow).
    threshold: Vec<f32>,
    scanned: Vec<bool>,
    /// Whether the current solve bids from candidate lists (see [`LIST_MIN_AVX512`]).
    lists: bool,
}

impl Auction {
    /// Reserve the `f32` cost copy of an `n × n` problem fallibly.
    pub(super) fn try_reserve(
        &mut self,
        n: usize,
    ) -> Result<(), std::collections::TryReserveError> {
        if quantised(n) {
            self.quantised.try_reserve_exact(n.saturating_mul(n))?;
            self.coarse.try_reserve_exact(n.saturating_mul(n))
        } else {
            self.cost.try_reserve_exact(n.saturating_mul(n))
        }
    }

    /// Column duals for the `n × n` minimisation of `signed(cost)`, written to `v`.
    ///
    /// Leaves `v` untouched when all costs are equal (every assignment is then optimal) or when
    /// they exceed [`MAX_MAGNITUDE`]. Stops early (with prices that are still a valid start)
    /// once `cancel` is set; the caller reports the interruption.
    pub(super) fn prices<T: Cost, const MAX: bool>(
        &mut self,
        isa: Isa,
        cost: &[T],
        n: usize,
        v: &mut [f64],
        cancel: &AtomicBool,
    ) {
        debug_assert!(
            n >= MIN_SIZE
                && MIN_SIZE >= CANDIDATES
                && cost.len() == n * n
                && v.len() == n
                && u32::try_from(n).is_ok()
        );
        // One pass: the copy and the range. The f32 copy is relative to the first cost
        // (subtracted in f64, so that f32 precision is spent on the range, as relative to the
        // minimum); the 16-bit one has its own offset per row, and its prices are in units of
        // its step.
        let quantised = quantised(n);
        let (lo, hi, unit) = if quantised {
            let q = quantise_rows::<T, MAX>(isa, cost, n, &mut self.quantised);
            (q.lo, q.hi, q.step)
        } else {
            let reference = signed::<T, MAX>(cost[0]);
            let (lo, hi) = narrow_min_max::<T, MAX>(isa, cost, reference, &mut self.cost);
            (lo, hi, 1.0)
        };
        let range = hi - lo;
        // Skip when every assignment is optimal (no range), and when the costs do not fit f32
        // comfortably (prices could overflow): the exact searches then start from v = 0.
        // Also skip when the last ε would not be a normal f32 (tiny or subnormal costs): the
        // rounds could not make progress, and ε could underflow to 0 and never shrink below the
        // last one (the exact searches are correct from any start).
        let last_eps = range * LAST_EPS / n as f64;
        if !(range > 0.0
            && lo.abs().max(hi.abs()) < MAX_MAGNITUDE
            && last_eps as f32 >= f32::MIN_POSITIVE)
        {
            return;
        }
        self.prices.clear();
        self.prices.resize(n, 0.0);
        self.lists = isa < Isa::Avx512 || n >= LIST_MIN_AVX512;
        self.candidates.clear();
        self.candidates.resize(n, [0; CANDIDATES]);
        self.candidate_costs.clear();
        self.candidate_costs.resize(n, [0.0; CANDIDATES]);
        self.threshold.clear();
        self.threshold.resize(n, f32::NEG_INFINITY);
        self.scanned.clear();
        self.scanned.resize(n, false);
        let mut eps = range * FIRST_EPS;
        // `eps` shrinks geometrically from a normal number to one at least `last_eps`, so this
        // ends after about log5(n / 0.64) rounds; the cap holds even if it did not.
        let mut rounds = 0;
        let coarse_rounds = if quantised { COARSE_ROUNDS } else { 0 };
        if coarse_rounds > 0 {
            coarsen(&self.quantised, &mut self.coarse);
        }
        while eps >= last_eps && rounds < MAX_ROUNDS && !cancel.load(Ordering::Relaxed) {
            let eps_units = (eps / unit) as f32;
            if rounds < coarse_rounds {
                // In units of the 8-bit copy's step (256 of the 16-bit one's; powers of two,
                // so the prices convert exactly).
                let costs = std::mem::take(&mut self.coarse);
                self.round(isa, &costs, n, eps_units / COARSE_FACTOR, cancel);
                self.coarse = costs;
                if rounds + 1 == coarse_rounds {
                    for p in &mut self.prices {
                        *p *= COARSE_FACTOR;
                    }
                    // The lists hold 8-bit values: every row scans its 16-bit row afresh.
                    self.scanned.fill(false);
                }
            } else if quantised {
                let costs = std::mem::take(&mut self.quantised);
                self.round(isa, &costs, n, eps_units, cancel);
                self.quantised = costs;
            } else {
                let costs = std::mem::take(&mut self.cost);
                self.round(isa, &costs, n, eps_units, cancel);
                self.cost = costs;
            }
            eps *= EPS_SHRINK;
            rounds += 1;
        }
        // `unit` is a power of two: the prices scale exactly.
        for (vj, &p) in v.iter_mut().zip(&self.prices) {
            *vj = f64::from(p) * unit;
        }
    }

    /// One Gauss–Seidel auction round at a fixed `ε` on the copy `costs`, from an empty
    /// assignment.
    fn round<E: ScanValue>(
        &mut self,
        isa: Isa,
        costs: &[E],
        n: usize,
        eps: f32,
        cancel: &AtomicBool,
    ) {
        self.owner.clear();
        self.owner.resize(n, UNASSIGNED);
        self.free.clear();
        self.free.extend((0..n as u32).rev());
        let mut budget = BID_BUDGET * n;
        while let Some(i) = self.free.pop() {
            if budget == 0 || (budget.is_multiple_of(CANCEL_POLL) && cancel.load(Ordering::Relaxed))
            {
                return;
            }
            budget -= 1;
            let (d1, d2, j1) = self.best_two(isa, costs, i as usize, n);
            let d2 = if d2.is_finite() { d2 } else { d1 };
            self.prices[j1] -= d2 - d1 + eps;
            let previous = std::mem::replace(&mut self.owner[j1], i);
            if previous != UNASSIGNED {
                self.free.push(previous);
            }
        }
    }

    /// `(smallest, second smallest, arg-min)` of `c_ij − v_j` over row `i`: from the row's
    /// candidate list when that is provably enough, else by a full scan that renews the list
    /// (always by a full scan when the solve keeps no lists).
    #[inline]
    fn best_two<E: ScanValue>(
        &mut self,
        isa: Isa,
        costs: &[E],
        i: usize,
        n: usize,
    ) -> (f32, f32, usize) {
        let candidates = &mut self.candidates[i];
        let candidate_costs = &mut self.candidate_costs[i];
        if self.lists && self.scanned[i] {
            let (d1, d2, j1) = list_two_min(isa, candidate_costs, candidates, &self.prices);
            // Every other column is at least `threshold`: the two best values are certain, and
            // so is the best column unless another one off the list ties it (`d1 = threshold`;
            // a full scan then finds the lowest such column, on every instruction set).
            if d2 <= self.threshold[i] && d1 < self.threshold[i] {
                return (d1, d2, j1);
            }
        }
        let row = &costs[i * n..(i + 1) * n];
        let scan = two_min(isa, row, &self.prices, candidates);
        if self.lists {
            for (c, &j) in candidate_costs.iter_mut().zip(candidates.iter()) {
                *c = row[j as usize].widen();
            }
            self.threshold[i] = scan.threshold;
            self.scanned[i] = true;
        }
        (scan.d1, scan.d2, scan.j1)
    }
}

/// Whether an `n × n` problem's rounds bid on the 16-bit copy (see [`QUANTISED_MIN`]).
fn quantised(n: usize) -> bool {
    n >= QUANTISED_MIN
}
