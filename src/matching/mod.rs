//! Matchers: how the spatial positions of two samples are put into correspondence.
//!
//! A matcher takes one pair's [`Affinity`]: the `S × S` matrix `A = x yᵀ` (row-major; rows are the
//! positions of `x`, columns those of `y`) together with the L2 norms `‖x_s‖`, `‖y_t‖` of every
//! position, and returns a permutation `perm` with `perm[s]` the position of `y` matched to
//! position `s` of `x`. The matched inner product is then `G = Σ_s A[s, perm[s]]`
//! ([`matched_sum`]). Every matcher returns a valid permutation, so its `G` never exceeds the exact
//! one (up to the rounding of the sum).
//!
//! | matcher | what it does | time per pair (after the `O(S²C)` affinity) |
//! |---|---|---|
//! | [`Matcher::None`] | identity: the spatio-semantic comparison `Σ_s ⟨x_s, y_s⟩` | `O(S)` (no affinity needed) |
//! | [`Matcher::Exact`] | the optimal permutation, exact LAP ([`crate::lap::SapSolver`]) | `O(S³)` worst case |
//! | [`Matcher::Greedy`] | rows by descending norm, each takes its best free column ([`greedy`]) | `O(S²)` |
//! | [`Matcher::TopkGreedy`] | top-`k` norms of each side exact, the rest greedy ([`topk`]) | `O(k³ + S²)` |
//! | [`Matcher::BatchOptimal`] | norm-sorted batches of `b` matched exactly ([`batch`]) | `(S/b)·O(b³)` |
//! | [`Matcher::Auction`] | ε-scaling auction stopped at a certified gap ([`auction`]) | `O(S)` per bid; ≈ 6 bids per position at the default 3 % gap, 15–20 at 0.1 % |
//! | [`Matcher::Shift`] | the best circular 2-D shift of the `H × W` grid ([`shift`]): a translation-invariant baseline | `O(S²)`; in `gram` from 256 grid positions `O(C·S·log S)` from the samples, no affinity ([`shift::best_shift_features`]) |
//!
//! The first three are the paper's (Sec. 4.4, App. F); `auction` is semrsm's own and the best
//! time/quality trade-off on real affinities (see `docs/benchmarks.md`, "Table 5"); `shift` is the
//! baseline of Williams et al. (2021), between `none` and `exact`.
//!
//! **Certified quality.** [`Matcher::assign_with_bound`] also returns an upper bound on the exact
//! matched inner product, from a feasible solution of the LAP's dual ([`bound`]): it is never below
//! the exact value, equals it (up to rounding) for [`Matcher::Exact`], and is within the requested
//! gap of its value for [`Matcher::Auction`]. `value / bound` is then a certified lower bound on the
//! fraction of the optimum a matcher reached (for positive values), without solving exactly.
//!
//! **Ties** are broken deterministically (by lower index), so results never depend on the thread
//! count; see each matcher for what that means for permutation invariance.

pub mod auction;
pub mod batch;
pub mod bound;
pub mod greedy;
pub mod mixed;
pub mod shift;
pub mod topk;

use std::sync::atomic::AtomicBool;

use ndarray::ArrayView2;

use crate::error::{Error, Result};
use crate::lap::{check_cancel, validate_costs, Cost, SapSolver, Sense, NEVER_CANCELLED};

/// Default number of highest-norm positions matched exactly by [`Matcher::TopkGreedy`] (the
/// value the paper discusses, App. F).
pub const DEFAULT_TOPK: usize = 128;
/// Default batch size of [`Matcher::BatchOptimal`] (the paper's choice for its RSMs, App. G).
pub const DEFAULT_BATCH: usize = 512;
/// Default target gap of [`Matcher::Auction`], in parts per million (3 %: on the real fixtures
/// one ε phase, ending at about 99 % of the optimum).
pub const DEFAULT_GAP_PPM: u32 = 30_000;
/// Target gap of the auction run that bounds the matchers without a dual of their own (1 %).
pub const BOUND_GAP_PPM: u32 = 10_000;

