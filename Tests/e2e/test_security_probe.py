"""What an attacker would try against the gateway, and what must happen instead.

1. Access tokens with absurd times (exp / iat / nbf near the 64-bit limits or far beyond year 9999),
   correctly signed with the run's secret: refused as `token_malformed` on every path (Socket.IO
   CONNECT, the `authenticate` event, REST), and the gateway keeps running; year 9000 is fine.
2. Revocation (logout, refresh-token reuse, a deleted account) reaches sockets that are already
   open, on every gateway, within 1 s: `error {code: "token_revoked"}`, then a disconnect.
3. No response to another user carries that user's email; sign-ups and logins share one per-IP
   budget (so sign-up cannot be used to enumerate addresses for free).
4. The per-account login limit is one budget whether the account is named by email or username.
5. A NUL character in a string bound to SQL is a 422 naming the field, never a 503.
6. 200 `requestServerAck` in one TCP write admit exactly 16 (the cap on pending server acks).
7. Socket events spend the user's API budget, and a local per-socket event budget ends a flood with
   close code 1008 while the gateway stays responsive.
8. Presence only for contacts; mark-as-read only for the recipient; 404s that name the user id;
   events for a namespace the socket never joined are refused.
(Gateway metrics on the private admin port are in test_metrics.py.)

Tokens are forged here with HMAC-SHA256 over the run's JWT_SECRET (support.Settings.jwt_secret),
starting from the claims of a real login (iss, sub, iat, exp, jti, sid)."""

from __future__ import annotations

import calendar
import hashlib
import hmac
import json
import re
import threading
import time
import uuid

import pytest
import requests

from support import (
    Api,
    ConnectionClosed,
    Messages,
    ack_error,
    b64url,
    check_rate_limited,
    check_rate_limited_response,
    connect_error_code,
    create_user,
    default_limits_env,
    error_of,
    expect_error,
    jwt_parts,
    make_contacts,
    numsub,
    poll,
    psql,
    psql_rows,
    random_client_ip,
    unique,
    user_channel,
    user_of,
)

REVOCATION_BOUND = 1.0  # s from the revoking request to token_revoked + disconnect on every socket
DELIVERY = 5  # s for an event to reach a socket
MISSING_ID = 999_999_999_999
INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)
YEAR_9000 = calendar.timegm((9000, 1, 1, 0, 0, 0))

# Claims to put into an otherwise valid, correctly signed access token: each must be refused as
# token_malformed (times beyond year 9999 or near the 64-bit limits are not times).
ABSURD_CLAIMS = {
    "exp=9223372036854771": {"exp": 9_223_372_036_854_771},  # * 1000 overflows Int64
    "exp=int64-max": {"exp": INT64_MAX},
    "exp=1e15": {"exp": 10**15},
    "iat=int64-min": {"iat": INT64_MIN},
    "iat=1e15": {"iat": 10**15},
    "nbf=int64-min": {"nbf": INT64_MIN},
    "nbf=1e15": {"nbf": 10**15},
}


# --- 1. absurd token times ----------------------------------------------------------------------


@pytest.mark.parametrize("claims", list(ABSURD_CLAIMS.values()), ids=list(ABSURD_CLAIMS))
def test_absurd_token_times_are_malformed_on_every_path(settings, procs, sio_session, raw_eio, claims):
    gw = procs.gateway()  # its own gateway: on a crash the other cases still say what they do
    user = create_user(Api(gw.url))
    api = Api(gw.url)
    control = forge(settings, user.token)
    assert api.get("/api/users/me", control).status_code == 200, "the forged control token (real times) must be accepted"
    bad = forge(settings, user.token, **claims)
    what = f"a token with {claims}"

    code, payload = attempt(gw, f"CONNECT with {what}",
                            lambda: connect_error_code(sio_session(gw.url), token=bad))
    assert code == "token_malformed", f"CONNECT with {what}: CONNECT_ERROR code should be token_malformed: {payload!r}"
    check_serving(gw, user, sio_session, f"CONNECT with {what}")

    def raw_connect():
        return raw_eio(gw.port).sio_connect({"token": bad})

    reply = attempt(gw, f"raw Engine.IO CONNECT with {what}", raw_connect)
    assert reply.startswith("44"), f"raw CONNECT with {what} should get CONNECT_ERROR 44{{...}}, got {reply!r}"
    assert json.loads(reply[2:]).get("data", {}).get("code") == "token_malformed", (
        f"raw CONNECT with {what}: data.code should be token_malformed: {reply!r}")
    check_serving(gw, user, sio_session, f"raw CONNECT with {what}")

    session = sio_session(gw.url).connect(token=user.token)
    ack = attempt(gw, f"the authenticate event with {what}", lambda: session.call("authenticate", {"token": bad}))
    assert isinstance(ack, dict) and ack_error(ack)[0] == "token_malformed", (
        f"authenticate {{token}} with {what} should be acked with error token_malformed: {ack!r}")
    check_serving(gw, user, sio_session, f"authenticate with {what}")
    assert session.connected and session.call("ping")["pong"] is True, "the socket survives a refused authenticate"

    resp = attempt(gw, f"GET /api/users/me with {what}", lambda: api.get("/api/users/me", bad))
    expect_error(resp, 401, "token_malformed")
    check_serving(gw, user, sio_session, f"REST with {what}")


