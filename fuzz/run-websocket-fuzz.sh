#!/usr/bin/env bash
# Fuzzes the WebSocket frame parser (with the frame encoder and the UTF-8 validator) with
# libFuzzer + AddressSanitizer.
#   fuzz/run-websocket-fuzz.sh [seconds]      (default 300)
# Builds fuzz/bin/websocket-parser-fuzz from the pure WebSocket sources (no other Shared folder, no
# OpenSSL: the handshake and the connection are left out), seeds fuzz/corpus-websocket from
# fuzz/websocket/seeds, runs for the given time and prints the executions count. Crashing inputs land
# in fuzz/artifacts/websocket/: keep each one as a regression unit test.
set -euo pipefail

seconds="${1:-300}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sources="$root/Sources/Shared/WebSocket"
bin="$root/fuzz/bin"
corpus="$root/fuzz/corpus-websocket"
artifacts="$root/fuzz/artifacts/websocket/"
swiftc="${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}"

mkdir -p "$bin" "$corpus" "$artifacts"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

echo "building $bin/websocket-parser-fuzz"
build_status=0
"$swiftc" -parse-as-library -O -wmo -sanitize=fuzzer,address \
    -swift-version 6 -package-name SwiftChat -module-name WebSocketFuzz \
    -enable-upcoming-feature ExistentialAny -enable-upcoming-feature MemberImportVisibility \
    "$sources/WebSocketTypes.swift" \
    "$sources/WebSocketCloseCode.swift" \
    "$sources/WebSocketMasking.swift" \
    "$sources/UTF8Validator.swift" \
    "$sources/WebSocketParser.swift" \
    "$sources/WebSocketFrameEncoder.swift" \
    "$root/fuzz/websocket/WebSocketParserFuzz.swift" \
    -o "$bin/websocket-parser-fuzz" >"$log" 2>&1 || build_status=$?
# gold warns once per ASan helper symbol; those lines are noise, everything else is shown.
grep -v "Cannot export local symbol '__asan" "$log" || true
if [ "$build_status" -ne 0 ]; then
    echo "build FAILED (exit $build_status)" >&2
    exit "$build_status"
fi

# Seeds never overwrite what earlier runs found.
for seed in "$root"/fuzz/websocket/seeds/*; do
    [ -e "$corpus/$(basename "$seed")" ] || cp "$seed" "$corpus/"
done

echo "fuzzing for ${seconds}s (corpus $corpus)"
status=0
"$bin/websocket-parser-fuzz" "$corpus" \
    -dict="$root/fuzz/websocket/websocket.dict" \
    -max_total_time="$seconds" \
    -max_len=4096 \
    -artifact_prefix="$artifacts" \
    -print_final_stats=1 >"$log" 2>&1 || status=$?

grep -E '^(INFO: Seed|#[0-9]+[[:space:]]+DONE|Done [0-9]+ runs)' "$log" || true
grep -E 'stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
if [ "$status" -ne 0 ]; then
    tail -n 60 "$log"
    echo "FAILED (exit $status); crashing inputs are in $artifacts" >&2
    exit "$status"
fi
echo "OK: no crash in ${seconds}s"
