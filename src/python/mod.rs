//! The Python binding: the only module that knows about pyo3.
//!
//! Each wrapper extracts read-only numpy views, runs the core inside [`run_detached`] (which
//! releases the GIL and keeps Ctrl-C working), and converts the result with `into_pyarray`.
//! Core errors become Python exceptions in [`to_py_err`], one arm per variant.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArray3, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyReadonlyArray3,
};
use pyo3::create_exception;
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::error::Error;
use crate::lap::{self, Sense};
use crate::matching::{self, Matcher};
use crate::rsm::{self, GramOptions};

create_exception!(
    semrsm,
    SemrsmError,
    PyValueError,
    "Base class of the errors semrsm raises for bad input."
);
create_exception!(
    semrsm,
    ShapeError,
    SemrsmError,
    "An input has the wrong number of dimensions, mismatched or empty dimensions."
);
create_exception!(
    semrsm,
    NonFiniteError,
    SemrsmError,
    "An input contains NaN or infinity, or values too large to multiply safely."
);
create_exception!(
    semrsm,
    OptionError,
    SemrsmError,
    "An unknown kernel, matcher, layout or option, or an option value out of range."
);
create_exception!(
    semrsm,
    TooLargeError,
    SemrsmError,
    "The problem would need more memory than semrsm allows; see the message for the limit."
);

/// Map each core error to its Python exception (exhaustive on purpose: a new variant must be
/// placed here by hand).
fn to_py_err(error: Error) -> PyErr {
    let message = error.to_string();
    match error {
        Error::Shape(_) | Error::Empty { .. } => ShapeError::new_err(message),
        Error::NonFinite { .. } | Error::Range { .. } | Error::InvalidCost { .. } => {
            NonFiniteError::new_err(message)
        }
        Error::Infeasible(_) => SemrsmError::new_err(message),
        Error::InvalidOption(_) => OptionError::new_err(message),
        Error::TooLarge(_) => TooLargeError::new_err(message),
        Error::ThreadPool(_) => PyRuntimeError::new_err(message),
        Error::Interrupted => PyKeyboardInterrupt::new_err(message),
    }
}

/// How often the waiting Python thread looks for pending signals (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Run `work` on a helper thread with the GIL released; poll for signals meanwhile.
///
/// This is the one place that releases the GIL. On Ctrl-C (or any pending signal whose handler
/// raises), the cancellation flag handed to `work` is set, the helper is awaited (the core stops
/// at its next check) and the signal's exception is raised.
fn run_detached<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce(&AtomicBool) -> crate::Result<T> + Send,
{
    run_detached_with_progress(py, None, |cancel, _| work(cancel))
}

/// [`run_detached`] with a progress counter: `work` increments it, and every poll (50 ms) plus
/// once at the end, `report(delta)` is called with what was added since the last report (with
/// the GIL, never per pair). An exception raised by `report` cancels the work and is raised.
fn run_detached_with_progress<T, F>(
    py: Python<'_>,
    report: Option<&Bound<'_, PyAny>>,
    work: F,
) -> PyResult<T>
where
    T: Send,
    F: FnOnce(&AtomicBool, &AtomicU64) -> crate::Result<T> + Send,
{
    let cancel = AtomicBool::new(false);
    let counter = AtomicU64::new(0);
    let mut reported = 0_u64;
    let flush = |reported: &mut u64| -> PyResult<()> {
        let now = counter.load(Ordering::Relaxed);
        if let Some(report) = report {
            if now > *reported {
                report.call1((now - *reported,))?;
            }
        }
        *reported = now;
        Ok(())
    };
    std::thread::scope(|scope| {
        let (sender, mut receiver) = mpsc::channel();
        let flag = &cancel;
        let count = &counter;
        scope.spawn(move || {
            let outcome = catch_unwind(AssertUnwindSafe(|| work(flag, count)));
            let _ = sender.send(outcome);
        });
        loop {
            let (back, received) = py.detach(move || {
                let r = receiver.recv_timeout(SIGNAL_POLL);
                (receiver, r)
            });
            receiver = back;
            match received {
                Ok(Ok(result)) => {
                    let value = result.map_err(to_py_err)?;
                    flush(&mut reported)?;
                    return Ok(value);
                }
                Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => {
                    return Err(PyRuntimeError::new_err(
                        "semrsm internal error: a worker thread panicked; please report this",
                    ))
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(signal) = py.check_signals().and_then(|()| flush(&mut reported)) {
                        cancel.store(true, Ordering::Relaxed);
                        let _ = py.detach(move || receiver.recv());
                        return Err(signal);
                    }
                }
            }
        }
    })
}