/// A way of matching the spatial positions of two samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Matcher {
    /// No matching: position `s` of `x` goes with position `s` of `y` (spatio-semantic RSM).
    None,
    /// Optimal matching: the permutation maximising the summed affinity (semantic RSM).
    Exact,
    /// The paper's greedy matching: positions of `x` by descending norm, each taking the free
    /// position of `y` of largest affinity. See [`greedy`].
    Greedy,
    /// The `k` highest-norm positions of each side matched exactly, the rest greedily. See
    /// [`topk`].
    TopkGreedy {
        /// Positions matched exactly (`k ≥ S` makes it [`Matcher::Exact`], `k = 0`
        /// [`Matcher::Greedy`]).
        k: usize,
    },
    /// Each side sorted by norm and cut into consecutive batches of `b`; batch `t` of `x` is
    /// matched exactly to batch `t` of `y`. See [`batch`].
    BatchOptimal {
        /// Batch size, at least 1 (`b ≥ S` makes it [`Matcher::Exact`]).
        b: usize,
    },
    /// ε-scaling forward auction that stops once its own dual certifies a relative gap of at most
    /// `gap_ppm` parts per million. See [`auction`]. Should the auction stop above that (out of
    /// bids, or `ε` at its floor, e.g. with affinities spanning 10^±120), the pair is solved
    /// exactly and certified from the optimal permutation instead.
    Auction {
        /// Target certified relative gap in parts per million (`1000` = 0.1 %); `0` runs the
        /// ε-scaling down to rounding level.
        gap_ppm: u32,
    },
    /// The best circular shift of the positions as an `H × W` grid (`S = H·W`, row-major): a
    /// translation-invariant, not permutation-invariant, comparison. See [`shift`].
    Shift {
        /// Grid width `W` (must divide `S`); `0` means a square grid `W = H = √S`.
        w: usize,
    },
}

/// One matcher option: its name, accepted range, default and meaning (for error messages).
struct OptionSpec {
    name: &'static str,
    min: i64,
    max: i64,
    default: i64,
    meaning: &'static str,
}

const TOPK_OPTIONS: &[OptionSpec] = &[OptionSpec {
    name: "k",
    min: 0,
    max: i64::MAX,
    default: DEFAULT_TOPK as i64,
    meaning: "positions matched exactly",
}];
const BATCH_OPTIONS: &[OptionSpec] = &[OptionSpec {
    name: "b",
    min: 1,
    max: i64::MAX,
    default: DEFAULT_BATCH as i64,
    meaning: "batch size",
}];
const SHIFT_OPTIONS: &[OptionSpec] = &[OptionSpec {
    name: "w",
    min: 0,
    max: i64::MAX,
    default: 0,
    meaning: "grid width W with S = H*W; 0: square grid",
}];
const AUCTION_OPTIONS: &[OptionSpec] = &[OptionSpec {
    name: "gap_ppm",
    min: 0,
    max: 1_000_000,
    default: DEFAULT_GAP_PPM as i64,
    meaning: "target certified relative gap in parts per million",
}];

