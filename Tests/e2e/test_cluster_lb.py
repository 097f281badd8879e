"""Through the load balancer (issue 6, acceptance 1 and 2): HAProxy, configured like deploy/haproxy.cfg
(scripts/lib/haproxy-config.sh generates both this test's and scripts/cluster's configuration), in
front of two gateways and two workers.

1. Clients connecting one after another land on both gateways (each gateway's request log counts
   its WebSocket upgrades, status 101), and users on different gateways talk to each other.
2. Rolling restart: while python-socketio clients (reconnection on) keep sending with acks and
   clientMsgIds through the load balancer, gateway 1 gets SIGTERM and is restarted on its port, then
   gateway 2. No acknowledged message is lost or stored twice, every client reconnected by itself,
   and `sync` afterwards returns every persisted message of the clients' conversations."""

from __future__ import annotations

import collections
import json
import threading
import time
import uuid
from dataclasses import dataclass

import pytest

from haproxy_lb import HAProxy
from support import (
    ack_message,
    Api,
    assert_acks_match_storage,
    Cluster,
    create_user,
    Messages,
    numsub,
    poll,
    psql_rows,
    start_cluster,
    stored_messages,
    unique,
    user_channel,
)

ACK = 10  # s for one acknowledged call
DELIVERY = 5  # s for a receiveMessage to arrive


@dataclass
class LbCluster:
    cluster: Cluster
    lb: HAProxy

    @property
    def url(self) -> str:
        return self.lb.url


@pytest.fixture(scope="module")
def lb_cluster(module_procs, tmp_path_factory):
    """Two workers and two gateways (the existing cluster fixture's processes) behind HAProxy."""
    cluster = start_cluster(module_procs)
    lb = HAProxy(tmp_path_factory.mktemp("haproxy"), [gw.port for gw in cluster.gateways])
    try:
        for n in range(1, len(cluster.gateways) + 1):
            lb.wait_status(f"gateway-{n}", "UP")
        yield LbCluster(cluster, lb)
    finally:
        lb.stop()


@pytest.fixture
def lbc(lb_cluster):
    yield lb_cluster
    assert lb_cluster.lb.alive(), f"haproxy died:\n{lb_cluster.lb.log_tail()}"
    lb_cluster.cluster.check_alive()


def upgrades(gateway) -> int:
    """WebSocket upgrades (status 101 on /socket.io/) in a gateway's JSON request log."""
    count = 0
    for line in gateway.logs().splitlines():
        if '"status":101' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("msg") == "request" and entry.get("status") == 101:
            count += 1
    return count


def landed_on(cluster: Cluster, before: list[int]) -> int:
    """Index of the gateway whose upgrade count grew by one since `before` (waits for the log line)."""

    def grown():
        now = [upgrades(g) for g in cluster.gateways]
        changed = [i for i, (a, b) in enumerate(zip(before, now)) if b != a]
        return changed if changed else None

    changed = poll(grown, 5, interval=0.05, what="the upgrade in a gateway log")
    assert len(changed) == 1, f"one connection upgraded on several gateways? {before} -> {changed}"
    return changed[0]


def by_cmid(cmid):
    return lambda m, *rest: isinstance(m, dict) and m.get("clientMsgId") == cmid


