"""Churn traffic and the report for bench/soak.sh (issue 17, item 6). Python 3.11, asyncio.

  run     --url http://127.0.0.1:A --url http://127.0.0.1:B --user-base U --users N --ops-rate R
          --seconds T
          N users (U ... U+N-1, seeded by the script) keep connecting and disconnecting for T seconds,
          R operations per second in all: each session connects (python-socketio's AsyncClient,
          WebSocket transport, `auth={"token"}`) to one of the gateways, stays 1-10 s doing 1-4
          operations (`typing` / `stopTyping` to a friend, `presenceSubscribe`, `sendMessage` with an
          ack and a unique clientMsgId, REST reads with the Bearer token: `GET /api/conversations`,
          `/api/conversations/unread`, `/api/conversations/{id}/messages`), disconnects, and pauses
          so that the user's share of R holds. Friends: the 4 users on either side (so the users
          share conversations: presence and history have something to show). Every operation is
          timed (successes; failures are counted by code: the ack's `error.code`, `http <status>
          <error.code>`, `connect_refused <code>` for a CONNECT_ERROR, `connect_failed <message>` for
          a transport failure, `dropped <reason>` for a disconnect the client did not ask for,
          `error_event <code>` for a server `error` event, else the exception's class).
          Prints a progress line per minute and, at the end, one line `{"soakClient": {...}}`: totals
          per operation, errors by code, and per minute the operations, p50/p99 (all and per
          operation) and errors. Every await is bounded; it stops at its deadline.
  report  --samples FILE --direct FILE --room FILE --client FILE --settings JSON --markdown FILE
          The soak's markdown report from the process samples (JSON lines written by soak.sh), both
          ChatLoads' outputs (`{"interval"...}` and `{"summary"...}` lines) and this client's output.
          Exit status 0, or 3 when a process's RSS or fds grew (or shrank) beyond the bound.

Tokens are HS256 JWTs signed here with JWT_SECRET, the claims as the gateway's own signer writes
them (`iss` JWT_ISSUER or swift-chat, `sub` the user id as a string, `iat`, `exp`, a random `jti`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import math
import os
import random
import secrets
import sys
import time
from collections import Counter, defaultdict

import aiohttp
import socketio

MINUTE = 60.0
# fds: a change of at most this many is flat whatever the percentage (a connection being closed
# at the sampling instant; 2 of a worker's 18 fds would be 11 %).
FD_SLACK = 2
FRIENDS = 4  # on either side
# Operation mix inside a session (connect and disconnect come with every session).
MIX = [
    ("typing", 20),
    ("stopTyping", 10),
    ("presenceSubscribe", 15),
    ("getConversations", 15),
    ("getUnread", 15),
    ("getHistory", 15),
    ("sendMessage", 10),
]
# Longer than the gateway's own bounds (COMMAND_REPLY_TIMEOUT_MS, 10 s), so that its refusal
# (`worker_unavailable`) arrives with its code rather than as a timeout here.
CALL_TIMEOUT = 15.0
CONNECT_TIMEOUT = 15.0
DISCONNECT_TIMEOUT = 5.0


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(user_id: int, secret: str, lifetime: int) -> str:
    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"sub": str(user_id), "iat": now, "exp": now + lifetime, "jti": secrets.token_hex(16)}
    issuer = os.environ.get("JWT_ISSUER", "swift-chat")
    if issuer:
        claims["iss"] = issuer
    if os.environ.get("JWT_AUDIENCE"):
        claims["aud"] = os.environ["JWT_AUDIENCE"]
    payload = b64(json.dumps(claims, separators=(",", ":")).encode())
    signing = f"{header}.{payload}"
    return f"{signing}.{b64(hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest())}"


def quantile(values: list[float], q: float) -> float | None:
    """Nearest rank; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


