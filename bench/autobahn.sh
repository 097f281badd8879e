#!/usr/bin/env bash
# RFC 6455 conformance: runs the Autobahn test suite (Python 3 port, `wstest -m fuzzingclient`)
# against the WebSocketEcho executable, which is built from the same WebSocket code as the gateway.
# Prints a markdown summary per case group (also saved as bench/results/autobahn-<time>.md) and
# exits non-zero if a case of groups 1-7 or 10 is anything but OK, NON-STRICT or INFORMATIONAL.
# Group 9 (limits/performance) is recorded with its duration per case. Groups 12-13 (compression)
# are excluded: no extension is negotiated. CI does not run this.
#
# Usage: bench/autobahn.sh [--install-only | --summarize <index.json>]
# Environment:
#   AUTOBAHN_HOME (~/.cache/autobahn-testsuite)  the suite's checkout (src/) and virtualenv (venv/),
#                     outside the repository (the suite may not be committed)
#   AUTOBAHN_SRC      where to install the suite from when $AUTOBAHN_HOME/src is missing: a checkout of
#                     the public repository ricardo-valero/autobahn-testsuite, or a bare git directory
#                     of it (copied into $AUTOBAHN_HOME/src)
#   AUTOBAHN_URL      test a server that already runs (e.g. ws://127.0.0.1:9001) instead of building
#                     and starting WebSocketEcho
#   AUTOBAHN_CASES    comma-separated case patterns instead of all (e.g. "1.*,2.*,9.1.*")
#   AUTOBAHN_TIMEOUT  seconds for the whole wstest run (5400)
#   WS_MAX_MESSAGE_BYTES  passed to WebSocketEcho (its default, 16 MiB, covers group 9)
#   SKIP_BUILD=1      reuse the last release build of WebSocketEcho
#   AUTOBAHN_ECHO_BIN run this WebSocketEcho binary instead of building one (e.g. a debug build)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"

AUTOBAHN_HOME="${AUTOBAHN_HOME:-$HOME/.cache/autobahn-testsuite}"
SRC_DIR="$AUTOBAHN_HOME/src"
VENV="$AUTOBAHN_HOME/venv"
SPEC_TEMPLATE="$ROOT/bench/autobahn/fuzzingclient.json"
MODE=run
INDEX_TO_SUMMARIZE=""
case "${1:-}" in
    "") ;;
    --install-only) MODE=install ;;
    --summarize)
        MODE=summarize
        INDEX_TO_SUMMARIZE="${2:-}"
        [[ -f "$INDEX_TO_SUMMARIZE" ]] || die "--summarize needs the path of a reports/servers/index.json"
        ;;
    -h | --help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
        exit 0
        ;;
    *) die "unknown argument: $1 (see --help)" ;;
esac

WORK=""
ECHO_PID=""
WSTEST_PID=""
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local rc=$?
    trap '' INT TERM
    if [[ -n "$WSTEST_PID" ]]; then kill -TERM "$WSTEST_PID" 2>/dev/null || true; fi
    if [[ -n "$ECHO_PID" ]]; then stop_child "$ECHO_PID" WebSocketEcho; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the suite, installed outside the repository --------------------------------------------------

wstest_works() { [[ -x "$VENV/bin/wstest" ]] && "$VENV/bin/wstest" --help >/dev/null 2>&1; }

fetch_source() {
    [[ -f "$SRC_DIR/pyproject.toml" ]] && return 0
    local from="${AUTOBAHN_SRC:-}"
    if [[ -z "$from" ]]; then
        die "the Autobahn test suite is not installed and there is no source for it.
  Get the public repository ricardo-valero/autobahn-testsuite (the Python 3 port of the Autobahn
  test suite) and either copy its files to $SRC_DIR, or run again with
  AUTOBAHN_SRC=<checkout or bare git directory>. Nothing is downloaded into the repository."
    fi
    mkdir -p "$AUTOBAHN_HOME"
    local tmp="$AUTOBAHN_HOME/src.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    if [[ -f "$from/pyproject.toml" ]]; then
        say "copying the suite from $from"
        (cd "$from" && tar --exclude=.git -cf - .) | tar -xf - -C "$tmp"
    elif git --git-dir="$from" rev-parse --verify -q HEAD >/dev/null 2>&1; then
        say "exporting the suite from the git directory $from ($(git --git-dir="$from" rev-parse --short HEAD))"
        git --git-dir="$from" archive HEAD | tar -xf - -C "$tmp"
    else
        rm -rf "$tmp"
        die "AUTOBAHN_SRC=$from is neither a checkout with pyproject.toml nor a git directory"
    fi
    [[ -f "$tmp/pyproject.toml" ]] || {
        rm -rf "$tmp"
        die "$from has no pyproject.toml at its top: is it ricardo-valero/autobahn-testsuite?"
    }
    rm -rf "$SRC_DIR"
    mv "$tmp" "$SRC_DIR"
}

