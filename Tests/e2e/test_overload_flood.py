"""Overload under a real flood (issue 17, item 5, end to end and bounded in time).

One message worker and two gateways (senders on one, receivers on the other) with a small
MAX_PENDING_COMMANDS. The test first measures what this cluster can store per second: a short
sweep of ChatLoad runs at doubling rates until one falls behind, the capacity being the best rate
of acknowledged messages counted up to the last answer. Then it floods the cluster with ChatLoad
at five times that (and at least 3,000 messages/s) over 50 sender/receiver pairs for 5 s, sampling
both gateways' resident memory every 0.2 s. It proves that:

- past the bound the sender gateway refuses writes with the ack error `overloaded` and nothing
  else (no timeouts, no other errors), and every refusal says when to come back: `retryAfterMs`
  in 100..10,000 ms;
- the gateways' memory stays bounded (peak RSS within a fixed allowance over the RSS of the fresh
  gateway: admitted writes are bounded by MAX_PENDING_COMMANDS, refused ones are answered at once,
  not queued, and a socket that does not read its answers is not read either) and does not keep
  growing after the flood;
- nothing acknowledged is lost and nothing refused is stored: every sent message was answered,
  every acknowledged one was delivered to its receiver, and Postgres holds exactly the
  acknowledged messages of the flood (ChatLoad never retries a refusal), each clientMsgId once.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time

import pytest

from support import psql, unique, worker_env

USER_BASE = 8_100_000
PAIRS = 50
MAX_PENDING = 500
# The capacity sweep: 2 s at each rate, doubling until the cluster stores less than 80 % of it.
SWEEP_RATES = (500, 1_000, 2_000, 4_000, 8_000)
SWEEP_SECONDS = 2
FLOOD_FACTOR = 5
FLOOD_MIN_RATE = 3_000
FLOOD_SECONDS = 5
# What a gateway's RSS may grow by, from just after its start to its peak during the sweep and the
# flood (about 25 MiB at the start on a debug build). A gateway holds at most MAX_PENDING admitted
# writes (a few hundred bytes each, well under 1 MiB in all); a refused write is answered while its
# frame is being read (no task, no timer); and a socket's output queue holds its input back from a
# quarter of WS_MAX_PENDING_BYTES on (256 KiB by default), so 50 flooding sockets that read their
# answers slowly hold at most about 13 MiB of answers. Observed growth is under 3 MiB, also with
# ChatLoad starved of CPU. A gateway that queued the flood (70,000+ writes with their frames, tasks
# and timers: the 30-75 MiB this test measured before refusals were made synchronous) or leaked
# per refusal would exceed 32 MiB.
RSS_ALLOWANCE_KIB = 32 * 1024
# After the flood RSS may still move a little (allocator, late deliveries), but not climb.
RSS_SETTLE_KIB = 8 * 1024


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def chatload(settings, senders, receivers, rate: int, seconds: int, timeout: float) -> tuple[dict, str]:
    """Runs ChatLoad's messages benchmark over PAIRS pairs; returns its summary and its stdout."""
    run = subprocess.run(
        [str(settings.bin_dir / "ChatLoad"), "--url", f"ws://127.0.0.1:{senders.port}",
         "--receiver-url", f"ws://127.0.0.1:{receivers.port}", "--connections", str(2 * PAIRS),
         "--user-base", str(USER_BASE), "--message-rate", str(rate), "--message-seconds", str(seconds),
         "--close-timeout", "2000"],
        env={"JWT_SECRET": senders.env["JWT_SECRET"], "JWT_ISSUER": senders.env.get("JWT_ISSUER", "swift-chat"),
             "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=timeout)
    lines = [line for line in run.stdout.splitlines() if line.startswith('{"summary"')]
    assert lines, f"ChatLoad printed no summary (exit {run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}"
    return json.loads(lines[-1]), run.stdout


def answered_seconds(stdout: str) -> float:
    """From 'messages done: ... in 3.52s': the seconds from the first send to the last answer."""
    match = re.search(r"^messages done: .* in ([0-9.]+)s$", stdout, re.MULTILINE)
    assert match, f"no 'messages done' line:\n{stdout[-3000:]}"
    return float(match.group(1))


def max_message_id(settings) -> int:
    return int(psql(settings, "SELECT coalesce(max(id), 0) FROM messages").strip())


def check_answered_and_delivered(summary: dict, what: str) -> None:
    """Every send answered, refusals only `overloaded` and each with a retryAfterMs in range, and
    every acknowledged message delivered."""
    errors = summary["messageErrorsByCode"]
    assert set(errors) <= {"overloaded"}, f"{what}: errors other than overloaded: {summary}"
    refused = errors.get("overloaded", 0)
    assert summary["messagesAcknowledged"] + refused == summary["messagesSent"], f"{what}: unanswered sends: {summary}"
    if refused:
        retry = summary["retryAfterMs"]
        assert retry is not None and retry["count"] == refused, f"{what}: a refusal without retryAfterMs: {summary}"
        assert 100 <= retry["min"] <= retry["max"] <= 10_000, f"{what}: retryAfterMs out of 100..10000: {retry}"
    assert summary["messagesDelivered"] == summary["messagesAcknowledged"], f"{what}: acknowledged but not delivered: {summary}"


@pytest.mark.timeout(120)
def test_a_flood_at_five_times_capacity_is_refused_with_retry_after_and_loses_nothing(settings, procs):
    psql(settings, "INSERT INTO users (id, username, email, password_hash, display_name) OVERRIDING SYSTEM VALUE "
                   f"SELECT g, 'flood' || g, 'flood' || g || '@load.invalid', 'x', 'flood' || g "
                   f"FROM generate_series({USER_BASE}::bigint, {USER_BASE + 2 * PAIRS - 1}) AS g ON CONFLICT DO NOTHING")
    stream = unique("chat:cmd:flood")
    env = {"COMMAND_STREAM": stream, "RATE_LIMIT_MESSAGES": "off", "RATE_LIMIT_API": "off",
           "SOCKET_EVENT_RATE": "100000", "SOCKET_EVENT_BURST": "100000",
           "MAX_PENDING_COMMANDS": str(MAX_PENDING)}
    worker = procs.worker(worker_env(env))
    senders, receivers = procs.gateway(env), procs.gateway(env)
    gateways = {"senders' gateway": senders, "receivers' gateway": receivers}

    # RSS of both gateways every 0.2 s from here on, the peak per phase.
    peaks: dict[str, dict[str, int]] = {}
    phase = ["start"]
    sampling = threading.Event()

    def sample():
        while True:
            for name, gw in gateways.items():
                peak = peaks.setdefault(phase[0], {})
                peak[name] = max(peak.get(name, 0), rss_kib(gw.proc.pid))
            if sampling.wait(0.2):
                return

    fresh = {name: rss_kib(gw.proc.pid) for name, gw in gateways.items()}
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        # 1. Capacity: the best acknowledged/s of runs at doubling rates (counted to the last
        #    answer, so a backlog drained after the last send counts at the rate it drained).
        phase[0] = "sweep"
        capacity = 0.0
        for offered in SWEEP_RATES:
            started = time.monotonic()
            summary, stdout = chatload(settings, senders, receivers, offered, SWEEP_SECONDS, timeout=25)
            check_answered_and_delivered(summary, f"capacity run at {offered}/s")
            stored_rate = summary["messagesAcknowledged"] / answered_seconds(stdout)
            capacity = max(capacity, stored_rate)
            print(f"\ncapacity run at {offered}/s: {summary['messagesAcknowledged']} acknowledged of "
                  f"{summary['messagesSent']} in {answered_seconds(stdout)} s = {stored_rate:.0f}/s, refused "
                  f"{summary['messageErrorsByCode']}, run {time.monotonic() - started:.1f} s", end="")
            # Refusals alone do not end the sweep: MAX_PENDING_COMMANDS may be reached in a burst
            # just below the capacity (writes waiting = rate x latency).
            if stored_rate < 0.8 * offered:
                break
        print(f"\ncapacity: {capacity:.0f}/s")
        assert capacity >= 100, f"the cluster stores only {capacity:.0f} messages/s"

        # 2. The flood.
        rate = max(FLOOD_FACTOR * int(capacity), FLOOD_MIN_RATE)
        before_id = max_message_id(settings)
        baseline = {name: rss_kib(gw.proc.pid) for name, gw in gateways.items()}
        phase[0] = "flood"
        started = time.monotonic()
        summary, stdout = chatload(settings, senders, receivers, rate, FLOOD_SECONDS, timeout=45)
        flood_seconds = time.monotonic() - started
        phase[0] = "after"
        after = []
        for _ in range(3):
            time.sleep(0.5)
            after.append({name: rss_kib(gw.proc.pid) for name, gw in gateways.items()})
    finally:
        sampling.set()
        sampler.join(5)
    refused = summary["messageErrorsByCode"].get("overloaded", 0)
    print(f"flood: {rate}/s for {FLOOD_SECONDS} s: sent {summary['messagesSent']}, acknowledged "
          f"{summary['messagesAcknowledged']} ({summary['messagesAcknowledged'] / answered_seconds(stdout):.0f}/s), "
          f"refused {summary['messageErrorsByCode']}, delivered {summary['messagesDelivered']}, retryAfterMs "
          f"{summary['retryAfterMs']}, answered in {answered_seconds(stdout)} s, run {flood_seconds:.1f} s; "
          f"ack latency {summary['ackLatencyMs']}")
    for name in gateways:
        print(f"{name} RSS: fresh {fresh[name]} KiB, sweep peak {peaks.get('sweep', {}).get(name)} KiB, "
              f"before the flood {baseline[name]} KiB, flood peak {peaks['flood'][name]} KiB "
              f"(+{peaks['flood'][name] - baseline[name]}), after {[sample[name] for sample in after]} KiB")

    assert summary["messagesSent"] == rate * FLOOD_SECONDS, summary
    check_answered_and_delivered(summary, "flood")
    # Several times what the cluster takes: most of the flood is refused (at 5x, about 80 %).
    assert refused >= summary["messagesSent"] / 2, (
        f"a flood at {rate}/s against a capacity of {capacity:.0f}/s was mostly admitted: {summary}")
    assert summary["messagesAcknowledged"] > 0, summary
    for name in gateways:
        peak = max(p.get(name, 0) for p in peaks.values())
        assert peak - fresh[name] < RSS_ALLOWANCE_KIB, (
            f"{name}: RSS grew by {peak - fresh[name]} KiB under load (from {fresh[name]} KiB): {peaks}")
        settled = [sample[name] for sample in after]
        assert settled[-1] - settled[0] <= RSS_SETTLE_KIB and settled[-1] <= peak + RSS_SETTLE_KIB, (
            f"{name}: RSS still growing after the flood: {settled} KiB (peak {peak} KiB)")

    # 3. Postgres: exactly the acknowledged messages of the flood, each once.
    rows = psql(settings, "SELECT count(*), count(DISTINCT (sender_id, client_msg_id)), count(DISTINCT client_msg_id) "
                          f"FROM messages WHERE id > {before_id} "
                          f"AND sender_id BETWEEN {USER_BASE} AND {USER_BASE + 2 * PAIRS - 1}").strip()
    stored, distinct_keys, distinct_ids = (int(v) for v in rows.split("|"))
    assert stored == summary["messagesAcknowledged"], (
        f"Postgres holds {stored} flood messages, {summary['messagesAcknowledged']} were acknowledged "
        f"({refused} refused): {summary}")
    assert distinct_keys == distinct_ids == stored, f"duplicates: {stored} rows, {distinct_ids} distinct clientMsgIds"
    for gw in (worker, senders, receivers):
        assert gw.alive(), f"{gw.name} died:\n{gw.log_tail()}"
