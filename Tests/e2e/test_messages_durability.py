"""No message lost (issue 4, acceptance 3): eight python-socketio clients on two gateways stream
10,000 messages with acks to each other while one of two workers is killed with SIGKILL mid-stream.
Afterwards every acknowledged message is in Postgres exactly once, every conversation's seq runs
1..last_seq without gaps, and every user's sync returns exactly the persisted set.

The clients do what an at-least-once system asks of them: each message has a clientMsgId, and a
message whose ack does not come in time (or comes back with a transient error) is sent again with
the same clientMsgId. Pacing is by acks (a window of outstanding messages per client), not sleeps."""

from __future__ import annotations

import collections
import threading
import time
import uuid
from dataclasses import dataclass

import pytest

from support import (
    ack_error,
    ack_message,
    Api,
    assert_acks_match_storage,
    check_message,
    consumers_of,
    pending_by_consumer,
    create_user,
    Messages,
    numsub,
    poll,
    psql_rows,
    redis_client,
    start_cluster,
    stored_messages,
    unique,
    user_channel,
    wait_until_all_consumed,
    worker_env,
)

TOTAL = 10_000
USERS = 8  # every user sends to each of the others: 28 conversations, two writers each
WINDOW = 16  # outstanding (unacknowledged) messages per client
KILL_AFTER = 3_000  # acknowledged messages before the kill
ACK_TIMEOUT = 8.0  # s without an ack before the same clientMsgId is sent again
RETRY_AFTER_ERROR = 0.5  # s before re-sending after a transient error ack
STREAM_DEADLINE = 180.0  # s for the whole stream
SYNC_PAGE = 200  # messages per conversation in one sync answer
# Codes that mean the message itself is wrong: re-sending cannot help, the test is broken.
FATAL_CODES = {"validation_failed", "user_not_found", "cannot_message_self", "unauthorized",
               "invalid_token", "token_expired"}


class AckCounter:
    def __init__(self, threshold: int):
        self.lock = threading.Lock()
        self.total = 0
        self.threshold = threshold
        self.reached = threading.Event()

    def add(self) -> None:
        with self.lock:
            self.total += 1
            if self.total >= self.threshold:
                self.reached.set()


@dataclass
class Outstanding:
    receiver: int
    content: str
    deadline: float = 0.0
    attempts: int = 0