def test_clients_land_on_both_gateways_and_talk_across_them(settings, lbc, sio_session):
    cluster = lbc.cluster
    api = Api(lbc.url)  # the REST API through the load balancer too
    users = [create_user(api) for _ in range(6)]
    placed: list[tuple[object, object, int]] = []  # (user, session, gateway index)
    for u in users:
        before = [upgrades(g) for g in cluster.gateways]
        session = sio_session(lbc.url).connect(token=u.token)
        placed.append((u, session, landed_on(cluster, before)))
        poll(lambda u=u: numsub(settings, user_channel(u.id)) == 1, 3, interval=0.05, what=f"{u.username} subscribed")
    per_gateway = collections.Counter(g for _u, _s, g in placed)
    assert set(per_gateway) == {0, 1}, f"six connections through haproxy should reach both gateways: {per_gateway}"

    # A user on gateway 1 and one on gateway 2 write to each other.
    a, sa, _ = next(p for p in placed if p[2] == 0)
    b, sb, _ = next(p for p in placed if p[2] == 1)
    for sender, s_session, receiver, r_session in ((a, sa, b, sb), (b, sb, a, sa)):
        cmid = unique("lb")
        mark = r_session.mark()
        ack = s_session.call("sendMessage", {"receiverId": receiver.id, "content": f"hi from {sender.username}",
                                             "clientMsgId": cmid}, timeout=ACK)
        sent = ack_message(ack, senderId=sender.id, receiverId=receiver.id, clientMsgId=cmid)
        got = r_session.wait_for("receiveMessage", DELIVERY, since=mark, match=by_cmid(cmid)).args[0]
        assert got.get("id") == sent["id"] and got.get("content") == sent["content"], (sent, got)
    history = Messages(lbc.url, a).history(b.id)
    assert sorted(m["senderId"] for m in history) == sorted([a.id, b.id]), history


# --- rolling restart ------------------------------------------------------------------------------

CLIENTS = 6
WINDOW = 4  # unacknowledged messages per client
ACK_TIMEOUT = 3.0  # s without an ack before the same clientMsgId is sent again
PACE = 0.02  # s between a client's sends, so the stream lasts through the restarts
SETTLE_DEADLINE = 60.0  # s for every outstanding message to be acknowledged after the restarts


class Sender(threading.Thread):
    """One client sending until told to stop, with at most WINDOW unacknowledged messages. A message
    whose ack does not come (the socket dropped, or the ack is late) is sent again with the same
    clientMsgId once connected; an error ack is retried too. Emits while disconnected are skipped."""

    def __init__(self, index: int, session, user, receivers: list[int], run: str):
        super().__init__(name=f"sender-{index}", daemon=True)
        self.index, self.session, self.user, self.receivers, self.run_id = index, session, user, receivers, run
        self.cond = threading.Condition()
        self.pending: dict[str, list] = {}  # cmid -> [receiver, content, deadline]
        self.sent: dict[str, tuple[int, str]] = {}  # every cmid ever sent -> (receiver, content)
        self.acked: dict[str, tuple[int, int, int]] = {}  # cmid -> (id, conversationId, seq)
        self.problems: list[str] = []
        self.errors: collections.Counter = collections.Counter()
        self.resent = 0
        self.stop_new = threading.Event()
        self.quit = threading.Event()

    def run(self) -> None:
        try:
            self._run()
        except Exception as error:  # reported by the test
            with self.cond:
                self.problems.append(f"{self.name} crashed: {error!r}")

    def _run(self) -> None:
        k = 0
        while not self.quit.is_set():
            batch = []
            with self.cond:
                if self.stop_new.is_set() and not self.pending:
                    return
                now = time.monotonic()
                if self.session.connected:
                    for cmid, out in self.pending.items():
                        if out[2] <= now:
                            batch.append(cmid)
                            self.resent += 1
                    if not self.stop_new.is_set() and len(self.pending) < WINDOW:
                        cmid = f"r{self.run_id}-{self.index}-{k}"
                        receiver = self.receivers[k % len(self.receivers)]
                        content = f"rolling {self.run_id} {self.index} {k}"
                        k += 1
                        self.pending[cmid] = [receiver, content, 0.0]
                        self.sent[cmid] = (receiver, content)
                        batch.append(cmid)
                    for cmid in batch:
                        self.pending[cmid][2] = now + ACK_TIMEOUT
                payloads = [(cmid, {"receiverId": self.pending[cmid][0], "content": self.pending[cmid][1],
                                    "clientMsgId": cmid}) for cmid in batch]
            for cmid, payload in payloads:
                try:
                    self.session.client.emit("sendMessage", payload, namespace="/",
                                             callback=lambda *args, cmid=cmid: self._on_ack(cmid, args))
                except Exception:  # disconnected in between: the ack timeout sends it again
                    pass
            time.sleep(PACE)

    def _on_ack(self, cmid: str, args: tuple) -> None:
        ack = args[0] if len(args) == 1 else args
        with self.cond:
            if isinstance(ack, dict) and isinstance(ack.get("error"), dict):
                self.errors[ack["error"].get("code")] += 1
                if cmid in self.pending:
                    self.pending[cmid][2] = min(self.pending[cmid][2], time.monotonic() + 0.3)
                return
            receiver, content = self.sent[cmid]
            if not (isinstance(ack, dict) and isinstance(ack.get("id"), int) and ack.get("clientMsgId") == cmid
                    and ack.get("content") == content and ack.get("receiverId") == receiver
                    and ack.get("senderId") == self.user.id):
                self.problems.append(f"{cmid}: the ack is not the stored message: {ack!r}")
                return
            stored = (ack["id"], ack["conversationId"], ack["seq"])
            previous = self.acked.setdefault(cmid, stored)
            if previous != stored:
                self.problems.append(f"{cmid} acknowledged as two different messages: {previous} and {stored}")
            self.pending.pop(cmid, None)

    def count(self) -> int:
        with self.cond:
            return len(self.acked)

    def summary(self) -> str:
        with self.cond:
            return (f"{self.name}: sent {len(self.sent)}, acked {len(self.acked)}, pending {len(self.pending)}, "
                    f"resent {self.resent}, error acks {dict(self.errors)}, connected {self.session.connected}")


