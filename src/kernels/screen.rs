//! Kernels of the mixed-precision certificate ([`crate::matching::mixed`]): the `f64` dot
//! product that defines the affinities `Â_ij`, and the screen of one row of the `f32` affinity.
//!
//! Each has one portable body, compiled again with AVX2/AVX-512 enabled (the same IEEE
//! operations: explicit FMA in the dot product, none in the screen, no reassociation), so every
//! instruction set computes bit-identical results; the tests check it.

use super::{isa, Isa};

/// `Σ_k a_k b_k` in `f64` as the strict `k`-order FMA chain `acc = fma(a_k, b_k, acc)` from
/// `acc = 0`: bit for bit the entry that [`super::gemm`] computes for the same rows (on every
/// instruction set), so a sum of these entries equals the `f64` path's sum of its affinities.
#[must_use]
pub fn dot<T: crate::lap::Cost>(a: &[T], b: &[T]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        match isa() {
            // SAFETY: `isa()` reports only levels the CPU supports.
            Isa::Avx512 => return unsafe { dot_avx512(a, b) },
            Isa::Avx2 => return unsafe { dot_avx2(a, b) },
            Isa::Portable => {}
        }
    }
    dot_body(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
unsafe fn dot_avx512<T: crate::lap::Cost>(a: &[T], b: &[T]) -> f64 {
    dot_body(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2<T: crate::lap::Cost>(a: &[T], b: &[T]) -> f64 {
    dot_body(a, b)
}

#[inline(always)]
fn dot_body<T: crate::lap::Cost>(a: &[T], b: &[T]) -> f64 {
    let mut acc = 0.0_f64;
    for (&p, &q) in a.iter().zip(b) {
        acc = p.to_f64().mul_add(q.to_f64(), acc);
    }
    acc
}

/// `out[i] = dot(x_i, y_{perm[i]})` for every row `i` (`x`, `y`: `S × C` row-major, `c` = `C`;
/// `perm[i]` a row of `y`, `out` as long as `perm`): bit for bit [`dot`]'s values (each the strict
/// `k`-order FMA chain from 0), with eight rows' chains advancing together so that the FMA
/// latency overlaps. One row's chain alone waits on every FMA: at `C = 2048`, re-scoring a
/// permutation of 49 rows that way cost more than the `f32` GEMM saved (`mixed::rescore`).
///
/// # Panics
/// When `out` and `perm` differ in length, or a row is out of range.
pub fn matched_dots<T: crate::lap::Cost>(
    x: &[T],
    y: &[T],
    c: usize,
    perm: &[usize],
    out: &mut [f64],
) {
    assert_eq!(perm.len(), out.len(), "matched_dots: one output per row");
    let rows = (x, y, c, perm);
    #[cfg(target_arch = "x86_64")]
    {
        match isa() {
            // SAFETY: `isa()` reports only levels the CPU supports.
            Isa::Avx512 => return unsafe { matched_dots_avx512(rows, out) },
            Isa::Avx2 => return unsafe { matched_dots_avx2(rows, out) },
            Isa::Portable => {}
        }
    }
    matched_dots_body(rows, out);
}

/// The rows of [`matched_dots`]: `x`, `y`, `C`, the partner of each row of `x`.
type MatchedRows<'a, T> = (&'a [T], &'a [T], usize, &'a [usize]);

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
unsafe fn matched_dots_avx512<T: crate::lap::Cost>(rows: MatchedRows<'_, T>, out: &mut [f64]) {
    matched_dots_body(rows, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn matched_dots_avx2<T: crate::lap::Cost>(rows: MatchedRows<'_, T>, out: &mut [f64]) {
    matched_dots_body(rows, out);
}

#[inline(always)]
fn matched_dots_body<T: crate::lap::Cost>((x, y, c, perm): MatchedRows<'_, T>, out: &mut [f64]) {
    const W: usize = 8;
    for (g, (cols, outs)) in perm.chunks(W).zip(out.chunks_mut(W)).enumerate() {
        // A last, partial group repeats its first row in the missing lanes (results unused).
        let row = |l: usize| {
            let (i, j) = (g * W + l.min(cols.len() - 1), cols[l.min(cols.len() - 1)]);
            (&x[i * c..(i + 1) * c], &y[j * c..(j + 1) * c])
        };
        let rows: [(&[T], &[T]); W] = std::array::from_fn(row);
        let mut acc = [0.0_f64; W];
        for k in 0..c {
            for l in 0..W {
                // SAFETY: k < c, the length of every row of the group (the slices above are
                // bounds-checked).
                let (p, q) = unsafe { (rows[l].0.get_unchecked(k), rows[l].1.get_unchecked(k)) };
                acc[l] = p.to_f64().mul_add(q.to_f64(), acc[l]);
            }
        }
        outs.copy_from_slice(&acc[..outs.len()]);
    }
}

/// `out[r] = Σ_k e_k²` of every row `rows[r]` in `f64`: each row's squares (`e·e` rounded, no
/// FMA) added strictly left to right from 0 — the bits of
/// `row.iter().map(|e| e·e).sum()` — with eight rows' sums advancing together, so that the
/// chains' add latency overlaps (a row's sum alone waits on each add). The diagonal of a square
/// RSM, `G_ii = ‖x_i‖²`.
///
/// # Panics
/// When `out` and `rows` differ in length.
pub fn sq_sums<T: crate::lap::Cost>(rows: &[&[T]], out: &mut [f64]) {
    assert_eq!(rows.len(), out.len(), "sq_sums: one output per row");
    const W: usize = 8;
    for (group, outs) in rows.chunks(W).zip(out.chunks_mut(W)) {
        let shortest = group.iter().map(|r| r.len()).min().unwrap_or(0);
        // A last, partial group repeats its first row in the missing lanes (results unused).
        let g: [&[T]; W] = std::array::from_fn(|l| *group.get(l).unwrap_or(&group[0]));
        let mut acc = [0.0_f64; W];
        for k in 0..shortest {
            for l in 0..W {
                // SAFETY: k < shortest ≤ the length of every row of the group (the repeated
                // first row included).
                let e = unsafe { g[l].get_unchecked(k) }.to_f64();
                acc[l] += e * e;
            }
        }
        for ((o, a), row) in outs.iter_mut().zip(acc).zip(group) {
            let mut a = a;
            for e in &row[shortest..] {
                let e = e.to_f64();
                a += e * e;
            }
            *o = a;
        }
    }
}

/// Steps of `k` per chunk of [`dots_blocked`] (at most): a chunk of every `y` row an entry
/// reads, `rows·128·8` bytes (700 KiB for the 686 rows of a 14 × 14 block of pairs at `S = 49`),
/// stays in a core's L2 cache while the entries pass over it.
const DOTS_KC: usize = 128;

/// Rows of `y` ahead of the one being packed whose chunk [`dots_blocked`] prefetches.
const PREFETCH_ROWS: usize = 4;

/// Scratch of [`dots_blocked`]: the packed chunk of `y`, the slot of each `y` row in it, the
/// entries' order (of the strict and the any-order entries).
#[derive(Debug, Default, Clone)]
pub struct DotsScratch {
    packed: Vec<f64>,
    slot: Vec<u32>,
    packed_rows: Vec<u32>,
    order: [Vec<u32>; 2],
    start: [Vec<u32>; 2],
}

/// [`dot`] of many entries that share rows (the certificates of a block of pairs, whose rows
/// each take part in several entries): `out` gets `dot(x_i, y_j)` for every `(i, j)` of
/// `entries`, in order, bit for bit [`dot`]'s value. Instead of reading two whole rows per entry,
/// `k` runs in chunks of at most 128 steps: per chunk, the chunk of every `y` row in use
/// is packed once (contiguous, L2-resident), and the entries, taken row of `x` by row of `x`,
/// advance their chains through it: up to sixteen chains share one load of `x_i` (with AVX-512 and
/// `f64` rows, eight steps of each chain's `y` row are transposed in registers so that one
/// vector FMA advances eight chains by one step). Each entry's
/// chain is still the strict `k`-order FMA chain from 0, continued across chunks (as
/// [`super::gemm::Gemm::abt_acc`] continues its entries), so neither the chunking nor the order
/// of the entries changes a bit. Traffic: each `x` and `y` row is read once per call instead of
/// once per entry.
///
/// # Errors
/// [`crate::Error::Shape`] when a row index is out of range.
pub fn dots_blocked<T: crate::lap::Cost>(
    x: &[T],
    y: &[T],
    c: usize,
    entries: &[(u32, u32)],
    out: &mut Vec<f64>,
    scratch: &mut DotsScratch,
) -> crate::Result<()> {
    dots_blocked_on(isa(), x, y, c, entries, out, scratch)
}

/// [`dots_blocked`] with each entry's products summed in 32 interleaved partial sums per chunk
/// of `k` (then added pairwise and onto the running sum): several times faster than the strict
/// chain, and not its bits, but deterministic (the same fixed order on every instruction set
/// and block) and within `γ_{C+8}·Σ_k |x_k y_k|` of the exact dot product
/// (`γ_n = n·2⁻⁵³/(1 − n·2⁻⁵³)`: no product passes through more than
/// `⌈kc/32⌉ + 5 + ⌈C/kc⌉ ≤ C + 8` roundings), plus `(C + 8)·2⁻¹⁰⁷⁴` for underflow. The certificate uses these as upper bounds of entries whose
/// exact value it does not need.
///
/// # Errors
/// As [`dots_blocked`].
pub fn dots_blocked_any_order<T: crate::lap::Cost>(
    x: &[T],
    y: &[T],
    c: usize,
    entries: &[(u32, u32)],
    out: &mut Vec<f64>,
    scratch: &mut DotsScratch,
) -> crate::Result<()> {
    let mut none = Vec::new();
    let lists = [(&[][..], &mut none), (entries, out)];
    blocked(isa(), x, y, c, lists, scratch)
}

/// [`dots_blocked`] of `strict` into `out_strict` and [`dots_blocked_any_order`] of `any` into
/// `out_any` in one pass: each chunk of every row is read once for both lists (the
/// certificate's assigned entries and its first candidates, which share their rows), and each
/// value has the bits it gets from its own function.
///
/// # Errors
/// As [`dots_blocked`].
pub fn dots_blocked_both<T: crate::lap::Cost>(
    x: &[T],
    y: &[T],
    c: usize,
    (strict, out_strict): (&[(u32, u32)], &mut Vec<f64>),
    (any, out_any): (&[(u32, u32)], &mut Vec<f64>),
    scratch: &mut DotsScratch,
) -> crate::Result<()> {
    blocked(
        isa(),
        x,
        y,
        c,
        [(strict, out_strict), (any, out_any)],
        scratch,
    )
}

/// [`dots_blocked`] on instruction set `isa` (at most the CPU's).
fn dots_blocked_on<T: crate::lap::Cost>(
    isa: Isa,
    x: &[T],
    y: &[T],
    c: usize,
    entries: &[(u32, u32)],
    out: &mut Vec<f64>,
    scratch: &mut DotsScratch,
) -> crate::Result<()> {
    let mut none = Vec::new();
    blocked(
        isa,
        x,
        y,
        c,
        [(entries, out), (&[][..], &mut none)],
        scratch,
    )
}

/// The entries of one list grouped by row of `x` (a counting sort; stable): `order` the entries'
/// indices, `ends[r]` the end of row `r`'s group (its beginning is `ends[r − 1]`, or 0).
fn group_by_row(entries: &[(u32, u32)], rows_x: usize, order: &mut Vec<u32>, ends: &mut Vec<u32>) {
    ends.clear();
    ends.resize(rows_x + 1, 0);
    for &(i, _) in entries {
        ends[i as usize + 1] += 1;
    }
    for r in 0..rows_x {
        ends[r + 1] += ends[r];
    }
    order.clear();
    order.resize(entries.len(), 0);
    for (e, &(i, _)) in entries.iter().enumerate() {
        let at = &mut ends[i as usize];
        order[*at as usize] = e as u32; // (e < 2³², checked by the caller)
        *at += 1;
    }
    // ends[r] is now the end of row r's entries.
    ends.truncate(rows_x);
}

/// Entries `(row of x, row of y)` of [`blocked`] and where their values go.
type List<'a> = (&'a [(u32, u32)], &'a mut Vec<f64>);

/// [`dots_blocked_both`] on instruction set `isa`: `lists[0]` strict, `lists[1]` any order.
fn blocked<T: crate::lap::Cost>(
    isa: Isa,
    x: &[T],
    y: &[T],
    c: usize,
    lists: [List<'_>; 2],
    scratch: &mut DotsScratch,
) -> crate::Result<()> {
    let [(strict, out_strict), (any, out_any)] = lists;
    out_strict.clear();
    out_strict.resize(strict.len(), 0.0);
    out_any.clear();
    out_any.resize(any.len(), 0.0);
    if (strict.is_empty() && any.is_empty()) || c == 0 {
        return Ok(());
    }
    let (rows_x, rows_y) = (x.len() / c, y.len() / c);
    let all = || strict.iter().chain(any);
    if all().any(|&(i, j)| i as usize >= rows_x || j as usize >= rows_y) {
        return Err(crate::Error::Shape("internal: row out of range".into()));
    }
    let too_many = || crate::Error::Shape("internal: too many rows or entries".into());
    u32::try_from(strict.len().max(any.len())).map_err(|_| too_many())?;
    let DotsScratch {
        packed,
        slot,
        packed_rows,
        order,
        start,
    } = scratch;
    // The y rows in use, each given a slot in the packed chunk.
    slot.clear();
    slot.resize(rows_y, u32::MAX);
    packed_rows.clear();
    for &(_, j) in all() {
        if slot[j as usize] == u32::MAX {
            slot[j as usize] = u32::try_from(packed_rows.len()).map_err(|_| too_many())?;
            packed_rows.push(j);
        }
    }
    let [order_s, order_a] = order;
    let [ends_s, ends_a] = start;
    group_by_row(strict, rows_x, order_s, ends_s);
    group_by_row(any, rows_x, order_a, ends_a);
    let kc_max = c.div_ceil(c.div_ceil(DOTS_KC));
    // (8 more: the packed rows start at a 64-byte boundary, so that a vector body reads whole
    // cache lines.)
    let len = packed_rows.len() * kc_max + 8;
    if packed.len() < len {
        packed
            .try_reserve(len - packed.len())
            .map_err(|_| crate::Error::TooLarge("the certificate's packed rows".into()))?;
        packed.resize(len, 0.0);
    }
    let chunk = Chunk {
        x,
        c,
        strict: Group {
            entries: strict,
            order: order_s,
            ends: ends_s,
        },
        any: Group {
            entries: any,
            order: order_a,
            ends: ends_a,
        },
        slot,
    };
    let skip = packed.as_ptr().align_offset(64).min(8);
    let packed = &mut packed[skip..];
    for k0 in (0..c).step_by(kc_max) {
        let kc = kc_max.min(c - k0);
        for (t, &j) in packed_rows.iter().enumerate() {
            // (The rows are far apart: the hardware prefetcher does not follow them.)
            if let Some(&ahead) = packed_rows.get(t + PREFETCH_ROWS) {
                super::prefetch_l2(&y[ahead as usize * c + k0..ahead as usize * c + k0 + kc]);
            }
            let row = &y[j as usize * c + k0..j as usize * c + k0 + kc];
            for (p, &v) in packed[t * kc..(t + 1) * kc].iter_mut().zip(row) {
                *p = v.to_f64();
            }
        }
        let packed = &packed[..packed_rows.len() * kc];
        chunk.advance(isa, packed, k0, kc, (out_strict, out_any));
    }
    Ok(())
}

/// One list of entries of [`blocked`], grouped by row of `x`.
struct Group<'a> {
    entries: &'a [(u32, u32)],
    order: &'a [u32],
    /// `ends[r]`: the end of row `r`'s entries in `order`.
    ends: &'a [u32],
}

impl Group<'_> {
    /// The entries of row `r` (indices into `entries`).
    #[inline(always)]
    fn row(&self, r: usize) -> &[u32] {
        let begin = if r == 0 { 0 } else { self.ends[r - 1] as usize };
        &self.order[begin..self.ends[r] as usize]
    }
}

/// What every chunk of [`blocked`] shares: the rows of `x`, the two lists of entries (strict,
/// any order) and the packed slot of each row of `y`.
struct Chunk<'a, T> {
    x: &'a [T],
    c: usize,
    strict: Group<'a>,
    any: Group<'a>,
    slot: &'a [u32],
}

impl<T: crate::lap::Cost> Chunk<'_, T> {
    /// Prefetch steps `k0..k0 + kc` of row `r` of `x` (if there is one): read right after the
    /// current row's, 16 KiB further at `C = 2048`, where the hardware prefetcher does not look.
    #[inline(always)]
    fn prefetch_row(&self, r: usize, k0: usize, kc: usize) {
        if let Some(row) = self.x.get(r * self.c + k0..r * self.c + k0 + kc) {
            super::prefetch_l2(row);
        }
    }

    /// Advance every entry's sum (in `outs`: strict, any order) over steps `k0..k0 + kc`, the
    /// `y` rows' steps packed in `packed` (`kc` per slot), row of `x` by row of `x` (both lists'
    /// entries of a row while it is in L1).
    fn advance(
        &self,
        isa: Isa,
        packed: &[f64],
        k0: usize,
        kc: usize,
        outs: (&mut [f64], &mut [f64]),
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            match isa.min(Isa::detect()) {
                // SAFETY: `Isa::detect()` reports only levels the CPU supports.
                Isa::Avx512 => return unsafe { self.advance_avx512(packed, k0, kc, outs) },
                Isa::Avx2 => return unsafe { self.advance_avx2(packed, k0, kc, outs) },
                Isa::Portable => {}
            }
        }
        self.advance_body::<false>(packed, k0, kc, outs);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
    unsafe fn advance_avx512(
        &self,
        packed: &[f64],
        k0: usize,
        kc: usize,
        outs: (&mut [f64], &mut [f64]),
    ) {
        self.advance_body::<true>(packed, k0, kc, outs);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn advance_avx2(
        &self,
        packed: &[f64],
        k0: usize,
        kc: usize,
        outs: (&mut [f64], &mut [f64]),
    ) {
        self.advance_body::<false>(packed, k0, kc, outs);
    }

    /// [`Self::advance`] in the body of one instruction set (`G`: AVX-512).
    #[inline(always)]
    fn advance_body<const G: bool>(
        &self,
        packed: &[f64],
        k0: usize,
        kc: usize,
        (out_strict, out_any): (&mut [f64], &mut [f64]),
    ) {
        let rows = self.strict.ends.len();
        let c = self.c;
        // With AVX-512 and f64 rows, the strict chains of two rows (one group each) advance
        // together ([`transposed`]): twice the independent chains in flight, the FMA latency
        // hidden. A row waits in `pending` for its partner.
        let pairs = cfg!(target_arch = "x86_64")
            && G
            && std::any::TypeId::of::<T>() == std::any::TypeId::of::<f64>();
        let mut pending: Option<usize> = None;
        for r in 0..rows {
            let (strict, any) = (self.strict.row(r), self.any.row(r));
            if strict.is_empty() && any.is_empty() {
                continue;
            }
            self.prefetch_row(r + 1, k0, kc);
            let xr = &self.x[r * c + k0..r * c + k0 + kc];
            if pairs && !strict.is_empty() && strict.len() <= MAX_CHAINS {
                match pending.take() {
                    Some(p) => self.strict_pair(p, r, packed, k0, kc, out_strict),
                    None => pending = Some(r),
                }
            } else if !strict.is_empty() {
                self.strict_row::<G>(xr, strict, packed, kc, out_strict);
            }
            if pairs {
                // Up to four entries at a time sharing the loads of x (each with its own sums,
                // so the same bits as one at a time).
                #[cfg(target_arch = "x86_64")]
                for four in any.chunks(4) {
                    let mut yp = [std::ptr::null::<f64>(); 4];
                    for (q, &e) in four.iter().enumerate() {
                        let t = self.slot[self.any.entries[e as usize].1 as usize] as usize;
                        yp[q] = packed[t * kc..(t + 1) * kc].as_ptr();
                    }
                    for q in four.len()..4 {
                        yp[q] = yp[0];
                    }
                    let xp = xr.as_ptr().cast::<f64>();
                    // (As many rows as there are entries: a last group of one to three does
                    // not compute four.)
                    // SAFETY: AVX-512 (G) and f64 rows (T is f64); x and every y hold kc values.
                    let sums = unsafe {
                        match four.len() {
                            1 => any_order_dots_avx512::<1>(xp, yp, kc),
                            2 => any_order_dots_avx512::<2>(xp, yp, kc),
                            3 => any_order_dots_avx512::<3>(xp, yp, kc),
                            _ => any_order_dots_avx512::<4>(xp, yp, kc),
                        }
                    };
                    for (q, &e) in four.iter().enumerate() {
                        out_any[e as usize] += sums[q];
                    }
                }
                continue;
            }
            for &e in any {
                let t = self.slot[self.any.entries[e as usize].1 as usize] as usize;
                let yr = &packed[t * kc..(t + 1) * kc];
                out_any[e as usize] += any_order_dot::<T, G>(xr, yr);
            }
        }
        if let Some(p) = pending {
            let xr = &self.x[p * c + k0..p * c + k0 + kc];
            self.strict_row::<G>(xr, self.strict.row(p), packed, kc, out_strict);
        }
    }

    /// The strict chains of rows `ra` and `rb` (at most [`MAX_CHAINS`] entries each) over this
    /// chunk, advancing together ([`transposed`] with two rows). Only with AVX-512 and f64 rows.
    #[inline(always)]
    #[allow(unused_variables)]
    fn strict_pair(
        &self,
        ra: usize,
        rb: usize,
        packed: &[f64],
        k0: usize,
        kc: usize,
        out: &mut [f64],
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            let c = self.c;
            let mut xp = [std::ptr::null::<f64>(); 2];
            let mut yp = [[std::ptr::null::<f64>(); MAX_CHAINS]; 2];
            let mut n = [0_usize; 2];
            let mut acc = [[0.0_f64; MAX_CHAINS]; 2];
            for (h, r) in [ra, rb].into_iter().enumerate() {
                let group = self.strict.row(r);
                xp[h] = self.x[r * c + k0..r * c + k0 + kc].as_ptr().cast::<f64>();
                n[h] = group.len();
                for (l, &e) in group.iter().enumerate() {
                    let t = self.slot[self.strict.entries[e as usize].1 as usize] as usize;
                    yp[h][l] = packed[t * kc..(t + 1) * kc].as_ptr();
                    acc[h][l] = out[e as usize];
                }
                for l in group.len()..MAX_CHAINS {
                    yp[h][l] = yp[h][0];
                }
            }
            // SAFETY: called only with AVX-512 (the caller's G) and f64 rows (T is f64); every
            // pointer holds kc steps; lanes from n on repeat lane 0 (results unused).
            unsafe { transposed::<2>(xp, yp, n, kc, &mut acc) };
            for (h, r) in [ra, rb].into_iter().enumerate() {
                for (l, &e) in self.strict.row(r).iter().enumerate() {
                    out[e as usize] = acc[h][l];
                }
            }
        }
    }

    /// The strict chains of one row's entries `group` (`xr`: the row's steps of this chunk).
    #[inline(always)]
    fn strict_row<const G: bool>(
        &self,
        xr: &[T],
        group: &[u32],
        packed: &[f64],
        kc: usize,
        out: &mut [f64],
    ) {
        // Groups of at most MAX_CHAINS, as even as possible (13 entries: one group of 13,
        // not 8 + 4 + 1: fewer than eight chains wait on the FMA latency).
        let parts = group.len().div_ceil(MAX_CHAINS);
        let mut rest = group;
        for part in 0..parts {
            let n = rest.len() / (parts - part);
            let (now, later) = rest.split_at(n);
            rest = later;
            let mut ys: [&[f64]; MAX_CHAINS] = [&[]; MAX_CHAINS];
            let mut acc = [0.0_f64; MAX_CHAINS];
            for (l, &e) in now.iter().enumerate() {
                let t = self.slot[self.strict.entries[e as usize].1 as usize] as usize;
                ys[l] = &packed[t * kc..(t + 1) * kc];
                acc[l] = out[e as usize];
            }
            macro_rules! by_count {
                ($($n:literal)*) => {
                    match n {
                        $($n => chains::<T, $n>(xr, &ys, &mut acc),)*
                        _ => {}
                    }
                };
            }
            #[cfg(target_arch = "x86_64")]
            if G && std::any::TypeId::of::<T>() == std::any::TypeId::of::<f64>() {
                // AVX-512 and f64 rows: the lanes' steps transposed into vectors.
                // (T is f64.)
                let xp = xr.as_ptr().cast::<f64>();
                let yp: [*const f64; MAX_CHAINS] =
                    std::array::from_fn(|l| ys[if l < n { l } else { 0 }].as_ptr());
                let mut one = [acc];
                // SAFETY: G is set only by the AVX-512 entry point; every `ys[l]`, l < n,
                // and `xr` hold kc steps; lanes from n on repeat lane 0 (results unused).
                unsafe { transposed::<1>([xp], [yp], [n], kc, &mut one) };
                for (l, &e) in now.iter().enumerate() {
                    out[e as usize] = one[0][l];
                }
                continue;
            }
            by_count!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
            for (l, &e) in now.iter().enumerate() {
                out[e as usize] = acc[l];
            }
        }
    }
}

/// One chunk of one entry of [`dots_blocked_any_order`]: `Σ_k x_k y_k` over the chunk in 32
/// partial sums (lane `l` takes the steps `k ≡ l mod 32`), added in a pairwise tree (16, 8, 4,
/// 2, 1). With `G` (AVX-512) and `f64` rows in four vectors ([`any_order_dot_avx512`]), the
/// same operations in the same order, so the same bits.
#[inline(always)]
fn any_order_dot<T: crate::lap::Cost, const G: bool>(xr: &[T], yr: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if G && std::any::TypeId::of::<T>() == std::any::TypeId::of::<f64>() {
        let kc = xr.len().min(yr.len());
        // SAFETY: G is set only by the AVX-512 entry point; both hold kc values (T is f64).
        return unsafe { any_order_dot_avx512(xr.as_ptr().cast::<f64>(), yr.as_ptr(), kc) };
    }
    let mut p = [0.0_f64; 32];
    let (xe, ye) = (xr.chunks_exact(32), yr.chunks_exact(32));
    let (xt, yt) = (xe.remainder(), ye.remainder());
    for (xc, yc) in xe.zip(ye) {
        for l in 0..32 {
            p[l] = xc[l].to_f64().mul_add(yc[l], p[l]);
        }
    }
    for (l, (&a, &b)) in xt.iter().zip(yt).enumerate() {
        p[l] = a.to_f64().mul_add(b, p[l]);
    }
    let mut width = 16;
    while width > 0 {
        for l in 0..width {
            p[l] += p[l + width];
        }
        width /= 2;
    }
    p[0]
}

/// One chunk of [`any_order_dot`] with AVX-512: its 32 partial sums in four
/// vectors (the last, partial step masked: lanes beyond it are left as they are, not given a
/// `0·0`), reduced in the same pairwise tree. The same operations in the same order, so the
/// same bits.
///
/// # Safety
/// The CPU has AVX-512F; `x` and `y` hold `kc` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
unsafe fn any_order_dot_avx512(x: *const f64, y: *const f64, kc: usize) -> f64 {
    use std::arch::x86_64::{
        __mmask8, _mm256_add_pd, _mm256_castpd256_pd128, _mm256_extractf128_pd, _mm512_add_pd,
        _mm512_extractf64x4_pd, _mm512_fmadd_pd, _mm512_loadu_pd, _mm512_mask3_fmadd_pd,
        _mm512_maskz_loadu_pd, _mm512_setzero_pd, _mm_add_pd, _mm_cvtsd_f64, _mm_unpackhi_pd,
    };
    let mut a = [_mm512_setzero_pd(); 4];
    let full = kc / 32 * 32;
    let mut k = 0;
    while k < full {
        for (v, acc) in a.iter_mut().enumerate() {
            let o = k + 8 * v;
            *acc = _mm512_fmadd_pd(_mm512_loadu_pd(x.add(o)), _mm512_loadu_pd(y.add(o)), *acc);
        }
        k += 32;
    }
    let rest = kc - full;
    for (v, acc) in a.iter_mut().enumerate() {
        let lanes = rest.saturating_sub(8 * v).min(8);
        if lanes > 0 {
            let m: __mmask8 = ((1_u16 << lanes) - 1) as __mmask8;
            let o = full + 8 * v;
            let xv = _mm512_maskz_loadu_pd(m, x.add(o));
            let yv = _mm512_maskz_loadu_pd(m, y.add(o));
            *acc = _mm512_mask3_fmadd_pd(xv, yv, *acc, m);
        }
    }
    // p[l] += p[l + 16], then p[l] += p[l + 8], p[l + 4], p[l + 2], p[l + 1].
    let h0 = _mm512_add_pd(a[0], a[2]);
    let h1 = _mm512_add_pd(a[1], a[3]);
    let h = _mm512_add_pd(h0, h1);
    let q = _mm256_add_pd(
        _mm512_extractf64x4_pd::<0>(h),
        _mm512_extractf64x4_pd::<1>(h),
    );
    let d = _mm_add_pd(_mm256_castpd256_pd128(q), _mm256_extractf128_pd::<1>(q));
    _mm_cvtsd_f64(_mm_add_pd(d, _mm_unpackhi_pd(d, d)))
}

/// [`any_order_dot_avx512`] of `Q ≤ 4` rows `y[q]` (the rest unused, 0 returned) against one `x` at once (the loads of `x`
/// shared, sixteen sums in flight): per row the same operations in the same order, so the same
/// bits.
///
/// # Safety
/// The CPU has AVX-512F; `x` and every `y[q]` hold `kc` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
#[allow(clippy::needless_range_loop)] // (indices into several arrays at once)
unsafe fn any_order_dots_avx512<const Q: usize>(
    x: *const f64,
    y: [*const f64; 4],
    kc: usize,
) -> [f64; 4] {
    use std::arch::x86_64::{
        __mmask8, _mm256_add_pd, _mm256_castpd256_pd128, _mm256_extractf128_pd, _mm512_add_pd,
        _mm512_extractf64x4_pd, _mm512_fmadd_pd, _mm512_loadu_pd, _mm512_mask3_fmadd_pd,
        _mm512_maskz_loadu_pd, _mm512_setzero_pd, _mm_add_pd, _mm_cvtsd_f64, _mm_unpackhi_pd,
    };
    let mut a = [[_mm512_setzero_pd(); 4]; 4];
    let q_end = Q.min(4);
    let full = kc / 32 * 32;
    let mut k = 0;
    while k < full {
        for v in 0..4 {
            let o = k + 8 * v;
            let xv = _mm512_loadu_pd(x.add(o));
            for q in 0..q_end {
                a[q][v] = _mm512_fmadd_pd(xv, _mm512_loadu_pd(y[q].add(o)), a[q][v]);
            }
        }
        k += 32;
    }
    let rest = kc - full;
    for v in 0..4 {
        let lanes = rest.saturating_sub(8 * v).min(8);
        if lanes > 0 {
            let m: __mmask8 = ((1_u16 << lanes) - 1) as __mmask8;
            let o = full + 8 * v;
            let xv = _mm512_maskz_loadu_pd(m, x.add(o));
            for q in 0..q_end {
                let yv = _mm512_maskz_loadu_pd(m, y[q].add(o));
                a[q][v] = _mm512_mask3_fmadd_pd(xv, yv, a[q][v], m);
            }
        }
    }
    // Per row, as any_order_dot_avx512: p[l] += p[l + 16], then p[l + 8], 4, 2, 1.
    std::array::from_fn(|q| {
        if q >= q_end {
            return 0.0;
        }
        let h0 = _mm512_add_pd(a[q][0], a[q][2]);
        let h1 = _mm512_add_pd(a[q][1], a[q][3]);
        let h = _mm512_add_pd(h0, h1);
        let s = _mm256_add_pd(
            _mm512_extractf64x4_pd::<0>(h),
            _mm512_extractf64x4_pd::<1>(h),
        );
        let d = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd::<1>(s));
        _mm_cvtsd_f64(_mm_add_pd(d, _mm_unpackhi_pd(d, d)))
    })
}