class Streamer(threading.Thread):
    """One client: sends its plan through one socket with at most WINDOW unacknowledged messages,
    re-sending (same clientMsgId) on ack timeout or transient error."""

    def __init__(self, index: int, session, user, plan: list[tuple[str, int, str]], counter: AckCounter,
                 target: str = "receiverId"):
        super().__init__(name=f"streamer-{index}", daemon=True)
        self.target = target  # "receiverId" (the plan names users) or "roomId" (rooms)
        self.session, self.user, self.plan, self.counter = session, user, plan, counter
        self.cond = threading.Condition()
        self.pending: dict[str, Outstanding] = {}
        self.acked: dict[str, tuple[int, int, int]] = {}  # clientMsgId -> (id, conversationId, seq)
        self.problems: list[str] = []
        self.error_codes: collections.Counter = collections.Counter()
        self.resent = 0
        self.late_acks = 0  # acks for a clientMsgId already acknowledged (a re-send's twin)
        self.stop = threading.Event()
        self.by_cmid = {cmid: (receiver, content) for cmid, receiver, content in plan}

    def run(self) -> None:
        try:
            self._run()
        except Exception as error:  # reported by the test, never lost in a thread
            with self.cond:
                self.problems.append(f"{self.name} crashed: {error!r}")

    def _run(self) -> None:
        next_index = 0
        while not self.stop.is_set():
            batch = []
            with self.cond:
                if self.problems:
                    return
                now = time.monotonic()
                for cmid, out in self.pending.items():
                    if out.deadline <= now:
                        batch.append(cmid)
                        self.resent += 1
                while next_index < len(self.plan) and len(self.pending) < WINDOW:
                    cmid, receiver, content = self.plan[next_index]
                    next_index += 1
                    self.pending[cmid] = Outstanding(receiver, content)
                    batch.append(cmid)
                if not batch:
                    if next_index >= len(self.plan) and not self.pending:
                        return
                    self.cond.wait(0.2)
                    continue
                for cmid in batch:
                    out = self.pending[cmid]
                    out.attempts += 1
                    out.deadline = now + ACK_TIMEOUT
                payloads = [(cmid, {self.target: self.pending[cmid].receiver, "content": self.pending[cmid].content,
                                    "clientMsgId": cmid}) for cmid in batch]
            for cmid, payload in payloads:
                self.session.client.emit("sendMessage", payload, namespace="/",
                                         callback=lambda *args, cmid=cmid: self._on_ack(cmid, args))

    def _on_ack(self, cmid: str, args: tuple) -> None:
        ack = args[0] if len(args) == 1 else args
        with self.cond:
            try:
                self._handle_ack(cmid, ack)
            finally:
                self.cond.notify_all()

    def _handle_ack(self, cmid: str, ack) -> None:
        if isinstance(ack, dict) and isinstance(ack.get("error"), dict):
            code = ack["error"].get("code")
            self.error_codes[code] += 1
            if code in FATAL_CODES:
                self.problems.append(f"{cmid}: fatal error ack {ack!r}")
            elif cmid in self.pending:
                out = self.pending[cmid]
                out.deadline = min(out.deadline, time.monotonic() + RETRY_AFTER_ERROR)
            return
        receiver, content = self.by_cmid[cmid]
        if not (isinstance(ack, dict) and isinstance(ack.get("id"), int) and ack.get("clientMsgId") == cmid
                and ack.get("content") == content and ack.get("senderId") == self.user.id
                and ack.get(self.target) == receiver and isinstance(ack.get("seq"), int)):
            self.problems.append(f"{cmid}: the ack is not the stored message: {ack!r}")
            return
        stored = (ack["id"], ack["conversationId"], ack["seq"])
        previous = self.acked.get(cmid)
        if previous is not None:
            self.late_acks += 1
            if previous != stored:
                self.problems.append(f"{cmid} acknowledged as two different messages: {previous} and {stored}")
            return
        self.acked[cmid] = stored
        self.pending.pop(cmid, None)
        self.counter.add()

    def summary(self) -> str:
        with self.cond:
            return (f"{self.name}: acked {len(self.acked)}/{len(self.plan)}, pending {len(self.pending)}, "
                    f"resent {self.resent}, late acks {self.late_acks}, error acks {dict(self.error_codes)}")


def logs_of(processes) -> str:
    return "\n".join(f"--- {cp.name} {cp.env.get('WORKER_ID') or cp.env.get('GATEWAY_ID')}:\n{cp.log_tail(15)}"
                     for cp in processes)