def reconnecting_session(sio_session, url: str):
    """A recording session whose python-socketio client reconnects by itself (quickly)."""
    session = sio_session(url)
    client = session.client
    client.reconnection = True
    client.reconnection_attempts = 0  # forever
    client.reconnection_delay = 0.2
    client.reconnection_delay_max = 1
    return session


def restart_gateway(lbc: LbCluster, index: int, procs) -> None:
    """SIGTERM gateway `index`, wait for haproxy to see it gone, start it again on the same port and
    GATEWAY_ID, and wait until haproxy sends traffic to it again."""
    old = lbc.cluster.gateways[index]
    name = f"gateway-{index + 1}"
    code, killed = old.stop(timeout=30)
    assert not killed, f"{name} ignored SIGTERM for 30 s:\n{old.log_tail()}"
    assert code == 0, f"{name} exited with {code} after SIGTERM:\n{old.log_tail()}"
    lbc.lb.wait_status(name, "DOWN", timeout=15)
    new = procs.gateway({"PORT": str(old.port), "GATEWAY_ID": old.env["GATEWAY_ID"]})
    lbc.cluster.gateways[index] = new
    lbc.lb.wait_status(name, "UP", timeout=30)


@pytest.mark.timeout(300)
def test_rolling_restart_loses_no_acknowledged_message(settings, lbc, module_procs, sio_session):
    cluster = lbc.cluster
    api = Api(lbc.url)
    users = [create_user(api) for _ in range(CLIENTS)]
    ids = [u.id for u in users]
    sessions = []
    for u in users:
        session = reconnecting_session(sio_session, lbc.url).connect(token=u.token)
        sessions.append(session)
        poll(lambda u=u: numsub(settings, user_channel(u.id)) == 1, 3, interval=0.05, what=f"{u.username} subscribed")
    connects_before = [sum(1 for e in s.events if e.name == "connect") for s in sessions]

    run = uuid.uuid4().hex[:8]
    senders = [Sender(n, s, u, [v for v in ids if v != u.id], run) for n, (s, u) in enumerate(zip(sessions, users))]
    for s in senders:
        s.start()
    report = lambda: "\n".join(s.summary() for s in senders)  # noqa: E731

    def acked_total() -> int:
        return sum(s.count() for s in senders)

    try:
        poll(lambda: acked_total() >= 60, 30, interval=0.1, what="60 acknowledged messages before the restarts")
        for index in range(len(cluster.gateways)):
            at_start = acked_total()
            restart_gateway(lbc, index, module_procs)
            # Traffic flows again (on the other gateway, or both) before the next restart.
            try:
                poll(lambda: acked_total() >= at_start + 30, 30, interval=0.1,
                     what=f"30 more acks after restarting gateway {index + 1}")
            except AssertionError as error:
                events = [[(e.name, e.args) for e in s.events if e.name in ("connect", "disconnect",
                                                                             "connect_error")] for s in sessions]
                raise AssertionError(f"{error}\n{report()}\nclient connection events: {events}\n"
                                     + "\n".join(f"--- gateway {g.env['GATEWAY_ID']}:\n{g.log_tail(12)}"
                                                 for g in cluster.gateways)
                                     + f"\n--- haproxy:\n{lbc.lb.log_tail(12)}") from None
    finally:
        for s in senders:
            s.stop_new.set()
    deadline = time.monotonic() + SETTLE_DEADLINE
    for s in senders:
        s.join(timeout=max(0.0, deadline - time.monotonic()))
    unfinished = [s for s in senders if s.is_alive()]
    for s in senders:
        s.quit.set()
    problems = [p for s in senders for p in s.problems]
    assert not problems, "\n".join(problems[:20]) + "\n" + report()
    assert not unfinished, f"messages still unacknowledged {SETTLE_DEADLINE}s after the restarts:\n{report()}"

    # Every client lost its connection at least once (its gateway stopped) and reconnected by itself.
    for n, session in enumerate(sessions):
        disconnects = sum(1 for e in session.events if e.name == "disconnect")
        connects = sum(1 for e in session.events if e.name == "connect")
        assert disconnects >= 1, f"client {n} was never disconnected: the restarts proved nothing for it"
        assert connects > connects_before[n] and session.connected, (
            f"client {n} did not reconnect by itself: {connects} connects, {disconnects} disconnects, "
            f"connected {session.connected}")
    # When gateway 2 stopped, its clients came back through haproxy to the restarted gateway 1.
    assert upgrades(cluster.gateways[0]) > 0, "the restarted gateway 1 never took a connection"

    # 1. Every acknowledged message is in Postgres exactly once, as acknowledged.
    acked = {(s.user.id, cmid): stored for s in senders for cmid, stored in s.acked.items()}
    sent = {(s.user.id, cmid): content for s in senders for cmid, (_r, content) in s.sent.items()}
    assert len(acked) == len(sent), "every message sent was acknowledged in the end"
    id_list = ",".join(str(int(i)) for i in ids)
    rows, by_key = stored_messages(settings, ids)
    assert_acks_match_storage(acked, by_key, sent)
    assert len(rows) == len(acked), f"{len(rows)} rows for {len(acked)} acknowledged messages"

    # 2. Each client's sync (through the load balancer) returns every persisted message of its
    #    conversations, in seq order, with no gap.
    members = psql_rows(settings, f"""
        SELECT cm.user_id, cm.conversation_id, c.last_seq
        FROM conversation_members cm JOIN conversations c ON c.id = cm.conversation_id
        WHERE cm.user_id IN ({id_list})""")
    persisted: dict[int, list[tuple[int, int]]] = collections.defaultdict(list)  # conv -> (seq, id)
    for mid, conv, seq, _content in (entries[0] for entries in by_key.values()):
        persisted[conv].append((seq, mid))
    for conv in persisted.values():
        conv.sort()
    for u in users:
        mine = {int(conv): int(last) for uid, conv, last in members if int(uid) == u.id}
        synced = Messages(lbc.url, u).sync_all()
        assert set(synced) == set(mine), f"{u.username}: sync lists {sorted(synced)}, member of {sorted(mine)}"
        for conv, entry in synced.items():
            got = [(m["seq"], m["id"]) for m in entry["messages"]]
            assert got == persisted[conv], (
                f"{u.username}, conversation {conv}: sync returned {len(got)} messages, Postgres holds "
                f"{len(persisted[conv])}")
            assert [seq for seq, _ in got] == list(range(1, mine[conv] + 1)), (
                f"{u.username}, conversation {conv}: seqs are not 1..{mine[conv]}")