/// [`chains`] for up to 16 lanes of each of `R` rows of `x` with AVX-512: per 4 steps of `k`,
/// the 4 steps of every lane's `y` row are transposed in registers ([`steps4`]) into 4 vectors
/// of one step across the lanes, and each step is one vector FMA per 8 lanes with `x_k`
/// broadcast — per lane the same `fma(x_k, y_k, acc)` in the same order as [`chains`]. The
/// rows' chains are independent: with `R = 2`, four accumulators are in flight instead of two
/// (the chains are bound by the FMA latency, not by the shuffles). Lanes from `n[h]` on compute
/// lane 0 again (their results are not used).
///
/// # Safety
/// The CPU has AVX-512F; `x[h]` holds `kc` values and `yp[h][l]`, `l < 16`, at least `kc`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
#[allow(clippy::needless_range_loop)] // (indices into several arrays at once)
unsafe fn transposed<const R: usize>(
    x: [*const f64; R],
    yp: [[*const f64; MAX_CHAINS]; R],
    n: [usize; R],
    kc: usize,
    acc: &mut [[f64; MAX_CHAINS]; R],
) {
    use std::arch::x86_64::{
        __m512d, _mm512_fmadd_pd, _mm512_loadu_pd, _mm512_set1_pd, _mm512_setr_pd, _mm512_storeu_pd,
    };
    // SAFETY (all loads): k + q < kc ≤ the length of x and of every lane's row.
    let mut a: [[__m512d; 2]; R] = std::array::from_fn(|h| {
        [
            _mm512_loadu_pd(acc[h].as_ptr()),
            _mm512_loadu_pd(acc[h].as_ptr().add(8)),
        ]
    });
    let full = kc / 4 * 4;
    let mut k = 0;
    while k < full {
        for h in 0..R {
            let c0 = steps4(&yp[h][..8], k);
            for (q, &v) in c0.iter().enumerate() {
                a[h][0] = _mm512_fmadd_pd(_mm512_set1_pd(*x[h].add(k + q)), v, a[h][0]);
            }
            if n[h] > 8 {
                let c1 = steps4(&yp[h][8..], k);
                for (q, &v) in c1.iter().enumerate() {
                    a[h][1] = _mm512_fmadd_pd(_mm512_set1_pd(*x[h].add(k + q)), v, a[h][1]);
                }
            }
        }
        k += 4;
    }
    let lanes = |p: &[*const f64], k: usize| {
        _mm512_setr_pd(
            *p[0].add(k),
            *p[1].add(k),
            *p[2].add(k),
            *p[3].add(k),
            *p[4].add(k),
            *p[5].add(k),
            *p[6].add(k),
            *p[7].add(k),
        )
    };
    while k < kc {
        for h in 0..R {
            let xk = _mm512_set1_pd(*x[h].add(k));
            a[h][0] = _mm512_fmadd_pd(xk, lanes(&yp[h][..8], k), a[h][0]);
            if n[h] > 8 {
                a[h][1] = _mm512_fmadd_pd(xk, lanes(&yp[h][8..], k), a[h][1]);
            }
        }
        k += 1;
    }
    for h in 0..R {
        _mm512_storeu_pd(acc[h].as_mut_ptr(), a[h][0]);
        _mm512_storeu_pd(acc[h].as_mut_ptr().add(8), a[h][1]);
    }
}