@pytest.mark.timeout(420)
def test_no_message_lost_when_a_worker_is_killed(settings, procs, sio_session):
    started = time.monotonic()
    cluster = start_cluster(procs)
    api = Api(cluster.gw1.url)
    users = [create_user(api) for _ in range(USERS)]
    ids = [u.id for u in users]
    sessions = [sio_session(cluster.gateways[n % 2].url).connect(token=u.token) for n, u in enumerate(users)]
    for u in users:
        poll(lambda: numsub(settings, user_channel(u.id)) == 1, 3, interval=0.05, what=f"{u.username} subscribed")

    run = uuid.uuid4().hex[:8]
    per_user = TOTAL // USERS
    plans = []
    for n, u in enumerate(users):
        others = [v.id for v in users if v.id != u.id]
        plans.append([(f"d{run}-{n}-{k}", others[k % len(others)], f"durable {run} {n} {k}") for k in range(per_user)])
    expected = {(u.id, cmid): content for u, plan in zip(users, plans) for cmid, _r, content in plan}
    assert len(expected) == TOTAL

    counter = AckCounter(KILL_AFTER)
    streamers = [Streamer(n, sessions[n], u, plans[n], counter) for n, u in enumerate(users)]
    stream_start = time.monotonic()
    for s in streamers:
        s.start()

    # Mid-stream: kill -9 the worker holding the most unacknowledged entries.
    r = redis_client(settings)
    try:
        assert counter.reached.wait(STREAM_DEADLINE), (
            f"only {counter.total} acks before the kill point:\n" + "\n".join(s.summary() for s in streamers)
            + "\n" + logs_of(cluster.all()))
        # A moment when a worker holds unacknowledged entries, so the kill leaves work to claim.
        pending = poll(lambda: (lambda p: p if any(p.values()) else None)(pending_by_consumer(r)), 10,
                       interval=0.01, what="a worker holding pending entries")
        victim = max(cluster.workers, key=lambda w: pending.get(w.env["WORKER_ID"], -1))
        victim_id = victim.env["WORKER_ID"]
        consumers = consumers_of(r)
        victim.proc.kill()  # SIGKILL: no chance to XACK, finish a batch or say goodbye
        victim.proc.wait(timeout=10)
        victim.stopped = True
        acked_at_kill = counter.total
        assert victim_id in consumers, (
            f"the killed worker never read from the stream (consumers {consumers}); the kill proves nothing")

        deadline = stream_start + STREAM_DEADLINE
        for s in streamers:
            s.join(timeout=max(0.0, deadline - time.monotonic()))
        unfinished = [s for s in streamers if s.is_alive()]
        for s in unfinished:
            s.stop.set()
        report = "\n".join(s.summary() for s in streamers)
        problems = [p for s in streamers for p in s.problems]
        assert not problems, "\n".join(problems[:20]) + "\n" + report
        assert not unfinished, (f"not every message was acknowledged within {STREAM_DEADLINE}s:\n{report}\n"
                                + logs_of(cluster.all()))
        stream_seconds = time.monotonic() - stream_start
        for s in sessions:
            assert s.connected and s.find("disconnect") is None, "a client was disconnected during the stream"

        # The survivor took over the dead worker's shards and entries: nothing is left pending anywhere.
        wait_until_all_consumed(r, timeout=30)
        left = pending_by_consumer(r).get(victim_id, 0)
        assert left == 0, f"the dead worker still owns {left} pending entries"
    finally:
        r.close()
    cluster.check_alive()

    # 1. Every acknowledged message is in Postgres exactly once, as acknowledged.
    acked = {(s.user.id, cmid): stored for s in streamers for cmid, stored in s.acked.items()}
    assert len(acked) == TOTAL
    id_list = ",".join(str(int(i)) for i in ids)
    rows, by_key = stored_messages(settings, ids)
    strangers = [k for k in by_key if k not in expected]
    assert not strangers, f"rows nobody sent: {strangers[:5]}"
    assert_acks_match_storage(acked, by_key, expected)
    assert len(rows) == TOTAL, f"{len(rows)} rows for {TOTAL} messages"

    # 2. Every conversation's seq runs 1..last_seq with no gap and no repeat.
    convs = psql_rows(settings, f"""
        SELECT c.id, c.last_seq, count(m.id), count(DISTINCT m.seq), coalesce(min(m.seq), 0), coalesce(max(m.seq), 0)
        FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id
        WHERE c.id IN (SELECT conversation_id FROM conversation_members WHERE user_id IN ({id_list}))
        GROUP BY c.id, c.last_seq""")
    assert len(convs) == USERS * (USERS - 1) // 2, f"one conversation per pair expected, got {len(convs)}"
    gaps = [c for c in convs if not (int(c[1]) == int(c[2]) == int(c[3]) == int(c[5]) and int(c[4]) == 1)]
    assert not gaps, f"conversations with gaps (id, last_seq, count, distinct, min, max): {gaps}"

    # 3. Every user's sync holds exactly the persisted set, with unread = last_seq - last_read_seq.
    members = psql_rows(settings, f"""
        SELECT cm.user_id, cm.conversation_id, c.last_seq, cm.last_read_seq
        FROM conversation_members cm JOIN conversations c ON c.id = cm.conversation_id
        WHERE cm.user_id IN ({id_list})""")
    persisted: dict[int, list[tuple[int, int, int]]] = collections.defaultdict(list)  # conv -> (seq, id, sender)
    for (sender, _cmid), entries in by_key.items():
        mid, conv, seq, _content = entries[0]
        persisted[conv].append((seq, mid, sender))
    for conv in persisted.values():
        conv.sort()
    for n, u in enumerate(users):
        mine = {int(conv): int(last) - int(read) for uid, conv, last, read in members if int(uid) == u.id}
        assert len(mine) == USERS - 1, f"{u.username} should be in {USERS - 1} conversations: {mine}"
        synced = Messages(cluster.gateways[n % 2].url, u).sync_all()
        assert set(synced) == set(mine), f"{u.username}: sync lists {sorted(synced)}, member of {sorted(mine)}"
        for conv, entry in synced.items():
            got = [(m["seq"], m["id"], m["senderId"]) for m in entry["messages"]]
            assert got == persisted[conv], (
                f"{u.username}, conversation {conv}: sync returned {len(got)} messages, Postgres holds "
                f"{len(persisted[conv])}; first difference at "
                f"{next((i for i, (x, y) in enumerate(zip(got, persisted[conv])) if x != y), min(len(got), len(persisted[conv])))}")
            assert entry["unreadCount"] == mine[conv], (
                f"{u.username}, conversation {conv}: unreadCount {entry['unreadCount']}, expected {mine[conv]}")

        # The socket `sync` (first page per conversation) agrees.
        body = sessions[n].call("sync", {"since": {}}, timeout=30)
        assert isinstance(body, dict) and isinstance(body.get("conversations"), list), body
        for conv in body["conversations"]:
            cid = conv["conversationId"]
            got = [(m["seq"], m["id"], m["senderId"]) for m in conv["messages"]]
            assert got == persisted[cid][:SYNC_PAGE], f"{u.username}, socket sync of conversation {cid} differs"
            assert conv["hasMore"] is (len(persisted[cid]) > SYNC_PAGE), conv["hasMore"]
        assert body.get("totalUnread") == sum(mine.values()), body.get("totalUnread")

    received = sum(1 for s in sessions for e in s.events if e.name == "receiveMessage")
    print(f"\n{TOTAL} messages in {stream_seconds:.1f}s ({TOTAL / stream_seconds:.0f}/s); killed {victim_id} "
          f"after {acked_at_kill} acks holding {pending.get(victim_id, 0)} pending entries; "
          f"resent {sum(s.resent for s in streamers)}, late acks {sum(s.late_acks for s in streamers)}, "
          f"error acks {sum((s.error_codes for s in streamers), collections.Counter())}; live receiveMessage "
          f"events {received} (at-most-once, {TOTAL} persisted); whole test {time.monotonic() - started:.1f}s")