install_suite() {
    if wstest_works; then
        say "wstest is installed in $VENV"
        return 0
    fi
    ensure_packages python3 python3-venv
    fetch_source
    local python=/usr/bin/python3
    [[ -x "$python" ]] || python="$(command -v python3)" || die "python3 not found"
    rm -rf "$VENV"
    "$python" -m venv "$VENV"
    # The port declares Python >= 3.12; it runs on Debian 12's 3.11.
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q --ignore-requires-python "$SRC_DIR"
    wstest_works || die "wstest does not run after installing into $VENV"
    say "installed wstest into $VENV"
}

# --- the summary ---------------------------------------------------------------------------------

# Prints the markdown summary of an index.json; exit status 1 if groups 1-7 or 10 hold a case whose
# behavior is not OK, NON-STRICT or INFORMATIONAL.
summarize() { # <index.json> <heading line>
    python3 - "$1" "$2" <<'PY'
import json, sys
from collections import Counter, defaultdict

path, heading = sys.argv[1], sys.argv[2]
with open(path) as f:
    index = json.load(f)
COLUMNS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
ACCEPTED = {"OK", "NON-STRICT", "INFORMATIONAL"}
MUST_PASS = {1, 2, 3, 4, 5, 6, 7, 10}

def key(case_id):
    return tuple(int(p) if p.isdigit() else p for p in case_id.split("."))

failed_any = False
out = [heading, ""]
for agent, cases in sorted(index.items()):
    groups = defaultdict(Counter)
    closes = defaultdict(Counter)
    bad = []
    for case_id, result in cases.items():
        group = int(case_id.split(".")[0])
        behavior = result.get("behavior", "?")
        groups[group][behavior if behavior in COLUMNS else "other"] += 1
        closes[group][result.get("behaviorClose", "?")] += 1
        if group in MUST_PASS and behavior not in ACCEPTED:
            bad.append((case_id, behavior, result.get("behaviorClose", "?")))
    out.append(f"Agent `{agent}`: {len(cases)} cases.")
    out.append("")
    out.append("| group | cases | " + " | ".join(COLUMNS) + " | other | close not OK |")
    out.append("|---:|---:|" + "---:|" * (len(COLUMNS) + 2))
    for group in sorted(groups):
        counts = groups[group]
        close_bad = sum(n for k, n in closes[group].items() if k not in ("OK", "INFORMATIONAL"))
        out.append(f"| {group} | {sum(counts.values())} | " + " | ".join(str(counts[c]) for c in COLUMNS)
                   + f" | {counts['other']} | {close_bad} |")
    out.append("")
    nine = sorted((c for c in cases if c.startswith("9.")), key=key)
    if nine:
        out.append("Group 9 (limits and performance), duration per case:")
        out.append("")
        out.append("| case | behavior | duration (ms) |")
        out.append("|---|---|---:|")
        for case_id in nine:
            r = cases[case_id]
            out.append(f"| {case_id} | {r.get('behavior')} | {r.get('duration', '?')} |")
        total = sum(cases[c].get("duration", 0) for c in nine)
        out.append(f"| total | | {total} |")
        out.append("")
    if bad:
        failed_any = True
        out.append(f"**{len(bad)} case(s) of groups 1-7/10 not OK, NON-STRICT or INFORMATIONAL:**")
        out.append("")
        for case_id, behavior, close in sorted(bad, key=lambda b: key(b[0])):
            out.append(f"- {case_id}: {behavior} (close: {close})")
        out.append("")
    else:
        out.append("Groups 1-7 and 10: every case OK, NON-STRICT or INFORMATIONAL.")
        out.append("")
print("\n".join(out))
sys.exit(1 if failed_any else 0)
PY
}

if [[ "$MODE" == summarize ]]; then
    summarize "$INDEX_TO_SUMMARIZE" "Autobahn summary of $INDEX_TO_SUMMARIZE"
    exit $?
fi

header "Autobahn test suite in $AUTOBAHN_HOME"
install_suite
[[ "$MODE" == install ]] && exit 0

# --- the server under test -------------------------------------------------------------------------