def test_token_expiring_in_year_9000_is_accepted(settings, procs, sio_session, raw_eio):
    gw = procs.gateway()
    user = create_user(Api(gw.url))
    token = forge(settings, user.token, exp=YEAR_9000)
    what = f"a token with exp={YEAR_9000} (year 9000)"

    resp = attempt(gw, f"GET /api/users/me with {what}", lambda: Api(gw.url).get("/api/users/me", token))
    assert resp.status_code == 200, f"{what} is valid: {resp.status_code} {resp.text}"
    session = attempt(gw, f"CONNECT with {what}", lambda: sio_session(gw.url).connect(token=token))
    check_serving(gw, user, sio_session, f"CONNECT with {what}")
    reply = attempt(gw, f"raw CONNECT with {what}", lambda: raw_eio(gw.port).sio_connect({"token": token}))
    assert reply.startswith("40"), f"raw CONNECT with {what} should be accepted: {reply!r}"

    other = sio_session(gw.url).connect(token=user.token)
    ack = attempt(gw, f"authenticate with {what}", lambda: other.call("authenticate", {"token": token}))
    assert isinstance(ack, dict) and ack.get("ok") is True, f"authenticate with {what} should be ok: {ack!r}"
    time.sleep(1.0)  # no expiry timer may fire (an overflowed deadline would be "now")
    for name, s in (("the CONNECTed socket", session), ("the re-authenticated socket", other)):
        assert s.connected and s.find("error") is None, f"{name} was dropped: {[(e.name, e.args) for e in s.events]!r}"
        assert s.call("whoami")["userId"] == user.id, f"{name} no longer answers"
    check_serving(gw, user, sio_session, f"sockets with {what}")


# --- 2. revocation reaches open sockets -----------------------------------------------------------


def test_logout_disconnects_the_sessions_sockets_on_every_gateway(settings, cluster, sio_session, raw_eio):
    gw1, gw2 = cluster.gw1, cluster.gw2
    a, b = create_user(Api(gw1.url)), create_user(Api(gw1.url))
    second_session = login(Api(gw2.url), a)  # another login of the same user: must survive
    doomed = {"python-socketio on gateway 1": sio_session(gw1.url).connect(token=a.token),
              "python-socketio on gateway 2": sio_session(gw2.url).connect(token=a.token)}
    raw = raw_eio(gw2.port)
    assert raw.sio_connect({"token": a.token}).startswith("40")
    keep = {"gateway 1": sio_session(gw1.url).connect(token=second_session),
            "gateway 2": sio_session(gw2.url).connect(token=second_session)}
    for s in [*doomed.values(), *keep.values()]:
        s.call("ping")
    poll(lambda: numsub(settings, user_channel(a.id)) == 2, 3, interval=0.05, what="A subscribed on both gateways")

    started = time.monotonic()
    resp = Api(gw1.url).logout(a.token)
    assert resp.status_code == 200, f"logout: {resp.status_code} {resp.text}"
    for name, s in doomed.items():
        wait_revoked(s, started, f"A's socket ({name}) after POST /api/auth/logout")
    late_send = raw_wait_revoked(raw, started, "A's raw socket on gateway 2 after logout",
                                 then_send={"receiverId": b.id, "content": "after logout", "clientMsgId": unique("rev")})

    time.sleep(max(0.0, started + REVOCATION_BOUND + 0.5 - time.monotonic()))
    check_other_session_alive(keep, a)
    assert_nothing_stored(settings, gw1, a, b, f"sendMessage on the revoked socket ({late_send})")


def test_refresh_token_reuse_disconnects_every_socket_of_the_session(settings, cluster, sio_session):
    gw1, gw2 = cluster.gw1, cluster.gw2
    a = create_user(Api(gw1.url))
    old_access, old_refresh = a.token, a.refresh_token
    resp = Api(gw2.url).refresh(old_refresh)
    assert resp.status_code == 200, f"the first refresh: {resp.status_code} {resp.text}"
    new_access = resp.json()["token"]
    assert jwt_parts(new_access)[1].get("sid") == jwt_parts(old_access)[1].get("sid"), "one session (sid)"
    second_session = login(Api(gw1.url), a)
    doomed = {f"{which} access token on gateway {n}": sio_session(gw.url).connect(token=token)
              for which, token in (("first", old_access), ("refreshed", new_access))
              for n, gw in ((1, gw1), (2, gw2))}
    keep = {"gateway 1": sio_session(gw1.url).connect(token=second_session),
            "gateway 2": sio_session(gw2.url).connect(token=second_session)}
    for s in [*doomed.values(), *keep.values()]:
        s.call("ping")

    started = time.monotonic()
    reused = Api(gw1.url).refresh(old_refresh)
    expect_error(reused, 401, "refresh_token_reused")
    for name, s in doomed.items():
        wait_revoked(s, started, f"socket with the {name} after refresh-token reuse")
    time.sleep(max(0.0, started + REVOCATION_BOUND + 0.5 - time.monotonic()))
    check_other_session_alive(keep, a)


