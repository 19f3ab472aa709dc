//! Exact matching with `f32` affinities and an `f64` guarantee ("mixed precision").
//!
//! The exact matched inner product of a pair `(x, y)` (`S × C` each, `f64`) is
//! `max_σ Σ_i Â_{iσ(i)}` where `Â_ij` is the `f64` dot product of `x_i` and `y_j` ([`dot`]: the
//! strict FMA chain of [`crate::kernels::gemm`], so `Â` is bit for bit the affinity of the `f64`
//! path). Computing all of `Â` streams `8·S²` bytes per pair; the solver's
//! searches read it again. [`solve_certified`] instead takes `A32 = fl32(x) fl32(y)ᵀ` from `f32`
//! (half the traffic, twice the SIMD width), solves that problem exactly, and then **proves**
//! the permutation optimal for `Â`, reading `Â` only where it could matter:
//!
//! 1. **Rounding bound.** For every entry, `|A32_ij − Â_ij| ≤ err_ij` with
//!    `err_ij = ρ·‖x_i‖‖y_j‖ + η_ij`, `ρ = (C+2)u/(1−(C+2)u)·(1+10⁻⁶) + 2(C+1)ε`
//!    (`u = 2⁻²⁴`, `ε = 2⁻⁵³`): the rounding of the inputs to `f32` (`2u` per product), of the
//!    `f32` dot product in *any* summation order, with or without FMA (`γ_C`, Higham's Thm. 3.1,
//!    with `Σ|x_k||y_k| ≤ ‖x‖‖y‖`), and of `Â` itself. `η_ij = 2⁻¹⁴⁸·(C + 1 + √C·(‖x_i‖ + ‖y_j‖))`
//!    covers `f32` underflow (absolute errors of at most `2⁻¹⁵⁰` per rounding). The norms are
//!    the `f64` ones of the inputs. [`f32_is_safe`] rules out `f32` overflow beforehand.
//! 2. **Solve in `f32`.** [`crate::lap::SapSolver`] on `A32` gives `σ` and column duals `V`.
//!    The solver's duals sit at a vertex of the optimal face (about one tight entry per row
//!    besides the assigned one); from `C ≥ 16·S` they are moved towards the middle of their
//!    feasible ranges ([`centre_duals`], two sweeps on `A32`), which leaves about a third as many
//!    entries for step 3 to compute in `f64`. Steps 3–4 hold for any `V`.
//! 3. **Screen.** With `d_i = Â_{iσ(i)}` (computed), `P⁰_i = d_i − V_{σ(i)}` and the row's
//!    largest bound `err_i = max_j err_ij`, every entry with `r_ij = P⁰_i + V_j − A32_ij − err_i
//!    > τ_i` satisfies `Â_ij ≤ P⁰_i + V_j − r_ij`: it is below the dual by at least `r_ij`. The others (the *candidates*: the assigned
//!    entries and the nearly tight ones, typically a few per row) get their exact `Â_ij`. Per row,
//!    `M_i` = the smallest `r_ij` of the non-candidates.
//! 4. **Certify.** Bellman–Ford on the candidates only (as in [`super::bound`]): raise `Q ≥ V`
//!    until `Q_j ≥ Q_{σ(i)} + Â_ij − d_i` on every candidate; set `P_i = d_i − Q_{σ(i)}`. Then
//!    `P_i + Q_j ≥ Â_ij` on candidates, `P_i + Q_{σ(i)} = d_i` (complementary slackness), and on
//!    a non-candidate `P_i + Q_j ≥ P⁰_i + V_j − (Q_{σ(i)} − V_{σ(i)}) ≥ Â_ij` as long as the rise
//!    `Q_{σ(i)} − V_{σ(i)}` stays below `M_i`. If it does for every row, `(P, Q)` is a feasible
//!    dual of the `f64` problem with value `Σ_i d_i`, so `σ` is optimal for `Â` (weak duality).
//!    The relaxation ignores gains below `4·S·ε·max` (as [`super::bound`] does, so that rounding
//!    cannot make an endless cycle), and every comparison carries a guard for the `f64`
//!    rounding of the certificate itself; so "optimal" means: no permutation is better by more
//!    than `S` times that tolerance (relative `~4·S·10⁻¹⁶`, far below the 1e-12 of the tests).
//! 5. **Repair.** If the rise exceeds a margin, the screen is retried once with a wider `τ`; if
//!    that fails too (`σ` not optimal for `Â`: a positive cycle, e.g. ties in `f32` that `f64`
//!    breaks, or more candidates than pay off), the pair is solved in `f64`: the full `Â`-level
//!    affinity is computed and the exact solver runs warm-started from the `f32` duals
//!    ([`crate::lap::SapSolver::solve_from_prices_cancellable`]); that is [`repair`], which the
//!    caller runs on the `f64` affinity it computes.
//!
//! **Blocks of pairs.** The tile engine computes the `f32` affinities of a block of `b × b`
//! pairs with one GEMM; [`solve_pair`] solves each of them, and [`certify_block`] then runs steps
//! 3–4 for all of them together, computing their `f64` dot products in two batches (the
//! assigned entries, then the candidates) with [`crate::kernels::screen::dots_blocked`]: `k` in
//! chunks, each row of the block read once per chunk rather than once per entry (at `S = 49`,
//! `C = 2048` the per-entry chains streamed ~2.9 MB per pair from L3). Every entry is still
//! [`dot`]'s strict chain, so nothing depends on the block. [`solve_certified`] is a block of one
//! pair.
//!
//! Either way `G = Σ_i Â_{iσ(i)}` (each entry by [`dot`], summed in row order): a function of
//! the pair alone, hence bit-identical for any thread count, and equal to the `f64` path's `G`
//! bit for bit whenever both find the same permutation. The permutation is an optimal one
//! for `Â`; where several are optimal (exact ties), which one is returned may differ from the
//! `f64` path's choice, but not between runs or thread counts.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ndarray::ArrayView2;

use super::{bound, Affinity, Workspace};
pub use crate::kernels::screen::dot;
use crate::kernels::screen::{
    centre_duals, dots_blocked, dots_blocked_both, matched_dots, DotsScratch,
};

use crate::error::{Error, Result};
use crate::kernels::screen::screen_row;
use crate::lap::{check_cancel, Cost, Sense};

