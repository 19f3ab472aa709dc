//! The one error type of the core.
//!
//! Every fallible entry point returns [`Result<T>`]. The Python binding (`src/python/`) maps each
//! variant to a Python exception; nothing in the core panics on user data.

/// Everything that can go wrong in the core, each case carrying what the user needs to fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input had a shape the operation cannot use (wrong rank, mismatched dimensions).
    #[error("{0}")]
    Shape(String),

    /// An input had no elements where at least one is needed.
    #[error("{what} is empty: {detail}")]
    Empty {
        /// Which input.
        what: &'static str,
        /// Its shape, spelled out.
        detail: String,
    },

    /// An input held NaN or an infinity.
    #[error(
        "{what} contains a non-finite value ({value}) at index {}; semrsm needs finite numbers",
        format_index(.index)
    )]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Multi-index of the first offending element.
        index: Vec<usize>,
        /// The offending value.
        value: f64,
    },

    /// A finite input whose values span more than floating point can take differences of.
    #[error("values of {what} are too large ({detail}); rescale the data")]
    Range {
        /// Which input.
        what: &'static str,
        /// The extreme values found.
        detail: String,
    },

    /// A cost matrix entry that is neither finite nor the infinity that forbids an assignment:
    /// NaN, `−∞` when minimising or `+∞` when maximising. The message starts with scipy's.
    #[error(
        "matrix contains invalid numeric entries: {what} has {value} at index {}; entries must be \
         finite, or {} to forbid an assignment",
        format_index(.index),
        if *.forbidden > 0.0 { "+inf" } else { "-inf" }
    )]
    InvalidCost {
        /// Which input.
        what: &'static str,
        /// Multi-index of the first offending element.
        index: Vec<usize>,
        /// The offending value.
        value: f64,
        /// The infinity that marks a forbidden assignment in this problem (`+∞` or `−∞`).
        forbidden: f64,
    },

    /// No assignment avoids the forbidden (infinite) entries of a cost matrix. The message starts
    /// with scipy's.
    #[error("cost matrix is infeasible: {0}")]
    Infeasible(String),

    /// An option had a value that makes no sense (for instance `threads = 0`).
    #[error("{0}")]
    InvalidOption(String),

    /// The problem would need more memory than semrsm is willing to allocate.
    #[error("{0}")]
    TooLarge(String),

    /// The rayon thread pool could not be created.
    #[error("could not create a thread pool: {0}")]
    ThreadPool(String),

    /// The computation was cancelled through its cancellation flag (Ctrl-C from Python).
    #[error("interrupted")]
    Interrupted,
}

/// Shorthand for results of the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `(i, j, k)`, as numpy users write indices.
fn format_index(index: &[usize]) -> String {
    let parts: Vec<String> = index.iter().map(ToString::to_string).collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}
