"""HTTP/1.1 server behaviour on bad or unusual input, over raw sockets."""

from __future__ import annotations

import json
import re
import time

import pytest

from support import Api, RawConnection, create_user, raw_request

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def port(gateway) -> int:
    return gateway.port


@pytest.fixture(scope="module")
def slow_gateway(module_procs):
    """Short header-read and idle limits, for the slowloris and idle tests."""
    return module_procs.gateway({"HTTP_HEADER_TIMEOUT_MS": "1000", "HTTP_IDLE_TIMEOUT_MS": "1500"})


def exchange(port: int, data: bytes, timeout: float = 10):
    with RawConnection(port) as conn:
        conn.send(data)
        return conn.read_response(timeout=timeout)


def assert_error(resp, status: int, code: str) -> str:
    assert resp.status == status, f"expected {status}, got {resp.status} {resp.body!r}"
    assert (resp.header("Content-Type") or "").startswith("application/json"), resp.headers
    body = resp.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"], body
    return body["error"]["message"]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"THIS IS NOT HTTP\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /health HTTP/1.1 extra\r\nHost: x\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nno-colon-here\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"GET /he\x00alth HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
    ids=["garbage", "no-target", "extra-token", "header-without-colon", "bad-content-length",
         "conflicting-content-length", "nul-in-target"],
)
def test_malformed_request_is_400_and_closes(port, request_bytes):
    with RawConnection(port) as conn:
        conn.send(request_bytes)
        resp = conn.read_response()
        assert_error(resp, 400, "bad_request")
        assert conn.wait_closed(3), "the connection must be closed after a malformed request"


def test_huge_header_is_431(port):
    data = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n"
    with RawConnection(port) as conn:
        conn.send_until_answered(data)
        resp = conn.read_response()
        assert_error(resp, 431, "headers_too_large")
        assert conn.wait_closed(3)


