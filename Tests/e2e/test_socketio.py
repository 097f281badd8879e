"""Socket.IO v5 with the stock python-socketio client: authentication, events published by other
processes, acks, connect errors, and the per-user Redis subscription of one gateway.

The client is socketio.Client with transports=["websocket"] and no automatic reconnection, so a
dropped connection shows as a failure instead of being papered over."""

from __future__ import annotations

import json
import socket
import time

import pytest

from support import (
    Api,
    b64url,
    connect_error_code,
    create_user,
    jwt_parts,
    numsub,
    poll,
    publish_to_user,
    user_channel,
)

DELIVERY_SECONDS = 5  # a published event must reach the socket this fast on loopback
UNSUBSCRIBE_SECONDS = 2  # the last local disconnect must drop the Redis subscription this fast


def connected_user(make_user, sio_session, gateway, **connect_args):
    user = make_user()
    session = sio_session(gateway.url).connect(token=user.token, **connect_args)
    return user, session


# --- connecting -------------------------------------------------------------------------------


def test_connect_with_auth_token(make_user, sio_session, gateway):
    user, session = connected_user(make_user, sio_session, gateway)
    assert session.connected
    assert session.client.transport() == "websocket"
    sid = session.sid
    assert isinstance(sid, str) and sid, "CONNECT must be answered with 40{\"sid\": ...}"
    assert sid != session.client.eio.sid, "the Socket.IO sid must differ from the Engine.IO sid"


def test_connect_with_bearer_header_and_no_auth_payload(make_user, sio_session, gateway):
    user = make_user()
    session = sio_session(gateway.url).connect(headers={"Authorization": f"Bearer {user.token}"})
    assert session.connected
    who = session.call("whoami")
    assert who["userId"] == user.id, f"whoami should name the header's user {user.id!r}: {who!r}"


def test_stock_client_origin_is_accepted_in_development(make_user, sio_session, gateway):
    """websocket-client (under python-socketio) sends `Origin: http://<host>:<port>` by default;
    a development gateway with no ALLOWED_ORIGINS set must let it in."""
    user = make_user()
    session = sio_session(gateway.url)
    session.client.eio.websocket_extra_options = {"origin": "http://127.0.0.1:%d" % gateway.port}
    session.connect(token=user.token)
    assert session.connected


# --- events from other processes ---------------------------------------------------------------


def test_receives_an_event_published_to_the_users_channel(settings, make_user, sio_session, gateway):
    user, session = connected_user(make_user, sio_session, gateway)
    poll(lambda: numsub(settings, user_channel(user.id)) == 1, UNSUBSCRIBE_SECONDS,
         interval=0.05, what=f"the gateway subscribed to {user_channel(user.id)}")
    receivers = publish_to_user(settings, user.id, "hello", {"x": 1})
    assert receivers == 1, f"PUBLISH reached {receivers} subscribers, expected the one gateway"
    event = session.wait_for("hello", DELIVERY_SECONDS)
    assert event.args == ({"x": 1},), f"expected hello with {{'x': 1}}, got {event.args!r}"


def test_published_data_of_any_json_type_arrives_unchanged(settings, make_user, sio_session, gateway):
    user, session = connected_user(make_user, sio_session, gateway)
    poll(lambda: numsub(settings, user_channel(user.id)) == 1, UNSUBSCRIBE_SECONDS, interval=0.05,
         what="subscription")
    samples = ["text with \"quotes\" and ünïcødé ✓", 42, [1, {"a": None}], {"nested": {"deep": [True, False]}}]
    for n, data in enumerate(samples):
        publish_to_user(settings, user.id, f"sample{n}", data)
    for n, data in enumerate(samples):
        event = session.wait_for(f"sample{n}", DELIVERY_SECONDS)
        assert event.args == (data,), f"sample{n}: sent {data!r}, received {event.args!r}"
    # (Order is checked with the raw client: python-socketio runs each handler in its own thread.)


def test_events_of_another_user_are_not_delivered(settings, make_user, sio_session, gateway):
    user, session = connected_user(make_user, sio_session, gateway)
    other, other_session = connected_user(make_user, sio_session, gateway)
    for u in (user, other):
        poll(lambda: numsub(settings, user_channel(u.id)) == 1, UNSUBSCRIBE_SECONDS, interval=0.05,
             what="subscription")
    publish_to_user(settings, other.id, "private", {"for": "other"})
    other_session.wait_for("private", DELIVERY_SECONDS)
    time.sleep(0.3)
    assert session.find("private") is None, "an event for another user reached this socket"


