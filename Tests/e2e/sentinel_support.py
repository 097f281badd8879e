"""A private Redis with Sentinel on loopback for the failover test (issue 18): one primary, one
replica (`--replicaof`) and three sentinels, each a child process on a free port with its files in
a tmp dir. `SentinelSetup.close()` stops every process it started by pid, whatever happened.

Persistence is off on both data nodes (`--save "" --appendonly no`): the killed primary is never
restarted, so nothing would ever read its files, and replication does not need them (the initial
sync is an RDB made for the replica, with or without `save`). Durability of acknowledged messages
is Postgres's, which is what the test checks.
"""

from __future__ import annotations

import pathlib
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass

from support import free_port, stop_process

PRIMARY_NAME = "mymaster"
QUORUM = 2
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


class SentinelSetupError(Exception):
    """The Redis/Sentinel binaries are missing or a node did not start."""


def redis_binaries() -> tuple[str, str]:
    """(redis-server, redis-sentinel) paths; raises SentinelSetupError when either is missing."""
    server, sentinel = shutil.which("redis-server"), shutil.which("redis-sentinel")
    missing = [name for name, path in (("redis-server", server), ("redis-sentinel", sentinel)) if not path]
    if missing:
        raise SentinelSetupError(
            f"{', '.join(missing)} not found: install the Debian packages redis-server and redis-sentinel "
            "(scripts/test does); the failover test never skips")
    return server, sentinel  # type: ignore[return-value]


@dataclass
class Node:
    """One redis-server or redis-sentinel child process."""

    name: str
    port: int
    proc: subprocess.Popen
    log_path: pathlib.Path
    stopped: bool = False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def client(self, timeout: float = 2):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True,
                           socket_timeout=timeout, socket_connect_timeout=timeout)

    def command(self, *args, timeout: float = 2):
        r = self.client(timeout)
        try:
            return r.execute_command(*args)
        finally:
            r.close()

    def kill(self) -> None:
        """SIGKILL (no shutdown, no last words to replicas or sentinels), then reaped."""
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 5) -> None:
        """SIGTERM by pid, SIGKILL after `timeout` s."""
        self.stopped = True
        stop_process(self.proc, timeout)


def pairs(reply) -> dict:
    """A Sentinel reply of flat field/value pairs (SENTINEL MASTER, one entry of SENTINEL REPLICAS)
    as a dict; redis-py may have parsed it already."""
    if isinstance(reply, dict):
        return {str(k): v for k, v in reply.items()}
    return {str(reply[i]): reply[i + 1] for i in range(0, len(reply) - 1, 2)}


