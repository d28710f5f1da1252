#!/usr/bin/env bash
# Short fuzzing session for every cargo-fuzz target, for CI and before a push.
#
#   bash fuzz/smoke.sh                  # each target for FUZZ_SECONDS (default 20)
#   FUZZ_SECONDS=300 bash fuzz/smoke.sh
#   bash fuzz/smoke.sh rule_eval        # only the named targets
#
# Builds once with `--sanitizer none` (stable rustc, no RUSTC_BOOTSTRAP, faster build and
# ~2x the executions of ASan; safe Rust gains little from ASan), then runs each target from
# its committed seeds (fuzz/seeds/<target>) into the working corpus (fuzz/corpus/<target>,
# gitignored). Debug assertions and overflow checks stay on, as cargo-fuzz does by default.
# Exits non-zero if any target crashes, times out (>10 s on one input) or fails to build;
# crash inputs land in fuzz/artifacts/<target>/. See fuzz/README.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds="${FUZZ_SECONDS:-20}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "smoke.sh: cargo-fuzz not found; installing it (about a minute)"
    cargo install cargo-fuzz --version '^0.13' --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

echo "smoke.sh: building ${targets[*]} (--sanitizer none)"
cargo fuzz build --sanitizer none

failed=()
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target" "fuzz/seeds/$target"
    args=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1)
    if [ -f "fuzz/dicts/$target.dict" ]; then
        args+=(-dict="fuzz/dicts/$target.dict")
    fi
    echo "smoke.sh: fuzzing $target for ${seconds}s"
    log="$(mktemp)"
    if cargo fuzz run --sanitizer none "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- "${args[@]}" \
        >"$log" 2>&1; then
        grep -E '^(#[0-9]+\s+DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
    else
        failed+=("$target")
        # The panic message, then the end of the log: stack, input bytes, artifact path.
        grep -a -A1 -E 'panicked at|ERROR: (libFuzzer|AddressSanitizer)' "$log" | head -n 20 || true
        echo "..."
        grep -avE '^#[0-9]+\s+(NEW|REDUCE|pulse|RELOAD)' "$log" | tail -n 60
    fi
    rm -f "$log"
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "smoke.sh: FAILED: ${failed[*]} (inputs in fuzz/artifacts/<target>/; reproduce with"
    echo "  cargo fuzz run --sanitizer none <target> fuzz/artifacts/<target>/<file>)"
    exit 1
fi
echo "smoke.sh: ${#targets[@]} targets, ${seconds}s each, no crash"
