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
//! Either way `G = Σ_i Â_{iσ(i)}` (each entry by [`dot`], summed in row order): a function of
//! the pair alone, hence bit-identical for any thread count, and equal to the `f64` path's `G`
//! bit for bit whenever both find the same permutation. The permutation is an optimal one
//! for `Â`; where several are optimal (exact ties), which one is returned may differ from the
//! `f64` path's choice, but not between runs or thread counts.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ndarray::ArrayView2;

use super::{bound, Affinity, Workspace};
pub use crate::kernels::screen::dot;
use crate::kernels::screen::dots;

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
}

static PAIRS: AtomicU64 = AtomicU64::new(0);
static CERTIFIED: AtomicU64 = AtomicU64::new(0);
static WIDENED: AtomicU64 = AtomicU64::new(0);
static REPAIRED: AtomicU64 = AtomicU64::new(0);
static CANDIDATES: AtomicU64 = AtomicU64::new(0);

/// The process-wide [`MixedCounters`] so far.
#[must_use]
pub fn counters() -> MixedCounters {
    MixedCounters {
        pairs: PAIRS.load(Ordering::Relaxed),
        certified: CERTIFIED.load(Ordering::Relaxed),
        widened: WIDENED.load(Ordering::Relaxed),
        repaired: REPAIRED.load(Ordering::Relaxed),
        candidates: CANDIDATES.load(Ordering::Relaxed),
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

/// Buffers of [`solve_certified`] and [`repair`], kept in the per-thread [`Workspace`].
#[derive(Debug, Default, Clone)]
pub(crate) struct MixedBuffers {
    v: Vec<f64>,
    q: Vec<f64>,
    diag: Vec<f64>,
    margin: Vec<f64>,
    cand_start: Vec<usize>,
    cand_col: Vec<usize>,
    cand_val: Vec<f64>,
    /// Row pairs whose `Â` is computed (one batch), and their values.
    pairs: Vec<(usize, usize)>,
    spare: Vec<f64>,
    owner: Vec<usize>,
    queue: std::collections::VecDeque<usize>,
    queued: Vec<bool>,
}

/// Steps 2–4 of the module docs: solve the pair's `f32` affinity `a32` (`S × S`, row-major, an
/// `f32` product of the `f32`-rounded `x` and `y` in any summation order) exactly, write the
/// permutation into `perm`, and certify it for the `f64` affinities `Â` of `factors`.
/// `Some(result)` when certified; `None` when the pair needs [`repair`] (the `f32` duals are
/// kept in `workspace` for its warm start).
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
    PAIRS.fetch_add(1, Ordering::Relaxed);
    let Workspace { solver, mixed, .. } = workspace;
    let col4row = solver.solve_cancellable(a32, s, s, Sense::Maximize, cancel)?;
    perm.copy_from_slice(col4row);
    // Column duals of the maximisation.
    mixed.v.clear();
    mixed
        .v
        .extend(solver.column_duals()[..s].iter().map(|&v| -v));
    let (xs, ys) = (
        factors.x.as_standard_layout(),
        factors.y.as_standard_layout(),
    );
    let rows = rows(&xs, &ys, c)?;
    for (attempt, widen) in [2.0_f64, 64.0].into_iter().enumerate() {
        check_cancel(cancel)?;
        if let Some(dual) = certify(factors, &rows, a32, mixed, perm, widen, cancel) {
            if attempt > 0 {
                WIDENED.fetch_add(1, Ordering::Relaxed);
            }
            CERTIFIED.fetch_add(1, Ordering::Relaxed);
            // Σ_i Â_iσ(i) in row order: the certificate's d_i.
            let value = mixed.diag.iter().sum::<f64>();
            return Ok(Some(MixedPair {
                value,
                bound: dual.max(value),
                repaired: false,
            }));
        }
    }
    check_cancel(cancel)?;
    Ok(None)
}

/// Step 5 of the module docs, after [`solve_certified`] returned `None` for the same pair and
/// `workspace`: solve the `f64` problem `a64` (`S × S`, row-major: the `f64` affinities of
/// `factors`) exactly, warm-started from the `f32` duals, into `perm`. With `with_bound`, the
/// bound is the dual rebuilt from the optimal permutation (as for the `f64` exact matcher), else
/// `value`.
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
    let (s, c) = factors.x.dim();
    if a64.len() != s * s || perm.len() != s || workspace.mixed.v.len() != s {
        return Err(Error::Shape(
            "internal: inconsistent shapes of a mixed-precision repair".into(),
        ));
    }
    REPAIRED.fetch_add(1, Ordering::Relaxed);
    let Workspace {
        solver,
        mixed,
        dual,
        ..
    } = workspace;
    // The f32 duals, in the minimisation's sign.
    for v in &mut mixed.v {
        *v = -*v;
    }
    let col4row =
        solver.solve_from_prices_cancellable(a64, s, Sense::Maximize, &mixed.v, cancel)?;
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

/// The rows of a pair's `x` and `y` (`S × C`, row-major).
struct Rows<'a, T> {
    x: &'a [T],
    y: &'a [T],
    c: usize,
}

impl<T: Cost> Rows<'_, T> {
    /// `Â_ij` ([`dot`]).
    #[inline]
    fn entry(&self, i: usize, j: usize) -> f64 {
        let c = self.c;
        dot(&self.x[i * c..(i + 1) * c], &self.y[j * c..(j + 1) * c])
    }

    /// `Σ_i Â_{iσ(i)}` in row order (as [`super::matched_sum`] sums an affinity).
    fn matched_sum(&self, perm: &[usize]) -> f64 {
        perm.iter()
            .enumerate()
            .map(|(i, &j)| self.entry(i, j))
            .sum()
    }
}

