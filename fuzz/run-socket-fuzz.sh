#!/usr/bin/env bash
# Fuzzes the real socket stack (SocketSession over WebSocketConnection over an in-memory
# connection, manual clock) for [seconds] (default 300); see fuzz/fuzz.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/fuzz.sh" socket "$@"
