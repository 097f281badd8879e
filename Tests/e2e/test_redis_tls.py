"""Redis over TLS (issue 18, item 4): `rediss://` on loopback against Debian's redis-server with
`tls-port` and a throw-away CA (tls_support.py). A gateway and a worker carry a message end to end
over TLS (commands, the stream, pub/sub delivery to a socket); a server certificate from another
CA or for another name is refused, and so is a connection without the client certificate a server
requires; the processes never crash meanwhile, and `/ready` says why."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import requests

from support import Api, Messages, SioSession, create_user, free_port, poll, run_binary, stop_process, unique, worker_env
from tls_support import create_tls_material

READY_TIMEOUT = 30


class TLSRedis:
    """redis-server with TLS only (`port 0`), stopped by pid at the end."""

    def __init__(self, directory, tls, require_client_certificate: bool):
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server not found: install the Debian package redis-server", pytrace=False)
        self.port = free_port()
        self.log = directory / "redis.log"
        args = [binary, "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1",
                "--tls-cert-file", str(tls.server.cert), "--tls-key-file", str(tls.server.key),
                "--tls-ca-cert-file", str(tls.ca.cert),
                "--tls-auth-clients", "yes" if require_client_certificate else "no",
                "--save", "", "--appendonly", "no", "--dir", str(directory), "--logfile", str(self.log)]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while "Ready to accept connections" not in (self.log.read_text() if self.log.exists() else ""):
            assert self.proc.poll() is None, f"redis-server exited: {self.log.read_text() if self.log.exists() else ''}"
            assert time.monotonic() < deadline, "redis-server with TLS did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def tls_material(tmp_path):
    return create_tls_material(tmp_path / "certs", dns_names=["localhost"], ips=["127.0.0.1"], client_common_name="chat")


@pytest.fixture
def tls_redis(tmp_path, tls_material):
    server = TLSRedis(tmp_path, tls_material, require_client_certificate=False)
    yield server
    server.stop()


@pytest.fixture
def tls_redis_with_client_certificates(tmp_path, tls_material):
    directory = tmp_path / "mtls"
    directory.mkdir()
    server = TLSRedis(directory, tls_material, require_client_certificate=True)
    yield server
    server.stop()


def ready_body(cp) -> dict | None:
    try:
        return requests.get(cp.admin_url + "/ready", timeout=3).json()
    except (requests.RequestException, ValueError):
        return None


def test_a_message_goes_end_to_end_over_tls(procs, tls_redis, tls_material):
    env = {"REDIS_URL": f"rediss://localhost:{tls_redis.port}/0", "REDIS_TLS_CA_FILE": str(tls_material.ca.cert),
           "COMMAND_STREAM": unique("chat:cmd:tls")}
    procs.worker(worker_env(env))
    gateway = procs.gateway(env)
    poll(lambda: (b := ready_body(gateway)) is not None and b.get("status") == "ready", READY_TIMEOUT,
         what="the gateway ready over TLS")
    alice, bob = create_user(Api(gateway.url)), create_user(Api(gateway.url))
    socket = SioSession(gateway.url).connect(token=bob.token)
    try:
        mark = socket.mark()
        sent = Messages(gateway.url, alice).send_ok(bob.id, "over TLS")
        event = socket.wait_for("receiveMessage", 10, since=mark)
        assert event.args[0]["id"] == sent["id"], event.args
    finally:
        socket.close()
    # The server saw TLS clients only (it has no plain port at all).
    assert "tls" in tls_redis.log.read_text().lower() or tls_redis.proc.poll() is None


@pytest.mark.parametrize("problem", ["another_ca", "another_name"])
def test_a_server_that_does_not_verify_is_refused(procs, tls_redis, tls_material, problem):
    env = {"REDIS_URL": f"rediss://localhost:{tls_redis.port}/0",
           "REDIS_TLS_CA_FILE": str(tls_material.other_ca.cert if problem == "another_ca" else tls_material.ca.cert)}
    if problem == "another_name":
        env["REDIS_TLS_SERVER_NAME"] = "redis.example.com"
    gateway = procs.gateway(env)
    line = poll(lambda: next((l for l in gateway.logs().splitlines() if "certificate" in l.lower()), None), 15,
                what="a log line naming the certificate problem")
    assert "verif" in line.lower(), line
    body = poll(lambda: (b := ready_body(gateway)) is not None and b.get("checks", {}).get("redis") == "down" and b,
                10, what="/ready reporting Redis down")
    assert body["checks"]["postgres"] == "up", body
    assert gateway.alive()


def test_a_server_requiring_client_certificates(procs, tls_redis_with_client_certificates, tls_material):
    server = tls_redis_with_client_certificates
    base = {"REDIS_URL": f"rediss://localhost:{server.port}/0", "REDIS_TLS_CA_FILE": str(tls_material.ca.cert)}
    without = procs.gateway(base)
    with_certificate = procs.gateway({**base, "REDIS_TLS_CERT_FILE": str(tls_material.client.cert),
                                      "REDIS_TLS_KEY_FILE": str(tls_material.client.key)})
    poll(lambda: (b := ready_body(with_certificate)) is not None and b.get("status") == "ready", READY_TIMEOUT,
         what="the gateway with a client certificate ready")
    time.sleep(2)
    body = ready_body(without)
    assert body is not None and body["checks"]["redis"] == "down", body
    assert without.alive()


def test_tls_settings_without_rediss_are_a_configuration_error(settings):
    result = run_binary(settings, "Gateway", [], {"REDIS_TLS_CA_FILE": "/etc/ssl/certs/ca-certificates.crt"})
    assert result.returncode == 78, result.stdout + result.stderr
    assert "rediss://" in result.stdout + result.stderr