impl Matcher {
    /// Names accepted by [`Matcher::from_name`].
    pub const NAMES: &'static [&'static str] = &[
        "none",
        "exact",
        "greedy",
        "topk_greedy",
        "batch_optimal",
        "auction",
        "shift",
    ];

    /// Look a matcher up by name, with its options as `(name, value)` pairs.
    ///
    /// | matcher | options |
    /// |---|---|
    /// | `none`, `exact`, `greedy` | none |
    /// | `topk_greedy` | `k ≥ 0` (default [`DEFAULT_TOPK`]) |
    /// | `batch_optimal` | `b ≥ 1` (default [`DEFAULT_BATCH`]) |
    /// | `auction` | `0 ≤ gap_ppm ≤ 10⁶` (default [`DEFAULT_GAP_PPM`]) |
    /// | `shift` | `w ≥ 0`, the grid width (default `0`: square grid) |
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for an unknown matcher name, an option the matcher does not take
    /// (the message lists the ones it does), an option given twice, or a value out of range.
    ///
    /// # Example
    /// ```
    /// use semrsm::matching::Matcher;
    /// let m = Matcher::from_name("batch_optimal", &[("b".to_string(), 128)]).unwrap();
    /// assert_eq!(m, Matcher::BatchOptimal { b: 128 });
    /// assert!(Matcher::from_name("batch_optimal", &[("b".to_string(), 0)]).is_err());
    /// ```
    pub fn from_name(name: &str, options: &[(String, i64)]) -> Result<Self> {
        let specs = option_specs(name).ok_or_else(|| {
            Error::InvalidOption(format!(
                "unknown matcher {name:?}; choose one of {}",
                Self::NAMES.join(", ")
            ))
        })?;
        let values = parse_options(name, specs, options)?;
        // Values are range-checked above; the conversions below cannot fail on 64-bit targets and
        // saturate otherwise (a k or b beyond usize::MAX means "all positions").
        let as_usize = |v: i64| usize::try_from(v).unwrap_or(usize::MAX);
        Ok(match name {
            "none" => Self::None,
            "exact" => Self::Exact,
            "greedy" => Self::Greedy,
            "topk_greedy" => Self::TopkGreedy {
                k: as_usize(values[0]),
            },
            "batch_optimal" => Self::BatchOptimal {
                b: as_usize(values[0]),
            },
            "shift" => Self::Shift {
                w: as_usize(values[0]),
            },
            _ => Self::Auction {
                gap_ppm: u32::try_from(values[0]).unwrap_or(u32::MAX),
            },
        })
    }

    /// Names of the options the matcher called `name` takes (empty for none), `None` for an
    /// unknown name.
    ///
    /// # Example
    /// ```
    /// use semrsm::matching::Matcher;
    /// assert_eq!(Matcher::option_names("batch_optimal"), Some(vec!["b"]));
    /// assert_eq!(Matcher::option_names("exact"), Some(vec![]));
    /// assert_eq!(Matcher::option_names("nope"), None);
    /// ```
    #[must_use]
    pub fn option_names(name: &str) -> Option<Vec<&'static str>> {
        option_specs(name).map(|specs| specs.iter().map(|s| s.name).collect())
    }

    /// The matcher's name, as accepted by [`Matcher::from_name`].
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Exact => "exact",
            Self::Greedy => "greedy",
            Self::TopkGreedy { .. } => "topk_greedy",
            Self::BatchOptimal { .. } => "batch_optimal",
            Self::Auction { .. } => "auction",
            Self::Shift { .. } => "shift",
        }
    }

    /// Whether the matcher is the exact one for pairs of `s` positions ([`Matcher::Exact`], and
    /// the paper's approximations with `k ≥ s` or `b ≥ s`).
    #[must_use]
    pub fn is_exact_for(&self, s: usize) -> bool {
        match *self {
            Self::Exact => true,
            Self::TopkGreedy { k } => k >= s,
            Self::BatchOptimal { b } => b >= s,
            _ => false,
        }
    }

    /// Whether [`Matcher::assign`] reads the affinity (it does not for [`Matcher::None`]).
    #[must_use]
    pub fn needs_affinity(&self) -> bool {
        !matches!(self, Self::None)
    }

    /// Whether the matcher needs the per-position norms of [`Affinity`]: the paper's
    /// approximations order positions by norm. ([`Matcher::Auction`] only uses them to fix the
    /// order of its first bids, for permutation invariance; with equal norms it bids in index
    /// order.)
    #[must_use]
    pub fn uses_norms(&self) -> bool {
        matches!(
            self,
            Self::Greedy | Self::TopkGreedy { .. } | Self::BatchOptimal { .. }
        )
    }

    /// Write into `perm` (length `S`) the permutation this matcher picks for the pair.
    ///
    /// # Errors
    /// [`Error::Shape`] if `perm.len() != S`; errors of the LAP solver (non-finite affinities,
    /// which validated inputs never contain).
    pub fn assign<T: Cost>(
        &self,
        affinity: &Affinity<'_, T>,
        workspace: &mut Workspace,
        perm: &mut [usize],
    ) -> Result<()> {
        self.assign_cancellable(affinity, workspace, perm, &NEVER_CANCELLED)
    }

    /// [`Matcher::assign`] that stops with [`Error::Interrupted`] soon after `cancel` is set: the
    /// exact solves poll it once per augmenting search, the auction every 256 bids.
    ///
    /// # Errors
    /// As [`Matcher::assign`], and [`Error::Interrupted`].
    pub fn assign_cancellable<T: Cost>(
        &self,
        affinity: &Affinity<'_, T>,
        workspace: &mut Workspace,
        perm: &mut [usize],
        cancel: &AtomicBool,
    ) -> Result<()> {
        check_perm(affinity, perm)?;
        check_cancel(cancel)?;
        match *self {
            Self::None => identity(perm),
            Self::Exact => exact(affinity, &mut workspace.solver, perm, cancel)?,
            Self::Greedy => greedy::greedy(affinity, workspace, perm),
            Self::TopkGreedy { k } => topk::topk_greedy(affinity, k, workspace, perm, cancel)?,
            Self::BatchOptimal { b } => {
                batch::batch_optimal(affinity, b, workspace, perm, cancel)?;
            }
            Self::Auction { gap_ppm } => {
                certified_auction(affinity, gap(gap_ppm), workspace, perm, cancel)?;
            }
            Self::Shift { w } => shift::best_shift(affinity, w, &mut workspace.scores, perm)?,
        }
        Ok(())
    }

    /// [`Matcher::assign`], and return a certified upper bound on the *exact* matched inner
    /// product `max_P Σ_s A[s, P(s)]` of this pair.
    ///
    /// The bound is `Σ_i u_i + Σ_j v_j` for a feasible dual (`u_i + v_j ≥ A_ij` for all `i, j`),
    /// which weak LP duality makes at least the optimum ([`bound`] has the construction and
    /// proof). It is never below the value of the returned permutation, and:
    /// - [`Matcher::Exact`] (and `topk_greedy` with `k ≥ S`, `batch_optimal` with `b ≥ S`, which
    ///   are exact): the solver's optimal column duals completed over `A` (two passes), so the
    ///   bound equals the optimum up to rounding; should that not be tight to rounding, the dual
    ///   is rebuilt from the optimal permutation (relative `~S²·1e-16`; cost `O(S·r)` for `r` row
    ///   relaxations, `r ≤ S·(S+1)`, in practice a few `S`);
    /// - [`Matcher::Auction`]: the dual of its own final prices, at no extra cost; within the
    ///   target gap of the matcher's value;
    /// - every other matcher: the dual of an auction run to a 1 % gap ([`BOUND_GAP_PPM`]) beside
    ///   the matcher (the cost of [`Matcher::Auction`] itself).
    ///
    /// # Errors
    /// As [`Matcher::assign`].
    pub fn assign_with_bound<T: Cost>(
        &self,
        affinity: &Affinity<'_, T>,
        workspace: &mut Workspace,
        perm: &mut [usize],
    ) -> Result<f64> {
        self.assign_with_bound_cancellable(affinity, workspace, perm, &NEVER_CANCELLED)
    }

    /// [`Matcher::assign_with_bound`] that stops with [`Error::Interrupted`] soon after `cancel`
    /// is set (see [`Matcher::assign_cancellable`]).
    ///
    /// # Errors
    /// As [`Matcher::assign`], and [`Error::Interrupted`].
    pub fn assign_with_bound_cancellable<T: Cost>(
        &self,
        affinity: &Affinity<'_, T>,
        workspace: &mut Workspace,
        perm: &mut [usize],
        cancel: &AtomicBool,
    ) -> Result<f64> {
        check_perm(affinity, perm)?;
        let s = affinity.size();
        let dual = match *self {
            // k ≥ S and b ≥ S run the exact solver on the whole pair: certify it like Exact.
            _ if self.is_exact_for(s) => exact_with_bound(affinity, workspace, perm, cancel)?,
            Self::Auction { gap_ppm } => {
                certified_auction(affinity, gap(gap_ppm), workspace, perm, cancel)?
            }
            _ => {
                self.assign_cancellable(affinity, workspace, perm, cancel)?;
                dual_beside(workspace, affinity.size(), |state, scratch, target| {
                    auction::auction(affinity, target, state, scratch, cancel)
                })
            }
        };
        check_cancel(cancel)?;
        // Mathematically dual ≥ optimum ≥ value; keep that order under rounding too.
        Ok(dual.max(matched_sum(affinity.values(), affinity.size(), perm)))
    }
}

