#!/usr/bin/env bash
# Idle-connection benchmark: for each N, G fresh Gateway processes share one port (SO_REUSEPORT, the
# kernel hashes each new connection to one of them), L ChatLoad processes open N authenticated
# Socket.IO connections (WebSocket transport) between them, spread over several source addresses,
# and hold them; the gateways' RSS per connection and their CPU while idle (Engine.IO pings
# running) are measured, summed over the G processes. Prints a markdown table (also saved under
# bench/results/).
#
# Why several processes: every connection is a file descriptor, and one process can hold at most
# its open-file hard limit of them. Where this was written that limit is 20000 and cannot be raised
# (no CAP_SYS_RESOURCE in the container), so a process holds at most ~19.9k sockets. Several
# gateways on one port is also how the product scales a host (one event loop per process), so
# 50k and 100k are measured as G = ceil(N / 15000) gateways (15000 leaves room for the kernel's
# uneven spread under MAX_CONNECTIONS=19900), driven by L = ceil(N / 18000) ChatLoad processes.
# On a host with a larger limit, GATEWAY_PROCESSES=1 measures one process holding all N (the
# script raises the limit when it may; N ≤ 15000 runs on one process anyway).
#
# Usage: bench/connections.sh [N ...]          (default: 10000 50000 100000)
# Environment:
#   SKIP_BUILD=1            reuse the last release build
#   BENCH_BIN_DIR           take Gateway and ChatLoad from this directory instead (no build)
#   GATEWAY_PROCESSES       gateway processes for every N (default ceil(N / 15000))
#   LOAD_PROCESSES          ChatLoad processes for every N (default ceil(N / 18000))
#   SOURCE_IPS              ChatLoad's source addresses (127.0.0.2-127.0.0.9), used by every ChatLoad
#                           process; each address has its own ephemeral port range towards the
#                           gateway port, shared by all processes, so 8 give room for ~225k
#   CONNECT_RATE (5000)     new connections per second, in total (split over the ChatLoad processes);
#   MAX_IN_FLIGHT (1000)    handshakes at once, in total (likewise split)
#   SETTLE_SECONDS (10)     wait after the last connection before measuring
#   IDLE_SECONDS (30)       measuring window (RSS at its end, CPU over it)
#   PING_INTERVAL_MS (25000) the gateways' SOCKETIO_PING_INTERVAL_MS (every connection is pinged at
#                           least once in a 30 s window)
#   BENCH_LOG_LEVEL (warn)  the gateways' LOG_LEVEL
# Every process needs an open-file limit above its share + 200: as root the script raises the limit
# (up to /proc/sys/fs/nr_open); without CAP_SYS_RESOURCE the hard limit stays, and an N whose
# per-process share does not fit is skipped (raise GATEWAY_PROCESSES / LOAD_PROCESSES).
# Postgres and Redis live in .data/bench-conn/ (random free ports).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZES=("$@")
((${#SIZES[@]} > 0)) || SIZES=(10000 50000 100000)
for n in "${SIZES[@]}"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "connection counts must be positive integers (got '$n')"
done
for name in GATEWAY_PROCESSES LOAD_PROCESSES; do
    value="${!name:-}"
    [[ -z "$value" || "$value" =~ ^[1-9][0-9]*$ ]] || die "$name must be a positive integer (got '$value')"
done
SOURCE_IPS="${SOURCE_IPS:-127.0.0.2-127.0.0.9}"
CONNECT_RATE="${CONNECT_RATE:-5000}"
MAX_IN_FLIGHT="${MAX_IN_FLIGHT:-1000}"
SETTLE_SECONDS="${SETTLE_SECONDS:-10}"
IDLE_SECONDS="${IDLE_SECONDS:-30}"
PING_INTERVAL_MS="${PING_INTERVAL_MS:-25000}"
BENCH_LOG_LEVEL="${BENCH_LOG_LEVEL:-warn}"
# Targets of the issue: RSS per held connection and idle CPU per connection.
TARGET_KIB_PER_CONNECTION=8
TARGET_MICROSECONDS_PER_CONNECTION_SECOND=1
# Planned connections per gateway / ChatLoad process when not overridden. The kernel's spread over
# the gateways is uneven by a few hundred, so a gateway's share stays well under its fd limit.
CONNECTIONS_PER_GATEWAY=15000
CONNECTIONS_PER_LOAD=18000
# Descriptors each process needs besides the connections.
FD_MARGIN=200
# Users are 1000000 + connection index over the whole run: distinct across ChatLoad processes.
USER_BASE=1000000

DATA_DIR="$ROOT/.data/bench-conn"
WORK="$(mktemp -d /tmp/chat-bench-conn.XXXXXX)"
GATEWAY_PIDS=()
LOAD_PIDS=()
STARTED_PG=0
STARTED_REDIS=0
PORT_RANGE_FILE=/proc/sys/net/ipv4/ip_local_port_range
ORIGINAL_PORT_RANGE=""

# SIGTERM to every pid first (so they stop in parallel), then wait for each (SIGKILL after 30 s).
stop_all() { # <name> [pid ...]
    local name="$1" pid
    shift
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "$@"; do stop_child "$pid" "$name" 30; done
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local rc=$?
    trap '' INT TERM
    stop_all ChatLoad "${LOAD_PIDS[@]}"
    stop_all Gateway "${GATEWAY_PIDS[@]}"
    ((STARTED_REDIS)) && svc_redis_stop "$DATA_DIR"
    ((STARTED_PG)) && svc_pg_stop "$DATA_DIR"
    if [[ -n "$ORIGINAL_PORT_RANGE" ]]; then
        printf '%s\n' "$ORIGINAL_PORT_RANGE" >"$PORT_RANGE_FILE" 2>/dev/null &&
            say "restored net.ipv4.ip_local_port_range to '$ORIGINAL_PORT_RANGE'"
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- helpers ------------------------------------------------------------------------------------

rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }
# utime + stime in clock ticks (fields 14 and 15; the command name may hold spaces, so cut after ')').
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
now() { date +%s.%N; }
calc() { awk "BEGIN { $1 }"; }
ceil_div() { echo $((($1 + $2 - 1) / $2)); }
# The sum of a command's output over several pids: sum_over <function> <pid ...>.
sum_over() {
    local fn="$1" pid total=0
    shift
    for pid in "$@"; do total=$((total + $("$fn" "$pid"))); done
    echo "$total"
}
# The last status line of a ChatLoad log, and one field (key=value) of it.
last_status() { grep '^t=' "$1" | tail -n 1; }
# The last status line of every log at one moment, then a field summed over such a snapshot, so
# that the fields of one report come from the same lines.
status_snapshot() { # <log ...>
    local log
    for log in "$@"; do last_status "$log" || true; done
}
snapshot_sum() { # <field> <snapshot>
    awk -v k="$1" '{ for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) s += substr($i, length(k) + 2) } END { print s + 0 }' <<<"$2"
}
ramp_field() { sed -n "s/^ramp complete: .*$2=\([0-9]*\).*/\1/p" "$1"; }
json_field() { grep -o "\"$2\":[^,}]*" "$1" | head -n 1 | cut -d: -f2 | tr -d '"'; }
# Whether process <pid> holds a TCP socket listening on <port> (matched by socket inode, so each of
# several SO_REUSEPORT listeners on the same port is checked on its own).
listening_on() { # <pid> <port>
    local pid="$1" hex inode fd
    hex="$(printf '%04X' "$2")"
    while read -r inode; do
        for fd in "/proc/$pid/fd/"*; do
            [[ "$(readlink "$fd" 2>/dev/null)" == "socket:[$inode]" ]] && return 0
        done
    done < <(awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null || true)
    return 1
}

# Processes for size <n>: the override, else the planned share per process.
gateway_processes_for() { if [[ -n "${GATEWAY_PROCESSES:-}" ]]; then echo "$GATEWAY_PROCESSES"; else ceil_div "$1" "$CONNECTIONS_PER_GATEWAY"; fi; }
load_processes_for() { if [[ -n "${LOAD_PROCESSES:-}" ]]; then echo "$LOAD_PROCESSES"; else ceil_div "$1" "$CONNECTIONS_PER_LOAD"; fi; }

# The largest number of connections one process holds, over the requested sizes.
MAX_N=0
MAX_PER_PROCESS=0
for n in "${SIZES[@]}"; do
    ((n > MAX_N)) && MAX_N=$n
    for share in "$(ceil_div "$n" "$(gateway_processes_for "$n")")" "$(ceil_div "$n" "$(load_processes_for "$n")")"; do
        ((share > MAX_PER_PROCESS)) && MAX_PER_PROCESS=$share
    done
done

# --- setup --------------------------------------------------------------------------------------

header "Debian packages"
ensure_packages "${CHAT_BASE_PACKAGES[@]}"
ensure_swift

header "release build"
if [[ -n "${BENCH_BIN_DIR:-}" ]]; then
    say "BENCH_BIN_DIR=$BENCH_BIN_DIR: using the Gateway and ChatLoad built there"
    BIN_DIR="$BENCH_BIN_DIR"
else
    bench_release_build Gateway ChatLoad
fi
[[ -x "$BIN_DIR/Gateway" ]] || die "$BIN_DIR/Gateway is missing"
[[ -x "$BIN_DIR/ChatLoad" ]] || die "$BIN_DIR/ChatLoad is missing"

header "limits"
NR_OPEN="$(cat /proc/sys/fs/nr_open 2>/dev/null || echo 1048576)"
# Room for the kernel's uneven spread over the gateways (a 1000 is many standard deviations).
WANT_FDS=$((MAX_PER_PROCESS + FD_MARGIN + 1000))
((WANT_FDS > NR_OPEN)) && WANT_FDS=$NR_OPEN
if (($(ulimit -Hn) < WANT_FDS)); then
    # Raising the hard limit needs CAP_SYS_RESOURCE (root on a normal host, not in every container).
    ulimit -Hn "$WANT_FDS" 2>/dev/null || warn "cannot raise the open-file hard limit to $WANT_FDS (no CAP_SYS_RESOURCE?)"
fi
ulimit -Sn "$(ulimit -Hn)"
FD_LIMIT="$(ulimit -Sn)"
# What one gateway may hold: its fd limit less its own descriptors (listener, epoll, Redis, Postgres).
GATEWAY_FD_CAPACITY=$((FD_LIMIT - 100))
say "open files per process: $FD_LIMIT (fs.nr_open $NR_OPEN); a process whose share exceeds $((FD_LIMIT - FD_MARGIN)) cannot hold it"

# Each source address has its own ephemeral range towards the gateway port (ChatLoad binds with
# IP_BIND_ADDRESS_NO_PORT, so the port is chosen at connect() for a unique 4-tuple). All ChatLoad
# processes use every source address and draw from the same per-address range, so the busiest
# address needs N / addresses ports whatever the number of processes. Widen the range only when
# that does not fit.
read -r PORT_LOW PORT_HIGH <"$PORT_RANGE_FILE"
# Counts "a.b.c.d-a.b.c.e" / "a.b.c.d-e" ranges and single addresses, as ChatLoad reads them.
SOURCE_COUNT="$(awk -v s="$SOURCE_IPS" 'BEGIN {
    n = 0; k = split(s, parts, ",")
    for (i = 1; i <= k; i++) {
        if (split(parts[i], r, "-") == 2) { split(r[1], a, "."); m = split(r[2], b, "."); n += b[m] - a[4] + 1 } else n++
    }
    print n }')"
PER_SOURCE=$(((MAX_N + SOURCE_COUNT - 1) / SOURCE_COUNT))
if ((PER_SOURCE > PORT_HIGH - PORT_LOW - 500)); then
    if [[ -w "$PORT_RANGE_FILE" ]] && printf '1024 65000\n' >"$PORT_RANGE_FILE" 2>/dev/null; then
        ORIGINAL_PORT_RANGE="$PORT_LOW $PORT_HIGH"
        say "set net.ipv4.ip_local_port_range to '1024 65000' ($PER_SOURCE connections per source address; restored at exit)"
    else
        warn "net.ipv4.ip_local_port_range ($PORT_LOW-$PORT_HIGH) is not writable and too small for $PER_SOURCE connections per source address: add source addresses (SOURCE_IPS)"
    fi
else
    say "ephemeral ports $PORT_LOW-$PORT_HIGH per source address; $SOURCE_COUNT source addresses ($SOURCE_IPS) shared by all ChatLoad processes: at most $PER_SOURCE connections each"
fi

header "PostgreSQL and Redis in .data/bench-conn"
# Fresh servers every run: presence keys, last-seen times and users left by an earlier run would
# otherwise make this run's gateways sweep and announce them, and the figures depend on history.
svc_wipe "$DATA_DIR"
bench_start_services "$DATA_DIR"
JWT_SECRET="$(head -c 48 /dev/urandom | base64 -w 0)"
CLK_TCK="$(getconf CLK_TCK)"

# --- one size -----------------------------------------------------------------------------------

ROWS=()
DETAILS=()

# Starts <count> gateways on one fresh port, one after the other, each confirmed listening.
start_gateways() { # <n> <count>
    local n="$1" count="$2" g pid log deadline max_connections
    GATEWAY_PORT="$(free_port)"
    # Each process's cap is what it can hold (its fd limit), or N + 1000 when that is smaller.
    max_connections=$((n + 1000))
    ((max_connections > GATEWAY_FD_CAPACITY)) && max_connections=$GATEWAY_FD_CAPACITY
    GATEWAY_MAX_CONNECTIONS=$max_connections
    for ((g = 1; g <= count; g++)); do
        log="$WORK/gateway-$n-$g.log"
        env PORT="$GATEWAY_PORT" HOST=127.0.0.1 ADMIN_HOST=127.0.0.1 ADMIN_PORT=0 CHAT_ENV=production LOG_LEVEL="$BENCH_LOG_LEVEL" \
            GATEWAY_ID="bench-gw-$g" \
            DATABASE_URL="$DATABASE_URL" REDIS_URL="$REDIS_URL" JWT_SECRET="$JWT_SECRET" \
            MAX_CONNECTIONS="$max_connections" MAX_CONNECTIONS_PER_IP="$n" \
            SOCKETIO_PING_INTERVAL_MS="$PING_INTERVAL_MS" \
            "$BIN_DIR/Gateway" >"$log" 2>&1 &
        pid=$!
        GATEWAY_PIDS+=("$pid")
        # /health may be answered by any listener on the shared port: check this process's own.
        deadline=$((SECONDS + 60))
        until listening_on "$pid" "$GATEWAY_PORT"; do
            if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
                tail -n 30 "$log" >&2
                die "Gateway $g of $count (pid $pid) did not listen on port $GATEWAY_PORT"
            fi
            sleep 0.2
        done
    done
    wait_http "$GATEWAY_PORT" /health 60 200 || die "the gateways on port $GATEWAY_PORT do not answer /health"
}

# The connections' users must exist: a CONNECT with a valid token of an account that does not exist
# is refused (token_revoked). One INSERT ... SELECT makes users USER_BASE...USER_BASE+n-1 (the
# gateways have applied the migrations by now); existing ones are kept.
seed_users() { # <n>
    "$SVC_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" >/dev/null <<SQL
INSERT INTO users (id, username, email, password_hash, display_name) OVERRIDING SYSTEM VALUE
SELECT g, 'bench' || g, 'bench' || g || '@bench.invalid', 'x', 'bench' || g
FROM generate_series($USER_BASE::bigint, $USER_BASE::bigint + $1 - 1) AS g
ON CONFLICT DO NOTHING;
SQL
}

run_size() { # <n>
    local n="$1" gateways loads
    gateways="$(gateway_processes_for "$n")"
    loads="$(load_processes_for "$n")"
    header "N = $n: $gateways gateway process(es), $loads ChatLoad process(es)"
    local gateway_share load_share
    gateway_share="$(ceil_div "$n" "$gateways")"
    load_share="$(ceil_div "$n" "$loads")"
    if ((gateway_share + FD_MARGIN > FD_LIMIT || load_share + FD_MARGIN > FD_LIMIT)); then
        warn "skipping N=$n: the open-file limit is $FD_LIMIT and a process would hold up to $((gateway_share > load_share ? gateway_share : load_share)) (raise GATEWAY_PROCESSES / LOAD_PROCESSES, or the hard limit as root with CAP_SYS_RESOURCE)"
        ROWS+=("| $n | $gateways | skipped: open-file limit $FD_LIMIT | | | | | | |")
        return 0
    fi
    start_gateways "$n" "$gateways"
    seed_users "$n"
    sleep 2
    local pid g
    local -a rss_before=() fds_before=()
    for pid in "${GATEWAY_PIDS[@]}"; do
        rss_before+=("$(rss_kib "$pid")")
        fds_before+=("$(fd_count "$pid")")
    done
    local rss_before_total=0
    for g in "${rss_before[@]}"; do rss_before_total=$((rss_before_total + g)); done
    say "Gateway pids ${GATEWAY_PIDS[*]} on port $GATEWAY_PORT (MAX_CONNECTIONS=$GATEWAY_MAX_CONNECTIONS each), RSS before: ${rss_before[*]} KiB (total $rss_before_total), fds: ${fds_before[*]}"

    # Each ChatLoad process opens its share with its own users, at its share of the rate.
    local rate in_flight i share offset=0 log
    local -a logs=()
    rate="$(ceil_div "$CONNECT_RATE" "$loads")"
    in_flight="$(ceil_div "$MAX_IN_FLIGHT" "$loads")"
    for ((i = 0; i < loads; i++)); do
        share=$((n / loads + (i < n % loads ? 1 : 0)))
        log="$WORK/load-$n-$i.log"
        logs+=("$log")
        env JWT_SECRET="$JWT_SECRET" "$BIN_DIR/ChatLoad" --url "ws://127.0.0.1:$GATEWAY_PORT" --connections "$share" \
            --source-ips "$SOURCE_IPS" --rate "$rate" --max-in-flight "$in_flight" --hold forever \
            --user-base "$((USER_BASE + offset))" --ttl 7200 >"$log" 2>&1 &
        LOAD_PIDS+=("$!")
        offset=$((offset + share))
    done
    say "ChatLoad pids ${LOAD_PIDS[*]}: $loads x ~$load_share connections at $rate/s each, users $USER_BASE...$((USER_BASE + n - 1))"

    local deadline=$((SECONDS + n / CONNECT_RATE + 120)) shown=0 complete snapshot
    while :; do
        complete=0
        for ((i = 0; i < loads; i++)); do
            if grep -q '^ramp complete' "${logs[i]}"; then
                complete=$((complete + 1))
            elif ! kill -0 "${LOAD_PIDS[i]}" 2>/dev/null; then
                tail -n 20 "${logs[i]}" >&2
                die "ChatLoad $i (pid ${LOAD_PIDS[i]}) exited before every connection was resolved"
            fi
        done
        ((complete == loads)) && break
        for pid in "${GATEWAY_PIDS[@]}"; do
            kill -0 "$pid" 2>/dev/null || die "Gateway pid $pid exited during the ramp"
        done
        ((SECONDS < deadline)) || die "ChatLoad did not finish the ramp within $((n / CONNECT_RATE + 120)) s"
        if ((SECONDS - shown >= 5)); then
            shown=$SECONDS
            snapshot="$(status_snapshot "${logs[@]}")"
            say "  ramps complete $complete/$loads: started=$(snapshot_sum started "$snapshot") open=$(snapshot_sum open "$snapshot") connecting=$(snapshot_sum connecting "$snapshot") refused=$(snapshot_sum refused "$snapshot") failed=$(snapshot_sum failed "$snapshot")"
        fi
        sleep 0.5
    done
    local connected=0 refused=0 failed=0 ramp_lines=""
    for log in "${logs[@]}"; do
        connected=$((connected + $(ramp_field "$log" connected)))
        refused=$((refused + $(ramp_field "$log" refused)))
        failed=$((failed + $(ramp_field "$log" failed)))
        ramp_lines+="${ramp_lines:+; }$(grep '^ramp complete' "$log" | sed 's/^ramp complete: //')"
    done
    say "  ramp complete: connected=$connected refused=$refused failed=$failed ($ramp_lines)"

    say "settling ${SETTLE_SECONDS}s, then measuring ${IDLE_SECONDS}s of idle"
    sleep "$SETTLE_SECONDS"
    local pings_start t0 c0 t1 c1 held pings_end
    # Pings from the status lines of the last second before each end of the window (same lag at both).
    pings_start="$(snapshot_sum pings "$(status_snapshot "${logs[@]}")")"
    t0="$(now)"
    c0="$(sum_over cpu_ticks "${GATEWAY_PIDS[@]}")"
    sleep "$IDLE_SECONDS"
    c1="$(sum_over cpu_ticks "${GATEWAY_PIDS[@]}")"
    t1="$(now)"
    pings_end="$(snapshot_sum pings "$(status_snapshot "${logs[@]}")")"
    local -a rss_held=() fds_held=() per_gateway=()
    local rss_held_total=0 per_gateway_total=0 load_rss_total=0
    for ((g = 0; g < gateways; g++)); do
        pid="${GATEWAY_PIDS[g]}"
        rss_held+=("$(rss_kib "$pid")")
        fds_held+=("$(fd_count "$pid")")
        per_gateway+=("$((fds_held[g] - fds_before[g]))")
        rss_held_total=$((rss_held_total + rss_held[g]))
        per_gateway_total=$((per_gateway_total + per_gateway[g]))
    done
    load_rss_total="$(sum_over rss_kib "${LOAD_PIDS[@]}")"
    sleep 1.2 # one more ChatLoad status line
    held="$(snapshot_sum open "$(status_snapshot "${logs[@]}")")"
    ((held > 0)) || held="$connected"
    if ((held == 0)); then
        stop_all ChatLoad "${LOAD_PIDS[@]}"
        LOAD_PIDS=()
        stop_all Gateway "${GATEWAY_PIDS[@]}"
        GATEWAY_PIDS=()
        for log in "${logs[@]}"; do tail -n 3 "$log" >&2; done
        warn "N=$n: no connection was held (see the ChatLoad lines above)"
        ROWS+=("| $n | $gateways | 0: refused $refused, failed $failed | | | | | | no |")
        return 0
    fi

    say "closing: SIGTERM to the ChatLoad processes"
    for pid in "${LOAD_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    local load_statuses="" status
    for pid in "${LOAD_PIDS[@]}"; do
        for ((i = 0; i < 600; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            warn "ChatLoad pid $pid did not finish closing within 60 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        status=0
        wait "$pid" || status=$?
        load_statuses+="${load_statuses:+/}$status"
    done
    LOAD_PIDS=()
    sleep 3
    local -a fds_after=()
    for pid in "${GATEWAY_PIDS[@]}"; do fds_after+=("$(fd_count "$pid")"); done
    stop_all Gateway "${GATEWAY_PIDS[@]}"
    GATEWAY_PIDS=()

    local summaries="" closed_gracefully=0 p99_max=0 value
    for ((i = 0; i < loads; i++)); do
        local summary="$WORK/summary-$n-$i.json"
        grep '^{"summary"' "${logs[i]}" >"$summary" || echo '{}' >"$summary"
        value="$(json_field "$summary" closedGracefully)"
        [[ "$value" =~ ^[0-9]+$ ]] && closed_gracefully=$((closed_gracefully + value))
        value="$(json_field "$summary" p99)"
        [[ -n "$value" ]] && p99_max="$(calc "printf \"%.3f\", ($value > $p99_max) ? $value : $p99_max")"
        summaries+=$'\n'"  - ChatLoad $i summary: \`$(cat "$summary")\`"
    done

    local window cpu_seconds bytes_per kib_per us_per met rss_delta
    window="$(calc "printf \"%.3f\", $t1 - $t0")"
    rss_delta=$((rss_held_total - rss_before_total))
    cpu_seconds="$(calc "printf \"%.2f\", ($c1 - $c0) / $CLK_TCK")"
    bytes_per="$(calc "printf \"%.0f\", $rss_delta * 1024 / $held")"
    kib_per="$(calc "printf \"%.2f\", $rss_delta / $held")"
    us_per="$(calc "printf \"%.3f\", ($c1 - $c0) / $CLK_TCK * 1e6 / ($held * $window)")"
    met="$(calc "print (($kib_per <= $TARGET_KIB_PER_CONNECTION && $us_per < $TARGET_MICROSECONDS_PER_CONNECTION_SECOND && $held == $n) ? \"yes\" : \"no\")")"
    ROWS+=("| $n | $gateways | $connected (held $held) | $(calc "printf \"%.1f\", $rss_before_total / 1024") | $(calc "printf \"%.1f\", $rss_held_total / 1024") | $bytes_per | $kib_per | $us_per | $met |")
    local spread_min spread_max
    spread_min="$(printf '%s\n' "${per_gateway[@]}" | awk 'NR == 1 || $1 < m { m = $1 } END { print m }')"
    spread_max="$(printf '%s\n' "${per_gateway[@]}" | awk 'NR == 1 || $1 > m { m = $1 } END { print m }')"
    DETAILS+=("- N=$n: connections held per gateway process (fds held − fds before): $(
        IFS=/
        echo "${per_gateway[*]}"
    ) (sum $per_gateway_total, min $spread_min, max $spread_max, ideal $(calc "printf \"%.0f\", $n / $gateways")); RSS held per process $(
        IFS=/
        echo "${rss_held[*]}"
    ) KiB; gateway CPU ${cpu_seconds}s over ${window}s idle; pings answered in the window: $((pings_end - pings_start)) ($(calc "printf \"%.2f\", ($pings_end - $pings_start) / $held") per connection, $(calc "printf \"%.2f\", $window * 1000 / $PING_INTERVAL_MS") for evenly spread ping phases; gateway CPU $(calc "printf \"%.1f\", ($pings_end > $pings_start) ? ($c1 - $c0) / $CLK_TCK * 1e6 / ($pings_end - $pings_start) : 0") µs per ping, so ≈ $(calc "printf \"%.3f\", ($pings_end > $pings_start) ? ($c1 - $c0) / $CLK_TCK * 1e6 / ($pings_end - $pings_start) / ($PING_INTERVAL_MS / 1000) : 0") µs/conn/s at one ping per connection per interval); gateway fds 3 s after the close $(
        IFS=/
        echo "${fds_after[*]}"
    )")
    DETAILS+=("  - $loads ChatLoad process(es): connected=$connected refused=$refused failed=$failed; RSS $(calc "printf \"%.1f\", $load_rss_total / 1024") MiB in total; exit status $load_statuses; worst p99 connect latency ${p99_max} ms; closed gracefully $closed_gracefully$summaries")
    say "N=$n on $gateways gateway(s): per process ${per_gateway[*]}; ${kib_per} KiB/connection, ${us_per} µs/connection/s idle (target met: $met)"
}