def test_connect_of_a_deleted_account_is_revoked(settings, cluster, sio_session):
    gw1, gw2 = cluster.gw1, cluster.gw2
    user = create_user(Api(gw1.url))
    sio_session(gw2.url).connect(token=user.token).close()  # the token works while the account exists
    psql(settings, f"DELETE FROM refresh_tokens WHERE user_id = {int(user.id)}; "
                   f"DELETE FROM users WHERE id = {int(user.id)}")
    for n, gw in ((1, gw1), (2, gw2)):
        code, payload = connect_error_code(sio_session(gw.url), token=user.token)
        assert code == "token_revoked", (
            f"gateway {n}: CONNECT with an unexpired token of a deleted account (user {user.id}) should get "
            f"CONNECT_ERROR token_revoked: {payload!r}")


# --- 3. emails ------------------------------------------------------------------------------------


def test_no_response_to_another_user_contains_their_email(settings, cluster, sio_session):
    gw1, gw2 = cluster.gw1, cluster.gw2
    a, b = create_user(Api(gw1.url)), create_user(Api(gw1.url))
    leaks: list[str] = []

    def look(where: str, text: str) -> None:
        if a.email in text:
            leaks.append(f"{where}: {text[:400]}")

    make_contacts(gw1.url, a, b, "first contact")
    sb = sio_session(gw2.url).connect(token=b.token)
    sb.wait_for("onlineUsers", DELIVERY)
    poll(lambda: numsub(settings, user_channel(b.id)) >= 1, 3, interval=0.05, what="B subscribed")
    sa = sio_session(gw1.url).connect(token=a.token)
    sb.wait_for("userOnline", DELIVERY)  # contacts: B hears A come online, receive, go and come back
    sent = sa.call("sendMessage", {"receiverId": b.id, "content": "hello B", "clientMsgId": unique("mail")}, timeout=10)
    assert isinstance(sent, dict) and "error" not in sent, f"A's message: {sent!r}"
    sb.wait_for("receiveMessage", DELIVERY)
    sa.client.disconnect()
    expect_event(sb, "userOffline", "A's only socket closed; B, a contact, must hear userOffline (to check it for A's email)")
    mark = sb.mark()
    sa = sio_session(gw1.url).connect(token=a.token)
    expect_event(sb, "userOnline", "A reconnected; B must hear userOnline (to check it for A's email)", since=mark)
    sb2 = sio_session(gw1.url).connect(token=b.token)
    listed = sb2.wait_for("onlineUsers", DELIVERY).args[0]
    assert any(isinstance(x, dict) and x.get("userId") == a.id for x in listed), f"A online, B's contact: {listed!r}"
    look("socket sync ack", json.dumps(sb.call("sync", {})))
    look("socket getOnlineUsers ack", json.dumps(sb.call("getOnlineUsers")))
    for session, name in ((sb, "B's socket on gateway 2"), (sb2, "B's socket on gateway 1")):
        for ev in session.events:
            look(f"{name}: event {ev.name}", json.dumps(ev.args))

    api = Api(gw2.url)
    history = api.get(f"/api/messages/conversation/{a.id}", b.token)
    assert history.status_code == 200 and history.json(), f"B's history with A: {history.status_code} {history.text}"
    look(f"GET /api/messages/conversation/{a.id}", history.text)
    for msg in history.json():
        for role in ("sender", "receiver"):
            person = msg.get(role)
            if isinstance(person, dict) and person.get("id") == a.id and "email" in person:
                leaks.append(f"GET /api/messages/conversation/{a.id}: {role} object of A has an 'email' key: {person!r}")
    conversations = api.get("/api/messages/conversations", b.token)
    assert conversations.status_code == 200, conversations.text
    look("GET /api/messages/conversations", conversations.text)
    for conv in conversations.json():
        if isinstance(conv.get("partner"), dict) and "email" in conv["partner"]:
            leaks.append(f"GET /api/messages/conversations: partner has an 'email' key: {conv['partner']!r}")
    for path, params in ((f"/api/users/{a.id}", None), ("/api/users", {"query": a.username[:10]}),
                         ("/api/users/online", None), ("/api/sync", None)):
        resp = api.get(path, b.token, params=params)
        assert resp.status_code == 200, f"GET {path} {params or ''}: {resp.status_code} {resp.text}"
        look(f"GET {path} {params or ''}", resp.text)
    assert a.id in [u.get("id") for u in Api(gw1.url).get("/api/users", b.token, params={"query": a.username}).json()["users"]], (
        "the search should find A (otherwise the search check proves nothing)")
    assert not leaks, f"A's email {a.email!r} reached B in {len(leaks)} places:\n" + "\n".join(leaks)


def test_signups_and_logins_share_one_per_ip_budget(cluster, procs):
    """RATE_LIMIT_LOGIN_IP=4/15m. X-Forwarded-For (trusted from 127.0.0.1) gives this test a client
    address of its own: 127.0.0.1's own log already holds every sign-up of the run."""
    gw = procs.gateway(default_limits_env({"RATE_LIMIT_LOGIN_IP": "4/15m", "RATE_LIMIT_API": "1000000/1m",
                                           "TRUSTED_PROXIES": "127.0.0.1"}))
    taken = create_user(Api(cluster.gw1.url), login=False)
    api, client = Api(gw.url), {"X-Forwarded-For": random_client_ip()}

    def signup(email):
        name = unique()
        return api.post("/api/auth/signup", {"username": name, "email": email or f"{name}@example.com",
                                             "password": "correct horse battery"}, headers=client)

    def bad_login():
        return api.post("/api/auth/login", {"email": f"nobody-{uuid.uuid4().hex}@example.com",
                                            "password": "wrong password!"}, headers=client)

    for n in (1, 2):
        expect_error(signup(taken.email), 409, "email_taken")
    for n in (1, 2):
        expect_error(bad_login(), 401, "invalid_credentials")
    resp = signup(None)
    assert resp.status_code == 429, (
        f"2 sign-ups with a taken email + 2 failed logins spend the per-IP login budget (4/15m): the next "
        f"sign-up must be 429 limit=login, got {resp.status_code} {resp.text}")
    check_rate_limited_response(resp, "login", 15 * 60_000)
    check_rate_limited_response(bad_login(), "login", 15 * 60_000)


