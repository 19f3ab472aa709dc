//! ε-scaling auction rounds that warm-start the column duals of the exact solver.
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
//! its two smallest reduced costs) about twice as fast. The two-minimum scan keeps 8 independent
//! lanes so that it vectorises; on x86-64 an AVX-512 or AVX2 body is taken, as `kernels::isa()`
//! chose once per solve.
//!
//! **Why there are two auctions.** This one only warms up the exact solver: it works on an `f32`
//! copy of the minimisation costs, keeps nothing but the prices, runs a fixed ε schedule under a
//! bid budget, and needs no certificate, because the exact searches that follow make any prices
//! correct. [`crate::matching::auction`] is a matcher in its own right: it bids on the affinity
//! itself (maximisation), must hand back a valid permutation however it stops, and must certify
//! how far that permutation is from the optimum with a feasible dual, on which its stopping rule
//! rests. Their row scans differ for the same reason: the candidate lists here pay off over five
//! ε rounds on one problem, while the matcher rescans a row too rarely for them (measured there).

use std::sync::atomic::{AtomicBool, Ordering};

use super::Cost;
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
/// The cancellation flag is read every this many bids.
const CANCEL_POLL: usize = 256;

/// Largest cost magnitude the f32 rounds accept (prices may drift by a few hundred `n · range`).
const MAX_MAGNITUDE: f64 = 1e30;

const NO_OWNER: u32 = u32::MAX;

const LANES: usize = 8;

/// Buffers of the auction rounds, reused across solves.
#[derive(Debug, Default, Clone)]
pub(super) struct Auction {
    cost: Vec<f32>,
    prices: Vec<f32>,
    owner: Vec<u32>,
    free: Vec<u32>,
    /// Per row: `LANES · 2` candidate columns from its last full scan (empty before the first).
    candidates: Vec<u32>,
    /// Per row: a lower bound, valid until its next full scan, on `c_ij − v_j` of every column
    /// not among its candidates (prices only fall, so reduced costs only grow).
    threshold: Vec<f32>,
    scanned: Vec<bool>,
}

impl Auction {
    /// Reserve the `f32` cost copy of an `n × n` problem fallibly.
    pub(super) fn try_reserve(
        &mut self,
        n: usize,
    ) -> Result<(), std::collections::TryReserveError> {
        self.cost.try_reserve_exact(n.saturating_mul(n))
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
        let (lo, hi) = signed_min_max::<T, MAX>(isa, cost);
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
        // Costs relative to the minimum (subtracted in f64) keep f32 precision where it matters.
        self.cost.clear();
        self.cost
            .extend(cost.iter().map(|&c| (signed::<T, MAX>(c) - lo) as f32));
        self.prices.clear();
        self.prices.resize(n, 0.0);
        self.candidates.clear();
        self.candidates.resize(n * CANDIDATES, 0);
        self.threshold.clear();
        self.threshold.resize(n, f32::NEG_INFINITY);
        self.scanned.clear();
        self.scanned.resize(n, false);
        let two_min = two_min_kernel(isa);
        let mut eps = range * FIRST_EPS;
        // `eps` shrinks geometrically from a normal number to one at least `last_eps`, so this
        // ends after about log5(n / 0.64) rounds; the cap holds even if it did not.
        let mut rounds = 0;
        while eps >= last_eps && rounds < MAX_ROUNDS && !cancel.load(Ordering::Relaxed) {
            self.round(n, eps as f32, two_min, cancel);
            eps *= EPS_SHRINK;
            rounds += 1;
        }
        for (vj, &p) in v.iter_mut().zip(&self.prices) {
            *vj = f64::from(p);
        }
    }

    /// One Gauss–Seidel auction round at a fixed `ε`, from an empty assignment.
    fn round(&mut self, n: usize, eps: f32, two_min: TwoMin, cancel: &AtomicBool) {
        self.owner.clear();
        self.owner.resize(n, NO_OWNER);
        self.free.clear();
        self.free.extend((0..n as u32).rev());
        let mut budget = BID_BUDGET * n;
        while let Some(i) = self.free.pop() {
            if budget == 0 || (budget.is_multiple_of(CANCEL_POLL) && cancel.load(Ordering::Relaxed))
            {
                return;
            }
            budget -= 1;
            let (d1, d2, j1) = self.best_two(i as usize, n, two_min);
            let d2 = if d2.is_finite() { d2 } else { d1 };
            self.prices[j1] -= d2 - d1 + eps;
            let previous = std::mem::replace(&mut self.owner[j1], i);
            if previous != NO_OWNER {
                self.free.push(previous);
            }
        }
    }

