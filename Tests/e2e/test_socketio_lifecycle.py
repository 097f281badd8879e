"""The life of a live socket: the token's expiry enforced while connected, re-authentication, and
graceful shutdown on SIGTERM (WebSocket close 1001, and no Engine.IO close packet, so clients reconnect)."""

from __future__ import annotations

import json
import signal
import time

from support import Api, create_user, jwt_parts

EXPIRY_SLACK_SECONDS = 2.5  # the server's expiry timer may be coarse, but not coarser than this
SHUTDOWN_SECONDS = 10


def wall_clock_until(epoch_seconds: float) -> None:
    time.sleep(max(0.0, epoch_seconds - time.time()))


# --- token expiry on a live socket -----------------------------------------------------------------


def test_live_socket_is_disconnected_when_its_token_expires(procs, sio_session):
    gw = procs.gateway({"ACCESS_TOKEN_TTL_SECONDS": "2", "JWT_LEEWAY_SECONDS": "0"})
    user = create_user(Api(gw.url))
    exp = jwt_parts(user.token)[1]["exp"]
    session = sio_session(gw.url).connect(token=user.token)
    assert session.call("ping")["pong"] is True

    error = session.wait_for("error", exp - time.time() + EXPIRY_SLACK_SECONDS,
                             match=lambda p=None, *_: isinstance(p, dict) and p.get("code") == "token_expired")
    arrived = time.time() - (time.monotonic() - error.at)
    assert arrived >= exp - 0.2, f"token_expired came {exp - arrived:.2f}s before the token's exp"
    assert isinstance(error.args[0].get("message"), str) and error.args[0]["message"], error.args
    session.wait_for("disconnect", 3)
    assert not session.connected, "the socket must be closed after token_expired"


def test_raw_expiry_sequence_is_error_then_disconnect_then_close(procs, raw_eio):
    gw = procs.gateway({"ACCESS_TOKEN_TTL_SECONDS": "2", "JWT_LEEWAY_SECONDS": "0"})
    user = create_user(Api(gw.url))
    exp = jwt_parts(user.token)[1]["exp"]
    conn = raw_eio(gw.port)
    reply = conn.sio_connect({"token": user.token})
    assert reply.startswith("40{"), f"CONNECT should succeed: {reply!r}"
    closed = conn.wait_closed(exp - time.time() + EXPIRY_SLACK_SECONDS + 2)
    assert closed is not None, f"still open {EXPIRY_SLACK_SECONDS + 2}s after exp; frames: {conn.texts!r}"
    texts = conn.texts

    def is_expiry_error(text: str) -> bool:
        if not text.startswith("42["):
            return False
        body = json.loads(text[2:])
        return body[0] == "error" and isinstance(body[1], dict) and body[1].get("code") == "token_expired"

    error_at = next((i for i, t in enumerate(texts) if is_expiry_error(t)), None)
    assert error_at is not None, f"no 42[\"error\",{{code: token_expired}}] before the close: {texts!r}"
    assert "41" in texts[error_at + 1:], f"a Socket.IO DISCONNECT (41) should follow the error: {texts!r}"


def test_reauthenticating_keeps_the_socket_past_the_first_expiry(procs, sio_session):
    # 3 s tokens leave a second of margin on either side of the checks below.
    gw = procs.gateway({"ACCESS_TOKEN_TTL_SECONDS": "3", "JWT_LEEWAY_SECONDS": "0"})
    api = Api(gw.url)
    user = create_user(api)
    first_exp = jwt_parts(user.token)[1]["exp"]
    session = sio_session(gw.url).connect(token=user.token)

    wall_clock_until(first_exp - 1)  # a fresh token now expires at least 2 s after the first
    resp = api.login(user.password, email=user.email)
    assert resp.status_code == 200, resp.text
    fresh = resp.json()["token"]
    fresh_exp = jwt_parts(fresh)[1]["exp"]
    assert fresh_exp >= first_exp + 2, (first_exp, fresh_exp)
    ack = session.call("authenticate", {"token": fresh})
    assert isinstance(ack, dict) and ack.get("ok") is True, f"authenticate should ack {{ok: true}}: {ack!r}"
    assert ack.get("expiresAt") == fresh_exp * 1000, (
        f"expiresAt should be the new token's exp in ms ({fresh_exp * 1000}): {ack!r}")

    wall_clock_until(first_exp + 1)
    assert session.connected, "re-authenticated socket was closed at the old token's expiry"
    assert session.find("error") is None, f"unexpected error event: {session.events!r}"
    assert session.call("whoami")["userId"] == user.id

    # The new expiry is enforced in turn.
    session.wait_for("error", fresh_exp - time.time() + EXPIRY_SLACK_SECONDS,
                     match=lambda p=None, *_: isinstance(p, dict) and p.get("code") == "token_expired")
    session.wait_for("disconnect", 3)


