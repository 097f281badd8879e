"""Redis failover through Sentinel (issue 18): the processes find the primary with
`REDIS_URL=redis+sentinel://...`, and when it is killed they follow the promoted replica.

The test runs its own Redis (one primary, one replica) and three sentinels on loopback
(sentinel_support.py), two gateways and two workers pointed at the sentinels, and the suite's
Postgres. Alice (gateway 1) sends Bob (gateway 2) a new message every 50 ms over python-socketio,
each with its own clientMsgId, without waiting for the previous acks (at most WINDOW outstanding),
as a chat app does while a person types; a send that fails or is not acknowledged within
ACK_TIMEOUT is sent again with the same clientMsgId until acknowledged. After 20 acknowledged
sends the primary gets SIGKILL right after a send left the client (so one is in flight); new
messages go on until 20 more are acknowledged, then every outstanding one is seen through.

What the system promises, and what is checked:
- the sentinels promote the replica, and sends succeed again within FIRST_SEND_BOUND_S of the kill;
- an acknowledged message is in Postgres (exactly once per clientMsgId, with the acknowledged
  id/seq), whatever Redis lost: replication is asynchronous, so commands the old primary took and
  had not passed on are gone, but those were never acknowledged and were retried;
- live delivery is at most once: events published while a gateway's subscription was down are
  lost. The promise is that a socket whose gateway lost its subscription is told so with
  `resync {"reason": "subscription_restored"}` once it is back, and that `sync` then returns
  everything: Bob must receive that resync after the kill, and his `sync` must return every
  acknowledged message (whether or not it also came live);
- open sockets stay connected; every process survives and `/ready` answers 200 at the end, and
  never answered anything but 200 for as long as READY_DEPENDENCY_GRACE_MS (a short Redis outage
  is "degraded", still 200).

Persistence is off on the Redis nodes (see sentinel_support.py); the figures are printed (-s).
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from dataclasses import dataclass

import pytest
import requests

from sentinel_support import (
    DOWN_AFTER_MS,
    FAILOVER_TIMEOUT_MS,
    SentinelSetup,
    SentinelSetupError,
)
from support import (
    Api,
    ack_message,
    assert_acks_match_storage,
    create_user,
    poll,
    start_cluster,
    stored_messages,
    user_channel,
)

pytestmark = pytest.mark.timeout(180)

BEFORE_KILL = 20  # acknowledged sends before the primary is killed
AFTER_KILL = 20  # acknowledged after it, before the test stops making new messages
SEND_INTERVAL = 0.05  # s between one new message and the next
WINDOW = 8  # at most this many unacknowledged messages; a new one waits while they are out
ACK_TIMEOUT = 5.0  # s a client waits for an ack before sending again (the gateway answers after 10 s)
RETRY_DELAY = 0.2  # s before re-sending after an error ack
NO_SEND_LIMIT = 60.0  # s after the kill without any acknowledged send: the test fails
SEND_LIMIT = 150.0  # s for all the sending
# Kill to first acknowledged send: the sentinels need down-after-milliseconds (1 s) to call the
# primary down, about a second more to agree (quorum 2) and elect a leader, and a moment to promote
# the replica (an election that fails is retried after 2 x failover-timeout = 10 s); each process's
# Redis connections then reconnect with backoff capped at 5 s (+ jitter), and the workers take
# their shard leases again (SHARD_LEASE_TTL_MS 2 s in these tests). About 10 s at worst in a calm
# run; 30 s leaves room for a slow CI machine and one failed election round.
FIRST_SEND_BOUND_S = 30.0
READY_GRACE_S = 30.0  # READY_DEPENDENCY_GRACE_MS default: /ready is 503 only after this long
# Codes that mean the message itself is wrong: re-sending cannot help, the test is broken.
FATAL_CODES = {"validation_failed", "user_not_found", "cannot_message_self", "unauthorized",
               "invalid_token", "token_expired", "token_revoked"}


@pytest.fixture
def redis_sentinel(tmp_path_factory):
    """Primary, replica and three sentinels, all ready; every one stopped by pid afterwards. Fails
    (never skips) when redis-server or redis-sentinel is missing."""
    problem = None
    try:
        setup = SentinelSetup(tmp_path_factory.mktemp("sentinel"))
    except SentinelSetupError as error:
        problem = str(error)
    else:
        started = False
        try:
            setup.start()
            started = True
        except SentinelSetupError as error:
            problem = str(error)
        finally:
            if not started:  # whatever stopped it (a failure, the test's timeout): nothing left running
                setup.close()
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    yield setup
    problems = setup.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def sentinel_cluster(redis_sentinel, procs):
    """Two gateways and two workers on REDIS_URL=redis+sentinel://... (requested after the Redis
    fixture, so they are stopped before Redis is). The Redis is private to this test, so the default
    COMMAND_STREAM cannot cross with another test's workers."""
    env = {"REDIS_URL": redis_sentinel.url(0)}
    return start_cluster(procs, gateway_env=env, worker_extra_env=env)


