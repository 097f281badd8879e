#!/usr/bin/env bash
# Fuzzes the polling harness for [seconds] (default 300); see fuzz/fuzz.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/fuzz.sh" polling "$@"
