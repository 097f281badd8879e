"""Metrics stay private through both shipped load balancers (issue 18, item 2): deploy/haproxy.cfg
(through the same generator the cluster tests use) and deploy/nginx.conf, each run on loopback in
front of a real gateway, refuse every spelling of /metrics a client might try, while the API and
the socket path still pass. The gateway serves metrics only on its admin port, which no load
balancer config routes."""

from __future__ import annotations

import pathlib
import re
import shutil
import socket
import subprocess
import time

import pytest
import requests

from haproxy_lb import HAProxy
from support import REPO, free_port, stop_process

# Spellings that reach /metrics on servers that normalise paths, or that a naive rule misses.
PRIVATE_PATHS = ["/metrics", "/metrics/", "/metrics?x=1", "//metrics", "/./metrics", "/api/../metrics",
                 "/%6detrics", "/%6Detrics", "/METRICS", "/Metrics/", "/metrics/.", "/socket.io/../metrics"]


def raw_get(port: int, path: str) -> tuple[int, bytes]:
    """GET with the path exactly as written (requests would normalise it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data


def assert_private(port: int, backend: str) -> None:
    for path in PRIVATE_PATHS:
        status, data = raw_get(port, path)
        assert status == 404, f"{path}: {status}\n{data[:300]!r}"
        assert b"# TYPE" not in data and b"process_" not in data, f"{path} leaked metrics"
    assert raw_get(port, "/health")[0] == 200
    if backend == "public":  # the public surface still passes
        assert raw_get(port, "/api/openapi.yaml")[0] == 200
        assert raw_get(port, "/socket.io/?EIO=4&transport=polling")[0] == 200


# "admin": the balancer pointed at the admin port by mistake, so its rule is the only lock.
BACKENDS = pytest.mark.parametrize("backend", ["public", "admin"])


def backend_port(gateway, backend: str) -> int:
    return gateway.port if backend == "public" else gateway.admin_port


@BACKENDS
def test_haproxy_refuses_every_spelling_of_metrics(gateway, tmp_path, backend):
    lb = HAProxy(tmp_path, [f"{backend_port(gateway, backend)}"])
    try:
        lb.wait_status("gateway-1", "UP")
        assert_private(lb.port, backend)
    finally:
        lb.stop()


@BACKENDS
def test_nginx_refuses_every_spelling_of_metrics(gateway, tmp_path, backend):
    nginx = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if pathlib.Path(p).exists()), None)
    if nginx is None:
        pytest.fail("nginx not found: install the Debian package nginx (scripts/test does)", pytrace=False)
    port = free_port()
    text = (REPO / "deploy" / "nginx.conf").read_text()
    text = re.sub(r"\bgateway-\d+:3000\b", f"127.0.0.1:{backend_port(gateway, backend)}", text)
    text = re.sub(r"(?m)^(\s*)listen\s+8080;", rf"\1listen 127.0.0.1:{port};", text)
    text = re.sub(r"(?m)^pid\s+[^;]+;", f"pid {tmp_path / 'nginx.pid'};", text)
    text = re.sub(r"(?m)^worker_processes\s+\w+;", "worker_processes 1;", text)
    text = re.sub(r"(?m)^worker_rlimit_nofile\s+\d+;", "worker_rlimit_nofile 1024;", text)
    text = re.sub(r"worker_connections\s+\d+;", "worker_connections 512;", text)
    text = text.replace("access_log /dev/stdout chat_json;", f"access_log {tmp_path / 'access.log'} chat_json;")
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    with open(tmp_path / "nginx.out", "wb") as out:
        proc = subprocess.Popen([nginx, "-p", f"{tmp_path}/", "-e", "stderr", "-c", str(conf), "-g", "daemon off;"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "nginx.out").read_text()
                assert time.monotonic() < deadline, "nginx did not listen"
                time.sleep(0.1)
        assert_private(port, backend)
    finally:
        stop_process(proc)


def test_the_gateway_serves_metrics_only_on_its_admin_port(gateway):
    for path in PRIVATE_PATHS:
        status, data = raw_get(gateway.port, path)
        assert status in (400, 404), f"{path}: {status}"
        assert b"# TYPE" not in data
    assert "# TYPE" in requests.get(gateway.admin_url + "/metrics", timeout=5).text