/// An approximate matcher (not [`Matcher::is_exact_for`] the pair, not [`Matcher::None`] or
/// [`Matcher::Shift`]) on the `f32` affinity `A32` of a pair whose exact affinity `Â` is `f64`
/// (mixed precision inside `gram`, [`mixed`]), first step: the permutation chosen on `A32` (into
/// `perm`), and the dual of an auction on `A32` — the auction's own, or with `with_bound` for
/// the other matchers one run to [`BOUND_GAP_PPM`] beside them — or NaN where none ran. The
/// caller then re-scores `perm` in `f64` ([`mixed::rescore`], or [`mixed::rescore_pairs`] for a
/// block of pairs at once) and finishes with [`finish_f32`]. The bids use the 16-bit copy of
/// `A32` from [`auction::QUANTISED_FROM`] positions on, as the `f64` run does
/// (`auction::auction_quantised_f32`).
///
/// # Errors
/// As [`Matcher::assign`], and [`Error::Interrupted`].
pub fn choose_f32(
    matcher: Matcher,
    affinity: &Affinity<'_, f32>,
    with_bound: bool,
    workspace: &mut Workspace,
    perm: &mut [usize],
    cancel: &AtomicBool,
) -> Result<f64> {
    check_perm(affinity, perm)?;
    check_cancel(cancel)?;
    let dual = if let Matcher::Auction { gap_ppm } = matcher {
        auction::auction_quantised_f32(affinity, gap(gap_ppm), &mut workspace.auction, perm, cancel)
    } else {
        matcher.assign_cancellable(affinity, workspace, perm, cancel)?;
        if !with_bound {
            return Ok(f64::NAN);
        }
        dual_beside(workspace, affinity.size(), |state, scratch, target| {
            auction::auction_quantised_f32(affinity, target, state, scratch, cancel)
        })
    };
    check_cancel(cancel)?;
    Ok(dual)
}

