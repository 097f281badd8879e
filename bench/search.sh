#!/usr/bin/env bash
# Message search benchmark (issue 14): MESSAGES messages (default 1,000,000) in CONVERSATIONS
# rooms (default 10,000) of two members each; one user is a member of USER_CONVERSATIONS of them
# (default 1,000, so ~100,000 messages are theirs to search). Content: 10-12 words drawn from a
# vocabulary of 5,000 pseudo-words. Measured through the REST API (`GET /api/messages/search`,
# limit 20) for that user, substring and word mode, over TERMS terms sampled from their messages:
# p50/p99/max latency with the indexes (trigram GIN, simple tsvector GIN), and, in the same run,
# the same requests against a second gateway whose Postgres sessions have index scans switched off
# (`enable_indexscan`, `enable_bitmapscan`, `enable_indexonlyscan` = off): a sequential scan of the
# same query.
#
# Usage: bench/search.sh
# Environment: SKIP_BUILD=1, MESSAGES, CONVERSATIONS, USER_CONVERSATIONS, TERMS (20), REPEAT (5)
# Postgres and Redis live in .data/bench-search/ (wiped each run).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MESSAGES="${MESSAGES:-1000000}"
CONVERSATIONS="${CONVERSATIONS:-10000}"
USER_CONVERSATIONS="${USER_CONVERSATIONS:-1000}"
TERMS="${TERMS:-20}"
REPEAT="${REPEAT:-5}"
for value in "$MESSAGES" "$CONVERSATIONS" "$USER_CONVERSATIONS" "$TERMS" "$REPEAT"; do
    [[ "$value" =~ ^[1-9][0-9]*$ ]] || die "MESSAGES, CONVERSATIONS, USER_CONVERSATIONS, TERMS and REPEAT must be positive integers"
done
((USER_CONVERSATIONS <= CONVERSATIONS)) || die "USER_CONVERSATIONS must be at most CONVERSATIONS"
PER_CONVERSATION=$((MESSAGES / CONVERSATIONS))
((PER_CONVERSATION >= 1)) || die "MESSAGES must be at least CONVERSATIONS"
USER_BASE=5000000
bench_setup search

header "release build"
bench_release_build Gateway

header "PostgreSQL and Redis in .data/bench-search"
svc_wipe "$DATA_DIR"
bench_start_services "$DATA_DIR"
JWT_SECRET="$(head -c 48 /dev/urandom | base64 -w 0)"

header "gateways: with indexes, and with index scans off"
bench_start_gateway search-indexed "$WORK/gateway-indexed.log"
INDEXED_URL="http://127.0.0.1:$GATEWAY_PORT"
token="$(bench_user_token "$INDEXED_URL")"
searcher="$("$ROOT/.venv/bin/python" -c 'import base64, json, sys; p = sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["sub"])' "$token")"
SEQSCAN_DATABASE_URL="$DATABASE_URL?options=-c%20enable_indexscan%3Doff%20-c%20enable_bitmapscan%3Doff%20-c%20enable_indexonlyscan%3Doff"
DATABASE_URL="$SEQSCAN_DATABASE_URL" bench_start_gateway search-seqscan "$WORK/gateway-seqscan.log"
SEQSCAN_URL="http://127.0.0.1:$GATEWAY_PORT"