    /// `(smallest, second smallest, arg-min)` of `c_ij − v_j` over row `i`: from the row's
    /// candidate list when that is provably enough, else by a full scan that renews the list.
    #[inline]
    fn best_two(&mut self, i: usize, n: usize, two_min: TwoMin) -> (f32, f32, usize) {
        let row = &self.cost[i * n..(i + 1) * n];
        let candidates = &mut self.candidates[i * CANDIDATES..(i + 1) * CANDIDATES];
        if self.scanned[i] {
            let (mut d1, mut d2, mut j1) = (f32::INFINITY, f32::INFINITY, usize::MAX);
            for &j in candidates.iter() {
                let j = j as usize;
                let d = row[j] - self.prices[j];
                if d < d1 || (d == d1 && j < j1) {
                    d2 = d2.min(d1);
                    d1 = d;
                    j1 = j;
                } else {
                    d2 = d2.min(d);
                }
            }
            // Every other column is at least `threshold`: the two best are certain.
            if d2 <= self.threshold[i] {
                return (d1, d2, j1);
            }
        }
        let scan = two_min(row, &self.prices, candidates);
        self.threshold[i] = scan.threshold;
        self.scanned[i] = true;
        (scan.d1, scan.d2, scan.j1)
    }
}

/// Smallest and largest `signed(c)`, in one vectorised pass (AVX2 for `f64` on x86-64).
fn signed_min_max<T: Cost, const MAX: bool>(isa: Isa, cost: &[T]) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f64>() && isa >= Isa::Avx2 {
            // SAFETY: T is f64 (same type, so the cast is the identity); AVX2 is supported
            // (`kernels::isa` never exceeds the CPU).
            let cost =
                unsafe { std::slice::from_raw_parts(cost.as_ptr().cast::<f64>(), cost.len()) };
            let (lo, hi) = unsafe { avx2::min_max(cost) };
            return if MAX { (-hi, -lo) } else { (lo, hi) };
        }
    }
    let _ = isa;
    cost.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &c| {
            let c = signed::<T, MAX>(c);
            (lo.min(c), hi.max(c))
        })
}

/// Candidate columns kept per row: the two smallest of each lane.
const CANDIDATES: usize = 2 * LANES;

/// Result of a full scan of one row.
struct Scan {
    d1: f32,
    d2: f32,
    j1: usize,
    /// Every column not written to the candidate list has a reduced cost at least this.
    threshold: f32,
}

/// Full scan of `row[j] − prices[j]`; writes the candidate list.
type TwoMin = fn(&[f32], &[f32], &mut [u32]) -> Scan;

/// The body of the full scan for the instruction set `isa` (one choice per solve).
fn two_min_kernel(isa: Isa) -> TwoMin {
    #[cfg(target_arch = "x86_64")]
    {
        if isa >= Isa::Avx512 {
            return two_min_avx512;
        }
        if isa >= Isa::Avx2 {
            return two_min_avx2;
        }
    }
    let _ = isa;
    two_min_portable
}

