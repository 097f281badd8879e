"""Overload (issue 17, item 5): past what the workers can take, a gateway refuses new writes at
once with `overloaded` and when to come back (`retryAfterMs`, `Retry-After`), instead of queueing
without bound; its memory stays flat; and every write it acknowledged is stored exactly once, the
refused ones too once their senders retried. Password hashing admits by expected wait."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import threading
import time

import pytest
import requests

from support import (
    Api,
    SioSession,
    create_user,
    error_of,
    make_contacts,
    poll,
    stored_messages,
    unique,
    worker_env,
)

MAX_PENDING = 20


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


class Sender:
    """One user's socket sending messages with acks, without waiting for them; remembers every
    answer by clientMsgId."""

    def __init__(self, gateway, user, receiver):
        self.session = SioSession(gateway.url).connect(token=user.token)
        self.user = user
        self.receiver = receiver
        self.lock = threading.Lock()
        self.answers: dict[str, object] = {}
        self.done = threading.Condition(self.lock)

    def send(self, client_msg_id: str) -> None:
        def answered(*args):
            with self.lock:
                self.answers[client_msg_id] = args[0] if args else None
                self.done.notify_all()

        with self.lock:
            self.answers.pop(client_msg_id, None)
        self.session.client.emit("sendMessage", {"receiverId": self.receiver.id, "content": f"flood {client_msg_id}",
                                                 "clientMsgId": client_msg_id}, callback=answered)

    def wait(self, ids, timeout: float) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not all(i in self.answers for i in ids):
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"{sum(i in self.answers for i in ids)} of {len(ids)} sends answered"
                self.done.wait(remaining)
            return {i: self.answers[i] for i in ids}


def outcome(answer) -> str:
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        return answer["error"]["code"]
    return "ok" if isinstance(answer, dict) and "id" in answer else f"unexpected {answer!r}"


@pytest.mark.timeout(180)
def test_a_flood_is_refused_with_when_to_retry_and_nothing_acknowledged_is_lost(procs):
    worker = procs.worker(worker_env())
    gateway = procs.gateway({"MAX_PENDING_COMMANDS": str(MAX_PENDING)})
    api = Api(gateway.url)
    pairs = []
    for _ in range(4):
        sender, receiver = create_user(api), create_user(api)
        make_contacts(gateway.url, sender, receiver)
        pairs.append((sender, receiver))
    senders = [Sender(gateway, sender, receiver) for sender, receiver in pairs]
    try:
        # 1. The workers stall (SIGSTOP): the first MAX_PENDING writes wait, every later one is
        #    refused at once, over REST and over sockets alike.
        os.kill(worker.proc.pid, signal.SIGSTOP)
        try:
            first = [f"p{index}-{unique()}" for index in range(MAX_PENDING)]
            for index, cmid in enumerate(first):
                senders[index % 4].send(cmid)
            time.sleep(0.5)
            refused_ids = [f"r{index}-{unique()}" for index in range(8)]
            for index, cmid in enumerate(refused_ids):
                senders[index % 4].send(cmid)
            for index, cmid in enumerate(refused_ids):
                answer = senders[index % 4].wait([cmid], 2)[cmid]
                assert outcome(answer) == "overloaded", answer
                assert 100 <= answer["error"]["retryAfterMs"] <= 10_000, answer
            rest = Api(gateway.url).post("/api/messages", {"receiverId": pairs[0][1].id, "content": "over REST",
                                                           "clientMsgId": unique()}, pairs[0][0].token)
            assert rest.status_code == 503 and error_of(rest)[0] == "overloaded", rest.text
            assert int(rest.headers["Retry-After"]) >= 1 and rest.json()["error"]["retryAfterMs"] >= 100, rest.headers
        finally:
            os.kill(worker.proc.pid, signal.SIGCONT)
        for index, cmid in enumerate(first):
            assert outcome(senders[index % 4].wait([cmid], 15)[cmid]) == "ok"

        # 2. A flood at many times what the worker takes: four sockets send 300 each as fast as
        #    they can; refused writes are sent again (same clientMsgId) after their retryAfterMs.
        rss_before = rss_kib(gateway.proc.pid)
        flood = {s: [f"f{index}-{unique()}" for index in range(300)] for s in range(4)}
        for index in range(300):
            for s in range(4):
                senders[s].send(flood[s][index])
        counts = {"ok": 0, "overloaded": 0}
        deadline = time.monotonic() + 120
        pending = {s: list(ids) for s, ids in flood.items()}
        while any(pending.values()):
            assert time.monotonic() < deadline, f"still unacknowledged: {sum(map(len, pending.values()))}"
            for s, ids in pending.items():
                if not ids:
                    continue
                answers = senders[s].wait(ids, 30)
                retry = []
                for cmid, answer in answers.items():
                    kind = outcome(answer)
                    assert kind in ("ok", "overloaded"), answer
                    counts[kind] += 1
                    if kind == "overloaded":
                        retry.append((cmid, answer["error"]["retryAfterMs"]))
                if retry:
                    time.sleep(min(wait for _, wait in retry) / 1000)
                    for cmid, _ in retry:
                        senders[s].send(cmid)
                pending[s] = [cmid for cmid, _ in retry]
        rss_after = rss_kib(gateway.proc.pid)
        print(f"\nflood of 1,200 writes with MAX_PENDING_COMMANDS={MAX_PENDING}: {counts['overloaded']} refusals "
              f"(overloaded, retried after retryAfterMs), all 1,200 acknowledged; gateway RSS {rss_before} -> {rss_after} KiB")
        assert counts["overloaded"] > 0, "the flood never reached the bound"
        assert rss_after - rss_before < 64 * 1024, f"gateway RSS grew by {rss_after - rss_before} KiB"

        # 3. Every acknowledged write is stored exactly once.
        _rows, by_key = stored_messages(procs.settings, [sender.id for sender, _ in pairs])
        duplicates = {k: v for k, v in by_key.items() if len(v) != 1}
        assert not duplicates, list(duplicates.items())[:3]
        for s, (sender, _receiver) in enumerate(pairs):
            for cmid in first[s::4] + flood[s]:
                assert (sender.id, cmid) in by_key, f"acknowledged {cmid} is not stored"
            for cmid in refused_ids[s::4]:
                assert (sender.id, cmid) not in by_key, f"refused {cmid} was stored"
        assert worker.alive() and gateway.alive()
    finally:
        for sender in senders:
            sender.session.close()


@pytest.mark.parametrize("max_wait_ms, all_admitted", [(60000, True), (300, False)])
def test_password_hashing_admits_by_expected_wait(procs, max_wait_ms, all_admitted):
    gateway = procs.gateway({"HASH_THREADS": "1", "SCRYPT_LOG_N": "14", "HASH_MAX_WAIT_MS": str(max_wait_ms),
                             "RATE_LIMIT_LOGIN_IP": "1000000/1m"})
    # One sign-up first, so the pool knows how long a hash takes.
    create_user(Api(gateway.url))

    def signup(_):
        name = unique()
        return requests.post(gateway.url + "/api/auth/signup", timeout=60,
                             json={"username": name, "email": f"{name}@example.com", "password": "password123"})

    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(signup, range(40)))
    statuses = [a.status_code for a in answers]
    refused = [a for a in answers if a.status_code == 503]
    for answer in refused:
        assert error_of(answer)[0] == "overloaded", answer.text
        assert int(answer.headers["Retry-After"]) >= 1, answer.headers
        assert answer.json()["error"]["retryAfterMs"] >= 1, answer.text
    assert set(statuses) <= {201, 503}, statuses
    if all_admitted:
        assert statuses.count(201) == 40, statuses
    else:
        assert refused and statuses.count(201) >= 1, statuses
    poll(lambda: requests.get(gateway.url + "/health", timeout=5).status_code == 200, 5, what="gateway alive")