class Stats:
    def __init__(self, started: float, seconds: float):
        self.started = started
        self.last_minute = max(1, math.ceil(seconds / MINUTE))
        self.latencies: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        self.minute_errors: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.errors_by_op: dict[str, Counter[str]] = defaultdict(Counter)
        self.ok: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.presence = Counter()

    def minute(self, at: float) -> int:
        # The last disconnects begin at the deadline: they count in the last minute.
        return min(int((at - self.started) // MINUTE) + 1, self.last_minute)

    def success(self, op: str, began: float) -> None:
        self.latencies[self.minute(began)][op].append((time.monotonic() - began) * 1000)
        self.ok[op] += 1

    def failure(self, op: str, code: str, at: float | None = None) -> None:
        self.errors[code] += 1
        self.errors_by_op[op][code] += 1
        self.minute_errors[self.minute(at if at is not None else time.monotonic())] += 1

    def minute_summary(self, minute: int, seconds: float) -> dict:
        by_op = self.latencies.get(minute, {})
        every = [value for values in by_op.values() for value in values]
        return {
            "minute": minute,
            "seconds": round(seconds, 1),
            "ops": len(every) + self.minute_errors[minute],
            "p50Ms": rounded(quantile(every, 0.5)),
            "p99Ms": rounded(quantile(every, 0.99)),
            "errors": self.minute_errors[minute],
            "byOp": {op: {"ops": len(values), "p50Ms": rounded(quantile(values, 0.5)), "p99Ms": rounded(quantile(values, 0.99))}
                     for op, values in sorted(by_op.items())},
        }


class Churn:
    def __init__(self, args, http):
        self.args = args
        self.http = http
        self.secret = os.environ["JWT_SECRET"]
        self.started = time.monotonic()
        self.deadline = self.started + args.seconds
        self.stats = Stats(self.started, args.seconds)
        self.run_id = secrets.token_hex(4)
        self.sessions = 0
        self.sent: Counter[int] = Counter()  # per user: their clientMsgIds are soak-<run>-<user index>-<n>
        self.conversations: dict[int, list[int]] = defaultdict(list)  # user -> direct conversation ids
        self.partners: dict[int, set[int]] = defaultdict(set)

    def friends(self, index: int) -> list[int]:
        n = self.args.users
        return [self.args.user_base + (index + d) % n for d in range(-FRIENDS, FRIENDS + 1) if d != 0 and (index + d) % n != index]

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    async def sleep_until(self, at: float) -> None:
        delay = min(at, self.deadline) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    # --- one operation each, timed and classified -------------------------------------------------

    async def call(self, client, op: str, event: str, data) -> object | None:
        began = time.monotonic()
        try:
            result = await asyncio.wait_for(client.call(event, data, timeout=CALL_TIMEOUT), CALL_TIMEOUT + 1)
        except Exception as error:  # noqa: BLE001 (counted by class)
            self.stats.failure(op, type(error).__name__, began)
            return None
        if isinstance(result, dict) and isinstance(result.get("error"), dict):
            self.stats.failure(op, str(result["error"].get("code", "unknown")), began)
            return None
        self.stats.success(op, began)
        return result

    async def get(self, op: str, user_id: int, path: str) -> object | None:
        url = random.choice(self.args.url) + path
        headers = {"Authorization": f"Bearer {token(user_id, self.secret, 3600)}"}
        began = time.monotonic()
        try:
            async with asyncio.timeout(CALL_TIMEOUT + 1):
                async with self.http.get(url, headers=headers) as response:
                    body = await response.read()
                    status = response.status
        except Exception as error:  # noqa: BLE001
            self.stats.failure(op, type(error).__name__, began)
            return None
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        if status >= 400:
            code = parsed.get("error", {}).get("code", "") if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict) else ""
            self.stats.failure(op, f"http {status} {code}".strip(), began)
            return None
        self.stats.success(op, began)
        return parsed

    async def operation(self, client, index: int, rng: random.Random, state: dict) -> None:
        user_id = self.args.user_base + index
        op = rng.choices([name for name, _ in MIX], weights=[weight for _, weight in MIX])[0]
        friends = self.friends(index)
        if op == "typing":
            state["typingTo"] = rng.choice(friends)
            await self.call(client, op, "typing", {"receiverId": state["typingTo"]})
        elif op == "stopTyping":
            await self.call(client, op, "stopTyping", {"receiverId": state.pop("typingTo", None) or rng.choice(friends)})
        elif op == "presenceSubscribe":
            # The friends (mostly contacts once they have talked) and two strangers (refused).
            others = [u for u in range(self.args.user_base, self.args.user_base + self.args.users) if u != user_id and u not in friends]
            watched = friends + rng.sample(others, min(2, len(others)))
            result = await self.call(client, op, "presenceSubscribe", {"userIds": watched})
            if isinstance(result, dict):
                self.stats.presence["watched"] += len(result.get("users") or [])
                self.stats.presence["online"] += sum(1 for u in result.get("users") or [] if isinstance(u, dict) and u.get("isOnline"))
                self.stats.presence["refused"] += len(result.get("refused") or [])
        elif op == "getConversations" or (op == "getHistory" and not self.conversations[user_id]):
            result = await self.get("getConversations", user_id, "/api/conversations?limit=50")
            if isinstance(result, dict):
                self.conversations[user_id] = [c["conversationId"] for c in result.get("conversations") or []
                                               if isinstance(c, dict) and c.get("kind") == "direct" and "conversationId" in c]
        elif op == "getHistory":
            conversation = rng.choice(self.conversations[user_id])
            await self.get(op, user_id, f"/api/conversations/{conversation}/messages?limit=50")
        elif op == "getUnread":
            await self.get(op, user_id, "/api/conversations/unread")
        elif op == "sendMessage":
            self.sent[index] += 1
            receiver = rng.choice(friends)
            result = await self.call(client, op, "sendMessage", {
                "receiverId": receiver, "content": f"soak {time.time():.3f}",
                "clientMsgId": f"soak-{self.run_id}-{index}-{self.sent[index]}"})
            if isinstance(result, dict):
                self.partners[user_id].add(receiver)

    # --- sessions -------------------------------------------------------------------------------

    async def connect(self, user_id: int):
        client = socketio.AsyncClient(reconnection=False, handle_sigint=False, http_session=self.http)
        status = {"refused": None, "closing": False}

        @client.event
        async def connect_error(data):
            # A CONNECT_ERROR from the gateway carries {"message", "data": {"code"}}; a transport
            # failure (refused TCP, failed upgrade) only a message.
            payload = data.get("data") if isinstance(data, dict) else None
            if isinstance(payload, dict) and payload.get("code"):
                status["refused"] = f"connect_refused {payload['code']}"
            else:
                status["refused"] = f"connect_failed {data.get('message') if isinstance(data, dict) else data}"

        @client.event
        async def disconnect(reason=None):
            if not status["closing"]:
                self.stats.failure("session", f"dropped {reason or 'unknown'}")

        @client.on("error")
        async def error_event(data):
            code = data.get("code", "unknown") if isinstance(data, dict) else "unknown"
            self.stats.failure("event", f"error_event {code}")

        for name in ("typing", "stopTyping", "receiveMessage", "userOnline", "userOffline", "onlineUsers", "messageSent"):
            client.on(name, lambda *_, name=name: self.stats.events.update([name]))

        began = time.monotonic()
        url = random.choice(self.args.url)
        try:
            await asyncio.wait_for(client.connect(url, auth={"token": token(user_id, self.secret, int(self.args.seconds) + 3600)},
                                                  transports=["websocket"], wait_timeout=CONNECT_TIMEOUT - 2), CONNECT_TIMEOUT)
        except Exception as failure:  # noqa: BLE001
            code = status["refused"] or type(failure).__name__
            self.stats.failure("connect", code, began)
            status["closing"] = True
            await self.close(client, None)
            return None, status
        self.stats.success("connect", began)
        return client, status

    async def close(self, client, status: dict | None) -> None:
        if status is not None:
            status["closing"] = True
        began = time.monotonic()
        try:
            await asyncio.wait_for(client.disconnect(), DISCONNECT_TIMEOUT)
        except Exception as error:  # noqa: BLE001
            if status is not None:
                self.stats.failure("disconnect", type(error).__name__, began)
            return
        if status is not None:
            self.stats.success("disconnect", began)

    async def user(self, index: int) -> None:
        rng = random.Random(f"{self.run_id}-{index}")
        per_user = self.args.ops_rate / self.args.users
        # Users start spread over one mean cycle (4.5 operations), so the rate is even from the start.
        await self.sleep_until(self.started + rng.uniform(0, 4.5 / per_user))
        while self.remaining() > 1:
            session_began = time.monotonic()
            length = rng.uniform(1, 10)
            planned = rng.randint(1, 4)
            self.sessions += 1
            client, status = await self.connect(self.args.user_base + index)
            done = 1
            if client is not None:
                state: dict = {}
                for i in range(planned):
                    await self.sleep_until(session_began + length * (i + 1) / (planned + 1))
                    if self.remaining() <= 0 or not client.connected:
                        break
                    try:
                        await self.operation(client, index, rng, state)
                    except Exception as error:  # noqa: BLE001 (an unexpected failure of the client itself)
                        self.stats.failure("operation", type(error).__name__)
                    done += 1
                await self.sleep_until(session_began + length)
                await self.close(client, status)
                done += 1
            # Offline for the rest of this user's share of the rate (jittered).
            cycle = done / per_user
            await self.sleep_until(time.monotonic() + max(0.2, cycle - (time.monotonic() - session_began)) * rng.uniform(0.5, 1.5))

    async def progress(self) -> None:
        minute = 1
        while True:
            await asyncio.sleep(max(0.0, self.started + minute * MINUTE - time.monotonic()))
            if time.monotonic() >= self.deadline:
                return
            line = self.stats.minute_summary(minute, MINUTE)
            print(f"soak client minute {minute}: ops={line['ops']} p50={line['p50Ms']} ms p99={line['p99Ms']} ms "
                  f"errors={line['errors']}", flush=True)
            minute += 1

    def summary(self, ended: float) -> dict:
        stats = self.stats
        elapsed = ended - self.started
        ops = {}
        for op in sorted(set(stats.ok) | set(stats.errors_by_op)):
            values = [v for minute in stats.latencies.values() for v in minute.get(op, [])]
            ops[op] = {"ok": stats.ok[op], "errors": sum(stats.errors_by_op[op].values()),
                       "p50Ms": rounded(quantile(values, 0.5)), "p99Ms": rounded(quantile(values, 0.99)),
                       "maxMs": rounded(max(values) if values else None)}
        minutes = []
        last = max([int(math.ceil(min(elapsed, self.args.seconds) / MINUTE))] + list(stats.latencies) + list(stats.minute_errors))
        for minute in range(1, last + 1):
            seconds = min(MINUTE, max(0.0, min(elapsed, self.args.seconds) - (minute - 1) * MINUTE))
            minutes.append(stats.minute_summary(minute, seconds))
        total_ok = sum(stats.ok.values())
        total_errors = sum(stats.errors.values())
        return {"soakClient": {
            "users": self.args.users, "targetOpsPerSecond": self.args.ops_rate, "seconds": round(elapsed, 1),
            "sessions": self.sessions, "ops": total_ok + total_errors, "ok": total_ok, "errors": total_errors,
            "opsPerSecond": round((total_ok + total_errors) / max(elapsed, 1e-9), 1),
            "byOp": ops, "errorsByCode": dict(stats.errors.most_common()),
            "errorsByOp": {op: dict(codes) for op, codes in stats.errors_by_op.items()},
            "eventsReceived": dict(stats.events), "presence": dict(stats.presence), "minutes": minutes,
        }}


async def run(args) -> dict:
    # One session for the REST reads and every socket (limit=0: sockets hold their connection).
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    http = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT))
    churn = Churn(args, http)
    print(f"soak client: {args.users} users, {args.ops_rate} operations/s, {args.seconds:.0f} s, gateways {' '.join(args.url)}", flush=True)
    tasks = [asyncio.create_task(churn.user(i)) for i in range(args.users)]
    progress = asyncio.create_task(churn.progress())
    # Sessions end by the deadline; a last connect or close is bounded by its own timeout.
    _, pending = await asyncio.wait(tasks, timeout=args.seconds + CONNECT_TIMEOUT + DISCONNECT_TIMEOUT + 5)
    ended = time.monotonic()
    for task in [*pending, progress]:
        task.cancel()
    if pending:
        churn.stats.failure("shutdown", "still_running_at_deadline")
        await asyncio.wait(pending, timeout=5)
    try:
        await asyncio.wait_for(http.close(), 5)
    except Exception:  # noqa: BLE001
        pass
    return churn.summary(ended)