/// The dual of an auction (`run`, given the workspace's auction state, a scratch permutation
/// of `s` positions and the target gap) run to [`BOUND_GAP_PPM`] beside a matcher that has no
/// dual of its own: its permutation is left alone, only the dual is kept.
fn dual_beside(
    workspace: &mut Workspace,
    s: usize,
    run: impl FnOnce(&mut auction::AuctionState, &mut [usize], f64) -> f64,
) -> f64 {
    let mut scratch = std::mem::take(&mut workspace.scratch_perm);
    scratch.resize(s, 0);
    let dual = run(&mut workspace.auction, &mut scratch, gap(BOUND_GAP_PPM));
    workspace.scratch_perm = scratch;
    dual
}

/// The second step of [`choose_f32`]: from the `f64` value of the chosen permutation, the `f32`
/// dual and `slack` ([`mixed::row_error_sum`], `Σ_i max_j |A32_ij − Â_ij|` bounded), the value
/// and, with `with_bound` (else NaN), a bound on the `f64` optimum: the dual plus `slack`.
///
/// The auction is held to its target against that `f64` bound and value; where it misses it,
/// this returns `None` and the caller solves the pair exactly in `f64`, as
/// [`Matcher::Auction`] does when it misses its target.
#[must_use]
pub fn finish_f32(
    matcher: Matcher,
    value: f64,
    dual: f64,
    slack: f64,
    with_bound: bool,
) -> Option<(f64, f64)> {
    let bound = dual + slack;
    if let Matcher::Auction { gap_ppm } = matcher {
        if !within_gap(value, bound, gap(gap_ppm)) {
            return None;
        }
    }
    Some((
        value,
        if with_bound {
            bound.max(value)
        } else {
            f64::NAN
        },
    ))
}

/// The auction, held to its target: when it stops above `gap` (out of bids, or `ε` at its
/// floor, seen with affinities spanning 10^±60), the pair is solved exactly instead and the
/// tighter of the two certificates returned. Either way the result is a valid upper bound, and
/// within `gap` of the value unless rounding alone exceeds it (`gap = 0`, or a value near 0).
fn certified_auction<T: Cost>(
    affinity: &Affinity<'_, T>,
    gap: f64,
    workspace: &mut Workspace,
    perm: &mut [usize],
    cancel: &AtomicBool,
) -> Result<f64> {
    let dual = auction::auction(affinity, gap, &mut workspace.auction, perm, cancel);
    check_cancel(cancel)?;
    let value = matched_sum(affinity.values(), affinity.size(), perm);
    if within_gap(value, dual, gap) {
        return Ok(dual);
    }
    let exact_bound = exact_with_bound(affinity, workspace, perm, cancel)?;
    check_cancel(cancel)?;
    Ok(exact_bound.min(dual))
}

/// The exact permutation and its bound, equal to the optimum up to rounding. First from the
/// solver's own optimal column duals completed over `A` ([`bound::tighten`], two passes: valid for
/// any duals, whatever the solver did); only if that is not tight to rounding (relative
/// `S·1e-13`), from the optimal permutation alone ([`bound::from_optimal_permutation`], which
/// costs about as much as the solve at large `S`), keeping the lower of the two.
fn exact_with_bound<T: Cost>(
    affinity: &Affinity<'_, T>,
    workspace: &mut Workspace,
    perm: &mut [usize],
    cancel: &AtomicBool,
) -> Result<f64> {
    exact(affinity, &mut workspace.solver, perm, cancel)?;
    let s = affinity.size();
    // Maximisation runs on −A: the prices of A are −v.
    let mut prices = std::mem::take(&mut workspace.scores);
    prices.clear();
    prices.extend(workspace.solver.column_duals()[..s].iter().map(|&v| -v));
    let from_duals = bound::tighten(affinity, &prices, &mut workspace.dual);
    workspace.scores = prices;
    let value = matched_sum(affinity.values(), s, perm);
    #[allow(clippy::cast_precision_loss)]
    let rounding = 1e-13 * s as f64 * value.abs().max(from_duals.abs());
    if from_duals - value <= rounding {
        return Ok(from_duals);
    }
    let rebuilt = bound::from_optimal_permutation(affinity, perm, &mut workspace.dual, cancel);
    Ok(rebuilt.min(from_duals))
}

/// Whether `bound − value ≤ gap · min(|value|, |bound|)`: the relative gap `semrsm.certified_gap`
/// reports (relative to `|bound|`) and the one relative to `|value|` are both within `gap`.
pub(crate) fn within_gap(value: f64, bound: f64, gap: f64) -> bool {
    bound - value <= gap * value.abs().min(bound.abs())
}

fn gap(gap_ppm: u32) -> f64 {
    f64::from(gap_ppm) * 1e-6
}