/// Work of at most this many elementary steps (worst case) runs inline: no helper thread.
const INLINE_WORK: usize = 1 << 24;

/// [`run_detached`], except that small work (`worst_case_steps ≤ INLINE_WORK`, a few
/// milliseconds at most) runs on the calling thread with the GIL released: no helper thread is
/// spawned, which would cost more than a small solve. Ctrl-C during it is raised by Python as
/// soon as the call returns.
fn run_sized<T, F>(py: Python<'_>, worst_case_steps: usize, work: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce(&AtomicBool) -> crate::Result<T> + Send,
{
    if worst_case_steps > INLINE_WORK {
        return run_detached(py, work);
    }
    let outcome = py.detach(|| catch_unwind(AssertUnwindSafe(|| work(&AtomicBool::new(false)))));
    match outcome {
        Ok(result) => result.map_err(to_py_err),
        Err(_) => Err(PyRuntimeError::new_err(
            "semrsm internal error: a worker thread panicked; please report this",
        )),
    }
}

/// `G`, the permutations and the bounds, as returned to Python.
type GramResult<'py> = (
    Bound<'py, PyArray2<f64>>,
    Option<Bound<'py, PyArray3<i64>>>,
    Option<Bound<'py, PyArray2<f64>>>,
);

fn parse_matcher(name: &str, options: Option<BTreeMap<String, i64>>) -> PyResult<Matcher> {
    let options: Vec<(String, i64)> = options.unwrap_or_default().into_iter().collect();
    Matcher::from_name(name, &options).map_err(to_py_err)
}

/// An input block in the working precision.
#[derive(FromPyObject)]
enum Samples<'py> {
    F64(PyReadonlyArray3<'py, f64>),
    F32(PyReadonlyArray3<'py, f32>),
}

/// One tile of matched inner products (or the whole matrix as one tile); see `semrsm.gram` for
/// the documented Python API and `semrsm._tiles` for the tiling. `x` (and `y`) are float64 or
/// float32 `(n, S, C)` blocks, already centred; `y=None` is a diagonal tile. `progress`, if
/// given, is called with the number of pairs finished since its last call (every 50 ms).
#[pyfunction]
#[pyo3(signature = (x, y=None, *, matcher="exact", options=None, threads=None, return_permutations=false, return_bound=false, progress=None, prefix_tokens=0, mixed_precision=false))]
#[allow(clippy::too_many_arguments)]
fn gram<'py>(
    py: Python<'py>,
    x: Samples<'py>,
    y: Option<Samples<'py>>,
    matcher: &str,
    options: Option<BTreeMap<String, i64>>,
    threads: Option<usize>,
    return_permutations: bool,
    return_bound: bool,
    progress: Option<Bound<'py, PyAny>>,
    prefix_tokens: usize,
    mixed_precision: bool,
) -> PyResult<GramResult<'py>> {
    let matcher = parse_matcher(matcher, options)?;
    let opts = GramOptions {
        matcher,
        threads,
        return_permutations,
        return_bound,
        prefix_tokens,
        mixed_precision,
    };
    let out = match (&x, &y) {
        (Samples::F64(x), None) => {
            let xv = x.as_array();
            run_detached_with_progress(py, progress.as_ref(), |c, p| {
                rsm::gram_tile(xv, None, &opts, c, p)
            })
        }
        (Samples::F64(x), Some(Samples::F64(y))) => {
            let (xv, yv) = (x.as_array(), y.as_array());
            run_detached_with_progress(py, progress.as_ref(), |c, p| {
                rsm::gram_tile(xv, Some(yv), &opts, c, p)
            })
        }
        (Samples::F32(x), None) => {
            let xv = x.as_array();
            run_detached_with_progress(py, progress.as_ref(), |c, p| {
                rsm::gram_tile(xv, None, &opts, c, p)
            })
        }
        (Samples::F32(x), Some(Samples::F32(y))) => {
            let (xv, yv) = (x.as_array(), y.as_array());
            run_detached_with_progress(py, progress.as_ref(), |c, p| {
                rsm::gram_tile(xv, Some(yv), &opts, c, p)
            })
        }
        _ => Err(OptionError::new_err(
            "internal: x and y must have the same dtype (float64 or float32)",
        )),
    }?;
    Ok((
        out.values.into_pyarray(py),
        out.permutations.map(|p| p.into_pyarray(py)),
        out.bounds.map(|b| b.into_pyarray(py)),
    ))
}

