#!/usr/bin/env bash
# Run every fuzz target for a bounded time and report executions per target.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60. Without TARGET names, all targets run
# one after another. Needs cargo-fuzz (`cargo install cargo-fuzz --locked`);
# on a stable toolchain RUSTC_BOOTSTRAP=1 unlocks the sanitizer flags it
# passes. Seeds come from `cargo run --features seeds --bin seeds` (run
# here first when fuzz/corpus is empty). Crashes land in
# fuzz/artifacts/<target>/; the script exits non-zero if any target crashed.
#
# Environment: CARGO_TARGET_DIR (default fuzz/target), FUZZ_LOG_DIR (the
# libFuzzer logs; default $CARGO_TARGET_DIR/fuzz-logs), CARGO_BUILD_JOBS to
# limit the build on a shared machine.
set -euo pipefail

cd "$(dirname "$0")"
SECS="${1:-60}"
shift || true
TARGETS=("$@")
if [ "${#TARGETS[@]}" -eq 0 ]; then
    TARGETS=(decode_message sync_request sync_response audit_bundle equivocation_evidence engine_ingest)
fi
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

if [ ! -d corpus/engine_ingest ]; then
    cargo run --quiet --features seeds --bin seeds
fi
# One build of every target (optimized, debug assertions and ASan on).
cargo fuzz build -O -a

LOGDIR="${FUZZ_LOG_DIR:-$CARGO_TARGET_DIR/fuzz-logs}"
mkdir -p "$LOGDIR"
declare -A EXECS CRASHED
status=0
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="$LOGDIR/$t.log"
    echo "== $t: ${SECS}s (log: $log)"
    set +e
    cargo fuzz run -O -a "$t" "corpus/$t" -- \
        -max_total_time="$SECS" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        >"$log" 2>&1
    rc=$?
    set -e
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    if [ -z "$n" ]; then
        n=$(sed -n 's/^#\([0-9]*\).*DONE.*/\1/p' "$log" | tail -n1)
    fi
    EXECS[$t]="${n:-?}"
    if [ "$rc" -ne 0 ]; then
        CRASHED[$t]="yes (exit $rc, see $log and artifacts/$t/)"
        status=1
    else
        CRASHED[$t]="no"
    fi
    echo "   executions: ${EXECS[$t]}  crashed: ${CRASHED[$t]}"
done

echo
printf '%-24s %14s  %s\n' target executions crashed
for t in "${TARGETS[@]}"; do
    printf '%-24s %14s  %s\n' "$t" "${EXECS[$t]}" "${CRASHED[$t]}"
done
exit "$status"