fn check_perm<T: Cost>(affinity: &Affinity<'_, T>, perm: &[usize]) -> Result<()> {
    if perm.len() != affinity.size() {
        return Err(Error::Shape(format!(
            "internal: permutation buffer has length {}, expected {}",
            perm.len(),
            affinity.size()
        )));
    }
    Ok(())
}

/// The options the matcher called `name` takes; `None` for an unknown matcher.
fn option_specs(name: &str) -> Option<&'static [OptionSpec]> {
    Some(match name {
        "none" | "exact" | "greedy" => &[],
        "topk_greedy" => TOPK_OPTIONS,
        "batch_optimal" => BATCH_OPTIONS,
        "auction" => AUCTION_OPTIONS,
        "shift" => SHIFT_OPTIONS,
        _ => return None,
    })
}

/// Check `options` against `specs` and return one value per spec (the default where absent).
fn parse_options(name: &str, specs: &[OptionSpec], options: &[(String, i64)]) -> Result<Vec<i64>> {
    let describe = || {
        if specs.is_empty() {
            format!("matcher {name:?} takes no options")
        } else {
            let list: Vec<String> = specs
                .iter()
                .map(|s| {
                    let range = if s.max == i64::MAX {
                        format!("integer >= {}", s.min)
                    } else {
                        format!("integer {}..={}", s.min, s.max)
                    };
                    format!("{} ({}, {range}, default {})", s.name, s.meaning, s.default)
                })
                .collect();
            format!("matcher {name:?} takes {}", list.join(", "))
        }
    };
    let mut values: Vec<Option<i64>> = vec![None; specs.len()];
    for (option, value) in options {
        let Some(k) = specs.iter().position(|s| s.name == option) else {
            let got = if specs.is_empty() {
                "got"
            } else {
                "got unknown option"
            };
            return Err(Error::InvalidOption(format!(
                "{}, {got} {option:?}",
                describe()
            )));
        };
        if values[k].is_some() {
            return Err(Error::InvalidOption(format!(
                "option {option:?} of matcher {name:?} given twice"
            )));
        }
        let spec = &specs[k];
        if *value < spec.min || *value > spec.max {
            return Err(Error::InvalidOption(format!(
                "option {option}={value} is out of range; {}",
                describe()
            )));
        }
        values[k] = Some(*value);
    }
    Ok(values
        .iter()
        .zip(specs)
        .map(|(v, s)| v.unwrap_or(s.default))
        .collect())
}

/// One pair's matching problem: the `S × S` affinity `A = x yᵀ` (row-major) and the L2 norm of
/// every position of `x` (rows) and `y` (columns).
///
/// Norms are computed once per sample by the caller ([`crate::rsm::gram`] does so while
/// validating its input), not once per pair.
#[derive(Debug, Clone, Copy)]
pub struct Affinity<'a, T> {
    values: &'a [T],
    s: usize,
    norms_x: &'a [f64],
    norms_y: &'a [f64],
}

impl<'a, T: Cost> Affinity<'a, T> {
    /// Wrap a row-major `s × s` affinity and the norms of its rows and columns.
    ///
    /// # Errors
    /// [`Error::Shape`] if `values.len() != s²` or a norm slice does not have length `s`.
    pub fn new(values: &'a [T], s: usize, norms_x: &'a [f64], norms_y: &'a [f64]) -> Result<Self> {
        if s.checked_mul(s) != Some(values.len()) {
            return Err(Error::Shape(format!(
                "an affinity of {s} x {s} positions needs {} entries, got {}",
                s.saturating_mul(s),
                values.len()
            )));
        }
        for (what, norms) in [("norms_x", norms_x), ("norms_y", norms_y)] {
            if norms.len() != s {
                return Err(Error::Shape(format!(
                    "{what} must have one norm per position ({s}), got {}",
                    norms.len()
                )));
            }
        }
        Ok(Self {
            values,
            s,
            norms_x,
            norms_y,
        })
    }

    /// `S`, the number of positions.
    #[must_use]
    pub fn size(&self) -> usize {
        self.s
    }

    /// The row-major `S × S` entries.
    #[must_use]
    pub fn values(&self) -> &'a [T] {
        self.values
    }

    /// Row `i`: the affinities of position `i` of `x` to every position of `y`.
    #[must_use]
    pub fn row(&self, i: usize) -> &'a [T] {
        &self.values[i * self.s..(i + 1) * self.s]
    }

    /// `A[i, j]` widened to `f64`.
    #[must_use]
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.values[i * self.s + j].to_f64()
    }

    /// Norms of the positions of `x`.
    #[must_use]
    pub fn norms_x(&self) -> &'a [f64] {
        self.norms_x
    }

    /// Norms of the positions of `y`.
    #[must_use]
    pub fn norms_y(&self) -> &'a [f64] {
        self.norms_y
    }
}

