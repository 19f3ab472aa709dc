//! Helpers shared by the integration tests.

use ndarray::Array2;
use semrsm::lap::Sense;

/// Best objective over all injective maps from the smaller side to the larger one, by enumerating
/// them (the independent oracle for matrices with at most 8 rows or columns).
pub fn brute_force(cost: &Array2<f64>, sense: Sense) -> f64 {
    fn rec(
        cost: &Array2<f64>,
        row: usize,
        used: &mut [bool],
        acc: f64,
        best: &mut f64,
        sense: Sense,
    ) {
        if row == cost.nrows() {
            let better = match sense {
                Sense::Minimize => acc < *best,
                Sense::Maximize => acc > *best,
            };
            if better {
                *best = acc;
            }
            return;
        }
        for j in 0..cost.ncols() {
            if !used[j] {
                used[j] = true;
                rec(cost, row + 1, used, acc + cost[[row, j]], best, sense);
                used[j] = false;
            }
        }
    }
    let c = if cost.nrows() > cost.ncols() {
        cost.t().to_owned()
    } else {
        cost.clone()
    };
    let mut best = match sense {
        Sense::Minimize => f64::INFINITY,
        Sense::Maximize => f64::NEG_INFINITY,
    };
    rec(&c, 0, &mut vec![false; c.ncols()], 0.0, &mut best, sense);
    best
}