/// Largest product of two concept-vector norms for which the `f32` affinity is used (the
/// pair is computed in `f64` beyond it): `f32` sums then stay below `2¹⁰⁰`, far from overflow.
pub const MAX_F32_PRODUCT: f64 = 1.267_650_600_228_229_4e30; // 2^100

/// Largest number of channels for which the `f32` rounding bound is meaningful
/// (`(C+2)·2⁻²⁴ ≤ 1 %`).
pub const MAX_F32_CHANNELS: usize = 160_000;

/// Counters of [`solve_certified`] and [`repair`] over the process: pairs solved, pairs certified from the `f32`
/// solve (at the first or the second screen), pairs repaired in `f64`, and candidate entries
/// computed in `f64`. For benchmarks; they do not influence any result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MixedCounters {
    /// Pairs given to [`solve_certified`].
    pub pairs: u64,
    /// Pairs whose `f32` permutation was certified.
    pub certified: u64,
    /// Pairs certified only at the second, wider screen.
    pub widened: u64,
    /// Pairs solved again in `f64` (the repair).
    pub repaired: u64,
    /// Candidate entries whose `f64` value was computed.
    pub candidates: u64,
    /// Pairs matched by an approximate matcher on their `f32` affinities
    /// ([`super::choose_f32`]).
    pub approximate: u64,
    /// Of those, pairs whose auction missed its target on the `f64` bound and were solved
    /// exactly in `f64`.
    pub approximate_exact: u64,
}

static PAIRS: AtomicU64 = AtomicU64::new(0);
static CERTIFIED: AtomicU64 = AtomicU64::new(0);
static WIDENED: AtomicU64 = AtomicU64::new(0);
static REPAIRED: AtomicU64 = AtomicU64::new(0);
static CANDIDATES: AtomicU64 = AtomicU64::new(0);
static APPROXIMATE: AtomicU64 = AtomicU64::new(0);
static APPROXIMATE_EXACT: AtomicU64 = AtomicU64::new(0);

/// Count a pair matched by an approximate matcher on its `f32` affinities, and whether it was
/// then solved exactly in `f64` ([`MixedCounters::approximate`]).
pub(crate) fn count_approximate(solved_exactly: bool) {
    APPROXIMATE.fetch_add(1, Ordering::Relaxed);
    if solved_exactly {
        APPROXIMATE_EXACT.fetch_add(1, Ordering::Relaxed);
    }
}

/// The process-wide [`MixedCounters`] so far.
#[must_use]
pub fn counters() -> MixedCounters {
    MixedCounters {
        pairs: PAIRS.load(Ordering::Relaxed),
        certified: CERTIFIED.load(Ordering::Relaxed),
        widened: WIDENED.load(Ordering::Relaxed),
        repaired: REPAIRED.load(Ordering::Relaxed),
        candidates: CANDIDATES.load(Ordering::Relaxed),
        approximate: APPROXIMATE.load(Ordering::Relaxed),
        approximate_exact: APPROXIMATE_EXACT.load(Ordering::Relaxed),
    }
}

/// Whether pairs of samples whose largest concept-vector norms are `max_norm_x`, `max_norm_y`
/// and largest entries `max_abs_x`, `max_abs_y`, with `c` channels, can take the `f32` path of
/// [`solve_certified`]: entries and norm products far from the `f32` overflow, and `c` below
/// [`MAX_F32_CHANNELS`]. (Tiny values are fine: the bound's `η` covers underflow, at worst by
/// making every entry a candidate, which ends in the `f64` repair.)
#[must_use]
pub fn f32_is_safe(max_norm_x: f64, max_norm_y: f64, c: usize) -> bool {
    // |x_k| ≤ ‖x‖, so the norm bounds cover the entries too.
    let limit = MAX_F32_PRODUCT.sqrt() * 1e4; // 2^50·1e4 ≪ f32::MAX
    max_norm_x.is_finite()
        && max_norm_y.is_finite()
        && max_norm_x < limit
        && max_norm_y < limit
        && max_norm_x * max_norm_y <= MAX_F32_PRODUCT
        && c <= MAX_F32_CHANNELS
}

/// The two sides of one pair in `f64` (any [`Cost`] type; the certificate widens it), with the
/// `f64` norms of every position.
#[derive(Debug, Clone, Copy)]
pub struct PairFactors<'a, T> {
    /// `x`, `S × C`.
    pub x: ArrayView2<'a, T>,
    /// `y`, `S × C`.
    pub y: ArrayView2<'a, T>,
    /// `‖x_i‖` computed in `f64`.
    pub norms_x: &'a [f64],
    /// `‖y_j‖` computed in `f64`.
    pub norms_y: &'a [f64],
}

/// Result of [`solve_certified`] and [`repair`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MixedPair {
    /// `G = Σ_i Â_{iσ(i)}` ([`dot`] per entry, summed in row order).
    pub value: f64,
    /// A certified upper bound on the exact `f64` optimum (equal to `value` up to rounding).
    pub bound: f64,
    /// Whether the pair had to be solved in `f64`.
    pub repaired: bool,
}

/// The rows of a block of pairs whose `f32` affinities came from one GEMM (the `b × b` pairs of
/// a tile block, or a single pair): `x` (`rows_x × C`) and `y` (`rows_y × C`), row-major, any
/// [`Cost`] type (widened to `f64`), with the `f64` norm of every row. A pair of the block is
/// given by the rows of its first matched position in `x` and `y` and the offset of its first
/// `f32` affinity ([`solve_pair`]).
#[derive(Debug, Clone, Copy)]
pub struct BlockFactors<'a, T> {
    /// Rows of the `x` side, `norms_x.len() × c`.
    pub x: &'a [T],
    /// Rows of the `y` side, `norms_y.len() × c`.
    pub y: &'a [T],
    /// Channels (the length of every row).
    pub c: usize,
    /// `‖x_r‖` in `f64` for every row `r` of `x`.
    pub norms_x: &'a [f64],
    /// `‖y_r‖` in `f64` for every row `r` of `y`.
    pub norms_y: &'a [f64],
    /// The block's `f32` affinities `fl32(x) fl32(y)ᵀ`, row-major with rows `a32_stride` apart:
    /// a pair's entry `(i, j)` is at `a0 + i·a32_stride + j` ([`solve_pair`]).
    pub a32: &'a [f32],
    /// The distance between two rows of `a32`.
    pub a32_stride: usize,
}

/// Where a pair of a block stands.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum Outcome {
    /// Solved in `f32`, not (yet) certified.
    #[default]
    Pending,
    /// Certified: `G` and the dual bound.
    Certified(MixedPair),
    /// Not certified: the pair needs [`repair_pair`].
    Failed,
}