/// Per-thread scratch space of the matchers (solver, block and auction buffers), reused across
/// pairs so that a pair allocates nothing once the buffers have grown.
#[derive(Debug, Default, Clone)]
pub struct Workspace {
    solver: SapSolver,
    /// Contiguous copy of an exact sub-problem (top-k block, batch).
    block: Vec<f64>,
    /// Positions of `x` and `y` in matching order.
    order_x: Vec<usize>,
    order_y: Vec<usize>,
    /// Columns still free (greedy).
    free: Vec<usize>,
    auction: auction::AuctionState,
    /// Dual variables of the bound.
    dual: bound::DualBuffers,
    scratch_perm: Vec<usize>,
    /// Score of every shift ([`Matcher::Shift`]).
    scores: Vec<f64>,
    /// Buffers of the mixed-precision exact matcher ([`mixed::solve_certified`]).
    mixed: mixed::MixedBuffers,
}

impl Workspace {
    /// Reserve, fallibly, the large (`O(S²)`) buffers `matcher` uses on pairs of `s` positions,
    /// so that matching allocates nothing big later (and running out of memory is an error, not
    /// an abort).
    ///
    /// # Errors
    /// [`std::collections::TryReserveError`] if an allocation fails (or its size overflows).
    pub fn try_reserve(
        &mut self,
        s: usize,
        matcher: Matcher,
    ) -> std::result::Result<(), std::collections::TryReserveError> {
        let block = match matcher {
            Matcher::TopkGreedy { k } => k.min(s),
            Matcher::BatchOptimal { b } => b.min(s),
            Matcher::Exact => s,
            _ => 0,
        };
        if matches!(
            matcher,
            Matcher::TopkGreedy { .. } | Matcher::BatchOptimal { .. }
        ) {
            // saturating: an overflowing size fails as a capacity overflow
            self.block.try_reserve_exact(block.saturating_mul(block))?;
        }
        self.solver.try_reserve(block)?;
        self.auction.try_reserve(s)
    }

    /// [`Workspace::try_reserve`] for [`mixed::solve_certified`] on pairs of `s` positions: the
    /// solver's warm-start copy.
    ///
    /// # Errors
    /// [`std::collections::TryReserveError`] if an allocation fails.
    pub fn try_reserve_mixed(
        &mut self,
        s: usize,
    ) -> std::result::Result<(), std::collections::TryReserveError> {
        self.solver.try_reserve(s)
    }
}

/// The workspace [`match_affinity`] keeps between calls (taken while in use; a concurrent call
/// makes its own).
static SHARED_WORKSPACE: std::sync::Mutex<Option<Workspace>> = std::sync::Mutex::new(None);

/// Result of [`match_affinity`].
#[derive(Debug, Clone, PartialEq)]
pub struct Matched {
    /// `perm[s]`: the position of `y` matched to position `s` of `x`.
    pub perm: Vec<usize>,
    /// `Σ_s A[s, perm[s]]` ([`matched_sum`]).
    pub value: f64,
    /// With `with_bound`: the certified upper bound of [`Matcher::assign_with_bound`].
    pub bound: Option<f64>,
}

/// Match one pair given its affinity matrix and per-position norms (validated here).
///
/// This is the per-pair entry point behind `semrsm.match_affinity` (benchmarks time matchers with
/// it, apart from the affinity). Complexity: the matcher's. One [`Workspace`] is kept between
/// calls (its buffers grow to the largest problem seen: about `4·S²` bytes for the auction at
/// large `S`, `6·S²` reserved from `S = 2048`), as the pairwise fill keeps one per thread between pairs.
///
/// # Errors
/// [`Error::Shape`] for a non-square affinity or norms of the wrong length, [`Error::Empty`] for
/// `S = 0`, [`Error::NonFinite`] / [`Error::Range`] for NaN, infinite or huge entries (in the
/// affinity or the norms).
///
/// # Example
/// ```
/// use ndarray::array;
/// use semrsm::matching::{match_affinity, Matcher};
/// let a = array![[1.0, 3.0], [2.0, 1.0]];
/// let m = match_affinity(a.view(), &[1.0, 1.0], &[1.0, 1.0], Matcher::Exact, true).unwrap();
/// assert_eq!(m.perm, vec![1, 0]);
/// assert_eq!((m.value, m.bound), (5.0, Some(5.0)));
/// ```
pub fn match_affinity<T: Cost>(
    affinity: ArrayView2<'_, T>,
    norms_x: &[f64],
    norms_y: &[f64],
    matcher: Matcher,
    with_bound: bool,
) -> Result<Matched> {
    match_affinity_cancellable(
        affinity,
        norms_x,
        norms_y,
        matcher,
        with_bound,
        &NEVER_CANCELLED,
    )
}