for n in "${SIZES[@]}"; do run_size "$n"; done

# --- result -------------------------------------------------------------------------------------

mkdir -p "$ROOT/bench/results"
RESULT="$ROOT/bench/results/connections-$(date -u +%Y%m%dT%H%M%SZ).md"
{
    echo "Idle Socket.IO connections on Gateway processes sharing one port (SO_REUSEPORT): $(nproc) cores, $(uname -r)," \
        "$(date -u +%Y-%m-%d); ChatLoad from $SOURCE_IPS at $CONNECT_RATE/s in total, settle ${SETTLE_SECONDS}s," \
        "idle window ${IDLE_SECONDS}s, pingInterval ${PING_INTERVAL_MS} ms; open-file limit $FD_LIMIT per process" \
        "(hence ceil(N / $CONNECTIONS_PER_GATEWAY) gateways unless GATEWAY_PROCESSES is set)"
    echo
    echo "RSS is the gateways' VmRSS summed over the processes (user-space memory; kernel socket buffers are not" \
        "in it). Bytes per connection = (RSS held - RSS before) / connections held; idle CPU = the gateways'" \
        "utime+stime over the window / (connections held x window seconds)."
    echo
    echo "| N | gateway processes | connected | RSS before (MiB, total) | RSS held (MiB, total) | bytes/connection | KiB/connection | idle CPU µs/conn/s | target met (≤ $TARGET_KIB_PER_CONNECTION KiB, < $TARGET_MICROSECONDS_PER_CONNECTION_SECOND µs) |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|:---:|"
    printf '%s\n' "${ROWS[@]}"
    echo
    printf '%s\n' "${DETAILS[@]}"
} >"$RESULT"
header "result (saved to ${RESULT#"$ROOT"/})"
cat "$RESULT"
