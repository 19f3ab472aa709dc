//! The thread pools of the pairwise fill: one per thread count, per process.
//!
//! rayon's global pool is never used. A process started by `fork` (Python's `multiprocessing`
//! on Linux, a PyTorch `DataLoader` with workers, joblib) inherits the parent's memory but not
//! its threads, so a pool built before the fork has no workers in the child and any work sent to
//! it waits forever. Each pool here is tagged with the id of the process that built it; a child
//! finds a foreign tag, builds its own pool and leaves the inherited one alone (it is leaked, a
//! few hundred bytes per fork: dropping it would signal threads that do not exist).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};

type Pools = HashMap<usize, Arc<ThreadPool>>;

/// Pools of this process by thread count, and the id of the process they belong to.
static POOLS: Mutex<Option<(u32, Pools)>> = Mutex::new(None);

/// Threads used when the caller does not say: the machine's available parallelism.
#[must_use]
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The pool of `threads` workers (the default count for `None`) of the current process, built
/// on first use and reused afterwards.
///
/// # Errors
/// [`Error::InvalidOption`] for `Some(0)`, [`Error::ThreadPool`] if the operating system refuses
/// to start the threads.
pub fn pool(threads: Option<usize>) -> Result<Arc<ThreadPool>> {
    let n = match threads {
        Some(0) => {
            return Err(Error::InvalidOption(
                "threads must be at least 1 (or None for all cores)".into(),
            ))
        }
        Some(n) => n,
        None => default_threads(),
    };
    let pid = std::process::id();
    let mut guard = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
    if guard.as_ref().is_some_and(|(owner, _)| *owner != pid) {
        // Inherited through fork: its workers do not exist here.
        if let Some((_, inherited)) = guard.take() {
            std::mem::forget(inherited);
        }
    }
    let (_, pools) = guard.get_or_insert_with(|| (pid, HashMap::new()));
    if let Some(existing) = pools.get(&n) {
        return Ok(Arc::clone(existing));
    }
    let built = Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|k| format!("semrsm-{k}"))
            .build()
            .map_err(|e| Error::ThreadPool(e.to_string()))?,
    );
    pools.insert(n, Arc::clone(&built));
    Ok(built)
}