/// [`match_affinity`] that stops with [`Error::Interrupted`] soon after `cancel` is set (see
/// [`Matcher::assign_cancellable`]).
///
/// # Errors
/// As [`match_affinity`], and [`Error::Interrupted`].
pub fn match_affinity_cancellable<T: Cost>(
    affinity: ArrayView2<'_, T>,
    norms_x: &[f64],
    norms_y: &[f64],
    matcher: Matcher,
    with_bound: bool,
    cancel: &AtomicBool,
) -> Result<Matched> {
    let (n, m) = affinity.dim();
    if n != m {
        return Err(Error::Shape(format!(
            "the affinity must be square (S x S), got {n} x {m}"
        )));
    }
    if n == 0 {
        return Err(Error::Empty {
            what: "affinity",
            detail: "shape (0, 0); at least one position is needed".into(),
        });
    }
    validate_costs(&affinity, "affinity")?;
    for (what, norms) in [("norms_x", norms_x), ("norms_y", norms_y)] {
        if let Some((k, &v)) = norms.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                what,
                index: vec![k],
                value: v,
            });
        }
    }
    let standard = affinity.as_standard_layout();
    let values = standard
        .as_slice()
        .ok_or_else(|| Error::Shape("internal: affinity layout".into()))?;
    let problem = Affinity::new(values, n, norms_x, norms_y)?;
    // Reuse one workspace between calls, as the pairwise fill does between pairs, so that a
    // per-pair timing does not measure page faults of fresh buffers.
    let mut workspace = SHARED_WORKSPACE
        .lock()
        .ok()
        .and_then(|mut w| w.take())
        .unwrap_or_default();
    let mut perm = vec![0; n];
    let bound = if with_bound {
        matcher
            .assign_with_bound_cancellable(&problem, &mut workspace, &mut perm, cancel)
            .map(Some)
    } else {
        matcher
            .assign_cancellable(&problem, &mut workspace, &mut perm, cancel)
            .map(|()| None)
    };
    if let Ok(mut shared) = SHARED_WORKSPACE.lock() {
        *shared = Some(workspace);
    }
    let bound = bound?;
    let value = matched_sum(values, n, &perm);
    Ok(Matched { perm, value, bound })
}

/// `Σ_s A[s, perm[s]]` in `f64`, summed in order of `s` (deterministic).
#[must_use]
pub fn matched_sum<T: Cost>(affinity: &[T], s: usize, perm: &[usize]) -> f64 {
    perm.iter()
        .enumerate()
        .map(|(r, &c)| affinity[r * s + c].to_f64())
        .sum()
}

fn identity(perm: &mut [usize]) {
    for (k, p) in perm.iter_mut().enumerate() {
        *p = k;
    }
}

/// The exact LAP on the whole affinity.
fn exact<T: Cost>(
    affinity: &Affinity<'_, T>,
    solver: &mut SapSolver,
    perm: &mut [usize],
    cancel: &AtomicBool,
) -> Result<()> {
    let s = affinity.size();
    let col4row = solver.solve_cancellable(affinity.values(), s, s, Sense::Maximize, cancel)?;
    perm.copy_from_slice(col4row);
    Ok(())
}

/// Positions in descending order of norm, ties by ascending index (the matching order of the
/// norm-based matchers; deterministic, and equivariant under permutations of distinct norms).
pub(crate) fn descending_norm_order(norms: &[f64], order: &mut Vec<usize>) {
    order.clear();
    order.extend(0..norms.len());
    order.sort_unstable_by(|&a, &b| norms[b].total_cmp(&norms[a]).then(a.cmp(&b)));
}

/// Solve the exact LAP on the sub-matrix `A[rows, cols]` (`rows.len() == cols.len()`), copied
/// contiguously into `block`, and write the result into `perm` (`perm[rows[r]] = cols[c]`).
pub(crate) fn solve_block<T: Cost>(
    affinity: &Affinity<'_, T>,
    rows: &[usize],
    cols: &[usize],
    solver: &mut SapSolver,
    block: &mut Vec<f64>,
    perm: &mut [usize],
    cancel: &AtomicBool,
) -> Result<()> {
    let n = rows.len();
    block.clear();
    block.reserve(n * n);
    for &r in rows {
        let row = affinity.row(r);
        block.extend(cols.iter().map(|&c| row[c].to_f64()));
    }
    let col4row = solver.solve_cancellable(block.as_slice(), n, n, Sense::Maximize, cancel)?;
    for (&r, &c) in rows.iter().zip(col4row) {
        perm[r] = cols[c];
    }
    Ok(())
}
