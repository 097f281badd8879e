"""Publishes room events at a fixed rate for the fan-out benchmark (bench/fanout.sh): each payload is
what a worker publishes on a room's channel, `{"event": "receiveMessage", "data": {...}}`, with
`sentAt`, this process's CLOCK_MONOTONIC in nanoseconds, which ChatLoad (--latency-field sentAt)
subtracts from its own clock when the event reaches a socket. Open loop: every 2 ms the messages
due since the start go out in one pipeline. Prints the number published."""

import json
import sys
import time

import redis


def main() -> None:
    url, room, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    r = redis.Redis.from_url(url)
    channel = f"chat:room:{room}"
    start = time.monotonic()
    sent = 0
    total = int(rate * seconds)
    while sent < total:
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        if due > sent:
            pipe = r.pipeline(transaction=False)
            for n in range(sent, due):
                data = {"roomId": room, "seq": n + 1, "content": "fan-out benchmark", "sentAt": time.monotonic_ns()}
                pipe.publish(channel, json.dumps({"event": "receiveMessage", "data": data}, separators=(",", ":")))
            pipe.execute()
            sent = due
        time.sleep(0.002)
    print(sent)


if __name__ == "__main__":
    main()
