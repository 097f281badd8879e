"""Worker throughput with per-conversation ordering (sharded streams, leases, fences) against the
unordered consumer group it replaced, in the same run (issue 12). Driven by bench/ordering.sh.

For each worker count N and each variant (alternating, REPEAT times): Redis is flushed and the
message tables emptied; N workers of the variant start and settle (the sharded ones until every
shard is held); then MESSAGES send commands, as gateways write them, are appended to the variant's
stream(s) in pipelined batches, spread over PAIRS random conversations of USERS users. The rate
is the steady part of the drain: the time from 10 % to 90 % of the messages stored in Postgres
(counted every POLL s), so start-up and the tail do not count. Prints a markdown table."""

from __future__ import annotations

import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

import redis

MASK = 2**64 - 1


def mix(value: int) -> int:
    """CommandShards.mix (SplitMix64's finalizer), as the gateways compute it."""
    z = (value + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def shard_of_pair(a: int, b: int, count: int) -> int:
    """CommandShards.shard(directBetween:_:)."""
    low, high = min(a, b), max(a, b)
    return mix(mix(low ^ 0x6469726563740000) ^ high) % count


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(sql: str) -> str:
    return subprocess.run(["psql", os.environ["DATABASE_URL"], "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          check=True, capture_output=True, text=True).stdout


def metric(port: int, name: str) -> float:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return -1.0
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def ready(port: int) -> bool:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2).status == 200
    except OSError:
        return False


class Variant:
    def __init__(self, name: str, binary: str, sharded: bool):
        self.name, self.binary, self.sharded = name, binary, sharded


def start_workers(variant: Variant, count: int, log_dir: str) -> list[tuple[subprocess.Popen, int]]:
    workers = []
    for n in range(count):
        port = free_port()
        env = dict(os.environ, ADMIN_HOST="127.0.0.1", ADMIN_PORT=str(port), WORKER_ID=f"bench-{variant.name}-{n}",
                   LOG_LEVEL="warn", RATE_LIMIT_MESSAGES="off", CHAT_ENV="development")
        log = open(os.path.join(log_dir, f"worker-{variant.name}-{count}-{n}.log"), "a")
        workers.append((subprocess.Popen([variant.binary], env=env, stdout=log, stderr=subprocess.STDOUT), port))
    deadline = time.monotonic() + 60
    while not all(ready(port) for _, port in workers):
        if time.monotonic() > deadline:
            sys.exit(f"{variant.name}: workers not ready within 60 s (logs in {log_dir})")
        time.sleep(0.1)
    if variant.sharded:
        share = SHARDS // count
        while True:
            held = [metric(port, "chat_command_shards_held") for _, port in workers]
            if sum(held) == SHARDS and min(held) >= share:
                break
            if time.monotonic() > deadline:
                sys.exit(f"{variant.name}: shards never settled ({held})")
            time.sleep(0.1)
    return workers


def stop_workers(workers) -> None:
    for proc, _ in workers:
        proc.terminate()
    for proc, _ in workers:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def reset(r: redis.Redis) -> None:
    r.flushdb()
    psql("TRUNCATE messages, conversation_members, conversations, shard_epochs RESTART IDENTITY CASCADE")


def commands(users: list[int], messages: int, pairs: int, seed: int) -> list[tuple[int, int, str]]:
    rng = random.Random(seed)
    conversations = set()
    while len(conversations) < pairs:
        a, b = rng.sample(users, 2)
        conversations.add((a, b))
    conversations = sorted(conversations)
    plan = []
    for n in range(messages):
        a, b = conversations[rng.randrange(len(conversations))]
        sender, receiver = (a, b) if n % 2 else (b, a)
        plan.append((sender, receiver, f"bench-{seed}-{n}"))
    return plan


def append(r: redis.Redis, variant: Variant, plan) -> None:
    pipe = r.pipeline(transaction=False)
    for n, (sender, receiver, cmid) in enumerate(plan):
        stream = f"chat:cmd:{{s{shard_of_pair(sender, receiver, SHARDS)}}}" if variant.sharded else "chat:cmd"
        body = json.dumps({"receiverId": receiver, "content": f"benchmark message {n}", "type": "text", "clientMsgId": cmid},
                          separators=(",", ":"))
        reply = json.dumps({"gateway": "bench", "request": cmid}, separators=(",", ":"))
        pipe.xadd(stream, {"v": "1", "type": "send", "user": str(sender), "body": body, "reply": reply})
        if len(pipe) >= 1000:
            pipe.execute()
    pipe.execute()


def drain_rate(total: int) -> tuple[float, float]:
    """Messages/s between 10 % and 90 % stored, and the seconds until all were stored."""
    start = time.monotonic()
    low = high = None
    while True:
        stored = int(psql("SELECT count(*) FROM messages").strip())
        now = time.monotonic()
        if low is None and stored >= total * 0.1:
            low = (now, stored)
        if stored >= total * 0.9 and high is None:
            high = (now, stored)
        if stored >= total:
            break
        if now - start > 600:
            sys.exit(f"only {stored} of {total} messages stored after 600 s")
        time.sleep(POLL)
    rate = (high[1] - low[1]) / max(1e-6, high[0] - low[0])
    return rate, time.monotonic() - start


SHARDS = 64
POLL = 0.05


def main() -> None:
    base, current = sys.argv[1], sys.argv[2]
    counts = [int(n) for n in os.environ.get("WORKER_COUNTS", "1 2 4").split()]
    messages = int(os.environ.get("MESSAGES", "40000"))
    repeat = int(os.environ.get("REPEAT", "2"))
    users_count = int(os.environ.get("USERS", "1000"))
    pairs = int(os.environ.get("PAIRS", "2000"))
    log_dir = os.environ["BENCH_WORK"]
    variants = [Variant("unordered", base, sharded=False), Variant("sharded", current, sharded=True)]
    r = redis.Redis.from_url(os.environ["REDIS_URL"])

    # Schema (the workers migrate), then the users every run shares.
    reset_workers = start_workers(variants[1], 1, log_dir)
    stop_workers(reset_workers)
    reset(r)
    psql("DELETE FROM users WHERE username LIKE 'ob%'")
    users = [int(x) for x in psql(
        "INSERT INTO users (username, email, password_hash, display_name) "
        f"SELECT 'ob' || g, 'ob' || g || '@example.test', 'x', 'ob' || g FROM generate_series(1, {users_count}) g RETURNING id"
    ).split()]

    results: dict[tuple[str, int], list[float]] = {}
    for round_ in range(repeat):
        for count in counts:
            order = variants if round_ % 2 == 0 else list(reversed(variants))
            for variant in order:
                reset(r)
                workers = start_workers(variant, count, log_dir)
                plan = commands(users, messages, pairs, seed=round_ * 100 + count)
                try:
                    append(r, variant, plan)
                    rate, seconds = drain_rate(messages)
                finally:
                    stop_workers(workers)
                results.setdefault((variant.name, count), []).append(rate)
                print(f"  round {round_ + 1}: {variant.name:9s} x{count}: {rate:8.0f} messages/s (all stored after {seconds:.1f} s)",
                      flush=True)

    print()
    print(f"| workers | unordered consumer group (messages/s) | sharded, ordered (messages/s) | sharded / unordered |")
    print("|---:|---:|---:|---:|")
    for count in counts:
        old = statistics.median(results[("unordered", count)])
        new = statistics.median(results[("sharded", count)])
        print(f"| {count} | {old:,.0f} | {new:,.0f} | {new / old:.2f} |")
    print()
    print(f"{messages} sends per run over {pairs} conversations of {users_count} users; median of {repeat} runs per cell, "
          f"variants alternating; rate = 10 % to 90 % of the messages stored; message rate limit off; "
          f"{SHARDS} shards; everything on this host ({os.cpu_count()} CPUs).")


if __name__ == "__main__":
    main()