#[cfg(target_arch = "x86_64")]
fn two_min_avx512(row: &[f32], prices: &[f32], candidates: &mut [u32]) -> Scan {
    // SAFETY: only selected by `two_min_kernel` for `Isa::Avx512`, which the CPU supports.
    unsafe { avx512::scan(row, prices, candidates) }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{merge_lanes, Scan, LANES};
    use std::arch::x86_64::{
        _mm512_add_epi32, _mm512_cmp_ps_mask, _mm512_loadu_ps, _mm512_mask_blend_epi32,
        _mm512_mask_blend_ps, _mm512_set1_epi32, _mm512_set1_ps, _mm512_setr_epi32,
        _mm512_storeu_ps, _mm512_storeu_si512, _mm512_sub_ps, _CMP_LT_OQ,
    };

    /// The lane scan with 16-wide AVX-512 vectors; lanes `l` and `l + 8` are then folded into lane
    /// `l`, keeping the two smallest of their four, so that the result has the 8-lane meaning of
    /// [`super::two_min_lanes`]: a dropped value is at least the folded runner-up.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn scan(row: &[f32], prices: &[f32], candidates: &mut [u32]) -> Scan {
        const W: usize = 2 * LANES;
        let n = row.len().min(prices.len());
        let wide = n / W * W;
        let mut m1 = _mm512_set1_ps(f32::INFINITY);
        let mut m2 = m1;
        let mut i1 = _mm512_set1_epi32(0);
        let mut i2 = i1;
        let mut index = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let step = _mm512_set1_epi32(W as i32);
        let mut k = 0;
        while k < wide {
            // SAFETY: k + 16 <= wide <= len of both slices.
            let d = _mm512_sub_ps(
                _mm512_loadu_ps(row.as_ptr().add(k)),
                _mm512_loadu_ps(prices.as_ptr().add(k)),
            );
            let below1 = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(d, m1);
            let below2 = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(d, m2);
            m2 = _mm512_mask_blend_ps(below1, _mm512_mask_blend_ps(below2, m2, d), m1);
            i2 = _mm512_mask_blend_epi32(below1, _mm512_mask_blend_epi32(below2, i2, index), i1);
            m1 = _mm512_mask_blend_ps(below1, m1, d);
            i1 = _mm512_mask_blend_epi32(below1, i1, index);
            index = _mm512_add_epi32(index, step);
            k += W;
        }
        let (mut v1, mut v2, mut j1, mut j2) = ([0.0_f32; W], [0.0_f32; W], [0_u32; W], [0_u32; W]);
        _mm512_storeu_ps(v1.as_mut_ptr(), m1);
        _mm512_storeu_ps(v2.as_mut_ptr(), m2);
        _mm512_storeu_si512(j1.as_mut_ptr().cast(), i1);
        _mm512_storeu_si512(j2.as_mut_ptr().cast(), i2);
        let mut lanes = (
            [f32::INFINITY; LANES],
            [f32::INFINITY; LANES],
            [0_u32; LANES],
            [0_u32; LANES],
        );
        for l in 0..LANES {
            let mut four = [
                (v1[l], j1[l]),
                (v2[l], j2[l]),
                (v1[l + LANES], j1[l + LANES]),
                (v2[l + LANES], j2[l + LANES]),
            ];
            four.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            (lanes.0[l], lanes.2[l]) = four[0];
            (lanes.1[l], lanes.3[l]) = four[1];
        }
        // Columns wide..n go through the scalar tail of `merge_lanes` (into lane 0).
        merge_lanes(row, prices, wide, lanes, candidates)
    }
}