/// One pair of a block: its rows, its `f32` solution and its certificate's state.
#[derive(Debug, Default, Clone)]
struct PairState {
    /// Row of the first matched position in the block's `x` and `y`, offset of its first
    /// entry in the block's `f32` affinities.
    x0: usize,
    y0: usize,
    a0: usize,
    perm: Vec<usize>,
    /// Column duals of the `f32` maximisation.
    v: Vec<f64>,
    /// `d_i = Â_iσ(i)`.
    diag: Vec<f64>,
    margin: Vec<f64>,
    cand_start: Vec<usize>,
    cand_col: Vec<usize>,
    cand_val: Vec<f64>,
    /// The pair's first entry in the block's current batch of `f64` dot products, and its
    /// first assigned entry in the first batch.
    first: usize,
    diag_first: usize,
    /// The screen's guard for the `f64` rounding of the certificate.
    guard: f64,
    outcome: Outcome,
}

/// Buffers of the certificate ([`solve_pair`], [`certify_block`], [`repair_pair`] and the
/// one-pair [`solve_certified`] and [`repair`]), kept in the per-thread [`Workspace`].
#[derive(Debug, Default, Clone)]
pub(crate) struct MixedBuffers {
    /// The pairs of the current block (the first `len`; the rest keep their capacity).
    pairs: Vec<PairState>,
    len: usize,
    /// Matched positions per pair in the current block.
    s: usize,
    /// Entries `(row of x, row of y)` whose `Â` one batch computes, and their values.
    entries: Vec<(u32, u32)>,
    values: Vec<f64>,
    /// The first screen's candidates, computed with the assigned entries in one batch.
    cand_entries: Vec<(u32, u32)>,
    cand_values: Vec<f64>,
    dots: DotsScratch,
    q: Vec<f64>,
    owner: Vec<usize>,
    queue: std::collections::VecDeque<usize>,
    queued: Vec<bool>,
    /// Sweeps of [`centre_duals`] per solved pair in the current block, and its scratch.
    sweeps: usize,
    centre: Vec<f64>,
}

/// Channels per matched position from which [`solve_pair`] centres the `f32` duals
/// ([`centre_duals`], [`CENTRE_SWEEPS`] sweeps): each sweep costs `O(S²)`, and each candidate
/// entry it spares the certificate `O(C)` (two sweeps spare about `0.6·S` of them per pair).
/// At `S = 49` that is from `C = 784`: measured at `C = 1280–2048` (fewer than half the
/// candidates), not below.
pub const CENTRE_CHANNELS_PER_POSITION: usize = 16;

/// Sweeps of [`centre_duals`] where the duals are centred (two cut the candidates of
/// post-ReLU `S = 49`, `C = 2048` pairs from ~45 to ~15 per pair, a third to ~12).
pub const CENTRE_SWEEPS: usize = 2;

/// Start a new block of pairs of `s` matched positions and `c` channels in `workspace` (the
/// previous block's pairs are forgotten).
pub fn begin_block(workspace: &mut Workspace, s: usize, c: usize) {
    workspace.mixed.len = 0;
    workspace.mixed.s = s;
    workspace.mixed.sweeps = if c >= CENTRE_CHANNELS_PER_POSITION.saturating_mul(s) {
        CENTRE_SWEEPS
    } else {
        0
    };
}

/// Step 2 of the module docs for one pair of the current block ([`begin_block`]): solve its
/// `f32` affinity `a32` (`S × S`, row-major, an `f32` product of the `f32`-rounded rows in any
/// summation order) exactly and keep the permutation and the duals. The pair's rows are
/// `x0..x0 + S` of the block's `x` and `y0..y0 + S` of its `y`, and its `f32` affinities start
/// at `a0` of the block's ([`BlockFactors`], given to [`certify_block`]; `a32` is a copy of
/// them). Returns the pair's index in the block.
///
/// # Errors
/// [`Error::Shape`] when `a32` is not `S × S`; [`Error::Interrupted`] once `cancel` is set.
pub fn solve_pair(
    workspace: &mut Workspace,
    a32: &[f32],
    (x0, y0, a0): (usize, usize, usize),
    cancel: &AtomicBool,
) -> Result<usize> {
    let Workspace { solver, mixed, .. } = workspace;
    let s = mixed.s;
    if a32.len() != s * s {
        return Err(Error::Shape(
            "internal: inconsistent shapes of a mixed-precision pair".into(),
        ));
    }
    PAIRS.fetch_add(1, Ordering::Relaxed);
    let col4row = solver.solve_cancellable(a32, s, s, Sense::Maximize, cancel)?;
    if mixed.pairs.len() == mixed.len {
        mixed.pairs.push(PairState::default());
    }
    let pair = mixed.len;
    mixed.len += 1;
    let state = &mut mixed.pairs[pair];
    state.x0 = x0;
    state.y0 = y0;
    state.a0 = a0;
    state.perm.clear();
    state.perm.extend_from_slice(col4row);
    // Column duals of the maximisation.
    state.v.clear();
    state
        .v
        .extend(solver.column_duals()[..s].iter().map(|&v| -v));
    if mixed.sweeps > 0 {
        // Duals in the middle of their ranges: fewer nearly tight entries for the
        // certificate to compute in f64 (the pair's affinities are in cache now).
        centre_duals(
            a32,
            &state.perm,
            &mut state.v,
            mixed.sweeps,
            &mut mixed.centre,
        );
    }
    state.outcome = Outcome::Pending;
    Ok(pair)
}

