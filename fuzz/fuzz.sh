#!/usr/bin/env bash
# Builds and runs one libFuzzer + AddressSanitizer harness over the project's pure parsers.
#   fuzz/fuzz.sh <http|json|websocket|socketio|address|proxy|jwt|session|socket|polling> [seconds]      (default 300)
# Each harness is compiled with swiftc directly (no package build): the Shared layers it needs are
# first compiled, instrumented, as modules of their own (as SwiftPM builds them), then the harness
# module imports them. It is seeded from fuzz/<target>/seeds into fuzz/corpus-<target> (seeds never
# overwrite what earlier runs found), run for the given time, and the execution count is printed.
# Crashing inputs land in fuzz/artifacts/<target>/: keep each one as a regression unit test.
set -euo pipefail

target="${1:?usage: fuzz/fuzz.sh <http|json|websocket|socketio|address|proxy|jwt|session|socket|polling> [seconds]}"
seconds="${2:-300}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="$root/Sources/Shared"

# Per target: the Shared layers the harness imports (the layers are built as modules, in the order
# Package.swift declares them, up to the highest one needed), Gateway files compiled into the
# harness module, extra harness files (under fuzz/), and max_len. `all` builds every layer and the
# `Shared` umbrella.
layers=() gateway=() extra=() max_len=4096 fuzz_flags=()
case "$target" in
    http)
        module=HTTPFuzz harness=HTTPParserFuzz.swift binary=http-parser-fuzz layers=(HTTP) ;;
    json)
        module=JSONFuzz harness=JSONParserFuzz.swift binary=json-parser-fuzz layers=(JSON Security) ;;
    websocket)
        module=WebSocketFuzz harness=WebSocketParserFuzz.swift binary=websocket-parser-fuzz layers=(WebSocket) ;;
    socketio)
        module=SocketIOFuzz harness=SocketIOPacketFuzz.swift binary=socketio-packet-fuzz layers=(SocketIO) ;;
    address)
        module=AddressFuzz harness=ClientAddressFuzz.swift binary=client-address-fuzz layers=(HTTP) ;;
    proxy)
        # max_len: the longest v2 header (16 + 4096 bytes) and some application bytes after it.
        module=ProxyFuzz harness=ProxyProtocolFuzz.swift binary=proxy-protocol-fuzz layers=(HTTP) max_len=4608 ;;
    jwt)
        module=JWTFuzz harness=JWTFuzz.swift binary=jwt-fuzz layers=(all)
        extra=(jwt/FuzzInput.swift) ;;
    session)
        module=SessionFuzz harness=SessionFuzz.swift binary=session-fuzz layers=(all) max_len=8192
        gateway=(Realtime/SocketSessionMachine.swift Realtime/SocketEventBudget.swift App/GatewayErrorCodes.swift
                 Messaging/MessagePayload.swift Messaging/SyncCursor.swift Recovery/RecoveryOffset.swift
                 Dialects/Dialect.swift Dialects/DialectEvents.swift)
        extra=(jwt/FuzzInput.swift) ;;
    socket)
        module=SocketFuzz harness=SocketFuzz.swift binary=socket-fuzz layers=(all) max_len=8192
        # Swift tasks still suspended between two inputs (a check in flight when a program ends) are
        # reported as leaks at libFuzzer's leak check; ASan still checks every access.
        fuzz_flags=(-detect_leaks=0)
        gateway=(Realtime/SocketSession.swift Realtime/SocketSessionHost.swift Realtime/SocketSessionMachine.swift
                 Realtime/SocketEventBudget.swift Realtime/RealtimeConfiguration.swift App/GatewayErrorCodes.swift
                 App/GatewayMetrics.swift Messaging/TypingRelay.swift Messaging/TypingState.swift Messaging/CommandLane.swift
                 Messaging/MessagePayload.swift Messaging/SyncCursor.swift Realtime/EngineLink.swift Realtime/SessionHandOver.swift
                 Recovery/RecoveryOffset.swift Recovery/DeliveryMark.swift Recovery/SessionRecovery.swift Messaging/ReactionMarks.swift
                 Dialects/Dialect.swift Dialects/DialectEvents.swift Dialects/Publication.swift)
        extra=(jwt/FuzzInput.swift) ;;
    polling)
        module=PollingFuzz harness=PollingFuzz.swift binary=polling-fuzz layers=(all) max_len=4096
        gateway=(Realtime/PollingMachine.swift Recovery/RecoveryOffset.swift) ;;
    *)
        echo "unknown target '$target' (http, json, websocket, socketio, address, proxy, jwt, session, socket, polling)" >&2
        exit 2 ;;