def ready_url(cp) -> str:
    return (cp.admin_url if cp.name == "Gateway" else cp.url) + "/ready"


def readiness(cp) -> tuple[int | None, str | None]:
    try:
        resp = requests.get(ready_url(cp), timeout=2)
    except requests.RequestException as error:
        return None, type(error).__name__
    try:
        return resp.status_code, resp.json().get("status")
    except ValueError:
        return resp.status_code, None


class Watcher(threading.Thread):
    """Polls in the background: what the sentinels name as primary (when the promoted replica first
    appears) and every process's /ready (the longest run of non-200 answers)."""

    def __init__(self, setup: SentinelSetup, processes):
        super().__init__(name="failover-watcher", daemon=True)
        self.setup, self.processes = setup, processes
        self.stop_event = threading.Event()
        self.promoted_at: float | None = None  # monotonic time a sentinel first named the replica
        self.lock = threading.Lock()
        self.not_ready_since: dict[str, float | None] = {}
        self.longest_not_ready: dict[str, float] = collections.defaultdict(float)
        self.statuses: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.ready_thread = threading.Thread(target=self._watch_ready, name="ready-watcher", daemon=True)

    def key(self, cp) -> str:
        return f"{cp.name}:{cp.port}"

    def run(self) -> None:
        self.ready_thread.start()
        replica = ("127.0.0.1", self.setup.replica.port)
        while not self.stop_event.is_set():
            if self.promoted_at is None and replica in self.setup.primary_addresses():
                self.promoted_at = time.monotonic()
            self.stop_event.wait(0.05)

    def _watch_ready(self) -> None:
        while not self.stop_event.is_set():
            for cp in self.processes:
                status, text = readiness(cp)
                now = time.monotonic()
                key = self.key(cp)
                with self.lock:
                    self.statuses[key][f"{status} {text}"] += 1
                    since = self.not_ready_since.get(key)
                    if status == 200:
                        self.not_ready_since[key] = None
                    elif since is None:
                        self.not_ready_since[key] = now
                    else:
                        self.longest_not_ready[key] = max(self.longest_not_ready[key], now - since)
            self.stop_event.wait(0.25)

    def finish(self) -> None:
        self.stop_event.set()
        self.join(timeout=10)
        self.ready_thread.join(timeout=10)


def numsub(setup: SentinelSetup, channel: str, node=None) -> int:
    """PUBSUB NUMSUB on a data node (the original primary by default): subscribed gateways."""
    reply = (node or setup.primary).command("PUBSUB", "NUMSUB", channel)
    if isinstance(reply, dict):
        return int(reply.get(channel, 0))
    flat = dict(reply) if reply and isinstance(reply[0], (list, tuple)) else dict(zip(reply[::2], reply[1::2]))
    return int(flat.get(channel, 0))


def sentinel_log_times(setup: SentinelSetup, marker: str) -> list[float]:
    """Wall-clock times (epoch s) of the sentinels' log lines with `marker`
    ('9025:X 05 Dec 2026 20:53:31.501 # +switch-master ...', local time)."""
    times = []
    for line in setup.sentinel_log_lines(marker):
        parts = line.split()
        try:
            stamp = " ".join(parts[2:6])  # after "sentinelN:" and "pid:X"
            whole, _, millis = stamp.partition(".")
            times.append(time.mktime(time.strptime(whole, "%d %b %Y %H:%M:%S")) + int(millis) / 1000)
        except (ValueError, IndexError):
            continue
    return times


def sync_all(session) -> list[dict]:
    """Every message of every conversation through the socket's `sync`, following hasMore."""
    since: dict[str, int] = {}
    messages: list[dict] = []
    for _ in range(100):
        body = session.call("sync", {"since": since} if since else {}, timeout=10)
        assert isinstance(body, dict) and isinstance(body.get("conversations"), list), f"sync answered {body!r}"
        more = False
        for conv in body["conversations"]:
            messages.extend(conv["messages"])
            cid = str(conv["conversationId"])
            if conv["messages"]:
                since[cid] = conv["messages"][-1]["seq"]
            else:
                since.setdefault(cid, conv["lastSeq"])
            more = more or conv["hasMore"]
        if not more:
            return messages
    raise AssertionError("sync still hasMore after 100 rounds")