/// Steps `k..k + 4` of the 8 rows `p[0..8]` as 4 vectors of one step across the rows (half an
/// 8 × 8 transpose), the first level done by the loads: each vector loaded holds the 4 steps of
/// two rows (`p[m]` and `p[m + 2]` in its halves), then one level of unpacks and one of 128-bit
/// shuffles (8 shuffles and 4 inserts per 32 values).
///
/// # Safety
/// The CPU has AVX-512F; every `p[m]`, `m < 8`, holds at least `k + 4` values.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
unsafe fn steps4(p: &[*const f64], k: usize) -> [std::arch::x86_64::__m512d; 4] {
    use std::arch::x86_64::{
        __m512d, _mm256_loadu_pd, _mm512_castpd256_pd512, _mm512_insertf64x4, _mm512_shuffle_f64x2,
        _mm512_unpackhi_pd, _mm512_unpacklo_pd,
    };
    // Rows a (low half) and b (high half), steps k..k + 4.
    let two = |a: usize, b: usize| -> __m512d {
        _mm512_insertf64x4::<1>(
            _mm512_castpd256_pd512(_mm256_loadu_pd(p[a].add(k))),
            _mm256_loadu_pd(p[b].add(k)),
        )
    };
    let (u0, u1, u2, u3) = (two(0, 2), two(1, 3), two(4, 6), two(5, 7));
    // 128-bit lanes of e0: (r0, r1) at steps 0, 2, then (r2, r3) at steps 0, 2; e1 the odd
    // steps; f0, f1 the same for rows 4-7.
    let e0 = _mm512_unpacklo_pd(u0, u1);
    let e1 = _mm512_unpackhi_pd(u0, u1);
    let f0 = _mm512_unpacklo_pd(u2, u3);
    let f1 = _mm512_unpackhi_pd(u2, u3);
    [
        _mm512_shuffle_f64x2::<0b10_00_10_00>(e0, f0),
        _mm512_shuffle_f64x2::<0b10_00_10_00>(e1, f1),
        _mm512_shuffle_f64x2::<0b11_01_11_01>(e0, f0),
        _mm512_shuffle_f64x2::<0b11_01_11_01>(e1, f1),
    ]
}