esac

bin="$root/fuzz/bin"
corpus="$root/fuzz/corpus-$target"
artifacts="$root/fuzz/artifacts/$target/"
swiftc="${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}"
mkdir -p "$bin" "$corpus" "$artifacts"
log="$(mktemp)"
work="$(mktemp -d)"
trap 'rm -f "$log"; rm -rf "$work"' EXIT

sources=()
for file in "${gateway[@]}"; do sources+=("$root/Sources/Gateway/$file"); done
for file in "${extra[@]}"; do sources+=("$root/fuzz/$file"); done

flags=(-parse-as-library -O -wmo -sanitize=fuzzer,address -swift-version 6 -package-name SwiftChat
       -enable-upcoming-feature ExistentialAny -enable-upcoming-feature MemberImportVisibility)
# The C module maps of Sources/C*, their headers' directories, and the libraries they name.
module_flags=(-I "$work" -I "$root/Sources/CHiredis" -I "$root/Sources/CLibPQ" -I "$root/Sources/COpenSSL"
              -I "$root/Sources/CLinux")
for flag in $(pkg-config --cflags-only-I libpq hiredis openssl) -D_FILE_OFFSET_BITS=64; do
    module_flags+=(-Xcc "$flag")
done
read -r -a link_flags <<<"$(pkg-config --libs libpq hiredis openssl)"

# The layers, lowest first, as Package.swift declares them; build up to the highest one needed.
# (the `let layers` list of Package.swift, then the Umbrella folder, whose module is `Shared`).
mapfile -t all_layers < <(sed -n '/^let layers/,/^]/p' "$root/Package.swift" | grep -oE '^    \("[A-Za-z]+"' | tr -d ' ("')
all_layers+=(Umbrella)
wanted=-1
for index in "${!all_layers[@]}"; do
    for layer in "${layers[@]}"; do
        if [ "$layer" = all ] || [ "$layer" = "${all_layers[$index]}" ]; then wanted=$index; fi
    done
done
objects=()
for ((index = 0; index <= wanted; index++)); do
    layer="${all_layers[$index]}"
    name="$layer"
    [ "$layer" = Umbrella ] && name=Shared
    echo "building the $name module (Sources/Shared/$layer)"
    build_status=0
    mapfile -t layer_sources < <(find "$shared/$layer" -name '*.swift' | sort)
    # -enable-testing: harnesses may `@testable import` a layer to reach its internal helpers.
    "$swiftc" "${flags[@]}" -enable-testing -module-name "$name" "${module_flags[@]}" -c "${layer_sources[@]}" \
        -emit-module -emit-module-path "$work/$name.swiftmodule" -o "$work/$name.o" >"$log" 2>&1 || build_status=$?
    grep -v "Cannot export local symbol '__asan" "$log" || true
    if [ "$build_status" -ne 0 ]; then
        echo "build of $name FAILED (exit $build_status)" >&2
        exit "$build_status"
    fi
    objects+=("$work/$name.o")
done

echo "building $bin/$binary"
build_status=0
"$swiftc" "${flags[@]}" -module-name "$module" "${module_flags[@]}" \
    "${sources[@]}" "$root/fuzz/$target/$harness" "${objects[@]}" "${link_flags[@]}" \
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
    -print_final_stats=1 ${fuzz_flags[@]+"${fuzz_flags[@]}"} >"$log" 2>&1 || status=$?

grep -E '^(INFO: Seed|#[0-9]+[[:space:]]+DONE|Done [0-9]+ runs)' "$log" || true
grep -E 'stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
if [ "$status" -ne 0 ]; then
    tail -n 60 "$log"
    echo "FAILED (exit $status); crashing inputs are in $artifacts" >&2
    exit "$status"
fi
echo "OK: no crash in ${seconds}s"