/// `G` of `matcher="none"` straight from raw `(n, S, C)` blocks (float32 or float64, any
/// strides: a transposed view of `(N, C, H, W)` data is read as it is), centred by `mean`
/// (`(S, C)` float64) while they are widened; `precision` is "float64" or "float32" (the
/// working precision of the products); `y=None` is a diagonal tile; `options` are checked as
/// the matcher "none"'s (it takes none). See `rsm::none`.
#[pyfunction]
#[pyo3(signature = (x, y=None, *, mean=None, precision="float64", threads=None, progress=None, options=None))]
#[allow(clippy::too_many_arguments)]
fn gram_none<'py>(
    py: Python<'py>,
    x: Samples<'py>,
    y: Option<Samples<'py>>,
    mean: Option<PyReadonlyArray2<'py, f64>>,
    precision: &str,
    threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
    options: Option<BTreeMap<String, i64>>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    parse_matcher("none", options)?;
    use crate::rsm::none::{gram_none as none, RawElement};
    fn go<'py, R: RawElement + numpy::Element>(
        py: Python<'py>,
        x: &PyReadonlyArray3<'py, R>,
        y: Option<&PyReadonlyArray3<'py, R>>,
        mean: Option<&PyReadonlyArray2<'py, f64>>,
        single: bool,
        threads: Option<usize>,
        progress: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<ndarray::Array2<f64>> {
        let (xv, yv, mv) = (
            x.as_array(),
            y.map(|y| y.as_array()),
            mean.map(|m| m.as_array()),
        );
        run_detached_with_progress(py, progress, |c, p| {
            if single {
                none::<R, f32>(xv, yv, mv, threads, c, p)
            } else {
                none::<R, f64>(xv, yv, mv, threads, c, p)
            }
        })
    }
    let single = match precision {
        "float64" => false,
        "float32" => true,
        other => {
            return Err(OptionError::new_err(format!(
                "precision must be 'float64' or 'float32', got {other:?}"
            )))
        }
    };
    let (m, p) = (mean.as_ref(), progress.as_ref());
    let out = match (&x, &y) {
        (Samples::F64(x), None) => go(py, x, None, m, single, threads, p),
        (Samples::F64(x), Some(Samples::F64(y))) => go(py, x, Some(y), m, single, threads, p),
        (Samples::F32(x), None) => go(py, x, None, m, single, threads, p),
        (Samples::F32(x), Some(Samples::F32(y))) => go(py, x, Some(y), m, single, threads, p),
        _ => Err(OptionError::new_err(
            "internal: x and y must have the same dtype (float64 or float32)",
        )),
    }?;
    Ok(out.into_pyarray(py))
}

