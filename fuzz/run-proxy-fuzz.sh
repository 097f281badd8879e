#!/usr/bin/env bash
# Fuzzes the PROXY protocol harness (v1 text and v2 binary headers) for [seconds] (default 300); see fuzz/fuzz.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/fuzz.sh" proxy "$@"
