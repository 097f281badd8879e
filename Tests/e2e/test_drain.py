"""A gateway holding 5,000 sockets drains (SIGTERM) with DRAIN_SPREAD_MS: its clients reach the
other gateway as a stream, not a spike (issue 18, item 6). Each client reconnects as the stock one
does (after its randomised reconnection delay) and calls `sync`; the test records the reconnect
rate the other gateway sees and the p99 of those `sync` calls, for the spread drain and, as the
reference, for closing everything at once.

Figures go to stdout (`pytest -s`); bench/drain.sh runs it with release binaries for
docs/BENCHMARKS.md ("Drain")."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from drain_clients import Fleet
from support import Api, create_user

# bench/drain.sh runs this module with release binaries and may change the sizes.
SOCKETS = int(os.environ.get("DRAIN_SOCKETS", "5000"))
USERS = 50
SPREAD_MS = int(os.environ.get("DRAIN_SPREAD_MS", "5000"))


def raise_descriptor_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft >= needed, f"need {needed} open files for {SOCKETS} sockets, the hard limit is {hard}"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def peak_rate(times: list[float], window: float = 1.0) -> float:
    """The most reconnections within any `window` seconds, per second."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best / window


@pytest.mark.timeout(300)
@pytest.mark.parametrize("spread_ms", [0, SPREAD_MS], ids=["all-at-once", "spread"])
def test_a_draining_gateway_spreads_its_reconnections(procs, spread_ms):
    raise_descriptor_limit(SOCKETS + 1000)
    env = {"MAX_CONNECTIONS_PER_IP": "100000", "SHUTDOWN_GRACE_MS": "10000"}
    draining = procs.gateway(env={**env, "DRAIN_SPREAD_MS": str(spread_ms)})
    other = procs.gateway(env=env)
    api = Api(other.url)
    users = [create_user(api) for _ in range(USERS)]
    tokens = [users[i % USERS].token for i in range(SOCKETS)]

    async def scenario():
        fleet = Fleet("127.0.0.1", draining.port, other.port, tokens)
        await fleet.start()
        assert fleet.connected == SOCKETS, fleet.errors[:5]
        loop = asyncio.get_running_loop()
        # A steady client on the other gateway, in its own process, calls `sync` every 20 ms
        # through the drain: the latency everyone else there sees meanwhile.
        probe = subprocess.Popen([sys.executable, str(pathlib.Path(__file__).with_name("drain_clients.py")), "127.0.0.1",
                                  str(other.port), users[0].token, str(spread_ms / 1000 + 8)],
                                 stdout=subprocess.PIPE, text=True)
        await asyncio.sleep(1)
        with ThreadPoolExecutor(1) as pool:
            sigterm_at = time.monotonic()
            stopping = loop.run_in_executor(pool, lambda: draining.stop(timeout=60))
            deadline = time.monotonic() + spread_ms / 1000 + 60
            while len(fleet.reconnections) < SOCKETS and time.monotonic() < deadline and not fleet.errors:
                await asyncio.sleep(0.2)
            code, killed = await stopping
        await fleet.stop()
        out, _ = await loop.run_in_executor(None, lambda: probe.communicate(timeout=60))
        assert probe.returncode == 0, out
        return fleet, sigterm_at, code, killed, json.loads(out)

    fleet, sigterm_at, code, killed, steady = asyncio.run(scenario())
    assert not fleet.errors, fleet.errors[:5]
    assert not killed and code in (0, -15), draining.log_tail()
    assert len(fleet.reconnections) == SOCKETS, f"{len(fleet.reconnections)} of {SOCKETS} reconnected"

    arrivals = [r.connected_at for r in fleet.reconnections]
    syncs = [r.sync_seconds for r in fleet.reconnections if r.sync_seconds is not None]
    assert len(syncs) == SOCKETS
    close_span = max(fleet.closed_at) - min(fleet.closed_at)
    peak = peak_rate(arrivals)
    p50, p99 = percentile(syncs, 0.50) * 1000, percentile(syncs, 0.99) * 1000
    print(f"\ndrain of {SOCKETS} sockets, DRAIN_SPREAD_MS={spread_ms}: closes over {close_span:.2f} s; "
          f"reconnections at the other gateway from {min(arrivals) - sigterm_at:.2f} s to "
          f"{max(arrivals) - sigterm_at:.2f} s after SIGTERM, peak {peak:.0f}/s over 1 s, "
          f"mean {SOCKETS / max(0.001, max(arrivals) - min(arrivals)):.0f}/s; "
          f"sync after reconnecting p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(syncs) * 1000:.1f} ms; "
          f"mean {statistics.mean(syncs) * 1000:.1f} ms; a steady client's sync meanwhile ({len(steady)} calls) "
          f"p50 {percentile(steady, 0.5) * 1000:.1f} ms, p99 {percentile(steady, 0.99) * 1000:.1f} ms, "
          f"max {max(steady) * 1000:.1f} ms")
    assert other.alive()
    if spread_ms:
        spread = spread_ms / 1000
        # Closes cover the window (batches every 20 ms), so arrivals do too, blurred by the
        # clients' 0.5-1.5 s reconnection delay.
        assert close_span >= 0.9 * spread, f"closes took {close_span:.2f} s, expected about {spread} s"
        assert peak <= 2 * SOCKETS / spread, f"peak {peak:.0f}/s, expected at most {2 * SOCKETS / spread:.0f}/s"
        assert max(fleet.closed_at) - sigterm_at <= spread + 2
