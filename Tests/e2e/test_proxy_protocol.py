"""Client addresses behind an L4 load balancer (issue 18, item 3): HAProxy in TCP mode with
`send-proxy-v2` in front of a gateway started with PROXY_PROTOCOL=on. Clients connect from
distinct loopback addresses (127.x.y.z); the gateway must see each one, not the balancer's, in its
logs and its per-address limits, WebSockets included, and must refuse connections that bypass
the balancer."""

from __future__ import annotations

import http.client
import json
import random
import shutil
import socket
import subprocess
import time

import pytest
import websocket

from support import free_port, poll, stop_process, unique

LOGIN_IP_LIMIT = 3


def client_address() -> str:
    """A loopback address of its own (127.0.0.0/8 is all local on Linux), so per-address limits
    of this test never meet another's."""
    return f"127.{random.randint(16, 250)}.{random.randint(1, 250)}.{random.randint(2, 250)}"


def request(port: int, method: str, path: str, body: dict | None = None, source: str = "127.0.0.1",
            headers: dict | None = None) -> tuple[int, dict | str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=payload, headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        text = resp.read().decode()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text
    finally:
        conn.close()


@pytest.fixture
def l4_balancer(procs, tmp_path):
    """A gateway that requires PROXY headers and trusts only the balancer's address, behind
    HAProxy in TCP mode sending PROXY v2 (checks included: `check-send-proxy`)."""
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    gateway = procs.gateway(env={"PROXY_PROTOCOL": "on", "TRUSTED_PROXIES": "127.0.0.1",
                                 "RATE_LIMIT_LOGIN_IP": f"{LOGIN_IP_LIMIT}/1m"}, wait=False)
    port = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(f"""
global
    log stdout format raw local0
defaults
    mode tcp
    log global
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend public
    bind 127.0.0.1:{port}
    default_backend gateways
backend gateways
    option httpchk
    http-check send meth GET uri /health ver HTTP/1.1 hdr Host haproxy-check
    server gateway-1 127.0.0.1:{gateway.port} send-proxy-v2 check check-send-proxy inter 500ms source 127.0.0.1
""")
    check = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    with open(tmp_path / "haproxy.log", "wb") as log:
        proc = subprocess.Popen([haproxy, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        poll(lambda: request(port, "GET", "/health")[0] == 200, 30, what="the gateway through haproxy (PROXY v2)")
        yield gateway, port
    finally:
        stop_process(proc)


def test_the_gateway_sees_each_client_behind_the_balancer(l4_balancer):
    gateway, port = l4_balancer
    first, second = client_address(), client_address()
    name = unique()
    status, body = request(port, "POST", "/api/auth/signup", {"username": name, "email": f"{name}@example.com",
                                                              "password": "password123"}, source=client_address())
    assert status == 201, body
    marker = unique("path")
    assert request(port, "GET", f"/{marker}", source=second)[0] == 404
    # The gateway's request log names the client's address, not the balancer's.
    line = poll(lambda: next((json.loads(l) for l in gateway.logs().splitlines()
                              if marker in l and l.startswith("{")), None), 5, what="the request's log line")
    assert line["peer"] == second, line

    # The per-address login limit counts each client on its own.
    for attempt in range(LOGIN_IP_LIMIT):
        status, body = request(port, "POST", "/api/auth/login", {"email": f"{name}@example.com", "password": "wrong-one"},
                               source=first)
        assert status == 401, (attempt, body)
    status, body = request(port, "POST", "/api/auth/login", {"email": f"{name}@example.com", "password": "wrong-one"},
                           source=first)
    assert status == 429, body
    status, body = request(port, "POST", "/api/auth/login", {"email": f"{name}@example.com", "password": "password123"},
                           source=second)
    assert status == 200, f"another client behind the same balancer must not share the first one's limit: {body}"


def test_a_socket_through_the_balancer_carries_its_client_address(l4_balancer):
    gateway, port = l4_balancer
    source = client_address()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", timeout=10,
                                     socket=sock)
    try:
        opened = ws.recv()
        assert opened.startswith("0"), opened
    finally:
        ws.close()
    line = poll(lambda: next((json.loads(l) for l in reversed(gateway.logs().splitlines())
                              if l.startswith("{") and '"/socket.io/"' in l and f'"{source}"' in l), None),
                5, what="the upgrade's log line with the client's address")
    assert line["status"] == 101, line


def test_connections_that_bypass_the_balancer_are_refused(l4_balancer):
    gateway, _port = l4_balancer
    # From the balancer's address but without a header: a clear 400.
    status, body = request(gateway.port, "GET", "/health")
    assert status == 400 and body["error"]["code"] == "proxy_header_invalid", body
    # A forged header from an address that is not a trusted balancer: closed unanswered.
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5, source_address=(client_address(), 0)) as conn:
        conn.sendall(b"PROXY TCP4 198.51.100.1 127.0.0.1 1234 3000\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        conn.settimeout(5)
        try:
            data = conn.recv(100)
        except ConnectionResetError:
            data = b""
    assert data == b"", data
    assert gateway.alive()
    time.sleep(0.1)
