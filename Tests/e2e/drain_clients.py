"""Thousands of Socket.IO clients in one asyncio loop, for the drain test (issue 18, item 6).

Each client speaks Engine.IO v4 / Socket.IO v5 over a plain WebSocket written here (a handshake,
masked text frames, ping answered with pong), because thousands of python-socketio clients would
need thousands of threads. A client behaves as the stock one does when its gateway goes away: it
waits its reconnection delay (1 s, randomised by 0.5, as socket.io-client's defaults), connects to
the next gateway, and calls `sync` to fill the gap. The fleet records when each reconnection
completed and how long its `sync` took.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import struct
import time
from dataclasses import dataclass, field


@dataclass
class Reconnection:
    connected_at: float  # time.monotonic() when the CONNECT was answered on the new gateway
    sync_seconds: float | None  # the `sync` round trip after it; None if it failed


@dataclass
class Fleet:
    """Clients that start on `first` and move to `then` when `first` closes them."""

    host: str
    first: int
    then: int
    tokens: list[str]
    connected: int = 0
    closed_at: list[float] = field(default_factory=list)
    reconnections: list[Reconnection] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _tasks: list[asyncio.Task] = field(default_factory=list)
    _stop: asyncio.Event | None = None

    async def start(self, connect_concurrency: int = 200) -> None:
        self._stop = asyncio.Event()
        gate = asyncio.Semaphore(connect_concurrency)
        ready = [asyncio.get_running_loop().create_future() for _ in self.tokens]
        self._tasks = [asyncio.create_task(self._client(token, gate, fut)) for token, fut in zip(self.tokens, ready)]
        await asyncio.gather(*ready)

    async def stop(self) -> None:
        assert self._stop is not None
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _client(self, token: str, gate: asyncio.Semaphore, ready: asyncio.Future) -> None:
        try:
            async with gate:
                conn = await Connection.open(self.host, self.first, token)
            self.connected += 1
            ready.set_result(None)
            await conn.run_until_closed(self._stop)
            self.closed_at.append(time.monotonic())
            # socket.io-client: reconnectionDelay 1000 ms, randomizationFactor 0.5.
            await asyncio.sleep(random.uniform(0.5, 1.5))
            conn = await Connection.open(self.host, self.then, token)
            connected_at = time.monotonic()
            try:
                sync_seconds = await conn.call("sync", {}, timeout=30)
            except Exception as error:  # noqa: BLE001 - recorded, asserted by the test
                self.errors.append(f"sync: {error!r}")
                sync_seconds = None
            self.reconnections.append(Reconnection(connected_at, sync_seconds))
            await conn.run_until_closed(self._stop)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001
            self.errors.append(repr(error))
            if not ready.done():
                ready.set_exception(error)


class Connection:
    """One Engine.IO WebSocket session with the default namespace connected."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.next_ack = 1

    @classmethod
    async def open(cls, host: str, port: int, token: str, timeout: float = 30) -> "Connection":
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        conn = cls(reader, writer)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
                      f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"upgrade refused: {head[:80]!r}")
        opened = await asyncio.wait_for(conn.read_text(), timeout)
        if not opened or not opened.startswith("0"):
            raise RuntimeError(f"expected an Engine.IO open packet, got {opened!r}")
        conn.send_text("40" + json.dumps({"token": token}))
        while True:
            packet = await asyncio.wait_for(conn.read_text(), timeout)
            if packet is None:
                raise RuntimeError("closed before the CONNECT was answered")
            if packet.startswith("40"):
                return conn
            if packet.startswith("44"):
                raise RuntimeError(f"CONNECT refused: {packet}")
            if packet == "2":
                conn.send_text("3")

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            head = struct.pack("!BB", 0x81, 0x80 | length)
        elif length < 65536:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, length)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(head + mask + masked)

    async def read_text(self) -> str | None:
        """The next text message; None once the server closed the connection."""
        while True:
            try:
                first, second = await self.reader.readexactly(2)
            except (asyncio.IncompleteReadError, ConnectionError):
                return None
            opcode = first & 0x0F
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            payload = await self.reader.readexactly(length)
            if opcode == 0x8:
                return None
            if opcode == 0x9:  # ping: pong with the same payload
                self.writer.write(struct.pack("!BB", 0x8A, 0x80 | len(payload)) + b"\0\0\0\0" + payload)
                continue
            if opcode == 0x1:
                return payload.decode()

    async def call(self, event: str, data, timeout: float) -> float:
        """Emits `event` with an ack id; returns the seconds until the ack came back."""
        ack = self.next_ack
        self.next_ack += 1
        start = time.monotonic()
        self.send_text(f"42{ack}" + json.dumps([event, data]))
        prefix = f"43{ack}"
        deadline = start + timeout
        while True:
            packet = await asyncio.wait_for(self.read_text(), max(0.001, deadline - time.monotonic()))
            if packet is None:
                raise RuntimeError(f"closed while waiting for the {event} ack")
            if packet == "2":
                self.send_text("3")
            elif packet.startswith(prefix) and not packet[len(prefix):len(prefix) + 1].isdigit():
                return time.monotonic() - start

    async def run_until_closed(self, stop: asyncio.Event) -> None:
        """Answers pings until the server closes the connection or the fleet stops."""
        try:
            while not stop.is_set():
                packet = await self.read_text()
                if packet is None:
                    return
                if packet == "2":
                    self.send_text("3")
        finally:
            self.writer.close()


async def probe(host: str, port: int, token: str, seconds: float, interval: float = 0.02) -> list[float]:
    """`sync` every `interval` s for `seconds` on one connection; the round trips in seconds."""
    conn = await Connection.open(host, port, token)
    latencies = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        latencies.append(await conn.call("sync", {}, timeout=30))
        await asyncio.sleep(interval)
    conn.writer.close()
    return latencies


if __name__ == "__main__":
    # A steady client in a process of its own (so the fleet's loop does not delay it):
    # `python drain_clients.py <host> <port> <token> <seconds>` prints the sync round trips (JSON).
    import sys

    host, port, token, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    print(json.dumps(asyncio.run(probe(host, port, token, seconds))))