/// Most chains of [`dots_blocked`] that advance together (sixteen accumulators and the shared
/// `x_i` fit the 32 vector registers of AVX-512).
const MAX_CHAINS: usize = 16;

/// `N` chains advancing together over `xr` (shared) and `ys[l]` (each at least `xr.len()`).
#[inline(always)]
fn chains<T: crate::lap::Cost, const N: usize>(
    xr: &[T],
    ys: &[&[f64]; MAX_CHAINS],
    acc: &mut [f64; MAX_CHAINS],
) {
    let kc = xr.len();
    if ys[..N].iter().any(|y| y.len() < kc) {
        return; // (never: every packed slot holds kc steps)
    }
    let mut a = [0.0_f64; N];
    a.copy_from_slice(&acc[..N]);
    for k in 0..kc {
        // SAFETY: k < kc ≤ the length of xr and of every ys[l], l < N (checked above).
        let xk = unsafe { xr.get_unchecked(k) }.to_f64();
        for l in 0..N {
            a[l] = xk.mul_add(unsafe { *ys[l].get_unchecked(k) }, a[l]);
        }
    }
    acc[..N].copy_from_slice(&a);
}

/// Screen one row of the certificate: with `r_j = (c0 + v_j) − row_j` (in `f64`), push every
/// `j` with `r_j ≤ tau` (or NaN) onto `candidates` (in
/// increasing order) and return the smallest `r_j` of the others (`+∞` when there are none; `+0` for a zero).
/// Runs over `min(len)` of the slices. The inputs must be finite (so is every `r_j` then, for
/// values below `10³⁰⁰`).
pub fn screen_row(
    row: &[f32],
    v: &[f64],
    (c0, tau): (f64, f64),
    candidates: &mut Vec<usize>,
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        match isa() {
            // SAFETY: `isa()` reports only levels the CPU supports.
            Isa::Avx512 => return unsafe { screen_avx512(row, v, (c0, tau), candidates) },
            Isa::Avx2 => return unsafe { screen_avx2(row, v, (c0, tau), candidates) },
            Isa::Portable => {}
        }
    }
    screen_body(row, v, (c0, tau), candidates)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