/// Steps 3–4 of the module docs for every pair of the current block, on the block's rows
/// `factors`: their `f64` dot products (the assigned entries, then the candidates of each screen)
/// are computed together ([`dots_blocked`]: each row read once per batch, not once per entry),
/// each still [`dot`]'s strict FMA chain. Afterwards [`pair_outcome`] tells each pair's result.
///
/// # Errors
/// [`Error::Shape`] when a pair's rows are not inside `factors`; [`Error::Interrupted`] once
/// `cancel` is set.
pub fn certify_block<T: Cost>(
    factors: &BlockFactors<'_, T>,
    workspace: &mut Workspace,
    cancel: &AtomicBool,
) -> Result<()> {
    let MixedBuffers {
        pairs,
        len,
        s,
        entries,
        values,
        cand_entries,
        cand_values,
        dots,
        q,
        owner,
        queue,
        queued,
        ..
    } = &mut workspace.mixed;
    let (s, c) = (*s, factors.c);
    let live = &mut pairs[..*len];
    let (rows_x, rows_y) = (factors.norms_x.len(), factors.norms_y.len());
    let shape = || Error::Shape("internal: inconsistent shapes of a mixed-precision block".into());
    if factors.x.len() != rows_x * c || factors.y.len() != rows_y * c {
        return Err(shape());
    }
    let row = |r: usize| u32::try_from(r).map_err(|_| shape());
    // (`push_entries` converts the rows too; this checks the largest once.)
    row(rows_x.max(rows_y))?;
    let stride = factors.a32_stride;
    let a32_end = |p: &PairState| p.a0 + s.saturating_sub(1) * stride + s;
    if stride < s
        || live.iter().any(|p| {
            p.x0 + s > rows_x
                || p.y0 + s > rows_y
                || p.perm.len() != s
                || a32_end(p) > factors.a32.len()
        })
    {
        return Err(shape());
    }
    let bounds = Bounds::new(c);
    let mut fbuf = BfBuffers {
        q,
        owner,
        queue,
        queued,
    };
    // The first screen of every pair runs before its assigned entries are known, from a lower
    // bound of each (its f32 value less its rounding bound), so that the assigned entries
    // (strict chains) and the candidates (any-order sums) are one batch of dot products, each
    // row read once; the margins are then raised to those of the exact `d_i`.
    entries.clear();
    cand_entries.clear();
    for t in 0..live.len() {
        if let Some(next) = live.get(t + 1) {
            // (The next pair's rows of the block's affinities, far apart: the hardware
            // prefetcher does not follow them.)
            for i in 0..s {
                let at = next.a0 + i * stride;
                if let Some(row) = factors.a32.get(at..at + s) {
                    crate::kernels::prefetch_l2(row);
                }
            }
        }
        let p = &mut live[t];
        let nx = &factors.norms_x[p.x0..p.x0 + s];
        let ny = &factors.norms_y[p.y0..p.y0 + s];
        let a32 = &factors.a32[p.a0..a32_end(p)];
        p.lower_diag(a32, stride, &bounds, (nx, ny));
        if !p.screen(a32, stride, &bounds, (nx, ny), 2.0) {
            p.outcome = Outcome::Failed;
            continue;
        }
        p.diag_first = entries.len();
        for (i, &j) in p.perm.iter().enumerate() {
            entries.push((row(p.x0 + i)?, row(p.y0 + j)?));
        }
        p.first = cand_entries.len();
        p.push_entries(cand_entries)?;
    }
    check_cancel(cancel)?;
    dots_blocked_both(
        factors.x,
        factors.y,
        c,
        (entries, values),
        (cand_entries, cand_values),
        dots,
    )?;
    let slack = Some((factors.norms_x, factors.norms_y));
    for p in live.iter_mut().filter(|p| p.outcome == Outcome::Pending) {
        let nx = &factors.norms_x[p.x0..p.x0 + s];
        let ny = &factors.norms_y[p.y0..p.y0 + s];
        p.exact_diag(&values[p.diag_first..p.diag_first + s], &bounds, (nx, ny));
        // The candidates first as upper bounds (the certificate needs `Â` exactly only on the
        // assigned entries); the pairs that this does not certify (near-ties within the
        // bound) take the exact chains, then the second, wider screen.
        p.fill_candidates(&cand_values[p.first..], &bounds, slack);
        p.certify(&bounds, &mut fbuf, 0, cancel);
    }
    for (attempt, widen) in [(0, 2.0_f64), (1, 64.0)] {
        check_cancel(cancel)?;
        entries.clear();
        for p in live.iter_mut().filter(|p| p.outcome == Outcome::Pending) {
            if attempt > 0 {
                let nx = &factors.norms_x[p.x0..p.x0 + s];
                let ny = &factors.norms_y[p.y0..p.y0 + s];
                let a32 = &factors.a32[p.a0..a32_end(p)];
                if !p.screen(a32, stride, &bounds, (nx, ny), widen) {
                    p.outcome = Outcome::Failed;
                    continue;
                }
            }
            p.first = entries.len();
            p.push_entries(entries)?;
        }
        dots_blocked(factors.x, factors.y, c, entries, values, dots)?;
        for p in live.iter_mut().filter(|p| p.outcome == Outcome::Pending) {
            p.fill_candidates(&values[p.first..], &bounds, None);
            p.certify(&bounds, &mut fbuf, attempt, cancel);
        }
    }
    for p in live.iter_mut().filter(|p| p.outcome == Outcome::Pending) {
        p.outcome = Outcome::Failed;
    }
    check_cancel(cancel)
}

/// After [`certify_block`]: pair `pair`'s `f32` permutation into `perm`, and `Some(result)` when
/// it was certified, `None` when it needs [`repair_pair`].
///
/// # Errors
/// [`Error::Shape`] when `pair` is not a pair of the block or `perm` not of its size.
pub fn pair_outcome(
    workspace: &Workspace,
    pair: usize,
    perm: &mut [usize],
) -> Result<Option<MixedPair>> {
    let mixed = &workspace.mixed;
    let state = mixed
        .pairs
        .get(pair)
        .filter(|_| pair < mixed.len && perm.len() == mixed.s)
        .ok_or_else(|| Error::Shape("internal: no such mixed-precision pair".into()))?;
    perm.copy_from_slice(&state.perm);
    Ok(match state.outcome {
        Outcome::Certified(r) => Some(r),
        Outcome::Pending | Outcome::Failed => None,
    })
}