# --- 4. per-account login limit ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def account_limited(module_procs):
    """RATE_LIMIT_LOGIN_ACCOUNT=3/15m; the per-IP limit stays high."""
    return module_procs.gateway({"RATE_LIMIT_LOGIN_ACCOUNT": "3/15m"})


def test_login_account_limit_spans_email_and_username(cluster, account_limited):
    victim = create_user(Api(cluster.gw1.url), login=False)
    api = Api(account_limited.url)
    for how in ({"email": victim.email}, {"email": victim.email}, {"username": victim.username.swapcase()}):
        expect_error(api.login("wrong password!", **how), 401, "invalid_credentials")
    for how in ({"username": victim.username}, {"email": victim.email}):
        resp = api.login(victim.password, **how)
        assert resp.status_code == 429, (
            f"3 wrong passwords (2 by email, 1 by username {victim.username.swapcase()!r}) spend one account's "
            f"budget (3/15m): the right password by {how} must be 429 limit=login, got {resp.status_code} {resp.text[:200]}")
        check_rate_limited_response(resp, "login", 15 * 60_000)


def test_login_account_limit_covers_unknown_accounts(account_limited):
    api, ghost = Api(account_limited.url), f"nobody-{uuid.uuid4().hex}@example.com"
    for _ in range(3):
        expect_error(api.login("guess", email=ghost), 401, "invalid_credentials")
    check_rate_limited_response(api.login("guess", email=ghost), "login", 15 * 60_000)


# --- 5. NUL in strings bound to SQL -------------------------------------------------------------------


def _nul_requests(user):
    name = unique()
    signup = {"username": name, "email": f"{name}@example.com", "password": "correct horse battery",
              "displayName": "Display"}
    return {
        "users-query": ("query", lambda api: api.get("/api/users", user.token, params={"query": "\x00"})),
        "login-email": ("email", lambda api: api.login("whatever pass", email="nul\x00@example.com")),
        "login-username": ("username", lambda api: api.login("whatever pass", username="nul\x00user")),
        "refresh": ("refreshToken", lambda api: api.refresh("abc\x00def.ghi")),
        "signup-username": ("username", lambda api: api.post("/api/auth/signup", dict(signup, username=name + "\x00x"))),
        "signup-email": ("email", lambda api: api.post("/api/auth/signup", dict(signup, email=f"{name}\x00@example.com"))),
        "signup-displayName": ("displayName", lambda api: api.post("/api/auth/signup", dict(signup, displayName="Dis\x00play"))),
    }


@pytest.mark.parametrize("case", ["users-query", "login-email", "login-username", "refresh", "signup-username",
                                  "signup-email", "signup-displayName"])
def test_nul_in_a_string_is_a_validation_error(cluster, case):
    user = create_user(Api(cluster.gw1.url))
    field, send = _nul_requests(user)[case]
    resp = send(Api(cluster.gw1.url))
    assert resp.status_code == 422, (
        f"{case}: a NUL (U+0000) in {field!r} should be 422 validation_failed (Postgres cannot store it), "
        f"got {resp.status_code} {resp.text[:300]}")
    code, _message = error_of(resp)
    assert code == "validation_failed", f"{case}: {resp.text}"
    assert resp.json()["error"].get("field") == field, f"{case}: the error object should have field={field!r}: {resp.text}"
    assert "Retry-After" not in resp.headers, f"{case}: a validation error has no Retry-After: {dict(resp.headers)!r}"
    assert cluster.gw1.alive()


# --- 6. pending server acks ---------------------------------------------------------------------------