#[cfg(target_arch = "x86_64")]
fn two_min_avx2(row: &[f32], prices: &[f32], candidates: &mut [u32]) -> Scan {
    // SAFETY: only selected by `two_min_kernel` for `Isa::Avx2` or above.
    unsafe { avx2::scan(row, prices, candidates) }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{merge_lanes, Scan, LANES};
    use std::arch::x86_64::{
        __m256, __m256i, _mm256_add_epi32, _mm256_blendv_ps, _mm256_castps_si256,
        _mm256_castsi256_ps, _mm256_cmp_ps, _mm256_loadu_pd, _mm256_loadu_ps, _mm256_max_pd,
        _mm256_min_pd, _mm256_set1_epi32, _mm256_set1_pd, _mm256_set1_ps, _mm256_setr_epi32,
        _mm256_storeu_pd, _mm256_storeu_ps, _mm256_storeu_si256, _mm256_sub_ps, _CMP_LT_OQ,
    };

    /// Smallest and largest entry (NaN-free input) with two 4-lane accumulators.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn min_max(values: &[f64]) -> (f64, f64) {
        let full = values.len() / 8 * 8;
        let (mut lo_a, mut lo_b) = (_mm256_set1_pd(f64::INFINITY), _mm256_set1_pd(f64::INFINITY));
        let (mut hi_a, mut hi_b) = (
            _mm256_set1_pd(f64::NEG_INFINITY),
            _mm256_set1_pd(f64::NEG_INFINITY),
        );
        let mut k = 0;
        while k < full {
            // SAFETY: k + 8 <= full <= values.len().
            let a = _mm256_loadu_pd(values.as_ptr().add(k));
            let b = _mm256_loadu_pd(values.as_ptr().add(k + 4));
            lo_a = _mm256_min_pd(a, lo_a);
            lo_b = _mm256_min_pd(b, lo_b);
            hi_a = _mm256_max_pd(a, hi_a);
            hi_b = _mm256_max_pd(b, hi_b);
            k += 8;
        }
        let (mut lo, mut hi) = ([0.0_f64; 4], [0.0_f64; 4]);
        _mm256_storeu_pd(lo.as_mut_ptr(), _mm256_min_pd(lo_a, lo_b));
        _mm256_storeu_pd(hi.as_mut_ptr(), _mm256_max_pd(hi_a, hi_b));
        values[full..]
            .iter()
            .chain(&lo)
            .chain(&hi)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
                (l.min(x), h.max(x))
            })
    }

    #[inline(always)]
    unsafe fn select_i(a: __m256i, b: __m256i, mask: __m256) -> __m256i {
        _mm256_castps_si256(_mm256_blendv_ps(
            _mm256_castsi256_ps(a),
            _mm256_castsi256_ps(b),
            mask,
        ))
    }

    /// The lane scan of [`super::two_min_lanes`] with explicit 8-wide AVX2 vectors.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn scan(row: &[f32], prices: &[f32], candidates: &mut [u32]) -> Scan {
        let n = row.len().min(prices.len());
        let full = n / LANES * LANES;
        let mut m1 = _mm256_set1_ps(f32::INFINITY);
        let mut m2 = m1;
        let mut i1 = _mm256_set1_epi32(0);
        let mut i2 = i1;
        let mut index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let step = _mm256_set1_epi32(LANES as i32);
        let mut k = 0;
        while k < full {
            // SAFETY: k + 8 <= full <= len of both slices.
            let d = _mm256_sub_ps(
                _mm256_loadu_ps(row.as_ptr().add(k)),
                _mm256_loadu_ps(prices.as_ptr().add(k)),
            );
            let below1 = _mm256_cmp_ps::<_CMP_LT_OQ>(d, m1);
            let below2 = _mm256_cmp_ps::<_CMP_LT_OQ>(d, m2);
            m2 = _mm256_blendv_ps(_mm256_blendv_ps(m2, d, below2), m1, below1);
            i2 = select_i(select_i(i2, index, below2), i1, below1);
            m1 = _mm256_blendv_ps(m1, d, below1);
            i1 = select_i(i1, index, below1);
            index = _mm256_add_epi32(index, step);
            k += LANES;
        }
        let mut lanes = (
            [0.0_f32; LANES],
            [0.0_f32; LANES],
            [0_u32; LANES],
            [0_u32; LANES],
        );
        _mm256_storeu_ps(lanes.0.as_mut_ptr(), m1);
        _mm256_storeu_ps(lanes.1.as_mut_ptr(), m2);
        _mm256_storeu_si256(lanes.2.as_mut_ptr().cast(), i1);
        _mm256_storeu_si256(lanes.3.as_mut_ptr().cast(), i2);
        merge_lanes(row, prices, full, lanes, candidates)
    }
}

fn two_min_portable(row: &[f32], prices: &[f32], candidates: &mut [u32]) -> Scan {
    two_min_lanes(row, prices, candidates)
}

/// Lane-parallel scan for the two smallest `row[j] − prices[j]` of each lane (lane `l` sees
/// columns `l, l + 8, …`, the tail goes to lane 0); lanes are merged at the end. The 16 lane
/// winners become the row's candidates; every other column is at least the smallest lane
/// runner-up. Ties go to the smaller column index, so the result does not depend on the lanes.
fn two_min_lanes(row: &[f32], prices: &[f32], candidates: &mut [u32]) -> Scan {
    let n = row.len().min(prices.len());
    let mut m1 = [f32::INFINITY; LANES];
    let mut m2 = [f32::INFINITY; LANES];
    let mut i1 = [0_u32; LANES];
    let mut i2 = [0_u32; LANES];
    let full = n / LANES * LANES;
    for (k, (c, p)) in row[..full]
        .chunks_exact(LANES)
        .zip(prices[..full].chunks_exact(LANES))
        .enumerate()
    {
        let base = (k * LANES) as u32;
        for l in 0..LANES {
            let d = c[l] - p[l];
            let j = base + l as u32;
            if d < m1[l] {
                (m2[l], i2[l], m1[l], i1[l]) = (m1[l], i1[l], d, j);
            } else if d < m2[l] {
                (m2[l], i2[l]) = (d, j);
            }
        }
    }
    merge_lanes(row, prices, full, (m1, m2, i1, i2), candidates)
}