/// Steps 2–4 of the module docs for one pair (a block of one, [`certify_block`]): solve the
/// pair's `f32` affinity `a32` (`S × S`, row-major, an `f32` product of the `f32`-rounded `x` and
/// `y` in any summation order) exactly, write the permutation into `perm`, and certify it for the
/// `f64` affinities `Â` of `factors`. `Some(result)` when certified; `None` when the pair needs
/// [`repair`] (the `f32` duals are kept in `workspace` for its warm start).
///
/// Cost: the `f32` solve, one `O(S²)` pass over `a32`, `O(C)` per candidate entry.
///
/// # Errors
/// [`Error::Shape`] for inconsistent shapes; [`Error::Interrupted`] once `cancel` is set;
/// errors of the solver (none for finite inputs).
pub fn solve_certified<T: Cost>(
    factors: &PairFactors<'_, T>,
    a32: &[f32],
    workspace: &mut Workspace,
    perm: &mut [usize],
    cancel: &AtomicBool,
) -> Result<Option<MixedPair>> {
    let (s, c) = factors.x.dim();
    if factors.y.dim() != (s, c)
        || factors.norms_x.len() != s
        || factors.norms_y.len() != s
        || perm.len() != s
        || a32.len() != s * s
    {
        return Err(Error::Shape(
            "internal: inconsistent shapes of a mixed-precision pair".into(),
        ));
    }
    begin_block(workspace, s, c);
    let pair = solve_pair(workspace, a32, (0, 0, 0), cancel)?;
    let (xs, ys) = (
        factors.x.as_standard_layout(),
        factors.y.as_standard_layout(),
    );
    let rows = rows(&xs, &ys, c)?;
    let block = BlockFactors {
        x: rows.x,
        y: rows.y,
        c,
        norms_x: factors.norms_x,
        norms_y: factors.norms_y,
        a32,
        a32_stride: s,
    };
    certify_block(&block, workspace, cancel)?;
    pair_outcome(workspace, pair, perm)
}

/// Step 5 of the module docs, after [`solve_certified`] returned `None` for the same pair and
/// `workspace`: [`repair_pair`] of that pair.
///
/// # Errors
/// As [`solve_certified`].
pub fn repair<T: Cost>(
    factors: &PairFactors<'_, T>,
    a64: &[T],
    workspace: &mut Workspace,
    perm: &mut [usize],
    with_bound: bool,
    cancel: &AtomicBool,
) -> Result<MixedPair> {
    repair_pair(factors, a64, workspace, 0, perm, with_bound, cancel)
}

/// Step 5 of the module docs for pair `pair` of the current block, after [`certify_block`] left
/// it uncertified: solve the `f64` problem `a64` (`S × S`, row-major: the `f64` affinities of
/// `factors`, the pair's matched positions) exactly, warm-started from the pair's `f32` duals,
/// into `perm`. With `with_bound`, the bound is the dual rebuilt from the optimal permutation (as
/// for the `f64` exact matcher), else `value`.
///
/// # Errors
/// As [`solve_certified`].
pub fn repair_pair<T: Cost>(
    factors: &PairFactors<'_, T>,
    a64: &[T],
    workspace: &mut Workspace,
    pair: usize,
    perm: &mut [usize],
    with_bound: bool,
    cancel: &AtomicBool,
) -> Result<MixedPair> {
    let (s, c) = factors.x.dim();
    let Workspace {
        solver,
        mixed,
        dual,
        ..
    } = workspace;
    let state = mixed
        .pairs
        .get_mut(pair)
        .filter(|p| pair < mixed.len && p.v.len() == s);
    let Some(state) = state.filter(|_| a64.len() == s * s && perm.len() == s) else {
        return Err(Error::Shape(
            "internal: inconsistent shapes of a mixed-precision repair".into(),
        ));
    };
    REPAIRED.fetch_add(1, Ordering::Relaxed);
    // The f32 duals, in the minimisation's sign.
    for v in &mut state.v {
        *v = -*v;
    }
    let col4row =
        solver.solve_from_prices_cancellable(a64, s, Sense::Maximize, &state.v, cancel)?;
    perm.copy_from_slice(col4row);
    let (xs, ys) = (
        factors.x.as_standard_layout(),
        factors.y.as_standard_layout(),
    );
    let value = rows(&xs, &ys, c)?.matched_sum(perm);
    let bound = if with_bound {
        let problem = Affinity::new(a64, s, factors.norms_x, factors.norms_y)?;
        bound::from_optimal_permutation(&problem, perm, dual, cancel).max(value)
    } else {
        value
    };
    check_cancel(cancel)?;
    Ok(MixedPair {
        value,
        bound,
        repaired: true,
    })
}

/// The rows of `x` and `y` as contiguous slices.
fn rows<'a, T: Cost>(
    xs: &'a ndarray::CowArray<'_, T, ndarray::Ix2>,
    ys: &'a ndarray::CowArray<'_, T, ndarray::Ix2>,
    c: usize,
) -> Result<Rows<'a, T>> {
    let layout = || Error::Shape("internal: factor layout".into());
    Ok(Rows {
        x: xs.as_slice().ok_or_else(layout)?,
        y: ys.as_slice().ok_or_else(layout)?,
        c,
    })
}

/// `Σ_i Â_{iσ(i)}` of a pair (`x`, `y`: `S × C` row-major, [`dot`] per entry, summed in row
/// order): the `f64` value of the permutation `perm`, bit for bit the `f64` path's
/// [`super::matched_sum`] of the same permutation. For the approximate matchers that choose
/// their permutation on `f32` affinities ([`super::choose_f32`]).
#[must_use]
pub fn rescore<T: Cost>(x: &[T], y: &[T], c: usize, perm: &[usize]) -> f64 {
    Rows { x, y, c }.matched_sum(perm)
}

/// [`rescore`] of many pairs whose rows lie in the same `x` and `y` (`S × C` blocks of rows,
/// row-major; a block of pairs of `gram`): pair `p`'s rows start at `starts[p]` = (row of `x`,
/// row of `y`), its permutation is `perms[p·m..(p + 1)·m]` (`m` matched positions). `out[p]`
/// gets bit for bit what [`rescore`] gives that pair (the same [`dot`] per entry, summed in row
/// order), but the entries of all pairs are computed together by [`dots_blocked`], so each row
/// of `x` and `y` is read once per call instead of once per pair it takes part in: with
/// `rescore` alone, re-scoring a block of 7 × 7 pairs at `C = 2048` cost more than its `f32`
/// GEMM (the rows came from L3 and memory for every pair).
///
/// # Errors
/// [`Error::Shape`] when a row is out of range or the permutations do not fit `starts`.
pub fn rescore_pairs<T: Cost>(
    (x, y, c): (&[T], &[T], usize),
    starts: &[(usize, usize)],
    perms: &[usize],
    scratch: &mut RescoreScratch,
    out: &mut Vec<f64>,
) -> Result<()> {
    out.clear();
    if starts.is_empty() {
        return Ok(());
    }
    if !perms.len().is_multiple_of(starts.len()) {
        return Err(Error::Shape("internal: permutations of a block".into()));
    }
    let m = perms.len() / starts.len();
    let row =
        |r: usize| u32::try_from(r).map_err(|_| Error::Shape("internal: too many rows".into()));
    scratch.entries.clear();
    for (&(rx, ry), perm) in starts.iter().zip(perms.chunks_exact(m.max(1))) {
        for (r, &t) in perm.iter().enumerate() {
            scratch.entries.push((row(rx + r)?, row(ry + t)?));
        }
    }
    dots_blocked(
        x,
        y,
        c,
        &scratch.entries,
        &mut scratch.dots,
        &mut scratch.blocked,
    )?;
    for p in 0..starts.len() {
        // (`Sum` of no terms: where `.sum()` starts, as in `Rows::matched_sum`.)
        let mut total: f64 = std::iter::empty::<f64>().sum();
        for &e in &scratch.dots[p * m..(p + 1) * m] {
            total += e;
        }
        out.push(total);
    }
    Ok(())
}