def test_burst_of_server_ack_requests_in_one_write_admits_16(procs, raw_eio):
    """The cap on pending server acks alone: this gateway's local event budget is raised (with the
    default burst of 100, events 101-200 of the write would be rate_limited before the cap is asked)."""
    gw = procs.gateway({"SOCKET_EVENT_RATE": "10000", "SOCKET_EVENT_BURST": "10000", "SOCKET_EVENT_FLOOD_CLOSE": "100000"})
    user = create_user(Api(gw.url))
    conn = raw_eio(gw.port)
    assert conn.sio_connect({"token": user.token}).startswith("40")
    burst = b"".join(masked_text(f'42{n}["requestServerAck",{{"event":"probe","data":{n}}}]') for n in range(1, 201))
    conn.ws.sock.sendall(burst)

    probes: dict[int, int] = {}  # n -> the server's ack id
    refused: dict[int, list] = {}
    other: list[str] = []
    deadline = time.monotonic() + 5
    for text in read_texts(conn, deadline, until=lambda: len(probes) + len(refused) >= 200, grace=0.3):
        kind, ack_id, args = sio_packet(text)
        if kind == "event" and len(args) > 1 and args[0] == "probe" and ack_id is not None:
            probes[args[1]] = ack_id
        elif kind == "ack" and ack_id is not None:
            refused[ack_id] = args
        else:
            other.append(text)
    assert len(probes) == 16 and len(refused) == 184, (
        f"200 requestServerAck in one write: expected exactly 16 probe events with a server ack id and 184 "
        f"too_many_pending_acks acks, got {len(probes)} probes and {len(refused)} acks (other: {other[:3]!r})")
    wrong = {n: args for n, args in refused.items()
             if not (args and isinstance(args[0], dict) and isinstance(args[0].get("error"), dict)
                     and args[0]["error"].get("code") == "too_many_pending_acks")}
    assert not wrong, f"refusals must be [{{'error': {{'code': 'too_many_pending_acks'}}}}]: {list(wrong.items())[:3]!r}"
    assert not set(probes) & set(refused) and set(probes) | set(refused) == set(range(1, 201)), (
        "each request gets either a probe or a refusal")

    for server_id in probes.values():
        conn.send(f'43{server_id}["ok"]')
    answered: dict[int, list] = {}
    for text in read_texts(conn, time.monotonic() + 5, until=lambda: len(answered) >= 16):
        kind, ack_id, args = sio_packet(text)
        if kind == "ack" and ack_id in probes:
            answered[ack_id] = args
    assert set(answered) == set(probes), f"acks for the 16 admitted requests: got {sorted(answered)} of {sorted(probes)}"
    bad = {n: a for n, a in answered.items() if a != [{"clientAck": ["ok"]}]}
    assert not bad, f"each admitted request should be acked with {{'clientAck': ['ok']}}: {bad!r}"

    conn.emit("requestServerAck", {"event": "probe", "data": 201}, ack_id=201)
    again: list = []
    for text in read_texts(conn, time.monotonic() + 5, until=lambda: bool(again)):
        kind, ack_id, args = sio_packet(text)
        if kind == "event" and args == ["probe", 201] and ack_id is not None:
            again.append(ack_id)
        elif kind == "ack" and ack_id == 201:
            raise AssertionError(f"after the 16 acks, a new requestServerAck must be admitted again: {text!r}")
    assert again, f"no probe for the new requestServerAck 201: {conn.texts[-3:]!r}"
    conn.send(f'43{again[0]}["again"]')
    assert conn.ack(201) == [{"clientAck": ["again"]}]


# --- 7. socket event limits ---------------------------------------------------------------------------


def test_socket_events_spend_the_users_api_budget(cluster, procs, sio_session):
    gw = procs.gateway({"RATE_LIMIT_API": "20/1m"})
    user = create_user(Api(cluster.gw1.url))  # anonymous sign-up/login elsewhere: 127.0.0.1's budget is spent
    session = sio_session(gw.url).connect(token=user.token)
    answers: dict[int, object] = {}
    done = threading.Condition()

    def record(n, *args):
        with done:
            answers[n] = args[0] if len(args) == 1 else args
            done.notify_all()

    for n in range(40):
        session.client.emit("sync", {}, namespace="/", callback=lambda *args, n=n: record(n, *args))
        time.sleep(1 / 30)
    with done:
        done.wait_for(lambda: len(answers) == 40, timeout=10)
    assert len(answers) == 40, f"only {len(answers)} of 40 sync events were answered"
    data = [n for n, a in answers.items() if isinstance(a, dict) and "conversations" in a]
    limited = {n: a for n, a in answers.items() if n not in data}
    assert len(data) <= 20, (
        f"RATE_LIMIT_API=20/1m: {len(data)} of 40 sync events (30/s) were answered with data; socket events "
        "must spend the user's API budget (at most 20)")
    assert len(data) >= 10, f"only {len(data)} of 40 answered with data: the budget is 20"
    for n, ack in limited.items():
        assert isinstance(ack, dict) and ack_error(ack)[0] == "rate_limited", f"sync {n}: {ack!r}"
        check_rate_limited(ack["error"], "api", 60_000)
    check_rate_limited_response(Api(gw.url).get("/api/messages/unread-count", user.token), "api", 60_000)
    ack = session.call("getOnlineUsers")
    assert isinstance(ack, dict) and ack_error(ack)[0] == "rate_limited", f"getOnlineUsers counts too: {ack!r}"
    check_rate_limited(ack["error"], "api", 60_000)
    # The read commands too, as their REST twin mark-as-read (they never reach a worker when refused).
    for event, argument in (("messageRead", {"messageId": MISSING_ID}), ("markAllAsRead", {"senderId": MISSING_ID})):
        ack = session.call(event, argument)
        assert isinstance(ack, dict) and ack_error(ack)[0] == "rate_limited", f"{event} spends the API budget: {ack!r}"
        check_rate_limited(ack["error"], "api", 60_000)


