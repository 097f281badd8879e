#!/usr/bin/env bash
# Builds and runs one libFuzzer + AddressSanitizer harness over the project's pure parsers.
#   fuzz/fuzz.sh <http|json|websocket|socketio|address> [seconds]      (default 300)
# Each harness is compiled with swiftc directly from the few pure source files it needs (no
# package, no C library), seeded from fuzz/<target>/seeds into fuzz/corpus-<target> (seeds never
# overwrite what earlier runs found), run for the given time, and the execution count is printed.
# Crashing inputs land in fuzz/artifacts/<target>/: keep each one as a regression unit test.
set -euo pipefail

target="${1:?usage: fuzz/fuzz.sh <http|json|websocket|socketio|address> [seconds]}"
seconds="${2:-300}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="$root/Sources/Shared"
json=(JSON/JSONValue.swift JSON/JSONObject.swift JSON/JSONParseError.swift JSON/JSONParser.swift JSON/JSONSerializer.swift)

case "$target" in
    http)
        module=HTTPFuzz harness=HTTPParserFuzz.swift binary=http-parser-fuzz
        files=(HTTP/HTTPTypes.swift HTTP/HTTPParserLimits.swift HTTP/HTTPRequestParser.swift HTTP/PercentDecoding.swift HTTP/Router.swift) ;;
    json)
        module=JSONFuzz harness=JSONParserFuzz.swift binary=json-parser-fuzz
        files=("${json[@]}" JSON/JSONObject+Fields.swift JSON/ISO8601Timestamp.swift Security/Base64.swift) ;;
    websocket)
        module=WebSocketFuzz harness=WebSocketParserFuzz.swift binary=websocket-parser-fuzz
        files=(WebSocket/WebSocketTypes.swift WebSocket/WebSocketCloseCode.swift WebSocket/WebSocketMasking.swift
               WebSocket/UTF8Validator.swift WebSocket/WebSocketParser.swift WebSocket/WebSocketFrameEncoder.swift) ;;
    socketio)
        module=SocketIOFuzz harness=SocketIOPacketFuzz.swift binary=socketio-packet-fuzz
        files=(SocketIO/EngineIOPacket.swift SocketIO/EngineIOParseError.swift SocketIO/SocketIOPacket.swift
               SocketIO/SocketIOParseError.swift "${json[@]}") ;;
    address)
        module=AddressFuzz harness=ClientAddressFuzz.swift binary=client-address-fuzz
        files=(HTTP/ClientAddress.swift HTTP/HTTPTypes.swift HTTP/HTTPParserLimits.swift HTTP/HTTPRequestParser.swift
               HTTP/PercentDecoding.swift HTTP/Router.swift Support/Settings.swift) ;;
    *)
        echo "unknown target '$target' (http, json, websocket, socketio, address)" >&2
        exit 2 ;;
esac

bin="$root/fuzz/bin"
corpus="$root/fuzz/corpus-$target"
artifacts="$root/fuzz/artifacts/$target/"
swiftc="${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}"
mkdir -p "$bin" "$corpus" "$artifacts"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

sources=()
for file in "${files[@]}"; do sources+=("$shared/$file"); done

echo "building $bin/$binary"
build_status=0
"$swiftc" -parse-as-library -O -wmo -sanitize=fuzzer,address \
    -swift-version 6 -package-name SwiftChat -module-name "$module" \
    -enable-upcoming-feature ExistentialAny -enable-upcoming-feature MemberImportVisibility \
    "${sources[@]}" "$root/fuzz/$target/$harness" \
    -o "$bin/$binary" >"$log" 2>&1 || build_status=$?
# gold warns once per ASan helper symbol; those lines are noise, everything else is shown.
grep -v "Cannot export local symbol '__asan" "$log" || true
if [ "$build_status" -ne 0 ]; then
    echo "build FAILED (exit $build_status)" >&2
    exit "$build_status"
fi

for seed in "$root/fuzz/$target/seeds"/*; do
    [ -e "$corpus/$(basename "$seed")" ] || cp "$seed" "$corpus/"
done

echo "fuzzing for ${seconds}s (corpus $corpus)"
status=0
"$bin/$binary" "$corpus" \
    -dict="$root/fuzz/$target/$target.dict" \
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