def test_authenticate_with_a_bad_token_is_refused_and_keeps_the_old_one(make_user, sio_session, gateway):
    user = make_user()
    session = sio_session(gateway.url).connect(token=user.token)
    ack = session.call("authenticate", {"token": "garbage"})
    assert isinstance(ack, dict) and isinstance(ack.get("error"), dict), f"expected an error ack: {ack!r}"
    assert ack["error"].get("code") == "token_malformed", ack
    assert session.connected
    assert session.call("whoami")["userId"] == user.id


def test_authenticate_as_another_user_is_refused(make_user, sio_session, gateway):
    user, other = make_user(), make_user()
    session = sio_session(gateway.url).connect(token=user.token)
    ack = session.call("authenticate", {"token": other.token})
    assert isinstance(ack, dict) and isinstance(ack.get("error"), dict), (
        f"a socket must not switch users through authenticate: {ack!r}")
    assert session.call("whoami")["userId"] == user.id


# --- graceful shutdown ------------------------------------------------------------------------------


def test_sigterm_closes_sockets_with_1001_so_clients_reconnect(procs, raw_eio, sio_session):
    gw = procs.gateway()
    user = create_user(Api(gw.url))
    conn = raw_eio(gw.port)
    assert conn.sio_connect({"token": user.token}).startswith("40{")
    stock = sio_session(gw.url).connect(token=user.token)
    assert stock.call("ping")["pong"] is True

    start = time.monotonic()
    gw.stopped = True  # this test stops it; the fixture must not complain
    gw.proc.send_signal(signal.SIGTERM)
    closed = conn.wait_closed(SHUTDOWN_SECONDS)
    assert closed is not None, f"the raw socket was not closed within {SHUTDOWN_SECONDS}s of SIGTERM"
    assert closed.kind == "close", f"expected a WebSocket close frame, the TCP connection just ended: {conn.texts!r}"
    assert closed.close_code == 1001, f"expected close code 1001 (going away), got {closed.close_code}"
    assert "1" not in conn.texts, (
        f"no Engine.IO close packet: python-engineio would treat it as a deliberate disconnect and not reconnect: {conn.texts!r}")

    stock.wait_for("disconnect", SHUTDOWN_SECONDS)
    try:
        code = gw.proc.wait(timeout=max(1.0, SHUTDOWN_SECONDS - (time.monotonic() - start)))
    except Exception:
        gw.proc.kill()
        gw.proc.wait(timeout=10)
        raise AssertionError(f"the gateway did not exit within {SHUTDOWN_SECONDS}s of SIGTERM:\n{gw.log_tail()}")
    assert code in (0, -signal.SIGTERM), f"exit code {code} after SIGTERM:\n{gw.log_tail()}"


def test_sigterm_exits_after_the_grace_even_if_a_client_never_closes(procs):
    """A client that ignores the close (never answers the close frame, never reads) must not hold
    the process past its shutdown grace (SHUTDOWN_GRACE_MS)."""
    import socket

    grace = 2.0
    gw = procs.gateway({"SHUTDOWN_GRACE_MS": str(int(grace * 1000))})
    user = create_user(Api(gw.url))
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    sock.sendall((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {user.token}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, f"closed during the handshake: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    gw.stopped = True
    gw.proc.send_signal(signal.SIGTERM)
    limit = grace + 3
    try:
        code = gw.proc.wait(timeout=limit)
    except Exception:
        gw.proc.kill()
        gw.proc.wait(timeout=10)
        raise AssertionError(f"a silent client held the gateway over {limit}s after SIGTERM "
                             f"(SHUTDOWN_GRACE_MS={int(grace * 1000)}):\n{gw.log_tail()}") from None
    finally:
        sock.close()
    assert code in (0, -signal.SIGTERM), f"exit code {code}:\n{gw.log_tail()}"