def test_event_flood_is_limited_and_closed_with_1008(procs, raw_eio, sio_session):
    gw = procs.gateway({"SOCKET_EVENT_RATE": "50", "SOCKET_EVENT_BURST": "100", "SOCKET_EVENT_FLOOD_CLOSE": "200"})
    flooder, bystander = create_user(Api(gw.url)), create_user(Api(gw.url))
    calm = sio_session(gw.url).connect(token=bystander.token)
    conn = raw_eio(gw.port)
    assert conn.sio_connect({"token": flooder.token}).startswith("40")

    started = time.monotonic()
    try:
        conn.ws.sock.sendall(b"".join(masked_text(f'42{n}["ping"]') for n in range(1, 1001)))
    except OSError:
        pass  # the server may close before reading everything
    health = timed_get(gw.url + "/health")
    pong = calm.call("ping", {"n": 1}, timeout=2)
    assert pong.get("pong") is True, f"another user's socket during the flood: {pong!r}"

    ok, refused, marks = set(), {}, {}
    while True:
        try:
            text = conn.text(min(2.0, max(0.01, started + 10 - time.monotonic())))
        except (ConnectionClosed, TimeoutError):  # closed, or 2 s of silence
            break
        kind, ack_id, args = sio_packet(text)
        if kind == "ack" and args and isinstance(args[0], dict) and args[0].get("pong") is True:
            ok.add(ack_id)
        elif kind == "ack" and args and isinstance(args[0], dict) and "error" in args[0]:
            refused[ack_id] = args[0]["error"]
        elif kind == "event" and args[:1] == ["error"] and len(args) > 1 and isinstance(args[1], dict) \
                and args[1].get("code") == "event_flood":
            marks.setdefault("event_flood", len(conn.texts))
        elif kind == "disconnect":
            marks.setdefault("disconnect", len(conn.texts))
    closed = conn.closed
    elapsed = (closed.at if closed else time.monotonic()) - started
    assert refused, f"1000 pings as fast as possible: all {len(ok)} answered, none refused (limit=socket_events)"
    for n, error in list(refused.items())[:20]:
        check_rate_limited(error, "socket_events", 10_000)
    assert set(range(1, 91)) <= ok, f"the first ~100 (the burst) are answered: missing {sorted(set(range(1, 91)) - ok)[:10]}"
    assert len(ok) <= 100 + 50 * elapsed + 10, f"{len(ok)} answered in {elapsed:.2f}s: burst 100 + 50/s allows fewer"
    assert "event_flood" in marks, (
        f"after >200 refusals within 10 s the server emits error {{code: event_flood}}; refused {len(refused)}, "
        f"last frames {conn.texts[-3:]!r}")
    assert "disconnect" in marks and marks["event_flood"] < marks["disconnect"], (
        f"then a Socket.IO DISCONNECT (41): {marks!r}")
    assert closed is not None and closed.kind == "close" and closed.close_code == 1008, (
        f"then WebSocket close 1008 (policy violation), got {closed!r}")
    assert 200 <= len(refused) <= 202, f"the close comes once more than 200 were refused; refused {len(refused)}"
    assert health < 1.0, f"/health took {health:.2f}s during the flood"
    assert timed_get(gw.url + "/health") < 1.0 and calm.call("ping")["pong"] is True, "after the flood"
    assert gw.alive()


# --- 8. smaller ones ------------------------------------------------------------------------------------


def test_presence_is_shown_to_contacts_only(settings, cluster, sio_session):
    gw1, gw2 = cluster.gw1, cluster.gw2
    caller, stranger, contact = (create_user(Api(gw1.url)) for _ in range(3))
    make_contacts(gw1.url, contact, caller)
    for u in (stranger, contact):
        sio_session(gw2.url).connect(token=u.token).wait_for("onlineUsers", DELIVERY)
        poll(lambda: numsub(settings, user_channel(u.id)) >= 1, 3, interval=0.05, what="connected")
    api = Api(gw1.url)

    def shown(user):
        resp = api.get(f"/api/users/{user.id}", caller.token)
        assert resp.status_code == 200, resp.text
        found = api.get("/api/users", caller.token, params={"query": user.username}).json()["users"]
        assert [u["id"] for u in found] == [user.id], found
        return {"GET /api/users/:id": user_of(resp.json()), "GET /api/users?query=": found[0]}

    for where, obj in shown(stranger).items():
        assert "isOnline" in obj and "lastSeen" in obj, f"{where}: keys must be present: {obj!r}"
        assert obj["isOnline"] is None and obj["lastSeen"] is None, (
            f"{where}: a connected user who shares no conversation with the caller must show isOnline and "
            f"lastSeen as null: {obj!r}")
    for where, obj in shown(contact).items():
        assert obj.get("isOnline") is True, f"{where}: a connected contact shows isOnline true: {obj!r}"


def test_mark_as_read_only_for_the_recipient(cluster, sio_session):
    gw1 = cluster.gw1
    a, b, c, d = (create_user(Api(gw1.url)) for _ in range(4))
    foreign = Messages(gw1.url, c).send_ok(d.id, "between C and D")
    own = Messages(gw1.url, b).send_ok(a.id, "B to A")
    mb = Messages(gw1.url, b)
    cases = [({"messageIds": [foreign["id"]]}, 403, "not_a_recipient", "a message between two other users"),
             ({"messageIds": [own["id"]]}, 403, "not_a_recipient", "B's own sent message"),
             ({"messageIds": [MISSING_ID]}, 404, "message_not_found", "a message id that does not exist"),
             ({"senderId": MISSING_ID}, 404, "user_not_found", "a sender that does not exist")]
    for body, status, code, what in cases:
        resp = mb.mark_as_read(body)
        assert resp.status_code == status and error_of(resp)[0] == code, (
            f"mark-as-read {body} ({what}) should be {status} {code}: {resp.status_code} {resp.text}")
    assert Messages(gw1.url, d).unread() == 1, "D's message from C must still be unread"
    assert Messages(gw1.url, a).unread() == 1, "A's message from B must still be unread"
    ack = sio_session(gw1.url).connect(token=b.token).call("markAllAsRead", {"senderId": MISSING_ID}, timeout=10)
    assert isinstance(ack, dict) and ack_error(ack)[0] == "user_not_found", f"markAllAsRead unknown sender: {ack!r}"