/// Buffers of [`rescore_pairs`].
#[derive(Debug, Default)]
pub struct RescoreScratch {
    entries: Vec<(u32, u32)>,
    dots: Vec<f64>,
    blocked: DotsScratch,
}

/// `Σ_i max_j err_ij` (step 1 of the module docs, `C` = `c`): the most by which the `f32`
/// affinities' dual can understate the `f64` one. With `u_i + v_j ≥ A32_ij` for all `i, j`,
/// `u_i + err_i + v_j ≥ Â_ij`, so a bound on the `f32` problem plus this sum bounds the `f64`
/// optimum. `nx`, `ny`: the `f64` norms of the rows of `x` and `y`. (The final factor
/// `1 + 10⁻⁶` covers the rounding of the sum.)
#[must_use]
pub fn row_error_sum(c: usize, nx: &[f64], ny: &[f64]) -> f64 {
    let b = Bounds::new(c);
    let max_ny = ny.iter().fold(0.0_f64, |m, &v| m.max(v));
    let sum: f64 = nx
        .iter()
        .map(|&n| (b.rho * n + b.eta1) * max_ny + b.eta0 + b.eta1 * n)
        .sum();
    sum * (1.0 + 1e-6)
}

/// The rows of a pair's `x` and `y` (`S × C`, row-major).
struct Rows<'a, T> {
    x: &'a [T],
    y: &'a [T],
    c: usize,
}

impl<T: Cost> Rows<'_, T> {
    /// `Σ_i Â_{iσ(i)}` in row order (as [`super::matched_sum`] sums an affinity, the same bits:
    /// each entry [`dot`]'s, by [`matched_dots`] a block of rows at a time).
    fn matched_sum(&self, perm: &[usize]) -> f64 {
        const BLOCK: usize = 64;
        let mut entries = [0.0_f64; BLOCK];
        // (`Sum` of no terms: where `.sum()` starts.)
        let mut total: f64 = std::iter::empty::<f64>().sum();
        for (b, cols) in perm.chunks(BLOCK).enumerate() {
            let rows = &self.x[b * BLOCK * self.c..];
            let out = &mut entries[..cols.len()];
            matched_dots(rows, self.y, self.c, cols, out);
            for &e in out.iter() {
                total += e;
            }
        }
        total
    }
}

/// The constants of the rounding bound (module docs, step 1) for `C` channels.
struct Bounds {
    rho: f64,
    eta0: f64,
    eta1: f64,
    eps: f64,
    /// `γ_{C+8}` (with a margin for the rounding of the norms): the rounding bound of
    /// [`crate::kernels::screen::dots_blocked_any_order`] per unit of `‖x_i‖‖y_j‖` (`Σ|x_k y_k| ≤ ‖x_i‖‖y_j‖`).
    any_order: f64,
    /// Its underflow term, `(C + 8)·2⁻¹⁰⁷⁴`, rounded up to `(C + 8)·2⁻¹⁰²²`.
    any_order_tiny: f64,
}

impl Bounds {
    #[allow(clippy::cast_precision_loss)]
    fn new(c: usize) -> Self {
        let u32r = f64::from(f32::EPSILON) / 2.0; // 2^-24
        let eps = f64::EPSILON / 2.0; // 2^-53
        let cf = c as f64;
        let k = (cf + 2.0) * u32r;
        let tiny = 2f64.powi(-148);
        let n = (cf + 8.0) * eps;
        Self {
            any_order: n / (1.0 - n) * (1.0 + 1e-6),
            any_order_tiny: (cf + 8.0) * f64::MIN_POSITIVE,
            rho: k / (1.0 - k) * (1.0 + 1e-6) + 2.0 * (cf + 1.0) * eps,
            eta0: tiny * (cf + 1.0),
            eta1: tiny * cf.sqrt(),
            eps,
        }
    }
}

/// The Bellman–Ford pass's buffers, shared by the pairs of a block.
struct BfBuffers<'a> {
    q: &'a mut Vec<f64>,
    owner: &'a mut Vec<usize>,
    queue: &'a mut std::collections::VecDeque<usize>,
    queued: &'a mut Vec<bool>,
}

impl PairState {
    /// Push the entries `(row of x, row of y)` of the candidates other than the assigned ones.
    fn push_entries(&self, entries: &mut Vec<(u32, u32)>) -> Result<()> {
        let row =
            |r: usize| u32::try_from(r).map_err(|_| Error::Shape("internal: too many rows".into()));
        for (i, &pi) in self.perm.iter().enumerate() {
            for &j in &self.cand_col[self.cand_start[i]..self.cand_start[i + 1]] {
                if j != pi {
                    entries.push((row(self.x0 + i)?, row(self.y0 + j)?));
                }
            }
        }
        Ok(())
    }

    /// `cand_val`: `d_i` on the assigned entries, `values` (in [`Self::push_entries`]' order)
    /// on the others — raised by the rounding bound of [`crate::kernels::screen::dots_blocked_any_order`] when `slack`
    /// gives the block's norms (`values` are then any-order sums, and `cand_val` upper bounds
    /// of `Â`).
    #[allow(clippy::cast_precision_loss)]
    fn fill_candidates(&mut self, values: &[f64], b: &Bounds, slack: Option<(&[f64], &[f64])>) {
        let mut next = values.iter();
        self.cand_val.clear();
        for (i, &pi) in self.perm.iter().enumerate() {
            for &j in &self.cand_col[self.cand_start[i]..self.cand_start[i + 1]] {
                self.cand_val.push(if j == pi {
                    self.diag[i]
                } else {
                    let v = next.next().copied().unwrap_or(f64::NAN);
                    match slack {
                        Some((nx, ny)) => {
                            v + b.any_order * nx[self.x0 + i] * ny[self.y0 + j] + b.any_order_tiny
                        }
                        None => v,
                    }
                });
            }
        }
    }