header "$MESSAGES messages in $CONVERSATIONS conversations (user $searcher in $USER_CONVERSATIONS)"
started=$SECONDS
bench_psql <<SQL
-- Loaded without the search indexes, which are built afterwards (as the migration defines them).
DROP INDEX messages_content_trgm_idx;
DROP INDEX messages_content_words_idx;
INSERT INTO users (id, username, email, password_hash, display_name) OVERRIDING SYSTEM VALUE
SELECT g, 'srch' || g, 'srch' || g || '@bench.invalid', 'x', 'srch' || g
FROM generate_series($USER_BASE::bigint, $USER_BASE::bigint + $CONVERSATIONS - 1) AS g;
CREATE TEMP TABLE rooms AS
WITH created AS (
    INSERT INTO conversations (kind, name, member_count, last_seq)
    SELECT 'room', 'search ' || g, 2, $PER_CONVERSATION FROM generate_series(1, $CONVERSATIONS) AS g RETURNING id
)
SELECT id, row_number() OVER (ORDER BY id) AS n FROM created;
INSERT INTO conversation_members (conversation_id, user_id, role)
SELECT id, $USER_BASE + n - 1, 'admin' FROM rooms;
INSERT INTO conversation_members (conversation_id, user_id)
SELECT id, $searcher FROM rooms WHERE n <= $USER_CONVERSATIONS;
-- Word k of the vocabulary is the first 4-8 hex digits of md5(k), k uniform in 0..4999.
INSERT INTO messages (conversation_id, seq, sender_id, client_msg_id, content, created_at)
SELECT r.id, s.seq, $USER_BASE + r.n - 1, 'b' || r.id || '-' || s.seq,
       (SELECT string_agg(substr(md5(w.k::text), 1, 4 + w.k % 5), ' ')
        FROM generate_series(1, 10 + s.seq % 3) AS g CROSS JOIN LATERAL (SELECT floor(random() * 5000)::int + 0 * g AS k) AS w),
       now() - make_interval(secs => ($PER_CONVERSATION - s.seq) * 60 + r.n)
FROM rooms r CROSS JOIN generate_series(1, $PER_CONVERSATION) AS s(seq);
CREATE INDEX messages_content_trgm_idx ON messages USING gin (content public.gin_trgm_ops) WHERE deleted_at IS NULL;
CREATE INDEX messages_content_words_idx ON messages USING gin (to_tsvector('simple', content)) WHERE deleted_at IS NULL;
VACUUM ANALYZE messages;
ANALYZE conversations;
ANALYZE conversation_members;
SQL
say "loaded and indexed in $((SECONDS - started)) s"

# Terms: words of the user's own messages (word mode) and 4-character fragments of others (substring).
bench_psql -c "
WITH visible AS (
    SELECT m.content FROM messages m JOIN conversation_members me ON me.conversation_id = m.conversation_id AND me.user_id = $searcher
    ORDER BY random() LIMIT $((TERMS * 2))
)
SELECT json_build_object(
    'word', (SELECT json_agg(split_part(content, ' ', 2)) FROM (SELECT content FROM visible LIMIT $TERMS) a),
    'substring', (SELECT json_agg(substr(split_part(content, ' ', 3), 1, 4)) FROM (SELECT content FROM visible OFFSET $TERMS) b))" \
    >"$WORK/terms.json"

header "searching: $TERMS terms × $REPEAT, each mode, both gateways"
"$ROOT/.venv/bin/python" bench/search_client.py "$token" "$REPEAT" "$WORK/terms.json" "indexed=$INDEXED_URL" "seqscan=$SEQSCAN_URL" \
    | tee "$WORK/results.jsonl"

field() { grep "\"gateway\": \"$1\", \"mode\": \"$2\"" "$WORK/results.jsonl" | grep -o "\"$3\": [0-9.]*" | cut -d' ' -f2; }
ROWS=()
for mode in substring word; do
    ratio="$(awk -v a="$(field seqscan "$mode" p50)" -v b="$(field indexed "$mode" p50)" 'BEGIN { printf "%.0f", b ? a / b : 0 }')"
    ROWS+=("| $mode | $(field indexed "$mode" p50) | $(field indexed "$mode" p99) | $(field indexed "$mode" max) | $(field seqscan "$mode" p50) | $(field seqscan "$mode" p99) | ${ratio}× | $(field indexed "$mode" results) |")
done
mkdir -p bench/results
RESULT="bench/results/search-$(date -u +%Y%m%dT%H%M%SZ).md"
{
    echo "| mode | p50 ms | p99 ms | max ms | sequential scan p50 ms | sequential scan p99 ms | p50 speed-up | results / query |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "$MESSAGES messages in $CONVERSATIONS conversations; the user is in $USER_CONVERSATIONS; $TERMS terms × $REPEAT per mode through GET /api/messages/search (limit 20), one host with $(nproc) CPUs."
} | tee "$RESULT"
say "saved $RESULT"
