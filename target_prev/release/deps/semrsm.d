/work/main/target_prev/release/deps/semrsm.d: src/lib.rs src/error.rs src/kernels/mod.rs src/kernels/screen.rs src/kernels/bid.rs src/kernels/centre.rs src/kernels/gemm.rs src/kernels/relax.rs src/kernels/scan.rs src/lap/mod.rs src/lap/auction.rs src/lap/sap.rs src/matching/mod.rs src/matching/auction.rs src/matching/batch.rs src/matching/bound.rs src/matching/greedy.rs src/matching/mixed.rs src/matching/shift.rs src/matching/topk.rs src/rsm/mod.rs src/rsm/none.rs src/rsm/pool.rs src/rsm/scan.rs src/python/mod.rs

/work/main/target_prev/release/deps/libsemrsm.so: src/lib.rs src/error.rs src/kernels/mod.rs src/kernels/screen.rs src/kernels/bid.rs src/kernels/centre.rs src/kernels/gemm.rs src/kernels/relax.rs src/kernels/scan.rs src/lap/mod.rs src/lap/auction.rs src/lap/sap.rs src/matching/mod.rs src/matching/auction.rs src/matching/batch.rs src/matching/bound.rs src/matching/greedy.rs src/matching/mixed.rs src/matching/shift.rs src/matching/topk.rs src/rsm/mod.rs src/rsm/none.rs src/rsm/pool.rs src/rsm/scan.rs src/python/mod.rs

src/lib.rs:
src/error.rs:
src/kernels/mod.rs:
src/kernels/screen.rs:
src/kernels/bid.rs:
src/kernels/centre.rs:
src/kernels/gemm.rs:
src/kernels/relax.rs:
src/kernels/scan.rs:
src/lap/mod.rs:
src/lap/auction.rs:
src/lap/sap.rs:
src/matching/mod.rs:
src/matching/auction.rs:
src/matching/batch.rs:
src/matching/bound.rs:
src/matching/greedy.rs:
src/matching/mixed.rs:
src/matching/shift.rs:
src/matching/topk.rs:
src/rsm/mod.rs:
src/rsm/none.rs:
src/rsm/pool.rs:
src/rsm/scan.rs:
src/python/mod.rs:

# env-dep:CARGO_PKG_VERSION=0.1.0