/// Steps 3 and 4 of the module docs for the `f32` permutation `perm` and duals `mixed.v`, with
/// screening width `widen · max_j err_ij` per row. Returns the certified dual bound
/// `Σ P + Σ Q`, or `None` when the certificate does not hold (or would not pay off).
#[allow(clippy::too_many_lines, clippy::cast_precision_loss)]
fn certify<T: Cost>(
    factors: &PairFactors<'_, T>,
    rows: &Rows<'_, T>,
    a32: &[f32],
    mixed: &mut MixedBuffers,
    perm: &[usize],
    widen: f64,
    cancel: &AtomicBool,
) -> Option<f64> {
    let (s, c) = factors.x.dim();
    let (nx, ny) = (factors.norms_x, factors.norms_y);
    let u32r = f64::from(f32::EPSILON) / 2.0; // 2^-24
    let eps = f64::EPSILON / 2.0; // 2^-53
    let cf = c as f64;
    let k = (cf + 2.0) * u32r;
    let rho = k / (1.0 - k) * (1.0 + 1e-6) + 2.0 * (cf + 1.0) * eps;
    let tiny = 2f64.powi(-148);
    let eta0 = tiny * (cf + 1.0);
    let eta1 = tiny * cf.sqrt();
    let max_ny = ny.iter().fold(0.0_f64, |m, &v| m.max(v));
    let max_nx = nx.iter().fold(0.0_f64, |m, &v| m.max(v));
    let MixedBuffers {
        v,
        q,
        diag,
        margin,
        cand_start,
        cand_col,
        cand_val,
        pairs,
        spare,
        owner,
        queue,
        queued,
    } = mixed;
    diag.clear();
    pairs.clear();
    pairs.extend(perm.iter().copied().enumerate());
    dots(rows.x, rows.y, rows.c, pairs, diag).ok()?;
    let max_v = v.iter().fold(0.0_f64, |m, &x| m.max(x.abs()));
    let max_p0 = perm
        .iter()
        .zip(diag.iter())
        .fold(0.0_f64, |m, (&j, &d)| m.max((d - v[j]).abs()));
    if !(max_v.is_finite() && max_p0.is_finite()) {
        return None;
    }
    let max_err = rho * max_nx * max_ny + eta0 + eta1 * (max_nx + max_ny);
    // Guard for the f64 rounding of r_ij (a few operations on terms of these magnitudes).
    let guard = 8.0 * eps * (max_p0 + max_v + 2.0 * max_nx * max_ny + max_err);
    // Budget of candidate entries: beyond it the dot products cost about as much as the f64
    // GEMM would, so the repair is the better deal.
    let budget = (s * s / 4).max(4 * s);
    cand_start.clear();
    cand_col.clear();
    cand_val.clear();
    margin.clear();
    for i in 0..s {
        cand_start.push(cand_col.len());
        // The row's largest error bound, max_j err_ij (per row: one stream less in the screen).
        let err = (rho * nx[i] + eta1) * max_ny + eta0 + eta1 * nx[i];
        let c0 = diag[i] - v[perm[i]] - err - guard;
        let tau = widen * err + guard;
        let row = &a32[i * s..(i + 1) * s];
        margin.push(screen_row(row, v, (c0, tau), cand_col));
        if cand_col.len() > budget {
            return None;
        }
    }
    cand_start.push(cand_col.len());
    CANDIDATES.fetch_add(cand_col.len() as u64, Ordering::Relaxed);
    // Candidates other than the assigned entries, computed in batches of chains.
    pairs.clear();
    for i in 0..s {
        for &j in &cand_col[cand_start[i]..cand_start[i + 1]] {
            if j != perm[i] {
                pairs.push((i, j));
            }
        }
    }
    spare.clear();
    dots(rows.x, rows.y, rows.c, pairs, spare).ok()?;
    let mut next = spare.iter();
    cand_val.clear();
    for i in 0..s {
        for &j in &cand_col[cand_start[i]..cand_start[i + 1]] {
            cand_val.push(if j == perm[i] {
                diag[i]
            } else {
                next.next().copied().unwrap_or(f64::NAN)
            });
        }
    }
    let max_cand = cand_val.iter().fold(0.0_f64, |m, &x| m.max(x.abs()));
    if !max_cand.is_finite() {
        return None;
    }
    // Bellman–Ford on the candidates: Q_j ≥ Q_σ(i) + Â_ij − d_i, from Q = V.
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
        if relaxations > limit || (relaxations.is_multiple_of(s) && cancel.load(Ordering::Relaxed))
        {
            return None;
        }
        let base = q[perm[i]] - diag[i];
        for t in cand_start[i]..cand_start[i + 1] {
            let j = cand_col[t];
            let cand = cand_val[t] + base;
            if cand > q[j] + tol {
                q[j] = cand;
                let o = owner[j];
                // The row whose dual P_o = d_o − Q_j drops: its non-candidates must stay covered.
                let rise = q[j] - v[j];
                if rise + 2.0 * guard + 4.0 * eps * (q[j].abs() + v[j].abs()) >= margin[o] {
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

    #[test]
    fn safety_limits() {
        assert!(f32_is_safe(1.0, 1.0, 24));
        assert!(!f32_is_safe(1e16, 1e16, 24));
        assert!(!f32_is_safe(1e20, 1e-20, 24));
        assert!(!f32_is_safe(f64::INFINITY, 1.0, 24));
        assert!(!f32_is_safe(1.0, 1.0, MAX_F32_CHANNELS + 1));
    }
}
