#!/usr/bin/env bash
# Fuzzes the client-address harness (X-Forwarded-For, IP and CIDR parsing) for [seconds] (default 300); see fuzz/fuzz.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/fuzz.sh" address "$@"