unsafe fn screen_avx512(
    row: &[f32],
    v: &[f64],
    (c0, tau): (f64, f64),
    candidates: &mut Vec<usize>,
) -> f64 {
    use std::arch::x86_64::{
        __mmask8, _mm512_add_pd, _mm512_castps512_ps256, _mm512_cmp_pd_mask, _mm512_cvtps_pd,
        _mm512_mask_blend_pd, _mm512_maskz_loadu_pd, _mm512_maskz_loadu_ps, _mm512_min_pd,
        _mm512_set1_pd, _mm512_storeu_pd, _mm512_sub_pd, _CMP_GT_OQ,
    };
    // The portable body's operations lane by lane, 8 entries per step (the last one masked):
    // `vminpd(a, b)` is `if a < b { a } else { b }`, `_CMP_GT_OQ` false for NaN.
    let n = row.len().min(v.len());
    let (c0v, tauv, inf) = (
        _mm512_set1_pd(c0),
        _mm512_set1_pd(tau),
        _mm512_set1_pd(f64::INFINITY),
    );
    let mut low = inf;
    let mut j = 0;
    while j < n {
        let live = (n - j).min(8);
        let m: __mmask8 = if live == 8 { 0xff } else { (1_u8 << live) - 1 };
        let r = _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_maskz_loadu_ps(
            u16::from(m),
            row.as_ptr().add(j),
        )));
        let x = _mm512_sub_pd(
            _mm512_add_pd(c0v, _mm512_maskz_loadu_pd(m, v.as_ptr().add(j))),
            r,
        );
        let above = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(x, tauv) & m;
        low = _mm512_min_pd(_mm512_mask_blend_pd(above, inf, x), low);
        let mut hits = !above & m;
        while hits != 0 {
            candidates.push(j + hits.trailing_zeros() as usize);
            hits &= hits - 1;
        }
        j += 8;
    }
    let mut lanes = [0.0_f64; 8];
    _mm512_storeu_pd(lanes.as_mut_ptr(), low);
    let mut lowest = f64::INFINITY;
    for &l in &lanes {
        if l < lowest {
            lowest = l;
        }
    }
    lowest + 0.0
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn screen_avx2(row: &[f32], v: &[f64], k: (f64, f64), candidates: &mut Vec<usize>) -> f64 {
    screen_body(row, v, k, candidates)
}

#[inline(always)]
fn screen_body(row: &[f32], v: &[f64], (c0, tau): (f64, f64), candidates: &mut Vec<usize>) -> f64 {
    // 32 entries per step (their running minima per lane, the candidates as a bit mask: a
    // few per row), then the rest in steps of 8, the last one on a padded copy (at S = 49:
    // one step of 32 and three of 8, instead of a second step of 32 padded from 17 values).
    const W: usize = 32;
    const T: usize = 8;
    let n = row.len().min(v.len());
    let (row, v) = (&row[..n], &v[..n]);
    let mut low = [f64::INFINITY; W];
    let full = n / W * W;
    for (k, (rc, vc)) in row[..full]
        .chunks_exact(W)
        .zip(v[..full].chunks_exact(W))
        .enumerate()
    {
        let (rc, vc): (&[f32; W], &[f64; W]) = match (rc.try_into(), vc.try_into()) {
            (Ok(rc), Ok(vc)) => (rc, vc),
            _ => continue, // (chunks_exact: never)
        };
        screen_step(rc, vc, (c0, tau), &mut low, k * W, W, candidates);
    }
    let mut low8 = [f64::INFINITY; T];
    let mut at = full;
    while at + T <= n {
        let (rc, vc): (&[f32; T], &[f64; T]) =
            match (row[at..at + T].try_into(), v[at..at + T].try_into()) {
                (Ok(rc), Ok(vc)) => (rc, vc),
                _ => break, // (never)
            };
        screen_step(rc, vc, (c0, tau), &mut low8, at, T, candidates);
        at += T;
    }
    if at < n {
        // Padding: row −∞ and v 0 give r = +∞ (above tau, not below any minimum); the padded
        // lanes are never pushed either way.
        let mut rc = [f32::NEG_INFINITY; T];
        let mut vc = [0.0_f64; T];
        rc[..n - at].copy_from_slice(&row[at..]);
        vc[..n - at].copy_from_slice(&v[at..]);
        screen_step(&rc, &vc, (c0, tau), &mut low8, at, n - at, candidates);
    }
    // (The smallest of the lanes' minima: the same value in any order, these being finite
    // or +∞, never NaN.)
    let mut lowest = f64::INFINITY;
    for &l in low.iter().chain(&low8) {
        if l < lowest {
            lowest = l;
        }
    }
    // (+0 for a zero of either sign: the same bits whatever the order of the lanes.)
    lowest + 0.0
}