def test_commands_wait_for_a_worker_and_retries_stay_idempotent(settings, procs, sio_session):
    """No worker running: a write answers 503 worker_unavailable (with Retry-After) after the reply
    timeout, but the command stays in the stream; when a worker starts it is applied, and the
    client's retry with the same clientMsgId gets that message, not a second one."""
    stream = unique("cmd")  # a private command stream: no other test's worker may read it
    gw = procs.gateway({"COMMAND_STREAM": stream, "COMMAND_REPLY_TIMEOUT_MS": "700"})
    api = Api(gw.url)
    a, b = create_user(api), create_user(api)
    ma, mb = Messages(gw.url, a), Messages(gw.url, b)

    cmid = unique("wait")
    resp = ma.send(b.id, "anyone there?", cmid)
    assert resp.status_code == 503, f"no worker: expected 503, got {resp.status_code} {resp.text}"
    assert resp.json()["error"]["code"] == "worker_unavailable", resp.text
    assert resp.headers.get("Retry-After"), "a 503 should say when to retry (Retry-After)"
    session = sio_session(gw.url).connect(token=a.token)
    socket_cmid = unique("wait-sock")
    code, _ = ack_error(session.call("sendMessage", {"receiverId": b.id, "content": "and now?",
                                                     "clientMsgId": socket_cmid}, timeout=10))
    assert code == "worker_unavailable", code
    assert mb.history(a.id) == [] and mb.unread() == 0, "nothing is stored without a worker"

    procs.worker(worker_env({"COMMAND_STREAM": stream, "DEAD_LETTER_STREAM": stream + ":dead"}))
    # The waiting commands are applied by the new worker (the group starts at the stream's beginning).
    poll(lambda: len(mb.history(a.id)) == 2 or None, 20, interval=0.2, what="the two waiting messages stored")
    stored = mb.history(a.id)
    assert sorted(m["clientMsgId"] for m in stored) == sorted([cmid, socket_cmid]), stored
    first = next(m for m in stored if m["clientMsgId"] == cmid)

    retry = ma.send(b.id, "anyone there?", cmid)
    assert retry.status_code == 200, f"the retry finds the stored message: {retry.status_code} {retry.text}"
    assert check_message(retry.json())["id"] == first["id"]
    again = ack_message(session.call("sendMessage", {"receiverId": b.id, "content": "and now?",
                                                     "clientMsgId": socket_cmid}, timeout=10))
    assert again["clientMsgId"] == socket_cmid and again["seq"] in (1, 2)
    assert len(mb.history(a.id)) == 2 and mb.unread() == 2, "retries must not add messages"


ROOM_MEMBERS = 50
ROOM_SENDERS = 4
ROOM_TOTAL = 5_000