# --- report ---------------------------------------------------------------------------------------


def json_lines(path: str, key: str) -> list[dict]:
    """The JSON objects of the lines of `path` that start with `{"<key>"`."""
    found = []
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith('{"' + key + '"'):
                    try:
                        found.append(json.loads(line))
                    except ValueError:
                        pass
    except OSError:
        pass
    return found


def fmt(value, decimals: int = 1, missing: str = "–") -> str:
    if value is None:
        return missing
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{decimals}f}"


CAPPED: list[bool] = []  # a ChatLoad quantile at its histogram's end was shown


def latency(value) -> str:
    """A ChatLoad quantile: its histogram ends at 10 s, so 10,000 means 10 s or more."""
    if isinstance(value, (int, float)) and value >= 10_000:
        CAPPED.append(True)
        return "≥ 10,000"
    return fmt(value)


def change(start: float, end: float) -> float | None:
    return None if not start else (end - start) * 100.0 / start


def report(args) -> int:
    settings = json.loads(args.settings)
    bound = float(settings["flatPercent"])
    samples = [json.loads(line) for line in open(args.samples, encoding="utf-8") if line.strip()]
    direct_intervals = [line["interval"] for line in json_lines(args.direct, "interval")]
    room_intervals = [line["interval"] for line in json_lines(args.room, "interval")]
    direct = (json_lines(args.direct, "summary") or [None])[-1]
    room = (json_lines(args.room, "summary") or [None])[-1]
    client = ([line["soakClient"] for line in json_lines(args.client, "soakClient")] or [None])[-1]
    start = next((s for s in samples if s["label"] == "start"), None)
    end = next((s for s in reversed(samples) if s["label"] == "end"), None)
    out: list[str] = []
    say = out.append

    # Memory and descriptors: start (after the warm-up) against end (before the traffic stops).
    # Compared: a gateway's fds other than its client connections (which the churn moves up and
    # down by design; a connection it failed to close is no longer established and still counts),
    # and the Postgres children's private memory (their VmRSS includes the shared buffers each has
    # touched so far, which rises for minutes without costing anything more).
    def rss_of(name: str, proc: dict) -> float:
        return proc["anonKb"] if name == "Postgres backends" else proc["rssKb"]

    def fds_of(proc: dict) -> int:
        return proc["fds"] - proc.get("sockets", 0)

    def rss_cell(name: str, proc: dict) -> str:
        return f"{fmt(rss_of(name, proc) / 1024)}" + (f" ({fmt(proc['rssKb'] / 1024)})" if name == "Postgres backends" else "")

    def fds_cell(proc: dict) -> str:
        return f"{fds_of(proc)}" + (f" ({proc['fds']})" if "sockets" in proc else "")

    grew: list[str] = []
    rows = []
    if start and end:
        for name, first in start["processes"].items():
            last = end["processes"].get(name)
            if not last:
                continue
            rss_change, fd_change = change(rss_of(name, first), rss_of(name, last)), change(fds_of(first), fds_of(last))
            # The Postgres children's fds are relation files (see below), not a verdict.
            fds_flat = name == "Postgres backends" or fd_change is None or abs(fd_change) <= bound \
                or abs(fds_of(last) - fds_of(first)) <= FD_SLACK
            flat = (rss_change is None or abs(rss_change) <= bound) and fds_flat
            if not flat:
                grew.append(name)
            rows.append(f"| {name} | {rss_cell(name, first)} | {rss_cell(name, last)} | {fmt(rss_change, 1)} % "
                        f"| {fds_cell(first)} | {fds_cell(last)} | {fmt(fd_change, 1)} % | {'flat' if flat else '**GREW**'} |")
    before = next((s for s in samples if s["label"] == "before"), None)
    after = next((s for s in reversed(samples) if s["label"] == "after"), None)

    expected_room = (room or {}).get("messagesAcknowledged", 0) * (settings["roomSize"] - 1)
    direct_ok = bool(direct) and direct.get("messagesDelivered", 0) >= direct.get("messagesAcknowledged", 0) > 0
    room_ok = bool(room) and room.get("messagesDelivered", 0) >= expected_room > 0

    say(f"# Soak: {settings['seconds']} s of mixed traffic ({settings['stamp']})")
    say("")
    say(f"Two gateways (A: senders, B: receivers), two message workers (`RATE_LIMIT_MESSAGES=off`), Redis and "
        f"Postgres (fsync on), release build, one host with {settings['cpus']} CPUs, all at once for {settings['seconds']} s:")
    say("")
    say(f"- direct messages: ChatLoad, {settings['pairs']} sender/receiver pairs, {fmt(settings['directRate'])} messages/s "
        f"(about half the {fmt(settings['directMax'])}/s the messages benchmark measured on this 2-CPU host)")
    say(f"- room messages: ChatLoad, one room of {settings['roomSize']} members (half on each gateway), "
        f"{fmt(settings['roomRate'])} messages/s = {fmt(settings['roomRate'] * (settings['roomSize'] - 1))} deliveries/s")
    say(f"- churn: bench/soak_client.py, {settings['churnUsers']} users connecting and disconnecting (sessions of 1-10 s), "
        f"{settings['churnOps']} operations/s in all: connect, disconnect, typing, stopTyping, presenceSubscribe, "
        "sendMessage, GET /api/conversations, /api/conversations/unread, /api/conversations/{id}/messages")
    say("")
    say("## Verdict")
    say("")
    if start and end:
        say(f"- RSS and open fds from t={start['t']} s (after the {settings['warmup']} s warm-up) to t={end['t']} s: "
            + (f"**flat** within {bound:g} % for every process" if not grew else f"**GREW** beyond {bound:g} %: {', '.join(grew)}"))
    else:
        say("- RSS and open fds: no start/end samples (the traffic ended early)")
    if before and after:
        say("- Idle fds before the traffic and 5 s after it: "
            + ", ".join(f"{name} {before['processes'][name]['fds']} → {after['processes'][name]['fds']}"
                        for name in ("gateway A", "gateway B", "worker 1", "worker 2", "Redis") if name in after["processes"]))
    def delivered(summary: dict | None, ok: bool) -> str:
        return "**no summary**" if not summary else "yes" if ok else "**no**"

    say(f"- Direct: every acknowledged message delivered: {delivered(direct, direct_ok)}; "
        f"room: every acknowledged message delivered to the other {settings['roomSize'] - 1} members: {delivered(room, room_ok)}")
    total_errors = sum((direct or {}).get("messageErrorsByCode", {}).values()) + sum((room or {}).get("messageErrorsByCode", {}).values()) \
        + (client or {}).get("errors", 0)
    say(f"- Errors: {fmt(total_errors)} (by code below)")
    early = settings.get("endedEarly") or {}
    failing = {name: code for name, code in (settings.get("exit") or {}).items() if code}
    if early or failing:
        say("- Traffic: " + "; ".join([f"{name} ended early, at t={t} s" for name, t in sorted(early.items())]
                                      + [f"{name} exited with status {code}" for name, code in sorted(failing.items())])
            + " (see the logs; ChatLoad exits 1 when a connection was refused or lost)")
    say("")

    say("## RSS and open file descriptors, start vs end")
    say("")
    say(f"Start: t={start['t'] if start else '?'} s (after {settings['warmup']} s of traffic); end: t={end['t'] if end else '?'} s, "
        "before the traffic stopped. RSS is VmRSS (/proc/<pid>/status), fds the entries of /proc/<pid>/fd (a change of at most "
        f"{FD_SLACK} fds counts as flat whatever its percentage: a connection closing at the sampling instant). Gateways: the fds "
        "other than their established client connections, which the churn moves up and down by design (all fds in "
        "parentheses; a connection the gateway failed to close is no longer established and still counts). \"Postgres "
        "backends\" sums the postmaster's children: their private memory (RssAnon), VmRSS in parentheses (it includes "
        "the shared buffers each one has touched so far, which rises for minutes without costing more memory).")
    say("")
    say(f"| process | RSS start MB | RSS end MB | RSS change | fds start | fds end | fds change | within {bound:g} % |")
    say("|---|---:|---:|---:|---:|---:|---:|---|")
    out.extend(rows)
    say("")
    say("Postgres keeps the file of every relation a backend has touched open (up to `max_files_per_process` per "
        "backend), so the children's fds rise until each pooled connection has run every kind of query; their number "
        "(per-minute table) is what would show a connection leak; their verdict is on private memory only.")
    say("")
    if before and after:
        say("Idle, before the traffic started and 5 s after it stopped (every socket closed):")
        say("")
        say("| process | RSS before MB | RSS after MB | fds before | fds after |")
        say("|---|---:|---:|---:|---:|")
        for name, first in before["processes"].items():
            last = after["processes"].get(name)
            if last:
                say(f"| {name} | {rss_cell(name, first)} | {rss_cell(name, last)} | {fds_cell(first)} | {fds_cell(last)} |")
        say("")

    say("## RSS MB / open fds per minute")
    say("")
    say("All fds; for the gateways the established client connections in parentheses, for the Postgres children "
        "their number and private MB.")
    say("")
    names = list(samples[0]["processes"]) if samples else []
    say("| sample | t s | " + " | ".join(names) + " |")
    say("|---|---:|" + "---:|" * len(names))
    for sample in samples:
        cells = []
        for name in names:
            proc = sample["processes"].get(name)
            if not proc:
                cells.append("–")
                continue
            extra = f" ({proc['sockets']})" if "sockets" in proc else ""
            if "count" in proc:
                extra = f" ({proc['count']}, {fmt(proc['anonKb'] / 1024)})"
            cells.append(f"{fmt(proc['rssKb'] / 1024)} / {proc['fds']}{extra}")
        say(f"| {sample['label']} | {sample['t']} | " + " | ".join(cells) + " |")
    say("")

    say("## p99 latency per minute (ms)")
    say("")
    say("Ack: from a message's intended send time to its ack; delivery: to its arrival at a receiver "
        "(ChatLoad's `--interval 60`, counted from its first message; a last partial minute has no interval line). "
        "Churn: every operation of the soak client that succeeded (connects, REST reads and acks included).")
    say("")
    say("| minute | direct acked | direct ack p99 | direct delivery p99 | room acked | room ack p99 | room delivery p99 "
        "| churn ops | churn p50 | churn p99 | errors |")
    say("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    minutes = {m["minute"]: m for m in (client or {}).get("minutes", []) if m.get("seconds", MINUTE) > 0}
    direct_by = {i["index"]: i for i in direct_intervals}
    room_by = {i["index"]: i for i in room_intervals}
    for minute in sorted(set(minutes) | set(direct_by) | set(room_by)):
        d, r, c = direct_by.get(minute, {}), room_by.get(minute, {}), minutes.get(minute, {})
        errors = sum((d.get("errorsByCode") or {}).values()) + sum((r.get("errorsByCode") or {}).values()) + c.get("errors", 0)
        partial = f" ({c['seconds']:g} s)" if c and c.get("seconds", MINUTE) < MINUTE else ""
        say(f"| {minute}{partial} | {fmt(d.get('acknowledged'))} | {latency((d.get('ackLatencyMs') or {}).get('p99'))} "
            f"| {latency((d.get('deliveryLatencyMs') or {}).get('p99'))} | {fmt(r.get('acknowledged'))} "
            f"| {latency((r.get('ackLatencyMs') or {}).get('p99'))} | {latency((r.get('deliveryLatencyMs') or {}).get('p99'))} "
            f"| {fmt(c.get('ops'))} | {fmt(c.get('p50Ms'))} | {fmt(c.get('p99Ms'))} | {fmt(errors)} |")
    say("")

    say("## Messages")
    say("")
    say("| stream | sent | acknowledged | errors | delivered | expected deliveries | ack p50 / p99 / p99.9 / max ms "
        "| delivery p50 / p99 / p99.9 / max ms |")
    say("|---|---:|---:|---:|---:|---:|---:|---:|")

    def quantiles(h):
        return " / ".join(latency((h or {}).get(k)) if k != "max" else fmt((h or {}).get(k))
                          for k in ("p50", "p99", "p999", "max")) if h else "–"

    for name, summary, per in (("direct", direct, 1), ("room", room, settings["roomSize"] - 1)):
        if not summary:
            say(f"| {name} | no summary: ChatLoad did not finish (see its output) | | | | | | |")
            continue
        acked = summary.get("messagesAcknowledged", 0)
        say(f"| {name} | {fmt(summary.get('messagesSent'))} | {fmt(acked)} | {fmt(sum(summary.get('messageErrorsByCode', {}).values()))} "
            f"| {fmt(summary.get('messagesDelivered'))} | {fmt(acked * per)} | {quantiles(summary.get('ackLatencyMs'))} "
            f"| {quantiles(summary.get('deliveryLatencyMs'))} |")
    say("")
    for name, summary, per in (("direct", direct, 1), ("room", room, settings["roomSize"] - 1)):
        if summary:
            say(f"{name} ChatLoad: {summary.get('connected', 0)} of {summary.get('target', 0)} connections authenticated, "
                f"{summary.get('dropped', 0)} dropped before the end.")
            say("")
            extra = summary.get("messagesDelivered", 0) - summary.get("messagesAcknowledged", 0) * per
            if extra > 0:
                say(f"{name}: {fmt(extra)} deliveries of messages that were not acknowledged: a send answered "
                    "`worker_unavailable` stays queued and may still be stored and delivered (docs/PROTOCOL.md).")
                say("")
    if CAPPED:
        say("≥ 10,000: ChatLoad's latency histogram ends at 10 s (its max is exact).")
        say("")

    say("## Errors by code")
    say("")
    error_rows = []
    for name, summary in (("direct ChatLoad", direct), ("room ChatLoad", room)):
        summary = summary or {}
        for what, key in (("sendMessage", "messageErrorsByCode"), ("connect refused", "refusedByCode"),
                          ("connect failed", "failedByReason"), ("connection dropped", "droppedByReason")):
            for code, count in sorted((summary.get(key) or {}).items(), key=lambda item: -item[1]):
                error_rows.append(f"| {name} | {what} | `{code}` | {fmt(count)} |")
        unanswered = summary.get("messagesSent", 0) - summary.get("messagesAcknowledged", 0) - sum((summary.get("messageErrorsByCode") or {}).values())
        if unanswered > 0:
            error_rows.append(f"| {name} | sendMessage | no ack within ChatLoad's 15 s drain | {fmt(unanswered)} |")
    for op, codes in sorted(((client or {}).get("errorsByOp") or {}).items()):
        for code, count in sorted(codes.items(), key=lambda item: -item[1]):
            error_rows.append(f"| soak client | {op} | `{code}` | {fmt(count)} |")
    if error_rows:
        say("| source | operation | code | count |")
        say("|---|---|---|---:|")
        out.extend(error_rows)
    else:
        say("None.")
    say("")

    say("## Churn client operations")
    say("")
    if client:
        say(f"{fmt(client['ops'])} operations in {client['seconds']:g} s ({client['opsPerSecond']:g}/s, target "
            f"{client['targetOpsPerSecond']:g}/s) over {fmt(client['sessions'])} sessions; events received: "
            + (", ".join(f"{k} {v:,}" for k, v in sorted(client.get("eventsReceived", {}).items())) or "none")
            + "; presenceSubscribe: " + (", ".join(f"{k} {v:,}" for k, v in sorted(client.get("presence", {}).items())) or "–") + ".")
        say("")
        say("| operation | ok | errors | p50 ms | p99 ms | max ms |")
        say("|---|---:|---:|---:|---:|---:|")
        for op, row in client["byOp"].items():
            say(f"| {op} | {fmt(row['ok'])} | {fmt(row['errors'])} | {fmt(row['p50Ms'])} | {fmt(row['p99Ms'])} | {fmt(row['maxMs'])} |")
        say("")
        say("p99 ms per minute and operation (operations in parentheses):")
        say("")
        ops = [op for op in client["byOp"] if any(op in m.get("byOp", {}) for m in client.get("minutes", []))]
        say("| minute | " + " | ".join(ops) + " |")
        say("|---:|" + "---:|" * len(ops))
        for m in client.get("minutes", []):
            if m.get("seconds", MINUTE) <= 0:
                continue
            cells = [f"{fmt(m['byOp'][op]['p99Ms'])} ({m['byOp'][op]['ops']})" if op in m.get("byOp", {}) else "–" for op in ops]
            say(f"| {m['minute']} | " + " | ".join(cells) + " |")
    else:
        say("No summary from the soak client (see its output).")
    say("")

    with open(args.markdown, "w", encoding="utf-8") as handle:
        handle.write("\n".join(out) + "\n")
    return 3 if grew else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("run")
    r.add_argument("--url", action="append", required=True, help="a gateway's http://host:port (repeat for each)")
    r.add_argument("--user-base", type=int, required=True)
    r.add_argument("--users", type=int, default=200)
    r.add_argument("--ops-rate", type=float, default=50)
    r.add_argument("--seconds", type=float, default=600)
    p = sub.add_parser("report")
    for name in ("--samples", "--direct", "--room", "--client", "--settings", "--markdown"):
        p.add_argument(name, required=True)
    args = parser.parse_args()
    if args.mode == "report":
        sys.exit(report(args))
    if args.users < 2 * FRIENDS + 3 or args.ops_rate <= 0 or args.seconds <= 0:
        parser.error(f"--users must be at least {2 * FRIENDS + 3}, --ops-rate and --seconds positive")
    if not os.environ.get("JWT_SECRET"):
        parser.error("JWT_SECRET is not set")
    summary = asyncio.run(run(args))
    print(json.dumps(summary, separators=(",", ":")), flush=True)
    # Nothing is left to wait for; a socket library's stray task must not keep the process alive.
    os._exit(0)


if __name__ == "__main__":
    main()