/// One block of the tile engine's streaming pass (`semrsm._tiles.scan`, see `rsm::scan`):
/// `rows` is `(r, d)` float32 or float64; with `acc` (`d` float64 entries, updated in place)
/// adds `rows[k] / n` for each row in order. Returns `(max |x| over finite values, all finite)`.
#[pyfunction]
#[pyo3(signature = (rows, acc=None, n=1.0, threads=None))]
fn scan_rows(
    py: Python<'_>,
    rows: &Bound<'_, PyAny>,
    acc: Option<numpy::PyReadwriteArray1<'_, f64>>,
    n: f64,
    threads: Option<usize>,
) -> PyResult<(f64, bool)> {
    use crate::rsm::scan::scan_rows as scan;
    let mut acc = acc;
    let mut view = acc.as_mut().map(|a| a.as_array_mut());
    let slice =
        match view.as_mut() {
            Some(v) => Some(v.as_slice_mut().ok_or_else(|| {
                OptionError::new_err("internal: the accumulator must be contiguous")
            })?),
            None => None,
        };
    let step = if let Ok(r) = rows.extract::<PyReadonlyArray2<'_, f32>>() {
        let r = r.as_array();
        run_detached(py, |_| scan(r, slice, n, threads))?
    } else {
        let r = rows.extract::<PyReadonlyArray2<'_, f64>>()?;
        let r = r.as_array();
        run_detached(py, |_| scan(r, slice, n, threads))?
    };
    Ok((step.max_abs, step.finite))
}

/// `f64(raw) − mean` for every row of `raw` (`(r, d)` float32 or float64, any strides; `mean`:
/// `d` float64) into a new C-ordered float64 array, in one vectorised pass
/// (`kernels::centre::centre`): the bits of numpy's float64 `raw − mean` (an exact widening and
/// one subtraction), without numpy's separate cast. The tile engine's centring
/// (`semrsm._tiles.Engine.block`).
#[pyfunction]
fn centre_rows<'py>(
    py: Python<'py>,
    raw: &Bound<'py, PyAny>,
    mean: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    fn go<'py, R: crate::rsm::none::RawElement + numpy::Element>(
        py: Python<'py>,
        raw: &PyReadonlyArray2<'py, R>,
        mean: &[f64],
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let raw = raw.as_array();
        let (r, d) = raw.dim();
        if mean.len() != d {
            return Err(ShapeError::new_err(format!(
                "internal: rows of {d} values and a mean of {}",
                mean.len()
            )));
        }
        // SAFETY: the array is new and not yet visible to Python; every row is written below.
        let out = unsafe { PyArray2::<f64>::new(py, [r, d], false) };
        // SAFETY: nothing else references the new array while the view lives.
        let mut o = unsafe { out.as_array_mut() };
        let isa = crate::kernels::isa();
        py.detach(|| {
            for (src, mut dst) in raw.outer_iter().zip(o.outer_iter_mut()) {
                let Some(dst) = dst.as_slice_mut() else {
                    continue; // (never: a new C-ordered array)
                };
                match src.as_slice() {
                    Some(src) => crate::kernels::centre::centre(isa, src, Some(mean), dst),
                    None => crate::kernels::centre::centre(isa, &src.to_vec(), Some(mean), dst),
                }
            }
        });
        Ok(out)
    }
    let mean = mean.as_array();
    let owned;
    let mean = match mean.as_slice() {
        Some(m) => m,
        None => {
            owned = mean.to_vec();
            &owned[..]
        }
    };
    if let Ok(r) = raw.extract::<PyReadonlyArray2<'py, f32>>() {
        go(py, &r, mean)
    } else {
        go(py, &raw.extract::<PyReadonlyArray2<'py, f64>>()?, mean)
    }
}

/// Process-wide counters of the mixed-precision exact matcher
/// (`semrsm::matching::mixed::counters`): `(pairs, certified, widened, repaired, candidates,
/// approximate, approximate_exact)`; the last two count the approximate matchers' pairs matched
/// on `f32` affinities and those of them solved exactly in `f64` instead.
#[pyfunction]
fn mixed_counters() -> (u64, u64, u64, u64, u64, u64, u64) {
    let c = matching::mixed::counters();
    (
        c.pairs,
        c.certified,
        c.widened,
        c.repaired,
        c.candidates,
        c.approximate,
        c.approximate_exact,
    )
}