    /// [`Self::bellman_ford`], and on success the pair's outcome and the counters.
    fn certify(&mut self, b: &Bounds, f: &mut BfBuffers<'_>, attempt: usize, cancel: &AtomicBool) {
        if let Some(dual) = self.bellman_ford(b, f, cancel) {
            if attempt > 0 {
                WIDENED.fetch_add(1, Ordering::Relaxed);
            }
            CERTIFIED.fetch_add(1, Ordering::Relaxed);
            // Σ_i Â_iσ(i) in row order: the certificate's d_i.
            let value = self.diag.iter().sum::<f64>();
            self.outcome = Outcome::Certified(MixedPair {
                value,
                bound: dual.max(value),
                repaired: false,
            });
        }
    }

    /// `diag` := a lower bound of each assigned entry `Â_iσ(i)`: its `f32` value less its rounding
    /// bound `err_iσ(i)` (step 1 of the module docs), for a first screen before the exact
    /// values are known ([`Self::exact_diag`] then corrects the margins). (The bound's factor
    /// `1 + 10⁻⁶` in `ρ` covers the `f64` rounding of this difference many times over.)
    fn lower_diag(&mut self, a32: &[f32], stride: usize, b: &Bounds, (nx, ny): (&[f64], &[f64])) {
        self.diag.clear();
        for (i, &j) in self.perm.iter().enumerate() {
            let err = b.rho * nx[i] * ny[j] + b.eta0 + b.eta1 * (nx[i] + ny[j]);
            self.diag.push(f64::from(a32[i * stride + j]) - err);
        }
    }

    /// After a screen from [`Self::lower_diag`]: `diag` := the exact assigned entries `exact`,
    /// each row's margin raised by `d_i − d̃_i` (the screen's `r_ij` of a row all grow by it),
    /// rounded down, and the guard that of the larger of both.
    fn exact_diag(&mut self, exact: &[f64], b: &Bounds, norms: (&[f64], &[f64])) {
        for ((m, &lower), &d) in self.margin.iter_mut().zip(&self.diag).zip(exact) {
            let rise = (d - lower).max(0.0);
            if m.is_finite() {
                *m = (*m + rise) - 4.0 * b.eps * (m.abs() + rise);
            }
        }
        let before = self.guard;
        self.diag.clear();
        self.diag.extend_from_slice(exact);
        self.guard = before.max(self.guard_for(b, norms).unwrap_or(f64::INFINITY));
    }

    /// The screen's guard for the `f64` rounding of the certificate (a few operations on terms
    /// of these magnitudes), or `None` when the duals or `diag` are not finite.
    fn guard_for(&self, b: &Bounds, (nx, ny): (&[f64], &[f64])) -> Option<f64> {
        let (perm, v, diag) = (&self.perm, &self.v, &self.diag);
        let max_ny = ny.iter().fold(0.0_f64, |m, &v| m.max(v));
        let max_nx = nx.iter().fold(0.0_f64, |m, &v| m.max(v));
        let max_v = v.iter().fold(0.0_f64, |m, &x| m.max(x.abs()));
        let max_p0 = perm
            .iter()
            .zip(diag.iter())
            .fold(0.0_f64, |m, (&j, &d)| m.max((d - v[j]).abs()));
        if !(max_v.is_finite() && max_p0.is_finite()) {
            return None;
        }
        let max_err = b.rho * max_nx * max_ny + b.eta0 + b.eta1 * (max_nx + max_ny);
        Some(8.0 * b.eps * (max_p0 + max_v + 2.0 * max_nx * max_ny + max_err))
    }

    /// Step 3 of the module docs for the `f32` permutation, duals and `diag`, on the pair's
    /// `f32` affinities `a32` (row `i` at `i·stride`), with screening width
    /// `widen · max_j err_ij` per row: the candidates and margins. `false` when the certificate
    /// cannot hold (non-finite values) or would not pay off (too many candidates).
    fn screen(
        &mut self,
        a32: &[f32],
        stride: usize,
        b: &Bounds,
        (nx, ny): (&[f64], &[f64]),
        widen: f64,
    ) -> bool {
        let s = self.perm.len();
        // Guard for the f64 rounding of r_ij (a few operations on terms of these magnitudes).
        let Some(guard) = self.guard_for(b, (nx, ny)) else {
            return false;
        };
        self.guard = guard;
        let (perm, v, diag) = (&self.perm, &self.v, &self.diag);
        let max_ny = ny.iter().fold(0.0_f64, |m, &v| m.max(v));
        // Budget of candidate entries: beyond it the dot products cost about as much as the f64
        // GEMM would, so the repair is the better deal.
        let budget = (s * s / 4).max(4 * s);
        self.cand_start.clear();
        self.cand_col.clear();
        self.margin.clear();
        for i in 0..s {
            self.cand_start.push(self.cand_col.len());
            // The row's largest error bound, max_j err_ij (per row: one stream less in the
            // screen).
            let err = (b.rho * nx[i] + b.eta1) * max_ny + b.eta0 + b.eta1 * nx[i];
            let c0 = diag[i] - v[perm[i]] - err - guard;
            let tau = widen * err + guard;
            let row = &a32[i * stride..i * stride + s];
            self.margin
                .push(screen_row(row, v, (c0, tau), &mut self.cand_col));
            if self.cand_col.len() > budget {
                return false;
            }
        }
        self.cand_start.push(self.cand_col.len());
        CANDIDATES.fetch_add(self.cand_col.len() as u64, Ordering::Relaxed);
        true
    }

