#!/usr/bin/env bash
# Ordering benchmark (issue 12): messages/s that 1, 2 and 4 message workers store, with the
# sharded, leased, fenced command streams of this tree against the unordered consumer group of
# BASELINE_REF, in the same run (variants alternating). The workers drain send commands appended
# as gateways write them; see bench/ordering.py for the method. Prints a markdown table (also saved
# under bench/results/).
#
# Usage: bench/ordering.sh
# Environment:
#   BASELINE_REF (a88557b)   the last commit with one stream read by one consumer group
#   BASELINE_BIN             a MessageWorker binary of that commit (skips building it)
#   SKIP_BUILD=1             reuse this tree's last release build
#   WORKER_COUNTS ("1 2 4")  worker counts to measure
#   MESSAGES (40000)         send commands per run
#   REPEAT (2)               runs per cell (the table shows the median)
#   USERS (1000), PAIRS (2000)  users, and conversations among them, the sends are spread over
# Postgres and Redis live in .data/bench-order/ (random free ports, fsync on: durable commits).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BASELINE_REF="${BASELINE_REF:-a88557b}"
DATA_DIR="$ROOT/.data/bench-order"
WORK="$(mktemp -d /tmp/chat-bench-order.XXXXXX)"
STARTED_PG=0
STARTED_REDIS=0
BASE_TREE=""

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local status=$?
    trap '' INT TERM
    pkill -f "$WORK" 2>/dev/null || true
    ((STARTED_REDIS)) && svc_redis_stop "$DATA_DIR"
    ((STARTED_PG)) && svc_pg_stop "$DATA_DIR"
    [[ -n "$BASE_TREE" ]] && git worktree remove --force "$BASE_TREE" >/dev/null 2>&1
    ((status == 0)) || say "logs kept in $WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[[ -x "$ROOT/.venv/bin/python" ]] || die "no .venv: run scripts/test once (it creates .venv with redis-py)"

header "release build of this tree"
bench_release_build MessageWorker
CURRENT_BIN="$BIN_DIR/MessageWorker"

if [[ -z "${BASELINE_BIN:-}" ]]; then
    header "release build of the baseline $BASELINE_REF (a worktree under $WORK)"
    BASE_TREE="$WORK/baseline"
    git worktree add --detach "$BASE_TREE" "$BASELINE_REF" >/dev/null
    (cd "$BASE_TREE" && swift build -c release --product MessageWorker --scratch-path "$WORK/baseline-build")
    BASELINE_BIN="$WORK/baseline-build/release/MessageWorker"
fi
[[ -x "$BASELINE_BIN" ]] || die "no baseline MessageWorker at $BASELINE_BIN"

header "PostgreSQL and Redis in .data/bench-order"
bench_start_services "$DATA_DIR"
export DATABASE_URL REDIS_URL BENCH_WORK="$WORK"

header "drain benchmark: unordered ($BASELINE_REF) against sharded (this tree)"
mkdir -p bench/results
RESULT="bench/results/ordering-$(date -u +%Y%m%dT%H%M%SZ).md"
"$ROOT/.venv/bin/python" bench/ordering.py "$BASELINE_BIN" "$CURRENT_BIN" | tee "$RESULT"
say "saved $RESULT"
