#!/usr/bin/env bash
# Builds and runs one libFuzzer + AddressSanitizer harness over the project's pure parsers.
#   fuzz/fuzz.sh <http|json|websocket|socketio|address|jwt|session> [seconds]      (default 300)
# Each harness is compiled with swiftc directly from the few pure source files it needs (no
# package, no C library), seeded from fuzz/<target>/seeds into fuzz/corpus-<target> (seeds never
# overwrite what earlier runs found), run for the given time, and the execution count is printed.
# jwt and session need OpenSSL (HMAC) and Shared files that reference Redis and Postgres: for them
# all of Sources/Shared is first compiled (instrumented) as the module Shared, and the harness
# module imports it, with the Gateway files it needs, as the Gateway does (package access).
# Crashing inputs land in fuzz/artifacts/<target>/: keep each one as a regression unit test.
set -euo pipefail

target="${1:?usage: fuzz/fuzz.sh <http|json|websocket|socketio|address|jwt|session> [seconds]}"
seconds="${2:-300}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="$root/Sources/Shared"
json=(JSON/JSONValue.swift JSON/JSONObject.swift JSON/JSONParseError.swift JSON/JSONParser.swift JSON/JSONSerializer.swift)

# Per target: files (under Sources/Shared), or link_shared=1 with gateway (under Sources/Gateway);
# extra harness files (under fuzz/); max_len.
files=() gateway=() extra=() link_shared=0 max_len=4096
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
    jwt)
        module=JWTFuzz harness=JWTFuzz.swift binary=jwt-fuzz link_shared=1
        extra=(jwt/FuzzInput.swift) ;;
    session)
        module=SessionFuzz harness=SessionFuzz.swift binary=session-fuzz link_shared=1 max_len=8192
        gateway=(Realtime/SocketSessionMachine.swift Realtime/SocketEventBudget.swift
                 Messaging/MessagePayload.swift Messaging/SyncCursor.swift)
        extra=(jwt/FuzzInput.swift) ;;
    *)
        echo "unknown target '$target' (http, json, websocket, socketio, address, jwt, session)" >&2
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
for file in "${gateway[@]}"; do sources+=("$root/Sources/Gateway/$file"); done
for file in "${extra[@]}"; do sources+=("$root/fuzz/$file"); done

flags=(-parse-as-library -O -wmo -sanitize=fuzzer,address -swift-version 6 -package-name SwiftChat
       -enable-upcoming-feature ExistentialAny -enable-upcoming-feature MemberImportVisibility)
module_flags=() link_flags=()
if [ "$link_shared" -eq 1 ]; then
    # The C module maps of Sources/C*, their headers' directories, and the libraries they name.
    work="$(mktemp -d)"
    trap 'rm -f "$log"; rm -rf "$work"' EXIT
    module_flags=(-I "$work" -I "$root/Sources/CHiredis" -I "$root/Sources/CLibPQ" -I "$root/Sources/COpenSSL"
                  -I "$root/Sources/CLinux")
    for flag in $(pkg-config --cflags-only-I libpq hiredis openssl) -D_FILE_OFFSET_BITS=64; do
        module_flags+=(-Xcc "$flag")
    done
    read -r -a link_flags <<<"$(pkg-config --libs libpq hiredis openssl)"
    echo "building the Shared module (all of Sources/Shared)"
    build_status=0
    mapfile -t shared_sources < <(find "$shared" -name '*.swift' | sort)
    "$swiftc" "${flags[@]}" -module-name Shared "${module_flags[@]}" -c "${shared_sources[@]}" \
        -emit-module -emit-module-path "$work/Shared.swiftmodule" -o "$work/Shared.o" >"$log" 2>&1 || build_status=$?
    grep -v "Cannot export local symbol '__asan" "$log" || true
    if [ "$build_status" -ne 0 ]; then
        echo "build of Shared FAILED (exit $build_status)" >&2
        exit "$build_status"
    fi
    link_flags=("$work/Shared.o" "${link_flags[@]}")
fi

echo "building $bin/$binary"
build_status=0
"$swiftc" "${flags[@]}" -module-name "$module" "${module_flags[@]}" \
    "${sources[@]}" "$root/fuzz/$target/$harness" "${link_flags[@]}" \
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
# Swift's own crash backtracer reads the crashed process's memory in a way ASan reports as a second,
# bogus error that hides the real one; libFuzzer prints the stack itself.
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"
status=0
"$bin/$binary" "$corpus" \
    -dict="$root/fuzz/$target/$target.dict" \
    -max_total_time="$seconds" \
    -max_len="$max_len" \
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