/// Bytes of per-thread scratch of the pairwise fill (`semrsm.rsm::scratch_bytes`), for the
/// memory estimate made before a run; without affinities, the scratch of one call on a tile of
/// at most `rows` rows and columns (`rsm::none::scratch_bytes`, shared by its threads); with
/// `shift` (the shift matcher without bounds), `rsm::shift_scratch_bytes`.
#[pyfunction]
#[pyo3(signature = (s, c, elem_bytes, needs_affinity, rows=None, shift=false))]
fn scratch_bytes(
    s: usize,
    c: usize,
    elem_bytes: usize,
    needs_affinity: bool,
    rows: Option<usize>,
    shift: bool,
) -> usize {
    match rows {
        Some(rows) if !needs_affinity => rsm::none::scratch_bytes(s, c, elem_bytes, rows),
        _ if shift && needs_affinity => rsm::shift_scratch_bytes(s, c, elem_bytes),
        _ => rsm::scratch_bytes(s, c, elem_bytes, needs_affinity),
    }
}

/// One pair from its affinity: `(perm, value, bound or None)`; see `semrsm.match_affinity`.
#[pyfunction]
#[pyo3(signature = (affinity, norms_x, norms_y, *, matcher="exact", options=None, return_bound=false))]
#[allow(clippy::type_complexity)]
fn match_affinity<'py>(
    py: Python<'py>,
    affinity: PyReadonlyArray2<'py, f64>,
    norms_x: PyReadonlyArray1<'py, f64>,
    norms_y: PyReadonlyArray1<'py, f64>,
    matcher: &str,
    options: Option<BTreeMap<String, i64>>,
    return_bound: bool,
) -> PyResult<(Bound<'py, PyArray1<i64>>, f64, Option<f64>)> {
    let matcher = parse_matcher(matcher, options)?;
    let a = affinity.as_array();
    let nx = norms_x.as_array();
    let ny = norms_y.as_array();
    let s = a.nrows();
    let steps = s.saturating_mul(s).saturating_mul(s);
    let out = run_sized(py, steps, |cancel| {
        let nx = nx.as_standard_layout();
        let ny = ny.as_standard_layout();
        let (nx, ny) = match (nx.as_slice(), ny.as_slice()) {
            (Some(nx), Some(ny)) => (nx, ny),
            _ => return Err(Error::Shape("internal: norms layout".into())),
        };
        matching::match_affinity_cancellable(a, nx, ny, matcher, return_bound, cancel)
    })?;
    let perm: Vec<i64> = out.perm.into_iter().map(|k| k as i64).collect();
    Ok((perm.into_pyarray(py), out.value, out.bound))
}

/// `(row_ind, col_ind, objective)` as returned to Python.
type LsaResult<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>, f64);

fn solve_lsa<'py, T: lap::Cost + numpy::Element>(
    py: Python<'py>,
    cost: &PyReadonlyArray2<'py, T>,
    maximize: bool,
) -> PyResult<LsaResult<'py>> {
    let sense = if maximize {
        Sense::Maximize
    } else {
        Sense::Minimize
    };
    let view = cost.as_array();
    let (n, m) = view.dim();
    let steps = n.min(m).saturating_mul(n.min(m)).saturating_mul(n.max(m));
    let a = run_sized(py, steps, |cancel| {
        lap::linear_sum_assignment_cancellable(view, sense, cancel)
    })?;
    let to_i64 = |v: Vec<usize>| v.into_iter().map(|k| k as i64).collect::<Vec<_>>();
    Ok((
        to_i64(a.rows).into_pyarray(py),
        to_i64(a.cols).into_pyarray(py),
        a.objective,
    ))
}

