#!/usr/bin/env bash
# Instructions per call, by configuration: callgrind counts a run of 1,000 calls and one of
# 101,000 calls, and the difference divided by 100,000 is printed, so set-up cancels out.
# Needs valgrind (`apt-get install valgrind`). Repeatable to the instruction for one binary.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --features http --bench instructions --no-run 2>/dev/null
bin=$(ls -t target/release/deps/instructions-* | grep -v '\.d$' | head -1)
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '| configuration | instructions per call |\n|---|---:|\n'
for c in ${CONFIGURATIONS:-bare breaker breaker_core breaker_listener breaker_rate_window retry stack http_bare http_breaker http_retry http_stack}; do
    small=$(count "$c" 1000)
    large=$(count "$c" 101000)
    printf '| %s | %s |\n' "$c" "$(( (large - small) / 100000 ))"
done