def test_invalid_publications_are_ignored(settings, make_user, sio_session, gateway):
    """Garbage on the channel must neither crash the gateway nor reach the client; the next valid
    publication still arrives."""
    import redis as redis_lib

    user, session = connected_user(make_user, sio_session, gateway)
    poll(lambda: numsub(settings, user_channel(user.id)) == 1, UNSUBSCRIBE_SECONDS, interval=0.05,
         what="subscription")
    r = redis_lib.Redis.from_url(settings.redis_url, socket_timeout=5)
    for junk in (b"not json", b"[1,2]", b'{"data": 1}', b'{"event": 5, "data": 1}', b"\xff\xfe", b""):
        r.publish(user_channel(user.id), junk)
    r.close()
    publish_to_user(settings, user.id, "after_junk", {"ok": True})
    session.wait_for("after_junk", DELIVERY_SECONDS)
    assert [e.name for e in session.events if e.name not in ("connect", "onlineUsers", "after_junk")] == [], (
        f"junk publications produced events: {session.events!r}")
    assert session.connected


# --- acks and built-in events ---------------------------------------------------------------------


def test_ping_ack_round_trip(make_user, sio_session, gateway):
    _user, session = connected_user(make_user, sio_session, gateway)
    before = int(time.time() * 1000)
    ack = session.call("ping", {"n": 1})
    after = int(time.time() * 1000)
    assert isinstance(ack, dict), f"ping ack should be one object, got {ack!r}"
    assert ack.get("pong") is True, ack
    assert ack.get("echo") == {"n": 1}, f"the ping payload should come back under 'echo': {ack!r}"
    assert isinstance(ack.get("time"), int) and before - 5000 <= ack["time"] <= after + 5000, (
        f"'time' should be the server's clock in ms: {ack!r}")


def test_many_acks_in_flight_come_back_to_their_callers(make_user, sio_session, gateway):
    import threading

    _user, session = connected_user(make_user, sio_session, gateway)
    results: dict[int, object] = {}
    done = threading.Event()
    count = 50

    def callback_for(n):
        def callback(*args):
            results[n] = args
            if len(results) == count:
                done.set()
        return callback

    for n in range(count):
        session.client.emit("ping", {"n": n}, callback=callback_for(n))
    assert done.wait(10), f"only {len(results)} of {count} acks arrived"
    for n in range(count):
        assert results[n][0]["echo"] == {"n": n}, f"ack {n} carried {results[n]!r}"


def test_server_to_client_ack_round_trip(make_user, sio_session, gateway):
    """Acks the other way: requestServerAck makes the server emit `event` with an ack id to this
    client and report what the client acknowledged."""
    _user, session = connected_user(make_user, sio_session, gateway)
    seen = []

    def on_question(data):
        seen.append(data)
        return {"answer": data["q"] * 2}

    session.client.on("question", on_question, namespace="/")
    ack = session.call("requestServerAck", {"event": "question", "data": {"q": 21}})
    assert seen == [{"q": 21}], f"the client handler got {seen!r}"
    assert ack == {"clientAck": [{"answer": 42}]}, f"the server should report the client's ack: {ack!r}"


def test_whoami(make_user, sio_session, gateway):
    user, session = connected_user(make_user, sio_session, gateway)
    ack = session.call("whoami")
    assert isinstance(ack, dict), ack
    assert ack.get("userId") == user.id, f"userId should be {user.id!r} (as the REST API has it): {ack!r}"
    assert ack.get("socketId") == session.sid, f"socketId should be the Socket.IO sid {session.sid!r}: {ack!r}"


def test_unknown_event_gets_an_error_event_and_an_error_ack(make_user, sio_session, gateway):
    _user, session = connected_user(make_user, sio_session, gateway)
    mark = session.mark()
    session.emit("no_such_event", {"a": 1})
    error = session.wait_for("error", DELIVERY_SECONDS, since=mark)
    assert error.args and isinstance(error.args[0], dict), error.args
    assert error.args[0].get("code") == "unknown_event", error.args
    assert isinstance(error.args[0].get("message"), str) and error.args[0]["message"]

    ack = session.call("no_such_event_either", {"a": 2})
    assert isinstance(ack, dict) and isinstance(ack.get("error"), dict), f"expected an error ack: {ack!r}"
    assert ack["error"].get("code") == "unknown_event", ack
    assert isinstance(ack["error"].get("message"), str) and ack["error"]["message"], ack
    assert session.connected, "an unknown event must not cost the connection"
    assert session.call("ping")["pong"] is True


def test_binary_event_is_refused_with_an_error_event(make_user, sio_session, gateway):
    _user, session = connected_user(make_user, sio_session, gateway)
    mark = session.mark()
    session.emit("upload", b"\x00\x01\x02binary")
    error = session.wait_for("error", DELIVERY_SECONDS, since=mark,
                             match=lambda payload=None, *_: isinstance(payload, dict)
                             and payload.get("code") == "binary_not_supported")
    assert isinstance(error.args[0].get("message"), str) and error.args[0]["message"], error.args


# --- connect errors ---------------------------------------------------------------------------------


def test_missing_token(sio_session, gateway):
    code, _ = connect_error_code(sio_session(gateway.url))
    assert code == "token_missing", f"no token at all should give token_missing, got {code}"


def test_empty_auth_object_is_a_missing_token(sio_session, gateway):
    code, _ = connect_error_code(sio_session(gateway.url), auth={})
    assert code == "token_missing", code