/// Exact LAP on an `f64` matrix: `(rows, cols, objective)`; see `semrsm.linear_sum_assignment`.
#[pyfunction]
#[pyo3(signature = (cost, maximize=false))]
fn linear_sum_assignment<'py>(
    py: Python<'py>,
    cost: PyReadonlyArray2<'py, f64>,
    maximize: bool,
) -> PyResult<LsaResult<'py>> {
    solve_lsa(py, &cost, maximize)
}

/// Exact LAP on an `f32` matrix (costs stored as `f32`, sums in `f64`).
#[pyfunction]
#[pyo3(signature = (cost, maximize=false))]
fn linear_sum_assignment_f32<'py>(
    py: Python<'py>,
    cost: PyReadonlyArray2<'py, f32>,
    maximize: bool,
) -> PyResult<LsaResult<'py>> {
    solve_lsa(py, &cost, maximize)
}

fn gemm_into<'py, T: crate::kernels::gemm::GemmScalar + numpy::Element>(
    py: Python<'py>,
    a: &PyReadonlyArray2<'py, T>,
    b: &PyReadonlyArray2<'py, T>,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    let (a, b) = (a.as_array(), b.as_array());
    // One step of the GEMM is one lane of a vector FMA, ~16 per cycle: scaled to the solver
    // steps `run_sized` counts, so products up to a few milliseconds run inline.
    let steps = a
        .nrows()
        .saturating_mul(b.nrows())
        .saturating_mul(a.ncols())
        / 16;
    // SAFETY: the array is new and not yet visible to Python; `gemm` writes every entry before
    // it is returned (on an error it is dropped unread).
    let out = unsafe { PyArray2::<T>::new(py, [a.nrows(), b.nrows()], false) };
    // SAFETY: nothing else references the new array while the view lives.
    let mut c = unsafe { out.as_array_mut() };
    run_sized(py, steps, |_| {
        crate::kernels::gemm::gemm(a, b, c.view_mut())
    })?;
    Ok(out)
}

/// `A @ B.T` in `f64` with semrsm's deterministic GEMM (strict `k`-order FMA chains).
#[pyfunction]
fn gemm_abt<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, f64>,
    b: PyReadonlyArray2<'py, f64>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    gemm_into(py, &a, &b)
}

/// `A @ B.T` in `f32` with semrsm's deterministic GEMM (strict `k`-order FMA chains).
#[pyfunction]
fn gemm_abt_f32<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, f32>,
    b: PyReadonlyArray2<'py, f32>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    gemm_into(py, &a, &b)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MATCHERS", Matcher::NAMES.to_vec())?;
    let options = pyo3::types::PyDict::new(py);
    for name in Matcher::NAMES {
        options.set_item(name, Matcher::option_names(name).unwrap_or_default())?;
    }
    m.add("MATCHER_OPTIONS", options)?;
    m.add("SemrsmError", py.get_type::<SemrsmError>())?;
    m.add("ShapeError", py.get_type::<ShapeError>())?;
    m.add("NonFiniteError", py.get_type::<NonFiniteError>())?;
    m.add("OptionError", py.get_type::<OptionError>())?;
    m.add("TooLargeError", py.get_type::<TooLargeError>())?;
    m.add_function(wrap_pyfunction!(gram, m)?)?;
    m.add_function(wrap_pyfunction!(gram_none, m)?)?;
    m.add_function(wrap_pyfunction!(scratch_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(match_affinity, m)?)?;
    m.add_function(wrap_pyfunction!(linear_sum_assignment, m)?)?;
    m.add_function(wrap_pyfunction!(linear_sum_assignment_f32, m)?)?;
    m.add_function(wrap_pyfunction!(gemm_abt, m)?)?;
    m.add_function(wrap_pyfunction!(gemm_abt_f32, m)?)?;
    m.add_function(wrap_pyfunction!(mixed_counters, m)?)?;
    m.add_function(wrap_pyfunction!(scan_rows, m)?)?;
    m.add_function(wrap_pyfunction!(centre_rows, m)?)?;
    Ok(())
}