NOISY = ("command stream operation failed", "shard roster heartbeat failed", "shard taken", "shard given up")


def log_lines(processes) -> str:
    """What the processes logged about Redis, for the printed report: the lines about pub/sub,
    resync, revocations, fencing and Redis errors, and counts of the repetitive ones."""
    out = []
    for cp in processes:
        lines = [line for line in cp.logs().splitlines() if '"level":"debug"' not in line]
        noisy = collections.Counter(n for line in lines for n in NOISY if n in line)
        picked = [line for line in lines if not any(n in line for n in NOISY) and any(
            w in line.lower() for w in ("redis", "sentinel", "resync", "revocation", "fenced", "pub/sub", "primary"))]
        out.append(f"--- {cp.name} {cp.env.get('GATEWAY_ID') or cp.env.get('WORKER_ID')}: {dict(noisy)}")
        out.extend("    " + line[:300] for line in picked[-10:])
    return "\n".join(out)


@dataclass
class Outgoing:
    cmid: str
    content: str
    attempts: int = 0
    retry_at: float = 0.0  # when to send it again if no ack came
    answered: bool = True  # the last attempt got an (error) ack


class Sender:
    """Alice's client: new messages every SEND_INTERVAL (at most WINDOW outstanding), each re-sent
    with the same clientMsgId after an error ack or ACK_TIMEOUT without one. Acks arrive on
    python-socketio's thread."""

    def __init__(self, session, user, receiver_id, run: str):
        self.session, self.user, self.receiver_id, self.run = session, user, receiver_id, run
        self.cond = threading.Condition()
        self.pending: dict[str, Outgoing] = {}
        self.contents: dict[str, str] = {}
        self.acked: dict[str, tuple[int, int, int]] = {}  # clientMsgId -> (id, conversationId, seq)
        self.ack_at: dict[str, float] = {}
        self.attempts: dict[str, int] = {}
        self.errors: collections.Counter = collections.Counter()
        self.problems: list[str] = []
        self.late_acks = 0  # acks of an already acknowledged clientMsgId (a re-send's twin)
        self.created = 0
        self.kill_at: float | None = None
        self.first_after_kill: float | None = None  # the first ack of a send emitted after the kill

    def new_message(self, now: float) -> str:
        cmid = f"sf{self.run}-{self.created}"
        self.created += 1
        self.contents[cmid] = f"failover {self.run} #{self.created}"
        self.pending[cmid] = Outgoing(cmid, self.contents[cmid])
        return cmid

    def emit(self, cmid: str) -> None:
        with self.cond:
            out = self.pending.get(cmid)
            if out is None:
                return
            if not out.answered:
                self.errors[f"(no ack within {ACK_TIMEOUT:g}s)"] += 1
            out.answered = False
            out.attempts += 1
            out.retry_at = time.monotonic() + ACK_TIMEOUT
            emitted = time.monotonic()
            payload = {"receiverId": self.receiver_id, "content": out.content, "clientMsgId": cmid}
        self.session.client.emit("sendMessage", payload, namespace="/",
                                 callback=lambda *args: self._on_ack(cmid, emitted, args))

    def _on_ack(self, cmid: str, emitted: float, args: tuple) -> None:
        ack = args[0] if len(args) == 1 else args
        now = time.monotonic()
        with self.cond:
            try:
                self._handle(cmid, emitted, now, ack)
            except AssertionError as error:
                self.problems.append(str(error))
            self.cond.notify_all()

    def _handle(self, cmid: str, emitted: float, now: float, ack) -> None:
        if isinstance(ack, dict) and isinstance(ack.get("error"), dict):
            code = ack["error"].get("code")
            assert code not in FATAL_CODES, f"{cmid}: fatal error ack {ack!r}"
            self.errors[code] += 1
            out = self.pending.get(cmid)
            if out is not None:
                out.answered = True
                out.retry_at = min(out.retry_at, now + RETRY_DELAY)
            return
        message = ack_message(ack, senderId=self.user.id, receiverId=self.receiver_id, clientMsgId=cmid,
                              content=self.contents[cmid])
        stored = (message["id"], message["conversationId"], message["seq"])
        if cmid in self.acked:
            self.late_acks += 1
            assert self.acked[cmid] == stored, f"{cmid} acknowledged as two messages: {self.acked[cmid]} and {stored}"
            return
        out = self.pending.pop(cmid)
        self.acked[cmid] = stored
        self.ack_at[cmid] = now
        self.attempts[cmid] = out.attempts
        if self.kill_at is not None and self.first_after_kill is None and emitted > self.kill_at:
            self.first_after_kill = now

    def acked_after_kill(self) -> int:
        return sum(1 for at in self.ack_at.values() if self.kill_at is not None and at > self.kill_at)