/// One step of [`screen_body`] over `W ≤ 32` entries starting at column `first`, of which the
/// first `live` are real.
#[inline(always)]
fn screen_step<const W: usize>(
    rc: &[f32; W],
    vc: &[f64; W],
    (c0, tau): (f64, f64),
    low: &mut [f64; W],
    first: usize,
    live: usize,
    candidates: &mut Vec<usize>,
) {
    // Lane-wise only (no running minimum across lanes; the candidates as one bit per lane),
    // so that the loop compiles to vector instructions and a mask.
    let mut hits = 0_u32;
    for l in 0..W {
        let x = (c0 + vc[l]) - f64::from(rc[l]);
        let above = x > tau; // false for `x ≤ tau` or NaN: a candidate
        let kept = if above { x } else { f64::INFINITY };
        low[l] = if kept < low[l] { kept } else { low[l] };
        hits |= u32::from(!above) << l;
    }
    if live < 32 {
        hits &= (1_u32 << live) - 1;
    }
    while hits != 0 {
        candidates.push(first + hits.trailing_zeros() as usize);
        hits &= hits - 1;
    }
}

/// Move the column duals `v` of an optimal assignment `perm` of the `s × s` maximisation `a`
/// (row-major) towards the middle of their feasible ranges, `sweeps` times: with the row duals
/// `u_i = a_iσ(i) − v_σ(i)`, each column `j` (owned by row `o`, `σ(o) = j`) may lie anywhere in
/// `[lo_j, hi_j]`, `lo_j = max_{i ≠ o} (a_ij − u_i)` (no other row's entry above its dual) and
/// `hi_j = a_oj − max_{l ≠ j} (a_ol − v_l)` (none of row `o`'s); every column moves to
/// `(lo_j + hi_j)/2` at once. If `v` was feasible (`u_i + v_j ≥ a_ij`), so is the result:
/// for `k = σ(i)`, `i ≠ o`, `lo_j ≥ v_k + w` and `hi_k ≤ v_j − w` with `w = a_ij − a_ik`, and
/// `hi_j ≥ v_j`, `lo_k ≤ v_k`, so the midpoints differ by at least `w`. The solver's duals sit
/// at a vertex, with ~one tight entry per row besides the assigned one; after two sweeps the
/// entries within a rounding bound of tight are about a third as many, and the certificate of
/// mixed precision computes those entries in `f64` (`src/matching/mixed.rs`). Any `v` is valid
/// there (its screen proves what it rules out), so this only changes how many entries it
/// computes. Every value is the same on every instruction set (elementwise operations and
/// exact maxima; zeros made `+0`). A column whose range is not finite keeps its dual.
/// `scratch` holds `5s` values.
pub fn centre_duals(
    a: &[f32],
    perm: &[usize],
    v: &mut [f64],
    sweeps: usize,
    scratch: &mut Vec<f64>,
) {
    let s = perm.len();
    if s < 2 || v.len() != s || a.len() != s * s || perm.iter().any(|&j| j >= s) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        match isa() {
            // SAFETY: `isa()` reports only levels the CPU supports.
            Isa::Avx512 => return unsafe { centre_avx512(a, perm, v, sweeps, scratch) },
            Isa::Avx2 => return unsafe { centre_avx2(a, perm, v, sweeps, scratch) },
            Isa::Portable => {}
        }
    }
    centre_body::<false>(a, perm, v, sweeps, scratch);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