def test_unknown_user_ids_are_404(cluster):
    user = create_user(Api(cluster.gw1.url))
    api = Api(cluster.gw1.url)
    message = expect_error(api.get("/api/users/99999999999", user.token), 404, "user_not_found")
    assert "receiver" not in message.lower() and "99999999999" in message, (
        f"the 404 of GET /api/users/99999999999 should name the id, not a 'receiver': {message!r}")
    resp = api.get("/api/users/99999999999999999999999", user.token)  # beyond 64 bits
    expect_error(resp, 404, "user_not_found")


def test_events_for_another_namespace_are_refused(settings, cluster, raw_eio):
    a, b = create_user(Api(cluster.gw1.url)), create_user(Api(cluster.gw1.url))
    conn = raw_eio(cluster.gw1.port)
    assert conn.sio_connect({"token": a.token}).startswith("40")
    conn.send('42/admin,1["whoami"]')
    conn.send('42/admin,' + json.dumps(["sendMessage", {"receiverId": b.id, "content": "x", "clientMsgId": unique("ns")}]))
    conn.send("41/admin,")
    conn.send('427["whoami"]')
    got, closed = [], None
    try:
        for text in read_texts(conn, time.monotonic() + 5, until=lambda: any(t.startswith("437[") for t in got),
                               grace=0.5):
            got.append(text)
    except ConnectionClosed as error:
        closed = error
    answered = [t for t in got if t.startswith("43/admin,") or t.startswith("431[")]
    assert not answered, f'42/admin,1["whoami"] must not be handled (the socket never joined /admin): {answered!r}'
    time.sleep(0.5)
    stored = psql_rows(settings, f"SELECT count(*) FROM messages WHERE sender_id = {int(a.id)}")[0][0]
    assert stored == "0", f"a sendMessage EVENT addressed to /admin was handled: {stored} message(s) stored"
    errors = [args[1] for kind, _, args in map(sio_packet, got)
              if kind == "event" and len(args) > 1 and args[0] == "error" and isinstance(args[1], dict)]
    assert sum(1 for e in errors if e.get("code") == "invalid_namespace") >= 2, (
        f"each EVENT for /admin should be answered with an error event on / with code invalid_namespace: {got!r}")
    assert closed is None, f"the socket was closed after packets for /admin ({closed}); 41/admin, must not close it"
    whoami = [t for t in got if t.startswith("437[")]
    assert whoami and json.loads(whoami[0][3:])[0].get("userId") == a.id, (
        f"after 41/admin, the socket still answers 42 7[\"whoami\"] on /: {got!r}")


# --- helpers --------------------------------------------------------------------------------------------


def expect_event(session, name: str, why: str, since: int = 0):
    try:
        return session.wait_for(name, DELIVERY, since=since)
    except AssertionError as error:
        raise AssertionError(f"{why}: {error}") from None


def forge(settings, template: str, **claims) -> str:
    """An HS256 token signed with the run's secret: the claims of `template` (a real access token),
    a fresh jti, and `claims` on top."""
    payload = dict(jwt_parts(template)[1], jti=uuid.uuid4().hex, **claims)
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64url(json.dumps(payload, separators=(",", ":")).encode())
    signature = hmac.new(settings.jwt_secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64url(signature)}"


def attempt(gw, what: str, action):
    """Runs action(); if it fails because the gateway died, says so (with the crash from its log)."""
    try:
        return action()
    except Exception as error:
        time.sleep(0.3)
        if not gw.alive():
            raise AssertionError(f"the gateway died on {what} (exit {gw.proc.returncode}):\n{crash_of(gw)}") from None
        if isinstance(error, AssertionError):
            raise AssertionError(f"{what}: {error}") from None
        raise


def crash_of(gw) -> str:
    """The runtime failure and the crashed thread's first frames from a gateway's log (else its tail)."""
    lines = gw.logs().splitlines()
    failure = [line for line in lines if "runtime failure" in line or "Fatal error" in line][:1]
    start = next((i for i, line in enumerate(lines) if "crashed:" in line), None)
    if start is None:
        return gw.log_tail(15)
    return "\n".join(failure + lines[start:start + 8])


def check_serving(gw, user, sio_session, after: str) -> None:
    """The gateway still runs, answers /health within 1 s and serves a normal socket."""
    time.sleep(0.05)
    assert gw.alive(), f"the gateway died after {after} (exit {gw.proc.returncode}):\n{crash_of(gw)}"
    took = timed_get(gw.url + "/health")
    assert took < 1.0, f"/health took {took:.2f}s after {after}"
    session = sio_session(gw.url).connect(token=user.token)
    assert session.call("ping")["pong"] is True, f"a normal socket after {after}"
    session.close()


def timed_get(url: str) -> float:
    began = time.monotonic()
    resp = requests.get(url, timeout=2)
    assert resp.status_code == 200, f"GET {url}: {resp.status_code}"
    return time.monotonic() - began