def test_sends_survive_a_sentinel_failover(settings, redis_sentinel, sentinel_cluster, sio_session):
    setup, cluster = redis_sentinel, sentinel_cluster
    processes = cluster.all()

    # Every process is ready on the sentinels' primary.
    for cp in processes:
        poll(lambda cp=cp: readiness(cp) == (200, "ready"), 30, interval=0.2,
             what=f"{cp.name}:{cp.port} /ready 200 ready")

    api = Api(cluster.gw1.url)
    alice, bob = create_user(api), create_user(api)
    alice_sock = sio_session(cluster.gw1.url).connect(token=alice.token)
    bob_sock = sio_session(cluster.gw2.url).connect(token=bob.token)
    for user in (alice, bob):
        # Each user's channel is subscribed (by their gateway) on our primary: the processes use it.
        poll(lambda user=user: numsub(setup, user_channel(user.id)) == 1, 5, interval=0.05,
             what=f"{user_channel(user.id)} subscribed on the sentinels' primary")

    sender = Sender(alice_sock, alice, bob.id, uuid.uuid4().hex[:10])
    watcher = Watcher(setup, processes)
    watcher.start()
    kill_wall = 0.0
    bob_mark = alice_mark = 0
    in_flight_at_kill: list[str] = []
    started = next_new = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            with sender.cond:
                assert not sender.problems, "\n".join(sender.problems[:10])
                kill_at = sender.kill_at
                if kill_at is not None and sender.first_after_kill is None:
                    assert now - kill_at < NO_SEND_LIMIT, (
                        f"no send acknowledged within {NO_SEND_LIMIT}s of killing the primary; errors "
                        f"{dict(sender.errors)}; sentinels name {setup.primary_addresses()}\n{log_lines(processes)}")
                assert now - started < SEND_LIMIT, (
                    f"sending took over {SEND_LIMIT}s: {len(sender.acked)} acknowledged, {len(sender.pending)} "
                    f"outstanding, errors {dict(sender.errors)}")
                making = kill_at is None or sender.acked_after_kill() < AFTER_KILL
                if not making and not sender.pending:
                    break
                due = [cmid for cmid, out in sender.pending.items() if out.retry_at <= now]
                new = None
                if making and now >= next_new and len(sender.pending) < WINDOW:
                    new = sender.new_message(now)
                    next_new = now + SEND_INTERVAL
                kill_now = kill_at is None and new is not None and len(sender.acked) >= BEFORE_KILL
            assert alice_sock.connected, (
                f"alice's socket was disconnected: {[(e.name, e.args) for e in alice_sock.events[-5:]]}")
            for cmid in due + ([new] if new else []):
                sender.emit(cmid)
            if kill_now:
                # Right after a send left the client: it is in flight (its XADD, the worker's write or
                # the reply may be lost with the primary; its re-send covers that).
                bob_mark, alice_mark = bob_sock.mark(), alice_sock.mark()
                with sender.cond:
                    in_flight_at_kill = list(sender.pending)
                    kill_wall, sender.kill_at = time.time(), time.monotonic()
                setup.primary.kill()
            with sender.cond:
                sender.cond.wait(0.01)
    finally:
        watcher.finish()
    kill_at, first_after = sender.kill_at, sender.first_after_kill
    assert kill_at is not None and first_after is not None
    acked = {(alice.id, cmid): stored for cmid, stored in sender.acked.items()}
    contents = {(alice.id, cmid): content for cmid, content in sender.contents.items()}

    # 1. The failover happened: every sentinel names the former replica, which says it is the primary.
    replica = ("127.0.0.1", setup.replica.port)
    poll(lambda: all(a == replica for a in setup.primary_addresses()), 10, interval=0.1,
         what=f"every sentinel naming the former replica {replica} as primary")
    role = setup.replica.command("ROLE")
    assert role[0] == "master", f"the promoted replica's ROLE: {role!r}"
    for user in (alice, bob):
        # The gateways resubscribed on the new primary.
        poll(lambda user=user: numsub(setup, user_channel(user.id), setup.replica) == 1, 10, interval=0.1,
             what=f"{user_channel(user.id)} subscribed on the promoted replica")
    first_send_s = first_after - kill_at
    promoted_s = (watcher.promoted_at - kill_at) if watcher.promoted_at else None
    odown = [t - kill_wall for t in sentinel_log_times(setup, "+odown")]
    switch = [t - kill_wall for t in sentinel_log_times(setup, "+switch-master")]
    assert first_send_s < FIRST_SEND_BOUND_S, (
        f"the first send after the kill was acknowledged {first_send_s:.1f}s after it (bound {FIRST_SEND_BOUND_S}s)")

    # 2. Every acknowledged message is stored exactly once, as acknowledged; nothing else of alice's
    # is stored (every message was re-sent until acknowledged); the seqs run 1..n without a gap.
    _rows, by_key = stored_messages(settings, [alice.id])
    assert_acks_match_storage(acked, by_key, contents)
    assert set(by_key) == set(acked), f"stored but never acknowledged: {sorted(set(by_key) - set(acked))[:5]}"
    seqs = sorted(stored[2] for stored in acked.values())
    assert seqs == list(range(1, len(acked) + 1)), f"seqs should be 1..{len(acked)}: {seqs}"

    # 3. Bob's gateway lost its subscription with the primary: he is told to resync, and sync gives
    # him every acknowledged message (live delivery is at most once; sync is the guarantee).
    resync = bob_sock.wait_for("resync", 30, since=bob_mark,
                               match=lambda data=None, *_: isinstance(data, dict)
                               and data.get("reason") == "subscription_restored")
    alice_resync = alice_sock.find("resync", since=alice_mark)
    synced = [m for m in sync_all(bob_sock) if m.get("senderId") == alice.id]
    got = {(alice.id, m["clientMsgId"]): (m["id"], m["conversationId"], m["seq"]) for m in synced}
    assert len(synced) == len(got), "sync returned a message twice"
    assert got == acked, (f"bob's sync after the failover differs from the acknowledged messages: missing "
                          f"{sorted(set(acked) - set(got))[:5]}, extra {sorted(set(got) - set(acked))[:5]}")
    live = {(alice.id, e.args[0].get("clientMsgId")) for e in bob_sock.events
            if e.name == "receiveMessage" and e.args and isinstance(e.args[0], dict)}
    for sock, who in ((alice_sock, "alice"), (bob_sock, "bob")):
        assert sock.connected and sock.find("disconnect") is None, f"{who}'s socket was disconnected"

    # 4. Everyone survived and is ready; /ready never left 200 for the grace period.
    cluster.check_alive()
    for cp in processes:
        # "ready", not "degraded": every dependency answers again.
        poll(lambda cp=cp: readiness(cp) == (200, "ready"), 15, interval=0.2,
             what=f"{cp.name}:{cp.port} /ready 200 ready at the end")
    worst = max(watcher.longest_not_ready.values(), default=0.0)
    assert worst < READY_GRACE_S, f"/ready was not 200 for {worst:.1f}s: {dict(watcher.longest_not_ready)}"

    before = sum(1 for at in sender.ack_at.values() if at <= kill_at)
    after = len(acked) - before
    retried = sum(1 for n in sender.attempts.values() if n > 1)
    print(
        f"\nsentinel failover (down-after {DOWN_AFTER_MS} ms, failover-timeout {FAILOVER_TIMEOUT_MS} ms):"
        f"\n  kill -9 of the primary -> first acknowledged send (emitted after the kill): {first_send_s:.2f}s"
        f"\n  kill -> a sentinel names the replica (polled): "
        + (f"{promoted_s:.2f}s" if promoted_s is not None else "not seen")
        + f"; sentinel logs: +odown {['%.2f' % t for t in odown]}, +switch-master {['%.2f' % t for t in switch]}"
        + f"\n  in flight at the kill: {in_flight_at_kill} (attempts until acknowledged: "
        f"{[sender.attempts.get(c) for c in in_flight_at_kill]})"
        f"\n  acknowledged: {before} before the kill, {after} after ({len(acked)} messages); {retried} needed a "
        f"re-send (max attempts {max(sender.attempts.values())}); error acks / timeouts {dict(sender.errors)}; "
        f"late twin acks {sender.late_acks}"
        f"\n  bob: resync {resync.args[0]!r} {resync.at - kill_at:.2f}s after the kill "
        f"(alice: {'%.2fs' % (alice_resync.at - kill_at) if alice_resync else 'none'}); live receiveMessage for "
        f"{len(live & set(acked))}/{len(acked)} (missed {len(set(acked) - live)}), sync returned all {len(got)}"
        f"\n  /ready answers during the test: "
        + "; ".join(f"{k} {dict(v)}" for k, v in watcher.statuses.items())
        + f"\n  longest non-200 /ready run: {worst:.2f}s"
        f"\n  from the first send to the end of the checks: {time.monotonic() - started:.1f}s"
        f"\n{log_lines(processes)}"
    )