def test_malformed_token(sio_session, gateway):
    code, payload = connect_error_code(sio_session(gateway.url), token="garbage")
    assert code == "token_malformed", f"expected token_malformed: {payload!r}"


def test_non_string_token_is_malformed(sio_session, gateway):
    code, payload = connect_error_code(sio_session(gateway.url), auth={"token": 12345})
    assert code in ("token_malformed", "token_missing"), payload


def test_tampered_token(make_user, sio_session, gateway):
    user = make_user()
    header, _payload, signature = user.token.split(".")
    claims = jwt_parts(user.token)[1]
    forged = dict(claims, sub=str(claims["sub"]) + "0")
    tampered = ".".join([header, b64url(json.dumps(forged).encode()), signature])
    code, payload = connect_error_code(sio_session(gateway.url), token=tampered)
    assert code == "token_signature", f"a forged claim must fail the signature check: {payload!r}"


def test_alg_none_token(make_user, sio_session, gateway):
    user = make_user()
    _header, payload, _sig = user.token.split(".")
    none_header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    code, data = connect_error_code(sio_session(gateway.url), token=f"{none_header}.{payload}.")
    assert code in ("token_malformed", "token_signature", "token_algorithm"), data


def test_revoked_token(api, make_user, sio_session, gateway):
    user = make_user()
    assert api.logout(user.token).status_code == 200
    code, payload = connect_error_code(sio_session(gateway.url), token=user.token)
    assert code == "token_revoked", f"a token used after logout should give token_revoked: {payload!r}"


def test_unknown_namespace(make_user, sio_session, gateway):
    user = make_user()
    try:
        code, payload = connect_error_code(sio_session(gateway.url, namespace="/admin"), token=user.token)
    except AssertionError as error:
        raise AssertionError(f"{error}\n(the CONNECT_ERROR must name the namespace, 44/admin,{{...}}: "
                             "python-socketio drops one addressed to another namespace)") from None
    assert code == "invalid_namespace", f"namespace /admin should be refused: {payload!r}"


def test_a_refused_client_can_connect_with_a_good_token(make_user, sio_session, gateway):
    user = make_user()
    connect_error_code(sio_session(gateway.url), token="garbage")
    assert sio_session(gateway.url).connect(token=user.token).connected


def test_expired_token(procs, sio_session):
    gw = procs.gateway({"ACCESS_TOKEN_TTL_SECONDS": "1", "JWT_LEEWAY_SECONDS": "0"})
    user = create_user(Api(gw.url))
    exp = jwt_parts(user.token)[1]["exp"]
    time.sleep(max(0.0, exp + 1.2 - time.time()))
    code, payload = connect_error_code(sio_session(gw.url), token=user.token)
    assert code == "token_expired", f"expected token_expired: {payload!r}"


# --- one gateway, several sockets of one user ----------------------------------------------------


def test_one_subscription_per_user_per_gateway(settings, make_user, sio_session, gateway):
    user = make_user()
    channel = user_channel(user.id)
    assert numsub(settings, channel) == 0
    first = sio_session(gateway.url).connect(token=user.token)
    poll(lambda: numsub(settings, channel) == 1, UNSUBSCRIBE_SECONDS, interval=0.05,
         what=f"NUMSUB {channel} = 1 after the first socket")
    second = sio_session(gateway.url).connect(token=user.token)
    second.call("ping")  # the connection is fully set up
    assert numsub(settings, channel) == 1, "a second local socket must reuse the gateway's subscription"

    publish_to_user(settings, user.id, "both", {"n": 1})
    first.wait_for("both", DELIVERY_SECONDS)
    second.wait_for("both", DELIVERY_SECONDS)

    first.client.disconnect()
    time.sleep(0.5)
    assert numsub(settings, channel) == 1, "the subscription must stay while a local socket remains"
    publish_to_user(settings, user.id, "second_only", {"n": 2})
    second.wait_for("second_only", DELIVERY_SECONDS)

    second.client.disconnect()
    poll(lambda: numsub(settings, channel) == 0, UNSUBSCRIBE_SECONDS, interval=0.05,
         what=f"NUMSUB {channel} = 0 after the user's last socket closed")


@pytest.mark.parametrize("sockets", [5])
def test_abrupt_disconnects_release_the_subscription(settings, make_user, sio_session, gateway, sockets):
    """Clients that vanish without a Socket.IO DISCONNECT (TCP closed) are cleaned up too."""
    user = make_user()
    channel = user_channel(user.id)
    sessions = [sio_session(gateway.url).connect(token=user.token) for _ in range(sockets)]
    poll(lambda: numsub(settings, channel) == 1, UNSUBSCRIBE_SECONDS, interval=0.05, what="subscription")
    for session in sessions:
        # FIN without any WebSocket or Socket.IO closing handshake (shutdown, unlike close, also
        # wakes the client's reader thread).
        session.client.eio.ws.sock.shutdown(socket.SHUT_RDWR)
    poll(lambda: numsub(settings, channel) == 0, UNSUBSCRIBE_SECONDS + 3, interval=0.1,
         what=f"NUMSUB {channel} = 0 after every socket dropped")