wait_tcp() { # <port> <timeout-seconds> <pid>
    local deadline=$((SECONDS + $2))
    while ((SECONDS < deadline)); do
        kill -0 "$3" 2>/dev/null || return 1
        timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

WORK="$AUTOBAHN_HOME/runs/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$WORK"
if [[ -n "${AUTOBAHN_URL:-}" ]]; then
    URL="$AUTOBAHN_URL"
    AGENT="external"
    header "testing the server at $URL (AUTOBAHN_URL)"
else
    if [[ -n "${AUTOBAHN_ECHO_BIN:-}" ]]; then
        ECHO_BIN="$AUTOBAHN_ECHO_BIN"
        say "AUTOBAHN_ECHO_BIN: using $ECHO_BIN"
    else
        ensure_swift
        header "release build of WebSocketEcho"
        if [[ "${SKIP_BUILD:-0}" == 1 ]]; then
            say "SKIP_BUILD=1: using the existing release build"
        else
            swift build -c release --product WebSocketEcho
        fi
        ECHO_BIN="$(swift build -c release --show-bin-path)/WebSocketEcho"
    fi
    [[ -x "$ECHO_BIN" ]] || die "$ECHO_BIN is missing (build it, or unset SKIP_BUILD)"
    PORT="$(free_port)"
    header "WebSocketEcho on 127.0.0.1:$PORT"
    env PORT="$PORT" HOST=127.0.0.1 ${WS_MAX_MESSAGE_BYTES:+WS_MAX_MESSAGE_BYTES="$WS_MAX_MESSAGE_BYTES"} \
        "$ECHO_BIN" >"$WORK/echo.log" 2>&1 &
    ECHO_PID=$!
    wait_tcp "$PORT" 30 "$ECHO_PID" || {
        tail -n 30 "$WORK/echo.log" >&2
        die "WebSocketEcho did not come up"
    }
    URL="ws://127.0.0.1:$PORT"
    AGENT="WebSocketEcho"
fi

# The committed spec holds the cases and exclusions; the run's copy gets the URL and output dir.
SPEC="$WORK/fuzzingclient.json"
python3 - "$SPEC_TEMPLATE" "$SPEC" "$URL" "$AGENT" "$WORK/reports/servers" "${AUTOBAHN_CASES:-}" <<'PY'
import json, sys
template, target, url, agent, outdir, cases = sys.argv[1:]
spec = json.load(open(template))
spec["outdir"] = outdir
spec["servers"] = [dict(spec["servers"][0], agent=agent, url=url)]
if cases:
    spec["cases"] = [c.strip() for c in cases.split(",") if c.strip()]
json.dump(spec, open(target, "w"), indent=2)
PY

# wstest, with one workaround: the port's per-case JSON reports can hold bytes (seen on case 7.3.2,
# a 1-byte close payload), which json.dumps refuses; the exception escapes before the reactor stops
# and wstest hangs. Bytes are written as latin-1 text instead.
WSTEST_RUNNER='
import json, sys
_dumps = json.dumps
def _text(o):
    return o.decode("latin-1") if isinstance(o, (bytes, bytearray)) else repr(o)
def dumps(obj, *args, **kwargs):
    kwargs.setdefault("default", _text)
    return _dumps(obj, *args, **kwargs)
json.dumps = dumps
from autobahntestsuite.wstest import run
sys.argv = ["wstest"] + sys.argv[1:]
run()
'
header "wstest -m fuzzingclient -s $SPEC"
START=$SECONDS
INDEX="$WORK/reports/servers/index.json"
(cd "$WORK" && exec timeout --kill-after=30 "${AUTOBAHN_TIMEOUT:-5400}" \
    "$VENV/bin/python" -c "$WSTEST_RUNNER" -m fuzzingclient -s "$SPEC" >"$WORK/wstest.log" 2>&1) &
WSTEST_PID=$!
# Safety net should wstest still hang after writing its reports: index.json is written first and
# the case reports within seconds after it, so an index untouched for 60 s with wstest alive is a hang.
while kill -0 "$WSTEST_PID" 2>/dev/null; do
    if [[ -f "$INDEX" ]] && (($(date +%s) - $(stat -c %Y "$INDEX") > 60)); then
        warn "wstest is still running 60 s after writing $INDEX: stopping it (see $WORK/wstest.log)"
        kill -TERM "$WSTEST_PID" 2>/dev/null || true
        break
    fi
    sleep 2
done
rc=0
wait "$WSTEST_PID" || rc=$?
ELAPSED=$((SECONDS - START))
if [[ ! -f "$INDEX" ]]; then
    tail -n 40 "$WORK/wstest.log" >&2
    die "wstest (exit $rc) wrote no $INDEX"
fi
if ((rc != 0)); then
    tail -n 20 "$WORK/wstest.log" >&2
    warn "wstest exited with $rc after writing $INDEX; summarising it anyway"
fi
if [[ -n "$ECHO_PID" ]] && ! kill -0 "$ECHO_PID" 2>/dev/null; then
    tail -n 30 "$WORK/echo.log" >&2
    die "WebSocketEcho died during the run"
fi

mkdir -p "$ROOT/bench/results"
RESULT="$ROOT/bench/results/autobahn-$(date -u +%Y%m%dT%H%M%SZ).md"
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
SUITE="$("$VENV/bin/pip" show autobahntestsuite 2>/dev/null | awk '/^Version:/ { print $2 }')"
HEADING="Autobahn test suite (Python 3 port, autobahntestsuite $SUITE) against $AGENT, commit $COMMIT, \
$(date -u +%Y-%m-%d), $(nproc) cores, ${ELAPSED}s; cases ${AUTOBAHN_CASES:-*}, excluded 12.* 13.* (compression not negotiated)."
rc=0
summarize "$INDEX" "$HEADING" >"$RESULT" || rc=$?
header "result (saved to ${RESULT#"$ROOT"/}; full HTML report in $WORK/reports/servers/index.html)"
cat "$RESULT"
exit "$rc"