def test_many_headers_are_431(port):
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 50) for i in range(10_000))
    with RawConnection(port) as conn:
        conn.send_until_answered(b"GET /health HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        assert_error(conn.read_response(), 431, "headers_too_large")


def test_declared_big_body_is_413_before_upload(port):
    # Default HTTP_MAX_BODY_BYTES is 1 MiB; the answer must come from the headers alone.
    head = raw_request("POST", "/api/auth/signup", {**JSON, "Content-Length": "2000000"},
                       content_length=False)
    with RawConnection(port) as conn:
        conn.send(head)
        assert_error(conn.read_response(), 413, "body_too_large")


def test_big_body_is_413_with_small_limit(module_procs):
    gw = module_procs.gateway({"HTTP_MAX_BODY_BYTES": "1024"})
    body = json.dumps({"username": "x" * 4000, "email": "a@b.co", "password": "password123"}).encode()
    with RawConnection(gw.port) as conn:
        conn.send_until_answered(raw_request("POST", "/api/auth/signup", JSON, body))
        assert_error(conn.read_response(), 413, "body_too_large")
    # Just under the limit is processed normally (422: the username is too long, not 413).
    small = json.dumps({"username": "x" * 40, "email": "a@b.co", "password": "password123"}).encode()
    assert len(small) < 1024
    resp = exchange(gw.port, raw_request("POST", "/api/auth/signup", JSON, small))
    assert resp.status == 422, resp.body


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_non_json_post_is_415(port, content_type):
    headers = {"Content-Type": content_type}
    resp = exchange(port, raw_request("POST", "/api/auth/login", headers, b"email=a&password=b"))
    assert_error(resp, 415, "unsupported_media_type")


def test_json_with_charset_is_accepted(port):
    body = json.dumps({"username": "nobody_here", "password": "password123"}).encode()
    resp = exchange(port, raw_request("POST", "/api/auth/login",
                                      {"Content-Type": "application/json; charset=utf-8"}, body))
    assert_error(resp, 401, "invalid_credentials")


def test_invalid_json_is_400_with_position(port):
    body = b'{\n  "username": "abc",\n  "email": oops,\n  "password": "x"\n}'
    resp = exchange(port, raw_request("POST", "/api/auth/signup", JSON, body))
    message = assert_error(resp, 400, "invalid_json")
    assert re.search(r"line\D{0,3}3\b", message, re.I), f"message should say line 3: {message}"
    assert "col" in message.lower(), f"message should give a column: {message}"


@pytest.mark.parametrize("body", [b"", b"[1, 2]", b'"text"', b"null"])
def test_json_that_is_not_an_object(port, body):
    resp = exchange(port, raw_request("POST", "/api/auth/signup", JSON, body))
    assert resp.status in (400, 422), resp.body
    assert resp.json()["error"]["code"] in ("invalid_json", "validation_failed")


def test_unknown_path_is_404(port):
    resp = exchange(port, raw_request("GET", "/no/such/path"))
    assert_error(resp, 404, "not_found")


@pytest.mark.parametrize(
    "method,path,allowed",
    [("GET", "/api/auth/login", "POST"), ("DELETE", "/api/auth/signup", "POST"),
     ("POST", "/health", "GET"), ("PUT", "/api/auth/profile", "GET")],
)
def test_wrong_method_is_405_with_allow(port, method, path, allowed):
    body = b"{}" if method in ("POST", "PUT") else b""
    headers = JSON if body else {}
    resp = exchange(port, raw_request(method, path, headers, body))
    assert_error(resp, 405, "method_not_allowed")
    allow = resp.header("Allow")
    assert allow is not None, resp.headers
    assert allowed in [m.strip() for m in allow.split(",")], allow


def test_pipelined_requests_are_answered_in_order(port):
    login = json.dumps({"username": "nobody_here", "password": "password123"}).encode()
    data = (raw_request("GET", "/health")
            + raw_request("GET", "/no-such-path")
            + raw_request("POST", "/api/auth/login", JSON, login)
            + raw_request("GET", "/health"))
    with RawConnection(port) as conn:
        conn.send(data)
        statuses = [conn.read_response().status for _ in range(4)]
        assert statuses == [200, 404, 401, 200]
        # Still usable afterwards.
        conn.send(raw_request("GET", "/health"))
        assert conn.read_response().status == 200


def test_request_split_into_single_bytes(port):
    with RawConnection(port) as conn:
        for byte in raw_request("GET", "/health"):
            conn.send(bytes([byte]))
        assert conn.read_response().status == 200


def test_connection_close_is_honoured(port):
    with RawConnection(port) as conn:
        conn.send(raw_request("GET", "/health", {"Connection": "close"}))
        assert conn.read_response().status == 200
        assert conn.wait_closed(3)


def test_health_body(port):
    resp = exchange(port, raw_request("GET", "/health"))
    assert resp.status == 200
    assert resp.json()["status"] == "ok"


def test_expect_100_continue(port, api):
    user = create_user(api, login=False)
    body = json.dumps({"email": user.email, "password": user.password}).encode()
    head = raw_request("POST", "/api/auth/login",
                       {**JSON, "Expect": "100-continue", "Content-Length": str(len(body))},
                       content_length=False)
    with RawConnection(port) as conn:
        conn.send(head)
        interim = conn.read_response(timeout=5)
        assert interim.status == 100, f"expected 100 Continue, got {interim.status}"
        conn.send(body)
        final = conn.read_response()
        assert final.status == 200, final.body
        assert final.json()["token"]


def test_expect_100_continue_with_too_big_body_is_refused_at_once(port):
    head = raw_request("POST", "/api/auth/signup",
                       {**JSON, "Expect": "100-continue", "Content-Length": "5000000"},
                       content_length=False)
    with RawConnection(port) as conn:
        conn.send(head)
        resp = conn.read_response(timeout=5)
        assert_error(resp, 413, "body_too_large")


def test_chunked_request_body(port, api):
    user = create_user(api, login=False)
    body = json.dumps({"email": user.email, "password": user.password}).encode()
    first, second = body[:10], body[10:]
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(first), first, len(second), second)
    head = raw_request("POST", "/api/auth/login", {**JSON, "Transfer-Encoding": "chunked"},
                       content_length=False)
    with RawConnection(port) as conn:
        conn.send(head + chunked)
        resp = conn.read_response()
    if resp.status in (411, 501):  # a clear refusal is allowed
        assert resp.json()["error"]["code"], resp.body
    else:
        assert resp.status == 200, resp.body
        assert resp.json()["token"]


def test_slowloris_half_header_is_closed(slow_gateway):
    with RawConnection(slow_gateway.port) as conn:
        start = time.monotonic()
        conn.send(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        closed = conn.wait_closed(4)
        elapsed = time.monotonic() - start
    assert closed, "a connection that never finishes its headers must be closed"
    assert 0.5 <= elapsed <= 2.5, f"closed after {elapsed:.2f}s with HTTP_HEADER_TIMEOUT_MS=1000"


def test_slowloris_trickle_is_closed(slow_gateway):
    """A byte every 100 ms keeps the connection busy but must not extend the header deadline."""
    with RawConnection(slow_gateway.port) as conn:
        start = time.monotonic()
        closed = False
        line = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
        for byte in line:
            try:
                conn.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if conn.wait_closed(0.1):
                closed = True
                break
        elapsed = time.monotonic() - start
    assert closed, "trickled headers must hit the header timeout"
    assert elapsed <= 3, f"closed after {elapsed:.2f}s with HTTP_HEADER_TIMEOUT_MS=1000"


def test_idle_keep_alive_is_closed(slow_gateway):
    with RawConnection(slow_gateway.port) as conn:
        conn.send(raw_request("GET", "/health"))
        assert conn.read_response().status == 200
        start = time.monotonic()
        closed = conn.wait_closed(5)
        elapsed = time.monotonic() - start
    assert closed, "an idle keep-alive connection must be closed"
    assert 0.75 <= elapsed <= 3.5, f"closed after {elapsed:.2f}s with HTTP_IDLE_TIMEOUT_MS=1500"


def test_gateway_still_healthy_after_abuse(gateway, slow_gateway):
    for gw in (gateway, slow_gateway):
        assert gw.alive()
        assert Api(gw.url).get("/health").status_code == 200