    /// Step 4 of the module docs, after [`Self::screen`] and with the candidates' `Â` in
    /// `cand_val`: the certified dual bound `Σ P + Σ Q`, or `None` when the certificate does not
    /// hold.
    #[allow(clippy::cast_precision_loss)]
    fn bellman_ford(&self, b: &Bounds, f: &mut BfBuffers<'_>, cancel: &AtomicBool) -> Option<f64> {
        let s = self.perm.len();
        let (perm, v, diag, guard) = (&self.perm, &self.v, &self.diag, self.guard);
        let eps = b.eps;
        let max_cand = self.cand_val.iter().fold(0.0_f64, |m, &x| m.max(x.abs()));
        if !max_cand.is_finite() {
            return None;
        }
        let max_v = v.iter().fold(0.0_f64, |m, &x| m.max(x.abs()));
        let max_p0 = perm
            .iter()
            .zip(diag.iter())
            .fold(0.0_f64, |m, (&j, &d)| m.max((d - v[j]).abs()));
        // Bellman–Ford on the candidates: Q_j ≥ Q_σ(i) + Â_ij − d_i, from Q = V.
        let BfBuffers {
            q,
            owner,
            queue,
            queued,
        } = f;
        q.clear();
        q.extend_from_slice(v);
        owner.clear();
        owner.resize(s, 0);
        for (i, &j) in perm.iter().enumerate() {
            owner[j] = i;
        }
        let scale = max_cand.max(max_v).max(max_p0);
        let tol = 4.0 * s as f64 * eps * scale;
        queue.clear();
        queue.extend(0..s);
        queued.clear();
        queued.resize(s, true);
        let mut relaxations = 0_usize;
        let limit = s.saturating_mul(s + 1);
        while let Some(i) = queue.pop_front() {
            queued[i] = false;
            relaxations += 1;
            if relaxations > limit
                || (relaxations.is_multiple_of(s) && cancel.load(Ordering::Relaxed))
            {
                return None;
            }
            let base = q[perm[i]] - diag[i];
            for t in self.cand_start[i]..self.cand_start[i + 1] {
                let j = self.cand_col[t];
                let cand = self.cand_val[t] + base;
                if cand > q[j] + tol {
                    q[j] = cand;
                    let o = owner[j];
                    // The row whose dual P_o = d_o − Q_j drops: its non-candidates must stay
                    // covered.
                    let rise = q[j] - v[j];
                    if rise + 2.0 * guard + 4.0 * eps * (q[j].abs() + v[j].abs()) >= self.margin[o]
                    {
                        return None;
                    }
                    if !queued[o] {
                        queued[o] = true;
                        queue.push_back(o);
                    }
                }
            }
        }
        // Σ P + Σ Q with P_i = d_i − Q_σ(i).
        let p_sum: f64 = perm.iter().zip(diag.iter()).map(|(&j, &d)| d - q[j]).sum();
        let bound = p_sum + q.iter().sum::<f64>();
        bound.is_finite().then_some(bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_is_the_plain_sum_for_small_integers() {
        let a: Vec<f64> = (0..11).map(f64::from).collect();
        let b: Vec<f64> = (0..11).map(|k| f64::from(2 * k - 3)).collect();
        let want: f64 = a.iter().zip(&b).map(|(p, q)| p * q).sum();
        assert_eq!(dot(&a, &b), want);
    }

    /// `rescore_pairs` gives every pair of a block what `rescore` gives it alone, bit for bit:
    /// pairs sharing rows, `f64` and `f32` rows, `C` across a chunk of `dots_blocked`, a pair of
    /// one position and a block of no pairs.
    #[test]
    fn rescore_pairs_is_rescore_of_each_pair() {
        let (rows, cols, c) = (3_usize, 4_usize, 300_usize);
        for m in [1_usize, 5, 23] {
            // Entries of very different sizes, so the order of each sum matters.
            let fill = |n: usize, seed: u64| -> Vec<f64> {
                (0..n)
                    .map(|k| {
                        let t = (k as u64 + 1)
                            .wrapping_mul(seed)
                            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
                        let u = (t >> 11) as f64 / (1_u64 << 53) as f64 - 0.5;
                        u * f64::powi(10.0, (k % 7) as i32 - 3)
                    })
                    .collect()
            };
            let (x, y) = (fill(rows * m * c, 3), fill(cols * m * c, 5));
            let mut starts = Vec::new();
            let mut perms = Vec::new();
            for ii in 0..rows {
                for jj in 0..cols {
                    starts.push((ii * m, jj * m));
                    perms.extend((0..m).map(|r| (r * (2 * ii + 1) + jj) % m));
                }
            }
            let mut scratch = RescoreScratch::default();
            let mut out = Vec::new();
            rescore_pairs((&x, &y, c), &starts, &perms, &mut scratch, &mut out).unwrap();
            #[allow(clippy::cast_possible_truncation)]
            let (x32, y32): (Vec<f32>, Vec<f32>) = (
                x.iter().map(|&v| v as f32).collect(),
                y.iter().map(|&v| v as f32).collect(),
            );
            let mut out32 = Vec::new();
            rescore_pairs((&x32, &y32, c), &starts, &perms, &mut scratch, &mut out32).unwrap();
            assert_eq!(out.len(), starts.len());
            for (p, &(rx, ry)) in starts.iter().enumerate() {
                let perm = &perms[p * m..(p + 1) * m];
                let one = |a: &[f64], b: &[f64]| {
                    rescore(&a[rx * c..(rx + m) * c], &b[ry * c..(ry + m) * c], c, perm)
                };
                assert_eq!(out[p].to_bits(), one(&x, &y).to_bits(), "m = {m}, pair {p}");
                let one32 = rescore(
                    &x32[rx * c..(rx + m) * c],
                    &y32[ry * c..(ry + m) * c],
                    c,
                    perm,
                );
                assert_eq!(
                    out32[p].to_bits(),
                    one32.to_bits(),
                    "f32, m = {m}, pair {p}"
                );
            }
        }
        let mut out = vec![1.0];
        rescore_pairs(
            (&[0.0_f64; 4][..], &[0.0; 4][..], 2),
            &[],
            &[],
            &mut RescoreScratch::default(),
            &mut out,
        )
        .unwrap();
        assert!(out.is_empty());
        // Permutations that do not fit the pairs.
        let bad = rescore_pairs(
            (&[0.0_f64; 4][..], &[0.0; 4][..], 2),
            &[(0, 0), (1, 1)],
            &[0, 1, 0],
            &mut RescoreScratch::default(),
            &mut out,
        );
        assert!(bad.is_err());
    }

    #[test]
    fn safety_limits() {
        assert!(f32_is_safe(1.0, 1.0, 24));
        assert!(!f32_is_safe(1e16, 1e16, 24));
        assert!(!f32_is_safe(1e20, 1e-20, 24));
        assert!(!f32_is_safe(f64::INFINITY, 1.0, 24));
        assert!(!f32_is_safe(1.0, 1.0, MAX_F32_CHANNELS + 1));
    }
}