class SentinelSetup:
    """Primary, replica and sentinels in `directory`; see the module docstring."""

    def __init__(self, directory: pathlib.Path, sentinels: int = 3):
        self.server_bin, self.sentinel_bin = redis_binaries()
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.nodes: list[Node] = []
        self.primary: Node | None = None
        self.replica: Node | None = None
        self.sentinels: list[Node] = []
        self.sentinel_count = sentinels

    # --- starting ---------------------------------------------------------------------------

    def _spawn(self, name: str, make_args) -> Node:
        """Starts a node on a free port (make_args(port, node_dir) -> argv), retrying with another
        port when the one picked was taken meanwhile; returns once it answers PING."""
        last = ""
        for _attempt in range(3):
            port = free_port()
            node_dir = self.dir / f"{name}-{port}"
            node_dir.mkdir()
            log_path = node_dir / "out.log"
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(make_args(port, node_dir), cwd=node_dir, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
            node = Node(name, port, proc, log_path)
            self.nodes.append(node)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and node.alive():
                try:
                    if node.command("PING", timeout=0.5):
                        return node
                except Exception:  # not listening yet
                    pass
                time.sleep(0.05)
            last = node.log_tail()
            node.stop()
            if "in use" not in last.lower():
                break
        raise SentinelSetupError(f"{name} did not start:\n{last}")

    def _server_args(self, port: int, node_dir: pathlib.Path, *extra: str) -> list[str]:
        return [self.server_bin, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(node_dir),
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "",
                "--protected-mode", "no",
                # The replica's first sync starts at once (not after the default 5 s wait for more).
                "--repl-diskless-sync-delay", "0", *extra]

    def _sentinel_args(self, port: int, node_dir: pathlib.Path) -> list[str]:
        assert self.primary is not None
        conf = node_dir / "sentinel.conf"  # sentinel rewrites it (state, ids): writable, its own
        conf.write_text("\n".join([
            f"port {port}",
            "bind 127.0.0.1",
            f"dir {node_dir}",
            "daemonize no",
            'logfile ""',
            f"sentinel monitor {PRIMARY_NAME} 127.0.0.1 {self.primary.port} {QUORUM}",
            f"sentinel down-after-milliseconds {PRIMARY_NAME} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {PRIMARY_NAME} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {PRIMARY_NAME} 1",
            "",
        ]))
        return [self.sentinel_bin, str(conf)]

    def start(self, timeout: float = 30) -> None:
        self.primary = self._spawn("primary", lambda port, d: self._server_args(port, d))
        primary_port = self.primary.port
        self.replica = self._spawn(
            "replica", lambda port, d: self._server_args(port, d, "--replicaof", "127.0.0.1", str(primary_port)))
        self._wait(lambda: self.replication_info(self.replica).get("master_link_status") == "up", timeout,
                   "the replica in sync with the primary")
        for n in range(self.sentinel_count):
            self.sentinels.append(self._spawn(f"sentinel{n + 1}", self._sentinel_args))
        self._wait(self._sentinels_ready, timeout,
                   f"every sentinel seeing the primary, its replica and the {self.sentinel_count - 1} other sentinels")

    def _sentinels_ready(self) -> bool:
        for s in self.sentinels:
            master = pairs(s.command("SENTINEL", "MASTER", PRIMARY_NAME))
            if (int(master.get("num-slaves", 0)) != 1
                    or int(master.get("num-other-sentinels", 0)) != self.sentinel_count - 1
                    or master.get("flags") != "master"):
                return False
            replicas = [pairs(r) for r in s.command("SENTINEL", "REPLICAS", PRIMARY_NAME)]
            if not any(int(r.get("port", 0)) == self.replica.port and r.get("flags") == "slave"
                       and r.get("master-link-status") == "ok" for r in replicas):
                return False
        return True

    def _wait(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            dead = [n for n in self.nodes if not n.stopped and not n.alive()]
            if dead:
                raise SentinelSetupError(f"{dead[0].name} on port {dead[0].port} exited:\n{dead[0].log_tail()}")
            try:
                if predicate():
                    return
            except Exception as error:  # a node not answering yet
                last = error
            time.sleep(0.1)
        details = "\n".join(f"--- {s.name} ({s.port}):\n{s.log_tail(15)}" for s in self.sentinels)
        raise SentinelSetupError(f"{what}: not reached within {timeout}s (last error {last!r})\n{details}")

    # --- looking ----------------------------------------------------------------------------

    @staticmethod
    def replication_info(node: Node) -> dict:
        text = node.command("INFO", "replication")
        if isinstance(text, dict):
            return {str(k): str(v) for k, v in text.items()}
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def url(self, database: int = 0) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{PRIMARY_NAME}/{database}"

    def primary_addresses(self) -> list[tuple[str, int] | None]:
        """What each sentinel names as the primary now (None: no answer)."""
        answers: list[tuple[str, int] | None] = []
        for s in self.sentinels:
            try:
                host, port = s.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", PRIMARY_NAME, timeout=1)
                answers.append((host, int(port)))
            except Exception:
                answers.append(None)
        return answers

    def sentinel_log_lines(self, marker: str) -> list[str]:
        """Lines of every sentinel's log containing `marker` (e.g. '+switch-master')."""
        return [f"{s.name}: {line}" for s in self.sentinels if s.log_path.exists()
                for line in s.log_path.read_text(errors="replace").splitlines() if marker in line]

    # --- stopping ---------------------------------------------------------------------------

    def close(self) -> list[str]:
        """Stops every node (sentinels first, so none reacts to the data nodes going away); returns
        complaints about nodes that died on their own."""
        problems = []
        for node in [*self.sentinels, *[n for n in self.nodes if n not in self.sentinels]]:
            if node.stopped:
                continue
            if not node.alive():
                problems.append(f"{node.name} on port {node.port} exited during the test "
                                f"(code {node.proc.returncode}):\n{node.log_tail()}")
                node.stopped = True
                continue
            node.stop()
        return problems
