#!/usr/bin/env bash
# The own-crate example as CI runs it (docs/own-crate.md): format and lints, a 200-seed sweep
# that passes, the tests passing, and the planted bug found: its tests pass (they expect the
# check to panic with a reproduction line), its sweep exits 1, and the printed reproduction
# line, run with the same feature, replays the failure. `./sim ARGS` is this directory's
# `cargo sim ARGS` (see the script).
set -euo pipefail
cd "$(dirname "$0")"
sim=(--release --target-dir target/sim --config "build.rustflags=['--cfg','madsim']")
seeds=0..200
export FAULTLINE_REPORTS=target/ci-reports FAULTLINE_REGRESSIONS=target/ci-regressions
rm -rf "$FAULTLINE_REPORTS" "$FAULTLINE_REGRESSIONS"

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'own-crate CI FAILED: %s\n' "$*" >&2; exit 1; }

step "format"
cargo fmt -- --check
step "clippy (simulator build, default features and planted-bug)"
cargo clippy --all-targets "${sim[@]}" -- -D warnings
cargo clippy --all-targets --features planted-bug "${sim[@]}" -- -D warnings

step "sweep of $seeds passes"
./sim run --scenario inventory --seeds "$seeds"
step "tests pass (faultline_sim::check over $seeds)"
cargo test "${sim[@]}"

step "planted bug: the test expecting the check to panic with a reproduction line passes"
cargo test "${sim[@]}" --features planted-bug
step "planted bug: the sweep of $seeds fails with exit 1"
set +e
./sim --features planted-bug run --scenario inventory --seeds "$seeds" \
    >target/planted-bug.out 2>&1
code=$?
set -e
cat target/planted-bug.out
[ "$code" -eq 1 ] || fail "the planted-bug sweep exited $code, not 1"
step "planted bug: the printed reproduction line replays the failure"
line=$(grep -m1 -o 'reproduce: cargo sim replay .*' target/planted-bug.out) ||
    fail "no reproduction line printed"
read -r -a replay <<<"${line#reproduce: cargo sim }"
set +e
./sim --features planted-bug "${replay[@]}" >target/replay.out 2>&1
code=$?
set -e
cat target/replay.out
[ "$code" -eq 1 ] || fail "the replay exited $code, not 1"
grep -q 'FAIL invariant:' target/replay.out || fail "the replay did not fail an invariant"
! grep -q 'NOT reproduced\|diverged' target/replay.out || fail "the replay did not reproduce"

echo
echo "own-crate CI passed"
