"""HAProxy in front of test gateways (issue 6): the configuration comes from
scripts/lib/haproxy-config.sh, the generator scripts/cluster uses too, so the tests run with
deploy/haproxy.cfg's timeouts, balance, retries and /ready checks. Needs `haproxy` on PATH
(Debian package haproxy; scripts/test installs it)."""

from __future__ import annotations

import csv
import io
import os
import pathlib
import shutil
import subprocess
import time

import requests

from support import REPO, free_port, stop_process

GENERATOR = REPO / "scripts" / "lib" / "haproxy-config.sh"


class HAProxy:
    """One haproxy process on 127.0.0.1 (random ports) balancing over the given gateway ports."""

    def __init__(self, work_dir: pathlib.Path, gateway_ports: list[int], balance: str | None = None):
        binary = shutil.which("haproxy")
        if binary is None:
            raise RuntimeError("haproxy not found on PATH: install the Debian package haproxy "
                               "(scripts/test does)")
        self.binary = binary
        self.dir = work_dir
        self.port = free_port()
        self.stats_port = free_port()
        self.config = work_dir / "haproxy.cfg"
        self.log_path = work_dir / "haproxy.log"
        servers = [f"127.0.0.1:{p}" for p in gateway_ports]
        env = {**os.environ, "HAPROXY_BALANCE": balance} if balance else None
        gen = subprocess.run(["bash", str(GENERATOR), str(self.port), str(self.stats_port), *servers],
                             capture_output=True, text=True, timeout=30, env=env)
        if gen.returncode != 0:
            raise RuntimeError(f"haproxy-config.sh failed: {gen.stderr}")
        self.config.write_text(gen.stdout)
        check = subprocess.run([binary, "-c", "-f", str(self.config)], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy -c rejects the generated configuration:\n{check.stdout}{check.stderr}")
        with open(self.log_path, "wb") as log:
            # -db: foreground, no daemon; logs go to stdout (the config says `log stdout`).
            self.proc = subprocess.Popen([binary, "-db", "-f", str(self.config)], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.wait_listening()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_listening(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"haproxy exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.url + "/lb-health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"haproxy did not answer /lb-health within {timeout}s:\n{self.log_tail()}")

    def server_status(self) -> dict[str, str]:
        """{"gateway-1": "UP" | "DOWN" | "UP 1/2" | ...} from the stats page's CSV export."""
        resp = requests.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=5)
        resp.raise_for_status()
        rows = csv.DictReader(io.StringIO(resp.text.lstrip("# ")))
        return {row["svname"]: row["status"] for row in rows
                if row["pxname"] == "gateways" and row["svname"] not in ("FRONTEND", "BACKEND")}

    def wait_status(self, server: str, want: str, timeout: float = 30) -> None:
        """Waits until haproxy's health checks say `server` (gateway-N) is `want` (UP or DOWN)."""
        deadline = time.monotonic() + timeout
        status: dict[str, str] = {}
        while time.monotonic() < deadline:
            status = self.server_status()
            if status.get(server) == want:
                return
            time.sleep(0.2)
        raise AssertionError(f"haproxy: {server} not {want} within {timeout}s: {status}\n{self.log_tail()}")

    def stop(self, timeout: float = 10) -> None:
        # SIGUSR1 = soft stop; the hard-stop-after in the config bounds it. SIGTERM closes at once.
        stop_process(self.proc, timeout)
