"""The messages benchmark's load generator (issue 17, item 1) against a real cluster: ChatLoad's
`--message-rate` mode (sender/receiver pairs, senders on one gateway and receivers on another,
open loop) sends, gets every ack and sees every delivery, and reports latencies from each
message's intended send time in its JSON summary."""

from __future__ import annotations

import json
import subprocess

from support import psql, unique, worker_env

USER_BASE = 8_000_000
PAIRS = 10


def start_cluster(procs):
    """One worker and two gateways on a command stream of their own, the message limit off."""
    env = {"COMMAND_STREAM": unique("chat:cmd:load"), "RATE_LIMIT_MESSAGES": "off", "SOCKET_EVENT_RATE": "100000",
           "SOCKET_EVENT_BURST": "100000"}
    procs.worker(worker_env(env))
    return procs.gateway(env), procs.gateway(env)


def run_chatload(settings, first, second, *arguments: str) -> tuple[subprocess.CompletedProcess, dict]:
    """ChatLoad with even connections on `first` and odd ones on `second`; its run and JSON summary."""
    run = subprocess.run(
        [str(settings.bin_dir / "ChatLoad"), "--url", f"ws://127.0.0.1:{first.port}",
         "--receiver-url", f"ws://127.0.0.1:{second.port}", *arguments],
        env={"JWT_SECRET": first.env["JWT_SECRET"], "JWT_ISSUER": first.env.get("JWT_ISSUER", "swift-chat"),
             "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=90)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return run, json.loads(next(line for line in run.stdout.splitlines() if line.startswith('{"summary"')))


def assert_ordered_latencies(summary: dict) -> None:
    for key in ("ackLatencyMs", "deliveryLatencyMs"):
        latency = summary[key]
        assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["p999"], latency
        assert latency["max"] < 10_000, latency


def test_chatload_sends_and_measures_messages_across_two_gateways(settings, procs):
    psql(settings, "INSERT INTO users (id, username, email, password_hash, display_name) OVERRIDING SYSTEM VALUE "
                   f"SELECT g, 'load' || g, 'load' || g || '@load.invalid', 'x', 'load' || g "
                   f"FROM generate_series({USER_BASE}::bigint, {USER_BASE + 2 * PAIRS - 1}) AS g ON CONFLICT DO NOTHING")
    senders, receivers = start_cluster(procs)
    run, summary = run_chatload(settings, senders, receivers, "--connections", str(2 * PAIRS), "--user-base", str(USER_BASE),
                                "--message-rate", "100", "--message-seconds", "2")
    assert summary["messagesSent"] == 200, summary
    assert summary["messagesAcknowledged"] == 200 and summary["messageErrorsByCode"] == {}, summary
    assert summary["messagesDelivered"] == 200, summary
    assert_ordered_latencies(summary)
    assert "messages done: sent=200 acknowledged=200 errors=0 delivered=200" in run.stdout


ROOM_USER_BASE = 8_000_100
ROOM_ID = 8_000_100
ROOM_SIZE = 10


def test_chatload_sends_to_a_room_and_measures_every_delivery(settings, procs):
    """`--room-size`: ten members of one seeded room, on two gateways, send 50 messages/s to it in
    turn; each message reaches the nine others (measured and acknowledged), and the interval lines
    report what was acknowledged in each second."""
    last_user = ROOM_USER_BASE + ROOM_SIZE - 1
    psql(settings, "INSERT INTO users (id, username, email, password_hash, display_name) OVERRIDING SYSTEM VALUE "
                   f"SELECT g, 'load' || g, 'load' || g || '@load.invalid', 'x', 'load' || g "
                   f"FROM generate_series({ROOM_USER_BASE}::bigint, {last_user}) AS g ON CONFLICT DO NOTHING")
    psql(settings, "INSERT INTO conversations (id, kind, name, created_by, member_count) OVERRIDING SYSTEM VALUE "
                   f"VALUES ({ROOM_ID}, 'room', 'load room', {ROOM_USER_BASE}, {ROOM_SIZE}) ON CONFLICT DO NOTHING")
    psql(settings, "INSERT INTO conversation_members (conversation_id, user_id, role) "
                   f"SELECT {ROOM_ID}, {ROOM_USER_BASE} + m, CASE WHEN m = 0 THEN 'admin' ELSE 'member' END "
                   f"FROM generate_series(0, {ROOM_SIZE - 1}) AS m ON CONFLICT DO NOTHING")
    before_id = int(psql(settings, "SELECT coalesce(max(id), 0) FROM messages").strip())
    even, odd = start_cluster(procs)
    run, summary = run_chatload(settings, even, odd, "--connections", str(ROOM_SIZE), "--user-base", str(ROOM_USER_BASE),
                                "--room-size", str(ROOM_SIZE), "--room-base", str(ROOM_ID), "--message-rate", "50",
                                "--message-seconds", "2", "--interval", "1")
    assert summary["messagesSent"] == 100, summary
    assert summary["messagesAcknowledged"] == 100 and summary["messageErrorsByCode"] == {}, summary
    assert summary["messagesDelivered"] == 100 * (ROOM_SIZE - 1), summary
    assert_ordered_latencies(summary)
    intervals = [json.loads(line)["interval"] for line in run.stdout.splitlines() if line.startswith('{"interval"')]
    assert any(i["acknowledged"] > 0 and isinstance(i["ackLatencyMs"], dict) for i in intervals), (
        f"no interval line with acknowledged messages and their latencies: {intervals}\n{run.stdout[-2000:]}")
    stored = psql(settings, f"SELECT count(*) FROM messages WHERE conversation_id = {ROOM_ID} AND id > {before_id}")
    assert int(stored.strip()) == 100, f"{stored.strip()} messages stored in room {ROOM_ID}, 100 were acknowledged"
