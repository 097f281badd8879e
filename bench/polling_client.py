"""Long-polling load for bench/polling.sh (issue 15): raw HTTP/1.1 over asyncio streams (stdlib
only), tokens signed here with the benchmark's JWT_SECRET (users seeded by the script).

  hold  --url http://127.0.0.1:P --sessions N --user-base B --seconds T
        N Engine.IO sessions over long-polling (handshake GET, CONNECT by POST, then a GET always
        held, pings answered by POST), kept for T seconds; prints {"connected": n, "failed": m}.
  rtt   --owner URL --other URL --user-base B --iterations N
        One session opened on `owner`; N round trips of `POST 42<id>["ping"]` + `GET` until the
        ack, sent to `owner` (direct) and to `other` (relayed through Redis) alternately; prints
        the p50/p90/p99 of each in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import resource
import secrets
import statistics
import sys
import time
import urllib.parse

SEPARATOR = "\x1e"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(user_id: int, secret: str) -> str:
    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = b64(json.dumps({"iss": os.environ.get("JWT_ISSUER", "swift-chat"), "sub": str(user_id), "iat": now,
                              "exp": now + 3600, "jti": secrets.token_hex(16)}, separators=(",", ":")).encode())
    signing = f"{header}.{payload}"
    signature = b64(hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest())
    return f"{signing}.{signature}"


class Http:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, url: str):
        parsed = urllib.parse.urlparse(url)
        self.host, self.port = parsed.hostname, parsed.port

    async def open(self) -> "Http":
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def request(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        head = f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Length: {len(body)}\r\n"
        if body:
            head += "Content-Type: text/plain;charset=UTF-8\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("closed")
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value.strip())
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


class Session:
    def __init__(self, url: str, user_id: int, secret: str):
        self.url, self.user_id, self.secret = url, user_id, secret
        self.sid = ""

    async def open(self) -> None:
        self.poller = await Http(self.url).open()
        self.poster = await Http(self.url).open()
        status, body = await self.poller.request("GET", "/socket.io/?EIO=4&transport=polling")
        if status != 200 or not body.startswith(b"0"):
            raise RuntimeError(f"handshake: {status} {body[:100]!r}")
        self.sid = json.loads(body[1:])["sid"]
        await self.post("40" + json.dumps({"token": token(self.user_id, self.secret)}))
        while True:
            packets = await self.poll()
            if any(p.startswith("40") for p in packets):
                return
            if any(p.startswith("44") for p in packets):
                raise RuntimeError(f"refused: {packets}")

    def target(self) -> str:
        return f"/socket.io/?EIO=4&transport=polling&sid={self.sid}"

    async def post(self, payload: str, via: Http | None = None) -> None:
        status, body = await (via or self.poster).request("POST", self.target(), payload.encode())
        if status != 200:
            raise RuntimeError(f"POST: {status} {body[:200]!r}")

    async def poll(self, via: Http | None = None) -> list[str]:
        status, body = await (via or self.poller).request("GET", self.target())
        if status != 200:
            raise RuntimeError(f"GET: {status} {body[:200]!r}")
        return body.decode().split(SEPARATOR)

    async def hold(self, until: float) -> None:
        while time.monotonic() < until:
            for packet in await self.poll():
                if packet == "2":
                    await self.post("3")


async def hold(args) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    until = time.monotonic() + args.seconds
    connected = 0
    failed = 0
    semaphore = asyncio.Semaphore(100)

    async def one(index: int) -> None:
        nonlocal connected, failed
        session = Session(args.url, args.user_base + index, args.secret)
        try:
            async with semaphore:
                await session.open()
            connected += 1
            await session.hold(until)
        except Exception as error:  # noqa: BLE001 (a benchmark counts failures)
            failed += 1
            if failed <= 3:
                print(f"session {index}: {error}", file=sys.stderr)

    tasks = [asyncio.create_task(one(i)) for i in range(args.sessions)]
    while time.monotonic() < until and connected + failed < args.sessions:
        await asyncio.sleep(0.2)
    print(json.dumps({"event": "ramp", "connected": connected, "failed": failed}, separators=(",", ":")), flush=True)
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"event": "done", "connected": connected, "failed": failed}, separators=(",", ":")), flush=True)


async def rtt(args) -> None:
    session = Session(args.owner, args.user_base, args.secret)
    await session.open()
    connections = {"direct": (await Http(args.owner).open(), await Http(args.owner).open()),
                   "relayed": (await Http(args.other).open(), await Http(args.other).open())}
    samples: dict[str, list[float]] = {"direct": [], "relayed": []}
    ack = 0
    for iteration in range(args.iterations * 2):
        kind = "direct" if iteration % 2 == 0 else "relayed"
        poster, poller = connections[kind]
        ack += 1
        started = time.perf_counter()
        await session.post(f"42{ack}" + json.dumps(["ping"]), via=poster)
        while True:
            packets = await session.poll(via=poller)
            if any(p.startswith(f"43{ack}[") for p in packets):
                break
        if iteration >= 20:  # warm-up excluded
            samples[kind].append((time.perf_counter() - started) * 1000)
    result = {}
    for kind, values in samples.items():
        values.sort()
        pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
        result[kind] = {"p50": round(pick(0.5), 3), "p90": round(pick(0.9), 3), "p99": round(pick(0.99), 3),
                        "mean": round(statistics.fmean(values), 3), "n": len(values)}
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    h = sub.add_parser("hold")
    h.add_argument("--url", required=True)
    h.add_argument("--sessions", type=int, required=True)
    h.add_argument("--user-base", type=int, required=True)
    h.add_argument("--seconds", type=float, required=True)
    r = sub.add_parser("rtt")
    r.add_argument("--owner", required=True)
    r.add_argument("--other", required=True)
    r.add_argument("--user-base", type=int, required=True)
    r.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args()
    args.secret = os.environ["JWT_SECRET"]
    asyncio.run(hold(args) if args.mode == "hold" else rtt(args))


if __name__ == "__main__":
    main()
