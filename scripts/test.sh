#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the peers the tests drive (as root),
# checks formatting and lints, runs unit and integration tests against real servers, and
# gives every fuzz target a short smoke run (FUZZ_SECONDS per target; 0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-peers.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== cargo test"
cargo test --workspace --quiet 2>&1 | tee "$log"
# tee hides cargo's exit status from `set -e`.
test "${PIPESTATUS[0]}" -eq 0

if [[ "${FUZZ_SECONDS:-15}" != 0 ]]; then
  echo "== fuzz smoke run"
  FUZZ_SECONDS="${FUZZ_SECONDS:-15}" fuzz/smoke.sh
fi

passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
echo "${passed} passed, ${failed} failed"