/// Fold the tail `full..n` into lane 0, merge the lanes' two smallest values into the row's, write
/// the 16 lane winners as candidates, and bound every other column by the smallest runner-up.
/// Ties go to the smaller column index, so the result does not depend on the lane layout.
#[inline(always)]
fn merge_lanes(
    row: &[f32],
    prices: &[f32],
    full: usize,
    lanes: ([f32; LANES], [f32; LANES], [u32; LANES], [u32; LANES]),
    candidates: &mut [u32],
) -> Scan {
    let (mut m1, mut m2, mut i1, mut i2) = lanes;
    for j in full..row.len().min(prices.len()) {
        let d = row[j] - prices[j];
        if d < m1[0] {
            (m2[0], i2[0], m1[0], i1[0]) = (m1[0], i1[0], d, j as u32);
        } else if d < m2[0] {
            (m2[0], i2[0]) = (d, j as u32);
        }
    }
    let (mut d1, mut d2, mut j1) = (f32::INFINITY, f32::INFINITY, usize::MAX);
    let mut threshold = f32::INFINITY;
    for l in 0..LANES {
        for (d, j) in [(m1[l], i1[l]), (m2[l], i2[l])] {
            let j = j as usize;
            if d < d1 || (d == d1 && j < j1) {
                d2 = d2.min(d1);
                d1 = d;
                j1 = j;
            } else {
                d2 = d2.min(d);
            }
        }
        threshold = threshold.min(m2[l]);
        candidates[2 * l] = i1[l];
        candidates[2 * l + 1] = i2[l];
    }
    Scan {
        d1,
        d2,
        j1: if j1 == usize::MAX { 0 } else { j1 },
        threshold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector kernels this CPU can run.
    fn vector_kernels() -> Vec<(&'static str, TwoMin)> {
        let mut kernels: Vec<(&'static str, TwoMin)> = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                kernels.push(("avx2", two_min_avx2));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                kernels.push(("avx512", two_min_avx512));
            }
        }
        kernels
    }

    #[test]
    fn two_min_matches_a_sort() {
        let mut state = 0x2545_f491_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 1000) as f32 / 10.0
        };
        for n in [2, 7, 8, 9, 16, 17, 31, 32, 33, 64, 100, 1000] {
            let row: Vec<f32> = (0..n).map(|_| next()).collect();
            let prices: Vec<f32> = (0..n).map(|_| next()).collect();
            let d: Vec<f32> = row.iter().zip(&prices).map(|(c, p)| c - p).collect();
            let mut sorted: Vec<(f32, usize)> = d.iter().copied().zip(0..).collect();
            sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let mut cand = [0_u32; CANDIDATES];
            let scan = two_min_portable(&row, &prices, &mut cand);
            assert_eq!((scan.d1, scan.j1), sorted[0]);
            assert_eq!(scan.d2, sorted[1].0);
            // The threshold bounds every non-candidate column from below.
            for (j, &dj) in d.iter().enumerate() {
                if !cand.contains(&(j as u32)) {
                    assert!(dj >= scan.threshold, "n={n} column {j}");
                }
            }
            for (name, kernel) in vector_kernels() {
                let mut cand2 = [0_u32; CANDIDATES];
                let fast = kernel(&row, &prices, &mut cand2);
                assert_eq!(
                    (fast.d1, fast.d2, fast.j1),
                    (scan.d1, scan.d2, scan.j1),
                    "{name} n={n}"
                );
                // Lane layouts differ, so thresholds may too; each must be a valid bound.
                for (j, &dj) in d.iter().enumerate() {
                    if !cand2.contains(&(j as u32)) {
                        assert!(dj >= fast.threshold, "{name} n={n} column {j}");
                    }
                }
            }
        }
    }
}