unsafe fn centre_avx512(
    a: &[f32],
    perm: &[usize],
    v: &mut [f64],
    sweeps: usize,
    scratch: &mut Vec<f64>,
) {
    centre_body::<true>(a, perm, v, sweeps, scratch);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn centre_avx2(
    a: &[f32],
    perm: &[usize],
    v: &mut [f64],
    sweeps: usize,
    scratch: &mut Vec<f64>,
) {
    centre_body::<false>(a, perm, v, sweeps, scratch);
}

/// [`centre_duals`] in the body of one instruction set (`G`: AVX-512, the rows' full steps of 8
/// by [`centre_row_avx512`]: the same operations lane by lane, so the same bits).
#[inline(always)]
fn centre_body<const G: bool>(
    a: &[f32],
    perm: &[usize],
    v: &mut [f64],
    sweeps: usize,
    scratch: &mut Vec<f64>,
) {
    const L: usize = 8;
    let s = perm.len();
    scratch.clear();
    scratch.resize(5 * s, 0.0);
    let (u, rest) = scratch.split_at_mut(s);
    let (lo, rest) = rest.split_at_mut(s);
    let (hi, rest) = rest.split_at_mut(s);
    // (−∞ at the assigned column of the row at hand, 0 elsewhere: leaves that entry out of
    // both maxima with an addition, which vectorises.)
    let (pen, next) = rest.split_at_mut(s);
    let full = s / L * L;
    for _ in 0..sweeps {
        for (i, (ui, &j)) in u.iter_mut().zip(perm).enumerate() {
            *ui = f64::from(a[i * s + j]) - v[j];
        }
        lo.fill(f64::NEG_INFINITY);
        for (i, (&ui, &k)) in u.iter().zip(perm.iter()).enumerate() {
            let row = &a[i * s..(i + 1) * s];
            pen[k] = f64::NEG_INFINITY;
            // Column maxima of a_ij − u_i and the row's largest a_il − v_l, lane-wise (in
            // vectors), the assigned entry left out.
            let mut top = [f64::NEG_INFINITY; L];
            #[cfg(target_arch = "x86_64")]
            if G {
                // SAFETY: AVX-512 (G is set only by its entry point); every slice holds at
                // least `full` values.
                unsafe { centre_row_avx512(row, v, pen, lo, ui, full, &mut top) };
            }
            for t in (0..if G { 0 } else { full }).step_by(L) {
                let (lc, vc, rc, pc): (&mut [f64; L], &[f64; L], &[f32; L], &[f64; L]) = match (
                    (&mut lo[t..t + L]).try_into(),
                    v[t..t + L].try_into(),
                    row[t..t + L].try_into(),
                    pen[t..t + L].try_into(),
                ) {
                    (Ok(lc), Ok(vc), Ok(rc), Ok(pc)) => (lc, vc, rc, pc),
                    _ => continue, // (never: t + L ≤ s)
                };
                for l in 0..L {
                    let r = f64::from(rc[l]);
                    let c = (r - ui) + pc[l];
                    lc[l] = if c > lc[l] { c } else { lc[l] };
                    let w = (r - vc[l]) + pc[l];
                    top[l] = if w > top[l] { w } else { top[l] };
                }
            }
            for j in full..s {
                let r = f64::from(row[j]);
                let c = (r - ui) + pen[j];
                lo[j] = if c > lo[j] { c } else { lo[j] };
                let w = (r - v[j]) + pen[j];
                let l = j - full;
                top[l] = if w > top[l] { w } else { top[l] };
            }
            pen[k] = 0.0;
            let m = top
                .iter()
                .fold(f64::NEG_INFINITY, |m, &x| if x > m { x } else { m });
            hi[k] = f64::from(row[k]) - m;
        }
        for (j, n) in next.iter_mut().enumerate() {
            let c = (lo[j] + hi[j]) * 0.5 + 0.0;
            *n = if c.is_finite() { c } else { v[j] };
        }
        v.copy_from_slice(next);
    }
}

/// The first `full` (a multiple of 8) columns of one row of [`centre_body`] with AVX-512:
/// `lo_j = max(lo_j, (a_j − u) + pen_j)` and `top_l = max(top_l, (a_j − v_j) + pen_j)` for
/// `j ≡ l mod 8` — `vmaxpd(x, y)` is `if x > y { x } else { y }`, as in the portable body.
///
/// # Safety
/// The CPU has AVX-512F; `row`, `v`, `pen` and `lo` hold at least `full` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
unsafe fn centre_row_avx512(
    row: &[f32],
    v: &[f64],
    pen: &[f64],
    lo: &mut [f64],
    u: f64,
    full: usize,
    top: &mut [f64; 8],
) {
    use std::arch::x86_64::{
        _mm256_loadu_ps, _mm512_add_pd, _mm512_cvtps_pd, _mm512_loadu_pd, _mm512_max_pd,
        _mm512_set1_pd, _mm512_storeu_pd, _mm512_sub_pd,
    };
    let uv = _mm512_set1_pd(u);
    let mut t = _mm512_loadu_pd(top.as_ptr());
    let mut j = 0;
    while j < full {
        let r = _mm512_cvtps_pd(_mm256_loadu_ps(row.as_ptr().add(j)));
        let p = _mm512_loadu_pd(pen.as_ptr().add(j));
        let c = _mm512_add_pd(_mm512_sub_pd(r, uv), p);
        let l = lo.as_mut_ptr().add(j);
        _mm512_storeu_pd(l, _mm512_max_pd(c, _mm512_loadu_pd(l)));
        let w = _mm512_add_pd(_mm512_sub_pd(r, _mm512_loadu_pd(v.as_ptr().add(j))), p);
        t = _mm512_max_pd(w, t);
        j += 8;
    }
    _mm512_storeu_pd(top.as_mut_ptr(), t);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut state = seed | 1;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                #[allow(clippy::cast_precision_loss)]
                let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                u * 2.0 - 1.0
            })
            .collect()
    }

    /// `sq_sums` is each row's sequential sum of squares, bit for bit, for any number of rows
    /// (whole groups of eight and a rest) and rows of different lengths.
    #[test]
    fn sq_sums_are_the_sequential_sums() {
        for count in [0_usize, 1, 3, 7, 8, 9, 14, 16, 17] {
            for ragged in [false, true] {
                let data: Vec<Vec<f64>> = (0..count)
                    .map(|r| {
                        let len = if ragged {
                            100 + 13 * ((r * 5) % 7)
                        } else {
                            2049
                        };
                        // Values of very different sizes, so the order of the sum matters.
                        values(len, 5 + r as u64)
                            .iter()
                            .enumerate()
                            .map(|(k, &v)| v * f64::powi(10.0, (k % 9) as i32 - 4))
                            .collect()
                    })
                    .collect();
                let rows: Vec<&[f64]> = data.iter().map(Vec::as_slice).collect();
                let mut got = vec![f64::NAN; count];
                sq_sums(&rows, &mut got);
                for (row, g) in rows.iter().zip(&got) {
                    let want: f64 = row.iter().map(|&e| e * e).sum();
                    assert_eq!(g.to_bits(), want.to_bits());
                }
                #[allow(clippy::cast_possible_truncation)]
                let rows32: Vec<Vec<f32>> = data
                    .iter()
                    .map(|r| r.iter().map(|&v| v as f32).collect())
                    .collect();
                let rows32: Vec<&[f32]> = rows32.iter().map(Vec::as_slice).collect();
                sq_sums(&rows32, &mut got);
                for (row, g) in rows32.iter().zip(&got) {
                    let want: f64 = row.iter().map(|&e| f64::from(e) * f64::from(e)).sum();
                    assert_eq!(g.to_bits(), want.to_bits());
                }
            }
        }
    }

    /// `matched_dots` is [`dot`] of each row with its partner, bit for bit, for any number of
    /// rows (whole groups of eight and a rest), any `C` (0, 1, odd, several thousand), rows
    /// repeated in `perm` and `f64` or `f32` rows.
    #[test]
    fn matched_dots_are_the_strict_chains() {
        for s in [0_usize, 1, 3, 8, 9, 17, 64] {
            for c in [0_usize, 1, 5, 130, 2049] {
                // Values of very different sizes, so the order of the sum matters.
                let scaled = |seed: u64| -> Vec<f64> {
                    values(s * c, seed)
                        .iter()
                        .enumerate()
                        .map(|(k, &v)| v * f64::powi(10.0, (k % 9) as i32 - 4))
                        .collect()
                };
                let (x, y) = (scaled(11), scaled(12));
                // A permutation, then a map with repeats.
                let perms: [Vec<usize>; 2] = [
                    (0..s).map(|i| (i * 5 + 3) % s.max(1)).rev().collect(),
                    (0..s).map(|i| (i * i) % s.max(1)).collect(),
                ];
                for perm in perms.iter().filter(|p| p.len() == s) {
                    let mut got = vec![f64::NAN; s];
                    matched_dots(&x, &y, c, perm, &mut got);
                    for (i, (&j, g)) in perm.iter().zip(&got).enumerate() {
                        let want = dot(&x[i * c..(i + 1) * c], &y[j * c..(j + 1) * c]);
                        assert_eq!(g.to_bits(), want.to_bits(), "s = {s}, c = {c}, row {i}");
                    }
                    #[allow(clippy::cast_possible_truncation)]
                    let (x32, y32): (Vec<f32>, Vec<f32>) = (
                        x.iter().map(|&v| v as f32).collect(),
                        y.iter().map(|&v| v as f32).collect(),
                    );
                    matched_dots(&x32, &y32, c, perm, &mut got);
                    for (i, (&j, g)) in perm.iter().zip(&got).enumerate() {
                        let want = dot(&x32[i * c..(i + 1) * c], &y32[j * c..(j + 1) * c]);
                        assert_eq!(
                            g.to_bits(),
                            want.to_bits(),
                            "f32, s = {s}, c = {c}, row {i}"
                        );
                    }
                }
            }
        }
    }

    /// Every instruction set computes what the portable body does, bit for bit.
    #[test]
    fn vector_bodies_match_the_portable_one() {
        for n in [
            0_usize, 1, 5, 7, 8, 9, 16, 31, 32, 33, 39, 40, 41, 47, 48, 49, 56, 57, 64, 100,
        ] {
            let a = values(n, 3 + n as u64);
            let b = values(n, 7 + n as u64);
            let want = dot_body(&a, &b);
            let row: Vec<f32> = values(n, 11).iter().map(|&x| x as f32).collect();
            #[cfg(target_arch = "x86_64")]
            if Isa::detect() >= Isa::Avx2 {
                // SAFETY: the CPU has AVX2.
                assert_eq!(unsafe { dot_avx2(&a, &b) }.to_bits(), want.to_bits());
            }
            #[cfg(target_arch = "x86_64")]
            if Isa::detect() >= Isa::Avx512 {
                // SAFETY: the CPU has AVX-512.
                assert_eq!(unsafe { dot_avx512(&a, &b) }.to_bits(), want.to_bits());
            }
            // Some candidates, none, every entry, and tau = 0.
            for (c0, tau) in [(0.1, 0.05), (0.0, -10.0), (0.0, 10.0), (-1.0, 0.0)] {
                let (mut c_want, mut c_got) = (Vec::new(), Vec::new());
                let low_want = screen_body(&row, &a, (c0, tau), &mut c_want);
                #[cfg(target_arch = "x86_64")]
                {
                    if Isa::detect() >= Isa::Avx2 {
                        // SAFETY: the CPU has AVX2.
                        let low = unsafe { screen_avx2(&row, &a, (c0, tau), &mut c_got) };
                        assert_eq!((low.to_bits(), &c_got), (low_want.to_bits(), &c_want));
                        c_got.clear();
                    }
                    if Isa::detect() >= Isa::Avx512 {
                        // SAFETY: the CPU has AVX-512.
                        let low = unsafe { screen_avx512(&row, &a, (c0, tau), &mut c_got) };
                        assert_eq!(
                            (low.to_bits(), &c_got),
                            (low_want.to_bits(), &c_want),
                            "n={n} c0={c0} tau={tau}"
                        );
                        c_got.clear();
                    }
                }
                // The screen against its definition.
                let mut c_def = Vec::new();
                let mut low_def = f64::INFINITY;
                for j in 0..n {
                    let x = (c0 + a[j]) - f64::from(row[j]);
                    if x > tau {
                        low_def = low_def.min(x);
                    } else {
                        c_def.push(j);
                    }
                }
                assert_eq!((low_want, &c_want), (low_def, &c_def));
            }
            assert_eq!(dot(&a, &b).to_bits(), want.to_bits());
            // Batched chains: the same bits.
            if n > 0 {
                let x: Vec<f64> = [&a[..], &b[..], &a[..]].concat();
                let y: Vec<f64> = [&b[..], &a[..]].concat();
                let pairs: Vec<(u32, u32)> = (0..11).map(|t| (t % 3, (t / 3) % 2)).collect();
                let (mut out, mut scratch) = (Vec::new(), DotsScratch::default());
                dots_blocked(&x, &y, n, &pairs, &mut out, &mut scratch).unwrap();
                for (&(i, j), v) in pairs.iter().zip(&out) {
                    let (i, j) = (i as usize, j as usize);
                    let d = dot_body(&x[i * n..(i + 1) * n], &y[j * n..(j + 1) * n]);
                    assert_eq!(v.to_bits(), d.to_bits());
                }
                assert!(dots_blocked(&x, &y, n, &[(3, 0)], &mut out, &mut scratch).is_err());
            }
            // The same bits as the GEMM's entry for these rows.
            if n > 0 {
                let (ra, rb) = (
                    ndarray::ArrayView2::from_shape((1, n), &a[..]).unwrap(),
                    ndarray::ArrayView2::from_shape((1, n), &b[..]).unwrap(),
                );
                let mut c = ndarray::Array2::zeros((1, 1));
                crate::kernels::gemm::Gemm::new()
                    .abt(ra, rb, c.view_mut())
                    .unwrap();
                assert_eq!(c[[0, 0]].to_bits(), want.to_bits(), "gemm n={n}");
            }
        }
    }

    /// [`centre_duals`]: the same bits on every instruction set; from the solver's (feasible)
    /// duals, still feasible (up to the rounding of a few operations) and at most as many
    /// nearly tight entries in total, on random, integer-tied and one-row-dominated problems;
    /// sizes with and without a tail of 8, and `S = 1` (nothing to do).
    #[test]
    fn centred_duals_are_feasible_and_the_same_on_every_isa() {
        let mut isas = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if Isa::detect() >= Isa::Avx2 {
                isas.push(Isa::Avx2);
            }
            if Isa::detect() >= Isa::Avx512 {
                isas.push(Isa::Avx512);
            }
        }
        let mut solver = crate::lap::SapSolver::new();
        for (case, s) in [1_usize, 2, 3, 7, 8, 9, 16, 17, 49, 50, 64]
            .into_iter()
            .enumerate()
        {
            for kind in 0..3 {
                let raw = values(s * s, 31 + (case * 3 + kind) as u64);
                #[allow(clippy::cast_possible_truncation)]
                let a: Vec<f32> = match kind {
                    0 => raw.iter().map(|&x| x as f32).collect(),
                    // small integers: many exact ties
                    1 => raw.iter().map(|&x| (x * 3.0).round() as f32).collect(),
                    // one row far above the others, values ~1e4 apart in scale
                    _ => raw
                        .iter()
                        .enumerate()
                        .map(|(e, &x)| if e < s { (x * 1e4) as f32 } else { x as f32 })
                        .collect(),
                };
                let perm = solver
                    .solve(&a, s, s, crate::lap::Sense::Maximize)
                    .unwrap()
                    .to_vec();
                let v0: Vec<f64> = solver.column_duals()[..s].iter().map(|&d| -d).collect();
                let scale = a.iter().fold(1.0_f64, |m, &x| m.max(f64::from(x).abs()));
                let tol = 1e-12 * scale;
                // Row duals from the assignment; the lowest slack; entries within `near` of
                // tight besides the assigned ones.
                let check = |v: &[f64]| {
                    let (mut worst, mut tight) = (f64::INFINITY, 0);
                    for (i, &k) in perm.iter().enumerate() {
                        let u = f64::from(a[i * s + k]) - v[k];
                        for j in 0..s {
                            let slack = u + v[j] - f64::from(a[i * s + j]);
                            worst = worst.min(slack);
                            if j != k && slack <= 1e-6 * scale {
                                tight += 1;
                            }
                        }
                    }
                    (worst, tight)
                };
                let (worst0, tight0) = check(&v0);
                assert!(worst0 >= -tol, "s={s} kind={kind}: solver duals {worst0}");
                for sweeps in 0..4 {
                    let mut want = v0.clone();
                    let mut scratch = Vec::new();
                    centre_body::<false>(&a, &perm, &mut want, sweeps, &mut scratch);
                    if sweeps == 0 || s == 1 {
                        assert_eq!(want, v0);
                    }
                    for &isa in &isas {
                        let mut got = v0.clone();
                        #[cfg(target_arch = "x86_64")]
                        match isa {
                            // SAFETY: the CPU supports `isa` (Isa::detect above).
                            Isa::Avx512 => unsafe {
                                centre_avx512(&a, &perm, &mut got, sweeps, &mut scratch);
                            },
                            Isa::Avx2 => unsafe {
                                centre_avx2(&a, &perm, &mut got, sweeps, &mut scratch);
                            },
                            Isa::Portable => {
                                centre_body::<false>(&a, &perm, &mut got, sweeps, &mut scratch);
                            }
                        }
                        #[cfg(not(target_arch = "x86_64"))]
                        centre_body::<false>(&a, &perm, &mut got, sweeps, &mut scratch);
                        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&got), bits(&want), "s={s} kind={kind} {isa:?}");
                    }
                    let (worst, tight) = check(&want);
                    assert!(worst >= -tol, "s={s} kind={kind} sweeps={sweeps}: {worst}");
                    assert!(
                        tight <= tight0,
                        "s={s} kind={kind} sweeps={sweeps}: {tight} > {tight0}"
                    );
                    let mut public = v0.clone();
                    centre_duals(&a, &perm, &mut public, sweeps, &mut scratch);
                    assert_eq!(public, want);
                }
            }
        }
    }

    /// The blocked chains on every instruction set: bit for bit the strict chain ([`dot_body`])
    /// and the `f64` GEMM's entry, for any number of entries per row (every group size), rows
    /// used once or many times, `k` in one chunk or several (with a short last one), in any order
    /// of the entries.
    #[test]
    fn blocked_dots_are_the_strict_chains_on_every_isa() {
        let mut isas = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if Isa::detect() >= Isa::Avx2 {
                isas.push(Isa::Avx2);
            }
            if Isa::detect() >= Isa::Avx512 {
                isas.push(Isa::Avx512);
            }
        }
        let mut state = 0x9e37_79b9_u64;
        let mut next = |m: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % m as u64) as usize
        };
        for c in [1_usize, 7, 128, 129, 300, 1000] {
            let (rx, ry) = (23, 17);
            let x = values(rx * c, 5 + c as u64);
            let y = values(ry * c, 9 + c as u64);
            // Rows of x with 0..=19 entries each, then shuffled.
            let mut entries: Vec<(u32, u32)> = Vec::new();
            for i in 0..rx {
                for _ in 0..(i * 7) % 20 {
                    entries.push((i as u32, next(ry) as u32));
                }
            }
            for t in (1..entries.len()).rev() {
                entries.swap(t, next(t + 1));
            }
            let (xa, ya) = (
                ndarray::ArrayView2::from_shape((rx, c), &x[..]).unwrap(),
                ndarray::ArrayView2::from_shape((ry, c), &y[..]).unwrap(),
            );
            let mut full = ndarray::Array2::zeros((rx, ry));
            crate::kernels::gemm::Gemm::new()
                .abt(xa, ya, full.view_mut())
                .unwrap();
            for &isa in &isas {
                let (mut out, mut scratch) = (Vec::new(), DotsScratch::default());
                dots_blocked_on(isa, &x, &y, c, &entries, &mut out, &mut scratch).unwrap();
                assert_eq!(out.len(), entries.len());
                for (&(i, j), v) in entries.iter().zip(&out) {
                    let (i, j) = (i as usize, j as usize);
                    let want = dot_body(&x[i * c..(i + 1) * c], &y[j * c..(j + 1) * c]);
                    assert_eq!(v.to_bits(), want.to_bits(), "{isa:?} c={c} ({i}, {j})");
                    assert_eq!(v.to_bits(), full[[i, j]].to_bits(), "gemm {isa:?} c={c}");
                }
                // f32 rows (widened) likewise; no entries: nothing.
                let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                let y32: Vec<f32> = y.iter().map(|&v| v as f32).collect();
                dots_blocked_on(isa, &x32, &y32, c, &entries, &mut out, &mut scratch).unwrap();
                for (&(i, j), v) in entries.iter().zip(&out) {
                    let (i, j) = (i as usize, j as usize);
                    let want = dot_body(&x32[i * c..(i + 1) * c], &y32[j * c..(j + 1) * c]);
                    assert_eq!(v.to_bits(), want.to_bits());
                }
                // Any order: the same bits on every instruction set, within the documented
                // bound of the exact value (here: of the strict chain, twice the bound).
                let (mut any, mut any_portable, mut none) = (Vec::new(), Vec::new(), Vec::new());
                let lists = [(&[][..], &mut none), (&entries[..], &mut any)];
                blocked(isa, &x, &y, c, lists, &mut scratch).unwrap();
                let lists = [(&[][..], &mut none), (&entries[..], &mut any_portable)];
                blocked(Isa::Portable, &x, &y, c, lists, &mut scratch).unwrap();
                // Both lists in one pass: each value the bits of its own list's pass (here
                // the strict chains of every other entry and the any-order sums of the rest).
                let (half_s, half_a): (Vec<_>, Vec<_>) =
                    entries.iter().enumerate().partition(|(t, _)| t % 2 == 0);
                let half_s: Vec<(u32, u32)> = half_s.into_iter().map(|(_, &e)| e).collect();
                let half_a: Vec<(u32, u32)> = half_a.into_iter().map(|(_, &e)| e).collect();
                let (mut both_s, mut both_a) = (Vec::new(), Vec::new());
                let lists = [(&half_s[..], &mut both_s), (&half_a[..], &mut both_a)];
                blocked(isa, &x, &y, c, lists, &mut scratch).unwrap();
                for (&v, &(i, j)) in both_s.iter().zip(&half_s) {
                    let want = full[[i as usize, j as usize]];
                    assert_eq!(v.to_bits(), want.to_bits(), "both, strict {isa:?} c={c}");
                }
                for (t, &v) in both_a.iter().enumerate() {
                    assert_eq!(
                        v.to_bits(),
                        any[2 * t + 1].to_bits(),
                        "both, any {isa:?} c={c}"
                    );
                }
                let n = (c as f64 + 8.0) * f64::EPSILON / 2.0;
                let gamma = n / (1.0 - n);
                for (t, &(i, j)) in entries.iter().enumerate() {
                    let (i, j) = (i as usize, j as usize);
                    assert_eq!(any[t].to_bits(), any_portable[t].to_bits(), "{isa:?} c={c}");
                    let abs: f64 = (0..c).map(|k| (x[i * c + k] * y[j * c + k]).abs()).sum();
                    let strict = full[[i, j]];
                    assert!(
                        (any[t] - strict).abs() <= 2.0 * gamma * abs,
                        "{isa:?} c={c}"
                    );
                }
                dots_blocked_on(isa, &x, &y, c, &[], &mut out, &mut scratch).unwrap();
                assert!(out.is_empty());
                assert!(
                    dots_blocked_on(isa, &x, &y, c, &[(0, ry as u32)], &mut out, &mut scratch)
                        .is_err()
                );
            }
        }
    }
}
