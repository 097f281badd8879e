"""Message load in one dialect for bench/dialects.sh (issue 16): `pairs` sender/receiver socket
pairs (python-socketio, websocket transport, tokens signed here), `messages` direct messages sent
round-robin at `rate` per second, each counted when its receiver gets it. Prints one JSON line."""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time

import socketio

SEND = {"native": ("sendMessage", "content", "receiveMessage"), "seed002": ("private_message", "message", "private_message")}


def token(user: int, secret: str) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    now = int(time.time())
    header = b64(b'{"alg":"HS256","typ":"JWT"}')
    payload = b64(json.dumps({"iss": "swift-chat", "sub": str(user), "iat": now, "exp": now + 3600,
                              "jti": secrets.token_hex(16)}, separators=(",", ":")).encode())
    signature = b64(hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--dialect", choices=sorted(SEND), required=True)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=400)
    parser.add_argument("--user-base", type=int, required=True)
    args = parser.parse_args()
    secret = os.environ["JWT_SECRET"]
    send_event, text_field, receive_event = SEND[args.dialect]
    received = 0
    lock = threading.Lock()
    done = threading.Event()

    def on_receive(*_):
        nonlocal received
        with lock:
            received += 1
            if received >= args.messages:
                done.set()

    senders, receivers = [], []
    for index in range(args.pairs):
        for role, bucket in (("sender", senders), ("receiver", receivers)):
            user = args.user_base + 2 * index + (role == "receiver")
            client = socketio.Client(reconnection=False)
            if role == "receiver":
                client.on(receive_event, on_receive)
            client.connect(args.url, auth={"token": token(user, secret), "dialect": args.dialect}, transports=["websocket"],
                           wait_timeout=10)
            bucket.append((user, client))
    time.sleep(1)
    started = time.monotonic()
    for n in range(args.messages):
        sender_user, sender = senders[n % args.pairs]
        receiver_user, _ = receivers[n % args.pairs]
        sender.emit(send_event, {"receiverId": receiver_user, text_field: f"bench {n}"})
        delay = started + (n + 1) / args.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    done.wait(timeout=60)
    elapsed = time.monotonic() - started
    for _, client in senders + receivers:
        client.disconnect()
    print(json.dumps({"dialect": args.dialect, "sent": args.messages, "received": received, "seconds": round(elapsed, 2)}), flush=True)


if __name__ == "__main__":
    main()