@pytest.mark.timeout(420)
def test_no_room_message_lost_when_a_worker_is_killed(settings, procs, sio_session):
    """Rooms (issue 13): 4 senders stream 5,000 messages into one 50-member room over two gateways
    while one of two workers is killed with SIGKILL. Every acknowledged message is stored once,
    the room's seq runs 1..5000 without gaps, and every member that syncs holds exactly the
    stored set."""
    cluster = start_cluster(procs)
    api = Api(cluster.gw1.url)
    members = [create_user(api) for _ in range(ROOM_MEMBERS)]
    rid = api.post("/api/rooms", {"name": unique("durable")}, token=members[0].token).json()["id"]
    for member in members[1:]:
        resp = api.post(f"/api/rooms/{rid}/join", token=member.token)
        assert resp.status_code == 200, resp.text
    senders = members[:ROOM_SENDERS]
    sessions = [sio_session(cluster.gateways[n % 2].url).connect(token=u.token) for n, u in enumerate(senders)]
    run = uuid.uuid4().hex[:8]
    per_sender = ROOM_TOTAL // ROOM_SENDERS
    plans = [[(f"rd{run}-{n}-{k}", rid, f"room durable {run} {n} {k}") for k in range(per_sender)] for n in range(ROOM_SENDERS)]
    counter = AckCounter(ROOM_TOTAL * 3 // 10)
    streamers = [Streamer(n, sessions[n], u, plans[n], counter, target="roomId") for n, u in enumerate(senders)]
    start = time.monotonic()
    for s in streamers:
        s.start()
    r = redis_client(settings)
    try:
        assert counter.reached.wait(STREAM_DEADLINE), "\n".join(s.summary() for s in streamers)
        pending = poll(lambda: (lambda p: p if any(p.values()) else None)(pending_by_consumer(r)), 10, interval=0.01,
                       what="a worker holding pending entries")
        victim = max(cluster.workers, key=lambda w: pending.get(w.env["WORKER_ID"], -1))
        victim.proc.kill()
        victim.proc.wait(timeout=10)
        victim.stopped = True
        deadline = start + STREAM_DEADLINE
        for s in streamers:
            s.join(timeout=max(0.0, deadline - time.monotonic()))
        report = "\n".join(s.summary() for s in streamers)
        assert not [s for s in streamers if s.is_alive()], f"not every message was acknowledged:\n{report}\n" + logs_of(cluster.all())
        problems = [p for s in streamers for p in s.problems]
        assert not problems, "\n".join(problems[:20]) + "\n" + report
        wait_until_all_consumed(r, timeout=30)
    finally:
        r.close()
    seconds = time.monotonic() - start

    acked = {(s.user.id, cmid): stored for s in streamers for cmid, stored in s.acked.items()}
    assert len(acked) == ROOM_TOTAL
    rows = psql_rows(settings, f"SELECT id, seq, sender_id, client_msg_id FROM messages WHERE conversation_id = {rid} ORDER BY seq")
    assert [int(seq) for _id, seq, _s, _c in rows] == list(range(1, ROOM_TOTAL + 1)), "the room's seq must run 1..N without gaps"
    by_key = {(int(sender), cmid): (int(mid), int(seq)) for mid, seq, sender, cmid in rows}
    assert len(by_key) == ROOM_TOTAL, "a message stored twice"
    wrong = [k for k, stored in acked.items() if by_key.get(k) != (stored[0], stored[2])]
    assert not wrong, f"{len(wrong)} acks differ from the stored rows, e.g. {wrong[:3]}"
    stored_ids = [int(mid) for mid, _seq, _s, _c in rows]

    # Three members (a sender, two others) sync the room page by page: exactly the stored set.
    for member in (members[0], members[10], members[-1]):
        seen, seq = [], 0
        while True:
            body = Messages(cluster.gw2.url, member).sync(since={rid: seq}, limit=SYNC_PAGE)
            conv = next(c for c in body["conversations"] if c["conversationId"] == rid)
            seen += [m["id"] for m in conv["messages"]]
            if not conv["hasMore"]:
                break
            seq = conv["messages"][-1]["seq"]
        assert seen == stored_ids, f"{member.username} synced {len(seen)} messages, {len(stored_ids)} are stored"
    print(f"\n{ROOM_TOTAL} room messages from {ROOM_SENDERS} senders into {ROOM_MEMBERS} members in {seconds:.1f}s, "
          f"a worker killed after {counter.threshold} acks; resent {sum(s.resent for s in streamers)}")
