"""A python-socketio client as a seed backend's README would have one written (issue 16): default
transports, `auth={"token": ...}`, events recorded by name."""

from __future__ import annotations

import threading
import time

import socketio


class SeedClient:
    """Connects with `auth={"token", "dialect"?}`, or with no auth at all when `token` is None
    (seed 001's `io(url)`); `disconnect` is recorded as an event too."""

    def __init__(self, url: str, token: str | None, dialect: str | None = None):
        self.events: list[tuple[str, tuple]] = []
        self.cond = threading.Condition()
        self.client = socketio.Client(reconnection=False)
        self.client.on("*", self._record)
        self.client.on("disconnect", lambda *args: self._record("disconnect"))
        auth = None if token is None else {"token": token}
        if dialect:
            auth = {**(auth or {}), "dialect": dialect}
        self.client.connect(url, auth=auth, wait_timeout=10)

    def _record(self, event, *args):
        with self.cond:
            self.events.append((event, args))
            self.cond.notify_all()

    def emit(self, event: str, data=None) -> None:
        self.client.emit(event, data)

    def named(self, event: str) -> list:
        with self.cond:
            return [args[0] if args else None for name, args in self.events if name == event]

    def wait(self, event: str, match=lambda data: True, timeout: float = 10):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for name, args in self.events:
                    if name == event and match(args[0] if args else None):
                        return args[0] if args else None
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {event!r} matching within {timeout}s; got {[n for n, _ in self.events]}")
                self.cond.wait(left)

    def close(self) -> None:
        if self.client.connected:
            self.client.disconnect()