def login(api, user) -> str:
    resp = api.login(user.password, email=user.email)
    assert resp.status_code == 200, f"login: {resp.status_code} {resp.text}"
    return resp.json()["token"]


def is_revoked(payload=None, *_rest) -> bool:
    return isinstance(payload, dict) and payload.get("code") == "token_revoked"


def wait_revoked(session, started: float, what: str) -> None:
    """error {code: token_revoked} and a disconnect, both within REVOCATION_BOUND of `started`."""
    try:
        ev = session.wait_for("error", REVOCATION_BOUND + 1, match=is_revoked)
    except AssertionError as error:
        raise AssertionError(f"{what}: no error event {{code: token_revoked}} ({error})") from None
    assert ev.at - started < REVOCATION_BOUND, f"{what}: token_revoked came after {ev.at - started:.2f}s (bound 1 s)"
    try:
        gone = session.wait_for("disconnect", REVOCATION_BOUND + 1)
    except AssertionError:
        raise AssertionError(f"{what}: token_revoked arrived but the socket was not disconnected") from None
    assert gone.at - started < REVOCATION_BOUND, f"{what}: disconnected after {gone.at - started:.2f}s (bound 1 s)"
    assert not session.connected, f"{what}: still connected"


def raw_wait_revoked(conn, started: float, what: str, then_send: dict) -> str:
    """As wait_revoked for a raw socket; right after the token_revoked event it writes a sendMessage
    (which must not be stored). Returns what happened to that write."""
    deadline = started + REVOCATION_BOUND + 1
    while True:
        try:
            text = conn.text(max(0.01, deadline - time.monotonic()))
        except (TimeoutError, ConnectionClosed):
            raise AssertionError(f"{what}: no error event {{code: token_revoked}}; frames {conn.texts[-5:]!r}") from None
        kind, _, args = sio_packet(text)
        if kind == "event" and args and args[0] == "error" and is_revoked(*args[1:]):
            break
    took = time.monotonic() - started
    assert took < REVOCATION_BOUND, f"{what}: token_revoked came after {took:.2f}s (bound 1 s)"
    try:
        conn.emit("sendMessage", then_send, ack_id=99)
        result = "written after token_revoked"
    except Exception as error:  # the server may already have closed: nothing to store then
        result = f"refused by the transport ({type(error).__name__})"
    closed = conn.wait_closed(REVOCATION_BOUND + 1)
    assert closed is not None, f"{what}: token_revoked arrived but the WebSocket stayed open"
    assert closed.at - started < REVOCATION_BOUND + 0.2, f"{what}: closed after {closed.at - started:.2f}s"
    assert any(t == "41" for t in conn.texts), f"{what}: no Socket.IO DISCONNECT (41) before the close: {conn.texts[-4:]!r}"
    assert not any(t.startswith("4399[") and '"clientMsgId"' in t for t in conn.texts), (
        f"{what}: the sendMessage after token_revoked was acknowledged as stored: {conn.texts[-4:]!r}")
    return result


def check_other_session_alive(keep: dict, user) -> None:
    for name, s in keep.items():
        assert s.connected and s.find("error", match=is_revoked) is None and s.find("disconnect") is None, (
            f"the socket of A's OTHER login session on {name} must stay: {[(e.name, e.args) for e in s.events]!r}")
        assert s.call("whoami")["userId"] == user.id, f"the other session's socket on {name} still answers"


def assert_nothing_stored(settings, gw, sender, receiver, what: str) -> None:
    time.sleep(0.5)  # a worker had time to store it
    history = Messages(gw.url, receiver).history(sender.id)
    assert history == [], f"{what}: the receiver's history shows {history!r}"
    count = psql_rows(settings, f"SELECT count(*) FROM messages WHERE sender_id = {int(sender.id)}")[0][0]
    assert count == "0", f"{what}: {count} messages stored"


def masked_text(text: str) -> bytes:
    """One masked WebSocket text frame (as a client must send it) carrying `text` (an Engine.IO
    packet, e.g. `42["ping"]`)."""
    import websocket

    return websocket.ABNF.create_frame(text, websocket.ABNF.OPCODE_TEXT).format()


SIO_PACKET = re.compile(r"^(\d)(/[^,]*,)?(\d*)(.*)$", re.S)


def sio_packet(text: str) -> tuple[str, int | None, list]:
    """An Engine.IO message `4...` as (kind, ack id, arguments) for namespace `/` ("other" for
    anything else, including packets for other namespaces)."""
    if not text.startswith("4"):
        return "other", None, []
    m = SIO_PACKET.match(text[1:])
    if not m or m.group(2):
        return "other", None, []
    kind = {"0": "connect", "1": "disconnect", "2": "event", "3": "ack", "4": "connect_error"}.get(m.group(1), "other")
    try:
        args = json.loads(m.group(4)) if m.group(4) else []
    except ValueError:
        return "other", None, []
    return kind, int(m.group(3)) if m.group(3) else None, args if isinstance(args, list) else [args]


def read_texts(conn, deadline: float, until, grace: float = 0.0):
    """Yields text frames until until() holds (checked after the caller handled each frame; then
    `grace` s more, for stragglers) or the deadline."""
    end = deadline
    while True:
        if end == deadline and until():
            end = min(deadline, time.monotonic() + grace)
        remaining = end - time.monotonic()
        if remaining <= 0:
            return
        try:
            text = conn.text(remaining)
        except TimeoutError:
            return
        yield text
