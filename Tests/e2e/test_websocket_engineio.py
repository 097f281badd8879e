"""Engine.IO v4 and Socket.IO v5 on the wire, spoken by hand over websocket-client: the upgrade and
its refusals, the open packet, server pings and the ping timeout, malformed and binary input,
maxPayload, the Origin allowlist and the per-IP connection limit."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time

import pytest
import requests

from support import (
    Api,
    ConnectionClosed,
    RawConnection,
    RawEngineIO,
    create_user,
    free_port,
    numsub,
    poll,
    publish_to_user,
    raw_request,
    run_binary,
    user_channel,
)

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLOSE_SECONDS = 2  # a connection the server must drop is gone this fast
FAST_PING_MS = 300
FAST_MAX_PAYLOAD = 4096


@pytest.fixture(scope="module")
def fast_gateway(module_procs):
    """Pings every 300 ms with a 300 ms timeout, and a 4 KiB maxPayload."""
    return module_procs.gateway({
        "SOCKETIO_PING_INTERVAL_MS": str(FAST_PING_MS),
        "SOCKETIO_PING_TIMEOUT_MS": str(FAST_PING_MS),
        "SOCKETIO_MAX_PAYLOAD_BYTES": str(FAST_MAX_PAYLOAD),
    })


@pytest.fixture(scope="module")
def user(api):
    return create_user(api)


def connected(raw_eio, port, token, **kwargs) -> RawEngineIO:
    conn = raw_eio(port, **kwargs)
    reply = conn.sio_connect({"token": token})
    assert reply.startswith("40{"), f"CONNECT should be answered 40{{\"sid\":...}}: {reply!r}"
    assert isinstance(json.loads(reply[2:]).get("sid"), str)
    # Every CONNECT is followed by the presence snapshot; later reads see only what a test causes.
    name, args = conn.event()
    assert name == "onlineUsers" and isinstance(args[0], list), f"onlineUsers should follow CONNECT: {name!r} {args!r}"
    return conn


def upgrade_request(path: str, **extra: str) -> bytes:
    headers = {"Upgrade": "websocket", "Connection": "Upgrade",
               "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(), "Sec-WebSocket-Version": "13"}
    headers.update({k.replace("_", "-"): v for k, v in extra.items()})
    return raw_request("GET", path, headers)


# --- the upgrade -----------------------------------------------------------------------------------


def test_polling_opens_a_session_that_offers_the_upgrade(gateway):
    """Long-polling is served (issue 15): the handshake answers the open packet, upgrades offered."""
    resp = requests.get(gateway.url + "/socket.io/?EIO=4&transport=polling", timeout=5)
    assert resp.status_code == 200, f"polling handshake: {resp.status_code} {resp.text}"
    assert resp.text.startswith("0{"), resp.text
    opened = json.loads(resp.text[1:])
    assert opened["upgrades"] == ["websocket"] and "." in opened["sid"], opened


@pytest.mark.parametrize("query", ["EIO=3&transport=websocket", "transport=websocket", "EIO=4",
                                   "EIO=4&transport=flash", "EIO=5&transport=websocket"])
def test_wrong_engineio_parameters_are_refused(gateway, query):
    refusal = RawEngineIO.refused(gateway.port, query)
    assert refusal.status_code == 400, f"{query}: expected 400, got {refusal.status_code} {refusal.resp_body!r}"


def test_eio3_polling_is_refused(gateway):
    resp = requests.get(gateway.url + "/socket.io/?EIO=3&transport=polling", timeout=5)
    assert resp.status_code == 400, resp.text


def test_handshake_response(gateway):
    key = base64.b64encode(os.urandom(16)).decode()
    with RawConnection(gateway.port) as conn:
        conn.send(raw_request("GET", "/socket.io/?EIO=4&transport=websocket", {
            "Upgrade": "websocket", "Connection": "keep-alive, Upgrade", "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13", "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
        }))
        resp = conn.read_response(head_request=True)
    assert resp.status == 101, f"expected 101 Switching Protocols: {resp.status} {resp.body!r}"
    assert (resp.header("Upgrade") or "").lower() == "websocket"
    assert "upgrade" in (resp.header("Connection") or "").lower()
    expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    assert resp.header("Sec-WebSocket-Accept") == expected
    assert resp.header("Sec-WebSocket-Extensions") is None, "no extension may be negotiated yet"


def test_unsupported_websocket_version_gets_426(gateway):
    with RawConnection(gateway.port) as conn:
        conn.send(upgrade_request("/socket.io/?EIO=4&transport=websocket", Sec_WebSocket_Version="8"))
        resp = conn.read_response()
    assert resp.status == 426, f"expected 426 Upgrade Required: {resp.status} {resp.body!r}"
    assert resp.header("Sec-WebSocket-Version") == "13"


@pytest.mark.parametrize("bad", [{"Sec_WebSocket_Key": "too-short"}, {"Upgrade": "h2c"}])
def test_malformed_upgrade_is_400(gateway, bad):
    with RawConnection(gateway.port) as conn:
        conn.send(upgrade_request("/socket.io/?EIO=4&transport=websocket", **bad))
        resp = conn.read_response()
    assert resp.status == 400, f"{bad}: expected 400, got {resp.status} {resp.body!r}"


# --- Engine.IO -----------------------------------------------------------------------------------


def test_open_packet_with_default_settings(gateway, raw_eio):
    conn = raw_eio(gateway.port)
    first = conn.text()
    assert first.startswith("0{"), f"the server speaks first with 0{{...}}: {first!r}"
    opened = json.loads(first[1:])
    assert isinstance(opened.get("sid"), str) and opened["sid"], opened
    assert opened.get("upgrades") == [], f"websocket only: upgrades must be []: {opened}"
    assert opened.get("pingInterval") == 25000, opened
    assert opened.get("pingTimeout") == 20000, opened
    assert opened.get("maxPayload") == 1000000, opened


def test_engineio_sids_are_unique(gateway, raw_eio):
    sids = {raw_eio(gateway.port).open_packet()["sid"] for _ in range(5)}
    assert len(sids) == 5, sids


def test_open_packet_follows_the_configuration(fast_gateway, raw_eio):
    opened = raw_eio(fast_gateway.port).open_packet()
    assert opened["pingInterval"] == FAST_PING_MS, opened
    assert opened["pingTimeout"] == FAST_PING_MS, opened
    assert opened["maxPayload"] == FAST_MAX_PAYLOAD, opened


def test_server_pings_and_a_client_that_answers_stays(fast_gateway, raw_eio):
    conn = raw_eio(fast_gateway.port)
    conn.open_packet()
    closed = conn.wait_closed(2.0, answer_pings=True)
    assert closed is None, f"a client answering every ping was closed: {closed}"
    assert conn.pings >= 3, f"expected a ping `2` about every {FAST_PING_MS} ms, got {conn.pings} in 2 s"


def test_client_that_never_pongs_is_closed(fast_gateway, raw_eio):
    conn = raw_eio(fast_gateway.port)
    conn.open_packet()
    opened_at = time.monotonic()
    limit = 2 * FAST_PING_MS / 1000 + 1.0
    closed = conn.wait_closed(limit + 2, answer_pings=False)
    elapsed = time.monotonic() - opened_at
    assert conn.pings >= 1, f"no ping `2` came before the close: {conn.texts!r}"
    assert closed is not None, f"a client that never answers `3` was still open after {limit + 2:.1f}s"
    assert elapsed <= limit, f"closed {elapsed:.2f}s after the open, expected within {limit:.1f}s"


def test_engineio_noop_and_message_from_client_are_fine(fast_gateway, raw_eio):
    token = create_user(Api(fast_gateway.url)).token
    conn = connected(raw_eio, fast_gateway.port, token)
    conn.send("6")  # noop
    conn.emit("ping", {"n": 7}, ack_id=7)
    ack = conn.ack(7)
    assert ack and ack[0].get("pong") is True and ack[0].get("echo") == {"n": 7}, ack


def test_payload_under_max_payload_is_accepted(fast_gateway, raw_eio):
    token = create_user(Api(fast_gateway.url)).token
    conn = connected(raw_eio, fast_gateway.port, token)
    blob = "x" * (FAST_MAX_PAYLOAD - 200)
    conn.emit("ping", {"blob": blob}, ack_id=1)
    assert conn.ack(1)[0]["echo"] == {"blob": blob}


def test_payload_over_max_payload_closes_the_connection(fast_gateway, raw_eio):
    token = create_user(Api(fast_gateway.url)).token
    conn = connected(raw_eio, fast_gateway.port, token)
    conn.emit("ping", {"blob": "x" * (FAST_MAX_PAYLOAD + 100)}, ack_id=1)
    closed = conn.wait_closed(CLOSE_SECONDS)
    assert closed is not None, f"a {FAST_MAX_PAYLOAD + 100}-byte message over maxPayload {FAST_MAX_PAYLOAD} was accepted"
    assert not any(t.startswith("431") for t in conn.texts), "the oversized event was answered"


# --- Socket.IO on the wire -------------------------------------------------------------------------


def test_raw_connect_ack_and_event(gateway, raw_eio, user, settings):
    conn = connected(raw_eio, gateway.port, user.token)
    conn.emit("whoami", ack_id=12)
    who = conn.ack(12)
    assert who[0]["userId"] == user.id, who
    poll(lambda: numsub(settings, user_channel(user.id)) >= 1, 2, interval=0.05, what="subscription")
    publish_to_user(settings, user.id, "raw_hello", {"x": [1, 2]})
    assert conn.event() == ("raw_hello", [{"x": [1, 2]}])


def test_publications_arrive_in_order(gateway, raw_eio, user, settings):
    conn = connected(raw_eio, gateway.port, user.token)
    poll(lambda: numsub(settings, user_channel(user.id)) >= 1, 2, interval=0.05, what="subscription")
    import redis as redis_lib

    r = redis_lib.Redis.from_url(settings.redis_url, socket_timeout=5)
    pipe = r.pipeline(transaction=False)
    for n in range(200):
        pipe.publish(user_channel(user.id), json.dumps({"event": "seq", "data": n}))
    pipe.execute()
    r.close()
    got = [conn.event() for _ in range(200)]
    assert got == [("seq", [n]) for n in range(200)], f"out of order or altered: {got[:10]!r}..."


def test_raw_connect_with_bearer_header(gateway, raw_eio, user):
    conn = raw_eio(gateway.port, headers=[f"Authorization: Bearer {user.token}"])
    reply = conn.sio_connect(None)
    assert reply.startswith("40{"), f"`40` with a Bearer header on the upgrade should connect: {reply!r}"


@pytest.mark.parametrize("auth,code", [(None, "token_missing"), ({"token": "x.y.z"}, "token_malformed")])
def test_raw_connect_error_shape(gateway, raw_eio, auth, code):
    reply = raw_eio(gateway.port).sio_connect(auth)
    assert reply.startswith("44{"), f"expected CONNECT_ERROR 44{{...}}: {reply!r}"
    body = json.loads(reply[2:])
    assert isinstance(body.get("message"), str) and body["message"], body
    assert body.get("data") == {"code": code}, f"expected data {{'code': {code!r}}}: {body}"


def test_raw_unknown_namespace(gateway, raw_eio, user):
    reply = raw_eio(gateway.port).sio_connect({"token": user.token}, namespace="/admin")
    assert reply.startswith("44/admin,"), f"CONNECT_ERROR must name the refused namespace (44/admin,{{...}}): {reply!r}"
    assert json.loads(reply[len("44/admin,"):])["data"] == {"code": "invalid_namespace"}, reply


def test_event_before_connect_is_not_served(gateway, raw_eio):
    """Before CONNECT nothing is served: an error (ack or event), silence or a close are all fine."""
    conn = raw_eio(gateway.port)
    conn.open_packet()
    conn.emit("whoami", ack_id=1)
    try:
        reply = conn.text(1.5)
    except (TimeoutError, ConnectionClosed):
        return
    if reply.startswith("431"):
        body = json.loads(reply[3:])
        assert body and isinstance(body[0], dict) and "error" in body[0] and "userId" not in body[0], (
            f"an event before CONNECT was served: {reply!r}")


@pytest.mark.parametrize("packet", ["4x", "49", '42{"not":"an array"}', "42[", "42[]", "42[1,2]", "43",
                                    '41{"payload":1}', "9", ""],
                         ids=["type-x", "type-9", "event-object", "truncated-json", "empty-array",
                              "name-not-string", "ack-without-payload", "disconnect-with-payload",
                              "engineio-type-9", "empty-frame"])
def test_malformed_packet_closes_the_connection(gateway, raw_eio, user, packet):
    conn = connected(raw_eio, gateway.port, user.token)
    conn.send(packet)
    closed = conn.wait_closed(CLOSE_SECONDS)
    assert closed is not None, f"malformed packet {packet!r} did not close the connection; got {conn.texts!r}"


def test_malformed_packet_does_not_affect_other_connections(gateway, raw_eio, user):
    bystander = connected(raw_eio, gateway.port, user.token)
    offender = connected(raw_eio, gateway.port, user.token)
    offender.send("4x")
    assert offender.wait_closed(CLOSE_SECONDS) is not None
    bystander.emit("ping", ack_id=3)
    assert bystander.ack(3)[0]["pong"] is True


def test_binary_frame_is_refused(gateway, raw_eio, user):
    """Binary frames are not supported: an `error` event binary_not_supported, or a close with 1003."""
    conn = connected(raw_eio, gateway.port, user.token)
    conn.send_binary(b"\x04\x00\x01binary")
    deadline = time.monotonic() + CLOSE_SECONDS
    while True:
        try:
            name, args = conn.event(deadline - time.monotonic())
        except TimeoutError:
            raise AssertionError("a binary frame got neither an error event nor a close") from None
        except ConnectionClosed as closed:
            frame = closed.frame
            assert frame.close_code == 1003, (
                f"a binary frame may close the connection only with 1003 (unsupported data): {closed}")
            return
        if name == "error":
            assert args and args[0].get("code") == "binary_not_supported", args
            return


def test_binary_event_packet_is_refused(gateway, raw_eio, user):
    conn = connected(raw_eio, gateway.port, user.token)
    conn.send('451-["upload",{"_placeholder":true,"num":0}]')
    name, args = conn.event(CLOSE_SECONDS)
    assert name == "error" and args and args[0].get("code") == "binary_not_supported", (name, args)


def test_client_disconnect_packet_closes_cleanly(gateway, raw_eio, user):
    conn = connected(raw_eio, gateway.port, user.token)
    conn.send("41")
    conn.send("1")  # Engine.IO close
    closed = conn.wait_closed(CLOSE_SECONDS)
    assert closed is not None, "Engine.IO close `1` from the client should end the connection"


# --- guards: Origin allowlist, per-IP limit ---------------------------------------------------------


@pytest.fixture(scope="module")
def production_gateway(module_procs, settings):
    return module_procs.gateway({"CHAT_ENV": "production", "JWT_SECRET": settings.jwt_secret,
                                 "ALLOWED_ORIGINS": "https://app.example.com"})


def test_origin_not_allowed_is_refused_with_403(production_gateway):
    for origin in ("https://evil.example.com", "http://app.example.com", "https://app.example.com.evil.net", "null"):
        refusal = RawEngineIO.refused(production_gateway.port, origin=origin)
        assert refusal.status_code == 403, f"Origin {origin}: expected 403, got {refusal.status_code}"


def test_allowed_origin_and_no_origin_are_accepted(production_gateway, raw_eio):
    assert raw_eio(production_gateway.port, origin="https://app.example.com").open_packet()["sid"]
    assert raw_eio(production_gateway.port).open_packet()["sid"], "clients without Origin must be allowed"


def test_python_socketio_connects_in_production(production_gateway, sio_session):
    """python-socketio sends Origin: http://<host>:<port>, i.e. the gateway's own origin; a
    same-origin request is allowed whatever ALLOWED_ORIGINS lists (it cannot be cross-site)."""
    user = create_user(Api(production_gateway.url))
    session = sio_session(production_gateway.url)
    session.connect(token=user.token)
    assert session.call("whoami")["userId"] == user.id


def test_same_origin_is_accepted_and_other_ports_are_not(production_gateway, raw_eio):
    own = f"http://127.0.0.1:{production_gateway.port}"
    refusal = RawEngineIO.refused(production_gateway.port, origin=f"http://127.0.0.1:{production_gateway.port + 1}")
    assert refusal.status_code == 403, "an origin on another port is another origin"
    assert raw_eio(production_gateway.port, origin=own).open_packet()["sid"], "the gateway's own origin must be accepted"


def test_wildcard_origin_is_refused_in_production(settings):
    try:
        proc = run_binary(settings, "Gateway", [], {"CHAT_ENV": "production", "ALLOWED_ORIGINS": "*",
                                                    "PORT": str(free_port())}, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("the gateway started with CHAT_ENV=production and ALLOWED_ORIGINS=*; it must refuse")
    assert proc.returncode != 0, "ALLOWED_ORIGINS=* must be refused outside development"
    assert "ALLOWED_ORIGINS" in proc.stdout + proc.stderr


def test_slow_consumer_is_disconnected(procs, raw_eio, settings):
    """A client that stops reading while events keep coming is dropped once its pending output
    passes WS_MAX_PENDING_BYTES, instead of the gateway buffering without bound."""
    import socket

    import redis as redis_lib

    gw = procs.gateway({"WS_MAX_PENDING_BYTES": "65536"})
    api = Api(gw.url)
    slow_user, good_user = create_user(api), create_user(api)
    slow = connected(raw_eio, gw.port, slow_user.token, sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
    good = connected(raw_eio, gw.port, good_user.token)
    channel = user_channel(slow_user.id)
    poll(lambda: numsub(settings, channel) == 1, 2, interval=0.05, what="subscription")

    r = redis_lib.Redis.from_url(settings.redis_url, socket_timeout=10)
    chunk = json.dumps({"event": "flood", "data": "y" * 65536})
    for _ in range(20):  # 20 x 50 x 64 KiB = 64 MiB at most, far beyond any socket buffer
        pipe = r.pipeline(transaction=False)
        for _ in range(50):
            pipe.publish(channel, chunk)
        pipe.execute()
        if numsub(settings, channel) == 0:
            break
    r.close()
    poll(lambda: numsub(settings, channel) == 0, 5, interval=0.1,
         what="the slow consumer disconnected (its user's subscription dropped)")
    good.emit("ping", ack_id=9)
    assert good.ack(9)[0]["pong"] is True, "other sockets must not suffer from a slow one"
    assert gw.alive()


def test_per_ip_connection_limit(procs, raw_eio):
    gw = procs.gateway({"MAX_CONNECTIONS_PER_IP": "3"})
    conns = [raw_eio(gw.port) for _ in range(3)]
    for conn in conns:
        conn.open_packet()
    refusal = RawEngineIO.refused(gw.port)
    assert refusal.status_code in (429, 503), f"the 4th connection from one IP: got {refusal.status_code}"

    conns[0].close()
    deadline = time.monotonic() + 2
    while True:
        try:
            raw_eio(gw.port).open_packet()
            break
        except Exception as error:  # the server may not have seen the close yet
            if time.monotonic() > deadline:
                raise AssertionError(f"a slot freed by a closed connection was not reusable: {error}") from None
            time.sleep(0.1)
