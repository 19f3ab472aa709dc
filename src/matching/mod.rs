//! Matchers: how the spatial positions of two samples are put into correspondence.
//!
//! A matcher takes the affinity `A = x yᵀ` of two samples (`S × S`, row-major; rows are the
//! positions of `x`, columns those of `y`) and returns a permutation `perm` with `perm[s]` the
//! position of `y` matched to position `s` of `x`. The matched inner product is then
//! `G = Σ_s A[s, perm[s]]` ([`matched_sum`]).
//!
//! - [`Matcher::None`]: the identity, i.e. the classic *spatio-semantic* comparison
//!   `G = Σ_s ⟨x_s, y_s⟩`.
//! - [`Matcher::Exact`]: the permutation maximising `G`, by the exact LAP solver of
//!   [`crate::lap`] (`O(S³)` worst case per pair). Ties between equally good permutations are
//!   broken deterministically; `G` itself is unique.

use crate::error::{Error, Result};
use crate::lap::{Cost, SapSolver, Sense};

/// A way of matching the spatial positions of two samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Matcher {
    /// No matching: position `s` of `x` goes with position `s` of `y` (spatio-semantic RSM).
    None,
    /// Optimal matching: the permutation maximising the summed affinity (semantic RSM).
    Exact,
}

impl Matcher {
    /// Names accepted by [`Matcher::from_name`].
    pub const NAMES: &'static [&'static str] = &["none", "exact"];

    /// Look a matcher up by name, with its options as `(name, value)` pairs.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for an unknown matcher name or an option the matcher does not take.
    pub fn from_name(name: &str, options: &[(String, i64)]) -> Result<Self> {
        let matcher = match name {
            "none" => Self::None,
            "exact" => Self::Exact,
            other => {
                return Err(Error::InvalidOption(format!(
                    "unknown matcher {other:?}; choose one of {}",
                    Self::NAMES.join(", ")
                )))
            }
        };
        if let Some((option, _)) = options.first() {
            return Err(Error::InvalidOption(format!(
                "matcher {name:?} takes no options, got {option:?}"
            )));
        }
        Ok(matcher)
    }

    /// The matcher's name, as accepted by [`Matcher::from_name`].
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Exact => "exact",
        }
    }

    /// Whether [`Matcher::assign`] reads the affinity (it does not for [`Matcher::None`]).
    #[must_use]
    pub fn needs_affinity(&self) -> bool {
        !matches!(self, Self::None)
    }

    /// Write into `perm` (length `s`) the permutation this matcher picks for the `s × s` affinity.
    ///
    /// # Errors
    /// [`Error::Shape`] if `affinity.len() != s²` or `perm.len() != s` (for the matchers that read
    /// the affinity); errors of the LAP solver for non-finite affinities.
    pub fn assign<T: Cost>(
        &self,
        affinity: &[T],
        s: usize,
        workspace: &mut Workspace,
        perm: &mut [usize],
    ) -> Result<()> {
        if perm.len() != s {
            return Err(Error::Shape(format!(
                "internal: permutation buffer has length {}, expected {s}",
                perm.len()
            )));
        }
        match self {
            Self::None => {
                for (k, p) in perm.iter_mut().enumerate() {
                    *p = k;
                }
            }
            Self::Exact => {
                let col4row = workspace.solver.solve(affinity, s, s, Sense::Maximize)?;
                perm.copy_from_slice(col4row);
            }
        }
        Ok(())
    }
}

/// Per-thread scratch space of the matchers (solver buffers), reused across pairs.
#[derive(Debug, Default, Clone)]
pub struct Workspace {
    solver: SapSolver,
}

/// `Σ_s A[s, perm[s]]` in `f64`, summed in order of `s` (deterministic).
#[must_use]
pub fn matched_sum<T: Cost>(affinity: &[T], s: usize, perm: &[usize]) -> f64 {
    perm.iter()
        .enumerate()
        .map(|(r, &c)| affinity[r * s + c].to_f64())
        .sum()
}
