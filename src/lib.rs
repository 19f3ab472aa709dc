//! # semrsm — semantic representational similarity matrices
//!
//! The Rust core of the `semrsm` Python package. A representation of one input is a set of `S`
//! spatial concept vectors of `C` channels. A *semantic* RSM compares two inputs after the spatial
//! permutation that maximises their inner product (a linear assignment problem on the `S × S`
//! affinity `A = x_i y_jᵀ`); a *spatio-semantic* RSM compares them position by position.
//!
//! The core computes the matched inner products `G[i, j] = max_P ⟨x_i, P y_j⟩` (and optionally the
//! permutations); kernels (linear, cosine, RBF) and CKA are derived from `G` in Python.
//!
//! - [`lap`]: exact linear sum assignment solvers.
//! - [`matching`]: how two samples are matched (`none`, `exact`, the paper's `greedy`,
//!   `topk_greedy`, `batch_optimal`, and the certified `auction`), and certified upper bounds.
//! - [`rsm`]: the parallel pairwise fill of `G`.
//! - [`kernels`]: the vector kernels and the one choice of instruction set (`SEMRSM_ISA`).
//! - [`error`]: the error type.
//!
//! The Python bindings live in `src/python/` behind the `python` feature; nothing else here knows
//! about Python.

pub mod error;
pub mod kernels;
pub mod lap;
pub mod matching;
pub mod rsm;

#[cfg(feature = "python")]
mod python;

pub use error::{Error, Result};
